// Hinted handoff on the in-memory cluster: hints are stored, survive the
// fallback's restart, are delivered when the owner is back, then deleted.
import t from 'tap';
import { liveSiblings } from '../../src/core/clock/object.js';
import { preferenceListForKey } from '../../src/core/ring/ring.js';
import { MsgType } from '../../src/protocol/messages.js';
import type { PutReplyBody } from '../../src/protocol/messages.js';
import { mapLimit } from '../../src/server/concurrency.js';
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

t.test('a hint whose write fails leaves the index: no pending hint that nothing will deliver', async (t) => {
  const c = new MemoryCluster({ nodes: 5, q: 16, config: { gossipIntervalMs: 100, suspectAfterMs: 300, downAfterMs: 600, handoffIntervalMs: 100 } });
  await c.start();
  const key = 'unhintable';
  const [owner, coordinator] = preferenceListForKey(c.ring, key).primaries as [string, string];
  await c.crash(owner);
  await c.runFor(1000);
  // Every disk but the coordinator's is full: the fallback can keep neither the object nor the hint.
  for (const id of c.ids) if (id !== coordinator && id !== owner) c.storages.get(id)!.failWrites = new Error('IO error: No space left on device');
  const reply = await c.call(coordinator, MsgType.PUT, { key, value: Buffer.from('v'), w: 1 });
  const replicas = (reply.body as PutReplyBody).replicas;
  const fallback = replicas.find((r) => r.role === 'fallback');
  t.ok(fallback, `a fallback was asked: ${JSON.stringify(replicas)}`);
  await c.runFor(200);
  t.same(await c.storages.get(fallback!.node)!.range({ gte: 'h', lt: 'i', limit: 10 }), [], 'no hint reached its disk');
  for (const id of c.ids) {
    if (!c.isRunning(id)) continue;
    t.equal(c.node(id).hints.pending, 0, `${id} holds no hint in memory`);
  }
  t.equal(c.node(fallback!.node).hints.stats.failedWrites, 1, 'the failed hint write is counted');
  t.equal(c.node(fallback!.node).hints.stats.stored, 0, 'and not counted as stored');
});

t.test('mapLimit: bounded, ordered, and settled before it rejects', async (t) => {
  let running = 0;
  let peak = 0;
  const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (ms) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, ms));
    running--;
    return ms * 10;
  });
  t.same(out, [50, 10, 40, 20, 30, 0, 60], 'results in item order');
  t.equal(peak, 3, 'never more than the limit at once');
  t.same(await mapLimit([], 4, async () => 1), []);

  const started: number[] = [];
  let inFlight = 0;
  const err = await mapLimit([0, 1, 2, 3, 4, 5], 2, async (i) => {
    started.push(i);
    inFlight++;
    await new Promise((r) => setTimeout(r, i === 1 ? 1 : 10));
    inFlight--;
    if (i === 1) throw new Error('boom');
    return i;
  }).then(() => null, (e: Error) => e);
  t.equal(err?.message, 'boom', 'rejects with the first error');
  t.equal(inFlight, 0, 'only once every call it started has settled');
  t.same(started, [0, 1], 'and starts nothing after the failure');
  await t.rejects(mapLimit([1], 0, async () => 1), TypeError);
});
