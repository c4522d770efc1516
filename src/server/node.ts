// A tunekv node: wires the pure core (ring, clocks, request FSMs, failure
// detector) to I/O (peer transport, object store, clock) and answers
// requests. Background services live in their own files: hinted handoff
// (hints.ts), anti-entropy (anti-entropy.ts), tombstone reaping (reaper.ts),
// the fault layer (faults.ts).
//
// The node never knows whether it runs over TCP or inside the simulator: it
// is handed a Storage, a PeerTransport factory, a Clock and a random source.
// It runs each FSM's effects in the order they are returned, and feeds every
// outcome back into the FSM as an event, asynchronously (never re-entrantly).
//
// Invariants: a request gets exactly one response (or none, when the fault
// layer drops it); every FSM's timer is cleared when it is done; the ring
// only moves to a newer version; a replica acknowledges a write only once it
// (and its hint, on a fallback) is durable.

import assert from 'node:assert/strict';
import { liveSiblings, merge, objectBytes, sameVersions, update, writtenSibling } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { GetFsm } from '../core/coordinator/get-fsm.js';
import type { ReadResult } from '../core/coordinator/get-fsm.js';
import { PutFsm } from '../core/coordinator/put-fsm.js';
import { selectTargets } from '../core/coordinator/targets.js';
import type { Targets } from '../core/coordinator/targets.js';
import type { Effect, FsmReply, ReplicaReport, ReplicaTarget } from '../core/coordinator/types.js';
import { Membership, wireHeartbeatsProblem } from '../core/membership/membership.js';
import type { WireHeartbeat } from '../core/membership/membership.js';
import type { Quorum } from '../core/quorum/levels.js';
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
import { AntiEntropy } from './anti-entropy.js';
import type { NodeContext, PeerReply } from './context.js';
import { Faults, parseFaultSpec } from './faults.js';
import { Hints } from './hints.js';
import { NodeMetrics } from './metrics.js';
import { ringKey } from './keyspace.js';
import { ObjectStore, unknown } from './object-store.js';
import { Reaper, tombstonesOnly } from './reaper.js';
import { parseGet, parsePut } from './requests.js';
import type { PutRequest } from './requests.js';

export interface NodeDeps {
  readonly config: NodeConfig;
  readonly storage: Storage;
  readonly clock: Clock;
  /** Uniform in [0, 1): gossip peers, fault-layer loss and jitter. Seeded
   * in the simulator. */
  readonly random: () => number;
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
  sloppyWrites: number;
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

export class TuneNode implements NodeContext {
  readonly id: string;
  readonly config: NodeConfig;
  readonly store: ObjectStore;
  readonly storage: Storage;
  readonly clock: Clock;
  readonly membership: Membership;
  readonly faults: Faults;
  readonly hints: Hints;
  readonly aae: AntiEntropy;
  readonly reaper: Reaper;
  readonly metrics: NodeMetrics;
  /** Peers that came back, and since when: convergence is timed from then. */
  private readonly heals = new Map<string, number>();
  readonly stats: NodeStats = {
    gets: 0, puts: 0, deletes: 0, failedRequests: 0, forwardedPuts: 0, readRepairs: 0,
    replicaReads: 0, replicaWrites: 0, siblingWarnings: 0, replicaTimeouts: 0, sloppyWrites: 0,
  };
  private ringValue: Ring | undefined;
  private readonly random: () => number;
  private readonly transport: PeerTransport;
  private readonly timers = new Set<TimerHandle>();
  private inFlight = 0;
  private readonly startedMs: number;
  private stopped = false;
  private announced = false;
  private readonly logLine: (line: string) => void;

