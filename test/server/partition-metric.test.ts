// tunekv_partition_seconds: how long a node has not seen every member up,
// from its failure detector, on in-memory nodes with a manual clock.
import t from 'tap';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

async function gauge(c: MemoryCluster, id: string): Promise<number> {
  const text = await c.node(id).metrics.registry.getSingleMetricAsString('tunekv_partition_seconds');
  const m = /tunekv_partition_seconds\{node="n\d+"\} ([0-9.e+-]+)/.exec(text);
  if (!m) throw new Error(`no sample in ${text}`);
  return Number(m[1]);
}

t.test('a member down: the gauge grows with the outage and is 0 again once it is back', async (t) => {
  const c = new MemoryCluster({ nodes: 3 });
  await c.start();
  t.teardown(() => c.stopAll());
  await c.runFor(2_000);
  t.equal(await gauge(c, 'n1'), 0, 'every member up');
  await c.crash('n3');
  await c.runFor(30_000);
  const first = await gauge(c, 'n1');
  t.ok(first > 0, `n3 unreachable: ${first} s`);
  await c.runFor(60_000);
  const later = await gauge(c, 'n1');
  t.ok(later >= first + 59, `it keeps counting (${first} s, then ${later} s)`);
  await c.startNode('n3');
  await c.runFor(30_000);
  t.equal(await gauge(c, 'n1'), 0, 'n3 back: 0');
});
