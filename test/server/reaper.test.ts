// Tombstone reaping, driven by hand: four nodes' object stores and reapers
// over memory storage, one manual clock, a fake failure detector whose
// verdicts and gossiped hint counts the test sets, and a fake peer network
// that answers REPLICA_READ and REPLICA_REAP from the peers' stores and lets
// the test act just before a message is handled.
//
// What is checked: a tombstone is reaped only when every member is up and
// holds no hints, and every primary agrees on it; then it goes from every
// primary, except where the key was written again after the confirmation.
import t from 'tap';
import { merge, sameVersions, update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import type { Membership } from '../../src/core/membership/membership.js';
import { claim, createRing, preferenceListForKey } from '../../src/core/ring/ring.js';
import type { Ring } from '../../src/core/ring/ring.js';
import { makeConfig } from '../../src/config.js';
import { TuneKvError } from '../../src/errors.js';
import { ManualClock } from '../../src/io/clock.js';
import { MemoryStorage } from '../../src/io/storage.js';
import { MsgType } from '../../src/protocol/messages.js';
import { objectToWire } from '../../src/protocol/object-codec.js';
import type { NodeContext, PeerReply } from '../../src/server/context.js';
import { ObjectStore } from '../../src/server/object-store.js';
import { Reaper } from '../../src/server/reaper.js';

const ids = ['n1', 'n2', 'n3', 'n4'];
const reapDelayMs = 90_000;

interface Node {
  readonly store: ObjectStore;
  readonly reaper: Reaper;
  /** What this node's Hints would say it holds. */
  hintsPending: number;
}

/** Four nodes, N = 3: every key has one member that is no primary of it. */
class Cluster {
  readonly clock = new ManualClock();
  readonly ring: Ring;
  readonly nodes = new Map<string, Node>();
  /** Seen down by every failure detector, and unreachable. */
  readonly down = new Set<string>();
  /** The hint count each node's last heartbeat carried. */
  readonly gossipedHints = new Map<string, number>();
  /** When each node's heartbeat last grew; unset: just now. */
  readonly heardAtMs = new Map<string, number>();
  /** Runs just before a peer handles a message. */
  beforeHandle: ((to: string, type: number, body: unknown) => Promise<void>) | undefined;

  constructor() {
    let ring = createRing(16, 3, { id: ids[0]!, addr: '10.0.0.1:7000' });
    for (const id of ids.slice(1)) ring = claim(ring, { id, addr: `10.0.0.${id.slice(1)}:7000` });
    this.ring = ring;
  }

  async start(): Promise<void> {
    for (const id of ids) {
      const storage = new MemoryStorage();
      await storage.open();
      const store = new ObjectStore(storage, false);
      const node: Node = { store, reaper: undefined as unknown as Reaper, hintsPending: 0 };
      (node as { reaper: Reaper }).reaper = new Reaper(this.context(id, storage, store), () => node.hintsPending);
      this.nodes.set(id, node);
    }
  }

  node(id: string): Node {
    return this.nodes.get(id)!;
  }

  private context(id: string, storage: MemoryStorage, store: ObjectStore): NodeContext {
    const membership = {
      isUp: (peer: string) => !this.down.has(peer),
      lastHeard: (peer: string) => ({ atMs: this.heardAtMs.get(peer) ?? this.clock.nowMs(), hintsPending: this.gossipedHints.get(peer) ?? 0 }),
    } as unknown as Membership;
    return {
      id,
      config: makeConfig({ id, listen: `10.0.0.${id.slice(1)}:7000`, dataDir: `/mem/${id}`, tombstoneReapDelayMs: reapDelayMs }),
      clock: this.clock,
      storage,
      store,
      membership,
      ring: this.ring,
      ask: (to, type, body) => this.handle(to, type, body),
      log: () => {},
    };
  }

  private async handle(to: string, type: number, body: unknown): Promise<PeerReply> {
    if (this.down.has(to)) throw new TuneKvError('UNAVAILABLE', `${to} is down`);
    await this.beforeHandle?.(to, type, body);
    const peer = this.node(to);
    switch (type) {
      case MsgType.REPLICA_READ: {
        const obj = await peer.store.read((body as { key: string }).key);
        return { type: MsgType.REPLICA_READ_REPLY, body: { object: obj ? objectToWire(obj) : null } };
      }
      case MsgType.REPLICA_REAP:
        return { type: MsgType.OK, body: { removed: await peer.reaper.onReap(body) } };
      default:
        throw new Error(`unexpected message ${type}`);
    }
  }

  async write(id: string, key: string, obj: VersionedObject): Promise<void> {
    await (await this.node(id).store.mutate(key, () => obj)).durable;
  }

  advance(ms: number): void {
    this.clock.setTimer(ms, () => {});
    this.clock.fireNext();
  }
}

function put(prev: VersionedObject | undefined, value: string | null, actor: string): VersionedObject {
  return update(prev, {
    context: prev?.clock ?? [], value: value === null ? null : Buffer.from(value), vtype: 0, actor, nowMs: 1_700_000_000_000, lww: false, wid: null,
  });
}

const live = put(undefined, 'v', 'n1');
const tomb = put(live, null, 'n1');

/** A key whose primaries are written `tomb`, queued on its first primary
 * (the node that coordinated the delete) and past the reap delay. */
async function setup(): Promise<{ c: Cluster; key: string; primaries: readonly string[]; self: string; other: string; reaper: Reaper }> {
  const c = new Cluster();
  await c.start();
  const key = 'gone';
  const primaries = preferenceListForKey(c.ring, key).primaries;
  const self = primaries[0]!;
  const other = ids.find((id) => !primaries.includes(id))!;
  for (const p of primaries) await c.write(p, key, tomb);
  const reaper = c.node(self).reaper;
  reaper.candidate(key);
  c.advance(reapDelayMs + 1);
  return { c, key, primaries, self, other, reaper };
}

async function holders(c: Cluster, key: string, primaries: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of primaries) if (await c.node(p).store.read(key)) out.push(p);
  return out;
}

