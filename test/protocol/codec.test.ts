import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { Packr } from 'msgpackr';
import { WireBoundsError, clientBounds, pack, peerBounds, unpack } from '../../src/protocol/codec.js';
import type { DecodeBounds } from '../../src/protocol/codec.js';
import { limits } from '../../src/limits.js';

/** msgpackr alone, with the settings codec.ts uses: the reference decoder. */
const reference = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

const bytes = (...b: number[]): Buffer => Buffer.from(b);

function boundsError(fn: () => unknown): WireBoundsError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof WireBoundsError) return e;
    throw e;
  }
  return undefined;
}

/** `depth` arrays nested, the innermost holding `inner`. */
function nestedArrays(depth: number, inner: number[] = [0x00]): Buffer {
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from(inner)]);
}

/** An array32 header for `count` items, then the items. */
function array32(count: number, item: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = 0xdd;
  head.writeUInt32BE(count, 1);
  return Buffer.concat([head, Buffer.alloc(count * item.length).fill(item)]);
}

/** A fixstr, str 8 or str 16 holding `s` (ASCII). */
function str(s: string, header: 'fix' | 'str8' | 'str16' = 'fix'): Buffer {
  const body = Buffer.from(s, 'latin1');
  if (header === 'fix') return Buffer.concat([bytes(0xa0 | body.length), body]);
  if (header === 'str8') return Buffer.concat([bytes(0xd9, body.length), body]);
  return Buffer.concat([bytes(0xda, body.length >> 8, body.length & 0xff), body]);
}

const samplePut = {
  key: 'user:12345:profile', value: Buffer.from('a value of some bytes'), vtype: 1,
  context: [['n1', 1780000000000001, 1780000000000], ['n2', 42, -1]],
  consistency: 'quorum', timeoutMs: 5000, wid: Buffer.alloc(16, 7), lww: false, dot: null, ratio: 0.25,
};

t.test('nesting: 32 deep decodes, 33 deep is refused before msgpackr recurses', async (t) => {
  t.same(unpack(nestedArrays(32)), JSON.parse('['.repeat(32) + '0' + ']'.repeat(32)));
  t.match(boundsError(() => unpack(nestedArrays(33)))?.message, /^msgpack nesting deeper than 32$/);
  // An empty container at the limit still counts as a level.
  t.ok(Array.isArray(unpack(nestedArrays(31, [0x90]))));
  t.ok(boundsError(() => unpack(nestedArrays(32, [0x90]))));
  // Maps nest the same way: {a: {a: ... 0}}.
  const nestedMaps = (depth: number) => Buffer.concat([...Array.from({ length: depth }, () => bytes(0x81, 0xa1, 0x61)), bytes(0x00)]);
  t.ok(unpack(nestedMaps(32)));
  t.match(boundsError(() => unpack(nestedMaps(33)))?.message, /nesting deeper than 32/);
  // Explicit bounds replace the default.
  t.same(unpack(nestedArrays(3), { depthMax: 3, elementsMax: 10 }), [[[0]]]);
  t.ok(boundsError(() => unpack(nestedArrays(4), { depthMax: 3, elementsMax: 10 })));
  // The attack that crashed a node: 3,400 levels in 3.4 KB.
  t.match(boundsError(() => unpack(nestedArrays(3400)))?.message, /nesting deeper than 32/);
  t.match(boundsError(() => unpack(nestedArrays(1_000_000)))?.message, /nesting deeper than 32/);
});

t.test('elements: every value counts, keys and containers included', async (t) => {
  const tiny: DecodeBounds = { depthMax: 32, elementsMax: 10 };
  const arrayOf = (n: number) => pack(Array.from({ length: n }, () => 0));
  t.same(unpack(arrayOf(9), tiny), Array(9).fill(0), 'the array and 9 items are 10');
  t.match(boundsError(() => unpack(arrayOf(10), tiny))?.message, /^more than 10 msgpack elements$/);
  const mapOf = (n: number) => pack(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])));
  t.ok(unpack(mapOf(4), tiny), 'the map, 4 keys and 4 values are 9');
  t.ok(boundsError(() => unpack(mapOf(5), tiny)), '11 is too many');
  t.ok(unpack(pack([[1, 2], [3, 4]]), { depthMax: 2, elementsMax: 7 }), '1 + 2 arrays + 4 numbers');
  t.ok(boundsError(() => unpack(pack([[1, 2], [3, 4]]), { depthMax: 2, elementsMax: 6 })));
  t.ok(unpack(pack(5), { depthMax: 1, elementsMax: 1 }), 'a lone scalar is one element');
  // The client budget, exactly at and just past it.
  const atLimit = array32(limits.clientWireElementsMax - 1, bytes(0x00));
  t.equal((unpack(atLimit, clientBounds) as unknown[]).length, limits.clientWireElementsMax - 1);
  const pastLimit = array32(limits.clientWireElementsMax, bytes(0x00));
  t.match(boundsError(() => unpack(pastLimit, clientBounds))?.message, /^more than 65536 msgpack elements$/);
  t.ok(unpack(pastLimit, peerBounds), 'peers have a larger budget');
});

