// The conflict log: bounded by count and bytes (oldest dropped, on disk
// too), survives a restart, keeps large values as digests, pages; what a
// put or a merge records; and the CONFLICTS message on in-memory nodes.
import t from 'tap';
import { createHash } from 'node:crypto';
import type { Sibling, VersionedObject } from '../../src/core/clock/object.js';
import type { Clock } from '../../src/io/clock.js';
import { MemoryStorage } from '../../src/io/storage.js';
import { limits } from '../../src/limits.js';
import { pack } from '../../src/protocol/codec.js';
import { parseConflictQuery, recordFromWire } from '../../src/protocol/conflict-codec.js';
import { MsgType } from '../../src/protocol/messages.js';
import type { ConflictsReplyBody, GetReplyBody } from '../../src/protocol/messages.js';
import { ConflictLog, TypeMergeSampler, conflictsOfPut, mergeFoundConflict } from '../../src/server/conflict-log.js';
import { conflictKey, conflictKeysRange } from '../../src/server/keyspace.js';
import { MemoryCluster } from '../../src/sim/memory-cluster.js';
import { parseFaultSpec } from '../../src/server/faults.js';

function sib(actor: string, counter: number, value: string | Uint8Array | null, tsMs = 1000): Sibling {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  return { actor, counter, tsMs, value: v, vtype: 1, lww: false, wid: null };
}

function obj(...siblings: Sibling[]): VersionedObject {
  return { clock: siblings.map((s) => [s.actor, s.counter, s.tsMs] as [string, number, number]), siblings } as unknown as VersionedObject;
}

/** The log reads only nowMs(). */
class TestClock {
  ms = 1_700_000_000_000;
  nowMs(): number { return this.ms; }
  advance(ms: number): void { this.ms += ms; }
}

async function openLog(storage: MemoryStorage, clock: TestClock = new TestClock()): Promise<ConflictLog> {
  const log = new ConflictLog({ storage, clock: clock as unknown as Clock, writeRaw: (op) => storage.write([op], false) });
  await log.load();
  return log;
}

async function stored(storage: MemoryStorage): Promise<string[]> {
  return (await storage.range({ ...conflictKeysRange, limit: 1_000_000 })).map(([k]) => k);
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('records keep small values whole and large ones as digests; versions are capped', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const log = await openLog(storage);
  const big = Buffer.alloc(limits.conflictValueBytesMax + 1, 7);
  const edge = Buffer.alloc(limits.conflictValueBytesMax, 8);
  const many = Array.from({ length: limits.conflictVersionsMax + 3 }, (_, i) => sib('n1', i + 1, `v${i}`));
  const a = log.record({ key: 'k', kind: 'siblings kept', by: 'n1', note: 'test', versions: [sib('n1', 1, big), sib('n2', 1, edge), sib('n3', 1, null)] });
  t.equal(a.versions[0]!.value, null, 'a value past the bound is not kept');
  t.equal(a.versions[0]!.digest, createHash('sha256').update(big).digest('hex'), 'its SHA-256 is');
  t.equal(a.versions[0]!.bytes, big.length, 'with its size');
  t.same(Buffer.from(a.versions[1]!.value!), edge, 'a value at the bound is kept whole');
  t.equal(a.versions[1]!.digest, null);
  t.equal(a.versions[2]!.tombstone, true, 'a delete is marked');
  const b = log.record({ key: 'k2', kind: 'lww', by: 'n1', note: 'x', versions: many });
  t.equal(b.versions.length, limits.conflictVersionsMax, 'at most conflictVersionsMax versions');
  t.equal(b.versionsOmitted, 3, 'the rest are counted');
  await settle();
  t.same(await stored(storage), [conflictKey(1), conflictKey(2)], 'both are on disk');
});

t.test('type merges: recorded once per key per interval, the oldest key forgotten past the bound', async (t) => {
  const s = new TypeMergeSampler(1000, 2);
  t.equal(s.take('a', 0), true, 'the first merge of a key is recorded');
  t.equal(s.take('a', 999), false, 'not again within the interval');
  t.equal(s.take('a', 1000), true, 'again once it has passed');
  t.equal(s.take('b', 1000), true);
  t.equal(s.take('c', 1000), true, 'a third key');
  t.equal(s.size, 2, 'at most keysMax remembered');
  t.equal(s.take('a', 1001), true, 'the oldest (a) was forgotten, so it is recorded again');
  t.equal(s.take('c', 1001), false, 'a remembered key is not');
  const storage = new MemoryStorage();
  await storage.open();
  const log = await openLog(storage);
  const r = log.recordTypeMerge('page:hits', 'counter', 'n2', [sib('n1', 1, 'a'), sib('n2', 1, 'b')]);
  t.same([r.kind, r.by, r.versions.length], ['type merge', 'n2', 2]);
});

