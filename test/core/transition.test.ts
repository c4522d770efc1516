// Ring transitions as pure functions: a plan's phases, who receives what,
// and a step only when every live member installed the last ring and the
// receivers reported (src/core/ring/transition.ts).
import t from 'tap';
import { claim, createRing, preferenceList } from '../../src/core/ring/ring.js';
import type { Ring } from '../../src/core/ring/ring.js';
import {
  Phase, advance, alsoRequired, amendPlan, blockingReceivers, changeProblem, claimant, commitPlan, curPrimaries, dropExited, inTransition,
  nextPrimaries, planProblems, readPreference, receivers, reportKey, stillToDo, takenOut,
} from '../../src/core/ring/transition.js';

const member = (i: number) => ({ id: `n${i}`, addr: `127.0.0.1:${7000 + i}`, inc: `c0ffee${i}` });

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
  // Its data directory (its incarnation) is refused under any id: the data
  // is stale (a reaped delete would come back from it).
  const n2inc = gone.removed!.find((e) => e.startsWith('n2/'))!.slice(3);
  t.ok(n2inc.length > 0, 'the departed member had an incarnation');
  t.match(changeProblem(gone, [], { op: 'join', id: 'n2', addr: 'x:9', inc: n2inc }), /removed from this cluster/, 'refused under its own id');
  t.match(changeProblem(gone, [], { op: 'join', id: 'n9', addr: 'x:9', inc: n2inc }), /data directory was n2's/, 'and under a new one');
  t.equal(changeProblem(gone, [], { op: 'join', id: 'n9', addr: 'x:9', inc: 'abc123' }), null, 'a fresh directory joins');
  let removed = commitPlan(four, [{ op: 'remove', id: 'n3' }], 6);
  for (let i = 0; i < 10 && inTransition(removed); i++) removed = advance(removed, allReports(removed), true) ?? removed;
  t.notOk(removed.members.some((m) => m.id === 'n3'), 'a removed (dead) member is dropped at once');
  t.equal(claimant(four, (id) => id !== 'n1'), 'n2', 'the claimant is the lowest valid member seen up');
});

