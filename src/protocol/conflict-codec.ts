// Wire (and disk) form of conflict-log records (server/conflict-log.ts),
// shared by the node, which stores and serves them, and the client, which
// reads them: no server code here.
//
// A record is [seq, timeMs, key, kind, by, note, versions, versionsOmitted];
// a version is [dot, tsMs, vtype, tombstone 0|1, bytes, value|null,
// digest|null]. recordFromWire checks every field: records come from disk
// (which may be damaged) and, on the client, from a node.

import { invalid } from '../errors.js';
import { limits } from '../limits.js';
import { asRecord, checkKey } from './validate.js';

export const conflictKinds = ['siblings kept', 'lww', 'resolver', 'type merge'] as const;
export type ConflictKind = (typeof conflictKinds)[number];

/** One version as a record keeps it. */
export interface ConflictVersion {
  /** The version's dot, `actor:counter`. */
  readonly dot: string;
  /** The coordinator's wall clock when it was written, ms. */
  readonly tsMs: number;
  /** How the client encoded the value (0 bytes, 1 utf8, 2 msgpack). */
  readonly vtype: number;
  /** A delete. */
  readonly tombstone: boolean;
  /** The value's size in bytes. */
  readonly bytes: number;
  /** The value, when it is at most conflictValueBytesMax bytes. */
  readonly value: Uint8Array | null;
  /** SHA-256 (hex) of a value kept as its digest only. */
  readonly digest: string | null;
}

export interface ConflictRecord {
  readonly seq: number;
  readonly timeMs: number;
  readonly key: string;
  readonly kind: ConflictKind;
  /** The node that saw it (coordinator or replica). */
  readonly by: string;
  /** What happened, in words ("a put left 2 versions", "replica merge", ...). */
  readonly note: string;
  readonly versions: readonly ConflictVersion[];
  /** Versions past conflictVersionsMax, not kept. */
  readonly versionsOmitted: number;
}

export type WireVersion = [string, number, number, 0 | 1, number, Uint8Array | null, string | null];
export type WireRecord = [number, number, string, string, string, string, WireVersion[], number];

export function recordToWire(r: ConflictRecord): WireRecord {
  return [r.seq, r.timeMs, r.key, r.kind, r.by, r.note,
    r.versions.map((v) => [v.dot, v.tsMs, v.vtype, v.tombstone ? 1 : 0, v.bytes, v.value, v.digest]), r.versionsOmitted];
}

/** Characters of a record's `by` and `note`. */
export const textMax = 512;

function isText(v: unknown, max = textMax): v is string {
  return typeof v === 'string' && v.length <= max;
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** A record from the wire or from disk, checked field by field; throws
 * INVALID_ARGUMENT naming what is wrong. */
export function recordFromWire(w: unknown): ConflictRecord {
  if (!Array.isArray(w) || w.length !== 8) throw invalid('a conflict record is an array of 8');
  const [seq, timeMs, key, kind, by, note, versions, omitted] = w as unknown[];
  if (!isCount(seq) || !isCount(timeMs) || !isCount(omitted)) throw invalid('conflict record seq, time and omitted count must be counts');
  checkKey(key);
  if (!conflictKinds.includes(kind as ConflictKind)) throw invalid('conflict record kind unknown');
  if (!isText(by) || !isText(note)) throw invalid('conflict record by and note must be short strings');
  if (!Array.isArray(versions) || versions.length > limits.conflictVersionsMax) throw invalid('conflict record versions malformed');
  const vs = versions.map((x): ConflictVersion => {
    if (!Array.isArray(x) || x.length !== 7) throw invalid('conflict version malformed');
    const [dot, tsMs, vtype, tomb, bytes, value, digest] = x as unknown[];
    if (!isText(dot, 300) || !isCount(tsMs) || !isCount(vtype) || (vtype as number) > 255 || (tomb !== 0 && tomb !== 1) || !isCount(bytes)) {
      throw invalid('conflict version fields malformed');
    }
    if (value !== null && !(value instanceof Uint8Array && value.length <= limits.conflictValueBytesMax)) throw invalid('conflict version value malformed');
    if (digest !== null && !(typeof digest === 'string' && /^[0-9a-f]{64}$/.test(digest))) throw invalid('conflict version digest malformed');
    return { dot, tsMs: tsMs as number, vtype: vtype as number, tombstone: tomb === 1, bytes: bytes as number, value: value as Uint8Array | null, digest: digest as string | null };
  });
  return { seq, timeMs, key: key as string, kind: kind as ConflictKind, by, note, versions: vs, versionsOmitted: omitted };
}

/** A CONFLICTS request body, validated. */
/** A CONFLICTS request, validated. */
export interface ConflictQuery {
  readonly key?: string | undefined;
  /** Records at or after this wall-clock time, ms. */
  readonly sinceMs?: number | undefined;
  /** Records after this seq (the cursor of the previous page). */
  readonly afterSeq?: number | undefined;
  readonly limit?: number | undefined;
}

export function parseConflictQuery(body: unknown): ConflictQuery & { readonly limit: number } {
  const b = asRecord(body ?? {}, 'CONFLICTS');
  const opt = (name: string): number | undefined => {
    const v = b[name];
    if (v === undefined || v === null) return undefined;
    if (!isCount(v)) throw invalid(`${name} must be a non-negative integer`);
    return v;
  };
  const key = b.key === undefined || b.key === null ? undefined : checkKey(b.key);
  const limit = opt('limit') ?? limits.conflictsPageMax;
  if (limit < 1 || limit > limits.conflictsPageMax) throw invalid(`limit must be 1 to ${limits.conflictsPageMax}`);
  return { key, sinceMs: opt('sinceMs'), afterSeq: opt('afterSeq'), limit };
}

