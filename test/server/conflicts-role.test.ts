// Who may read a node's conflict log: it holds values, so CONFLICTS needs
// the read role (the same as GET). Every role includes read, so the refusal
// a caller can meet is UNAUTHORIZED (no login); a caller with a role reads.
import t from 'tap';
import { MsgType, protocolVersion } from '../../src/protocol/messages.js';
import { messageNeeds } from '../../src/server/router.js';
import type { Session } from '../../src/server/router.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';
import { newNonce } from '../../src/security/handshake.js';

interface Answer { type: number; body: Record<string, unknown> }

function ask(s: Session, type: number, body: unknown): Promise<Answer> {
  return new Promise((resolve) => s.onFrame(type, body, (rt, rb) => resolve({ type: rt, body: (rb ?? {}) as Record<string, unknown> })));
}

t.test('CONFLICTS needs the read role', async (t) => {
  t.equal(messageNeeds.get(MsgType.CONFLICTS), 'read');
  const c = new MemoryCluster({ nodes: 3, background: false });
  await c.start();
  t.teardown(() => c.stopAll());
  await c.put('n1', { key: 'k', value: Buffer.from('a'), vtype: 1 });
  await c.put('n1', { key: 'k', value: Buffer.from('b'), vtype: 1 });
  const node = c.node('n1');
  const session = (loopback: boolean): Session => node.newSession({ source: loopback ? '127.0.0.1' : '10.9.9.9', loopback, certAuthorized: false }, () => {});
  const stranger = session(false);
  await ask(stranger, MsgType.HELLO, { protocol: protocolVersion, agent: 't', nonce: newNonce() });
  const refused = await ask(stranger, MsgType.CONFLICTS, {});
  t.equal(refused.type, MsgType.ERROR);
  t.equal(refused.body.code, 'UNAUTHORIZED', 'a caller without a login is refused before the log is read');
  t.notOk('records' in refused.body, 'and sees no record');
  const local = session(true);
  await ask(local, MsgType.HELLO, { protocol: protocolVersion, agent: 't', nonce: newNonce() });
  const ok = await ask(local, MsgType.CONFLICTS, { key: 'k' });
  t.equal(ok.type, MsgType.CONFLICTS_REPLY, 'a caller with a role (protected-mode loopback: write) reads it');
  t.equal((ok.body.records as unknown[]).length, 1);
});
