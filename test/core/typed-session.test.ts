// Sessions over counters and sets (core/crdt/typed-version.ts): the
// coverage rule per type, the join and bound of versions, their wire form
// and MAC, and a typed session read in the get state machine.
import t from 'tap';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { mergeAll } from '../../src/core/clock/object.js';
import { sessionCovers } from '../../src/core/clock/session-cover.js';
import { GetFsm } from '../../src/core/coordinator/get-fsm.js';
import type { Effect } from '../../src/core/coordinator/types.js';
import { addToCounter, emptyCounter, resetCounter } from '../../src/core/crdt/counter.js';
import type { CounterState } from '../../src/core/crdt/counter.js';
import { addMember, emptySet, removeMember } from '../../src/core/crdt/orset.js';
import type { OrSet } from '../../src/core/crdt/orset.js';
import { encodeTyped } from '../../src/core/crdt/typed-object.js';
import { boundVersion, joinVersions, typedCovers, versionFromWire, versionOf, versionText, versionToWire } from '../../src/core/crdt/typed-version.js';
import type { TypedVersion } from '../../src/core/crdt/typed-version.js';
import { resolveLevel } from '../../src/core/quorum/levels.js';
import type { Quorum } from '../../src/core/quorum/levels.js';
import { noWriteIds } from '../../src/core/crdt/write-ids.js';
import { limits } from '../../src/limits.js';
import { contextMac, typedVersionMac } from '../../src/security/context-mac.js';
import { parseTypedSession, typedVersionReply } from '../../src/server/session-read.js';

const counter = (c: CounterState): VersionedObject => encodeTyped({ kind: 'counter', state: c, wids: noWriteIds }, 1);
const set = (s: OrSet): VersionedObject => encodeTyped({ kind: 'set', state: s, wids: noWriteIds }, 1);
const cv = (o: VersionedObject | undefined): TypedVersion => versionOf('counter', o);
const sv = (o: VersionedObject | undefined): TypedVersion => versionOf('set', o);

t.test('counter: covered when every actor\'s increments and decrements are each at least the version\'s', async (t) => {
  const a1 = addToCounter(emptyCounter, 'n1', 5n);
  const a2 = addToCounter(a1, 'n1', -2n); // same value 3 as a1 + n2's... but not the same state
  const b = addToCounter(emptyCounter, 'n2', 3n);
  t.ok(typedCovers(counter(a1), cv(counter(a1))), 'a state covers itself');
  t.ok(typedCovers(counter(a2), cv(counter(a1))), 'a later state of the same actor covers an earlier one');
  t.notOk(typedCovers(counter(a1), cv(counter(a2))), 'missing a decrement is behind, though the increments are there');
  t.notOk(typedCovers(counter(b), cv(counter(a1))), 'another actor\'s increments do not stand in');
  const ab = mergeAll([counter(a1), counter(b)])!;
  t.ok(typedCovers(ab, cv(counter(a1))) && typedCovers(ab, cv(counter(b))), 'a join covers both sides');
  t.notOk(typedCovers(undefined, cv(counter(a1))), 'not found is behind a written counter');
  t.ok(typedCovers(undefined, cv(undefined)), 'an empty version asks for nothing');
  const r = resetCounter(addToCounter(a1, 'n2', 3n), 'n3');
  t.notOk(typedCovers(ab, cv(counter(r))), 'a state without the reset is behind it (same increments, value differs)');
  t.notOk(typedCovers(counter(b), { kind: 'counter', entries: [['n2', 3n, 1n]] }), 'a decrement entry is checked on its own');
});

t.test('set: covered when its clock dominates the version\'s', async (t) => {
  const s1 = addMember(emptySet, 'apple', 'n1', 1);
  const s2 = removeMember(s1, 'apple', 'n2', 2);
  t.ok(typedCovers(set(s2), sv(set(s1))), 'a remove that observed the add covers the add');
  t.notOk(typedCovers(set(s1), sv(set(s2))), 'the add alone is behind its remove (the remove moved the remover\'s clock entry)');
  t.ok(typedCovers(mergeAll([set(s1), set(s2)]), sv(set(s2))), 'their join is the remove');
  t.same(mergeAll([set(s1), set(s2)])!.siblings[0]!.value, set(s2).siblings[0]!.value, 'join of an add and its observed remove is the remove');
  const other = addMember(emptySet, 'pear', 'n2', 1);
  t.notOk(typedCovers(set(other), sv(set(s1))), 'an add by another actor is not n1\'s add');
  t.notOk(typedCovers(undefined, sv(set(s1))), 'not found is behind');
  const more = addMember(s1, 'kiwi', 'n1', 1);
  t.notOk(typedCovers(set(s1), sv(set(more))), 'an older clock of the same actor is behind');
  t.notOk(typedCovers(set(s1), cv(counter(addToCounter(emptyCounter, 'n1', 1n)))), 'a counter\'s version is never covered by a set');
});

