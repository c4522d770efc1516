// Counters and sets over real processes: increments through all three
// nodes at `eventual` while n1 is partitioned away, then heal; set adds and
// removes on both sides of the partition.
import t from 'tap';
import { connect, TuneKvError } from '../../src/index.js';
import type { TuneKvClient } from '../../src/index.js';
import { fastNodeArgs, testCluster } from '../helpers/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';
import { adminAuth } from '../../cluster/launcher.js';
import { RpcConnection } from '../../src/io/connection.js';
import { MsgType } from '../../src/protocol/messages.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** One raw TYPE_UPDATE to one node, as a client retrying with the same write id would send it. */
function rawUpdate(cluster: TestCluster, id: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const nd = cluster.file().nodes.find((x) => x.id === id)!;
  return new Promise((resolve, reject) => {
    const conn = new RpcConnection({ host: nd.host, port: nd.port, agent: 'test', connectTimeoutMs: 2000, auth: adminAuth(cluster.dir) });
    conn.request(MsgType.TYPE_UPDATE, body, 3000, (err, _t, reply) => {
      conn.close();
      if (err) reject(err); else resolve(reply as Record<string, unknown>);
    });
  });
}

/** Each node's own copy (R=1 on that node answers from its copy). */
async function everyCopy<T>(clients: TuneKvClient[], hosts: string[], read: (kv: TuneKvClient, host: string) => Promise<T>): Promise<T[]> {
  return Promise.all(hosts.map((h, i) => read(clients[i]!, h)));
}

t.test('counter and set through a partition of n1 at eventual, then heal', async (t) => {
  const cluster = await testCluster(t, { nodes: 3, nodeArgs: fastNodeArgs });
  const hosts = cluster.hosts;
  const clients = await Promise.all(hosts.map((h) => connect({ hosts: [h], timeoutMs: 3000, route: false })));
  t.teardown(async () => { for (const c of clients) await c.close(); });
  const [kv1] = clients;

  await kv1!.counter('hits').increment(5, { w: 3 });
  for (const m of ['a', 'b', 'c']) await kv1!.set('cart').add(m, { w: 3 });
  t.same((await kv1!.set('cart').members({ r: 3 })).members, ['a', 'b', 'c'], 'the set before the partition');
  t.equal((await kv1!.counter('hits').value({ r: 3 })).value, 5n, 'the counter before the partition');
  t.same((await kv1!.get('hits')).found, false, 'a plain key of the same name is another key');

  t.same(await cluster.partition([['n1'], ['n2', 'n3']]), [], 'every node took the partition');

  let acknowledged = 5n;
  let maybe = 0n;
  const failures: string[] = [];
  const incr = async (i: number, n: number): Promise<void> => {
    try {
      await clients[i]!.counter('hits').increment(n, { consistency: 'eventual', host: hosts[i] });
      acknowledged += BigInt(n);
    } catch (err) {
      // An error after the request was sent may have been applied.
      if (err instanceof TuneKvError && (err.code === 'TIMEOUT' || err.code === 'UNAVAILABLE')) maybe += BigInt(n); else throw err;
      failures.push(`${hosts[i]}: ${(err as TuneKvError).code}`);
    }
  };
  // Concurrently through all three nodes, both sides of the cut.
  await Promise.all([0, 1, 2].map(async (i) => {
    for (let k = 0; k < 40; k++) await incr(i, k % 5 === 4 ? -2 : 1 + i);
  }));
  const during = await everyCopy(clients, hosts, (kv, h) => kv.counter('hits').value({ consistency: 'eventual', host: h }));
  t.not(during[0]!.value, during[1]!.value, `the sides diverge while partitioned (n1 ${during[0]!.value}, n2 ${during[1]!.value})`);

  // Set: n1 removes a and c and adds d; the other side removes b, adds a
  // again (concurrent with n1's remove of a: add wins) and adds e.
  await clients[0]!.set('cart').remove('a', { consistency: 'eventual', host: hosts[0] });
  await clients[0]!.set('cart').remove('c', { consistency: 'eventual', host: hosts[0] });
  await clients[0]!.set('cart').add('d', { consistency: 'eventual', host: hosts[0] });
  await clients[1]!.set('cart').remove('b', { consistency: 'eventual', host: hosts[1] });
  await clients[2]!.set('cart').add('a', { consistency: 'eventual', host: hosts[2] });
  await clients[2]!.set('cart').add('e', { consistency: 'eventual', host: hosts[2] });

  t.same(await cluster.heal(), [], 'healed');
  await waitFor('every copy of the counter to converge', async () => {
    const vs = await everyCopy(clients, hosts, (kv, h) => kv.counter('hits').value({ consistency: 'eventual', host: h }).then((r) => r.value, () => -1n));
    return vs.every((v) => v === vs[0]) && vs[0]! >= acknowledged;
  });
  const final = (await kv1!.counter('hits').value({ r: 3 })).value;
  t.ok(final >= acknowledged && final <= acknowledged + maybe,
    `value ${final} = acknowledged ${acknowledged} (+ up to ${maybe} that may have been applied; ${failures.length} failed: ${failures.slice(0, 3).join(', ')})`);
  if (maybe === 0n) t.equal(final, acknowledged, 'every increment acknowledged, so exactly their sum');

  await waitFor('every copy of the set to converge', async () => {
    const ms = await everyCopy(clients, hosts, (kv, h) => kv.set('cart').members({ consistency: 'eventual', host: h }).then((r) => r.members.join(','), () => '?'));
    return ms.every((m) => m === ms[0]) && ms[0] !== '?' && ms[0]!.includes('d') && ms[0]!.includes('e');
  });
  t.same((await kv1!.set('cart').members({ r: 3 })).members, ['a', 'd', 'e'], 'adds minus observed removes; the concurrent re-add of a wins');
});

