// Ring transitions: changing the cluster's shape without breaking a promise.
//
// A change (join, leave, remove, replace) is staged, then committed as a
// plan. Committing does not move ownership: it gives the ring `next`
// owners, and every partition whose replica set changes a *phase*. The old
// replicas stay the owners until the new ones hold the data, and ownership
// flips per partition, each step in a new ring version (Riak's pending
// ownership and handoff, with the read/write sets spelled out):
//
//   phase      reads from   a write needs W acks from      also sent to
//   stable     cur          cur                            -
//   transfer   cur          cur                            next (uncounted)
//   seal       cur          cur AND next                   -
//   catchup    cur          cur AND next                   -
//   flipped    next         next AND cur                   -
//   (final)    next         next                           -
//
// cur(p) is partition p's preference list under the current owners, next(p)
// under the next owners. `transfer`: the receivers (next(p) minus cur(p))
// stream the partition from a current replica. `seal`: from here on every
// acknowledged write is on a quorum of both sets. `catchup`: once every
// live member has installed the seal (so no write acknowledged by cur alone
// can still happen), each receiver exchanges the partition with every live
// current replica (anti-entropy), which brings it every write acknowledged
// before the seal. `flipped`: reads move to next. The final step drops cur.
// A strong read takes a quorum of both sets while a partition is sealed,
// caught up or flipped, so no strong read can see an older state than an
// earlier one, whichever of two adjacent ring versions each side used.
//
// The claimant (the lowest-id valid member) makes every step, one ring
// version at a time, and makes the next only after every live member has
// installed the last one. Replicas refuse a request from a coordinator on
// an older ring (fencing), so at any moment live requests span at most two
// adjacent versions, and the table above makes any two adjacent versions
// compatible.
//
// Everything here is pure: the same ring and reports give the same next
// ring on every node, in the simulator and over TCP.

import { claim, memberOf, nodeIdProblem, preferenceList, removeMember, stateOf } from './ring.js';
import type { Member, MemberState, PreferenceList, Ring } from './ring.js';
import { limits } from '../../limits.js';

export const Phase = { stable: 0, transfer: 1, seal: 2, catchup: 3, flipped: 4 } as const;
export type PhaseNumber = (typeof Phase)[keyof typeof Phase];
export const phaseNames = ['stable', 'transfer', 'seal', 'catchup', 'flipped'] as const;

export type Change =
  | { readonly op: 'join'; readonly id: string; readonly addr: string; readonly inc?: string }
  | { readonly op: 'leave'; readonly id: string }
  | { readonly op: 'remove'; readonly id: string }
  | { readonly op: 'replace'; readonly id: string; readonly with: { readonly id: string; readonly addr: string; readonly inc?: string } };

export function inTransition(ring: Ring): boolean {
  return ring.next !== undefined && ring.next !== null;
}

export function phaseOf(ring: Ring, p: number): PhaseNumber {
  return (ring.phase?.[p] ?? Phase.stable) as PhaseNumber;
}

/** The ring as it will be once the plan completes (cached per ring value). */
const nextViews = new WeakMap<Ring, Ring>();
export function nextView(ring: Ring): Ring {
  if (!ring.next) return ring;
  let v = nextViews.get(ring);
  if (!v) {
    v = { ...ring, owners: ring.next, next: null, phase: null };
    nextViews.set(ring, v);
  }
  return v;
}

export function curPrimaries(ring: Ring, p: number): readonly string[] {
  return preferenceList(ring, p).primaries;
}

export function nextPrimaries(ring: Ring, p: number): readonly string[] {
  return preferenceList(nextView(ring), p).primaries;
}

/** Whom reads (and counted writes) go to first: next once flipped. */
export function readPreference(ring: Ring, p: number): PreferenceList {
  const view = phaseOf(ring, p) === Phase.flipped ? nextView(ring) : ring;
  return preferenceList(view, p);
}

/** The second replica set a write must also reach a quorum of (seal,
 * catchup, flipped), or null. */
