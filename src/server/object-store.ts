// A node's objects on top of Storage: per-key serialized read-modify-write,
// group commit, a change feed for the anti-entropy trees, and what happens
// when the disk says no.
//
// Invariants:
//   - mutations of one key run one at a time, in arrival order, each seeing
//     the result of the previous (a coordinator must never hand out the same
//     dot twice);
//   - a built object is visible to reads at once (the overlay) and its
//     `durable` promise resolves only when its storage batch is written;
//     replicas acknowledge on `durable`, never before;
//   - every change of a key's object (write or removal) is reported to
//     onChange with the states before and after, in order; the `before` of a
//     report is always the `after` of the previous one, so the XOR segment
//     hashes fed by it describe exactly the states reported;
//   - a bounded cache (config objectCacheBytes) holds recently used objects
//     and known-absent keys; every change goes through it, so it never
//     serves a state older than the last one staged; hot reads never touch
//     LevelDB. It is charged what its entries really cost the heap, and a
//     cached object's values own their memory (never a view into a frame);
//   - writes that arrive while a batch is being written wait and go out
//     together in the next batch (group commit), at most writeBatchMax each;
//     the first batch after a quiet spell waits for the end of the event
//     loop's turn (setImmediate), so every write that one turn's frames
//     (from the client and from each peer) produced goes in one batch: a
//     LevelDB batch costs a thread-pool round trip (20-60 µs of CPU here)
//     whatever it holds, and a key in a batch of 64 costs ~2.5 µs;
//     more than writeQueueMax waiting writes are refused with OVERLOADED;
//   - while the disk health (disk-health.ts) says unhealthy, every write is
//     refused up front with STORAGE_FAILED; reads go on.
//
// A failed batch. Its writes reject with STORAGE_FAILED (cause attached) and
// the disk health hears of it. Each data key in it is then *in doubt*: the
// cache, the overlay and the change feed believe a state storage rejected.
// At once the overlay entry (if it is the failed write's) and the cache entry
// are dropped, so reads go to storage; then, serialized on the key behind
// any mutation already waiting, the key is settled: wait until no write of
// the key is queued, read what storage holds, report onChange(key, hash,
// believed, stored) so the segment hashes match storage again, and cache it.
// If that read fails too, the cache entry stays dropped (reads go to
// storage) and the doubt stays for the next step on the key to settle.
//
// A second mutation M2 (state C) staged on top of a failed M1 (state B, built
// on stored A) before the failure was known:
//   - same batch: both fail; storage holds A; the feed believes C; settling
//     reports C -> A.
//   - M1's batch fails, M2's (later) succeeds: C is on disk, and C descends
//     from B, so B's versions are in it: M1 was applied after all, like any
//     write whose reply said failed but reached a replica (maybeApplied).
//     Settling waits for M2's batch, reads C, and reports nothing (C -> C).
//   - M1's batch fails, M2's fails too: settling waits for M2, reads A,
//     reports C -> A (M2's own failure finds the key already in doubt).
//   - M1's batch succeeds, M2's fails: storage holds B; settling reports
//     C -> B.
// Waiting for the key's queued writes before reading storage is what makes
// the read the last word: nothing newer can be staged meanwhile (we are in
// the key's chain) and everything older has landed or failed.
//
// Dots of a rejected state. A coordinator mints its next dot as one past the
// highest counter it sees in the key's object. If the key fell back from B
// (which carried a fresh dot, and had already been sent to other replicas)
// to A, the next put would mint B's dot again for a different value, and
// merges, which treat one dot as one version, would drop one of the two.
// So a rejected state with versions storage lacks is kept (bounded, see
// rebaseBytesMax) and the key's next mutation builds on stored ⊔ rejected:
// reads and the change feed show storage, the next write puts the rejected
// versions back. A write reported failed may thus land later, which its
// client must allow for anyway (other replicas may have stored it).
//
// An undecodable stored object (a damaged file, or an older buggy version
// that wrote a clock no node can load) is never a reason to fail: it is set
// aside byte for byte under q<data key> (keyspace.ts), removed from the data
// range, counted (stats.quarantined) and logged, and the key reads as absent
// so read repair and anti-entropy restore it from the other replicas. (At
// open, anti-entropy's build sets such objects aside before hashing. One
// found later by a read had decoded at build, so its bytes changed since;
// its old element stays in the segment hash until the next open rebuilds
// it, and that segment keeps being compared: rare, and only costs a listing.)