t.test('a body of many empty arrays is refused before it expands', async (t) => {
  // The 64 MiB attack, scaled down: 200k empty arrays in one array32.
  const attack = array32(200_000, bytes(0x90));
  const smallerBudget: DecodeBounds = { depthMax: limits.wireDepthMax, elementsMax: 100_000 };
  const started = process.hrtime.bigint();
  t.match(boundsError(() => unpack(attack, smallerBudget))?.message, /more than 100000 msgpack elements/);
  t.comment(`refused in ${Number(process.hrtime.bigint() - started) / 1e6} ms (the header alone decides)`);
  // A declared count far past the budget is refused from the header alone.
  t.ok(boundsError(() => unpack(bytes(0xdd, 0xff, 0xff, 0xff, 0xff))));
  // The literal shape: 0x90 repeated is one empty array and trailing bytes.
  t.match(boundsError(() => unpack(Buffer.alloc(1 << 20, 0x90)))?.message, /trailing bytes/);
});

t.test('every extension type is refused, except msgpackr\'s 3-byte undefined', async (t) => {
  const exts: [string, Buffer][] = [];
  for (const type of [5, -1, 0, 0x72, 0x62, 127, -128]) {
    const tb = type & 0xff;
    exts.push(
      [`fixext 1 type ${type}`, bytes(0xd4, tb, 1)],
      [`fixext 2 type ${type}`, bytes(0xd5, tb, 1, 2)],
      [`fixext 4 type ${type}`, bytes(0xd6, tb, 1, 2, 3, 4)],
      [`fixext 8 type ${type}`, Buffer.concat([bytes(0xd7, tb), Buffer.alloc(8)])],
      [`fixext 16 type ${type}`, Buffer.concat([bytes(0xd8, tb), Buffer.alloc(16)])],
      [`ext 8 type ${type}`, bytes(0xc7, 2, tb, 1, 2)],
      [`ext 16 type ${type}`, bytes(0xc8, 0, 2, tb, 1, 2)],
      [`ext 32 type ${type}`, bytes(0xc9, 0, 0, 0, 2, tb, 1, 2)],
    );
  }
  for (const [name, ext] of exts) {
    const type = (ext[0] === 0xc7 ? ext[2]! : ext[0] === 0xc8 ? ext[3]! : ext[0] === 0xc9 ? ext[5]! : ext[1]!) << 24 >> 24;
    const message = `msgpack extension type ${type} is not allowed`;
    t.equal(boundsError(() => unpack(ext))?.message, message, name);
    t.equal(boundsError(() => unpack(Buffer.concat([bytes(0x92, 0x01), ext])))?.message, message, `${name} inside an array`);
    t.equal(boundsError(() => unpack(Buffer.concat([bytes(0x81, 0xa1, 0x76), ext])))?.message, message, `${name} as a map value`);
  }
  t.equal(exts.length, 56);
  t.match(boundsError(() => unpack(pack(new Date(5))))?.message, /extension type -1/, 'a Date is a timestamp extension');
  // Our own client sends `r: undefined`, which msgpackr packs as d4 00 00.
  t.same(unpack(bytes(0xd4, 0x00, 0x00)), undefined);
  const withUndefined = pack({ key: 'k', r: undefined });
  t.ok(withUndefined.includes(bytes(0xd4, 0x00, 0x00)), 'msgpackr still encodes undefined this way');
  t.same(unpack(withUndefined), { key: 'k', r: undefined });
  t.ok(boundsError(() => unpack(bytes(0xd4, 0x00))), 'a truncated undefined');
});

