// The coordinator side of a node: runs a client's get, put or delete as a
// state machine from core/coordinator and carries out its effects (replica
// reads and writes here or over the network, the local write, the reply).
//
// What may be written is decided by the pure put policy
// (core/coordinator/put-policy.ts); this room only does the I/O.
//
// Invariants: a request gets exactly one reply; every FSM's timer is
// cleared when it is done; effects run in the order the FSM returns them
// and every outcome is fed back asynchronously (never re-entrantly); a put
// is only coordinated by a replica of its key (others forward it).

import assert from 'node:assert/strict';
import { liveSiblings, merge, objectBytes, standInActor, writtenSibling } from '../core/clock/object.js';
import type { Sibling, VersionedObject } from '../core/clock/object.js';
import { GetFsm } from '../core/coordinator/get-fsm.js';
import type { ReadResult } from '../core/coordinator/get-fsm.js';
import { PutFsm } from '../core/coordinator/put-fsm.js';
import type { CoordinateResult } from '../core/coordinator/put-fsm.js';
import { decidePut, deleteNeedsRead } from '../core/coordinator/put-policy.js';
import { selectTargets } from '../core/coordinator/targets.js';
import type { Targets } from '../core/coordinator/targets.js';
import type { Effect, FsmReply, ReplicaReport, ReplicaTarget } from '../core/coordinator/types.js';
import type { Membership } from '../core/membership/membership.js';
import type { Quorum } from '../core/quorum/levels.js';
import { memberOf, partitionOfKey } from '../core/ring/ring.js';
import type { Ring } from '../core/ring/ring.js';
import { alsoRequired, alsoSent, readPreference } from '../core/ring/transition.js';
import type { QuorumGroup } from '../core/quorum/tally.js';
import { withDot } from '../core/clock/vclock.js';
import type { NodeConfig } from '../config.js';
import { TuneKvError } from '../errors.js';
import { contextMac, verifyContextMac } from '../security/context-mac.js';
import { limits } from '../limits.js';
import type { Clock, TimerHandle } from '../io/clock.js';
import type { ReplyCallback, Responder } from '../io/transport.js';
import { MsgType } from '../protocol/messages.js';
import type { GetReplyBody, PutReplyBody } from '../protocol/messages.js';
import { clockToWire, objectFromWire } from '../protocol/object-codec.js';
import { conflictsOfPut } from './conflict-log.js';
import type { ConflictLog } from './conflict-log.js';
import type { Hints } from './hints.js';
import type { NodeMetrics } from './metrics.js';
import type { ObjectStore } from './object-store.js';
import type { Reaper } from './reaper.js';
import { tombstonesOnly } from './reaper.js';
import { asTuneKvError, errorBody, reportsToWire, wireOf } from './replies.js';
import type { Replica } from './replica.js';
import { forwardedBody, parseGet, parsePut } from './requests.js';
import { parseAtLeast, parseTypedSession, typedVersionReply } from './session-read.js';
import { checkBy } from './requests.js';
import type { GetRequest, PutRequest } from './requests.js';
import { checkPlainKey } from '../protocol/typed-keys.js';
import { decideTyped, typedNeedsRead } from '../core/crdt/typed-object.js';
import { parseTypedRead, parseTypedUpdate } from './typed-requests.js';
import { typedReadReply, typedUpdateReply } from './typed-replies.js';

export interface CoordinatorStats {
  gets: number;
  puts: number;
  deletes: number;
  failedRequests: number;
  forwardedPuts: number;
  readRepairs: number;
  siblingWarnings: number;
  replicaTimeouts: number;
  sloppyWrites: number;
  /** Requests run again on a newer ring after a replica fenced them. */
  staleRingRetries: number;
  /** Reads that asked one more replica because the first were slow. */
  speculativeReads: number;
  /** Session reads (GET with atLeast), and those that had to ask more
   * replicas because the first answers were older than the session. */
  sessionReads: number;
  sessionReadsLookedFurther: number;
}

/** Pause before running a fenced request again on a refreshed ring, after
 * attempt n: the claimant steps only once every live member installed the
 * last version, so a ring that moved once will not move again at once. */
function staleRingBackoffMs(n: number): number {
  return Math.min(100, 5 * 2 ** Math.min(n - 1, 5));
}

/** The replicas one request goes to on one ring: the sloppy quorum of the
 * partition's read set, plus, while it changes owners, the other set
 * (counted as a second group) or the receivers (not counted). */
interface Plan extends Targets {
  readonly groups: readonly QuorumGroup[] | undefined;
}

/** One attempt's bookkeeping: the time left until the request's deadline,
 * and did a replica say our ring is older? */
