// Traces of the get and put state machines, fed by hand: every effect they
// return and every event they receive, with no network, disk or clock.
import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import { GetFsm } from '../../src/core/coordinator/get-fsm.js';
import { PutFsm } from '../../src/core/coordinator/put-fsm.js';
import type { Effect } from '../../src/core/coordinator/types.js';
import { resolveLevel } from '../../src/core/quorum/levels.js';
import type { Quorum } from '../../src/core/quorum/levels.js';

const q = (spec: Parameters<typeof resolveLevel>[0]) => resolveLevel(spec, 3) as Quorum;
const replicas = ['n1', 'n2', 'n3'].map((node) => ({ node, role: 'primary' as const }));
const obj = (actor: string, value: string, base?: VersionedObject): VersionedObject =>
  update(base, { actor, value: Buffer.from(value), vtype: 1, context: base?.clock ?? emptyClock, nowMs: 1, lww: false, wid: null });
const kinds = (effects: Effect[]) => effects.map((e) => (e.kind === 'read' || e.kind === 'write' ? `${e.kind}:${e.to}` : e.kind));

t.test('get at quorum replies at R=2 and keeps collecting', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({}), readRepair: true });
  t.same(kinds(fsm.start()), ['read:n1', 'read:n2', 'read:n3']);
  const v = obj('n1', 'v');
  t.same(kinds(fsm.onRead('n1', { ok: true, object: v })), [], 'one reply is not enough');
  const atR = fsm.onRead('n2', { ok: true, object: v });
  t.same(kinds(atR), ['reply']);
  const reply = atR[0]!.kind === 'reply' ? atR[0]!.reply : undefined;
  t.ok(reply?.ok);
  t.same(reply?.ok && reply.replicas.map((r) => r.outcome), ['ok', 'ok', 'pending']);
  t.same(kinds(fsm.onRead('n3', { ok: true, object: undefined })), ['write:n3', 'done'], 'n3 lacked it: read repair, then done');
});

t.test('get fails below R: QUORUM_UNAVAILABLE with the facts', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({}), readRepair: true });
  fsm.start();
  t.same(kinds(fsm.onRead('n1', { ok: false })), []);
  const effects = fsm.onRead('n2', { ok: false });
  t.same(kinds(effects), ['reply']);
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.ok(r && !r.ok && r.error.code === 'QUORUM_UNAVAILABLE');
  t.same(r && !r.ok && [r.error.details.required, r.error.details.received, r.error.details.failed], [2, 0, 2]);
  t.same(kinds(fsm.onRead('n3', { ok: true, object: undefined })), ['done']);
});

t.test('get times out with what it had', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ r: 3 }), readRepair: false });
  fsm.start();
  fsm.onRead('n1', { ok: true, object: undefined });
  const effects = fsm.onTimeout();
  t.same(kinds(effects), ['reply', 'done']);
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.ok(r && !r.ok && r.error.code === 'TIMEOUT');
  t.same(fsm.onTimeout(), [], 'a second timeout does nothing');
});

t.test('get reconciles siblings: descendants win, concurrent versions stay', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ r: 3 }), readRepair: false });
  fsm.start();
  const base = obj('n1', 'old');
  const newer = obj('n1', 'new', base);
  const concurrent = obj('n2', 'other');
  fsm.onRead('n1', { ok: true, object: base });
  fsm.onRead('n2', { ok: true, object: newer });
  const effects = fsm.onRead('n3', { ok: true, object: concurrent });
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.ok(r?.ok);
  const values = r?.ok ? r.object!.siblings.map((s) => Buffer.from(s.value!).toString()).sort() : [];
  t.same(values, ['new', 'other'], 'old was superseded by new; other is concurrent');
  t.same(r?.ok && r.replicas.map((x) => x.stale), [true, true, true], 'no replica held the merged state');
});

