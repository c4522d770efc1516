// The conflict log: each node's bounded, persistent record of the conflicts
// it saw, the table people otherwise build by hand next to a Dynamo-style
// store ("which keys conflict, how often, what were the versions, who
// resolved them and how").
//
// What is recorded, and where (one record per event, on the node that saw it):
//   - `siblings kept`: a put this node coordinated left the key with more
//     than one version (a blind put, or one whose context missed a version);
//     or a replica merge here produced more versions than either side had
//     (a conflict found by read repair, hand-off, anti-entropy or a
//     transfer, typically after a partition). A put whose siblings merely
//     reach the other replicas is not recorded again there: the merged
//     object then has no more versions than the incoming one.
//   - `lww`: a last-writer-wins put this node coordinated discarded versions
//     its context had not seen (what LWW loses, kept here).
//   - `resolver`: a put that said it resolved N siblings (kv.update(), a
//     client's default resolver writing back) superseded them.
//   - `type merge`: recorded by the counter and set types through
//     recordTypeMerge() when their merge folded concurrent versions.
// A record holds the key, the time, the versions (their dot, time, encoding
// and value up to conflictValueBytesMax, past it the SHA-256 digest and
// size; at most conflictVersionsMax, the rest counted), the kind and the
// node that recorded it.
//
// Bounds: at most conflictLogRecordsMax records and conflictLogBytesMax bytes
// (as stored); the oldest are dropped first, in memory and on disk.
//
// Persistence: each record is a storage key c<seq> (keyspace.ts), written
// through the object store's group-commit batches (writeRaw), so it rides
// in a batch already being written (usually the one carrying the write that
// caused it) and costs the put no extra
// round trip; the put never waits for it. A record that fails to persist
// (a failing disk) stays in memory and is counted. Nothing is recorded for
// a put that leaves one version: the plain put path pays one comparison.
//
// Invariants: records are in seq order, seqs strictly increase (also across
// restarts: the next seq follows the highest loaded); the in-memory list
// and the disk hold the same records once writes have landed; an
// undecodable stored record is deleted at load, never a reason not to open.

import { createHash } from 'node:crypto';
import type { Sibling, VersionedObject } from '../core/clock/object.js';
import { covers } from '../core/clock/vclock.js';
import type { VClock } from '../core/clock/vclock.js';
import { limits } from '../limits.js';
import type { Clock } from '../io/clock.js';
import { scanRange } from '../io/scan.js';
import type { Storage, StorageOp } from '../io/storage.js';
import { pack, unpack } from '../protocol/codec.js';
import { recordFromWire, recordToWire, textMax } from '../protocol/conflict-codec.js';
import type { ConflictKind, ConflictQuery, ConflictRecord, ConflictVersion } from '../protocol/conflict-codec.js';
import { conflictKey, conflictKeysRange } from './keyspace.js';

export { parseConflictQuery, recordToWire } from '../protocol/conflict-codec.js';
export type { ConflictKind, ConflictRecord, ConflictVersion } from '../protocol/conflict-codec.js';

export interface ConflictInput {
  readonly key: string;
  readonly kind: ConflictKind;
  readonly by: string;
  readonly note: string;
  readonly versions: readonly Sibling[];
}

export interface ConflictLogStats {
  recorded: number;
  /** Oldest records dropped to stay within the bounds. */
  dropped: number;
  /** Records whose storage write failed (kept in memory only). */
  persistFailures: number;
  /** Undecodable stored records deleted at load. */
  discardedAtLoad: number;
}

export interface ConflictLogDeps {
  readonly storage: Storage;
  readonly clock: Clock;
  /** Writes one storage op through the node's batches (ObjectStore.writeRaw). */
  writeRaw(op: StorageOp): Promise<void>;
}

export interface ConflictPage {
  readonly records: ConflictRecord[];
  /** The cursor for the next page, or null when this was the last. */
  readonly next: number | null;
}

/** A kept version of a sibling: whole up to the bound, its digest past it. */
export function versionOf(s: Sibling): ConflictVersion {
  const v = s.value;
  const small = v === null || v.length <= limits.conflictValueBytesMax;
  return {
    dot: `${s.actor}:${s.counter}`, tsMs: s.tsMs, vtype: s.vtype, tombstone: v === null, bytes: v?.length ?? 0,
    value: v !== null && small ? Uint8Array.from(v) : null,
    digest: small ? null : createHash('sha256').update(v!).digest('hex'),
  };
}

