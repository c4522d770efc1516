// LevelDB storage through `level` (classic-level): one database per node.
// Keys are utf8 strings, values raw bytes ('view' encoding: no JSON, no copy).
//
// Errors: level keeps the reason of a failure in `.cause` ("Database failed
// to open" <- "IO error: lock /data/LOCK: already held by process"); every
// method rethrows with the whole chain in the message, so the one line a
// node logs says what to fix. The original error stays as `.cause` and its
// `code` (LEVEL_DATABASE_NOT_OPEN, LEVEL_IO_ERROR, ...) is kept.
//
// After a failed write the database is reopened before the next write.
// LevelDB's log writer, when an append fails part way (EFBIG, ENOSPC, EIO),
// keeps its idea of the block offset as if the whole record had been
// written, and LevelDB only refuses further writes after a failed *sync*.
// Records appended after the torn one are then unreadable at the next open,
// which stops at the tear without complaint: measured here (RLIMIT_FSIZE,
// test/io/disk-faults.test.ts), every synced write acknowledged after the
// failure was gone after a restart, in 20 runs out of 20. Reopening replays
// the log up to the tear and starts a new one, after which writes are safe
// again. Before closing, a small synced file in the directory checks that
// the disk takes writes at all, so a disk that is still failing keeps its
// database open for reads; if the reopen itself fails (the disk failed
// between the check and the open), every operation retries the open, and
// reads fail until it succeeds.

import fs from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import { limits } from '../limits.js';
import { messageWithCauses } from './storage.js';
import type { RangeOptions, Storage, StorageOp } from './storage.js';

/** classic-level's private batch: operations already in the binding's
 * formats (string keys, byte values), no per-operation JS. */
interface RawBatch {
  _batch(ops: readonly ({ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string })[], options: { sync: boolean }): Promise<void>;
}

/** The scratch file of the disk check before a reopen (LevelDB ignores
 * files whose names it does not know). */
const diskCheckFile = 'TUNEKV-DISK-CHECK';

export class LevelStorage implements Storage {
  private readonly db: Level<string, Uint8Array>;
  /** A write failed: the log may hold a torn record; reopen before writing. */
  private torn = false;
  /** The recovery closed the database and could not open it again. */
  private closedByRecovery = false;
  private recovery: Promise<void> | undefined;

  constructor(readonly location: string) {
    // Sized in limits.ts and counted in a node's memory budget (README).
    this.db = new Level<string, Uint8Array>(location, {
      keyEncoding: 'utf8', valueEncoding: 'view',
      cacheSize: limits.levelBlockCacheBytes, writeBufferSize: limits.levelWriteBufferBytes,
    });
  }

  /** The error to throw for `err`: its causes in the message, code kept. */
  private failure(err: unknown): Error {
    let message = messageWithCauses(err);
    if (!message.includes(this.location)) message += ` (LevelDB at ${this.location})`;
    const out = new Error(message, { cause: err });
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string') Object.assign(out, { code });
    return out;
  }

  async open(): Promise<void> {
    try {
      await this.db.open();
    } catch (err) {
      throw this.failure(err);
    }
  }

  async close(): Promise<void> {
    try {
      await this.recovery?.catch(() => {});
      await this.db.close();
    } catch (err) {
      throw this.failure(err);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      await this.readable();
      // Synchronous while open: LevelDB answers a point read from its block
      // cache or the OS page cache in a few microseconds, and the thread
      // pool hop of an async read cost five times the CPU (31 µs against
      // 6 µs per read, 100k keys, on this machine). The price: a read that
      // must go to a disk holds the event loop for that disk's latency, so a
      // node whose data is far larger than its memory pays it in every
      // request's latency (README, Where the CPU goes).
      const value = this.db.status === 'open' ? this.db.getSync(key) : await this.db.get(key);
      return value ?? undefined;
    } catch (err) {
      throw this.failure(err);
    }
  }

  async write(ops: readonly StorageOp[], sync: boolean): Promise<void> {
    const batch = ops.map((op) => (op.value === null
      ? { type: 'del' as const, key: op.key }
      : { type: 'put' as const, key: op.key, value: op.value }));
    try {
      if (this.torn || this.closedByRecovery) await this.recover();
      // Straight to the binding while the database is open: abstract-level's
      // batch() clones, validates and re-encodes every operation in JS, which
      // measured 40% of a small batch's CPU here. Our keys are strings and
      // our values bytes, the binding's own formats (utf8 keys, view values),
      // so there is nothing to encode. Any other state takes the checked path,
      // which waits for an opening database or throws for a closed one.
      if (this.db.status === 'open') await (this.db as unknown as RawBatch)._batch(batch, { sync });
      else await this.db.batch(batch, { sync });
    } catch (err) {
      this.torn = true;
      throw this.failure(err);
    }
  }

  async range(opts: RangeOptions): Promise<[string, Uint8Array][]> {
    try {
      await this.readable();
      return await this.db.iterator({ gte: opts.gte, lt: opts.lt, limit: opts.limit }).all();
    } catch (err) {
      throw this.failure(err);
    }
  }

  scanSnapshot(range: { readonly gte: string; readonly lt: string }, pageMax: number): AsyncGenerator<[string, Uint8Array][]> {
    // LevelDB takes the iterator's snapshot when it is created, here,
    // before the generator first runs.
    const it = this.db.iterator({ gte: range.gte, lt: range.lt });
    const failure = (err: unknown): Error => this.failure(err);
    return (async function* pages() {
      try {
        // nextv() returns at most pageMax entries, fewer when its byte
        // budget fills first: only an empty answer means the end.
        for (;;) {
          const page = await it.nextv(pageMax).catch((err: unknown) => { throw failure(err); });
          if (page.length === 0) return;
          yield page;
        }
      } finally {
        await it.close().catch(() => {});
      }
    })();
  }

  /** Reads wait out a reopen under way, and retry one that failed. */
  private async readable(): Promise<void> {
    if (this.recovery) await this.recovery.catch(() => {});
    if (this.closedByRecovery) await this.recover();
  }

  /** Reopens the database (one recovery at a time). */
  private recover(): Promise<void> {
    this.recovery ??= this.reopen().finally(() => { this.recovery = undefined; });
    return this.recovery;
  }

  private async reopen(): Promise<void> {
    if (!this.closedByRecovery) {
      await this.checkDisk();
      await this.db.close();
      this.closedByRecovery = true;
    }
    await this.db.open();
    this.closedByRecovery = false;
    this.torn = false;
  }

  /** Throws unless the directory takes a small synced write. */
  private async checkDisk(): Promise<void> {
    const file = path.join(this.location, diskCheckFile);
    const handle = await fs.open(file, 'w');
    try {
      await handle.writeFile('tunekv disk check\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.unlink(file);
  }
}
