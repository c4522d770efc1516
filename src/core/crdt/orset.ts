// An add-wins observed-remove set without tombstones (Riak's ORSWOT,
// riak_dt_orswot): a set clock (actor -> highest counter it minted) and,
// per member, the dots of the adds that put it there.
//
// add(m) mints a new dot under the coordinator's actor and gives m that dot
// alone (the coordinator has seen m's earlier dots; the new one covers
// them). remove(m) drops m and its dots: the set clock still covers them,
// and that is the remove. A join keeps a dot that both sides hold, or that
// one side holds and the other side's clock has not seen; a dot one side
// dropped after seeing it is gone. So a remove takes away the adds its
// coordinator observed and nothing else: an add concurrent with it (a dot
// the remove never saw) survives, which is "add wins". Removed members
// leave nothing behind but clock entries, one per actor, however many
// members come and go: that is the compaction a tombstone set lacks.
//
// Dots are never reused: an actor's next counter is above its clock entry
// and never below the wall clock in µs (as clock/object.ts does for
// siblings), so a replica that lost the set, or a fallback coordinating
// again after handing its copy off, does not mint a dot the owners' clock
// already covers (their join would drop the new add). Stand-in actors
// (standInActor) cover fallbacks too.
//
// Invariants: clock sorted by actor, counters positive; members sorted,
// each with 1+ dots sorted by actor (one per actor), every dot covered by
// the clock; at most setMembersMax members on a coordinator's write
// (joins never refuse, as replica merges of plain objects never do).

import { actorProblem, counterProblem } from '../clock/vclock.js';
import { TuneKvError } from '../../errors.js';
import { limits } from '../../limits.js';

/** [actor, counter], sorted by actor. */
export type Dots = readonly (readonly [string, number])[];

export interface OrSet {
  readonly clock: Dots;
  /** [member, dots], sorted by member. */
  readonly entries: readonly (readonly [string, Dots])[];
}

export const emptySet: OrSet = { clock: [], entries: [] };

function byFirst<T extends readonly [string, unknown]>(a: T, b: T): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

function counterIn(dots: Dots, actor: string): number {
  for (const [a, c] of dots) if (a === actor) return c;
  return 0;
}

export function setMembers(s: OrSet): string[] {
  return s.entries.map(([m]) => m);
}

export function hasMember(s: OrSet, member: string): boolean {
  return s.entries.some(([m]) => m === member);
}

function joinClocks(a: Dots, b: Dots): Dots {
  const m = new Map<string, number>(a);
  for (const [actor, c] of b) if ((m.get(actor) ?? 0) < c) m.set(actor, c);
  return [...m].sort(byFirst);
}

/** The dots of one member after a join; see the header. */
function joinDots(da: Dots, db: Dots, clockA: Dots, clockB: Dots): Dots {
  const kept: [string, number][] = [];
  for (const [actor, c] of da) {
    if (counterIn(db, actor) === c || counterIn(clockB, actor) < c) kept.push([actor, c]);
  }
  for (const [actor, c] of db) {
    if (counterIn(da, actor) === c) continue;
    if (counterIn(clockA, actor) < c) kept.push([actor, c]);
  }
  return kept.sort(byFirst);
}

export function joinSets(a: OrSet, b: OrSet): OrSet {
  const members = new Map<string, [Dots, Dots]>();
  for (const [m, d] of a.entries) members.set(m, [d, []]);
  for (const [m, d] of b.entries) {
    const cur = members.get(m);
    if (cur) cur[1] = d; else members.set(m, [[], d]);
  }
  const entries: [string, Dots][] = [];
  for (const [m, [da, db]] of members) {
    const dots = joinDots(da, db, a.clock, b.clock);
    if (dots.length > 0) entries.push([m, dots]);
  }
  entries.sort(byFirst);
  return { clock: joinClocks(a.clock, b.clock), entries };
}

/** The next dot counter of `actor`; see the header. */
function nextCounter(s: OrSet, actor: string, nowMs: number): number {
  const counter = Math.max(counterIn(s.clock, actor) + 1, Math.floor(nowMs) * 1000);
  if (!Number.isSafeInteger(counter) || counter > limits.clockCounterMax) {
    throw new TuneKvError('INVALID_ARGUMENT', `${actor} would need set dot counter ${counter}, above clockCounterMax; add through another node`,
      { counter, limit: limits.clockCounterMax });
  }
  return counter;
}

