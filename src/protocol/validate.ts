// Validation of request fields, shared by the client (to fail before
// sending) and the node (to never trust the wire). Each check throws a
// TuneKvError with a plain-words message naming the field.

import { TuneKvError, invalid, tooLarge } from '../errors.js';
import { limits } from '../limits.js';

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function checkKey(key: unknown): string {
  if (typeof key !== 'string') throw invalid(`key must be a string; got ${typeof key}`);
  if (key.length === 0) throw invalid('key must not be empty');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > limits.keyBytesMax) throw tooLarge('key', bytes, limits.keyBytesMax);
  if (loneSurrogate.test(key)) throw invalid('key must be valid Unicode (it has a lone surrogate)');
  return key;
}

export function checkValueBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid('value must be bytes');
  if (value.length > limits.valueBytesMax) throw tooLarge('value', value.length, limits.valueBytesMax);
  return value;
}

export function checkTimeout(ms: unknown): number | undefined {
  if (ms === undefined || ms === null) return undefined;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < limits.requestTimeoutMinMs || ms > limits.requestTimeoutMaxMs) {
    throw invalid(`timeoutMs (${String(ms)}) must be an integer from ${limits.requestTimeoutMinMs} to ${limits.requestTimeoutMaxMs}`);
  }
  return ms;
}

export function checkOptionalCount(name: 'r' | 'w', v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`${name} (${String(v)}) must be an integer`);
  return v;
}

export function checkOptionalBool(name: string, v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalid(`${name} must be true or false`);
  return v;
}

export function asRecord(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid(`${what} body must be a map`);
  return body as Record<string, unknown>;
}

export { TuneKvError };