t.test('the metrics hooks count', async (t) => {
  const c = new MemoryCluster({ nodes: 3, background: false });
  await c.start();
  t.teardown(() => c.stopAll());
  c.node('n2').metrics.countTypeMerge('counter');
  t.match(await c.node('n2').metrics.registry.metrics(), 'tunekv_type_merges_total{type="counter",node="n2"} 1');
  c.node('n2').metrics.countSessionLookFurther();
  t.match(await c.node('n2').metrics.registry.metrics(), 'tunekv_session_reads_looked_further_total{node="n2"} 1');
});

t.test('bounded by count: the oldest go first, on disk too; the log survives a restart', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const clock = new TestClock();
  const log = await openLog(storage, clock);
  const total = limits.conflictLogRecordsMax + 5;
  for (let i = 0; i < total; i++) log.record({ key: `k${i}`, kind: 'siblings kept', by: 'n1', note: '', versions: [sib('n1', 1, 'a'), sib('n2', 1, 'b')] });
  await settle();
  t.equal(log.size, limits.conflictLogRecordsMax, 'conflictLogRecordsMax kept');
  t.equal(log.stats.dropped, 5);
  const keys = await stored(storage);
  t.equal(keys.length, limits.conflictLogRecordsMax, 'the disk holds the same number');
  t.equal(keys[0], conflictKey(6), 'records 1-5 (the oldest) were dropped from disk');
  const first = log.query({ limit: 1 }).records[0]!;
  t.equal(first.key, 'k5', 'and from memory');

  const again = await openLog(storage, clock);
  t.equal(again.size, limits.conflictLogRecordsMax, 'a restart loads every record');
  t.same(again.query({ key: 'k100' }).records.map((r) => r.seq), [101], 'as they were');
  const next = again.record({ key: 'after', kind: 'resolver', by: 'n1', note: '', versions: [] });
  t.equal(next.seq, total + 1, 'seqs go on from the highest loaded');
});

t.test('bounded by bytes', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const log = await openLog(storage);
  const value = 'x'.repeat(limits.conflictValueBytesMax);
  const versions = Array.from({ length: limits.conflictVersionsMax }, (_, i) => sib('n1', i + 1, value));
  const per = limits.conflictVersionsMax * limits.conflictValueBytesMax;
  const n = Math.ceil((limits.conflictLogBytesMax / per) * 1.5);
  for (let i = 0; i < n; i++) log.record({ key: `k${i}`, kind: 'siblings kept', by: 'n1', note: '', versions });
  await settle();
  t.ok(log.sizeBytes <= limits.conflictLogBytesMax, `${log.sizeBytes} bytes kept, at most ${limits.conflictLogBytesMax}`);
  t.ok(log.stats.dropped > 0, `${log.stats.dropped} dropped`);
  const bytesOnDisk = (await storage.range({ ...conflictKeysRange, limit: 1_000_000 })).reduce((a, [, v]) => a + v.length, 0);
  t.equal(bytesOnDisk, log.sizeBytes, 'the disk holds exactly what memory counts');
});

t.test('an undecodable stored record is deleted at load, never fatal', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const log = await openLog(storage);
  log.record({ key: 'good', kind: 'siblings kept', by: 'n1', note: '', versions: [] });
  await settle();
  await storage.write([{ key: conflictKey(2), value: Uint8Array.of(0xc1) }, { key: conflictKey(3), value: pack([3, 0, 'k', 'no such kind', 'n1', '', [], 0]) }], false);
  const again = await openLog(storage);
  t.equal(again.size, 1, 'the good record loads');
  t.equal(again.stats.discardedAtLoad, 2, 'the two bad ones are counted');
  await settle();
  t.same(await stored(storage), [conflictKey(1)], 'and deleted');
});

t.test('a record the disk refuses stays in memory and is counted', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const log = await openLog(storage);
  storage.failWrites = new Error('disk full');
  log.record({ key: 'k', kind: 'siblings kept', by: 'n1', note: '', versions: [] });
  await settle();
  t.equal(log.stats.persistFailures, 1);
  t.equal(log.size, 1, 'still served');
  storage.failWrites = null;
  t.same(await stored(storage), [], 'nothing half-written');
});

t.test('queries: by key, since a time, a page at a time', async (t) => {
  const storage = new MemoryStorage();
  await storage.open();
  const clock = new TestClock();
  const log = await openLog(storage, clock);
  const t0 = clock.nowMs();
  for (let i = 0; i < 10; i++) {
    log.record({ key: i % 2 === 0 ? 'even' : 'odd', kind: 'siblings kept', by: 'n1', note: '', versions: [] });
    clock.advance(1000);
  }
  t.same(log.query({ key: 'odd' }).records.map((r) => r.seq), [2, 4, 6, 8, 10]);
  t.same(log.query({ sinceMs: t0 + 7000 }).records.map((r) => r.seq), [8, 9, 10]);
  const p1 = log.query({ limit: 4 });
  t.same(p1.records.map((r) => r.seq), [1, 2, 3, 4]);
  t.equal(p1.next, 4);
  const p2 = log.query({ limit: 4, afterSeq: p1.next! });
  t.same(p2.records.map((r) => r.seq), [5, 6, 7, 8]);
  const p3 = log.query({ limit: 4, afterSeq: p2.next! });
  t.same(p3.records.map((r) => r.seq), [9, 10]);
  t.equal(p3.next, null, 'the last page says so');
});