interface Attempt { readonly n: number; readonly timeoutMs: number; stalePeer: string | undefined }

export interface CoordinatorDeps {
  readonly id: string;
  readonly config: NodeConfig;
  readonly clock: Clock;
  readonly store: ObjectStore;
  readonly membership: Membership;
  readonly hints: Hints;
  readonly reaper: Reaper;
  readonly replica: Replica;
  readonly metrics: NodeMetrics;
  /** Where conflicts this node coordinates are recorded. */
  readonly conflicts: ConflictLog;
  /** Decides which reads ask every replica (readRepairChance). */
  readonly random: () => number;
  requireRing(): Ring;
  /** Fetches the ring of `peer` (which said ours is older) and adopts it if
   * newer; resolves either way. */
  refreshRing(peer: string): Promise<void>;
  /** Signs and checks the contexts clients hand back (security/context-mac.ts). */
  readonly contextKey: Buffer;
  peerRequest(to: string, type: number, body: unknown, timeoutMs: number, cb: ReplyCallback): void;
  /** Throws STORAGE_FAILED while the disk failure policy refuses writes. */
  checkWritable(): void;
  addTimer(h: TimerHandle): void;
  removeTimer(h: TimerHandle): void;
  log(line: string): void;
}

/** The local write of a put: the object as built, and when it is durable. */
interface Coordinated { readonly object: VersionedObject; readonly durable: Promise<void> }

/** One request's state machine, as the effect runner drives it. */
type Running =
  | { readonly kind: 'get'; readonly fsm: GetFsm }
  | { readonly kind: 'put'; readonly fsm: PutFsm; readonly coordinate: () => Promise<Coordinated> };

export class Coordinator {
  readonly stats: CoordinatorStats = {
    gets: 0, puts: 0, deletes: 0, failedRequests: 0, forwardedPuts: 0, readRepairs: 0,
    siblingWarnings: 0, replicaTimeouts: 0, sloppyWrites: 0, staleRingRetries: 0, speculativeReads: 0,
    sessionReads: 0, sessionReadsLookedFurther: 0,
  };
  private inFlight = 0;
  /** The actor this node mints under when it coordinates as a fallback
   * (object.ts, standInActor), and the store's removal count when it was
   * made: a new one after any removal, since the node may then have dropped
   * dots it minted under the old one. Its suffix is above the wall clock in
   * µs and above the last one, so it is never reused. */
  private standIn: { readonly actor: string; readonly removals: number; readonly seq: number } | undefined;

  constructor(private readonly d: CoordinatorDeps) {}

  get requestsInFlight(): number {
    return this.inFlight;
  }

  private admit(): void {
    if (this.inFlight >= limits.requestsInFlightMax) {
      throw new TuneKvError('OVERLOADED', `node ${this.d.id} runs ${this.inFlight} requests already (requestsInFlightMax)`);
    }
  }

  /** Where a request on `key` goes on `ring`, as this node's failure
   * detector sees it (transition.ts has the table). Strong reads and every
   * write need a quorum of both sets while a partition is sealed, caught up
   * or flipped; writes also reach a transfer's receivers. */
  private targetsFor(ring: Ring, key: string, quorum: Quorum, forWrite: boolean): Plan {
    const isUp = (id: string): boolean => this.d.membership.isUp(id);
    const p = partitionOfKey(ring, key);
    const base = selectTargets(readPreference(ring, p), isUp, !quorum.strong);
    const also = forWrite || quorum.strong ? alsoRequired(ring, p) : null;
    const extra = forWrite ? alsoSent(ring, p) : [];
    if (also === null && extra.length === 0) return { ...base, groups: undefined };
    const targets = [...base.targets];
    const down = [...base.down];
    const known = (id: string): boolean => targets.some((t) => t.node === id) || down.includes(id);
    for (const id of also ?? []) {
      if (known(id)) continue;
      if (isUp(id)) targets.push({ node: id, role: 'primary' }); else down.push(id);
    }
    for (const id of extra) if (!known(id) && isUp(id)) targets.push({ node: id, role: 'pending' });
    const required = forWrite ? quorum.w : quorum.r;
    const first = [...base.targets.map((t) => t.node), ...base.down];
    const groups = also === null ? [{ nodes: first, required }] : [{ nodes: first, required }, { nodes: [...also], required }];
    return { targets, down, groups };
  }

