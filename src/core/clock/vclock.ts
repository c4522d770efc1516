// Vector clocks keyed by node id.
//
// A clock is a sorted array of [actor, counter, tsMs] entries: `counter` is
// how many writes of the key that actor has coordinated which this clock has
// seen (every dot (actor, 1..counter)), `tsMs` is the coordinator's wall
// clock at the last of them, used only to choose what to prune.
//
// Invariants: entries are sorted by actor with no duplicates; counters are
// positive integers no larger than limits.clockCounterMax (so an increment is
// always exact); every function returns a new clock and never mutates; every
// function is linear in the entries it reads (prune, which sorts, is
// O(e log e) and only runs past vclockEntriesMax).
// merge is commutative, associative and idempotent (test/core/vclock.test.ts
// checks it with fast-check), and compare agrees with merge:
// compare(a, b) is 'before' exactly when merge(a, b) equals b and a != b.

import { limits } from '../../limits.js';
import { nodeIdProblem } from '../ring/ring.js';

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

/** True when a has seen everything b has (a >= b entry-wise). One walk over
 * both sorted clocks: O(|a| + |b|). */
export function descends(a: VClock, b: VClock): boolean {
  const inA = counterReader(a);
  for (const [actor, counter] of b) if (inA(actor) < counter) return false;
  return true;
}

/**
 * counterOf for many lookups whose actors come in non-decreasing order, in
 * O(|clock| + lookups) in total instead of O(|clock|) each. Callers walk
 * something sorted by actor (another clock, siblings sorted by dot), so one
 * forward pass over the clock answers every lookup. A lookup out of order
 * would silently answer 0, so it throws instead: that is a bug in the caller.
 */
export function counterReader(clock: VClock): (actor: string) => number {
  let i = 0;
  let last = '';
  return (actor: string): number => {
    if (actor < last) throw new Error(`counterReader: actor "${actor}" looked up after "${last}"`);
    last = actor;
    while (i < clock.length && clock[i]![0] < actor) i++;
    const e = clock[i];
    return e !== undefined && e[0] === actor ? e[1] : 0;
  };
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

/**
 * A clock whose entries carry no timestamp later than nowMs. Timestamps only
 * decide what prune() may drop, and a context's timestamps come from the
 * caller: an entry stamped in the far future would never be old enough to
 * prune, so forged actors could pin a clock above vclockEntriesMax for ever.
 * Clamped, such an entry ages like one written now. Returns the same clock
 * when nothing is in the future.
 */
export function clampTimestamps(clock: VClock, nowMs: number): VClock {
  if (!clock.some(([, , ts]) => ts > nowMs)) return clock;
  return clock.map((e) => (e[2] > nowMs ? [e[0], e[1], nowMs] as const : e));
}

/**
 * Structural check for every clock from outside: a caller's context, a
 * peer's object, an object read from disk. Returns the first problem in
 * plain words, or null.
 *
 * Rules, and why:
 *   - an array of [actor, counter, tsMs], sorted by actor, no duplicates:
 *     every function here walks clocks as sorted lists;
 *   - at most entriesMax entries: contextEntriesMax by default, for
 *     contexts (at least nodesMax: a real clock has one entry per
 *     coordinating node). Object clocks from peers and disk pass a larger
 *     bound, because merge() unions clocks and never refuses (see
 *     objectClockEntriesMax in protocol/object-codec.ts);
 *   - actor is a node id (nodeIdProblem): actors are the nodes that
 *     coordinated writes, nothing else;
 *   - counter is an integer from 1 to clockCounterMax: a node mints one past
 *     the highest counter it has seen, so a counter near 2^53 would make it
 *     mint a counter that is no longer exact and give two writes one dot;
 *     update() (object.ts) refuses to mint above the same bound, so every
 *     clock a node stores passes this check again when it is loaded;
 *   - tsMs is a finite number >= 0 (a wall-clock time in ms): prune()
 *     subtracts it, and NaN or -Infinity would make every comparison false.
 */
export function clockProblem(value: unknown, entriesMax: number = limits.contextEntriesMax): string | null {
  if (!Array.isArray(value)) return 'clock is not an array';
  if (value.length > entriesMax) return `clock has ${value.length} entries; at most ${entriesMax} are allowed`;
  let prev = '';
  for (let i = 0; i < value.length; i++) {
    const problem = clockEntryProblem(value[i] as unknown);
    if (problem) return problem;
    const actor = (value[i] as unknown[])[0] as string;
    if (i > 0 && actor <= prev) return 'clock entries must be sorted by actor without duplicates';
    prev = actor;
  }
  return null;
}

function clockEntryProblem(e: unknown): string | null {
  if (!Array.isArray(e) || e.length !== 3) return 'clock entry is not [actor, counter, tsMs]';
  const [actor, counter, ts] = e as unknown[];
  return actorProblem(actor) ?? counterProblem(counter) ?? timestampProblem(ts);
}

/** The rules clockProblem applies to one actor, counter or timestamp; the
 * object codec applies the same ones to each sibling's dot. */
export function actorProblem(actor: unknown): string | null {
  if (typeof actor !== 'string' || actor.length === 0) return 'clock actor must be a non-empty string';
  if (nodeIdProblem(actor) !== null) return 'clock actor must be a node id (1-64 characters of A-Z a-z 0-9 _ . -)';
  return null;
}

export function counterProblem(counter: unknown): string | null {
  if (!Number.isSafeInteger(counter) || (counter as number) < 1) return 'clock counter must be a positive integer';
  if ((counter as number) > limits.clockCounterMax) return `clock counter must be at most clockCounterMax (${limits.clockCounterMax})`;
  return null;
}

export function timestampProblem(ts: unknown): string | null {
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0) return 'clock timestamp must be a finite number >= 0';
  return null;
}
