// Anti-entropy logs one summary line per round that repaired anything
// (keys repaired, per peer), never a line per key.
import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import type { EventFields, EventLog, LogLevel } from '../../src/server/log.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

const version = (value: string) =>
  update(undefined, { actor: 'n1', value: Buffer.from(value), vtype: 1, context: emptyClock, nowMs: 1, lww: false, wid: null });

t.test('a round that repairs keys logs aae_repaired once, with counts per peer', async (t) => {
  const c = new MemoryCluster({ nodes: 3, q: 16, background: false });
  await c.start();
  t.teardown(() => c.stopAll());
  const seen: { node: string; level: LogLevel; name: string; fields: EventFields }[] = [];
  for (const id of ['n1', 'n2', 'n3']) {
    const rec: EventLog = { event: (level, name, fields = {}) => { seen.push({ node: id, level, name, fields }); } };
    // The node's events are read when a service logs: a recorder in place
    // of the silent default the simulator gives.
    (c.node(id) as unknown as { events: EventLog }).events = rec;
  }
  // 40 keys on n1 only: behind the replication path, as a lost write would be.
  for (let i = 0; i < 40; i++) await (await c.node('n1').store.mutate(`k${i}`, () => version(`v${i}`))).durable;
  // The simulated network delivers as the manual clock runs.
  let done = 0;
  for (const id of ['n1', 'n2', 'n3']) void c.node(id).aae.whenBuilt().then(() => c.node(id).aae.round(async () => {})).then(() => { done++; });
  await c.runFor(60_000);
  t.equal(done, 3, 'every node finished its round');
  const lines = seen.filter((e) => e.name === 'aae_repaired');
  t.ok(lines.length >= 1 && lines.length <= 3, `one line per round at most (${lines.length})`);
  const total = lines.reduce((a, e) => a + Number(e.fields.keysRepaired), 0);
  t.ok(total >= 40, `the lines count the keys repaired (${total})`);
  for (const e of lines) {
    const peers = e.fields.peers as Record<string, number>;
    t.equal(Object.values(peers).reduce((a, b) => a + b, 0), e.fields.keysRepaired, 'per-peer counts add up');
    t.notOk(Object.keys(peers).includes(e.node), 'a node never repairs from itself');
  }
  t.notOk(seen.some((e) => JSON.stringify(e.fields).includes('"k1"')), 'no line names a key');
});
