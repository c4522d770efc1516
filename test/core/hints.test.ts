// Hinted handoff on the in-memory cluster: hints are stored, survive the
// fallback's restart, are delivered when the owner is back, then deleted.
import t from 'tap';
import { liveSiblings } from '../../src/core/clock/object.js';
import { preferenceListForKey } from '../../src/core/ring/ring.js';
import { MsgType } from '../../src/protocol/messages.js';
import type { PutReplyBody } from '../../src/protocol/messages.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';

t.test('hints survive the fallback\'s restart and are delivered once the owner returns', async (t) => {
  const c = new MemoryCluster({ nodes: 5, q: 16, config: { gossipIntervalMs: 100, suspectAfterMs: 300, downAfterMs: 600, handoffIntervalMs: 100 } });
  await c.start();
  const key = 'hinted';
  const [owner, coordinator] = preferenceListForKey(c.ring, key).primaries as [string, string];
  await c.crash(owner);
  await c.runFor(1000);
  const reply = (await c.call(coordinator, MsgType.PUT, { key, value: Buffer.from('v') })).body as PutReplyBody;
  const standIn = reply.replicas.find((r) => r.role === 'fallback');
  t.ok(standIn, `a fallback stood in: ${JSON.stringify(reply.replicas)}`);
  t.equal(standIn?.hintFor, owner, 'and the reply names the primary it stood in for');
  const fallback = standIn!.node;
  t.equal(c.node(fallback).hints.pending, 1, 'the fallback holds one hint');

  await c.crash(fallback);
  await c.startNode(fallback);
  t.equal(c.node(fallback).hints.pending, 1, 'the hint survived the fallback\'s restart (read back from storage)');

  await c.startNode(owner);
  await c.runFor(3000);
  t.equal(c.node(fallback).hints.pending, 0, 'delivered and deleted');
  t.equal(c.node(fallback).hints.stats.delivered, 1);
  const onOwner = await c.node(owner).store.read(key);
  t.ok(onOwner && liveSiblings(onOwner).length === 1, 'the owner has the write');
  t.equal(await c.node(fallback).store.read(key), undefined, 'the fallback dropped its copy: it is not a replica');
});

t.test('a hint older than hintAgeMaxMs goes to the key\'s other live primaries and is dropped, counted', async (t) => {
  const c = new MemoryCluster({
    nodes: 5, q: 16,
    config: { gossipIntervalMs: 100, suspectAfterMs: 300, downAfterMs: 600, handoffIntervalMs: 100, hintAgeMaxMs: 2000 },
  });
  await c.start();
  const key = 'aging';
  const [owner, coordinator, third] = preferenceListForKey(c.ring, key).primaries as [string, string, string];
  await c.crash(owner);
  await c.runFor(1000);
  // Only the fallback takes the write: the other primaries miss it.
  c.network.policy = (from, to) => (from === coordinator && to === third ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  const reply = (await c.call(coordinator, MsgType.PUT, { key, value: Buffer.from('v'), w: 2 })).body as PutReplyBody;
  c.network.policy = () => ({ fate: 'deliver', delayMs: 1 });
  const fallback = reply.replicas.find((r) => r.role === 'fallback')!.node;
  t.equal(c.node(fallback).hints.pending, 1);
  await c.runFor(4000);
  t.equal(c.node(fallback).hints.pending, 0, 'the old hint is gone though its owner is still down');
  t.equal(c.node(fallback).hints.stats.expired, 1, 'counted as expired');
  const onThird = await c.node(third).store.read(key);
  t.ok(onThird && liveSiblings(onThird).length === 1, 'the write reached the key\'s other live primary instead');
});
