// Wire fuzzing against real node processes: what to send and how to send it.
// Shared by test/integration/fuzz.test.ts (a short run in `make test`) and
// bench/fuzz.ts (the long run).
//
// What is generated (fast-check arbitraries, so a seed replays a run):
//   raw      arbitrary bytes, then a half-close (so a partial frame cannot
//            legitimately wait out frameReadTimeoutMs)
//   header   a valid frame header (true length, any type, any id) around
//            arbitrary body bytes
//   value    a valid header around one msgpack value of any shape: deep
//            nesting, huge arrays, big ints, NaN/Infinity, binary, invalid
//            UTF-8, extension types, non-string map keys, "__proto__"
//   shaped   a request type from `requestTypes` (or AUTH) with a map of its
//            own field names, each field either near-valid or any value
//            (strings where numbers go, 2^64-1, -0, NaN, 1 MiB + 1 of bytes)
// Values are built as a small tree (`W`) and encoded here rather than by
// msgpackr, so encodings msgpackr would never produce (u64 for 5, str 32
// for "a", a map with an integer key, a count larger than its items) are
// sent too.
//
// How it is sent (`runBatch`): one connection per batch in one of three
// modes (no HELLO; after HELLO, which in protected mode makes a loopback
// client `write`; after HELLO and AUTH with the cluster secret as admin, so
// peer messages are parsed), one frame at a time, each waited for until a
// frame with its request id (or a connection-level ERROR) arrives or the
// node closes the connection. Anything else within the wait is a hang. A
// connection the node closed is reopened in the same mode for the next
// frame of the batch.

import net from 'node:net';
import fc from 'fast-check';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';
import type { Frame } from '../src/protocol/frame.js';
import { MsgType, msgTypeName, protocolVersion, requestTypes } from '../src/protocol/messages.js';
import { ringProblem } from '../src/core/ring/ring.js';
import { newNonce, secretProof } from '../src/security/handshake.js';
import type { DialAuth } from '../src/io/connection.js';
import { limits } from '../src/limits.js';

// ---------------------------------------------------------------------------
// Value trees and their msgpack encoding

export type W =
  | { readonly t: 'nil' }
  | { readonly t: 'undef' }
  | { readonly t: 'bool'; readonly v: boolean }
  /** An integer in the smallest encoding, or `wide`: always 64-bit. */
  | { readonly t: 'int'; readonly v: bigint; readonly wide?: boolean }
  | { readonly t: 'f64'; readonly v: number }
  | { readonly t: 'f32'; readonly v: number }
  | { readonly t: 'str'; readonly v: string; readonly wide?: boolean }
  /** A str whose bytes are not valid UTF-8. */
  | { readonly t: 'badstr'; readonly bytes: Uint8Array }
  | { readonly t: 'bin'; readonly bytes: Uint8Array }
  /** `n` bytes of `byte` as a bin (or a str): big values without generating them. */
  | { readonly t: 'fill'; readonly n: number; readonly byte: number; readonly asStr: boolean }
  | { readonly t: 'arr'; readonly items: readonly W[] }
  /** An array of `n` copies of `item`. */
  | { readonly t: 'rep'; readonly item: W; readonly n: number; readonly asMap: boolean }
  | { readonly t: 'map'; readonly entries: readonly (readonly [W, W])[] }
  /** `depth` containers, one inside the other, around `leaf`. */
  | { readonly t: 'nest'; readonly depth: number; readonly leaf: W; readonly asMap: boolean }
  | { readonly t: 'ext'; readonly type: number; readonly data: Uint8Array }
  /** A container header claiming `count` items, followed by `items` only. */
  | { readonly t: 'lie'; readonly count: number; readonly items: readonly W[]; readonly asMap: boolean }
  /** Raw bytes spliced into the encoding. */
  | { readonly t: 'raw'; readonly bytes: Uint8Array };

/** Encodings beyond this are cut short: the largest frame we mean to send is a
 * little over clientFrameBytesMax (2 MiB). */
const encodedBytesMax = 3 * 1024 * 1024;

class Out {
  private buf = Buffer.allocUnsafe(256);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  byte(b: number): void { this.ensure(1); this.buf[this.len++] = b & 0xff; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16BE(v, this.len); this.len += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32BE(v >>> 0, this.len); this.len += 4; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.len); this.len += b.length; }
  fill(n: number, byte: number): void { this.ensure(n); this.buf.fill(byte, this.len, this.len + n); this.len += n; }
  big(v: bigint, signed: boolean): void {
    this.ensure(8);
    if (signed) this.buf.writeBigInt64BE(v, this.len); else this.buf.writeBigUInt64BE(v, this.len);
    this.len += 8;
  }
  f64(v: number): void { this.ensure(8); this.buf.writeDoubleBE(v, this.len); this.len += 8; }
  f32(v: number): void { this.ensure(4); this.buf.writeFloatBE(v, this.len); this.len += 4; }
  result(): Buffer { return Buffer.from(this.buf.subarray(0, this.len)); }
}

const u64Max = 2n ** 64n - 1n;
const i64Min = -(2n ** 63n);

function encInt(o: Out, v0: bigint, wide: boolean): void {
  const v = v0 > u64Max ? u64Max : v0 < i64Min ? i64Min : v0;
  if (wide) {
    if (v >= 0n) { o.byte(0xcf); o.big(v, false); } else { o.byte(0xd3); o.big(v, true); }
    return;
  }
  if (v >= 0n) {
    if (v < 128n) o.byte(Number(v));
    else if (v < 256n) { o.byte(0xcc); o.byte(Number(v)); }
    else if (v < 65536n) { o.byte(0xcd); o.u16(Number(v)); }
    else if (v < 2n ** 32n) { o.byte(0xce); o.u32(Number(v)); }
    else { o.byte(0xcf); o.big(v, false); }
    return;
  }
  if (v >= -32n) o.byte(0x100 + Number(v));
  else if (v >= -128n) { o.byte(0xd0); o.byte(Number(v) & 0xff); }
  else if (v >= -32768n) { o.byte(0xd1); o.u16(Number(v) & 0xffff); }
  else if (v >= -(2n ** 31n)) { o.byte(0xd2); o.u32(Number(v) >>> 0); }
  else { o.byte(0xd3); o.big(v, true); }
}

