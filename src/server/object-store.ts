// A node's objects on top of Storage: per-key serialized read-modify-write
// and group commit.
//
// Invariants:
//   - mutations of one key run one at a time, in arrival order, each seeing
//     the result of the previous (a coordinator must never hand out the same
//     dot twice);
//   - a built object is visible to reads at once (the overlay) and its
//     `durable` promise resolves only when its storage batch is written;
//     replicas acknowledge on `durable`, never before;
//   - writes that arrive while a batch is being written wait and go out
//     together in the next batch (group commit), at most writeBatchMax each;
//     more than writeQueueMax waiting writes are refused with OVERLOADED.

import type { VersionedObject } from '../core/clock/object.js';
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

interface QueuedWrite {
  readonly op: StorageOp;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

export interface ObjectStoreStats {
  batches: number;
  batchedWrites: number;
  overloaded: number;
}

const resolved = Promise.resolve();

export class ObjectStore {
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly overlay = new Map<string, VersionedObject>();
  private queue: QueuedWrite[] = [];
  private flushing = false;
  readonly stats: ObjectStoreStats = { batches: 0, batchedWrites: 0, overloaded: 0 };

  constructor(private readonly storage: Storage, private readonly sync: boolean) {}

  get queuedWrites(): number {
    return this.queue.length;
  }

  async read(key: string): Promise<VersionedObject | undefined> {
    const sk = dataKey(key);
    const pending = this.overlay.get(sk);
    if (pending) return pending;
    const bytes = await this.storage.get(sk);
    return bytes === undefined ? undefined : decodeObject(bytes);
  }

  /** Serialized read-modify-write of one key; rejects with the mutation's
   * TuneKvError (nothing written) or OVERLOADED. */
  mutate(key: string, fn: Mutation): Promise<Mutated> {
    const sk = dataKey(key);
    const prev = this.chains.get(sk) ?? resolved;
    const run = prev.then(async (): Promise<Mutated> => {
      const current = this.overlay.get(sk) ?? await this.readStored(sk);
      const next = fn(current);
      if (next === current || next === undefined) return { object: current, changed: false, durable: resolved };
      if (this.queue.length >= limits.writeQueueMax) {
        this.stats.overloaded++;
        throw new TuneKvError('OVERLOADED', `write queue is full (${limits.writeQueueMax} writes waiting)`);
      }
      this.overlay.set(sk, next);
      const durable = this.enqueue({ key: sk, value: encodeObject(next) });
      void durable.then(() => { if (this.overlay.get(sk) === next) this.overlay.delete(sk); }, () => {
        if (this.overlay.get(sk) === next) this.overlay.delete(sk);
      });
      return { object: next, changed: true, durable };
    });
    const tail = run.then(() => undefined, () => undefined);
    this.chains.set(sk, tail);
    void tail.then(() => { if (this.chains.get(sk) === tail) this.chains.delete(sk); });
    return run;
  }

  /** Writes raw ops (metadata) through the same batches. */
  writeRaw(op: StorageOp): Promise<void> {
    return this.enqueue(op);
  }

  private async readStored(sk: string): Promise<VersionedObject | undefined> {
    const bytes = await this.storage.get(sk);
    return bytes === undefined ? undefined : decodeObject(bytes);
  }

  private enqueue(op: StorageOp): Promise<void> {
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
