// msgpack encoding shared by wire and disk, and the bounds every decode obeys.
//
// One Packr configured once: plain maps (no record extensions) so any
// msgpack implementation can read a frame; integers beyond 2^53 are refused
// by validation rather than silently rounded.
//
// msgpackr has no depth or size limits and recurses once per nesting level,
// so `unpack` first walks the encoded bytes with `scan` (iterative, an
// explicit stack of remaining-item counts, no allocation proportional to
// the input) and hands them to msgpackr only when the whole value is within
// bounds. Invariants the scan keeps, so msgpackr never sees them:
// - nesting at most `depthMax` containers, at most `elementsMax` values in all
//   (every scalar, container, array item, map key and map value counts one);
// - no extension types (they decode to Dates, records, typed arrays, or run
//   extension readers), except msgpackr's own 3-byte `undefined` (see below);
// - map keys are strings and never "__proto__";
// - no reserved byte 0xc1, every length inside the input, exactly one value.
// Strings and bins are skipped by their length prefix in O(1), so a 1 MiB
// value costs the scan no more than a 1-byte one.
//
// With `useRecords: false` msgpackr sets `mapsAsObjects`, so maps always
// decode to plain objects, never `Map` (checked by test/protocol/codec.test.ts).
// If these Packr options ever change, that test must still hold: validators
// downstream read bodies as records.

import { Packr } from 'msgpackr';
import { limits } from '../limits.js';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

/** Limits one decode obeys: how deep containers may nest and how many msgpack
 * values (scalars, containers, array items, map keys and values) it may hold. */
export interface DecodeBounds {
  readonly depthMax: number;
  readonly elementsMax: number;
}

/** A request from an authenticated client (or a connection still in its
 * handshake): small messages, so a small element budget. */
export const clientBounds: DecodeBounds = Object.freeze({
  depthMax: limits.wireDepthMax,
  elementsMax: limits.clientWireElementsMax,
});

/** Frames from peers, replies to clients and what we read from our own disk:
 * key listings and large objects need the bigger budget. */
export const peerBounds: DecodeBounds = Object.freeze({
  depthMax: limits.wireDepthMax,
  elementsMax: limits.peerWireElementsMax,
});

/** msgpack input outside the bounds (or not msgpack at all). The message names
 * the rule that was broken and never quotes the input. */
export class WireBoundsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireBoundsError';
  }
}

/** Decodes one msgpack value after checking it against `bounds`; throws
 * WireBoundsError without ever letting msgpackr see input out of bounds. */
export function unpack(bytes: Uint8Array, bounds: DecodeBounds = peerBounds): unknown {
  checkBounds(bounds);
  scan(bytes, bounds);
  return packr.unpack(bytes);
}

/** API misuse (a caller passing nonsense bounds) is a TypeError, not a
 * decode failure. */
export function checkBounds(bounds: DecodeBounds): void {
  if (!Number.isSafeInteger(bounds.depthMax) || bounds.depthMax < 1) {
    throw new TypeError(`depthMax (${String(bounds.depthMax)}) must be a positive integer`);
  }
  if (!Number.isSafeInteger(bounds.elementsMax) || bounds.elementsMax < 1) {
    throw new TypeError(`elementsMax (${String(bounds.elementsMax)}) must be a positive integer`);
  }
}

// ---- the scan ----

// Open containers, innermost last. Entry 0 is a virtual container holding the
// one top-level value. `remaining` counts what is still to read in a container
// (items of an array, entries of a map); `isMap` says whether each of those
// starts with a key. Typed arrays of integers, because the parity and
// comparisons stay integer operations (a Float64Array made the scan about 2x
// slower). Shared by every call: the scan is synchronous and never
// re-entered, and the arrays only grow to min(depthMax, input bytes) + 1
// entries, because each level costs a byte.
let remainingStack = new Uint32Array(limits.wireDepthMax + 1);
let isMapStack = new Uint8Array(limits.wireDepthMax + 1);

/** Scratch stack big enough for `levels` open containers plus the root. */
function ensureStack(levels: number): void {
  if (remainingStack.length > levels) return;
  remainingStack = new Uint32Array(levels + 1);
  isMapStack = new Uint8Array(levels + 1);
}

/** Walks one encoded msgpack value and throws WireBoundsError if it breaks a
 * rule listed in the header. Returns normally only if `bytes` holds exactly
 * one value within bounds. */