t.test('map keys must be strings, and never __proto__', async (t) => {
  for (const key of [bytes(0x01), bytes(0xc0), bytes(0xc3), bytes(0x90), bytes(0x80), bytes(0xc4, 1, 0x61), bytes(0xcb, 0, 0, 0, 0, 0, 0, 0, 0)]) {
    const body = Buffer.concat([bytes(0x81), key, bytes(0x00)]);
    t.equal(boundsError(() => unpack(body))?.message, 'msgpack map key is not a string', `key ${key.toString('hex')}`);
  }
  t.ok(boundsError(() => unpack(pack(new Map([[1, 'a']])))), 'a Map with a number key');
  for (const header of ['fix', 'str8', 'str16'] as const) {
    const body = Buffer.concat([bytes(0x82), str('a'), bytes(0x01), str('__proto__', header), pack({ polluted: 'a secret' })]);
    const e = boundsError(() => unpack(body));
    t.equal(e?.message, 'msgpack map key "__proto__" is not allowed', `${header} key`);
    t.notMatch(e?.message, /secret/, 'the message does not quote the input');
  }
  t.same(unpack(Buffer.concat([bytes(0x82), str('__proto_'), bytes(1), str('__proto__x'), bytes(2)])), { __proto_: 1, __proto__x: 2 });
  t.same(unpack(Buffer.concat([bytes(0x81), str('constructor'), bytes(1)])), { constructor: 1 });
  t.same(unpack(Buffer.concat([bytes(0x81), str('key', 'str16'), bytes(1)])), { key: 1 }, 'long string headers are keys too');
});

t.test('maps decode to plain objects, never Map', async (t) => {
  for (const value of [{ a: 1 }, [{ a: { b: {} } }], new Map([['a', 1]])]) {
    const out = unpack(pack(value));
    const objects: unknown[] = [out];
    while (objects.length > 0) {
      const o = objects.pop();
      if (typeof o !== 'object' || o === null) continue;
      t.notOk(o instanceof Map);
      if (!Array.isArray(o)) t.equal(Object.getPrototypeOf(o), Object.prototype);
      objects.push(...Object.values(o));
    }
  }
});

t.test('reserved byte, truncation, trailing bytes and lengths past the input', async (t) => {
  t.equal(boundsError(() => unpack(bytes(0xc1)))?.message, 'msgpack byte 0xc1 is reserved');
  t.equal(boundsError(() => unpack(bytes(0x92, 0x01, 0xc1)))?.message, 'msgpack byte 0xc1 is reserved');
  t.equal(boundsError(() => unpack(bytes(0x81, 0xa1, 0x61, 0xc1)))?.message, 'msgpack byte 0xc1 is reserved');
  t.match(boundsError(() => unpack(Buffer.alloc(0)))?.message, /truncated/);

  const sample = pack(samplePut);
  t.same(unpack(sample), reference.unpack(sample));
  for (let cut = 0; cut < sample.length; cut++) {
    const e = boundsError(() => unpack(sample.subarray(0, cut)));
    if (!e || !/^msgpack input is truncated at byte \d+$/.test(e.message)) t.fail(`a cut at ${cut} was not refused as truncated`);
  }
  t.pass(`every one of ${sample.length} cuts is refused as truncated`);

  t.equal(boundsError(() => unpack(Buffer.concat([sample, bytes(0x00)])))?.message, '1 trailing byte after the msgpack value');
  const twoValues = Buffer.concat([pack('a'), pack('a secret')]);
  const e = boundsError(() => unpack(twoValues));
  t.equal(e?.message, '9 trailing bytes after the msgpack value');
  t.notMatch(e?.message, /secret/);

  for (const [name, b] of [
    ['str 32 of 4 GiB', bytes(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61)],
    ['bin 32 of 4 GiB', bytes(0xc6, 0xff, 0xff, 0xff, 0xff, 0x61)],
    ['str 8 past the end', bytes(0xd9, 0x05, 0x61)],
    ['bin 16 past the end', bytes(0xc5, 0x01, 0x00, 0x61)],
    ['fixstr past the end', bytes(0xa5, 0x61)],
    ['float 64 cut short', bytes(0xcb, 0, 0, 0)],
    ['array 16 header cut short', bytes(0xdc, 0x00)],
    ['a map missing its value', bytes(0x81, 0xa1, 0x61)],
    ['ext 32 header cut short', bytes(0xc9, 0, 0)],
  ] as const) {
    t.match(boundsError(() => unpack(b))?.message, /truncated/, name);
  }
  // With a budget larger than the input, a huge declared count is truncation.
  t.match(boundsError(() => unpack(bytes(0xdd, 0xff, 0xff, 0xff, 0xff, 0x00), { depthMax: 32, elementsMax: 2 ** 40 }))?.message, /truncated/);
});

