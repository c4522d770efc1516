// Anti-entropy hash trees: a node's keys summarised as 65,536 segment hashes.
//
// The 32-bit key hash already orders storage (keyspace.ts); its top 16 bits
// name a key's segment, so a segment is a contiguous storage range inside
// exactly one partition (Q <= 65536). A segment's hash is the XOR of its
// keys' element hashes, where an element hash covers the key and its causal
// state (clock counters and sibling dots, not timestamps or values). XOR makes
// updates O(1): on every write, XOR out the old element, XOR in the new.
//
// Two replicas compare a partition's segments (Q=64: 1024 pairs of 32-bit
// words, 8 KiB), then list keys only in segments that differ, then repair
// only keys that differ: the cost grows with the number of differences, not
// with the number of keys.

import { createHash } from 'node:crypto';
import type { VersionedObject } from '../clock/object.js';

export const segmentBits = 16;
export const segmentCount = 1 << segmentBits;

export function segmentOfHash(hash: number): number {
  return hash >>> (32 - segmentBits);
}

/** Segments [first, first + count) of partition p in a ring of q partitions. */
export function partitionSegments(p: number, q: number): { first: number; count: number } {
  const count = segmentCount / q;
  return { first: p * count, count };
}

/**
 * 64-bit element hash (two independent 32-bit words) of a key in a causal
 * state; identical states on two replicas give identical hashes. It runs on
 * every write (twice: the state left and the state entered), so it is a
 * plain JS string hash (two multiply-xorshift lanes, as in cyrb53) rather
 * than a crypto digest: anti-entropy needs differences to show, not
 * resistance to an adversary.
 */
export function elementHash(key: string, obj: VersionedObject): [number, number] {
  let text = `${key}\0`;
  for (const [actor, counter] of obj.clock) text += `${actor}:${counter},`;
  text += '|';
  for (const s of obj.siblings) text += `${s.actor}:${s.counter},`;
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}

function valueBytes(obj: VersionedObject | undefined): number {
  let n = 0;
  if (obj) for (const s of obj.siblings) n += s.value?.byteLength ?? 0;
  return n;
}

/** The segment hashes of one node. */
export class SegmentHashes {
  readonly words = new Uint32Array(segmentCount * 2);
  /** What the hashes summarise, for status: stored keys (tombstones
   * included) and the bytes of their sibling values (no metadata). */
  keys = 0;
  valueBytes = 0;
  /** Stored keys per segment: how many keys a partition holds, without a
   * scan (a transfer source says so, for the receiver's ETA). */
  readonly keyCounts = new Uint32Array(segmentCount);

  /** Takes another summary's state (a persisted one, decoded). */
  adopt(from: SegmentHashes): void {
    this.words.set(from.words);
    this.keyCounts.set(from.keyCounts);
    this.keys = from.keys;
    this.valueBytes = from.valueBytes;
  }

  /** Folds in another summary of disjoint changes: words XOR, counts add.
   * A background build sums a scan of storage as it was at open with the
   * changes fed since (states left XOR states entered), which is the
   * summary of storage now. Counts per segment wrap modulo 2^32 while the
   * changes alone are negative and come right once added. */
  combine(other: SegmentHashes): void {
    for (let i = 0; i < this.words.length; i++) this.words[i] = (this.words[i]! ^ other.words[i]!) >>> 0;
    for (let i = 0; i < this.keyCounts.length; i++) this.keyCounts[i] = this.keyCounts[i]! + other.keyCounts[i]!;
    this.keys += other.keys;
    this.valueBytes += other.valueBytes;
  }

  toggle(segment: number, element: readonly [number, number]): void {
    this.words[segment * 2] = (this.words[segment * 2]! ^ element[0]) >>> 0;
    this.words[segment * 2 + 1] = (this.words[segment * 2 + 1]! ^ element[1]) >>> 0;
  }

  /** Records a key's change of state (either side may be absent). */
  update(key: string, hash: number, before: VersionedObject | undefined, after: VersionedObject | undefined): void {
    const seg = segmentOfHash(hash);
    if (before) this.toggle(seg, elementHash(key, before));
    if (after) this.toggle(seg, elementHash(key, after));
    const delta = (after ? 1 : 0) - (before ? 1 : 0);
    this.keys += delta;
    this.keyCounts[seg] = this.keyCounts[seg]! + delta;
    this.valueBytes += valueBytes(after) - valueBytes(before);
  }

