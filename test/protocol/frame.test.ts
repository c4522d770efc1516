import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { FrameDecoder, FrameError, encodeFrame, frameHeaderBytes, frameLimitFor } from '../../src/protocol/frame.js';
import type { Frame } from '../../src/protocol/frame.js';
import { clientBounds, pack } from '../../src/protocol/codec.js';
import { limits } from '../../src/limits.js';
import { MsgType } from '../../src/protocol/messages.js';
import { decodeObject, encodeObject, objectFromWire } from '../../src/protocol/object-codec.js';
import { update } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';

function frameError(fn: () => unknown): FrameError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof FrameError) return e;
    throw e;
  }
  return undefined;
}

/** Feeds `stream` cut at `cuts` (sorted offsets) and returns every frame. */
function feed(stream: Buffer, cuts: number[], d = new FrameDecoder()): { frames: Frame[]; pending: number } {
  const frames: Frame[] = [];
  let from = 0;
  for (const cut of [...cuts, stream.length]) {
    frames.push(...d.push(stream.subarray(from, cut)));
    from = cut;
  }
  return { frames, pending: d.pendingBytes };
}

/** A frame header with no body (the body decodes as null). */
function emptyFrame(type: number, id: number): Buffer {
  const b = Buffer.alloc(frameHeaderBytes);
  b.writeUInt32BE(frameHeaderBytes - 4, 0);
  b.writeUInt8(type, 4);
  b.writeUInt32BE(id, 5);
  return b;
}

/** A frame whose body is `body` as given (not packed here). */
function rawFrame(type: number, id: number, body: Buffer): Buffer {
  const frame = Buffer.concat([emptyFrame(type, id), body]);
  frame.writeUInt32BE(frame.length - 4, 0);
  return frame;
}

const streamOfFrames = Buffer.concat([
  encodeFrame(MsgType.GET, 7, { key: 'k', r: 2 }),
  encodeFrame(MsgType.PUT, 8, { key: 'k', value: Buffer.from([1, 2, 3]), r: undefined }),
  emptyFrame(MsgType.STATUS, 9),
  encodeFrame(MsgType.PUT, 0xffffffff, { key: 'big', value: Buffer.alloc(5000, 0x5a) }),
  encodeFrame(MsgType.OK, 10, null),
]);
const expectedFrames = new FrameDecoder().push(streamOfFrames);

t.test('frames round-trip, whole or split at every byte', async (t) => {
  t.same(expectedFrames.map((f) => [f.type, f.id]), [[MsgType.GET, 7], [MsgType.PUT, 8], [MsgType.STATUS, 9], [MsgType.PUT, 0xffffffff], [MsgType.OK, 10]]);
  t.same((expectedFrames[1]!.body as { value: Uint8Array }).value, Buffer.from([1, 2, 3]));
  t.equal(expectedFrames[2]!.body, null);
  for (let cut = 0; cut <= streamOfFrames.length; cut++) {
    const { frames, pending } = feed(streamOfFrames, [cut]);
    if (pending !== 0 || !isDeepStrictEqual(frames, expectedFrames)) t.fail(`split at ${cut} changed the frames`);
  }
  t.pass('every split point decodes the same frames');
  const { frames } = feed(streamOfFrames, Array.from({ length: streamOfFrames.length }, (_, i) => i));
  t.strictSame(frames, expectedFrames, 'one byte at a time');
});

t.test('property: any chunking yields the same frames', async (t) => {
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 0, max: streamOfFrames.length }), { maxLength: 40 }), (cuts) => {
    cuts.sort((a, b) => a - b);
    const { frames, pending } = feed(streamOfFrames, cuts);
    return pending === 0 && isDeepStrictEqual(frames, expectedFrames);
  }), { numRuns: 500 });
  t.pass('500 random chunkings decode the same frames');
});

t.test('a 32 MiB frame in 64 KiB chunks is decoded in linear time', async (t) => {
  const value = Buffer.alloc(32 * 1024 * 1024 - 64, 0x61);
  const frame = encodeFrame(MsgType.REPLICA_WRITE, 3, { key: 'k', value });
  const d = new FrameDecoder();
  const frames: Frame[] = [];
  const chunk = 64 * 1024;
  const started = process.hrtime.bigint();
  for (let at = 0; at < frame.length; at += chunk) frames.push(...d.push(frame.subarray(at, at + chunk)));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.comment(`${frame.length} bytes in ${Math.ceil(frame.length / chunk)} chunks decoded in ${ms.toFixed(1)} ms`);
  t.equal(frames.length, 1);
  t.equal(frames[0]!.id, 3);
  t.ok(Buffer.from((frames[0]!.body as { value: Uint8Array }).value).equals(value));
  t.equal(d.pendingBytes, 0);
});

t.test('a frame dribbled a byte at a time is held in few chunks', async (t) => {
  const frame = encodeFrame(MsgType.PUT, 5, { key: 'k', value: Buffer.alloc(256 * 1024, 0x62) });
  const d = new FrameDecoder();
  // A peek at the private chunk list: what is bounded here is memory, and
  // only the list shows it (a Buffer per byte would cost ~100x the frame).
  const held = () => (d as unknown as { chunks: Buffer[] }).chunks.length;
  let most = 0;
  const frames: Frame[] = [];
  for (let at = 0; at < frame.length; at++) {
    frames.push(...d.push(frame.subarray(at, at + 1)));
    most = Math.max(most, held());
  }
  t.equal(frames.length, 1);
  t.ok(most <= frame.length / 4096 + 2, `at most ${most} chunks held for ${frame.length} bytes`);
  t.equal(held(), 0);
});

