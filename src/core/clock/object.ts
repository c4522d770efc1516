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
//     superseded like any value;
//   - every counter update() mints is at most limits.clockCounterMax and
//     every clock it returns has at most limits.contextEntriesMax entries,
//     so whatever a coordinator stores passes clockProblem again on load and
//     can be handed back as a context (update() throws rather than break it);
//   - a sibling's dot is NOT always covered by the object clock: prune() may
//     drop the entry of an actor whose sibling survives. Nothing relies on
//     it: nextCounter() looks at siblings too, and merge() decides from the
//     other side's clock, which is what "has seen it" means.
//
// Cost: merge() is O(n + m + clock entries) (one walk over both sibling
// lists, sorted by dot, and over both clocks, sorted by actor); update() is
// O(n + entries) plus prune's sort when the clock passes vclockEntriesMax.
// A replica merge of 100k siblings must not stall a node.

import * as vc from './vclock.js';
import type { VClock } from './vclock.js';
import { actorProblem } from './vclock.js';
import { limits } from '../../limits.js';
import { TuneKvError } from '../../errors.js';
import { isTypedObject, mergeTyped, sameTyped } from '../crdt/typed-object.js';

/** How a client encoded a value (Sibling.vtype). */
export const ValueType = { Bytes: 0, Utf8: 1, Msgpack: 2 } as const;

/** vtype is opaque to the server and one byte on the wire. */
export const vtypeMax = 255;

/** A write id is 8 to 32 bytes: enough to be unique per client, small
 * enough that it costs nothing per sibling. */
export const widBytesMin = 8;
export const widBytesMax = 32;

/**
 * The highest counter a coordinator mints. The margin above
 * limits.clockCounterMax is zero on purpose: a minted counter is stored, and
 * every stored clock is checked against clockCounterMax again when a node
 * loads it from disk, when a peer receives it and when a client sends it
 * back as a context. A counter minted above that bound would be a key the
 * node cannot load (the restart failure this bound exists to prevent).
 * Honest counters start at the wall clock in µs and reach 2^52 around the
 * year 2112; only a forged context gets near it, and then writes of that key
 * coordinated by that one node fail with INVALID_ARGUMENT (other
 * coordinators are unaffected) instead of minting a duplicate dot.
 */
export const counterMintMax: number = limits.clockCounterMax;

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

/** A write id as a string key, byte for byte (latin1 maps each byte to one
 * character), so retries can be found with a Set instead of a scan. */
function widKey(wid: Uint8Array): string {
  return Buffer.from(wid.buffer, wid.byteOffset, wid.byteLength).toString('latin1');
}

/**
 * A client retries a put whose connection broke after it was sent, with the
 * same write id, possibly through another coordinator. If both attempts were
 * applied they are two siblings with the same wid: keep the one with the
 * smaller dot (siblings are sorted by dot, so the first one met). The
 * dropped dot stays in the clock, so every replica drops it too when they
 * merge. Deterministic, so replicas converge. O(n): one Set of the ids seen.
 */