export function alsoRequired(ring: Ring, p: number): readonly string[] | null {
  const ph = phaseOf(ring, p);
  if (ph === Phase.seal || ph === Phase.catchup) return nextPrimaries(ring, p);
  if (ph === Phase.flipped) return curPrimaries(ring, p);
  return null;
}

/** Nodes a write is also sent to without counting (transfer). */
export function alsoSent(ring: Ring, p: number): readonly string[] {
  return phaseOf(ring, p) === Phase.transfer ? receivers(ring, p) : [];
}

/** Nodes that must receive partition p before it flips. */
export function receivers(ring: Ring, p: number): string[] {
  const ph = phaseOf(ring, p);
  if (ph === Phase.stable || ph === Phase.flipped) return [];
  const cur = curPrimaries(ring, p);
  return nextPrimaries(ring, p).filter((id) => !cur.includes(id));
}

/** Every node that should hold partition p's data now (either set). */
export function holders(ring: Ring, p: number): string[] {
  const out = [...curPrimaries(ring, p)];
  if (inTransition(ring)) for (const id of nextPrimaries(ring, p)) if (!out.includes(id)) out.push(id);
  return out;
}

export function holds(ring: Ring, id: string, p: number): boolean {
  return curPrimaries(ring, p).includes(id) || (inTransition(ring) && nextPrimaries(ring, p).includes(id));
}

/** The member that makes ring changes: the lowest-id valid member that
 * `isUp` (the local failure detector) sees up, so a dead claimant can be
 * removed. Two nodes that disagree about who is up may both step for a
 * moment; their rings are ordered (isNewer) and every step is a pure
 * function of ring and reports, so the loser's step is redone, but a plan
 * committed on the losing side is lost (its commit answered; `tunekv plan`
 * shows what is in force). */
export function claimant(ring: Ring, isUp: (id: string) => boolean = () => true): string {
  const valid = ring.members.filter((m) => stateOf(m) === 'valid');
  return (valid.find((m) => isUp(m.id)) ?? valid[0] ?? ring.members[0]!).id;
}

/** A node acts as claimant only while it sees a majority of the members
 * up (itself included): the minority side of a partition makes no ring
 * changes, so two sides do not both commit plans. */
export function seesMajority(ring: Ring, isUp: (id: string) => boolean): boolean {
  const up = ring.members.filter((m) => isUp(m.id)).length;
  return up >= Math.floor(ring.members.length / 2) + 1;
}

/** Members that will own partitions once the plans complete. */
function staying(ring: Ring): Member[] {
  return ring.members.filter((m) => stateOf(m) === 'valid' || stateOf(m) === 'joining');
}

function removedEntry(m: Member): string {
  return `${m.id}/${m.inc ?? ''}`;
}

export function isRemoved(ring: Ring, id: string, inc: string | undefined): boolean {
  return (ring.removed ?? []).includes(`${id}/${inc ?? ''}`);
}

/** The id a removed or departed member had, when `inc` (a data directory's
 * incarnation) is its: that directory holds stale data whatever id it
 * comes back under. */
export function removedWithInc(ring: Ring, inc: string | undefined): string | undefined {
  if (inc === undefined || inc === '') return undefined;
  const entry = (ring.removed ?? []).find((e) => e.endsWith(`/${inc}`));
  return entry?.slice(0, entry.lastIndexOf('/'));
}