function strHeader(o: Out, n: number, wide: boolean): void {
  if (wide) { o.byte(0xdb); o.u32(n); return; }
  if (n < 32) o.byte(0xa0 | n);
  else if (n < 256) { o.byte(0xd9); o.byte(n); }
  else if (n < 65536) { o.byte(0xda); o.u16(n); }
  else { o.byte(0xdb); o.u32(n); }
}

function binHeader(o: Out, n: number): void {
  if (n < 256) { o.byte(0xc4); o.byte(n); }
  else if (n < 65536) { o.byte(0xc5); o.u16(n); }
  else { o.byte(0xc6); o.u32(n); }
}

function containerHeader(o: Out, n: number, map: boolean): void {
  if (n < 16) o.byte((map ? 0x80 : 0x90) | n);
  else if (n < 65536) { o.byte(map ? 0xde : 0xdc); o.u16(n); }
  else { o.byte(map ? 0xdf : 0xdd); o.u32(n); }
}

function extHeader(o: Out, n: number, type: number): void {
  const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
  const f = fixed[n];
  if (f !== undefined) o.byte(f);
  else if (n < 256) { o.byte(0xc7); o.byte(n); }
  else if (n < 65536) { o.byte(0xc8); o.u16(n); }
  else { o.byte(0xc9); o.u32(n); }
  o.byte(type & 0xff);
}

/** Encodes `w` (iteratively: a nest 100,000 deep must not blow our stack). */
export function encodeW(w: W): Buffer {
  const o = new Out();
  const stack: W[] = [w];
  while (stack.length > 0) {
    if (o.len > encodedBytesMax) break;
    const x = stack.pop()!;
    switch (x.t) {
      case 'nil': o.byte(0xc0); break;
      case 'undef': o.byte(0xd4); o.byte(0); o.byte(0); break;
      case 'bool': o.byte(x.v ? 0xc3 : 0xc2); break;
      case 'int': encInt(o, x.v, x.wide === true); break;
      case 'f64': o.byte(0xcb); o.f64(x.v); break;
      case 'f32': o.byte(0xca); o.f32(x.v); break;
      case 'str': {
        const b = Buffer.from(x.v, 'utf8');
        strHeader(o, b.length, x.wide === true);
        o.bytes(b);
        break;
      }
      case 'badstr': strHeader(o, x.bytes.length, false); o.bytes(x.bytes); break;
      case 'bin': binHeader(o, x.bytes.length); o.bytes(x.bytes); break;
      case 'fill':
        if (x.asStr) strHeader(o, x.n, false); else binHeader(o, x.n);
        o.fill(x.n, x.byte);
        break;
      case 'arr':
        containerHeader(o, x.items.length, false);
        for (let i = x.items.length - 1; i >= 0; i--) stack.push(x.items[i]!);
        break;
      case 'rep': {
        // As a map: n entries of "k<i>" -> item, keys distinct so none collapse.
        containerHeader(o, x.n, x.asMap);
        const item = encodeW(x.item);
        for (let i = 0; i < x.n && o.len <= encodedBytesMax; i++) {
          if (x.asMap) { const k = Buffer.from(`k${i}`); strHeader(o, k.length, false); o.bytes(k); }
          o.bytes(item);
        }
        break;
      }
      case 'map':
        containerHeader(o, x.entries.length, true);
        for (let i = x.entries.length - 1; i >= 0; i--) { stack.push(x.entries[i]![1]); stack.push(x.entries[i]![0]); }
        break;
      case 'nest':
        for (let i = 0; i < x.depth; i++) {
          if (x.asMap) { o.byte(0x81); o.byte(0xa1); o.byte(0x6e); } else o.byte(0x91);
        }
        stack.push(x.leaf);
        break;
      case 'ext': extHeader(o, x.data.length, x.type); o.bytes(x.data); break;
      case 'lie':
        containerHeader(o, x.count, x.asMap);
        for (let i = x.items.length - 1; i >= 0; i--) stack.push(x.items[i]!);
        break;
      case 'raw': o.bytes(x.bytes); break;
      default: {
        const never: never = x;
        throw new TypeError(`unknown value tree ${String(never)}`);
      }
    }
  }
  return o.result();
}

// ---------------------------------------------------------------------------
// Arbitraries

const str = (v: string): W => ({ t: 'str', v });
const int = (v: number | bigint): W => ({ t: 'int', v: BigInt(v) });
const nil: W = { t: 'nil' };
const bin = (n: number, byte = 0x61): W => ({ t: 'fill', n, byte, asStr: false });
const mapOf = (o: Record<string, W>): W => ({ t: 'map', entries: Object.entries(o).map(([k, v]) => [str(k), v] as const) });
const arrOf = (...items: W[]): W => ({ t: 'arr', items });

/** Numbers that break code written for small non-negative integers. */
const nastyNumberArb: fc.Arbitrary<W> = fc.oneof(
  fc.constantFrom<W>(
    int(0), int(1), int(-1), int(2 ** 31), int(2 ** 32), int(2 ** 52), int(2 ** 53), int(2n ** 53n + 1n), int(u64Max), int(i64Min),
    { t: 'int', v: 5n, wide: true }, { t: 'int', v: 0n, wide: true }, { t: 'int', v: -1n, wide: true },
    { t: 'f64', v: Number.NaN }, { t: 'f64', v: Number.POSITIVE_INFINITY }, { t: 'f64', v: Number.NEGATIVE_INFINITY },
    { t: 'f64', v: -0 }, { t: 'f64', v: 1.5 }, { t: 'f64', v: 1e308 }, { t: 'f64', v: 5e-324 }, { t: 'f32', v: Number.NaN }, { t: 'f32', v: 3 },
  ),
  fc.bigInt({ min: i64Min, max: u64Max }).map((v): W => ({ t: 'int', v })),
  fc.integer({ min: -5, max: 70_000 }).map((v) => int(v)),
  fc.double().map((v): W => ({ t: 'f64', v })),
);

