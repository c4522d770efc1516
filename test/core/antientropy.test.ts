// Anti-entropy: segment hashes and exchanges between real nodes on the
// in-memory network.
import t from 'tap';
import { sameVersions, update } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import { SegmentHashes, differingSegments, elementHash, partitionSegments, segmentOfHash } from '../../src/core/antientropy/segments.js';
import { keyHash } from '../../src/core/ring/hash.js';
import { partitionOfKey, preferenceListForKey } from '../../src/core/ring/ring.js';
import { limits } from '../../src/limits.js';
import { pack } from '../../src/protocol/codec.js';
import { RateLimiter } from '../../src/server/context.js';
import { dataKey, quarantineKey, segmentOfStorageKey } from '../../src/server/keyspace.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

const version = (actor: string, value: string) =>
  update(undefined, { actor, value: Buffer.from(value), vtype: 1, context: emptyClock, nowMs: 1, lww: false, wid: null });

t.test('segment hashes count the keys and value bytes they summarise, per partition and segment', async (t) => {
  const h = new SegmentHashes();
  const keys = Array.from({ length: 500 }, (_, i) => `key-${i}`);
  for (const k of keys) h.update(k, keyHash(k), undefined, version('n1', 'abc'));
  t.equal(h.keys, 500, 'every key counted once');
  t.equal(h.valueBytes, 1500, 'three value bytes each');
  const q = 8;
  let total = 0;
  for (let p = 0; p < q; p++) {
    const inP = keys.filter((k) => Math.floor(segmentOfHash(keyHash(k)) / partitionSegments(0, q).count) === p);
    t.equal(h.partitionKeys(p, q), inP.length, `partition ${p} holds ${inP.length}`);
    total += h.partitionKeys(p, q);
    // After a key's segment: exactly the keys of later segments.
    const k = inP[0]!;
    const seg = segmentOfStorageKey(dataKey(k));
    t.equal(seg, segmentOfHash(keyHash(k)), 'a storage key names its segment');
    t.equal(h.partitionKeys(p, q, seg), inP.filter((x) => segmentOfHash(keyHash(x)) > seg).length, 'keys after a segment');
  }
  t.equal(total, 500, 'the partitions add up');
  const k0 = keys[0]!;
  const v = version('n1', 'abc');
  const v2 = update(v, { actor: 'n1', value: Buffer.from('abcdef'), vtype: 1, context: v.clock, nowMs: 2, lww: false, wid: null });
  h.update(k0, keyHash(k0), v, v2);
  t.equal(h.keys, 500, 'an overwrite adds no key');
  t.equal(h.valueBytes, 1503, 'but its bytes');
  h.update(k0, keyHash(k0), v2, undefined);
  t.equal(h.keys, 499, 'a removal takes one away');
  t.equal(segmentOfStorageKey('m:ring'), -1, 'a metadata key is in no segment');
});

t.test('segment hashes: XOR updates, equal states give equal hashes', async (t) => {
  const a = new SegmentHashes();
  const b = new SegmentHashes();
  const v = version('n1', 'x');
  a.update('k', keyHash('k'), undefined, v);
  b.update('k', keyHash('k'), undefined, v);
  t.same(a.words, b.words, 'the same key in the same state');
  const v2 = update(v, { actor: 'n1', value: Buffer.from('y'), vtype: 1, context: v.clock, nowMs: 2, lww: false, wid: null });
  a.update('k', keyHash('k'), v, v2);
  const seg = segmentOfHash(keyHash('k'));
  const p = Math.floor(seg / partitionSegments(0, 64).count);
  t.same(differingSegments(p, 64, a.partitionBytes(p, 64), b.partitionBytes(p, 64)), [seg], 'exactly that segment differs');
  a.update('k', keyHash('k'), v2, undefined);
  a.update('k', keyHash('k'), undefined, v);
  t.same(a.words, b.words, 'back to the same state: the same hashes');
  t.same(elementHash('k', v), elementHash('k', { ...v, siblings: v.siblings.map((s) => ({ ...s, tsMs: 99 })) }), 'timestamps do not matter');
});

t.test('an exchange repairs exactly the differing keys, both ways', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  const keys = Array.from({ length: 300 }, (_, i) => `key${i}`);
  // Every replica holds every key...
  for (const key of keys) {
    const v = version('n1', key);
    for (const id of preferenceListForKey(c.ring, key).primaries) await (await c.node(id).store.mutate(key, () => v)).durable;
  }
  // ...except that 20 keys differ: some newer on the lead, some only on a follower.
  const diverged = keys.slice(0, 20);
  for (const [i, key] of diverged.entries()) {
    const [lead, follower] = preferenceListForKey(c.ring, key).primaries as [string, string];
    const target = i % 2 === 0 ? lead : follower;
    const m = await c.node(target).store.mutate(key, (cur) => update(cur, {
      actor: target, value: Buffer.from('newer'), vtype: 1, context: cur!.clock, nowMs: 2, lww: false, wid: null,
    }));
    await m.durable;
  }
  for (const id of c.ids) await c.drive(c.node(id).aae.round(async () => {}));
  let repaired = 0;
  let compared = 0;
  for (const id of c.ids) { repaired += c.node(id).aae.stats.keysRepaired; compared += c.node(id).aae.stats.keysCompared; }
  t.equal(repaired, 40, `each of the 20 keys repaired on its two stale replicas (got ${repaired})`);
  t.ok(compared < 300, `only keys in differing segments were compared (${compared} of ${300 * 3} replicas' keys)`);
  for (const key of keys) {
    const states = await Promise.all(preferenceListForKey(c.ring, key).primaries.map((id) => c.node(id).store.read(key)));
    if (!states.every((s) => sameVersions(s, states[0]))) t.fail(`${key} still differs`);
  }
  t.pass('every replica of every key agrees');
  for (const id of c.ids) await c.drive(c.node(id).aae.round(async () => {}));
  let again = 0;
  for (const id of c.ids) again += c.node(id).aae.stats.keysRepaired;
  t.equal(again, repaired, 'a second round finds nothing to repair');
});

