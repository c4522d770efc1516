// A tunekv node: wires the pure core (ring, clocks, request FSMs) to I/O
// (peer transport, object store, clock) and answers requests.
//
// The node never knows whether it runs over TCP or inside the simulator: it
// is handed a Storage, a PeerTransport factory and a Clock. It runs each
// FSM's effects in the order they are returned, and feeds every outcome back
// into the FSM as an event, asynchronously (never re-entrantly).
//
// Invariants: a request gets exactly one response; every FSM's timer is
// cleared when it is done; the ring only moves to a newer version; a
// replica acknowledges a write only once it is durable.

import assert from 'node:assert/strict';
import { liveSiblings, merge, objectBytes, sameVersions, update } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { GetFsm } from '../core/coordinator/get-fsm.js';
import type { ReadResult } from '../core/coordinator/get-fsm.js';
import { PutFsm } from '../core/coordinator/put-fsm.js';
import type { Effect, FsmReply, ReplicaReport, ReplicaTarget } from '../core/coordinator/types.js';
import { claim, createRing, memberOf, preferenceListForKey, replicatedPartitions, ringProblem } from '../core/ring/ring.js';
import type { Ring } from '../core/ring/ring.js';
import type { NodeConfig } from '../config.js';
import { TuneKvError } from '../errors.js';
import { limits } from '../limits.js';
import type { Clock, TimerHandle } from '../io/clock.js';
import type { Storage } from '../io/storage.js';
import type { Origin, PeerTransport, Responder } from '../io/transport.js';
import { pack, unpack } from '../protocol/codec.js';
import { MsgType, protocolVersion } from '../protocol/messages.js';
import type { GetReplyBody, PutReplyBody, ReplicaReportWire, WireObject } from '../protocol/messages.js';
import { clockToWire, objectFromWire, objectToWire } from '../protocol/object-codec.js';
import { asRecord, checkKey } from '../protocol/validate.js';
import { ringKey } from './keyspace.js';
import { ObjectStore } from './object-store.js';
import { parseGet, parsePut } from './requests.js';
import type { PutRequest } from './requests.js';

export interface NodeDeps {
  readonly config: NodeConfig;
  readonly storage: Storage;
  readonly clock: Clock;
  /** Builds the peer transport; it may ask the node for addresses. */
  transport(node: TuneNode): PeerTransport;
  log?(line: string): void;
}

export interface NodeStats {
  gets: number;
  puts: number;
  deletes: number;
  failedRequests: number;
  forwardedPuts: number;
  readRepairs: number;
  replicaReads: number;
  replicaWrites: number;
  siblingWarnings: number;
  replicaTimeouts: number;
}

interface Fsm {
  start(): Effect[];
  onTimeout(): Effect[];
  onWrite(from: string, ok: boolean): Effect[];
  onRead?(from: string, result: ReadResult): Effect[];
  onCoordinated?(result: { ok: true; object: VersionedObject } | { ok: false; error: TuneKvError }): Effect[];
}

/** Objects are sent to several replicas: encode each once. */
const wireCache = new WeakMap<VersionedObject, WireObject>();
function wireOf(obj: VersionedObject): WireObject {
  let w = wireCache.get(obj);
  if (!w) { w = objectToWire(obj); wireCache.set(obj, w); }
  return w;
}

function errorBody(err: TuneKvError): { code: string; message: string; details: Record<string, unknown> } {
  return { code: err.code, message: err.message, details: err.details };
}

function reportsToWire(reports: readonly ReplicaReport[]): ReplicaReportWire[] {
  return reports.map((r) => ({
    node: r.node, role: r.role, outcome: r.outcome,
    ...(r.stale === undefined ? {} : { stale: r.stale }),
    ...(r.hintFor === undefined ? {} : { hintFor: r.hintFor }),
  }));
}

export class TuneNode {
  readonly id: string;
  readonly config: NodeConfig;
  readonly store: ObjectStore;
  readonly stats: NodeStats = {
    gets: 0, puts: 0, deletes: 0, failedRequests: 0, forwardedPuts: 0, readRepairs: 0,
    replicaReads: 0, replicaWrites: 0, siblingWarnings: 0, replicaTimeouts: 0,
  };
  private ringValue: Ring | undefined;
  private readonly storage: Storage;
  private readonly clock: Clock;
  private readonly transport: PeerTransport;
  private readonly timers = new Set<TimerHandle>();
  private inFlight = 0;
  private readonly startedMs: number;
  private stopped = false;
  private announced = false;
  private readonly log: (line: string) => void;

