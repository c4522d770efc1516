// Resolving conflicts on real processes: the cart example by hand, with
// update() (including a concurrent writer forcing a second round), with a
// default resolver (and its opt-in write-back); the conflict log through
// the client and `tunekv conflicts`; the new metrics on /metrics.
import t from 'tap';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';
import { connect } from '../../src/index.js';
import { testCluster } from '../helpers/cluster.js';

function tunekv(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cliEntry, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function scrape(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host, port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

const union = (values: unknown[]): string[] => [...new Set(values.flatMap((v) => v as string[]))].sort();

t.test('resolving the cart three ways, and the record of it', async (t) => {
  const cluster = await testCluster(t);
  const kv = await connect({ hosts: cluster.hosts });
  t.teardown(() => kv.close());
  const other = await connect({ hosts: cluster.hosts });
  t.teardown(() => other.close());

  await t.test('by hand: two blind writes are two siblings', async (t) => {
    await kv.put('cart:1', ['apple']);
    await other.put('cart:1', ['pear']);
    const got = await kv.get('cart:1');
    t.equal(got.siblings, 2);
    t.same(union(got.values), ['apple', 'pear']);
  });

  await t.test('update() with a union resolves them in one round', async (t) => {
    const res = await kv.update('cart:1', (values) => union(values));
    t.same([res.value, res.rounds, res.settled, res.siblings], [['apple', 'pear'], 1, true, 1]);
    t.same((await kv.get('cart:1')).values, [['apple', 'pear']], 'one version stored');
  });

  await t.test('a concurrent writer between the read and the write forces a second round', async (t) => {
    const rounds: unknown[][] = [];
    const res = await kv.update('cart:1', async (values, info) => {
      rounds.push(values);
      // Another client adds plum without having read: concurrent with our write.
      if (info.round === 1) await other.put('cart:1', ['plum']);
      return union([...values, ['kiwi']]);
    });
    t.equal(res.rounds, 2, 'the first write came back with a sibling');
    t.same(union(rounds[1]!), ['apple', 'kiwi', 'pear', 'plum'], 'round 2 saw our write and the concurrent one');
    t.same(res.value, ['apple', 'kiwi', 'pear', 'plum'], 'nothing lost');
    t.equal(res.settled, true);
  });

  await t.test('a resolver error propagates and writes nothing', async (t) => {
    const before = await kv.get('cart:1');
    const boom = new Error('no');
    await t.rejects(kv.update('cart:1', () => { throw boom; }), boom);
    t.same((await kv.get('cart:1')).context, before.context, 'the key did not change');
  });

  await t.test('a default resolver returns one value and keeps the siblings beside it; write-back is opt-in', async (t) => {
    const reader = await connect({ hosts: cluster.hosts, resolve: (values) => union(values) });
    t.teardown(() => reader.close());
    await kv.put('cart:2', ['apple']);
    await other.put('cart:2', ['pear']);
    const got = await reader.get('cart:2');
    t.same(got.values, [['apple', 'pear']], 'the resolution');
    t.same(union(got.unresolved?.values ?? []), ['apple', 'pear'], 'the raw siblings');
    t.equal(got.writtenBack, undefined);
    t.equal((await kv.get('cart:2')).siblings, 2, 'a read alone wrote nothing');
    t.equal((await reader.get('cart:2', { resolve: false })).siblings, 2, 'resolve: false reads the siblings as they are');
    const writer = await connect({ hosts: cluster.hosts, resolve: (values) => union(values), writeBack: true });
    t.teardown(() => writer.close());
    const wrote = await writer.get('cart:2');
    t.equal(wrote.writtenBack, true);
    t.same((await kv.get('cart:2')).values, [['apple', 'pear']], 'write-back stored the resolution');
    await t.rejects(connect({ hosts: cluster.hosts, writeBack: true }), TypeError, 'writeBack needs a resolver');
  });

  await t.test('the conflict log: resolver and siblings-kept records, through the client and the CLI', async (t) => {
    const all = tunekv('conflicts', '--all', '--key', 'cart:1', '--host', cluster.hosts[0]!, '--json');
    t.equal(all.code, 0, all.err);
    const j = JSON.parse(all.out) as { records: { node: string; kind: string; key: string; versions: { value?: unknown }[] }[]; nodes: string[]; errors: unknown[] };
    t.same(j.nodes.sort(), ['n1', 'n2', 'n3'], 'every member answered');
    t.same(j.errors, []);
    const kinds = new Set(j.records.map((r) => r.kind));
    t.ok(kinds.has('siblings kept'), 'the blind writes were recorded');
    t.ok(kinds.has('resolver'), 'update() was recorded as a resolver');
    t.ok(j.records.every((r) => r.key === 'cart:1'), '--key filters');
    const resolver = j.records.find((r) => r.kind === 'resolver')!;
    t.ok(resolver.versions.some((v) => JSON.stringify(v.value) === '["apple","pear"]'), 'with the values');
    const node = resolver.node;
    const one = await kv.conflicts({ host: cluster.file().nodes.find((nd) => nd.id === node)!.host + ':' + cluster.file().nodes.find((nd) => nd.id === node)!.port, key: 'cart:1' });
    t.equal(one.node, node);
    t.ok(one.records.some((r) => r.kind === 'resolver'), 'kv.conflicts() reads one node');
    const future = tunekv('conflicts', '--all', '--since', '2999-01-01', '--host', cluster.hosts[0]!, '--json');
    t.same((JSON.parse(future.out) as { records: unknown[] }).records, [], '--since an ISO time filters');
    const recent = tunekv('conflicts', '--all', '--since', '10m', '--host', cluster.hosts[0]!, '--json');
    t.ok((JSON.parse(recent.out) as { records: unknown[] }).records.length >= 2, '--since 10m keeps the last ten minutes');
    const text = tunekv('conflicts', '--key', 'cart:1', '--all', '--host', cluster.hosts[0]!);
    t.match(text.out, /resolver "cart:1"/, 'text form');
    const bad = tunekv('conflicts', '--since', 'yesterday', '--host', cluster.hosts[0]!, '--json');
    t.equal(bad.code, 2, 'a bad --since is a usage error');
    t.equal((JSON.parse(bad.out) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
  });

  await t.test('the new metrics are served', async (t) => {
    let text = '';
    for (const nd of cluster.file().nodes) text += await scrape(nd.host, nd.metricsPort!);
    for (const name of [
      'tunekv_siblings_resolved_total', 'tunekv_session_reads_looked_further_total', 'tunekv_type_merges_total',
      'tunekv_replication_bytes_total', 'tunekv_context_writes_total', 'tunekv_conflict_records_total', 'tunekv_partition_seconds',
    ]) t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is served`);
    t.match(text, /tunekv_siblings_resolved_total\{by="resolver",node="n\d"\} [1-9]/, 'update() resolutions counted');
    t.match(text, /tunekv_context_writes_total\{outcome="sibling",node="n\d"\} [1-9]/, 'the round that met a concurrent writer counted');
    t.match(text, /tunekv_replication_bytes_total\{kind="replica",node="n\d"\} [1-9]/, 'replica writes counted in bytes');
    t.match(text, /tunekv_partition_seconds\{node="n\d"\} 0/, 'no partition');
  });

  await t.test('conflicts --all with a member down lists it and still answers', async (t) => {
    await cluster.kill('n3');
    const all = tunekv('conflicts', '--all', '--key', 'cart:1', '--host', cluster.hosts[0]!, '--json');
    t.equal(all.code, 0, 'some nodes answered: exit 0');
    const j = JSON.parse(all.out) as { nodes: string[]; errors: { node: string; code: string }[] };
    t.same(j.nodes.sort(), ['n1', 'n2']);
    t.same(j.errors.map((e) => [e.node, e.code]), [[cluster.hosts[2], 'UNAVAILABLE']], 'the down node is listed with its error');
    const one = tunekv('conflicts', '--host', cluster.hosts[2]!, '--json');
    t.equal(one.code, 3, 'the one node asked is down: exit 3 (unavailable)');
    t.equal((JSON.parse(one.out) as { error: { code: string } }).error.code, 'UNAVAILABLE');
  });
});