function dedupeRetries(siblings: readonly Sibling[]): readonly Sibling[] {
  if (siblings.length < 2 || !siblings.some((s) => s.wid !== null)) return siblings;
  const seen = new Set<string>();
  const out: Sibling[] = [];
  for (const s of siblings) {
    if (s.wid !== null) {
      const key = widKey(s.wid);
      if (seen.has(key)) continue;
      seen.add(key);
    }
    out.push(s);
  }
  return out;
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
 *
 * Throws INVALID_ARGUMENT past counterMintMax. Validation (clockProblem on
 * every context and stored clock) keeps every counter a node sees at or
 * below clockCounterMax, so this is belt and braces: only a context at the
 * bound itself reaches it, and minting anyway would store a clock no node
 * could load, or (at 2^53) give two writes the same dot.
 */
function nextCounter(base: VersionedObject, put: PutInput): number {
  const known = highestCounter(base, put.actor);
  const next = Math.max(known, vc.counterOf(put.context, put.actor)) + 1;
  // Never below the wall clock in µs, not only for fresh histories: a
  // context may name a counter of *another* actor up to contextFutureMaxMs
  // ahead of its clock (see contextProblem); this actor's next dots then
  // climb past such a counter within that window instead of staying under
  // it forever, where a replica that merged the context would drop them.
  const counter = Math.max(next, Math.floor(put.nowMs) * 1000);
  if (!Number.isSafeInteger(counter) || counter > counterMintMax) {
    throw new TuneKvError('INVALID_ARGUMENT',
      `a write of this key coordinated by ${put.actor} would need dot counter ${counter}, above clockCounterMax (${counterMintMax}): `
      + 'a context or stored clock carries a counter from the far future; write through another node or delete the key',
      { counter, limit: counterMintMax });
  }
  return counter;
}

/**
 * The actor a node mints under when it coordinates a write of a key it is
 * not a read-set primary of (a fallback standing in for primaries that are
 * all down). A fallback hands its copy to the owners and deletes it, so the
 * next time it stands in for the key it holds none of its earlier dots
 * there; a clock entry under its plain id would then claim them (an entry
 * (a, c) says "has seen every dot of a up to c") and every replica that
 * merged the new write would drop the earlier one, acknowledged or not.
 * A stand-in actor is used until the node next removes a copy of
 * any key, so while it is in use the node holds every dot it minted under
 * it (Riak's vnode epochs, kept per removal). `seq` must never repeat for a
 * node (the coordinator keeps it increasing, above the wall clock in µs). Falls back
 * to the plain id when the result would not be a valid node id (an id of
 * more than about 52 characters): then the old risk remains.
 */
export function standInActor(node: string, seq: number): string {
  const actor = `${node}.${Math.floor(seq).toString(36)}`;
  return actorProblem(actor) === null ? actor : node;
}

/** The node that minted under `actor`: the actor itself, or for a stand-in
 * actor (standInActor) the node id before its last '.', when that is what
 * `isMember` knows. */
function mintedByMember(actor: string, isMember: (id: string) => boolean): boolean {
  if (isMember(actor)) return true;
  const dot = actor.lastIndexOf('.');
  return dot > 0 && /^[0-9a-z]+$/.test(actor.slice(dot + 1)) && isMember(actor.slice(0, dot));
}

/** update() keeps every clock it stores a valid context (clockProblem), so
 * a client can always send back what it read. Only contexts naming actors
 * that are not real coordinators (more than a ring can hold) get here;
 * their entries, clamped to now, are pruned after vclockPruneAgeMinMs. */
function checkClockEntries(clock: VClock): void {
  if (clock.length <= limits.contextEntriesMax) return;
  throw new TuneKvError('INVALID_ARGUMENT',
    `the write would give this key a clock of ${clock.length} entries (contextEntriesMax ${limits.contextEntriesMax}); `
    + 'its context names more actors than a cluster has nodes',
    { entries: clock.length, limit: limits.contextEntriesMax });
}

/** The siblings a context has not seen. Siblings are sorted by dot, so one
 * forward walk over the sorted context answers every lookup. */
function notCoveredBy(siblings: readonly Sibling[], context: VClock): Sibling[] {
  const seen = vc.counterReader(context);
  return siblings.filter((s) => seen(s.actor) < s.counter);
}

/** sorted (by dot) with s in its place, in one pass. */
function insertByDot(sorted: readonly Sibling[], s: Sibling): Sibling[] {
  let i = 0;
  while (i < sorted.length && dotOrder(sorted[i]!, s) < 0) i++;
  if (i < sorted.length && sameDot(sorted[i]!, s)) {
    throw new TuneKvError('INTERNAL', `dot (${s.actor}, ${s.counter}) minted twice`);
  }
  return [...sorted.slice(0, i), s, ...sorted.slice(i)];
}

/** The new object a coordinator stores for a put (or delete, value null).
 * A retry of a put this replica already holds (same write id) changes
 * nothing: update returns `local` itself, and callers may test for that
 * with ===. Throws INVALID_ARGUMENT when the result would break the bounds
 * in the header (see nextCounter, checkClockEntries). */
/**
 * Why a context from a caller may not be used on this object, or null.
 * Shape and bounds were checked on the wire (clockProblem); this checks
 * what only the coordinator knows: every counter was minted by now (at most
 * contextFutureMaxMs ahead of this node's clock, the skew tolerated between
 * nodes; real counters are the minting node's wall clock in µs plus one per
 * write), and every actor is a node that could have minted it (a ring
 * member, or already in the key's clock). A context that names the far
 * future or made-up nodes would otherwise let one put make a key
 * unwritable, or make later writes of another node disappear.
 */
export function contextProblem(local: VersionedObject | undefined, context: VClock, nowMs: number,
  isMember: (id: string) => boolean): string | null {
  const horizon = (nowMs + limits.contextFutureMaxMs) * 1000;
  const known = local ? vc.counterReader(local.clock) : undefined;
  for (const [actor, counter] of context) {
    // What the key's clock already holds is no news (a node with a fast
    // clock wrote it): only counters and actors the coordinator has not seen
    // are judged.
    const held = known === undefined ? 0 : known(actor);
    if (counter > horizon && counter > held) return `context names counter ${counter} of ${actor}, which is in the future`;
    if (held === 0 && !mintedByMember(actor, isMember)) return `context names node ${actor}, which is not a member and never wrote this key`;
  }
  return null;
}

export function update(local: VersionedObject | undefined, put: PutInput): VersionedObject {
  const base = local ?? emptyObject;
  if (put.wid !== null && base.siblings.some((s) => sameWid(s.wid, put.wid))) return base;
  const context = vc.clampTimestamps(put.context, put.nowMs);
  const counter = nextCounter(base, put);
  const clock = vc.prune(vc.withDot(vc.merge(base.clock, context), put.actor, counter, put.nowMs), put.nowMs);
  checkClockEntries(clock);
  const sibling: Sibling = {
    actor: put.actor, counter, tsMs: put.nowMs, value: put.value, vtype: put.vtype, lww: put.lww, wid: put.wid,
  };
  const survivors = put.lww ? [] : notCoveredBy(base.siblings, context);
  return { clock, siblings: collapseLww(insertByDot(survivors, sibling)) };
}

/** Two replicas' objects combined; see the invariants above. */
export function merge(a: VersionedObject, b: VersionedObject): VersionedObject {
  if (a === b) return a;
  // Counters and sets join by their type, never into siblings (crdt/typed-object.ts).
  if (isTypedObject(a) || isTypedObject(b)) return mergeTyped(a, b);
  return { clock: vc.merge(a.clock, b.clock), siblings: collapseLww(dedupeRetries(mergeSiblings(a, b))) };
}

/**
 * The siblings merge() keeps, in dot order: both lists are sorted by dot,
 * so one two-pointer walk pairs twins and meets every actor in order, which
 * lets one forward reader per clock answer "has the other side seen this
 * dot" (a sibling one side lacks survives unless the other side's clock
 * covers it: then it was superseded there). O(n + m + clock entries).
 */
function mergeSiblings(a: VersionedObject, b: VersionedObject): Sibling[] {
  const seenByA = vc.counterReader(a.clock);
  const seenByB = vc.counterReader(b.clock);
  const xs = a.siblings;
  const ys = b.siblings;
  const kept: Sibling[] = [];
  let i = 0;
  let j = 0;
  while (i < xs.length && j < ys.length) {
    const s = xs[i]!;
    const t = ys[j]!;
    const order = dotOrder(s, t);
    if (order === 0) {
      kept.push(pickTwin(s, t));
      i++; j++;
    } else if (order < 0) {
      if (seenByB(s.actor) < s.counter) kept.push(s);
      i++;
    } else {
      if (seenByA(t.actor) < t.counter) kept.push(t);
      j++;
    }
  }
  for (; i < xs.length; i++) if (seenByB(xs[i]!.actor) < xs[i]!.counter) kept.push(xs[i]!);
  for (; j < ys.length; j++) if (seenByA(ys[j]!.actor) < ys[j]!.counter) kept.push(ys[j]!);
  return kept;
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
  // A typed object's dot is a digest of its state; the bytes decide exactly.
  if (isTypedObject(a) || isTypedObject(b)) return sameTyped(a, b);
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
