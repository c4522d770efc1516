// ORSWOT laws on states reachable by adds, removes, clears and syncs of
// three replicas, and its checker against a model: every add is a unique
// event; a remove (or clear) kills the adds of the member that its replica
// had observed; the converged set is the members with an add not killed.
import t from 'tap';
import fc from 'fast-check';
import { addMember, clearSet, emptySet, joinSets, removeMember, setFromWire, setMembers, setToWire } from '../../src/core/crdt/orset.js';
import type { OrSet } from '../../src/core/crdt/orset.js';
import { TuneKvError } from '../../src/errors.js';
import { limits } from '../../src/limits.js';

const baseActors = ['n1', 'n2', 'n3'];
const memberArb = fc.constantFrom('apple', 'pear', 'fig', 'kiwi');
type Step =
  | { kind: 'add'; at: number; member: string }
  | { kind: 'remove'; at: number; member: string }
  | { kind: 'clear'; at: number }
  | { kind: 'sync'; from: number; to: number }
  | { kind: 'wipe'; at: number };
const at = fc.integer({ min: 0, max: 2 });
const stepArb = (wipes: boolean): fc.Arbitrary<Step> => fc.oneof(
  fc.record({ kind: fc.constant('add' as const), at, member: memberArb }),
  fc.record({ kind: fc.constant('add' as const), at, member: memberArb }),
  fc.record({ kind: fc.constant('remove' as const), at, member: memberArb }),
  fc.record({ kind: fc.constant('clear' as const), at }),
  fc.record({ kind: fc.constant('sync' as const), from: at, to: at }),
  fc.record({ kind: fc.constant('sync' as const), from: at, to: at }),
  ...(wipes ? [fc.record({ kind: fc.constant('wipe' as const), at })] : []),
);

/** The model: per replica, the add events it observed (member -> event ids). */
interface Model { observed: Map<string, Set<number>>[]; killed: Set<number>; adds: Map<number, string> }

function run(steps: readonly Step[]): { seen: OrSet[]; replicas: OrSet[]; model: Model } {
  const replicas: OrSet[] = [emptySet, emptySet, emptySet];
  const model: Model = { observed: [new Map(), new Map(), new Map()], killed: new Set(), adds: new Map() };
  const seen: OrSet[] = [emptySet];
  const actors = [...baseActors];
  let nowMs = 1;
  for (const s of steps) {
    nowMs++;
    switch (s.kind) {
      case 'add': {
        replicas[s.at] = addMember(replicas[s.at]!, s.member, actors[s.at]!, nowMs);
        const id = model.adds.size;
        model.adds.set(id, s.member);
        const obs = model.observed[s.at]!;
        obs.set(s.member, new Set([...(obs.get(s.member) ?? []), id]));
        break;
      }
      case 'remove':
        replicas[s.at] = removeMember(replicas[s.at]!, s.member, actors[s.at]!, nowMs);
        for (const id of model.observed[s.at]!.get(s.member) ?? []) model.killed.add(id);
        break;
      case 'clear':
        replicas[s.at] = clearSet(replicas[s.at]!, actors[s.at]!, nowMs);
        for (const ids of model.observed[s.at]!.values()) for (const id of ids) model.killed.add(id);
        break;
      case 'sync': {
        replicas[s.to] = joinSets(replicas[s.to]!, replicas[s.from]!);
        const to = model.observed[s.to]!;
        for (const [m, ids] of model.observed[s.from]!) to.set(m, new Set([...(to.get(m) ?? []), ...ids]));
        break;
      }
      case 'wipe':
        // A replica that lost its copy (a fallback that handed it off): it
        // coordinates again from nothing, later in time, and under a new
        // stand-in actor, as the coordinator does after any removal (a
        // clock entry under its old actor would claim the dots it dropped).
        replicas[s.at] = emptySet;
        actors[s.at] = `${baseActors[s.at]!}.${nowMs.toString(36)}`;
        model.observed[s.at] = new Map();
        break;
    }
    seen.push(...replicas);
  }
  return { seen, replicas, model };
}