  constructor(deps: NodeDeps) {
    this.config = deps.config;
    this.id = deps.config.id;
    this.storage = deps.storage;
    this.clock = deps.clock;
    this.random = deps.random;
    this.logLine = deps.log ?? (() => {});
    this.startedMs = deps.clock.nowMs();
    this.store = new ObjectStore(deps.storage, deps.config.fsync);
    this.membership = new Membership(this.id, this.startedMs, deps.config);
    this.faults = new Faults(deps.clock, deps.random);
    this.transport = this.faults.wrap(deps.transport(this));
    this.hints = new Hints(this);
    this.aae = new AntiEntropy(this);
    this.reaper = new Reaper(this, () => this.hints.pending);
    this.store.onChange = (key, hash, before, after) => this.aae.hashes.update(key, hash, before, after);
    this.aae.onTombstone = (key) => this.reaper.candidate(key);
    this.metrics = new NodeMetrics(this.id, {
      readRepairs: () => this.stats.readRepairs,
      aaeKeysRepaired: () => this.aae.stats.keysRepaired,
      hintsPending: () => this.hints.pending,
      hintsDelivered: () => this.hints.stats.delivered,
      hintsDropped: () => this.hints.stats.refused + this.hints.stats.expired,
      peerStates: () => {
        const out = { up: 0, suspect: 0, down: 0 };
        for (const p of this.membership.statuses()) out[p.state]++;
        return out;
      },
      requestsInFlight: () => this.inFlight,
    });
    this.membership.onTransition = (id, from, to, nowMs) => {
      if (from === 'down' && to === 'up') this.heals.set(id, nowMs);
      if (to === 'down') this.heals.delete(id);
    };
  }

  /** A peer that came back has converged once no hint for it is left and an
   * anti-entropy round that began after its return found nothing. */
  private checkConvergence(): void {
    const roundEnd = this.aae.stats.lastRoundEndMs;
    for (const [id, sinceMs] of this.heals) {
      if ((this.hints.pendingByOwner()[id] ?? 0) > 0) continue;
      if (this.aae.stats.lastRoundSegmentsDiffering !== 0 || roundEnd <= sinceMs) continue;
      this.metrics.convergenceSeconds.observe((this.clock.nowMs() - sinceMs) / 1000);
      this.heals.delete(id);
    }
  }

  log(line: string): void {
    this.logLine(line);
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

  // ---- NodeContext for the services ----

  ask(to: string, type: number, body: unknown, timeoutMs = this.config.requestTimeoutMs): Promise<PeerReply> {
    return new Promise((resolve, reject) => {
      this.peerRequest(to, type, body, timeoutMs, (err, t, b) => (err ? reject(err) : resolve({ type: t, body: b })));
    });
  }

  /** Every peer request goes through here: outcomes feed the failure detector. */
  private peerRequest(to: string, type: number, body: unknown, timeoutMs: number,
    cb: (err: TuneKvError | null, type: number, body: unknown) => void): void {
    this.transport.request(to, type, body, timeoutMs, (err, t, b) => {
      if (err === null) this.membership.heardFrom(to, this.clock.nowMs());
      else if (err.code === 'UNAVAILABLE') this.membership.refused(to, this.clock.nowMs());
      cb(err, t, b);
    });
  }

  // ---- lifecycle ----

  /** Opens storage, loads the ring, hints and anti-entropy hashes. A node
   * with no ring and no seeds founds a cluster; one with seeds must join()
   * after it listens. */
  async open(): Promise<void> {
    await this.storage.open();
    const bytes = await this.storage.get(ringKey);
    if (bytes) {
      const ring = unpack(bytes);
      const problem = ringProblem(ring);
      if (problem) throw new Error(`stored ring is damaged: ${problem}`);
      this.setRing(ring as Ring);
    }
    const self = { id: this.id, addr: this.config.listen };
    if (!this.ringValue && this.config.join.length === 0) {
      await this.adoptRing(createRing(this.config.q, this.config.n, self));
    } else if (this.ringValue && this.config.join.length === 0) {
      // Restarted on another address: claim() only updates our address.
      await this.adoptRing(claim(this.ringValue, self));
    }
    await this.hints.load();
    const keys = await this.aae.build();
    if (keys > 0 || this.hints.pending > 0) this.log(`${this.id} opened ${keys} keys, ${this.hints.pending} hints`);
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
      await this.sleep(Math.min(1000, 100 * (attempt + 1)));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const h = this.clock.setTimer(ms, () => { this.timers.delete(h); resolve(); });
      this.timers.add(h);
    });
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
    await Promise.all(peers.map((m) => this.ask(m.id, MsgType.PING, {}, this.config.peerConnectTimeoutMs).catch(() => undefined)));
    this.announced = true;
  }

