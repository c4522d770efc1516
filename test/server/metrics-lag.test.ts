// Replication lag is a histogram (summable across nodes); status's p95 is
// estimated from its buckets.
import t from 'tap';
import { NodeMetrics, lagBucketsSeconds } from '../../src/server/metrics.js';

const zero = (): number => 0;
function metrics(): NodeMetrics {
  return new NodeMetrics('n1', {
    readRepairs: zero, aaeKeysRepaired: zero, hintsPending: zero, hintsDelivered: zero, hintsDropped: zero,
    peerStates: () => ({ up: 0, suspect: 0, down: 0 }), requestsInFlight: zero,
    storageHealthy: zero, storageWriteFailures: zero, connections: () => ({ peer: 0, client: 0, handshaking: 0 }), quarantinedObjects: zero,
  });
}

t.test('buckets from 1 ms to 60 s', async (t) => {
  t.equal(lagBucketsSeconds[0], 0.001);
  t.equal(lagBucketsSeconds[lagBucketsSeconds.length - 1], 60);
  const m = metrics();
  m.lagSeconds.observe(0.002);
  const text = await m.registry.metrics();
  t.match(text, /# TYPE tunekv_replication_lag_seconds histogram/);
  t.notMatch(text, /tunekv_consistency_lag_seconds/, 'the summary is gone');
});

t.test('p95 from the buckets', async (t) => {
  const m = metrics();
  t.equal(await m.lagP95Ms(), null, 'none before any observation');
  for (let i = 0; i < 100; i++) m.lagSeconds.observe(0.003);
  const p95 = (await m.lagP95Ms())!;
  t.ok(p95 > 2.5 && p95 <= 5, `within the 2.5..5 ms bucket (${p95})`);
  for (let i = 0; i < 1000; i++) m.lagSeconds.observe(120);
  t.equal(await m.lagP95Ms(), 60_000, 'past the last bucket: its upper bound');
});

t.test('process metrics are added once, to this registry only', async (t) => {
  const m = metrics();
  m.collectProcessMetrics();
  m.collectProcessMetrics();
  const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
  t.ok(names.includes('process_cpu_seconds_total'));
  t.ok(names.includes('nodejs_eventloop_lag_seconds'));
  t.equal(names.filter((n) => n === 'process_cpu_seconds_total').length, 1);
  t.notOk((await metrics().registry.getMetricsAsJSON()).some((x) => x.name === 'process_cpu_seconds_total'), 'another node\'s registry has none');
});
