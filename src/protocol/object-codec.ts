// Stored objects on the wire and on disk: compact arrays, validated on the
// way in (a peer or a damaged file must never plant a malformed object).
//
// Every rule here is closed under what the core does with valid input:
// update() mints counters no higher than clockCounterMax and merge() only
// takes maxima and unions, so an object a node stored always passes these
// checks again when it restarts. A rule that update() or merge() could
// break would turn one key into a node that cannot start.

import { vtypeMax, widBytesMax, widBytesMin } from '../core/clock/object.js';
import type { Sibling, VersionedObject } from '../core/clock/object.js';
import { actorProblem, clockProblem, counterProblem, timestampProblem } from '../core/clock/vclock.js';
import type { VClock } from '../core/clock/vclock.js';
import { typedObjectProblem } from '../core/crdt/typed-object.js';
import { TuneKvError } from '../errors.js';
import { limits } from '../limits.js';
import { pack, unpack } from './codec.js';
import type { WireClock, WireObject, WireSibling } from './messages.js';

export function clockToWire(clock: VClock): WireClock {
  return clock.map(([a, c, t]) => [a, c, t]);
}

/**
 * Entries an object clock from a peer or disk may have. Deliberately not
 * contextEntriesMax: update() keeps every clock it writes within that, but
 * merge() takes the union of two clocks and must never refuse, so copies
 * that accepted different (forged) contexts on different coordinators can
 * merge into a larger clock, and a node must still load it. What bounds an
 * object clock is its frame: frameBytesMax and the decoder's element limit.
 */
const objectClockEntriesMax = Number.POSITIVE_INFINITY;

/** Throws INVALID_ARGUMENT for a clock that is not one of ours. A context
 * (the default) may have at most contextEntriesMax entries. */
export function clockFromWire(value: unknown, what = 'context', entriesMax: number = limits.contextEntriesMax): VClock {
  const problem = clockProblem(value, entriesMax);
  if (problem) throw new TuneKvError('INVALID_ARGUMENT', `${what} is not a tunekv causal context: ${problem}`);
  return value as VClock;
}

export function objectToWire(obj: VersionedObject): WireObject {
  const siblings: WireSibling[] = obj.siblings.map((s) => [s.actor, s.counter, s.tsMs, s.vtype, s.lww ? 1 : 0, s.value, s.wid]);
  return [clockToWire(obj.clock), siblings];
}

/** The dot and timestamp of a sibling follow the clock's rules (a sibling's
 * dot becomes a clock entry the moment anyone merges it). */
function siblingProblem(fields: unknown[]): string | null {
  const [actor, counter, tsMs, vtype, lww, v, wid] = fields;
  const dot = actorProblem(actor) ?? counterProblem(counter) ?? timestampProblem(tsMs);
  if (dot) return dot.replace(/^clock/, 'sibling');
  if (!Number.isInteger(vtype) || (vtype as number) < 0 || (vtype as number) > vtypeMax) return `sibling vtype must be an integer from 0 to ${vtypeMax}`;
  if (lww !== 0 && lww !== 1) return 'sibling lww must be 0 or 1';
  if (!(v === null || v instanceof Uint8Array)) return 'sibling value must be bytes or null';
  if (wid === null) return null;
  if (!(wid instanceof Uint8Array) || wid.length < widBytesMin || wid.length > widBytesMax) {
    return `sibling wid must be ${widBytesMin} to ${widBytesMax} bytes or null`;
  }
  return null;
}

function siblingFromWire(value: unknown): Sibling {
  if (!Array.isArray(value) || value.length !== 7) throw new TuneKvError('INVALID_ARGUMENT', 'sibling is not a 7-element array');
  const problem = siblingProblem(value as unknown[]);
  if (problem) throw new TuneKvError('INVALID_ARGUMENT', `sibling fields are malformed: ${problem}`);
  const [actor, counter, tsMs, vtype, lww, v, wid] = value as unknown[];
  return {
    actor: actor as string, counter: counter as number, tsMs: tsMs as number, vtype: vtype as number,
    lww: lww === 1, value: v as Uint8Array | null, wid: wid as Uint8Array | null,
  };
}

/**
 * An object from a peer or disk. Not checked, on purpose: that every
 * sibling's dot is covered by the object clock. update() and merge() keep
 * that true, but prune() may drop the clock entry of an actor whose sibling
 * survives (clock/object.ts), so a valid object can break it; nothing in
 * merge() relies on it. Not checked either: siblingsMax and objectBytesMax,
 * which bind puts, not replica merges (merges never refuse).
 */
export function objectFromWire(value: unknown): VersionedObject {
  if (!Array.isArray(value) || value.length !== 2 || !Array.isArray(value[1])) {
    throw new TuneKvError('INVALID_ARGUMENT', 'object is not [clock, siblings]');
  }
  const clock = clockFromWire(value[0], 'object clock', objectClockEntriesMax);
  const siblings = (value[1] as unknown[]).map(siblingFromWire);
  for (let i = 1; i < siblings.length; i++) {
    const a = siblings[i - 1]!;
    const b = siblings[i]!;
    if (a.actor > b.actor || (a.actor === b.actor && a.counter >= b.counter)) {
      throw new TuneKvError('INVALID_ARGUMENT', 'object siblings must be sorted by dot without duplicates');
    }
  }
  // A counter or set must decode, or merge() could not join it later.
  const typed = typedObjectProblem({ clock, siblings });
  if (typed !== null) throw new TuneKvError('INVALID_ARGUMENT', `typed object is malformed: ${typed}`);
  return { clock, siblings };
}

export function encodeObject(obj: VersionedObject): Buffer {
  return pack(objectToWire(obj));
}

export function decodeObject(bytes: Uint8Array): VersionedObject {
  return objectFromWire(unpack(bytes));
}
