// Storage: an ordered byte map with atomic batches. Two implementations keep
// the same contract (test/io/storage.test.ts runs one suite against both):
// LevelStorage on disk, MemoryStorage for tests and the simulator.
//
// Contract: write() applies a batch atomically and in order (a later op on
// the same key wins) and resolves once durable to the level asked (`sync`
// means fsync'd); a write that rejects has applied nothing; get() sees every
// resolved write; range() returns keys in byte order. Values handed in are
// copied or treated as immutable. Errors say what failed and why in their
// message (LevelStorage folds LevelDB's cause into it), so one log line is
// enough to act on.

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
  /** A range as it is at the moment of the call (a snapshot, taken before
   * this returns: writes after the call are never seen), a page of at most
   * pageMax entries at a time. The caller must run it to the end or call
   * return() on it before close(). Optional: without it, a node rebuilds
   * its anti-entropy hashes before it serves. */
  scanSnapshot?(range: { readonly gte: string; readonly lt: string }, pageMax: number): AsyncGenerator<[string, Uint8Array][]>;
}

/** In-memory twin. Survives close()/open() like a disk, so the simulator can
 * crash and restart a node on "its data". */
export class MemoryStorage implements Storage {
  private readonly data = new Map<string, Uint8Array>();
  private opened = false;
  /** Fault switches for tests and the simulator: while set, every write()
   * (or get() and range()) rejects with this error and changes nothing, as
   * a full or failing disk would. */
  failWrites: Error | null = null;
  failReads: Error | null = null;

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
    if (this.failReads) throw this.failReads;
    return this.data.get(key);
  }

  async write(ops: readonly StorageOp[], _sync: boolean): Promise<void> {
    this.check();
    if (this.failWrites) throw this.failWrites;
    for (const op of ops) {
      if (op.value === null) this.data.delete(op.key);
      else this.data.set(op.key, Uint8Array.from(op.value));
    }
  }

  scanSnapshot(range: { readonly gte: string; readonly lt: string }, pageMax: number): AsyncGenerator<[string, Uint8Array][]> {
    this.check();
    // Values are never mutated in place (write() stores copies), so the
    // entries as they are now are the snapshot.
    const inRange = (k: string): boolean => byteOrder(k, range.gte) >= 0 && byteOrder(k, range.lt) < 0;
    const entries = [...this.data.entries()].filter(([k]) => inRange(k)).sort(([a], [b]) => byteOrder(a, b));
    const self = this;
    return (async function* pages() {
      for (let at = 0; at < entries.length; at += pageMax) {
        if (self.failReads) throw self.failReads;
        yield entries.slice(at, at + pageMax);
      }
    })();
  }

  async range(opts: RangeOptions): Promise<[string, Uint8Array][]> {
    this.check();
    if (this.failReads) throw this.failReads;
    // Bounds compare in byte order too: JS's < is UTF-16 order, which puts
    // astral characters below U+E000..U+FFFF where LevelDB puts them above.
    // Against a bound with no unit >= U+D800 the two orders agree, so the
    // common case keeps the native comparison.
    const { gte, lt } = opts;
    const inRange = highUnit.test(gte) || highUnit.test(lt)
      ? (k: string) => byteOrder(k, gte) >= 0 && byteOrder(k, lt) < 0
      : (k: string) => k >= gte && k < lt;
    const keys = [...this.data.keys()].filter(inRange).sort(byteOrder);
    return keys.slice(0, opts.limit).map((k) => [k, this.data.get(k)!]);
  }
}

/** A UTF-16 unit where UTF-16 and UTF-8 orders can part: a surrogate or U+E000..U+FFFF. */
const highUnit = /[\ud800-\uffff]/;

/** UTF-8 byte order, which is LevelDB's order for utf8 keys. It is code
 * point order, which differs from UTF-16 order only where a surrogate (half
 * of an astral code point, >= U+10000) meets U+E000..U+FFFF; compared unit
 * by unit, without encoding. */
export function byteOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Causes followed when building a message; level nests one or two. */
const causeDepthMax = 8;

/** "outer: cause: cause's cause", each message once. */
export function messageWithCauses(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < causeDepthMax && e !== undefined && e !== null; depth++) {
    const msg = e instanceof Error ? e.message : String(e);
    if (msg.length > 0 && !parts.some((p) => p.includes(msg))) parts.push(msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}
