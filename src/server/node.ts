// A tunekv node: the composition root. It builds the rooms and wires them
// to I/O; each room owns one role and one door:
//
//   router.ts         who the caller is, what it may send, which room answers
//   coordinator.ts    clients' gets and puts as state machines, with replica I/O
//   replica.ts        the vnode side: reads, merges, hints kept, reaps
//   cluster-view.ts   the ring, joins, ring pushes and pulls, gossip, and
//                     (on the claimant) staged changes and transition steps
//   transfers.ts      receiving partitions in a transition; sweeping data
//                     this node no longer holds to the owners
//   status.ts         what STATUS shows (summary for readers, details for admins)
//
// and the background services: hinted handoff (hints.ts), anti-entropy
// (anti-entropy.ts), tombstone reaping (reaper.ts), the fault layer
// (faults.ts).
//
// The node never knows whether it runs over TCP or inside the simulator: it
// is handed a Storage, a PeerTransport factory, a Clock and a random source.
// Start order: open storage, load the ring, hints and anti-entropy hashes
// (open), join if needed, announce, then start the background services.
// Stop order: refuse new requests, clear timers, close the transport, drain
// and close storage.

import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import type { Sibling } from '../core/clock/object.js';
import { Membership } from '../core/membership/membership.js';
import { memberOf, partitionOfKey } from '../core/ring/ring.js';
import { holds } from '../core/ring/transition.js';
import type { Ring } from '../core/ring/ring.js';
import type { NodeConfig } from '../config.js';
import { TuneKvError } from '../errors.js';
import { limits } from '../limits.js';
import type { Clock, TimerHandle } from '../io/clock.js';
import type { Storage } from '../io/storage.js';
import type { Caller, PeerTransport, Responder } from '../io/transport.js';
import { MsgType } from '../protocol/messages.js';
import { AntiEntropy } from './anti-entropy.js';
import { ClusterView } from './cluster-view.js';
import type { NodeContext, PeerReply } from './context.js';
import { contextKey } from '../security/context-mac.js';
import { ConflictLog, parseConflictQuery, recordToWire } from './conflict-log.js';
import { Coordinator } from './coordinator.js';
import { DiskHealth, probeStorage } from './disk-health.js';
import { Faults, parseFaultSpec } from './faults.js';
import { Hints } from './hints.js';
import { incKey, ringKey, segmentOfStorageKey } from './keyspace.js';
import { NodeMetrics } from './metrics.js';
import type { ReplicationKind } from './metrics.js';
import { ObjectStore } from './object-store.js';
import type { BatchWindow } from './object-store.js';
import { Reaper } from './reaper.js';
import { answer } from './replies.js';
import { Replica } from './replica.js';
import { Router, Session } from './router.js';
import type { ConnectionInfo, Rooms, Security } from './router.js';
import { statusFull, statusSummary } from './status.js';
import { Transfers } from './transfers.js';
import { eventsAsLines, silentEvents } from './log.js';
import type { EventLog } from './log.js';
import type { StatusSources } from './status.js';

export interface NodeDeps {
  readonly config: NodeConfig;
  readonly storage: Storage;
  readonly clock: Clock;
  /** Uniform in [0, 1): gossip peers, fault-layer loss and jitter. Seeded
   * in the simulator. */
  readonly random: () => number;
  /** Builds the peer transport; it may ask the node for addresses. */
  transport(node: TuneNode): PeerTransport;
  /** How callers prove who they are. Default (the simulator, tests): a
   * random cluster key and no users, so only in-process callers get in. */
  readonly security?: Security;
  /** When a storage batch starts after a quiet spell (object-store.ts):
   * at the end of the event loop's turn (default, real nodes), or in the
   * next microtask (the simulator, whose manual clock would otherwise fire
   * the next timer before a write lands). */
  readonly batchWindow?: BatchWindow;
  log?(line: string): void;
  /** Structured events (server/log.ts): peers up and down, handoff,
   * anti-entropy repairs, ring changes, faults, storage. Free-text lines
   * go here too (as `note`) when no `log` is given. */
  readonly events?: EventLog;
}

