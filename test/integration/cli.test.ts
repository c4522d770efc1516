// The tunekv command as a user runs it: --json output, exit codes.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

function tunekv(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cliEntry, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('the CLI against a real cluster', async (t) => {
  const cluster = await testCluster(t);
  const host = cluster.hosts[1]!;

  const put = tunekv('put', 'cli:key', 'hello', '--host', host, '--json');
  t.equal(put.code, 0, put.err);
  const putJson = JSON.parse(put.out) as { context: string; level: string; replicas: unknown[] };
  t.equal(putJson.level, 'quorum');
  t.equal(putJson.replicas.length, 3);

  for (const level of ['eventual', 'quorum', 'strong']) {
    const got = tunekv('get', 'cli:key', '--consistency', level, '--host', host, '--json');
    t.equal(got.code, 0);
    const j = JSON.parse(got.out) as { found: boolean; values: string[]; level: string };
    t.same([j.found, j.values, j.level], [true, ['hello'], level], `get --consistency ${level}`);
  }

  const second = tunekv('put', 'cli:key', 'world', '--host', host, '--json');
  t.equal(second.code, 0);
  const siblings = JSON.parse(tunekv('get', 'cli:key', '--host', host, '--json').out) as { values: string[]; context: string };
  t.same(siblings.values.sort(), ['hello', 'world'], 'a put without --context makes a sibling');
  const resolved = tunekv('put', 'cli:key', 'hello world', '--context', siblings.context, '--host', host, '--json');
  t.equal(resolved.code, 0);
  t.same((JSON.parse(tunekv('get', 'cli:key', '--host', host, '--json').out) as { values: string[] }).values, ['hello world']);

  const human = tunekv('get', 'cli:key', '--host', host);
  t.equal(human.out.trim(), 'hello world', 'plain output prints the value');
  t.match(human.err, /context: /, 'and the context on stderr');

  const del = tunekv('del', 'cli:key', '--host', host, '--json');
  t.equal(del.code, 0);
  t.equal((JSON.parse(tunekv('get', 'cli:key', '--host', host, '--json').out) as { found: boolean }).found, false, 'del without context deletes what it reads');

  const bad = tunekv('get', 'cli:key', '--r', '9', '--host', host, '--json');
  t.equal(bad.code, 1, 'a failed request exits non-zero');
  t.same(Object.keys((JSON.parse(bad.out) as { error: object }).error).sort(), ['code', 'details', 'message']);
  t.equal((JSON.parse(bad.out) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');

  const usage = tunekv('get', '--json');
  t.equal(usage.code, 2, 'usage errors exit 2');

  const status = tunekv('status', '--host', host, '--json');
  t.equal(status.code, 0);
  const st = JSON.parse(status.out) as { nodeId: string; ring: { members: unknown[]; n: number; q: number } };
  t.equal(st.nodeId, 'n2');
  t.same([st.ring.members.length, st.ring.n, st.ring.q], [3, 3, 64]);

  const cs = tunekv('cluster', 'status', '--dir', cluster.dir, '--json');
  t.equal(cs.code, 0);
  const nodes = (JSON.parse(cs.out) as { nodes: { id: string; answering: boolean }[] }).nodes;
  t.same(nodes.map((n) => [n.id, n.answering]), [['n1', true], ['n2', true], ['n3', true]]);

  const kill = tunekv('cluster', 'kill', 'n1', '--dir', cluster.dir);
  t.equal(kill.code, 0);
  const afterKill = tunekv('get', 'cli:other', '--host', cluster.hosts[0]!, '--json');
  t.equal(afterKill.code, 1, 'the only seed given is dead');
  t.equal((JSON.parse(afterKill.out) as { error: { code: string } }).error.code, 'UNAVAILABLE');
  const viaOther = tunekv('put', 'cli:other', 'x', '--host', host, '--json');
  t.equal(viaOther.code, 0, 'through a live node the cluster still takes quorum writes');
  const restart = tunekv('cluster', 'restart', 'n1', '--dir', cluster.dir);
  t.equal(restart.code, 0, restart.err);
  t.equal(tunekv('get', 'cli:other', '--host', cluster.hosts[0]!, '--json').code, 0, 'n1 answers again');
});