const same = (a: OrSet, b: OrSet): boolean => JSON.stringify(setToWire(a)) === JSON.stringify(setToWire(b));

t.test('join is commutative, associative and idempotent on reachable states', async (t) => {
  fc.assert(fc.property(fc.array(stepArb(false), { maxLength: 40 }), fc.nat(), fc.nat(), fc.nat(), (steps, i, j, k) => {
    const { seen } = run(steps);
    const a = seen[i % seen.length]!;
    const b = seen[j % seen.length]!;
    const c = seen[k % seen.length]!;
    return same(joinSets(a, b), joinSets(b, a))
      && same(joinSets(joinSets(a, b), c), joinSets(a, joinSets(b, c)))
      && same(joinSets(a, a), a);
  }), { numRuns: 1000, seed: 31 });
  t.pass('1000 histories');
});

t.test('checker: converged members are the adds minus the observed removes (replicas may lose their copy)', async (t) => {
  fc.assert(fc.property(fc.array(stepArb(true), { maxLength: 60 }), (steps) => {
    const { seen, model } = run(steps);
    // Every state any replica ever held, merged: what full anti-entropy of
    // everything acknowledged converges to.
    const all = seen.reduce(joinSets);
    const expected = [...new Set([...model.adds].filter(([id]) => !model.killed.has(id)).map(([, m]) => m))].sort();
    return JSON.stringify(setMembers(all)) === JSON.stringify(expected);
  }), { numRuns: 1000, seed: 32 });
  t.pass('1000 histories');
});

t.test('an observed remove wins over nothing it has not seen: add wins', async (t) => {
  const base = addMember(emptySet, 'apple', 'n1', 1);
  const removed = removeMember(joinSets(emptySet, base), 'apple', 'n1', 2);
  const readded = addMember(base, 'apple', 'n2', 2);
  t.same(setMembers(joinSets(removed, base)), [], 'the remove saw the only add');
  t.same(setMembers(joinSets(removed, readded)), ['apple'], 'a concurrent add the remove did not see survives');
  t.same(removed.entries, [], 'a removed member leaves no entry behind (only clock entries)');
});

t.test('the member limit is enforced on adds, not on joins', async (t) => {
  let s = emptySet;
  const entries: [string, [string, number][]][] = [];
  for (let i = 0; i < limits.setMembersMax; i++) entries.push([`m${String(i).padStart(6, '0')}`, [['n1', i + 1]]]);
  s = { clock: [['n1', limits.setMembersMax]], entries };
  let code: string | null = null;
  try {
    addMember(s, 'one-more', 'n1', 1);
  } catch (e) {
    code = e instanceof TuneKvError ? e.code : null;
  }
  t.equal(code, 'SET_MEMBERS_LIMIT');
  t.equal(addMember(s, 'm000001', 'n1', 1).entries.length, limits.setMembersMax, 're-adding a present member is fine');
  t.equal(joinSets(s, addMember(emptySet, 'other', 'n2', 1)).entries.length, limits.setMembersMax + 1, 'joins never refuse');
});

t.test('hostile wire forms are refused', async (t) => {
  for (const bad of [null, [[], {}], [[['n1', 1]], [['a', []]]], [[['n1', 1]], [['a', [['n1', 2]]]]], [[], [['a', [['n1', 1]]]]],
    [[['n1', 3]], [['b', [['n1', 1]]], ['a', [['n1', 2]]]]], [[['n1', 3]], [['', [['n1', 1]]]]], [[['n1', 3]], [[5, [['n1', 1]]]]],
    [[['n1', 1], ['n1', 2]], []], [[['n1', 2 ** 60]], []], [[['n1', 3]], [['x'.repeat(limits.setMemberBytesMax + 1), [['n1', 1]]]]]]) {
    t.throws(() => setFromWire(bad), JSON.stringify(bad).slice(0, 80));
  }
  const good = addMember(addMember(emptySet, 'b', 'n1', 1), 'a', 'n2', 1);
  t.ok(same(setFromWire(setToWire(good)), good), 'a real set round-trips');
});
