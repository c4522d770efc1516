// A stored object: the concurrent versions (siblings) of one key and the
// causal history that produced them.
//
// The model is the "dotted version vector set" Riak adopted in 2.0: each
// sibling carries the dot (actor, counter) of the write that created it, and
// the object carries one clock, the union of every write it has seen. This is
// what makes "a put without a context becomes a sibling" hold with node-id
// actors: two context-free puts coordinated by the same node get dots (n1,1)
// and (n1,2), and (n1,2) was written with an empty context, so it does not
// supersede (n1,1). Plain per-version vector clocks would let the second
// silently replace the first.
//
// Invariants:
//   - no two siblings share a dot, and siblings are sorted by dot;
//   - update() removes exactly the siblings whose dots the caller's context
//     covers (what the caller read), never others, unless the put asks for LWW;
//   - merge() keeps a sibling unless the other side has seen its dot and no
//     longer holds it (it was superseded there); merge is commutative,
//     associative and idempotent, so replicas converge in any order;
//   - a tombstone is a sibling whose value is null; it carries a dot and is
//     superseded like any value.

import * as vc from './vclock.js';
import type { VClock } from './vclock.js';

/** How a client encoded a value (Sibling.vtype). */
export const ValueType = { Bytes: 0, Utf8: 1, Msgpack: 2 } as const;

export interface Sibling {
  readonly actor: string;
  readonly counter: number;
  /** Coordinator wall clock at the write: LWW order and display only. */
  readonly tsMs: number;
  /** null marks a tombstone (a delete). */
  readonly value: Uint8Array | null;
  /** How the client encoded the value; opaque to the server. */
  readonly vtype: number;
  /** Written with last-writer-wins: see collapseLww(). */
  readonly lww: boolean;
  /** The client's id for this write, so a retried put is applied once:
   * see update() and dedupeRetries(). null when the writer gave none. */
  readonly wid: Uint8Array | null;
}

export interface VersionedObject {
  readonly clock: VClock;
  readonly siblings: readonly Sibling[];
}

export interface PutInput {
  /** The clock of what the caller read; empty when it read nothing. */
  readonly context: VClock;
  readonly value: Uint8Array | null;
  readonly vtype: number;
  /** The coordinating node; it alone creates dots with its name. */
  readonly actor: string;
  readonly nowMs: number;
  readonly lww: boolean;
  /** The client's write id, the same on every retry of one put. */
  readonly wid: Uint8Array | null;
}

export const emptyObject: VersionedObject = { clock: vc.emptyClock, siblings: [] };

function dotOrder(a: Sibling, b: Sibling): number {
  if (a.actor !== b.actor) return a.actor < b.actor ? -1 : 1;
  return a.counter - b.counter;
}

function sameDot(a: Sibling, b: Sibling): boolean {
  return a.actor === b.actor && a.counter === b.counter;
}

function findDot(siblings: readonly Sibling[], s: Sibling): Sibling | undefined {
  return siblings.find((t) => sameDot(s, t));
}

/** Highest counter an actor has used in this object, clock or siblings. */
function highestCounter(obj: VersionedObject, actor: string): number {
  let c = vc.counterOf(obj.clock, actor);
  for (const s of obj.siblings) if (s.actor === actor && s.counter > c) c = s.counter;
  return c;
}

/** LWW order: later timestamp wins, then the larger dot, so every replica
 * picks the same winner. */
function lwwWinner(siblings: readonly Sibling[]): Sibling {
  let best = siblings[0]!;
  for (const s of siblings) {
    if (s.tsMs > best.tsMs || (s.tsMs === best.tsMs && dotOrder(s, best) > 0)) best = s;
  }
  return best;
}

/**
 * Last-writer-wins, as in Cassandra: once any surviving sibling was written
 * with `lww`, only the one with the latest timestamp survives. What it can
 * lose: every concurrent write with an earlier timestamp, including writes
 * acknowledged to their callers, and with clock skew between coordinators
 * "latest" may not be the last in real time.
 */
function collapseLww(siblings: readonly Sibling[]): readonly Sibling[] {
  if (siblings.length < 2 || !siblings.some((s) => s.lww)) return siblings;
  return [lwwWinner(siblings)];
}

function sameWid(a: Uint8Array | null, b: Uint8Array | null): boolean {
  return a !== null && b !== null && Buffer.compare(a, b) === 0;
}

/**
 * A client retries a put whose connection broke after it was sent, with the
 * same write id, possibly through another coordinator. If both attempts were
 * applied they are two siblings with the same wid: keep the one with the
 * smaller dot. The dropped dot stays in the clock, so every replica drops it
 * too when they merge. Deterministic, so replicas converge.
 */
function dedupeRetries(siblings: readonly Sibling[]): readonly Sibling[] {
  if (siblings.length < 2 || !siblings.some((s) => s.wid !== null)) return siblings;
  return siblings.filter((s, i) => s.wid === null || !siblings.some((t, j) => j < i && sameWid(s.wid, t.wid)));
}

