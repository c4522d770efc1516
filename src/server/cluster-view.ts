// The cluster view: this node's ring, how it changes, and gossip.
//
// Owns the ring value (persisted under m:ring), joining through seeds,
// pushing and pulling newer rings, the push-pull gossip rounds that feed
// the failure detector (core/membership), and, on the claimant, ring
// changes: staged changes, committed plans, and the steps of a transition
// (core/ring/transition.ts), each pushed to every member and made only
// once every live member has installed the one before.
//
// Staged changes and queued plans live on the claimant (in memory: a
// claimant that restarts loses what was staged but not committed; a
// committed plan is in the ring and survives). Every change request that
// reaches another node is forwarded to the claimant.
//
// Invariants:
//   - the ring only moves to a newer version (isNewer), and every ring that
//     is adopted was rebuilt field by field from a validated value
//     (ringFromWire), so nothing a peer adds to a ring is ever stored;
//   - a ring is only pulled from a member's address as *our* ring names it,
//     or from a seed the operator configured, never from an address a
//     caller supplied in a message;
//   - every message handled here comes from a caller that proved the
//     cluster secret (the router refuses the rest), and gossip is still
//     checked against clock skew (membership.merge).

import { Membership, wireHeartbeatsProblem } from '../core/membership/membership.js';
import type { WireHeartbeat } from '../core/membership/membership.js';
import { claim, createRing, memberOf, ringFromWire, ringProblem, stateOf } from '../core/ring/ring.js';
import type { Ring } from '../core/ring/ring.js';
import {
  advance, amendPlan, blockingReceivers, changeProblem, planProblems, stillToDo, takenOut, claimant, commitPlan, seesMajority, dropExited, exitingMembers, inTransition, phaseNames, reportKey, summarize,
} from '../core/ring/transition.js';
import type { Change } from '../core/ring/transition.js';
import { parseHostPort } from '../io/transport.js';
import { limits } from '../limits.js';
import { createHash, randomBytes } from 'node:crypto';
import type { NodeConfig } from '../config.js';
import { TuneKvError, invalid } from '../errors.js';
import type { Clock } from '../io/clock.js';
import type { PeerTransport, Responder } from '../io/transport.js';
import { pack, unpack } from '../protocol/codec.js';
import { MsgType, protocolVersion } from '../protocol/messages.js';
import type { HelloOkBody } from '../protocol/messages.js';
import { asRecord } from '../protocol/validate.js';
import type { PeerReply } from './context.js';
import type { EventLog } from './log.js';
import { asTuneKvError, errorBody } from './replies.js';
import type { ObjectStore } from './object-store.js';
import { incKey, ringKey } from './keyspace.js';

export interface ClusterViewDeps {
  readonly config: NodeConfig;
  readonly clock: Clock;
  readonly random: () => number;
  readonly store: ObjectStore;
  readonly membership: Membership;
  readonly transport: PeerTransport;
  ask(to: string, type: number, body: unknown, timeoutMs?: number): Promise<PeerReply>;
  hintsPending(): number;
  sleep(ms: number): Promise<void>;
  log(line: string): void;
  /** Structured events (server/log.ts): ring changes and transition progress. */
  readonly events?: EventLog;
  /** Called after a newer ring is adopted (transfers start at once). */
  onRing?(before: Ring | undefined, after: Ring): void;
}


/** How often transition progress is logged at most: a line a step would be
 * 5 a second; one every 5 s still shows a stuck phase within seconds. */
const transitionProgressLogMs = 5000;

function changeRefused(message: string): TuneKvError {
  return new TuneKvError('CHANGE_REFUSED', message);
}

/** Ring order: higher version wins; equal versions with different content
 * (two seeds admitted joins at once) are ordered by their encoding, so every
 * node picks the same one. */
export function isNewer(a: Ring, b: Ring): boolean {
  if (a.version !== b.version) return a.version > b.version;
  return Buffer.compare(pack(a), pack(b)) > 0;
}

const digests = new WeakMap<Ring, string>();

/** A short digest of a ring's content (rings are immutable: cached). */
export function ringDigest(ring: Ring): string {
  let d = digests.get(ring);
  if (d === undefined) {
    d = createHash('sha256').update(pack(ring)).digest('hex').slice(0, 16);
    digests.set(ring, d);
  }
  return d;
}

export class ClusterView {
  private ringValue: Ring | undefined;
  private announced = false;
  readonly id: string;
  /** This node's incarnation (m:inc), made with its data directory. */
  inc = '';
  // ---- the claimant's state ----
  private staged: Change[] = [];
  private readonly queued: Change[][] = [];
  private readonly reports = new Set<string>();
  private readonly exitDone = new Set<string>();
  /** The newest ring version every live member acknowledged. */
  private installedVersion = 0;
  private stepping = false;
  private readonly isUp = (id: string): boolean => this.d.membership.isUp(id);
  /** The ring version each member last acknowledged from us. */
  private readonly pushed = new Map<string, number>();

  /** Members that missed the current ring (down or cut off when it was
   * pushed) get it again on every tick until they take it: a node on
   * standby does not gossip, so a push is how it learns. */
  private repush(ring: Ring): void {
    for (const m of ring.members) {
      if (m.id === this.id || (this.pushed.get(m.id) ?? 0) >= ring.version) continue;
      this.d.ask(m.id, MsgType.RING_PUSH, { ring }, this.d.config.requestTimeoutMs)
        .then(() => { this.pushed.set(m.id, Math.max(this.pushed.get(m.id) ?? 0, ring.version)); }, () => {});
    }
  }
  /** Ring changes this node made as claimant, and pushes that missed a member. */
  readonly changeStats = { steps: 0, plansCommitted: 0, pushesMissed: 0 };

