// A PN-counter: per actor, the total of its increments (P) and of its
// decrements (N); the value is ΣP − ΣN. The join takes each actor's
// maximum, so it is commutative, associative and idempotent, and merging
// replicas in any order gives the same counter (Riak's riak_dt_pncounter).
//
// Actors are coordinators (a node id, or its stand-in actor while it
// coordinates as a fallback: clock/object.ts, standInActor). Only an actor
// raises its own entries, and it does so from its own copy, which holds
// everything it ever added under that actor (a stand-in is retired the
// moment its node drops any copy), so no join can hide an increment.
//
// Exactness: entries are BigInt and never leave [0, 2^63 − 1] (one msgpack
// int64 each); an operation that would take an entry there, or the value as
// the coordinator sees it outside signed 64 bits, is refused with
// COUNTER_OVERFLOW before anything is written. The value itself is a BigInt
// sum, exact whatever concurrent merges add up to.
//
// Invariants: p and n sorted by actor, no duplicate actors, every entry in
// [0, int64Max] (zero entries are kept out of p and n).

import { actorProblem } from '../clock/vclock.js';
import { TuneKvError } from '../../errors.js';

export const int64Max = 2n ** 63n - 1n;
export const int64Min = -(2n ** 63n);

/** [actor, total], sorted by actor. */
export type CounterEntries = readonly (readonly [string, bigint])[];

export interface CounterState {
  readonly p: CounterEntries;
  readonly n: CounterEntries;
}

export const emptyCounter: CounterState = { p: [], n: [] };

function sum(entries: CounterEntries): bigint {
  let s = 0n;
  for (const [, v] of entries) s += v;
  return s;
}

export function counterValue(c: CounterState): bigint {
  return sum(c.p) - sum(c.n);
}

function entryOf(entries: CounterEntries, actor: string): bigint {
  for (const [a, v] of entries) if (a === actor) return v;
  return 0n;
}

function withEntry(entries: CounterEntries, actor: string, v: bigint): CounterEntries {
  const out = entries.filter(([a]) => a !== actor);
  out.push([actor, v]);
  out.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  return out;
}

function joinEntries(a: CounterEntries, b: CounterEntries): CounterEntries {
  const out: [string, bigint][] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x[0] < y[0])) { out.push([x![0], x![1]]); i++; continue; }
    if (x === undefined || y[0] < x[0]) { out.push([y[0], y[1]]); j++; continue; }
    out.push([x[0], x[1] > y[1] ? x[1] : y[1]]);
    i++; j++;
  }
  return out;
}

export function joinCounters(a: CounterState, b: CounterState): CounterState {
  return { p: joinEntries(a.p, b.p), n: joinEntries(a.n, b.n) };
}

/**
 * Adds `delta` (negative: a decrement) under `actor`. Throws
 * COUNTER_OVERFLOW when the actor's entry or the value this copy holds
 * would leave signed 64 bits.
 */
export function addToCounter(c: CounterState, actor: string, delta: bigint): CounterState {
  if (delta === 0n) return c;
  const value = counterValue(c) + delta;
  if (value > int64Max || value < int64Min) {
    throw new TuneKvError('COUNTER_OVERFLOW', `the counter would be ${value}, outside signed 64 bits; nothing was changed`,
      { value: value.toString() });
  }
  const side = delta > 0n ? 'p' : 'n';
  const entries = c[side];
  const next = entryOf(entries, actor) + (delta > 0n ? delta : -delta);
  if (next > int64Max) {
    throw new TuneKvError('COUNTER_OVERFLOW', `${actor}'s ${delta > 0n ? 'increments' : 'decrements'} of this counter would total ${next}, past 2^63 - 1; `
      + `nothing was changed. This node's total only grows, so its ${delta > 0n ? 'increments' : 'decrements'} of this counter (a reset included) must be `
      + 'coordinated through another node (a request with `host`)', { total: next.toString() });
  }
  return { ...c, [side]: withEntry(entries, actor, next) };
}

/** A reset as an observed operation: it takes away exactly the value this
 * copy holds, under the coordinator's actor, so increments it has not seen
 * (concurrent, elsewhere) survive it, as an observed remove leaves a
 * concurrent add of a set. */
export function resetCounter(c: CounterState, actor: string): CounterState {
  return addToCounter(c, actor, -counterValue(c));
}

/** Wire and disk form: [[actor, int64]...] twice. */
export function counterToWire(c: CounterState): unknown[] {
  return [c.p.map(([a, v]) => [a, v]), c.n.map(([a, v]) => [a, v])];
}

function entriesFromWire(v: unknown, what: string): CounterEntries {
  if (!Array.isArray(v)) throw new Error(`counter ${what} must be an array`);
  const out: [string, bigint][] = [];
  for (const e of v as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2) throw new Error(`a counter ${what} entry must be [actor, total]`);
    const [actor, raw] = e as unknown[];
    const problem = actorProblem(actor);
    if (problem !== null) throw new Error(`counter ${what}: ${problem}`);
    const total = typeof raw === 'bigint' ? raw : Number.isSafeInteger(raw) ? BigInt(raw as number) : undefined;
    if (total === undefined || total <= 0n || total > int64Max) throw new Error(`a counter ${what} total must be an integer from 1 to 2^63 - 1`);
    const prev = out[out.length - 1];
    if (prev !== undefined && prev[0] >= (actor as string)) throw new Error(`counter ${what} entries must be sorted by actor without duplicates`);
    out.push([actor as string, total]);
  }
  return out;
}

/** Throws Error (the caller wraps it) for anything that is not a counter. */
export function counterFromWire(v: unknown): CounterState {
  if (!Array.isArray(v) || v.length !== 2) throw new Error('a counter must be [p, n]');
  return { p: entriesFromWire(v[0], 'p'), n: entriesFromWire(v[1], 'n') };
}
