// Counter and set requests as the node receives them (TYPE_UPDATE,
// TYPE_READ): decoded, validated and normalised into the exact shapes the
// coordinator runs, a put or a get on the type's own key space.
//
// Wire bodies (client -> node):
//   TYPE_UPDATE { type: 'counter', key, op: 'incr', n }        n: int64 (msgpack int or BigInt), may be negative
//               { type: 'counter', key, op: 'reset' }
//               { type: 'set', key, op: 'add' | 'remove', member }
//               { type: 'set', key, op: 'clear' }
//               + consistency?, w?, timeoutMs?, wid?, forwarded? (as PUT)
//   TYPE_READ   { type, key } + consistency?, r?, timeoutMs? (as GET)

import { emptyClock } from '../core/clock/vclock.js';
import { int64Max, int64Min } from '../core/crdt/counter.js';
import { memberProblem } from '../core/crdt/orset.js';
import { typedKey } from '../core/crdt/typed-object.js';
import type { TypedKind, TypedOp } from '../core/crdt/typed-object.js';
import { invalid, tooLarge } from '../errors.js';
import { limits } from '../limits.js';
import { asRecord, checkKey, checkOptionalBool } from '../protocol/validate.js';
import { parseGet, parsePut } from './requests.js';
import type { GetRequest, PutRequest } from './requests.js';

export interface TypedGetRequest extends GetRequest {
  readonly kind: TypedKind;
}

function kindOf(v: unknown): TypedKind {
  if (v !== 'counter' && v !== 'set') throw invalid(`type must be "counter" or "set"; got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v}`);
  return v;
}

/** A typed key as the caller named it: a valid key, short enough for its prefix. */
function userKey(v: unknown): string {
  const key = checkKey(v);
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > limits.typedKeyBytesMax) throw tooLarge('counter or set key', bytes, limits.typedKeyBytesMax);
  return key;
}

function int64Of(v: unknown): bigint {
  if (typeof v === 'bigint') {
    if (v > int64Max || v < int64Min) throw invalid('n must fit in signed 64 bits');
    return v;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw invalid('n must be an integer (a BigInt past 2^53)');
}

function opOf(kind: TypedKind, b: Record<string, unknown>): TypedOp {
  const op = b.op;
  if (kind === 'counter') {
    if (op === 'incr') return { kind, op: 'add', delta: int64Of(b.n) };
    if (op === 'reset') return { kind, op: 'reset' };
    throw invalid('a counter op must be "incr" or "reset"');
  }
  if (op === 'add' || op === 'remove') {
    const problem = memberProblem(b.member);
    if (problem !== null) throw invalid(problem);
    return { kind, op, member: b.member as string };
  }
  if (op === 'clear') return { kind, op: 'clear' };
  throw invalid('a set op must be "add", "remove" or "clear"');
}

/** A TYPE_UPDATE as a put on the type's key space: no value, no context
 * (typed operations never carry one: merges cannot conflict). */
export function parseTypedUpdate(body: unknown, n: number): PutRequest {
  const b = asRecord(body, 'TYPE_UPDATE');
  const kind = kindOf(b.type);
  const op = opOf(kind, b);
  if (b.context !== undefined || b.value !== undefined || b.vtype !== undefined || b.lww !== undefined) {
    throw invalid('a counter or set update takes no value, vtype, context or lww');
  }
  const key = typedKey(kind, userKey(b.key));
  // The shared checks of a put (level, w, timeout, wid, forwarded).
  const base = parsePut({
    key, value: new Uint8Array(0), consistency: b.consistency, w: b.w, r: b.r, timeoutMs: b.timeoutMs, wid: b.wid,
    forwarded: checkOptionalBool('forwarded', b.forwarded),
  }, n, false);
  return { ...base, context: emptyClock, contextGiven: false, lww: false, typed: op };
}

export function parseTypedRead(body: unknown, n: number): TypedGetRequest {
  const b = asRecord(body, 'TYPE_READ');
  const kind = kindOf(b.type);
  const key = typedKey(kind, userKey(b.key));
  return { ...parseGet({ key, consistency: b.consistency, r: b.r, w: b.w, timeoutMs: b.timeoutMs }, n), kind };
}
