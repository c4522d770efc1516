// The object store when the disk says no: a failed batch rolls the cache,
// the overlay and the change feed back to what storage holds (also when a
// second write of the key was staged on top before the failure was known),
// and an undecodable stored object is set aside instead of failing reads.
import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import { SegmentHashes } from '../../src/core/antientropy/segments.js';
import { keyHash } from '../../src/core/ring/hash.js';
import { TuneKvError } from '../../src/errors.js';
import { ManualClock } from '../../src/io/clock.js';
import { scanRange } from '../../src/io/scan.js';
import { MemoryStorage } from '../../src/io/storage.js';
import type { RangeOptions, Storage, StorageOp } from '../../src/io/storage.js';
import { pack } from '../../src/protocol/codec.js';
import { decodeObject } from '../../src/protocol/object-codec.js';
import { DiskHealth, probeStorage } from '../../src/server/disk-health.js';
import { dataKey, dataKeyRange, quarantineKey, userKeyOf } from '../../src/server/keyspace.js';
import { ObjectStore, unknown } from '../../src/server/object-store.js';

const put = (cur: VersionedObject | undefined, value: string, actor = 'n1'): VersionedObject =>
  update(cur, { actor, value: Buffer.from(value), vtype: 1, context: cur?.clock ?? emptyClock, nowMs: 1_700_000_000_000, lww: false, wid: null });

const valueOf = (o: VersionedObject | undefined): string[] => (o ? o.siblings.map((s) => Buffer.from(s.value ?? []).toString()) : []);

/** Segment hashes of everything storage holds: what a restart would build. */
async function hashesOf(storage: Storage): Promise<Uint32Array> {
  const h = new SegmentHashes();
  for await (const page of scanRange(storage, dataKeyRange)) {
    for (const [sk, bytes] of page) h.update(userKeyOf(sk), keyHash(userKeyOf(sk)), undefined, decodeObject(bytes));
  }
  return h.words;
}

/** A store whose change feed drives segment hashes, as the node's does. */
function feedOf(store: ObjectStore): SegmentHashes {
  const h = new SegmentHashes();
  store.onChange = (key, hash, before, after) => h.update(key, hash, before, after);
  return h;
}

/** Waits until every step queued on the key so far has run (a removal
 * that declines runs after them, and writes nothing). */
const settled = (store: ObjectStore, key: string): Promise<unknown> => store.remove(key, () => false);

/** Memory storage whose writes wait until the test lets each one go. */
class GatedStorage implements Storage {
  readonly inner = new MemoryStorage();
  private readonly parked: { ops: readonly StorageOp[]; go: (err: Error | null) => void }[] = [];

  open(): Promise<void> { return this.inner.open(); }
  close(): Promise<void> { return this.inner.close(); }
  get(key: string): Promise<Uint8Array | undefined> { return this.inner.get(key); }
  range(opts: RangeOptions): Promise<[string, Uint8Array][]> { return this.inner.range(opts); }

  write(ops: readonly StorageOp[], sync: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.parked.push({ ops, go: (err) => (err ? reject(err) : this.inner.write(ops, sync).then(resolve, reject)) });
    });
  }

  /** Waits for the next batch to arrive; returns its keys. */
  async next(): Promise<string[]> {
    for (let i = 0; i < 1000 && this.parked.length === 0; i++) await new Promise<void>((r) => setImmediate(r));
    if (this.parked.length === 0) throw new Error('no batch arrived');
    return this.parked[0]!.ops.map((o) => o.key);
  }

  /** Lets the oldest parked batch land (err null) or fail. */
  async release(err: Error | null): Promise<void> {
    await this.next();
    this.parked.shift()!.go(err);
  }
}

const diskFull = () => new Error('IO error: /data/000003.log: No space left on device');