  constructor(private readonly d: ClusterViewDeps) {
    this.id = d.config.id;
  }

  get ring(): Ring | undefined {
    return this.ringValue;
  }

  /** True once this node has told its peers it is up. */
  get isAnnounced(): boolean {
    return this.announced;
  }

  requireRing(): Ring {
    if (!this.ringValue) throw new TuneKvError('UNAVAILABLE', `node ${this.id} has not joined a cluster yet`);
    return this.ringValue;
  }

  addrOf(id: string): string | undefined {
    return this.ringValue ? memberOf(this.ringValue, id)?.addr : undefined;
  }

  helloInfo(): HelloOkBody {
    return { protocol: protocolVersion, nodeId: this.id, ringVersion: this.ringValue?.version ?? 0 };
  }

  // ---- lifecycle ----

  /** Loads the stored ring, or founds one (no ring and no seeds). A stored
   * ring that does not validate stops the start: it is this node's own
   * file, and guessing a ring could route writes to the wrong nodes. */
  async load(stored: Uint8Array | undefined, storedInc: Uint8Array | undefined): Promise<void> {
    if (storedInc) {
      this.inc = Buffer.from(storedInc).toString('utf8');
    } else {
      this.inc = randomBytes(8).toString('hex');
      await this.d.store.writeRaw({ key: incKey, value: Buffer.from(this.inc) });
    }
    if (stored) this.setRing(ringFromWire(unpack(stored), 'stored ring'));
    const self = { id: this.id, addr: this.d.config.listen, inc: this.inc };
    if (!this.ringValue && this.d.config.standby) {
      this.d.log(`${this.id} waits to be joined (standby): tunekv join ${this.d.config.listen} --host ANY_MEMBER, then tunekv commit`);
    } else if (!this.ringValue && this.d.config.join.length === 0) {
      await this.adoptRing(createRing(this.d.config.q, this.d.config.n, self));
    } else if (this.ringValue && this.d.config.join.length === 0 && memberOf(this.ringValue, this.id)) {
      // Restarted on another address: claim() only updates our address.
      const me = memberOf(this.ringValue, this.id)!;
      if (me.addr !== self.addr) await this.adoptRing(claim(this.ringValue, { ...me, addr: self.addr }));
    }
  }

  /** True when this node must join through its seeds before serving. */
  get needsJoin(): boolean {
    const me = this.ringValue ? memberOf(this.ringValue, this.id) : undefined;
    return this.d.config.join.length > 0 && (me === undefined || me.addr !== this.d.config.listen);
  }

  /** Asks the seeds, in turn, to add this node to the ring, until one
   * answers or joinTimeoutMs passes. */
  async join(): Promise<void> {
    const deadline = this.d.clock.nowMs() + this.d.config.joinTimeoutMs;
    let lastError = 'no seed answered';
    for (let attempt = 0; ; attempt++) {
      for (const seed of this.d.config.join) {
        if (seed === this.d.config.listen) continue;
        const result = await this.askSeed(seed);
        if (result === null) return;
        // A refusal is the claimant's answer, not a seed that failed: asking
        // again would get the same one.
        if (result instanceof TuneKvError) throw result;
        lastError = result;
      }
      if (this.d.clock.nowMs() >= deadline) {
        throw new TuneKvError('UNAVAILABLE', `could not join through ${this.d.config.join.join(', ')}: ${lastError}`);
      }
      await this.d.sleep(Math.min(1000, 100 * (attempt + 1)));
    }
  }