/**
 * The counter of a coordinator's new dot. While the object holds the
 * actor's history, one past the highest it has used. When it holds none
 * (a new key, a key whose tombstone was reaped, a wiped replica), the
 * actor may have used counters for this key before that nobody remembers,
 * and a client may still hold a context naming them: reusing one would let
 * that stale context silently supersede a new write. So a fresh history
 * starts at the wall clock in microseconds (about 1.7e15, safe in a double),
 * above anything issued more than a moment ago. Dots need not be dense:
 * clock[a] = c means "has seen every dot of a up to c that exists".
 */
function nextCounter(base: VersionedObject, put: PutInput): number {
  const known = highestCounter(base, put.actor);
  const next = Math.max(known, vc.counterOf(put.context, put.actor)) + 1;
  return known > 0 ? next : Math.max(next, Math.floor(put.nowMs) * 1000);
}

/** The new object a coordinator stores for a put (or delete, value null).
 * A retry of a put this replica already holds (same write id) changes
 * nothing: the put is applied once. */
export function update(local: VersionedObject | undefined, put: PutInput): VersionedObject {
  const base = local ?? emptyObject;
  if (put.wid !== null && base.siblings.some((s) => sameWid(s.wid, put.wid))) return base;
  const survivors = put.lww ? [] : base.siblings.filter((s) => !vc.covers(put.context, s.actor, s.counter));
  const counter = nextCounter(base, put);
  const clock = vc.prune(vc.withDot(vc.merge(base.clock, put.context), put.actor, counter, put.nowMs), put.nowMs);
  const sibling: Sibling = {
    actor: put.actor, counter, tsMs: put.nowMs, value: put.value, vtype: put.vtype, lww: put.lww, wid: put.wid,
  };
  const siblings = [...survivors, sibling].sort(dotOrder);
  return { clock, siblings: collapseLww(siblings) };
}

/** Two replicas' objects combined; see the invariants above. */
export function merge(a: VersionedObject, b: VersionedObject): VersionedObject {
  if (a === b) return a;
  const kept: Sibling[] = [];
  for (const s of a.siblings) {
    const twin = findDot(b.siblings, s);
    if (twin) kept.push(pickTwin(s, twin));
    else if (!vc.covers(b.clock, s.actor, s.counter)) kept.push(s);
  }
  for (const t of b.siblings) {
    if (!findDot(a.siblings, t) && !vc.covers(a.clock, t.actor, t.counter)) kept.push(t);
  }
  kept.sort(dotOrder);
  return { clock: vc.merge(a.clock, b.clock), siblings: collapseLww(dedupeRetries(kept)) };
}

/** Dots are unique, so twins are the same write; if a bug ever made them
 * differ, pick deterministically so replicas still converge. */
function pickTwin(s: Sibling, t: Sibling): Sibling {
  if (s.tsMs !== t.tsMs) return s.tsMs > t.tsMs ? s : t;
  const sl = s.value?.length ?? -1;
  const tl = t.value?.length ?? -1;
  return sl >= tl ? s : t;
}

export function mergeAll(objects: readonly VersionedObject[]): VersionedObject | undefined {
  let out: VersionedObject | undefined;
  for (const o of objects) out = out === undefined ? o : merge(out, o);
  return out;
}

/** Same causal state: same clock counters and the same set of dots. A replica
 * whose object is the same as the merged result needs no repair. */
export function sameVersions(a: VersionedObject | undefined, b: VersionedObject | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.clock.length !== b.clock.length || a.siblings.length !== b.siblings.length) return false;
  for (let i = 0; i < a.clock.length; i++) {
    const x = a.clock[i]!;
    const y = b.clock[i]!;
    if (x[0] !== y[0] || x[1] !== y[1]) return false;
  }
  for (let i = 0; i < a.siblings.length; i++) if (!sameDot(a.siblings[i]!, b.siblings[i]!)) return false;
  return true;
}

/** The sibling a coordinator just wrote: the one with the caller's write
 * id, or else the actor's highest dot. undefined when LWW dropped it. */
export function writtenSibling(obj: VersionedObject, actor: string, wid: Uint8Array | null): Sibling | undefined {
  if (wid !== null) return obj.siblings.find((s) => sameWid(s.wid, wid));
  let best: Sibling | undefined;
  for (const s of obj.siblings) if (s.actor === actor && (!best || s.counter > best.counter)) best = s;
  return best;
}

export function liveSiblings(obj: VersionedObject): Sibling[] {
  return obj.siblings.filter((s) => s.value !== null);
}

/** Size estimate used for limits: values plus a fixed overhead per entry. */
export function objectBytes(obj: VersionedObject): number {
  let bytes = 16;
  for (const [actor] of obj.clock) bytes += actor.length + 24;
  for (const s of obj.siblings) bytes += s.actor.length + 32 + (s.value?.length ?? 0);
  return bytes;
}
