// Client requests as the node parses them: a value marked msgpack must be
// msgpack a client can decode (red team finding F3: such values made a key
// unreadable for every reader, context included).

import t from 'tap';
import { pack } from '../../src/protocol/codec.js';
import { checkBy, forwardedBody, parsePut } from '../../src/server/requests.js';
import { merge, update } from '../../src/core/clock/object.js';
import { withDot } from '../../src/core/clock/vclock.js';
import { TuneKvError } from '../../src/errors.js';

function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

t.test('msgpack values are checked on the node', async (t) => {
  const cases: [string, Uint8Array, boolean][] = [
    ['a map', pack({ a: 1, b: [1, 2] }), true],
    ['the reserved byte 0xc1', Uint8Array.of(0xc1), false],
    ['trailing bytes', Uint8Array.of(0x01, 0x02), false],
    ['40 levels deep', pack(deep(40)), false],
    ['an extension type', Uint8Array.of(0xd4, 0x05, 0x00), false],
    ['nothing', new Uint8Array(0), false],
  ];
  for (const [name, value, ok] of cases) {
    const put = (): unknown => parsePut({ key: 'k', value, vtype: 2 }, 3, false);
    if (ok) t.doesNotThrow(put, `${name}: accepted`);
    else {
      let code: string | undefined;
      try { put(); } catch (e) { code = e instanceof TuneKvError ? e.code : 'not a TuneKvError'; }
      t.equal(code, 'INVALID_ARGUMENT', `${name}: INVALID_ARGUMENT`);
    }
  }
  t.doesNotThrow(() => parsePut({ key: 'k', value: Uint8Array.of(0xc1), vtype: 0 }, 3, false), 'bytes are opaque');
});

t.test('a forwarded put carries the attempt\'s context, not the client\'s original one', async (t) => {
  const wid = Buffer.alloc(12, 7);
  const body = { key: 'k', value: Buffer.from('v'), vtype: 1, wid, context: [['n3', 411, 1]] };
  const req = parsePut(body, 3, false);
  // An attempt fenced on a stale ring wrote dot (n2, 3617) here; the retry
  // supersedes exactly that (Coordinator.onPut widens the context so).
  const retry = { ...req, context: withDot(req.context, 'n2', 3617, 2), contextGiven: true };
  const onward = forwardedBody(body, retry);
  t.equal(onward.forwarded, true);
  t.same(parsePut(onward, 3, false).context.map(([a, c]) => [a, c]), [['n2', 3617], ['n3', 411]], 'the fenced attempt\'s dot travels on');
  t.same(onward.wid, wid, 'same write id');
  t.same(onward.value, body.value);
  const blind = parsePut({ key: 'k', value: Buffer.from('v') }, 3, false);
  t.equal(forwardedBody({ key: 'k', value: Buffer.from('v') }, blind).context, undefined, 'no context is invented for a put that sent none');

  // Why it matters (seed 346): the next coordinator's version with the old
  // context is a sibling of the fenced attempt's, with the same wid; merges
  // keep the smaller dot, so the dot the client was told (n4's) is dropped
  // and a write that superseded only the twin removes the acknowledged put.
  const n2 = update(undefined, { context: [], value: Buffer.from('v'), vtype: 1, actor: 'n2', nowMs: 1000, lww: false, wid });
  const n2dot = n2.siblings[0]!.counter;
  const stale = update(undefined, { context: [], value: Buffer.from('v'), vtype: 1, actor: 'n4', nowMs: 2000, lww: false, wid });
  t.same(merge(n2, stale).siblings.map((s) => s.actor), ['n2'], 'old context: the told dot (n4) loses to its twin');
  const widened = update(undefined, { context: [['n2', n2dot, 1000]], value: Buffer.from('v'), vtype: 1, actor: 'n4', nowMs: 2000, lww: false, wid });
  t.same(merge(n2, widened).siblings.map((s) => s.actor), ['n4'], 'attempt context: the told dot survives, its twin is superseded');
});

t.test('a forwarded put names its author; a client cannot name one', async (t) => {
  const body = { key: 'k', value: Buffer.from('v'), by: 'mallory' };
  const req = parsePut(body, 3, false);
  t.equal(req.by, undefined, 'a client\'s `by` is not read (the coordinator reads it from peers only)');
  t.same(parsePut({ ...body, by: 'ev\u001bil' }, 3, false).by, undefined, 'not even refused when malformed: ignored');
  t.equal(forwardedBody(body, req, undefined).by, null, 'nor passed on as a peer\'s');
  t.equal(forwardedBody(body, req, 'alice').by, 'alice', 'the logged-in user is');
  t.equal(checkBy('alice'), 'alice');
  t.equal(checkBy(null), undefined);
  for (const by of ['', 'a b', 'x'.repeat(65), 7, 'ev\u001bil']) t.throws(() => checkBy(by), { code: 'INVALID_ARGUMENT' }, JSON.stringify(by));
});
