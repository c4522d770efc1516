// `tunekv conflicts`: reads one node's conflict log (or every member's with
// --all), page by page, and prints it oldest first, as text or as one JSON
// object. The flags are parsed in main.ts; this file gathers and formats.

import type { TuneKvClient } from '../client/client.js';
import type { ConflictView, ConflictsOptions } from '../client/conflicts.js';
import { TuneKvError } from '../errors.js';

/** Pages read from one node before giving up: the log holds at most
 * conflictLogRecordsMax records, conflictsPageMax a page, so an honest node
 * never needs more; a node that keeps saying "next" is not believed. */
const pagesPerNodeMax = 64;

export interface NodeConflicts {
  /** The node's id, or its address when it did not answer. */
  readonly node: string;
  readonly records?: ConflictView[];
  readonly error?: { code: string; message: string };
}

/** Every record of one node's log that matches, following `next`. */
export async function readNodeLog(kv: TuneKvClient, query: Omit<ConflictsOptions, 'after'>): Promise<{ node: string; records: ConflictView[] }> {
  const records: ConflictView[] = [];
  let after: number | undefined;
  let node = query.host ?? '';
  for (let page = 0; page < pagesPerNodeMax; page++) {
    const got = await kv.conflicts({ ...query, ...(after !== undefined ? { after } : {}) });
    node = got.node;
    records.push(...got.records);
    if (got.next === null) return { node, records };
    if (after !== undefined && got.next <= after) throw new TuneKvError('PROTOCOL_ERROR', `${node} sent a conflicts cursor that does not advance`);
    after = got.next;
  }
  throw new TuneKvError('PROTOCOL_ERROR', `${node} kept sending pages past ${pagesPerNodeMax}`);
}

/** Reads the log of every member in `addrs`; a node that fails is reported,
 * not fatal. */
export async function readAllLogs(kv: TuneKvClient, addrs: readonly string[], query: Omit<ConflictsOptions, 'after' | 'host'>): Promise<NodeConflicts[]> {
  const out: NodeConflicts[] = [];
  for (const host of addrs) {
    try {
      out.push(await readNodeLog(kv, { ...query, host }));
    } catch (err) {
      if (!(err instanceof TuneKvError)) throw err;
      out.push({ node: host, error: { code: err.code, message: err.message } });
    }
  }
  return out;
}

function jsonValue(v: unknown): unknown {
  return v instanceof Uint8Array ? { base64: Buffer.from(v).toString('base64') } : v;
}

/** The one JSON object `--json` prints: records of every node that
 * answered, oldest first (by time, then node), and the nodes that did not. */
export function conflictsJson(logs: readonly NodeConflicts[]): Record<string, unknown> {
  const records = logs.flatMap((l) => (l.records ?? []).map((r) => ({
    node: l.node, ...r, versions: r.versions.map((v) => (v.value === undefined ? v : { ...v, value: jsonValue(v.value) })),
  })));
  records.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : a.seq - b.seq));
  const errors = logs.filter((l) => l.error !== undefined).map((l) => ({ node: l.node, ...l.error }));
  return { records, nodes: logs.filter((l) => l.records !== undefined).map((l) => l.node), errors };
}

/** JSON text with the characters JSON leaves raw but a terminal acts on
 * escaped too: C1 controls (U+0080-U+009F, U+009B starts an escape
 * sequence), line and paragraph separators, and the bidirectional
 * overrides and isolates that make text display in another order (red
 * team, issue 10). */
function safeJson(x: unknown): string {
  return JSON.stringify(x).replace(/[\u0080-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function valueText(v: ConflictView['versions'][number]): string {
  if (v.tombstone) return '(deleted)';
  if (v.digest !== undefined) return `sha256:${v.digest} (${v.bytes} bytes, over conflictValueBytesMax)`;
  const x = v.value;
  const text = typeof x === 'string' ? safeJson(x) : safeJson(jsonValue(x));
  return `${text} (${v.bytes} bytes)`;
}

/** The text form: a line per record, an indented line per version. Keys
 * and values are printed as JSON strings, so no one can drive a terminal
 * through them. */
export function conflictsText(logs: readonly NodeConflicts[]): string[] {
  const json = conflictsJson(logs);
  const lines: string[] = [];
  for (const r of json.records as (ConflictView & { node: string })[]) {
    lines.push(`${r.time} ${safeJson(r.node).slice(1, -1)} ${r.kind} ${safeJson(r.key)}: ${safeJson(r.note).slice(1, -1)}`);
    for (const v of r.versions) lines.push(`    ${JSON.stringify(v.dot).slice(1, -1)} ${v.time} ${valueText(v)}`);
    if (r.versionsOmitted > 0) lines.push(`    ... ${r.versionsOmitted} more version(s) not kept`);
  }
  if (lines.length === 0) lines.push('(no conflicts recorded)');
  return lines;
}
