// The get state machine asking R replicas instead of all (askAll: false):
// who is asked, when one more is, what the reply says of the others, and
// that a strong read's write-back never goes to a replica it did not read.
import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import { GetFsm } from '../../src/core/coordinator/get-fsm.js';
import type { Effect, FsmReply } from '../../src/core/coordinator/types.js';
import { resolveLevel } from '../../src/core/quorum/levels.js';
import type { Quorum } from '../../src/core/quorum/levels.js';

const q = (spec: Parameters<typeof resolveLevel>[0]) => resolveLevel(spec, 3) as Quorum;
const replicas = ['n1', 'n2', 'n3'].map((node) => ({ node, role: 'primary' as const }));
const obj = (actor: string, value: string, base?: VersionedObject): VersionedObject =>
  update(base, { actor, value: Buffer.from(value), vtype: 1, context: base?.clock ?? emptyClock, nowMs: 1, lww: false, wid: null });
const kinds = (effects: Effect[]) => effects.map((e) => (e.kind === 'read' || e.kind === 'write' ? `${e.kind}:${e.to}` : e.kind));
const replyOf = (effects: Effect[]): FsmReply | undefined => {
  const e = effects.find((x) => x.kind === 'reply');
  return e?.kind === 'reply' ? e.reply : undefined;
};

t.test('quorum asks the first two and reports the third as notasked', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({}), readRepair: true, askAll: false });
  t.same(kinds(fsm.start()), ['read:n1', 'read:n2', 'speculate']);
  const v = obj('n1', 'v');
  t.same(kinds(fsm.onRead('n1', { ok: true, object: v })), []);
  const atR = fsm.onRead('n2', { ok: true, object: v });
  t.same(kinds(atR), ['reply', 'done'], 'nobody else was asked: done at once, nothing to repair');
  const r = replyOf(atR);
  t.same(r?.ok && r.replicas.map((x) => [x.node, x.outcome]), [['n1', 'ok'], ['n2', 'ok'], ['n3', 'notasked']]);
  t.same(fsm.onSpeculate(), [], 'a late speculative timer does nothing');
});

t.test('eventual asks one replica only', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'eventual' }), readRepair: true, askAll: false });
  t.same(kinds(fsm.start()), ['read:n1', 'speculate']);
  const done = fsm.onRead('n1', { ok: true, object: undefined });
  t.same(kinds(done), ['reply', 'done']);
  const r = replyOf(done);
  t.same(r?.ok && r.replicas.map((x) => x.outcome), ['notfound', 'notasked', 'notasked']);
});

t.test('a failed replica sends the read to the next one at once', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({}), readRepair: true, askAll: false });
  fsm.start();
  t.same(kinds(fsm.onRead('n2', { ok: false })), ['read:n3'], 'no reserve left after n3: no speculation armed');
  const v = obj('n1', 'v');
  t.same(kinds(fsm.onRead('n1', { ok: true, object: v })), []);
  const r = replyOf(fsm.onRead('n3', { ok: true, object: v }));
  t.ok(r?.ok, 'quorum met with the replacement');
});

t.test('the speculative timer asks one more; the first answers win', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({}), readRepair: true, askAll: false });
  fsm.start();
  const v = obj('n1', 'v');
  fsm.onRead('n1', { ok: true, object: v });
  t.same(kinds(fsm.onSpeculate()), ['read:n3'], 'n2 is slow: n3 asked');
  t.same(kinds(fsm.onSpeculate()), [], 'nobody is left to ask');
  const atR = fsm.onRead('n3', { ok: true, object: undefined });
  t.same(kinds(atR), ['reply']);
  const r = replyOf(atR);
  t.same(r?.ok && r.replicas.map((x) => x.outcome), ['ok', 'pending', 'notfound']);
  t.same(kinds(fsm.onRead('n2', { ok: true, object: v })), ['write:n3', 'done'], 'n3 lacked it: repaired once everyone asked answered');
});

t.test('below R with nobody left to ask: QUORUM_UNAVAILABLE', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({}), readRepair: true, askAll: false });
  fsm.start();
  t.same(kinds(fsm.onRead('n1', { ok: false })), ['read:n3']);
  const failed = fsm.onRead('n2', { ok: false });
  const r = replyOf(failed);
  t.ok(r && !r.ok && r.error.code === 'QUORUM_UNAVAILABLE', 'two of three failed: R=2 cannot be met');
});

t.test('strong writes back only to replicas it read', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'strong' }), readRepair: true, askAll: false });
  t.same(kinds(fsm.start()), ['read:n1', 'read:n2', 'speculate']);
  const v = obj('n1', 'v');
  fsm.onRead('n1', { ok: true, object: v });
  const back = fsm.onRead('n2', { ok: true, object: undefined });
  t.same(kinds(back), ['write:n2'], 'n2 is stale: written back; n3 (not asked) is not');
  const r = replyOf(fsm.onWrite('n2', true));
  t.ok(r?.ok, 'a majority holds it after the write-back');
  t.same(r?.ok && r.replicas.map((x) => x.outcome), ['ok', 'notfound', 'notasked'], 'outcomes are what the reads found');
});

t.test('askAll asks everyone, as before', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'eventual' }), readRepair: true, askAll: true });
  t.same(kinds(fsm.start()), ['read:n1', 'read:n2', 'read:n3']);
});

t.test('hedge asks that many replicas beyond R at the start', async (t) => {
  const five = ['n1', 'n2', 'n3', 'n4', 'n5'].map((node) => ({ node, role: 'primary' as const }));
  const quorum5 = resolveLevel({}, 5) as Quorum;
  const fsm = new GetFsm({ replicas: five, quorum: quorum5, readRepair: true, askAll: false, hedge: 1 });
  t.same(kinds(fsm.start()), ['read:n1', 'read:n2', 'read:n3', 'read:n4', 'speculate'], 'R=3 of N=5, plus one');
  const all = new GetFsm({ replicas, quorum: q({}), readRepair: true, askAll: false, hedge: 1 });
  t.same(kinds(all.start()), ['read:n1', 'read:n2', 'read:n3'], 'R=2 of N=3 plus one is everyone: nothing to speculate on');
});