t.test('retries apply once, limits and key space are enforced, reset and delete', async (t) => {
  const cluster = await testCluster(t, { nodes: 3, nodeArgs: fastNodeArgs });
  const kv = await connect({ hosts: cluster.hosts, timeoutMs: 3000 });
  t.teardown(() => kv.close());
  const c = kv.counter('big');
  const r1 = await c.increment(2n ** 53n);
  t.equal(r1.value, 2n ** 53n, 'increment returns the new value');
  t.equal((await c.increment(1)).value, 2n ** 53n + 1n, 'exact past 2^53');
  t.equal((await c.decrement(2)).value, 2n ** 53n - 1n);
  t.equal((await c.reset()).value, 0n, 'reset');
  const top = kv.counter('top');
  t.equal((await top.increment(2n ** 63n - 1n)).value, 2n ** 63n - 1n, 'up to 2^63 - 1');
  await t.rejects(top.increment(1), { code: 'COUNTER_OVERFLOW' }, 'refused before it would leave signed 64 bits');
  t.equal((await top.value({ consistency: 'strong' })).value, 2n ** 63n - 1n, 'nothing was changed by the refusal');
  t.equal((await kv.counter('never').value()).found, false, 'a counter never written is not found (value 0)');

  const wid = Buffer.from('retry-of-one-increment');
  const body = { type: 'counter', key: 'retried', op: 'incr', n: 7, wid, w: 3 };
  await rawUpdate(cluster, 'n1', body);
  await rawUpdate(cluster, 'n1', body);
  const again = await rawUpdate(cluster, 'n2', body);
  t.equal(again.value, '7', 'the same write id through the same and another node: applied once');
  t.equal((await kv.counter('retried').value({ r: 3 })).value, 7n);

  const s = kv.set('s');
  await s.add('x');
  await s.add('y');
  t.equal((await s.remove('absent')).size, 2, 'removing an absent member changes nothing');
  await s.delete();
  t.same((await s.members()).members, [], 'delete removes every member seen');

  await t.rejects(kv.put('\u0000c:big', 'plain'), { code: 'INVALID_ARGUMENT' }, 'a plain key may not enter the typed key space');
  await t.rejects(kv.set('s').add(''), { code: 'INVALID_ARGUMENT' }, 'an empty member is refused');
  await t.rejects(kv.counter('x').increment(1.5), { code: 'INVALID_ARGUMENT' });
  await t.rejects(kv.counter('k'.repeat(1022)).increment(1), { code: 'TOO_LARGE' }, 'a typed key leaves room for its prefix');
});