const nastyStringArb: fc.Arbitrary<W> = fc.oneof(
  fc.constantFrom<W>(
    str(''), str('__proto__'), str('constructor'), str('toString'), str('hasOwnProperty'), str('\ud800'), str('a\u0000b'),
    str('n1'), str('n2'), str('n3'), str('node:n1'), str('127.0.0.1:1'), str('1'), str('NaN'), str('quorum'),
    { t: 'str', v: 'a', wide: true }, { t: 'fill', n: 1025, byte: 0x6b, asStr: true }, { t: 'fill', n: 70_000, byte: 0x6b, asStr: true },
  ),
  fc.string({ maxLength: 40 }).map(str),
  fc.string({ unit: 'binary', maxLength: 20 }).map(str),
  fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b): W => ({ t: 'badstr', bytes: Uint8Array.from([0xff, ...b]) })),
);

const binaryArb: fc.Arbitrary<W> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes): W => ({ t: 'bin', bytes })),
  fc.constantFrom(0, 7, 8, 12, 31, 32, 33, 1000, 100_000, limits.valueBytesMax, limits.valueBytesMax + 1).map((n) => bin(n)),
);

const extArb: fc.Arbitrary<W> = fc.oneof(
  fc.record({ type: fc.integer({ min: -128, max: 127 }), data: fc.uint8Array({ maxLength: 20 }) }).map(({ type, data }): W => ({ t: 'ext', type, data })),
  // msgpackr's own: -1 timestamp, 0x70+ records, typed arrays, structures.
  fc.constantFrom<W>(
    { t: 'ext', type: -1, data: new Uint8Array(4) }, { t: 'ext', type: -1, data: new Uint8Array(8) }, { t: 'ext', type: -1, data: new Uint8Array(12) },
    { t: 'ext', type: 0, data: Uint8Array.of(1) }, { t: 'ext', type: 0x70, data: new Uint8Array(8) }, { t: 'ext', type: 0x74, data: new Uint8Array(16) },
    { t: 'undef' },
  ),
);

const scalarArb: fc.Arbitrary<W> = fc.oneof(
  { arbitrary: fc.constantFrom<W>(nil, { t: 'bool', v: true }, { t: 'bool', v: false }, { t: 'undef' }), weight: 2 },
  { arbitrary: nastyNumberArb, weight: 3 },
  { arbitrary: nastyStringArb, weight: 3 },
  { arbitrary: binaryArb, weight: 1 },
  { arbitrary: extArb, weight: 1 },
);

/** The shapes that stress a decoder rather than a validator. */
const hostileArb: fc.Arbitrary<W> = fc.oneof(
  fc.record({ depth: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(31, 32, 33, 1000, 100_000)), leaf: scalarArb, asMap: fc.boolean() })
    .map((r): W => ({ t: 'nest', ...r })),
  fc.record({ n: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.constantFrom(65_535, 65_536, 70_000)), item: scalarArb, asMap: fc.boolean() })
    .map((r): W => ({ t: 'rep', n: r.asMap ? Math.min(r.n, 40_000) : r.n, item: r.item, asMap: r.asMap })),
  fc.record({ count: fc.constantFrom(1, 2, 15, 16, 65_535, 2 ** 32 - 1), items: fc.array(scalarArb, { maxLength: 3 }), asMap: fc.boolean() })
    .map((r): W => ({ t: 'lie', ...r })),
  fc.array(fc.tuple(fc.oneof(nastyNumberArb, nastyStringArb, fc.constant(nil), fc.constant<W>(arrOf())), scalarArb), { maxLength: 4 })
    .map((entries): W => ({ t: 'map', entries })),
  fc.uint8Array({ maxLength: 16 }).map((bytes): W => ({ t: 'raw', bytes })),
);

/** Any value: JSON-like trees with the scalars above, or a hostile shape. */
export const anyValueArb: fc.Arbitrary<W> = fc.letrec<{ v: W }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: scalarArb, weight: 5 },
    { arbitrary: fc.array(tie('v'), { maxLength: 5 }).map((items): W => ({ t: 'arr', items })), weight: 2 },
    { arbitrary: fc.array(fc.tuple(fc.string({ maxLength: 12 }).map(str), tie('v')), { maxLength: 5 }).map((entries): W => ({ t: 'map', entries })), weight: 2 },
    { arbitrary: hostileArb, weight: 1 },
  ),
})).v;

// ---- near-valid bodies, field by field ----
//
// Most fields are valid most of the time, so a body gets past the first
// check and into the code behind it; each field is near-invalid (a boundary,
// the wrong type) sometimes and any value at all now and then.

/** Valid values 20 times in 23, near-invalid 2, anything 1: a body of ten
 * fields is then valid about a third of the time. */
const pick = (valid: fc.Arbitrary<W>, invalid?: fc.Arbitrary<W>): fc.Arbitrary<W> => fc.oneof(
  { arbitrary: valid, weight: 20 },
  ...(invalid ? [{ arbitrary: invalid, weight: 2 }] : []),
  { arbitrary: anyValueArb, weight: 1 },
);
const strs = (...v: string[]): fc.Arbitrary<W> => fc.constantFrom(...v).map(str);
const ints = (...v: (number | bigint)[]): fc.Arbitrary<W> => fc.constantFrom(...v).map(int);
const bool: fc.Arbitrary<W> = fc.boolean().map((v): W => ({ t: 'bool', v }));

export const fuzzKeys = ['fz:0', 'fz:1', 'fz:2', 'fz:3', 'fz:4', 'fz:5', 'fz:6', 'fz:7'];
const nodeIds = ['n1', 'n2', 'n3', 'n4', 'zz'];
const badNodeIds = ['', 'a'.repeat(65), 'n 1', 'node:n1', '__proto__'];

const keyArb = pick(strs(...fuzzKeys), fc.constantFrom<W>(
  str(''), { t: 'fill', n: 1024, byte: 0x6b, asStr: true }, { t: 'fill', n: 1025, byte: 0x6b, asStr: true }, str('\udc00x'), str('k\u0000'),
  str('d00000000x'), int(7), { t: 'bin', bytes: Uint8Array.of(0x66, 0x7a) },
));
/** An integer in [min, max] (as the field wants), or a boundary or a string of it. */
const intIn = (min: number, max: number): fc.Arbitrary<W> => pick(
  fc.integer({ min, max }).map(int),
  fc.oneof(nastyNumberArb, fc.integer({ min, max }).map((v): W => ({ t: 'str', v: String(v) })), fc.constantFrom<W>(int(min - 1), int(max + 1), { t: 'int', v: BigInt(min), wide: true })),
);
const actorArb = pick(strs('n1', 'n2', 'n3', 'x'), fc.oneof(strs(...badNodeIds), nastyStringArb));
const counterArb = pick(fc.integer({ min: 1, max: 20 }).map(int), fc.oneof(
  fc.constantFrom<W>(int(0), int(-1), int(2 ** 52), int(2 ** 52 + 1), int(2 ** 53), { t: 'f64', v: 1.5 }, { t: 'int', v: 3n, wide: true }), nastyNumberArb));