/** Plain words for why `change` cannot be staged after `staged`, or null. */
export function changeProblem(ring: Ring, staged: readonly Change[], change: Change): string | null {
  if (staged.length >= limits.stagedChangesMax) return `at most ${limits.stagedChangesMax} changes may be staged at once`;
  const touched = new Set(staged.flatMap((c) => (c.op === 'replace' ? [c.id, c.with.id] : [c.id])));
  const ids = change.op === 'replace' ? [change.id, change.with.id] : [change.id];
  for (const id of ids) if (touched.has(id)) return `a change for ${id} is already staged`;
  const joining = change.op === 'join' ? change : change.op === 'replace' ? change.with : undefined;
  if (joining) {
    const problem = nodeIdProblem(joining.id);
    if (problem) return problem;
    if (memberOf(ring, joining.id)) return `${joining.id} is already a member`;
    if (joining.inc !== undefined && isRemoved(ring, joining.id, joining.inc)) {
      return `${joining.id} was removed from this cluster and still has its old data: wipe its data directory, then join it anew`;
    }
    const formerly = removedWithInc(ring, joining.inc);
    if (formerly !== undefined) {
      return `${joining.id}'s data directory was ${formerly}'s, which left or was removed: its data is stale; wipe it, then join anew`;
    }
    if (ring.members.length + staged.filter((c) => c.op === 'join' || c.op === 'replace').length >= limits.nodesMax) {
      return `a ring holds at most ${limits.nodesMax} nodes`;
    }
  }
  if (change.op !== 'join') {
    const m = memberOf(ring, change.id);
    if (!m) return `${change.id} is not a member`;
    if (stateOf(m) !== 'valid') return `${change.id} is ${stateOf(m)}, not valid`;
  }
  if (change.op === 'leave' || change.op === 'remove') {
    const leavingIds = new Set([...staged.filter((c) => c.op === 'leave' || c.op === 'remove').map((c) => c.id), change.id]);
    const joins = staged.filter((c) => c.op === 'join').length;
    const left = staying(ring).filter((m) => !leavingIds.has(m.id)).length + joins;
    if (left < ring.n) {
      return `${change.op === 'leave' ? 'leaving' : 'removing'} ${change.id} would leave ${left} member(s), fewer than n=${ring.n}: add a node first (or replace it)`;
    }
  }
  return null;
}

/** `changes` without the joins the ring already holds (same id and
 * address): a join staged while this node's ring was older, and committed
 * meanwhile by another claimant, is done, not a conflict. */
export function stillToDo(ring: Ring, changes: readonly Change[]): Change[] {
  return changes.filter((c) => !(c.op === 'join' && memberOf(ring, c.id)?.addr === c.addr));
}

/** Why `changes`, applied in order after `before`, cannot be committed on
 * `ring` (plain words), or an empty list. Staging checked each change on
 * the ring of its time; the ring may have moved on since. */
export function planProblems(ring: Ring, before: readonly Change[], changes: readonly Change[]): string[] {
  const seen = [...before];
  const out: string[] = [];
  for (const c of changes) {
    const problem = changeProblem(ring, seen, c);
    if (problem) out.push(problem); else seen.push(c);
  }
  return out;
}

