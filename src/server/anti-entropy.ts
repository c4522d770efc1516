// Active anti-entropy: replicas of a partition compare segment hashes and
// exchange only the keys that differ.
//
// The segment hashes (core/antientropy/segments.ts) are kept current by the
// object store's change feed. When the node opens they come from one of:
//   - the copy written at the last clean stop (persist()), which holds only
//     if no write reached storage after it: it is written after the last
//     write of a run, once the store is closed and drained with nothing in
//     doubt, by a synced write; and open() removes it (synced) before
//     anything else can write, so a run that crashes leaves none behind.
//     A copy that fails its checksum or format is not used;
//   - otherwise a scan of every stored key (seconds per million keys). When
//     storage can take a snapshot, the scan runs in the background while the
//     node serves: the snapshot is taken at open, before any write, and the
//     change feed meanwhile sums the changes since into the (empty) live
//     hashes; the scan's summary of the snapshot is then folded in (XOR of
//     words, sum of counts), which is exactly the summary of storage now.
//     Until then the hashes are not ready: this node runs no exchange, and
//     answers a peer's request for its segment hashes with UNAVAILABLE (the
//     peer's exchange ends quietly; a transfer's catch-up retries), so no
//     partial summary is ever compared. A scan that fails leaves them not
//     ready until the next start (logged).
// A stale copy would be worse than none (replicas that differ would compare
// equal), hence the rule: trusted only when removed before the first write.
// One gap: with fsync off, a power cut after a clean stop may lose writes
// LevelDB had not synced while the synced copy survives; fsync off already
// accepts losing a node's last writes to a power cut (config.ts).
// A round walks the partitions this node leads (it is the first live
// primary), and for each other live primary: fetch its segment hashes,
// list keys only in segments that differ, and for keys that differ merge
// both objects and write the result to whichever side lacked it.
//
// Throttled: one exchange at a time, a pause between exchanges, at most
// aaeKeysPerSecMax repairs per second and aaeSegmentsPerExchangeMax segments
// per exchange; a round with nothing to repair costs one 8 KiB message per
// partition and peer.
//
// A stored object that cannot be decoded never stops the build (nor the
// node's start): it is set aside under the quarantine prefix by the object
// store, counted and logged, and left out of the hashes, so the exchange
// sees the key as missing here and brings it back from the replicas. While
// the disk is unhealthy a round still pushes repairs to peers but writes
// nothing here.

import { mergeAll, objectBytes, sameVersions } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { SegmentHashes, decodeSegmentHashes, differingSegments, elementHash, encodeSegmentHashes } from '../core/antientropy/segments.js';
import { keyHash } from '../core/ring/hash.js';
import { readPreference } from '../core/ring/transition.js';
import type { Ring } from '../core/ring/ring.js';
import { TuneKvError, invalid } from '../errors.js';
import { limits } from '../limits.js';
import { scanRange } from '../io/scan.js';
import { messageWithCauses } from '../io/storage.js';
import { MsgType } from '../protocol/messages.js';
import { decodeObject, objectFromWire, objectToWire } from '../protocol/object-codec.js';
import { mapLimit } from './concurrency.js';
import { aaeHashesKey, dataKeyRange, segmentKeyRange, userKeyOf } from './keyspace.js';
import { RateLimiter } from './context.js';
import type { NodeContext } from './context.js';

export interface AaeStats {
  rounds: number;
  /** Differing segments seen in the last complete round (0: in sync). */
  lastRoundSegmentsDiffering: number;
  exchanges: number;
  segmentsDiffering: number;
  keysCompared: number;
  keysRepaired: number;
  /** When the last full round ended (node clock), or 0. */
  lastRoundEndMs: number;
  /** False while the hashes are rebuilt in the background (no exchanges). */
  hashesReady: boolean;
}

/** Segment listings and key repairs in flight at once per exchange: enough
 * to hide round trips, few enough to leave the node to its clients. */
const aaeConcurrency = 16;

/** A key's element hash, as one side of an exchange lists it. */
type KeyEntry = [string, number, number];

export class AntiEntropy {
  readonly hashes = new SegmentHashes();
  readonly stats: AaeStats = {
    rounds: 0, lastRoundSegmentsDiffering: 0, exchanges: 0, segmentsDiffering: 0, keysCompared: 0, keysRepaired: 0, lastRoundEndMs: 0, hashesReady: true,
  };
  private readonly limiter: RateLimiter;
  private running = false;
  /** False while the hashes are rebuilt in the background: no exchange. */
  private get hashesReady(): boolean {
    return this.stats.hashesReady;
  }

  private set hashesReady(ready: boolean) {
    this.stats.hashesReady = ready;
  }

