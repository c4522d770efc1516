// The ring: Q equal partitions claimed by nodes, and preference lists.
//
// Dynamo's "strategy 3": the hash space is cut into Q equal partitions, fixed
// when the cluster is created, and each node claims about Q/S of them. A key's
// preference list is the first N distinct nodes met walking clockwise from its
// partition; those are its primaries, the nodes after them its fallbacks.
//
// Invariants:
//   - a Ring is an immutable value with a version; every change returns a new
//     ring with version + 1, so nodes can replace theirs by comparing versions;
//   - claim() only moves partitions to the joining node (no reshuffle), and
//     leaves every node within one partition of ceil(Q/S);
//   - everything here is pure and deterministic: the same inputs give the
//     same ring on every node.

import assert from 'node:assert/strict';
import { limits } from '../../limits.js';
import { TuneKvError } from '../../errors.js';
import { keyHash, partitionOfHash } from './hash.js';

/** A member's part in the ring (Riak's member states): `joining` owns
 * nothing yet and receives partitions in a transition; `valid` owns its
 * share; `leaving` still owns and serves until its partitions are handed
 * off; `exiting` owns nothing and is sending what it still holds to the
 * owners before it shuts down. */
export type MemberState = 'joining' | 'valid' | 'leaving' | 'exiting';
export const memberStates: readonly MemberState[] = ['joining', 'valid', 'leaving', 'exiting'];

export interface Member {
  readonly id: string;
  /** host:port the node listens on, for clients and peers. */
  readonly addr: string;
  /** Absent means `valid` (rings written before member states). */
  readonly state?: MemberState;
  /** The node's incarnation: random, made when its data directory was
   * created, so a removed node that returns with its old data is known. */
  readonly inc?: string;
  /** Set by `remove`: the member is dead, so when the transition completes
   * it is dropped at once instead of exiting (it has nothing to hand off). */
  readonly removing?: boolean;
}

export interface Ring {
  readonly version: number;
  /** Partitions, a power of two. */
  readonly q: number;
  /** Replicas per key. */
  readonly n: number;
  /** owners[p] is the node that claimed partition p. */
  readonly owners: readonly string[];
  /** Sorted by id. */
  readonly members: readonly Member[];
  /** During a transition (transition.ts): the owners the committed plan
   * moves to, and each partition's phase; both null at rest. */
  readonly next?: readonly string[] | null;
  readonly phase?: readonly number[] | null;
  /** How many plans this ring has committed (names a transition's reports). */
  readonly plan?: number;
  /** `id/inc` of members removed from the ring, newest last (bounded):
   * such a node is refused until it is wiped and joins anew. */
  readonly removed?: readonly string[];
}

/** `pending`: a transfer's receiver, sent writes while it catches up, not counted. */
export type ReplicaRole = 'primary' | 'fallback' | 'pending';

export interface PreferenceList {
  readonly partition: number;
  /** The first N distinct nodes clockwise from the partition. */
  readonly primaries: readonly string[];
  /** Every other node, in ring order after the primaries: sloppy-quorum stand-ins. */
  readonly fallbacks: readonly string[];
}

const nodeIdPattern = /^[A-Za-z0-9_.-]{1,64}$/;

/** Plain-words validation of ring parameters; returns null when valid. */
export function ringParamsProblem(q: number, n: number): string | null {
  if (!Number.isInteger(q) || q < limits.partitionsMin || q > limits.partitionsMax || !Number.isInteger(Math.log2(q))) {
    return `q (${q}) must be a power of two from ${limits.partitionsMin} to ${limits.partitionsMax}`;
  }
  if (!Number.isInteger(n) || n < 1 || n > limits.replicasMax) {
    return `n (${n}) must be an integer from 1 to ${limits.replicasMax}`;
  }
  return null;
}

export function nodeIdProblem(id: string): string | null {
  return nodeIdPattern.test(id) ? null : `node id "${id}" must be 1-64 characters of A-Z a-z 0-9 _ . -`;
}

export function createRing(q: number, n: number, first: Member): Ring {
  const problem = ringParamsProblem(q, n) ?? nodeIdProblem(first.id);
  if (problem) throw new TypeError(problem);
  return { version: 1, q, n, owners: new Array<string>(q).fill(first.id), members: [{ ...first, state: 'valid' }], next: null, phase: null, plan: 0, removed: [] };
}

export function memberOf(ring: Ring, id: string): Member | undefined {
  return ring.members.find((m) => m.id === id);
}

export function stateOf(m: Member): MemberState {
  return m.state ?? 'valid';
}

function countOwned(owners: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const o of owners) counts.set(o, (counts.get(o) ?? 0) + 1);
  return counts;
}

/** True when `node` owns a partition within `distance` of p (either way). */
function ownsNear(owners: readonly string[], p: number, node: string, distance: number): boolean {
  const q = owners.length;
  for (let d = 1; d <= distance; d++) {
    if (owners[(p + d) % q] === node || owners[(p - d + q) % q] === node) return true;
  }
  return false;
}

