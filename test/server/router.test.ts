// The router's door, table-driven: which caller may send which message, on
// a node of the in-memory cluster, through the same Session a TCP
// connection gets. A non-loopback stranger cannot be made on this machine's
// network, so the connection facts are handed in here.

import t from 'tap';
import { MsgType, protocolVersion, requestTypes } from '../../src/protocol/messages.js';
import { preferenceListForKey } from '../../src/core/ring/ring.js';
import { isLoopback, messageNeeds } from '../../src/server/router.js';
import type { Session } from '../../src/server/router.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';
import { newNonce, secretProof } from '../../src/security/handshake.js';

interface Answer { type: number; body: Record<string, unknown> }

function ask(s: Session, type: number, body: unknown): Promise<Answer> {
  return new Promise((resolve) => s.onFrame(type, body, (rt, rb) => resolve({ type: rt, body: (rb ?? {}) as Record<string, unknown> })));
}

const code = (a: Answer): string | undefined => (a.type === MsgType.ERROR ? String(a.body.code) : undefined);

t.test('isLoopback', async (t) => {
  for (const [addr, want] of [['127.0.0.1', true], ['127.255.0.9', true], ['::1', true], ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false], ['::ffff:10.0.0.1', false], ['128.0.0.1', false], ['1127.0.0.1', false], [undefined, false]] as const) {
    t.equal(isLoopback(addr), want, String(addr));
  }
});

t.test('the listener and the router agree on what a request is', async (t) => {
  t.same([...messageNeeds.keys()].sort((a, b) => a - b), [...requestTypes].sort((a, b) => a - b));
});

t.test('every request type has a need', async (t) => {
  for (const [name, n] of Object.entries(MsgType)) {
    if (name.endsWith('_REPLY') || name === 'HELLO_OK' || name === 'AUTH_OK' || name === 'ERROR' || name === 'OK') continue;
    t.ok(messageNeeds.has(n), `${name} is in messageNeeds`);
  }
});

t.test('who may send what', async (t) => {
  const c = new MemoryCluster({ nodes: 5, background: false });
  await c.start();
  t.teardown(() => c.stopAll());
  const node = c.node('n1');
  let closed = 0;
  const session = (loopback: boolean): Session => node.newSession({ source: loopback ? '127.0.0.1' : '10.9.9.9', loopback, certAuthorized: false }, () => { closed++; });
  const hello = (s: Session, extra: Record<string, unknown> = {}) => ask(s, MsgType.HELLO, { protocol: protocolVersion, agent: 't', nonce: newNonce(), ...extra });

  await t.test('a stranger from another address: HELLO only', async (t) => {
    const s = session(false);
    const h = await hello(s);
    t.equal(h.type, MsgType.HELLO_OK);
    t.equal(h.body.authRequired, true);
    t.equal(code(await ask(s, MsgType.GET, { key: 'k' })), 'UNAUTHORIZED', 'GET');
    t.equal(code(await ask(s, MsgType.PUT, { key: 'k', value: Buffer.from('v') })), 'UNAUTHORIZED', 'PUT');
    t.equal(code(await ask(s, MsgType.RING_GET, {})), 'UNAUTHORIZED', 'RING_GET');
    t.equal(code(await ask(s, MsgType.REPLICA_WRITE, { key: 'k', object: [[], []] })), 'UNAUTHORIZED', 'REPLICA_WRITE');
    t.equal(code(await ask(s, MsgType.ADMIN_FAULTS, { blocked: ['n2'] })), 'UNAUTHORIZED', 'ADMIN_FAULTS');
    t.same(node.faults.current.blocked, [], 'no fault was set');
  });

  await t.test('a loopback client of a node in protected mode: read and write, no peer or admin', async (t) => {
    const s = session(true);
    t.equal((await hello(s)).body.authRequired, false);
    t.equal((await ask(s, MsgType.PUT, { key: 'k', value: Buffer.from('v'), consistency: 'eventual' })).type, MsgType.PUT_REPLY);
    t.equal((await ask(s, MsgType.GET, { key: 'k', consistency: 'eventual' })).type, MsgType.GET_REPLY);
    t.equal(code(await ask(s, MsgType.ADMIN_FAULTS, { blocked: ['n2'] })), 'FORBIDDEN', 'faults need admin');
    t.equal(code(await ask(s, MsgType.GOSSIP, { table: [] })), 'UNAUTHORIZED', 'peer messages need the secret');
    const st = await ask(s, MsgType.STATUS, {});
    t.equal(st.type, MsgType.STATUS_REPLY);
    t.equal(st.body.faults, undefined, 'the status summary has no details');
    t.equal(st.body.nodeId, 'n1');
  });

  await t.test('a forwarded flag from a client is not believed', async (t) => {
    const s = session(true);
    await hello(s);
    // A key n1 is not a replica of would be forwarded; with forwarded:true
    // from a client it must still be coordinated or forwarded, never refused as "views differ".
    let tried = 0;
    for (let i = 0; i < 200 && tried < 5; i++) {
      const key = `fw${i}`;
      if (preferenceListForKey(node.ring!, key).primaries.includes('n1')) continue;
      const pending = ask(s, MsgType.PUT, { key, value: Buffer.from('v'), forwarded: true, consistency: 'eventual' });
      await c.runFor(100);
      const r = await pending;
      tried++;
      t.equal(r.type, MsgType.PUT_REPLY, `${key}: ${String(r.body.message ?? 'ok')}`);
    }
    t.equal(tried, 5, 'five keys n1 does not replicate were tried');
  });

  await t.test('the cluster secret makes a peer; a wrong proof closes the connection', async (t) => {
    const s = session(false);
    const cn = newNonce();
    const h = await ask(s, MsgType.HELLO, { protocol: protocolVersion, agent: 't', nonce: cn });
    const sn = h.body.nonce as Uint8Array;
    const proof = secretProof(node.security.clusterKey, 'client', cn, sn, 'node:n2', 'n1');
    const ok = await ask(s, MsgType.AUTH, { method: 'secret', as: 'node:n2', proof });
    t.equal(ok.type, MsgType.AUTH_OK);
    t.equal(s.caller.peer, 'n2');
    t.equal(s.frameStage, 'peer');
    t.equal((await ask(s, MsgType.PING, {})).type, MsgType.OK, 'peer messages pass');
    const bad = session(false);
    const cn2 = newNonce();
    const h2 = await ask(bad, MsgType.HELLO, { protocol: protocolVersion, agent: 't', nonce: cn2 });
    const wrong = secretProof(Buffer.alloc(32, 7), 'client', cn2, h2.body.nonce as Uint8Array, 'node:n2', 'n1');
    const before = closed;
    const pending = ask(bad, MsgType.AUTH, { method: 'secret', as: 'node:n2', proof: wrong });
    await c.runFor(10_000);
    const r = await pending;
    t.equal(code(r), 'UNAUTHORIZED');
    t.equal(closed, before + 1, 'the connection was closed');
    t.equal(bad.caller.role, null, 'no role granted');
  });

  await t.test('an AUTH that is not a map is a failed login: slowed, counted, closed', async (t) => {
    const s = session(false);
    await hello(s);
    const before = closed;
    const failures = node.router.stats.authFailed;
    const pending = ask(s, MsgType.AUTH, [1, 2, 3]);
    await c.runFor(10_000);
    t.equal(code(await pending), 'UNAUTHORIZED');
    t.equal(closed, before + 1, 'closed');
    t.equal(node.router.stats.authFailed, failures + 1, 'counted');
  });

  await t.test('a peer may not make a node keep hints for a node that is not a member', async (t) => {
    const answered = new Promise<Answer>((resolve) => node.handleRequest(MsgType.REPLICA_WRITE,
      { key: 'h', object: [[['n2', 5, 1]], [['n2', 5, 1, 0, 0, Buffer.from('v'), null]]], hintFor: 'zz' },
      (rt, rb) => resolve({ type: rt, body: (rb ?? {}) as Record<string, unknown> }), { role: 'admin', proven: true, peer: 'n2' }));
    await c.runFor(100);
    const r = await answered;
    t.equal(code(r), 'INVALID_ARGUMENT', String(r.body.message));
    t.same(node.hints.pendingByOwner(), {}, 'no hint kept');
  });
});

