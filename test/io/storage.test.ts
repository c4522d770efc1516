// One conformance suite, run against both Storage implementations.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LevelStorage } from '../../src/io/level-storage.js';
import { scanRange } from '../../src/io/scan.js';
import { MemoryStorage, byteOrder } from '../../src/io/storage.js';
import type { Storage } from '../../src/io/storage.js';
import { ObjectStore } from '../../src/server/object-store.js';
import { update } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import { partitionKeyRange, dataKey } from '../../src/server/keyspace.js';
import { keyHash, partitionOfHash } from '../../src/core/ring/hash.js';

const impls: [string, () => { storage: Storage; reopen: () => Storage }][] = [
  ['memory', () => { const s = new MemoryStorage(); return { storage: s, reopen: () => s }; }],
  ['level', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-storage-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    return { storage: new LevelStorage(dir), reopen: () => new LevelStorage(dir) };
  }],
];

for (const [name, make] of impls) {
  t.test(`${name}: batches, reads, ranges and reopening`, async (t) => {
    const { storage, reopen } = make();
    await storage.open();
    await storage.write([{ key: 'b', value: Buffer.from('2') }, { key: 'a', value: Buffer.from('1') }, { key: 'c', value: Buffer.from('3') }], false);
    t.same(Buffer.from((await storage.get('a'))!).toString(), '1');
    t.equal(await storage.get('zz'), undefined);
    await storage.write([{ key: 'a', value: Buffer.from('x') }, { key: 'a', value: Buffer.from('y') }, { key: 'b', value: null }], true);
    t.same(Buffer.from((await storage.get('a'))!).toString(), 'y', 'a later op in a batch wins');
    t.equal(await storage.get('b'), undefined, 'deleted');
    const range = await storage.range({ gte: 'a', lt: 'z', limit: 10 });
    t.same(range.map(([k]) => k), ['a', 'c'], 'byte order');
    t.same((await storage.range({ gte: 'a', lt: 'z', limit: 1 })).length, 1, 'limit');
    await storage.close();
    const again = reopen();
    await again.open();
    t.same(Buffer.from((await again.get('c'))!).toString(), '3', 'survives close and open');
    await again.close();
  });

  t.test(`${name}: the object store groups concurrent writes into batches`, async (t) => {
    const { storage } = make();
    await storage.open();
    const store = new ObjectStore(storage, false);
    const writes = Array.from({ length: 200 }, (_, i) => store.mutate(`k${i}`, (cur) =>
      update(cur, { actor: 'n1', value: Buffer.from(String(i)), vtype: 1, context: emptyClock, nowMs: 1, lww: false, wid: null })));
    const results = await Promise.all(writes);
    await Promise.all(results.map((r) => r.durable));
    t.ok(store.stats.batches < 50, `200 writes in ${store.stats.batches} batches`);
    t.equal(store.stats.batchedWrites, 200);
    const o = await store.read('k7');
    t.same(Buffer.from(o!.siblings[0]!.value!).toString(), '7');
    // Same key: serialized, each mutation sees the previous one.
    const same = await Promise.all(Array.from({ length: 20 }, () => store.mutate('hot', (cur) =>
      update(cur, { actor: 'n1', value: Buffer.from('v'), vtype: 1, context: emptyClock, nowMs: 1, lww: false, wid: null }))));
    await Promise.all(same.map((r) => r.durable));
    const hot = await store.read('hot');
    const first = hot!.siblings[0]!.counter;
    t.same(hot!.siblings.map((s) => s.counter), Array.from({ length: 20 }, (_, i) => first + i), 'twenty distinct dots, none reused');
    await store.drain();
    await storage.close();
  });
}

