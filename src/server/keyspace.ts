// The layout of a node's LevelDB.
//
//   d<8 hex of keyHash><key>   a stored object (object-codec)
//   h<owner>/<data key>        a hint: this node holds the key for <owner>
//   m:ring                     this node's ring
//   m:inc                      this node's incarnation (made with the data
//                              directory: a removed node is known by it)
//   m:xfer:<plan>:<p>          a transfer's cursor: the last storage key
//                              of partition p received in that plan
//   m:aae                      the anti-entropy segment hashes, written at
//                              a clean stop and removed when the node next
//                              opens (anti-entropy.ts): present only while
//                              no write happened since they were written
//   m:probe                    the disk-health probe's scratch key (its
//                              value is the time of the last probe)
//   c<14 hex of seq>           a conflict-log record (conflict-log.ts), in
//                              the order the node saw them: out of the data
//                              range, so nothing serves, hashes or transfers
//                              it; bounded by count and bytes, oldest first
//   q<data key>                a stored object that could not be decoded,
//                              set aside byte for byte (object-store.ts):
//                              out of the data range, so nothing serves or
//                              hashes it, and kept for an operator to look at
//
// Data keys start with their 32-bit hash, so every ring partition is one
// contiguous key range whatever Q is, and so is every anti-entropy segment.
// The prefixes c, d, h, m, q never overlap, so each range read sees one kind.

import { segmentBits } from '../core/antientropy/segments.js';
import { keyHash, partitionRange } from '../core/ring/hash.js';

export const ringKey = 'm:ring';
export const incKey = 'm:inc';
export const probeKey = 'm:probe';
export const aaeHashesKey = 'm:aae';

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** Storage keys of recently used keys (built on every read and write). */
const dataKeys = new Map<string, string>();
const dataKeysMax = 100_000;

export function dataKey(key: string): string {
  let sk = dataKeys.get(key);
  if (sk === undefined) {
    sk = `d${hex8(keyHash(key))}${key}`;
    if (dataKeys.size >= dataKeysMax) dataKeys.clear();
    dataKeys.set(key, sk);
  }
  return sk;
}

export function userKeyOf(storageKey: string): string {
  return storageKey.slice(9);
}

/** The storage range [gte, lt) of partition p in a ring of q partitions. */
export function partitionKeyRange(p: number, q: number): { gte: string; lt: string } {
  const { start, end } = partitionRange(p, q);
  return { gte: `d${hex8(start)}`, lt: end >= 2 ** 32 ? 'e' : `d${hex8(end)}` };
}

/** The storage range of one anti-entropy segment (the top 16 hash bits). */
export function segmentKeyRange(segment: number): { gte: string; lt: string } {
  const shift = 32 - segmentBits;
  const start = segment * 2 ** shift;
  const end = (segment + 1) * 2 ** shift;
  return { gte: `d${hex8(start)}`, lt: end >= 2 ** 32 ? 'e' : `d${hex8(end)}` };
}

export const dataKeyRange = { gte: 'd', lt: 'e' } as const;

/** The anti-entropy segment a data storage key falls in (-1 if it is not one). */
export function segmentOfStorageKey(sk: string): number {
  const hash = Number.parseInt(sk.slice(1, 9), 16);
  return sk[0] === 'd' && Number.isInteger(hash) ? hash >>> (32 - segmentBits) : -1;
}

export function hintKey(owner: string, storageKey: string): string {
  return `h${owner}/${storageKey}`;
}

/** All hints held for one owner ('0' follows '/'). */
export function hintRange(owner: string): { gte: string; lt: string } {
  return { gte: `h${owner}/`, lt: `h${owner}0` };
}

export const hintKeysRange = { gte: 'h', lt: 'i' } as const;

export function parseHintKey(k: string): { owner: string; storageKey: string } | undefined {
  const slash = k.indexOf('/');
  if (!k.startsWith('h') || slash < 2) return undefined;
  return { owner: k.slice(1, slash), storageKey: k.slice(slash + 1) };
}

/** Where an undecodable object at `storageKey` is set aside. */
export function quarantineKey(storageKey: string): string {
  return `q${storageKey}`;
}

export const quarantineRange = { gte: 'q', lt: 'r' } as const;

/** Where conflict-log record `seq` is stored: fixed-width hex, so storage
 * order is record order. */
export function conflictKey(seq: number): string {
  return `c${seq.toString(16).padStart(14, '0')}`;
}

export const conflictKeysRange = { gte: 'c', lt: 'd' } as const;
