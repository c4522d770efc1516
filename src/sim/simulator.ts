// The seeded simulator: a whole cluster of real nodes in one process, on
// the in-memory network and memory storage, driven by one seeded PRNG.
//
// A run: concurrent clients issue gets, puts and deletes at mixed levels
// while a fault schedule crashes and restarts nodes, pauses them,
// partitions the network, and changes the cluster's shape (nodes join,
// leave, are removed dead or replaced, and joiners crash mid-transfer), and
// every message may be delayed, dropped, duplicated or reordered. Then
// every fault heals, clients stop, and the cluster runs until it converges.
// Checkers:
//   1. every write acknowledged at any W is still there, itself or a
//      version whose writer had read it, in the final converged state;
//   2. a strong read never misses a strong write acknowledged before it
//      began, nor anything an earlier strong read returned (no new-old
//      inversion), during ownership changes too;
//   3. after heal, the ring settles (no transition, no exiting member) and
//      every replica of every key holds identical versions (no hint, no
//      sweep left) within convergeWithinMs of simulated time;
//   4. a replica's vector clock for a key never goes backwards;
//   5. a deleted (or overwritten) key stays so: no final live version is
//      one an acknowledged write's context had superseded (no resurrection
//      after a tombstone was reaped);
//   6. after convergence no live data exists only on non-owners;
//   7. a session read never returns a state older than what its session
//      wrote or read of the key (session-clients.ts); for a session's own
//      counter and set, never less than its acknowledged increments or an
//      earlier read, and every member as its last acknowledged op left it;
//   8, 9. counters and sets (typed-workload.ts, `typedClients` of them):
//      counters equal the sum of acknowledged increments, sets their adds
//      minus their observed removes.
// A failing seed prints itself and every knob; `tunekv sim --seed S` (with
// the same knobs) replays it exactly.

import { sameVersions } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { covers, descends } from '../core/clock/vclock.js';
import type { VClock } from '../core/clock/vclock.js';
import { preferenceListForKey } from '../core/ring/ring.js';
import { inTransition } from '../core/ring/transition.js';
import { TuneKvError } from '../errors.js';
import { clientEndpoint } from '../io/memory-network.js';
import type { LinkFate } from '../io/memory-network.js';
import { MsgType } from '../protocol/messages.js';
import type { GetReplyBody, PutReplyBody, WireClock } from '../protocol/messages.js';
import { MemoryCluster } from './memory-cluster.js';
import { TypedWorkload, typedStorageKeys } from './typed-workload.js';
import { between, derive, pick } from './random.js';
import { SessionClient, TypedSessionClient } from './session-clients.js';
import type { SessionWriteRecord } from './session-clients.js';
import type { Random } from './random.js';

export interface SimKnobs {
  readonly seed: number;
  readonly nodes: number;
  readonly n: number;
  readonly q: number;
  readonly clients: number;
  readonly opsPerClient: number;
  readonly keys: number;
  /** Each message is delayed 1..delayMaxMs (so messages reorder). */
  readonly delayMaxMs: number;
  readonly dropRate: number;
  readonly dupRate: number;
  /** Crash-and-restart events during the client phase. */
  readonly crashes: number;
  /** Pause-and-resume events (SIGSTOP-like: the node's I/O waits). */
  readonly pauses: number;
  /** Partition-and-heal events. */
  readonly partitions: number;
  /** Read repair on or off: off leaves convergence to hints and anti-entropy. */
  readonly readRepair: boolean;
  /** Share of reads that ask every replica; the rest ask R (config.ts). */
  readonly readRepairChance: number;
  readonly speculativeRetryMs: number;
  /** Nodes joined during the client phase (stage + commit, one plan each). */
  readonly joins: number;
  /** Members asked to leave (refused while it would leave fewer than N). */
  readonly leaves: number;
  /** Members crashed for good, then removed (or replaced by a new node). */
  readonly removes: number;
  /** A joining node is killed mid-transfer and restarted. */
  readonly crashJoiner: boolean;
  /** Simulated time the cluster gets to converge after healing. */
  readonly convergeWithinMs: number;
  /** Session clients (kv.session()) beside the plain ones, checked by
   * checker 7. */
  readonly sessions: number;
  /** Clients incrementing counters and changing sets (typed-workload.ts),
   * checked by checkers 8 and 9. */
  readonly typedClients: number;
}

