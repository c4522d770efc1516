// Real processes over real TCP and LevelDB: the client library against a
// 3-node cluster started by the launcher.
import t from 'tap';
import type { Test } from 'tap';
import { connect, TuneKvError } from '../../src/index.js';
import type { TuneKvClient } from '../../src/index.js';
import { testCluster } from '../helpers/cluster.js';

async function rejects(t: Test, p: Promise<unknown>, code: string): Promise<TuneKvError | undefined> {
  try {
    await p;
    t.fail(`expected ${code}`);
  } catch (err) {
    t.ok(err instanceof TuneKvError, `${code}: a TuneKvError`);
    t.equal((err as TuneKvError).code, code);
    return err as TuneKvError;
  }
  return undefined;
}

t.test('a 3-node cluster of real processes', async (t) => {
  const cluster = await testCluster(t);
  let kv: TuneKvClient = await connect({ hosts: [cluster.hosts[0]!], timeoutMs: 3000 });
  t.teardown(() => kv.close());

  await t.test('put and get at every level', async (t) => {
    for (const consistency of ['eventual', 'quorum', 'strong'] as const) {
      const put = await kv.put(`level:${consistency}`, `v-${consistency}`, { consistency });
      t.equal(put.level, consistency);
      t.equal(put.replicas.length, 3);
      const got = await kv.get(`level:${consistency}`, { consistency });
      t.same(got.values, [`v-${consistency}`], `${consistency} reads its own write`);
      t.equal(got.level, consistency);
      t.ok(got.replicas.every((r) => r.role === 'primary'), 'every replica is a primary');
    }
    const all = await kv.put('level:rw', Buffer.from([0, 1, 2]), { w: 3 });
    t.equal(all.w, 3);
    t.same(all.replicas.map((r) => r.outcome), ['ok', 'ok', 'ok']);
    const got = await kv.get('level:rw', { r: 3 });
    t.same(got.values, [Buffer.from([0, 1, 2])], 'bytes come back as bytes');
    await kv.put('level:obj', { items: [1, 2], note: 'msgpack' });
    t.same((await kv.get('level:obj')).values, [{ items: [1, 2], note: 'msgpack' }], 'objects round-trip');
  });

  await t.test('siblings and contexts', async (t) => {
    await kv.put('cart:42', 'apple');
    await kv.put('cart:42', 'pear');
    const got = await kv.get('cart:42');
    t.same([...got.values].sort(), ['apple', 'pear'], 'two puts without context: two siblings');
    t.equal(got.siblings, 2);
    await kv.put('cart:42', 'apple+pear', { context: got.context });
    const after = await kv.get('cart:42', { r: 3 });
    t.same(after.values, ['apple+pear'], 'a put with the read context: one value');
    await kv.delete('cart:42', { context: after.context });
    t.equal((await kv.get('cart:42')).found, false, 'deleted');
  });

  await t.test('client-side validation', async (t) => {
    await rejects(t, kv.get(''), 'INVALID_ARGUMENT');
    await rejects(t, kv.put('k', 'v', { context: 'not a context!' }), 'INVALID_ARGUMENT');
    await rejects(t, kv.get('k', { r: 4 }), 'INVALID_ARGUMENT');
    await rejects(t, kv.put('k', Buffer.alloc(1024 * 1024 + 1)), 'TOO_LARGE');
    await rejects(t, kv.get('k', { consistency: 'linearizable' as never }), 'INVALID_ARGUMENT');
  });

  await t.test('stop and start the cluster: data is still there', async (t) => {
    await kv.put('durable:1', 'kept', { consistency: 'strong' });
    await kv.close();
    await cluster.stop();
    await cluster.start();
    kv = await connect({ hosts: [cluster.hosts[0]!], timeoutMs: 3000 });
    const got = await kv.get('durable:1', { consistency: 'strong' });
    t.same(got.values, ['kept']);
    t.same((await kv.get('level:quorum', { r: 3 })).values, ['v-quorum']);
  });

  await t.test('kill 1 of 3: quorum and strong still succeed, w=3 fails', async (t) => {
    await cluster.kill('n3');
    for (let i = 0; i < 20; i++) {
      await kv.put(`after-kill:${i}`, `v${i}`);
      t.same((await kv.get(`after-kill:${i}`, { consistency: 'strong' })).values, [`v${i}`]);
    }
    const strong = await kv.put('after-kill:strong', 's', { consistency: 'strong' });
    t.same(strong.replicas.find((r) => r.node === 'n3')?.outcome, 'failed', 'the reply says n3 failed');
    const e = await rejects(t, kv.put('after-kill:all', 'x', { w: 3 }), 'QUORUM_UNAVAILABLE');
    t.equal(e?.details.required, 3);
    t.equal(e?.details.failed, 1);
    await rejects(t, kv.get('after-kill:0', { r: 3 }), 'QUORUM_UNAVAILABLE');
    await cluster.restart('n3');
    const back = await kv.get('after-kill:0', { r: 3 });
    t.same(back.values, ['v0'], 'n3 back: r=3 succeeds');
  });
});