  /** Runs `attempt` again on a newer ring when a replica fenced it (our
   * ring was older than the replica's) and it failed for that: after a
   * short backoff, with the ring refreshed from that replica, for as long
   * as the request's deadline (timeoutMs from now) allows. When the ring
   * kept moving until then, the request fails with STALE_RING. */
  private withRetry(respond: Responder, timeoutMs: number, attempt: (a: Attempt, reply: Responder) => void): void {
    const deadline = this.d.clock.elapsedMs() + timeoutMs;
    const left = (): number => deadline - this.d.clock.elapsedMs();
    const run = (n: number): void => {
      const a: Attempt = { n, timeoutMs: Math.max(1, left()), stalePeer: undefined };
      attempt(a, (type, body) => {
        const peer = a.stalePeer;
        if (type !== MsgType.ERROR || peer === undefined) return respond(type, body);
        const outOfTime = (): void => respond(MsgType.ERROR, staleRingBody(body, n, peer));
        const waitMs = staleRingBackoffMs(n);
        if (left() <= waitMs) return outOfTime();
        this.stats.staleRingRetries++;
        const h = this.d.clock.setTimer(waitMs, () => {
          this.d.removeTimer(h);
          this.d.refreshRing(peer).then(() => {
            if (left() <= 0) return outOfTime();
            try {
              run(n + 1);
            } catch (err) {
              respond(MsgType.ERROR, errorBody(asTuneKvError(err)));
            }
          }, () => respond(type, body));
        });
        this.d.addTimer(h);
      });
    };
    run(1);
  }

  // ---- gets ----

  onGet(body: unknown, respond: Responder): void {
    const req = parseGet(body, this.d.requireRing().n);
    checkPlainKey(req.key);
    const atLeast = parseAtLeast(body as Record<string, unknown>, this.d.contextKey, req.key);
    this.runGet(req, atLeast, respond, (r) => {
      if ((r.lookedFurther ?? 0) > 0) {
        this.stats.sessionReadsLookedFurther++;
        this.d.metrics.countSessionLookFurther();
      }
      const out = this.getReply(req, r.object, r.replicas);
      return [MsgType.GET_REPLY, r.lookedFurther === undefined ? out : { ...out, lookedFurther: r.lookedFurther }];
    });
  }

  /** A counter or set operation (TYPE_UPDATE) or read (TYPE_READ): the same
   * FSMs as a put or get on the type's own key space (typed-requests.ts);
   * the coordinator applies the operation to its copy, replicas merge. */
  onTyped(type: number, body: unknown, fromPeer: boolean, respond: Responder): void {
    const n = this.d.requireRing().n;
    if (type === MsgType.TYPE_READ) {
      const req = parseTypedRead(body, n);
      const sess = parseTypedSession(body as Record<string, unknown>, req.key, req.kind, this.d.contextKey);
      const atLeast = sess?.atLeast === undefined ? undefined : { typed: sess.atLeast };
      this.runGet(req, atLeast, respond, (r) => {
        if ((r.lookedFurther ?? 0) > 0) {
          this.stats.sessionReadsLookedFurther++;
          this.d.metrics.countSessionLookFurther();
        }
        const out = typedReadReply(req, r.object, r.replicas, this.d.id);
        if (sess === undefined) return [MsgType.TYPE_READ_REPLY, out];
        const version = typedVersionReply(req.kind, req.key, r.object, sess, this.d.contextKey, []);
        return [MsgType.TYPE_READ_REPLY, { ...out, version, ...(r.lookedFurther === undefined ? {} : { lookedFurther: r.lookedFurther }) }];
      });
      return;
    }
    const parsed = parseTypedUpdate(body, n);
    const typedSession = parseTypedSession(body as Record<string, unknown>, parsed.key, parsed.typed!.kind, this.d.contextKey);
    const req = typedSession === undefined ? parsed : { ...parsed, typedSession };
    this.withRetry(respond, this.timeoutOf(req), (a, reply) => this.putAttempt(body, req, false, fromPeer, a, reply, () => {}));
  }

