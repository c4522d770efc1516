// Counters and sets stored as ordinary VersionedObjects, so everything that
// moves objects (replica writes, read repair, hinted handoff, anti-entropy,
// transfers, the reaper) carries them unchanged.
//
// A typed object has an empty clock and exactly one sibling:
//   actor typedActor, counter digest(state), value = msgpack
//   [1, state, write ids], vtype counterVtype or setVtype.
// The sibling's dot is a 52-bit digest of the encoded state, so the
// anti-entropy element hash (it hashes dots) differs when states differ,
// and sameVersions (which compares the bytes for typed objects) is exact.
//
// merge() in clock/object.ts hands any pair with a typed side to
// mergeTyped(): the type's join, never siblings. A typed object never meets
// a plain one (typed keys live in their own key space: typedKey()), but a
// forged peer could send one; then the typed side wins, and between two
// kinds the higher vtype wins, so merge stays commutative and associative.
//
// Encoding is canonical (state and write ids are sorted), so equal states
// are equal bytes on every replica.

import type { Sibling, VersionedObject } from '../clock/object.js';
import { widBytesMax, widBytesMin } from '../clock/object.js';
import { TuneKvError } from '../../errors.js';
import { limits } from '../../limits.js';
import { pack, peerBounds, unpack } from '../../protocol/codec.js';
import { addToCounter, counterFromWire, counterToWire, counterValue, emptyCounter, joinCounters, resetCounter } from './counter.js';
import type { CounterState } from './counter.js';
import { addMember, clearSet, emptySet, hasMember, joinSets, removeMember, setFromWire, setMembers, setToWire } from './orset.js';
import type { OrSet } from './orset.js';
import { addWriteId, hasWriteId, joinWriteIds, noWriteIds, writeIdsProblem } from './write-ids.js';
import type { WriteIds } from './write-ids.js';

/** Sibling vtypes no client may send (requests.ts accepts 0-2 only). */
export const counterVtype = 250;
export const setVtype = 251;
export const typedActor = 'typed';

export type TypedKind = 'counter' | 'set';

/**
 * The storage and ring key of a typed key. Plain keys may not start with
 * NUL (checkPlainKey), so no plain key is ever one of these, and a counter
 * `x`, a set `x` and a plain key `x` are three different keys (as Cassandra
 * keeps counters in tables of their own). The prefix is part of the hashed
 * key, so typed keys spread over the ring like any other.
 */
export function typedKey(kind: TypedKind, key: string): string {
  return `${kind === 'counter' ? typedCounterPrefix : typedSetPrefix}${key}`;
}
export const typedCounterPrefix = '\u0000c:';
export const typedSetPrefix = '\u0000s:';
export const typedPrefixBytes = 3;

export type TypedState =
  | { readonly kind: 'counter'; readonly state: CounterState; readonly wids: WriteIds }
  | { readonly kind: 'set'; readonly state: OrSet; readonly wids: WriteIds };

export type TypedOp =
  | { readonly kind: 'counter'; readonly op: 'add'; readonly delta: bigint }
  | { readonly kind: 'counter'; readonly op: 'reset' }
  | { readonly kind: 'set'; readonly op: 'add' | 'remove'; readonly member: string }
  | { readonly kind: 'set'; readonly op: 'clear' };

export function isTypedVtype(vtype: number): boolean {
  return vtype === counterVtype || vtype === setVtype;
}

export function isTypedObject(obj: VersionedObject): boolean {
  return obj.siblings.length === 1 && isTypedVtype(obj.siblings[0]!.vtype);
}

/** 'counter' or 'set' for a typed object, else undefined. */
export function typedKindOf(obj: VersionedObject): TypedKind | undefined {
  if (!isTypedObject(obj)) return undefined;
  return obj.siblings[0]!.vtype === counterVtype ? 'counter' : 'set';
}

function emptyState(kind: TypedKind): TypedState {
  return kind === 'counter' ? { kind, state: emptyCounter, wids: noWriteIds } : { kind, state: emptySet, wids: noWriteIds };
}

/** A 52-bit digest of the encoded state, at least 1 (a valid dot counter). */
function digest(bytes: Uint8Array): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return ((h2 >>> 0) & 0xfffff) * 2 ** 32 + (h1 >>> 0) + 1;
}

/**
 * States already decoded and validated, by the bytes they came from (or
 * were encoded to). A replica write otherwise decodes the same bytes several
 * times (validation on arrival, the join, the coordinator's next
 * operation); values are never changed in place, and a WeakMap lets the
 * entry go with the bytes. Keyed by the Uint8Array object, not its content.
 */