function setEqual(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** The ring that starts a transition for `changes` (applied in order).
 * `planId` names the plan (its reports and the receivers' cursors): the
 * claimant draws it at random, so two plans committed on two sides of a
 * partition never share one. */
export function commitPlan(ring: Ring, changes: readonly Change[], planId: number = (ring.plan ?? 0) + 1): Ring {
  if (inTransition(ring)) throw new TypeError('a transition is already in progress');
  let work: Ring = { ...ring, members: staying(ring), next: null, phase: null };
  const states = new Map<string, MemberState>(ring.members.map((m) => [m.id, stateOf(m)]));
  const removing = new Set<string>();
  const added: Member[] = [];
  for (const c of changes) {
    if (c.op === 'join') {
      const m: Member = { id: c.id, addr: c.addr, state: 'joining', ...(c.inc !== undefined ? { inc: c.inc } : {}) };
      work = claim(work, m);
      added.push(m);
      states.set(c.id, 'joining');
    } else if (c.op === 'leave' || c.op === 'remove') {
      work = removeMember(work, c.id);
      states.set(c.id, 'leaving');
      if (c.op === 'remove') removing.add(c.id);
    } else {
      const m: Member = { id: c.with.id, addr: c.with.addr, state: 'joining', ...(c.with.inc !== undefined ? { inc: c.with.inc } : {}) };
      const owners = work.owners.map((o) => (o === c.id ? m.id : o));
      work = { ...work, owners, members: [...work.members.filter((x) => x.id !== c.id), m].sort((a, b) => (a.id < b.id ? -1 : 1)) };
      added.push(m);
      states.set(c.id, 'leaving');
      states.set(m.id, 'joining');
    }
  }
  const members = [...ring.members, ...added].sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((m) => ({ ...m, state: states.get(m.id) ?? stateOf(m), ...(removing.has(m.id) ? { removing: true } : {}) }));
  const removed = (ring.removed ?? []).filter((e) => !added.some((a) => e.startsWith(`${a.id}/`)));
  const base: Ring = { ...ring, version: ring.version + 1, members, next: work.owners, phase: null, plan: planId, removed };
  const phase = Array.from({ length: ring.q }, (_, p) => (setEqual(curPrimaries(base, p), nextPrimaries(base, p)) ? Phase.stable : Phase.transfer));
  return { ...base, phase };
}

/**
 * Folds `changes` into the transition in progress, as one new ring version
 * under a new plan id (Riak's claimant re-plans pending ownership the same
 * way when a node is removed mid-handoff). Used when the transition cannot
 * finish without a member that the operator has since removed or replaced
 * (a dead receiver): queued behind the transition, that removal would wait
 * for it forever.
 *
 * The owners do not move. `next` becomes what `changes` make of the old
 * next owners, and each partition's phase is chosen so that any two
 * adjacent versions still agree (the table at the top):
 *   - next set unchanged: its phase stays (its reports are asked again
 *     under the new plan id: a catch-up or stream done for the old plan is
 *     not trusted for the new one);
 *   - next set equal to the current set: stable;
 *   - otherwise: transfer, from the start.
 * Going back to stable or transfer from any phase is safe because every
 * phase keeps the current set a quorum holder: writes in seal, catchup and
 * flipped need W acks from the current set too, and a strong read's
 * write-back reaches a quorum of both sets. So the current set holds every
 * acknowledged write and everything a strong read returned, and reading
 * from it alone (stable, transfer) cannot go back in time. Every partition
 * that then moves streams, seals and catches up again before it flips.
 */
export function amendPlan(ring: Ring, changes: readonly Change[], planId: number = (ring.plan ?? 0) + 1): Ring {
  if (!inTransition(ring)) return commitPlan(ring, changes, planId);
  // Plan from the ring as it will be once the transition completes.
  const target: Ring = { ...nextView(ring), version: ring.version };
  const planned = commitPlan(target, changes, planId);
  const base: Ring = { ...ring, version: ring.version + 1, members: planned.members, next: planned.next, plan: planId, removed: planned.removed, phase: null };
  const phase = Array.from({ length: ring.q }, (_, p) => {
    const cur = curPrimaries(ring, p);
    const was = nextPrimaries(ring, p);
    const now = nextPrimaries(base, p);
    if (setEqual(now, cur)) return Phase.stable;
    if (setEqual(now, was)) {
      const ph = phaseOf(ring, p);
      // A stable partition whose next set already differed cannot exist;
      // should one, it starts from transfer like any other move.
      return ph === Phase.stable ? Phase.transfer : ph;
    }
    return Phase.transfer;
  });
  return { ...base, phase };
}

/** Receivers the transition waits for that `isUp` sees down: their
 * partitions cannot move on until they return (or are removed). */
export function blockingReceivers(ring: Ring, reports: Reports, isUp: (id: string) => boolean): string[] {
  if (!inTransition(ring)) return [];
  const plan = ring.plan ?? 0;
  const out = new Set<string>();
  for (let p = 0; p < ring.q; p++) {
    const ph = phaseOf(ring, p);
    const what = ph === Phase.transfer ? 'streamed' : ph === Phase.catchup ? 'caughtup' : null;
    if (what === null) continue;
    for (const r of receivers(ring, p)) if (!isUp(r) && !reports.has(reportKey(plan, p, r, what))) out.add(r);
  }
  return [...out].sort();
}

/** Members a change takes out of the ring (remove, replace). */
export function takenOut(changes: readonly Change[]): string[] {
  return changes.filter((c) => c.op === 'remove' || c.op === 'replace').map((c) => c.id);
}

/** What a plan would move: per partition, the replicas gained and lost. */
export interface PlanSummary {
  readonly members: { id: string; state: MemberState; partitionsBefore: number; partitionsAfter: number }[];
  readonly moves: { partition: number; from: string[]; to: string[] }[];
}

export function summarize(ring: Ring): PlanSummary {
  const next = nextView(ring);
  const members = ring.members.map((m) => ({
    id: m.id, state: stateOf(m),
    partitionsBefore: ring.owners.filter((o) => o === m.id).length,
    partitionsAfter: next.owners.filter((o) => o === m.id).length,
  }));
  const moves: PlanSummary['moves'] = [];
  for (let p = 0; p < ring.q; p++) {
    const cur = curPrimaries(ring, p);
    const nxt = nextPrimaries(ring, p);
    const to = nxt.filter((x) => !cur.includes(x));
    const from = cur.filter((x) => !nxt.includes(x));
    if (to.length > 0 || from.length > 0) moves.push({ partition: p, from, to });
  }
  return { members, moves };
}

/** Receivers' reports to the claimant, keyed by reportKey. */
export type Reports = ReadonlySet<string>;

export function reportKey(plan: number, p: number, node: string, what: 'streamed' | 'caughtup'): string {
  return `${plan}/${p}/${node}/${what}`;
}

/**
 * One step of a transition, or null when nothing can move yet. `installed`
 * says every live member holds `ring` (the claimant pushed it and heard back
 * from all of them): without it nothing moves. Each step advances every
 * partition that can, in one new version.
 */
export function advance(ring: Ring, reports: Reports, installed: boolean): Ring | null {
  if (!installed || !inTransition(ring)) return null;
  const plan = ring.plan ?? 0;
  const phase = [...(ring.phase ?? [])];
  let moved = false;
  const all = (p: number, what: 'streamed' | 'caughtup'): boolean => receivers(ring, p).every((r) => reports.has(reportKey(plan, p, r, what)));
  for (let p = 0; p < ring.q; p++) {
    const ph = phase[p];
    let to: number | undefined;
    if (ph === Phase.transfer && all(p, 'streamed')) to = Phase.seal;
    else if (ph === Phase.seal) to = Phase.catchup;
    else if (ph === Phase.catchup && all(p, 'caughtup')) to = Phase.flipped;
    if (to !== undefined) { phase[p] = to; moved = true; }
  }
  if (moved) return { ...ring, version: ring.version + 1, phase };
  if (phase.every((ph) => ph === Phase.stable || ph === Phase.flipped)) return finish(ring);
  return null;
}

/** The last step: next becomes the owners; joiners are valid, leavers
 * exiting, and removed (dead) members are dropped at once. */
function finish(ring: Ring): Ring {
  const dropped = ring.members.filter((m) => m.removing === true);
  const members = ring.members.filter((m) => m.removing !== true).map((m) => {
    const s = stateOf(m);
    return { ...m, state: s === 'joining' ? 'valid' as const : s === 'leaving' ? 'exiting' as const : s };
  });
  const removed = [...(ring.removed ?? []), ...dropped.map(removedEntry)].slice(-limits.removedNodesKept);
  return { ...ring, version: ring.version + 1, owners: ring.next!, next: null, phase: null, members, removed };
}

/** An exiting member is done (it handed everything off, or it is gone):
 * it leaves the ring and is remembered as removed. */
export function dropExited(ring: Ring, ids: readonly string[]): Ring {
  const gone = ring.members.filter((m) => ids.includes(m.id) && stateOf(m) === 'exiting');
  if (gone.length === 0) return ring;
  const removed = [...(ring.removed ?? []), ...gone.map(removedEntry)].slice(-limits.removedNodesKept);
  return { ...ring, version: ring.version + 1, members: ring.members.filter((m) => !gone.includes(m)), removed };
}

export function exitingMembers(ring: Ring): string[] {
  return ring.members.filter((m) => stateOf(m) === 'exiting').map((m) => m.id);
}
