import t from 'tap';
import fc from 'fast-check';
import { contextProblem, counterMintMax, liveSiblings, merge, mergeAll, sameVersions, standInActor, update } from '../../src/core/clock/object.js';
import type { Sibling, VersionedObject } from '../../src/core/clock/object.js';
import { clockProblem, covers, emptyClock, merge as clockMerge } from '../../src/core/clock/vclock.js';
import type { VClock } from '../../src/core/clock/vclock.js';
import { limits } from '../../src/limits.js';
import { clockFromWire, clockToWire, decodeObject, encodeObject, objectFromWire } from '../../src/protocol/object-codec.js';

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

// ---- the linear merge against the old quadratic one ----

/**
 * The merge object.ts had before it was made linear, kept as the reference:
 * a linear search for each sibling's twin, a sort, and an O(n^2) retry
 * dedupe. The new merge must return exactly what this returns.
 */
function referenceMerge(a: VersionedObject, b: VersionedObject): VersionedObject {
  if (a === b) return a;
  const dotOrder = (x: Sibling, y: Sibling) => (x.actor !== y.actor ? (x.actor < y.actor ? -1 : 1) : x.counter - y.counter);
  const sameDot = (x: Sibling, y: Sibling) => x.actor === y.actor && x.counter === y.counter;
  const findDot = (list: readonly Sibling[], s: Sibling) => list.find((x) => sameDot(s, x));
  const sameWid = (x: Uint8Array | null, y: Uint8Array | null) => x !== null && y !== null && Buffer.compare(x, y) === 0;
  const pickTwin = (s: Sibling, u: Sibling): Sibling => {
    if (s.tsMs !== u.tsMs) return s.tsMs > u.tsMs ? s : u;
    return (s.value?.length ?? -1) >= (u.value?.length ?? -1) ? s : u;
  };
  const kept: Sibling[] = [];
  for (const s of a.siblings) {
    const twin = findDot(b.siblings, s);
    if (twin) kept.push(pickTwin(s, twin));
    else if (!covers(b.clock, s.actor, s.counter)) kept.push(s);
  }
  for (const u of b.siblings) {
    if (!findDot(a.siblings, u) && !covers(a.clock, u.actor, u.counter)) kept.push(u);
  }
  kept.sort(dotOrder);
  const deduped = kept.length < 2 || !kept.some((s) => s.wid !== null) ? kept
    : kept.filter((s, i) => s.wid === null || !kept.some((u, j) => j < i && sameWid(s.wid, u.wid)));
  if (deduped.length < 2 || !deduped.some((s) => s.lww)) return { clock: clockMerge(a.clock, b.clock), siblings: deduped };
  let best = deduped[0]!;
  for (const s of deduped) if (s.tsMs > best.tsMs || (s.tsMs === best.tsMs && dotOrder(s, best) > 0)) best = s;
  return { clock: clockMerge(a.clock, b.clock), siblings: [best] };
}

const objActors = ['a', 'b', 'c', 'd'];
const wids = ['w0000000', 'w1111111', 'w2222222'].map((w) => Buffer.from(w));

/** Any object with sorted unique dots. Its clock need not cover its
 * siblings (prune can drop an entry whose sibling survives), some dots come
 * from a small range so two objects share twins that may differ, a few
 * siblings are LWW, and write ids repeat so retries are deduplicated. */
const siblingArb: fc.Arbitrary<Sibling> = fc.record({
  actor: fc.constantFrom(...objActors, 'e'),
  counter: fc.integer({ min: 1, max: 8 }),
  tsMs: fc.integer({ min: 0, max: 3 }),
  value: fc.option(fc.uint8Array({ maxLength: 3 }), { nil: null }),
  vtype: fc.constant(0),
  lww: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
  wid: fc.option(fc.constantFrom(...wids), { nil: null, freq: 2 }),
});
const objectArb: fc.Arbitrary<VersionedObject> = fc.record({
  clock: fc.subarray(objActors).chain((as) => fc.tuple(...as.map((x) => fc.tuple(fc.constant(x), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 3 })))))
    .map((es) => es.map(([x, c, ts]) => [x, c, ts] as const)),
  siblings: fc.uniqueArray(siblingArb, { selector: (s) => `${s.actor}:${s.counter}`, maxLength: 12 })
    .map((ss) => [...ss].sort((x, y) => (x.actor !== y.actor ? (x.actor < y.actor ? -1 : 1) : x.counter - y.counter))),
});