const validStates = new WeakMap<Uint8Array, { readonly state: TypedState; readonly digest: number }>();

export function encodeTyped(t: TypedState, tsMs: number): VersionedObject {
  const state = t.kind === 'counter' ? counterToWire(t.state) : setToWire(t.state);
  const value = pack([1, state, t.wids.map(([w, ts]) => [w, ts])]);
  const d = digest(value);
  validStates.set(value, { state: t, digest: d });
  const sibling: Sibling = {
    actor: typedActor, counter: d, tsMs, value, vtype: t.kind === 'counter' ? counterVtype : setVtype, lww: false, wid: null,
  };
  return { clock: [], siblings: [sibling] };
}

/** The state a typed object holds. Throws INVALID_ARGUMENT for one that is
 * not well formed (objectFromWire calls typedObjectProblem first, so a
 * stored or received object always decodes). */
export function decodeTyped(obj: VersionedObject): TypedState {
  const problem = typedObjectProblem(obj);
  if (problem !== null) throw new TuneKvError('INVALID_ARGUMENT', `typed object is malformed: ${problem}`);
  return validStates.get(obj.siblings[0]!.value!)!.state;
}

function decoded(s: Sibling): TypedState | string {
  if (s.value === null) return 'a typed object has no value';
  let raw: unknown;
  try {
    raw = unpack(s.value, peerBounds);
  } catch (err) {
    return `its value is not msgpack within bounds: ${(err as Error).message}`;
  }
  if (!Array.isArray(raw) || raw.length !== 3 || raw[0] !== 1) return 'its value is not [1, state, write ids]';
  const w = writeIdsProblem(raw[2], widBytesMin, widBytesMax);
  if (w !== null) return w;
  const wids = raw[2] as WriteIds;
  try {
    return s.vtype === counterVtype ? { kind: 'counter', state: counterFromWire(raw[1]), wids } : { kind: 'set', state: setFromWire(raw[1]), wids };
  } catch (err) {
    return (err as Error).message;
  }
}

/** Why an object carrying a typed sibling is not one of ours, or null. */
export function typedObjectProblem(obj: VersionedObject): string | null {
  if (!obj.siblings.some((s) => isTypedVtype(s.vtype))) return null;
  if (obj.siblings.length !== 1 || obj.clock.length !== 0) return 'a typed object has an empty clock and one sibling';
  const s = obj.siblings[0]!;
  if (s.actor !== typedActor || s.lww || s.wid !== null) return 'a typed sibling has actor "typed", no lww and no write id';
  const known = validStates.get(s.value!);
  if (known !== undefined && known.state.kind === (s.vtype === counterVtype ? 'counter' : 'set')) {
    return s.counter === known.digest ? null : 'a typed sibling\'s dot must be the digest of its value';
  }
  const d = decoded(s);
  if (typeof d === 'string') return d;
  const dig = digest(s.value!);
  if (s.counter !== dig) return 'a typed sibling\'s dot must be the digest of its value';
  validStates.set(s.value!, { state: d, digest: dig });
  return null;
}

function join(a: TypedState, b: TypedState): TypedState {
  const wids = joinWriteIds(a.wids, b.wids);
  if (a.kind === 'counter' && b.kind === 'counter') return { kind: 'counter', state: joinCounters(a.state, b.state), wids };
  if (a.kind === 'set' && b.kind === 'set') return { kind: 'set', state: joinSets(a.state, b.state), wids };
  throw new TuneKvError('INTERNAL', 'join of two different types');
}

/** merge() for a pair with a typed side; see the header. */
export function mergeTyped(a: VersionedObject, b: VersionedObject): VersionedObject {
  const ta = isTypedObject(a);
  const tb = isTypedObject(b);
  if (!ta) return b;
  if (!tb) return a;
  const va = a.siblings[0]!;
  const vb = b.siblings[0]!;
  if (va.vtype !== vb.vtype) return va.vtype > vb.vtype ? a : b;
  if (sameTyped(a, b)) return a;
  const joined = encodeTyped(join(decodeTyped(a), decodeTyped(b)), Math.max(va.tsMs, vb.tsMs));
  if (sameTyped(joined, a)) return a;
  if (sameTyped(joined, b)) return b;
  return joined;
}

/** Same state, byte for byte (the encoding is canonical). */
export function sameTyped(a: VersionedObject, b: VersionedObject): boolean {
  const x = a.siblings[0]?.value;
  const y = b.siblings[0]?.value;
  return a.siblings.length === 1 && b.siblings.length === 1 && x != null && y != null
    && a.siblings[0]!.vtype === b.siblings[0]!.vtype && Buffer.compare(x, y) === 0;
}