export interface SimReport {
  readonly ok: boolean;
  readonly violations: string[];
  readonly knobs: SimKnobs;
  readonly stats: {
    ops: number; acked: number; failed: number; messages: number;
    simulatedMs: number; convergedAfterMs: number | null; faults: string[];
    /** Keys repaired by anti-entropy, read repairs, hints handed off, tombstones reaped. */
    aaeRepairs: number; readRepairs: number; handoffs: number; reaped: number;
    /** Session reads that succeeded, that asked further replicas, that failed SESSION_UNAVAILABLE. */
    sessionReads: number; sessionLookedFurther: number; sessionUnavailable: number;
    typedSessionReads: number; typedSessionLookedFurther: number; typedSessionUnavailable: number;
  };
}

/** Knobs drawn from the seed, so seeds explore different shapes; any may be
 * fixed by the caller. */
export function knobsFor(seed: number, fixed: Partial<SimKnobs> = {}): SimKnobs {
  const r = derive(seed, 'knobs');
  return {
    seed,
    nodes: between(r, 3, 7),
    n: 3,
    q: 16,
    clients: between(r, 2, 4),
    opsPerClient: between(r, 10, 30),
    keys: between(r, 2, 8),
    delayMaxMs: between(r, 1, 30),
    dropRate: pick(r, [0, 0, 0.01, 0.05]),
    dupRate: pick(r, [0, 0.01, 0.05]),
    crashes: between(r, 0, 2),
    pauses: between(r, 0, 2),
    partitions: between(r, 0, 2),
    readRepair: r() < 0.5,
    joins: pick(r, [0, 1, 1, 2]),
    leaves: pick(r, [0, 0, 1]),
    removes: pick(r, [0, 0, 0, 1]),
    crashJoiner: r() < 0.3,
    readRepairChance: pick(r, [0, 0.1, 0.1, 1]),
    speculativeRetryMs: pick(r, [2, 20, 200]),
    convergeWithinMs: 60_000,
    // Drawn last, so every earlier knob of a seed is what it was before.
    sessions: between(r, 1, 2),
    typedClients: between(r, 1, 2),
    ...fixed,
  };
}

/** A write the checkers follow (session clients record theirs the same way). */
type WriteRecord = SessionWriteRecord;

interface StrongRead {
  readonly key: string; readonly startMs: number; readonly endMs: number; readonly clock: WireClock;
  /** It returned a live value (not only tombstones, not nothing). */
  readonly found: boolean;
}

type Level = { consistency?: string; r?: number; w?: number };

const readLevels: Level[] = [{ consistency: 'eventual' }, { consistency: 'quorum' }, { consistency: 'strong' }, { r: 3 }];
const writeLevels: Level[] = [{ consistency: 'eventual' }, { consistency: 'quorum' }, { consistency: 'strong' }, { w: 3 }];

class Run {
  readonly cluster: MemoryCluster;
  readonly random: Random;
  readonly violations: string[] = [];
  readonly writes: WriteRecord[] = [];
  readonly strongReads: StrongRead[] = [];
  readonly faultLog: string[] = [];
  private readonly partitioned = new Set<string>();
  private readonly pausedUntil = new Map<string, number>();
  private healed = false;
  private readonly restarting = new Set<string>();
  /** Crashed to be removed: not restarted unless the removal was refused. */
  private readonly doomed = new Set<string>();
  /** Every node that ever stored a version (key NUL actor:counter). */
  private readonly holders = new Map<string, Set<string>>();
  ops = 0;
  failed = 0;
  /** A key to log every client operation of (debugging a seed). */
  trace: string | undefined;

  constructor(readonly knobs: SimKnobs) {
    this.random = derive(knobs.seed, 'run');
    this.cluster = new MemoryCluster({
      nodes: knobs.nodes, n: knobs.n, q: knobs.q, seed: knobs.seed, requestTimeoutMs: 1000,
      config: {
        gossipIntervalMs: 100, suspectAfterMs: 400, downAfterMs: 1000, handoffIntervalMs: 100,
        aaeIntervalMs: 500, aaeExchangePauseMs: 0, tombstoneReapDelayMs: 3000, peerConnectTimeoutMs: 500,
        readRepair: knobs.readRepair, readRepairChance: knobs.readRepairChance, speculativeRetryMs: knobs.speculativeRetryMs,
      },
    });
    this.cluster.network.policy = (from, to) => this.fate(from, to);
  }

