// A node on standby (no ring yet) is a replica of nothing: it refuses
// replica reads and writes, so it never stores data it could neither serve
// nor sweep.
//
// The situation of simulator seed 550: a join of n4 is committed, but the
// claimant's ring push never reaches n4 (here n1 -> n4 is cut), while a
// coordinator on the new ring (n2) sends a put's copy to n4 as the
// partition's receiver (transfer phase: its ack is not counted). n4 used to
// store it; when that plan was then lost (its claimant crashed, another
// claimant's ring of the same version won) n4 never got any ring and kept
// the copy for ever. Now it refuses, the put is still acknowledged by the
// current replicas, and once the push gets through the join completes and
// the catch-up brings n4 the write it refused.

import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import { memberOf, partitionOfKey, preferenceListForKey, stateOf } from '../../src/core/ring/ring.js';
import { commitPlan, inTransition, receivers } from '../../src/core/ring/transition.js';
import { TuneKvError } from '../../src/errors.js';
import { clientEndpoint } from '../../src/io/memory-network.js';
import { MsgType } from '../../src/protocol/messages.js';
import { objectToWire } from '../../src/protocol/object-codec.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

function call(c: MemoryCluster, from: string, to: string, type: number, body: unknown): Promise<{ err: TuneKvError | null; body: unknown }> {
  return new Promise((resolve) => {
    c.network.request(from, to, type, body, 3000, (err, _t, b) => resolve({ err, body: b }));
  });
}

async function drive<T>(c: MemoryCluster, p: Promise<T>): Promise<T> {
  let out: { v: T } | undefined;
  void p.then((v) => { out = { v }; });
  await c.runUntil(c.clock.nowMs() + 10_000, () => out !== undefined);
  if (out === undefined) throw new Error('no answer within 10 s of simulated time');
  return out.v;
}

t.test('a standby node refuses a receiver\'s copy until it has the ring, then catches it up', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, seed: 7 });
  await c.start();
  await c.runFor(500);
  const n4 = await c.addNode();
  const staged = await drive(c, call(c, clientEndpoint, 'n1', MsgType.CLUSTER_STAGE, { op: 'join', addr: c.addrOf(n4) }));
  t.equal(staged.err, null, 'join staged');
  // From the commit on, the claimant's pushes to n4 are lost; everything
  // else is delivered.
  let cut = true;
  c.network.policy = (from, to) => (cut && from === 'n1' && to === n4 ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  const committed = await drive(c, call(c, clientEndpoint, 'n1', MsgType.CLUSTER_COMMIT, {}));
  t.equal(committed.err, null, 'join committed');
  await c.runUntil(c.clock.nowMs() + 10_000, () => c.node('n2').ring !== undefined && inTransition(c.node('n2').ring!));
  const ring = c.node('n2').ring!;
  t.equal(c.node(n4).ring, undefined, 'n4 has not received the ring');

  // A key of a partition n4 is to receive.
  let key = '';
  for (let i = 0; key === ''; i++) if (receivers(ring, partitionOfKey(ring, `k${i}`)).includes(n4)) key = `k${i}`;

  const put = await drive(c, call(c, clientEndpoint, 'n2', MsgType.PUT, { key, value: Buffer.from('v'), vtype: 1, consistency: 'quorum' }));
  t.equal(put.err, null, 'the put is acknowledged by the current replicas');
  await c.runFor(50);
  t.equal(await c.node(n4).store.read(key), undefined, 'the standby node stored nothing');
  t.ok(c.node(n4).replica.stats.unjoined > 0, 'it refused the copy as a node with no ring');

  const read = await drive(c, call(c, 'n2', n4, MsgType.REPLICA_READ, { key, rv: ring.version }));
  t.equal(read.err?.code, 'UNAVAILABLE', 'and it serves no replica read');

  // The push gets through: the join completes and n4 holds the write.
  cut = false;
  await c.runUntil(c.clock.nowMs() + 60_000, () => {
    const r = c.node('n1').ring;
    const me = r ? memberOf(r, n4) : undefined;
    return r !== undefined && !inTransition(r) && me !== undefined && stateOf(me) === 'valid';
  });
  const after = c.node('n1').ring!;
  t.equal(stateOf(memberOf(after, n4)!), 'valid', 'the join completed');
  const kept = await c.node(n4).store.read(key);
  t.ok(kept && kept.siblings.some((s) => s.value !== null && Buffer.from(s.value).toString() === 'v'), 'the catch-up brought n4 the write it refused');
  await c.stopAll();
});

// The other way a join is abandoned: n4 did install the joining ring and
// took a receiver's copy, then that plan lost (here: the cluster moved on
// to a newer ring without n4). n4 then holds data of partitions its ring
// gives it none of: the sweep hands every key to the owners and drops it
// only once they acknowledged it.
t.test('a node whose join was lost after it took a copy hands it to the owners, then drops it', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, seed: 7 });
  await c.start();
  await c.runFor(500);
  const n4 = await c.addNode();
  const base = c.node('n1').ring!;
  const joining = commitPlan(base, [{ op: 'join', id: n4, addr: c.addrOf(n4) }], 4242);
  const lost = { ...base, version: joining.version + 1 };

  t.equal((await drive(c, call(c, 'n1', n4, MsgType.RING_PUSH, { ring: joining }))).err, null, 'n4 installs the joining ring');
  let key = '';
  for (let i = 0; key === ''; i++) if (receivers(joining, partitionOfKey(joining, `k${i}`)).includes(n4)) key = `k${i}`;
  const obj = update(undefined, { context: [], value: Buffer.from('only-on-n4'), vtype: 1, actor: 'n2', nowMs: c.clock.nowMs(), lww: false, wid: null });
  const wrote = await drive(c, call(c, 'n2', n4, MsgType.REPLICA_WRITE, { key, object: objectToWire(obj), rv: joining.version }));
  t.equal(wrote.err, null, 'n4 takes the copy as a receiver');

  for (const id of ['n1', 'n2', 'n3', n4]) {
    t.equal((await drive(c, call(c, id === 'n1' ? 'n2' : 'n1', id, MsgType.RING_PUSH, { ring: lost }))).err, null, `${id} installs the ring without n4`);
  }
  await c.runUntil(c.clock.nowMs() + 30_000, () => c.node(n4).transfers.stats.keysSwept > 0);
  t.equal(await c.node(n4).store.read(key), undefined, 'n4 no longer holds the key');
  for (const owner of preferenceListForKey(lost, key).primaries) {
    const held = await c.node(owner).store.read(key);
    t.ok(held?.siblings.some((s) => s.actor === 'n2' && s.counter === obj.siblings[0]!.counter), `owner ${owner} holds the version n4 had`);
  }
  await c.stopAll();
});