  /** A get on `req.key`; `replyOf` builds the reply from the merged result. */
  private runGet(req: GetRequest, atLeast: ReturnType<typeof parseAtLeast>, respond: Responder,
    replyOf: (r: { object: VersionedObject | undefined; replicas: readonly ReplicaReport[]; lookedFurther?: number }) => [number, unknown]): void {
    this.admit();
    this.stats.gets++;
    if (atLeast !== undefined) this.stats.sessionReads++;
    this.withRetry(respond, this.timeoutOf(req), (a, reply) => {
      const ring = this.d.requireRing();
      const { targets, down, groups } = this.targetsFor(ring, req.key, req.quorum, false);
      // This node first: its own read costs no message. Every replica is
      // asked while the partition changes owners (two groups to satisfy)
      // and for a readRepairChance sample.
      const self = targets.findIndex((t) => t.node === this.d.id);
      if (self > 0) targets.unshift(...targets.splice(self, 1));
      const askAll = groups !== undefined || this.d.random() < this.d.config.readRepairChance;
      // R=1 is answered by this node's own copy, which no remote replica
      // beats. For R >= 2 one replica more than R is asked (a hedge): the
      // reply then waits for the fastest R-1 of R remote replicas, not for
      // all of them. Without it a one-client `quorum` get of N=3 measured
      // 0.41-0.43 ms p50 against 0.35-0.38 ms asking all three, and asking
      // one replica less showed no CPU saving beyond the spread.
      const hedge = req.quorum.r >= 2 ? 1 : 0;
      const fsm = new GetFsm({
        replicas: targets, down, quorum: req.quorum, readRepair: this.d.config.readRepair, groups, askAll, hedge, atLeast, nowMs: this.d.clock.nowMs(),
      });
      this.drive(req.key, ring, a, { kind: 'get', fsm }, a.timeoutMs, (r) => {
        if (!r.ok) return this.respondFsmError(reply, r);
        const [type, out] = replyOf(r);
        reply(type, out);
      }, 'get', req.quorum.level);
    });
  }

  private getReply(req: GetRequest, obj: VersionedObject | undefined, replicas: readonly ReplicaReport[]): GetReplyBody {
    const live = obj ? liveSiblings(obj) : [];
    if (obj && live.length > 0) this.d.metrics.observeRead(obj.siblings.length);
    return {
      found: live.length > 0,
      values: live.map((s) => [s.vtype, s.value ?? new Uint8Array(0)]),
      tombstones: obj ? obj.siblings.length - live.length : 0,
      context: obj ? clockToWire(obj.clock) : [],
      contextMac: contextMac(this.d.contextKey, req.key, obj ? obj.clock : []),
      level: req.quorum.level,
      r: req.quorum.r,
      coordinator: this.d.id,
      replicas: reportsToWire(replicas),
    };
  }

  private timeoutOf(req: { timeoutMs: number | undefined }): number {
    return req.timeoutMs ?? this.d.config.requestTimeoutMs;
  }

  // ---- puts and deletes ----

  /** A PUT or DELETE; `fromPeer` says whether a `forwarded` flag may be
   * believed (only a peer forwards), `trusted` whether a context may come
   * without this cluster's MAC (peers, which checked it before forwarding,
   * and admins). */
  onPut(body: unknown, isDelete: boolean, fromPeer: boolean, trusted: boolean, respond: Responder, user?: string): void {
    const parsed = parsePut(body, this.d.requireRing().n, isDelete);
    // Who wrote it, for the conflict log: the user this client logged in
    // as, or the one a forwarding peer names; a client's own `by` is ignored.
    const req: PutRequest = { ...parsed, by: fromPeer ? checkBy((body as Record<string, unknown>).by) : user };
    checkPlainKey(req.key);
    if (!trusted && req.context.length > 0 && !verifyContextMac(this.d.contextKey, req.key, req.context, req.contextMac)) {
      throw new TuneKvError('INVALID_ARGUMENT', 'context was not issued by this cluster for this key (or was changed): pass the context string a read or put of this key returned, unchanged');
    }
    let current = req;
    this.withRetry(respond, this.timeoutOf(req), (a, reply) => {
      this.putAttempt(body, current, isDelete, fromPeer, a, reply, (written) => {
        // A retry supersedes what the failed attempt wrote here, and only that.
        if (written) current = { ...current, context: withDot(current.context, written[0], written[1], this.d.clock.nowMs()), contextGiven: true };
      });
    });
  }