const tsArb = pick(fc.constant(int(Date.now())), fc.oneof(ints(0, -1, 2 ** 53, Date.now() + 3_600_000 * 24 * 365), nastyNumberArb));
const clockEntryArb = pick(fc.tuple(actorArb, counterArb, tsArb).map(([a, c, ts]) => arrOf(a, c, ts)),
  fc.tuple(actorArb, counterArb).map(([a, c]) => arrOf(a, c)));
export const clockArb: fc.Arbitrary<W> = pick(
  fc.array(clockEntryArb, { maxLength: 4 }).map((items): W => ({ t: 'arr', items })),
  fc.constantFrom(255, 256, 257, 5000).map((n): W => ({ t: 'rep', n, item: arrOf(str('n1'), int(1), int(1)), asMap: false })),
);
const widArb = pick(fc.uint8Array({ minLength: 12, maxLength: 12 }).map((bytes): W => ({ t: 'bin', bytes })), fc.constantFrom(0, 7, 33, 40).map((n) => bin(n, 7)));
const valueArb = pick(fc.uint8Array({ maxLength: 200 }).map((bytes): W => ({ t: 'bin', bytes })),
  fc.oneof(fc.constantFrom(0, limits.valueBytesMax, limits.valueBytesMax + 1).map((n) => bin(n)), fc.constant(nil), fc.constant(str('text'))));
const siblingArb = pick(
  fc.tuple(actorArb, counterArb, tsArb, intIn(0, 2), pick(ints(0, 1), fc.constantFrom<W>(int(2), { t: 'bool', v: true })), valueArb, fc.oneof(widArb, fc.constant(nil)))
    .map((f) => arrOf(...f)),
  fc.array(scalarArb, { maxLength: 8 }).map((items): W => ({ t: 'arr', items })),
);
/** [clock, siblings], mostly well formed. */
export const wireObjectArb: fc.Arbitrary<W> = pick(
  fc.tuple(clockArb, fc.array(siblingArb, { maxLength: 4 })).map(([c, s]) => arrOf(c, { t: 'arr', items: s })),
  // Many siblings (siblingsMax is 100) or an object that is not a pair.
  fc.oneof(
    fc.constantFrom(101, 150).map((n) => arrOf(arrOf(arrOf(str('n1'), int(n), int(1))),
      { t: 'arr', items: Array.from({ length: n }, (_, i) => arrOf(str('n1'), int(i + 1), int(1), int(0), int(0), bin(3), nil)) })),
    fc.constantFrom<W>(arrOf(), arrOf(arrOf()), arrOf(arrOf(), arrOf(), arrOf()), arrOf(nil, arrOf())),
  ),
);
const addrArb = pick(strs('127.0.0.1:1', '[::1]:7000', 'h:65535'), strs('x', '', 'a'.repeat(300), '127.0.0.1:99999', 'h:1\n'));
const memberArb = pick(fc.tuple(pick(strs(...nodeIds), strs(...badNodeIds)), addrArb).map(([id, addr]) => mapOf({ id, addr })));
export const ringArb: fc.Arbitrary<W> = pick(
  fc.record({
    version: intIn(1, 5), q: pick(ints(8, 64), ints(7, 0, 8192, 2 ** 32)), n: intIn(1, 7),
    owners: pick(fc.constantFrom(8, 64).map((n): W => ({ t: 'rep', n, item: str('n1'), asMap: false })),
      fc.constantFrom(63, 65, 100_000).map((n): W => ({ t: 'rep', n, item: str('n1'), asMap: false }))),
    members: pick(fc.array(memberArb, { maxLength: 3 }).map((items): W => ({ t: 'arr', items })),
      fc.constant<W>({ t: 'rep', n: 257, item: mapOf({ id: str('n1'), addr: str('h:1') }), asMap: false })),
  }).map((r) => mapOf(r)),
);
const heartbeatArb = pick(
  fc.tuple(pick(strs(...nodeIds), strs(...badNodeIds)),
    pick(fc.constant(int(Date.now() - 1000)), fc.oneof(ints(Date.now() + 120_000, 0, 2 ** 53), nastyNumberArb)), counterArb, intIn(0, 5))
    .map((f) => arrOf(...f)),
  fc.array(scalarArb, { maxLength: 5 }).map((items): W => ({ t: 'arr', items })),
);
const faultsFields: Record<string, fc.Arbitrary<W>> = {
  blocked: pick(fc.array(strs(...nodeIds), { maxLength: 3 }).map((items): W => ({ t: 'arr', items })), fc.constant(arrOf(int(1)))),
  delayMs: intIn(0, 50), jitterMs: intIn(0, 50),
  loss: pick(fc.constantFrom(0, 0.5, 1).map((v): W => ({ t: 'f64', v })), fc.constantFrom(1.5, -1, Number.NaN).map((v): W => ({ t: 'f64', v }))),
  links: pick(fc.constant(mapOf({ n2: mapOf({ delayMs: int(1), loss: { t: 'f64', v: 0 } }) })), fc.constant(mapOf({ n2: int(5) }))),
};
const putFields: Record<string, fc.Arbitrary<W>> = {
  key: keyArb, value: valueArb, vtype: intIn(0, 2), context: clockArb, consistency: pick(strs('eventual', 'quorum', 'strong'), strs('custom', 'bogus', '')),
  w: intIn(1, 3), lww: pick(bool, fc.constant(int(1))), timeoutMs: intIn(1, 3000), wid: widArb, forwarded: pick(bool, fc.constant(int(1))),
};