/** Open connections by kind, reported by whatever listens (TCP). */
export type ConnectionCounts = Record<'peer' | 'client' | 'handshaking', number>;

function defaultSecurity(): Security {
  return { clusterKey: randomBytes(32), users: null, fakeSaltKey: randomBytes(32), peerCertRequired: false };
}

export class TuneNode implements NodeContext {
  readonly id: string;
  readonly config: NodeConfig;
  readonly store: ObjectStore;
  /** The disk failure policy: after a failed write, refuse writes until a
   * probe write succeeds (disk-health.ts). */
  readonly health: DiskHealth;
  readonly storage: Storage;
  readonly clock: Clock;
  readonly membership: Membership;
  readonly faults: Faults;
  readonly hints: Hints;
  readonly aae: AntiEntropy;
  readonly reaper: Reaper;
  readonly metrics: NodeMetrics;
  readonly view: ClusterView;
  readonly replica: Replica;
  readonly coordinator: Coordinator;
  readonly router: Router;
  readonly transfers: Transfers;
  readonly security: Security;
  /** Conflicts this node saw (conflict-log.ts). */
  readonly conflicts: ConflictLog;
  /** Called once an exiting node handed everything off (start-node stops
   * the process; the simulator takes the node out). */
  onExited: () => void = () => {};
  /** Set once the node must go (it left, or was removed): whoever runs it
   * checks this after wiring onExited, so an exit asked for during start
   * (a removed node learns it while announcing) is not lost. */
  exitRequested = false;

  private requestExit(): void {
    this.exitRequested = true;
    this.onExited();
  }
  /** Where this node's Prometheus metrics are served, if they are. */
  metricsUrl: string | null = null;
  /** Set by the listener, for status and metrics. */
  connections: () => ConnectionCounts = () => ({ peer: 0, client: 0, handshaking: 0 });
  /** Peers that came back, and since when: convergence is timed from then. */
  private readonly heals = new Map<string, number>();
  /** Peers this node's failure detector does not see up, and since when
   * (local wall clock) at least one has not been: tunekv_partition_seconds. */
  private readonly notUp = new Set<string>();
  private notUpSinceMs: number | undefined;
  private readonly random: () => number;
  private readonly transport: PeerTransport;
  private readonly timers = new Set<TimerHandle>();
  private readonly startedMs: number;
  private stopped = false;
  private readonly logLine: (line: string) => void;
  readonly events: EventLog;