t.test('CONFLICTS bodies are validated', async (t) => {
  t.same(parseConflictQuery({}), { key: undefined, sinceMs: undefined, afterSeq: undefined, limit: limits.conflictsPageMax });
  for (const bad of [
    { limit: 0 }, { limit: limits.conflictsPageMax + 1 }, { limit: 1.5 }, { sinceMs: -1 }, { sinceMs: 'yesterday' },
    { afterSeq: Number.MAX_SAFE_INTEGER + 2 }, { key: 5 }, { key: 'x'.repeat(limits.keyBytesMax + 1) }, [1, 2],
  ]) t.throws(() => parseConflictQuery(bad), { code: /INVALID_ARGUMENT|TOO_LARGE/ }, JSON.stringify(bad).slice(0, 60));
  t.throws(() => recordFromWire([1, 0, 'k', 'lww', 'n1', '', [['d', 0, 1, 0, 5, Buffer.alloc(limits.conflictValueBytesMax + 1), null]], 0]),
    { code: 'INVALID_ARGUMENT' }, 'a record value past the bound is refused');
});

t.test('what a put records', async (t) => {
  const a = sib('n1', 1, 'apple');
  const b = sib('n2', 1, 'pear');
  const mine = sib('n1', 2, 'apple,pear');
  const blind = conflictsOfPut({ key: 'k', by: 'n1', before: obj(a), after: obj(a, sib('n1', 2, 'x')), context: [], lww: false, resolved: 0, written: undefined });
  t.same(blind.records.map((r) => r.kind), ['siblings kept'], 'a blind put beside a value keeps siblings');
  t.equal(blind.resolvedVersions, 0);
  const resolver = conflictsOfPut({
    key: 'k', by: 'n1', before: obj(a, b), after: obj(mine), context: [['n1', 1, 1], ['n2', 1, 1]] as never, lww: false, resolved: 2, written: mine,
  });
  t.same(resolver.records.map((r) => r.kind), ['resolver'], 'a put saying it resolved 2 records a resolver conflict');
  t.same(resolver.records[0]!.versions.map((v) => v.counter), [2, 1, 1], 'the result first, then what it superseded');
  t.same([resolver.resolvedVersions, resolver.resolvedBy], [2, 'resolver']);
  const plain = conflictsOfPut({ key: 'k', by: 'n1', before: obj(a, b), after: obj(mine), context: [['n1', 1, 1], ['n2', 1, 1]] as never, lww: false, resolved: 0, written: mine });
  t.same(plain.records, [], 'a put with a context covering both, not saying it resolved: no record');
  t.same([plain.resolvedVersions, plain.resolvedBy], [2, 'context'], 'but counted as resolved siblings');
  const lww = conflictsOfPut({ key: 'k', by: 'n1', before: obj(a), after: obj(mine), context: [], lww: true, resolved: 0, written: mine });
  t.same(lww.records.map((r) => r.kind), ['lww'], 'an LWW put that discarded an unseen version');
  const lwwSeen = conflictsOfPut({ key: 'k', by: 'n1', before: obj(a), after: obj(mine), context: [['n1', 1, 1]] as never, lww: true, resolved: 0, written: mine });
  t.same(lwwSeen.records, [], 'an LWW put whose context saw everything discarded nothing');
});

t.test('which merges found a conflict', async (t) => {
  const a = obj(sib('n1', 1, 'a'));
  const ab = obj(sib('n1', 1, 'a'), sib('n2', 1, 'b'));
  t.equal(mergeFoundConflict(a, obj(sib('n2', 1, 'b')), ab, false), true, 'read repair or anti-entropy bringing a concurrent version');
  t.equal(mergeFoundConflict(a, ab, ab, true), false, 'a coordinated put\'s siblings: its coordinator recorded them');
  t.equal(mergeFoundConflict(a, ab, ab, false), true, 'the same object by hand-off: this node learns of the conflict');
  t.equal(mergeFoundConflict(ab, ab, ab, false), false, 'nothing new');
  t.equal(mergeFoundConflict(undefined, a, a, false), false, 'one version is no conflict');
  t.equal(mergeFoundConflict(undefined, ab, ab, false), false, 'a node that held nothing (a transfer\'s receiver) received a conflict, it did not find one');
});