/**
 * Which partition the joiner takes next, among those of nodes that still
 * hold more than their share (`floor`, or `ceil` while any node is above
 * it). Preferences, in order: the joiner keeps its partitions at least N
 * apart (so its preference lists stay diverse); the donor gives up a
 * partition that sits within N of another of its own (so runs left by
 * earlier claims break up and every node replicates about N/S of the ring);
 * the donor with the most partitions; the lowest index. Deterministic.
 */
function pickPartition(owners: readonly string[], counts: Map<string, number>, joiner: string, n: number,
  floorShare: number, ceilShare: number): number {
  const aboveCeil = [...counts].some(([id, c]) => id !== joiner && c > ceilShare);
  const limit = aboveCeil ? ceilShare : floorShare;
  let best = -1;
  let bestScore = -1;
  for (let p = 0; p < owners.length; p++) {
    const donor = owners[p]!;
    const count = counts.get(donor) ?? 0;
    if (donor === joiner || count <= limit) continue;
    const spaced = ownsNear(owners, p, joiner, n - 1) ? 0 : 1;
    const unclusters = ownsNear(owners, p, donor, n - 1) ? 1 : 0;
    const score = spaced * 4 * owners.length * owners.length + unclusters * 2 * owners.length + count;
    if (score > bestScore) { best = p; bestScore = score; }
  }
  return best;
}

/**
 * A new ring in which `member` has claimed floor(Q/S') partitions, taken
 * from nodes above their share (see pickPartition).
 * Rejoining with the same id only updates its address.
 */
export function claim(ring: Ring, member: Member): Ring {
  const problem = nodeIdProblem(member.id);
  if (problem) throw new TypeError(problem);
  const existing = memberOf(ring, member.id);
  if (existing) {
    if (existing.addr === member.addr) return ring;
    const members = ring.members.map((m) => (m.id === member.id ? member : m));
    return { ...ring, version: ring.version + 1, members };
  }
  if (ring.members.length >= limits.nodesMax) throw new TypeError(`a ring holds at most ${limits.nodesMax} nodes`);
  const owners = [...ring.owners];
  const counts = countOwned(owners);
  const memberCount = ring.members.length + 1;
  const target = Math.floor(ring.q / memberCount);
  counts.set(member.id, 0);
  const ceilShare = Math.ceil(ring.q / memberCount);
  for (let taken = 0; taken < target; taken++) {
    const pick = pickPartition(owners, counts, member.id, ring.n, target, ceilShare);
    assert.ok(pick >= 0, 'some node holds more than its share');
    const donor = owners[pick]!;
    owners[pick] = member.id;
    counts.set(donor, (counts.get(donor) ?? 0) - 1);
    counts.set(member.id, taken + 1);
  }
  const members = [...ring.members, member].sort((a, b) => (a.id < b.id ? -1 : 1));
  return { ...ring, version: ring.version + 1, owners, members };
}

/** A new ring without `id`; its partitions go to the least-loaded nodes. */
export function removeMember(ring: Ring, id: string): Ring {
  if (!memberOf(ring, id)) return ring;
  const members = ring.members.filter((m) => m.id !== id);
  if (members.length === 0) throw new TypeError('cannot remove the last node of a ring');
  const owners = [...ring.owners];
  const counts = countOwned(owners);
  counts.delete(id);
  for (const m of members) if (!counts.has(m.id)) counts.set(m.id, 0);
  const ceilShare = Math.ceil(ring.q / members.length);
  for (let p = 0; p < owners.length; p++) {
    if (owners[p] !== id) continue;
    const byLoad = [...counts].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    const room = byLoad.filter(([, c]) => c < ceilShare);
    const spaced = room.find(([node]) => !ownsNear(owners, p, node, ring.n - 1));
    const [heir] = spaced ?? room[0] ?? byLoad[0]!;
    owners[p] = heir;
    counts.set(heir, (counts.get(heir) ?? 0) + 1);
  }
  return { ...ring, version: ring.version + 1, owners, members };
}

export function partitionOfKey(ring: Ring, key: string): number {
  return partitionOfHash(keyHash(key), ring.q);
}

/** Every partition's preference list, computed once per ring value (rings
 * are immutable, so the cache can never go stale). */
const listsByRing = new WeakMap<Ring, PreferenceList[]>();

/** Primaries and fallbacks for partition p, walking clockwise. */
export function preferenceList(ring: Ring, partition: number): PreferenceList {
  let lists = listsByRing.get(ring);
  if (!lists) {
    lists = Array.from({ length: ring.q }, (_, p) => computePreferenceList(ring, p));
    listsByRing.set(ring, lists);
  }
  return lists[partition]!;
}

function computePreferenceList(ring: Ring, partition: number): PreferenceList {
  const seen = new Set<string>();
  const order: string[] = [];
  for (let i = 0; i < ring.q && order.length < ring.members.length; i++) {
    const owner = ring.owners[(partition + i) % ring.q]!;
    if (!seen.has(owner)) { seen.add(owner); order.push(owner); }
  }
  return { partition, primaries: order.slice(0, ring.n), fallbacks: order.slice(ring.n) };
}

