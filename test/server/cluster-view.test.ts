// The claimant's step loop, driven by hand: one ClusterView (n1, the
// claimant) over a memory store, peers that answer RING_PUSH only when the
// test lets them, and a failure detector that sees everyone up.
//
// What is checked: a plan committed while a step is waiting for its ring
// push is not replaced by a queued plan built on the ring from before that
// commit (the two rings have the same version, so the one that sorted
// higher won and the other plan, with its joiner, vanished: the joiner was
// left holding data as a node without a ring; simulator seeds 532, 577, 911).
import t from 'tap';
import type { Membership } from '../../src/core/membership/membership.js';
import { claim, createRing, memberOf } from '../../src/core/ring/ring.js';
import type { Ring } from '../../src/core/ring/ring.js';
import { inTransition } from '../../src/core/ring/transition.js';
import { makeConfig } from '../../src/config.js';
import { ManualClock } from '../../src/io/clock.js';
import { MemoryStorage } from '../../src/io/storage.js';
import type { PeerTransport } from '../../src/io/transport.js';
import { MsgType } from '../../src/protocol/messages.js';
import { ClusterView } from '../../src/server/cluster-view.js';
import type { PeerReply } from '../../src/server/context.js';
import { ObjectStore } from '../../src/server/object-store.js';

/** n1 as the claimant, over a memory store, with peers that answer every
 * message OK and a failure detector that sees everyone up. */
async function claimantView(): Promise<ClusterView> {
  const storage = new MemoryStorage();
  await storage.open();
  const store = new ObjectStore(storage, false);
  const membership = { isUp: () => true, statuses: () => [], track: () => {} } as unknown as Membership;
  return new ClusterView({
    config: makeConfig({ id: 'n1', listen: '10.0.0.1:7000', dataDir: '/mem/n1' }),
    clock: new ManualClock(), random: Math.random, store, membership, transport: {} as PeerTransport,
    ask: async (): Promise<PeerReply> => ({ type: MsgType.OK, body: null }),
    hintsPending: () => 0, sleep: async () => {}, log: () => {},
  });
}

t.test('a commit made while a step pushes the ring is not overwritten by a queued plan', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const store = new ObjectStore(storage, false);
  const clock = new ManualClock();
  let held: (() => void)[] | null = [];
  const membership = { isUp: () => true, statuses: () => [], track: () => {} } as unknown as Membership;
  const view = new ClusterView({
    config: makeConfig({ id: 'n1', listen: '10.0.0.1:7000', dataDir: '/mem/n1' }),
    clock, random: Math.random, store, membership, transport: {} as PeerTransport,
    ask: (_to: string, type: number): Promise<PeerReply> => {
      if (type !== MsgType.RING_PUSH) return Promise.reject(new Error(`unexpected message ${type}`));
      const ok: PeerReply = { type: MsgType.OK, body: null };
      // While held, pushes wait (a peer slow to answer, or cut off).
      if (held) return new Promise((resolve) => held!.push(() => resolve(ok)));
      return Promise.resolve(ok);
    },
    hintsPending: () => 0, sleep: async () => {}, log: () => {},
  });
  let ring: Ring = createRing(16, 3, { id: 'n1', addr: '10.0.0.1:7000' });
  for (const id of ['n2', 'n3']) ring = claim(ring, { id, addr: `10.0.0.${id.slice(1)}:7000` });
  await view.adoptRing(ring);

  const call = (type: number, body: unknown): Promise<{ type: number; body: unknown }> => new Promise((resolve) => {
    view.onChange(type, body, (rt, rb) => resolve({ type: rt, body: rb }), undefined);
  });

  // The step pushes the current ring and waits for n2 and n3.
  const stepping = view.step();
  t.ok(held.length > 0, 'the step waits for its pushes');

  // Meanwhile a join of n4 is committed (plan A), and one of n5 queued behind it.
  t.equal((await call(MsgType.CLUSTER_STAGE, { op: 'join', addr: '10.0.0.4:7000', newId: 'n4' })).type, MsgType.OK);
  const a = await call(MsgType.CLUSTER_COMMIT, {});
  t.equal(a.type, MsgType.OK);
  t.equal((a.body as { queued: boolean }).queued, false, 'plan A is committed at once');
  const planA = view.ring!.plan;
  t.equal((await call(MsgType.CLUSTER_STAGE, { op: 'join', addr: '10.0.0.5:7000', newId: 'n5' })).type, MsgType.OK);
  const b = await call(MsgType.CLUSTER_COMMIT, {});
  t.equal((b.body as { queued: boolean }).queued, true, 'plan B is queued behind A');

  // The peers answer: the step goes on.
  const waiting = held;
  held = null;
  for (const f of waiting) f();
  await stepping;

  const now = view.ring!;
  t.equal(now.plan, planA, 'plan A is still the plan in transition');
  t.ok(inTransition(now), 'still in transition');
  t.ok(memberOf(now, 'n4'), 'n4 (plan A) is still a member');
  t.notOk(memberOf(now, 'n5'), 'n5 waits for plan A to finish');
});

