// The coordinator over the in-memory network: real nodes, memory storage,
// one manual clock.
import t from 'tap';
import type { Test } from 'tap';
import { liveSiblings } from '../../src/core/clock/object.js';
import { MsgType } from '../../src/protocol/messages.js';
import type { GetReplyBody, PutReplyBody } from '../../src/protocol/messages.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';
import { TuneKvError } from '../../src/errors.js';

const bytes = (s: string) => Buffer.from(s);
const text = (v: [number, Uint8Array]) => Buffer.from(v[1]).toString();

async function cluster(config = {}): Promise<MemoryCluster> {
  const c = new MemoryCluster({ nodes: 3, config });
  await c.start();
  return c;
}

async function expectError(t: Test, p: Promise<unknown>, code: string): Promise<TuneKvError | undefined> {
  try {
    await p;
    t.fail(`expected ${code}`);
    return undefined;
  } catch (err) {
    t.ok(err instanceof TuneKvError, 'a TuneKvError');
    t.equal((err as TuneKvError).code, code);
    return err as TuneKvError;
  }
}

t.test('put and get at every level', async (t) => {
  const c = await cluster();
  for (const consistency of ['eventual', 'quorum', 'strong']) {
    const put = await c.put('n1', { key: `k-${consistency}`, value: bytes(consistency), vtype: 1, consistency });
    t.equal(put.type, MsgType.PUT_REPLY);
    const got = await c.get('n2', { key: `k-${consistency}`, consistency });
    const body = got.body as GetReplyBody;
    t.equal(body.found, true, `${consistency}: found`);
    t.same(body.values.map(text), [consistency]);
    t.equal(body.level, consistency);
    t.ok(body.replicas.length === 3, 'the reply lists every replica asked');
  }
  const explicit = await c.put('n3', { key: 'k-3-3', value: bytes('x'), w: 3 });
  t.same((explicit.body as PutReplyBody).replicas.map((r) => r.outcome), ['ok', 'ok', 'ok'], 'w=3: all three acked before the reply');
  const read3 = await c.get('n1', { key: 'k-3-3', r: 3 });
  t.equal((read3.body as GetReplyBody).r, 3);
  const missing = await c.get('n1', { key: 'nope' });
  t.equal((missing.body as GetReplyBody).found, false);
});

t.test('a replica down: quorum and strong succeed, w=3 and r=3 fail with the facts', async (t) => {
  const c = await cluster();
  await c.crash('n3');
  await c.put('n1', { key: 'k', value: bytes('v') });
  await c.put('n1', { key: 'k2', value: bytes('v'), consistency: 'strong' });
  const got = await c.get('n2', { key: 'k', consistency: 'strong' });
  t.same((got.body as GetReplyBody).values.map(text), ['v']);
  const e = await expectError(t, c.put('n1', { key: 'k', value: bytes('w'), w: 3 }), 'QUORUM_UNAVAILABLE');
  t.same([e?.details.required, e?.details.failed], [3, 1], 'needed 3, one failed: it fails at once, without waiting for the rest');
  await expectError(t, c.get('n1', { key: 'k', r: 3 }), 'QUORUM_UNAVAILABLE');
});

t.test('two replicas down: quorum fails, eventual still answers', async (t) => {
  const c = await cluster();
  await c.put('n1', { key: 'k', value: bytes('v'), w: 3 });
  await c.crash('n2');
  await c.crash('n3');
  await expectError(t, c.get('n1', { key: 'k' }), 'QUORUM_UNAVAILABLE');
  await expectError(t, c.get('n1', { key: 'k', consistency: 'strong' }), 'QUORUM_UNAVAILABLE');
  const got = await c.get('n1', { key: 'k', consistency: 'eventual' });
  t.same((got.body as GetReplyBody).values.map(text), ['v']);
});