t.test('a failed write: the cache, overlay and change feed go back to storage; the node goes read-only until a probe succeeds', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const clock = new ManualClock();
  const changes: string[] = [];
  const health = new DiskHealth({ clock, probe: probeStorage(storage), nodeId: 'n1', onStateChange: (from, to, cause) => changes.push(`${from}->${to}: ${cause}`) });
  const store = new ObjectStore(storage, false, { health });
  const feed = feedOf(store);

  const a = await store.mutate('k', (cur) => put(cur, 'a'));
  await a.durable;
  storage.failWrites = diskFull();
  const b = await store.mutate('k', (cur) => put(cur, 'b'));
  const err = await b.durable.then(() => null, (e: unknown) => e);
  t.ok(err instanceof TuneKvError && err.code === 'STORAGE_FAILED', 'the write rejects with STORAGE_FAILED');
  t.match((err as TuneKvError).details.cause, /No space left on device/, 'carrying the cause');
  await settled(store, 'k');

  t.same(valueOf(await store.read('k')), ['a'], 'reads serve what storage holds, not the rejected object');
  t.same(valueOf(store.peek('k') as VersionedObject), ['a'], 'the cache too');
  t.same(feed.words, await hashesOf(storage), 'segment hashes match storage again');
  t.equal(store.stats.rollbacks, 1);
  t.equal(store.keysInDoubt, 0);

  t.equal(health.state, 'unhealthy');
  t.same(changes, ['healthy->unhealthy: IO error: /data/000003.log: No space left on device'], 'the state change is reported with its cause');
  const refused = await store.mutate('k', (cur) => put(cur, 'c')).then(() => null, (e: unknown) => e);
  t.ok(refused instanceof TuneKvError && refused.code === 'STORAGE_FAILED', 'new writes are refused up front');
  t.match((refused as TuneKvError).message, /node n1 cannot write to its storage \(IO error: .*No space left on device\)/);
  await t.rejects(store.writeRaw({ key: 'm:x', value: Buffer.from('x') }), { code: 'STORAGE_FAILED' }, 'raw writes too');
  t.same(valueOf(await store.read('k')), ['a'], 'reads go on');
  t.match(health.status(), { state: 'unhealthy', failedBatches: 1, failedWrites: 1, refusedWrites: 2, probes: 0 });

  clock.fireNext();
  await new Promise<void>((r) => setImmediate(r));
  t.match(health.status(), { state: 'unhealthy', probes: 1, failedProbes: 1 }, 'a probe on a disk still full fails');
  t.match(health.status().lastError?.message, /^probe: IO error/);
  storage.failWrites = null;
  t.equal(clock.nextDueMs(), clock.nowMs() + 5000, 'and the next one is 5 s later');
  clock.fireNext();
  await new Promise<void>((r) => setImmediate(r));
  t.equal(health.state, 'healthy', 'a probe that succeeds makes the node healthy');
  t.ok(await storage.get('m:probe'), 'the probe wrote m:probe');
  t.same(changes.at(-1), 'unhealthy->healthy: null');
  t.equal(clock.pending, 0, 'no probe is scheduled while healthy');

  // The rejected b had a fresh dot, and may sit on other replicas: the next
  // write must not mint that dot again for another value.
  const bDot = b.object!.siblings[0]!;
  const d = await store.mutate('k', (cur) => put(cur, 'd'));
  await d.durable;
  const dots = d.object!.siblings.map((s) => `${s.actor}:${s.counter}=${Buffer.from(s.value!).toString()}`);
  t.notOk(dots.some((x) => x.startsWith(`${bDot.actor}:${bDot.counter}=`) && !x.endsWith('=b')), `no dot of b reused (${dots.join(', ')})`);
  t.ok(d.object!.siblings.every((s) => s.counter > bDot.counter || s.counter === bDot.counter), 'the new dot is above the rejected one');
  t.same(feed.words, await hashesOf(storage), 'hashes still match storage');
});

/** Stages a on the key, then M1 (b) and M2 (c) with their batches failing or
 * landing as asked; returns what the key reads and whether the hashes match. */