  constructor(deps: NodeDeps) {
    this.config = deps.config;
    this.id = deps.config.id;
    this.storage = deps.storage;
    this.clock = deps.clock;
    this.random = deps.random;
    this.security = deps.security ?? defaultSecurity();
    const events = deps.events;
    this.events = events ?? (deps.log ? eventsAsLines(deps.log) : silentEvents);
    this.logLine = deps.log ?? (events ? (l) => events.event('info', 'note', { msg: l }) : () => {});
    this.startedMs = deps.clock.nowMs();
    this.health = new DiskHealth({
      clock: deps.clock, probe: probeStorage(deps.storage), nodeId: this.id,
      onStateChange: (_from, to, cause) => {
        if (to === 'unhealthy') this.events.event('error', 'storage_failed', { cause, probeIntervalMs: this.health.probeIntervalMs, writes: 'refused' });
        else this.events.event('info', 'storage_recovered', { writes: 'accepted' });
      },
    });
    this.store = new ObjectStore(deps.storage, deps.config.fsync, {
      batchWindow: deps.batchWindow ?? 'turn',
      health: this.health, log: (l) => this.log(`${this.id} ${l}`), cacheBytesMax: deps.config.objectCacheBytes,
    });
    this.membership = new Membership(this.id, this.startedMs, deps.config);
    this.faults = new Faults(deps.clock, deps.random);
    this.transport = this.faults.wrap(deps.transport(this));
    this.hints = new Hints(this);
    this.aae = new AntiEntropy(this);
    this.reaper = new Reaper(this, () => this.hints.pending + this.transfers.stats.sweepPending);
    this.store.onChange = (key, hash, before, after) => this.aae.hashes.update(key, hash, before, after);
    this.aae.onTombstone = (key) => this.reaper.candidate(key);
    this.metrics = this.makeMetrics();
    this.membership.onTransition = (id, from, to, nowMs) => {
      if (from === 'down' && to === 'up') this.heals.set(id, nowMs);
      if (to === 'down') this.heals.delete(id);
      if (to === 'up') this.notUp.delete(id); else this.notUp.add(id);
      if (this.notUp.size === 0) this.notUpSinceMs = undefined; else this.notUpSinceMs ??= nowMs;
      // One line per state change of a peer in this node's failure
      // detector (never per probe): the rate limit covers a flapping peer.
      this.events.event(to === 'up' ? 'info' : 'warn', `peer_${to}`, { peer: id, from });
    };
    this.conflicts = new ConflictLog({ storage: this.storage, clock: this.clock, writeRaw: (op) => this.store.writeRaw(op) });
    this.view = new ClusterView({
      config: this.config, clock: this.clock, random: this.random, store: this.store, membership: this.membership,
      transport: this.transport, ask: (to, type, body, timeoutMs) => this.ask(to, type, body, timeoutMs),
      hintsPending: () => this.hints.pending + this.transfers.stats.sweepPending, sleep: (ms) => this.sleep(ms), log: (l) => this.log(l),
      events: this.events,
      onRing: () => { if (!this.stopped) this.transfers.kick(); },
    });
    this.transfers = new Transfers(this, {
      mergeLocal: (key, obj) => this.replica.write(key, obj),
      exchange: (ring, p, peer) => this.aae.exchangeStrict(ring, p, peer, true),
      hasHint: (sk) => this.hints.holdsFor(sk),
      hintsPending: () => this.hints.pending,
      keysAfter: (p, q, after) => this.aae.hashes.partitionKeys(p, q, after === null ? -1 : segmentOfStorageKey(after)),
      onExited: () => this.requestExit(),
    });
    this.replica = new Replica({
      id: this.id, clock: this.clock, store: this.store, hints: this.hints, aae: this.aae, reaper: this.reaper,
      metrics: this.metrics, conflicts: this.conflicts, checkWritable: () => this.checkWritable(), log: (l) => this.log(l),
      isMember: (id) => this.view.ring !== undefined && memberOf(this.view.ring, id) !== undefined,
      ringVersion: () => this.view.ring?.version ?? 0,
      holdsKey: (key) => {
        const ring = this.view.ring;
        return ring !== undefined && holds(ring, this.id, partitionOfKey(ring, key));
      },
    });
    this.aae.onMergeConflict = (key, before, merged) => this.replica.noteMergeConflict(key, before, merged);
    this.coordinator = new Coordinator({
      id: this.id, config: this.config, clock: this.clock, store: this.store, membership: this.membership,
      hints: this.hints, reaper: this.reaper, replica: this.replica, metrics: this.metrics, conflicts: this.conflicts, random: this.random,
      requireRing: () => this.view.requireRing(),
      refreshRing: (peer) => this.view.refreshFrom(peer),
      contextKey: contextKey(this.security.clusterKey),
      peerRequest: (to, type, body, timeoutMs, cb) => this.peerRequest(to, type, body, timeoutMs, cb),
      checkWritable: () => this.checkWritable(),
      addTimer: (h) => this.timers.add(h), removeTimer: (h) => this.timers.delete(h), log: (l) => this.log(l),
    });
    this.router = new Router({
      id: this.id, clock: this.clock, rooms: this.rooms(),
      peerFilter: (peer, respond) => {
        if (this.faults.isBlocked(peer)) return null;
        if (this.view.isRemovedPeer(peer)) {
          throw new TuneKvError('NODE_REMOVED', `${peer} was removed from this cluster: wipe its data directory and join it anew`);
        }
        this.membership.heardFrom(peer, this.clock.nowMs());
        return this.faults.reply(peer, respond);
      },
      isStopped: () => this.stopped,
      refused: (code) => this.metrics.refusedRequests.inc({ code }),
      authFailed: (method) => this.metrics.authFailures.inc({ method }),
      log: (l) => this.log(l),
    });
  }

