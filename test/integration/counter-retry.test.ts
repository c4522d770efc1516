// A counter update whose connection breaks after it was sent is not moved
// to another node: its write id is recognised only by replicas its first
// attempt reached, so another coordinator would count it twice. The client
// tries the same node once more and otherwise answers UNAVAILABLE with
// maybeApplied, as a lost reply deserves (issue 10: retries applied once).
import t from 'tap';
import { connect } from '../../src/index.js';
import { setLinkFaults } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

t.test('a counter update broken off mid-flight is not counted twice', async (t) => {
  const cluster = await testCluster(t, { nodes: 3 });
  const kv = await connect({ hosts: cluster.hosts, timeoutMs: 5000 });
  t.teardown(() => kv.close());
  const hits = kv.counter('retry:hits');
  const first = await hits.increment(1);
  const coordinator = first.coordinator;
  // Replica writes now take 400 ms each way: the next increment is applied
  // on its coordinator and waits there for a second replica when we kill it.
  await setLinkFaults(cluster.dir, { delayMs: 400, jitterMs: 0, loss: 0 });
  const pending = hits.increment(1, { consistency: 'quorum' }).then(
    (r) => ({ ok: true as const, coordinator: r.coordinator }),
    (e: { code?: string; details?: { maybeApplied?: boolean } }) => ({ ok: false as const, code: e.code, maybeApplied: e.details?.maybeApplied }));
  await new Promise((r) => setTimeout(r, 150));
  await cluster.kill(coordinator);
  const outcome = await pending;
  t.same(outcome, { ok: false, code: 'UNAVAILABLE', maybeApplied: true },
    `the update broken off on ${coordinator} is reported as maybe applied, not retried on another node`);
  await setLinkFaults(cluster.dir, { delayMs: 0, jitterMs: 0, loss: 0 });
  await cluster.restart(coordinator);
  let value = -1n;
  for (let i = 0; i < 50; i++) {
    value = (await hits.value({ r: 3, timeoutMs: 2000 }).catch(() => ({ value: -1n }))).value;
    if (value >= 1n) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(value === 1n || value === 2n, `the counter holds the first increment and the broken one at most once (${value})`);
});
