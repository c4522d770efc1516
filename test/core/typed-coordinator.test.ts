// Counters and sets through real coordinators on the in-memory network:
// a remove at W >= 2 reads W replicas first, so it observes an add that
// its coordinator's own copy never received.
import t from 'tap';
import { MsgType } from '../../src/protocol/messages.js';
import type { TypedReplyBody } from '../../src/protocol/messages.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

async function cluster(): Promise<MemoryCluster> {
  // Anti-entropy and read repair out of the way: only the request paths move data.
  const c = new MemoryCluster({ nodes: 3, config: { aaeIntervalMs: 3_600_000, readRepair: false, readRepairChance: 0 } });
  await c.start();
  return c;
}

const update = (c: MemoryCluster, to: string, body: Record<string, unknown>) =>
  c.call(to, MsgType.TYPE_UPDATE, { wid: Buffer.from(`wid-${Math.random()}`.slice(0, 20)), ...body }).then((r) => r.body as TypedReplyBody);
const read = (c: MemoryCluster, to: string, body: Record<string, unknown>) => c.call(to, MsgType.TYPE_READ, body).then((r) => r.body as TypedReplyBody);

for (const [level, observes] of [[{ consistency: 'quorum' }, true], [{ consistency: 'eventual' }, false]] as const) {
  t.test(`a remove at ${level.consistency} ${observes ? 'observes an add its coordinator never received' : 'observes its coordinator\'s copy only'}`, async (t) => {
    const c = await cluster();
    // n3 hears nothing from n1: the add (through n1, W=2) reaches n1 and n2 only.
    c.network.policy = (from, to) => (from === 'n1' && to === 'n3' ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
    await update(c, 'n1', { type: 'set', key: 'cart', op: 'add', member: 'x', consistency: 'quorum' });
    const local = await read(c, 'n3', { type: 'set', key: 'cart', consistency: 'eventual' });
    t.same(local.members, [], 'n3\'s own copy lacks the add');
    const removed = await update(c, 'n3', { type: 'set', key: 'cart', op: 'remove', member: 'x', ...level });
    t.equal(removed.held, observes, `held: ${String(observes)}`);
    c.network.policy = () => ({ fate: 'deliver', delayMs: 1 });
    const after = await read(c, 'n2', { type: 'set', key: 'cart', r: 3 });
    t.same(after.members, observes ? [] : ['x'], observes ? 'the add is removed everywhere' : 'the add it did not observe survives (add wins)');
    await c.stopAll();
  });
}

t.test('a reset at quorum takes away increments its coordinator never received', async (t) => {
  const c = await cluster();
  c.network.policy = (from, to) => (from === 'n1' && to === 'n3' ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  await update(c, 'n1', { type: 'counter', key: 'hits', op: 'incr', n: 7, consistency: 'quorum' });
  const reset = await update(c, 'n3', { type: 'counter', key: 'hits', op: 'reset', consistency: 'quorum' });
  t.equal(reset.value, '0');
  c.network.policy = () => ({ fate: 'deliver', delayMs: 1 });
  t.equal((await read(c, 'n1', { type: 'counter', key: 'hits', r: 3 })).value, '0', 'no increment survives the reset that saw it');
  await c.stopAll();
});

t.test('a replica write joining concurrent counter states counts in tunekv_type_merges_total, and logs one type merge per key per interval', async (t) => {
  const c = await cluster();
  // n1 and n2 do not hear each other: each increments its own state.
  c.network.policy = (from, to) => ((from === 'n1' && to === 'n2') || (from === 'n2' && to === 'n1') ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  await update(c, 'n1', { type: 'counter', key: 'hits', op: 'incr', n: 1, consistency: 'eventual' });
  await update(c, 'n2', { type: 'counter', key: 'hits', op: 'incr', n: 2, consistency: 'eventual' });
  c.network.policy = () => ({ fate: 'deliver', delayMs: 1 });
  t.equal((await read(c, 'n1', { type: 'counter', key: 'hits', r: 3 })).value, '3');
  await c.runFor(100);
  let merges = 0;
  for (const id of ['n1', 'n2', 'n3']) {
    const text = await c.node(id).metrics.registry.getSingleMetricAsString('tunekv_type_merges_total');
    const m = /tunekv_type_merges_total\{[^}]*type="counter"[^}]*\} (\d+)/.exec(text);
    merges += m ? Number(m[1]) : 0;
  }
  t.ok(merges >= 1, `concurrent joins counted (${merges})`);
  const logged = () => ['n1', 'n2', 'n3'].flatMap((id) => c.node(id).conflicts.query({}).records);
  const first = logged();
  t.ok(first.length >= 1, `the join is in a conflict log (${first.length} records)`);
  for (const r of first) {
    t.equal(r.kind, 'type merge');
    t.equal(r.versions.length, 2, 'with the two concurrent states');
  }
  for (const id of ['n1', 'n2', 'n3']) t.ok(c.node(id).conflicts.query({}).records.length <= 1, `${id}: at most one record for the key`);
  // Concurrent again, within typeMergeLogIntervalMs: counted, not logged again.
  c.network.policy = (from, to) => ((from === 'n1' && to === 'n2') || (from === 'n2' && to === 'n1') ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  await update(c, 'n1', { type: 'counter', key: 'hits', op: 'incr', n: 1, consistency: 'eventual' });
  await update(c, 'n2', { type: 'counter', key: 'hits', op: 'incr', n: 1, consistency: 'eventual' });
  c.network.policy = () => ({ fate: 'deliver', delayMs: 1 });
  t.equal((await read(c, 'n1', { type: 'counter', key: 'hits', r: 3 })).value, '5');
  await c.runFor(100);
  t.equal(logged().length, first.length, 'no new record within the interval');
  await c.stopAll();
});