  private makeMetrics(): NodeMetrics {
    return new NodeMetrics(this.id, {
      readRepairs: () => this.coordinator.stats.readRepairs,
      aaeKeysRepaired: () => this.aae.stats.keysRepaired,
      hintsPending: () => this.hints.pending,
      hintsDelivered: () => this.hints.stats.delivered,
      hintsDropped: () => this.hints.stats.refused + this.hints.stats.expired,
      peerStates: () => {
        const out = { up: 0, suspect: 0, down: 0 };
        for (const p of this.membership.statuses()) out[p.state]++;
        return out;
      },
      requestsInFlight: () => this.coordinator.requestsInFlight,
      storageHealthy: () => (this.health.writable ? 1 : 0),
      storageWriteFailures: () => this.health.status().failedBatches,
      connections: () => this.connections(),
      quarantinedObjects: () => this.store.stats.quarantined,
      partitionSeconds: () => this.partitionSeconds(),
    });
  }

  /** Seconds since this node last saw every peer up (0 while it does). A
   * peer that left the ring stops counting: removal drops it from the
   * membership, which reports no transition for it, so it is checked here. */
  private partitionSeconds(): number {
    const ring = this.view.ring;
    if (ring !== undefined) for (const id of this.notUp) if (memberOf(ring, id) === undefined) this.notUp.delete(id);
    if (this.notUp.size === 0) this.notUpSinceMs = undefined;
    return this.notUpSinceMs === undefined ? 0 : Math.max(0, this.clock.nowMs() - this.notUpSinceMs) / 1000;
  }

  /** Object bytes sent to peers for replication (NodeContext). */
  replicationSent(kind: ReplicationKind, bytes: number): void {
    this.metrics.countReplicationBytes(kind, bytes);
  }

  /** The rooms as the router sees them. */
  private rooms(): Rooms {
    return {
      onGet: (body, respond) => this.coordinator.onGet(body, respond),
      onPut: (body, isDelete, fromPeer, trusted, respond, user) => this.coordinator.onPut(body, isDelete, fromPeer, trusted, respond, user),
      onTyped: (type, body, fromPeer, respond) => this.coordinator.onTyped(type, body, fromPeer, respond),
      onStatus: (detail, respond) => answer(respond, MsgType.STATUS_REPLY, this.statusFor(detail)),
      // A standby node has no ring yet: it says so (ring null) rather than
      // failing, so a client can still reach it for status.
      onRingGet: (respond) => respond(MsgType.RING_REPLY, { ring: this.view.ring ?? null }),
      onFaults: (body, respond) => {
        const had = this.faults.active;
        this.faults.set(parseFaultSpec(body));
        const active = this.faults.active;
        // A spec that changes nothing (no faults before or after: the launcher
        // re-sends the cluster's spec to every restarted node) is not logged.
        if (active || had) this.events.event('warn', active ? 'faults_set' : 'faults_cleared', { ...this.faults.current });
        respond(MsgType.OK, null);
      },
      onReplicaRead: (body, respond) => this.replica.onRead(body, respond),
      onReplicaWrite: (body, respond) => this.replica.onWrite(body, respond),
      onJoin: (body, respond) => this.view.onJoin(body, respond),
      onRingPush: (body, respond) => this.view.onRingPush(body, respond),
      onGossip: (body, respond, peer) => this.view.onGossip(body, respond, peer),
      onReap: (body, respond) => this.replica.onReap(body, respond),
      onAaeSegments: (body, respond) => this.replica.onAaeSegments(body, respond),
      onAaeKeys: (body, respond) => this.replica.onAaeKeys(body, respond),
      onChange: (type, body, respond, peer) => {
        if (type === MsgType.XFER_PAGE) return this.transfers.onPage(body, respond);
        if (type === MsgType.TRANSFER_LIMIT) {
          const mbps = (body as { mbps?: unknown } | null)?.mbps;
          this.transfers.setLimit(typeof mbps === 'number' ? mbps : Number.NaN);
          return respond(MsgType.OK, { mbps: this.transfers.mbps });
        }
        return this.view.onChange(type, body, respond, peer);
      },
      onConflicts: (body, respond) => {
        const page = this.conflicts.query(parseConflictQuery(body));
        respond(MsgType.CONFLICTS_REPLY, { node: this.id, records: page.records.map(recordToWire), next: page.next });
      },
      helloInfo: () => this.view.helloInfo(),
      peerHello: (id, ringVersion) => {
        this.peerHello(id);
        this.view.peerRingVersion(id, ringVersion);
      },
    };
  }