t.test('a silent replica makes w=3 time out', async (t) => {
  const c = await cluster({ requestTimeoutMs: 200 });
  c.network.policy = (_from, to) => (to === 'n3' ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  const e = await expectError(t, c.put('n1', { key: 'k', value: bytes('v'), w: 3 }), 'TIMEOUT');
  t.same([e?.details.required, e?.details.received], [3, 2]);
});

t.test('siblings: two puts without context, then a put with the read context', async (t) => {
  const c = await cluster();
  await c.put('n1', { key: 'cart', value: bytes('a') });
  await c.put('n2', { key: 'cart', value: bytes('b') });
  const got = (await c.get('n3', { key: 'cart' })).body as GetReplyBody;
  t.same(got.values.map(text).sort(), ['a', 'b'], 'two siblings');
  await c.put('n3', { key: 'cart', value: bytes('ab'), context: got.context });
  const after = (await c.get('n1', { key: 'cart', r: 3 })).body as GetReplyBody;
  t.same(after.values.map(text), ['ab'], 'one value');
});

t.test('delete: a tombstone hides the value; a delete without context deletes what it reads', async (t) => {
  const c = await cluster();
  await c.put('n1', { key: 'd', value: bytes('v') });
  await c.call('n2', MsgType.DELETE, { key: 'd' });
  const got = (await c.get('n3', { key: 'd', r: 3 })).body as GetReplyBody;
  t.equal(got.found, false);
  t.equal(got.tombstones, 1, 'a tombstone, with a clock');
  await c.put('n1', { key: 'd', value: bytes('again'), context: got.context });
  t.same(((await c.get('n2', { key: 'd' })).body as GetReplyBody).values.map(text), ['again'], 'a put with the context replaces the tombstone');
});

t.test('strong read writes back to a majority before replying', async (t) => {
  const c = await cluster({ readRepair: false });
  // Only n1 gets the write.
  c.network.policy = (from, to) => (from === 'n1' && to !== 'client' ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  await c.put('n1', { key: 'k', value: bytes('only-n1'), consistency: 'eventual' });
  // n3 answers slowly, so the read reaches R=2 with n2 (empty) and n1 (the value).
  c.network.policy = (from, to) => ({ fate: 'deliver', delayMs: from === 'n3' || to === 'n3' ? 50 : 1 });
  const n2Before = await c.node('n2').store.read('k');
  t.equal(n2Before, undefined, 'n2 does not have it yet');
  const got = (await c.get('n2', { key: 'k', consistency: 'strong' })).body as GetReplyBody;
  t.same(got.values.map(text), ['only-n1']);
  const holders = [];
  for (const id of ['n1', 'n2', 'n3']) {
    const o = await c.node(id).store.read('k');
    if (o && liveSiblings(o).length === 1) holders.push(id);
  }
  t.ok(holders.length >= 2, `a majority holds it when the reply arrives: ${holders.join(', ')}`);
  t.ok(holders.includes('n2'), 'the stale primary was written back');
});

t.test('read repair brings a stale replica up to date after a quorum read', async (t) => {
  // Every read asks all three here, so the stale n3 is read and repaired.
  const c = await cluster({ readRepairChance: 1 });
  c.network.policy = (from, to) => (from === 'n1' && to === 'n3' ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  await c.put('n1', { key: 'k', value: bytes('v'), w: 2 });
  await c.runFor(2000);
  t.equal(await c.node('n3').store.read('k'), undefined, 'n3 missed the write');
  c.network.policy = () => ({ fate: 'deliver', delayMs: 1 });
  await c.get('n1', { key: 'k' });
  await c.runFor(2000);
  const o = await c.node('n3').store.read('k');
  t.ok(o && liveSiblings(o).length === 1, 'n3 was repaired');
  t.equal(c.node('n1').coordinator.stats.readRepairs, 1, 'and it was counted');
});

t.test('bad requests get INVALID_ARGUMENT or TOO_LARGE', async (t) => {
  const c = await cluster();
  await expectError(t, c.get('n1', { key: '' }), 'INVALID_ARGUMENT');
  await expectError(t, c.get('n1', { key: 'k', r: 4 }), 'INVALID_ARGUMENT');
  await expectError(t, c.get('n1', { key: 'k', consistency: 'all' }), 'INVALID_ARGUMENT');
  await expectError(t, c.put('n1', { key: 'k', value: 'not bytes' }), 'INVALID_ARGUMENT');
  await expectError(t, c.put('n1', { key: 'k', value: bytes('v'), context: [['x', -1, 0]] }), 'INVALID_ARGUMENT');
  await expectError(t, c.put('n1', { key: 'x'.repeat(1025), value: bytes('v') }), 'TOO_LARGE');
  await expectError(t, c.put('n1', { key: 'k', value: Buffer.alloc(1024 * 1024 + 1) }), 'TOO_LARGE');
  await expectError(t, c.call('n1', 99, {}), 'PROTOCOL_ERROR');
});

t.test('the sibling limit stops sibling explosion; resolving is always allowed', async (t) => {
  const c = await cluster();
  for (let i = 0; i < 100; i++) await c.put('n1', { key: 'hot', value: bytes(String(i)), w: 1 });
  const e = await expectError(t, c.put('n1', { key: 'hot', value: bytes('one too many') }), 'SIBLINGS_LIMIT');
  t.equal(e?.details.limit, 100);
  t.ok(c.node('n1').coordinator.stats.siblingWarnings > 0, 'warned before failing');
  const got = (await c.get('n1', { key: 'hot', r: 3 })).body as GetReplyBody;
  t.equal(got.values.length, 100);
  await c.put('n1', { key: 'hot', value: bytes('resolved'), context: got.context });
  t.same(((await c.get('n2', { key: 'hot' })).body as GetReplyBody).values.map(text), ['resolved']);
});

t.test('last-writer-wins on request', async (t) => {
  const c = await cluster();
  await c.put('n1', { key: 'k', value: bytes('a') });
  await c.put('n2', { key: 'k', value: bytes('b') });
  await c.put('n3', { key: 'k', value: bytes('lww'), lww: true });
  t.same(((await c.get('n1', { key: 'k', r: 3 })).body as GetReplyBody).values.map(text), ['lww']);
});

/** Every message n1 sends to n2 or n3 first moves their ring on one version
 * (as a claimant stepping a transition would), at most `steps` times: n1's
 * replica requests keep naming a ring they have left behind. */
function moveRingUnderN1(c: MemoryCluster, steps: number): { moved: () => number } {
  let moved = 0;
  c.network.policy = (from, to) => {
    if (from === 'n1' && (to === 'n2' || to === 'n3') && moved < steps) {
      moved++;
      for (const id of ['n2', 'n3']) {
        const ring = c.node(id).ring!;
        void c.node(id).adoptRing({ ...ring, version: c.ringNow().version + 1 });
      }
    }
    return { fate: 'deliver', delayMs: 1 };
  };
  return { moved: () => moved };
}

t.test('a fenced request is retried on the refreshed ring until it succeeds, past three steps', async (t) => {
  const c = await cluster({ requestTimeoutMs: 2000 });
  await c.put('n2', { key: 'k', value: bytes('other'), w: 3 });
  const ring = moveRingUnderN1(c, 20);
  const put = await c.put('n1', { key: 'k', value: bytes('mine'), consistency: 'strong' });
  t.equal(put.type, MsgType.PUT_REPLY, 'the put succeeds once the ring stops moving');
  t.equal(ring.moved(), 20, 'the ring moved twenty times under it');
  t.ok(c.node('n1').coordinator.stats.staleRingRetries > 3, `retried ${c.node('n1').coordinator.stats.staleRingRetries} times`);
  const got = (await c.get('n2', { key: 'k', r: 3 })).body as GetReplyBody;
  // Each retry superseded what the attempt before it wrote, and only that:
  // one 'mine' (not one per attempt), and the earlier 'other' survives.
  t.same(got.values.map(text).sort(), ['mine', 'other']);
  const strong = await c.get('n1', { key: 'k', consistency: 'strong' });
  t.same((strong.body as GetReplyBody).values.map(text).sort(), ['mine', 'other'], 'a strong get through n1 works too');
});

t.test('a request whose ring keeps moving until its deadline fails with STALE_RING', async (t) => {
  const c = await cluster({ requestTimeoutMs: 500 });
  moveRingUnderN1(c, Number.POSITIVE_INFINITY);
  const startMs = c.clock.nowMs();
  const e = await expectError(t, c.put('n1', { key: 'k', value: bytes('v'), consistency: 'strong' }), 'STALE_RING');
  const tookMs = c.clock.nowMs() - startMs;
  t.ok(tookMs >= 400 && tookMs <= 700, `answered at the deadline (${tookMs} ms)`);
  t.ok((e?.details.attempts as number) > 3, `more than three attempts (${String(e?.details.attempts)})`);
  t.equal(e?.details.lastCode, 'QUORUM_UNAVAILABLE', 'the last attempt failed its quorum');
  t.equal(e?.details.required, 2, 'and its facts are kept');
  const g = await expectError(t, c.get('n1', { key: 'k', consistency: 'strong' }), 'STALE_RING');
  t.ok((g?.details.attempts as number) > 3);
});

/** Five nodes, N=5: a quorum read (R=3) asks R+1 = 4, so one is left. */
async function cluster5(config = {}): Promise<MemoryCluster> {
  const c = new MemoryCluster({ nodes: 5, n: 5, config });
  await c.start();
  return c;
}

t.test('a quorum read asks R replicas and one more, the coordinator first; the rest are notasked', async (t) => {
  const c = await cluster5({ readRepairChance: 0 });
  await c.put('n1', { key: 'k', value: bytes('v'), w: 5 });
  const body = (await c.get('n2', { key: 'k' })).body as GetReplyBody;
  t.same(body.values.map(text), ['v']);
  const asked = body.replicas.filter((r) => r.outcome !== 'notasked').map((r) => r.node);
  t.equal(asked.length, 4, 'R=3 of N=5 asked, plus one (the hedge)');
  t.ok(asked.includes('n2'), 'the coordinator reads its own copy');
  t.equal(body.replicas.filter((r) => r.outcome === 'notasked').length, 1, 'the fifth is reported notasked');
  const n3 = await cluster({ readRepairChance: 0 });
  await n3.put('n1', { key: 'k', value: bytes('v'), w: 3 });
  const q3 = (await n3.get('n2', { key: 'k' })).body as GetReplyBody;
  t.equal(q3.replicas.filter((r) => r.outcome === 'notasked').length, 0, 'N=3: a quorum read asks all three (R=2 plus one)');
  const eventual = (await n3.get('n3', { key: 'k', consistency: 'eventual' })).body as GetReplyBody;
  t.same(eventual.replicas.map((r) => [r.node, r.outcome]).filter(([, o]) => o !== 'notasked'), [['n3', 'ok']], 'eventual reads only the coordinator');
});

t.test('an asked replica that stays silent: the read asks the next after speculativeRetryMs', async (t) => {
  const c = await cluster5({ readRepairChance: 0, speculativeRetryMs: 20, requestTimeoutMs: 2000 });
  await c.put('n1', { key: 'k', value: bytes('v'), w: 5 });
  const first = (await c.get('n1', { key: 'k' })).body as GetReplyBody;
  // Two asked replicas silent: R=3 needs the coordinator, the one left, and the spare.
  const others = first.replicas.filter((r) => r.outcome === 'ok' && r.node !== 'n1').map((r) => r.node).slice(0, 2);
  const other = others[0]!;
  const spare = first.replicas.find((r) => r.outcome === 'notasked')!.node;
  c.network.policy = (_from, to) => (others.includes(to) ? { fate: 'drop' } : { fate: 'deliver', delayMs: 1 });
  const before = c.clock.nowMs();
  const got = (await c.get('n1', { key: 'k' })).body as GetReplyBody;
  const tookMs = c.clock.nowMs() - before;
  t.same(got.values.map(text), ['v'], 'answered by the coordinator and the spare');
  t.same(got.replicas.find((r) => r.node === spare)?.outcome, 'ok', `${spare} was asked once ${other} stayed silent`);
  t.same(got.replicas.find((r) => r.node === other)?.outcome, 'pending', `${other} never answered`);
  t.ok(tookMs >= 20 && tookMs < 100, `answered after the speculative retry, not the deadline (${tookMs} ms)`);
  t.equal(c.node('n1').coordinator.stats.speculativeReads, 1, 'counted');
});

t.test('readRepairChance 1 asks every replica on every read', async (t) => {
  const c = await cluster({ readRepairChance: 1 });
  await c.put('n1', { key: 'k', value: bytes('v'), w: 3 });
  const got = (await c.get('n1', { key: 'k', consistency: 'eventual' })).body as GetReplyBody;
  t.equal(got.replicas.filter((r) => r.outcome === 'notasked').length, 0, 'nobody left out');
});