t.test('on nodes: puts are recorded where they were coordinated, served by CONFLICTS, kept across a restart', async (t) => {
  const c = new MemoryCluster({ nodes: 3, background: false });
  await c.start();
  t.teardown(() => c.stopAll());
  const put = (body: Record<string, unknown>) => c.put('n1', { vtype: 1, ...body });
  await put({ key: 'cart', value: Buffer.from('apple') });
  t.equal(c.node('n1').conflicts.size, 0, 'one version: nothing recorded');
  await put({ key: 'cart', value: Buffer.from('pear') });
  const log = async (id: string, body: Record<string, unknown> = {}): Promise<ConflictsReplyBody> => (await c.call(id, MsgType.CONFLICTS, body)).body as ConflictsReplyBody;
  const first = await log('n1');
  t.equal(first.node, 'n1');
  t.same(first.records.map((w) => recordFromWire(w).kind), ['siblings kept'], 'a blind second put kept siblings');
  t.same((await log('n2')).records, [], 'replicas that merely received the put record nothing');
  const got = (await c.get('n1', { key: 'cart' })).body as GetReplyBody;
  await put({ key: 'cart', value: Buffer.from('apple,pear'), context: got.context, contextMac: got.contextMac, resolved: 2 });
  await put({ key: 'cart', value: Buffer.from('plum'), lww: true });
  const kinds = (await log('n1')).records.map((w) => recordFromWire(w).kind);
  t.same(kinds, ['siblings kept', 'resolver', 'lww'], 'resolution and LWW recorded in order');
  const resolver = recordFromWire((await log('n1', { key: 'cart', afterSeq: 1, limit: 1 })).records[0]);
  t.same(resolver.versions.map((v) => Buffer.from(v.value!).toString()).sort(), ['apple', 'apple,pear', 'pear'], 'the resolver record holds what was merged and the result');
  await t.rejects(c.call('n1', MsgType.CONFLICTS, { limit: -1 }), { code: 'INVALID_ARGUMENT' }, 'a bad body is an error reply');
  const text = await c.node('n1').metrics.registry.metrics();
  for (const kind of ['siblings kept', 'resolver', 'lww']) t.match(text, `tunekv_conflict_records_total{kind="${kind}",node="n1"} 1`, `${kind} counted`);
  t.match(text, 'tunekv_siblings_resolved_total{by="resolver",node="n1"} 2', 'the resolving put superseded two versions');
  t.match(text, 'tunekv_context_writes_total{outcome="clean",node="n1"} 1', 'the context-carrying put left one version');
  t.match(text, 'tunekv_conflicts_total{node="n1"} 1', 'the existing conflicts counter agrees with the log');
  t.match(c.node('n1').status(), { conflictLog: { records: 3, recorded: 3, dropped: 0, persistFailures: 0 } }, 'status shows the log');
  await c.crash('n1');
  await c.startNode('n1');
  t.same((await log('n1')).records.map((w) => recordFromWire(w).kind), kinds, 'the log survives a restart');
});

t.test('a replica merge that finds a conflict records it (a write during a partition)', async (t) => {
  const c = new MemoryCluster({ nodes: 3, background: false });
  await c.start();
  t.teardown(() => c.stopAll());
  await c.put('n1', { key: 'k', value: Buffer.from('base'), vtype: 1, w: 3 });
  // n3 cut off: n1 writes a version n3 does not get; n3 coordinates a blind one of its own.
  c.node('n1').faults.set(parseFaultSpec({ blocked: ['n3'] }));
  c.node('n2').faults.set(parseFaultSpec({ blocked: ['n3'] }));
  c.node('n3').faults.set(parseFaultSpec({ blocked: ['n1', 'n2'] }));
  const g1 = (await c.get('n1', { key: 'k', r: 2 })).body as GetReplyBody;
  await c.put('n1', { key: 'k', value: Buffer.from('from n1'), vtype: 1, w: 2, context: g1.context, contextMac: g1.contextMac });
  await c.put('n3', { key: 'k', value: Buffer.from('from n3'), vtype: 1, w: 1, context: g1.context, contextMac: g1.contextMac });
  for (const id of ['n1', 'n2', 'n3']) c.node(id).faults.set(parseFaultSpec({ blocked: [] }));
  // A read at r=3 merges both sides and repairs the replicas.
  const got = (await c.get('n1', { key: 'k', r: 3 })).body as GetReplyBody;
  t.equal(got.values.length, 2, 'the read sees both versions');
  await c.runFor(100);
  const recorded = ['n1', 'n2', 'n3'].filter((id) => c.node(id).conflicts.query({ key: 'k' }).records.some((r) => r.kind === 'siblings kept'));
  t.ok(recorded.length >= 1, `read repair recorded the conflict on ${recorded.join(', ')}`);
});
