// Quorum arithmetic: pure functions that only count replies.
//
// A tally knows how many successes a request needs (`required`) out of how
// many replicas were asked (`candidates`). It is met once `required`
// replicas succeeded and unreachable once so many failed that the rest
// cannot make up the difference. Riak's get_core and etcd's quorum package
// keep the same separation: counting here, deciding what to do elsewhere.

export type Verdict = 'pending' | 'met' | 'unreachable';

export interface Tally {
  readonly required: number;
  readonly candidates: number;
  readonly succeeded: number;
  readonly failed: number;
}

export function newTally(required: number, candidates: number): Tally {
  if (!Number.isInteger(required) || required < 0) throw new TypeError(`required (${required}) must be a non-negative integer`);
  return { required, candidates, succeeded: 0, failed: 0 };
}

export function addSuccess(t: Tally): Tally {
  return { ...t, succeeded: t.succeeded + 1 };
}

export function addFailure(t: Tally): Tally {
  return { ...t, failed: t.failed + 1 };
}

export function verdict(t: Tally): Verdict {
  if (t.succeeded >= t.required) return 'met';
  if (t.candidates - t.failed < t.required) return 'unreachable';
  return 'pending';
}

export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * Quorums over groups of replicas. Usually one group (every replica asked,
 * required R or W); while a partition changes owners, a request may need a
 * quorum of the current replicas AND one of the next (transition.ts). A
 * node may sit in both groups; a replica in none (a transfer's receiver)
 * is asked but not counted.
 */
export interface QuorumGroup {
  readonly nodes: readonly string[];
  readonly required: number;
}

export type NodeOutcome = 'ok' | 'failed' | 'pending';

/** Per group tallies from each node's outcome; the first group not met
 * (or the first group) is the one an error reports. */
export function groupTallies(groups: readonly QuorumGroup[], outcome: (node: string) => NodeOutcome): Tally[] {
  return groups.map((g) => {
    let succeeded = 0;
    let failed = 0;
    for (const n of g.nodes) {
      const o = outcome(n);
      if (o === 'ok') succeeded++;
      else if (o === 'failed') failed++;
    }
    return { required: g.required, candidates: g.nodes.length, succeeded, failed };
  });
}

export function groupsVerdict(tallies: readonly Tally[]): Verdict {
  let met = true;
  for (const t of tallies) {
    const v = verdict(t);
    if (v === 'unreachable') return 'unreachable';
    if (v !== 'met') met = false;
  }
  return met ? 'met' : 'pending';
}

/** The tally an error names: the first unreachable, else the first not met. */
export function reportedTally(tallies: readonly Tally[]): Tally {
  return tallies.find((t) => verdict(t) === 'unreachable') ?? tallies.find((t) => verdict(t) !== 'met') ?? tallies[0]!;
}
