// Prometheus metrics over HTTP, and the headline figures in tunekv status.
import t from 'tap';
import http from 'node:http';
import { connect } from '../../src/index.js';
import { adminAuth, probe } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

function scrape(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host, port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

t.test('each node serves Prometheus metrics on a port of its own', async (t) => {
  const cluster = await testCluster(t);
  const kv = await connect({ hosts: cluster.hosts });
  t.teardown(() => kv.close());
  for (let i = 0; i < 20; i++) {
    await kv.put(`m:${i}`, 'v');
    await kv.get(`m:${i}`);
  }
  await kv.put('m:conflict', 'a');
  await kv.put('m:conflict', 'b');
  await kv.get('m:conflict');
  const n1 = cluster.file().nodes[0]!;
  t.ok(n1.metricsPort, 'the launcher gave n1 a metrics port');
  let text = '';
  for (const nd of cluster.file().nodes) text += await scrape(nd.host, nd.metricsPort!);
  for (const name of [
    'tunekv_request_duration_seconds', 'tunekv_quorum_failures_total', 'tunekv_read_repairs_total',
    'tunekv_hints_pending', 'tunekv_hints_delivered_total', 'tunekv_hints_dropped_total', 'tunekv_siblings_per_read',
    'tunekv_aae_keys_repaired_total', 'tunekv_replication_lag_seconds', 'tunekv_conflicts_total', 'tunekv_convergence_seconds',
    'tunekv_peers', 'tunekv_reads_one_version_ratio', 'tunekv_requests_in_flight',
  ]) t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is served`);
  t.match(text, /tunekv_request_duration_seconds_count\{node="n\d",op="put",level="quorum",outcome="ok"\} [1-9]/, 'puts were timed');
  t.match(text, /^# TYPE tunekv_replication_lag_seconds histogram$/m, 'replication lag is a histogram (summable across nodes)');
  t.match(text, /tunekv_replication_lag_seconds_count\{node="n\d"\} [1-9]/, 'replicas measured replication lag');
  t.match(text, /tunekv_replication_lag_seconds_bucket\{le="0.001",node="n\d"\}/, 'lag buckets start at 1 ms');
  t.match(text, /tunekv_replication_lag_seconds_bucket\{le="60",node="n\d"\}/, 'lag buckets end at 60 s');
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes',
    'nodejs_eventloop_lag_seconds', 'nodejs_active_handles', 'nodejs_gc_duration_seconds']) {
    t.match(text, new RegExp(`^${name}(_bucket|_count)?\\{[^}]*node="n1"`, 'm'), `process metric ${name} is served with the node label`);
  }
  t.match(text, /tunekv_conflicts_total\{node="n\d"\} [1-9]/, 'the concurrent put was counted as a conflict');
  const st = await probe(n1.host, n1.port, 1000, adminAuth(cluster.dir));
  const m = st?.metrics as { url: string; readsOneVersionRatio: number; quorumFailures: number } | undefined;
  t.match(m?.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'status names the metrics URL');
  t.equal(typeof m?.readsOneVersionRatio, 'number', 'status carries the headline figures');
  const lag = (st?.metrics as { consistencyLagP95Ms?: unknown } | undefined)?.consistencyLagP95Ms;
  t.ok(lag === null || (typeof lag === 'number' && lag >= 0), 'status estimates the lag p95 from the histogram');
});
