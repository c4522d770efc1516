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
// hint is dropped. All of it is counted in status.

import { sameVersions } from '../core/clock/object.js';
import { preferenceListForKey } from '../core/ring/ring.js';
import { TuneKvError } from '../errors.js';
import { limits } from '../limits.js';
import { pack, unpack } from '../protocol/codec.js';
import { MsgType } from '../protocol/messages.js';
import { objectToWire } from '../protocol/object-codec.js';
import { dataKey, hintKey, hintKeysRange, hintRange, parseHintKey, userKeyOf } from './keyspace.js';
import { RateLimiter } from './context.js';
import type { NodeContext } from './context.js';

export interface HintStats {
  stored: number;
  delivered: number;
  /** Fallback writes refused because the owner's queue was full. */
  refused: number;
  /** Hints past hintAgeMaxMs, handed to other primaries instead. */
  expired: number;
  /** Handoff attempts that failed (owner unreachable, say); retried later. */
  failedAttempts: number;
}

export class Hints {
  /** Hint keys held, per owner. */
  private readonly byOwner = new Map<string, Set<string>>();
  readonly stats: HintStats = { stored: 0, delivered: 0, refused: 0, expired: 0, failedAttempts: 0 };
  private readonly limiter: RateLimiter;
  private delivering = false;

  constructor(private readonly ctx: NodeContext) {
    this.limiter = new RateLimiter(ctx.config.handoffKeysPerSecMax, ctx.clock.nowMs());
  }

  get pending(): number {
    let n = 0;
    for (const s of this.byOwner.values()) n += s.size;
    return n;
  }

  pendingByOwner(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [owner, s] of this.byOwner) if (s.size > 0) out[owner] = s.size;
    return out;
  }

  /** Loads the hints left by a previous run. */
  async load(): Promise<void> {
    let gte: string = hintKeysRange.gte;
    for (;;) {
      const page = await this.ctx.storage.range({ gte, lt: hintKeysRange.lt, limit: limits.scanPageMax });
      for (const [k] of page) {
        const h = parseHintKey(k);
        if (h) this.ownerSet(h.owner).add(h.storageKey);
      }
      if (page.length < limits.scanPageMax) return;
      gte = `${page[page.length - 1]![0]}\0`;
    }
  }

  private ownerSet(owner: string): Set<string> {
    let s = this.byOwner.get(owner);
    if (!s) { s = new Set(); this.byOwner.set(owner, s); }
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
    if (!set.has(sk)) this.stats.stored++;
    set.add(sk);
    return this.ctx.store.writeRaw({ key: hintKey(owner, sk), value: pack(this.ctx.clock.nowMs()) });
  }

  /** One handoff pass over every owner that is up (or whose hints expired). */
  async deliver(): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (const [owner, set] of [...this.byOwner]) {
        if (set.size === 0) continue;
        await this.deliverFor(owner, this.ctx.membership.isUp(owner));
      }
    } finally {
      this.delivering = false;
    }
  }

  /** Hands off pages of the owner's hints while the rate limit allows. A
   * page with a failure ends the pass (the owner may have gone again). */
  private async deliverFor(owner: string, ownerUp: boolean): Promise<void> {
    if (!ownerUp) return this.expire(owner);
    for (;;) {
      const budget = this.limiter.take(limits.handoffBatchMax, this.ctx.clock.nowMs());
      if (budget === 0) return;
      const page = await this.ctx.storage.range({ ...hintRange(owner), limit: budget });
      const keys = page.flatMap(([hk]) => parseHintKey(hk)?.storageKey ?? []);
      const failures = await this.inBatches(keys.map((sk) => () => this.handOff(owner, sk, [owner], false)));
      if (failures > 0 || page.length < budget) return;
    }
  }

  private readonly nextExpiryScanMs = new Map<string, number>();

  /** The owner stays down: hints past hintAgeMaxMs go to the key's other
   * live primaries. Scanned at most every tenth of hintAgeMaxMs. */
  private async expire(owner: string): Promise<void> {
    const now = this.ctx.clock.nowMs();
    if ((this.nextExpiryScanMs.get(owner) ?? 0) > now) return;
    this.nextExpiryScanMs.set(owner, now + Math.max(100, this.ctx.config.hintAgeMaxMs / 10));
    let gte = hintRange(owner).gte;
    for (;;) {
      const page = await this.ctx.storage.range({ gte, lt: hintRange(owner).lt, limit: limits.scanPageMax });
      const old = page.filter(([, v]) => now - (unpack(v) as number) > this.ctx.config.hintAgeMaxMs);
      const keys = old.flatMap(([hk]) => parseHintKey(hk)?.storageKey ?? []);
      await this.inBatches(keys.map((sk) => () => this.handOff(owner, sk, this.otherLivePrimaries(sk, owner), true)));
      if (page.length < limits.scanPageMax) return;
      gte = `${page[page.length - 1]![0]}\0`;
    }
  }

  /** Runs tasks handoffInFlightMax at a time; returns how many failed. */
  private async inBatches(tasks: (() => Promise<boolean>)[]): Promise<number> {
    let failures = 0;
    for (let i = 0; i < tasks.length; i += limits.handoffInFlightMax) {
      const done = await Promise.all(tasks.slice(i, i + limits.handoffInFlightMax).map((w) => w()));
      failures += done.filter((ok) => !ok).length;
    }
    return failures;
  }

  private otherLivePrimaries(sk: string, owner: string): string[] {
    const ring = this.ctx.ring;
    if (!ring) return [];
    return preferenceListForKey(ring, userKeyOf(sk)).primaries
      .filter((p) => p !== owner && p !== this.ctx.id && this.ctx.membership.isUp(p));
  }

  /** Sends the key's current object to `targets`; on success drops the
   * hint. Resolves to false when it must be tried again later. */
  private async handOff(owner: string, sk: string, targets: string[], expiry: boolean): Promise<boolean> {
    const key = userKeyOf(sk);
    if (targets.length === 0) return false;
    const object = await this.ctx.store.read(key);
    try {
      if (object) {
        const body = { key, object: objectToWire(object) };
        await Promise.all(targets.map((t) => this.ctx.ask(t, MsgType.REPLICA_WRITE, body)));
      }
    } catch {
      this.stats.failedAttempts++;
      return false;
    }
    await this.ctx.store.writeRaw({ key: hintKey(owner, sk), value: null });
    this.byOwner.get(owner)?.delete(sk);
    if (expiry) this.stats.expired++; else this.stats.delivered++;
    if (object) await this.dropCopyIfNotReplica(key, sk, object);
    return true;
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
