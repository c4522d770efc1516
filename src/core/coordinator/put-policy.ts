// The coordinator's put policy: what a put may write, decided from the
// object the coordinator holds and the request, with no I/O.
//
// A coordinator builds the new version with update() (clock/object.ts) and
// this module decides whether to store it. The local object it starts from
// already holds every sibling that replica merges (writes coordinated
// elsewhere, read repair, anti-entropy, hand-off) brought in, so the limits
// are checked on the object the put would produce, not on the put alone.
//
// Rules:
//   (a) limits apply to the object the put would produce;
//   (b) a put that does not reduce the number of siblings and would leave
//       more than siblingsMax is refused with SIBLINGS_LIMIT;
//   (c) a put that resolves (its context covers siblings, so the count goes
//       down, or it is LWW) is always allowed, even over the cap: that is
//       how a key pushed over the cap by merges gets fixed;
//   (d) an object over objectBytesMax is refused with TOO_LARGE, unless the
//       put shrinks the object (only a put that supersedes something can);
//   (e) replica merges never refuse: refusing would lose writes already
//       acknowledged by other coordinators. That stays in merge(); the
//       replica side uses overSiblingCap() to flag such keys.
//
// Why the cap can still be passed: coordinators decide on their own copy, so
// k coordinators writing blind at the same moment can each add one sibling
// to a key at siblingsMax - 1. The overshoot is bounded by the concurrency of
// one round; once merges bring the excess in, rule (b) refuses every further
// blind put on every coordinator until a resolving put brings it down.
//
// Invariants: decidePut never returns an object whose sibling count or size
// grew past its limit; 'unchanged' is returned exactly when update()
// returned the current object (a retry with the same write id).

import { contextProblem, objectBytes, update } from '../clock/object.js';
import type { VersionedObject } from '../clock/object.js';
import type { VClock } from '../clock/vclock.js';
import { TuneKvError } from '../../errors.js';
import { limits } from '../../limits.js';

export interface PutPolicyInput {
  /** For messages only. */
  key: string;
  /** What the caller read; empty for a blind put. */
  context: VClock;
  /** null for a delete (a tombstone). */
  value: Uint8Array | null;
  vtype: number;
  /** This coordinator's node id. */
  actor: string;
  /** The coordinator's wall clock, passed in so the policy stays pure. */
  nowMs: number;
  /** Whether a node id is a member of the ring (contexts may only name
   * members, or nodes already in the key's clock). */
  isMember: (id: string) => boolean;
  lww: boolean;
  wid: Uint8Array | null;
}

export type PutDecision =
  /** A retry with the same wid: the write is already held, nothing to write. */
  | { kind: 'unchanged'; object: VersionedObject }
  /** Store `object`; `warning` when the sibling count grew past siblingsWarn. */
  | { kind: 'write'; object: VersionedObject; warning?: string };

/**
 * What a coordinator does with a put. Throws TuneKvError: SIBLINGS_LIMIT
 * (details { siblings, limit }), TOO_LARGE (details { size, limit }), or
 * INVALID_ARGUMENT from update() when the context would make the clock
 * unsafe (see counterMintMax and contextEntriesMax in clock/object.ts).
 */
export function decidePut(current: VersionedObject | undefined, input: PutPolicyInput): PutDecision {
  const forged = contextProblem(current, input.context, input.nowMs, input.isMember);
  if (forged !== null) throw new TuneKvError('INVALID_ARGUMENT', `context refused: ${forged}`);
  const next = update(current, input);
  if (current !== undefined && next === current) return { kind: 'unchanged', object: current };
  const before = current?.siblings.length ?? 0;
  const after = next.siblings.length;
  const resolves = input.lww || after < before;
  checkSiblings(input.key, after, resolves);
  checkBytes(input.key, current, next);
  const warning = siblingWarning(input.key, before, after);
  return warning === undefined ? { kind: 'write', object: next } : { kind: 'write', object: next, warning };
}

/** Rules (b) and (c). */
function checkSiblings(key: string, siblings: number, resolves: boolean): void {
  if (resolves || siblings <= limits.siblingsMax) return;
  throw new TuneKvError('SIBLINGS_LIMIT',
    `key "${key}" would have ${siblings} concurrent versions (siblingsMax ${limits.siblingsMax}); `
    + 'read it and put with the context it returns to resolve them',
    { siblings, limit: limits.siblingsMax });
}

/** Rule (d). A put that shrinks the object has superseded something (a
 * blind put only adds), so it is resolving and always allowed. */
function checkBytes(key: string, current: VersionedObject | undefined, next: VersionedObject): void {
  const size = objectBytes(next);
  if (size <= limits.objectBytesMax) return;
  if (current !== undefined && size < objectBytes(current)) return;
  throw new TuneKvError('TOO_LARGE',
    `key "${key}" would hold ${size} bytes across its versions (objectBytesMax ${limits.objectBytesMax}); `
    + 'read it and put with the context it returns to resolve its siblings first',
    { size, limit: limits.objectBytesMax });
}

function siblingWarning(key: string, before: number, after: number): string | undefined {
  if (after <= limits.siblingsWarn || after <= before) return undefined;
  return `key "${key}" has ${after} siblings (siblingsWarn ${limits.siblingsWarn})`;
}

/**
 * A delete without any context first reads the key at the put's level and
 * deletes with what it read (Riak does the same). A tombstone is a sibling
 * with a dot: written with an empty context it supersedes nothing, so it
 * would sit next to the value as one more sibling and delete nothing. With
 * the read's clock it supersedes what the read saw; writes the read did not
 * see survive as siblings.
 */
export function deleteNeedsRead(contextGiven: boolean): boolean {
  return !contextGiven;
}

/** More siblings than siblingsMax: replica merges (which never refuse) or
 * concurrent blind puts on several coordinators pushed the key over the
 * cap. The replica side flags such keys; only resolving puts pass until the
 * count is back under the cap. */
export function overSiblingCap(obj: VersionedObject): boolean {
  return obj.siblings.length > limits.siblingsMax;
}