  /** Throws STORAGE_FAILED while the disk failure policy refuses writes. */
  private checkWritable(): void {
    this.health.checkWritable();
  }

  /** Log lines name keys and addresses that callers chose: control
   * characters are escaped, so no one can forge a line or drive a terminal. */
  log(line: string): void {
    this.logLine(line.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  }

  get ring(): Ring | undefined {
    return this.view.ring;
  }

  get requestsInFlight(): number {
    return this.coordinator.requestsInFlight;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Address of a member, for the transport. */
  addrOf(id: string): string | undefined {
    return this.view.addrOf(id);
  }

  // ---- requests ----

  /** One request from an already identified caller (the in-memory network
   * and tests). TCP connections go through a Session instead. */
  handleRequest(type: number, body: unknown, respond: Responder, caller: Caller): void {
    this.router.handle(type, body, respond, caller);
  }

  /** A new connection's handshake and identity. */
  newSession(info: ConnectionInfo, close: () => void): Session {
    return new Session(this.router, this.security, info, close);
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
      else if (err.code === 'NODE_REMOVED' && this.view.noteRemoved(to, err.message)) this.requestExit();
      cb(err, t, b);
    });
  }

  // ---- lifecycle ----

  /** Opens storage, loads the ring, hints and anti-entropy hashes. A node
   * with no ring and no seeds founds a cluster; one with seeds must join()
   * after it listens. */
  async open(): Promise<void> {
    // Process-wide, and the same for every node of a process: the memory
    // budget (README) assumes the heap stays near what is alive.
    setFlagsFromString(`--heap-growing-percent=${this.config.heapGrowthPercent}`);
    await this.storage.open();
    await this.view.load(await this.storage.get(ringKey), await this.storage.get(incKey));
    await this.hints.load();
    await this.conflicts.load();
    const t0 = this.clock.elapsedMs();
    const { keys, from } = await this.aae.open();
    if (keys > 0 || from === 'background' || this.hints.pending > 0) {
      const how = { persisted: 'from the last clean stop', scan: 'rebuilt by a scan', background: 'being rebuilt in the background' }[from];
      this.log(`${this.id} opened ${from === 'background' ? 'its' : keys} keys, ${this.hints.pending} hints; anti-entropy hashes ${how} `
        + `(${Math.round(this.clock.elapsedMs() - t0)} ms)`);
    }
  }

  get needsJoin(): boolean {
    return this.view.needsJoin;
  }

  join(): Promise<void> {
    return this.view.join();
  }

  announce(): Promise<void> {
    return this.view.announce();
  }

  adoptRing(ring: Ring): Promise<boolean> {
    return this.view.adoptRing(ring);
  }

