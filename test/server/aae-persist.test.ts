// Persisted anti-entropy hashes: a clean stop writes them, the next open
// takes them instead of scanning every key, and they are never trusted when
// they may be stale: after a crash (the copy is removed at open, so a crash
// leaves none), or when the copy is damaged. A stale copy is worse than
// none: replicas that differ would compare equal.
import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import { SegmentHashes, decodeSegmentHashes, encodeSegmentHashes } from '../../src/core/antientropy/segments.js';
import { keyHash } from '../../src/core/ring/hash.js';
import { scanRange } from '../../src/io/scan.js';
import type { Storage } from '../../src/io/storage.js';
import { decodeObject, encodeObject } from '../../src/protocol/object-codec.js';
import { aaeHashesKey, dataKey, dataKeyRange, userKeyOf } from '../../src/server/keyspace.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

const version = (value: string) =>
  update(undefined, { actor: 'n1', value: Buffer.from(value), vtype: 1, context: emptyClock, nowMs: 1, lww: false, wid: null });

/** What a scan of storage would build. */
async function scanned(storage: Storage): Promise<SegmentHashes> {
  const h = new SegmentHashes();
  for await (const page of scanRange(storage, dataKeyRange)) {
    for (const [sk, bytes] of page) h.update(userKeyOf(sk), keyHash(userKeyOf(sk)), undefined, decodeObject(bytes));
  }
  return h;
}

async function writeKeys(c: MemoryCluster, id: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) await (await c.node(id).store.mutate(`k${i}`, () => version(`v${i}`))).durable;
}

/** A key written behind the node's back (the node is stopped): if the next
 * open took a persisted copy, its hashes miss this key. */
async function writeBehind(storage: Storage, key: string): Promise<void> {
  await storage.open();
  await storage.write([{ key: dataKey(key), value: encodeObject(version('behind')) }], false);
  await storage.close();
}

function sameHashes(a: SegmentHashes, b: SegmentHashes): boolean {
  return Buffer.from(a.words.buffer).equals(Buffer.from(b.words.buffer)) && a.keys === b.keys && a.valueBytes === b.valueBytes
    && Buffer.from(a.keyCounts.buffer).equals(Buffer.from(b.keyCounts.buffer));
}

t.test('a clean stop persists the hashes; the next open takes them and removes them from storage', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  await writeKeys(c, 'n1', 0, 50);
  const before = c.node('n1').aae.hashes;
  const storage = c.storages.get('n1')!;
  await c.node('n1').close();
  await storage.open();
  const copy = await storage.get(aaeHashesKey);
  await storage.close();
  t.ok(copy !== undefined, 'written at the clean stop');
  await writeBehind(storage, 'behind');
  const node = await c.startNode('n1');
  t.ok(sameHashes(node.aae.hashes, before), 'the persisted copy was taken (it does not know the key written behind its back)');
  t.equal(await storage.get(aaeHashesKey), undefined, 'and removed before anything could write');
  t.equal(node.aae.hashes.keys, 50);
  await c.stopAll();
});

t.test('a crash after an open from the persisted copy leaves no copy: the next open scans', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  await writeKeys(c, 'n1', 0, 30);
  const storage = c.storages.get('n1')!;
  await c.node('n1').close();
  await c.crash('n1');
  await c.startNode('n1');
  // Writes after the open from the copy, then a crash (no clean stop).
  await writeKeys(c, 'n1', 30, 60);
  await c.crash('n1');
  await writeBehind(storage, 'behind');
  const node = await c.startNode('n1');
  await node.aae.whenBuilt();
  t.ok(node.aae.ready);
  t.ok(sameHashes(node.aae.hashes, await scanned(storage)), 'rebuilt from storage: every key, the late writes and the one behind its back');
  t.equal(node.aae.hashes.keys, 61);
  await c.stopAll();
});

t.test('a damaged persisted copy is never trusted: the open scans', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  await writeKeys(c, 'n1', 0, 20);
  const storage = c.storages.get('n1')!;
  await c.node('n1').close();
  await c.crash('n1');
  await storage.open();
  const copy = Buffer.from((await storage.get(aaeHashesKey))!);
  copy[100] = copy[100]! ^ 1;
  await storage.write([{ key: aaeHashesKey, value: copy }], false);
  await storage.close();
  await writeBehind(storage, 'behind');
  const node = await c.startNode('n1');
  await node.aae.whenBuilt();
  t.ok(sameHashes(node.aae.hashes, await scanned(storage)), 'rebuilt from storage');
  t.equal(await storage.get(aaeHashesKey), undefined, 'the damaged copy is gone');
  await c.stopAll();
});

