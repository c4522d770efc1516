// The client side of a connection against a scripted node (a plain TCP
// server speaking frames): requests past inFlightMax wait in a bounded
// queue instead of being sent to be refused OVERLOADED (red team: 500
// concurrent puts from one client got 116 OVERLOADED); a queued request
// keeps its deadline and can be forgotten (an abort) without being sent;
// and a node that answers HELLO_OK or ERROR without a body is a clear
// PROTOCOL_ERROR, not a TypeError's text or INTERNAL.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { RpcConnection } from '../../src/io/connection.js';
import type { RpcOptions } from '../../src/io/connection.js';
import { TuneKvError } from '../../src/errors.js';
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js';
import type { Frame } from '../../src/protocol/frame.js';
import { MsgType } from '../../src/protocol/messages.js';

interface Script {
  /** The answer to HELLO (type, body). */
  hello?: [number, unknown];
  /** Called with each request frame and a function that answers it. */
  onRequest?(f: Frame, answer: (type: number, body: unknown) => void): void;
}

/** A node that answers HELLO as scripted and hands requests to the script. */
async function scriptedNode(t: Test, script: Script): Promise<{ port: number; received: Frame[] }> {
  const received: Frame[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    const decoder = new FrameDecoder();
    s.on('data', (chunk) => {
      for (const f of decoder.push(chunk)) {
        if (f.type === MsgType.HELLO) {
          const [type, body] = script.hello ?? [MsgType.HELLO_OK, { protocol: 1, nodeId: 'fake', ringVersion: 0 }];
          s.write(encodeFrame(type, 0, body));
          continue;
        }
        received.push(f);
        script.onRequest?.(f, (type, body) => { if (!s.destroyed) s.write(encodeFrame(type, f.id, body)); });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return { port: (server.address() as AddressInfo).port, received };
}

function dial(t: Test, port: number, extra: Partial<RpcOptions> = {}): RpcConnection {
  const conn = new RpcConnection({ host: '127.0.0.1', port, agent: 'test', connectTimeoutMs: 2000, ...extra });
  t.teardown(() => conn.close());
  return conn;
}

type Outcome = { ok: true; body: unknown } | { ok: false; err: TuneKvError };

function ask(conn: RpcConnection, body: unknown, timeoutMs = 10_000): { id: number; done: Promise<Outcome> } {
  let id = 0;
  const done = new Promise<Outcome>((resolve) => {
    id = conn.request(MsgType.GET, body, timeoutMs, (err, _type, reply) => resolve(err ? { ok: false, err } : { ok: true, body: reply }));
  });
  return { id, done };
}

/** Resolves once `cond()` holds (checked as frames arrive). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

t.test('past inFlightMax requests wait in the client, never more than inFlightMax on the wire, and all succeed', async (t) => {
  const held: Array<() => void> = [];
  const node = await scriptedNode(t, { onRequest: (f, answer) => held.push(() => answer(MsgType.GET_REPLY, { n: (f.body as { n: number }).n })) });
  const conn = dial(t, node.port, { inFlightMax: 8, queuedMax: 100 });
  const calls = Array.from({ length: 50 }, (_, n) => ask(conn, { n }));
  await until(() => node.received.length === 8);
  // The node holds every reply: nothing more may be sent until one comes.
  await new Promise((r) => setTimeout(r, 100));
  t.equal(node.received.length, 8, 'only inFlightMax requests sent while none is answered');
  t.ok(conn.isHeld(calls[8]!.id), 'the ninth waits in the client');
  held.shift()!();
  await until(() => node.received.length === 9);
  t.equal(node.received.length, 9, 'one reply frees one slot');
  // From now on answer whatever arrives.
  const pump = setInterval(() => { while (held.length > 0) held.shift()!(); }, 5);
  t.teardown(() => clearInterval(pump));
  const outcomes = await Promise.all(calls.map((c) => c.done));
  t.ok(outcomes.every((o) => o.ok), 'every request succeeded');
  t.same(outcomes.map((o) => (o.ok ? (o.body as { n: number }).n : -1)), calls.map((_, n) => n), 'each got its own reply');
  t.same(node.received.map((f) => (f.body as { n: number }).n), calls.map((_, n) => n), 'sent in call order');
});

t.test('past queuedMax a request fails OVERLOADED in the client, not sent', async (t) => {
  const node = await scriptedNode(t, {});
  const conn = dial(t, node.port, { inFlightMax: 2, queuedMax: 3 });
  const calls = Array.from({ length: 6 }, (_, n) => ask(conn, { n }));
  const last = await calls[5]!.done;
  t.ok(!last.ok && last.err.code === 'OVERLOADED', 'the sixth (2 in flight + 3 queued) is OVERLOADED');
  t.equal(!last.ok && last.err.details.maybeApplied, false, 'and says it was not applied');
  await until(() => node.received.length === 2);
  await new Promise((r) => setTimeout(r, 100));
  t.same(node.received.map((f) => (f.body as { n: number }).n), [0, 1], 'the node saw only the two in flight');
});

t.test('a queued request keeps its deadline and can be forgotten without being sent', async (t) => {
  const node = await scriptedNode(t, {});
  const conn = dial(t, node.port, { inFlightMax: 1, queuedMax: 10 });
  const first = ask(conn, { n: 0 }, 60_000);
  const forgotten = ask(conn, { n: 1 }, 60_000);
  const timed = ask(conn, { n: 2 }, 150);
  await until(() => node.received.length === 1);
  t.ok(conn.isHeld(forgotten.id), 'queued behind the one in flight');
  conn.forget(forgotten.id);
  t.notOk(conn.isHeld(forgotten.id), 'forgotten: out of the queue');
  const late = await timed.done;
  t.ok(!late.ok && late.err.code === 'TIMEOUT', 'a queued request past its deadline fails TIMEOUT');
  t.equal(!late.ok && late.err.details.maybeApplied, false, 'never sent, so not applied');
  t.match(!late.ok && late.err.message, /not sent/);
  t.same(node.received.map((f) => (f.body as { n: number }).n), [0], 'neither was sent');
  await conn.close();
  t.ok(!(await first.done).ok, 'the one in flight fails at close');
});

t.test('a request forgotten after it was sent holds its slot until its reply', async (t) => {
  let answerFirst: (() => void) | undefined;
  const node = await scriptedNode(t, {
    onRequest: (f, answer) => {
      const reply = (): void => answer(MsgType.GET_REPLY, { n: (f.body as { n: number }).n });
      if ((f.body as { n: number }).n === 0) answerFirst = reply; else reply();
    },
  });
  const conn = dial(t, node.port, { inFlightMax: 1, queuedMax: 10 });
  const first = ask(conn, { n: 0 });
  const second = ask(conn, { n: 1 });
  await until(() => node.received.length === 1);
  conn.forget(first.id);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(node.received.length, 1, 'the node still works on the forgotten one: no second request yet');
  answerFirst!();
  const out = await second.done;
  t.ok(out.ok, 'its late reply frees the slot for the next');
});

t.test('HELLO_OK or ERROR without a body is a clear PROTOCOL_ERROR', async (t) => {
  for (const [label, hello, want] of [
    ['HELLO_OK nil', [MsgType.HELLO_OK, null], /answered HELLO with HELLO_OK without a body \(nil\)/],
    ['HELLO_OK without a ring version', [MsgType.HELLO_OK, { protocol: 1, nodeId: 'x' }], /HELLO_OK without a ring version/],
    ['ERROR nil', [MsgType.ERROR, null], /sent an ERROR frame without a code and a message \(nil\)/],
  ] as const) {
    const node = await scriptedNode(t, { hello: hello as [number, unknown] });
    const conn = dial(t, node.port);
    const err = await conn.ready.then(() => null, (e: unknown) => e);
    t.ok(err instanceof TuneKvError && err.code === 'PROTOCOL_ERROR', `${label}: PROTOCOL_ERROR`);
    t.match((err as Error).message, want, `${label}: says what was wrong`);
    t.notMatch((err as Error).message, /Cannot read properties/, `${label}: not a TypeError's text`);
  }
});

t.test('an ERROR reply without a body fails that request with PROTOCOL_ERROR; one with an unknown code keeps its message', async (t) => {
  const node = await scriptedNode(t, {
    onRequest: (f, answer) => answer(MsgType.ERROR, (f.body as { n: number }).n === 0 ? null : { code: 'FROM_THE_FUTURE', message: 'newer node' }),
  });
  const conn = dial(t, node.port);
  const nil = await ask(conn, { n: 0 }).done;
  t.ok(!nil.ok && nil.err.code === 'PROTOCOL_ERROR', 'nil body: PROTOCOL_ERROR');
  const future = await ask(conn, { n: 1 }).done;
  t.ok(!future.ok && future.err.code === 'INTERNAL' && future.err.message === 'newer node', 'an unknown code: INTERNAL with the node\'s message');
});