import assert from 'node:assert/strict';
import { merge, objectBytes, sameVersions } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { keyHash } from '../core/ring/hash.js';
import { TuneKvError } from '../errors.js';
import { limits } from '../limits.js';
import { decodeObject, encodeObject } from '../protocol/object-codec.js';
import { messageWithCauses } from '../io/storage.js';
import type { Storage, StorageOp } from '../io/storage.js';
import type { DiskHealth } from './disk-health.js';
import { dataKey, quarantineKey, userKeyOf } from './keyspace.js';

/** Returns the new object, or the current one unchanged to write nothing. */
export type Mutation = (current: VersionedObject | undefined) => VersionedObject | undefined;

export interface Mutated {
  readonly object: VersionedObject | undefined;
  readonly changed: boolean;
  readonly durable: Promise<void>;
}

export type ChangeListener = (key: string, hash: number, before: VersionedObject | undefined, after: VersionedObject | undefined) => void;

/** When the first batch after a quiet spell is written: `turn` waits for
 * the end of the event loop's turn (setImmediate), `microtask` does not. */
export type BatchWindow = 'turn' | 'microtask';

export interface ObjectStoreOptions {
  readonly batchWindow?: BatchWindow;
  /** The disk failure policy: told of every failed batch; while it says
   * unhealthy, writes are refused with STORAGE_FAILED. */
  readonly health?: DiskHealth;
  /** Set-aside objects and (without a health to tell) failed batches. */
  readonly log?: (line: string) => void;
  /** Bytes the object cache may hold, as charged by cacheCharge() (what
   * the heap really spends on an entry). Default limits.objectCacheBytesMax;
   * a node takes config.objectCacheBytes. 0 caches nothing. */
  readonly cacheBytesMax?: number;
}

/** A write staged for a data key: the overlay entry until it settles. */
interface Staged {
  readonly sk: string;
  readonly key: string;
  readonly state: VersionedObject | typeof removed;
  /** Resolves once the write has landed or failed and left the overlay. */
  settled: Promise<void>;
}

interface QueuedWrite {
  readonly ops: readonly StorageOp[];
  /** Set for a data key's object write (for the rollback of a failed batch). */
  readonly staged: Staged | undefined;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** A key whose change-feed state may not be what storage holds. */
interface Doubt {
  readonly key: string;
  /** The state last reported to onChange (what the hashes hold). */
  readonly reported: VersionedObject | undefined;
}

export interface ObjectStoreStats {
  batches: number;
  batchedWrites: number;
  overloaded: number;
  cacheHits: number;
  cacheMisses: number;
  /** Keys whose change feed was set back to storage after a failed batch. */
  rollbacks: number;
  /** Rejected states forgotten because rebaseBytesMax was full. */
  rebaseDropped: number;
  /** Undecodable objects set aside under the quarantine prefix. */
  quarantined: number;
}

const resolved = Promise.resolve();
/** Overlay marker of a removal not yet durable. */
const removed = null;
/** Cache entry of a key known to hold nothing. */
const absent = null;
/** peek() of a key the cache does not know. */
export const unknown: unique symbol = Symbol('unknown');
/**
 * What one cache entry really costs, in bytes (V8 heap plus ArrayBuffer
 * memory), measured with process.memoryUsage() after gc() over 100k entries
 * of decoded objects (Node 20, x64): 1025 bytes for one clock entry and one
 * sibling of a 100-byte value and a 16-byte write id (the accounting before
 * this charged 240); +156 per further clock entry; +480 per further sibling;
 * a value's bytes 1:1. Each constant below is rounded up from those figures,
 * so the cache's charge is never below what it holds. The bytes of the
 * ArrayBuffers its values and write ids live in are charged as they are
 * (see retainedBytes), which compactObject() keeps close to the values' own.
 */
const cacheEntryBytes = 400;
const cacheClockEntryBytes = 160;
const cacheSiblingBytes = 400;
/** A known absence: the Map entry and its key. */
const cacheAbsentBytes = 128;
/** A value or write id whose ArrayBuffer exceeds the object's own bytes by
 * more than this is copied out before it is cached: a value decoded from a
 * peer's frame is a view into the socket chunk it arrived in (msgpackr does
 * not copy), and caching the view would keep the whole chunk alive, many
 * kilobytes charged as a hundred bytes. */
const compactSlackBytes = 1024;
/** Bytes of rejected states kept for their keys' next writes. A quarter of
 * the object cache: a disk that fails under a full write queue rejects
 * more than that, and past it the oldest are forgotten (counted in
 * rebaseDropped): those keys risk the dot reuse described above until
 * anti-entropy brings their versions back from the replicas that took them. */
const rebaseBytesMax = limits.objectCacheBytesMax / 4;

export class ObjectStore {
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly overlay = new Map<string, Staged>();
  /** Insertion-ordered, so the first key is the least recently used. */
  private readonly cache = new Map<string, VersionedObject | typeof absent>();
  private cacheBytes = 0;
  private readonly cacheBytesMax: number;
  private readonly doubts = new Map<string, Doubt>();
  /** Rejected states with versions storage lacks, oldest first. */
  private readonly rebases = new Map<string, VersionedObject>();
  private rebaseBytes = 0;
  /** Set-asides under way, so a key is set aside once however often it is read. */
  private readonly settingAside = new Map<string, Promise<boolean>>();
  private queue: QueuedWrite[] = [];
  private flushing = false;
  private closed = false;
  readonly stats: ObjectStoreStats = {
    batches: 0, batchedWrites: 0, overloaded: 0, cacheHits: 0, cacheMisses: 0, rollbacks: 0, rebaseDropped: 0, quarantined: 0,
  };
  readonly health: DiskHealth | undefined;
  private readonly log: ((line: string) => void) | undefined;
  onChange: ChangeListener | undefined;
  /** Keys removed so far (reaped, handed off, swept, set aside): a node
   * that removed a copy may no longer hold every dot it minted. */
  removals = 0;