  private putAttempt(body: unknown, req: PutRequest, isDelete: boolean, fromPeer: boolean, a: Attempt, respond: Responder,
    onWritten: (dot: [string, number] | undefined) => void): void {
    const ring = this.d.requireRing();
    const forwarded = fromPeer && req.forwarded;
    // Forwarded with this attempt's context (a fenced attempt's dot included):
    // with the client's original one, the two attempts became siblings with
    // one write id and a later write that superseded the kept twin dropped
    // the acknowledged one (seed 346, a strong put lost).
    const onward = forwardedBody(body, req, req.by);
    const plan = this.targetsFor(ring, req.key, req.quorum, true);
    const { targets, down } = plan;
    if (!targets.some((r) => r.node === this.d.id)) {
      if (targets.length === 0) {
        throw new TuneKvError('QUORUM_UNAVAILABLE', `${req.quorum.level} write cannot reach its quorum: no replica of the key is up`,
          { required: req.quorum.w, received: 0, failed: down.length, replicas: down.map((node) => ({ node, role: 'primary', outcome: 'failed' })) });
      }
      if (forwarded) throw new TuneKvError('UNAVAILABLE', `views differ: ${this.d.id} is not a replica of this key here; retry`);
      this.forwardPut(targets, onward, isDelete, req.timeoutMs, respond, req.typed !== undefined);
      return;
    }
    // Only a primary of the read set coordinates while one is up. A
    // fallback or a transfer's receiver may have dropped (or not yet
    // received) the key's history, and a dot minted here without it would
    // claim to cover this node's earlier dots of the key (found by the
    // simulator: an acknowledged w=3 write lost this way).
    const primaries = targets.filter((t) => t.role === 'primary' && readSet(ring, req.key).includes(t.node));
    if (!forwarded && !primaries.some((t) => t.node === this.d.id) && primaries.length > 0) {
      this.forwardPut(primaries, onward, isDelete, req.timeoutMs, respond, req.typed !== undefined);
      return;
    }
    this.d.checkWritable();
    this.admit();
    if (isDelete) this.stats.deletes++; else this.stats.puts++;
    if (targets.some((t) => t.role === 'fallback')) this.stats.sloppyWrites++;
    if (isDelete && deleteNeedsRead(req.contextGiven)) this.readThenDelete(ring, req, plan, a, respond, onWritten);
    else if (req.typed !== undefined && (typedNeedsRead(req.typed, req.quorum.w) || sessionNeedsRead(req))) this.readThenTyped(ring, req, plan, a, respond);
    else this.coordinatePut(ring, req, plan, a, respond, onWritten);
  }

  /**
   * A delete without a context deletes what a read at the same level sees,
   * as Riak's delete does: a tombstone that superseded nothing would be a
   * sibling of the value and delete nothing. Writes the read did not see
   * survive as siblings. When the read finds no live value nothing is
   * written.
   */
  private readThenDelete(ring: Ring, req: PutRequest, t: Plan, a: Attempt, respond: Responder,
    onWritten: (dot: [string, number] | undefined) => void): void {
    const readQuorum = { ...req.quorum, r: req.quorum.w };
    const fsm = new GetFsm({
      replicas: t.targets, down: t.down, quorum: readQuorum, readRepair: false, groups: t.groups?.map((g) => ({ ...g, required: readQuorum.r })), askAll: true,
    });
    this.drive(req.key, ring, a, { kind: 'get', fsm }, a.timeoutMs, (reply) => {
      if (!reply.ok) return this.respondFsmError(respond, reply);
      const seen = reply.object;
      if (!seen || liveSiblings(seen).length === 0) {
        const out: PutReplyBody = {
          context: seen ? clockToWire(seen.clock) : [], contextMac: contextMac(this.d.contextKey, req.key, seen ? seen.clock : []),
          siblings: seen?.siblings.length ?? 0,
          level: req.quorum.level, w: req.quorum.w, coordinator: this.d.id, replicas: reportsToWire(reply.replicas),
        };
        respond(MsgType.PUT_REPLY, out);
        return;
      }
      this.coordinatePut(ring, { ...req, context: seen.clock, contextGiven: true }, t, a, respond, onWritten);
    }, 'get', req.quorum.level);
  }

  /** A set remove or clear, or a counter reset, at W >= 2 first reads W
   * replicas (as a delete without a context does) and applies the
   * operation to their merge with this node's copy: it then observes every
   * add or increment acknowledged at a level whose W overlaps it, not only
   * what this copy had received (core/crdt/typed-object.ts, typedNeedsRead). */
  private readThenTyped(ring: Ring, req: PutRequest, t: Plan, a: Attempt, respond: Responder): void {
    const readQuorum = { ...req.quorum, r: req.quorum.w };
    const seen = req.typedSession?.atLeast;
    const fsm = new GetFsm({
      replicas: t.targets, down: t.down, quorum: readQuorum, readRepair: false, groups: t.groups?.map((g) => ({ ...g, required: readQuorum.r })), askAll: true,
      ...(seen === undefined ? {} : { atLeast: { typed: seen }, nowMs: this.d.clock.nowMs() }),
    });
    this.drive(req.key, ring, a, { kind: 'get', fsm }, a.timeoutMs, (reply) => {
      if (!reply.ok) return this.respondFsmError(respond, reply);
      this.coordinatePut(ring, reply.object === undefined ? req : { ...req, typedSeen: reply.object }, t, a, respond, () => {});
    }, 'get', req.quorum.level);
  }