export function preferenceListForKey(ring: Ring, key: string): PreferenceList {
  return preferenceList(ring, partitionOfKey(ring, key));
}

/** Partitions for which `id` is a primary replica. */
export function replicatedPartitions(ring: Ring, id: string): number[] {
  const out: number[] = [];
  for (let p = 0; p < ring.q; p++) if (preferenceList(ring, p).primaries.includes(id)) out.push(p);
  return out;
}

/** A member address as a ring may hold it: host:port, bounded. */
const memberAddrPattern = /^[A-Za-z0-9_.:[\]-]{1,253}:[0-9]{1,5}$/;

/** Checks the structure of a ring received from the network or disk. */
export function ringProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'ring is not a map';
  const r = value as Record<string, unknown>;
  if (!Number.isSafeInteger(r.version) || (r.version as number) < 1) return 'ring version must be a positive integer';
  const params = ringParamsProblem(r.q as number, r.n as number);
  if (params) return params;
  if (!Array.isArray(r.members) || r.members.length === 0) return 'ring has no members';
  if (r.members.length > limits.nodesMax) return `ring has more than ${limits.nodesMax} members`;
  const ids = new Set<string>();
  let prev = '';
  for (const m of r.members as unknown[]) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'ring member is not a map';
    const mm = m as Record<string, unknown>;
    if (typeof mm.id !== 'string' || nodeIdProblem(mm.id) !== null) return 'ring member id is malformed';
    if (typeof mm.addr !== 'string' || !memberAddrPattern.test(mm.addr)) return 'ring member address must be host:port';
    if (mm.id <= prev) return 'ring members must be sorted by id without duplicates';
    if (mm.state !== undefined && !memberStates.includes(mm.state as MemberState)) return 'ring member state is not one of joining, valid, leaving, exiting';
    if (mm.inc !== undefined && (typeof mm.inc !== 'string' || !incPattern.test(mm.inc))) return 'ring member incarnation is malformed';
    if (mm.removing !== undefined && typeof mm.removing !== 'boolean') return 'ring member removing must be a boolean';
    prev = mm.id;
    ids.add(mm.id);
  }
  if (!Array.isArray(r.owners) || r.owners.length !== r.q) return 'ring owners must list q partitions';
  for (const o of r.owners as unknown[]) if (typeof o !== 'string' || !ids.has(o)) return 'ring owner is not a member';
  const inTransition = r.next !== undefined && r.next !== null;
  if (inTransition) {
    if (!Array.isArray(r.next) || r.next.length !== r.q) return 'ring next owners must list q partitions';
    for (const o of r.next as unknown[]) if (typeof o !== 'string' || !ids.has(o)) return 'ring next owner is not a member';
    if (!Array.isArray(r.phase) || r.phase.length !== r.q) return 'ring phases must list q partitions';
    for (const ph of r.phase as unknown[]) if (!Number.isInteger(ph) || (ph as number) < 0 || (ph as number) > phaseMax) return 'ring phase is out of range';
  } else if (r.phase !== undefined && r.phase !== null) {
    return 'ring phases without next owners';
  }
  if (r.plan !== undefined && (!Number.isSafeInteger(r.plan) || (r.plan as number) < 0)) return 'ring plan must be a non-negative integer';
  if (r.removed !== undefined) {
    if (!Array.isArray(r.removed) || r.removed.length > limits.removedNodesKept) return `ring removed list must be an array of at most ${limits.removedNodesKept}`;
    for (const x of r.removed as unknown[]) if (typeof x !== 'string' || x.length > 130) return 'ring removed entry is malformed';
  }
  return null;
}

/** Largest phase number (transition.ts: flipped). */
const phaseMax = 4;
const incPattern = /^[0-9a-f]{1,32}$/;

/**
 * A ring from the network or disk, validated and rebuilt from its known
 * fields only: an extra field (say, an array nested thousands deep) is
 * never adopted, stored or passed on. Throws INVALID_ARGUMENT naming the
 * problem.
 */
export function ringFromWire(value: unknown, what = 'ring'): Ring {
  const problem = ringProblem(value);
  if (problem) throw new TuneKvError('INVALID_ARGUMENT', `${what} is not valid: ${problem}`);
  const r = value as Ring;
  return {
    version: r.version, q: r.q, n: r.n,
    owners: r.owners.slice(),
    members: r.members.map((m) => ({
      id: m.id, addr: m.addr, state: m.state ?? 'valid', ...(m.inc !== undefined ? { inc: m.inc } : {}), ...(m.removing === true ? { removing: true } : {}),
    })),
    next: r.next ? r.next.slice() : null,
    phase: r.next && r.phase ? r.phase.slice() : null,
    plan: r.plan ?? 0,
    removed: r.removed ? r.removed.slice() : [],
  };
}
