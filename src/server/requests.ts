// Client requests as the node receives them: decoded, validated and
// normalised into exact shapes before any state machine sees them.

import type { TypedSession } from './session-read.js';
import type { VClock } from '../core/clock/vclock.js';
import { emptyClock } from '../core/clock/vclock.js';
import { ValueType, widBytesMax, widBytesMin } from '../core/clock/object.js';
import { resolveLevel } from '../core/quorum/levels.js';
import type { Consistency, Quorum } from '../core/quorum/levels.js';
import type { TypedOp } from '../core/crdt/typed-object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { invalid } from '../errors.js';
import { clientBounds, unpack } from '../protocol/codec.js';
import { clockFromWire, clockToWire } from '../protocol/object-codec.js';
import { asRecord, checkKey, checkOptionalBool, checkOptionalCount, checkTimeout, checkValueBytes } from '../protocol/validate.js';

export interface GetRequest {
  readonly key: string;
  readonly quorum: Quorum;
  readonly timeoutMs: number | undefined;
}

export interface PutRequest {
  readonly key: string;
  /** null: a delete (tombstone). */
  readonly value: Uint8Array | null;
  readonly vtype: number;
  readonly context: VClock;
  /** False when the caller sent no context at all (not even an empty one):
   * a delete then deletes what a read sees. */
  readonly contextGiven: boolean;
  /** The MAC the caller sent with its context, or null. */
  readonly contextMac: Uint8Array | null;
  readonly quorum: Quorum;
  readonly lww: boolean | undefined;
  readonly timeoutMs: number | undefined;
  readonly forwarded: boolean;
  readonly wid: Uint8Array | null;
  /** A counter or set operation (typed-requests.ts); value is then unused. */
  readonly typed?: TypedOp;
  /** What a read before a typed remove, clear or reset saw (coordinator.ts). */
  readonly typedSeen?: VersionedObject;
  /** A session's typed update (session-read.ts, parseTypedSession): the
   * reply carries a signed version; `atLeast` is what the session saw. */
  readonly typedSession?: TypedSession;
  /** How many versions the client says this put resolves (kv.update(), a
   * default resolver writing back): recorded as a `resolver` conflict. */
  readonly resolved: number;
  /** Who wrote this put, for the conflict log: set by the coordinator
   * (the logged-in user, or checkBy of a forwarding peer's body). */
  readonly by: string | undefined;
}

/** The largest `resolved` a put may claim: a key never holds more versions
 * than a frame can carry, and the count is only recorded. */
const resolvedMax = 1_000_000;

function checkResolved(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > resolvedMax) throw invalid(`resolved must be an integer from 0 to ${resolvedMax}`);
  return v as number;
}

function quorumOf(b: Record<string, unknown>, n: number): Quorum {
  if (b.consistency !== undefined && b.consistency !== null && typeof b.consistency !== 'string') {
    throw invalid('consistency must be a string');
  }
  const level = resolveLevel({
    consistency: (b.consistency ?? undefined) as Consistency | undefined,
    r: checkOptionalCount('r', b.r),
    w: checkOptionalCount('w', b.w),
  }, n);
  if (typeof level === 'string') throw invalid(level);
  return level;
}

export function parseGet(body: unknown, n: number): GetRequest {
  const b = asRecord(body, 'GET');
  if (b.w !== undefined && b.w !== null) throw invalid('a get takes r, not w');
  return { key: checkKey(b.key), quorum: quorumOf(b, n), timeoutMs: checkTimeout(b.timeoutMs) };
}

/** A value marked msgpack must decode within the client bounds, or no
 * reader could ever get it (or the key's context) back. */
function checkMsgpackValue(value: Uint8Array): void {
  try {
    unpack(value, clientBounds);
  } catch (err) {
    throw invalid(`a value marked msgpack (vtype 2) must be msgpack a client can decode: ${(err as Error).message}`);
  }
}

function checkWid(v: unknown): Uint8Array | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Uint8Array) || v.length < widBytesMin || v.length > widBytesMax) throw invalid(`wid must be ${widBytesMin} to ${widBytesMax} bytes`);
  return v;
}

export function parsePut(body: unknown, n: number, isDelete: boolean): PutRequest {
  const b = asRecord(body, isDelete ? 'DELETE' : 'PUT');
  if (b.r !== undefined && b.r !== null) throw invalid(`a ${isDelete ? 'delete' : 'put'} takes w, not r`);
  const vtype = b.vtype ?? ValueType.Bytes;
  if (!isDelete && !(vtype === ValueType.Bytes || vtype === ValueType.Utf8 || vtype === ValueType.Msgpack)) {
    throw invalid('vtype must be 0 (bytes), 1 (utf8) or 2 (msgpack)');
  }
  const value = isDelete ? null : checkValueBytes(b.value);
  if (value !== null && vtype === ValueType.Msgpack) checkMsgpackValue(value);
  return {
    key: checkKey(b.key),
    value,
    vtype: isDelete ? ValueType.Bytes : (vtype as number),
    context: b.context === undefined || b.context === null ? emptyClock : clockFromWire(b.context),
    contextGiven: b.context !== undefined && b.context !== null,
    contextMac: b.contextMac instanceof Uint8Array ? b.contextMac : null,
    quorum: quorumOf(b, n),
    lww: checkOptionalBool('lww', b.lww),
    timeoutMs: checkTimeout(b.timeoutMs),
    forwarded: checkOptionalBool('forwarded', b.forwarded) ?? false,
    wid: checkWid(b.wid),
    resolved: checkResolved(b.resolved),
    by: undefined,
  };
}

/** The user a forwarding peer names as a put's author. Read from peers
 * only: from a client the field is ignored, malformed or not. */
export function checkBy(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9_.@-]{1,64}$/.test(v)) throw invalid('by must be a user name (1-64 characters of A-Z a-z 0-9 _ . @ -)');
  return v;
}

/**
 * The body a coordinator hands to another coordinator for this attempt of a
 * put: the client's body, marked forwarded, with the attempt's context. After
 * an attempt fenced on a stale ring wrote here, that context names the
 * attempt's dot, so the next coordinator's version supersedes it instead of
 * becoming its sibling with the same write id (merges then keep the smaller
 * dot of the two, not the one the client is told about). Peers trust
 * contexts without a MAC, so the changed context needs none.
 */
/** `user` names the put's author for the next coordinator; always set, so
 * a `by` the client put in its own body is never passed on as a peer's. */
export function forwardedBody(body: unknown, req: PutRequest, user?: string): Record<string, unknown> {
  return { ...(body as object), forwarded: true, ...(req.contextGiven ? { context: clockToWire(req.context) } : {}), by: user ?? null };
}
