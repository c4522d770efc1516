// Counters and sets, merged on the replicas: kv.counter(key) and
// kv.set(key). A handle is a name, not a connection: it holds no state and
// costs nothing to make; every call is one request, routed like get/put to
// a replica of the typed key, with the same options (consistency, r/w,
// timeoutMs, host) and the same replica report in its result.
//
// Each type has its own key space: kv.counter('x'), kv.set('x') and the
// plain key 'x' are three different things (core/crdt/typed-object.ts).
// Every update carries a fresh write id, so a retry after a broken
// connection is applied once by any replica that holds the first attempt;
// a counter update that may have been applied is retried on the same node
// only (client.ts, retrySameNode; README: Counters and sets).

import { int64Max, int64Min } from '../core/crdt/counter.js';
import { memberProblem } from '../core/crdt/orset.js';
import { typedKey } from '../core/crdt/typed-object.js';
import type { TypedKind } from '../core/crdt/typed-object.js';
import type { Consistency } from '../core/quorum/levels.js';
import { TuneKvError, invalid, tooLarge } from '../errors.js';
import { limits } from '../limits.js';
import { MsgType } from '../protocol/messages.js';
import type { TypedReplyBody } from '../protocol/messages.js';
import { checkKey, checkTimeout } from '../protocol/validate.js';
import { checkSignal } from './abort.js';
import type { ReplicaInfo, RequestOptions } from './client.js';

export interface TypedReadOptions extends RequestOptions {
  readonly r?: number;
}
export interface TypedWriteOptions extends RequestOptions {
  readonly w?: number;
}

/** What every counter and set call reports, as get/put do. */
export interface TypedResultBase {
  /** The key existed on the replicas that answered (reads); true for updates. */
  readonly found: boolean;
  readonly level: string;
  readonly r?: number;
  readonly w?: number;
  readonly coordinator: string;
  readonly replicas: ReplicaInfo[];
  /** Session reads: replicas asked because the first answers were older
   * than what the session saw (see session.ts). */
  readonly lookedFurther?: number;
}

/** What a session adds to a handle's requests (session.ts): the fields
 * that hold the request to what the session saw of the stored key, and
 * the record of each reply. */
export interface TypedSessionHook {
  fields(storedKey: string): Record<string, unknown>;
  observe(storedKey: string, reply: TypedReplyBody): void;
}

export interface CounterResult extends TypedResultBase {
  /** Exact at any size. After an update: the value on the coordinator right
   * after it (this operation plus what that replica had merged). */
  readonly value: bigint;
}

export interface SetMembersResult extends TypedResultBase {
  /** Sorted (by UTF-16 code unit, as JavaScript sorts strings). */
  readonly members: string[];
}

export interface SetUpdateResult extends TypedResultBase {
  /** Members on the coordinator right after the operation. */
  readonly size: number;
  /** add/remove: the coordinator's copy held the member before. A remove
   * answering false observed no add of it and removed nothing (an add made
   * elsewhere that has not reached that replica yet survives it). */
  readonly held?: boolean;
}

/** What a handle needs of the client: send one routed request, and mint a write id. */
export interface TypedChannel {
  send(type: number, body: Record<string, unknown>, routeKey: string, timeoutMs: number, host: string | undefined, signal: AbortSignal | undefined): Promise<unknown>;
  nextWid(): Uint8Array;
  readonly consistency: Consistency;
  readonly timeoutMs: number;
}

function checkUserKey(key: string): string {
  checkKey(key);
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > limits.typedKeyBytesMax) throw tooLarge('counter or set key', bytes, limits.typedKeyBytesMax);
  return key;
}

function checkCount(name: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) throw invalid(`${name} (${String(v)}) must be a positive integer`);
}

function toBigInt(n: number | bigint): bigint {
  if (typeof n === 'bigint') {
    if (n > int64Max || n < int64Min) throw invalid('n must fit in signed 64 bits');
    return n;
  }
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw invalid(`n (${String(n)}) must be an integer (pass a BigInt past 2^53)`);
  return BigInt(n);
}

function resultBase(reply: TypedReplyBody): TypedResultBase {
  const base: TypedResultBase = { found: reply.found, level: reply.level, coordinator: reply.coordinator, replicas: reply.replicas as ReplicaInfo[] };
  const out = typeof reply.lookedFurther === 'number' ? { ...base, lookedFurther: reply.lookedFurther } : base;
  return reply.r !== undefined ? { ...out, r: reply.r } : reply.w !== undefined ? { ...out, w: reply.w } : out;
}

function valueOf(reply: TypedReplyBody): bigint {
  if (typeof reply.value !== 'string' || !/^-?[0-9]+$/.test(reply.value)) throw new TuneKvError('PROTOCOL_ERROR', 'counter reply without a decimal value');
  return BigInt(reply.value);
}

abstract class TypedHandle {
  // The key is checked on each call, so a bad key rejects like any other
  // request error instead of throwing where the handle is made.
  constructor(protected readonly ch: TypedChannel, readonly key: string, private readonly kind: TypedKind,
    private readonly session?: TypedSessionHook) {}