  /** The node is stopping: a background build ends at its next page. */
  private stopping = false;
  /** The background build, so a stop can end it before storage closes. */
  private building: { scan: AsyncGenerator<[string, Uint8Array][]>; done: Promise<void> } | undefined;
  /** Called with keys whose merged state is only tombstones. */
  onTombstone: ((key: string, obj: VersionedObject) => void) | undefined;
  /** A repair merged versions into this node's copy (the conflict log). */
  onMergeConflict: ((key: string, before: VersionedObject | undefined, merged: VersionedObject) => void) | undefined;

  constructor(private readonly ctx: NodeContext) {
    this.limiter = new RateLimiter(ctx.config.aaeKeysPerSecMax, ctx.clock.elapsedMs());
  }

  /** Loads the hashes when the node opens: the copy persisted at the last
   * clean stop if there is a sound one (removed from storage first, synced,
   * so a crash from here on leaves none), else a scan. Resolves to the keys
   * they cover and where they came from. Throws if the copy cannot be
   * removed: trusting it without that could trust it after a crash. */
  async open(): Promise<{ keys: number; from: 'persisted' | 'scan' | 'background' }> {
    const bytes = await this.ctx.storage.get(aaeHashesKey);
    if (bytes !== undefined) {
      // Refusing to start is the safe side: kept, the copy would be trusted
      // at a later open even if writes landed after it.
      await this.ctx.storage.write([{ key: aaeHashesKey, value: null }], true).catch((err: unknown) => {
        throw new Error(`could not remove the persisted anti-entropy hashes before serving (the disk refuses writes; free it and start again): ${messageWithCauses(err)}`, { cause: err });
      });
      const persisted = decodeSegmentHashes(bytes);
      if (typeof persisted !== 'string') {
        this.hashes.adopt(persisted);
        return { keys: persisted.keys, from: 'persisted' };
      }
      this.ctx.log(`${this.ctx.id} ignored its persisted anti-entropy hashes (${persisted}); rebuilding them from storage`);
    }
    if (this.ctx.storage.scanSnapshot === undefined) return { keys: await this.build(), from: 'scan' };
    this.buildInBackground(this.ctx.storage.scanSnapshot(dataKeyRange, limits.scanPageMax));
    return { keys: 0, from: 'background' };
  }

  /** Whether the hashes summarise storage (false while rebuilt in the background). */
  get ready(): boolean {
    return this.hashesReady;
  }

  /** Resolves once a background build has ended (at once if none runs). */
  async whenBuilt(): Promise<void> {
    await this.building?.done;
  }

  /** Starts summarising a snapshot taken at open (see the header). */
  private buildInBackground(scan: AsyncGenerator<[string, Uint8Array][]>): void {
    this.hashesReady = false;
    const t0 = this.ctx.clock.elapsedMs();
    const done = (async () => {
      const base = new SegmentHashes();
      try {
        const { count, setAside } = await this.summarise(scan, base);
        if (this.stopping) return;
        this.hashes.combine(base);
        this.hashesReady = true;
        this.ctx.log(`${this.ctx.id} rebuilt its anti-entropy hashes in the background: ${count} keys in `
          + `${Math.round(this.ctx.clock.elapsedMs() - t0)} ms${setAside > 0 ? `; ${setAside} undecodable objects set aside (q)` : ''}`);
      } catch (err) {
        this.ctx.log(`${this.ctx.id} could not rebuild its anti-entropy hashes (${messageWithCauses(err)}); `
          + 'anti-entropy stays off on this node until it restarts');
      } finally {
        this.building = undefined;
      }
    })();
    this.building = { scan, done };
  }

  /** Ends a background build (the node stops); the hashes stay not ready. */
  async stop(): Promise<void> {
    this.stopping = true;
    const b = this.building;
    if (b === undefined) return;
    await b.done;
  }

  /** Hashes every decodable object of a scan into `into`; sets the others
   * aside. Ends early (the scan closed) once the node is stopping. */
  private async summarise(pages: AsyncIterable<[string, Uint8Array][]>, into: SegmentHashes): Promise<{ count: number; setAside: number }> {
    let count = 0;
    let setAside = 0;
    for await (const page of pages) {
      if (this.stopping) break;
      for (const [sk, bytes] of page) {
        const key = userKeyOf(sk);
        let obj: VersionedObject;
        try {
          obj = decodeObject(bytes);
        } catch (err) {
          setAside++;
          await this.setAside(sk, bytes, messageWithCauses(err));
          continue;
        }
        into.update(key, keyHash(key), undefined, obj);
        count++;
      }
    }
    return { count, setAside };
  }

