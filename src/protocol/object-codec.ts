// Stored objects on the wire and on disk: compact arrays, validated on the
// way in (a peer or a damaged file must never plant a malformed object).

import type { Sibling, VersionedObject } from '../core/clock/object.js';
import { clockProblem } from '../core/clock/vclock.js';
import type { VClock } from '../core/clock/vclock.js';
import { TuneKvError } from '../errors.js';
import { pack, unpack } from './codec.js';
import type { WireClock, WireObject, WireSibling } from './messages.js';

export function clockToWire(clock: VClock): WireClock {
  return clock.map(([a, c, t]) => [a, c, t]);
}

/** Throws INVALID_ARGUMENT for a clock that is not one of ours. */
export function clockFromWire(value: unknown, what = 'context'): VClock {
  const problem = clockProblem(value);
  if (problem) throw new TuneKvError('INVALID_ARGUMENT', `${what} is not a tunekv causal context: ${problem}`);
  return value as VClock;
}

export function objectToWire(obj: VersionedObject): WireObject {
  const siblings: WireSibling[] = obj.siblings.map((s) => [s.actor, s.counter, s.tsMs, s.vtype, s.lww ? 1 : 0, s.value, s.wid]);
  return [clockToWire(obj.clock), siblings];
}

function siblingFromWire(value: unknown): Sibling {
  if (!Array.isArray(value) || value.length !== 7) throw new TuneKvError('INVALID_ARGUMENT', 'sibling is not a 7-element array');
  const [actor, counter, tsMs, vtype, lww, v, wid] = value as unknown[];
  if (typeof actor !== 'string' || !Number.isSafeInteger(counter) || (counter as number) < 1
    || typeof tsMs !== 'number' || !Number.isInteger(vtype) || (lww !== 0 && lww !== 1)
    || !(v === null || v instanceof Uint8Array) || !(wid === null || wid instanceof Uint8Array)) {
    throw new TuneKvError('INVALID_ARGUMENT', 'sibling fields are malformed');
  }
  return { actor, counter: counter as number, tsMs, vtype: vtype as number, lww: lww === 1, value: v, wid };
}

export function objectFromWire(value: unknown): VersionedObject {
  if (!Array.isArray(value) || value.length !== 2 || !Array.isArray(value[1])) {
    throw new TuneKvError('INVALID_ARGUMENT', 'object is not [clock, siblings]');
  }
  const clock = clockFromWire(value[0], 'object clock');
  const siblings = (value[1] as unknown[]).map(siblingFromWire);
  for (let i = 1; i < siblings.length; i++) {
    const a = siblings[i - 1]!;
    const b = siblings[i]!;
    if (a.actor > b.actor || (a.actor === b.actor && a.counter >= b.counter)) {
      throw new TuneKvError('INVALID_ARGUMENT', 'object siblings must be sorted by dot without duplicates');
    }
  }
  return { clock, siblings };
}

export function encodeObject(obj: VersionedObject): Buffer {
  return pack(objectToWire(obj));
}

export function decodeObject(bytes: Uint8Array): VersionedObject {
  return objectFromWire(unpack(bytes));
}
