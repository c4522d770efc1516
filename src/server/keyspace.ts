// The layout of a node's LevelDB.
//
//   d<8 hex of keyHash><key>   a stored object (object-codec)
//   m:ring                     this node's ring
//
// Data keys start with their 32-bit hash, so every ring partition is one
// contiguous key range whatever Q is: anti-entropy scans a partition with
// one range read.

import { keyHash, partitionRange } from '../core/ring/hash.js';

export const ringKey = 'm:ring';

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

export function dataKey(key: string): string {
  return `d${hex8(keyHash(key))}${key}`;
}

export function userKeyOf(storageKey: string): string {
  return storageKey.slice(9);
}

/** The storage range [gte, lt) of partition p in a ring of q partitions. */
export function partitionKeyRange(p: number, q: number): { gte: string; lt: string } {
  const { start, end } = partitionRange(p, q);
  return { gte: `d${hex8(start)}`, lt: end >= 2 ** 32 ? 'e' : `d${hex8(end)}` };
}