async function twoMutations(sameBatch: boolean, m1Fails: boolean, m2Fails: boolean) {
  const storage = new GatedStorage();
  await storage.open();
  const store = new ObjectStore(storage, false);
  const feed = feedOf(store);
  const a = await store.mutate('k', (cur) => put(cur, 'a'));
  await storage.release(null);
  await a.durable;
  // A write of another key holds the flush, so k's writes queue behind it.
  const blocker = store.writeRaw({ key: 'm:other', value: Buffer.from('x') });
  await storage.next();
  const m1 = await store.mutate('k', (cur) => put(cur, 'b'));
  let m2;
  if (sameBatch) {
    m2 = await store.mutate('k', (cur) => put(cur, 'c'));
    await storage.release(null);
    await blocker;
    t.same(await storage.next(), [dataKey('k'), dataKey('k')], 'one batch holds both');
    await storage.release(m1Fails || m2Fails ? diskFull() : null);
  } else {
    await storage.release(null);
    await blocker;
    t.same(await storage.next(), [dataKey('k')], 'M1 is being written...');
    m2 = await store.mutate('k', (cur) => put(cur, 'c'));
    t.same(valueOf(m2.object), ['c'], '...when M2 builds on it');
    await storage.release(m1Fails ? diskFull() : null);
    t.same(await storage.next(), [dataKey('k')], 'M2 in the next batch');
    await storage.release(m2Fails ? diskFull() : null);
  }
  const outcome = async (p: Promise<void>) => p.then(() => 'ok', (e: TuneKvError) => e.code);
  const durable = [await outcome(m1.durable), await outcome(m2.durable)];
  const step = settled(store, 'k');
  await step;
  return {
    durable,
    read: valueOf(await store.read('k')),
    onDisk: valueOf((await storage.get(dataKey('k'))) ? decodeObject((await storage.get(dataKey('k')))!) : undefined),
    hashesMatch: Buffer.compare(Buffer.from(feed.words.buffer), Buffer.from((await hashesOf(storage)).buffer)) === 0,
    rollbacks: store.stats.rollbacks,
    inDoubt: store.keysInDoubt,
  };
}

t.test('M2 staged on top of M1 before M1 failed: one batch, both fail', async (t) => {
  const r = await twoMutations(true, true, true);
  t.same(r.durable, ['STORAGE_FAILED', 'STORAGE_FAILED']);
  t.same(r.onDisk, ['a']);
  t.same(r.read, ['a'], 'reads fall back to a');
  t.ok(r.hashesMatch, 'the feed reported c -> a');
  t.equal(r.rollbacks, 1, 'one rollback for the key, not one per write');
  t.equal(r.inDoubt, 0);
});

t.test('M2 staged on top of M1 before M1 failed: M1 fails, M2 lands', async (t) => {
  const r = await twoMutations(false, true, false);
  t.same(r.durable, ['STORAGE_FAILED', 'ok']);
  t.same(r.onDisk, ['c'], 'c is on disk, and carries b\'s history');
  t.same(r.read, ['c'], 'settling waited for M2 and read c');
  t.ok(r.hashesMatch);
  t.equal(r.rollbacks, 0, 'nothing to set back: the feed already said c');
});

t.test('M2 staged on top of M1 before M1 failed: both fail in their own batches', async (t) => {
  const r = await twoMutations(false, true, true);
  t.same(r.durable, ['STORAGE_FAILED', 'STORAGE_FAILED']);
  t.same(r.onDisk, ['a']);
  t.same(r.read, ['a']);
  t.ok(r.hashesMatch, 'c -> a, reported once');
  t.equal(r.rollbacks, 1);
});

