// `tunekv counter` and `tunekv set` as a user runs them: values, --json,
// negative numbers, usage errors.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

function tunekv(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cliEntry, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('counter and set commands against a real cluster', async (t) => {
  const cluster = await testCluster(t);
  const host = cluster.hosts[0]!;

  t.equal(tunekv('counter', 'hits', '--host', host).out.trim(), '0', 'a counter never written reads 0');
  t.equal(tunekv('counter', 'hits', 'incr', '10', '--host', host).out.trim(), '10');
  t.equal(tunekv('counter', 'hits', 'incr', '-5', '--host', host).out.trim(), '5', 'a negative N parses');
  t.equal(tunekv('counter', 'hits', 'decr', '2', '--host', host).out.trim(), '3');
  t.equal(tunekv('counter', 'hits', 'incr', '9007199254740993', '--host', host).out.trim(), '9007199254740996', 'exact past 2^53');
  const j = JSON.parse(tunekv('counter', 'hits', 'get', '--consistency', 'strong', '--host', host, '--json').out) as { value: string; level: string; replicas: unknown[] };
  t.same([j.value, j.level, j.replicas.length], ['9007199254740996', 'strong', 3], '--json: the value as an exact string, and the replica report');
  t.equal(tunekv('counter', 'hits', 'reset', '--host', host).out.trim(), '0');
  t.equal((JSON.parse(tunekv('get', 'hits', '--host', host, '--json').out) as { found: boolean }).found, false, 'the plain key "hits" is another key: not found');

  t.equal(tunekv('set', 'cart', 'add', 'apple', '--host', host).code, 0);
  t.equal(tunekv('set', 'cart', 'add', 'pear', '--host', host, '--w', '3').code, 0);
  const fig = tunekv('set', 'cart', 'add', 'fig', '--host', host);
  t.same([fig.code, fig.out], [0, 'ok: 3 members\n'], 'the answer alone on stdout');
  t.match(fig.err, /^# quorum via n\d: /, 'the report on stderr, as for get and put');
  t.equal(tunekv('set', 'cart', 'rm', 'pear', '--host', host).code, 0);
  t.same(tunekv('set', 'cart', '--host', host).out.trim().split('\n'), ['apple', 'fig'], 'members, one a line');
  const rm = JSON.parse(tunekv('set', 'cart', 'rm', 'kiwi', '--host', host, '--json').out) as { held: boolean; size: number };
  t.same([rm.held, rm.size], [false, 2], 'removing an absent member says so');
  t.same((JSON.parse(tunekv('set', 'cart', 'members', '--host', host, '--json').out) as { members: string[] }).members, ['apple', 'fig']);
  t.equal(tunekv('set', 'cart', 'del', '--host', host).code, 0);
  t.equal(tunekv('set', 'cart', 'members', '--host', host).out, '', 'empty after del');

  t.equal(tunekv('counter', 'hits', 'incr', '--host', host).code, 2, 'incr without N is a usage error');
  t.equal(tunekv('counter', 'hits', 'incr', '1.5', '--host', host).code, 2, 'N must be an integer');
  t.equal(tunekv('counter', 'hits', 'incr', '9223372036854775808', '--host', host).code, 2, 'N must fit in 64 bits');
  t.equal(tunekv('set', 'cart', 'add', '--host', host).code, 2, 'add without MEMBER');
  t.equal(tunekv('set', 'cart', 'frob', 'x', '--host', host).code, 2, 'unknown op');
  const big = tunekv('counter', 'top', 'incr', '9223372036854775807', '--host', host);
  t.equal(big.code, 0);
  const over = tunekv('counter', 'top', 'incr', '1', '--host', host, '--json');
  t.equal(over.code, 5, 'refused by a rule: exit 5');
  t.equal((JSON.parse(over.out) as { error: { code: string } }).error.code, 'COUNTER_OVERFLOW');
});