  get now(): number {
    return this.cluster.clock.nowMs();
  }

  private fate(from: string, to: string): LinkFate {
    if (this.partitioned.has(`${from}>${to}`)) return { fate: 'drop' };
    const r = this.random;
    let delayMs = 1 + Math.floor(r() * this.knobs.delayMaxMs);
    const held = Math.max(this.pausedUntil.get(from) ?? 0, this.pausedUntil.get(to) ?? 0) - this.now;
    if (held > 0) delayMs += held;
    if (!this.healed && r() < this.knobs.dropRate) return { fate: 'drop' };
    if (!this.healed && r() < this.knobs.dupRate) return { fate: 'duplicate', delayMs, againMs: delayMs + Math.floor(r() * this.knobs.delayMaxMs) };
    return { fate: 'deliver', delayMs };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => { this.cluster.clock.setTimer(ms, resolve); });
  }

  /** A client request over the simulated network. */
  request(to: string, type: number, body: unknown): Promise<{ ok: true; body: unknown } | { ok: false; error: TuneKvError }> {
    return new Promise((resolve) => {
      this.cluster.network.request(clientEndpoint, to, type, body, 3000, (err, _t, b) => resolve(err ? { ok: false, error: err } : { ok: true, body: b }));
    });
  }

  watchClocks(): void {
    for (const id of this.cluster.ids) this.watchNode(id);
  }

  watchNode(id: string): void {
    const node = this.cluster.nodes.get(id);
    if (!node) return;
    if (this.trace !== undefined) {
      const remove = node.store.remove.bind(node.store);
      node.store.remove = (key, when) => {
        if (key === this.trace) console.log(`${this.now} ${id} remove ${key}\n${new Error().stack?.split('\n').slice(2, 5).join('\n')}`);
        return remove(key, when);
      };
    }
    const inner = node.store.onChange;
    node.store.onChange = (key, hash, before, after) => {
      inner?.(key, hash, before, after);
      for (const sib of after?.siblings ?? []) {
        const dot = `${key}\u0000${sib.actor}:${sib.counter}`;
        (this.holders.get(dot) ?? this.holders.set(dot, new Set()).get(dot)!).add(id);
      }
      if (key === this.trace) {
        const f = (o: VersionedObject | undefined): string => (o ? JSON.stringify(o.siblings.map((x) => [x.actor, x.counter % 100000000])) : '-');
        console.log(`${this.now} ${id} change ${key}: ${f(before)} -> ${f(after)}`);
      }
      if (before && after && !descends(after.clock, before.clock)) {
        this.violations.push(`clock went backwards on ${id} for ${key}: ${JSON.stringify(before.clock)} -> ${JSON.stringify(after.clock)}`);
      }
    };
  }

  // ---- clients ----

  /** Where a client sends its next request: mostly a running node. */
  targets(r: Random): string {
    const running = this.cluster.ids.filter((id) => this.cluster.isRunning(id));
    return running.length > 0 && r() < 0.9 ? pick(r, running) : pick(r, this.cluster.ids);
  }

  async client(c: number): Promise<void> {
    const r = derive(this.knobs.seed, `client${c}`);
    const contexts = new Map<string, WireClock>();
    for (let i = 0; i < this.knobs.opsPerClient; i++) {
      await this.sleep(between(r, 0, 50));
      const key = `k${between(r, 1, this.knobs.keys)}`;
      const running = this.cluster.ids.filter((id) => this.cluster.isRunning(id));
      const to = running.length > 0 && r() < 0.9 ? pick(r, running) : pick(r, this.cluster.ids);
      const roll = r();
      this.ops++;
      if (roll < 0.4) await this.get(to, key, pick(r, readLevels), contexts);
      else await this.write(to, key, roll < 0.85 ? `c${c}-${i}` : null, pick(r, writeLevels), contexts, r);
    }
  }

  private async get(to: string, key: string, level: Level, contexts: Map<string, WireClock>): Promise<void> {
    const startMs = this.now;
    const res = await this.request(to, MsgType.GET, { key, ...level });
    if (key === this.trace) {
      console.log(`${this.now} get ${key} via ${to} ${JSON.stringify(level)} -> ${res.ok ? JSON.stringify({ ctx: (res.body as GetReplyBody).context.map(([a, c]) => [a, c]), n: (res.body as GetReplyBody).values.length }) : res.error.message}`);
    }
    if (!res.ok) { this.failed++; return; }
    const body = res.body as GetReplyBody;
    contexts.set(key, body.context);
    if (level.consistency === 'strong') this.strongReads.push({ key, startMs, endMs: this.now, clock: body.context, found: body.values.length > 0 });
  }

  private async write(to: string, key: string, value: string | null, level: Level, contexts: Map<string, WireClock>, r: Random): Promise<void> {
    let context = contexts.get(key);
    if (value === null && context === undefined) {
      // Deletes always carry a context, so the checker knows what they superseded.
      const res = await this.request(to, MsgType.GET, { key, consistency: 'quorum' });
      if (!res.ok) { this.failed++; return; }
      context = (res.body as GetReplyBody).context;
    }
    if (value !== null && r() < 0.4) context = undefined;
    const wid = Buffer.from(Array.from({ length: 12 }, () => between(r, 0, 255)));
    const rec: WriteRecord = {
      key, context: (context ?? []) as VClock, wid, level: JSON.stringify(level), isDelete: value === null, sentMs: this.now, acked: false, ackedMs: 0, dot: null,
    };
    this.writes.push(rec);
    const body = { key, ...level, wid, ...(context ? { context } : {}), ...(value === null ? {} : { value: Buffer.from(value), vtype: 1 }) };
    const res = await this.request(to, value === null ? MsgType.DELETE : MsgType.PUT, body);
    if (key === this.trace) {
      console.log(`${this.now} ${value === null ? 'del' : 'put'} ${key}=${value} via ${to} ${rec.level} ctx=${JSON.stringify(rec.context.map(([a, c]) => [a, c]))} -> ${res.ok ? JSON.stringify({ dot: (res.body as PutReplyBody).dot, ctx: (res.body as PutReplyBody).context.map(([a, c]) => [a, c]), reps: (res.body as PutReplyBody).replicas.map((x) => `${x.node}:${x.role}:${x.outcome}`) }) : res.error.message}`);
    }
    if (!res.ok) { this.failed++; return; }
    const reply = res.body as PutReplyBody;
    rec.acked = true;
    rec.ackedMs = this.now;
    rec.dot = reply.dot ?? null;
    contexts.set(key, reply.context);
  }

  // ---- faults ----

  async faults(phaseMs: number): Promise<void> {
    const r = derive(this.knobs.seed, 'faults');
    const events: { at: number; run: () => Promise<void> }[] = [];
    for (let i = 0; i < this.knobs.crashes; i++) {
      const id = pick(r, this.cluster.ids);
      const at = between(r, 0, phaseMs);
      const downFor = between(r, 100, 2000);
      events.push({ at, run: async () => {
        if (!this.cluster.isRunning(id) || this.healed) return;
        this.faultLog.push(`${at}ms crash ${id} for ${downFor}ms`);
        await this.cluster.crash(id);
        await this.sleep(downFor);
        await this.restart(id);
      } });
    }
    for (let i = 0; i < this.knobs.pauses; i++) {
      const id = pick(r, this.cluster.ids);
      const at = between(r, 0, phaseMs);
      const forMs = between(r, 200, 3000);
      events.push({ at, run: async () => {
        if (this.healed) return;
        this.faultLog.push(`${at}ms pause ${id} for ${forMs}ms`);
        this.pausedUntil.set(id, this.now + forMs);
      } });
    }
    for (let i = 0; i < this.knobs.partitions; i++) {
      const at = between(r, 0, phaseMs);
      const forMs = between(r, 500, 3000);
      const side = this.cluster.ids.filter(() => r() < 0.5);
      events.push({ at, run: async () => {
        if (this.healed) return;
        this.faultLog.push(`${at}ms partition {${side.join(',')}} for ${forMs}ms`);
        this.partition(side);
        await this.sleep(forMs);
        if (!this.healed) this.partitioned.clear();
      } });
    }
    for (let i = 0; i < this.knobs.joins; i++) {
      const at = between(r, 0, phaseMs);
      const crashAfter = between(r, 20, 400);
      const downFor = between(r, 200, 1500);
      events.push({ at, run: async () => {
        if (this.healed) return;
        const id = await this.cluster.addNode();
        this.watchNode(id);
        const ok = await this.change(`${at}ms join ${id}`, [{ op: 'join', addr: this.cluster.addrOf(id) }]);
        if (ok && this.knobs.crashJoiner && i === 0) {
          await this.sleep(crashAfter);
          if (!this.cluster.isRunning(id)) return;
          this.faultLog.push(`${at}+${crashAfter}ms crash joiner ${id} mid-transfer for ${downFor}ms`);
          await this.cluster.crash(id);
          await this.sleep(downFor);
          await this.restart(id);
        }
      } });
    }
    for (let i = 0; i < this.knobs.leaves; i++) {
      const at = between(r, 0, phaseMs);
      const roll = r();
      events.push({ at, run: async () => {
        if (this.healed) return;
        const valid = this.validMembers();
        if (valid.length === 0) return;
        const id = valid[Math.floor(roll * valid.length)]!;
        await this.change(`${at}ms leave ${id}`, [{ op: 'leave', id }]);
      } });
    }
    for (let i = 0; i < this.knobs.removes; i++) {
      const at = between(r, 0, phaseMs);
      const roll = r();
      const replace = r() < 0.5;
      events.push({ at, run: async () => {
        if (this.healed) return;
        const valid = this.validMembers();
        if (valid.length === 0) return;
        const id = valid[Math.floor(roll * valid.length)]!;
        this.doomed.add(id);
        this.faultLog.push(`${at}ms kill ${id} for good`);
        await this.cluster.crash(id);
        await this.sleep(1500);
        let ok: boolean;
        if (replace) {
          const fresh = await this.cluster.addNode();
          this.watchNode(fresh);
          ok = await this.change(`${at + 1500}ms replace ${id} with ${fresh}`, [{ op: 'replace', id, addr: this.cluster.addrOf(fresh) }]);
        } else {
          ok = await this.change(`${at + 1500}ms remove ${id}`, [{ op: 'remove', id }]);
        }
        // Refused (it would leave fewer than N): it comes back at heal. If
        // heal already passed while the removal was being asked for (heal
        // skips doomed nodes), the operator brings it back now: a dead
        // member nobody could remove is the operator's job to restart.
        if (ok) this.cluster.gone.add(id);
        this.doomed.delete(id);
        if (!ok && this.healed) await this.restart(id);
      } });
    }
    await Promise.all(events.map(async (e) => { await this.sleep(e.at); await e.run(); }));
  }

  /** Valid members of the newest ring that run, other than nodes being killed. */
  private validMembers(): string[] {
    return this.cluster.ringNow().members
      .filter((m) => (m.state ?? 'valid') === 'valid' && this.cluster.isRunning(m.id) && !this.doomed.has(m.id))
      .map((m) => m.id);
  }

  /** Stages changes and commits them through running nodes, as an operator
   * would (retrying through another node when one fails). */
  private async change(what: string, changes: Record<string, unknown>[]): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const running = this.cluster.ids.filter((id) => this.cluster.isRunning(id) && !this.doomed.has(id) && this.cluster.node(id).ring !== undefined);
      if (running.length === 0) return false;
      const via = running[attempt % running.length]!;
      let staged = true;
      for (const c of changes) {
        const res = await this.request(via, MsgType.CLUSTER_STAGE, c);
        if (!res.ok) {
          staged = false;
          if (res.error.code === 'CHANGE_REFUSED') { this.faultLog.push(`${what}: refused (${res.error.message})`); return false; }
          break;
        }
      }
      if (!staged) { await this.sleep(300); continue; }
      const res = await this.request(via, MsgType.CLUSTER_COMMIT, {});
      if (res.ok) { this.faultLog.push(what); return true; }
      if (res.error.code === 'CHANGE_REFUSED') { this.faultLog.push(`${what}: refused (${res.error.message})`); return false; }
      await this.sleep(300);
    }
    this.faultLog.push(`${what}: gave up (claimant unreachable)`);
    return false;
  }

  private partition(side: string[]): void {
    for (const a of this.cluster.ids) {
      for (const b of this.cluster.ids) {
        if (side.includes(a) !== side.includes(b)) this.partitioned.add(`${a}>${b}`);
      }
    }
  }

  private async restart(id: string): Promise<void> {
    if (this.cluster.isRunning(id) || this.restarting.has(id) || this.cluster.gone.has(id) || this.doomed.has(id)) return;
    this.restarting.add(id);
    try {
      await this.cluster.startNode(id);
      this.watchNode(id);
    } finally {
      this.restarting.delete(id);
    }
  }

  async healAll(): Promise<void> {
    this.healed = true;
    this.partitioned.clear();
    this.pausedUntil.clear();
    for (const id of this.cluster.ids) await this.restart(id);
  }

  // ---- checks ----

  private async replicaStates(key: string): Promise<(VersionedObject | undefined)[]> {
    const primaries = preferenceListForKey(this.cluster.ringNow(), key).primaries;
    return Promise.all(primaries.map((p) => (this.cluster.isRunning(p) ? this.cluster.node(p).store.read(key) : Promise.resolve(undefined))));
  }

  /** Null once converged, else what is still pending (reported when a run
   * does not converge). */
  async notConverged(keys: string[]): Promise<string | null> {
    const ring = this.cluster.ringNow();
    if (inTransition(ring)) return `plan ${ring.plan} still in transition (${JSON.stringify(ring.phase)})`;
    const exiting = ring.members.filter((m) => m.state === 'exiting');
    if (exiting.length > 0) return `${exiting.map((m) => m.id).join(',')} still exiting`;
    for (const m of ring.members) if (!this.cluster.isRunning(m.id)) return `member ${m.id} is not running`;
    for (const node of this.cluster.nodes.values()) {
      if (node.hints.pending > 0) return `${node.id} holds ${node.hints.pending} hints`;
      if (node.transfers.stats.sweepPending > 0) return `${node.id} has ${node.transfers.stats.sweepPending} partitions to sweep`;
      // A standby node whose join never committed holds no ring and no data.
      if (node.ring !== undefined && node.ring.version !== ring.version) return `${node.id} is on ring v${node.ring.version}, not v${ring.version}`;
    }
    for (const key of keys) {
      const states = await this.replicaStates(key);
      if (!states.every((s) => sameVersions(s, states[0]))) return `replicas of ${key} differ`;
      const primaries = preferenceListForKey(ring, key).primaries;
      for (const node of this.cluster.nodes.values()) {
        if (!primaries.includes(node.id) && (await node.store.read(key)) !== undefined) return `non-owner ${node.id} still holds ${key}`;
      }
    }
    return null;
  }

  /** Checker 6: after convergence, no live version is held only off the owners. */
  async checkNonOwners(keys: string[]): Promise<void> {
    const ring = this.cluster.ringNow();
    for (const key of keys) {
      const primaries = preferenceListForKey(ring, key).primaries;
      const owned = (await this.replicaStates(key))[0];
      for (const [id, node] of this.cluster.nodes) {
        if (primaries.includes(id)) continue;
        const held = await node.store.read(key);
        for (const s of held?.siblings ?? []) {
          if (s.value === null) continue;
          const onOwners = owned?.siblings.some((o) => o.actor === s.actor && o.counter === s.counter)
            || (owned !== undefined && covers(owned.clock, s.actor, s.counter));
          if (!onOwners) this.violations.push(`live version ${s.actor}:${s.counter} of ${key} exists only on non-owner ${id}`);
        }
      }
    }
  }

  /** Checker 5: no final live version was superseded by an acknowledged
   * write (a delete that was reaped, then the old value came back). */
  async checkResurrection(keys: string[]): Promise<void> {
    for (const key of keys) {
      const final = (await this.replicaStates(key))[0];
      for (const s of final?.siblings ?? []) {
        if (s.value === null) continue;
        // A killer that died with its only copy never reached the others.
        const killer = this.writes.find((w) => w.acked && w.key === key && covers(w.context, s.actor, s.counter) && !this.diedWithItsOnlyCopy(w));
        if (killer) {
          this.violations.push(`resurrected: ${key} holds ${s.actor}:${s.counter}, superseded by an acknowledged ${killer.isDelete ? 'delete' : 'put'} (acked ${killer.ackedMs})`);
        }
      }
    }
  }

  /** An acknowledged write at W=1 (`eventual`) that only nodes killed for
   * good (data destroyed, never restarted) ever stored: it was promised one
   * copy, and that copy died before any replica took it (a partition, a
   * crashed replica, no fallback). Dynamo's W=1 promises no more; the
   * checkers excuse exactly this, nothing at W >= 2 and nothing a
   * surviving node ever held. */
  private diedWithItsOnlyCopy(w: WriteRecord): boolean {
    if (w.level !== JSON.stringify({ consistency: 'eventual' }) || w.dot === null) return false;
    const held = this.holders.get(`${w.key}\u0000${w.dot[0]}:${w.dot[1]}`);
    return held !== undefined && [...held].every((id) => this.doomed.has(id) || this.cluster.gone.has(id));
  }

  async checkWrites(keys: string[]): Promise<void> {
    const finals = new Map<string, VersionedObject | undefined>();
    for (const key of keys) finals.set(key, (await this.replicaStates(key))[0]);
    for (const w of this.writes) {
      // A tombstone may be reaped once every replica holds it: that is its purpose.
      if (!w.acked || w.dot === null || w.isDelete) continue;
      const final = finals.get(w.key);
      const [actor, counter] = w.dot;
      const present = final?.siblings.some((s) => (s.actor === actor && s.counter === counter)
        || (s.wid !== null && Buffer.compare(s.wid, w.wid) === 0));
      if (present) continue;
      const superseded = this.writes.some((o) => o !== w && o.key === w.key && covers(o.context, actor, counter));
      if (!superseded && !this.diedWithItsOnlyCopy(w)) {
        this.violations.push(`acknowledged write lost: ${w.key} dot ${actor}:${counter} (${w.isDelete ? 'delete' : 'put'} at ${w.level}, acked ${w.ackedMs}); final ${JSON.stringify(final?.siblings.map((s) => [s.actor, s.counter]))}`);
      }
    }
  }

  checkStrongReads(): void {
    // No new-old inversion between strong reads: a strong read that began
    // after another ended sees everything the earlier one saw (unless a
    // delete sent before it began superseded it and was reaped).
    const byKey = new Map<string, StrongRead[]>();
    for (const r of this.strongReads) (byKey.get(r.key) ?? byKey.set(r.key, []).get(r.key)!).push(r);
    for (const reads of byKey.values()) {
      for (const a of reads) {
        for (const b of reads) {
          if (a.endMs >= b.startMs) continue;
          // Both saw the key absent (deleted, then maybe reaped): nothing a
          // caller can observe went back, only the tombstone's metadata went
          // (its purpose). An older value coming back after a reap is the
          // resurrection checker's, and a lost delete the writes checker's.
          if (!a.found && !b.found) continue;
          for (const [actor, counter] of a.clock) {
            if (covers(b.clock as VClock, actor, counter)) continue;
            const deleted = this.writes.some((d) => d.isDelete && d.key === a.key && d.sentMs < b.startMs && covers(d.context, actor, counter));
            if (!deleted) {
              this.violations.push(`strong read of ${a.key} at ${b.startMs} saw less than the strong read that ended at ${a.endMs}: missing ${actor}:${counter} (new-old inversion)`);
              break;
            }
          }
        }
      }
    }
    for (const read of this.strongReads) {
      for (const w of this.writes) {
        // Tombstones are skipped: once every replica holds one it may be reaped.
        if (!w.acked || w.dot === null || w.isDelete || w.key !== read.key || !w.level.includes('strong') || w.ackedMs >= read.startMs) continue;
        const [actor, counter] = w.dot;
        if (covers(read.clock as VClock, actor, counter)) continue;
        // A delete sent before the read (acknowledged or not: an unanswered
        // write may still be applied) may have superseded it and been reaped.
        const deleted = this.writes.some((d) => d.isDelete && d.key === w.key && d.sentMs < read.startMs && covers(d.context, actor, counter));
        if (!deleted) {
          this.violations.push(`strong read of ${read.key} at ${read.startMs} missed strong write ${actor}:${counter} acked at ${w.ackedMs}`);
        }
      }
    }
  }
}

