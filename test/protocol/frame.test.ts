import t from 'tap';
import { FrameDecoder, FrameError, encodeFrame } from '../../src/protocol/frame.js';
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

t.test('frames round-trip, whole or split at every byte', async (t) => {
  const a = encodeFrame(MsgType.GET, 7, { key: 'k', r: 2 });
  const b = encodeFrame(MsgType.PUT, 8, { key: 'k', value: Buffer.from([1, 2, 3]) });
  const both = Buffer.concat([a, b]);
  const whole = new FrameDecoder().push(both);
  t.same(whole.map((f) => [f.type, f.id]), [[MsgType.GET, 7], [MsgType.PUT, 8]]);
  t.same((whole[1]!.body as { value: Uint8Array }).value, Buffer.from([1, 2, 3]));
  for (let cut = 1; cut < both.length; cut++) {
    const d = new FrameDecoder();
    const frames = [...d.push(both.subarray(0, cut)), ...d.push(both.subarray(cut))];
    if (frames.length !== 2) t.fail(`split at ${cut} lost a frame`);
  }
  t.pass('every split point decodes both frames');
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