t.test('versions: join, bound, wire form and MAC', async (t) => {
  const a: TypedVersion = { kind: 'counter', entries: [['n1', 5n, 0n], ['n2', 1n, 1n]] };
  const b: TypedVersion = { kind: 'counter', entries: [['n1', 3n, 2n], ['n3', 2n ** 62n, 0n]] };
  t.same(joinVersions(a, b).entries, [['n1', 5n, 2n], ['n2', 1n, 1n], ['n3', 2n ** 62n, 0n]], 'entry-wise maximum, exact past 2^53');
  const many: TypedVersion = { kind: 'set', entries: Array.from({ length: 20 }, (_, i) => [`a${String(i).padStart(2, '0')}`, 1n, 0n] as const) };
  const bounded = boundVersion(many, ['a19']);
  t.equal(bounded.entries.length, limits.sessionTypedEntriesMax);
  t.ok(bounded.entries.some((e) => e[0] === 'a19'), 'the named actor is kept');
  t.ok(versionFromWire('set', versionToWire(bounded)) !== null);
  t.same(versionFromWire('counter', versionToWire(a)), a, 'wire round trip');
  t.type(versionFromWire('set', versionToWire(many)), 'string', 'more than sessionTypedEntriesMax entries is refused');
  t.type(versionFromWire('counter', [['n2', 1, 1], ['n1', 1, 1]]), 'string', 'unsorted is refused');
  t.type(versionFromWire('counter', [['n1', 0, 0]]), 'string', 'an all-zero entry is refused');
  t.type(versionFromWire('counter', [['n1', -1, 0]]), 'string', 'a negative total is refused');
  t.type(versionFromWire('set', [['n1', 1, 0]]), 'string', 'a set entry has two fields');
  t.type(versionFromWire('set', [['bad actor', 1]]), 'string', 'actors are node ids');

  const key = Buffer.alloc(32, 7);
  const wire = versionToWire(a);
  const mac = typedVersionMac(key, 'K', versionText(a));
  t.same(parseTypedSession({ atLeast: [[wire, mac]] }, 'K', 'counter', key), { atLeast: a }, 'a signed version is accepted');
  t.throws(() => parseTypedSession({ atLeast: [[[['n1', 6, 0], ['n2', 1, 1]], mac]] }, 'K', 'counter', key), { code: 'INVALID_ARGUMENT' }, 'a raised total fails the MAC');
  t.throws(() => parseTypedSession({ atLeast: [[wire, mac]] }, 'K', 'set', key), { code: 'INVALID_ARGUMENT' }, 'a counter version is not a set version');
  t.throws(() => parseTypedSession({ atLeast: [[[], contextMac(key, 'K', [])]] }, 'K', 'counter', key), { code: 'INVALID_ARGUMENT' }, 'a context MAC is not a version MAC');
  t.same(parseTypedSession({ session: true }, 'K', 'counter', key), { atLeast: undefined });
  t.throws(() => parseTypedSession({ atLeast: [[wire, mac]] }, 'other', 'counter', key), { code: 'INVALID_ARGUMENT' }, 'a version of another key is refused');
  const c: TypedVersion = { kind: 'counter', entries: [['n4', 1n, 0n]] };
  t.same(parseTypedSession({ atLeast: [[wire, mac], [versionToWire(c), typedVersionMac(key, 'K', versionText(c))]] }, 'K', 'counter', key)!.atLeast, joinVersions(a, c),
    'several versions (concurrent requests of one session) are joined');
  t.throws(() => parseTypedSession({ atLeast: Array.from({ length: limits.sessionContextsPerKeyMax + 1 }, () => [wire, mac]) }, 'K', 'counter', key),
    { code: 'INVALID_ARGUMENT' }, 'at most sessionContextsPerKeyMax versions');
  t.equal(parseTypedSession({}, 'K', 'counter', key), undefined, 'not a session request');

  const [rw, rmac] = typedVersionReply('counter', 'K', counter(addToCounter(emptyCounter, 'n3', 1n)), { atLeast: a }, key, ['n3']);
  const back = parseTypedSession({ atLeast: [[rw, rmac]] }, 'K', 'counter', key)!.atLeast!;
  t.same(back.entries, [['n1', 5n, 0n], ['n2', 1n, 1n], ['n3', 1n, 0n]], 'a reply signs its state joined with what the session sent');
});

