// Separate machines rehearsed on one: `cluster start --distinct-addresses`
// puts node i on 127.0.0.i, every node on the same port, as real processes
// over real TCP. Also the CLI's default hosts: without --host it is given
// every node of ./data/cluster/cluster.json, so it keeps working with n1
// down.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliEntry } from '../../cluster/launcher.js';
import { connect } from '../../src/index.js';
import { fastNodeArgs, testCluster } from '../helpers/cluster.js';

/** The tunekv command run from `cwd`, with none of the environment that
 * would choose its hosts or identity for it. */
function tunekv(cwd: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const env = { ...process.env };
  for (const name of ['TUNEKV_HOST', 'TUNEKV_USER', 'TUNEKV_PASSWORD_FILE', 'TUNEKV_SECRET_FILE']) delete env[name];
  const r = spawnSync(process.execPath, [cliEntry, ...args], { cwd, env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function errorCode(out: string): string | undefined {
  return (JSON.parse(out) as { error?: { code: string } }).error?.code;
}

t.test('--distinct-addresses refuses what it cannot do, before making anything', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-da-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'c');

  const withHost = tunekv(root, 'cluster', 'start', '--distinct-addresses', '--host', '127.0.0.1', '--dir', dir, '--json');
  t.equal(withHost.code, 2, 'with --host: a usage error');
  t.equal(errorCode(withHost.out), 'INVALID_ARGUMENT', 'coded INVALID_ARGUMENT');

  const tooMany = tunekv(root, 'cluster', 'start', '--distinct-addresses', '--nodes', '255', '--base-port', '0', '--dir', dir, '--json');
  t.equal(tooMany.code, 2, '255 nodes: a usage error');
  t.match(JSON.parse(tooMany.out), { error: { code: 'INVALID_ARGUMENT', message: /at most 254 nodes/ } });
  t.notOk(fs.existsSync(dir), 'no cluster directory was made');
});

t.test('three nodes on 127.0.0.1-3, one port', async (t) => {
  const cluster = await testCluster(t, { distinctAddresses: true, localLayout: true, nodeArgs: fastNodeArgs });
  const file = cluster.file();
  const port = file.nodes[0]!.port;
  t.equal(file.distinctAddresses, true, 'cluster.json says so');
  t.same(file.nodes.map((nd) => [nd.id, nd.host, nd.port, nd.metricsPort]), [
    ['n1', '127.0.0.1', port, port + 2000], ['n2', '127.0.0.2', port, port + 2000], ['n3', '127.0.0.3', port, port + 2000],
  ], 'node i on 127.0.0.i, one port, metrics on port + 2000');
  const addrs = ['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((h) => `${h}:${port}`);

  const kv = await connect({ hosts: [addrs[0]!], timeoutMs: 3000 });
  t.teardown(() => kv.close());
  t.same(kv.currentRing?.members.map((m) => m.addr).sort(), addrs, 'the ring names the three addresses');

  const put = await kv.put('da:key', 'v1', { consistency: 'strong', host: addrs[0] });
  t.equal(put.coordinator, 'n1', 'a strong put through n1');
  const got = await kv.get('da:key', { consistency: 'strong', host: addrs[1] });
  t.equal(got.coordinator, 'n2', 'a strong read through n2');
  t.same(got.values, ['v1'], 'a strong read through n2 sees it');

  const cs = tunekv(cluster.root, 'cluster', 'status', '--dir', cluster.dir, '--json');
  t.equal(cs.code, 0, 'cluster status exits 0', { err: cs.err });
  const nodes = (JSON.parse(cs.out) as { nodes: { id: string; addr: string; answering: boolean; members: number }[] }).nodes;
  t.same(nodes.map((nd) => [nd.id, nd.addr, nd.answering, nd.members]),
    [['n1', addrs[0], true, 3], ['n2', addrs[1], true, 3], ['n3', addrs[2], true, 3]], 'cluster status shows three addresses');

  const metrics = await fetch(`http://127.0.0.2:${port + 2000}/metrics`);
  t.equal(metrics.status, 200, 'n2 serves metrics on its own address');
  await metrics.arrayBuffer();

  await cluster.kill('n3');
  const quorum = await kv.get('da:key', { consistency: 'quorum', host: addrs[0] });
  t.same(quorum.values, ['v1'], 'n3 killed (SIGKILL): a quorum read still succeeds');
  // The reply may come before the coordinator has seen n3's connection
  // refused: n3 is then `pending` rather than `failed`.
  t.match(quorum.replicas.find((r) => r.node === 'n3')?.outcome, /^(failed|pending)$/, 'and n3 did not answer');
  await cluster.restart('n3');
  const fromN3 = await kv.get('da:key', { consistency: 'quorum', host: addrs[2] });
  t.equal(fromN3.coordinator, 'n3', 'a read through the restarted n3');
  t.same(fromN3.values, ['v1'], 'n3 restarted on its address coordinates again');

  // No --host and no TUNEKV_HOST: the CLI is given every node listed in
  // ./data/cluster/cluster.json, so n1 being gone does not matter.
  await cluster.kill('n1');
  const cliPut = tunekv(cluster.root, 'put', 'da:cli', 'x', '--json');
  t.equal(cliPut.code, 0, 'put without --host, n1 down', { out: cliPut.out, err: cliPut.err });
  t.not((JSON.parse(cliPut.out) as { coordinator: string }).coordinator, 'n1', 'another node coordinates');
  const cliGet = tunekv(cluster.root, 'get', 'da:key', '--json');
  t.equal(cliGet.code, 0, 'get without --host exits 0', { out: cliGet.out, err: cliGet.err });
  t.same((JSON.parse(cliGet.out) as { values: string[] }).values, ['v1'], 'and reads the strong write');
  const status = tunekv(cluster.root, 'status', '--json');
  t.equal(status.code, 0, 'status without --host exits 0', { out: status.out, err: status.err });
  t.equal((JSON.parse(status.out) as { nodeId: string }).nodeId, 'n2', 'status asks the first node that answers');
  await cluster.restart('n1');
  t.equal((JSON.parse(tunekv(cluster.root, 'status', '--json').out) as { nodeId: string }).nodeId, 'n1', 'n1 back: it answers first');
});
