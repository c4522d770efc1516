// Sessions over real processes: 3 nodes with 20 ms of injected one-way delay
// on every node-to-node link (the fault layer, as `cluster faults
// --delay-ms 20` sets it). A session's `eventual` write through n1 is read
// back through n2 at `eventual` right away: n2's own copy is 20 ms behind,
// so only a read that looks further returns it. Without a session the same
// read shows the older state.
import t from 'tap';
import { connect, TuneKvError } from '../../src/index.js';
import { delayedCluster } from '../helpers/cluster.js';

const rounds = 20;

t.test('sessions with 20 ms between nodes', async (t) => {
  const { cluster, hosts: [n1, n2, n3], kv } = await delayedCluster(t, 20);
  const eventual = 'eventual' as const;

  await t.test('a session reads its eventual write through another node, every time', async (t) => {
    const s = kv.session();
    let further = 0;
    for (let i = 0; i < rounds; i++) {
      const via = i % 2 === 0 ? n2 : n3;
      await s.put('s:profile', `v${i}`, { consistency: eventual, host: n1 });
      const got = await s.get('s:profile', { consistency: eventual, host: via });
      t.same(got.values, [`v${i}`], `round ${i}: the session's write, alone (its put superseded the last)`);
      if ((got.lookedFurther ?? 0) > 0) {
        further++;
        t.ok(got.replicas.some((r) => r.behind === true), `round ${i}: the replica that was behind is marked`);
      }
    }
    t.ok(further > 0, `the reply said it looked further (${further} of ${rounds})`);
    t.comment(`session reads that looked further: ${further} of ${rounds}`);
  });

  await t.test('without a session the same read shows the older state', async (t) => {
    let stale = 0;
    for (let i = 0; i < rounds; i++) {
      const key = `plain:${i}`;
      await kv.put(key, 'new', { consistency: eventual, host: n1 });
      const got = await kv.get(key, { consistency: eventual, host: n2 });
      if (!got.found) stale++;
    }
    t.comment(`plain eventual reads that missed the write just acknowledged: ${stale} of ${rounds}`);
    t.ok(stale > 0, 'at least one plain read was behind');
  });

  await t.test('a token carries the session to another client', async (t) => {
    const s = kv.session();
    await s.put('s:cart', 'apple', { consistency: eventual, host: n1 });
    const token = s.token();
    t.match(token, /^[A-Za-z0-9_-]+$/);
    const other = await connect({ hosts: [n3], timeoutMs: 3000 });
    t.teardown(() => other.close());
    const again = other.session(token);
    const got = await again.get('s:cart', { consistency: eventual, host: n3 });
    t.same(got.values, ['apple'], 'the carried session reads the write through n3 at once');
    await again.put('s:cart', 'pear', { consistency: eventual, host: n3 });
    // A copy of a session is a session of its own from there on: the first
    // has not seen pear, so it may read apple or pear, never nothing.
    const back = await again.get('s:cart', { consistency: eventual, host: n2 });
    t.same(back.values, ['pear'], 'the carried session reads its put through n2 at once; it superseded apple');
    const first = await s.get('s:cart', { consistency: eventual, host: n2 });
    t.ok(first.found, `the first session still reads the key (${JSON.stringify(first.values)})`);
  });

  await t.test('a session delete, read back at eventual: gone', async (t) => {
    const s = kv.session();
    await s.put('s:gone', 'x', { consistency: eventual, host: n1 });
    await s.delete('s:gone', { consistency: eventual, host: n1 });
    const got = await s.get('s:gone', { consistency: eventual, host: n2 });
    t.equal(got.found, false, 'the session sees its delete, not the value still on n2');
  });

  await t.test('bad tokens and forged contexts are refused', async (t) => {
    t.throws(() => kv.session('not a token!'), { code: 'INVALID_ARGUMENT' });
    t.throws(() => kv.session('AAAA'), { code: 'INVALID_ARGUMENT' });
    const put = await kv.put('s:forge', 'v', { consistency: 'quorum', host: n1 });
    const { decodeSignedContext, encodeContext } = await import('../../src/client/client.js');
    const { clock, mac } = decodeSignedContext(put.context);
    const forged = encodeContext(clock.map(([a, c, ts]) => [a, c + 1000, ts]), mac!);
    try {
      await kv.get('s:forge', { consistency: eventual, host: n2, atLeast: [forged] });
      t.fail('a forged atLeast was accepted');
    } catch (err) {
      t.ok(err instanceof TuneKvError);
      t.equal((err as TuneKvError).code, 'INVALID_ARGUMENT', 'the node checks the MAC');
    }
  });

  await t.test('no replica current: SESSION_UNAVAILABLE, never the older data', async (t) => {
    const s = kv.session();
    const ids = cluster.file().nodes.map((nd) => nd.id);
    await s.put('s:alone', 'old', { consistency: 'strong', host: n1 });
    await cluster.partition([[ids[0]!], [ids[1]!, ids[2]!]]);
    t.teardown(() => cluster.heal());
    await s.put('s:alone', 'new', { consistency: eventual, host: n1, timeoutMs: 1000 });
    try {
      const got = await s.get('s:alone', { consistency: eventual, host: n2, timeoutMs: 1000 });
      t.fail(`answered ${JSON.stringify(got.values)}`);
    } catch (err) {
      t.ok(err instanceof TuneKvError);
      t.equal((err as TuneKvError).code, 'SESSION_UNAVAILABLE');
      const d = (err as TuneKvError).details;
      t.ok((d.behind as number) >= 1, `behind replicas counted (${String(d.behind)})`);
      t.ok(Array.isArray(d.replicas), 'the replica facts are there');
    }
    const plain = await kv.get('s:alone', { consistency: eventual, host: n2 });
    t.same(plain.values, ['old'], 'a plain read returns the older value there');
    await cluster.heal();
    const after = await s.get('s:alone', { consistency: eventual, host: n2 });
    t.same(after.values, ['new'], 'healed: the session reads its write');
  });
});