  pullRingFrom(addr: string): void {
    this.view.pullRingFrom(addr);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const h = this.clock.setTimer(ms, () => { this.timers.delete(h); resolve(); });
      this.timers.add(h);
    });
  }

  /** Starts gossip, hinted handoff, anti-entropy and the reaper. */
  startBackground(): void {
    this.every(() => this.config.gossipIntervalMs, () => this.view.gossipRound());
    this.every(() => this.config.handoffIntervalMs, () => this.hints.deliver());
    this.every(() => this.config.aaeIntervalMs, async () => {
      await this.aae.round((ms) => this.sleep(ms));
      this.checkConvergence();
    });
    this.every(() => Math.max(100, Math.min(1000, this.config.tombstoneReapDelayMs / 4)), () => this.reaper.run());
    this.every(() => this.config.transferIntervalMs, async () => {
      await this.view.step();
      await this.transfers.run();
    });
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

  /** A peer proved itself to us: it is up. */
  peerHello(id: string): void {
    this.transport.peerIsUp(id);
    this.membership.heardFrom(id, this.clock.nowMs());
  }

  /** Stops the node. `clean` (a real stop) persists the anti-entropy
   * hashes for the next open; the simulator's crash passes false, as a
   * killed process writes nothing on its way out. */
  async close(clean = true): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) this.clock.clearTimer(t);
    this.timers.clear();
    this.transport.close();
    this.health.close();
    // Refuse first, then drain: no write can land after the drain, so the
    // hashes persisted below describe storage as the next open finds it.
    this.store.close();
    await this.store.drain();
    await this.aae.stop();
    if (clean) {
      const persisted = await this.aae.persist(this.store.feedMatchesStorage && this.health.writable).catch((err: Error) => {
        this.log(`${this.id} could not persist its anti-entropy hashes: ${err.message}`);
        return false;
      });
      if (!persisted) this.log(`${this.id} did not persist its anti-entropy hashes; the next start rebuilds them by a scan`);
    }
    await this.storage.close();
  }

  // ---- status ----

  private statusSources(): StatusSources {
    return {
      id: this.id, listen: this.config.listen, clock: this.clock, startedMs: this.startedMs, view: this.view,
      membership: this.membership,
      details: () => ({
        hints: { pending: this.hints.pending, byOwner: this.hints.pendingByOwner(), ...this.hints.stats },
        antiEntropy: { ...this.aae.stats },
        reaper: { waiting: this.reaper.waiting, ...this.reaper.stats },
        faults: { ...this.faults.current, dropped: this.faults.dropped },
        requestsInFlight: this.coordinator.requestsInFlight,
        writeQueue: this.store.queuedWrites,
        storage: { ...this.store.stats, keysInDoubt: this.store.keysInDoubt, keys: this.aae.hashes.keys, dataBytes: this.aae.hashes.valueBytes },
        disk: this.health.status(),
        oversizedKeys: { count: this.replica.oversized.size, keys: [...this.replica.oversized.keys()].slice(0, 20) },
        connections: this.connections(),
        security: {
          mode: this.security.users === null ? 'protected' : 'users',
          peerCertRequired: this.security.peerCertRequired,
          ...this.router.stats,
        },
        stats: { ...this.coordinator.stats, ...this.replica.stats },
        transfers: { ...this.transfers.stats, limitMBps: this.transfers.mbps, ...this.view.changeStats },
        conflictLog: { records: this.conflicts.size, bytes: this.conflicts.sizeBytes, ...this.conflicts.stats },
      }),
      metrics: async () => {
        const failures = (await this.metrics.quorumFailures.get()).values.reduce((a, v) => a + v.value, 0);
        const conflicts = (await this.metrics.conflicts.get()).values.reduce((a, v) => a + v.value, 0);
        return {
          url: this.metricsUrl,
          consistencyLagP95Ms: await this.metrics.lagP95Ms(),
          readsOneVersionRatio: this.metrics.oneVersionRatio,
          conflicts,
          quorumFailures: failures,
        };
      },
    };
  }

  /** What STATUS answers: the summary, or everything for an admin. */
  statusFor(detail: boolean): Promise<Record<string, unknown>> {
    return detail ? statusFull(this.statusSources(), true) : Promise.resolve(statusSummary(this.statusSources()));
  }

  /** The whole status without metrics (tests, the simulator). */
  status(): Record<string, unknown> {
    const s = this.statusSources();
    return { ...statusSummary(s), ...s.details() };
  }
}

