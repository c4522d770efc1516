import t from 'tap';
import fc from 'fast-check';
import {
  clampTimestamps, compare, counterOf, counterReader, covers, descends, emptyClock, increment, merge, prune, clockProblem,
} from '../../src/core/clock/vclock.js';
import type { VClock } from '../../src/core/clock/vclock.js';
import { limits } from '../../src/limits.js';

const actors = ['a', 'b', 'c', 'd', 'e'];

/** Any valid clock: sorted distinct actors, positive counters. */
const clockArb: fc.Arbitrary<VClock> = fc
  .subarray(actors)
  .chain((as) => fc.tuple(...as.map((a) => fc.tuple(fc.constant(a), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 3 })))))
  .map((entries) => entries.map(([a, c, ts]) => [a, c, ts] as const));

const counters = (c: VClock) => c.map(([a, n]) => [a, n]);

t.test('merge is commutative, associative and idempotent', async (t) => {
  fc.assert(fc.property(clockArb, clockArb, (a, b) => {
    t.same(merge(a, b), merge(b, a));
  }), { numRuns: 500 });
  fc.assert(fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
    t.same(merge(merge(a, b), c), merge(a, merge(b, c)));
  }), { numRuns: 500 });
  fc.assert(fc.property(clockArb, (a) => {
    t.same(merge(a, a), a);
  }), { numRuns: 200 });
});

t.test('compare agrees with merge', async (t) => {
  fc.assert(fc.property(clockArb, clockArb, (a, b) => {
    const m = counters(merge(a, b));
    const ord = compare(a, b);
    const aIsMerge = JSON.stringify(counters(a)) === JSON.stringify(m);
    const bIsMerge = JSON.stringify(counters(b)) === JSON.stringify(m);
    if (ord === 'equal') return aIsMerge && bIsMerge;
    if (ord === 'before') return bIsMerge && !aIsMerge;
    if (ord === 'after') return aIsMerge && !bIsMerge;
    return !aIsMerge && !bIsMerge;
  }), { numRuns: 1000 });
  t.pass('1000 random pairs checked');
});

t.test('merge descends from both inputs; increment moves strictly after', async (t) => {
  fc.assert(fc.property(clockArb, clockArb, fc.constantFrom(...actors), (a, b, actor) => {
    const m = merge(a, b);
    const inc = increment(m, actor, 9);
    return descends(m, a) && descends(m, b) && compare(inc, m) === 'after' && counterOf(inc, actor) === counterOf(m, actor) + 1;
  }), { numRuns: 500 });
  t.pass();
});

