// Session reads in the get state machine and the coverage rule, as traces:
// a read that carries what its session saw keeps asking replicas until the
// answers cover it, and fails with SESSION_UNAVAILABLE rather than answer
// older. Also the session's own state and token (pure).
import t from 'tap';
import { update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { sessionCovers } from '../../src/core/clock/session-cover.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import type { VClock } from '../../src/core/clock/vclock.js';
import { GetFsm } from '../../src/core/coordinator/get-fsm.js';
import type { Effect, FsmReply } from '../../src/core/coordinator/types.js';
import { resolveLevel } from '../../src/core/quorum/levels.js';
import type { Quorum } from '../../src/core/quorum/levels.js';
import { SessionState } from '../../src/client/session-state.js';
import { limits } from '../../src/limits.js';
import { parseAtLeast } from '../../src/server/session-read.js';
import { contextMac } from '../../src/security/context-mac.js';
import type { WireClock } from '../../src/protocol/messages.js';

const q = (spec: Parameters<typeof resolveLevel>[0]) => resolveLevel(spec, 3) as Quorum;
const replicas = ['n1', 'n2', 'n3'].map((node) => ({ node, role: 'primary' as const }));
const obj = (actor: string, value: string | null, base?: VersionedObject): VersionedObject =>
  update(base, { actor, value: value === null ? null : Buffer.from(value), vtype: 1, context: base?.clock ?? emptyClock, nowMs: 1, lww: false, wid: null });
const kinds = (effects: Effect[]) => effects.map((e) => (e.kind === 'read' || e.kind === 'write' ? `${e.kind}:${e.to}` : e.kind));
const replyOf = (effects: Effect[]): FsmReply | undefined => {
  const e = effects.find((x) => x.kind === 'reply');
  return e?.kind === 'reply' ? e.reply : undefined;
};

const v1 = obj('n1', 'v1');
const v2 = obj('n1', 'v2', v1);

t.test('eventual session read: the first replica is behind, the next is asked at once and its answer is the reply', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'eventual' }), readRepair: true, askAll: false, atLeast: { clocks: [v2.clock], deleted: false }, nowMs: 1 });
  t.same(kinds(fsm.start()), ['read:n1', 'speculate']);
  t.same(kinds(fsm.onRead('n1', { ok: true, object: v1 })), ['read:n2', 'speculate'], 'n1 is behind: ask n2 now');
  t.same(kinds(fsm.onSpeculate()), ['read:n3'], 'the timer asks the rest');
  const effects = fsm.onRead('n3', { ok: true, object: v2 });
  const r = replyOf(effects);
  t.ok(r?.ok, 'replied');
  t.same(r?.ok && Buffer.from(r.object!.siblings[0]!.value!).toString(), 'v2');
  t.same(r?.ok && r.lookedFurther, 2);
  t.same(r?.ok && r.replicas.map((x) => [x.node, x.outcome, x.behind ?? false]), [['n1', 'ok', true], ['n2', 'pending', false], ['n3', 'ok', false]]);
  t.same(kinds(fsm.onRead('n2', { ok: true, object: v1 })), ['write:n1', 'write:n2', 'done'], 'behind replicas are read-repaired');
});

t.test('a current first answer replies at once, reporting lookedFurther 0', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'eventual' }), readRepair: false, askAll: false, atLeast: { clocks: [v1.clock], deleted: false }, nowMs: 1 });
  fsm.start();
  const r = replyOf(fsm.onRead('n1', { ok: true, object: v2 }));
  t.ok(r?.ok);
  t.equal(r?.ok && r.lookedFurther, 0);
});

t.test('no replica current: SESSION_UNAVAILABLE with the facts, never the older data', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'eventual' }), readRepair: false, askAll: false, atLeast: { clocks: [v2.clock], deleted: false }, nowMs: 1 });
  fsm.start();
  fsm.onRead('n1', { ok: true, object: v1 });
  fsm.onSpeculate();
  t.same(fsm.onRead('n2', { ok: true, object: undefined }), [], 'n3 still pending');
  const effects = fsm.onRead('n3', { ok: false });
  const r = replyOf(effects);
  t.ok(r && !r.ok && r.error.code === 'SESSION_UNAVAILABLE', 'fails');
  t.same(r && !r.ok && [r.error.details.received, r.error.details.behind], [2, 2]);
  t.same(kinds(effects), ['reply', 'done']);
});

t.test('deadline with R met but nothing current: SESSION_UNAVAILABLE, not TIMEOUT', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({}), readRepair: false, askAll: true, atLeast: { clocks: [v2.clock], deleted: false }, nowMs: 1 });
  fsm.start();
  fsm.onRead('n1', { ok: true, object: v1 });
  t.same(fsm.onRead('n2', { ok: true, object: v1 }), [], 'R met, behind, n3 pending: wait');
  const r = replyOf(fsm.onTimeout());
  t.ok(r && !r.ok && r.error.code === 'SESSION_UNAVAILABLE');
});