  /** `ring` is the one the targets were chosen from: members are judged
   * against the same view. */
  private coordinatePut(ring: Ring, req: PutRequest, t: Plan, a: Attempt, respond: Responder,
    onWritten: (dot: [string, number] | undefined) => void): void {
    const lww = req.lww ?? this.d.config.lww;
    // A fallback coordinating (no read-set primary is up) may have handed
    // its earlier dots of the key to the owners and dropped them: it mints
    // under a stand-in actor made after its last removal, whose clock entry
    // claims no dot it dropped.
    const standingIn = !readSet(ring, req.key).includes(this.d.id);
    let actor = this.d.id;
    let held: boolean | undefined;
    const selfHint = t.targets.find((x) => x.node === this.d.id)?.hintFor;
    const fsm = new PutFsm({ self: this.d.id, replicas: t.targets, down: t.down, quorum: req.quorum, groups: t.groups });
    const coordinate = async (): Promise<Coordinated> => {
      let built: VersionedObject | undefined;
      let before: VersionedObject | undefined;
      const m = await this.d.store.mutate(req.key, (cur) => {
        before = cur;
        // Chosen here, serialized with removals of the key.
        if (standingIn) actor = this.standInActorNow();
        if (req.typed !== undefined) {
          const seen = req.typedSeen;
          const base = seen === undefined || cur === undefined ? cur ?? seen : merge(cur, seen);
          const typed = decideTyped(base, { op: req.typed, actor, nowMs: this.d.clock.nowMs(), wid: req.wid });
          held = typed.held;
          built = typed.object;
          return built;
        }
        const decision = decidePut(cur, {
          key: req.key, context: req.context, value: req.value, vtype: req.vtype, actor,
          nowMs: this.d.clock.nowMs(), lww, wid: req.wid, isMember: (id) => memberOf(ring, id) !== undefined,
        });
        if (decision.kind === 'write' && decision.warning !== undefined) {
          this.stats.siblingWarnings++;
          this.d.log(`warning: ${decision.warning}`);
        }
        built = decision.object;
        return decision.object;
      });
      assert.ok(built !== undefined && m.object !== undefined, 'a coordinated put always has an object');
      const mine = writtenSibling(m.object, actor, req.wid);
      if (m.changed && mine) onWritten([mine.actor, mine.counter]);
      // A resolving put clears the oversized flag; a merge may have set it.
      if (m.changed) this.d.replica.noteSiblings(req.key, m.object);
      if (m.changed) this.noteConflicts(req, before, m.object, mine, lww);
      if (selfHint === undefined) return { object: m.object, durable: m.durable };
      const hint = this.d.hints.add(selfHint, req.key);
      return { object: m.object, durable: Promise.all([m.durable, hint]).then(() => undefined) };
    };
    this.drive(req.key, ring, a, { kind: 'put', fsm, coordinate }, a.timeoutMs, (reply) => {
      if (!reply.ok) return this.respondFsmError(respond, reply);
      const obj = reply.object;
      assert.ok(obj !== undefined, 'a successful put replies with its object');
      if (req.typed !== undefined) {
        const out = typedUpdateReply(req, obj, reply.replicas, this.d.id, held);
        const sess = req.typedSession;
        respond(MsgType.TYPE_UPDATE_REPLY, sess === undefined ? out : { ...out, version: typedVersionReply(req.typed.kind, req.key, obj, sess, this.d.contextKey, [actor]) });
        return;
      }
      if (req.value === null && tombstonesOnly(obj)) this.d.reaper.candidate(req.key);
      if (obj.siblings.length > 1) this.d.metrics.conflicts.inc();
      if (req.context.length > 0) this.d.metrics.countContextWrite(obj.siblings.length > 1);
      const written = writtenSibling(obj, actor, req.wid);
      const out: PutReplyBody = {
        context: clockToWire(obj.clock),
        contextMac: contextMac(this.d.contextKey, req.key, obj.clock),
        dot: written ? [written.actor, written.counter] : null,
        siblings: obj.siblings.length,
        level: req.quorum.level,
        w: req.quorum.w,
        coordinator: this.d.id,
        replicas: reportsToWire(reply.replicas),
      };
      respond(MsgType.PUT_REPLY, out);
    }, req.typed !== undefined ? req.typed.kind : req.value === null ? 'delete' : 'put', req.quorum.level);
  }