  private readonly batchWindow: BatchWindow;

  constructor(private readonly storage: Storage, private readonly sync: boolean, options: ObjectStoreOptions = {}) {
    this.batchWindow = options.batchWindow ?? 'turn';
    this.health = options.health;
    this.log = options.log;
    this.cacheBytesMax = options.cacheBytesMax ?? limits.objectCacheBytesMax;
    assert.ok(Number.isSafeInteger(this.cacheBytesMax) && this.cacheBytesMax >= 0, 'cacheBytesMax is a byte count');
  }

  /** What the object cache holds: entries and their charge (tests, status). */
  get cacheUse(): { keys: number; bytes: number; bytesMax: number } {
    return { keys: this.cache.size, bytes: this.cacheBytes, bytesMax: this.cacheBytesMax };
  }

  get queuedWrites(): number {
    return this.queue.length;
  }

  /** Keys whose change feed waits to be set back to storage. */
  get keysInDoubt(): number {
    return this.doubts.size;
  }

  async read(key: string): Promise<VersionedObject | undefined> {
    return this.current(dataKey(key));
  }

  /** The key's object if known without touching storage (pending write or
   * cache), undefined if known absent, `unknown` otherwise. */
  peek(key: string): VersionedObject | undefined | typeof unknown {
    return this.known(dataKey(key));
  }

  /** A pending write first, then the cache; `unknown` sends the caller to storage. */
  private known(sk: string): VersionedObject | undefined | typeof unknown {
    const pending = this.overlay.get(sk);
    if (pending !== undefined) return pending.state ?? undefined;
    const cached = this.cache.get(sk);
    if (cached === undefined) return unknown;
    this.stats.cacheHits++;
    this.touch(sk, cached);
    return cached ?? undefined;
  }

  private async current(sk: string): Promise<VersionedObject | undefined> {
    const known = this.known(sk);
    if (known !== unknown) return known;
    this.stats.cacheMisses++;
    const obj = await this.readStored(sk);
    // A write staged while we read is newer than what we read: keep it.
    if (!this.cache.has(sk) && !this.overlay.has(sk)) this.remember(sk, obj ?? absent);
    return obj;
  }

  /** What storage holds for the key; an undecodable object reads as absent
   * and is set aside. */
  private async readStored(sk: string): Promise<VersionedObject | undefined> {
    const bytes = await this.storage.get(sk);
    if (bytes === undefined) return undefined;
    try {
      return decodeObject(bytes);
    } catch (err) {
      this.setAside(sk, bytes, messageWithCauses(err)).catch((e: Error) => {
        this.log?.(`could not set aside undecodable object of key "${userKeyOf(sk).slice(0, 200)}": ${e.message}`);
      });
      return undefined;
    }
  }

  private sizeOf(sk: string, v: VersionedObject | typeof absent): number {
    return cacheCharge(sk, v);
  }

  /** Moves a key to the most recently used end. */
  private touch(sk: string, v: VersionedObject | typeof absent): void {
    this.cache.delete(sk);
    this.cache.set(sk, v);
  }

