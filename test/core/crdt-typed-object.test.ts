// Counters and sets inside VersionedObjects: merge() joins them (never
// siblings), sameVersions() is exact, the wire and disk form is validated,
// and retried write ids apply once.
import t from 'tap';
import fc from 'fast-check';
import { merge, mergeAll, sameVersions } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { elementHash } from '../../src/core/antientropy/segments.js';
import { counterOf, decideTyped, encodeTyped, membersOf, typedKey } from '../../src/core/crdt/typed-object.js';
import type { TypedOp } from '../../src/core/crdt/typed-object.js';
import { emptyCounter } from '../../src/core/crdt/counter.js';
import { limits } from '../../src/limits.js';
import { decodeObject, encodeObject, objectFromWire, objectToWire } from '../../src/protocol/object-codec.js';
import { pack } from '../../src/protocol/codec.js';
import { TuneKvError } from '../../src/errors.js';

const wid = (i: number): Uint8Array => Buffer.from(`write-id-${String(i).padStart(6, '0')}`);

function apply(obj: VersionedObject | undefined, op: TypedOp, actor: string, nowMs: number, w: Uint8Array | null = null): VersionedObject | undefined {
  return decideTyped(obj, { op, actor, nowMs, wid: w }).object;
}

const incr = (d: number): TypedOp => ({ kind: 'counter', op: 'add', delta: BigInt(d) });

t.test('merge joins counters: never siblings, commutative, associative, idempotent', async (t) => {
  const actors = ['n1', 'n2', 'n3'];
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: -5, max: 5 }), fc.boolean()), { maxLength: 30 }),
    fc.nat(), fc.nat(), fc.nat(), (steps, i, j, k) => {
      const reps: (VersionedObject | undefined)[] = [undefined, undefined, undefined];
      const seen: VersionedObject[] = [];
      let now = 1;
      let sum = 0n;
      for (const [at, d, sync] of steps) {
        now++;
        if (sync) reps[at] = mergeAll(reps.filter((x): x is VersionedObject => x !== undefined));
        else if (d !== 0) { reps[at] = apply(reps[at], incr(d), actors[at]!, now, wid(now)); sum += BigInt(d); }
        for (const r of reps) if (r) seen.push(r);
      }
      if (seen.length === 0) return true;
      const a = seen[i % seen.length]!;
      const b = seen[j % seen.length]!;
      const c = seen[k % seen.length]!;
      const all = mergeAll(seen)!;
      return sameVersions(merge(a, b), merge(b, a)) && sameVersions(merge(merge(a, b), c), merge(a, merge(b, c)))
        && sameVersions(merge(a, a), a) && merge(a, b).siblings.length === 1 && counterOf(all) === sum;
    }), { numRuns: 300, seed: 41 });
  t.pass('300 histories');
});

t.test('sameVersions and the anti-entropy hash see a state change', async (t) => {
  const a = apply(undefined, incr(1), 'n1', 1)!;
  const b = apply(a, incr(1), 'n1', 2)!;
  t.notOk(sameVersions(a, b), 'different counts are different versions');
  t.ok(sameVersions(b, merge(a, b)), 'the join of a and b is b');
  t.notSame(elementHash('k', a), elementHash('k', b), 'anti-entropy sees the difference');
  t.ok(sameVersions(merge(a, b), merge(b, a)));
});

t.test('a retried write id is applied once; the window is typedWriteIdsMax', async (t) => {
  let o = apply(undefined, incr(5), 'n1', 1, wid(0));
  const d = decideTyped(o, { op: incr(5), actor: 'n1', nowMs: 2, wid: wid(0) });
  t.equal(d.kind, 'unchanged', 'the retry changes nothing');
  // The record travels with the state: a retry through another replica that merged it is refused too.
  const other = merge(apply(undefined, incr(1), 'n2', 3)!, o!);
  t.equal(decideTyped(other, { op: incr(5), actor: 'n2', nowMs: 4, wid: wid(0) }).kind, 'unchanged', 'after a merge');
  for (let i = 1; i <= limits.typedWriteIdsMax; i++) o = apply(o, incr(1), 'n1', 10 + i, wid(i));
  t.equal(decideTyped(o, { op: incr(5), actor: 'n1', nowMs: 1000, wid: wid(0) }).kind, 'write', 'a retry older than the window applies again');
});

