// Reading a node's conflict log from the client (kv.conflicts(), and the
// CLI's `tunekv conflicts`): the request body, the reply checked record by
// record, values decoded as the client decodes reads, and `--since`
// parsing.

import { TuneKvError, invalid } from '../errors.js';
import { limits } from '../limits.js';
import { recordFromWire } from '../protocol/conflict-codec.js';
import type { ConflictKind } from '../protocol/conflict-codec.js';
import { checkKey } from '../protocol/validate.js';
import { nodeIdProblem } from '../core/ring/ring.js';
import { decodeValue } from './client.js';

export interface ConflictsOptions {
  /** Only records of this key. */
  readonly key?: string;
  /** Only records at or after this time (a Date, or ms since the epoch). */
  readonly since?: Date | number;
  /** The `next` of the previous page. */
  readonly after?: number;
  /** Records in this page, 1..conflictsPageMax (default the maximum). */
  readonly limit?: number;
  /** The node whose log to read (host:port); default the first that answers. */
  readonly host?: string;
  readonly timeoutMs?: number;
  /** Aborting it rejects the call with ABORTED. */
  readonly signal?: AbortSignal;
}

export interface ConflictVersionView {
  readonly dot: string;
  /** When the version was written (its coordinator's clock), ISO 8601. */
  readonly time: string;
  readonly tombstone: boolean;
  readonly bytes: number;
  /** The value decoded like a read's (string, bytes or msgpack value),
   * when the record kept it whole. */
  readonly value?: unknown;
  /** SHA-256 (hex) of a value too large to keep (conflictValueBytesMax). */
  readonly digest?: string;
}

export interface ConflictView {
  readonly seq: number;
  /** When the node recorded it, ISO 8601. */
  readonly time: string;
  readonly key: string;
  readonly kind: ConflictKind;
  /** The node that saw it. */
  readonly by: string;
  readonly note: string;
  readonly versions: ConflictVersionView[];
  readonly versionsOmitted: number;
}

export interface ConflictsPage {
  readonly node: string;
  /** Oldest first. */
  readonly records: ConflictView[];
  /** Pass as `after` for the next page; null after the last. */
  readonly next: number | null;
}

export function conflictsBody(o: ConflictsOptions): Record<string, unknown> {
  if (typeof o !== 'object' || o === null) throw new TypeError('conflicts() options must be an object');
  const body: Record<string, unknown> = {};
  if (o.key !== undefined) body.key = checkKey(o.key);
  if (o.since !== undefined) {
    const ms = o.since instanceof Date ? o.since.getTime() : o.since;
    if (!Number.isSafeInteger(ms) || ms < 0) throw invalid('since must be a Date or ms since the epoch');
    body.sinceMs = ms;
  }
  if (o.after !== undefined) {
    if (!Number.isSafeInteger(o.after) || o.after < 0) throw invalid('after must be the next of a previous page');
    body.afterSeq = o.after;
  }
  if (o.limit !== undefined) {
    if (!Number.isInteger(o.limit) || o.limit < 1 || o.limit > limits.conflictsPageMax) throw invalid(`limit must be 1 to ${limits.conflictsPageMax}`);
    body.limit = o.limit;
  }
  return body;
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** A CONFLICTS_REPLY checked field by field (a node is trusted to answer,
 * not to be right). */
export function parseConflictsReply(reply: unknown): ConflictsPage {
  const b = (typeof reply === 'object' && reply !== null ? reply : {}) as Record<string, unknown>;
  if (typeof b.node !== 'string' || nodeIdProblem(b.node) !== null || !Array.isArray(b.records) || b.records.length > limits.conflictsPageMax
    || !(b.next === null || (Number.isSafeInteger(b.next) && (b.next as number) >= 0))) {
    throw new TuneKvError('PROTOCOL_ERROR', 'malformed CONFLICTS reply');
  }
  const records = b.records.map((w): ConflictView => {
    let r;
    try {
      r = recordFromWire(w);
    } catch (err) {
      throw new TuneKvError('PROTOCOL_ERROR', `malformed conflict record: ${(err as Error).message}`);
    }
    return {
      seq: r.seq, time: iso(r.timeMs), key: r.key, kind: r.kind, by: r.by, note: r.note, versionsOmitted: r.versionsOmitted,
      versions: r.versions.map((v) => ({
        dot: v.dot, time: iso(v.tsMs), tombstone: v.tombstone, bytes: v.bytes,
        ...(v.value !== null ? { value: decodeValue(v.vtype, v.value) } : {}),
        ...(v.digest !== null ? { digest: v.digest } : {}),
      })),
    };
  });
  return { node: b.node as string, records, next: b.next as number | null };
}

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--since`: a duration back from `nowMs` (`90s`, `10m`, `2h`, `7d`) or an
 * ISO 8601 time (`2026-11-24T06:00:00Z`; a date alone is midnight UTC, and
 * a time without a zone is UTC too, whatever the host's zone).
 * Returns ms since the epoch; throws INVALID_ARGUMENT naming the forms.
 */
export function parseSince(text: string, nowMs: number): number {
  const m = /^(\d{1,9})([smhd])$/.exec(text);
  if (m) return Math.max(0, nowMs - Number(m[1]) * units[m[2]!]!);
  const iso = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(text);
  if (iso) {
    // A time without a zone is UTC, as a date alone is (Date.parse would
    // read it in the CLI host's zone: red team, issue 10). The fields must
    // name a real date and time (Date would roll 2026-02-30 over to March).
    const [, y, mo, d, h = '00', mi = '00', sec = '00', zone] = iso;
    const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)] as const;
    const check = new Date(Date.UTC(...fields));
    const real = check.getUTCFullYear() === fields[0] && check.getUTCMonth() === fields[1] && check.getUTCDate() === fields[2]
      && check.getUTCHours() === fields[3] && check.getUTCMinutes() === fields[4] && check.getUTCSeconds() === fields[5];
    const ms = Date.parse(iso[4] === undefined ? `${y}-${mo}-${d}T00:00:00Z` : zone === undefined ? `${text.replace(' ', 'T')}Z` : text.replace(' ', 'T'));
    if (real && Number.isFinite(ms) && ms >= 0) return ms;
  }
  throw invalid(`--since must be a duration (90s, 10m, 2h, 7d) or an ISO time (2026-11-24T06:00:00Z); got "${text}"`);
}
