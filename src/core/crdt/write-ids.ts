// The recent write ids of one typed object, so a retried counter or set
// operation (same write id) is applied once.
//
// A bounded record, not a log: the typedWriteIdsMax newest ids by
// (coordinator timestamp, then id bytes). Keeping "the k greatest of the
// union" under one total order is itself a join (commutative, associative,
// idempotent), so the record converges on every replica like the state it
// rides with. What it cannot do: recognise a retry older than the window
// (more than typedWriteIdsMax later operations of the same key happened in
// between), nor a retry that reaches a coordinator whose copy has not yet
// received the first attempt (e.g. an `eventual` retry through another
// node during a partition). Those are applied again; the README says so.
//
// Invariant: entries sorted newest first, no two with the same id, at most
// typedWriteIdsMax of them.

import { limits } from '../../limits.js';

/** [write id, coordinator wall clock in ms when it was applied]. */
export type WriteIdEntry = readonly [Uint8Array, number];
export type WriteIds = readonly WriteIdEntry[];

export const noWriteIds: WriteIds = [];

function order(a: WriteIdEntry, b: WriteIdEntry): number {
  if (a[1] !== b[1]) return b[1] - a[1];
  return Buffer.compare(a[0], b[0]);
}

export function hasWriteId(ids: WriteIds, wid: Uint8Array): boolean {
  return ids.some((e) => Buffer.compare(e[0], wid) === 0);
}

/** The union, newest first, cut to typedWriteIdsMax. An id seen on both
 * sides with different timestamps keeps the newer (the first met). */
export function joinWriteIds(a: WriteIds, b: WriteIds): WriteIds {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const all = [...a, ...b].sort(order);
  const out: WriteIdEntry[] = [];
  const seen = new Set<string>();
  for (const e of all) {
    const k = Buffer.from(e[0]).toString('latin1');
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(e);
    if (out.length >= limits.typedWriteIdsMax) break;
  }
  return out;
}

export function addWriteId(ids: WriteIds, wid: Uint8Array | null, nowMs: number): WriteIds {
  if (wid === null) return ids;
  return joinWriteIds(ids, [[wid, nowMs]]);
}

/** Why a decoded record is not one of ours, or null. */
export function writeIdsProblem(v: unknown, widBytesMin: number, widBytesMax: number): string | null {
  if (!Array.isArray(v)) return 'write ids must be an array';
  if (v.length > limits.typedWriteIdsMax) return `more than typedWriteIdsMax (${limits.typedWriteIdsMax}) write ids`;
  for (let i = 0; i < v.length; i++) {
    const e = v[i] as unknown;
    if (!Array.isArray(e) || e.length !== 2) return 'a write id entry must be [id, tsMs]';
    const [wid, ts] = e as unknown[];
    if (!(wid instanceof Uint8Array) || wid.length < widBytesMin || wid.length > widBytesMax) return `a write id must be ${widBytesMin} to ${widBytesMax} bytes`;
    if (!Number.isSafeInteger(ts) || (ts as number) < 0) return 'a write id timestamp must be a non-negative integer';
    if (i > 0 && order(v[i - 1] as WriteIdEntry, e as unknown as WriteIdEntry) >= 0) return 'write ids must be sorted newest first without duplicates';
  }
  return null;
}