  constructor(deps: NodeDeps) {
    this.config = deps.config;
    this.id = deps.config.id;
    this.storage = deps.storage;
    this.clock = deps.clock;
    this.store = new ObjectStore(deps.storage, deps.config.fsync);
    this.log = deps.log ?? (() => {});
    this.transport = deps.transport(this);
    this.startedMs = deps.clock.nowMs();
  }

  get ring(): Ring | undefined {
    return this.ringValue;
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Address of a member, for the transport. */
  addrOf(id: string): string | undefined {
    return this.ringValue ? memberOf(this.ringValue, id)?.addr : undefined;
  }

  // ---- lifecycle ----

  /** Opens storage and loads the ring. A node with no ring and no seeds
   * founds a cluster; one with seeds must join() after it listens. */
  async open(): Promise<void> {
    await this.storage.open();
    const bytes = await this.storage.get(ringKey);
    if (bytes) {
      const ring = unpack(bytes);
      const problem = ringProblem(ring);
      if (problem) throw new Error(`stored ring is damaged: ${problem}`);
      this.ringValue = ring as Ring;
    }
    const self = { id: this.id, addr: this.config.listen };
    if (!this.ringValue && this.config.join.length === 0) {
      await this.adoptRing(createRing(this.config.q, this.config.n, self));
    } else if (this.ringValue && this.config.join.length === 0) {
      // Restarted on another address: claim() only updates our address.
      await this.adoptRing(claim(this.ringValue, self));
    }
  }

  /** True when this node must join through its seeds before serving. */
  get needsJoin(): boolean {
    const me = this.ringValue ? memberOf(this.ringValue, this.id) : undefined;
    return this.config.join.length > 0 && (me === undefined || me.addr !== this.config.listen);
  }

  /** Asks the seeds, in turn, to add this node to the ring, until one
   * answers or joinTimeoutMs passes. */
  async join(): Promise<void> {
    const deadline = this.clock.nowMs() + this.config.joinTimeoutMs;
    let lastError = 'no seed answered';
    for (let attempt = 0; ; attempt++) {
      for (const seed of this.config.join) {
        if (seed === this.config.listen) continue;
        const result = await this.askSeed(seed);
        if (result === null) return;
        lastError = result;
      }
      if (this.clock.nowMs() >= deadline) throw new Error(`could not join through ${this.config.join.join(', ')}: ${lastError}`);
      await new Promise<void>((resolve) => { this.clock.setTimer(Math.min(1000, 100 * (attempt + 1)), resolve); });
    }
  }

  private askSeed(seed: string): Promise<string | null> {
    return new Promise((resolve) => {
      this.transport.requestAddr(seed, MsgType.JOIN, { id: this.id, addr: this.config.listen }, this.config.requestTimeoutMs,
        (err, _type, body) => {
          if (err) { resolve(`${seed}: ${err.message}`); return; }
          const ring = (body as { ring?: unknown } | null)?.ring;
          const problem = ringProblem(ring);
          if (problem) { resolve(`${seed}: ${problem}`); return; }
          this.adoptRing(ring as Ring).then(() => resolve(null), (e: Error) => resolve(e.message));
        });
    });
  }

  /**
   * Tells every peer this node is (back) up, so they use it at once rather
   * than after their retry delay, and learns of a newer ring through the
   * handshake. Waits for the answers (or failures); a node reports ready in
   * its status only after this.
   */
  async announce(): Promise<void> {
    const ring = this.ringValue;
    const peers = ring ? ring.members.filter((m) => m.id !== this.id) : [];
    await Promise.all(peers.map((m) => new Promise<void>((resolve) => {
      this.transport.request(m.id, MsgType.PING, {}, this.config.peerConnectTimeoutMs, () => resolve());
    })));
    this.announced = true;
  }

  /** A peer opened a connection to us: it is up. */
  peerHello(id: string): void {
    this.transport.peerIsUp(id);
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) this.clock.clearTimer(t);
    this.timers.clear();
    this.transport.close();
    await this.store.drain();
    await this.storage.close();
  }

  // ---- ring ----

  /** Replaces the ring when `ring` is newer; persists it. */
  async adoptRing(ring: Ring): Promise<boolean> {
    const mine = this.ringValue;
    if (mine && !isNewer(ring, mine)) return false;
    this.ringValue = ring;
    await this.store.writeRaw({ key: ringKey, value: pack(ring) });
    if (!mine || mine.members.length !== ring.members.length) {
      this.log(`ring v${ring.version}: ${ring.members.map((m) => `${m.id}@${m.addr}`).join(', ')}`);
    }
    return true;
  }