t.test('quorum session read: two answers merge into a current state although neither is alone', async (t) => {
  const a = obj('n1', 'a');
  const b = obj('n2', 'b');
  const both = update(a, { actor: 'n2', value: Buffer.from('b'), vtype: 1, context: emptyClock, nowMs: 1, lww: false, wid: null });
  t.ok(both.clock.length === 2);
  const fsm = new GetFsm({ replicas, quorum: q({}), readRepair: false, askAll: false, hedge: 1, atLeast: { clocks: [[['n1', 1, 1], ['n2', 1, 1]]], deleted: false }, nowMs: 1 });
  fsm.start();
  fsm.onRead('n1', { ok: true, object: a });
  const r = replyOf(fsm.onRead('n2', { ok: true, object: b }));
  t.ok(r?.ok, 'the merge covers the session');
  t.same(r?.ok && r.replicas.filter((x) => x.behind).map((x) => x.node), ['n1', 'n2'], 'each alone was behind');
});

t.test('coverage rule: deletions and pruning', async (t) => {
  const del = obj('n1', null, v2);
  t.ok(sessionCovers(undefined, { clocks: [del.clock], deleted: true }, 0), 'a reaped tombstone reads as nothing: current');
  t.notOk(sessionCovers(v1, { clocks: [del.clock], deleted: true }, 0), 'a value older than the delete is not');
  t.notOk(sessionCovers(undefined, { clocks: [v2.clock], deleted: false }, 0), 'not found after a live value is behind');
  const day = limits.vclockPruneAgeMinMs;
  const big: VClock = Array.from({ length: limits.vclockEntriesMax }, (_, i) => [`a${String(i).padStart(3, '0')}`, 1, 5 * day] as const);
  const pruned = { clock: big, siblings: v2.siblings } as VersionedObject;
  const old: VClock = [['zz', 3, 0]];
  t.ok(sessionCovers(pruned, { clocks: [old], deleted: false }, 5 * day), 'an old entry missing from a full clock may have been pruned');
  t.notOk(sessionCovers(pruned, { clocks: [[['zz', 3, 5 * day - 1]]], deleted: false }, 5 * day), 'a young entry is never pruned');
  t.notOk(sessionCovers(v2, { clocks: [old], deleted: false }, 5 * day), 'a small clock was never pruned');
});

t.test('node side: atLeast is validated and every clock must carry the cluster MAC', async (t) => {
  const key = Buffer.alloc(32, 7);
  const clock: WireClock = [['n1', 2, 1]];
  const mac = contextMac(key, 'k', clock);
  t.same(parseAtLeast({ atLeast: [[clock, mac]] }, key, 'k'), { clocks: [clock], deleted: false });
  t.same(parseAtLeast({}, key, 'k'), undefined);
  t.same(parseAtLeast({ atLeast: [[[], Buffer.alloc(0)]], atLeastDeleted: true }, key, 'k'), { clocks: [], deleted: true }, 'an empty clock asks for nothing');
  const bad = (b: Record<string, unknown>) => { try { parseAtLeast(b, key, 'k'); return 'accepted'; } catch (e) { return (e as { code: string }).code; } };
  t.equal(bad({ atLeast: [[[['n1', 3, 1]], mac]] }), 'INVALID_ARGUMENT', 'a changed clock');
  t.equal(bad({ atLeast: [[clock, Buffer.alloc(16)]] }), 'INVALID_ARGUMENT', 'a wrong MAC');
  t.throws(() => parseAtLeast({ atLeast: [[clock, mac]] }, key, 'other'), { code: 'INVALID_ARGUMENT' }, 'a context of another key');
  t.equal(bad({ atLeast: [[clock]] }), 'INVALID_ARGUMENT', 'no MAC');
  t.equal(bad({ atLeast: 'x' }), 'INVALID_ARGUMENT');
  t.equal(bad({ atLeast: Array(limits.sessionContextsPerKeyMax + 1).fill([clock, mac]) }), 'INVALID_ARGUMENT', 'too many contexts');
  t.equal(bad({ atLeast: [[[['bad id!', 1, 1]], mac]] }), 'INVALID_ARGUMENT', 'a malformed clock');
  t.equal(bad({ atLeastDeleted: true }), 'INVALID_ARGUMENT', 'deleted without atLeast');
  t.equal(bad({ atLeast: [[clock, mac]], atLeastDeleted: 1 }), 'INVALID_ARGUMENT');
});