  /** Starts gossip, hinted handoff, anti-entropy and the reaper. */
  startBackground(): void {
    this.every(() => this.config.gossipIntervalMs, () => this.gossipRound());
    this.every(() => this.config.handoffIntervalMs, () => this.hints.deliver());
    this.every(() => this.config.aaeIntervalMs, async () => {
      await this.aae.round((ms) => this.sleep(ms));
      this.checkConvergence();
    });
    this.every(() => Math.max(100, Math.min(1000, this.config.tombstoneReapDelayMs / 4)), () => this.reaper.run());
  }

  /** Runs `task` every interval, one run at a time, until the node stops. */
  private every(intervalMs: () => number, task: () => Promise<void>): void {
    const schedule = (): void => {
      if (this.stopped) return;
      const h = this.clock.setTimer(intervalMs(), () => {
        this.timers.delete(h);
        task().catch((err: Error) => this.log(`${this.id} background task failed: ${err.message}`)).finally(schedule);
      });
      this.timers.add(h);
    };
    schedule();
  }

  /** A peer opened a connection to us: it is up. */
  peerHello(id: string): void {
    this.transport.peerIsUp(id);
    this.membership.heardFrom(id, this.clock.nowMs());
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) this.clock.clearTimer(t);
    this.timers.clear();
    this.transport.close();
    await this.store.drain();
    this.store.close();
    await this.storage.close();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  // ---- ring and gossip ----

  private setRing(ring: Ring): void {
    this.ringValue = ring;
    this.membership.track(ring.members.map((m) => m.id), this.clock.nowMs());
  }

  /** Replaces the ring when `ring` is newer; persists it. */
  async adoptRing(ring: Ring): Promise<boolean> {
    const mine = this.ringValue;
    if (mine && !isNewer(ring, mine)) return false;
    this.setRing(ring);
    await this.store.writeRaw({ key: ringKey, value: pack(ring) });
    if (!mine || mine.members.length !== ring.members.length) {
      this.log(`ring v${ring.version}: ${ring.members.map((m) => `${m.id}@${m.addr}`).join(', ')}`);
    }
    return true;
  }

  private pushRing(ring: Ring): void {
    for (const m of ring.members) {
      if (m.id === this.id) continue;
      this.peerRequest(m.id, MsgType.RING_PUSH, { ring }, this.config.requestTimeoutMs, () => {});
    }
  }

  /** A peer said its ring is newer than ours: fetch it. */
  pullRingFrom(addr: string): void {
    this.transport.requestAddr(addr, MsgType.RING_GET, {}, this.config.requestTimeoutMs, (err, _t, body) => {
      if (err) return;
      const ring = (body as { ring?: unknown } | null)?.ring;
      if (ringProblem(ring) === null) this.adoptRing(ring as Ring).catch((e: Error) => this.log(`ring not stored: ${e.message}`));
    });
  }

  private pullRingFromPeer(id: string): void {
    const addr = this.addrOf(id);
    if (addr) this.pullRingFrom(addr);
  }

  /** Push-pull gossip with a few peers. */
  private async gossipRound(): Promise<void> {
    const now = this.clock.nowMs();
    const table = this.membership.tick(now, this.hints.pending);
    const body = { table, ringVersion: this.ringValue?.version ?? 0 };
    const peers = this.membership.gossipTargets(this.config.gossipFanout, this.random);
    await Promise.all(peers.map(async (peer) => {
      try {
        const r = await this.ask(peer, MsgType.GOSSIP, body, this.config.gossipIntervalMs * 4);
        this.onGossipReply(peer, r.body);
      } catch {
        // The detector learns from silence and refusals; nothing else to do.
      }
    }));
    this.membership.refresh(this.clock.nowMs());
  }

  private onGossipReply(peer: string, body: unknown): void {
    const b = (body ?? {}) as { table?: unknown; ringVersion?: unknown };
    if (wireHeartbeatsProblem(b.table) !== null) return;
    this.membership.merge(b.table as WireHeartbeat[], this.clock.nowMs());
    if (typeof b.ringVersion === 'number' && b.ringVersion > (this.ringValue?.version ?? 0)) this.pullRingFromPeer(peer);
  }

