// The replica side of a node (a vnode, in Riak's words): reads and merges
// of stored objects on behalf of coordinators, hints kept as a fallback,
// tombstone removal confirmed by a reaper, and anti-entropy listings.
//
// Invariants:
//   - a replica acknowledges a write only once it (and its hint, on a
//     fallback) is durable;
//   - a merge never drops a version another replica acknowledged (merge()
//     in core/clock/object.ts); an object whose siblings pass siblingsMax
//     through merges is kept whole and flagged (status, metric, log), and
//     the put policy then refuses blind writes to it until it is resolved;
//   - every message handled here comes from a caller that proved the
//     cluster secret: the router refuses the rest;
//   - a node with no ring (on standby, waiting to be joined) is a replica
//     of nothing: it refuses replica reads and writes (UNAVAILABLE), so it
//     never stores data it could neither serve nor sweep (seed 550).

import { merge, sameVersions } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import type { ReadResult } from '../core/coordinator/get-fsm.js';
import { overSiblingCap } from '../core/coordinator/put-policy.js';
import { nodeIdProblem } from '../core/ring/ring.js';
import { TuneKvError, invalid } from '../errors.js';
import { limits } from '../limits.js';
import type { Clock } from '../io/clock.js';
import type { Responder } from '../io/transport.js';
import { MsgType } from '../protocol/messages.js';
import { objectFromWire } from '../protocol/object-codec.js';
import { asRecord, checkKey } from '../protocol/validate.js';
import type { AntiEntropy } from './anti-entropy.js';
import { TypeMergeSampler, mergeFoundConflict } from './conflict-log.js';
import { typedKindOf } from '../core/crdt/typed-object.js';
import type { ConflictLog } from './conflict-log.js';
import type { Hints } from './hints.js';
import type { NodeMetrics } from './metrics.js';
import { ObjectStore, unknown } from './object-store.js';
import type { Reaper } from './reaper.js';
import { answer, wireOf } from './replies.js';

export interface ReplicaStats {
  replicaReads: number;
  replicaWrites: number;
  /** Merges that left an object with more than siblingsMax siblings. */
  oversizedMerges: number;
  /** Requests refused because their coordinator's ring was older. */
  fenced: number;
  /** Requests refused because this node had no ring yet (standby). */
  unjoined: number;
}

export interface ReplicaDeps {
  readonly id: string;
  readonly clock: Clock;
  readonly store: ObjectStore;
  readonly hints: Hints;
  readonly aae: AntiEntropy;
  readonly reaper: Reaper;
  readonly metrics: NodeMetrics;
  /** Where conflicts found by merges here are recorded. */
  readonly conflicts: ConflictLog;
  /** Throws STORAGE_FAILED while the disk failure policy refuses writes. */
  checkWritable(): void;
  isMember(id: string): boolean;
  /** This node's ring version, 0 with no ring (standby): requests from a
   * coordinator on an older ring are refused (fencing, transition.ts). */
  ringVersion(): number;
  /** Whether this node holds the key's partition on its ring (either set
   * while the partition changes owners). */
  holdsKey(key: string): boolean;
  log(line: string): void;
}

export class Replica {
  readonly stats: ReplicaStats = { replicaReads: 0, replicaWrites: 0, oversizedMerges: 0, fenced: 0, unjoined: 0 };
  /** Keys whose object passed siblingsMax, with the count seen (bounded). */
  readonly oversized = new Map<string, number>();

  /** Which typed merges get a conflict-log record (one per key per interval). */
  private readonly typeMerges = new TypeMergeSampler();

  constructor(private readonly d: ReplicaDeps) {}

  /** This node's object of a key, for a coordinator running here. A cached
   * object answers in a microtask: no storage round trip, and still never
   * re-entering the FSM while it is handing out effects. */
  readLocal(key: string, cb: (r: ReadResult) => void): void {
    const known = this.d.store.peek(key);
    if (known !== unknown) queueMicrotask(() => cb({ ok: true, object: known }));
    else this.d.store.read(key).then((object) => cb({ ok: true, object }), () => cb({ ok: false }));
  }