  /** Records what a put did to the key's versions (conflict-log.ts):
   * nothing for the common put that leaves one version and resolved none. */
  private noteConflicts(req: PutRequest, before: VersionedObject | undefined, after: VersionedObject,
    written: Sibling | undefined, lww: boolean): void {
    if (after.siblings.length < 2 && (before?.siblings.length ?? 0) < 2 && !lww) return;
    const seen = conflictsOfPut({ key: req.key, by: req.by === undefined ? this.d.id : `${this.d.id} for user ${req.by}`, before, after, context: req.context, lww, resolved: req.resolved, written });
    for (const r of seen.records) {
      this.d.conflicts.record(r);
      this.d.metrics.conflictRecords.inc({ kind: r.kind });
    }
    if (seen.resolvedVersions > 0) this.d.metrics.siblingsResolved.inc({ by: seen.resolvedBy }, seen.resolvedVersions);
  }

  private standInActorNow(): string {
    const removals = this.d.store.removals;
    if (this.standIn === undefined || this.standIn.removals !== removals) {
      const seq = Math.max((this.standIn?.seq ?? 0) + 1, Math.floor(this.d.clock.nowMs()) * 1000);
      this.standIn = { actor: standInActor(this.d.id, seq), removals, seq };
    }
    return this.standIn.actor;
  }

