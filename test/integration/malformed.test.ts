// Hostile and broken input over a real socket: each gets an error reply with
// a code (where one can be sent) and a close, and the node keeps serving.
import t from 'tap';
import net from 'node:net';
import { connect } from '../../src/index.js';
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js';
import { MsgType, protocolVersion } from '../../src/protocol/messages.js';
import { testCluster } from '../helpers/cluster.js';

interface Outcome { frames: { type: number; id: number; body: unknown }[]; closed: boolean }

/** Sends raw bytes (optionally half-closing) and reports what came back. */
function exchange(host: string, port: number, bytes: Buffer, end: boolean, waitMs = 3000): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const decoder = new FrameDecoder();
    const frames: Outcome['frames'] = [];
    const done = (closed: boolean) => { clearTimeout(timer); socket.destroy(); resolve({ frames, closed }); };
    const timer = setTimeout(() => done(false), waitMs);
    socket.on('data', (chunk) => { try { frames.push(...decoder.push(chunk)); } catch { /* ignore */ } });
    socket.on('close', () => done(true));
    socket.on('error', () => {});
    socket.on('connect', () => { socket.write(bytes); if (end) socket.end(); });
  });
}

const errorCode = (o: Outcome) => (o.frames.find((f) => f.type === MsgType.ERROR)?.body as { code?: string } | undefined)?.code;
const hello = encodeFrame(MsgType.HELLO, 0, { protocol: protocolVersion, agent: 'test' });

t.test('malformed input over real TCP', async (t) => {
  const cluster = await testCluster(t, { nodes: 1, n: 1 });
  const [host, portText] = cluster.hosts[0]!.split(':');
  const port = Number(portText);
  const kv = await connect({ hosts: cluster.hosts });
  t.teardown(() => kv.close());
  await kv.put('before', 'ok');

  const cases: [string, Buffer, boolean, (o: Outcome) => void][] = [
    ['garbage (an HTTP request)', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), false, (o) => {
      t.equal(errorCode(o), 'TOO_LARGE', 'its first four bytes read as a huge length: TOO_LARGE');
      t.ok(o.closed, 'then closed');
    }],
    ['an oversized length prefix', Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1]), false, (o) => {
      t.equal(errorCode(o), 'TOO_LARGE');
      t.ok(o.closed);
    }],
    ['a truncated frame, then end of stream', Buffer.concat([hello, encodeFrame(MsgType.GET, 5, { key: 'before' }).subarray(0, 12)]), true, (o) => {
      t.ok(o.frames.some((f) => f.type === MsgType.HELLO_OK), 'the complete HELLO was answered');
      t.equal(errorCode(o), 'PROTOCOL_ERROR', 'the half frame is reported');
      t.ok(o.closed);
    }],
    ['a body that is not msgpack', Buffer.concat([hello, Buffer.from([0, 0, 0, 7, MsgType.GET, 0, 0, 0, 3, 0x92, 0x01])]), false, (o) => {
      const err = o.frames.find((f) => f.type === MsgType.ERROR);
      t.equal(errorCode(o), 'PROTOCOL_ERROR');
      t.equal(err?.id, 3, 'the error carries the request id');
      t.ok(o.closed);
    }],
    ['a request before HELLO', encodeFrame(MsgType.GET, 1, { key: 'before' }), false, (o) => {
      t.equal(errorCode(o), 'PROTOCOL_ERROR');
      t.ok(o.closed);
    }],
    ['another protocol version', encodeFrame(MsgType.HELLO, 0, { protocol: 99, agent: 'future' }), false, (o) => {
      t.equal(errorCode(o), 'PROTOCOL_ERROR');
      t.ok(o.closed);
    }],
    ['an unknown message type', Buffer.concat([hello, encodeFrame(200, 4, {})]), false, (o) => {
      t.equal(errorCode(o), 'PROTOCOL_ERROR');
      t.ok(o.closed);
    }],
    ['a well-formed request with bad fields keeps the connection', Buffer.concat([hello, encodeFrame(MsgType.GET, 6, { key: 42 })]), false, (o) => {
      t.equal(errorCode(o), 'INVALID_ARGUMENT');
      t.notOk(o.closed, 'not a protocol error: the connection stays open');
    }],
    ['a 1 MiB put pipelined behind HELLO in one write is judged by the client limit, not the handshake one',
      Buffer.concat([hello, encodeFrame(MsgType.PUT, 7, { key: 'big', value: Buffer.alloc(1024 * 1024, 0x61), vtype: 0 })]), false, (o) => {
        t.ok(o.frames.some((f) => f.type === MsgType.PUT_REPLY && f.id === 7), `answered with PUT_REPLY (got ${o.frames.map((f) => f.type).join(',')})`);
        t.notOk(o.closed, 'the connection stays open');
      }],
    ['a 3 MiB put after HELLO is over clientFrameBytesMax', Buffer.concat([hello, encodeFrame(MsgType.PUT, 8, { key: 'huge', value: Buffer.alloc(3 * 1024 * 1024, 0x61) })]), false, (o) => {
      t.equal(errorCode(o), 'TOO_LARGE');
      t.ok(o.closed);
    }],
  ];
  for (const [name, bytes, end, check] of cases) {
    await t.test(name, async () => {
      check(await exchange(host!, port, bytes, end, end || name.includes('keeps') || name.includes('judged') ? 1500 : 3000));
      const got = await kv.get('before');
      t.same(got.values, ['ok'], 'the node still serves a normal client');
    });
  }
});