for (const [name, make] of impls) {
  t.test(`${name}: scanRange pages through a range in byte order, past keys deleted behind it`, async (t) => {
    const { storage } = make();
    await storage.open();
    // Astral characters sort above U+E000..U+FFFF in UTF-8 (LevelDB's
    // order) but below them in UTF-16 (JS's <): the twin must agree.
    const keys = ['s:a', 's:b', 's:\ue000', 's:\uffff', 's:\u{1f600}', 's:\u{10ffff}', 's:c\u{1f600}', 's:c\uffff'];
    await storage.write(keys.map((key) => ({ key, value: Buffer.from(key) })), false);
    await storage.write([{ key: 'r', value: Buffer.from('before') }, { key: 't', value: Buffer.from('after') }], false);
    const seen: string[] = [];
    const pages: number[] = [];
    for await (const page of scanRange(storage, { gte: 's:', lt: 's;' }, 3)) {
      pages.push(page.length);
      for (const [k] of page) seen.push(k);
      // Deleting what was just read must not disturb the cursor.
      await storage.write(page.map(([k]) => ({ key: k, value: null })), false);
    }
    t.same(seen, [...keys].sort(byteOrder), 'every key once, in byte order');
    t.same(seen, ['s:a', 's:b', 's:c\uffff', 's:c\u{1f600}', 's:\ue000', 's:\uffff', 's:\u{1f600}', 's:\u{10ffff}'], 'astral above U+FFFF');
    t.same(pages, [3, 3, 2], 'pages of at most pageMax');
    t.same((await storage.range({ gte: 's:', lt: 's;', limit: 10 })).length, 0);
    t.ok(await storage.get('r') && await storage.get('t'), 'nothing outside the range touched');
    const none: unknown[] = [];
    for await (const page of scanRange(storage, { gte: 'x', lt: 'y' })) none.push(page);
    t.same(none, [], 'an empty range yields no page');
    await t.rejects(async () => { for await (const _ of scanRange(storage, { gte: 'a', lt: 'b' }, 0)) { /* nothing */ } }, TypeError);
    await storage.close();
  });
}

for (const [name, make] of impls) {
  t.test(`${name}: scanSnapshot sees the range as it was when called, every key once, whatever the page`, async (t) => {
    const { storage } = make();
    await storage.open();
    // 3,000 keys of 200 bytes: more than LevelDB's iterator hands out at
    // once (nextv stops at its byte budget before pageMax), so pages come
    // out shorter than asked without the range having ended.
    const keys = Array.from({ length: 3000 }, (_, i) => `s:${String(i).padStart(5, '0')}`);
    await storage.write(keys.map((key) => ({ key, value: Buffer.alloc(200, 1) })), false);
    await storage.write([{ key: 'r', value: Buffer.from('outside') }], false);
    const scan = storage.scanSnapshot!({ gte: 's:', lt: 's;' }, 2500);
    // Changes after the call: none of them is seen.
    await storage.write([{ key: 's:00000', value: null }, { key: 's:99999', value: Buffer.from('late') }, { key: 's:00001', value: Buffer.alloc(1, 2) }], false);
    const seen: string[] = [];
    for await (const page of scan) {
      t.ok(page.length > 0 && page.length <= 2500, `a page of ${page.length}`);
      for (const [k, v] of page) {
        seen.push(k);
        if (k === 's:00001') t.equal(v.length, 200, 'the value as it was');
      }
    }
    t.same(seen, keys, 'every key of the snapshot once, in order; none added or removed after');
    const stopped = storage.scanSnapshot!({ gte: 's:', lt: 's;' }, 10);
    await stopped.next();
    await stopped.return(undefined);
    await storage.close();
  });
}

t.test('memory: the fault switches fail writes (applying nothing) and reads', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  await storage.write([{ key: 'a', value: Buffer.from('1') }], false);
  storage.failWrites = new Error('IO error: No space left on device');
  await t.rejects(storage.write([{ key: 'a', value: null }, { key: 'b', value: Buffer.from('2') }], false), /No space left/);
  storage.failWrites = null;
  t.ok(await storage.get('a'), 'the failed batch applied nothing');
  t.equal(await storage.get('b'), undefined);
  storage.failReads = new Error('IO error: Input/output error');
  await t.rejects(storage.get('a'), /Input\/output/);
  await t.rejects(storage.range({ gte: 'a', lt: 'z', limit: 1 }), /Input\/output/);
});

t.test('a partition is one contiguous storage range', async (t) => {
  const q = 64;
  for (const key of ['a', 'b', 'cart:42', 'zebra', '\u00e9t\u00e9']) {
    const p = partitionOfHash(keyHash(key), q);
    const { gte, lt } = partitionKeyRange(p, q);
    const sk = dataKey(key);
    t.ok(sk >= gte && sk < lt, `${key} in partition ${p}'s range`);
    const other = partitionKeyRange((p + 1) % q, q);
    t.notOk(sk >= other.gte && sk < other.lt, `${key} not in the next partition's range`);
  }
});
