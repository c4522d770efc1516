// Resolving siblings on the client: kv.update() (read, resolve, write with
// the read's context, again if a concurrent writer left a sibling) and the
// default resolver a client may be given at connect() for reads.
//
// What a resolver is: a function of the siblings' values (and how many
// deletes were concurrent with them) that returns the one value to keep, or
// `deleted` to delete the key. It runs in the client; the node only learns
// that the put resolved N versions (the PUT field `resolved`), which it
// records in its conflict log as kind `resolver`.
//
// Invariants: an error thrown by a resolver propagates unchanged and nothing
// is written in that round (earlier rounds' writes stay: each was a
// complete resolution of what it read); update() runs at most its rounds
// bound (limits.updateRoundsMax), never loops unbounded on a hot key; every
// write carries the context of the read it resolved, so it supersedes
// exactly what that read saw and nothing a concurrent writer added.

import { invalid } from '../errors.js';
import { limits } from '../limits.js';
import type { Consistency } from '../core/quorum/levels.js';

/** Returned by a resolver to delete the key (with the read's context). */
export const deleted: unique symbol = Symbol('tunekv.deleted');

/** What a resolver sees besides the values. */
export interface SiblingInfo {
  /** Deletes concurrent with the values (a tombstone sibling). */
  readonly tombstones: number;
  /** The key had a live value. */
  readonly found: boolean;
  /** 1 for the first read, 2 after a concurrent writer left a sibling, ... */
  readonly round: number;
}

/** Merges siblings into one value; may be async. Returns `deleted` to
 * delete the key. For update() it is also called when there is one value
 * (or none): it is the read-modify-write step. */
export type Resolver = (values: unknown[], info: SiblingInfo) => unknown;

export interface UpdateOptions {
  readonly consistency?: Consistency;
  readonly r?: number;
  readonly w?: number;
  readonly timeoutMs?: number;
  /** Rounds before update() gives up resolving (1..updateRoundsMax).
   * Default 3. */
  readonly roundsMax?: number;
  /** Aborts the read or write in progress (ABORTED); rounds already
   * written stay written. */
  readonly signal?: AbortSignal;
}

export interface UpdateResult {
  /** The value written in the last round (undefined for a delete). */
  readonly value: unknown;
  /** The context after the last write: pass it to the next put. */
  readonly context: string;
  /** Versions the key held on the coordinator after the last write: 1
   * when the resolution stuck; more when concurrent writers kept adding
   * siblings for every round (see `settled`). */
  readonly siblings: number;
  /** Read-resolve-write rounds run. */
  readonly rounds: number;
  /** The last write left one version. When false the last resolution is
   * stored, next to what concurrent writers added: the next read (or
   * update) resolves again. */
  readonly settled: boolean;
  readonly deleted: boolean;
}

/** The part of the client update() needs (kept narrow so it is testable). */
export interface UpdateTarget {
  get(key: string, o: { consistency?: Consistency; r?: number; timeoutMs?: number; resolve?: false; signal?: AbortSignal }): Promise<{
    found: boolean; values: unknown[]; tombstones: number; context: string; siblings: number;
  }>;
  put(key: string, value: unknown, o: { context: string; consistency?: Consistency; w?: number; timeoutMs?: number; resolved?: number; signal?: AbortSignal }): Promise<{ context: string; siblings: number }>;
  delete(key: string, o: { context: string; consistency?: Consistency; w?: number; timeoutMs?: number; resolved?: number; signal?: AbortSignal }): Promise<{ context: string; siblings: number }>;
}

/** The default number of rounds: one for the read-modify-write, one or
 * two more for concurrent writers; past that the key is hot enough that
 * another round would only add load. */
export const updateRoundsDefault = 3;

export function checkUpdateOptions(opts: UpdateOptions): number {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('update() options must be an object');
  const rounds = opts.roundsMax ?? updateRoundsDefault;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > limits.updateRoundsMax) {
    throw invalid(`roundsMax (${String(rounds)}) must be an integer from 1 to ${limits.updateRoundsMax} (updateRoundsMax)`);
  }
  return rounds;
}

/**
 * Reads `key`, hands its values to `fn`, and writes what `fn` returns with
 * the read's context. When the write's reply shows more than one version
 * (a concurrent writer's sibling survived beside ours), it reads and
 * resolves again, up to `roundsMax` rounds.
 */
export async function update(kv: UpdateTarget, key: string, fn: Resolver, opts: UpdateOptions = {}): Promise<UpdateResult> {
  if (typeof fn !== 'function') throw new TypeError('update() needs a function (values, info) => value');
  const roundsMax = checkUpdateOptions(opts);
  const readOpts = { consistency: opts.consistency, r: opts.r, timeoutMs: opts.timeoutMs, resolve: false as const, signal: opts.signal };
  let last: UpdateResult | undefined;
  for (let round = 1; round <= roundsMax; round++) {
    const got = await kv.get(key, stripUndefined(readOpts));
    const next = await fn(got.values, { tombstones: got.tombstones, found: got.found, round });
    const writeOpts = stripUndefined({
      context: got.context, consistency: opts.consistency, w: opts.w, timeoutMs: opts.timeoutMs, signal: opts.signal,
      resolved: got.siblings >= 2 ? got.siblings : undefined,
    });
    const isDelete = next === deleted;
    if (isDelete && !got.found && got.tombstones === 0) {
      // Nothing to delete: writing a tombstone over nothing would only add one.
      return { value: undefined, context: got.context, siblings: 0, rounds: round, settled: true, deleted: true };
    }
    const res = isDelete ? await kv.delete(key, writeOpts) : await kv.put(key, next, writeOpts);
    last = { value: isDelete ? undefined : next, context: res.context, siblings: res.siblings, rounds: round, settled: res.siblings <= 1, deleted: isDelete };
    if (last.settled) return last;
  }
  return last!;
}

/** Options objects without undefined fields (the client checks `in`-style
 * presence for some of them, e.g. r without consistency). */
function stripUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** The result a read returns when a default resolver merged its siblings. */
export interface ResolvedRead {
  readonly value: unknown;
  readonly deleted: boolean;
}

/** Runs a default resolver on a read's siblings (more than one version). */
export async function resolveRead(fn: Resolver, values: unknown[], tombstones: number): Promise<ResolvedRead> {
  const v = await fn(values, { tombstones, found: values.length > 0, round: 1 });
  return v === deleted ? { value: undefined, deleted: true } : { value: v, deleted: false };
}