  /** Writes the hashes for the next open (a clean stop, after the store is
   * closed and drained, so no write can follow). `sound`: the store says
   * its change feed matches storage (nothing in doubt, nothing set aside
   * unhashed); otherwise nothing is written and the next open scans. */
  async persist(sound: boolean): Promise<boolean> {
    if (!sound || !this.hashesReady) return false;
    await this.ctx.storage.write([{ key: aaeHashesKey, value: encodeSegmentHashes(this.hashes) }], true);
    return true;
  }

  /** Builds the hashes from everything stored (when the node opens without
   * a sound persisted copy);
   * resolves to the number of keys hashed. Undecodable objects are set
   * aside, never thrown. */
  async build(): Promise<number> {
    const { count, setAside } = await this.summarise(scanRange(this.ctx.storage, dataKeyRange), this.hashes);
    if (setAside > 0) this.ctx.log(`${this.ctx.id} found ${setAside} undecodable stored objects at open; set aside under the quarantine prefix (q)`);
    return count;
  }

  private async setAside(sk: string, bytes: Uint8Array, reason: string): Promise<void> {
    try {
      await this.ctx.store.setAside(sk, bytes, reason);
    } catch (err) {
      // Left in place: reads treat it as absent and try again.
      this.ctx.log(`${this.ctx.id} could not set aside the undecodable object of key "${userKeyOf(sk).slice(0, 200)}" (${reason}): ${(err as Error).message}`);
    }
  }

  /** Partitions this node leads: it is the first primary the detector sees up. */
  private ledPartitions(ring: Ring): number[] {
    const out: number[] = [];
    for (let p = 0; p < ring.q; p++) {
      const lead = readPreference(ring, p).primaries.find((id) => this.ctx.membership.isUp(id));
      if (lead === this.ctx.id) out.push(p);
    }
    return out;
  }

  /** One round over the partitions this node leads. */
  async round(pause: (ms: number) => Promise<void>): Promise<void> {
    if (this.running || !this.hashesReady) return;
    this.running = true;
    try {
      const ring = this.ctx.ring;
      if (!ring) return;
      const before = this.stats.segmentsDiffering;
      // Keys repaired per peer, for one summary line per round (never a
      // line per key: a round after a long partition repairs millions).
      const repairedBy = new Map<string, number>();
      for (const p of this.ledPartitions(ring)) {
        for (const peer of readPreference(ring, p).primaries) {
          if (peer === this.ctx.id || !this.ctx.membership.isUp(peer)) continue;
          const n = await this.exchange(ring, p, peer);
          if (n > 0) repairedBy.set(peer, (repairedBy.get(peer) ?? 0) + n);
          if (this.ctx.config.aaeExchangePauseMs > 0) await pause(this.ctx.config.aaeExchangePauseMs);
        }
      }
      this.stats.lastRoundSegmentsDiffering = this.stats.segmentsDiffering - before;
      if (repairedBy.size > 0) {
        this.ctx.events?.event('info', 'aae_repaired', {
          keysRepaired: [...repairedBy.values()].reduce((a, b) => a + b, 0), peers: Object.fromEntries(repairedBy),
          segmentsDiffering: this.stats.lastRoundSegmentsDiffering, round: this.stats.rounds + 1,
        });
      }
      this.stats.rounds++;
      this.stats.lastRoundEndMs = this.ctx.clock.nowMs();
    } finally {
      this.running = false;
    }
  }

  /** Compares partition p with `peer` and repairs what differs; a peer
   * that fails mid-exchange ends it quietly (the next round starts over). */
  async exchange(ring: Ring, p: number, peer: string): Promise<number> {
    return this.exchangeStrict(ring, p, peer).catch(() => 0);
  }

  /** The same, but a failure throws: a transfer's catch-up must know.
   * `whole`: every differing segment of the partition, a page of
   * aaeSegmentsPerExchangeMax segments at a time. A catch-up needs it: it
   * must bring every write acknowledged before the seal, and a partition
   * of a small ring has more segments than one round's cap (q=8: 8192), so
   * a capped catch-up could report `caughtup` with segments never looked
   * at. A background round keeps the cap (the next round does the rest). */
  async exchangeStrict(ring: Ring, p: number, peer: string, whole = false): Promise<number> {
    this.checkReady();
    this.stats.exchanges++;
    const r = await this.ctx.ask(peer, MsgType.AAE_SEGMENTS, { partition: p, q: ring.q });
    const theirs = (r.body as { segments: Uint8Array }).segments;
    if (!(theirs instanceof Uint8Array)) throw new Error(`${peer} sent no segment hashes`);
    const all = differingSegments(p, ring.q, this.hashes.partitionBytes(p, ring.q), theirs);
    const pageMax = limits.aaeSegmentsPerExchangeMax;
    let count = 0;
    for (let at = 0; at < all.length; at += pageMax) {
      const differing = all.slice(at, at + pageMax);
      this.stats.segmentsDiffering += differing.length;
      const keys = (await mapLimit(differing, aaeConcurrency, (seg) => this.differingKeys(seg, peer))).flat();
      const repaired = await mapLimit(keys, aaeConcurrency, async (key) => {
        await this.throttle();
        return this.repairKey(key, peer);
      });
      const n = repaired.filter((x) => x).length;
      this.stats.keysRepaired += n;
      count += n;
      if (!whole) break;
    }
    return count;
  }

