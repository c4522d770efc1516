// A real node's log: JSON lines in DIR/nN.log (appended across start and
// restart), with peer_down / peer_up when a peer is killed and restarted,
// handoff start and finish for it, and faults set and cleared.
import t from 'tap';
import fs from 'node:fs';
import { connect } from '../../src/index.js';
import { fastNodeArgs, testCluster } from '../helpers/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Line = Record<string, unknown>;

function logOf(cluster: TestCluster, id: string): Line[] {
  const nd = cluster.file().nodes.find((x) => x.id === id)!;
  return fs.readFileSync(nd.logFile, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Line);
}

async function waitForLine(cluster: TestCluster, ids: string[], what: string, match: (l: Line) => boolean, timeoutMs = 60_000): Promise<Line> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const id of ids) {
      const hit = logOf(cluster, id).find(match);
      if (hit) return hit;
    }
    if (Date.now() > deadline) throw new Error(`no ${what} in the logs of ${ids.join(', ')}`);
    await sleep(100);
  }
}

t.test('peer down and up, handoff and faults appear as JSON events in DIR/nN.log', async (t) => {
  const cluster = await testCluster(t, { nodes: 4, nodeArgs: fastNodeArgs });
  const file = cluster.file();
  for (const nd of file.nodes) t.equal(nd.logFile, `${cluster.dir}/${nd.id}.log`, `${nd.id} logs to DIR/${nd.id}.log`);

  const first = logOf(cluster, 'n1');
  for (const l of first) {
    t.ok(typeof l.level === 'string' && typeof l.time === 'string' && l.node === 'n1' && typeof l.event === 'string',
      `every line has level, time, node and event (${String(l.event)})`);
  }
  t.ok(first.some((l) => l.event === 'node_listening' && typeof l.listen === 'string'), 'the listening addresses are logged');
  t.ok(first.some((l) => l.event === 'ring_changed'), 'ring changes are logged');

  await cluster.kill('n3');
  const down = await waitForLine(cluster, ['n1'], 'peer_down for n3', (l) => l.event === 'peer_down' && l.peer === 'n3');
  t.equal(down.level, 'warn');

  // Writes while n3 is down leave hints for it on the fallbacks.
  const kv = await connect({ hosts: [cluster.hosts[0]!], timeoutMs: 4000 });
  t.teardown(() => kv.close());
  for (let i = 0; i < 60; i++) await kv.put(`log:${i}`, 'v');

  await cluster.restart('n3');
  await waitForLine(cluster, ['n1'], 'peer_up for n3', (l) => l.event === 'peer_up' && l.peer === 'n3' && l.from === 'down');
  const others = ['n1', 'n2', 'n4'];
  const start = await waitForLine(cluster, others, 'handoff_start to n3', (l) => l.event === 'handoff_start' && l.target === 'n3');
  t.ok(Number(start.hints) > 0, `handoff_start counts the hints (${String(start.hints)})`);
  const finish = await waitForLine(cluster, others, 'handoff_finish to n3',
    (l) => l.event === 'handoff_finish' && l.target === 'n3' && l.result === 'done');
  t.ok(Number(finish.handedOff) > 0, `handoff_finish counts what was handed off (${String(finish.handedOff)})`);

  const n3 = logOf(cluster, 'n3');
  t.equal(n3.filter((l) => l.event === 'node_listening').length, 2, 'the restarted node appended to the same file');

  await cluster.partition([['n1', 'n2'], ['n3', 'n4']]);
  const set = await waitForLine(cluster, ['n1'], 'faults_set', (l) => l.event === 'faults_set');
  t.same(set.blocked, ['n3', 'n4'], 'the partition is logged with the peers it blocks');
  await cluster.heal();
  await waitForLine(cluster, ['n1'], 'faults_cleared', (l) => l.event === 'faults_cleared');

  // No request is logged: 60 puts and the gets above left no line each.
  const all = others.flatMap((id) => logOf(cluster, id));
  t.notOk(all.some((l) => JSON.stringify(l).includes('log:1')), 'no line names a key written');
});