t.test('an undecodable stored object does not stop a node from starting: it is set aside and anti-entropy restores the key', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  const key = 'damaged';
  const v = version('n1', 'good');
  const primaries = preferenceListForKey(c.ring, key).primaries;
  for (const id of primaries) await (await c.node(id).store.mutate(key, () => v)).durable;
  const victim = primaries[1]!;
  await c.crash(victim);
  // What an older buggy version could have written: a clock counter above 2^53.
  const bad = pack([[['n1', 2 ** 53 + 2, 1]], [['n1', 2 ** 53 + 2, 1, 1, 0, Buffer.from('x'), null]]]);
  const storage = c.storages.get(victim)!;
  await storage.open();
  await storage.write([{ key: dataKey(key), value: bad }], false);
  await storage.close();

  const node = await c.startNode(victim);
  t.pass('the node started');
  await node.aae.whenBuilt();
  await node.store.drain();
  t.equal(node.store.stats.quarantined, 1, 'counted');
  t.equal(await storage.get(dataKey(key)), undefined, 'out of the data range');
  t.same(Buffer.from((await storage.get(quarantineKey(dataKey(key))))!), bad, 'kept under the quarantine prefix');
  t.equal(await node.store.read(key), undefined, 'the key reads as absent here');

  for (const id of c.ids) await c.drive(c.node(id).aae.round(async () => {}));
  t.ok(sameVersions(await node.store.read(key), v), 'anti-entropy brought the key back from the other replicas');
});

t.test('rate limiter: a clock that goes backwards leaves no debt', async (t) => {
  const limiter = new RateLimiter(10, 1_000_000);
  t.equal(limiter.take(20, 1_000_000), 10, 'a full bucket: one second of tokens');
  t.equal(limiter.take(5, 1_000_000 - 3_600_000), 0, 'an hour back: nothing to give');
  t.equal(limiter.take(5, 1_000_000 - 3_600_000 + 500), 5, 'and half a second later, half a second of tokens (not an hour of debt)');
  t.throws(() => new RateLimiter(0, 0), TypeError);
});

t.test('a catch-up exchange covers the whole partition, past the per-round segment cap', async (t) => {
  // q=8: a partition has 8192 segments, more than aaeSegmentsPerExchangeMax
  // (4096). The cap is lowered here so a few hundred keys exceed it.
  const mutable = limits as { aaeSegmentsPerExchangeMax: number };
  const saved = mutable.aaeSegmentsPerExchangeMax;
  t.ok(partitionSegments(0, 8).count > saved, 'a q=8 partition has more segments than one capped exchange looks at');
  mutable.aaeSegmentsPerExchangeMax = 16;
  t.teardown(() => { mutable.aaeSegmentsPerExchangeMax = saved; });
  const c = new MemoryCluster({ nodes: 3, q: 8, background: false });
  await c.start();
  // Keys of partition 0, held only by n1 (every node replicates it: n=3).
  const keys: string[] = [];
  for (let i = 0; keys.length < 200; i++) if (partitionOfKey(c.ring, `key${i}`) === 0) keys.push(`key${i}`);
  for (const key of keys) await (await c.node('n1').store.mutate(key, () => version('n1', key))).durable;
  const segs = new Set(keys.map((k) => segmentOfHash(keyHash(k))));
  t.ok(segs.size > 16, `the keys fall in ${segs.size} segments, more than the cap`);
  const capped = await c.drive(c.node('n2').aae.exchangeStrict(c.ring, 0, 'n1'));
  t.ok(capped > 0 && capped < keys.length, `a capped exchange repairs part of the partition (${capped} of ${keys.length})`);
  const whole = await c.drive(c.node('n3').aae.exchangeStrict(c.ring, 0, 'n1', true));
  t.equal(whole, keys.length, 'a whole exchange (catch-up) repairs every key');
  for (const key of keys) if ((await c.node('n3').store.read(key)) === undefined) t.fail(`${key} missing on n3`);
  await c.drive(c.node('n2').aae.exchangeStrict(c.ring, 0, 'n1', true));
  for (const key of keys) if ((await c.node('n2').store.read(key)) === undefined) t.fail(`${key} missing on n2`);
  t.pass('both replicas hold the whole partition');
  await c.stopAll();
});