t.test('the linear merge returns exactly what the old quadratic merge returned', async (t) => {
  let twins = 0;
  fc.assert(fc.property(objectArb, objectArb, (a, b) => {
    if (a.siblings.some((s) => b.siblings.some((u) => s.actor === u.actor && s.counter === u.counter))) twins++;
    t.same(merge(a, b), referenceMerge(a, b));
    t.same(merge(b, a), referenceMerge(b, a));
  }), { numRuns: 2000, seed: 5 });
  fc.assert(fc.property(historyArb, historyArb, (h1, h2) => {
    const [a] = run(h1);
    const [, b] = run(h2);
    if (!a || !b) return true;
    return canon(merge(a, b)) === canon(referenceMerge(a, b));
  }), { numRuns: 500, seed: 3 });
  t.ok(twins > 200, `${twins} pairs shared dots`);
});

/** n siblings of one actor each, a clock that has seen them, 8-byte values. */
function wideObject(actor: string, n: number, firstCounter: number): VersionedObject {
  const value = Buffer.alloc(8);
  const siblings: Sibling[] = Array.from({ length: n }, (_, i) => ({
    actor, counter: firstCounter + i, tsMs: 1, value, vtype: 0, lww: false, wid: Buffer.from(`wid-${actor}-${String(i).padStart(8, '0')}`),
  }));
  return { clock: [[actor, firstCounter + n - 1, 1]], siblings };
}

t.test('merging two 100k-sibling objects takes milliseconds, not minutes (printed, not asserted)', async (t) => {
  const n = 100_000;
  const a = wideObject('n1', n, 1);
  const b = wideObject('n2', n, 1);
  // Half of b's siblings are also on a: twins, and a has seen b's other half superseded.
  const overlap: VersionedObject = { clock: [...a.clock, ['n2', n, 1]], siblings: [...a.siblings, ...b.siblings.slice(0, n / 2)] };
  for (const [name, x, y] of [['disjoint', a, b], ['half shared', overlap, b]] as const) {
    const started = performance.now();
    const m = merge(x, y);
    t.comment(`merge of ${x.siblings.length} and ${y.siblings.length} siblings (${name}): ${(performance.now() - started).toFixed(1)} ms, ${m.siblings.length} kept`);
  }
  t.equal(merge(a, b).siblings.length, 2 * n, 'disjoint writes are all kept');
  t.equal(merge(overlap, b).siblings.length, n + n / 2, 'what a has seen and dropped stays dropped');
  const small = 2000;
  const started = performance.now();
  referenceMerge(wideObject('n1', small, 1), wideObject('n2', small, 1));
  const ms = performance.now() - started;
  t.comment(`the old merge on ${small} + ${small} siblings: ${ms.toFixed(1)} ms (quadratic: about ${(ms * (n / small) ** 2 / 60_000).toFixed(0)} min at ${n} + ${n})`);
});

t.test('update is linear in the siblings it keeps', async (t) => {
  let obj: VersionedObject = wideObject('n1', 100_000, 1);
  const started = performance.now();
  for (let i = 0; i < 20; i++) obj = put(obj, 'n2', `v${i}`, [['n1', 50_000, 1]]);
  t.comment(`20 puts onto 100k siblings, each superseding half: ${(performance.now() - started).toFixed(1)} ms`);
  t.equal(obj.siblings.length, 50_000 + 20);
});

// ---- the poison: counters, entries and timestamps from a context ----

