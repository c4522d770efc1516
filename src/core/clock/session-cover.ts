// Is a read's result at least as new as what a session has seen of the key?
//
// A session (src/client/session.ts) sends, with a read, the contexts it
// holds for the key: the clocks of the states its earlier reads returned
// and its writes produced (each signed by a node, checked before this runs).
// The read may only answer with a merged object whose clock descends every
// one of them; otherwise the coordinator asks more replicas, and fails with
// SESSION_UNAVAILABLE rather than answer with an older state.
//
// Two ways a current state can have a clock that does not descend, and what
// is done about each:
//   - Reaped tombstones. Once every primary holds a tombstone the reaper
//     removes it (server/reaper.ts): the key reads as "not found" with an
//     empty clock, which descends nothing. When the state the session last
//     saw was a deletion (`deleted`), an answer with no live value is
//     accepted: a caller cannot tell "deleted" from "never written" or
//     "deleted and reaped", and a live value older than the delete still
//     does not pass. Without this, a session that deleted a key could
//     never read it again once the tombstone was reaped.
//   - Clock pruning. prune() (vclock.ts) drops entries older than
//     vclockPruneAgeMinMs from clocks past vclockEntriesMax entries. An
//     entry the merged clock does not have at all, when the clock is that
//     large and the entry that old, may have been pruned: it is not
//     required. Otherwise a key whose clock was pruned would be unreadable
//     by the session for ever.
//
// Counters and sets (`TypedAtLeast`) have their own order, a join's
// (core/crdt/typed-version.ts): no deletes, no pruning, so neither rule
// above applies to them.
//
// Pure: the caller passes the time.

import { limits } from '../../limits.js';
import { typedCovers } from '../crdt/typed-version.js';
import type { TypedVersion } from '../crdt/typed-version.js';
import type { VersionedObject } from './object.js';
import { counterReader } from './vclock.js';
import type { VClock } from './vclock.js';

/** What a session read must be at least as new as. */
export type AtLeast = ClockAtLeast | TypedAtLeast;

/** A counter or set read: the version the session holds (already verified). */
export interface TypedAtLeast {
  readonly typed: TypedVersion;
}

export interface ClockAtLeast {
  /** Signed clocks the session saw (already verified); at most
   * sessionContextsPerKeyMax. */
  readonly clocks: readonly VClock[];
  /** The last state the session saw of the key had no live value. */
  readonly deleted: boolean;
}

/** True when `object` (a merged read result; undefined = not found) is at
 * least as new as everything in `atLeast`. */
export function sessionCovers(object: VersionedObject | undefined, atLeast: AtLeast, nowMs: number): boolean {
  if ('typed' in atLeast) return typedCovers(object, atLeast.typed);
  if (atLeast.deleted && (object === undefined || object.siblings.every((s) => s.value === null))) return true;
  const clock = object?.clock ?? [];
  const mayBePruned = clock.length >= limits.vclockEntriesMax;
  for (const seen of atLeast.clocks) {
    const have = counterReader(clock);
    for (const [actor, counter, tsMs] of seen) {
      const c = have(actor);
      if (c >= counter) continue;
      if (c === 0 && mayBePruned && nowMs - tsMs >= limits.vclockPruneAgeMinMs) continue;
      return false;
    }
  }
  return true;
}
