// Tombstone reaping: deletes that stay deleted.
//
// A tombstone may only disappear once no replica can bring the old value
// back. So a key whose state is only tombstones (from a delete this node
// coordinated, or found by anti-entropy) waits in a bounded queue, and is
// reaped only when all of these hold:
//   - tombstoneReapDelayMs have passed since it was queued (no request that
//     could carry the old value, e.g. a read repair, is still in flight);
//   - no transition is in progress (core/ring/transition.ts);
//   - every ring member is up, and each one's gossiped heartbeat (heard
//     after the key was queued) says it holds no hints: a hint for any node
//     could hand an old version back after the reap;
//   - every primary of the key answers a read with the same tombstone-only
//     state (the confirmation: a full-N read).
// Then each primary removes the key if its state is still exactly that one.
// Never on a timer alone; a key that cannot be confirmed stays, counted.
// While this node's disk is unhealthy the reaper waits: a reap is a write.

import { sameVersions } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { preferenceListForKey } from '../core/ring/ring.js';
import { inTransition } from '../core/ring/transition.js';
import { limits } from '../limits.js';
import { MsgType } from '../protocol/messages.js';
import { objectFromWire, objectToWire } from '../protocol/object-codec.js';
import type { NodeContext } from './context.js';

export interface ReaperStats {
  queued: number;
  reaped: number;
  /** Checks that found the key changed or not on every primary: left alone. */
  kept: number;
  /** Queue full: the tombstone stays until anti-entropy offers it again. */
  overflow: number;
}

export function tombstonesOnly(obj: VersionedObject): boolean {
  return obj.siblings.length > 0 && obj.siblings.every((s) => s.value === null);
}

export class Reaper {
  private readonly queue = new Map<string, number>();
  /** The ring version when the queue was last checked: a change of shape
   * restarts every wait (data may move, and be swept back, meanwhile). */
  private ringVersion = 0;
  readonly stats: ReaperStats = { queued: 0, reaped: 0, kept: 0, overflow: 0 };
  private running = false;

  constructor(private readonly ctx: NodeContext, private readonly hintsPending: () => number) {}

  get waiting(): number {
    return this.queue.size;
  }

  candidate(key: string): void {
    if (this.queue.has(key)) return;
    if (this.queue.size >= limits.reapQueueMax) { this.stats.overflow++; return; }
    this.queue.set(key, this.ctx.clock.nowMs());
    this.stats.queued++;
  }

  /** True when no node can hold a hint that predates `sinceMs`'s tombstone. */
  private clusterQuiet(sinceMs: number): boolean {
    const ring = this.ctx.ring;
    // While partitions change owners a receiver may hold an older copy
    // than the tombstone the current primaries agree on: no reaping until
    // the transition is over (and, through hintsPending, until every sweep
    // of data left on non-owners is done).
    if (!ring || inTransition(ring) || this.hintsPending() > 0) return false;
    for (const m of ring.members) {
      if (m.id === this.ctx.id) continue;
      const seen = this.ctx.membership.lastHeard(m.id);
      if (!this.ctx.membership.isUp(m.id) || !seen || seen.atMs <= sinceMs || seen.hintsPending > 0) return false;
    }
    return true;
  }

  async run(): Promise<void> {
    if (this.running || this.ctx.store.health?.writable === false) return;
    this.running = true;
    try {
      const now = this.ctx.clock.nowMs();
      const version = this.ctx.ring?.version ?? 0;
      if (version !== this.ringVersion) {
        // The first ring seen restarts nothing; a change of shape does.
        if (this.ringVersion !== 0) for (const key of this.queue.keys()) this.queue.set(key, now);
        this.ringVersion = version;
      }
      for (const [key, queuedMs] of [...this.queue]) {
        if (now - queuedMs < this.ctx.config.tombstoneReapDelayMs) continue;
        if (!this.clusterQuiet(queuedMs)) continue;
        this.queue.delete(key);
        if (await this.reap(key)) this.stats.reaped++; else this.stats.kept++;
      }
    } finally {
      this.running = false;
    }
  }

  private async reap(key: string): Promise<boolean> {
    const ring = this.ctx.ring;
    if (!ring) return false;
    const primaries = preferenceListForKey(ring, key).primaries;
    let agreed: VersionedObject | undefined;
    for (const p of primaries) {
      let obj: VersionedObject | undefined;
      try {
        obj = p === this.ctx.id ? await this.ctx.store.read(key) : readReply((await this.ctx.ask(p, MsgType.REPLICA_READ, { key })).body);
      } catch {
        return false;
      }
      if (!obj || !tombstonesOnly(obj) || (agreed && !sameVersions(agreed, obj))) return false;
      agreed = obj;
    }
    if (!agreed) return false;
    const body = { key, object: objectToWire(agreed) };
    // A primary that fails to remove keeps its tombstone: harmless, and
    // anti-entropy offers it again.
    await Promise.all(primaries.map((p) => (p === this.ctx.id
      ? this.removeLocal(key, agreed!).catch(() => false)
      : this.ctx.ask(p, MsgType.REPLICA_REAP, body).then(() => true, () => false))));
    return true;
  }

  /** Removes our copy if it is still exactly the confirmed tombstone. */
  removeLocal(key: string, confirmed: VersionedObject): Promise<boolean> {
    return this.ctx.store.remove(key, (cur) => tombstonesOnly(cur) && sameVersions(cur, confirmed));
  }

  onReap(body: unknown): Promise<boolean> {
    const b = (body ?? {}) as { key?: unknown; object?: unknown };
    if (typeof b.key !== 'string') return Promise.resolve(false);
    return this.removeLocal(b.key, objectFromWire(b.object));
  }
}

function readReply(body: unknown): VersionedObject | undefined {
  const wire = (body as { object?: unknown } | null)?.object;
  return wire === null || wire === undefined ? undefined : objectFromWire(wire);
}
