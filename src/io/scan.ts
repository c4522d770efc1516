// Paging through a storage range: the one loop every full scan uses (hint
// load and expiry, anti-entropy build and segment listings).
//
// A page is at most `pageMax` entries (limits.scanPageMax by default), so a
// scan holds one page in memory whatever the range holds. The next page
// starts just after the last key seen (`last + '\0'` is the smallest key
// above it), so a consumer may delete or add keys behind the cursor while it
// scans: a key removed before the cursor reaches it is not returned, a key
// added behind the cursor is not returned twice.
//
// The generator is lazy: the next page is read only when the consumer asks
// for it, after it has finished with the previous one.

import { limits } from '../limits.js';
import type { Storage } from './storage.js';

export interface KeyRange {
  readonly gte: string;
  readonly lt: string;
}

export type Page = [string, Uint8Array][];

/** Yields the range's entries in byte order, a page at a time (never an
 * empty page). */
export async function* scanRange(storage: Storage, range: KeyRange, pageMax: number = limits.scanPageMax): AsyncGenerator<Page> {
  if (!Number.isInteger(pageMax) || pageMax < 1) throw new TypeError(`pageMax (${pageMax}) must be a positive integer`);
  let gte = range.gte;
  for (;;) {
    const page = await storage.range({ gte, lt: range.lt, limit: pageMax });
    if (page.length > 0) yield page;
    if (page.length < pageMax) return;
    gte = `${page[page.length - 1]![0]}\0`;
  }
}