  private remember(sk: string, v: VersionedObject | typeof absent): void {
    this.forget(sk);
    if (this.cacheBytesMax === 0) return;
    const entry = v === absent ? absent : compactObject(v);
    this.cache.set(sk, entry);
    this.cacheBytes += this.sizeOf(sk, entry);
    for (const [k, e] of this.cache) {
      if (this.cacheBytes <= this.cacheBytesMax) break;
      this.cache.delete(k);
      this.cacheBytes -= this.sizeOf(k, e);
    }
  }

  /** Drops a key from the cache: its next read goes to storage. */
  private forget(sk: string): void {
    const old = this.cache.get(sk);
    if (old === undefined) return;
    this.cacheBytes -= this.sizeOf(sk, old);
    this.cache.delete(sk);
  }

  /** Runs `step` after every earlier step on the same key. */
  private serialize<T>(sk: string, step: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(sk) ?? resolved;
    const run = prev.then(step);
    const tail = run.then(() => undefined, () => undefined);
    this.chains.set(sk, tail);
    void tail.then(() => { if (this.chains.get(sk) === tail) this.chains.delete(sk); });
    return run;
  }

  /** Serialized read-modify-write of one key; rejects with the mutation's
   * TuneKvError (nothing written), OVERLOADED or STORAGE_FAILED. */
  mutate(key: string, fn: Mutation): Promise<Mutated> {
    const sk = dataKey(key);
    return this.serialize(sk, async (): Promise<Mutated> => {
      if (this.doubts.size > 0 && this.doubts.has(sk)) await this.settle(sk);
      const current = await this.current(sk);
      const base = this.rebased(sk, current);
      const next = fn(base);
      if (next === undefined || (next === current && base === current)) return { object: current, changed: false, durable: resolved };
      this.admit();
      const durable = this.stage(sk, key, current, next, { key: sk, value: encodeObject(next) });
      return { object: next, changed: true, durable };
    });
  }

  /** Removes the key if `when` holds for its current object (serialized
   * with writes, so it judges the latest state). Resolves to whether it did. */
  remove(key: string, when: (current: VersionedObject) => boolean): Promise<boolean> {
    const sk = dataKey(key);
    return this.serialize(sk, async () => {
      if (this.doubts.size > 0 && this.doubts.has(sk)) await this.settle(sk);
      const current = await this.current(sk);
      const base = this.rebased(sk, current);
      if (base === undefined || !when(base)) return false;
      this.admit();
      this.removals++;
      await this.stage(sk, key, current, removed, { key: sk, value: null });
      return true;
    });
  }

  /** Refuses a write before anything is staged: stopping, disk unhealthy, queue full. */
  private admit(): void {
    if (this.closed) throw new TuneKvError('UNAVAILABLE', 'the node is stopping');
    this.health?.checkWritable();
    if (this.queue.length >= limits.writeQueueMax) {
      this.stats.overloaded++;
      throw new TuneKvError('OVERLOADED', `write queue is full (${limits.writeQueueMax} writes waiting)`);
    }
  }

  private stage(sk: string, key: string, before: VersionedObject | undefined, after: VersionedObject | typeof removed,
    op: StorageOp): Promise<void> {
    // A key still in doubt (storage could not be read to settle it) last
    // told the feed its doubted state: the report starts from there.
    const doubt = this.doubts.get(sk);
    if (doubt !== undefined) this.doubts.delete(sk);
    this.dropRebase(sk);
    const staged: Staged = { sk, key, state: after, settled: resolved };
    this.overlay.set(sk, staged);
    this.remember(sk, after ?? absent);
    this.onChange?.(key, keyHash(key), doubt === undefined ? before : doubt.reported, after ?? undefined);
    const durable = this.enqueue([op], staged);
    const clear = (): void => { if (this.overlay.get(sk) === staged) this.overlay.delete(sk); };
    staged.settled = durable.then(clear, clear);
    return durable;
  }

