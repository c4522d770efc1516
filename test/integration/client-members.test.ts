// The client library keeps up with the members: every host a client was
// created with leaves the cluster, and the client still reaches it through
// the members it learns from the ring (real processes, free ports, a temp
// directory, torn down at the end).
import t from 'tap';
import { connect } from '../../src/index.js';
import { fastNodeArgs, testCluster } from '../helpers/cluster.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ids = (ring: { readonly members: readonly { readonly id: string }[] } | undefined): string[] => (ring?.members ?? []).map((m) => m.id);

t.test('after every node it was given leaves, a client works through the members it learned', async (t) => {
  const cluster = await testCluster(t, { nodeArgs: fastNodeArgs });
  const seed = [cluster.hosts[0]!];
  // One client refreshes its members every 200 ms; the other only when a
  // node fails it (or a new connection's hello shows a newer ring).
  const fresh = await connect({ hosts: seed, timeoutMs: 3000, ringRefreshMs: 200 });
  t.teardown(() => fresh.close());
  const lazy = await connect({ hosts: seed, timeoutMs: 3000, ringRefreshMs: 0 });
  t.teardown(() => lazy.close());
  const keys = Array.from({ length: 20 }, (_, i) => `m:${i}`);
  const readAll = async (kv: typeof lazy, what: string): Promise<void> => {
    const wrong: string[] = [];
    for (const k of keys) {
      const got = await kv.get(k, { consistency: 'strong' });
      if (got.values.length !== 1 || got.values[0] !== `v-${k}`) wrong.push(k);
    }
    t.same(wrong, [], what);
  };
  // Routed writes open a connection to every one of n1, n2, n3.
  for (const k of keys) await lazy.put(k, `v-${k}`, { consistency: 'strong' });
  t.same(ids(lazy.currentRing), ['n1', 'n2', 'n3']);

  const added = await cluster.add(3, { wait: true });
  t.same(added.nodes, ['n4', 'n5', 'n6'], 'three nodes join');
  await cluster.leave('n1', { wait: true });
  t.same(ids(lazy.currentRing), ['n1', 'n2', 'n3'], 'the lazy client has made no request since: its ring is from before');
  // Keys routed to n1 first find it gone (connection refused): the client
  // fails over and refreshes its members from a node still there.
  await readAll(lazy, 'with n1 gone, every key reads back through the lazy client');
  for (let i = 0; i < 20 && ids(lazy.currentRing).includes('n1'); i++) await sleep(100);
  t.same(ids(lazy.currentRing), ['n2', 'n3', 'n4', 'n5', 'n6'], 'and it learned the members (n1 dropped, n4-n6 added)');

  for (const id of ['n2', 'n3']) await cluster.leave(id, { wait: true });
  t.same(cluster.activeHosts().length, 3, 'n1, n2 and n3 left (their processes exited)');
  await sleep(600);
  t.same(ids(fresh.currentRing), ['n4', 'n5', 'n6'], 'the refreshing client learned the members without a request');

  for (const [name, kv] of [['lazy', lazy], ['refreshing', fresh]] as const) {
    await readAll(kv, `every node it was given left: every key reads back through the ${name} client`);
    const put = await kv.put('after', 'x', { consistency: 'strong' });
    t.ok(['n4', 'n5', 'n6'].includes(put.coordinator), `a put is coordinated by a member (${put.coordinator})`);
    const st = await kv.status();
    t.ok(['n4', 'n5', 'n6'].includes(String((st as { nodeId?: unknown }).nodeId)), `status comes from a member (${String((st as { nodeId?: unknown }).nodeId)})`);
  }
  t.same(ids(lazy.currentRing), ['n4', 'n5', 'n6'], 'the lazy client dropped n2 and n3 too');
  // route: false still goes to members it learned, not to the seed.
  const unrouted = await connect({ hosts: cluster.activeHosts().slice(0, 1), route: false, ringRefreshMs: 0 });
  t.teardown(() => unrouted.close());
  t.same((await unrouted.get('m:1')).values, ['v-m:1']);
});
