import t from 'tap';
import fc from 'fast-check';
import { liveSiblings, merge, mergeAll, sameVersions, update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import type { VClock } from '../../src/core/clock/vclock.js';

const bytes = (s: string) => Buffer.from(s);
const put = (local: VersionedObject | undefined, actor: string, value: string | null, context: VClock = emptyClock, nowMs = 1, lww = false) =>
  update(local, { actor, value: value === null ? null : bytes(value), vtype: 1, context, nowMs, lww, wid: null });
const values = (o: VersionedObject) => liveSiblings(o).map((s) => Buffer.from(s.value!).toString()).sort();

t.test('a put without context becomes a sibling, even on the same coordinator', async (t) => {
  const a = put(undefined, 'n1', 'a');
  const b = put(a, 'n1', 'b');
  t.same(values(b), ['a', 'b'], 'two context-free puts are two siblings');
  t.same(b.siblings.map((s) => [s.actor, s.counter]), [['n1', 1000], ['n1', 1001]], 'distinct dots: a fresh history starts at the clock in µs');
});

t.test('a put with a context supersedes exactly what that context saw', async (t) => {
  const a = put(undefined, 'n1', 'a');
  const ab = put(a, 'n1', 'b');
  const c = put(ab, 'n2', 'c', a.clock);
  t.same(values(c), ['b', 'c'], 'saw only a: a goes, b stays');
  const d = put(c, 'n1', 'd', c.clock);
  t.same(values(d), ['d'], 'saw everything: one value');
});

t.test('a context from another replica still supersedes on merge', async (t) => {
  const onN1 = put(undefined, 'n1', 'x');
  const onN2 = merge(put(undefined, 'n2', 'y'), onN1);
  t.same(values(onN2), ['x', 'y']);
  const resolved = put(onN1, 'n1', 'z', onN2.clock);
  t.same(values(resolved), ['z'], 'the context covers y although n1 never stored it');
  t.same(values(merge(onN2, resolved)), ['z'], 'and replicas agree once merged');
});

t.test('a key written again after its history was reaped never reuses a dot', async (t) => {
  const old = put(put(undefined, 'n1', 'a', emptyClock, 5), 'n1', 'b', emptyClock, 6);
  const staleContext = old.clock;
  // The key was deleted and reaped everywhere: n1 starts from nothing, later.
  const fresh = put(undefined, 'n1', 'new', emptyClock, 90_000);
  t.ok(fresh.siblings[0]!.counter > old.siblings[1]!.counter, 'the new dot is above every old one');
  const stale = put(fresh, 'n2', 'stale-writer', staleContext, 90_001);
  t.same(values(stale), ['new', 'stale-writer'], 'a context from before the reap does not supersede the new write');
});

t.test('deletes are tombstones with a clock', async (t) => {
  const a = put(undefined, 'n1', 'a');
  const del = put(a, 'n1', null, a.clock);
  t.equal(del.siblings.length, 1);
  t.equal(del.siblings[0]!.value, null, 'a tombstone');
  t.same(values(del), []);
  t.same(values(merge(a, del)), [], 'the stale copy does not resurrect it');
  const concurrent = put(undefined, 'n2', 'b');
  t.same(values(merge(del, concurrent)), ['b'], 'a write the delete did not see survives');
});

t.test('last-writer-wins keeps only the latest timestamp', async (t) => {
  const a = put(undefined, 'n1', 'a', emptyClock, 10);
  const b = put(undefined, 'n2', 'b', emptyClock, 20, true);
  t.same(values(merge(a, b)), ['b']);
  t.same(values(merge(b, a)), ['b'], 'in either order');
  const late = put(undefined, 'n3', 'late', emptyClock, 30);
  t.same(values(merge(merge(a, b), late)), ['late'], 'a later plain write beats an older LWW one');
  t.same(values(put(put(undefined, 'n1', 'x'), 'n1', 'y', emptyClock, 5, true)), ['y'], 'an LWW put replaces local siblings');
});

t.test('sameVersions compares causal state, not timestamps', async (t) => {
  const a = put(undefined, 'n1', 'a');
  t.ok(sameVersions(a, merge(a, a)));
  t.notOk(sameVersions(a, put(a, 'n1', 'b')));
  t.ok(sameVersions(undefined, undefined));
  t.notOk(sameVersions(a, undefined));
});

// ---- properties over random histories ----

type Op = { kind: 'put'; replica: number; actor: number; value: number; withContext: boolean }
  | { kind: 'sync'; from: number; to: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), replica: fc.integer({ min: 0, max: 2 }), actor: fc.integer({ min: 0, max: 2 }),
    value: fc.integer({ min: 0, max: 999 }), withContext: fc.boolean() }),
  fc.record({ kind: fc.constant('sync' as const), from: fc.integer({ min: 0, max: 2 }), to: fc.integer({ min: 0, max: 2 }) }),
);