t.test('a background rebuild with writes, overwrites and removals racing it ends with the hashes of storage', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  await writeKeys(c, 'n1', 0, 300);
  const storage = c.storages.get('n1')!;
  await c.crash('n1');
  // Small pages, so the scan and the writes below take turns.
  const scan = storage.scanSnapshot.bind(storage);
  storage.scanSnapshot = (range, _pageMax) => scan(range, 7);
  const node = await c.startNode('n1');
  t.notOk(node.aae.ready, 'rebuilding');
  t.throws(() => node.aae.segmentsFor({ partition: 0, q: c.ring.q }), { code: 'UNAVAILABLE' }, 'a peer is not shown a partial summary');
  await t.rejects(node.aae.exchangeStrict(c.ring, 0, 'n2'), { code: 'UNAVAILABLE' }, 'and no exchange runs from here');
  const racing: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i += 3) {
    racing.push(node.store.mutate(`k${i}`, (cur) => update(cur, { actor: 'n1', value: Buffer.from('new'), vtype: 1, context: cur?.clock ?? emptyClock, nowMs: 2, lww: false, wid: null })).then((m) => m.durable));
    racing.push(node.store.remove(`k${i + 1}`, () => true));
    racing.push(node.store.mutate(`fresh${i}`, () => version(`f${i}`)).then((m) => m.durable));
  }
  await Promise.all(racing);
  await node.aae.whenBuilt();
  await node.store.drain();
  t.ok(node.aae.ready, 'built');
  t.ok(sameHashes(node.aae.hashes, await scanned(storage)), 'the summary of storage as it is now');
  t.equal(node.aae.hashes.keys, 300, '300 - 100 removed + 100 new');
  storage.scanSnapshot = scan;
  await c.stopAll();
});

t.test('a stop during a background rebuild persists nothing, and the next open rebuilds', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  await writeKeys(c, 'n1', 0, 100);
  const storage = c.storages.get('n1')!;
  await c.crash('n1');
  const scan = storage.scanSnapshot.bind(storage);
  storage.scanSnapshot = (range, _pageMax) => scan(range, 3);
  const node = await c.startNode('n1');
  t.notOk(node.aae.ready);
  await node.close();
  t.equal(await (async () => { await storage.open(); const v = await storage.get(aaeHashesKey); await storage.close(); return v; })(), undefined,
    'no copy of a partial summary');
  storage.scanSnapshot = scan;
  await c.crash('n1');
  const again = await c.startNode('n1');
  await again.aae.whenBuilt();
  t.ok(sameHashes(again.aae.hashes, await scanned(storage)));
  await c.stopAll();
});

t.test('a stop with a write in doubt persists nothing', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  await writeKeys(c, 'n1', 0, 5);
  const storage = c.storages.get('n1')!;
  storage.failWrites = new Error('disk full');
  const m = await c.node('n1').store.mutate('doubted', () => version('x'));
  await m.durable.catch(() => {});
  storage.failWrites = null;
  t.ok(c.node('n1').store.keysInDoubt > 0 || !c.node('n1').health.writable, 'the failed write left the node unsure of its hashes');
  await c.node('n1').close();
  t.equal(await (async () => { await storage.open(); const v = await storage.get(aaeHashesKey); await storage.close(); return v; })(), undefined,
    'no copy');
  await c.stopAll();
});

t.test('the persisted form: round trip, and every damaged or foreign form refused with a reason', async (t) => {
  const h = new SegmentHashes();
  for (let i = 0; i < 100; i++) h.update(`k${i}`, keyHash(`k${i}`), undefined, version(`v${i}`));
  const bytes = encodeSegmentHashes(h);
  const back = decodeSegmentHashes(bytes);
  t.ok(typeof back !== 'string' && sameHashes(back, h), 'round trip');
  t.match(decodeSegmentHashes(bytes.subarray(0, bytes.length - 1)), /bytes, not/, 'truncated');
  for (const at of [0, 8, 30, bytes.length - 1]) {
    const bad = Buffer.from(bytes);
    bad[at] = bad[at]! ^ 0x80;
    t.equal(typeof decodeSegmentHashes(bad), 'string', `a flipped bit at ${at}`);
  }
});