/** Field names and near-valid values per message type. */
const fieldsOf: ReadonlyMap<number, Record<string, fc.Arbitrary<W>>> = new Map<number, Record<string, fc.Arbitrary<W>>>([
  [MsgType.HELLO, {
    protocol: pick(fc.constant(int(protocolVersion)), fc.constantFrom<W>(int(0), int(2), str('1'), { t: 'f64', v: 1 }, { t: 'int', v: 1n, wide: true })),
    agent: pick(strs('fuzz'), fc.constant<W>({ t: 'fill', n: 201, byte: 0x61, asStr: true })),
    nonce: pick(fc.constant(bin(32, 1)), fc.constantFrom(31, 33, 0).map((n) => bin(n, 1))),
    user: pick(strs('alice'), strs('', 'a'.repeat(65), 'al ice', '__proto__')),
  }],
  [MsgType.AUTH, {
    method: pick(strs('secret', 'user'), strs('other')), as: pick(strs('admin', 'node:n1'), strs('', 'node:!')),
    proof: pick(fc.constant(bin(32, 2)), fc.constantFrom(31, 0).map((n) => bin(n, 2))), ringVersion: intIn(0, 5),
  }],
  [MsgType.GET, { key: keyArb, consistency: pick(strs('eventual', 'quorum', 'strong'), strs('custom', 'bogus', '')), r: intIn(1, 3), timeoutMs: intIn(1, 3000) }],
  [MsgType.PUT, putFields],
  [MsgType.DELETE, putFields],
  [MsgType.STATUS, { detail: pick(bool) }],
  [MsgType.RING_GET, {}],
  [MsgType.REPLICA_READ, { key: keyArb }],
  [MsgType.REPLICA_WRITE, { key: keyArb, object: wireObjectArb, hintFor: pick(strs(...nodeIds), strs(...badNodeIds)), acceptedMs: tsArb }],
  [MsgType.JOIN, { id: pick(strs(...nodeIds), strs(...badNodeIds)), addr: addrArb }],
  [MsgType.RING_PUSH, { ring: ringArb }],
  [MsgType.PING, {}],
  [MsgType.GOSSIP, {
    table: pick(fc.array(heartbeatArb, { maxLength: 4 }).map((items): W => ({ t: 'arr', items })),
      fc.constant<W>({ t: 'rep', n: 257, item: arrOf(str('x'), int(1), int(1), int(0)), asMap: false })),
    ringVersion: intIn(0, 9),
  }],
  [MsgType.REPLICA_REAP, { key: keyArb, object: wireObjectArb }],
  [MsgType.AAE_SEGMENTS, { partition: intIn(0, 63), q: pick(fc.constant(int(64)), ints(8, 65, 0)) }],
  [MsgType.AAE_KEYS, { segment: intIn(0, 65_535) }],
  [MsgType.ADMIN_FAULTS, faultsFields],
]);

/** Every request type the node accepts, and AUTH. */
export const fuzzedTypes: readonly number[] = [...requestTypes, MsgType.AUTH].sort((a, b) => a - b);

const extraFieldsArb: fc.Arbitrary<(readonly [W, W])[]> = fc.oneof(
  { arbitrary: fc.constant<(readonly [W, W])[]>([]), weight: 8 },
  { arbitrary: fc.array(fc.tuple(strs('__proto__', 'constructor', 'x', 'key', 'toJSON', 'then'), anyValueArb), { minLength: 1, maxLength: 2 }), weight: 1 },
);

function shapedBodyArb(type: number): fc.Arbitrary<W> {
  const fields = fieldsOf.get(type) ?? {};
  // Each field present 4 times in 5; the key and the value 19 in 20.
  const present = fc.tuple(...Object.entries(fields).map(([name, arb]) =>
    fc.option(arb.map((v) => [str(name), v] as const), { freq: name === 'key' || name === 'value' ? 20 : 5 })));
  return fc.tuple(present, extraFieldsArb).map(([p, e]): W => ({
    t: 'map', entries: [...p.filter((x): x is readonly [W, W] => x !== null), ...e],
  }));
}

// ---- frames ----

export type FrameKind = 'raw' | 'header' | 'value' | 'shaped';

export type FrameSpec =
  | { readonly kind: 'raw'; readonly bytes: Uint8Array }
  | { readonly kind: 'header'; readonly type: number; readonly id: number; readonly body: Uint8Array }
  | { readonly kind: 'value' | 'shaped'; readonly type: number; readonly id: number; readonly value: W };

export type Mode = 'prehello' | 'client' | 'admin';

export interface Batch {
  readonly mode: Mode;
  readonly frames: readonly FrameSpec[];
}

const idArb = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 1000 }), weight: 5 }, { arbitrary: fc.constantFrom(0, 0xffffffff), weight: 1 });
// AUTH is rare: each failed one is answered only after the login throttle's
// delay (250 ms, doubling per failure from one address up to 8 s).
const requestTypeList = [...requestTypes].sort((a, b) => a - b);
const typeArb = fc.oneof(
  { arbitrary: fc.constantFrom(...requestTypeList), weight: 40 },
  { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 10 },
  { arbitrary: fc.constant<number>(MsgType.AUTH), weight: 1 },
);

const rawFrameArb: fc.Arbitrary<FrameSpec> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  // A plausible header start: a small length, then anything.
  fc.tuple(fc.integer({ min: 0, max: 300 }), fc.uint8Array({ maxLength: 80 })).map(([len, rest]) => {
    const b = Buffer.alloc(4 + rest.length);
    b.writeUInt32BE(len, 0);
    b.set(rest, 4);
    return new Uint8Array(b);
  }),
).map((bytes): FrameSpec => ({ kind: 'raw', bytes }));

const headerFrameArb: fc.Arbitrary<FrameSpec> = fc.record({
  type: typeArb, id: idArb,
  body: fc.oneof({ arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 5 }, { arbitrary: fc.constantFrom(65_536, 2 * 1024 * 1024).map((n) => new Uint8Array(n).fill(0xc0)), weight: 1 }),
}).map((r): FrameSpec => ({ kind: 'header', ...r }));

const valueFrameArb: fc.Arbitrary<FrameSpec> = fc.record({ type: typeArb, id: idArb, value: anyValueArb }).map((r): FrameSpec => ({ kind: 'value', ...r }));

