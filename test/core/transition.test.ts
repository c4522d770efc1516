// Ring transitions as pure functions: a plan's phases, who receives what,
// and a step only when every live member installed the last ring and the
// receivers reported (src/core/ring/transition.ts).
import t from 'tap';
import { claim, createRing, preferenceList } from '../../src/core/ring/ring.js';
import type { Ring } from '../../src/core/ring/ring.js';
import {
  Phase, advance, alsoRequired, changeProblem, claimant, commitPlan, dropExited, inTransition, readPreference, receivers, reportKey,
} from '../../src/core/ring/transition.js';

const member = (i: number) => ({ id: `n${i}`, addr: `127.0.0.1:${7000 + i}` });

function grow(nodes: number): Ring {
  let ring = createRing(16, 3, member(1));
  for (let i = 2; i <= nodes; i++) ring = claim(ring, member(i));
  return ring;
}

/** Every report the receivers of the ring's current phases would send. */
function allReports(ring: Ring): Set<string> {
  const out = new Set<string>();
  for (let p = 0; p < ring.q; p++) {
    for (const r of receivers(ring, p)) {
      out.add(reportKey(ring.plan ?? 0, p, r, 'streamed'));
      out.add(reportKey(ring.plan ?? 0, p, r, 'caughtup'));
    }
  }
  return out;
}

t.test('a join: receivers are the joiner, nothing moves until installed and reported', async (t) => {
  const ring = grow(3);
  const plan = commitPlan(ring, [{ op: 'join', id: 'n4', addr: '127.0.0.1:7004' }], 9);
  t.ok(inTransition(plan));
  t.equal(plan.version, ring.version + 1);
  t.same(plan.owners, ring.owners, 'the owners do not move at commit');
  const moving = plan.phase!.map((ph, p) => [ph, p] as const).filter(([ph]) => ph === Phase.transfer).map(([, p]) => p);
  t.ok(moving.length > 0, 'some partitions change replicas');
  for (const p of moving) t.same(receivers(plan, p), ['n4'], `partition ${p}: only the joiner receives`);
  t.equal(plan.members.find((m) => m.id === 'n4')?.state, 'joining');
  t.equal(advance(plan, allReports(plan), false), null, 'not installed: no step');
  t.equal(advance(plan, new Set(), true), null, 'no reports: transfer does not seal');
  const sealed = advance(plan, allReports(plan), true)!;
  for (const p of moving) {
    t.equal(sealed.phase![p], Phase.seal);
    t.ok(alsoRequired(sealed, p) !== null, 'a sealed partition needs a quorum of the next set too');
    t.same(readPreference(sealed, p).primaries, preferenceList(ring, p).primaries, 'reads stay on the current set');
  }
  const catchup = advance(sealed, new Set(), true)!;
  for (const p of moving) t.equal(catchup.phase![p], Phase.catchup, 'seal moves on once installed');
  t.equal(advance(catchup, new Set(), true), null, 'catchup waits for the caughtup reports');
  const flipped = advance(catchup, allReports(catchup), true)!;
  for (const p of moving) t.notSame(readPreference(flipped, p).primaries, preferenceList(ring, p).primaries, 'reads move to the next set');
  const done = advance(flipped, new Set(), true)!;
  t.notOk(inTransition(done));
  t.equal(done.members.find((m) => m.id === 'n4')?.state, 'valid');
  t.ok(done.owners.includes('n4'));
});

t.test('leave and remove: refused below n, leavers exit, removed members drop at the end', async (t) => {
  const three = grow(3);
  t.match(changeProblem(three, [], { op: 'leave', id: 'n2' }), /fewer than n=3/);
  const four = grow(4);
  t.equal(changeProblem(four, [], { op: 'leave', id: 'n2' }), null);
  t.match(changeProblem(four, [{ op: 'leave', id: 'n2' }], { op: 'remove', id: 'n3' }), /fewer than n=3/);
  t.match(changeProblem(four, [], { op: 'join', id: 'n1', addr: 'x:1' }), /already a member/);
  let ring = commitPlan(four, [{ op: 'leave', id: 'n2' }], 5);
  for (let i = 0; i < 10 && inTransition(ring); i++) ring = advance(ring, allReports(ring), true) ?? ring;
  t.notOk(inTransition(ring), 'the leave completes');
  t.equal(ring.members.find((m) => m.id === 'n2')?.state, 'exiting');
  t.notOk(ring.owners.includes('n2'));
  const gone = dropExited(ring, ['n2']);
  t.notOk(gone.members.some((m) => m.id === 'n2'));
  t.ok(gone.removed!.some((e) => e.startsWith('n2/')), 'remembered as removed');
  let removed = commitPlan(four, [{ op: 'remove', id: 'n3' }], 6);
  for (let i = 0; i < 10 && inTransition(removed); i++) removed = advance(removed, allReports(removed), true) ?? removed;
  t.notOk(removed.members.some((m) => m.id === 'n3'), 'a removed (dead) member is dropped at once');
  t.equal(claimant(four, (id) => id !== 'n1'), 'n2', 'the claimant is the lowest valid member seen up');
});