export class ConflictLog {
  readonly stats: ConflictLogStats = { recorded: 0, dropped: 0, persistFailures: 0, discardedAtLoad: 0 };
  private records: { readonly r: ConflictRecord; readonly bytes: number }[] = [];
  private bytes = 0;
  private nextSeq = 1;

  constructor(private readonly d: ConflictLogDeps) {}

  get size(): number {
    return this.records.length;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Reads the stored records (at open); drops undecodable ones and any
   * past the bounds (they may have been lowered). */
  async load(): Promise<void> {
    const bad: string[] = [];
    for await (const page of scanRange(this.d.storage, conflictKeysRange)) {
      for (const [k, raw] of page) {
        try {
          const r = recordFromWire(unpack(raw));
          if (conflictKey(r.seq) !== k) throw new Error('key and seq differ');
          this.records.push({ r, bytes: raw.length });
          this.bytes += raw.length;
          this.nextSeq = Math.max(this.nextSeq, r.seq + 1);
        } catch {
          bad.push(k);
        }
      }
    }
    this.stats.discardedAtLoad += bad.length;
    for (const k of bad) this.persist({ key: k, value: null });
    this.trim();
  }

  /** Appends a record; never throws for what the record holds, never
   * waits for the disk. */
  record(input: ConflictInput): ConflictRecord {
    const kept = input.versions.slice(0, limits.conflictVersionsMax);
    const r: ConflictRecord = {
      seq: this.nextSeq++, timeMs: Math.max(0, Math.floor(this.d.clock.nowMs())), key: input.key, kind: input.kind,
      by: input.by.slice(0, textMax), note: input.note.slice(0, textMax),
      versions: kept.map(versionOf), versionsOmitted: input.versions.length - kept.length,
    };
    const raw = pack(recordToWire(r));
    this.records.push({ r, bytes: raw.length });
    this.bytes += raw.length;
    this.stats.recorded++;
    this.persist({ key: conflictKey(r.seq), value: raw });
    this.trim();
    return r;
  }

  /** Hook for the counter and set types: their merge folded concurrent
   * versions of `key` into one (TuneNode.noteTypeMerge calls this and
   * counts tunekv_type_merges_total). */
  recordTypeMerge(key: string, type: string, by: string, versions: readonly Sibling[]): ConflictRecord {
    return this.record({ key, kind: 'type merge', by, versions, note: `a ${type} merge folded ${versions.length} concurrent versions into one` });
  }

  /** One page of records, oldest first, matching the query. */
  query(q: ConflictQuery): ConflictPage {
    const limit = Math.min(q.limit ?? limits.conflictsPageMax, limits.conflictsPageMax);
    const out: ConflictRecord[] = [];
    let bytes = 0;
    let i = q.afterSeq === undefined ? 0 : this.firstAfter(q.afterSeq);
    for (; i < this.records.length; i++) {
      const { r, bytes: b } = this.records[i]!;
      if (q.key !== undefined && r.key !== q.key) continue;
      if (q.sinceMs !== undefined && r.timeMs < q.sinceMs) continue;
      if (out.length >= limit || (out.length > 0 && bytes + b > limits.conflictsPageBytesMax)) {
        return { records: out, next: out[out.length - 1]!.seq };
      }
      out.push(r);
      bytes += b;
    }
    return { records: out, next: null };
  }

  /** Index of the first record with seq > seq (records are in seq order). */
  private firstAfter(seq: number): number {
    let lo = 0;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid]!.r.seq <= seq) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  private trim(): void {
    let n = 0;
    while (this.records.length - n > limits.conflictLogRecordsMax
      || (this.bytes > limits.conflictLogBytesMax && this.records.length - n > 1)) {
      const { r, bytes } = this.records[n]!;
      this.bytes -= bytes;
      this.persist({ key: conflictKey(r.seq), value: null });
      n++;
    }
    if (n === 0) return;
    this.records.splice(0, n);
    this.stats.dropped += n;
  }

  private persist(op: StorageOp): void {
    this.d.writeRaw(op).catch(() => { this.stats.persistFailures++; });
  }
}

