// Hinted handoff driven by hand: one fallback's Hints over memory storage, a
// manual clock and a fake peer network whose replies the test releases, so
// each race is one exact interleaving. (The in-memory cluster tests are in
// test/core/hints.test.ts.)
//
// What is checked: a hint is deleted only if nothing was written under it
// after the handoff read the object (compare-and-delete), and hints for an
// owner that left the ring go to the key's current primaries.
import t from 'tap';
import { merge, sameVersions, update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import type { Membership } from '../../src/core/membership/membership.js';
import { claim, createRing, preferenceListForKey, removeMember } from '../../src/core/ring/ring.js';
import type { Ring } from '../../src/core/ring/ring.js';
import { makeConfig } from '../../src/config.js';
import { ManualClock } from '../../src/io/clock.js';
import { MemoryStorage } from '../../src/io/storage.js';
import type { RangeOptions, Storage, StorageOp } from '../../src/io/storage.js';
import { MsgType } from '../../src/protocol/messages.js';
import { objectFromWire } from '../../src/protocol/object-codec.js';
import type { NodeContext, PeerReply } from '../../src/server/context.js';
import { Hints } from '../../src/server/hints.js';
import { dataKey, hintKey } from '../../src/server/keyspace.js';
import { ObjectStore } from '../../src/server/object-store.js';

const member = (id: string) => ({ id, addr: `10.0.0.${id.slice(1)}:7000` });

function ringOf(ids: readonly string[]): Ring {
  let ring = createRing(16, 3, member(ids[0]!));
  for (const id of ids.slice(1)) ring = claim(ring, member(id));
  return ring;
}

/** The first key k0, k1, ... whose primaries satisfy `fits`. */
function keyWhere(ring: Ring, fits: (primaries: readonly string[]) => boolean): { key: string; primaries: readonly string[] } {
  for (let i = 0; i < 10_000; i++) {
    const primaries = preferenceListForKey(ring, `k${i}`).primaries;
    if (fits(primaries)) return { key: `k${i}`, primaries };
  }
  throw new Error('no such key');
}

/** Storage whose get() of one key can be held until the test releases it
 * (a slow disk read), answering with what it holds at release. */
class GatedStorage implements Storage {
  readonly inner = new MemoryStorage();
  holdGetsOf: string | undefined;
  readonly held: Array<() => void> = [];
  open(): Promise<void> { return this.inner.open(); }
  close(): Promise<void> { return this.inner.close(); }
  get(key: string): Promise<Uint8Array | undefined> {
    if (key !== this.holdGetsOf) return this.inner.get(key);
    return new Promise((resolve, reject) => this.held.push(() => this.inner.get(key).then(resolve, reject)));
  }
  write(ops: readonly StorageOp[], sync: boolean): Promise<void> { return this.inner.write(ops, sync); }
  range(opts: RangeOptions): Promise<[string, Uint8Array][]> { return this.inner.range(opts); }
}

interface Sent { to: string; key: string; object: VersionedObject }

/** A fallback's side of hinted handoff, with the network in the test's hand. */
class Fallback {
  readonly clock = new ManualClock();
  readonly storage = new GatedStorage();
  store = new ObjectStore(this.storage, false);
  readonly down = new Set<string>();
  readonly sent: Sent[] = [];
  /** Set to hold REPLICA_WRITEs: each waits until the test calls its release. */
  holdWrites = false;
  readonly heldWrites: Array<() => void> = [];
  ring: Ring;
  hints: Hints;

  constructor(readonly id: string, ring: Ring) {
    this.ring = ring;
    this.hints = new Hints(this.context());
  }

  async open(): Promise<void> {
    await this.storage.open();
  }

  context(): NodeContext {
    const self = this;
    const membership = { isUp: (id: string) => !self.down.has(id) } as unknown as Membership;
    return {
      id: this.id,
      config: makeConfig({ id: this.id, listen: '10.0.0.99:7000', dataDir: '/mem/fallback' }),
      clock: this.clock,
      storage: this.storage,
      get store() { return self.store; },
      membership,
      get ring() { return self.ring; },
      ask: (to, type, body) => this.ask(to, type, body),
      log: () => {},
    };
  }

  private async ask(to: string, type: number, body: unknown): Promise<PeerReply> {
    if (type !== MsgType.REPLICA_WRITE) throw new Error(`unexpected message ${type}`);
    if (this.down.has(to)) throw new Error(`${to} is down`);
    if (this.holdWrites) await new Promise<void>((resolve) => this.heldWrites.push(resolve));
    const b = body as { key: string; object: unknown };
    this.sent.push({ to, key: b.key, object: objectFromWire(b.object) });
    return { type: MsgType.OK, body: null };
  }

  /** What Replica.write does on a fallback: add() the hint, then queue the
   * object's merge in the same tick; resolves when both are durable. */
  async fallbackWrite(owner: string, key: string, obj: VersionedObject): Promise<void> {
    const hint = this.hints.add(owner, key);
    const m = await this.store.mutate(key, (cur) => (cur ? merge(cur, obj) : obj));
    await Promise.all([m.durable, hint]);
  }

  async hintOnDisk(owner: string, key: string): Promise<boolean> {
    return (await this.storage.inner.get(hintKey(owner, dataKey(key)))) !== undefined;
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

function put(prev: VersionedObject | undefined, value: string | null, actor = 'n1'): VersionedObject {
  return update(prev, {
    context: prev?.clock ?? [], value: value === null ? null : Buffer.from(value), vtype: 0, actor, nowMs: 1_700_000_000_000, lww: false, wid: null,
  });
}

t.test('a fallback write landing while the handoff of the last one is in flight keeps its hint', async (t) => {
  const ring = ringOf(['n1', 'n2', 'n3', 'n4']);
  const { key, primaries } = keyWhere(ring, (p) => !p.includes('n4'));
  const owner = primaries[0]!;
  const f = new Fallback('n4', ring);
  await f.open();
  const v1 = put(undefined, 'v1');
  const v2 = put(v1, 'v2');
  await f.fallbackWrite(owner, key, v1);

  f.holdWrites = true;
  const pass = f.hints.deliver();
  await settle();
  t.equal(f.heldWrites.length, 1, 'the handoff of v1 is in flight');
  await f.fallbackWrite(owner, key, v2);
  f.heldWrites.shift()!();
  await pass;

  t.ok(sameVersions(f.sent[0]?.object, v1), 'the owner was sent v1');
  t.equal(f.hints.pending, 1, 'the hint stays: it now stands for v2, which the owner lacks');
  t.ok(await f.hintOnDisk(owner, key), 'and stays on disk');
  t.ok(sameVersions(await f.store.read(key), v2), 'and the fallback keeps its copy of v2');
  t.equal(f.hints.stats.rewritten, 1, 'counted as rewritten');

  f.holdWrites = false;
  await f.hints.deliver();
  t.ok(sameVersions(f.sent[1]?.object, v2), 'the next pass sends v2');
  t.equal(f.hints.pending, 0, 'then the hint goes');
  t.notOk(await f.hintOnDisk(owner, key));
  t.equal(await f.store.read(key), undefined, 'and the copy (this node is no replica of the key)');
  t.equal(f.hints.stats.delivered, 1);
});

t.test('a hint that landed before its object was staged: the handoff sends the object it stands for', async (t) => {
  // The object's merge waits behind a slow read of the key (a cold cache),
  // while the hint, written in the same tick, is already on disk.
  const ring = ringOf(['n1', 'n2', 'n3', 'n4']);
  const { key, primaries } = keyWhere(ring, (p) => !p.includes('n4'));
  const owner = primaries[0]!;
  const f = new Fallback('n4', ring);
  await f.open();
  const v1 = put(undefined, 'v1');
  const v2 = put(v1, 'v2');
  await f.fallbackWrite(owner, key, v1);
  f.store = new ObjectStore(f.storage, false); // a cold cache, as after a restart
  f.storage.holdGetsOf = dataKey(key);

  const write = f.fallbackWrite(owner, key, v2);
  await settle();
  t.equal(f.storage.held.length, 1, 'v2\'s merge waits for its read of the key');
  t.ok(await f.hintOnDisk(owner, key), 'while its hint is on disk');
  const pass = f.hints.deliver();
  await settle();
  // Release in reverse: a handoff reading beside the merge would get v1 now.
  while (f.storage.held.length > 0) {
    f.storage.held.pop()!();
    await settle();
  }
  await Promise.all([write, pass]);

  const lost = f.hints.pending === 0 && !f.sent.some((s) => sameVersions(s.object, v2));
  t.notOk(lost, 'v2 is either with the owner or still hinted');
  t.ok(sameVersions(f.sent.at(-1)?.object, v2), 'the handoff waited for the merge and sent v2');
  t.equal(f.hints.pending, 0, 'so the hint could go');
});

t.test('a hint for an owner that left the ring goes to the key\'s primaries that are up, then is dropped', async (t) => {
  const ring = removeMember(ringOf(['n1', 'n2', 'n3', 'n4', 'n5']), 'n5');
  const gone = 'n5';

  t.test('this node no replica: every live primary gets it, the copy goes', async (t) => {
    const { key, primaries } = keyWhere(ring, (p) => !p.includes('n4'));
    const f = new Fallback('n4', ring);
    await f.open();
    const v = put(undefined, 'v');
    await f.fallbackWrite(gone, key, v);
    f.down.add(primaries[2]!);
    f.down.add(gone);
    await f.hints.deliver();
    t.same(f.sent.map((s) => s.to).sort(), primaries.slice(0, 2).slice().sort(), 'sent to the primaries that are up, not the down one');
    t.ok(f.sent.every((s) => s.key === key && sameVersions(s.object, v)), 'the object the hint stands for');
    t.equal(f.hints.pending, 0, 'the hint is dropped though its owner never came back');
    t.notOk(await f.hintOnDisk(gone, key));
    t.equal(f.hints.stats.rehomed, 1, 'counted as rehomed');
    t.equal(f.hints.stats.delivered + f.hints.stats.expired, 0);
    t.equal(await f.store.read(key), undefined, 'the fallback\'s copy goes');
  });

  t.test('this node a primary: the others get it, the copy stays', async (t) => {
    const { key, primaries } = keyWhere(ring, (p) => p.includes('n4'));
    const f = new Fallback('n4', ring);
    await f.open();
    const v = put(undefined, 'v');
    await f.fallbackWrite(gone, key, v);
    await f.hints.deliver();
    t.same(f.sent.map((s) => s.to).sort(), primaries.filter((p) => p !== 'n4').sort(), 'the other two primaries, never itself');
    t.equal(f.hints.pending, 0);
    t.ok(sameVersions(await f.store.read(key), v), 'a primary keeps its copy');
  });

  t.test('the owner up but no longer a member: still the primaries', async (t) => {
    const { key, primaries } = keyWhere(ring, (p) => !p.includes('n4'));
    const f = new Fallback('n4', ring);
    await f.open();
    await f.fallbackWrite(gone, key, put(undefined, 'v'));
    await f.hints.deliver();
    t.notOk(f.sent.some((s) => s.to === gone), 'nothing goes to the removed node');
    t.same(f.sent.map((s) => s.to).sort(), primaries.slice().sort());
    t.equal(f.hints.pending, 0);
  });

  t.test('every other primary down: kept for a later pass', async (t) => {
    const { key, primaries } = keyWhere(ring, (p) => !p.includes('n4'));
    const f = new Fallback('n4', ring);
    await f.open();
    const v = put(undefined, 'v');
    await f.fallbackWrite(gone, key, v);
    for (const p of primaries) f.down.add(p);
    await f.hints.deliver();
    t.same(f.sent, [], 'nothing sent');
    t.equal(f.hints.pending, 1, 'the hint stays');
    t.ok(sameVersions(await f.store.read(key), v), 'and so does the copy');
    f.down.clear();
    await f.hints.deliver();
    t.equal(f.sent.length, 3, 'delivered once they are back');
    t.equal(f.hints.pending, 0);
  });

  t.test('this node the key\'s only primary: nothing to send, the hint goes', async (t) => {
    const alone = removeMember(removeMember(removeMember(ring, 'n1'), 'n2'), 'n3');
    t.same(alone.members.map((m) => m.id), ['n4']);
    const f = new Fallback('n4', alone);
    await f.open();
    const v = put(undefined, 'v');
    await f.fallbackWrite(gone, 'k0', v);
    await f.hints.deliver();
    t.same(f.sent, []);
    t.equal(f.hints.pending, 0, 'no hint left to hold the reaper back');
    t.ok(sameVersions(await f.store.read('k0'), v), 'the object stays on its primary');
  });
});

t.test('hints left by a previous run are loaded and handed off', async (t) => {
  const ring = ringOf(['n1', 'n2', 'n3', 'n4']);
  const { key, primaries } = keyWhere(ring, (p) => !p.includes('n4'));
  const owner = primaries[0]!;
  const f = new Fallback('n4', ring);
  await f.open();
  const v = put(undefined, 'v');
  await f.fallbackWrite(owner, key, v);
  f.store = new ObjectStore(f.storage, false);
  f.hints = new Hints(f.context());
  await f.hints.load();
  t.equal(f.hints.pending, 1, 'the hint is read back from disk');
  await f.hints.deliver();
  t.ok(sameVersions(f.sent[0]?.object, v));
  t.equal(f.hints.pending, 0);
  t.notOk(await f.hintOnDisk(owner, key));
});