function scan(bytes: Uint8Array, bounds: DecodeBounds): void {
  const end = bytes.length;
  const depthMax = bounds.depthMax;
  ensureStack(Math.min(depthMax, end));
  // Locals, not the module bindings: measurably faster in the loop.
  const remaining = remainingStack;
  const isMap = isMapStack;
  let elements = 1;
  let top = 0;
  remaining[0] = 1;
  isMap[0] = 0;
  let pos = 0;
  while (top >= 0) {
    const left = remaining[top]!;
    if (left === 0) {
      top--;
      continue;
    }
    remaining[top] = left - 1;
    if (isMap[top] === 1) pos = skipKey(bytes, pos, end);
    if (pos >= end) throw truncated(pos);
    const b = bytes[pos]!;
    pos++;
    // Scalars without payload: positive and negative fixint.
    if (b < 0x80 || b >= 0xe0) continue;
    let entries: number;
    let map = 0;
    if (b < 0x90) {
      entries = b & 0x0f;
      map = 1;
    } else if (b < 0xa0) {
      entries = b & 0x0f;
    } else if (b < 0xc0) {
      pos = skip(pos, b & 0x1f, end);
      continue;
    } else if (b >= 0xdc && b <= 0xdf) {
      const width = b === 0xdc || b === 0xde ? 2 : 4;
      entries = readLength(bytes, pos, width, end);
      pos += width;
      if (b >= 0xde) map = 1;
    } else {
      pos = skipScalar(bytes, b, pos, end);
      continue;
    }
    // A container: check it before reading any of its items.
    if (top + 1 > depthMax) throw new WireBoundsError(`msgpack nesting deeper than ${depthMax}`);
    const items = map === 1 ? entries * 2 : entries;
    elements += items;
    if (elements > bounds.elementsMax) throw new WireBoundsError(`more than ${bounds.elementsMax} msgpack elements`);
    // Each item takes at least one byte: a count past the input is truncated
    // input, refused before it can size anything (and before it could
    // overflow the Uint32 stack entry).
    if (items > end - pos) throw truncated(end);
    if (entries === 0) continue;
    top++;
    remaining[top] = entries;
    isMap[top] = map;
  }
  if (pos !== end) {
    const extra = end - pos;
    throw new WireBoundsError(`${extra} trailing byte${extra === 1 ? '' : 's'} after the msgpack value`);
  }
}

/** Skips a scalar that starts with byte `b` (0xc0-0xdf, containers excluded),
 * its payload starting at `pos`; returns the position after it. */
function skipScalar(bytes: Uint8Array, b: number, pos: number, end: number): number {
  switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return pos; // nil, false, true
    case 0xc1: throw new WireBoundsError('msgpack byte 0xc1 is reserved');
    case 0xc4: case 0xd9: return skip(pos + 1, readLength(bytes, pos, 1, end), end); // bin 8, str 8
    case 0xc5: case 0xda: return skip(pos + 2, readLength(bytes, pos, 2, end), end); // bin 16, str 16
    case 0xc6: case 0xdb: return skip(pos + 4, readLength(bytes, pos, 4, end), end); // bin 32, str 32
    case 0xcc: case 0xd0: return skip(pos, 1, end); // uint 8, int 8
    case 0xcd: case 0xd1: return skip(pos, 2, end);
    case 0xca: case 0xce: case 0xd2: return skip(pos, 4, end); // float 32, uint 32, int 32
    case 0xcb: case 0xcf: case 0xd3: return skip(pos, 8, end); // float 64, uint 64, int 64
    default: return skipExt(bytes, b, pos, end);
  }
}

/** Extensions are refused, all but one: msgpackr encodes `undefined` (a field
 * set to undefined, as our own client sends `r: undefined`) as fixext 1 of
 * type 0 with data 0. It decodes to `undefined`, allocates nothing, and
 * refusing it would refuse every request of every deployed client. */
function skipExt(bytes: Uint8Array, b: number, pos: number, end: number): number {
  // The type byte sits after the length bytes: none for fixext, 1/2/4 for ext 8/16/32.
  const typeAt = b === 0xc7 ? pos + 1 : b === 0xc8 ? pos + 2 : b === 0xc9 ? pos + 4 : pos;
  if (typeAt >= end) throw truncated(end);
  const type = (bytes[typeAt]! << 24) >> 24; // ext types are signed
  if (b === 0xd4 && type === 0 && typeAt + 1 < end && bytes[typeAt + 1] === 0) return typeAt + 2;
  throw new WireBoundsError(`msgpack extension type ${type} is not allowed`);
}

/** A map key: a str (fixstr or str 8/16/32), never "__proto__". */
function skipKey(bytes: Uint8Array, pos: number, end: number): number {
  if (pos >= end) throw truncated(pos);
  const b = bytes[pos]!;
  let start: number;
  let length: number;
  if (b >= 0xa0 && b < 0xc0) {
    start = pos + 1;
    length = b & 0x1f;
  } else if (b === 0xd9 || b === 0xda || b === 0xdb) {
    const width = b === 0xd9 ? 1 : b === 0xda ? 2 : 4;
    length = readLength(bytes, pos + 1, width, end);
    start = pos + 1 + width;
  } else {
    throw new WireBoundsError('msgpack map key is not a string');
  }
  const after = skip(start, length, end);
  if (length === protoKey.length && isProtoKey(bytes, start)) {
    throw new WireBoundsError('msgpack map key "__proto__" is not allowed');
  }
  return after;
}

const protoKey = Buffer.from('__proto__', 'latin1');

function isProtoKey(bytes: Uint8Array, start: number): boolean {
  for (let i = 0; i < protoKey.length; i++) {
    if (bytes[start + i] !== protoKey[i]) return false;
  }
  return true;
}

/** Big-endian unsigned length of `width` (1, 2 or 4) bytes at `pos`. */
function readLength(bytes: Uint8Array, pos: number, width: number, end: number): number {
  if (pos + width > end) throw truncated(end);
  if (width === 1) return bytes[pos]!;
  if (width === 2) return (bytes[pos]! << 8) | bytes[pos + 1]!;
  return bytes[pos]! * 0x1000000 + ((bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!);
}

/** The position `length` bytes after `pos`, if the input has them. */
function skip(pos: number, length: number, end: number): number {
  const after = pos + length;
  if (after > end) throw truncated(end);
  return after;
}

function truncated(at: number): WireBoundsError {
  return new WireBoundsError(`msgpack input is truncated at byte ${at}`);
}
