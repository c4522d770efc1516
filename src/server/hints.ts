// Hinted handoff: what a fallback keeps for a primary that was down.
//
// A fallback stores the object like any replica (so sloppy reads find it)
// plus a hint `h<owner>/<data key>` in the same LevelDB, so hints survive a
// restart. The handoff loop, for each owner the failure detector sees up,
// sends each hinted key's current object to the owner, and once the owner
// has made it durable deletes the hint and, if this node is not itself a
// replica of the key and holds no other hint for it, its own copy.
//
// Bounds: at most hintsPerTargetMax hints per owner (a fallback write past it
// is refused, so it does not count toward W: nothing acknowledged rests on a
// hint we could not keep); at most handoffKeysPerSecMax keys handed off per
// second and handoffInFlightMax at once. A hint older than hintAgeMaxMs is
// not kept waiting for its owner: its object goes to the key's other live
// primaries instead (the owner then catches up by anti-entropy), and the
// hint is dropped. A hint for an owner that is no longer a ring member (it
// was removed) goes the same way at once: that owner will never take it;
// so does one for a member that no longer holds the key's partition.
// All of it is counted in status.
//
// A hint is never lost to its own handoff (compare-and-delete, handOff): it
// is deleted only if no write came under it after the handoff read the
// object it sent; otherwise it stays and the next pass sends the newer one.
//
// The in-memory index (byOwner) follows what is on disk: a hint whose write
// failed (and no earlier write of it landed) leaves the index again, so a
// failed write never leaves a pending hint that nothing will deliver (it
// would hold the reaper back forever). While the disk is unhealthy the
// handoff loop does not run: it could send objects but not drop hints.

import { objectBytes, sameVersions } from '../core/clock/object.js';
import { memberOf, partitionOfKey, preferenceListForKey } from '../core/ring/ring.js';
import { holds } from '../core/ring/transition.js';
import { TuneKvError } from '../errors.js';
import { limits } from '../limits.js';
import { scanRange } from '../io/scan.js';
import { pack, unpack } from '../protocol/codec.js';
import { MsgType } from '../protocol/messages.js';
import { objectToWire } from '../protocol/object-codec.js';
import { mapLimit } from './concurrency.js';
import { dataKey, hintKey, hintKeysRange, hintRange, parseHintKey, userKeyOf } from './keyspace.js';
import { RateLimiter } from './context.js';
import type { NodeContext } from './context.js';

export interface HintStats {
  /** Hints written (counted once each, when the first write lands). */
  stored: number;
  delivered: number;
  /** Fallback writes refused because the owner's queue was full. */
  refused: number;
  /** Hints past hintAgeMaxMs, handed to other primaries instead. */
  expired: number;
  /** Hints for owners no longer in the ring, handed to the key's primaries. */
  rehomed: number;
  /** Handoffs whose hint stayed: the key was written under it meanwhile
   * (the newer object goes next pass). */
  rewritten: number;
  /** Handoff attempts that failed (owner unreachable, say); retried later. */
  failedAttempts: number;
  /** Hint writes that failed on this node's disk (the fallback write failed too). */
  failedWrites: number;
}

/** The write time a hint holds, or undefined when its value is not one. */
function hintWrittenMs(value: Uint8Array): number | undefined {
  try {
    const ms = unpack(value);
    return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined;
  }
}

type Outcome = 'delivered' | 'expired' | 'rehomed';

export class Hints {
  /** Hint keys held, per owner, each with its generation: the value of
   * `generation` taken by its latest add() (or by load()). */
  private readonly byOwner = new Map<string, Map<string, number>>();
  /** Per process, only ever increases, so a hint's generation changes on
   * every add() of it and never comes back to an old value. */
  private generation = 0;
  readonly stats: HintStats = {
    stored: 0, delivered: 0, refused: 0, expired: 0, rehomed: 0, rewritten: 0, failedAttempts: 0, failedWrites: 0,
  };
  private readonly limiter: RateLimiter;
  private delivering = false;
  /** Hint writes in flight, by hint key: how many, and whether the hint is
   * known to be on disk (before them, or since one of them landed). */
  private readonly writing = new Map<string, { writes: number; onDisk: boolean }>();