  private pushRing(ring: Ring): void {
    for (const m of ring.members) {
      if (m.id === this.id) continue;
      this.transport.request(m.id, MsgType.RING_PUSH, { ring }, this.config.requestTimeoutMs, () => {});
    }
  }

  /** A peer said its ring is newer than ours: fetch it. */
  pullRingFrom(addr: string): void {
    this.transport.requestAddr(addr, MsgType.RING_GET, {}, this.config.requestTimeoutMs, (err, _t, body) => {
      if (err) return;
      const ring = (body as { ring?: unknown } | null)?.ring;
      if (ringProblem(ring) === null) void this.adoptRing(ring as Ring);
    });
  }

  helloInfo(): { protocol: number; nodeId: string; ringVersion: number } {
    return { protocol: protocolVersion, nodeId: this.id, ringVersion: this.ringValue?.version ?? 0 };
  }

  // ---- dispatch ----

  handleRequest(type: number, body: unknown, respond: Responder, origin: Origin): void {
    if (this.stopped) {
      respond(MsgType.ERROR, errorBody(new TuneKvError('UNAVAILABLE', `node ${this.id} is shutting down`)));
      return;
    }
    try {
      this.dispatch(type, body, respond, origin);
    } catch (err) {
      if (!(err instanceof TuneKvError)) throw err;
      this.stats.failedRequests++;
      respond(MsgType.ERROR, errorBody(err));
    }
  }

  private dispatch(type: number, body: unknown, respond: Responder, _origin: Origin): void {
    switch (type) {
      case MsgType.HELLO: {
        const b = asRecord(body, 'HELLO');
        if (b.protocol !== protocolVersion) {
          throw new TuneKvError('PROTOCOL_ERROR', `protocol ${String(b.protocol)} is not spoken here; this node speaks ${protocolVersion}`);
        }
        if (typeof b.ringVersion === 'number' && typeof b.addr === 'string' && b.ringVersion > (this.ringValue?.version ?? 0)) {
          this.pullRingFrom(b.addr);
        }
        if (typeof b.agent === 'string' && b.agent.startsWith('node:')) this.peerHello(b.agent.slice(5));
        respond(MsgType.HELLO_OK, this.helloInfo());
        return;
      }
      case MsgType.GET: return this.onGet(body, respond);
      case MsgType.PUT: return this.onPut(parsePut(body, this.requireRing().n, false), body, respond);
      case MsgType.DELETE: return this.onPut(parsePut(body, this.requireRing().n, true), body, respond);
      case MsgType.STATUS: return respond(MsgType.STATUS_REPLY, this.status());
      case MsgType.RING_GET: return respond(MsgType.RING_REPLY, { ring: this.requireRing() });
      case MsgType.REPLICA_READ: return this.onReplicaRead(body, respond);
      case MsgType.REPLICA_WRITE: return this.onReplicaWrite(body, respond);
      case MsgType.JOIN: return this.onJoin(body, respond);
      case MsgType.PING: return respond(MsgType.OK, null);
      case MsgType.RING_PUSH: return this.onRingPush(body, respond);
      default:
        throw new TuneKvError('PROTOCOL_ERROR', `message type ${type} is not a request`);
    }
  }

  private requireRing(): Ring {
    if (!this.ringValue) throw new TuneKvError('UNAVAILABLE', `node ${this.id} has not joined a cluster yet`);
    return this.ringValue;
  }

  private admit(): void {
    if (this.inFlight >= limits.requestsInFlightMax) {
      throw new TuneKvError('OVERLOADED', `node ${this.id} runs ${this.inFlight} requests already (requestsInFlightMax)`);
    }
  }

  // ---- client requests ----

  private replicasFor(ring: Ring, key: string): ReplicaTarget[] {
    return preferenceListForKey(ring, key).primaries.map((node) => ({ node, role: 'primary' as const }));
  }