t.test('frame limits: per stage, raised after the handshake, checked before buffering', async (t) => {
  t.equal(frameLimitFor('handshake'), limits.handshakeFrameBytesMax);
  t.equal(frameLimitFor('client'), limits.clientFrameBytesMax);
  t.equal(frameLimitFor('peer'), limits.frameBytesMax);
  const d = new FrameDecoder(frameLimitFor('handshake'));
  const big = encodeFrame(MsgType.PUT, 4, { key: 'k', value: Buffer.alloc(100 * 1024) });
  // The length prefix split 2 + 2: refused as soon as the 4th byte arrives.
  t.same(d.push(big.subarray(0, 2)), []);
  const e = frameError(() => d.push(big.subarray(2, 4)));
  t.equal(e?.code, 'TOO_LARGE');
  t.match(e?.message, new RegExp(`exceeds the limit of ${limits.handshakeFrameBytesMax}`));
  const raised = new FrameDecoder(frameLimitFor('handshake'));
  raised.setFrameBytesMax(frameLimitFor('client'));
  t.equal(feed(big, [1, 4, 9, 70_000], raised).frames.length, 1, 'accepted once the limit is raised');
  t.throws(() => new FrameDecoder(0), TypeError);
  t.throws(() => raised.setFrameBytesMax(Number.NaN), TypeError);
  t.throws(() => raised.setFrameBytesMax(2 ** 40), TypeError);
});

t.test('bodies out of bounds are protocol errors naming the request id', async (t) => {
  const manyItems = encodeFrame(MsgType.PUT, 21, { key: 'k', list: Array(limits.clientWireElementsMax).fill(0) });
  t.equal(new FrameDecoder().push(manyItems).length, 1, 'peer bounds by default');
  const client = new FrameDecoder(frameLimitFor('client'));
  client.setBounds(clientBounds);
  const e = frameError(() => client.push(manyItems));
  t.equal(e?.code, 'PROTOCOL_ERROR');
  t.equal(e?.id, 21);
  t.match(e?.message, /more than 65536 msgpack elements/);
  // The 3.4 KB frame that used to crash a node later.
  const deep = rawFrame(MsgType.GET, 22, Buffer.concat([Buffer.alloc(3400, 0x91), Buffer.from([0xc0])]));
  const d = frameError(() => new FrameDecoder().push(deep));
  t.equal(d?.code, 'PROTOCOL_ERROR');
  t.equal(d?.id, 22);
  t.match(d?.message, /nesting deeper than 32/);
  // Empty arrays by the hundred thousand (the 64 MiB attack, scaled down).
  const emptyArrays = Buffer.concat([Buffer.from([0xdd, 0, 0x03, 0x0d, 0x40]), Buffer.alloc(200_000, 0x90)]);
  const attack = rawFrame(MsgType.GOSSIP, 23, emptyArrays);
  const small = new FrameDecoder();
  small.setBounds({ depthMax: limits.wireDepthMax, elementsMax: 100_000 });
  t.match(frameError(() => small.push(attack))?.message, /more than 100000 msgpack elements/);
  t.equal(new FrameDecoder().push(attack).length, 1, 'within the peer budget it decodes');
  const ext = frameError(() => new FrameDecoder().push(rawFrame(MsgType.GET, 24, pack(new Date(0)))));
  t.match(ext?.message, /extension type -1 is not allowed/);
  t.throws(() => small.setBounds({ depthMax: 0, elementsMax: 1 }), TypeError);
});

t.test('an oversized length prefix is refused before allocating', async (t) => {
  const d = new FrameDecoder(1024);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(0xfffffff0, 0);
  t.equal(frameError(() => d.push(header))?.code, 'TOO_LARGE');
});

t.test('a length shorter than a header, and a body that is not msgpack, are protocol errors', async (t) => {
  const short = Buffer.from([0, 0, 0, 2, 1, 0]);
  t.equal(frameError(() => new FrameDecoder().push(short))?.code, 'PROTOCOL_ERROR');
  const bad = Buffer.from([0, 0, 0, 7, 10, 0, 0, 0, 9, 0x92, 0x01]); // an array of 2 with one element
  const e = frameError(() => new FrameDecoder().push(bad));
  t.equal(e?.code, 'PROTOCOL_ERROR');
  t.equal(e?.id, 9, 'the error names the request id when the header was readable');
});

t.test('a partial frame is held until complete', async (t) => {
  const f = encodeFrame(MsgType.STATUS, 1, {});
  const d = new FrameDecoder();
  t.same(d.push(f.subarray(0, 6)), []);
  t.equal(d.pendingBytes, 6);
  t.equal(d.push(f.subarray(6)).length, 1);
  t.equal(d.pendingBytes, 0);
});

t.test('stored objects round-trip and malformed ones are refused', async (t) => {
  const o = update(undefined, { actor: 'n1', value: Buffer.from('v'), vtype: 1, context: emptyClock, nowMs: 5, lww: false, wid: null });
  const back = decodeObject(encodeObject(o));
  t.same(back.clock, o.clock);
  t.same(back.siblings.map((s) => [s.actor, s.counter, s.tsMs, Buffer.from(s.value!).toString()]), [['n1', 5000, 5, 'v']]);
  t.throws(() => objectFromWire('x'), /object is not/);
  t.throws(() => objectFromWire([[], [['n1', 1, 0, 1, 0]]]), /7-element/);
  t.throws(() => objectFromWire([[], [['n1', 1, 0, 1, 0, null, 'not bytes']]]), /malformed/);
  t.throws(() => objectFromWire([[], [['n1', 2, 0, 1, 0, null, null], ['n1', 1, 0, 1, 0, null, null]]]), /sorted/);
});
