// Counters and sets in a session over real processes: 3 nodes with 20 ms of
// injected one-way delay on every node-to-node link. A session's `eventual`
// increment (or set add/remove) through n1 is read back through n2 at
// `eventual` at once: n2's own copy is 20 ms behind, so only a read that
// looks further returns it. Without a session the same read is often stale.
import t from 'tap';
import { connect } from '../../src/index.js';
import { delayedCluster } from '../helpers/cluster.js';

const rounds = 20;

t.test('typed sessions with 20 ms between nodes', async (t) => {
  const { hosts: [n1, n2, n3], kv } = await delayedCluster(t, 20);
  const eventual = 'eventual' as const;

  await t.test('a session reads its eventual increment through another node, every time', async (t) => {
    const s = kv.session();
    const hits = s.counter('ts:hits');
    let further = 0;
    for (let i = 1; i <= rounds; i++) {
      await hits.increment(1, { consistency: eventual, host: n1 });
      const got = await hits.value({ consistency: eventual, host: i % 2 === 0 ? n2 : n3 });
      t.equal(got.value, BigInt(i), `round ${i}: the session's ${i} increments`);
      if ((got.lookedFurther ?? 0) > 0) further++;
    }
    t.ok(further > 0, `the reply said it looked further (${further} of ${rounds})`);
    t.comment(`session counter reads that looked further: ${further} of ${rounds}`);
  });

  await t.test('without a session the same read is often stale', async (t) => {
    let stale = 0;
    for (let i = 0; i < rounds; i++) {
      const c = kv.counter(`tp:${i}`);
      await c.increment(1, { consistency: eventual, host: n1 });
      if ((await c.value({ consistency: eventual, host: n2 })).value !== 1n) stale++;
    }
    t.comment(`plain eventual counter reads that missed the increment just acknowledged: ${stale} of ${rounds}`);
    t.ok(stale > 0, 'at least one plain read was behind');
  });

  await t.test('set adds and removes: read your writes through another node; reads never go back', async (t) => {
    const s = kv.session();
    const cart = s.set('ts:cart');
    for (let i = 0; i < rounds / 2; i++) {
      await cart.add(`m${i}`, { consistency: eventual, host: n1 });
      const got = await cart.members({ consistency: eventual, host: n2 });
      t.ok(got.members.includes(`m${i}`), `round ${i}: the session's add is there`);
      await cart.remove(`m${i}`, { consistency: eventual, host: n1 });
      const after = await cart.members({ consistency: eventual, host: n3 });
      t.notOk(after.members.includes(`m${i}`), `round ${i}: the session's remove is there`);
    }
  });

  await t.test('a session remove through a node that missed the add the session read removes it', async (t) => {
    const other = await connect({ hosts: [n3], timeoutMs: 3000 });
    t.teardown(() => other.close());
    for (let i = 0; i < 5; i++) {
      const key = `ts:wfr:${i}`;
      await other.set(key).add('apple', { consistency: eventual, host: n3 });
      const s = kv.session();
      const got = await s.set(key).members({ consistency: eventual, host: n3 });
      t.same(got.members, ['apple']);
      const rm = await s.set(key).remove('apple', { consistency: eventual, host: n1 });
      t.equal(rm.held, true, `round ${i}: the remove observed the add the session read (writes-follow-reads)`);
    }
  });

  await t.test('a token carries a typed session to another client', async (t) => {
    const s = kv.session();
    await s.counter('ts:carried').increment(7, { consistency: eventual, host: n1 });
    const other = await connect({ hosts: [n3], timeoutMs: 3000 });
    t.teardown(() => other.close());
    const again = other.session(s.token());
    t.equal((await again.counter('ts:carried').value({ consistency: eventual, host: n3 })).value, 7n);
    t.equal(again.keys, 1, 'the typed key counts as one of the session\'s keys');
  });

  await t.test('a forged version is refused', async (t) => {
    const s = kv.session();
    await s.counter('ts:forged').increment(1, { consistency: eventual, host: n1 });
    const { pack, unpack } = await import('../../src/protocol/codec.js');
    const raw = unpack(Buffer.from(s.token(), 'base64url')) as [number, [string, [unknown[], Uint8Array][]][]];
    const entry = raw[1][0]![1][0]!;
    (entry[0][0] as unknown[])[1] = 1000;
    const forged = kv.session(pack(raw).toString('base64url'));
    await t.rejects(forged.counter('ts:forged').value({ consistency: eventual, host: n2 }), { code: 'INVALID_ARGUMENT' });
  });
});