  /** Merges an incoming object into ours; on a fallback also keeps a hint
   * for the primary it stands in for. Resolves when both are durable. */
  async write(key: string, incoming: VersionedObject, hintFor?: string, fromPut = false): Promise<void> {
    this.d.checkWritable();
    const hint = hintFor !== undefined && hintFor !== this.d.id ? this.d.hints.add(hintFor, key) : Promise.resolve();
    hint.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
    let found = false;
    let typedJoin: string | undefined;
    let concurrent: VersionedObject | undefined;
    const m = await this.d.store.mutate(key, (cur) => {
      if (!cur) return incoming;
      const merged = merge(cur, incoming);
      if (sameVersions(merged, cur)) return cur;
      found = mergeFoundConflict(cur, incoming, merged, fromPut);
      // A counter or set whose join is neither side: the states were concurrent.
      if (!sameVersions(merged, incoming)) {
        typedJoin = typedKindOf(merged);
        concurrent = cur;
      }
      return merged;
    });
    // Every such join is counted; the conflict log gets a `type merge`
    // record for the first per key per typeMergeLogIntervalMs only:
    // concurrent states are a counter's normal case, nothing for a person to
    // resolve, and a record each would push real conflicts out of the log.
    if (typedJoin !== undefined && m.changed) {
      this.d.metrics.countTypeMerge(typedJoin);
      if (concurrent !== undefined && this.typeMerges.take(key, this.d.clock.elapsedMs())) {
        this.d.conflicts.recordTypeMerge(key, typedJoin, this.d.id, [...concurrent.siblings, ...incoming.siblings]);
        this.d.metrics.conflictRecords.inc({ kind: 'type merge' });
      }
    }
    if (found && m.changed && m.object) {
      this.d.conflicts.record({ key, kind: 'siblings kept', by: this.d.id, versions: m.object.siblings,
        note: `a replica merge (${fromPut ? 'a put' : 'read repair, hand-off, anti-entropy or transfer'}) left ${m.object.siblings.length} concurrent versions` });
      this.d.metrics.conflictRecords.inc({ kind: 'siblings kept' });
    }
    if (m.changed && m.object) this.noteSiblings(key, m.object);
    if (hintFor === undefined) await m.durable;
    else await Promise.all([m.durable, hint]);
  }

  /** Records a conflict a merge outside write() found (anti-entropy's
   * local side merges in the store directly). */
  noteMergeConflict(key: string, before: VersionedObject | undefined, merged: VersionedObject): void {
    if (!mergeFoundConflict(before, merged, merged, false)) return;
    this.d.conflicts.record({ key, kind: 'siblings kept', by: this.d.id, versions: merged.siblings,
      note: `anti-entropy found ${merged.siblings.length} concurrent versions` });
    this.d.metrics.conflictRecords.inc({ kind: 'siblings kept' });
  }

  /** Flags (or unflags) a key whose siblings passed siblingsMax. */
  noteSiblings(key: string, obj: VersionedObject): void {
    if (!overSiblingCap(obj)) {
      if (this.oversized.size > 0) this.oversized.delete(key);
      return;
    }
    this.stats.oversizedMerges++;
    this.d.metrics.oversizedObjects.inc();
    if (!this.oversized.has(key)) {
      this.d.log(`warning: key "${key.slice(0, 200)}" holds ${obj.siblings.length} siblings (siblingsMax ${limits.siblingsMax}) after a merge; blind writes to it are refused until a put with its context resolves them`);
    }
    if (this.oversized.has(key) || this.oversized.size < limits.oversizedKeysTrackedMax) this.oversized.set(key, obj.siblings.length);
  }

  /** A coordinator's request names its ring version (`rv`); one older than
   * ours is refused, so no request straddles an ownership flip. Requests
   * without one (handoff, anti-entropy, transfers) only merge and are safe
   * on any ring. */
  private fence(b: Record<string, unknown>): void {
    if (b.rv === undefined) return;
    if (!Number.isSafeInteger(b.rv)) throw invalid('rv must be a ring version');
    const mine = this.d.ringVersion();
    if ((b.rv as number) < mine) {
      this.stats.fenced++;
      throw new TuneKvError('STALE_RING', `${this.d.id} is on ring v${mine}, the request on v${String(b.rv)}: refresh the ring and retry`, { ringVersion: mine });
    }
  }

