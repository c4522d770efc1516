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
import { parseHostPort } from '../io/transport.js';
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
  /** Nodes to bootstrap from (host:port); the rest are learned from the ring. */
  readonly hosts: readonly string[];
  /** Per-request deadline, ms. Default 5000. The node enforces it; the
   * client waits a little longer so the node's TIMEOUT (with its facts)
   * arrives first. */
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
}

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

export interface GetResult {
  readonly found: boolean;
  /** One per live sibling: string, Uint8Array, or a decoded msgpack value. */
  readonly values: unknown[];
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
  readonly unresolved?: { readonly values: unknown[]; readonly tombstones: number };
  /** With writeBack: the resolution was written (context is the write's). */
  readonly writtenBack?: boolean;
}

export interface PutResult {
  readonly context: string;
  /** Versions the key holds after this write, on the coordinator. */
  readonly siblings: number;
  readonly level: string;
  readonly w: number;
  readonly coordinator: string;
  readonly replicas: ReplicaInfo[];
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

function checkCount(name: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) throw invalid(`${name} (${String(v)}) must be a positive integer`);
}

export class TuneKvClient {
  private ring: Ring | undefined;
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

  private constructor(private readonly opts: ConnectOptions) {
    if (opts.resolve !== undefined && typeof opts.resolve !== 'function') throw new TypeError('resolve must be a function (values, info) => value');
    if (opts.writeBack !== undefined && typeof opts.writeBack !== 'boolean') throw new TypeError('writeBack must be true or false');
    if (opts.writeBack === true && opts.resolve === undefined) throw new TypeError('writeBack needs a resolve function');
    this.auth = authOf(opts);
    this.tls = opts.tls === true ? {} : opts.tls === false || opts.tls === undefined ? undefined : opts.tls;
    this.timeoutMs = checkTimeout(opts.timeoutMs) ?? 5000;
    this.connectTimeoutMs = checkTimeout(opts.connectTimeoutMs) ?? 2000;
    this.consistency = levelFields(opts, 'quorum').consistency;
    this.route = opts.route ?? true;
    this.hostRetryMs = opts.hostRetryMs ?? 1000;
    const every = opts.ringRefreshMs ?? 10_000;
    if (typeof every !== 'number' || !(every >= 0)) throw new TypeError('ringRefreshMs must be a number of ms, 0 or more');
    if (every > 0) {
      this.refreshTimer = setInterval(() => this.refreshFromKnown(), every);
      this.refreshTimer.unref();
    }
  }