t.test('session state: newer contexts replace older, concurrent ones stay, keys are bounded', async (t) => {
  const mac = Buffer.alloc(16, 1);
  const s = new SessionState(3);
  s.observe('k', [['n1', 1, 1]], mac, false);
  s.observe('k', [['n1', 2, 1]], mac, false);
  t.same(s.atLeast('k')?.contexts.map((c) => c.clock), [[['n1', 2, 1]]], 'the newer replaced the older');
  s.observe('k', [['n2', 1, 1]], mac, false);
  t.equal(s.atLeast('k')?.contexts.length, 2, 'a concurrent one is kept beside');
  s.observe('k', [['n1', 2, 1], ['n2', 1, 1]], mac, true);
  t.same(s.atLeast('k'), { contexts: [{ clock: [['n1', 2, 1], ['n2', 1, 1]], mac }], deleted: true }, 'a covering one folds them');
  s.observe('k', [], mac, true);
  t.equal(s.atLeast('k')?.contexts.length, 1, 'an older answer (not found after a reap) changes nothing');
  s.observe('a', [['n1', 1, 1]], mac, false);
  s.observe('b', [['n1', 1, 1]], mac, false);
  s.observe('c', [['n1', 1, 1]], mac, false);
  t.equal(s.size, 3);
  t.equal(s.atLeast('k'), undefined, 'the least recently used key fell out');
  const again = SessionState.fromToken(s.token(), 3);
  t.same(again.token(), s.token(), 'a token round-trips');
  t.same(again.atLeast('b'), s.atLeast('b'));
});

t.test('session tokens are validated fully', async (t) => {
  const bad = (tok: unknown) => { try { SessionState.fromToken(tok); return 'accepted'; } catch (e) { return (e as { code: string }).code; } };
  const { pack } = await import('../../src/protocol/codec.js');
  const enc = (v: unknown) => pack(v).toString('base64url');
  const mac = Buffer.alloc(16);
  t.equal(bad(enc([1, []])), 'accepted', 'an empty session');
  t.equal(bad(42), 'INVALID_ARGUMENT');
  t.equal(bad('not base64!'), 'INVALID_ARGUMENT');
  t.equal(bad('x'.repeat(limits.sessionTokenCharsMax + 1)), 'INVALID_ARGUMENT', 'too long, before decoding');
  t.equal(bad(enc([3, []])), 'INVALID_ARGUMENT', 'unknown version');
  t.equal(bad(enc([1, Array.from({ length: limits.sessionKeysMax + 1 }, (_, i) => [`k${i}`, 0, []])])), 'INVALID_ARGUMENT', 'too many keys');
  t.equal(bad(enc([1, [['k', 0, []], ['k', 0, []]]])), 'INVALID_ARGUMENT', 'a key twice');
  t.equal(bad(enc([1, [['', 0, []]]])), 'INVALID_ARGUMENT', 'a bad key');
  t.equal(bad(enc([1, [['k', 2, []]]])), 'INVALID_ARGUMENT', 'a bad flag');
  t.equal(bad(enc([1, [['k', 0, [[[['n1', 0, 1]], mac]]]]])), 'INVALID_ARGUMENT', 'a bad counter');
  t.equal(bad(enc([1, [['k', 0, [[[['n1', 1, 1]], Buffer.alloc(3)]]]]])), 'INVALID_ARGUMENT', 'a short MAC');
  t.equal(bad(enc([1, [['k', 0, Array(limits.sessionContextsPerKeyMax + 1).fill([[['n1', 1, 1]], mac])]]])), 'INVALID_ARGUMENT', 'too many contexts');
  t.equal(bad(enc([1, [['k', 0, [[[['n1', 1, 1]], mac]]]]])), 'accepted');
});

t.test('every primary answering "not found" is current: a delete by anyone, then the reap', async (t) => {
  const fsm = new GetFsm({ replicas, quorum: q({ consistency: 'eventual' }), readRepair: false, askAll: false, atLeast: { clocks: [v2.clock], deleted: false }, nowMs: 1 });
  fsm.start();
  fsm.onRead('n1', { ok: true, object: undefined });
  fsm.onSpeculate();
  t.same(fsm.onRead('n2', { ok: true, object: undefined }), [], 'two of three primaries: not yet');
  const r = replyOf(fsm.onRead('n3', { ok: true, object: undefined }));
  t.ok(r?.ok && r.object === undefined, 'not found, as every primary says');
});

t.test('"not found" from the primaries that are up is not enough when a fallback stands in for one', async (t) => {
  const sloppy = [{ node: 'n1', role: 'fallback' as const, hintFor: 'n4' }, { node: 'n3', role: 'primary' as const }, { node: 'n6', role: 'fallback' as const, hintFor: 'n5' }];
  const fsm = new GetFsm({ replicas: sloppy, quorum: q({ consistency: 'eventual' }), readRepair: false, askAll: false, atLeast: { clocks: [v2.clock], deleted: false }, nowMs: 1 });
  fsm.start();
  fsm.onRead('n1', { ok: true, object: undefined });
  fsm.onRead('n3', { ok: true, object: undefined });
  fsm.onSpeculate();
  const r = replyOf(fsm.onRead('n6', { ok: true, object: undefined }));
  t.ok(r && !r.ok && r.error.code === 'SESSION_UNAVAILABLE', 'n4 and n5 may hold the session\'s write (simulator seed 96)');
});