  helloInfo(): { protocol: number; nodeId: string; ringVersion: number } {
    return { protocol: protocolVersion, nodeId: this.id, ringVersion: this.ringValue?.version ?? 0 };
  }

  // ---- dispatch ----

  handleRequest(type: number, body: unknown, respond: Responder, origin: Origin): void {
    if (origin.peer !== undefined) {
      // Across a partition the request never arrives: drop it unanswered.
      if (this.faults.isBlocked(origin.peer)) return;
      this.membership.heardFrom(origin.peer, this.clock.nowMs());
      respond = this.faults.reply(origin.peer, respond);
    }
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

  private dispatch(type: number, body: unknown, respond: Responder, origin: Origin): void {
    switch (type) {
      case MsgType.HELLO: return this.onHello(body, respond);
      case MsgType.GET: return this.onGet(body, respond);
      case MsgType.PUT: return this.onPut(parsePut(body, this.requireRing().n, false), body, respond);
      case MsgType.DELETE: return this.onPut(parsePut(body, this.requireRing().n, true), body, respond);
      case MsgType.STATUS: return this.answer(respond, MsgType.STATUS_REPLY, this.statusWithMetrics());
      case MsgType.RING_GET: return respond(MsgType.RING_REPLY, { ring: this.requireRing() });
      case MsgType.REPLICA_READ: return this.onReplicaRead(body, respond);
      case MsgType.REPLICA_WRITE: return this.onReplicaWrite(body, respond);
      case MsgType.JOIN: return this.onJoin(body, respond);
      case MsgType.RING_PUSH: return this.onRingPush(body, respond);
      case MsgType.PING: return respond(MsgType.OK, null);
      case MsgType.GOSSIP: return this.onGossip(body, respond, origin);
      case MsgType.REPLICA_REAP: return this.answer(respond, MsgType.OK, this.reaper.onReap(body).then((removed) => ({ removed })));
      case MsgType.AAE_SEGMENTS: return respond(MsgType.AAE_SEGMENTS_REPLY, this.aae.segmentsFor(body));
      case MsgType.AAE_KEYS: return this.answer(respond, MsgType.AAE_KEYS_REPLY, this.aae.keysFor(body));
      case MsgType.ADMIN_FAULTS: {
        this.faults.set(parseFaultSpec(body));
        this.log(`${this.id} faults: ${JSON.stringify(this.faults.current)}`);
        return respond(MsgType.OK, null);
      }
      default:
        throw new TuneKvError('PROTOCOL_ERROR', `message type ${type} is not a request`);
    }
  }

  /** Responds with a promise's value, or its error as an ERROR frame. */
  private answer(respond: Responder, type: number, result: Promise<unknown>): void {
    result.then((b) => respond(type, b), (err: Error) => respond(MsgType.ERROR,
      errorBody(err instanceof TuneKvError ? err : new TuneKvError('INTERNAL', err.message))));
  }

  private onHello(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'HELLO');
    if (b.protocol !== protocolVersion) {
      throw new TuneKvError('PROTOCOL_ERROR', `protocol ${String(b.protocol)} is not spoken here; this node speaks ${protocolVersion}`);
    }
    if (typeof b.ringVersion === 'number' && typeof b.addr === 'string' && b.ringVersion > (this.ringValue?.version ?? 0)) {
      this.pullRingFrom(b.addr);
    }
    if (typeof b.agent === 'string' && b.agent.startsWith('node:')) this.peerHello(b.agent.slice(5));
    respond(MsgType.HELLO_OK, this.helloInfo());
  }