  private onGet(body: unknown, respond: Responder): void {
    const ring = this.requireRing();
    const req = parseGet(body, ring.n);
    this.admit();
    this.stats.gets++;
    const fsm = new GetFsm({ replicas: this.replicasFor(ring, req.key), quorum: req.quorum, readRepair: this.config.readRepair });
    this.drive(req.key, fsm, req.timeoutMs ?? this.config.requestTimeoutMs, undefined, (reply) => {
      if (!reply.ok) return this.respondFsmError(respond, reply);
      const obj = reply.object;
      const live = obj ? liveSiblings(obj) : [];
      const out: GetReplyBody = {
        found: live.length > 0,
        values: live.map((s) => [s.vtype, s.value!]),
        tombstones: obj ? obj.siblings.length - live.length : 0,
        context: obj ? clockToWire(obj.clock) : [],
        level: req.quorum.level,
        r: req.quorum.r,
        coordinator: this.id,
        replicas: reportsToWire(reply.replicas),
      };
      respond(MsgType.GET_REPLY, out);
    });
  }

  private onPut(req: PutRequest, rawBody: unknown, respond: Responder): void {
    const ring = this.requireRing();
    const replicas = this.replicasFor(ring, req.key);
    if (!replicas.some((r) => r.node === this.id)) {
      if (req.forwarded) throw new TuneKvError('UNAVAILABLE', `ring views differ: ${this.id} is not a replica of this key; retry`);
      this.forwardPut(replicas, { ...(rawBody as object), forwarded: true }, req.value === null, req.timeoutMs, respond);
      return;
    }
    this.admit();
    if (req.value === null) this.stats.deletes++; else this.stats.puts++;
    if (req.value === null && req.context.length === 0) this.readThenDelete(req, replicas, respond);
    else this.coordinatePut(req, replicas, respond);
  }

  /**
   * A delete without a context deletes what a read at the same level sees,
   * as Riak's delete does: a tombstone that superseded nothing would be a
   * sibling of the value and delete nothing. Writes the read did not see
   * survive as siblings. When the read finds no live value nothing is
   * written.
   */
  private readThenDelete(req: PutRequest, replicas: ReplicaTarget[], respond: Responder): void {
    const readQuorum = { ...req.quorum, r: req.quorum.w };
    const fsm = new GetFsm({ replicas, quorum: readQuorum, readRepair: false });
    this.drive(req.key, fsm, req.timeoutMs ?? this.config.requestTimeoutMs, undefined, (reply) => {
      if (!reply.ok) return this.respondFsmError(respond, reply);
      const seen = reply.object;
      if (!seen || liveSiblings(seen).length === 0) {
        const out: PutReplyBody = {
          context: seen ? clockToWire(seen.clock) : [], siblings: seen?.siblings.length ?? 0,
          level: req.quorum.level, w: req.quorum.w, coordinator: this.id, replicas: reportsToWire(reply.replicas),
        };
        respond(MsgType.PUT_REPLY, out);
        return;
      }
      this.coordinatePut({ ...req, context: seen.clock }, replicas, respond);
    });
  }

  private coordinatePut(req: PutRequest, replicas: ReplicaTarget[], respond: Responder): void {
    const lww = req.lww ?? this.config.lww;
    const fsm = new PutFsm({ self: this.id, replicas, quorum: req.quorum });
    const coordinate = () => this.store.mutate(req.key, (cur) => this.buildVersion(cur, req, lww));
    this.drive(req.key, fsm, req.timeoutMs ?? this.config.requestTimeoutMs, coordinate, (reply) => {
      if (!reply.ok) return this.respondFsmError(respond, reply);
      const obj = reply.object!;
      const out: PutReplyBody = {
        context: clockToWire(obj.clock),
        siblings: obj.siblings.length,
        level: req.quorum.level,
        w: req.quorum.w,
        coordinator: this.id,
        replicas: reportsToWire(reply.replicas),
      };
      respond(MsgType.PUT_REPLY, out);
    });
  }

  /** The coordinator's new version, with the sibling and size limits. */
  private buildVersion(cur: VersionedObject | undefined, req: PutRequest, lww: boolean): VersionedObject {
    const next = update(cur, {
      context: req.context, value: req.value, vtype: req.vtype, actor: this.id, nowMs: this.clock.nowMs(), lww, wid: req.wid,
    });
    if (next === cur) return next;
    const before = cur?.siblings.length ?? 0;
    if (next.siblings.length > before && next.siblings.length > limits.siblingsMax) {
      throw new TuneKvError('SIBLINGS_LIMIT',
        `key "${req.key}" would have ${next.siblings.length} concurrent versions (siblingsMax ${limits.siblingsMax}); read it and put with its context to resolve`,
        { siblings: next.siblings.length, limit: limits.siblingsMax });
    }
    if (next.siblings.length > limits.siblingsWarn && next.siblings.length > before) {
      this.stats.siblingWarnings++;
      this.log(`warning: key "${req.key}" has ${next.siblings.length} siblings (siblingsWarn ${limits.siblingsWarn})`);
    }
    const bytes = objectBytes(next);
    if (bytes > limits.objectBytesMax) {
      throw new TuneKvError('TOO_LARGE', `key "${req.key}" would hold ${bytes} bytes across its versions (objectBytesMax ${limits.objectBytesMax}); resolve siblings first`,
        { size: bytes, limit: limits.objectBytesMax });
    }
    return next;
  }