  /** Writes raw ops (metadata, hints) through the same batches; refused
   * like object writes while stopping or while the disk is unhealthy. */
  writeRaw(op: StorageOp): Promise<void> {
    try {
      if (this.closed) throw new TuneKvError('UNAVAILABLE', 'the node is stopping');
      this.health?.checkWritable();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.enqueue([op], undefined);
  }

  /** Refuses new writes (the node is stopping): they reject at once. */
  close(): void {
    this.closed = true;
  }

  private enqueue(ops: readonly StorageOp[], staged: Staged | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, staged, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        if (this.batchWindow === 'turn') setImmediate(() => void this.flush());
        else queueMicrotask(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, limits.writeBatchMax);
      this.stats.batches++;
      this.stats.batchedWrites += batch.length;
      const ops = batch.length === 1 ? batch[0]!.ops : batch.flatMap((w) => w.ops);
      try {
        await this.storage.write(ops, this.sync);
      } catch (err) {
        const error = this.batchFailed(err, batch);
        for (const w of batch) w.reject(error);
        continue;
      }
      for (const w of batch) w.resolve();
    }
    this.flushing = false;
  }

  /** Tells the disk health, puts every data key of the batch in doubt, and
   * returns the error its writes reject with. Runs before they reject, so
   * every write of the batch is still in the overlay or behind a later one. */
  private batchFailed(err: unknown, batch: readonly QueuedWrite[]): TuneKvError {
    const cause = messageWithCauses(err);
    const error = new TuneKvError('STORAGE_FAILED', `storage write failed: ${cause}`, { cause });
    error.cause = err;
    if (this.health) this.health.writeFailed(err, batch.length);
    else this.log?.(`storage batch of ${batch.length} writes failed: ${cause}`);
    for (const w of batch) if (w.staged) this.doubt(w.staged);
    return error;
  }

  private doubt(staged: Staged): void {
    const { sk, key } = staged;
    if (!this.doubts.has(sk)) {
      // The overlay holds the key's latest staged write: this one, or a
      // later one still queued. Its state is what the feed last reported.
      const latest = this.overlay.get(sk);
      assert.ok(latest !== undefined, 'a write not yet settled is in the overlay, or a later one of its key is');
      this.doubts.set(sk, { key, reported: latest.state ?? undefined });
      this.serialize(sk, () => this.settle(sk)).catch((e: Error) => this.log?.(`settling key "${key.slice(0, 200)}" failed: ${e.message}`));
    }
    if (this.overlay.get(sk) === staged) this.overlay.delete(sk);
    this.forget(sk);
  }

  /** Sets a key in doubt back to what storage holds (runs in the key's
   * chain; never rejects). */
  private async settle(sk: string): Promise<void> {
    const doubt = this.doubts.get(sk);
    if (doubt === undefined) return;
    for (let p = this.overlay.get(sk); p !== undefined; p = this.overlay.get(sk)) await p.settled;
    let stored: VersionedObject | undefined;
    try {
      stored = await this.readStored(sk);
    } catch (err) {
      // Storage cannot say either: reads keep going to storage, and the
      // next step on the key tries again.
      this.forget(sk);
      this.log?.(`key "${doubt.key.slice(0, 200)}" stays in doubt after a failed write: ${messageWithCauses(err)}`);
      return;
    }
    this.doubts.delete(sk);
    if (!sameVersions(doubt.reported, stored)) {
      this.stats.rollbacks++;
      this.onChange?.(doubt.key, keyHash(doubt.key), doubt.reported, stored);
      if (doubt.reported !== undefined) this.keepRebase(sk, stored, doubt.reported);
    }
    this.remember(sk, stored ?? absent);
  }

  /** Keeps a rejected state whose versions storage lacks, for the key's
   * next mutation to build on. */
  private keepRebase(sk: string, stored: VersionedObject | undefined, rejected: VersionedObject): void {
    const base = stored === undefined ? rejected : merge(stored, rejected);
    if (sameVersions(base, stored)) return;
    this.dropRebase(sk);
    this.rebases.set(sk, rejected);
    this.rebaseBytes += objectBytes(rejected);
    for (const [k, o] of this.rebases) {
      if (this.rebaseBytes <= rebaseBytesMax) break;
      this.rebases.delete(k);
      this.rebaseBytes -= objectBytes(o);
      this.stats.rebaseDropped++;
    }
  }

  private dropRebase(sk: string): void {
    const old = this.rebases.get(sk);
    if (old === undefined) return;
    this.rebases.delete(sk);
    this.rebaseBytes -= objectBytes(old);
  }

  /** What the key's next mutation builds on: the current object, with a
   * rejected state's versions merged back in. */
  private rebased(sk: string, current: VersionedObject | undefined): VersionedObject | undefined {
    if (this.rebases.size === 0) return current;
    const rejected = this.rebases.get(sk);
    if (rejected === undefined) return current;
    return current === undefined ? rejected : merge(current, rejected);
  }