const shapedFrameArb: fc.Arbitrary<FrameSpec> = fc.tuple(
  fc.oneof({ arbitrary: fc.constantFrom(...requestTypeList), weight: 40 }, { arbitrary: fc.constant<number>(MsgType.AUTH), weight: 1 }), idArb)
  .chain(([type, id]) => shapedBodyArb(type).map((value): FrameSpec => ({ kind: 'shaped', type, id, value })));

export const frameArb: fc.Arbitrary<FrameSpec> = fc.oneof(
  { arbitrary: rawFrameArb, weight: 1 },
  { arbitrary: headerFrameArb, weight: 2 },
  { arbitrary: valueFrameArb, weight: 3 },
  { arbitrary: shapedFrameArb, weight: 6 },
);

export function batchArb(modes: readonly Mode[], framesMax: number): fc.Arbitrary<Batch> {
  return fc.record({ mode: fc.constantFrom(...modes), frames: fc.array(frameArb, { minLength: 1, maxLength: framesMax }) });
}

/** The bytes a frame spec puts on the wire. */
export function frameBytes(f: FrameSpec): Buffer {
  switch (f.kind) {
    case 'raw': return Buffer.from(f.bytes);
    case 'header': return headerAround(f.type, f.id, f.body);
    case 'value':
    case 'shaped': return headerAround(f.type, f.id, encodeW(f.value));
    default: {
      const never: never = f;
      throw new TypeError(`unknown frame spec ${String(never)}`);
    }
  }
}

function headerAround(type: number, id: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(9 + body.length);
  out.writeUInt32BE(5 + body.length, 0);
  out.writeUInt8(type & 0xff, 4);
  out.writeUInt32BE(id >>> 0, 5);
  out.set(body, 9);
  return out;
}

/** The class a frame is counted under. */
export function frameClass(mode: Mode, f: FrameSpec): string {
  if (f.kind === 'raw') return `${mode}/raw`;
  return `${mode}/${f.kind}`;
}

// ---------------------------------------------------------------------------
// Guards for the admin mode: a well-formed JOIN or a newer valid ring from a
// caller holding the cluster secret is a legitimate membership change, not a
// fuzz input; it would rewrite the ring the run measures. Such bodies are
// made harmless (the id made invalid, the ring version set to 1, never newer
// than the running ring) and counted.

const nodeIdPattern = /^[A-Za-z0-9_.-]{1,64}$/;

export function guardAdminFrame(f: FrameSpec): { frame: FrameSpec; guarded: boolean } {
  if (f.kind !== 'shaped' && f.kind !== 'value') return { frame: f, guarded: false };
  if (f.value.t !== 'map') return { frame: f, guarded: false };
  const entries = f.value.entries;
  if (f.type === MsgType.JOIN) {
    const id = entries.find(([k]) => k.t === 'str' && k.v === 'id');
    if (id && id[1].t === 'str' && nodeIdPattern.test(id[1].v)) {
      const fixed = entries.map(([k, v]) => (k === id[0] ? [k, str(`!${id[1].t === 'str' ? id[1].v : ''}`)] as const : [k, v] as const));
      return { frame: { ...f, value: { t: 'map', entries: fixed } }, guarded: true };
    }
  }
  if (f.type === MsgType.RING_PUSH) {
    const guardedEntries = entries.map(([k, v]) => {
      if (k.t !== 'str' || k.v !== 'ring' || v.t !== 'map') return [k, v] as const;
      if (!v.entries.some(([rk]) => rk.t === 'str' && rk.v === 'version')) return [k, v] as const;
      return [k, { t: 'map', entries: v.entries.map(([rk, rv]) => (rk.t === 'str' && rk.v === 'version' ? [rk, int(1)] as const : [rk, rv] as const)) } as W] as const;
    });
    const changed = guardedEntries.some(([, v], i) => v !== entries[i]![1]);
    return { frame: { ...f, value: { t: 'map', entries: guardedEntries } }, guarded: changed };
  }
  return { frame: f, guarded: false };
}

/** Whether a decoded RING_PUSH body would be adopted if its version were newer
 * (used by tests of the guard). */
export function wouldAdoptRing(body: unknown): boolean {
  return ringProblem((body as { ring?: unknown } | null)?.ring) === null;
}

// ---------------------------------------------------------------------------
// The raw connection

export interface Reply { readonly type: number; readonly id: number; readonly body: unknown }

type Wait = 'reply' | 'closed' | 'timeout';

