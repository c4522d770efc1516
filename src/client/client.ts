// The client library: connect({ hosts }) and get / put / delete / status.
//
// One pipelined connection per node (many requests in flight on each), opened
// on first use. Each request goes straight to a replica of its key when the
// client knows the ring (it fetches it at connect and again whenever a node
// reports a newer version), so the node that receives it can coordinate
// without forwarding. A node that cannot be reached is skipped for
// hostRetryMs and the request moves to the next candidate. A request whose
// connection breaks after it was sent is retried on the next candidate too:
// reads are idempotent, and every put or delete carries a random write id
// that replicas use to apply it once even if both attempts arrive.
//
// The nodes it knows are the members of its ring, then the hosts it was
// given. It refreshes the ring from a member every ringRefreshMs, and at
// once when a node refuses the connection or says it was removed; a
// request that no known node could take asks any node still answering for
// its ring and tries the members it names. A node that leaves the ring is
// dropped (its connection closed), so a client keeps working after every
// host it was created with has left the cluster.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ConnectionOptions } from 'node:tls';
import { ValueType } from '../core/clock/object.js';
import { isConsistency } from '../core/quorum/levels.js';
import type { Consistency } from '../core/quorum/levels.js';
import { partitionOfKey, preferenceListForKey, ringProblem } from '../core/ring/ring.js';
import type { Ring } from '../core/ring/ring.js';
import { TuneKvError, invalid } from '../errors.js';
import { RpcConnection } from '../io/connection.js';
import type { DialAuth } from '../io/connection.js';
import { limits } from '../limits.js';
import { clusterKey, decodeSecretText, secretBytesMin } from '../security/secret.js';
import { dialTarget, normalizeHost } from './hosts.js';
import { abortedError, checkSignal, sleep, withSignal } from './abort.js';
import { retryDelayMs, retryPolicy } from './retry.js';
import { shown } from './shown.js';
import type { RetryOptions, RetryPolicy } from './retry.js';
import { checkManyInput, pipelined } from './many.js';
import type { GetManyOptions, ManyResult, PutEntry, PutManyOptions } from './many.js';
import type { NodeStatus } from './status.js';
import { pack, unpack } from '../protocol/codec.js';
import { MsgType } from '../protocol/messages.js';
import type { GetReplyBody, PutReplyBody, WireClock } from '../protocol/messages.js';
import { clockFromWire } from '../protocol/object-codec.js';
import { checkKey, checkTimeout, checkValueBytes } from '../protocol/validate.js';
import { CounterHandle, SetHandle } from './types.js';
import type { TypedSessionHook } from './types.js';
import type { TypedChannel } from './types.js';
import { Session } from './session.js';
import { conflictsBody, parseConflictsReply } from './conflicts.js';
import type { ConflictsOptions, ConflictsPage } from './conflicts.js';
import { resolveRead, update } from './update.js';
import type { Resolver, UpdateOptions, UpdateResult } from './update.js';

const agent = 'tunekv-js/0.1.0';

export interface ConnectOptions {
  /** Nodes to bootstrap from: `host:port`, `host` (port 7001) or
   * `[v6addr]:port`; the rest are learned from the ring. */
  readonly hosts: readonly string[];
  /** Walks over the nodes a failing request makes, and the back-off
   * between them (src/client/retry.ts). Default: one walk, no wait. */
  readonly retry?: RetryOptions;
  /** Per-request deadline, ms. Default 5000. The node enforces it; the
   * client waits timeoutGraceMs longer (a fifth, 200 ms to 1 s) so the
   * node's TIMEOUT (with its facts) arrives first. */
  readonly timeoutMs?: number;
  /** Connect timeout per node, ms. Default 2000. */
  readonly connectTimeoutMs?: number;
  /** Level for requests that do not name one. Default 'quorum'. */
  readonly consistency?: Consistency;
  /** Send each request to a replica of its key. Default true. */
  readonly route?: boolean;
  /** How long an unreachable node is skipped, ms. Default 1000. */
  readonly hostRetryMs?: number;
  /** How often the ring (the member list) is refreshed from a member, ms.
   * Default 10000; 0 refreshes only when a node is unreachable or says
   * its ring is newer. */
  readonly ringRefreshMs?: number;
  /** Log in as this user (roles read, write, admin; see the README's
   * Security section). The password never crosses the wire: the client
   * proves it with a SCRAM exchange over scrypt, and checks the node's
   * proof in return. Without a user, a node in protected mode lets
   * loopback clients read and write. */
  readonly user?: string;
  readonly password?: string;
  /** The cluster secret, for admin tools: proving it grants every role.
   * Prefer users for applications. Either the text of cluster.secret (as
   * read from the file; surrounding whitespace ignored) or the decoded
   * bytes readSecretFile() returns. */
  readonly secret?: Uint8Array | string;
  /** TLS to the nodes: true for the system CAs, or node:tls options (`ca`
   * to trust a private CA, `cert`/`key` for a client certificate). */
  readonly tls?: boolean | ConnectionOptions;
  /** A default resolver (src/client/update.ts): a read that finds more
   * than one version returns `values: [resolve(values)]` (or, if it returns
   * `deleted`, found false) and keeps the siblings in `unresolved`. */
  readonly resolve?: Resolver;
  /** With `resolve`: also write the resolution back with the read's context
   * (as a write, needing the write role). Default false: reads stay reads. */
  readonly writeBack?: boolean;
}

export interface RequestOptions {
  readonly consistency?: Consistency;
  readonly timeoutMs?: number;
  /** Send to this node (host:port) instead of routing. */
  readonly host?: string;
  /** Aborting it rejects the call at once with ABORTED (see abort.ts). */
  readonly signal?: AbortSignal;
}

/** Options of the calls that take only a node and a signal (status,
 * cluster changes). */
