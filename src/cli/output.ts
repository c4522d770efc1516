// What the CLI writes, and where. Two promises:
//
// - With --json, stdout carries exactly one JSON object and nothing else:
//   main.ts calls jsonMode() before running the command, which sends every
//   console.log (the launcher's and the simulator's progress lines too) to
//   stderr; the command's answer, or its error, goes through emitJson()
//   once.
// - In plain output a value can never be mistaken for another kind of
//   value, for a sibling list, or for a terminal control sequence: a string
//   prints as is only when it is safe and unambiguous, everything else
//   carries a label ((string, N bytes), (bytes, N), (msgpack)).

import type { GetResult, PutResult } from '../client/client.js';
import { RefusedError, exitStatus } from './exit-codes.js';
import type { ExitStatus } from './exit-codes.js';

let json = false;
let emitted = false;

/** From here on console.log writes to stderr; stdout is emitJson()'s. */
export function jsonMode(): void {
  json = true;
  console.log = (...args: unknown[]): void => console.error(...args);
}

export function isJsonMode(): boolean {
  return json;
}

/** Writes the one JSON object of a --json run. A second call is a bug. */
export function emitJson(obj: object): void {
  if (emitted) throw new Error('a --json command tried to print a second JSON object');
  emitted = true;
  process.stdout.write(`${JSON.stringify(obj, jsonReplacer)}\n`);
}

export function jsonEmitted(): boolean {
  return emitted;
}

/** bigint (counters, msgpack values) as decimal strings, bytes nested in
 * msgpack values as {base64}: JSON.stringify would throw on the first and
 * print the second as an object of indices. */
function jsonReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return { base64: Buffer.from(v).toString('base64') };
  return v;
}

/** A value in --json: a string stays a JSON string, bytes are
 * {"base64": ...}, and any other (msgpack) value is {"msgpack": value}, so
 * an object value can never pass for bytes. */
export function valueJson(v: unknown): unknown {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return { base64: Buffer.from(v).toString('base64') };
  return { msgpack: v };
}

/** Characters a terminal acts on, that make text display out of order, or
 * that show as nothing (so two different values would look the same): C0
 * and C1 controls, DEL, line and paragraph separators, bidirectional marks,
 * overrides and isolates (U+061C included), zero-width characters, the
 * soft hyphen and the BOM. A string holding one is printed escaped. */
const unsafeChars = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]/;
const unsafeCharsAll = /[\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g;

/** JSON text with the characters above escaped too (JSON leaves C1 and the
 * bidi controls raw). */
export function safeJson(x: unknown): string {
  return JSON.stringify(x, jsonReplacer).replace(unsafeCharsAll, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A value as one line of plain output:
 * - a string prints as is, unless it is empty, starts with "(" or "[", or
 *   holds a control, separator or bidi character: then `(string, N bytes) "json"`;
 * - bytes print as `(bytes, N) "json"` when they are UTF-8, else
 *   `(bytes, N) hex:...`;
 * - anything else (a msgpack value) as `(msgpack) json`.
 * So a plain string can never look like a label or a sibling number. */
export function valueText(v: unknown): string {
  if (typeof v === 'string') {
    if (v.length > 0 && !/^[([]/.test(v) && !/^\d+ siblings:$/.test(v) && !unsafeChars.test(v)) return v;
    return `(string, ${Buffer.byteLength(v)} bytes) ${safeJson(v)}`;
  }
  if (v instanceof Uint8Array) {
    let text: string | undefined;
    try {
      text = utf8.decode(v);
    } catch {
      text = undefined;
    }
    return `(bytes, ${v.length}) ${text !== undefined ? safeJson(text) : `hex:${Buffer.from(v).toString('hex')}`}`;
  }
  return `(msgpack) ${safeJson(v)}`;
}

/** A value's own bytes for --raw: strings as UTF-8, bytes as they are. */
function rawBytes(v: unknown): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  throw new RefusedError('the value is a msgpack value, not text or bytes; read it with --json');
}

export function replicasLine(r: readonly { node: string; role: string; outcome: string; hintFor?: string; stale?: boolean }[]): string {
  return r.map((x) => `${x.node}(${x.role}${x.hintFor ? ` for ${x.hintFor}` : ''} ${x.outcome}${x.stale ? ' stale' : ''})`).join(' ');
}

function reportGet(got: GetResult): void {
  console.error(`# ${got.level === 'custom' ? '' : `${got.level} `}r=${got.r} via ${got.coordinator}: ${replicasLine(got.replicas)}`);
  console.error(`# context: ${got.context}`);
}

/** Prints a get and returns its exit status: 1 when the key is not found
 * (nothing on stdout; with --json {"found":false,...}). */
export async function printGet(got: GetResult, opts: { json: boolean; raw: boolean }): Promise<ExitStatus> {
  if (opts.json) {
    emitJson({ ...got, values: got.values.map(valueJson), ...(got.unresolved ? { unresolved: { ...got.unresolved, values: got.unresolved.values.map(valueJson) } } : {}) });
    return got.found ? exitStatus.ok : exitStatus.notFound;
  }
  reportGet(got);
  if (!got.found || got.values.length === 0) {
    console.error(`# not found${got.tombstones > 0 ? ' (deleted)' : ''}`);
    return exitStatus.notFound;
  }
  if (opts.raw) {
    if (got.values.length !== 1) throw new RefusedError(`${got.values.length} siblings; resolve or read with --json`);
    await writeStdout(rawBytes(got.values[0]));
    return exitStatus.ok;
  }
  const lines = got.values.length === 1 ? [valueText(got.values[0])]
    : [`${got.values.length} siblings:`, ...got.values.map((v, i) => `[${i + 1}] ${valueText(v)}`)];
  if (got.tombstones > 0) console.error(`# and ${got.tombstones} concurrent delete(s)`);
  console.log(lines.join('\n'));
  return exitStatus.ok;
}

/** Writes all of `bytes` to stdout and waits until they are handed over,
 * so an exit right after cannot cut them off. */
function writeStdout(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(bytes, (err) => (err ? reject(err) : resolve()));
  });
}

export function printPut(res: PutResult): void {
  if (json) {
    emitJson(res);
    return;
  }
  console.log(`ok${res.siblings > 1 ? ` (${res.siblings} siblings)` : ''}`);
  console.error(`# ${res.level === 'custom' ? '' : `${res.level} `}w=${res.w} via ${res.coordinator}: ${replicasLine(res.replicas)}`);
  console.error(`# context: ${res.context}`);
}
