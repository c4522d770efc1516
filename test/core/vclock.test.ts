import t from 'tap';
import fc from 'fast-check';
import { compare, counterOf, covers, descends, emptyClock, increment, merge, prune, clockProblem } from '../../src/core/clock/vclock.js';
import type { VClock } from '../../src/core/clock/vclock.js';

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