export interface NodeCallOptions {
  /** The node to ask (host:port); default the first that answers. */
  readonly host?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** What the client tells its listeners (kv.on(...)). */
export type ClientEvents = {
  /** A node the client used could not be reached (a refused or broken
   * connection, found by a request, a ring refresh or a check after its
   * connection closed). Emitted once per outage; the client then checks
   * it every hostRetryMs. */
  hostDown: [host: string, error: TuneKvError];
  /** A node reported down answers again. */
  hostUp: [host: string];
};

export interface GetOptions extends RequestOptions {
  readonly r?: number;
  /** Contexts (from earlier replies) the result must be at least as new
   * as: the node asks more replicas when the first are behind, and fails
   * with SESSION_UNAVAILABLE rather than return older data. Sessions
   * (kv.session()) set this; see src/client/session.ts. */
  readonly atLeast?: readonly string[];
  /** With atLeast: the last state seen had no live value, so "not found"
   * counts as current (a reaped tombstone reads as nothing). */
  readonly atLeastDeleted?: boolean;
  /** false: return the siblings as they are, whatever connect({ resolve }) says. */
  readonly resolve?: false;
}

export interface PutOptions extends RequestOptions {
  /** The context of a read: the put supersedes exactly what that read saw. */
  readonly context?: string;
  readonly w?: number;
  /** Last-writer-wins: discard concurrent versions with earlier timestamps. */
  readonly lww?: boolean;
  /** How many versions this put resolves (the siblings of the read whose
   * context it carries): the node records it in its conflict log as a
   * `resolver` conflict. update() and the default resolver set it. */
  readonly resolved?: number;
}

export type DeleteOptions = Omit<PutOptions, 'lww'>;

export interface ReplicaInfo {
  readonly node: string;
  readonly role: 'primary' | 'fallback' | 'pending';
  readonly outcome: 'ok' | 'notfound' | 'failed' | 'pending' | 'notasked' | 'notsent';
  /** Its copy differed from the merged result (reads). */
  readonly stale?: boolean;
  readonly hintFor?: string;
  /** Session reads: its copy was older than what the session had seen. */
  readonly behind?: boolean;
}

/** T: what the caller stored under the key (nothing checks it: a value is
 * decoded as a string, bytes or msgpack, whatever T says). */
export interface GetResult<T = unknown> {
  readonly found: boolean;
  /** One per live sibling: string, Uint8Array, or a decoded msgpack value. */
  readonly values: T[];
  /** Deletes concurrent with the values (a tombstone sibling). */
  readonly tombstones: number;
  /** Opaque causal context: pass it to the next put or delete. */
  readonly context: string;
  /** Concurrent versions the merged result holds (values + tombstones). */
  readonly siblings: number;
  readonly level: string;
  readonly r: number;
  readonly coordinator: string;
  readonly replicas: ReplicaInfo[];
  /** Reads with atLeast (sessions): replicas asked beyond the first
   * because the first answers were older than the session. */
  readonly lookedFurther?: number;
  /** Set when the client's default resolver merged this read's siblings:
   * what the replicas returned (`values` holds the resolution). */
  readonly unresolved?: { readonly values: T[]; readonly tombstones: number };
  /** With writeBack: the resolution was written (context is the write's). */
  readonly writtenBack?: boolean;
}

/** The reply to a put (and a delete: DeleteResult). */
export interface PutResult {
  readonly context: string;
  /** Versions the key holds after this write, on the coordinator. */
  readonly siblings: number;
  readonly level: string;
  readonly w: number;
  readonly coordinator: string;
  readonly replicas: ReplicaInfo[];
}

/** A delete's reply: the tombstone's context, as a put's. */
export type DeleteResult = PutResult;

/** Requests that change nothing: abandoning one cannot leave a write behind. */
const readTypes: ReadonlySet<number> = new Set([MsgType.GET, MsgType.TYPE_READ, MsgType.STATUS, MsgType.RING_GET, MsgType.CLUSTER_PLAN, MsgType.CONFLICTS]);

/** What send() knows of a request while it runs, for an abort. */
interface SendState {
  /** Some earlier attempt may have been applied. */
  maybeApplied: boolean;
  /** The attempt in flight. */
  active: { conn: RpcConnection; id: number } | undefined;
  readonly signal: AbortSignal | undefined;
}

/** The opaque context string: the clock and the MAC the node signed it
 * with (a node refuses a non-empty context without its MAC). */
export function encodeContext(clock: WireClock, mac?: Uint8Array): string {
  return pack(mac === undefined ? clock : [clock, mac]).toString('base64url');
}

/** The clock and MAC of a context string (the MAC is null in a context
 * made without one). */
export function decodeSignedContext(context: string): { clock: WireClock; mac: Uint8Array | null } {
  if (typeof context !== 'string' || !/^[A-Za-z0-9_-]*$/.test(context)) throw invalid('context must be the string a read returned');
  let value: unknown;
  try {
    value = unpack(Buffer.from(context, 'base64url'));
  } catch {
    throw invalid('context is not a tunekv causal context');
  }
  // A signed context is [clock, mac]; a clock's second element (if any) is
  // an entry array, never bytes.
  if (Array.isArray(value) && value.length === 2 && value[1] instanceof Uint8Array) {
    return { clock: clockFromWire(value[0]) as WireClock, mac: value[1] };
  }
  return { clock: clockFromWire(value) as WireClock, mac: null };
}

export function decodeContext(context: string): WireClock {
  return decodeSignedContext(context).clock;
}

export function encodeValue(value: unknown): { bytes: Uint8Array; vtype: number } {
  if (typeof value === 'string') return { bytes: Buffer.from(value, 'utf8'), vtype: ValueType.Utf8 };
  if (value instanceof Uint8Array) return { bytes: value, vtype: ValueType.Bytes };
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    throw invalid(`value must be a string, bytes or a msgpack-encodable value; got ${typeof value}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = pack(value);
  } catch (err) {
    // A cyclic object overflows the encoder's stack (a RangeError with no
    // code, red team): say what is wrong with the value instead.
    throw invalid(`value cannot be encoded as msgpack (a cycle, or nesting too deep?): ${(err as Error).message}`);
  }
  // Store only what a reader can decode: replies are decoded with the
  // wire bounds (no msgpack extensions such as Date, bounded depth), so a
  // value that would not come back is refused here instead.
  try {
    unpack(bytes);
  } catch (err) {
    throw invalid(`value cannot be stored as msgpack and read back: ${(err as Error).message}`);
  }
  return { bytes, vtype: ValueType.Msgpack };
}

export function decodeValue(vtype: number, bytes: Uint8Array): unknown {
  switch (vtype) {
    case ValueType.Utf8: return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    case ValueType.Msgpack:
      // Nodes refuse msgpack values a client cannot decode; one stored
      // before that (or by a peer) comes back as its bytes, so the key and
      // its context stay readable.
      try {
        return unpack(bytes);
      } catch {
        return bytes;
      }
    default: return bytes;
  }
}

function levelFields(opts: { consistency?: Consistency | undefined }, fallback: Consistency): { consistency: Consistency } {
  const consistency = opts.consistency ?? fallback;
  if (!isConsistency(consistency)) throw invalid(`consistency must be eventual, quorum or strong; got ${String(consistency)}`);
  return { consistency };
}

/** How long past a request's timeoutMs the client waits before answering
 * TIMEOUT itself. The node enforces timeoutMs and answers TIMEOUT with the
 * facts (which replicas answered, what the coordinator saw); that reply
 * must cross the network and the node's event loop, so the client waits a
 * little longer for it. A fifth of the timeout, at least 200 ms (the
 * connection's deadline sweep runs every 100 ms) and at most 1000 ms: a
 * fixed second would triple a 500 ms deadline against a silent node. */
export function timeoutGraceMs(timeoutMs: number): number {
  return Math.min(1000, Math.max(200, Math.ceil(timeoutMs / 5)));
}

/** connect()'s timeoutMs and connectTimeoutMs: an option of connect() is
 * programming, so nonsense is a TypeError naming the option (a request's
 * timeoutMs is an argument, INVALID_ARGUMENT as the node would say). */
function connectTimeout(name: 'timeoutMs' | 'connectTimeoutMs', v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < limits.requestTimeoutMinMs || v > limits.requestTimeoutMaxMs) {
    throw new TypeError(`${name} (${shown(v)}) must be an integer from ${limits.requestTimeoutMinMs} to ${limits.requestTimeoutMaxMs} (ms)`);
  }
  return v;
}

function checkCount(name: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) throw invalid(`${name} (${String(v)}) must be a positive integer`);
}

export class TuneKvClient extends EventEmitter<ClientEvents> {
  private ring: Ring | undefined;
  /** The hosts given to connect(), normalised (hosts.ts), in their order. */
  private readonly hosts: readonly string[];
  private readonly retry: RetryPolicy;
  /** Hosts reported down (hostDown) and not yet back (hostUp). */
  private readonly downHosts = new Set<string>();
  /** The check of each down host, every hostRetryMs until it answers. */
  private readonly probes = new Map<string, NodeJS.Timeout>();
  private readonly conns = new Map<string, RpcConnection>();
  private readonly downUntil = new Map<string, number>();
  private closed = false;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly consistency: Consistency;
  private readonly route: boolean;
  private readonly hostRetryMs: number;
  private ringFetch: Promise<void> | undefined;
  /** Addresses of members that left the ring (seeds among them are not tried). */
  private readonly left = new Set<string>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastRefreshKickMs = Number.NEGATIVE_INFINITY;
  /** Write ids: 8 random bytes per client, then a counter. Unique across
   * clients with overwhelming probability, and cheaper than 12 fresh random
   * bytes a write. */
  private readonly widPrefix = randomBytes(8);
  private widCounter = 0;

  private nextWid(): Buffer {
    const wid = Buffer.allocUnsafe(12);
    this.widPrefix.copy(wid, 0);
    this.widCounter = (this.widCounter + 1) >>> 0;
    if (this.widCounter === 0) randomBytes(8).copy(this.widPrefix);
    wid.writeUInt32BE(this.widCounter, 8);
    return wid;
  }

  private readonly auth: DialAuth | undefined;
  private readonly tls: ConnectionOptions | undefined;

  private constructor(private readonly opts: ConnectOptions, hosts: readonly string[]) {
    super();
    this.hosts = hosts;
    this.retry = retryPolicy(opts.retry);
    if (opts.resolve !== undefined && typeof opts.resolve !== 'function') throw new TypeError('resolve must be a function (values, info) => value');
    if (opts.writeBack !== undefined && typeof opts.writeBack !== 'boolean') throw new TypeError('writeBack must be true or false');
    if (opts.writeBack === true && opts.resolve === undefined) throw new TypeError('writeBack needs a resolve function');
    this.auth = authOf(opts);
    this.tls = opts.tls === true ? {} : opts.tls === false || opts.tls === undefined ? undefined : opts.tls;
    this.timeoutMs = connectTimeout('timeoutMs', opts.timeoutMs, 5000);
    this.connectTimeoutMs = connectTimeout('connectTimeoutMs', opts.connectTimeoutMs, 2000);
    if (opts.consistency !== undefined && !isConsistency(opts.consistency)) {
      throw new TypeError(`consistency (${shown(opts.consistency)}) must be eventual, quorum or strong`);
    }
    this.consistency = levelFields(opts, 'quorum').consistency;
    if (opts.route !== undefined && typeof opts.route !== 'boolean') throw new TypeError(`route (${shown(opts.route)}) must be true or false`);
    this.route = opts.route ?? true;
    this.hostRetryMs = opts.hostRetryMs ?? 1000;
    if (typeof this.hostRetryMs !== 'number' || !(this.hostRetryMs >= 0)) throw new TypeError(`hostRetryMs (${shown(opts.hostRetryMs)}) must be a number of ms, 0 or more`);
    const every = opts.ringRefreshMs ?? 10_000;
    if (typeof every !== 'number' || !(every >= 0)) throw new TypeError(`ringRefreshMs (${shown(opts.ringRefreshMs)}) must be a number of ms, 0 or more`);
    if (every > 0) {
      this.refreshTimer = setInterval(() => this.refreshFromKnown(), every);
      this.refreshTimer.unref();
    }
  }

  static async connect(opts: ConnectOptions): Promise<TuneKvClient> {
    if (!opts || !Array.isArray(opts.hosts) || opts.hosts.length === 0) throw new TypeError('connect() needs hosts: ["host:port", ...]');
    const hosts: string[] = [];
    for (const h of opts.hosts) {
      const n = normalizeHost(h);
      if (n === null) throw new TypeError(`host "${String(h)}" must be host:port, host (port 7001) or [ipv6]:port`);
      if (!hosts.includes(n)) hosts.push(n);
    }
    const client = new TuneKvClient(opts, hosts);
    try {
      await client.refreshRing(hosts);
    } catch (err) {
      // A connect() that fails must leave no connection open behind it.
      await client.close();
      throw err;
    }
    return client;
  }

  /** The ring as last fetched (for routing and display). */
  get currentRing(): Ring | undefined {
    return this.ring;
  }

  async get<T = unknown>(key: string, options: GetOptions = {}): Promise<GetResult<T>> {
    const signal = checkSignal(options.signal);
    checkKey(key);
    checkCount('r', options.r);
    const timeoutMs = checkTimeout(options.timeoutMs) ?? this.timeoutMs;
    const body = { key, ...levelFields(options, this.consistency), r: options.r, timeoutMs };
    if (options.r !== undefined && options.consistency === undefined) delete (body as { consistency?: string }).consistency;
    if (options.atLeast !== undefined) Object.assign(body, atLeastFields(options.atLeast, options.atLeastDeleted));
    const reply = await this.send(MsgType.GET, body, key, timeoutMs, options.host, false, signal) as GetReplyBody;
    const got: GetResult<T> = {
      ...(reply.lookedFurther === undefined ? {} : { lookedFurther: reply.lookedFurther }),
      found: reply.found,
      values: reply.values.map(([t, b]) => decodeValue(t, b) as T),
      tombstones: reply.tombstones,
      context: encodeContext(reply.context, reply.contextMac),
      siblings: reply.values.length + reply.tombstones,
      level: reply.level,
      r: reply.r,
      coordinator: reply.coordinator,
      replicas: reply.replicas as ReplicaInfo[],
    };
    // Tombstones alone are a key not found: nothing for a resolver to keep.
    if (this.opts.resolve === undefined || options.resolve === false || got.siblings < 2 || !got.found) return got;
    return this.resolveGot(key, got, options);
  }

  /** get() of many keys, pipelined (at most manyInFlightMax in flight),
   * each key routed to its own replicas. One result per key, in the order
   * given: `{ key, ok: true, result }` or `{ key, ok: false, error }` (a
   * TuneKvError; one failing key does not fail the others). More than
   * manyKeysMax keys is TOO_LARGE; an abort rejects the whole call. */
  async getMany<T = unknown>(keys: readonly string[], options: GetManyOptions = {}): Promise<ManyResult<GetResult<T>>[]> {
    if (!Array.isArray(keys)) throw new TypeError('getMany() needs an array of keys');
    checkManyInput(keys.length);
    keys.forEach((k: unknown, i) => {
      if (typeof k !== 'string') throw new TypeError(`getMany() keys[${i}] must be a string; got ${shown(k)}`);
    });
    const signal = checkSignal(options.signal);
    return withSignal(signal, () => pipelined(keys, limits.manyInFlightMax, signal, (key) => this.get<T>(key, options)),
      () => abortedError(signal!, false));
  }

  /** put() of many entries ({ key, value, context? }), as getMany(): one
   * result per entry in input order. An abort rejects the call;
   * details.maybeApplied is true once any put was sent. */
  async putMany(entries: readonly PutEntry[], options: PutManyOptions = {}): Promise<ManyResult<PutResult>[]> {
    if (!Array.isArray(entries)) throw new TypeError('putMany() needs an array of { key, value, context? }');
    checkManyInput(entries.length);
    entries.forEach((e: unknown, i) => {
      if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new TypeError(`putMany() entries[${i}] must be { key, value, context? }; got ${shown(e)}`);
      const key = (e as { key?: unknown }).key;
      if (typeof key !== 'string') throw new TypeError(`putMany() entries[${i}].key must be a string; got ${shown(key)}`);
    });
    const signal = checkSignal(options.signal);
    let started = 0;
    return withSignal(signal, () => pipelined(entries, limits.manyInFlightMax, signal, (e) => {
      started++;
      return this.put(e.key, e.value, e.context === undefined ? options : { ...options, context: e.context });
    }), () => abortedError(signal!, started > 0));
  }

  /** The default resolver on a read with siblings; writes the resolution
   * back (with the read's context) when connect() asked for it. */
  private async resolveGot<T>(key: string, got: GetResult<T>, options: GetOptions): Promise<GetResult<T>> {
    const r = await resolveRead(this.opts.resolve!, got.values, got.tombstones);
    const unresolved = { values: got.values, tombstones: got.tombstones };
    const resolved = { ...got, found: !r.deleted, values: r.deleted ? [] : [r.value as T], tombstones: r.deleted ? 1 : 0, siblings: 1, unresolved };
    if (this.opts.writeBack !== true) return resolved;
    const wopts = { context: got.context, resolved: got.siblings, timeoutMs: options.timeoutMs, host: options.host, signal: options.signal };
    const w = r.deleted ? await this.delete(key, wopts) : await this.put(key, r.value, wopts);
    return { ...resolved, context: w.context, writtenBack: true };
  }

  /** Read, resolve with `fn`, write with the read's context, again if a
   * concurrent writer left a sibling (src/client/update.ts). */
  update(key: string, fn: Resolver, options: UpdateOptions = {}): Promise<UpdateResult> {
    return update(this, key, fn, options);
  }

  /** One page of a node's conflict log (role read); `host` names the node
   * (default: the first that answers). See src/client/conflicts.ts. */
  async conflicts(options: ConflictsOptions = {}): Promise<ConflictsPage> {
    const signal = checkSignal(options.signal);
    const body = conflictsBody(options);
    return parseConflictsReply(await this.send(MsgType.CONFLICTS, body, undefined, checkTimeout(options.timeoutMs) ?? this.timeoutMs, options.host, false, signal));
  }

  async put(key: string, value: unknown, options: PutOptions = {}): Promise<PutResult> {
    checkSignal(options.signal);
    checkKey(key);
    checkCount('w', options.w);
    const { bytes, vtype } = encodeValue(value);
    checkValueBytes(bytes);
    const extra: Record<string, unknown> = { value: bytes, vtype, lww: options.lww };
    if (options.resolved !== undefined) extra.resolved = checkResolved(options.resolved);
    return this.write(MsgType.PUT, key, extra, options);
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    checkSignal(options.signal);
    checkKey(key);
    checkCount('w', options.w);
    return this.write(MsgType.DELETE, key, options.resolved === undefined ? {} : { resolved: checkResolved(options.resolved) }, options);
  }

  private async write(type: number, key: string, extra: object, options: PutOptions): Promise<PutResult> {
    const timeoutMs = checkTimeout(options.timeoutMs) ?? this.timeoutMs;
    const signed = options.context === undefined ? undefined : decodeSignedContext(options.context);
    const body: Record<string, unknown> = {
      key, ...extra, context: signed?.clock, w: options.w, timeoutMs, wid: this.nextWid(), ...levelFields(options, this.consistency),
    };
    if (options.w !== undefined && options.consistency === undefined) delete body.consistency;
    if (signed?.mac) body.contextMac = signed.mac;
    const reply = await this.send(type, body, key, timeoutMs, options.host, false, options.signal) as PutReplyBody;
    return {
      context: encodeContext(reply.context, reply.contextMac),
      siblings: reply.siblings,
      level: reply.level,
      w: reply.w,
      coordinator: reply.coordinator,
      replicas: reply.replicas as ReplicaInfo[],
    };
  }

  /** A counter merged on the replicas (client/types.ts). */
  counter(key: string): CounterHandle {
    return new CounterHandle(this.typedChannel, key);
  }

  /** An add-wins observed-remove set merged on the replicas (client/types.ts). */
  set(key: string): SetHandle {
    return new SetHandle(this.typedChannel, key);
  }

  /** @internal kv.session()'s typed handles (session.ts). */
  typedHandle(kind: 'counter', key: string, session: TypedSessionHook): CounterHandle;
  typedHandle(kind: 'set', key: string, session: TypedSessionHook): SetHandle;
  typedHandle(kind: 'counter' | 'set', key: string, session: TypedSessionHook): CounterHandle | SetHandle {
    return kind === 'counter' ? new CounterHandle(this.typedChannel, key, session) : new SetHandle(this.typedChannel, key, session);
  }

  private get typedChannel(): TypedChannel {
    return {
      // A counter update is not idempotent across coordinators: its write id
      // is recognised only by replicas its first attempt reached, so one
      // that may have been applied is retried on the same node or not at all.
      send: (type, body, routeKey, timeoutMs, host, signal) => this.send(type, body, routeKey, timeoutMs, host,
        type === MsgType.TYPE_UPDATE && body.type === 'counter', signal),
      nextWid: () => this.nextWid(),
      consistency: this.consistency,
      timeoutMs: this.timeoutMs,
    };
  }

  /** A session: read-your-writes and monotonic reads per key at any level
   * (src/client/session.ts); pass a token from session.token() to carry
   * one between processes. A malformed token is INVALID_ARGUMENT. */
  session(token?: string): Session {
    return new Session(this, token);
  }

  /** The status of one node (the first reachable node by default):
   * `status('host:port')` or `status({ host, timeoutMs, signal })`. See
   * NodeStatus (src/client/status.ts) for what a reader and an admin see. */
  async status(target?: string | NodeCallOptions): Promise<NodeStatus> {
    return await this.nodeCall(MsgType.STATUS, {}, target) as NodeStatus;
  }

  /** One request to a node (or the first that answers), with the options
   * of NodeCallOptions or just a host. */
  private nodeCall(type: number, body: unknown, target: string | NodeCallOptions | undefined): Promise<unknown> {
    const o: NodeCallOptions = typeof target === 'string' || target === undefined ? { host: target } : target;
    if (typeof o !== 'object' || o === null) throw new TypeError('expected a host string or { host, timeoutMs, signal }');
    const signal = checkSignal(o.signal);
    return this.send(type, body, undefined, checkTimeout(o.timeoutMs) ?? this.timeoutMs, o.host, false, signal);
  }

  // ---- changing the cluster (admin role) ----

  /** Stages a change on the claimant (through `host` or any node): `join`
   * and `replace` name the new node by its address (it must be running,
   * started with --standby); `leave`, `remove` and `replace` name a member
   * by id. Nothing moves until commit(). */
  async stage(change: { op: 'join'; addr: string } | { op: 'leave' | 'remove'; id: string } | { op: 'replace'; id: string; addr: string },
    target?: string | NodeCallOptions): Promise<Record<string, unknown>> {
    return await this.nodeCall(MsgType.CLUSTER_STAGE, change, target) as Record<string, unknown>;
  }

  /** What the staged changes would move, what is queued, and the progress
   * of the transition in progress. */
  async plan(target?: string | NodeCallOptions): Promise<Record<string, unknown>> {
    return await this.nodeCall(MsgType.CLUSTER_PLAN, {}, target) as Record<string, unknown>;
  }

  /** Commits the staged changes: a transition starts (or is queued). */
  async commit(target?: string | NodeCallOptions): Promise<Record<string, unknown>> {
    return await this.nodeCall(MsgType.CLUSTER_COMMIT, {}, target) as Record<string, unknown>;
  }

  /** Sets one node's transfer limit in MB/s (while it runs). */
  async setTransferLimit(mbps: number, target: string | NodeCallOptions): Promise<Record<string, unknown>> {
    return await this.nodeCall(MsgType.TRANSFER_LIMIT, { mbps }, target) as Record<string, unknown>;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.refreshTimer !== undefined) clearInterval(this.refreshTimer);
    for (const t of this.probes.values()) clearInterval(t);
    this.probes.clear();
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }

  // ---- routing and connections ----

  /** Candidate addresses per partition, for the current ring. */
  private routes: { ring: Ring; byPartition: string[][] } | undefined;

  private candidates(key: string | undefined): string[] {
    const ring = this.ring;
    let out: string[];
    if (ring && key !== undefined && this.route) {
      if (this.routes?.ring !== ring) this.routes = { ring, byPartition: [] };
      const p = partitionOfKey(ring, key);
      out = this.routes.byPartition[p] ??= this.orderFrom(ring, preferenceListForKey(ring, key).primaries);
    } else if (!this.route) {
      // Without routing the caller chose the nodes: the hosts it gave, in
      // its order, then the other members as a fallback.
      out = [];
      for (const h of this.hosts) if (!this.left.has(h)) out.push(h);
      for (const a of this.orderFrom(ring, [])) if (!out.includes(a)) out.push(a);
    } else {
      out = this.orderFrom(ring, []);
    }
    const now = Date.now();
    for (const [a, until] of this.downUntil) if (until <= now) this.downUntil.delete(a);
    if (this.downUntil.size === 0) return out;
    const up = out.filter((a) => (this.downUntil.get(a) ?? 0) <= now);
    // When every node looks down, try them all anyway: they may be back.
    return up.length > 0 ? up : out;
  }

  /** The given nodes' addresses first, then every other member (exiting
   * ones last: they are about to go), then seeds that did not leave. */
  private orderFrom(ring: Ring | undefined, first: readonly string[]): string[] {
    const out: string[] = [];
    const add = (a: string | undefined): void => { if (a && !out.includes(a)) out.push(a); };
    const byId = new Map((ring?.members ?? []).map((m) => [m.id, m.addr]));
    for (const id of first) add(byId.get(id));
    for (const m of ring?.members ?? []) if (m.state !== 'exiting') add(m.addr);
    for (const m of ring?.members ?? []) add(m.addr);
    for (const h of this.hosts) if (!this.left.has(h)) add(h);
    return out;
  }

  /** Refreshes the ring from the known nodes (those not skipped first);
   * errors are left for the next refresh. */
  private refreshFromKnown(): void {
    if (this.closed) return;
    this.lastRefreshKickMs = Date.now();
    const all = this.orderFrom(this.ring, []);
    const now = Date.now();
    const up = all.filter((a) => (this.downUntil.get(a) ?? 0) <= now);
    void this.refreshRing([...up, ...all.filter((a) => !up.includes(a))]).catch(() => {});
  }

  /** A node was unreachable or said it was removed: the members may have
   * changed, so refresh the ring soon (at most once per hostRetryMs). */
  private refreshSoon(): void {
    if (Date.now() - this.lastRefreshKickMs >= this.hostRetryMs) this.refreshFromKnown();
  }

  /** Takes a newer ring: members that are no longer in it left the cluster. */
  private adopt(ring: Ring): void {
    const now = new Set(ring.members.map((m) => m.addr));
    for (const m of this.ring?.members ?? []) {
      if (now.has(m.addr)) continue;
      this.left.add(m.addr);
      this.conns.get(m.addr)?.close();
      this.conns.delete(m.addr);
      this.stopProbe(m.addr);
      this.downHosts.delete(m.addr);
    }
    for (const a of now) this.left.delete(a);
    this.ring = ring;
  }

  private connection(addr: string): RpcConnection {
    const existing = this.conns.get(addr);
    if (existing && !existing.isClosed) return existing;
    const hp = dialTarget(addr);
    const conn = new RpcConnection({
      host: hp.host, port: hp.port, agent, connectTimeoutMs: this.connectTimeoutMs,
      sendFrameBytesMax: limits.clientFrameBytesMax,
      // The node refuses what passes its per-connection limit: queue here
      // instead, so a burst of calls waits rather than fails.
      inFlightMax: limits.clientInFlightPerConnectionMax, queuedMax: limits.clientQueuedRequestsMax,
      ...(this.auth ? { auth: this.auth } : {}),
      ...(this.tls ? { tls: this.tls } : {}),
      onHelloOk: (b) => {
        this.markUp(addr);
        if (b.ringVersion > (this.ring?.version ?? 0)) void this.refreshRing([addr]).catch(() => {});
      },
      onClose: () => {
        if (this.conns.get(addr) === conn) this.conns.delete(addr);
        // A connection that was up closed: the node may have stopped (a
        // killed node's socket closes like an idle one), so check it once.
        if (conn.wasEstablished) this.checkSoon(addr);
      },
    });
    this.conns.set(addr, conn);
    return conn;
  }

  private call(addr: string, type: number, body: unknown, timeoutMs: number, state?: SendState): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const conn = this.connection(addr);
      // Wait past the node's own deadline so its TIMEOUT, with the facts, wins.
      const id = conn.request(type, body, timeoutMs + timeoutGraceMs(timeoutMs), (err, _t, reply) => {
        if (state?.active?.id === id) state.active = undefined;
        if (err) reject(err); else resolve(reply);
      });
      if (state) state.active = { conn, id };
    });
  }

  // ---- hostDown / hostUp ----

  /** A node could not be reached: skip it for hostRetryMs, and report it
   * once (then check it every hostRetryMs until it answers). */
  private markDown(addr: string, err: TuneKvError, skip = true): void {
    // Only a request (or ring fetch) that failed skips the node: the check
    // after a closed connection just reports it, so the next request still
    // meets the refusal and refreshes the ring (the node may have left).
    if (skip) this.downUntil.set(addr, Date.now() + this.hostRetryMs);
    if (this.closed || this.left.has(addr) || this.downHosts.has(addr)) return;
    this.downHosts.add(addr);
    this.startProbe(addr);
    this.emit('hostDown', addr, err);
  }

  private markUp(addr: string): void {
    this.downUntil.delete(addr);
    if (!this.downHosts.delete(addr)) return;
    this.stopProbe(addr);
    if (!this.closed) this.emit('hostUp', addr);
  }

  /** Dials the node on a connection of its own (HELLO only, closed
   * after): true when it answered. Not a pooled connection, so a check
   * never keeps a connection open that the node would close as idle. */
  private async reachable(addr: string): Promise<TuneKvError | null> {
    const hp = dialTarget(addr);
    const conn = new RpcConnection({
      host: hp.host, port: hp.port, agent, connectTimeoutMs: this.connectTimeoutMs, ...(this.tls ? { tls: this.tls } : {}),
    });
    try {
      await conn.ready;
      return null;
    } catch (err) {
      return err instanceof TuneKvError ? err : new TuneKvError('UNAVAILABLE', String(err));
    } finally {
      conn.close();
    }
  }

  private checkSoon(addr: string): void {
    if (this.closed || this.left.has(addr) || this.downHosts.has(addr)) return;
    void this.reachable(addr).then((err) => {
      if (err?.code === 'UNAVAILABLE') this.markDown(addr, err, false);
    });
  }

  private startProbe(addr: string): void {
    if (this.probes.has(addr)) return;
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      if (this.closed || this.left.has(addr) || !this.downHosts.has(addr)) return this.stopProbe(addr);
      busy = true;
      void this.reachable(addr).then((err) => {
        busy = false;
        // Any answer that is not "unreachable" (a PROTOCOL_ERROR from the
        // wrong service, say) still says something listens there: it is up.
        if (err === null || err.code !== 'UNAVAILABLE') this.markUp(addr);
      });
    }, Math.max(this.hostRetryMs, 50));
    timer.unref();
    this.probes.set(addr, timer);
  }

  private stopProbe(addr: string): void {
    const t = this.probes.get(addr);
    if (t !== undefined) clearInterval(t);
    this.probes.delete(addr);
  }

  /** Sends to the first candidate that answers, walking the candidates
   * up to retry.attempts times (retry.ts); rejects at once with ABORTED
   * when `signal` fires. */
  private async send(type: number, body: unknown, key: string | undefined, timeoutMs: number, host?: string, sticky = false,
    signal?: AbortSignal): Promise<unknown> {
    if (this.closed) throw new TuneKvError('UNAVAILABLE', 'the client is closed');
    let target: string | undefined;
    if (host !== undefined) {
      const n = normalizeHost(host);
      if (n === null) throw invalid(`host "${String(host)}" must be host:port, host (port 7001) or [ipv6]:port`);
      target = n;
    }
    const state: SendState = { maybeApplied: false, active: undefined, signal };
    const write = !readTypes.has(type);
    return withSignal(signal, () => this.sendRetrying(type, body, key, timeoutMs, target, sticky, state), () => {
      // Stop waiting for the attempt in flight; a write handed to the
      // socket may still be applied by the node.
      const a = state.active;
      state.active = undefined;
      let sent = false;
      if (a) {
        sent = !a.conn.isHeld(a.id);
        a.conn.forget(a.id);
      }
      return abortedError(signal!, write && (state.maybeApplied || sent));
    });
  }

  private async sendRetrying(type: number, body: unknown, key: string | undefined, timeoutMs: number, host: string | undefined, sticky: boolean,
    state: SendState): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.sendOnce(type, body, key, timeoutMs, host, sticky, state);
      } catch (err) {
        if (!(err instanceof TuneKvError) || attempt >= this.retry.attempts || this.closed || state.signal?.aborted) throw err;
        const again = err.code === 'OVERLOADED' || (err.code === 'UNAVAILABLE' && !(sticky && state.maybeApplied));
        if (!again) throw err;
        await sleep(retryDelayMs(this.retry, attempt), state.signal, () => state.maybeApplied);
      }
    }
  }

  /** One walk over the candidates. Every request is safe to repeat (reads
   * by nature, writes by their write id), so a connection that breaks,
   * before or after sending, moves the request to the next node. */
  private async sendOnce(type: number, body: unknown, key: string | undefined, timeoutMs: number, host: string | undefined, sticky: boolean,
    state: SendState): Promise<unknown> {
    const targets: string[] = [];
    let last: TuneKvError | undefined;
    for (let round = 0; round < 2; round++) {
      const these = host !== undefined ? [host] : this.candidates(key).filter((a) => !targets.includes(a));
      for (const addr of these) {
        if (state.signal?.aborted || this.closed) throw last ?? new TuneKvError('UNAVAILABLE', 'the request was abandoned');
        targets.push(addr);
        try {
          return await this.call(addr, type, body, timeoutMs, state);
        } catch (err) {
          if (!(err instanceof TuneKvError)) throw err;
          last = err;
          // STORAGE_FAILED: that node refused before applying anything (its
          // disk failed); another coordinator can take the request.
          if (err.code === 'STORAGE_FAILED') continue;
          if (err.code !== 'UNAVAILABLE' && err.code !== 'NODE_REMOVED') throw err;
          if (sticky && err.details.maybeApplied === true) {
            state.maybeApplied = true;
            return await this.retrySameNode(addr, type, body, timeoutMs, err, state);
          }
          this.markDown(addr, err);
          state.maybeApplied ||= err.details.maybeApplied === true;
          if (host === undefined) this.refreshSoon();
        }
      }
      if (host !== undefined || round > 0) break;
      // No node we know took it: they may have left. Ask any node that
      // still answers for the ring, and try the members it names.
      const before = this.ring;
      await this.refreshRing(this.orderFrom(this.ring, [])).catch(() => {});
      if (this.ring === before) break;
    }
    if (last?.code === 'STORAGE_FAILED' && !state.maybeApplied) throw last;
    throw new TuneKvError('UNAVAILABLE', `no node could be reached (tried ${targets.join(', ')}): ${last?.message ?? ''}`,
      { tried: targets, maybeApplied: state.maybeApplied });
  }

  /** A request that may have been applied on `addr` and must not be
   * applied elsewhere (a counter update): one more try on `addr`, whose
   * coordinator recognises the write id if the first attempt reached it;
   * if that fails too, UNAVAILABLE with maybeApplied, for the caller to
   * decide (Cassandra's counters give the same answer to a lost reply). */
  private async retrySameNode(addr: string, type: number, body: unknown, timeoutMs: number, first: TuneKvError, state: SendState): Promise<unknown> {
    try {
      return await this.call(addr, type, body, timeoutMs, state);
    } catch (err) {
      if (!(err instanceof TuneKvError) || (err.code !== 'UNAVAILABLE' && err.code !== 'NODE_REMOVED')) throw err;
      this.markDown(addr, err);
      throw new TuneKvError('UNAVAILABLE', `${addr} broke off a counter update that may have been applied, and could not be reached again: `
        + `not retried on another node, which would count it twice (${first.message})`, { tried: [addr], maybeApplied: true });
    }
  }

  private refreshRing(hosts: readonly string[]): Promise<void> {
    this.ringFetch ??= (async () => {
      let last: TuneKvError | undefined;
      let standby = false;
      for (const addr of hosts) {
        try {
          const reply = await this.call(addr, MsgType.RING_GET, {}, this.timeoutMs) as { ring?: unknown };
          if (ringProblem(reply.ring) === null) {
            const ring = reply.ring as Ring;
            if (!this.ring || ring.version >= this.ring.version) this.adopt(ring);
            return;
          }
          // A node on standby (not joined yet) answers with no ring: it is
          // reachable, for status and transfer-limit with `host`.
          if (reply.ring === null) standby = true;
        } catch (err) {
          // Only an unreachable node sends us to the next one: a refusal
          // (UNAUTHORIZED, FORBIDDEN) would be the same everywhere.
          if (!(err instanceof TuneKvError) || (err.code !== 'UNAVAILABLE' && err.code !== 'NODE_REMOVED')) throw err;
          last = err;
          this.markDown(addr, err);
        }
      }
      if (standby) return;
      throw new TuneKvError('UNAVAILABLE', `no node could be reached (tried ${hosts.join(', ')}): ${last?.message ?? ''}`, { tried: [...hosts] });
    })().finally(() => { this.ringFetch = undefined; });
    return this.ringFetch;
  }
}

/** The GET fields of an atLeast option, validated before sending. */
function atLeastFields(atLeast: readonly string[], deleted: boolean | undefined): Record<string, unknown> {
  if (!Array.isArray(atLeast)) throw invalid('atLeast must be a list of context strings');
  if (atLeast.length > limits.sessionContextsPerKeyMax) throw invalid(`atLeast has ${atLeast.length} contexts; at most sessionContextsPerKeyMax (${limits.sessionContextsPerKeyMax})`);
  if (deleted !== undefined && typeof deleted !== 'boolean') throw invalid('atLeastDeleted must be true or false');
  const pairs = atLeast.map((c) => decodeSignedContext(c)).filter((c) => c.clock.length > 0).map((c) => {
    if (c.mac === null) throw invalid('atLeast contexts must be the signed contexts replies returned');
    return [c.clock, c.mac];
  });
  return { atLeast: pairs, ...(deleted === true ? { atLeastDeleted: true } : {}) };
}

function checkResolved(n: unknown): number {
  if (!Number.isSafeInteger(n) || (n as number) < 0) throw invalid(`resolved (${String(n)}) must be a non-negative integer`);
  return n as number;
}

function authOf(opts: ConnectOptions): DialAuth | undefined {
  if (opts.secret !== undefined) {
    const bytes = typeof opts.secret === 'string' ? decodeSecretText(opts.secret.trim()) : opts.secret;
    if (!(bytes instanceof Uint8Array) || bytes.length < secretBytesMin) {
      throw new TypeError(`secret must be the cluster secret: the text of cluster.secret, or its ${secretBytesMin}+ decoded bytes (readSecretFile)`);
    }
    if (opts.user !== undefined) throw new TypeError('give either user/password or secret, not both');
    return { kind: 'secret', key: clusterKey(Buffer.from(bytes)), as: 'admin' };
  }
  if (opts.user === undefined && opts.password === undefined) return undefined;
  if (typeof opts.user !== 'string' || !/^[A-Za-z0-9_.@-]{1,64}$/.test(opts.user)) throw new TypeError('user must be 1-64 characters of A-Z a-z 0-9 _ . @ -');
  if (typeof opts.password !== 'string') throw new TypeError('password must be a string when user is given');
  return { kind: 'user', user: opts.user, password: opts.password, cache: new Map() };
}

export function connect(opts: ConnectOptions): Promise<TuneKvClient> {
  return TuneKvClient.connect(opts);
}

export type { GetManyOptions, ManyResult, PutEntry, PutManyOptions } from './many.js';
export type { RetryOptions } from './retry.js';