  static async connect(opts: ConnectOptions): Promise<TuneKvClient> {
    if (!opts || !Array.isArray(opts.hosts) || opts.hosts.length === 0) throw new TypeError('connect() needs hosts: ["host:port", ...]');
    for (const h of opts.hosts) if (!parseHostPort(h)) throw new TypeError(`host "${h}" must be host:port`);
    const client = new TuneKvClient(opts);
    try {
      await client.refreshRing(opts.hosts);
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

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    checkKey(key);
    checkCount('r', options.r);
    const timeoutMs = checkTimeout(options.timeoutMs) ?? this.timeoutMs;
    const body = { key, ...levelFields(options, this.consistency), r: options.r, timeoutMs };
    if (options.r !== undefined && options.consistency === undefined) delete (body as { consistency?: string }).consistency;
    if (options.atLeast !== undefined) Object.assign(body, atLeastFields(options.atLeast, options.atLeastDeleted));
    const reply = await this.send(MsgType.GET, body, key, timeoutMs, options.host) as GetReplyBody;
    const got: GetResult = {
      ...(reply.lookedFurther === undefined ? {} : { lookedFurther: reply.lookedFurther }),
      found: reply.found,
      values: reply.values.map(([t, b]) => decodeValue(t, b)),
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

  /** The default resolver on a read with siblings; writes the resolution
   * back (with the read's context) when connect() asked for it. */
  private async resolveGot(key: string, got: GetResult, options: GetOptions): Promise<GetResult> {
    const r = await resolveRead(this.opts.resolve!, got.values, got.tombstones);
    const unresolved = { values: got.values, tombstones: got.tombstones };
    const resolved = { ...got, found: !r.deleted, values: r.deleted ? [] : [r.value], tombstones: r.deleted ? 1 : 0, siblings: 1, unresolved };
    if (this.opts.writeBack !== true) return resolved;
    const wopts = { context: got.context, resolved: got.siblings, timeoutMs: options.timeoutMs, host: options.host };
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
    const body = conflictsBody(options);
    return parseConflictsReply(await this.send(MsgType.CONFLICTS, body, undefined, checkTimeout(options.timeoutMs) ?? this.timeoutMs, options.host));
  }

  async put(key: string, value: unknown, options: PutOptions = {}): Promise<PutResult> {
    checkKey(key);
    checkCount('w', options.w);
    const { bytes, vtype } = encodeValue(value);
    checkValueBytes(bytes);
    const extra: Record<string, unknown> = { value: bytes, vtype, lww: options.lww };
    if (options.resolved !== undefined) extra.resolved = checkResolved(options.resolved);
    return this.write(MsgType.PUT, key, extra, options);
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<PutResult> {
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
    const reply = await this.send(type, body, key, timeoutMs, options.host) as PutReplyBody;
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
      send: (type, body, routeKey, timeoutMs, host) => this.send(type, body, routeKey, timeoutMs, host,
        type === MsgType.TYPE_UPDATE && body.type === 'counter'),
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

  /** The status of one node (the first reachable seed by default). */
  async status(host?: string): Promise<Record<string, unknown>> {
    return await this.send(MsgType.STATUS, {}, undefined, this.timeoutMs, host) as Record<string, unknown>;
  }

  // ---- changing the cluster (admin role) ----

  /** Stages a change on the claimant (through `host` or any node): `join`
   * and `replace` name the new node by its address (it must be running,
   * started with --standby); `leave`, `remove` and `replace` name a member
   * by id. Nothing moves until commit(). */
  async stage(change: { op: 'join'; addr: string } | { op: 'leave' | 'remove'; id: string } | { op: 'replace'; id: string; addr: string },
    host?: string): Promise<Record<string, unknown>> {
    return await this.send(MsgType.CLUSTER_STAGE, change, undefined, this.timeoutMs, host) as Record<string, unknown>;
  }

  /** What the staged changes would move, what is queued, and the progress
   * of the transition in progress. */
  async plan(host?: string): Promise<Record<string, unknown>> {
    return await this.send(MsgType.CLUSTER_PLAN, {}, undefined, this.timeoutMs, host) as Record<string, unknown>;
  }

  /** Commits the staged changes: a transition starts (or is queued). */
  async commit(host?: string): Promise<Record<string, unknown>> {
    return await this.send(MsgType.CLUSTER_COMMIT, {}, undefined, this.timeoutMs, host) as Record<string, unknown>;
  }

  /** Sets one node's transfer limit in MB/s (while it runs). */
  async setTransferLimit(mbps: number, host: string): Promise<Record<string, unknown>> {
    return await this.send(MsgType.TRANSFER_LIMIT, { mbps }, undefined, this.timeoutMs, host) as Record<string, unknown>;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.refreshTimer !== undefined) clearInterval(this.refreshTimer);
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
    for (const h of this.opts.hosts) if (!this.left.has(h)) add(h);
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
    }
    for (const a of now) this.left.delete(a);
    this.ring = ring;
  }

  private connection(addr: string): RpcConnection {
    const existing = this.conns.get(addr);
    if (existing && !existing.isClosed) return existing;
    const hp = parseHostPort(addr)!;
    const conn = new RpcConnection({
      host: hp.host, port: hp.port, agent, connectTimeoutMs: this.connectTimeoutMs,
      sendFrameBytesMax: limits.clientFrameBytesMax,
      ...(this.auth ? { auth: this.auth } : {}),
      ...(this.tls ? { tls: this.tls } : {}),
      onHelloOk: (b) => { if (b.ringVersion > (this.ring?.version ?? 0)) void this.refreshRing([addr]).catch(() => {}); },
      onClose: () => { if (this.conns.get(addr) === conn) this.conns.delete(addr); },
    });
    this.conns.set(addr, conn);
    return conn;
  }

  private call(addr: string, type: number, body: unknown, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // Wait past the node's own deadline so its TIMEOUT, with the facts, wins.
      this.connection(addr).request(type, body, timeoutMs + 1000, (err, _t, reply) => (err ? reject(err) : resolve(reply)));
    });
  }

  /** Sends to the first candidate that answers. Every request is safe to
   * repeat (reads by nature, writes by their write id), so a connection that
   * breaks, before or after sending, moves the request to the next node. */
  private async send(type: number, body: unknown, key: string | undefined, timeoutMs: number, host?: string, sticky = false): Promise<unknown> {
    if (this.closed) throw new TuneKvError('UNAVAILABLE', 'the client is closed');
    if (host !== undefined && !parseHostPort(host)) throw invalid(`host "${host}" must be host:port`);
    const targets: string[] = [];
    let last: TuneKvError | undefined;
    let maybeApplied = false;
    for (let round = 0; round < 2; round++) {
      const these = host !== undefined ? [host] : this.candidates(key).filter((a) => !targets.includes(a));
      for (const addr of these) {
        targets.push(addr);
        try {
          return await this.call(addr, type, body, timeoutMs);
        } catch (err) {
          if (!(err instanceof TuneKvError)) throw err;
          last = err;
          // STORAGE_FAILED: that node refused before applying anything (its
          // disk failed); another coordinator can take the request.
          if (err.code === 'STORAGE_FAILED') continue;
          if (err.code !== 'UNAVAILABLE' && err.code !== 'NODE_REMOVED') throw err;
          if (sticky && err.details.maybeApplied === true) return await this.retrySameNode(addr, type, body, timeoutMs, err);
          this.downUntil.set(addr, Date.now() + this.hostRetryMs);
          maybeApplied ||= err.details.maybeApplied === true;
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
    if (last?.code === 'STORAGE_FAILED' && !maybeApplied) throw last;
    throw new TuneKvError('UNAVAILABLE', `no node could be reached (tried ${targets.join(', ')}): ${last?.message ?? ''}`,
      { tried: targets, maybeApplied });
  }

  /** A request that may have been applied on `addr` and must not be
   * applied elsewhere (a counter update): one more try on `addr`, whose
   * coordinator recognises the write id if the first attempt reached it;
   * if that fails too, UNAVAILABLE with maybeApplied, for the caller to
   * decide (Cassandra's counters give the same answer to a lost reply). */
  private async retrySameNode(addr: string, type: number, body: unknown, timeoutMs: number, first: TuneKvError): Promise<unknown> {
    try {
      return await this.call(addr, type, body, timeoutMs);
    } catch (err) {
      if (!(err instanceof TuneKvError) || (err.code !== 'UNAVAILABLE' && err.code !== 'NODE_REMOVED')) throw err;
      this.downUntil.set(addr, Date.now() + this.hostRetryMs);
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
          this.downUntil.set(addr, Date.now() + this.hostRetryMs);
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