export async function simulate(knobs: SimKnobs, debug: { trace?: string } = {}): Promise<SimReport> {
  const run = new Run(knobs);
  run.trace = debug.trace;
  const startMs = run.now;
  await run.cluster.start();
  run.watchClocks();
  const keys = Array.from({ length: knobs.keys }, (_, i) => `k${i + 1}`);
  const typed = new TypedWorkload({ seed: knobs.seed, opsPerClient: knobs.opsPerClient, cluster: run.cluster,
    request: (to, type, body) => run.request(to, type, body), sleep: (ms) => run.sleep(ms) });
  // Typed keys converge and leave non-owners like any key.
  const allKeys = knobs.typedClients > 0 ? [...keys, ...typedStorageKeys()] : keys;
  const phaseMs = knobs.opsPerClient * 60;
  // Faults run alongside the clients and stop when they finish: the cluster
  // is healed with whatever divergence the faults left.
  void run.faults(phaseMs);
  const sessions = Array.from({ length: knobs.sessions ?? 0 }, (_, c) => new SessionClient(run, `session${c}`));
  // One session of counters and sets wherever there are sessions (no knob
  // of its own, so earlier seeds' knobs are unchanged).
  const typedSessions = (knobs.sessions ?? 0) > 0 ? [new TypedSessionClient(run, 'tsession0')] : [];
  await run.cluster.drive(Promise.all([
    ...Array.from({ length: knobs.clients }, (_, c) => run.client(c)),
    ...sessions.map((s) => s.run(knobs.seed, knobs.opsPerClient, knobs.keys)),
    ...typedSessions.map((s) => s.run(knobs.seed, Math.ceil(knobs.opsPerClient / 2))),
    ...Array.from({ length: knobs.typedClients ?? 0 }, (_, c) => typed.client(c)),
  ]));
  await run.healAll();
  const healedAt = run.now;
  let convergedAfterMs: number | null = null;
  while (run.now - healedAt <= knobs.convergeWithinMs) {
    await run.cluster.runFor(250);
    if ((await run.notConverged(allKeys)) === null) { convergedAfterMs = run.now - healedAt; break; }
  }
  if (convergedAfterMs === null) run.violations.push(`replicas did not converge within ${knobs.convergeWithinMs} ms of healing: ${await run.notConverged(allKeys)}`);
  else {
    await run.checkWrites(keys);
    await run.checkResurrection(keys);
    await run.checkNonOwners(allKeys);
    await typed.check(run.violations);
  }
  run.checkStrongReads();
  const messages = run.cluster.network.sent;
  const nodes = [...run.cluster.nodes.values()];
  const sum = (f: (n: (typeof nodes)[number]) => number): number => nodes.reduce((a, n) => a + f(n), 0);
  const counters = {
    aaeRepairs: sum((n) => n.aae.stats.keysRepaired), readRepairs: sum((n) => n.coordinator.stats.readRepairs),
    handoffs: sum((n) => n.hints.stats.delivered + n.hints.stats.expired), reaped: sum((n) => n.reaper.stats.reaped),
  };
  const simulatedMs = run.now - startMs;
  if (debug.trace !== undefined) {
    for (const [id, node] of run.cluster.nodes) {
      const o = await node.store.read(debug.trace);
      console.log(`final ${id}: ${o ? JSON.stringify({ clock: o.clock.map(([a, c]) => [a, c]), sib: o.siblings.map((x) => [x.actor, x.counter, x.value === null ? 'del' : 'val']) }) : 'none'}`);
    }
  }
  await run.cluster.stopAll();
  return {
    ok: run.violations.length === 0,
    violations: run.violations,
    knobs,
    stats: {
      ops: run.ops + typed.ops, acked: run.writes.filter((w) => w.acked).length, failed: run.failed, messages,
      simulatedMs, convergedAfterMs, faults: run.faultLog, ...counters,
      sessionReads: sessions.reduce((a, s) => a + s.reads, 0), sessionLookedFurther: sessions.reduce((a, s) => a + s.lookedFurther, 0),
      sessionUnavailable: sessions.reduce((a, s) => a + s.unavailable, 0),
      typedSessionReads: typedSessions.reduce((a, s) => a + s.reads, 0),
      typedSessionLookedFurther: typedSessions.reduce((a, s) => a + s.lookedFurther, 0),
      typedSessionUnavailable: typedSessions.reduce((a, s) => a + s.unavailable, 0),
    },
  };
}

/** The line that replays a run exactly. */
export function replayCommand(k: SimKnobs): string {
  return `npx tunekv sim --seed ${k.seed} --knobs '${JSON.stringify(k)}'`;
}