t.test('the happy path: reaped on every primary, once the delay has passed', async (t) => {
  const c = new Cluster();
  await c.start();
  const key = 'gone';
  const primaries = preferenceListForKey(c.ring, key).primaries;
  for (const p of primaries) await c.write(p, key, tomb);
  const reaper = c.node(primaries[0]!).reaper;
  reaper.candidate(key);
  c.advance(reapDelayMs - 1);
  await reaper.run();
  t.equal(reaper.stats.reaped, 0, 'not before tombstoneReapDelayMs');
  t.same(await holders(c, key, primaries), primaries);
  c.advance(2);
  await reaper.run();
  t.equal(reaper.stats.reaped, 1, 'reaped');
  t.equal(reaper.waiting, 0);
  t.same(await holders(c, key, primaries), [], 'gone from every primary');
});

t.test('hints pending here: not reaped until they are gone', async (t) => {
  const { c, key, primaries, self, reaper } = await setup();
  c.node(self).hintsPending = 1;
  await reaper.run();
  t.equal(reaper.stats.reaped, 0, 'not reaped');
  t.equal(reaper.waiting, 1, 'still queued');
  t.same(await holders(c, key, primaries), primaries, 'every primary keeps the tombstone');
  c.node(self).hintsPending = 0;
  await reaper.run();
  t.equal(reaper.stats.reaped, 1, 'reaped once the hints are gone');
});

t.test('hints pending on a peer (its gossiped heartbeat): not reaped until they are gone', async (t) => {
  const { c, key, primaries, other, reaper } = await setup();
  c.gossipedHints.set(other, 3);
  await reaper.run();
  t.equal(reaper.stats.reaped, 0, 'not reaped');
  t.equal(reaper.waiting, 1, 'still queued');
  t.same(await holders(c, key, primaries), primaries);
  c.gossipedHints.set(other, 0);
  await reaper.run();
  t.equal(reaper.stats.reaped, 1);
});

t.test('a member down (no primary of the key, last heard saying no hints): not reaped until it is up', async (t) => {
  const { c, key, primaries, other, reaper } = await setup();
  c.down.add(other);
  await reaper.run();
  t.equal(reaper.stats.reaped, 0, 'not reaped: a down node may hold hints it has not told of');
  t.equal(reaper.waiting, 1, 'still queued');
  t.same(await holders(c, key, primaries), primaries);
  c.down.delete(other);
  await reaper.run();
  t.equal(reaper.stats.reaped, 1);
});