t.test('sets: add wins, remove of an absent member changes nothing, members sorted', async (t) => {
  const base = apply(undefined, { kind: 'set', op: 'add', member: 'pear' }, 'n1', 1)!;
  const withApple = apply(base, { kind: 'set', op: 'add', member: 'apple' }, 'n1', 2)!;
  t.same(membersOf(withApple), ['apple', 'pear']);
  t.equal(decideTyped(base, { op: { kind: 'set', op: 'remove', member: 'fig' }, actor: 'n1', nowMs: 3, wid: null }).kind, 'unchanged');
  const removed = apply(withApple, { kind: 'set', op: 'remove', member: 'apple' }, 'n2', 4)!;
  const concurrentAdd = apply(withApple, { kind: 'set', op: 'add', member: 'apple' }, 'n3', 4)!;
  t.same(membersOf(merge(removed, concurrentAdd)), ['apple', 'pear'], 'a concurrent add survives the remove');
  t.same(membersOf(merge(removed, withApple)), ['pear'], 'the observed add is removed');
  const cleared = apply(withApple, { kind: 'set', op: 'clear' }, 'n1', 5)!;
  t.same(membersOf(cleared), []);
});

t.test('typed objects round-trip the wire and disk; malformed ones are refused', async (t) => {
  const o = apply(undefined, incr(2 ** 53 + 2), 'n1', 1)!;
  const back = decodeObject(encodeObject(o));
  t.equal(counterOf(back), BigInt(2 ** 53 + 2), 'exact past 2^53 through disk');
  t.ok(sameVersions(back, o));
  const wire = objectToWire(o);
  const bad = (mut: (w: unknown[]) => void): unknown => {
    const w = structuredClone(wire) as unknown as [unknown[], unknown[][]];
    mut(w as unknown as unknown[]);
    return w;
  };
  const cases: [string, unknown][] = [
    ['a clock on a typed object', bad((w) => { (w[0] as unknown[]).push(['n1', 1, 1]); })],
    ['a second sibling', bad((w) => { const s = w[1] as unknown[][]; s.push([...s[0]!]); })],
    ['a value that is not msgpack', bad((w) => { (w[1] as unknown[][])[0]![5] = Buffer.from([0xc1]); })],
    ['a wrong digest', bad((w) => { (w[1] as unknown[][])[0]![1] = 7; })],
    ['a counter entry out of range', bad((w) => {
      const v = pack([1, [[['n1', 2n ** 63n - 1n + 0n]], [['n1', -1n]]], []]);
      (w[1] as unknown[][])[0]![5] = v;
    })],
    ['another actor', bad((w) => { (w[1] as unknown[][])[0]![0] = 'n1'; })],
  ];
  for (const [what, w] of cases) {
    let code: string | null = null;
    try {
      objectFromWire(w);
    } catch (e) {
      code = e instanceof TuneKvError ? e.code : String(e);
    }
    t.equal(code, 'INVALID_ARGUMENT', what);
  }
});

t.test('a typed object never meets a plain one, but merge stays deterministic if forged', async (t) => {
  const typed = encodeTyped({ kind: 'counter', state: emptyCounter, wids: [] }, 1);
  const plain: VersionedObject = { clock: [['n1', 5, 1]], siblings: [{ actor: 'n1', counter: 5, tsMs: 1, value: Buffer.from('x'), vtype: 0, lww: false, wid: null }] };
  t.equal(merge(typed, plain), typed);
  t.equal(merge(plain, typed), typed);
  t.not(typedKey('counter', 'x'), 'x', 'own key space');
  t.not(typedKey('counter', 'x'), typedKey('set', 'x'));
});

t.test('a counter past signed 64 bits is refused with COUNTER_OVERFLOW before anything is written', async (t) => {
  const top = apply(undefined, { kind: 'counter', op: 'add', delta: 2n ** 63n - 1n }, 'n1', 1);
  let code: string | null = null;
  try {
    decideTyped(top, { op: incr(1), actor: 'n2', nowMs: 2, wid: null });
  } catch (e) {
    code = e instanceof TuneKvError ? e.code : null;
  }
  t.equal(code, 'COUNTER_OVERFLOW');
});