t.test('strong get writes the merged result back to a majority before replying', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'strong' }), readRepair: true });
  fsm.start();
  const v1 = obj('n1', 'v1');
  const v2 = obj('n1', 'v2', v1);
  t.same(kinds(fsm.onRead('n1', { ok: true, object: v2 })), []);
  t.same(kinds(fsm.onRead('n2', { ok: true, object: v1 })), ['write:n2', 'write:n3'],
    'majority read, but only n1 holds the merged result: write back to the others, no reply yet');
  t.same(kinds(fsm.onWrite('n3', true)), ['reply'], 'n1 and n3 now hold it: a majority');
  t.same(kinds(fsm.onRead('n3', { ok: true, object: undefined })), ['done'],
    'n3 answered late: every replica has answered; no second repair, as n3 was already sent the merged copy');
  t.same(kinds(fsm.onWrite('n2', true)), [], 'a late write-back ack after done is ignored');
});

t.test('strong get skips write-back when a majority already agrees', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'strong' }), readRepair: true });
  fsm.start();
  const v = obj('n1', 'v');
  fsm.onRead('n1', { ok: true, object: v });
  t.same(kinds(fsm.onRead('n2', { ok: true, object: v })), ['reply']);
});

t.test('strong get fails when the write-back cannot reach a majority', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'strong' }), readRepair: false });
  fsm.start();
  const v = obj('n1', 'v');
  fsm.onRead('n3', { ok: false });
  fsm.onRead('n1', { ok: true, object: v });
  t.same(kinds(fsm.onRead('n2', { ok: true, object: undefined })), ['write:n2']);
  const effects = fsm.onWrite('n2', false);
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.ok(r && !r.ok && r.error.code === 'QUORUM_UNAVAILABLE');
});

t.test('put coordinates locally, replicates, replies at W', async (t) => {
  const fsm = new PutFsm({ self: 'n1', replicas, quorum: q({}) });
  t.same(kinds(fsm.start()), ['coordinate']);
  t.same(kinds(fsm.onCoordinated({ ok: true, object: obj('n1', 'v') })), ['write:n2', 'write:n3']);
  t.same(kinds(fsm.onWrite('n2', true)), [], 'one ack of two');
  t.same(kinds(fsm.onWrite('n1', true)), ['reply'], 'local durable: W=2');
  t.same(kinds(fsm.onWrite('n3', false)), ['done']);
});

t.test('put with w=3 fails as soon as one replica fails', async (t) => {
  const fsm = new PutFsm({ self: 'n1', replicas, quorum: q({ w: 3 }) });
  fsm.start();
  fsm.onCoordinated({ ok: true, object: obj('n1', 'v') });
  const effects = fsm.onWrite('n3', false);
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.ok(r && !r.ok && r.error.code === 'QUORUM_UNAVAILABLE');
  t.same(r && !r.ok && r.error.details.required, 3);
});

t.test('put refused by the coordinator replies its error and writes nothing', async (t) => {
  const fsm = new PutFsm({ self: 'n1', replicas, quorum: q({}) });
  fsm.start();
  const effects = fsm.onCoordinated({ ok: false, error: { code: 'SIBLINGS_LIMIT', message: 'too many', details: {} } });
  t.same(kinds(effects), ['reply', 'done']);
});

t.test('put timeout', async (t) => {
  const fsm = new PutFsm({ self: 'n1', replicas, quorum: q({ w: 3 }) });
  fsm.start();
  fsm.onCoordinated({ ok: true, object: obj('n1', 'v') });
  fsm.onWrite('n1', true);
  const effects = fsm.onTimeout();
  t.same(kinds(effects), ['reply', 'done']);
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.ok(r && !r.ok && r.error.code === 'TIMEOUT' && r.error.details.received === 1);
});