  /** This node is not a replica of the key: hand the put to one that is,
   * trying the primaries in order while they are unreachable. */
  private forwardPut(replicas: readonly ReplicaTarget[], body: object, isDelete: boolean, timeoutMs: number | undefined, respond: Responder): void {
    this.stats.forwardedPuts++;
    const type = isDelete ? MsgType.DELETE : MsgType.PUT;
    const tryAt = (i: number, lastError: TuneKvError | null): void => {
      const target = replicas[i];
      if (!target) {
        const e = new TuneKvError('QUORUM_UNAVAILABLE', `no replica of the key could coordinate: ${lastError?.message ?? 'none'}`,
          { required: 1, received: 0, failed: replicas.length });
        respond(MsgType.ERROR, errorBody(e));
        return;
      }
      this.transport.request(target.node, type, body, timeoutMs ?? this.config.requestTimeoutMs, (err, replyType, replyBody) => {
        if (!err) return respond(replyType, replyBody);
        // A put with a write id is applied once however often it arrives.
        const safe = !err.details.maybeApplied || (body as { wid?: unknown }).wid instanceof Uint8Array;
        if (err.code === 'UNAVAILABLE' && safe) return tryAt(i + 1, err);
        respond(MsgType.ERROR, replyBody ?? errorBody(err));
      });
    };
    tryAt(0, null);
  }

  private respondFsmError(respond: Responder, reply: Extract<FsmReply, { ok: false }>): void {
    this.stats.failedRequests++;
    const e = reply.error;
    respond(MsgType.ERROR, { code: e.code, message: e.message, details: { ...e.details, replicas: reportsToWire((e.details.replicas ?? []) as ReplicaReport[]) } });
  }

  // ---- the effect runner ----

  private drive(key: string, fsm: Fsm, timeoutMs: number, coordinate: (() => ReturnType<ObjectStore['mutate']>) | undefined,
    onReply: (reply: FsmReply) => void): void {
    this.inFlight++;
    let done = false;
    const timer = this.clock.setTimer(timeoutMs, () => { this.timers.delete(timer); run(fsm.onTimeout()); });
    this.timers.add(timer);
    const run = (effects: Effect[]): void => {
      for (const e of effects) {
        switch (e.kind) {
          case 'read':
            this.replicaRead(e.to, key, timeoutMs, (result) => run(fsm.onRead!(e.to, result)));
            break;
          case 'write':
            this.replicaWrite(e.to, key, e.object, e.hintFor, timeoutMs, (ok) => run(fsm.onWrite(e.to, ok)));
            break;
          case 'coordinate':
            assert.ok(coordinate, 'only puts coordinate');
            coordinate().then((m) => {
              run(fsm.onCoordinated!({ ok: true, object: m.object! }));
              m.durable.then(() => run(fsm.onWrite(this.id, true)), () => run(fsm.onWrite(this.id, false)));
            }, (err: unknown) => {
              const error = err instanceof TuneKvError ? err : new TuneKvError('INTERNAL', `local write failed: ${(err as Error).message}`);
              run(fsm.onCoordinated!({ ok: false, error }));
            });
            break;
          case 'reply':
            onReply(e.reply);
            break;
          case 'done':
            assert.ok(!done, 'an FSM is done once');
            done = true;
            this.inFlight--;
            this.clock.clearTimer(timer);
            this.timers.delete(timer);
            this.stats.readRepairs += e.stats.readRepairs;
            this.stats.replicaTimeouts += e.stats.timedOut;
            break;
          default: {
            const never: never = e;
            throw new Error(`unknown effect ${String(never)}`);
          }
        }
      }
    };
    run(fsm.start());
  }

  private replicaRead(to: string, key: string, timeoutMs: number, cb: (r: ReadResult) => void): void {
    if (to === this.id) {
      this.store.read(key).then((object) => cb({ ok: true, object }), () => cb({ ok: false }));
      return;
    }
    this.transport.request(to, MsgType.REPLICA_READ, { key }, timeoutMs, (err, _type, body) => {
      if (err) return cb({ ok: false });
      try {
        const wire = (body as { object?: unknown } | null)?.object ?? null;
        cb({ ok: true, object: wire === null ? undefined : objectFromWire(wire) });
      } catch {
        cb({ ok: false });
      }
    });
  }