t.test('compare: a table of cases', async (t) => {
  const cases: [VClock, VClock, string][] = [
    [emptyClock, emptyClock, 'equal'],
    [[['a', 1, 0]], emptyClock, 'after'],
    [emptyClock, [['a', 1, 0]], 'before'],
    [[['a', 2, 0]], [['a', 1, 5]], 'after'],
    [[['a', 1, 0]], [['b', 1, 0]], 'concurrent'],
    [[['a', 2, 0], ['b', 1, 0]], [['a', 1, 0], ['b', 2, 0]], 'concurrent'],
    [[['a', 1, 0], ['b', 1, 0]], [['a', 1, 7], ['b', 1, 9]], 'equal'],
  ];
  for (const [a, b, want] of cases) t.equal(compare(a, b), want, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  t.ok(covers([['a', 3, 0]], 'a', 2));
  t.notOk(covers([['a', 3, 0]], 'b', 1));
});

t.test('prune keeps clocks bounded, never drops young entries', async (t) => {
  const day = 24 * 3600 * 1000;
  const big: VClock = Array.from({ length: 10 }, (_, i) => [`n${i}`, 1, i * 1000] as const).sort((x, y) => (x[0] < y[0] ? -1 : 1));
  t.equal(prune(big, 2 * day, 6, day).length, 6, 'old entries pruned down to the limit');
  t.same(prune(big, 2 * day, 6, day).map(([a]) => a), ['n4', 'n5', 'n6', 'n7', 'n8', 'n9'], 'the oldest go first');
  t.equal(prune(big, 5000, 6, day).length, 10, 'young entries are kept even past the limit');
  t.equal(prune(big, 2 * day, 20, day), big, 'under the limit: untouched');
});

t.test('clockProblem rejects malformed clocks', async (t) => {
  t.equal(clockProblem([['a', 1, 0]]), null);
  t.match(clockProblem('x'), /not an array/);
  t.match(clockProblem([['b', 1, 0], ['a', 1, 0]]), /sorted/);
  t.match(clockProblem([['a', 0, 0]]), /positive/);
  t.match(clockProblem([['a', 1.5, 0]]), /positive/);
  t.match(clockProblem([['', 1, 0]]), /non-empty/);
  t.match(clockProblem([['a', 1]]), /\[actor, counter, tsMs\]/);
});

t.test('clockProblem: bounds on counters, entries, actors and timestamps', async (t) => {
  const max = limits.clockCounterMax;
  const entries = (n: number): VClock => Array.from({ length: n }, (_, i) => [`n${String(i).padStart(4, '0')}`, 1, 0] as const);
  const cases: [string, unknown, RegExp | null][] = [
    ['counter at clockCounterMax', [['a', max, 0]], null],
    ['counter one past clockCounterMax', [['a', max + 1, 0]], /at most clockCounterMax/],
    ['counter 2^53-1 (the poison)', [['a', Number.MAX_SAFE_INTEGER, 0]], /at most clockCounterMax/],
    ['counter 2^53 (not exact)', [['a', 2 ** 53, 0]], /positive integer/],
    ['counter Infinity', [['a', Infinity, 0]], /positive integer/],
    ['counter as a string', [['a', '1', 0]], /positive integer/],
    [`${limits.contextEntriesMax} entries`, entries(limits.contextEntriesMax), null],
    [`${limits.contextEntriesMax + 1} entries`, entries(limits.contextEntriesMax + 1), /at most 256/],
    ['actor with a space', [['a b', 1, 0]], /node id/],
    ['actor with a colon', [['n1:9000', 1, 0]], /node id/],
    ['actor of 64 characters', [['x'.repeat(64), 1, 0]], null],
    ['actor of 65 characters', [['x'.repeat(65), 1, 0]], /node id/],
    ['actor not a string', [[7, 1, 0]], /non-empty string/],
    ['actor with every allowed character', [['Az09_.-', 1, 0]], null],
    ['timestamp 0', [['a', 1, 0]], null],
    ['timestamp fractional', [['a', 1, 1.5]], null],
    ['timestamp negative', [['a', 1, -1]], /finite number >= 0/],
    ['timestamp NaN', [['a', 1, NaN]], /finite number >= 0/],
    ['timestamp Infinity', [['a', 1, Infinity]], /finite number >= 0/],
    ['timestamp as a string', [['a', 1, '0']], /finite number >= 0/],
    ['entry not an array', ['a'], /\[actor, counter, tsMs\]/],
    ['duplicate actor', [['a', 1, 0], ['a', 2, 0]], /sorted/],
  ];
  for (const [name, clock, want] of cases) {
    if (want === null) t.equal(clockProblem(clock), null, name);
    else t.match(clockProblem(clock), want, name);
  }
  t.equal(clockProblem(entries(300), 1000), null, 'a caller may allow more entries (object clocks)');
  t.match(clockProblem(entries(3), 2), /3 entries; at most 2/);
});

t.test('descends is linear and agrees with the entry-wise definition', async (t) => {
  const slow = (a: VClock, b: VClock) => b.every(([actor, c]) => counterOf(a, actor) >= c);
  fc.assert(fc.property(clockArb, clockArb, (a, b) => descends(a, b) === slow(a, b)), { numRuns: 1000 });
  const big: VClock = Array.from({ length: 200_000 }, (_, i) => [`n${String(i).padStart(6, '0')}`, 1, 0] as const);
  const started = performance.now();
  t.ok(descends(big, big));
  t.comment(`descends on two clocks of 200k entries: ${(performance.now() - started).toFixed(1)} ms`);
});

t.test('counterReader answers lookups in actor order and refuses any other order', async (t) => {
  const clock: VClock = [['a', 3, 0], ['c', 5, 0], ['e', 1, 0]];
  const read = counterReader(clock);
  t.same(['a', 'a', 'b', 'c', 'd', 'e', 'f'].map((x) => read(x)), [3, 3, 0, 5, 0, 1, 0]);
  t.throws(() => read('c'), /looked up after/, 'going back is a bug in the caller, not a 0');
});

t.test('clampTimestamps pulls future timestamps back to now and keeps the rest', async (t) => {
  const clock: VClock = [['a', 3, 5], ['b', 1, 99_999], ['c', 2, 10]];
  t.same(clampTimestamps(clock, 10), [['a', 3, 5], ['b', 1, 10], ['c', 2, 10]]);
  t.equal(clampTimestamps(clock, 100_000), clock, 'nothing in the future: the same clock');
});