  /**
   * Sets an undecodable stored object aside: its bytes go to q<data key>,
   * and the data key is deleted if it still holds exactly those bytes and
   * no write of the key is queued (then a newer object written meanwhile is
   * never lost). Serialized on the key; resolves to whether the object was
   * moved out of the data range; rejects (nothing done) when writes are
   * refused. One set-aside per key at a time.
   */
  setAside(storageKey: string, bytes: Uint8Array, reason: string): Promise<boolean> {
    const running = this.settingAside.get(storageKey);
    if (running !== undefined) return running;
    const done = this.serialize(storageKey, async () => {
      this.admit();
      const pending = this.overlay.has(storageKey);
      const now = pending ? undefined : await this.storage.get(storageKey);
      const still = now !== undefined && Buffer.compare(now, bytes) === 0;
      const ops: StorageOp[] = [{ key: quarantineKey(storageKey), value: bytes }];
      if (still) ops.push({ key: storageKey, value: null });
      else if (!this.overlay.has(storageKey)) this.forget(storageKey);
      await this.enqueue(ops, undefined);
      this.stats.quarantined++;
      this.removals++;
      this.log?.(`set aside the stored object of key "${userKeyOf(storageKey).slice(0, 200)}" (${bytes.length} bytes) under `
        + `${quarantineKey(storageKey).slice(0, 20)}...: ${reason}${still ? '; the key reads as absent until a replica restores it' : '; the key already holds a newer object'}`);
      return still;
    }).finally(() => this.settingAside.delete(storageKey));
    this.settingAside.set(storageKey, done);
    return done;
  }

  /** Whether the change feed has described exactly what storage holds
   * since this store was made, for good: the store is closed (no write can
   * be staged), every write landed (none queued, none in doubt) and nothing
   * was set aside (a set-aside object's element stays in the hashes fed).
   * Checked at a clean stop, after drain(), before persisting the hashes. */
  get feedMatchesStorage(): boolean {
    return this.closed && this.queue.length === 0 && !this.flushing && this.doubts.size === 0
      && this.settingAside.size === 0 && this.stats.quarantined === 0;
  }

  /** Resolves once every queued write is on storage. */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise<void>((r) => setImmediate(r));
  }
}

/** The bytes of the distinct ArrayBuffers an object's values and write ids
 * live in (what caching it keeps alive besides its JS objects). */
export function retainedBytes(obj: VersionedObject): number {
  let bytes = 0;
  const seen: ArrayBufferLike[] = [];
  for (const s of obj.siblings) {
    for (const b of [s.value, s.wid]) {
      if (b === null || seen.includes(b.buffer)) continue;
      seen.push(b.buffer);
      bytes += b.buffer.byteLength;
    }
  }
  return bytes;
}

/** What a cache entry of storage key `sk` costs the heap (see cacheEntryBytes). */
export function cacheCharge(sk: string, v: VersionedObject | null): number {
  if (v === null) return cacheAbsentBytes + sk.length;
  let bytes = cacheEntryBytes + sk.length + retainedBytes(v);
  for (const [actor] of v.clock) bytes += cacheClockEntryBytes + actor.length;
  for (const s of v.siblings) bytes += cacheSiblingBytes + s.actor.length;
  return bytes;
}

/** The object itself when its values and write ids own their memory (no
 * ArrayBuffer larger than all of them plus compactSlackBytes), else a copy
 * whose values and write ids share one new ArrayBuffer of exactly their
 * bytes, as a decoded stored object does. */
export function compactObject(obj: VersionedObject): VersionedObject {
  let own = 0;
  for (const s of obj.siblings) own += (s.value?.byteLength ?? 0) + (s.wid?.byteLength ?? 0);
  let loose = false;
  for (const s of obj.siblings) {
    if ((s.value !== null && s.value.buffer.byteLength > own + compactSlackBytes)
      || (s.wid !== null && s.wid.buffer.byteLength > own + compactSlackBytes)) loose = true;
  }
  if (!loose) return obj;
  // Buffers, as msgpackr decodes bins; allocUnsafeSlow is never a slice
  // of Node's shared pool (which would be the same trouble again).
  const slab = Buffer.allocUnsafeSlow(own);
  let at = 0;
  const copy = (b: Uint8Array | null): Uint8Array | null => {
    if (b === null) return null;
    slab.set(b, at);
    const out = slab.subarray(at, at + b.byteLength);
    at += b.byteLength;
    return out;
  };
  return { clock: obj.clock, siblings: obj.siblings.map((s) => ({ ...s, value: copy(s.value), wid: copy(s.wid) })) };
}