export class RawConn {
  readonly socket: net.Socket;
  private readonly decoder = new FrameDecoder(limits.frameBytesMax);
  private readonly inbox: Reply[] = [];
  private waiter: (() => void) | undefined;
  closedByNode = false;
  closed = false;
  undecodable: string | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        this.undecodable = (err as Error).message;
        frames = [];
      }
      for (const f of frames) this.inbox.push(f);
      this.waiter?.();
    });
    socket.on('end', () => { if (!this.closed) this.closedByNode = true; this.waiter?.(); });
    socket.on('close', () => { if (!this.closed) this.closedByNode = true; this.closed = true; this.waiter?.(); });
    socket.on('error', () => { /* reset by the node: seen as a close */ });
  }

  static open(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect to ${host}:${port} timed out`)); }, timeoutMs);
      socket.once('connect', () => { clearTimeout(timer); resolve(new RawConn(socket)); });
      socket.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
  }

  get isOpen(): boolean {
    return !this.closed && !this.closedByNode;
  }

  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  halfClose(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /** Waits for a frame with request id `id` (or an ERROR with id 0, which is
   * about the connection), for the node to close, or for `ms`. */
  async waitReply(id: number, ms: number): Promise<{ outcome: Wait; reply?: Reply }> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex((f) => f.id === id || id === 0 || (f.type === MsgType.ERROR && f.id === 0));
      if (i >= 0) return { outcome: 'reply', reply: this.inbox.splice(i, 1)[0]! };
      if (this.closedByNode || this.closed) return { outcome: 'closed' };
      const left = deadline - Date.now();
      if (left <= 0) return { outcome: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.waiter = undefined; resolve(); }, left);
        this.waiter = () => { clearTimeout(timer); this.waiter = undefined; resolve(); };
      });
    }
  }

  /** Waits for the node to close the connection. */
  async waitClose(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closedByNode && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.waiter = undefined; resolve(); }, left);
        this.waiter = () => { clearTimeout(timer); this.waiter = undefined; resolve(); };
      });
    }
    return true;
  }

  /** Frames that arrived and were not waited for. */
  drainInbox(): Reply[] {
    return this.inbox.splice(0, this.inbox.length);
  }
}

/** Opens a connection in `mode`: nothing sent, HELLO answered, or HELLO and
 * AUTH with the cluster secret as admin answered. */
export async function openIn(mode: Mode, host: string, port: number, auth: DialAuth | undefined, timeoutMs: number,
  localAddress?: string): Promise<RawConn> {
  const conn = await RawConn.open(host, port, timeoutMs, localAddress);
  if (mode === 'prehello') return conn;
  const clientNonce = newNonce();
  conn.send(encodeFrame(MsgType.HELLO, 0, { protocol: protocolVersion, agent: 'tunekv-fuzz', nonce: clientNonce }));
  const hello = await conn.waitReply(0, timeoutMs);
  if (hello.reply?.type !== MsgType.HELLO_OK) {
    conn.destroy();
    throw new Error(`HELLO not answered with HELLO_OK (${describe(hello)})`);
  }
  if (mode === 'client') return conn;
  if (!auth || auth.kind !== 'secret') throw new TypeError('admin mode needs the cluster secret');
  const h = hello.reply.body as { nonce: Uint8Array; nodeId: string };
  const proof = secretProof(auth.key, 'client', clientNonce, h.nonce, auth.as, h.nodeId);
  conn.send(encodeFrame(MsgType.AUTH, 0, { method: 'secret', as: auth.as, proof }));
  const ok = await conn.waitReply(0, timeoutMs);
  if (ok.reply?.type !== MsgType.AUTH_OK) {
    conn.destroy();
    throw new Error(`AUTH not answered with AUTH_OK (${describe(ok)})`);
  }
  return conn;
}

function describe(w: { outcome: Wait; reply?: Reply }): string {
  if (w.outcome !== 'reply') return w.outcome;
  const b = w.reply!.body as { code?: string; message?: string } | null;
  return `${msgTypeName(w.reply!.type) ?? w.reply!.type}${b?.code ? ` ${b.code}: ${b.message}` : ''}`;
}

// ---------------------------------------------------------------------------
// Running a batch

export interface FuzzStats {
  frames: number;
  byClass: Record<string, number>;
  /** Shaped bodies (field names of their type) by message type. */
  shapedByType: Record<string, number>;
  /** Reply types, and ERROR replies by code. */
  replies: Record<string, number>;
  /** Connections the node closed (after a reply or without one). */
  closedByNode: number;
  connections: number;
  /** Frames answered by a close without a reply frame, by class. */
  closedWithoutReply: Record<string, number>;
  closedExamples: string[];
  /** Admin-mode bodies made harmless (see guardAdminFrame). */
  guarded: number;
  /** ADMIN_FAULTS that the node accepted (the faults are reset after the batch). */
  faultsAccepted: number;
  /** Replies our decoder refused. */
  undecodableReplies: number;
  /** INTERNAL errors: the node says an invariant broke. */
  internal: { type: string; message: string; frame: string }[];
}

export function newStats(): FuzzStats {
  return { frames: 0, byClass: {}, shapedByType: {}, replies: {}, closedByNode: 0, connections: 0, closedWithoutReply: {}, closedExamples: [], guarded: 0, faultsAccepted: 0, undecodableReplies: 0, internal: [] };
}

export interface Violation {
  readonly kind: 'hang' | 'no-close' | 'connect' | 'handshake';
  readonly frameIndex: number;
  readonly detail: string;
  /** Hex of the frame's bytes, to replay by hand. */
  readonly hex: string;
}

export interface BatchOptions {
  readonly host: string;
  readonly port: number;
  readonly auth?: DialAuth;
  /** How long a frame may go unanswered (AUTH gets authWaitMs: a failed login
   * is answered after the login throttle's delay, up to 8 s). */
  readonly replyWaitMs: number;
  readonly authWaitMs: number;
  readonly connectWaitMs: number;
  /** Dial from a different 127.x.y.z address per connection (Linux routes
   * all of 127/8 to loopback), so the login throttle, which counts failures
   * per address, does not turn the rare fuzzed AUTH into 8-second waits. */
  readonly spreadSources?: boolean;
  /** Called with each frame's class and the microseconds from sending it to
   * its reply or the close. */
  readonly latency?: (cls: string, micros: number) => void;
}

let sourceCounter = 0;

/** The next loopback source address, or undefined where only 127.0.0.1 works. */
export function nextLoopbackSource(spread: boolean | undefined, host: string): string | undefined {
  if (!spread || process.platform !== 'linux' || !host.startsWith('127.')) return undefined;
  // 127.10.1.1 to 127.249.250.7: 60,000 addresses, then around again.
  sourceCounter = (sourceCounter + 1) % (240 * 250);
  return `127.${10 + Math.floor(sourceCounter / 250)}.${(sourceCounter % 250) + 1}.${1 + (sourceCounter % 7)}`;
}

const bump = (m: Record<string, number>, k: string, n = 1): void => { m[k] = (m[k] ?? 0) + n; };

/** Sends a batch; returns the violations (empty when every frame was answered
 * or its connection closed in time). */
export async function runBatch(batch: Batch, o: BatchOptions, stats: FuzzStats): Promise<Violation[]> {
  const violations: Violation[] = [];
  let conn: RawConn | undefined;
  const faultsBefore = stats.faultsAccepted;
  try {
    for (const [i, original] of batch.frames.entries()) {
      let f = original;
      if (batch.mode === 'admin') {
        const g = guardAdminFrame(f);
        if (g.guarded) stats.guarded++;
        f = g.frame;
      }
      const bytes = frameBytes(f);
      const hex = bytes.length > 512 ? `${bytes.subarray(0, 512).toString('hex')}...(${bytes.length} bytes)` : bytes.toString('hex');
      if (!conn || !conn.isOpen) {
        conn?.destroy();
        try {
          conn = await openIn(batch.mode, o.host, o.port, o.auth, o.connectWaitMs, nextLoopbackSource(o.spreadSources, o.host));
          stats.connections++;
        } catch (err) {
          violations.push({ kind: batch.mode === 'prehello' ? 'connect' : 'handshake', frameIndex: i, detail: (err as Error).message, hex: '' });
          return violations;
        }
      }
      stats.frames++;
      bump(stats.byClass, frameClass(batch.mode, f));
      if (f.kind === 'shaped') bump(stats.shapedByType, msgTypeName(f.type) ?? String(f.type));
      const sentAt = process.hrtime.bigint();
      conn.send(bytes);
      if (f.kind === 'raw') conn.halfClose();
      const id = f.kind === 'raw' ? 0 : f.id;
      const type = f.kind === 'raw' ? -1 : f.type;
      // A request may legitimately take its own timeoutMs (under faults an
      // admin frame set, or a slow replica): wait that long and a margin.
      const ownTimeoutMs = requestTimeoutOf(f);
      const waitMs = Math.max(type === MsgType.AUTH || f.kind === 'raw' ? o.authWaitMs : o.replyWaitMs, ownTimeoutMs + 3000);
      const got = await conn.waitReply(id, waitMs);
      if (got.outcome !== 'timeout') o.latency?.(frameClass(batch.mode, f), Number((process.hrtime.bigint() - sentAt) / 1000n));
      if (conn.undecodable) { stats.undecodableReplies++; conn.undecodable = undefined; }
      if (got.outcome === 'timeout') {
        violations.push({ kind: 'hang', frameIndex: i, detail: `no reply and no close within ${waitMs} ms (${batch.mode}, ${f.kind}${type >= 0 ? `, type ${msgTypeName(type) ?? type}` : ''})`, hex });
        conn.destroy();
        conn = undefined;
        continue;
      }
      if (got.outcome === 'closed') {
        bump(stats.closedWithoutReply, frameClass(batch.mode, f));
        if (stats.closedExamples.length < 20) stats.closedExamples.push(`${frameClass(batch.mode, f)} ${bytes.length} B: ${hex.slice(0, 80)}`);
      }
      if (got.reply) {
        const r = got.reply;
        if (r.type === MsgType.ERROR) {
          const b = r.body as { code?: unknown; message?: unknown } | null;
          const code = typeof b?.code === 'string' ? b.code : '?';
          bump(stats.replies, `ERROR ${code}`);
          // The README: a frame that cannot be decoded, a request before
          // HELLO, another version or an unknown type gets an ERROR *and the
          // connection is closed*; so does a failed login (UNAUTHORIZED to
          // an AUTH). An ERROR with id 0 is about the connection (frame too
          // large, pool full). Wait for the close, so the next frame is not
          // sent into a closing socket. (An AUTH whose body is not a map is
          // answered INVALID_ARGUMENT and the connection stays open; it
          // still uses up the connection's one AUTH: counted, not a failure.)
          if (type === MsgType.AUTH && code !== 'UNAUTHORIZED' && code !== 'PROTOCOL_ERROR') bump(stats.replies, `(AUTH answered ${code}, connection kept)`);
          const mustClose = code === 'PROTOCOL_ERROR' || (r.id === 0 && id !== 0) || (type === MsgType.AUTH && code === 'UNAUTHORIZED');
          if (mustClose && !(await conn.waitClose(o.replyWaitMs))) {
            violations.push({ kind: 'no-close', frameIndex: i, detail: `ERROR ${code} (${String(b?.message)}) but the connection stayed open ${o.replyWaitMs} ms`, hex });
            conn.destroy();
          }
          // A frame sent with request id 0 cannot tell a connection-level
          // ERROR from its own: give the node a moment to close, and do not
          // hold it against it if it does not.
          if (!mustClose && id === 0) await conn.waitClose(200);
          if (code === 'INTERNAL' && stats.internal.length < 50) {
            stats.internal.push({ type: msgTypeName(type) ?? String(type), message: String(b?.message), frame: hex });
          }
        } else {
          bump(stats.replies, msgTypeName(r.type) ?? `type ${r.type}`);
          if (type === MsgType.ADMIN_FAULTS && r.type === MsgType.OK) stats.faultsAccepted++;
        }
      }
      // A raw frame half-closed the connection: let the node finish with it.
      if (f.kind === 'raw') {
        if (!(await conn.waitClose(o.replyWaitMs))) {
          violations.push({ kind: 'hang', frameIndex: i, detail: `connection not closed within ${o.replyWaitMs} ms after a half-close`, hex });
        }
      }
      if (conn.closedByNode) {
        stats.closedByNode++;
        conn.destroy();
        conn = undefined;
      }
    }
  } finally {
    conn?.destroy();
  }
  if (stats.faultsAccepted > faultsBefore) {
    // Undo the faults an admin-mode frame set: they would otherwise partition
    // the node or delay its peers for the rest of the run.
    const admin = await openIn('admin', o.host, o.port, o.auth, o.connectWaitMs);
    admin.send(encodeFrame(MsgType.ADMIN_FAULTS, 1, noFaultsBody));
    const r = await admin.waitReply(1, o.replyWaitMs);
    admin.destroy();
    if (r.reply?.type !== MsgType.OK) violations.push({ kind: 'hang', frameIndex: -1, detail: `resetting faults failed (${describe(r)})`, hex: '' });
  }
  return violations;
}

/** The timeoutMs a request frame asks for, if it is one a node accepts
 * (an integer from 1 to requestTimeoutMaxMs), else 0. */
export function requestTimeoutOf(f: FrameSpec): number {
  if ((f.kind !== 'shaped' && f.kind !== 'value') || f.value.t !== 'map') return 0;
  const entry = f.value.entries.find(([k]) => k.t === 'str' && k.v === 'timeoutMs');
  if (!entry) return 0;
  const v = entry[1];
  const n = v.t === 'int' ? Number(v.v) : v.t === 'f64' || v.t === 'f32' ? v.v : Number.NaN;
  return Number.isInteger(n) && n >= limits.requestTimeoutMinMs && n <= limits.requestTimeoutMaxMs ? n : 0;
}

/** A clean fault spec, to undo an ADMIN_FAULTS the fuzzer got accepted. */
export const noFaultsBody = { blocked: [], delayMs: 0, jitterMs: 0, loss: 0 };