t.test('contexts come back signed: a client may only hand back what a node issued', async (t) => {
  const c = new MemoryCluster({ nodes: 3, background: false });
  await c.start();
  t.teardown(() => c.stopAll());
  const sessionOn = async (id: string): Promise<Session> => {
    const s = c.node(id).newSession({ source: '127.0.0.1', loopback: true, certAuthorized: false }, () => {});
    await ask(s, MsgType.HELLO, { protocol: protocolVersion, agent: 't', nonce: newNonce() });
    return s;
  };
  const run = async <T>(p: Promise<T>): Promise<T> => { await c.runFor(200); return p; };
  const s1 = await sessionOn('n1');
  const put = await run(ask(s1, MsgType.PUT, { key: 'ctx', value: Buffer.from('a') }));
  t.equal(put.type, MsgType.PUT_REPLY);
  const got = await run(ask(s1, MsgType.GET, { key: 'ctx' }));
  const ctx = got.body.context as [string, number, number][];
  const mac = got.body.contextMac as Uint8Array;
  t.ok(mac instanceof Uint8Array && mac.length === 16, 'the reply carries a 16-byte MAC');
  const s2 = await sessionOn('n2');
  const ok = await run(ask(s2, MsgType.PUT, { key: 'ctx', value: Buffer.from('b'), context: ctx, contextMac: mac }));
  t.equal(ok.type, MsgType.PUT_REPLY, 'a context issued by n1 is accepted by n2 (one secret)');
  t.equal(ok.body.siblings, 1, 'and supersedes what the read saw');
  const noMac = await run(ask(s2, MsgType.PUT, { key: 'ctx', value: Buffer.from('c'), context: ctx }));
  t.equal(code(noMac), 'INVALID_ARGUMENT', 'a context without its MAC is refused');
  const forged = ctx.map(([a, n, ts]) => [a, n + 1, ts]);
  const tampered = await run(ask(s2, MsgType.PUT, { key: 'ctx', value: Buffer.from('d'), context: forged, contextMac: mac }));
  t.equal(code(tampered), 'INVALID_ARGUMENT', 'a changed context is refused');
  const empty = await run(ask(s2, MsgType.DELETE, { key: 'ctx-none', context: [] }));
  t.equal(empty.type, MsgType.PUT_REPLY, 'an empty context needs no MAC');
});
