import t from 'tap';
import {
  claim, createRing, preferenceList, preferenceListForKey, removeMember, ringProblem, replicatedPartitions,
} from '../../src/core/ring/ring.js';
import type { Ring } from '../../src/core/ring/ring.js';
import { keyHash, partitionOfHash, partitionRange } from '../../src/core/ring/hash.js';

const member = (i: number) => ({ id: `n${i}`, addr: `127.0.0.1:${7000 + i}` });

function grow(nodes: number, q = 64, n = 3): Ring {
  let ring = createRing(q, n, member(1));
  for (let i = 2; i <= nodes; i++) ring = claim(ring, member(i));
  return ring;
}

function counts(ring: Ring): Map<string, number> {
  const c = new Map<string, number>();
  for (const o of ring.owners) c.set(o, (c.get(o) ?? 0) + 1);
  return c;
}

t.test('with 3-8 nodes and Q=64 no node owns more than ceil(Q/nodes)', async (t) => {
  for (let nodes = 3; nodes <= 8; nodes++) {
    const ring = grow(nodes);
    const max = Math.ceil(64 / nodes);
    const c = counts(ring);
    t.equal(c.size, nodes, `${nodes} nodes all own partitions`);
    for (const [id, owned] of c) t.ok(owned <= max, `${nodes} nodes: ${id} owns ${owned} <= ${max}`);
    t.equal([...c.values()].reduce((a, b) => a + b, 0), 64);
  }
});

t.test('adding a node moves only partitions the new node takes', async (t) => {
  for (let nodes = 1; nodes < 8; nodes++) {
    const before = grow(nodes);
    const after = claim(before, member(nodes + 1));
    t.equal(after.version, before.version + 1, 'a change bumps the version');
    for (let p = 0; p < 64; p++) {
      if (after.owners[p] !== before.owners[p]) t.equal(after.owners[p], `n${nodes + 1}`, `partition ${p} moved only to the joiner`);
    }
    t.equal(counts(after).get(`n${nodes + 1}`), Math.floor(64 / (nodes + 1)), 'joiner takes floor(Q/S)');
  }
});

t.test('claim is deterministic and rejoin with the same address changes nothing', async (t) => {
  t.same(grow(5), grow(5));
  const ring = grow(3);
  t.equal(claim(ring, member(2)), ring, 'same id and address: same ring');
  const moved = claim(ring, { id: 'n2', addr: '127.0.0.1:9999' });
  t.equal(moved.version, ring.version + 1);
  t.same(moved.owners, ring.owners, 'an address change moves no partition');
});

t.test('preference lists: N distinct primaries, the rest as fallbacks in ring order', async (t) => {
  const ring = grow(5);
  for (let p = 0; p < ring.q; p++) {
    const pl = preferenceList(ring, p);
    t.equal(pl.primaries.length, 3);
    t.equal(new Set([...pl.primaries, ...pl.fallbacks]).size, 5, 'every node once');
    t.equal(pl.primaries[0], ring.owners[p], 'first primary owns the partition');
  }
  const small = grow(2);
  t.same(preferenceList(small, 0).primaries.length, 2, 'fewer nodes than N: every node is a primary');
  const pl = preferenceListForKey(ring, 'cart:42');
  t.same(pl, preferenceList(ring, partitionOfHash(keyHash('cart:42'), 64)));
});

t.test('every node replicates within 25% of N*Q/S partitions', async (t) => {
  for (let nodes = 4; nodes <= 8; nodes++) {
    const ring = grow(nodes);
    const ideal = (3 * 64) / nodes;
    for (const m of ring.members) {
      const r = replicatedPartitions(ring, m.id).length;
      t.ok(Math.abs(r - ideal) <= ideal * 0.25, `${nodes} nodes: ${m.id} replicates ${r} of 64 (ideal ${ideal.toFixed(1)})`);
    }
  }
});

t.test('removing a node hands its partitions to the others', async (t) => {
  const ring = grow(5);
  const smaller = removeMember(ring, 'n3');
  t.notOk(smaller.owners.includes('n3'));
  for (let p = 0; p < 64; p++) if (ring.owners[p] !== 'n3') t.equal(smaller.owners[p], ring.owners[p]);
  for (const owned of counts(smaller).values()) t.ok(owned <= 16);
});

t.test('hashing and partition ranges', async (t) => {
  t.equal(keyHash('a'), keyHash('a'));
  t.not(keyHash('a'), keyHash('b'));
  t.equal(keyHash('a'), 0x0cc175b9, 'md5 of "a" begins 0cc175b9');
  for (const q of [8, 64, 4096]) {
    for (const key of ['x', 'y', 'cart:42', 'zzz']) {
      const h = keyHash(key);
      const p = partitionOfHash(h, q);
      const { start, end } = partitionRange(p, q);
      t.ok(h >= start && h < end, `${key} hash inside its partition range (q=${q})`);
    }
  }
});

t.test('ring validation', async (t) => {
  t.throws(() => createRing(63, 3, member(1)), /power of two/);
  t.throws(() => createRing(64, 0, member(1)), /n \(0\)/);
  t.throws(() => createRing(64, 3, { id: 'bad id', addr: 'x:1' }), /node id/);
  t.equal(ringProblem(grow(3)), null);
  t.match(ringProblem({ ...grow(3), owners: ['nope'] }), /owners/);
  t.match(ringProblem(null), /not a map/);
});