t.test('a context cannot make a coordinator mint an unsafe or unloadable counter', async (t) => {
  const max = limits.clockCounterMax;
  const stored = put(undefined, 'n1', 'a');
  const near = put(stored, 'n1', 'b', [['n1', max - 1, 1]]);
  const minted = near.siblings.at(-1)!.counter;
  t.equal(minted, max, 'one below the bound: the next dot is the bound itself');
  t.equal(clockProblem(near.clock), null, 'and the stored clock still loads');
  t.throws(() => put(near, 'n1', 'c'), { code: 'INVALID_ARGUMENT', details: { limit: counterMintMax } },
    'past the bound the coordinator refuses rather than store what it could not load');
  t.throws(() => put(stored, 'n1', 'x', [['n1', Number.MAX_SAFE_INTEGER, 1]]), { code: 'INVALID_ARGUMENT' },
    'the original poison (2^53-1) cannot get two writes the same dot even without validation');
  const other = put(near, 'n2', 'c', near.clock);
  t.same(values(other), ['c'], 'another coordinator can still write (and resolve) the key');
  t.equal(counterMintMax, limits.clockCounterMax, 'the documented margin above clockCounterMax is zero');
});

t.test('a context cannot grow a clock past contextEntriesMax, nor pin entries with future timestamps', async (t) => {
  const day = limits.vclockPruneAgeMinMs;
  const forged = (n: number, ts: number, prefix = 'f'): VClock =>
    Array.from({ length: n }, (_, i) => [`${prefix}${String(i).padStart(4, '0')}`, 1, ts] as const);
  const now = 10 * day;
  const first = put(undefined, 'n1', 'a', forged(200, 1e15), now);
  t.ok(first.clock.every(([, , ts]) => ts <= now), 'future timestamps in a context are clamped to now');
  t.throws(() => put(first, 'n1', 'b', forged(200, 1e15, 'g'), now), { code: 'INVALID_ARGUMENT', details: { limit: limits.contextEntriesMax } },
    'a write whose clock would pass contextEntriesMax is refused');
  const dayLater = put(first, 'n1', 'b', forged(200, 1e15, 'g'), now + day + 1);
  t.ok(dayLater.clock.length <= limits.contextEntriesMax, 'a day later the forged entries have aged and are pruned');
  t.equal(clockProblem(dayLater.clock), null);
});

t.test('update inserts the new sibling in dot order and keeps what the context did not see', async (t) => {
  const objA = wideObject('b', 3, 10);
  const withA: VersionedObject = { clock: [['a', 5, 1], ...objA.clock], siblings: [{ ...objA.siblings[0]!, actor: 'a', counter: 5 }, ...objA.siblings] };
  const next = put(withA, 'am', 'new', [['b', 10, 1]]);
  t.same(next.siblings.map((s) => `${s.actor}:${s.counter}`), ['a:5', 'am:1000', 'b:11', 'b:12']);
});

// ---- objects and contexts from the wire and disk (protocol/object-codec.ts) ----

t.test('objectFromWire applies the clock rules to every sibling, and checks vtype and wid', async (t) => {
  const ok = ['n1', 5, 0, 1, 0, null, null];
  const sib = (i: number, v: unknown) => ok.map((x, j) => (j === i ? v : x));
  const cases: [string, unknown[], RegExp | null][] = [
    ['a valid sibling', ok, null],
    ['counter past clockCounterMax', sib(1, limits.clockCounterMax + 1), /counter must be at most clockCounterMax/],
    ['counter 2^53-1', sib(1, Number.MAX_SAFE_INTEGER), /at most clockCounterMax/],
    ['counter 0', sib(1, 0), /positive integer/],
    ['actor not a node id', sib(0, 'n 1'), /sibling actor must be a node id/],
    ['timestamp negative', sib(2, -5), /sibling timestamp/],
    ['timestamp NaN', sib(2, NaN), /sibling timestamp/],
    ['vtype 255', sib(3, 255), null],
    ['vtype 256', sib(3, 256), /vtype must be an integer from 0 to 255/],
    ['vtype -1', sib(3, -1), /vtype/],
    ['vtype 1.5', sib(3, 1.5), /vtype/],
    ['lww 2', sib(4, 2), /lww/],
    ['value a string', sib(5, 'v'), /value must be bytes or null/],
    ['value bytes', sib(5, Buffer.from('v')), null],
    ['wid of 7 bytes', sib(6, Buffer.alloc(7)), /wid must be 8 to 32 bytes/],
    ['wid of 8 bytes', sib(6, Buffer.alloc(8)), null],
    ['wid of 32 bytes', sib(6, Buffer.alloc(32)), null],
    ['wid of 33 bytes', sib(6, Buffer.alloc(33)), /wid must be 8 to 32 bytes/],
    ['wid a string', sib(6, 'x'.repeat(10)), /wid/],
  ];
  for (const [name, s, want] of cases) {
    if (want === null) t.doesNotThrow(() => objectFromWire([[['n1', 5, 0]], [s]]), name);
    else t.throws(() => objectFromWire([[['n1', 5, 0]], [s]]), { code: 'INVALID_ARGUMENT', message: want }, name);
  }
});