/** Runs a history on three replicas; each replica coordinates with its own actor id. */
function run(ops: Op[]): (VersionedObject | undefined)[] {
  const replicas: (VersionedObject | undefined)[] = [undefined, undefined, undefined];
  for (const op of ops) {
    if (op.kind === 'put') {
      const local = replicas[op.replica];
      const ctx = op.withContext && local ? local.clock : emptyClock;
      replicas[op.replica] = put(local, `n${op.replica}`, String(op.value), ctx);
    } else if (replicas[op.from]) {
      const to = replicas[op.to];
      replicas[op.to] = to ? merge(to, replicas[op.from]!) : replicas[op.from];
    }
  }
  return replicas;
}

const historyArb = fc.array(opArb, { minLength: 1, maxLength: 25 });
const canon = (o: VersionedObject | undefined) => o && JSON.stringify({ c: o.clock.map(([a, n]) => [a, n]), s: o.siblings.map((s) => [s.actor, s.counter]) });

t.test('object merge is commutative, associative and idempotent over random histories', async (t) => {
  let checked = 0;
  fc.assert(fc.property(historyArb, historyArb, historyArb, (h1, h2, h3) => {
    const [a] = run(h1);
    const [, b] = run(h2);
    const [, , c] = run(h3);
    if (!a || !b || !c) return true;
    checked++;
    return canon(merge(a, b)) === canon(merge(b, a))
      && canon(merge(merge(a, b), c)) === canon(merge(a, merge(b, c)))
      && canon(merge(a, a)) === canon(a);
  }), { numRuns: 400, seed: 42 });
  t.ok(checked > 100, `${checked} triples of non-empty objects checked`);
});

t.test('no write is lost: a version disappears only when a later put had it in its context', async (t) => {
  let removals = 0;
  fc.assert(fc.property(historyArb, (ops) => {
    const replicas: (VersionedObject | undefined)[] = [undefined, undefined, undefined];
    const created: string[] = [];
    const superseded = new Set<string>();
    for (const op of ops) {
      if (op.kind === 'put') {
        const local = replicas[op.replica];
        const ctx = op.withContext && local ? local.clock : emptyClock;
        for (const s of local?.siblings ?? []) if (ctx.some(([a, n]) => a === s.actor && n >= s.counter)) superseded.add(`${s.actor}:${s.counter}`);
        const next = put(local, `n${op.replica}`, String(op.value), ctx);
        const mine = next.siblings.find((s) => s.actor === `n${op.replica}` && !(local?.siblings ?? []).some((l) => l.actor === s.actor && l.counter === s.counter));
        created.push(`${mine!.actor}:${mine!.counter}`);
        replicas[op.replica] = next;
      } else if (replicas[op.from]) {
        const to = replicas[op.to];
        replicas[op.to] = to ? merge(to, replicas[op.from]!) : replicas[op.from];
      }
    }
    const final = mergeAll(replicas.filter((o): o is VersionedObject => o !== undefined));
    const live = new Set((final?.siblings ?? []).map((s) => `${s.actor}:${s.counter}`));
    for (const dot of created) {
      if (!live.has(dot)) {
        removals++;
        if (!superseded.has(dot)) return false;
      }
    }
    return true;
  }), { numRuns: 500, seed: 7 });
  t.ok(removals > 50, `${removals} removed versions, each superseded by a put that had read it`);
});

t.test('replicas converge: syncing everything everywhere gives one state', async (t) => {
  fc.assert(fc.property(historyArb, (ops) => {
    const reps = run(ops);
    const present = reps.filter((o): o is VersionedObject => o !== undefined);
    if (present.length === 0) return true;
    const forward = mergeAll(present)!;
    const backward = mergeAll([...present].reverse())!;
    return canon(forward) === canon(backward);
  }), { numRuns: 500, seed: 11 });
  t.pass('500 histories');
});

t.test('a retried put (same write id) is applied once, on one coordinator or two', async (t) => {
  const wid = Buffer.from('0123456789ab');
  const first = update(undefined, { actor: 'n1', value: bytes('v'), vtype: 1, context: emptyClock, nowMs: 1, lww: false, wid });
  const again = update(first, { actor: 'n1', value: bytes('v'), vtype: 1, context: emptyClock, nowMs: 2, lww: false, wid });
  t.equal(again, first, 'the same coordinator sees the write id and changes nothing');
  const elsewhere = update(undefined, { actor: 'n2', value: bytes('v'), vtype: 1, context: emptyClock, nowMs: 2, lww: false, wid });
  const other = put(undefined, 'n3', 'unrelated');
  const merged = mergeAll([first, elsewhere, other])!;
  t.same(values(merged), ['unrelated', 'v'], 'applied by two coordinators, kept once');
  const otherOrder = mergeAll([other, elsewhere, first])!;
  t.same(otherOrder.siblings.map((s) => [s.actor, s.counter]), merged.siblings.map((s) => [s.actor, s.counter]), 'the same survivor in any order');
  t.same(values(merge(merged, elsewhere)), ['unrelated', 'v'], 'the dropped copy does not come back');
});
