// Vector clocks keyed by node id.
//
// A clock is a sorted array of [actor, counter, tsMs] entries: `counter` is
// how many writes of the key that actor has coordinated which this clock has
// seen (every dot (actor, 1..counter)), `tsMs` is the coordinator's wall
// clock at the last of them, used only to choose what to prune.
//
// Invariants: entries are sorted by actor with no duplicates; counters are
// positive integers; every function returns a new clock and never mutates.
// merge is commutative, associative and idempotent (test/core/vclock.test.ts
// checks it with fast-check), and compare agrees with merge:
// compare(a, b) is 'before' exactly when merge(a, b) equals b and a != b.

import { limits } from '../../limits.js';

export type ClockEntry = readonly [actor: string, counter: number, tsMs: number];
export type VClock = readonly ClockEntry[];
export type Ordering = 'before' | 'after' | 'equal' | 'concurrent';

export const emptyClock: VClock = [];

export function counterOf(clock: VClock, actor: string): number {
  for (const [a, c] of clock) if (a === actor) return c;
  return 0;
}

/** Entry-wise maximum. For equal counters the later timestamp is kept, so
 * the result does not depend on argument order. */
export function merge(a: VClock, b: VClock): VClock {
  const out: ClockEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x[0] < y[0])) { out.push(x!); i++; continue; }
    if (x === undefined || y[0] < x[0]) { out.push(y); j++; continue; }
    if (x[1] > y[1] || (x[1] === y[1] && x[2] >= y[2])) out.push(x); else out.push(y);
    i++; j++;
  }
  return out;
}

/** True when a has seen everything b has (a >= b entry-wise). */
export function descends(a: VClock, b: VClock): boolean {
  for (const [actor, counter] of b) if (counterOf(a, actor) < counter) return false;
  return true;
}

export function compare(a: VClock, b: VClock): Ordering {
  const aSeesB = descends(a, b);
  const bSeesA = descends(b, a);
  if (aSeesB && bSeesA) return 'equal';
  if (aSeesB) return 'after';
  if (bSeesA) return 'before';
  return 'concurrent';
}

/** True when the clock has seen the dot (actor, counter). */
export function covers(clock: VClock, actor: string, counter: number): boolean {
  return counterOf(clock, actor) >= counter;
}

/** Sets actor's entry to exactly (counter, tsMs) when that raises it. */
export function withDot(clock: VClock, actor: string, counter: number, tsMs: number): VClock {
  return merge(clock, [[actor, counter, tsMs]]);
}

export function increment(clock: VClock, actor: string, tsMs: number): VClock {
  return withDot(clock, actor, counterOf(clock, actor) + 1, tsMs);
}

/**
 * Bounded size. When a clock has more than entriesMax entries, the oldest
 * entries (by tsMs) that are older than pruneAgeMinMs are dropped until it
 * fits. What pruning can cost: a replica that forgot an actor's entry may
 * take a version it had already superseded for new, so a resolved sibling can
 * reappear (a false conflict). It never drops a live version: in a
 * dotted-version merge (object.ts) a smaller clock only ever keeps more.
 * Entries younger than pruneAgeMinMs are kept even past the limit, so an
 * actor's recent counter is never forgotten and never reused.
 */
export function prune(clock: VClock, nowMs: number, entriesMax: number = limits.vclockEntriesMax,
  pruneAgeMinMs: number = limits.vclockPruneAgeMinMs): VClock {
  if (clock.length <= entriesMax) return clock;
  const byAge = [...clock].sort((x, y) => x[2] - y[2] || (x[0] < y[0] ? -1 : 1));
  const drop = new Set<string>();
  for (const [actor, , ts] of byAge) {
    if (clock.length - drop.size <= entriesMax) break;
    if (nowMs - ts < pruneAgeMinMs) break;
    drop.add(actor);
  }
  return clock.filter(([actor]) => !drop.has(actor));
}

/** Structural check for clocks from the network, disk or a caller's context. */
export function clockProblem(value: unknown): string | null {
  if (!Array.isArray(value)) return 'clock is not an array';
  let prev = '';
  for (let i = 0; i < value.length; i++) {
    const e = value[i] as unknown;
    if (!Array.isArray(e) || e.length !== 3) return 'clock entry is not [actor, counter, tsMs]';
    const [actor, counter, ts] = e as unknown[];
    if (typeof actor !== 'string' || actor.length === 0) return 'clock actor must be a non-empty string';
    if (i > 0 && actor <= prev) return 'clock entries must be sorted by actor without duplicates';
    if (!Number.isSafeInteger(counter) || (counter as number) < 1) return 'clock counter must be a positive integer';
    if (typeof ts !== 'number' || !Number.isFinite(ts)) return 'clock timestamp must be a number';
    prev = actor;
  }
  return null;
}
