// PN-counter laws (commutative, associative, idempotent join) on states
// reachable by operations and syncs of three replicas, and its checker:
// after every replica has merged every other, the value is the sum of the
// operations applied.
import t from 'tap';
import fc from 'fast-check';
import { addToCounter, counterFromWire, counterToWire, counterValue, emptyCounter, int64Max, joinCounters, resetCounter } from '../../src/core/crdt/counter.js';
import type { CounterState } from '../../src/core/crdt/counter.js';
import { TuneKvError } from '../../src/errors.js';

const actors = ['n1', 'n2', 'n3'];
type Step = { kind: 'add'; at: number; delta: number } | { kind: 'reset'; at: number } | { kind: 'sync'; from: number; to: number };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), at: fc.integer({ min: 0, max: 2 }), delta: fc.integer({ min: -1000, max: 1000 }) }),
  fc.record({ kind: fc.constant('reset' as const), at: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('sync' as const), from: fc.integer({ min: 0, max: 2 }), to: fc.integer({ min: 0, max: 2 }) }),
);

/** Runs the steps; returns every state any replica passed through and the final ones. */
function run(steps: readonly Step[]): { seen: CounterState[]; replicas: CounterState[] } {
  const replicas: CounterState[] = [emptyCounter, emptyCounter, emptyCounter];
  const seen: CounterState[] = [emptyCounter];
  for (const s of steps) {
    if (s.kind === 'add') replicas[s.at] = addToCounter(replicas[s.at]!, actors[s.at]!, BigInt(s.delta));
    else if (s.kind === 'reset') replicas[s.at] = resetCounter(replicas[s.at]!, actors[s.at]!);
    else replicas[s.to] = joinCounters(replicas[s.to]!, replicas[s.from]!);
    seen.push(...replicas);
  }
  return { seen, replicas };
}

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return e instanceof TuneKvError ? e.code : String(e);
  }
}

const same = (a: CounterState, b: CounterState): boolean => JSON.stringify(counterToWire(a), (_k, v) => (typeof v === 'bigint' ? v.toString() : v))
  === JSON.stringify(counterToWire(b), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));

t.test('join is commutative, associative and idempotent on reachable states', async (t) => {
  fc.assert(fc.property(fc.array(stepArb, { maxLength: 40 }), fc.nat(), fc.nat(), fc.nat(), (steps, i, j, k) => {
    const { seen } = run(steps);
    const a = seen[i % seen.length]!;
    const b = seen[j % seen.length]!;
    const c = seen[k % seen.length]!;
    return same(joinCounters(a, b), joinCounters(b, a))
      && same(joinCounters(joinCounters(a, b), c), joinCounters(a, joinCounters(b, c)))
      && same(joinCounters(a, a), a);
  }), { numRuns: 500, seed: 21 });
  t.pass('500 histories');
});

t.test('checker: after full exchange every replica holds the sum of the increments (no reset)', async (t) => {
  fc.assert(fc.property(fc.array(stepArb.filter((s) => s.kind !== 'reset'), { maxLength: 60 }), (steps) => {
    const { replicas } = run(steps);
    const expected = steps.reduce((sum, s) => (s.kind === 'add' ? sum + BigInt(s.delta) : sum), 0n);
    const all = replicas.reduce(joinCounters);
    return replicas.every((r) => same(joinCounters(r, all), all)) && counterValue(all) === expected;
  }), { numRuns: 500, seed: 22 });
  t.pass('500 histories');
});

t.test('a reset takes away what it observed; a concurrent increment survives it', async (t) => {
  let a = addToCounter(emptyCounter, 'n1', 10n);
  let b = joinCounters(emptyCounter, a);
  b = resetCounter(b, 'n2');
  a = addToCounter(a, 'n1', 5n);
  t.equal(counterValue(b), 0n);
  t.equal(counterValue(joinCounters(a, b)), 5n, 'the increment the reset did not see');
});

t.test('exact past 2^53 and refused before signed 64 bits', async (t) => {
  const big = addToCounter(emptyCounter, 'n1', 2n ** 53n);
  const more = addToCounter(big, 'n1', 1n);
  t.equal(counterValue(more), 2n ** 53n + 1n, 'exact past 2^53');
  const top = addToCounter(emptyCounter, 'n1', int64Max);
  t.equal(codeOf(() => addToCounter(top, 'n2', 1n)), 'COUNTER_OVERFLOW', 'past 2^63 - 1 refused');
  const back = counterFromWire(counterToWire(more));
  t.equal(counterValue(back), 2n ** 53n + 1n, 'the wire form keeps it');
  const n = addToCounter(addToCounter(emptyCounter, 'n1', -int64Max), 'n2', 5n);
  t.equal(codeOf(() => addToCounter(n, 'n2', -(2n ** 62n))), 'COUNTER_OVERFLOW', 'below -2^63 refused');
});

t.test('hostile wire forms are refused', async (t) => {
  for (const bad of [null, [], [[], [], []], [[['n1', 0]], []], [[['n1', -1n]], []], [[['n1', 2n ** 63n]], []],
    [[['n2', 1], ['n1', 1]], []], [[['n1', 1], ['n1', 2]], []], [[['bad actor!', 1]], []], [[['n1', 1.5]], []]]) {
    t.throws(() => counterFromWire(bad), JSON.stringify(bad, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  }
});