  private replicaWrite(to: string, key: string, object: VersionedObject, hintFor: string | undefined, timeoutMs: number,
    cb: (ok: boolean) => void): void {
    if (to === this.id) {
      this.applyReplicaWrite(key, object).then(() => cb(true), () => cb(false));
      return;
    }
    const body = hintFor === undefined ? { key, object: wireOf(object) } : { key, object: wireOf(object), hintFor };
    this.transport.request(to, MsgType.REPLICA_WRITE, body, timeoutMs, (err) => cb(err === null));
  }

  /** Merges an incoming object into ours; resolves when durable. */
  private async applyReplicaWrite(key: string, incoming: VersionedObject): Promise<void> {
    const m = await this.store.mutate(key, (cur) => {
      if (!cur) return incoming;
      const merged = merge(cur, incoming);
      return sameVersions(merged, cur) ? cur : merged;
    });
    await m.durable;
  }

  // ---- peer requests ----

  private onReplicaRead(body: unknown, respond: Responder): void {
    const key = checkKey(asRecord(body, 'REPLICA_READ').key);
    this.stats.replicaReads++;
    this.store.read(key).then(
      (obj) => respond(MsgType.REPLICA_READ_REPLY, { object: obj ? wireOf(obj) : null }),
      (err: Error) => respond(MsgType.ERROR, errorBody(new TuneKvError('INTERNAL', `read failed: ${err.message}`))),
    );
  }

  private onReplicaWrite(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'REPLICA_WRITE');
    const key = checkKey(b.key);
    const incoming = objectFromWire(b.object);
    this.stats.replicaWrites++;
    this.applyReplicaWrite(key, incoming).then(
      () => respond(MsgType.OK, null),
      (err: Error) => respond(MsgType.ERROR, errorBody(err instanceof TuneKvError ? err : new TuneKvError('INTERNAL', `write failed: ${err.message}`))),
    );
  }

  private onJoin(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'JOIN');
    if (typeof b.id !== 'string' || typeof b.addr !== 'string') throw new TuneKvError('INVALID_ARGUMENT', 'JOIN needs id and addr');
    const ring = this.requireRing();
    let next: Ring;
    try {
      next = claim(ring, { id: b.id, addr: b.addr });
    } catch (err) {
      throw new TuneKvError('INVALID_ARGUMENT', (err as Error).message);
    }
    if (next !== ring) {
      // Adopt synchronously so a concurrent JOIN claims on top of this one.
      this.ringValue = next;
      void this.store.writeRaw({ key: ringKey, value: pack(next) });
      this.log(`${b.id} joined at ${b.addr}: ring v${next.version}`);
      this.pushRing(next);
    }
    respond(MsgType.RING_REPLY, { ring: next });
  }

  private onRingPush(body: unknown, respond: Responder): void {
    const ring = asRecord(body, 'RING_PUSH').ring;
    const problem = ringProblem(ring);
    if (problem) throw new TuneKvError('INVALID_ARGUMENT', problem);
    void this.adoptRing(ring as Ring);
    respond(MsgType.OK, null);
  }

  // ---- status ----

  status(): Record<string, unknown> {
    const ring = this.ringValue;
    return {
      nodeId: this.id,
      addr: this.config.listen,
      ready: ring !== undefined && this.announced,
      uptimeMs: this.clock.nowMs() - this.startedMs,
      ring: ring ? {
        version: ring.version, q: ring.q, n: ring.n,
        members: ring.members.map((m) => ({
          id: m.id, addr: m.addr,
          claimed: ring.owners.filter((o) => o === m.id).length,
          replicates: replicatedPartitions(ring, m.id).length,
        })),
      } : null,
      requestsInFlight: this.inFlight,
      writeQueue: this.store.queuedWrites,
      storage: { ...this.store.stats },
      stats: { ...this.stats },
      limits,
    };
  }
}

/** Ring order: higher version wins; equal versions with different content
 * (two seeds admitted joins at once) are ordered by their encoding, so every
 * node picks the same one. */
export function isNewer(a: Ring, b: Ring): boolean {
  if (a.version !== b.version) return a.version > b.version;
  return Buffer.compare(pack(a), pack(b)) > 0;
}