t.test('a 1 MiB value is one bin, skipped in O(1)', async (t) => {
  const value = Buffer.alloc(1024 * 1024, 0xc1); // reserved bytes inside a bin are data
  const out = unpack(pack({ key: 'k', value })) as { value: Uint8Array };
  t.ok(Buffer.from(out.value).equals(value));
  t.ok(unpack(pack({ key: 'k', value }), { depthMax: 1, elementsMax: 5 }), 'one map, two keys, two values');
});

t.test('bounds that make no sense are a TypeError', async (t) => {
  for (const bounds of [{ depthMax: 0, elementsMax: 1 }, { depthMax: 1, elementsMax: -1 }, { depthMax: 1.5, elementsMax: 1 }, { depthMax: NaN, elementsMax: 1 }]) {
    t.throws(() => unpack(pack(1), bounds), TypeError);
  }
  t.same(clientBounds, { depthMax: limits.wireDepthMax, elementsMax: limits.clientWireElementsMax });
  t.same(peerBounds, { depthMax: limits.wireDepthMax, elementsMax: limits.peerWireElementsMax });
  t.ok(Object.isFrozen(clientBounds) && Object.isFrozen(peerBounds));
});

// ---- properties ----

/** JSON-ish values as they travel: maps with string keys, arrays, strings,
 * numbers, booleans, null, bytes, undefined. */
const wireValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, undefined, 0, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 52, 0.5),
    fc.integer(),
    fc.double({ noNaN: true }),
    fc.string(),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.array(tie('value'), { maxLength: 6 }),
    fc.dictionary(fc.string().filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 6, noNullPrototype: true }),
  ),
})).value;

/** Containers open at the deepest point, and values in all (the scan's rules,
 * restated with recursion: fine in a test, never on a request path). */
function measure(v: unknown): { depth: number; elements: number } {
  if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return { depth: 0, elements: 1 };
  const children = Array.isArray(v) ? v : Object.values(v);
  const keys = Array.isArray(v) ? 0 : children.length;
  let depth = 0;
  let elements = 1 + keys;
  for (const c of children) {
    const m = measure(c);
    depth = Math.max(depth, m.depth);
    elements += m.elements;
  }
  return { depth: depth + 1, elements };
}

t.test('property: within bounds, unpack(pack(v)) equals msgpackr\'s own result', async (t) => {
  fc.assert(fc.property(wireValue, (v) => {
    const b = pack(v);
    return isDeepStrictEqual(unpack(b), reference.unpack(b)) && isDeepStrictEqual(unpack(b, clientBounds), reference.unpack(b));
  }), { numRuns: 2000 });
  t.pass('2000 values round-trip');
});

t.test('property: the bounds are exact, depth and elements counted as documented', async (t) => {
  fc.assert(fc.property(wireValue, (v) => {
    const b = pack(v);
    const { depth, elements } = measure(v);
    const depthMax = Math.max(depth, 1);
    unpack(b, { depthMax, elementsMax: elements });
    if (depth > 1 && !boundsError(() => unpack(b, { depthMax: depth - 1, elementsMax: elements }))) return false;
    if (elements > 1 && !boundsError(() => unpack(b, { depthMax, elementsMax: elements - 1 }))) return false;
    return true;
  }), { numRuns: 2000 });
  t.pass('2000 values decode at their exact bounds and fail one below');
});

/** Inputs shaped like msgpack: valid encodings with bytes changed, cut,
 * inserted or appended, plus raw noise. */
const hostileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.tuple(wireValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.boolean())
    .map(([v, edits, cut, doCut]) => {
      const b = Buffer.from(pack(v));
      for (const [at, byte] of edits) b[at % b.length] = byte;
      return doCut ? b.subarray(0, cut % (b.length + 1)) : b;
    }),
  fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.constantFrom(0x91, 0x81, 0xdc, 0xdd, 0xde, 0x90, 0xa1))
    .map(([n, fill]) => Buffer.alloc(n, fill)),
);

t.test('property: any bytes either decode or throw WireBoundsError, quickly', async (t) => {
  let decoded = 0;
  let refused = 0;
  const started = Date.now();
  fc.assert(fc.property(hostileBytes, (b) => {
    try {
      const out = unpack(b);
      // What the scan lets through, msgpackr decodes the same way on its own.
      if (!isDeepStrictEqual(out, reference.unpack(b))) return false;
      decoded++;
    } catch (e) {
      if (!(e instanceof WireBoundsError)) throw e;
      refused++;
    }
    return true;
  }), { numRuns: 5000 });
  t.comment(`${decoded} decoded, ${refused} refused in ${Date.now() - started} ms`);
  t.ok(decoded > 0 && refused > 0, 'both outcomes were exercised');
});