t.test('M2 staged on top of M1: M1 lands, M2 fails', async (t) => {
  const r = await twoMutations(false, false, true);
  t.same(r.durable, ['ok', 'STORAGE_FAILED']);
  t.same(r.onDisk, ['b']);
  t.same(r.read, ['b'], 'reads fall back to b');
  t.ok(r.hashesMatch, 'c -> b');
  t.equal(r.rollbacks, 1);
});

t.test('when storage cannot be read to settle a failed write, reads go to storage and the next write settles it', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const store = new ObjectStore(storage, false);
  const feed = feedOf(store);
  await (await store.mutate('k', (cur) => put(cur, 'a'))).durable;
  storage.failWrites = diskFull();
  storage.failReads = new Error('IO error: /data/000005.ldb: Input/output error');
  const b = await store.mutate('k', (cur) => put(cur, 'b'));
  await t.rejects(b.durable, { code: 'STORAGE_FAILED' });
  await new Promise<void>((r) => setImmediate(r));
  t.equal(store.keysInDoubt, 1, 'the key stays in doubt');
  t.equal(store.peek('k'), unknown, 'the rejected object is out of the cache: the next read asks storage');
  await t.rejects(store.read('k'), /Input\/output error/, 'and storage cannot answer yet');
  storage.failReads = null;
  t.same(valueOf(await store.read('k')), ['a'], 'once it can, reads get a');
  storage.failWrites = null;
  const c = await store.mutate('k', (cur) => put(cur, 'c'));
  await c.durable;
  t.equal(store.keysInDoubt, 0, 'the next write settled the doubt first');
  t.same(feed.words, await hashesOf(storage), 'and the hashes match storage');
  t.same(valueOf(await store.read('k')), ['c']);
  t.ok(c.object!.siblings[0]!.counter > b.object!.siblings[0]!.counter, 'c was built on b (kept for the next write), so its dot is above b\'s');
});

/** An object an older buggy version could have written: a clock counter above 2^53. */
const unloadable = pack([[['n1', 2 ** 53 + 2, 1]], [['n1', 2 ** 53 + 2, 1, 1, 0, Buffer.from('x'), null]]]);

t.test('an undecodable stored object is set aside on read, counted and logged, and the key reads as absent', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const lines: string[] = [];
  const store = new ObjectStore(storage, false, { log: (l) => lines.push(l) });
  await storage.write([{ key: dataKey('bad'), value: unloadable }], false);
  t.equal(await store.read('bad'), undefined, 'reads as absent');
  await settled(store, 'bad');
  t.equal(await storage.get(dataKey('bad')), undefined, 'gone from the data range');
  t.same(Buffer.from((await storage.get(quarantineKey(dataKey('bad'))))!), unloadable, 'kept byte for byte under q');
  t.equal(store.stats.quarantined, 1);
  t.match(lines.join('\n'), /key "bad".*clock counter must be a positive integer/, 'logged with the key and the reason');
  t.equal(await store.read('bad'), undefined, 'read again: absent, not set aside twice');
  t.equal(store.stats.quarantined, 1);
  const m = await store.mutate('bad', (cur) => put(cur, 'fresh'));
  await m.durable;
  t.same(valueOf(await store.read('bad')), ['fresh'], 'a replica write restores the key');
});

t.test('a write staged on top of an undecodable object is kept: only a copy is set aside', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const lines: string[] = [];
  const store = new ObjectStore(storage, false, { log: (l) => lines.push(l) });
  await storage.write([{ key: dataKey('bad'), value: unloadable }], false);
  const m = await store.mutate('bad', (cur) => (t.equal(cur, undefined, 'the mutation sees the key absent'), put(cur, 'new')));
  await m.durable;
  await settled(store, 'bad');
  t.same(valueOf(decodeObject((await storage.get(dataKey('bad')))!)), ['new'], 'the new object is not deleted');
  t.ok(await storage.get(quarantineKey(dataKey('bad'))), 'the old bytes are kept under q');
  t.equal(store.stats.quarantined, 1);
  t.match(lines.join('\n'), /already holds a newer object/);
});