  private askSeed(seed: string): Promise<string | TuneKvError | null> {
    return new Promise((resolve) => {
      this.d.transport.requestAddr(seed, MsgType.JOIN, { id: this.id, addr: this.d.config.listen, inc: this.inc }, this.d.config.requestTimeoutMs,
        (err, _type, body) => {
          if (err && (err.code === 'CHANGE_REFUSED' || err.code === 'NODE_REMOVED')) {
            resolve(new TuneKvError(err.code, `${seed} refused the join: ${err.message}`));
            return;
          }
          if (err) {
            const hint = err.code === 'UNAUTHORIZED' ? ' (every node of a cluster needs the same --secret-file)' : '';
            resolve(`${seed}: ${err.message}${hint}`);
            return;
          }
          let ring: Ring;
          try {
            ring = ringFromWire((body as { ring?: unknown } | null)?.ring);
          } catch (e) {
            resolve(`${seed}: ${(e as Error).message}`);
            return;
          }
          // A join queued behind another transition: ask again until the
          // ring names us.
          const me = memberOf(ring, this.id);
          this.adoptRing(ring).then(() => resolve(me && me.addr === this.d.config.listen ? null : `${seed}: the join is queued behind a transition in progress`),
            (e: Error) => resolve(e.message));
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
    await Promise.all(peers.map((m) => this.d.ask(m.id, MsgType.PING, {}, this.d.config.peerConnectTimeoutMs).catch(() => undefined)));
    this.announced = true;
  }

  // ---- the ring ----

  private setRing(ring: Ring): void {
    this.ringValue = ring;
    this.d.membership.track(ring.members.map((m) => m.id), this.d.clock.nowMs());
  }

  /** Replaces the ring when `ring` is newer; persists it. */
  async adoptRing(ring: Ring): Promise<boolean> {
    const mine = this.ringValue;
    if (mine && !isNewer(ring, mine)) return false;
    this.setRing(ring);
    await this.d.store.writeRaw({ key: ringKey, value: pack(ring) });
    this.logRing(mine, ring);
    if (mine) this.requeueIfLost(mine, ring);
    // Another ring of a version we counted as installed: not installed.
    if (mine && ring.version <= this.installedVersion) this.installedVersion = ring.version - 1;
    this.d.onRing?.(mine, ring);
    return true;
  }

  /** When transition progress was last logged (elapsed ms). */
  private progressLoggedMs = Number.NEGATIVE_INFINITY;

  /** `ring_changed` when members, plan or transition state change;
   * `ring_transition_progress` (partitions per phase) at most every
   * transitionProgressLogMs while a transition steps, since a step (every
   * 200 ms by default) makes a new ring version each time. */
  private logRing(mine: Ring | undefined, ring: Ring): void {
    const events = this.d.events;
    if (!events) return;
    const members = ring.members.map((m) => ({ id: m.id, addr: m.addr, state: stateOf(m) }));
    if (!mine || mine.members.length !== ring.members.length || mine.plan !== ring.plan || inTransition(mine) !== inTransition(ring)) {
      events.event('info', 'ring_changed', {
        version: ring.version, n: ring.n, q: ring.q, members, plan: ring.plan ?? null, inTransition: inTransition(ring),
        ...(mine && inTransition(mine) && !inTransition(ring) ? { planComplete: mine.plan ?? null } : {}),
      });
      return;
    }
    if (!inTransition(ring)) return;
    const now = this.d.clock.elapsedMs();
    if (now - this.progressLoggedMs < transitionProgressLogMs) return;
    this.progressLoggedMs = now;
    const phases: Record<string, number> = {};
    for (const ph of ring.phase ?? []) {
      const name = phaseNames[ph] ?? String(ph);
      phases[name] = (phases[name] ?? 0) + 1;
    }
    events.event('info', 'ring_transition_progress', { version: ring.version, plan: ring.plan ?? null, phases });
  }

  /** Plans this node committed as claimant, by plan id (the newest few). */
  private readonly myPlans = new Map<number, Change[]>();

  private rememberPlan(plan: number | undefined, changes: Change[]): void {
    if (plan === undefined) return;
    this.myPlans.set(plan, changes);
    while (this.myPlans.size > 8) this.myPlans.delete(this.myPlans.keys().next().value!);
  }

  /** Our ring carried a plan this node committed, still in transition, and
   * the ring that replaces it carries another plan: the plan lost to a ring
   * another claimant made at the same version (each side of a partition
   * the detector had not seen yet committed one). The operator's commit was
   * answered, so its changes are queued again, first; whatever of them is
   * in force by then is dropped when it is committed (stillToDo,
   * planProblems). */
  private requeueIfLost(mine: Ring, ring: Ring): void {
    const plan = mine.plan;
    if (plan === undefined || !inTransition(mine) || ring.plan === plan) return;
    const changes = this.myPlans.get(plan);
    if (!changes) return;
    this.myPlans.delete(plan);
    this.queued.unshift(changes);
    this.d.log(`${this.id} plan ${plan} (${describeChanges(changes)}) is no longer in force (ring v${ring.version} has plan ${ring.plan}): queued again, what is in force already will be dropped`);
  }

  /** Pushes `ring` to every other member; true when every member the
   * detector sees up (and every one not exiting) stored it. */
  private async pushAwait(ring: Ring): Promise<boolean> {
    const peers = ring.members.filter((m) => m.id !== this.id);
    const results = await Promise.all(peers.map(async (m) => {
      try {
        await this.d.ask(m.id, MsgType.RING_PUSH, { ring }, this.d.config.requestTimeoutMs);
        this.pushed.set(m.id, ring.version);
        return true;
      } catch {
        // Down members learn the ring when they return (handshake, gossip);
        // a live one that missed it holds the step back.
        return !this.d.membership.isUp(m.id) || stateOf(m) === 'exiting';
      }
    }));
    if (results.includes(false)) this.changeStats.pushesMissed++;
    return !results.includes(false);
  }

  private pushRing(ring: Ring): void {
    for (const m of ring.members) {
      if (m.id === this.id) continue;
      this.d.ask(m.id, MsgType.RING_PUSH, { ring }).catch(() => {});
    }
  }

  /** Fetches the ring from an address this node chose (a member's address
   * in our ring, or a configured seed) and adopts it if newer. */
  pullRingFrom(addr: string): void {
    this.d.transport.requestAddr(addr, MsgType.RING_GET, {}, this.d.config.requestTimeoutMs, (err, _t, body) => {
      // A standby node answers with no ring: nothing to pull.
      if (err || (body as { ring?: unknown } | null)?.ring === null) return;
      let ring: Ring;
      try {
        ring = ringFromWire((body as { ring?: unknown } | null)?.ring);
      } catch (e) {
        this.d.log(`ring from ${addr} refused: ${(e as Error).message}`);
        return;
      }
      this.adoptRing(ring).catch((e: Error) => this.d.log(`ring not stored: ${e.message}`));
    });
  }

  /** Fetches `peer`'s ring and adopts it if newer; resolves either way. */
  refreshFrom(peer: string): Promise<void> {
    const addr = this.addrOf(peer);
    if (!addr) return Promise.resolve();
    return new Promise((resolve) => {
      this.d.transport.requestAddr(addr, MsgType.RING_GET, {}, this.d.config.requestTimeoutMs, (err, _t, body) => {
        if (err) return resolve();
        try {
          const ring = ringFromWire((body as { ring?: unknown } | null)?.ring);
          this.adoptRing(ring).then(() => resolve(), () => resolve());
        } catch {
          resolve();
        }
      });
    });
  }

  /** A proven peer says its ring is newer: pull from its address in ours.
   * A ring of the same version but other content (two claimants each
   * committed a plan as v+1, on two sides of a partition the detector had
   * not seen yet) is pulled too, and adoptRing keeps the one isNewer ranks
   * first, so every node ends on the same one: with only versions compared,
   * the two sides kept their own rings forever, each naming a claimant
   * that followed the other ring (seed 636). */
  peerRingVersion(peer: string, version: unknown, digest?: unknown): void {
    if (typeof version !== 'number') return;
    const mine = this.ringValue?.version ?? 0;
    if (version < mine) return;
    if (version === mine && (typeof digest !== 'string' || this.ringValue === undefined || digest === ringDigest(this.ringValue))) return;
    const addr = this.addrOf(peer);
    if (addr) this.pullRingFrom(addr);
  }

  /** What gossip says of this node's ring. */
  private ringSummary(): { ringVersion: number; ringDigest?: string } {
    const ring = this.ringValue;
    return ring ? { ringVersion: ring.version, ringDigest: ringDigest(ring) } : { ringVersion: 0 };
  }

  // ---- requests from peers ----

  /** `tunekv node --join`: the joiner asks a seed; the seed forwards to
   * the claimant, which stages and commits the join (or queues it behind a
   * transition in progress) and answers with its ring. A member that
   * restarted on a new address only updates it. */
  onJoin(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'JOIN');
    if (typeof b.id !== 'string' || typeof b.addr !== 'string') throw invalid('JOIN needs id and addr');
    if (b.inc !== undefined && (typeof b.inc !== 'string' || !/^[0-9a-f]{1,32}$/.test(b.inc))) throw invalid('JOIN inc must be hex');
    const ring = this.requireRing();
    if (this.relayedToClaimant(ring, MsgType.JOIN, body, respond)) return;
    const existing = memberOf(ring, b.id);
    if (existing) {
      // Only the member itself (the same data directory: its incarnation)
      // may come back on a new address. Another node claiming a member's
      // id would take over its partitions with none of its data, and two
      // processes minting versions under one actor lose writes.
      const sameNode = existing.inc !== undefined ? b.inc === existing.inc : existing.addr === b.addr;
      if (!sameNode) {
        throw changeRefused(`${b.id} is already a member${existing.inc !== undefined ? ', with another data directory' : ''}: `
          + 'a new node needs an id of its own (a member whose data was lost is brought back with remove or replace, then a fresh join)');
      }
      if (existing.addr !== b.addr) {
        let next: Ring;
        try {
          next = claim(ring, { ...existing, addr: b.addr });
        } catch (err) {
          throw invalid((err as Error).message);
        }
        const problem = ringProblem(next);
        if (problem) throw invalid(`JOIN refused: ${problem}`);
        this.setRing(next);
        this.d.store.writeRaw({ key: ringKey, value: pack(next) }).catch((e: Error) => this.d.log(`ring not stored: ${e.message}`));
        this.d.log(`${b.id} moved to ${b.addr}: ring v${next.version}`);
        this.pushRing(next);
        respond(MsgType.RING_REPLY, { ring: next });
        return;
      }
      respond(MsgType.RING_REPLY, { ring });
      return;
    }
    const change: Change = { op: 'join', id: b.id, addr: b.addr, ...(typeof b.inc === 'string' ? { inc: b.inc } : {}) };
    if (this.queued.some((plan) => plan.some((c) => c.op === 'join' && c.id === change.id))) {
      respond(MsgType.RING_REPLY, { ring, queued: true });
      return;
    }
    const problem = changeProblem(ring, [], change);
    if (problem) throw changeRefused(`JOIN refused: ${problem}`);
    this.requireMajority(ring);
    this.commit([change]).then((r) => respond(MsgType.RING_REPLY, { ring: r.ring, queued: r.queued }),
      (err: unknown) => respond(MsgType.ERROR, errorBody(asTuneKvError(err))));
  }

  /** When another node is the claimant, hands it the change request and
   * relays its answer (true); false when this node is the claimant. */
  private relayedToClaimant(ring: Ring, type: number, body: unknown, respond: Responder): boolean {
    const lead = claimant(ring, this.isUp);
    if (lead === this.id) return false;
    this.d.ask(lead, type, body, this.d.config.requestTimeoutMs).then((r) => respond(r.type, r.body), (err: TuneKvError) => {
      const e = err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT'
        ? new TuneKvError('UNAVAILABLE', `the claimant ${lead} (which makes ring changes) is unreachable: ${err.message}; changes wait for it`)
        : err;
      respond(MsgType.ERROR, errorBody(e));
    });
    return true;
  }

  private planId(): number {
    return 1 + Math.floor(this.d.random() * 2 ** 40);
  }

  /** Refuses a change while this node cannot see a majority of members. */
  private requireMajority(ring: Ring): void {
    if (!seesMajority(ring, this.isUp)) {
      throw changeRefused(`${this.id} sees fewer than a majority of the ${ring.members.length} members up: ring changes wait until it does`);
    }
  }

  /** Commits a plan now, or queues it behind the transition in progress. */
  private async commit(staged: Change[]): Promise<{ ring: Ring; queued: boolean }> {
    const ring = this.requireRing();
    this.requireMajority(ring);
    let changes = staged;
    // Staged on an older ring, a change may be done already (a join another
    // claimant committed) or impossible now (a duplicate member would make
    // a ring every peer refuses): judged again on the ring of the commit.
    changes = stillToDo(ring, changes);
    if (changes.length === 0) return { ring, queued: false };
    if (inTransition(ring) || this.queued.length > 0) {
      // Judged against everything queued before it, so a queued commit that
      // would leave fewer than N members is refused now, not dropped later.
      const problems = planProblems(ring, this.queued.flat(), changes);
      if (problems.length > 0) throw changeRefused(`${problems[0]!} (with the plans queued before it)`);
      this.queued.push(changes);
      this.d.log(`${this.id} queued plan (${describeChanges(changes)}) behind plan ${ring.plan}`);
      return { ring, queued: true };
    }
    const problems = planProblems(ring, [], changes);
    if (problems.length > 0) throw changeRefused(problems[0]!);
    const next = commitPlan(ring, changes, this.planId());
    this.rememberPlan(next.plan, changes);
    await this.adoptRing(next);
    this.changeStats.plansCommitted++;
    this.d.log(`${this.id} committed plan ${next.plan}: ${describeChanges(changes)}`);
    this.installedVersion = 0;
    void this.step();
    return { ring: next, queued: false };
  }

  // ---- change requests (admin, or forwarded by a peer) ----

  onChange(type: number, body: unknown, respond: Responder, peer: string | undefined): void {
    switch (type) {
      case MsgType.CLUSTER_STAGE: return this.onStage(body, respond);
      case MsgType.CLUSTER_PLAN: return this.onPlan(respond);
      case MsgType.CLUSTER_COMMIT:
        if (peer !== undefined && asRecord(body, 'CLUSTER_COMMIT').queued !== undefined) return this.onQueuedHandOff(body, respond);
        return this.onCommit(respond);
      case MsgType.XFER_REPORT: return this.onReport(body, respond, peer);
      case MsgType.EXIT_DONE: return this.onExitDone(body, respond, peer);
      case MsgType.NODE_INFO: return respond(MsgType.NODE_INFO_REPLY, { id: this.id, inc: this.inc, ringVersion: this.ringValue?.version ?? 0, members: this.ringValue?.members.length ?? 0 });
      default: throw invalid(`message type ${type} is not a ring change`);
    }
  }

  private onStage(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'CLUSTER_STAGE');
    const ring = this.requireRing();
    const op = b.op;
    if (op !== 'join' && op !== 'leave' && op !== 'remove' && op !== 'replace') throw invalid('op must be join, leave, remove or replace');
    // A join or replace names the new node by address: ask it who it is.
    const needsInfo = (op === 'join' || op === 'replace') && typeof b.newId !== 'string';
    if (needsInfo) {
      if (typeof b.addr !== 'string' || parseHostPort(b.addr) === null) throw invalid(`${op} needs the new node's addr as host:port`);
      this.nodeInfo(b.addr).then((info) => {
        try {
          this.onStage({ ...b, newId: info.id, inc: info.inc }, respond);
        } catch (err) {
          respond(MsgType.ERROR, errorBody(asTuneKvError(err)));
        }
      }, (err: TuneKvError) => respond(MsgType.ERROR, { code: 'UNAVAILABLE', message: `cannot reach ${String(b.addr)} to learn its id: ${err.message}` }));
      return;
    }
    if (this.relayedToClaimant(ring, MsgType.CLUSTER_STAGE, body, respond)) return;
    const inc = typeof b.inc === 'string' ? b.inc : undefined;
    let change: Change;
    if (op === 'join') change = { op, id: String(b.newId), addr: String(b.addr), ...(inc ? { inc } : {}) };
    else if (op === 'replace') {
      if (typeof b.id !== 'string') throw invalid('replace needs the id of the node to replace');
      change = { op, id: b.id, with: { id: String(b.newId), addr: String(b.addr), ...(inc ? { inc } : {}) } };
    } else {
      if (typeof b.id !== 'string') throw invalid(`${op} needs a node id`);
      change = { op, id: b.id };
    }
    // Staging the same change again (a retry) is a no-op.
    if (this.staged.some((c) => JSON.stringify(c) === JSON.stringify(change))) {
      respond(MsgType.OK, { staged: this.staged.map(changeToWire) });
      return;
    }
    const problem = changeProblem(ring, this.staged, change);
    if (problem) throw changeRefused(problem);
    this.staged.push(change);
    this.d.log(`${this.id} staged: ${describeChanges([change])}`);
    respond(MsgType.OK, { staged: this.staged.map(changeToWire) });
  }

  private nodeInfo(addr: string): Promise<{ id: string; inc: string | undefined }> {
    return new Promise((resolve, reject) => {
      this.d.transport.requestAddr(addr, MsgType.NODE_INFO, {}, this.d.config.requestTimeoutMs, (err, _t, body) => {
        if (err) return reject(err);
        const r = (body ?? {}) as { id?: unknown; inc?: unknown; members?: unknown };
        if (typeof r.id !== 'string') return reject(new TuneKvError('PROTOCOL_ERROR', 'NODE_INFO reply without an id'));
        if (typeof r.members === 'number' && r.members > 1 && !(this.ringValue && memberOf(this.ringValue, r.id))) {
          return reject(changeRefused(`${addr} (${r.id}) already belongs to a cluster of ${r.members} nodes`));
        }
        resolve({ id: r.id, inc: typeof r.inc === 'string' ? r.inc : undefined });
      });
    });
  }

  private onPlan(respond: Responder): void {
    const ring = this.requireRing();
    if (this.relayedToClaimant(ring, MsgType.CLUSTER_PLAN, {}, respond)) return;
    let plan: unknown = null;
    if (this.staged.length > 0 && !inTransition(ring)) plan = summarize(commitPlan(ring, this.staged, 0));
    respond(MsgType.CLUSTER_PLAN_REPLY, {
      claimant: this.id, ringVersion: ring.version, staged: this.staged.map(changeToWire), plan,
      queued: this.queued.map((q) => q.map(changeToWire)), transition: transitionProgress(ring),
    });
  }

  private onCommit(respond: Responder): void {
    const ring = this.requireRing();
    if (this.relayedToClaimant(ring, MsgType.CLUSTER_COMMIT, {}, respond)) return;
    if (this.staged.length === 0) throw changeRefused('nothing is staged: stage a join, leave, remove or replace first');
    this.requireMajority(ring);
    const changes = this.staged;
    this.staged = [];
    this.commit(changes).then((r) => respond(MsgType.OK, { ringVersion: r.ring.version, plan: r.ring.plan, queued: r.queued }), (err: unknown) => {
      // Refused: the changes stay staged, as they were.
      if (this.staged.length === 0) this.staged = changes;
      respond(MsgType.ERROR, errorBody(asTuneKvError(err)));
    });
  }

  /** A former claimant hands over a plan it had queued (committed by an
   * operator, not yet started): committed here, or queued behind the
   * transition in progress. Peers only: an operator stages and commits. */
  private onQueuedHandOff(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'CLUSTER_COMMIT');
    if (!Array.isArray(b.queued) || b.queued.length === 0 || b.queued.length > limits.stagedChangesMax) throw invalid('CLUSTER_COMMIT queued must list changes');
    const changes = (b.queued as unknown[]).map(changeFromWire);
    const ring = this.requireRing();
    if (this.relayedToClaimant(ring, MsgType.CLUSTER_COMMIT, body, respond)) return;
    this.commit(changes).then((r) => respond(MsgType.OK, { ringVersion: r.ring.version, plan: r.ring.plan, queued: r.queued }),
      (err: unknown) => respond(MsgType.ERROR, errorBody(asTuneKvError(err))));
  }

  private handingOff = false;

  /** This node queued plans as claimant and is no longer the claimant (a
   * lower-id member came back, or this node lost its majority): the plans
   * go to the claimant in order, or they would be lost while this node
   * runs on (an operator's commit was answered). A plan the claimant
   * refuses (the ring moved on) is dropped with a log line. */
  private async handOffQueued(ring: Ring): Promise<void> {
    if (this.handingOff || this.queued.length === 0) return;
    const lead = claimant(ring, this.isUp);
    if (lead === this.id || !this.isUp(lead)) return;
    this.handingOff = true;
    try {
      while (this.queued.length > 0) {
        const changes = this.queued[0]!;
        try {
          await this.d.ask(lead, MsgType.CLUSTER_COMMIT, { queued: changes.map(changeToFullWire) }, this.d.config.requestTimeoutMs);
          this.d.log(`${this.id} handed queued plan (${describeChanges(changes)}) to the claimant ${lead}`);
        } catch (err) {
          const e = asTuneKvError(err);
          if (e.code !== 'CHANGE_REFUSED') return;
          this.d.log(`${this.id} dropped a queued plan (${describeChanges(changes)}): ${lead} refused it: ${e.message}`);
        }
        if (this.queued[0] === changes) this.queued.shift();
      }
    } finally {
      this.handingOff = false;
    }
  }

  private onReport(body: unknown, respond: Responder, peer: string | undefined): void {
    const b = asRecord(body, 'XFER_REPORT');
    if (!Number.isSafeInteger(b.plan) || !Number.isSafeInteger(b.partition) || (b.what !== 'streamed' && b.what !== 'caughtup') || peer === undefined) {
      throw invalid('XFER_REPORT needs plan, partition and what (streamed or caughtup) from a peer');
    }
    if (this.reports.size < 1_000_000) this.reports.add(reportKey(b.plan as number, b.partition as number, peer, b.what));
    respond(MsgType.OK, null);
    void this.step();
  }

  private onExitDone(_body: unknown, respond: Responder, peer: string | undefined): void {
    if (peer === undefined) throw invalid('EXIT_DONE comes from a peer');
    this.exitDone.add(peer);
    respond(MsgType.OK, null);
    void this.step();
  }

  // ---- the claimant's steps ----

  /** Moves the transition on by at most one ring version, after every live
   * member installed the current one. Runs on the claimant only. */
  async step(): Promise<void> {
    const ring = this.ringValue;
    if (!ring || this.stepping) return;
    if (claimant(ring, this.isUp) !== this.id) return this.handOffQueued(ring);
    if (!seesMajority(ring, this.isUp)) return;
    this.stepping = true;
    try {
      for (let i = 0; i < 8; i++) {
        const cur = this.ringValue!;
        if (this.installedVersion < cur.version) {
          if (!(await this.pushAwait(cur))) return;
          // A ring that arrived meanwhile (a same-version ring from another
          // claimant, or a newer one) is judged afresh: a step made from
          // `cur` would lose to it, and a queued plan committed in it be lost.
          if (this.ringValue !== cur) continue;
          this.installedVersion = cur.version;
        } else if (i === 0) {
          this.repush(cur);
        }
        const queuedBefore = [...this.queued];
        let next = advance(cur, this.reports, true);
        if (!next) {
          // An exiting member leaves the ring once it says it handed
          // everything off, or after it stayed down for exitGraceMs (it died).
          const nowMs = this.d.clock.nowMs();
          const downLong = (id: string): boolean => this.d.membership.statuses()
            .some((p) => p.id === id && p.state === 'down' && nowMs - p.sinceMs >= 10 * this.d.config.downAfterMs);
          const gone = exitingMembers(cur).filter((id) => this.exitDone.has(id) || downLong(id));
          if (!inTransition(cur) && gone.length > 0) next = dropExited(cur, gone);
        }
        if (!next && inTransition(cur) && this.queued.length > 0) next = this.amendForDeadReceivers(cur);
        if (!next && !inTransition(cur) && this.queued.length > 0) {
          // Every plan queued behind the transition goes in one plan (they
          // were judged together when queued): a remove or replace of a
          // dead member queued behind another change must not wait for a
          // transition that gives that member partitions it will never
          // take. Changes the ring has overtaken meanwhile (a join already
          // made) are dropped as done; any other problem drops that change.
          const changes: Change[] = [];
          const problems: string[] = [];
          for (const c of stillToDo(cur, this.queued.splice(0).flat())) {
            const problem = changeProblem(cur, changes, c);
            if (problem) problems.push(`${describeChanges([c])}: ${problem}`); else changes.push(c);
          }
          if (problems.length > 0) this.d.log(`${this.id} dropped queued changes: ${problems.join('; ')}`);
          if (changes.length === 0) continue;
          next = commitPlan(cur, changes, this.planId());
          this.rememberPlan(next.plan, changes);
          this.changeStats.plansCommitted++;
          this.d.log(`${this.id} committed queued plan ${next.plan}: ${describeChanges(changes)}`);
        }
        if (!next) return;
        this.changeStats.steps++;
        if (!(await this.adoptRing(next))) {
          // Lost to a ring that won meanwhile: the plans taken from the
          // queue for this step go back, and the next pass starts over.
          this.queued.splice(0, this.queued.length, ...queuedBefore);
          if (next.plan !== cur.plan && next.plan !== undefined) this.myPlans.delete(next.plan);
          continue;
        }
        if (!inTransition(next)) this.d.log(`${this.id} ring v${next.version}: ${inTransition(cur) ? `plan ${cur.plan} complete` : 'members updated'}`);
      }
    } catch (err) {
      // The node is stopping, or its disk failed: the next tick tries again.
      this.d.log(`${this.id} transition step failed: ${(err as Error).message}`);
    } finally {
      this.stepping = false;
    }
  }

  /** The transition waits for a receiver that is down, and a plan queued
   * behind it removes or replaces that receiver: queued, the removal would
   * wait for the transition and the transition for the dead receiver,
   * forever. The operator has said the node is gone, so, as Riak's claimant
   * re-plans pending ownership when a node is removed mid-handoff, the
   * queued plans up to that one are folded into the transition
   * (amendPlan: every partition whose next set changes starts over from
   * transfer, so nothing flips without a real catch-up). Null when nothing
   * is to be folded. */
  private amendForDeadReceivers(cur: Ring): Ring | null {
    const blocked = blockingReceivers(cur, this.reports, this.isUp);
    if (blocked.length === 0) return null;
    const k = this.queued.findIndex((plan) => takenOut(plan).some((id) => blocked.includes(id)));
    if (k < 0) return null;
    const plans = this.queued.splice(0, k + 1).map((plan) => stillToDo(cur, plan));
    const changes: Change[] = [];
    for (const plan of plans) {
      const problems = planProblems(cur, changes, plan);
      if (problems.length > 0) this.d.log(`${this.id} dropped a queued plan (${describeChanges(plan)}): ${problems.join('; ')}`);
      else changes.push(...plan);
    }
    if (changes.length === 0) return null;
    const next = amendPlan(cur, changes, this.planId());
    // The folded plan's changes now belong to the new plan (not lost).
    const before = cur.plan !== undefined ? this.myPlans.get(cur.plan) : undefined;
    if (cur.plan !== undefined) this.myPlans.delete(cur.plan);
    this.rememberPlan(next.plan, [...(before ?? []), ...changes]);
    this.changeStats.plansCommitted++;
    this.d.log(`${this.id} folded queued changes into plan ${cur.plan} as plan ${next.plan} (${blocked.join(',')} down, waited for): ${describeChanges(changes)}`);
    return next;
  }

  /** Answered once the ring is stored (or ours is newer): the claimant
   * counts the answer as "installed". */
  onRingPush(body: unknown, respond: Responder): void {
    const ring = ringFromWire(asRecord(body, 'RING_PUSH').ring);
    this.adoptRing(ring).then(() => respond(MsgType.OK, null), (e: Error) => {
      this.d.log(`ring not stored: ${e.message}`);
      respond(MsgType.ERROR, { code: 'STORAGE_FAILED', message: `ring not stored: ${e.message}` });
    });
  }

  private removedNoted = false;

  /** A peer says we were removed: stop (a removed node must be wiped and
   * join anew). Returns true the first time. */
  noteRemoved(by: string, message: string): boolean {
    if (this.removedNoted) return false;
    this.removedNoted = true;
    this.d.log(`${this.id} was removed from the cluster (${by}: ${message}); stopping. Wipe ${this.d.config.dataDir} and join it anew to bring it back.`);
    return true;
  }

  /** True when `peer` was removed from the cluster (and not re-joined). */
  isRemovedPeer(peer: string): boolean {
    const ring = this.ringValue;
    return ring !== undefined && !memberOf(ring, peer) && (ring.removed ?? []).some((e) => e.startsWith(`${peer}/`));
  }

  onGossip(body: unknown, respond: Responder, peer: string | undefined): void {
    const b = asRecord(body, 'GOSSIP');
    const problem = wireHeartbeatsProblem(b.table);
    if (problem) throw invalid(problem);
    this.d.membership.merge(b.table as WireHeartbeat[], this.d.clock.nowMs());
    if (peer !== undefined) this.peerRingVersion(peer, b.ringVersion, b.ringDigest);
    respond(MsgType.GOSSIP_REPLY, { table: this.d.membership.table(), ...this.ringSummary() });
  }

  // ---- gossip rounds ----

  /** Push-pull gossip with a few peers. */
  async gossipRound(): Promise<void> {
    const now = this.d.clock.nowMs();
    const table = this.d.membership.tick(now, this.d.hintsPending());
    const body = { table, ...this.ringSummary() };
    const peers = this.d.membership.gossipTargets(this.d.config.gossipFanout, this.d.random);
    await Promise.all(peers.map(async (peer) => {
      try {
        const r = await this.d.ask(peer, MsgType.GOSSIP, body, this.d.config.gossipIntervalMs * 4);
        this.onGossipReply(peer, r.body);
      } catch {
        // The detector learns from silence and refusals; nothing else to do.
      }
    }));
    this.d.membership.refresh(this.d.clock.nowMs());
  }

  private onGossipReply(peer: string, body: unknown): void {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { table?: unknown; ringVersion?: unknown; ringDigest?: unknown };
    if (wireHeartbeatsProblem(b.table) !== null) return;
    this.d.membership.merge(b.table as WireHeartbeat[], this.d.clock.nowMs());
    this.peerRingVersion(peer, b.ringVersion, b.ringDigest);
  }
}

function changeToWire(c: Change): Record<string, unknown> {
  return c.op === 'replace' ? { op: c.op, id: c.id, newId: c.with.id, addr: c.with.addr } : { ...c };
}

/** A change as a former claimant hands it over (replace keeps the new
 * node's incarnation). */
function changeToFullWire(c: Change): Record<string, unknown> {
  return c.op === 'replace' ? { op: c.op, id: c.id, with: { ...c.with } } : { ...c };
}

const hexInc = /^[0-9a-f]{1,32}$/;

function changeFromWire(v: unknown): Change {
  const c = asRecord(v, 'change');
  const str = (x: unknown, what: string): string => {
    if (typeof x !== 'string' || x.length === 0 || x.length > 256) throw invalid(`change ${what} must be a string`);
    return x;
  };
  const inc = (x: unknown): { inc?: string } => {
    if (x === undefined) return {};
    if (typeof x !== 'string' || !hexInc.test(x)) throw invalid('change inc must be hex');
    return { inc: x };
  };
  switch (c.op) {
    case 'join': return { op: 'join', id: str(c.id, 'id'), addr: str(c.addr, 'addr'), ...inc(c.inc) };
    case 'leave': return { op: 'leave', id: str(c.id, 'id') };
    case 'remove': return { op: 'remove', id: str(c.id, 'id') };
    case 'replace': {
      const w = asRecord(c.with, 'replace with');
      return { op: 'replace', id: str(c.id, 'id'), with: { id: str(w.id, 'id'), addr: str(w.addr, 'addr'), ...inc(w.inc) } };
    }
    default: throw invalid('change op must be join, leave, remove or replace');
  }
}

function describeChanges(changes: readonly Change[]): string {
  return changes.map((c) => (c.op === 'join' ? `join ${c.id}@${c.addr}` : c.op === 'replace' ? `replace ${c.id} with ${c.with.id}@${c.with.addr}` : `${c.op} ${c.id}`)).join(', ');
}

/** Partitions per phase, for status and plan. */
export function transitionProgress(ring: Ring): { plan: number; phases: Record<string, number> } | null {
  if (!inTransition(ring)) return null;
  const phases: Record<string, number> = {};
  for (const ph of ring.phase ?? []) {
    const name = phaseNames[ph] ?? String(ph);
    phases[name] = (phases[name] ?? 0) + 1;
  }
  return { plan: ring.plan ?? 0, phases };
}

