// A fallback that coordinates a write while every primary of the key is
// down hands its copy to the owners later and deletes it. When it stands in
// for the key again it holds none of its earlier dots there; a dot minted
// under its plain node id would claim them (a clock entry (a, c) covers
// every dot of a up to c), and the owners' merge dropped the first,
// acknowledged write. Stand-in writes mint under a one-write actor.

import t from 'tap';
import { preferenceListForKey } from '../../src/core/ring/ring.js';
import { MsgType } from '../../src/protocol/messages.js';
import type { PutReplyBody } from '../../src/protocol/messages.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

t.test('two blind writes coordinated by the same fallback, with a hand-off between, both survive', async (t) => {
  const c = new MemoryCluster({ nodes: 5, q: 16, seed: 3 });
  await c.start();
  await c.runFor(2000);
  const key = 'k1';
  const { primaries, fallbacks } = preferenceListForKey(c.ringNow(), key);
  const f = fallbacks[0]!;
  const standIn = async (value: string): Promise<PutReplyBody> => {
    for (const p of primaries) await c.crash(p);
    await c.runFor(5000);
    const reply = await c.call(f, MsgType.PUT, { key, value: Buffer.from(value), vtype: 1, consistency: 'eventual' });
    t.equal(reply.type, MsgType.PUT_REPLY, `${value} acknowledged`);
    for (const p of primaries) await c.startNode(p);
    await c.runFor(10_000);
    return reply.body as PutReplyBody;
  };
  const w1 = await standIn('w1');
  t.equal(await c.node(f).store.read(key), undefined, 'the fallback handed w1 off and dropped its copy');
  const w2 = await standIn('w2');
  await c.runFor(10_000); // anti-entropy brings w2 to the primary that had no stand-in
  t.not(w1.dot![0], f, 'not minted under the plain node id');
  t.ok(w1.dot![0].startsWith(`${f}.`) && w2.dot![0].startsWith(`${f}.`), 'stand-in actors name the node');
  t.not(w1.dot![0], w2.dot![0], 'one actor per stand-in write');
  for (const p of primaries) {
    const held = await c.node(p).store.read(key);
    t.same(held?.siblings.map((s) => Buffer.from(s.value ?? []).toString()), ['w1', 'w2'], `${p} keeps both blind writes`);
  }
  // A context naming a stand-in actor is accepted by a coordinator that has
  // not seen the key yet (the actor is a member's).
  const got = await c.get(primaries[0]!, { key, consistency: 'quorum' });
  const ctx = (got.body as { context: unknown }).context;
  const resolved = await c.put(primaries[0]!, { key, value: Buffer.from('w3'), vtype: 1, context: ctx, consistency: 'quorum' });
  t.equal((resolved.body as PutReplyBody).siblings, 1, 'a put with the read context resolves both');
  await c.stopAll();
});