  private onGossip(body: unknown, respond: Responder, origin: Origin): void {
    const b = asRecord(body, 'GOSSIP');
    const problem = wireHeartbeatsProblem(b.table);
    if (problem) throw new TuneKvError('INVALID_ARGUMENT', problem);
    this.membership.merge(b.table as WireHeartbeat[], this.clock.nowMs());
    if (typeof b.ringVersion === 'number' && b.ringVersion > (this.ringValue?.version ?? 0) && origin.peer) this.pullRingFromPeer(origin.peer);
    respond(MsgType.GOSSIP_REPLY, { table: this.membership.table(), ringVersion: this.ringValue?.version ?? 0 });
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

  /** The sloppy quorum for a key, as this node's failure detector sees it. */
  private targetsFor(ring: Ring, key: string, quorum: Quorum): Targets {
    return selectTargets(preferenceListForKey(ring, key), (id) => this.membership.isUp(id), !quorum.strong);
  }

  private onGet(body: unknown, respond: Responder): void {
    const ring = this.requireRing();
    const req = parseGet(body, ring.n);
    this.admit();
    this.stats.gets++;
    const { targets, down } = this.targetsFor(ring, req.key, req.quorum);
    const fsm = new GetFsm({ replicas: targets, down, quorum: req.quorum, readRepair: this.config.readRepair });
    this.drive(req.key, fsm, req.timeoutMs ?? this.config.requestTimeoutMs, undefined, (reply) => {
      if (!reply.ok) return this.respondFsmError(respond, reply);
      const obj = reply.object;
      const live = obj ? liveSiblings(obj) : [];
      if (live.length > 0) this.metrics.observeRead(obj!.siblings.length);
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
    }, 'get', req.quorum.level);
  }

  private onPut(req: PutRequest, rawBody: unknown, respond: Responder): void {
    const ring = this.requireRing();
    const { targets, down } = this.targetsFor(ring, req.key, req.quorum);
    if (!targets.some((r) => r.node === this.id)) {
      if (targets.length === 0) {
        throw new TuneKvError('QUORUM_UNAVAILABLE', `${req.quorum.level} write cannot reach its quorum: no replica of the key is up`,
          { required: req.quorum.w, received: 0, failed: down.length, replicas: down.map((node) => ({ node, role: 'primary', outcome: 'failed' })) });
      }
      if (req.forwarded) throw new TuneKvError('UNAVAILABLE', `views differ: ${this.id} is not a replica of this key here; retry`);
      this.forwardPut(targets, { ...(rawBody as object), forwarded: true }, req.value === null, req.timeoutMs, respond);
      return;
    }
    this.admit();
    if (req.value === null) this.stats.deletes++; else this.stats.puts++;
    if (targets.some((t) => t.role === 'fallback')) this.stats.sloppyWrites++;
    if (req.value === null && !req.contextGiven) this.readThenDelete(req, { targets, down }, respond);
    else this.coordinatePut(req, { targets, down }, respond);
  }

  /**
   * A delete without a context deletes what a read at the same level sees,
   * as Riak's delete does: a tombstone that superseded nothing would be a
   * sibling of the value and delete nothing. Writes the read did not see
   * survive as siblings. When the read finds no live value nothing is
   * written.
   */
  private readThenDelete(req: PutRequest, t: Targets, respond: Responder): void {
    const readQuorum = { ...req.quorum, r: req.quorum.w };
    const fsm = new GetFsm({ replicas: t.targets, down: t.down, quorum: readQuorum, readRepair: false });
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
      this.coordinatePut({ ...req, context: seen.clock, contextGiven: true }, t, respond);
    }, 'get', req.quorum.level);
  }

  private coordinatePut(req: PutRequest, t: Targets, respond: Responder): void {
    const lww = req.lww ?? this.config.lww;
    const selfHint = t.targets.find((x) => x.node === this.id)?.hintFor;
    const fsm = new PutFsm({ self: this.id, replicas: t.targets, down: t.down, quorum: req.quorum });
    const coordinate = async (): Promise<{ object: VersionedObject; durable: Promise<void> }> => {
      const m = await this.store.mutate(req.key, (cur) => this.buildVersion(cur, req, lww));
      const hint = selfHint === undefined ? Promise.resolve() : this.hints.add(selfHint, req.key);
      return { object: m.object!, durable: Promise.all([m.durable, hint]).then(() => undefined) };
    };
    this.drive(req.key, fsm, req.timeoutMs ?? this.config.requestTimeoutMs, coordinate, (reply) => {
      if (!reply.ok) return this.respondFsmError(respond, reply);
      const obj = reply.object!;
      if (req.value === null && tombstonesOnly(obj)) this.reaper.candidate(req.key);
      if (obj.siblings.length > 1) this.metrics.conflicts.inc();
      const written = writtenSibling(obj, this.id, req.wid);
      const out: PutReplyBody = {
        context: clockToWire(obj.clock),
        dot: written ? [written.actor, written.counter] : null,
        siblings: obj.siblings.length,
        level: req.quorum.level,
        w: req.quorum.w,
        coordinator: this.id,
        replicas: reportsToWire(reply.replicas),
      };
      respond(MsgType.PUT_REPLY, out);
    }, req.value === null ? 'delete' : 'put', req.quorum.level);
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
   * trying them in order while they are unreachable. */
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
      this.peerRequest(target.node, type, body, timeoutMs ?? this.config.requestTimeoutMs, (err, replyType, replyBody) => {
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

  private drive(key: string, fsm: Fsm, timeoutMs: number,
    coordinate: (() => Promise<{ object: VersionedObject; durable: Promise<void> }>) | undefined,
    onReply: (reply: FsmReply) => void, op: string, level: string): void {
    this.inFlight++;
    let done = false;
    const startedMs = this.clock.elapsedMs();
    const acceptedMs = this.clock.nowMs();
    const timer = this.clock.setTimer(timeoutMs, () => { this.timers.delete(timer); run(fsm.onTimeout()); });
    this.timers.add(timer);
    const run = (effects: Effect[]): void => {
      for (const e of effects) {
        switch (e.kind) {
          case 'read':
            this.replicaRead(e.to, key, timeoutMs, (result) => run(fsm.onRead!(e.to, result)));
            break;
          case 'write':
            this.replicaWrite(e.to, key, e.object, e.hintFor, timeoutMs, (ok) => run(fsm.onWrite(e.to, ok)),
              coordinate ? acceptedMs : undefined);
            break;
          case 'coordinate':
            assert.ok(coordinate, 'only puts coordinate');
            coordinate().then((m) => {
              run(fsm.onCoordinated!({ ok: true, object: m.object }));
              m.durable.then(() => run(fsm.onWrite(this.id, true)), () => run(fsm.onWrite(this.id, false)));
            }, (err: unknown) => {
              const error = err instanceof TuneKvError ? err : new TuneKvError('INTERNAL', `local write failed: ${(err as Error).message}`);
              run(fsm.onCoordinated!({ ok: false, error }));
            });
            break;
          case 'reply': {
            const outcome = e.reply.ok ? 'ok' : e.reply.error.code;
            this.metrics.observeRequest(op, level, outcome, (this.clock.elapsedMs() - startedMs) / 1000);
            if (outcome === 'QUORUM_UNAVAILABLE' || outcome === 'TIMEOUT') this.metrics.quorumFailures.inc({ op, code: outcome });
            onReply(e.reply);
            break;
          }
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
      const known = this.store.peek(key);
      // A cached object answers in a microtask: no storage round trip, and
      // still never re-entering the FSM while it is handing out effects.
      if (known !== unknown) queueMicrotask(() => cb({ ok: true, object: known }));
      else this.store.read(key).then((object) => cb({ ok: true, object }), () => cb({ ok: false }));
      return;
    }
    this.peerRequest(to, MsgType.REPLICA_READ, { key }, timeoutMs, (err, _type, body) => {
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
    cb: (ok: boolean) => void, acceptedMs?: number): void {
    if (to === this.id) {
      this.applyReplicaWrite(key, object, hintFor).then(() => cb(true), () => cb(false));
      return;
    }
    const body: Record<string, unknown> = { key, object: wireOf(object) };
    if (hintFor !== undefined) body.hintFor = hintFor;
    if (acceptedMs !== undefined) body.acceptedMs = acceptedMs;
    this.peerRequest(to, MsgType.REPLICA_WRITE, body, timeoutMs, (err) => cb(err === null));
  }

  /** Merges an incoming object into ours; on a fallback also keeps a hint
   * for the primary it stands in for. Resolves when both are durable. */
  private async applyReplicaWrite(key: string, incoming: VersionedObject, hintFor?: string): Promise<void> {
    const hint = hintFor !== undefined && hintFor !== this.id ? this.hints.add(hintFor, key) : Promise.resolve();
    hint.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
    const m = await this.store.mutate(key, (cur) => {
      if (!cur) return incoming;
      const merged = merge(cur, incoming);
      return sameVersions(merged, cur) ? cur : merged;
    });
    await Promise.all([m.durable, hint]);
  }

  // ---- peer requests ----

  private onReplicaRead(body: unknown, respond: Responder): void {
    const key = checkKey(asRecord(body, 'REPLICA_READ').key);
    this.stats.replicaReads++;
    this.answer(respond, MsgType.REPLICA_READ_REPLY, this.store.read(key).then((obj) => ({ object: obj ? wireOf(obj) : null })));
  }

  private onReplicaWrite(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'REPLICA_WRITE');
    const key = checkKey(b.key);
    const incoming = objectFromWire(b.object);
    const hintFor = typeof b.hintFor === 'string' ? b.hintFor : undefined;
    const acceptedMs = typeof b.acceptedMs === 'number' ? b.acceptedMs : undefined;
    this.stats.replicaWrites++;
    this.answer(respond, MsgType.OK, this.applyReplicaWrite(key, incoming, hintFor).then(() => {
      // Coordinator and replica clocks: exact on one machine, skewed across.
      if (acceptedMs !== undefined) this.metrics.lagSeconds.observe(Math.max(0, this.clock.nowMs() - acceptedMs) / 1000);
      return null;
    }));
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
      this.setRing(next);
      this.store.writeRaw({ key: ringKey, value: pack(next) }).catch((e: Error) => this.log(`ring not stored: ${e.message}`));
      this.log(`${b.id} joined at ${b.addr}: ring v${next.version}`);
      this.pushRing(next);
    }
    respond(MsgType.RING_REPLY, { ring: next });
  }

  private onRingPush(body: unknown, respond: Responder): void {
    const ring = asRecord(body, 'RING_PUSH').ring;
    const problem = ringProblem(ring);
    if (problem) throw new TuneKvError('INVALID_ARGUMENT', problem);
    this.adoptRing(ring as Ring).catch((e: Error) => this.log(`ring not stored: ${e.message}`));
    respond(MsgType.OK, null);
  }

  // ---- status ----

  /** Status plus the headline metrics. */
  async statusWithMetrics(): Promise<Record<string, unknown>> {
    const failures = (await this.metrics.quorumFailures.get()).values.reduce((a, v) => a + v.value, 0);
    const conflicts = (await this.metrics.conflicts.get()).values.reduce((a, v) => a + v.value, 0);
    return {
      ...this.status(),
      metrics: {
        url: this.metricsUrl,
        consistencyLagP95Ms: await this.metrics.lagP95Ms(),
        readsOneVersionRatio: this.metrics.oneVersionRatio,
        conflicts,
        quorumFailures: failures,
      },
    };
  }

  /** Where this node's Prometheus metrics are served, if they are. */
  metricsUrl: string | null = null;

  status(): Record<string, unknown> {
    const ring = this.ringValue;
    const now = this.clock.nowMs();
    return {
      nodeId: this.id,
      addr: this.config.listen,
      ready: ring !== undefined && this.announced,
      uptimeMs: now - this.startedMs,
      ring: ring ? {
        version: ring.version, q: ring.q, n: ring.n,
        members: ring.members.map((m) => ({
          id: m.id, addr: m.addr,
          claimed: ring.owners.filter((o) => o === m.id).length,
          replicates: replicatedPartitions(ring, m.id).length,
        })),
      } : null,
      peers: this.membership.statuses().map((p) => ({
        id: p.id, state: p.state, sinceMs: p.sinceMs, forMs: now - p.sinceMs, lastHeardAgoMs: now - p.lastHeardMs,
        hintsPending: p.heartbeat.hintsPending,
      })),
      hints: { pending: this.hints.pending, byOwner: this.hints.pendingByOwner(), ...this.hints.stats },
      antiEntropy: { ...this.aae.stats },
      reaper: { waiting: this.reaper.waiting, ...this.reaper.stats },
      faults: { ...this.faults.current, dropped: this.faults.dropped },
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
