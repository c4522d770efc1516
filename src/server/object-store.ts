// A node's objects on top of Storage: per-key serialized read-modify-write,
// group commit, and a change feed for the anti-entropy trees.
//
// Invariants:
//   - mutations of one key run one at a time, in arrival order, each seeing
//     the result of the previous (a coordinator must never hand out the same
//     dot twice);
//   - a built object is visible to reads at once (the overlay) and its
//     `durable` promise resolves only when its storage batch is written;
//     replicas acknowledge on `durable`, never before;
//   - every change of a key's object (write or removal) is reported to
//     onChange with the states before and after, in order;
//   - a bounded cache (objectCacheBytesMax) holds recently used objects and
//     known-absent keys; every change goes through it, so it never serves a
//     state older than the last one staged; hot reads never touch LevelDB;
//   - writes that arrive while a batch is being written wait and go out
//     together in the next batch (group commit), at most writeBatchMax each;
//     more than writeQueueMax waiting writes are refused with OVERLOADED.

import { objectBytes } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { keyHash } from '../core/ring/hash.js';
import { TuneKvError } from '../errors.js';
import { limits } from '../limits.js';
import { decodeObject, encodeObject } from '../protocol/object-codec.js';
import type { Storage, StorageOp } from '../io/storage.js';
import { dataKey } from './keyspace.js';

/** Returns the new object, or the current one unchanged to write nothing. */
export type Mutation = (current: VersionedObject | undefined) => VersionedObject | undefined;

export interface Mutated {
  readonly object: VersionedObject | undefined;
  readonly changed: boolean;
  readonly durable: Promise<void>;
}

export type ChangeListener = (key: string, hash: number, before: VersionedObject | undefined, after: VersionedObject | undefined) => void;

interface QueuedWrite {
  readonly op: StorageOp;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

export interface ObjectStoreStats {
  batches: number;
  batchedWrites: number;
  overloaded: number;
  cacheHits: number;
  cacheMisses: number;
}

const resolved = Promise.resolve();
/** Overlay marker of a removal not yet durable. */
const removed = null;
/** Cache entry of a key known to hold nothing. */
const absent = null;
/** peek() of a key the cache does not know. */
export const unknown: unique symbol = Symbol('unknown');
/** Bytes charged for a cached absence. */
const absentBytes = 64;

export class ObjectStore {
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly overlay = new Map<string, VersionedObject | typeof removed>();
  /** Insertion-ordered, so the first key is the least recently used. */
  private readonly cache = new Map<string, VersionedObject | typeof absent>();
  private cacheBytes = 0;
  private queue: QueuedWrite[] = [];
  private flushing = false;
  readonly stats: ObjectStoreStats = { batches: 0, batchedWrites: 0, overloaded: 0, cacheHits: 0, cacheMisses: 0 };
  onChange: ChangeListener | undefined;

  constructor(private readonly storage: Storage, private readonly sync: boolean) {}

  get queuedWrites(): number {
    return this.queue.length;
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
    if (pending !== undefined) return pending ?? undefined;
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
    const bytes = await this.storage.get(sk);
    const obj = bytes === undefined ? undefined : decodeObject(bytes);
    // A write staged while we read is newer than what we read: keep it.
    if (!this.cache.has(sk) && !this.overlay.has(sk)) this.remember(sk, obj ?? absent);
    return obj;
  }

  private sizeOf(v: VersionedObject | typeof absent): number {
    return v === absent ? absentBytes : objectBytes(v) + 64;
  }

  /** Moves a key to the most recently used end. */
  private touch(sk: string, v: VersionedObject | typeof absent): void {
    this.cache.delete(sk);
    this.cache.set(sk, v);
  }

  private remember(sk: string, v: VersionedObject | typeof absent): void {
    const old = this.cache.get(sk);
    if (old !== undefined) this.cacheBytes -= this.sizeOf(old);
    this.cache.delete(sk);
    this.cache.set(sk, v);
    this.cacheBytes += this.sizeOf(v);
    for (const [k, e] of this.cache) {
      if (this.cacheBytes <= limits.objectCacheBytesMax) break;
      this.cache.delete(k);
      this.cacheBytes -= this.sizeOf(e);
    }
  }

  get cachedKeys(): number {
    return this.cache.size;
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
   * TuneKvError (nothing written) or OVERLOADED. */
  mutate(key: string, fn: Mutation): Promise<Mutated> {
    const sk = dataKey(key);
    return this.serialize(sk, async (): Promise<Mutated> => {
      const current = await this.current(sk);
      const next = fn(current);
      if (next === current || next === undefined) return { object: current, changed: false, durable: resolved };
      this.checkQueue();
      const durable = this.stage(sk, key, current, next, { key: sk, value: encodeObject(next) });
      return { object: next, changed: true, durable };
    });
  }

  /** Removes the key if `when` holds for its current object (serialized
   * with writes, so it judges the latest state). Resolves to whether it did. */
  remove(key: string, when: (current: VersionedObject) => boolean): Promise<boolean> {
    const sk = dataKey(key);
    return this.serialize(sk, async () => {
      const current = await this.current(sk);
      if (current === undefined || !when(current)) return false;
      this.checkQueue();
      await this.stage(sk, key, current, removed, { key: sk, value: null });
      return true;
    });
  }

  private checkQueue(): void {
    if (this.queue.length >= limits.writeQueueMax) {
      this.stats.overloaded++;
      throw new TuneKvError('OVERLOADED', `write queue is full (${limits.writeQueueMax} writes waiting)`);
    }
  }

  private stage(sk: string, key: string, before: VersionedObject | undefined, after: VersionedObject | typeof removed,
    op: StorageOp): Promise<void> {
    this.overlay.set(sk, after);
    this.remember(sk, after ?? absent);
    this.onChange?.(key, keyHash(key), before, after ?? undefined);
    const durable = this.enqueue(op);
    const clear = (): void => { if (this.overlay.get(sk) === after) this.overlay.delete(sk); };
    void durable.then(clear, clear);
    return durable;
  }

  /** Writes raw ops (metadata, hints) through the same batches. */
  writeRaw(op: StorageOp): Promise<void> {
    return this.enqueue(op);
  }

  /** Refuses new writes (the node is stopping): they reject at once. */
  private closed = false;

  close(): void {
    this.closed = true;
  }

  private enqueue(op: StorageOp): Promise<void> {
    if (this.closed) return Promise.reject(new TuneKvError('UNAVAILABLE', 'the node is stopping'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        queueMicrotask(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, limits.writeBatchMax);
      this.stats.batches++;
      this.stats.batchedWrites += batch.length;
      try {
        await this.storage.write(batch.map((w) => w.op), this.sync);
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err as Error);
      }
    }
    this.flushing = false;
  }

  /** Resolves once every queued write is on storage. */
  async drain(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise<void>((r) => setImmediate(r));
  }
}
