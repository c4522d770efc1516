// LevelDB storage through `level` (classic-level): one database per node.
// Keys are utf8 strings, values raw bytes ('view' encoding: no JSON, no copy).

import { Level } from 'level';
import type { RangeOptions, Storage, StorageOp } from './storage.js';

export class LevelStorage implements Storage {
  private readonly db: Level<string, Uint8Array>;

  constructor(readonly location: string) {
    this.db = new Level<string, Uint8Array>(location, { keyEncoding: 'utf8', valueEncoding: 'view' });
  }

  async open(): Promise<void> {
    await this.db.open();
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const value = await this.db.get(key);
    return value ?? undefined;
  }

  async write(ops: readonly StorageOp[], sync: boolean): Promise<void> {
    const batch = ops.map((op) => (op.value === null
      ? { type: 'del' as const, key: op.key }
      : { type: 'put' as const, key: op.key, value: op.value }));
    await this.db.batch(batch, { sync });
  }

  async range(opts: RangeOptions): Promise<[string, Uint8Array][]> {
    return this.db.iterator({ gte: opts.gte, lt: opts.lt, limit: opts.limit }).all();
  }
}