t.test('a dead receiver removed mid-transition: the queued removal is folded in, nothing flips without a new catch-up', async (t) => {
  const four = grow(4);
  // n4 leaves; some partitions move to the others.
  let ring = commitPlan(four, [{ op: 'leave', id: 'n4' }], 7);
  // Run until some partitions are flipped and others are still waiting.
  const firstMoves = ring.phase!.map((ph, p) => [ph, p] as const).filter(([ph]) => ph === Phase.transfer).map(([, p]) => p);
  t.ok(firstMoves.length > 1);
  // Every receiver but n3 reports: n3's partitions wait (n3 is down).
  const reportsBut = (r: Ring, dead: string): Set<string> => {
    const out = new Set<string>();
    for (const k of allReports(r)) if (!k.includes(`/${dead}/`)) out.add(k);
    return out;
  };
  for (let i = 0; i < 6; i++) ring = advance(ring, reportsBut(ring, 'n3'), true) ?? ring;
  t.ok(inTransition(ring), 'stuck on n3');
  t.equal(advance(ring, reportsBut(ring, 'n3'), true), null, 'no step without n3');
  const isUp = (id: string): boolean => id !== 'n3';
  t.same(blockingReceivers(ring, reportsBut(ring, 'n3'), isUp), ['n3']);
  t.same(blockingReceivers(ring, reportsBut(ring, 'n3'), () => true), [], 'a live receiver is waited for, not blocking');
  const flippedBefore = ring.phase!.map((ph, p) => [ph, p] as const).filter(([ph]) => ph === Phase.flipped).map(([, p]) => p);
  t.ok(flippedBefore.length > 0, 'some partitions flipped already');
  t.same(takenOut([{ op: 'remove', id: 'n3' }, { op: 'join', id: 'n9', addr: 'x:1' }]), ['n3']);

  t.equal(changeProblem(ring, [], { op: 'replace', id: 'n3', with: { id: 'n5', addr: '127.0.0.1:7005' } }), null);
  const amended = amendPlan(ring, [{ op: 'replace', id: 'n3', with: { id: 'n5', addr: '127.0.0.1:7005' } }], 8);
  t.equal(amended.version, ring.version + 1, 'one new version');
  t.equal(amended.plan, 8, 'a new plan id: no report of the old plan counts');
  t.same(amended.owners, ring.owners, 'the owners do not move');
  t.notOk(amended.next!.includes('n3'), 'n3 owns nothing once the plan completes');
  t.equal(amended.members.find((m) => m.id === 'n3')?.state, 'leaving');
  t.equal(amended.members.find((m) => m.id === 'n4')?.state, 'leaving', 'the first plan\'s leaver still leaves');
  t.equal(amended.members.find((m) => m.id === 'n5')?.state, 'joining');
  for (let p = 0; p < ring.q; p++) {
    const cur = curPrimaries(amended, p);
    const was = nextPrimaries(ring, p);
    const now = nextPrimaries(amended, p);
    const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));
    if (same(now, cur)) t.equal(amended.phase![p], Phase.stable, `partition ${p}: back to its current set`);
    else if (same(now, was)) t.equal(amended.phase![p], ring.phase![p], `partition ${p}: unchanged next set keeps its phase`);
    else t.equal(amended.phase![p], Phase.transfer, `partition ${p}: a changed next set starts over`);
    if (receivers(amended, p).includes('n5')) t.not(amended.phase![p], Phase.flipped, 'the replacement has received nothing yet');
  }
  // The old plan's reports (everything, even n3's) move nothing past transfer.
  const stale = new Set([...allReports(ring), ...reportsBut(ring, 'n3')]);
  for (let p = 0; p < ring.q; p++) for (const r of ['n1', 'n2', 'n3', 'n5']) { stale.add(reportKey(7, p, r, 'streamed')); stale.add(reportKey(7, p, r, 'caughtup')); }
  const step = advance(amended, stale, true);
  for (let p = 0; p < ring.q; p++) {
    if (amended.phase![p] === Phase.transfer || amended.phase![p] === Phase.catchup) t.equal(step?.phase?.[p] ?? amended.phase![p], amended.phase![p], `partition ${p} waits for reports of the new plan`);
  }
  // With the new plan's reports the transition completes without n3.
  let done = amended;
  for (let i = 0; i < 12 && inTransition(done); i++) done = advance(done, allReports(done), true) ?? done;
  t.notOk(inTransition(done), 'completes');
  t.notOk(done.owners.includes('n3'));
  t.notOk(done.owners.includes('n4'));
  t.ok(done.owners.includes('n5'));
  t.equal(done.members.find((m) => m.id === 'n5')?.state, 'valid');

  // A removal (not a replacement) drops the dead member at the end.
  let removed = amendPlan(ring, [{ op: 'remove', id: 'n3' }], 9);
  t.ok(removed.members.find((m) => m.id === 'n3')?.removing);
  for (let i = 0; i < 12 && inTransition(removed); i++) removed = advance(removed, allReports(removed), true) ?? removed;
  t.notOk(inTransition(removed));
  t.notOk(removed.members.some((m) => m.id === 'n3'), 'the removed member is dropped');
  t.notOk(removed.owners.includes('n3'));
  t.same(removed.members.map((m) => m.id), ['n1', 'n2', 'n4'], 'n4 exits as planned');
  t.equal(removed.members.find((m) => m.id === 'n4')?.state, 'exiting');
});

t.test('a commit is judged again on the ring of its time: done joins drop out, duplicates are refused', async (t) => {
  const ring = grow(4);
  const join4 = { op: 'join', id: 'n4', addr: '127.0.0.1:7004' } as const;
  const join5 = { op: 'join', id: 'n5', addr: '127.0.0.1:7005' } as const;
  t.same(stillToDo(ring, [join4, join5]), [join5], 'a join already in the ring is done');
  t.same(stillToDo(ring, [{ op: 'join', id: 'n4', addr: '127.0.0.1:9999' }]).length, 1, 'a member at another address is not the same join');
  t.same(planProblems(ring, [], [join5]), []);
  t.match(planProblems(ring, [], [{ op: 'join', id: 'n4', addr: '127.0.0.1:9999' }])[0], /already a member/);
  t.match(planProblems(ring, [join5], [join5])[0], /already staged/, 'judged after the changes before it');
  t.match(planProblems(ring, [{ op: 'leave', id: 'n2' }], [{ op: 'remove', id: 'n3' }])[0], /fewer than n=3/);
});
