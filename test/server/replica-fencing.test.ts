// A replica write from a coordinator on an older ring is refused
// (STALE_RING, it does not count toward W), but a node that holds the key's
// partition keeps the object anyway: the write may already be acknowledged
// (W=1 met by the coordinator itself), and if every replica dropped it, it
// lived on the coordinator alone (seeds 176 and 598 lost eventual writes
// when that coordinator was then lost for good).

import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import { preferenceListForKey } from '../../src/core/ring/ring.js';
import { TuneKvError } from '../../src/errors.js';
import { MsgType } from '../../src/protocol/messages.js';
import { objectToWire } from '../../src/protocol/object-codec.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

async function replicaWrite(c: MemoryCluster, from: string, to: string, body: unknown): Promise<TuneKvError | null> {
  let result: TuneKvError | null | undefined;
  c.network.request(from, to, MsgType.REPLICA_WRITE, body, 5000, (err) => { result = err; });
  await c.runUntil(Number.POSITIVE_INFINITY, () => result !== undefined);
  return result ?? null;
}

t.test('a fenced replica write is refused, and kept only where the key lives', async (t) => {
  const c = new MemoryCluster({ nodes: 4, q: 16, background: false });
  await c.start();
  const ring = c.ringNow();
  t.ok(ring.version >= 1);
  // A key n4 does not replicate (N=3 of 4 nodes), and one it does.
  let away = '';
  let home = '';
  for (let i = 0; away === '' || home === ''; i++) {
    const pl = preferenceListForKey(ring, `k${i}`).primaries;
    if (!pl.includes('n4') && away === '') away = `k${i}`;
    if (pl.includes('n4') && home === '') home = `k${i}`;
  }
  const obj = update(undefined, { context: [], value: Buffer.from('v'), vtype: 1, actor: 'n1', nowMs: c.clock.nowMs(), lww: false, wid: null });
  const stale = ring.version - 1;

  const err = await replicaWrite(c, 'n1', 'n4', { key: home, object: objectToWire(obj), rv: stale });
  t.equal(err?.code, 'STALE_RING', 'refused: it does not count toward W');
  const kept = await c.node('n4').store.read(home);
  t.same(kept?.siblings.map((s) => [s.actor, s.counter]), [['n1', obj.siblings[0]!.counter]], 'but a replica of the key merged it');

  const err2 = await replicaWrite(c, 'n1', 'n4', { key: away, object: objectToWire(obj), rv: stale });
  t.equal(err2?.code, 'STALE_RING');
  t.equal(await c.node('n4').store.read(away), undefined, 'a node that does not hold the key keeps nothing (no copy off the owners)');

  const ok = await replicaWrite(c, 'n1', 'n4', { key: home, object: objectToWire(obj), rv: ring.version });
  t.equal(ok, null, 'on the same ring the write is acknowledged');
  await c.stopAll();
});