t.test('a member not heard from since the key was queued: not reaped', async (t) => {
  const { c, key, primaries, other, reaper } = await setup();
  c.heardAtMs.set(other, c.clock.nowMs() - reapDelayMs - 1);
  await reaper.run();
  t.equal(reaper.stats.reaped, 0);
  t.same(await holders(c, key, primaries), primaries);
});

t.test('primaries disagreeing: not reaped, counted as kept', async (t) => {
  t.test('one holds a different tombstone', async (t) => {
    const { c, key, primaries, reaper } = await setup();
    const odd = primaries[1]!;
    const otherTomb = put(live, null, 'n4');
    await c.write(odd, key, otherTomb);
    await reaper.run();
    t.equal(reaper.stats.reaped, 0);
    t.equal(reaper.stats.kept, 1, 'kept, counted');
    t.same(await holders(c, key, primaries), primaries, 'every primary keeps what it had');
    t.ok(sameVersions(await c.node(odd).store.read(key), otherTomb));
    t.ok(sameVersions(await c.node(primaries[2]!).store.read(key), tomb));
  });

  t.test('the last one read holds a different tombstone', async (t) => {
    const { c, key, primaries, reaper } = await setup();
    await c.write(primaries[2]!, key, put(live, null, 'n4'));
    await reaper.run();
    t.equal(reaper.stats.kept, 1);
    t.same(await holders(c, key, primaries), primaries);
  });

  t.test('one holds a live value beside the tombstone', async (t) => {
    const { c, key, primaries, reaper } = await setup();
    const odd = primaries[2]!;
    await c.write(odd, key, merge(tomb, put(live, 'w', 'n3')));
    await reaper.run();
    t.equal(reaper.stats.reaped, 0);
    t.equal(reaper.stats.kept, 1);
    t.same(await holders(c, key, primaries), primaries);
  });

  t.test('one is unreachable (its read fails)', async (t) => {
    const { c, key, primaries, reaper } = await setup();
    c.beforeHandle = async (to, type) => {
      if (to === primaries[1] && type === MsgType.REPLICA_READ) throw new TuneKvError('TIMEOUT', 'no answer');
    };
    await reaper.run();
    t.equal(reaper.stats.kept, 1);
    t.same(await holders(c, key, primaries), primaries);
  });
});

t.test('a key written again between the confirmation and the removal keeps the new write', async (t) => {
  t.test('on a peer: a new value lands just before the removal reaches it', async (t) => {
    const { c, key, primaries, self, reaper } = await setup();
    const peer = primaries[1]!;
    const back = put(tomb, 'back', 'n2');
    c.beforeHandle = async (to, type) => {
      if (to === peer && type === MsgType.REPLICA_REAP) await c.write(peer, key, back);
    };
    await reaper.run();
    t.ok(sameVersions(await c.node(peer).store.read(key), back), 'the new value survives');
    t.equal(await c.node(self).store.read(key), undefined, 'the primaries that still held the tombstone dropped it');
    t.equal(await c.node(primaries[2]!).store.read(key), undefined);
  });

  t.test('on a peer: a newer tombstone (written and deleted again)', async (t) => {
    const { c, key, primaries, reaper } = await setup();
    const peer = primaries[2]!;
    const again = put(put(tomb, 'back', 'n2'), null, 'n2');
    c.beforeHandle = async (to, type) => {
      if (to === peer && type === MsgType.REPLICA_REAP) await c.write(peer, key, again);
    };
    await reaper.run();
    t.ok(sameVersions(await c.node(peer).store.read(key), again), 'the newer tombstone stays: it is not the one confirmed');
  });

  t.test('here: a new value lands after this node\'s own confirming read', async (t) => {
    const { c, key, primaries, self, reaper } = await setup();
    const back = put(tomb, 'back', 'n3');
    const last = primaries.at(-1)!;
    c.beforeHandle = async (to, type) => {
      if (to === last && type === MsgType.REPLICA_READ) await c.write(self, key, back);
    };
    await reaper.run();
    t.ok(sameVersions(await c.node(self).store.read(key), back), 'the new value survives');
    t.equal(await c.node(primaries[1]!).store.read(key), undefined, 'the others dropped the tombstone');
  });
});