t.test('known-down primaries count as failures from the start: no write is attempted', async (t) => {
  const put = new PutFsm({ self: 'n1', replicas: [replicas[0]!], down: ['n2', 'n3'], quorum: q({ consistency: 'strong' }) });
  const effects = put.start();
  t.same(kinds(effects), ['reply', 'done'], 'strong cannot be met: fails before coordinating');
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.ok(r && !r.ok && r.error.code === 'QUORUM_UNAVAILABLE' && r.error.details.failed === 2);
  const get = new GetFsm({ replicas: [replicas[0]!], down: ['n2', 'n3'], quorum: q({}), readRepair: true });
  t.same(kinds(get.start()), ['reply', 'done']);
  const ok = new GetFsm({ replicas: replicas.slice(0, 2), down: ['n3'], quorum: q({}), readRepair: true });
  t.same(kinds(ok.start()), ['read:n1', 'read:n2']);
  ok.onRead('n1', { ok: true, object: undefined });
  const done = ok.onRead('n2', { ok: true, object: undefined });
  const reply = done[0]!.kind === 'reply' ? done[0]!.reply : undefined;
  t.same(reply?.ok && reply.replicas.map((x) => [x.node, x.outcome]), [['n1', 'notfound'], ['n2', 'notfound'], ['n3', 'failed']]);
});

t.test('a request that fails before sending reports its replicas notsent, not pending (the README tour\'s --w 3 put)', async (t) => {
  // n3 is known down; w=3 cannot be met, so nothing is sent and nothing is stored.
  const put = new PutFsm({ self: 'n1', replicas: replicas.slice(0, 2), down: ['n3'], quorum: q({ w: 3 }) });
  const effects = put.start();
  t.same(kinds(effects), ['reply', 'done'], 'no coordinate, no write');
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.same(r && !r.ok && (r.error.details.replicas as { node: string; outcome: string }[]).map((x) => [x.node, x.outcome]),
    [['n1', 'notsent'], ['n2', 'notsent'], ['n3', 'failed']]);
  const done = effects[1]!;
  t.equal(done.kind === 'done' && done.stats.timedOut, 0, 'replicas never sent to did not time out');
  const get = new GetFsm({ replicas: replicas.slice(0, 2), down: ['n3'], quorum: q({ r: 3 }), readRepair: true });
  const g = get.start();
  const gr = g[0]!.kind === 'reply' ? g[0]!.reply : undefined;
  t.same(gr && !gr.ok && (gr.error.details.replicas as { outcome: string }[]).map((x) => x.outcome), ['notsent', 'notsent', 'failed']);
  // Once sent, an unanswered replica is pending, as before.
  const sent = new PutFsm({ self: 'n1', replicas, quorum: q({ w: 3 }) });
  sent.start();
  sent.onCoordinated({ ok: true, object: obj('n1', 'v') });
  const late = sent.onTimeout();
  const lr = late[0]!.kind === 'reply' ? late[0]!.reply : undefined;
  t.same(lr && !lr.ok && (lr.error.details.replicas as { outcome: string }[]).map((x) => x.outcome), ['pending', 'pending', 'pending']);
});

t.test('a fallback counts toward W and is reported with the primary it stands in for', async (t) => {
  const targets = [replicas[0]!, replicas[1]!, { node: 'n4', role: 'fallback' as const, hintFor: 'n3' }];
  const fsm = new PutFsm({ self: 'n1', replicas: targets, quorum: q({ w: 3 }) });
  fsm.start();
  t.same(kinds(fsm.onCoordinated({ ok: true, object: obj('n1', 'v') })), ['write:n2', 'write:n4']);
  const writeToN4 = fsm.onWrite('n2', true);
  t.same(writeToN4, []);
  fsm.onWrite('n1', true);
  const effects = fsm.onWrite('n4', true);
  const r = effects[0]!.kind === 'reply' ? effects[0]!.reply : undefined;
  t.same(r?.ok && r.replicas.at(-1), { node: 'n4', role: 'fallback', outcome: 'ok', hintFor: 'n3' });
});