  /** Sends with the session's fields, and records the reply in the session. */
  private async sendTyped(type: number, body: Record<string, unknown>, timeoutMs: number, options: TypedReadOptions | TypedWriteOptions): Promise<TypedReplyBody> {
    const signal = checkSignal(options.signal);
    const stored = typedKey(this.kind, this.key);
    if (this.session !== undefined) Object.assign(body, this.session.fields(stored));
    const reply = await this.ch.send(type, body, stored, timeoutMs, options.host, signal) as TypedReplyBody;
    this.session?.observe(stored, reply);
    return reply;
  }

  protected async read(options: TypedReadOptions): Promise<TypedReplyBody> {
    checkUserKey(this.key);
    checkCount('r', options.r);
    const timeoutMs = checkTimeout(options.timeoutMs) ?? this.ch.timeoutMs;
    const body: Record<string, unknown> = { type: this.kind, key: this.key, timeoutMs };
    // As get(): an explicit r without a level is the level.
    if (options.r === undefined || options.consistency !== undefined) body.consistency = options.consistency ?? this.ch.consistency;
    if (options.r !== undefined) body.r = options.r;
    return await this.sendTyped(MsgType.TYPE_READ, body, timeoutMs, options);
  }

  protected async update(op: Record<string, unknown>, options: TypedWriteOptions): Promise<TypedReplyBody> {
    checkUserKey(this.key);
    checkCount('w', options.w);
    const timeoutMs = checkTimeout(options.timeoutMs) ?? this.ch.timeoutMs;
    const body: Record<string, unknown> = { type: this.kind, key: this.key, ...op, timeoutMs, wid: this.ch.nextWid() };
    if (options.w === undefined || options.consistency !== undefined) body.consistency = options.consistency ?? this.ch.consistency;
    if (options.w !== undefined) body.w = options.w;
    return await this.sendTyped(MsgType.TYPE_UPDATE, body, timeoutMs, options);
  }
}

/** kv.counter(key): a PN-counter, exact at any size (BigInt). */
export class CounterHandle extends TypedHandle {
  constructor(ch: TypedChannel, key: string, session?: TypedSessionHook) {
    super(ch, key, 'counter', session);
  }

  /** Adds n (default 1; negative subtracts). Resolves with the value on the
   * coordinator right after. */
  async increment(n: number | bigint = 1, options: TypedWriteOptions = {}): Promise<CounterResult> {
    const reply = await this.update({ op: 'incr', n: toBigInt(n) }, options);
    return { ...resultBase(reply), value: valueOf(reply) };
  }

  async decrement(n: number | bigint = 1, options: TypedWriteOptions = {}): Promise<CounterResult> {
    return this.increment(-toBigInt(n), options);
  }

  async value(options: TypedReadOptions = {}): Promise<CounterResult> {
    const reply = await this.read(options);
    return { ...resultBase(reply), value: valueOf(reply) };
  }

  /** Subtracts the value the coordinator holds (an observed reset):
   * increments it has not seen yet survive. */
  async reset(options: TypedWriteOptions = {}): Promise<CounterResult> {
    const reply = await this.update({ op: 'reset' }, options);
    return { ...resultBase(reply), value: valueOf(reply) };
  }
}

/** kv.set(key): an add-wins observed-remove set of strings. */
export class SetHandle extends TypedHandle {
  constructor(ch: TypedChannel, key: string, session?: TypedSessionHook) {
    super(ch, key, 'set', session);
  }

  private static member(m: unknown): string {
    const problem = memberProblem(m);
    if (problem !== null) throw invalid(problem);
    return m as string;
  }

  async add(member: string, options: TypedWriteOptions = {}): Promise<SetUpdateResult> {
    const reply = await this.update({ op: 'add', member: SetHandle.member(member) }, options);
    return { ...resultBase(reply), size: reply.size ?? 0, held: reply.held === true };
  }

  /** Removes the adds of `member` the coordinator has seen; an add it has
   * not seen yet (concurrent, elsewhere) wins. */
  async remove(member: string, options: TypedWriteOptions = {}): Promise<SetUpdateResult> {
    const reply = await this.update({ op: 'remove', member: SetHandle.member(member) }, options);
    return { ...resultBase(reply), size: reply.size ?? 0, held: reply.held === true };
  }

  async members(options: TypedReadOptions = {}): Promise<SetMembersResult> {
    const reply = await this.read(options);
    if (!Array.isArray(reply.members) || !reply.members.every((m) => typeof m === 'string')) {
      throw new TuneKvError('PROTOCOL_ERROR', 'set reply without members');
    }
    return { ...resultBase(reply), members: reply.members };
  }

  /** Removes every member the coordinator has seen (adds it has not seen survive). */
  async delete(options: TypedWriteOptions = {}): Promise<SetUpdateResult> {
    const reply = await this.update({ op: 'clear' }, options);
    return { ...resultBase(reply), size: reply.size ?? 0 };
  }
}