/** Throws SET_MEMBERS_LIMIT when the add would pass setMembersMax. */
export function addMember(s: OrSet, member: string, actor: string, nowMs: number): OrSet {
  const present = hasMember(s, member);
  if (!present && s.entries.length >= limits.setMembersMax) {
    throw new TuneKvError('SET_MEMBERS_LIMIT', `the set already holds ${s.entries.length} members (setMembersMax ${limits.setMembersMax}); remove some first`,
      { members: s.entries.length, limit: limits.setMembersMax });
  }
  const counter = nextCounter(s, actor, nowMs);
  const clock = [...s.clock.filter(([a]) => a !== actor), [actor, counter] as const].sort(byFirst);
  const entries = [...s.entries.filter(([m]) => m !== member), [member, [[actor, counter]] as Dots] as const].sort(byFirst);
  return { clock, entries };
}

/**
 * The clock after a remove: the remover's entry moves to a fresh counter
 * that no member's dot carries. Riak's ORSWOT leaves the clock as it was on
 * a remove; then a state that missed the remove has the same clock as one
 * that has it, and a session (typed-version.ts: a set is at least as new as
 * another when its clock dominates) could read its own removed member
 * back. With the bump, a clock that covers the remover's new counter has
 * joined a state holding the remove: only the remover mints under its
 * actor, from its own copy, which keeps the remove. The spent counter
 * drops nothing in a join (no member carries it).
 */
function bumped(s: OrSet, actor: string, nowMs: number): Dots {
  return [...s.clock.filter(([a]) => a !== actor), [actor, nextCounter(s, actor, nowMs)] as const].sort(byFirst);
}

/** Removes what this copy observed of `member` (nothing if it holds none,
 * and then the set is unchanged). */
export function removeMember(s: OrSet, member: string, actor: string, nowMs: number): OrSet {
  if (!hasMember(s, member)) return s;
  return { clock: bumped(s, actor, nowMs), entries: s.entries.filter(([m]) => m !== member) };
}

/** delete(): every observed member removed; concurrent adds survive. */
export function clearSet(s: OrSet, actor: string, nowMs: number): OrSet {
  return s.entries.length === 0 ? s : { clock: bumped(s, actor, nowMs), entries: [] };
}

export function setToWire(s: OrSet): unknown[] {
  return [s.clock.map(([a, c]) => [a, c]), s.entries.map(([m, d]) => [m, d.map(([a, c]) => [a, c])])];
}

function dotsFromWire(v: unknown, what: string): Dots {
  if (!Array.isArray(v)) throw new Error(`${what} must be an array`);
  const out: [string, number][] = [];
  for (const e of v as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2) throw new Error(`a ${what} entry must be [actor, counter]`);
    const problem = actorProblem(e[0]) ?? counterProblem(e[1]);
    if (problem !== null) throw new Error(`${what}: ${problem}`);
    const prev = out[out.length - 1];
    if (prev !== undefined && prev[0] >= (e[0] as string)) throw new Error(`${what} must be sorted by actor without duplicates`);
    out.push([e[0] as string, e[1] as number]);
  }
  return out;
}

/** Why a member (from a client or a peer) is not acceptable, or null. */
export function memberProblem(m: unknown): string | null {
  if (typeof m !== 'string') return 'a set member must be a string';
  const bytes = Buffer.byteLength(m, 'utf8');
  if (bytes === 0) return 'a set member must not be empty';
  if (bytes > limits.setMemberBytesMax) return `a set member is ${bytes} bytes; setMemberBytesMax is ${limits.setMemberBytesMax}`;
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(m)) return 'a set member must be valid Unicode';
  return null;
}

/** Throws Error (the caller wraps it) for anything that is not a set. */
export function setFromWire(v: unknown): OrSet {
  if (!Array.isArray(v) || v.length !== 2 || !Array.isArray(v[1])) throw new Error('a set must be [clock, entries]');
  const clock = dotsFromWire(v[0], 'set clock');
  const entries: [string, Dots][] = [];
  for (const e of v[1] as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2) throw new Error('a set entry must be [member, dots]');
    const problem = memberProblem(e[0]);
    if (problem !== null) throw new Error(problem);
    const dots = dotsFromWire(e[1], 'member dots');
    if (dots.length === 0) throw new Error('a set member must have at least one dot');
    for (const [a, c] of dots) if (counterIn(clock, a) < c) throw new Error('a member dot must be covered by the set clock');
    const prev = entries[entries.length - 1];
    if (prev !== undefined && prev[0] >= (e[0] as string)) throw new Error('set members must be sorted without duplicates');
    entries.push([e[0] as string, dots]);
  }
  return { clock, entries };
}