  /** Waits for a token: at most aaeKeysPerSecMax repairs per second. */
  private async throttle(): Promise<void> {
    while (this.limiter.take(1, this.ctx.clock.elapsedMs()) === 0) {
      await new Promise<void>((resolve) => { this.ctx.clock.setTimer(Math.ceil(1000 / this.ctx.config.aaeKeysPerSecMax), resolve); });
    }
  }

  /** Keys of one segment whose state differs between us and the peer. */
  private async differingKeys(seg: number, peer: string): Promise<string[]> {
    const r = await this.ctx.ask(peer, MsgType.AAE_KEYS, { segment: seg });
    const theirs = new Map(((r.body as { keys: KeyEntry[] }).keys).map(([k, hi, lo]) => [k, `${hi}:${lo}`]));
    const mine = new Map((await this.listSegment(seg)).map(([k, hi, lo]) => [k, `${hi}:${lo}`]));
    const differ: string[] = [];
    for (const [k, h] of mine) if (theirs.get(k) !== h) differ.push(k);
    for (const k of theirs.keys()) if (!mine.has(k)) differ.push(k);
    this.stats.keysCompared += mine.size + theirs.size;
    return differ;
  }

  /** Merges our object and the peer's; writes the result where it is missing. */
  private async repairKey(key: string, peer: string): Promise<boolean> {
    const r = await this.ctx.ask(peer, MsgType.REPLICA_READ, { key });
    const wire = (r.body as { object: unknown }).object;
    const remote = wire === null || wire === undefined ? undefined : objectFromWire(wire);
    const local = await this.ctx.store.read(key);
    const merged = mergeAll([local, remote].filter((o): o is VersionedObject => o !== undefined));
    if (!merged) return false;
    let changed = false;
    if (!sameVersions(local, merged) && this.ctx.store.health?.writable !== false) {
      let before: VersionedObject | undefined;
      const m = await this.ctx.store.mutate(key, (cur) => { before = cur; return cur ? mergeAll([cur, merged])! : merged; });
      if (m.changed && m.object) this.onMergeConflict?.(key, before, m.object);
      await m.durable;
      changed = true;
    }
    if (!sameVersions(remote, merged)) {
      this.ctx.replicationSent?.('aae', objectBytes(merged));
      await this.ctx.ask(peer, MsgType.REPLICA_WRITE, { key, object: objectToWire(merged) });
      changed = true;
    }
    if (merged.siblings.every((s) => s.value === null)) this.onTombstone?.(key, merged);
    return changed;
  }

  /** Keys of one segment with their element hashes, from storage. */
  async listSegment(seg: number): Promise<KeyEntry[]> {
    const out: KeyEntry[] = [];
    for await (const page of scanRange(this.ctx.storage, segmentKeyRange(seg))) {
      for (const [sk] of page) {
        const key = userKeyOf(sk);
        // Read through the store: the overlay may be newer than storage.
        const obj = await this.ctx.store.read(key);
        if (obj) out.push([key, ...elementHash(key, obj)]);
      }
    }
    return out;
  }

  // ---- serving a peer's exchange ----

  private checkReady(): void {
    if (!this.hashesReady) throw new TuneKvError('UNAVAILABLE', `${this.ctx.id} is rebuilding its anti-entropy hashes`);
  }

  segmentsFor(body: unknown): { segments: Uint8Array } {
    this.checkReady();
    const b = (body ?? {}) as { partition?: unknown; q?: unknown };
    const ring = this.ctx.ring;
    if (!ring || b.q !== ring.q || !Number.isInteger(b.partition) || (b.partition as number) < 0 || (b.partition as number) >= ring.q) {
      throw invalid('AAE_SEGMENTS needs a partition of this ring');
    }
    return { segments: this.hashes.partitionBytes(b.partition as number, ring.q) };
  }

  async keysFor(body: unknown): Promise<{ keys: KeyEntry[] }> {
    const seg = (body as { segment?: unknown } | null)?.segment;
    if (!Number.isInteger(seg) || (seg as number) < 0 || (seg as number) >= 65536) throw invalid('AAE_KEYS needs a segment 0..65535');
    return { keys: await this.listSegment(seg as number) };
  }
}