t.test('typed session read in the get FSM: looks further past a behind replica; not found everywhere is not current', async (t) => {
  const q = resolveLevel({ consistency: 'eventual' }, 3) as Quorum;
  const replicas = ['n1', 'n2', 'n3'].map((node) => ({ node, role: 'primary' as const }));
  const kinds = (effects: Effect[]) => effects.map((e) => (e.kind === 'read' || e.kind === 'write' ? `${e.kind}:${e.to}` : e.kind));
  const wrote = counter(addToCounter(emptyCounter, 'n1', 1n));
  const atLeast = { typed: cv(wrote) };
  t.notOk(sessionCovers(undefined, atLeast, 0));
  const fsm = new GetFsm({ replicas, quorum: q, readRepair: true, askAll: false, atLeast, nowMs: 1 });
  t.same(kinds(fsm.start()), ['read:n1', 'speculate']);
  t.same(kinds(fsm.onRead('n1', { ok: true, object: undefined })), ['read:n2', 'speculate'], 'n1 lacks the increment: ask n2 now');
  const r = fsm.onRead('n2', { ok: true, object: wrote }).find((e) => e.kind === 'reply');
  t.ok(r?.kind === 'reply' && r.reply.ok && r.reply.object === wrote && r.reply.lookedFurther === 1, 'n2\'s state is the reply');

  const none = new GetFsm({ replicas, quorum: q, readRepair: true, askAll: true, atLeast, nowMs: 1 });
  none.start();
  none.onRead('n1', { ok: true, object: undefined });
  none.onRead('n2', { ok: true, object: undefined });
  const f = none.onRead('n3', { ok: true, object: undefined }).find((e) => e.kind === 'reply');
  t.ok(f?.kind === 'reply' && !f.reply.ok && f.reply.error.code === 'SESSION_UNAVAILABLE',
    'every primary "not found": counters are never reaped, so the session\'s state is elsewhere');
});

t.test('session state: typed versions fold, count toward sessionKeysMax and survive the token', async (t) => {
  const { SessionState } = await import('../../src/client/session-state.js');
  const { typedKey } = await import('../../src/core/crdt/typed-object.js');
  const key = Buffer.alloc(32, 7);
  const signed = (v: TypedVersion) => ({ wire: versionToWire(v), mac: typedVersionMac(key, 'K', versionText(v)), version: v });
  const k = typedKey('counter', 'hits');
  const s = new SessionState(3);
  const a: TypedVersion = { kind: 'counter', entries: [['n1', 1n, 0n]] };
  const b: TypedVersion = { kind: 'counter', entries: [['n2', 1n, 0n]] };
  s.observeTyped(k, signed(a));
  s.observeTyped(k, signed(b));
  t.equal(s.typedAtLeast(k).length, 2, 'concurrent versions are both kept');
  s.observeTyped(k, signed(joinVersions(a, b)));
  t.same(s.typedAtLeast(k).map((v) => v.version), [joinVersions(a, b)], 'a covering version folds them');
  s.observeTyped(k, signed(a));
  t.same(s.typedAtLeast(k).map((v) => v.version), [joinVersions(a, b)], 'an older version adds nothing');
  s.observe('plain', [['n1', 1, 1]], Buffer.alloc(16), false);
  const back = SessionState.fromToken(s.token(), 3);
  t.same(back.typedAtLeast(k).map((v) => v.version), [joinVersions(a, b)], 'the token carries typed versions');
  t.ok(back.atLeast('plain') !== undefined, 'and plain contexts');
  s.observeTyped(typedKey('set', 'a'), signed({ kind: 'set', entries: [['n1', 5n, 0n]] }));
  s.observeTyped(typedKey('set', 'b'), signed({ kind: 'set', entries: [['n1', 5n, 0n]] }));
  t.equal(s.size, 3, 'typed keys count toward the keys bound');
  t.same(s.typedAtLeast(k), [], 'the least recently used key fell out');
  const forged = ['AA', Buffer.from('x').toString('base64url')];
  for (const f of forged) t.throws(() => SessionState.fromToken(f), { code: 'INVALID_ARGUMENT' });
  const { pack } = await import('../../src/protocol/codec.js');
  const tok = (entries: unknown[]) => pack([2, entries]).toString('base64url');
  t.throws(() => SessionState.fromToken(tok([['hits', [[versionToWire(a), Buffer.alloc(16)]]]])), { code: 'INVALID_ARGUMENT' }, 'a typed entry needs a typed key');
  t.throws(() => SessionState.fromToken(tok([[typedKey('set', 'x'), [[versionToWire(a), Buffer.alloc(16)]]]])), { code: 'INVALID_ARGUMENT' }, 'a counter version under a set key');
  t.throws(() => SessionState.fromToken(tok([['\u0000c:x', 0, []]])), { code: 'INVALID_ARGUMENT' }, 'a plain entry may not name a typed key');
  t.ok(SessionState.fromToken(pack([1, [['p', 0, []]]]).toString('base64url')), 'version 1 tokens are still read');
});