t.test('what a node stores it can load again; contexts are held to contextEntriesMax, object clocks are not', async (t) => {
  const atBound = put(put(undefined, 'n1', 'a'), 'n1', 'b', [['n1', limits.clockCounterMax - 1, 1]]);
  t.same(decodeObject(encodeObject(atBound)), atBound, 'an object minted at clockCounterMax round-trips through disk');
  t.same(clockFromWire(clockToWire(atBound.clock)), atBound.clock, 'and its clock is a valid context');
  const wide: VClock = Array.from({ length: limits.contextEntriesMax + 10 }, (_, i) => [`n${String(i).padStart(4, '0')}`, 1, 0] as const);
  t.throws(() => clockFromWire(wide), { code: 'INVALID_ARGUMENT', message: /at most 256/ }, 'a context of 266 entries is refused');
  t.doesNotThrow(() => objectFromWire([wide, []]),
    'an object clock that merges grew past contextEntriesMax still loads (merges never refuse; a node must restart)');
  t.doesNotThrow(() => objectFromWire([[], [['n1', 5, 0, 1, 0, null, null]]]),
    'a sibling whose dot the clock does not cover is valid: prune() can drop that entry');
  t.throws(() => objectFromWire([[['n1', limits.clockCounterMax + 1, 0]], []]), { message: /object clock is not a tunekv causal context/ });
});

t.test('a coordinator that dropped its copy mints under a stand-in actor, which claims none of its earlier dots', async (t) => {
  // A fallback wrote w1 as n5, handed it to the owners and dropped it.
  const owners = put(undefined, 'n5', 'w1', emptyClock, 5);
  // Standing in again with no copy: under its plain id the new entry
  // (n5, c2) covers (n5, c1), and the owners' merge drops w1.
  const plain = put(undefined, 'n5', 'w2', emptyClock, 9);
  t.same(values(merge(owners, plain)), ['w2'], 'plain id: the earlier write is taken for superseded');
  const actor = standInActor('n5', 9000);
  t.equal(actor, `n5.${(9000).toString(36)}`);
  t.equal(clockProblem([[actor, 1, 0]]), null, 'a stand-in actor is a valid clock actor');
  const stood = put(undefined, actor, 'w2', emptyClock, 9);
  t.same(values(merge(owners, stood)), ['w1', 'w2'], 'stand-in actor: both blind writes survive');
  t.same(values(merge(stood, owners)), ['w1', 'w2']);
  t.not(standInActor('n5', 9001), actor, 'another write, another actor');
  t.equal(standInActor('x'.repeat(62), 9000), 'x'.repeat(62), 'an id too long for a suffix keeps its plain id');
  // Contexts naming a stand-in actor of a member are not forged.
  const isMember = (id: string): boolean => id === 'n5';
  t.equal(contextProblem(undefined, [[actor, stood.siblings[0]!.counter, 9]], 10, isMember), null);
  t.match(contextProblem(undefined, [['n9.abc', 1, 9]], 10, isMember), /not a member/);
  t.match(contextProblem(undefined, [['n5.ABC', 1, 9]], 10, isMember), /not a member/, 'only the stand-in form counts');
});