  /** A node on standby has no ring until the claimant's push reaches it.
   * A coordinator whose ring names it a receiver (transfer phase: its ack
   * is not counted) used to find it storing the write anyway; if the plan
   * was then lost (its claimant crashed and another claimant's ring of the
   * same version won, seed 550), the node never got a ring at all, so it
   * could neither serve the copy nor sweep it to the owners, and kept it
   * for ever. Refusing costs nothing: in transfer the receiver's ack does
   * not count, a partition leaves transfer only once its receivers
   * reported it streamed (which takes the ring), and their catch-up brings
   * every write they refused; from seal on, where its ack counts, the
   * receiver has the ring. As in Riak, a node replicates only what its own
   * ring gives it. */
  private refuseUnjoined(): void {
    if (this.d.ringVersion() > 0) return;
    this.stats.unjoined++;
    throw new TuneKvError('UNAVAILABLE', `node ${this.d.id} has not joined a cluster yet: it holds no partition`);
  }

  onRead(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'REPLICA_READ');
    const key = checkKey(b.key);
    this.refuseUnjoined();
    this.fence(b);
    this.stats.replicaReads++;
    // A cached object answers at once: no storage round trip, no promise.
    const known = this.d.store.peek(key);
    if (known !== unknown) return respond(MsgType.REPLICA_READ_REPLY, { object: known ? wireOf(known) : null });
    answer(respond, MsgType.REPLICA_READ_REPLY, this.d.store.read(key).then((obj) => ({ object: obj ? wireOf(obj) : null })));
  }

  onWrite(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'REPLICA_WRITE');
    const key = checkKey(b.key);
    const incoming = objectFromWire(b.object);
    this.refuseUnjoined();
    try {
      this.fence(b);
    } catch (err) {
      // Fenced, the write does not count toward the coordinator's W; but it
      // may already have been acknowledged (W=1 met by the coordinator
      // itself), and dropping it here left it on the coordinator alone: a
      // coordinator lost for good then lost an acknowledged write (seeds
      // 176, 598). A merge never loses anything, so a node that holds the
      // key's partition on its newer ring keeps the object, then refuses.
      if (!(err instanceof TuneKvError) || err.code !== 'STALE_RING' || !this.d.holdsKey(key)) throw err;
      answer(respond, MsgType.OK, this.write(key, incoming).then(() => { throw err; }));
      return;
    }
    const hintFor = b.hintFor === undefined || b.hintFor === null ? undefined : checkNodeId(b.hintFor, 'hintFor');
    // A hint is kept only for a member: hints for made-up owners would stay
    // pending forever (and hold back tombstone reaping everywhere).
    if (hintFor !== undefined && !this.d.isMember(hintFor)) throw invalid(`hintFor (${hintFor}) is not a member of the ring`);
    const acceptedMs = typeof b.acceptedMs === 'number' && Number.isFinite(b.acceptedMs) ? b.acceptedMs : undefined;
    this.stats.replicaWrites++;
    answer(respond, MsgType.OK, this.write(key, incoming, hintFor, acceptedMs !== undefined).then(() => {
      // Coordinator and replica clocks: exact on one machine, skewed across.
      if (acceptedMs !== undefined) this.d.metrics.lagSeconds.observe(Math.max(0, this.d.clock.nowMs() - acceptedMs) / 1000);
      return null;
    }));
  }

  onReap(body: unknown, respond: Responder): void {
    answer(respond, MsgType.OK, this.d.reaper.onReap(body).then((removed) => ({ removed })));
  }

  onAaeSegments(body: unknown, respond: Responder): void {
    respond(MsgType.AAE_SEGMENTS_REPLY, this.d.aae.segmentsFor(body));
  }

  onAaeKeys(body: unknown, respond: Responder): void {
    answer(respond, MsgType.AAE_KEYS_REPLY, this.d.aae.keysFor(body));
  }
}

function checkNodeId(v: unknown, what: string): string {
  if (typeof v !== 'string' || nodeIdProblem(v) !== null) throw invalid(`${what} must be a node id`);
  return v;
}