/** What a coordinated put did, as the conflict log and metrics see it. */
export interface PutSeen {
  readonly key: string;
  readonly by: string;
  readonly before: VersionedObject | undefined;
  readonly after: VersionedObject;
  /** The context the put carried (empty for a blind put). */
  readonly context: VClock;
  readonly lww: boolean;
  /** Versions the client says it resolved (PUT field `resolved`). */
  readonly resolved: number;
  /** The version this put created, if it survives. */
  readonly written: Sibling | undefined;
}

export interface PutConflicts {
  readonly records: ConflictInput[];
  /** Versions of `before` the put superseded, when it resolved a conflict
   * (two or more superseded), else 0. */
  readonly resolvedVersions: number;
  readonly resolvedBy: 'resolver' | 'lww' | 'context';
}

function sameDot(a: Sibling, b: Sibling): boolean {
  return a.actor === b.actor && a.counter === b.counter;
}

/**
 * The conflict records a coordinated put makes (pure): `lww` when it
 * discarded versions its context had not seen, `resolver` when the client
 * said it resolved siblings and it superseded some, `siblings kept` when it
 * left the key with more than one version.
 */
export function conflictsOfPut(p: PutSeen): PutConflicts {
  const before = p.before?.siblings ?? [];
  const superseded = before.filter((s) => !p.after.siblings.some((x) => sameDot(x, s)));
  const withResult = (vs: readonly Sibling[]): Sibling[] => (p.written ? [p.written, ...vs] : [...vs]);
  const records: ConflictInput[] = [];
  const lost = p.lww ? superseded.filter((s) => !covers(p.context, s.actor, s.counter)) : [];
  if (lost.length > 0) {
    records.push({ key: p.key, kind: 'lww', by: p.by, versions: withResult(lost),
      note: `a last-writer-wins put discarded ${lost.length} version(s) its context had not seen (listed after the winner)` });
  }
  if (p.resolved >= 2 && superseded.length > 0) {
    records.push({ key: p.key, kind: 'resolver', by: p.by, versions: withResult(superseded),
      note: `a client resolved ${p.resolved} sibling(s) and wrote the result (first); ${superseded.length} version(s) superseded here` });
  }
  const n = p.after.siblings.length;
  if (n > 1) {
    const blind = p.context.length === 0;
    records.push({ key: p.key, kind: 'siblings kept', by: p.by, versions: p.after.siblings,
      note: `a ${blind ? 'blind put (no context)' : 'put whose context missed a concurrent write'} left ${n} versions` });
  }
  const resolvedVersions = superseded.length >= 2 ? superseded.length : 0;
  return { records, resolvedVersions, resolvedBy: p.resolved >= 2 ? 'resolver' : p.lww ? 'lww' : 'context' };
}

/** A merge here found a conflict: this node held the key, and the merged
 * object holds more than one version and more than this node held (its
 * own version now has concurrent ones beside it). A node that held nothing
 * (a transfer's receiver, an owner back from a wipe) found no conflict: it
 * received one. A coordinated put's own write (`fromPut`) counts only when
 * the merge made more versions than the put's object had: its coordinator
 * recorded those already. Read repair, hand-off, anti-entropy and
 * transfers count whenever this node learns of versions concurrent with
 * its own, so each node that learns of one records it once. */
export function mergeFoundConflict(before: VersionedObject | undefined, incoming: VersionedObject, merged: VersionedObject, fromPut: boolean): boolean {
  const n = merged.siblings.length;
  const had = before?.siblings.length ?? 0;
  return had > 0 && n > 1 && n > had && (!fromPut || n > incoming.siblings.length);
}

/** Which counter and set merges get a `type merge` record: the first one
 * per key in each typeMergeLogIntervalMs, remembering at most
 * typeMergeLogKeysMax keys (insertion order, oldest forgotten first). */
export class TypeMergeSampler {
  private readonly last = new Map<string, number>();

  constructor(private readonly intervalMs: number = limits.typeMergeLogIntervalMs, private readonly keysMax: number = limits.typeMergeLogKeysMax) {}

  /** True when a merge of `key` at `nowMs` should be recorded. */
  take(key: string, nowMs: number): boolean {
    const at = this.last.get(key);
    if (at !== undefined && nowMs - at < this.intervalMs) return false;
    this.last.delete(key);
    this.last.set(key, nowMs);
    if (this.last.size > this.keysMax) this.last.delete(this.last.keys().next().value!);
    return true;
  }

  get size(): number {
    return this.last.size;
  }
}
