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