  /** Keys stored in partition p of a ring of q partitions, in its
   * segments after segment `after` (all of them when after < first). */
  partitionKeys(p: number, q: number, after = -1): number {
    const { first, count } = partitionSegments(p, q);
    let n = 0;
    for (let i = Math.max(first, after + 1); i < first + count; i++) n += this.keyCounts[i]!;
    return n;
  }

  /** A partition's segment words, as bytes for the wire. */
  partitionBytes(p: number, q: number): Uint8Array {
    const { first, count } = partitionSegments(p, q);
    const slice = this.words.slice(first * 2, (first + count) * 2);
    return new Uint8Array(slice.buffer, slice.byteOffset, slice.byteLength);
  }
}

/** Segment indexes (global) where two partitions' summaries differ. */
export function differingSegments(p: number, q: number, mine: Uint8Array, theirs: Uint8Array): number[] {
  const { first, count } = partitionSegments(p, q);
  if (mine.byteLength !== theirs.byteLength || mine.byteLength !== count * 8) return [];
  const a = new Uint32Array(mine.buffer.slice(mine.byteOffset, mine.byteOffset + mine.byteLength));
  const b = new Uint32Array(theirs.buffer.slice(theirs.byteOffset, theirs.byteOffset + theirs.byteLength));
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    if (a[i * 2] !== b[i * 2] || a[i * 2 + 1] !== b[i * 2 + 1]) out.push(first + i);
  }
  return out;
}

// ---- persisted form ----
//
// A node writes its summary at a clean stop and reads it back at the next
// open instead of hashing every stored key (seconds per million keys). The
// bytes only say what the summary was; whether it still describes storage
// is the node's to know (node.ts: written after every other write, removed
// before the first write of the next run). Here: the bytes are exactly one
// summary written by this format, or they are refused.
//
//   magic "TKAE" | version u32 | keys f64 | valueBytes f64
//   | words (2 x segmentCount u32) | keyCounts (segmentCount u32)
//   | SHA-256 of everything before (32 bytes)           all little-endian

const persistMagic = 0x45414b54; // "TKAE" read as a little-endian u32
const persistVersion = 1;
const persistHeaderBytes = 4 + 4 + 8 + 8;
const persistDigestBytes = 32;
export const persistedHashesBytes = persistHeaderBytes + segmentCount * 2 * 4 + segmentCount * 4 + persistDigestBytes;

function digest(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export function encodeSegmentHashes(h: SegmentHashes): Uint8Array {
  const out = Buffer.alloc(persistedHashesBytes);
  out.writeUInt32LE(persistMagic, 0);
  out.writeUInt32LE(persistVersion, 4);
  out.writeDoubleLE(h.keys, 8);
  out.writeDoubleLE(h.valueBytes, 16);
  let at = persistHeaderBytes;
  for (const w of h.words) { out.writeUInt32LE(w, at); at += 4; }
  for (const c of h.keyCounts) { out.writeUInt32LE(c, at); at += 4; }
  digest(out.subarray(0, at)).copy(out, at);
  return out;
}

/** The summary the bytes hold, or why they are refused (never a guess). */
export function decodeSegmentHashes(bytes: Uint8Array): SegmentHashes | string {
  if (bytes.byteLength !== persistedHashesBytes) return `${bytes.byteLength} bytes, not ${persistedHashesBytes}`;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const body = persistedHashesBytes - persistDigestBytes;
  if (!digest(b.subarray(0, body)).equals(b.subarray(body))) return 'checksum mismatch';
  if (b.readUInt32LE(0) !== persistMagic) return 'not a segment-hash file';
  if (b.readUInt32LE(4) !== persistVersion) return `format version ${b.readUInt32LE(4)}, not ${persistVersion}`;
  const h = new SegmentHashes();
  h.keys = b.readDoubleLE(8);
  h.valueBytes = b.readDoubleLE(16);
  let at = persistHeaderBytes;
  for (let i = 0; i < h.words.length; i++) { h.words[i] = b.readUInt32LE(at); at += 4; }
  let counted = 0;
  for (let i = 0; i < h.keyCounts.length; i++) { h.keyCounts[i] = b.readUInt32LE(at); counted += h.keyCounts[i]!; at += 4; }
  if (!Number.isSafeInteger(h.keys) || h.keys !== counted) return `key count ${h.keys} is not the sum of the segments' (${counted})`;
  if (!Number.isSafeInteger(h.valueBytes) || h.valueBytes < 0) return `value bytes ${h.valueBytes} is not a byte count`;
  return h;
}
