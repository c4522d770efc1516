// A context is signed for the key it was issued for: handed back with a
// put (or a session read's atLeast) of another key it is refused. Dot
// counters are a node's clock in µs, shared by all the keys it
// coordinates, so a later context of key A would otherwise cover, and a put
// of key B with it supersede, versions of B no read of B ever showed (red
// team, issue 10: an acknowledged value was wiped that way).
import t from 'tap';
import { connect } from '../../src/index.js';
import { testCluster } from '../helpers/cluster.js';

t.test('contexts are bound to their key', async (t) => {
  const cluster = await testCluster(t, { nodes: 3 });
  const [n1, n2] = cluster.hosts as [string, string, string];
  const kv = await connect({ hosts: [n1], timeoutMs: 3000 });
  t.teardown(() => kv.close());

  await kv.put('b', 'precious', { host: n1 });
  await new Promise((r) => setTimeout(r, 5));
  const a = await kv.put('a', 'x', { host: n1 });
  await t.rejects(kv.put('b', 'mine', { context: a.context, host: n1 }), { code: 'INVALID_ARGUMENT' }, 'a put of b with a\'s context is refused');
  await t.rejects(kv.delete('b', { context: a.context, host: n2 }), { code: 'INVALID_ARGUMENT' }, 'so is a delete, on any node');
  await t.rejects(kv.get('b', { atLeast: [a.context], host: n2 }), { code: 'INVALID_ARGUMENT' }, 'and a read asking for a\'s state of b');
  const got = await kv.get('b', { consistency: 'quorum' });
  t.same(got.values, ['precious'], 'the acknowledged value is still there, alone');
  const next = await kv.put('b', 'next', { context: got.context, host: n2 });
  t.equal(next.siblings, 1, 'b\'s own context still supersedes what its read saw');
  t.same((await kv.get('b', { atLeast: [next.context], host: n1 })).values, ['next'], 'and still works as a session\'s atLeast');
});