export interface TypedInput {
  readonly op: TypedOp;
  /** The coordinator's actor (its id, or its stand-in as a fallback). */
  readonly actor: string;
  readonly nowMs: number;
  readonly wid: Uint8Array | null;
}

export type TypedDecision =
  | { readonly kind: 'unchanged'; readonly object: VersionedObject; readonly held?: boolean }
  | { readonly kind: 'write'; readonly object: VersionedObject; readonly held?: boolean };

/**
 * What a coordinator stores for a typed operation, from its own copy. A
 * retry whose write id the copy holds, and an operation that changes
 * nothing (removing an absent member), are 'unchanged'. Throws
 * COUNTER_OVERFLOW, SET_MEMBERS_LIMIT, TOO_LARGE (objectBytesMax).
 */
export function decideTyped(current: VersionedObject | undefined, input: TypedInput): TypedDecision {
  const kind = input.op.kind;
  const cur = current === undefined ? emptyState(kind) : decodeTyped(current);
  if (cur.kind !== kind) throw new TuneKvError('INTERNAL', `key holds a ${cur.kind}, not a ${kind}`);
  // A no-op on a key this copy lacks stores the empty state, so the
  // coordinator always has an object to replicate and reply from.
  const held = heldBefore(cur, input.op);
  if (input.wid !== null && hasWriteId(cur.wids, input.wid)) return { ...unchanged(current, kind, input.nowMs), ...held };
  const next = applyOp(cur, input);
  if (next === cur) return { ...unchanged(current, kind, input.nowMs), ...held };
  const object = encodeTyped({ ...next, wids: addWriteId(next.wids, input.wid, input.nowMs) } as TypedState, input.nowMs);
  const size = object.siblings[0]!.value!.length;
  if (size > limits.objectBytesMax) {
    throw new TuneKvError('TOO_LARGE', `the ${kind} would be ${size} bytes (objectBytesMax ${limits.objectBytesMax})`, { size, limit: limits.objectBytesMax });
  }
  return { kind: 'write', object, ...held };
}

/** For a set add or remove: did the coordinator's copy hold the member
 * before (a remove that says false removed nothing: it observed no add). */
function heldBefore(cur: TypedState, op: TypedOp): { held?: boolean } {
  if (cur.kind !== 'set' || op.kind !== 'set' || op.op === 'clear') return {};
  return { held: hasMember(cur.state, op.member) };
}

function unchanged(current: VersionedObject | undefined, kind: TypedKind, nowMs: number): TypedDecision {
  return current === undefined ? { kind: 'write', object: encodeTyped(emptyState(kind), nowMs) } : { kind: 'unchanged', object: current };
}

function applyOp(cur: TypedState, input: TypedInput): TypedState {
  const op = input.op;
  if (cur.kind === 'counter' && op.kind === 'counter') {
    const state = op.op === 'add' ? addToCounter(cur.state, input.actor, op.delta) : resetCounter(cur.state, input.actor);
    return state === cur.state ? cur : { ...cur, state };
  }
  if (cur.kind === 'set' && op.kind === 'set') {
    const state = op.op === 'add' ? addMember(cur.state, op.member, input.actor, input.nowMs)
      : op.op === 'remove' ? removeMember(cur.state, op.member, input.actor, input.nowMs) : clearSet(cur.state, input.actor, input.nowMs);
    return state === cur.state ? cur : { ...cur, state };
  }
  throw new TuneKvError('INTERNAL', 'operation of another type');
}

/**
 * Whether the coordinator reads W replicas before applying `op`. A set
 * remove or clear, and a counter reset, take away what their coordinator
 * observed; with only its own copy, a remove through a replica that missed
 * an add acknowledged at W = 2 would remove nothing (to the caller, a lost
 * removal). Reading W replicas first makes the remove observe every add
 * acknowledged with W' where W + W' > N, as a delete without a context
 * reads first. Adds and increments need no read: they only add. At W = 1
 * (`eventual`) the remove observes the coordinator's copy alone, the cost
 * of the level.
 */
export function typedNeedsRead(op: TypedOp, w: number): boolean {
  return w >= 2 && (op.op === 'remove' || op.op === 'clear' || op.op === 'reset');
}

/** What a reader sees: a counter's value, a set's members. */
export function counterOf(obj: VersionedObject | undefined): bigint {
  if (obj === undefined) return 0n;
  const t = decodeTyped(obj);
  return t.kind === 'counter' ? counterValue(t.state) : 0n;
}

export function membersOf(obj: VersionedObject | undefined): string[] {
  if (obj === undefined) return [];
  const t = decodeTyped(obj);
  return t.kind === 'set' ? setMembers(t.state) : [];
}
