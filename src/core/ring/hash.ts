// Key hashing: a key's position on the ring.
//
// The first 32 bits of MD5 (as Riak takes SHA-1, Cassandra Murmur3): stable
// across versions and platforms, so a stored key's partition never changes.
// Storage keys are prefixed with this hash (see io/storage-keys.ts), which
// keeps each partition a contiguous range for anti-entropy scans.

import { createHash } from 'node:crypto';

/** Recently hashed keys. A request hashes its key several times (routing,
 * preference list, storage key, anti-entropy); MD5 through node:crypto costs
 * a couple of microseconds a call, a Map lookup a few tens of nanoseconds.
 * Pure: a cache of a pure function. Cleared whole when full, which keeps it
 * simple and bounded. */
const hashCache = new Map<string, number>();
const hashCacheMax = 100_000;

export function keyHash(key: string): number {
  const cached = hashCache.get(key);
  if (cached !== undefined) return cached;
  const h = createHash('md5').update(key, 'utf8').digest().readUInt32BE(0);
  if (hashCache.size >= hashCacheMax) hashCache.clear();
  hashCache.set(key, h);
  return h;
}

/** Partition index of a 32-bit hash in a ring of q partitions (q a power of two). */
export function partitionOfHash(hash: number, q: number): number {
  const bits = Math.log2(q);
  return bits === 0 ? 0 : hash >>> (32 - bits);
}

/** The half-open hash range [start, end) covered by partition p. */
export function partitionRange(p: number, q: number): { start: number; end: number } {
  const width = 2 ** 32 / q;
  return { start: p * width, end: (p + 1) * width };
}