t.test('changes staged on an older ring that another claimant applied since are dropped at commit', async (t) => {
  const view = await claimantView();
  let ring: Ring = createRing(16, 3, { id: 'n1', addr: '10.0.0.1:7000' });
  for (const id of ['n2', 'n3']) ring = claim(ring, { id, addr: `10.0.0.${id.slice(1)}:7000` });
  await view.adoptRing(ring);
  const call = (type: number, body: unknown): Promise<{ type: number; body: unknown }> => new Promise((resolve) => {
    view.onChange(type, body, (rt, rb) => resolve({ type: rt, body: rb }), undefined);
  });
  t.equal((await call(MsgType.CLUSTER_STAGE, { op: 'join', addr: '10.0.0.4:7000', newId: 'n4' })).type, MsgType.OK);
  t.equal((await call(MsgType.CLUSTER_STAGE, { op: 'join', addr: '10.0.0.5:7000', newId: 'n5' })).type, MsgType.OK);
  // Meanwhile (n1 cut off) another claimant joined n4; n1 learns that ring.
  await view.adoptRing(claim(ring, { id: 'n4', addr: '10.0.0.4:7000' }));
  const r = await call(MsgType.CLUSTER_COMMIT, {});
  t.equal(r.type, MsgType.OK, 'the commit goes through with what is still to do');
  const now = view.ring!;
  t.same(now.members.map((m) => m.id), ['n1', 'n2', 'n3', 'n4', 'n5'], 'n4 once, n5 joining');
  t.equal(memberOf(now, 'n5')?.state, 'joining');
  t.equal(memberOf(now, 'n4')?.state ?? 'valid', 'valid', 'n4 stays valid');
});

t.test('plans queued behind a transition are committed together when it ends', async (t) => {
  const view = await claimantView();
  let ring: Ring = createRing(16, 3, { id: 'n1', addr: '10.0.0.1:7000' });
  for (const id of ['n2', 'n3', 'n4', 'n5', 'n6']) ring = claim(ring, { id, addr: `10.0.0.${id.slice(1)}:7000` });
  await view.adoptRing(ring);
  const call = (type: number, body: unknown): Promise<{ type: number; body: unknown }> => new Promise((resolve) => {
    view.onChange(type, body, (rt, rb) => resolve({ type: rt, body: rb }), undefined);
  });
  const change = async (body: Record<string, unknown>): Promise<{ queued: boolean }> => {
    t.equal((await call(MsgType.CLUSTER_STAGE, body)).type, MsgType.OK);
    const r = await call(MsgType.CLUSTER_COMMIT, {});
    t.equal(r.type, MsgType.OK);
    return r.body as { queued: boolean };
  };
  t.equal((await change({ op: 'leave', id: 'n6' })).queued, false, 'leave n6 runs');
  const running = view.ring!;
  t.equal((await change({ op: 'leave', id: 'n5' })).queued, true, 'leave n5 is queued');
  t.equal((await change({ op: 'remove', id: 'n4' })).queued, true, 'remove n4 is queued too');

  // The transition ends (as the claimant's steps would end it).
  const done: Ring = {
    ...running, version: running.version + 10, owners: running.next!, next: null, phase: null,
    members: running.members.filter((m) => m.id !== 'n6').map((m) => ({ ...m, state: 'valid' as const })),
  };
  await view.adoptRing(done);
  await view.step();
  const now = view.ring!;
  t.ok(inTransition(now), 'a new transition runs');
  t.not(now.plan, running.plan);
  t.same(now.members.filter((m) => m.state === 'leaving').map((m) => m.id), ['n4', 'n5'], 'with both queued changes in one plan');
  t.notOk(now.next!.includes('n4') || now.next!.includes('n5'), 'neither n4 nor n5 is given partitions');
  const plan = await call(MsgType.CLUSTER_PLAN, {});
  t.same((plan.body as { queued: unknown[] }).queued, [], 'nothing is left queued');
});

t.test('a JOIN under a member\'s id from another data directory is refused; the member itself may move', async (t) => {
  const view = await claimantView();
  let ring: Ring = createRing(16, 3, { id: 'n1', addr: '10.0.0.1:7000', inc: 'a1' });
  for (const i of [2, 3]) ring = claim(ring, { id: `n${i}`, addr: `10.0.0.${i}:7000`, inc: `a${i}` });
  await view.adoptRing(ring);
  const join = (body: Record<string, unknown>): Promise<{ type: number; body: unknown }> => new Promise((resolve, reject) => {
    try {
      view.onJoin(body, (type, b) => resolve({ type, body: b }));
    } catch (err) {
      reject(err);
    }
  });
  await t.rejects(join({ id: 'n2', addr: '10.0.0.9:7000', inc: 'bad' }), { code: 'CHANGE_REFUSED', message: /already a member, with another data directory/ },
    'an impostor with n2\'s id on a new address is refused');
  await t.rejects(join({ id: 'n2', addr: '10.0.0.2:7000', inc: 'bad' }), { code: 'CHANGE_REFUSED' }, 'and on n2\'s own address');
  await t.rejects(join({ id: 'n2', addr: '10.0.0.9:7000' }), { code: 'CHANGE_REFUSED' }, 'and with no incarnation at all');
  t.equal(memberOf(view.ring!, 'n2')?.addr, '10.0.0.2:7000', 'n2 keeps its address');
  const moved = await join({ id: 'n2', addr: '10.0.0.9:7000', inc: 'a2' });
  t.equal(moved.type, MsgType.RING_REPLY, 'n2 itself (same incarnation) may come back on a new address');
  t.equal(memberOf(view.ring!, 'n2')?.addr, '10.0.0.9:7000', 'and the ring says so');
});
