// Storage: an ordered byte map with atomic batches. Two implementations keep
// the same contract (test/io/storage.test.ts runs one suite against both):
// LevelStorage on disk, MemoryStorage for tests and the simulator.
//
// Contract: write() applies a batch atomically and in order (a later op on
// the same key wins) and resolves once durable to the level asked (`sync`
// means fsync'd); get() sees every resolved write; range() returns keys in
// byte order. Values handed in are copied or treated as immutable.

export type StorageOp =
  | { readonly key: string; readonly value: Uint8Array }
  | { readonly key: string; readonly value: null };

export interface RangeOptions {
  readonly gte: string;
  readonly lt: string;
  readonly limit: number;
}

export interface Storage {
  open(): Promise<void>;
  close(): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  write(ops: readonly StorageOp[], sync: boolean): Promise<void>;
  range(opts: RangeOptions): Promise<[string, Uint8Array][]>;
}

/** In-memory twin. Survives close()/open() like a disk, so the simulator can
 * crash and restart a node on "its data". */
export class MemoryStorage implements Storage {
  private readonly data = new Map<string, Uint8Array>();
  private opened = false;
  /** Writes applied, for tests that check group commit. */
  batches = 0;

  async open(): Promise<void> {
    this.opened = true;
  }

  async close(): Promise<void> {
    this.opened = false;
  }

  private check(): void {
    if (!this.opened) throw new Error('storage is not open');
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check();
    return this.data.get(key);
  }

  async write(ops: readonly StorageOp[], _sync: boolean): Promise<void> {
    this.check();
    this.batches++;
    for (const op of ops) {
      if (op.value === null) this.data.delete(op.key);
      else this.data.set(op.key, Uint8Array.from(op.value));
    }
  }

  async range(opts: RangeOptions): Promise<[string, Uint8Array][]> {
    this.check();
    const keys = [...this.data.keys()].filter((k) => k >= opts.gte && k < opts.lt).sort(byteOrder);
    return keys.slice(0, opts.limit).map((k) => [k, this.data.get(k)!]);
  }

  get size(): number {
    return this.data.size;
  }
}

/** UTF-8 byte order, which is LevelDB's order for utf8 keys. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