  constructor(private readonly ctx: NodeContext) {
    this.limiter = new RateLimiter(ctx.config.handoffKeysPerSecMax, ctx.clock.elapsedMs());
  }

  get pending(): number {
    let n = 0;
    for (const s of this.byOwner.values()) n += s.size;
    return n;
  }

  /** True when this node holds a hint for the storage key, for any owner
   * (its copy is a fallback's: handoff, not the transfer sweep, owns it). */
  holdsFor(storageKey: string): boolean {
    for (const s of this.byOwner.values()) if (s.has(storageKey)) return true;
    return false;
  }

  pendingByOwner(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [owner, s] of this.byOwner) if (s.size > 0) out[owner] = s.size;
    return out;
  }

  /** Loads the hints left by a previous run. */
  async load(): Promise<void> {
    for await (const page of scanRange(this.ctx.storage, hintKeysRange)) {
      for (const [k] of page) {
        const h = parseHintKey(k);
        if (h) this.ownerSet(h.owner).set(h.storageKey, ++this.generation);
      }
    }
  }

  private ownerSet(owner: string): Map<string, number> {
    let s = this.byOwner.get(owner);
    if (!s) { s = new Map(); this.byOwner.set(owner, s); }
    return s;
  }

  /** Records that this node holds `key` for `owner`; resolves when durable.
   * Throws OVERLOADED (nothing stored) when the owner's queue is full. */
  add(owner: string, key: string): Promise<void> {
    const sk = dataKey(key);
    const set = this.ownerSet(owner);
    if (!set.has(sk) && set.size >= limits.hintsPerTargetMax) {
      this.stats.refused++;
      throw new TuneKvError('OVERLOADED', `${this.ctx.id} holds ${set.size} hints for ${owner} (hintsPerTargetMax)`);
    }
    const hk = hintKey(owner, sk);
    let w = this.writing.get(hk);
    if (w === undefined) {
      w = { writes: 0, onDisk: set.has(sk) };
      this.writing.set(hk, w);
    }
    const entry = w;
    entry.writes++;
    set.set(sk, ++this.generation);
    const write = this.ctx.store.writeRaw({ key: hk, value: pack(this.ctx.clock.nowMs()) });
    write.then(() => {
      if (!entry.onDisk) this.stats.stored++;
      entry.onDisk = true;
    }, () => {
      this.stats.failedWrites++;
    }).finally(() => {
      if (--entry.writes > 0) return;
      this.writing.delete(hk);
      if (!entry.onDisk) this.byOwner.get(owner)?.delete(sk);
    });
    return write;
  }

  /** One handoff pass over every owner that is up, no longer a member, or
   * whose hints expired. */
  async deliver(): Promise<void> {
    if (this.delivering || this.ctx.store.health?.writable === false) return;
    this.delivering = true;
    try {
      for (const [owner, set] of [...this.byOwner]) {
        if (set.size === 0) continue;
        await this.deliverFor(owner);
      }
    } finally {
      this.delivering = false;
    }
  }

  private deliverFor(owner: string): Promise<void> {
    const ring = this.ctx.ring;
    // Without a ring, membership is unknown: the owner is treated as a member.
    if (ring && memberOf(ring, owner) === undefined) {
      return this.logged(owner, 'rehomed', () => this.handOffPages(owner, (sk) => this.primariesOtherThanSelf(sk), 'rehomed'));
    }
    // An owner still in the ring may no longer hold the key's partition (a
    // join moved it): its copy would sit on a non-owner until that node's
    // sweep, and a reap meanwhile (every current primary holding the
    // tombstone) let the sweep bring the old value back (seed 582 with
    // hedged reads). Such a hint goes to the key's current primaries.
    if (this.ctx.membership.isUp(owner)) {
      return this.logged(owner, 'delivered',
        () => this.handOffPages(owner, (sk) => (!ring || holds(ring, owner, partitionOfKey(ring, userKeyOf(sk))) ? [owner] : this.primariesOtherThanSelf(sk)), 'delivered'));
    }
    return this.expire(owner);
  }

  /** Handoffs under way, per owner: one spans many passes (the rate
   * limit), so its start and finish are logged once each, not per pass. */
  private readonly runs = new Map<string, { startedMs: number; handedOff: number; pendingAtStart: number }>();

  /** Runs one pass of a handoff to `owner`, logging `handoff_start` when a
   * handoff begins and `handoff_finish` when no hint for it is left or a
   * pass failed (the owner may have gone again; a later one starts anew). */
  private async logged(owner: string, outcome: 'delivered' | 'rehomed', pass: () => Promise<void>): Promise<void> {
    const events = this.ctx.events;
    let run = this.runs.get(owner);
    if (!run) {
      run = { startedMs: this.ctx.clock.elapsedMs(), handedOff: 0, pendingAtStart: this.byOwner.get(owner)?.size ?? 0 };
      this.runs.set(owner, run);
      events?.event('info', 'handoff_start', {
        target: owner, hints: run.pendingAtStart, to: outcome === 'delivered' ? 'owner' : 'other primaries (owner left the ring)',
      });
    }
    const sentBefore = this.stats[outcome];
    const failedBefore = this.stats.failedAttempts;
    try {
      await pass();
    } finally {
      run.handedOff += this.stats[outcome] - sentBefore;
      const left = this.byOwner.get(owner)?.size ?? 0;
      const failed = this.stats.failedAttempts > failedBefore;
      if (left === 0 || failed) {
        this.runs.delete(owner);
        events?.event(left === 0 ? 'info' : 'warn', 'handoff_finish', {
          target: owner, handedOff: run.handedOff, left, result: left === 0 ? 'done' : 'stopped', durationMs: Math.round(this.ctx.clock.elapsedMs() - run.startedMs),
        });
      }
    }
  }

  /** Hands off pages of the owner's hints while the rate limit allows. A
   * page with a failure ends the pass (the owner may have gone again). */
  private async handOffPages(owner: string, targetsOf: (sk: string) => readonly string[] | undefined, outcome: Outcome): Promise<void> {
    for (;;) {
      const budget = this.limiter.take(limits.handoffBatchMax, this.ctx.clock.elapsedMs());
      if (budget === 0) return;
      // Always the first page: handed-off hints are deleted, so it moves on.
      const page = await this.ctx.storage.range({ ...hintRange(owner), limit: budget });
      const keys = page.flatMap(([hk]) => parseHintKey(hk)?.storageKey ?? []);
      const done = await mapLimit(keys, limits.handoffInFlightMax, (sk) => this.handOff(owner, sk, targetsOf(sk), outcome));
      if (done.includes(false) || page.length < budget) return;
    }
  }

  private readonly nextExpiryScanMs = new Map<string, number>();

  /** The owner stays down: hints past hintAgeMaxMs go to the key's other
   * live primaries. Scanned at most every tenth of hintAgeMaxMs. */
  private async expire(owner: string): Promise<void> {
    const now = this.ctx.clock.nowMs();
    if ((this.nextExpiryScanMs.get(owner) ?? 0) > now) return;
    this.nextExpiryScanMs.set(owner, now + Math.max(100, this.ctx.config.hintAgeMaxMs / 10));
    for await (const page of scanRange(this.ctx.storage, hintRange(owner))) {
      // A hint whose time cannot be read is handed off now: early is harmless.
      const old = page.filter(([, v]) => now - (hintWrittenMs(v) ?? Number.NEGATIVE_INFINITY) > this.ctx.config.hintAgeMaxMs);
      const keys = old.flatMap(([hk]) => parseHintKey(hk)?.storageKey ?? []);
      await mapLimit(keys, limits.handoffInFlightMax, (sk) => this.handOff(owner, sk, this.otherLivePrimaries(sk, owner), 'expired'));
    }
  }

  /** Undefined (try again later) when none is up. */
  private otherLivePrimaries(sk: string, owner: string): string[] | undefined {
    const ring = this.ctx.ring;
    if (!ring) return undefined;
    const up = preferenceListForKey(ring, userKeyOf(sk)).primaries
      .filter((p) => p !== owner && p !== this.ctx.id && this.ctx.membership.isUp(p));
    return up.length > 0 ? up : undefined;
  }

  /** Where a hint for an owner that left the ring goes: the key's current
   * primaries other than this node that are up (one down catches up by
   * anti-entropy, as after an expiry). Undefined (try again later) while
   * none of them is up; empty when this node is the key's only primary:
   * its copy is already where it belongs, and a hint kept for nobody would
   * hold the reaper back for ever. */
  private primariesOtherThanSelf(sk: string): string[] | undefined {
    const ring = this.ctx.ring;
    if (!ring) return undefined;
    const others = preferenceListForKey(ring, userKeyOf(sk)).primaries.filter((p) => p !== this.ctx.id);
    const up = others.filter((p) => this.ctx.membership.isUp(p));
    return others.length === 0 || up.length > 0 ? up : undefined;
  }

  /**
   * Sends the key's current object to `targets`, then drops the hint unless
   * the key was written under it meanwhile. Resolves to false when it must
   * be tried again later (`targets` undefined: nobody to send to now).
   *
   * Compare-and-delete. A fallback write calls add() and queues its merge
   * of the object in the same tick (Replica.write); a coordinator's own
   * write has staged its object before its add(). So:
   *   - the generation is read first, and the object after it *in the
   *     key's mutation chain*, behind every merge queued so far: the object
   *     holds the version of every add() up to that generation, even one
   *     whose hint reached the disk before its merge was staged (a plain
   *     read could return the older object there);
   *   - after delivery the hint is deleted only if its generation is still
   *     the one read (no add() since) and no add() of it is in flight (the
   *     second is not needed by the first, but keeping a hint costs only one
   *     more delivery). The check, the index update and the delete's enqueue
   *     run with no await between them, and writes land in enqueue order, so
   *     an add() that comes after the check lands its hint after the delete
   *     and indexes it anew: it stays.
   * A hint kept this way is sent again, with the newer object, next pass.
   */
  private async handOff(owner: string, sk: string, targets: readonly string[] | undefined, outcome: Outcome): Promise<boolean> {
    if (targets === undefined) return false;
    const key = userKeyOf(sk);
    const hk = hintKey(owner, sk);
    // The page read it from disk, so it is indexed; if it somehow is not,
    // the disk is what is true.
    const startedFrom = this.byOwner.get(owner)?.get(sk) ?? this.index(owner, sk);
    // A mutation that changes nothing: a read serialized with the key's writes.
    const { object } = await this.ctx.store.mutate(key, () => undefined);
    try {
      if (object) {
        const body = { key, object: objectToWire(object) };
        this.ctx.replicationSent?.('hint', objectBytes(object) * targets.length);
        await Promise.all(targets.map((t) => this.ctx.ask(t, MsgType.REPLICA_WRITE, body)));
      }
    } catch {
      this.stats.failedAttempts++;
      return false;
    }
    const set = this.byOwner.get(owner);
    if (set?.get(sk) !== startedFrom || this.writing.has(hk)) {
      this.stats.rewritten++;
      return false;
    }
    set.delete(sk);
    const dropped = this.ctx.store.writeRaw({ key: hk, value: null });
    try {
      await dropped;
    } catch (err) {
      // The hint is still on disk, so it goes back in the index (an add()
      // since then has indexed it already: its entry learns it is on disk).
      const w = this.writing.get(hk);
      if (w) w.onDisk = true; else if (!this.ownerSet(owner).has(sk)) this.index(owner, sk);
      throw err;
    }
    this.stats[outcome]++;
    if (object) await this.dropCopyIfNotReplica(key, sk, object);
    return true;
  }

  private index(owner: string, sk: string): number {
    const g = ++this.generation;
    this.ownerSet(owner).set(sk, g);
    return g;
  }

  /** A fallback's copy goes once no hint for the key is left and this node
   * is not one of its primaries; a copy that changed since (a new fallback
   * write, with its own hint) stays. */
  private async dropCopyIfNotReplica(key: string, sk: string, delivered: Parameters<typeof sameVersions>[0]): Promise<void> {
    const ring = this.ctx.ring;
    if (!ring || preferenceListForKey(ring, key).primaries.includes(this.ctx.id)) return;
    for (const set of this.byOwner.values()) if (set.has(sk)) return;
    await this.ctx.store.remove(key, (cur) => sameVersions(cur, delivered));
  }
}