  /** This node is not a replica of the key: hand the put to one that is,
   * trying them in order while they are unreachable. */
  private forwardPut(replicas: readonly ReplicaTarget[], body: object, isDelete: boolean, timeoutMs: number | undefined, respond: Responder,
    typed = false): void {
    this.stats.forwardedPuts++;
    const type = typed ? MsgType.TYPE_UPDATE : isDelete ? MsgType.DELETE : MsgType.PUT;
    const tryAt = (i: number, lastError: TuneKvError | null): void => {
      const target = replicas[i];
      if (!target) {
        const e = new TuneKvError('QUORUM_UNAVAILABLE', `no replica of the key could coordinate: ${lastError?.message ?? 'none'}`,
          { required: 1, received: 0, failed: replicas.length });
        respond(MsgType.ERROR, errorBody(e));
        return;
      }
      this.d.peerRequest(target.node, type, body, timeoutMs ?? this.d.config.requestTimeoutMs, (err, replyType, replyBody) => {
        if (!err) return respond(replyType, replyBody);
        // A put with a write id is applied once however often it arrives.
        const safe = !err.details.maybeApplied || (body as { wid?: unknown }).wid instanceof Uint8Array;
        if ((err.code === 'UNAVAILABLE' && safe) || err.code === 'STORAGE_FAILED') return tryAt(i + 1, err);
        respond(MsgType.ERROR, errorBody(err));
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

  private drive(key: string, ring: Ring, a: Attempt, r: Running, timeoutMs: number, onReply: (reply: FsmReply) => void, op: string, level: string): void {
    const rv = ring.version;
    const stale = (to: string, err: TuneKvError | null): void => {
      if (err?.code === 'STALE_RING') a.stalePeer = to;
    };
    this.inFlight++;
    let done = false;
    const startedMs = this.d.clock.elapsedMs();
    const acceptedMs = this.d.clock.nowMs();
    const timer = this.d.clock.setTimer(timeoutMs, () => { this.d.removeTimer(timer); run(r.fsm.onTimeout()); });
    this.d.addTimer(timer);
    let speculation: TimerHandle | undefined;
    const run = (effects: Effect[]): void => {
      for (const e of effects) {
        switch (e.kind) {
          case 'read':
            assert.ok(r.kind === 'get', 'only gets read replicas');
            this.readReplica(e.to, key, rv, timeoutMs, (result, err) => { stale(e.to, err); run(r.fsm.onRead(e.to, result)); });
            break;
          case 'write':
            this.writeReplica(e.to, key, e.object, e.hintFor, rv, timeoutMs, (ok, err) => { stale(e.to, err); run(r.fsm.onWrite(e.to, ok)); },
              r.kind === 'put' ? acceptedMs : undefined);
            break;
          case 'coordinate':
            assert.ok(r.kind === 'put', 'only puts coordinate');
            r.coordinate().then((m) => {
              run(r.fsm.onCoordinated({ ok: true, object: m.object }));
              m.durable.then(() => run(r.fsm.onWrite(this.d.id, true)), () => run(r.fsm.onWrite(this.d.id, false)));
            }, (err: unknown) => {
              const error = asTuneKvError(err);
              const result: CoordinateResult = { ok: false, error };
              run(r.fsm.onCoordinated(result));
            });
            break;
          case 'reply': {
            const outcome = e.reply.ok ? 'ok' : e.reply.error.code;
            this.d.metrics.observeRequest(op, level, outcome, (this.d.clock.elapsedMs() - startedMs) / 1000);
            if (outcome === 'QUORUM_UNAVAILABLE' || outcome === 'TIMEOUT') this.d.metrics.quorumFailures.inc({ op, code: outcome });
            onReply(e.reply);
            break;
          }
          case 'speculate': {
            assert.ok(r.kind === 'get', 'only gets speculate');
            if (speculation !== undefined) { this.d.clock.clearTimer(speculation); this.d.removeTimer(speculation); }
            // A request whose own deadline is short speculates by half of it.
            const afterMs = Math.min(this.d.config.speculativeRetryMs, Math.max(1, Math.floor(timeoutMs / 2)));
            const h = this.d.clock.setTimer(afterMs, () => {
              this.d.removeTimer(h);
              if (speculation === h) speculation = undefined;
              this.stats.speculativeReads++;
              run(r.fsm.onSpeculate());
            });
            speculation = h;
            this.d.addTimer(h);
            break;
          }
          case 'done':
            assert.ok(!done, 'an FSM is done once');
            done = true;
            this.inFlight--;
            this.d.clock.clearTimer(timer);
            this.d.removeTimer(timer);
            if (speculation !== undefined) { this.d.clock.clearTimer(speculation); this.d.removeTimer(speculation); }
            this.stats.readRepairs += e.stats.readRepairs;
            this.stats.replicaTimeouts += e.stats.timedOut;
            break;
          default: {
            const never: never = e;
            throw new Error(`unknown effect ${(never as { kind: string }).kind}`);
          }
        }
      }
    };
    run(r.fsm.start());
  }

  private readReplica(to: string, key: string, rv: number, timeoutMs: number, cb: (r: ReadResult, err: TuneKvError | null) => void): void {
    if (to === this.d.id) return this.d.replica.readLocal(key, (r) => cb(r, null));
    this.d.peerRequest(to, MsgType.REPLICA_READ, { key, rv }, timeoutMs, (err, _type, body) => {
      if (err) return cb({ ok: false }, err);
      try {
        const wire = (body as { object?: unknown } | null)?.object ?? null;
        cb({ ok: true, object: wire === null ? undefined : objectFromWire(wire) }, null);
      } catch {
        cb({ ok: false }, null);
      }
    });
  }

  private writeReplica(to: string, key: string, object: VersionedObject, hintFor: string | undefined, rv: number, timeoutMs: number,
    cb: (ok: boolean, err: TuneKvError | null) => void, acceptedMs?: number): void {
    if (to === this.d.id) {
      this.d.replica.write(key, object, hintFor, acceptedMs !== undefined).then(() => cb(true, null), () => cb(false, null));
      return;
    }
    this.d.metrics.countReplicationBytes('replica', objectBytes(object));
    const body: Record<string, unknown> = { key, object: wireOf(object), rv };
    if (hintFor !== undefined) body.hintFor = hintFor;
    if (acceptedMs !== undefined) body.acceptedMs = acceptedMs;
    this.d.peerRequest(to, MsgType.REPLICA_WRITE, body, timeoutMs, (err) => cb(err === null, err));
  }
}

/** The reply of a request whose ring kept moving until its deadline: the
 * last attempt's facts (replicas asked, acks: a failed put may still be
 * stored where it was acknowledged), under STALE_RING. */
function staleRingBody(body: unknown, attempts: number, peer: string): Record<string, unknown> {
  const last = (body ?? {}) as { code?: unknown; message?: unknown; details?: unknown };
  const details = typeof last.details === 'object' && last.details !== null ? last.details as Record<string, unknown> : {};
  return {
    code: 'STALE_RING',
    message: `the ring kept changing until the deadline: ${attempts} attempt(s), each refused by a replica on a newer ring (last ${peer}; `
      + `the last attempt: ${typeof last.message === 'string' ? last.message : String(last.code)}); retry`,
    details: { ...details, attempts, lastCode: last.code },
  };
}

/** The primaries reads go to for `key` on `ring`. */
function readSet(ring: Ring, key: string): readonly string[] {
  return readPreference(ring, partitionOfKey(ring, key)).primaries;
}

/**
 * A session's set remove or clear, or counter reset, whose session saw the
 * key: it must take away what the session saw (writes-follow-reads), so it
 * reads first, holding the read to the session's version as a session read
 * is held (at `eventual` too: otherwise a remove through a replica that
 * missed an add the session read elsewhere would remove nothing).
 */
function sessionNeedsRead(req: PutRequest): boolean {
  const op = req.typed;
  return op !== undefined && req.typedSession?.atLeast !== undefined && (op.op === 'remove' || op.op === 'clear' || op.op === 'reset');
}
