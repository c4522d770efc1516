// The disk failure policy (server/disk-health.ts) as a pure state machine,
// then against a real LevelDB whose writes really fail.
//
// Making LevelDB fail as root: permissions do not stop root, so the test
// lowers this process's RLIMIT_FSIZE (`prlimit --pid <self> --fsize=N:hard`)
// below the size LevelDB's write-ahead log must reach. The kernel enforces
// the soft limit for root too: the next append fails with EFBIG and LevelDB
// reports "IO error: <dir>/000003.log: File too large". The write also
// raises SIGXFSZ: Node ignores it, but tap's signal-exit listens for it and
// re-raises it (killing the test) unless another listener is there, so the
// test adds one while the limit is low. Raising the soft limit back
// (allowed up to the hard limit without privileges) lets the probe succeed.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { update } from '../../src/core/clock/object.js';
import type { VersionedObject } from '../../src/core/clock/object.js';
import { emptyClock } from '../../src/core/clock/vclock.js';
import { TuneKvError } from '../../src/errors.js';
import { ManualClock } from '../../src/io/clock.js';
import { LevelStorage } from '../../src/io/level-storage.js';
import { DiskHealth, diskProbeIntervalMsDefault, probeStorage } from '../../src/server/disk-health.js';
import type { DiskState } from '../../src/server/disk-health.js';
import { ObjectStore } from '../../src/server/object-store.js';
import { SegmentHashes } from '../../src/core/antientropy/segments.js';
import { keyHash } from '../../src/core/ring/hash.js';
import { scanRange } from '../../src/io/scan.js';
import type { Storage } from '../../src/io/storage.js';
import { decodeObject } from '../../src/protocol/object-codec.js';
import { dataKey, dataKeyRange, userKeyOf } from '../../src/server/keyspace.js';

const put = (cur: VersionedObject | undefined, value: Uint8Array): VersionedObject =>
  update(cur, { actor: 'n1', value, vtype: 1, context: cur?.clock ?? emptyClock, nowMs: 1_700_000_000_000, lww: false, wid: null });

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function hashesOf(storage: Storage): Promise<Uint32Array> {
  const h = new SegmentHashes();
  for await (const page of scanRange(storage, dataKeyRange)) {
    for (const [sk, bytes] of page) h.update(userKeyOf(sk), keyHash(userKeyOf(sk)), undefined, decodeObject(bytes));
  }
  return h.words;
}

t.test('disk health: the policy as a state machine', async (t) => {
  const clock = new ManualClock();
  const transitions: [DiskState, DiskState, string | null][] = [];
  let probeError: Error | null = new Error('IO error: /data/000007.log: No space left on device');
  let probeGate: (() => void) | undefined;
  const health = new DiskHealth({
    clock,
    nodeId: 'n2',
    probe: async () => {
      if (probeGate) await new Promise<void>((r) => { probeGate = r; });
      if (probeError) throw probeError;
    },
    onStateChange: (from, to, cause) => transitions.push([from, to, cause]),
  });
  t.equal(health.probeIntervalMs, diskProbeIntervalMsDefault);
  t.equal(health.state, 'healthy');
  t.doesNotThrow(() => health.checkWritable(), 'healthy: writes go');
  t.equal(clock.pending, 0, 'no probing while healthy');

  health.writeFailed(new Error('outer', { cause: new Error('IO error: /data/000007.log: No space left on device') }), 3);
  health.writeFailed(new Error('IO error: again'), 2);
  t.equal(health.state, 'unhealthy');
  t.same(transitions, [['healthy', 'unhealthy', 'outer: IO error: /data/000007.log: No space left on device']], 'one transition, with the cause chain');
  t.match(health.status(), { failedBatches: 2, failedWrites: 5, unhealthyTransitions: 1, lastError: { message: 'IO error: again' } });
  const refused = (() => { try { health.checkWritable(); return null; } catch (e) { return e; } })();
  t.ok(refused instanceof TuneKvError && refused.code === 'STORAGE_FAILED', 'unhealthy: writes are refused with STORAGE_FAILED');
  t.match(refused, { message: /node n2 cannot write to its storage \(IO error: again\)/, details: { cause: 'IO error: again' } });
  t.equal(health.status().refusedWrites, 1, 'refusals are counted');

  t.equal(clock.nextDueMs(), clock.nowMs() + diskProbeIntervalMsDefault, 'a probe is due in probeIntervalMs');
  clock.fireNext();
  await tick();
  t.match(health.status(), { state: 'unhealthy', probes: 1, failedProbes: 1 });
  t.equal(clock.pending, 1, 'a failed probe schedules the next');

  // A write that fails while a probe is running is newer news than the probe.
  probeError = null;
  probeGate = () => {};
  clock.fireNext();
  await tick();
  health.writeFailed(new Error('IO error: a batch failed meanwhile'), 1);
  probeGate();
  probeGate = undefined;
  await tick();
  t.equal(health.state, 'unhealthy', 'a probe that raced a failed write does not make the node healthy');
  t.equal(clock.pending, 1);
  clock.fireNext();
  await tick();
  t.equal(health.state, 'healthy', 'the next clean probe does');
  t.same(transitions.at(-1), ['unhealthy', 'healthy', null]);
  t.equal(health.status().sinceMs, clock.nowMs());
  t.equal(clock.pending, 0);

  health.writeFailed(new Error('IO error'), 1);
  t.equal(clock.pending, 1);
  health.close();
  t.equal(clock.pending, 0, 'close() stops probing');
  t.throws(() => new DiskHealth({ clock, probe: async () => {}, probeIntervalMs: 0 }), TypeError);
});

t.test('LevelDB: a held lock says so in the error', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-lock-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const first = new LevelStorage(dir);
  await first.open();
  t.teardown(() => first.close());
  const second = new LevelStorage(dir);
  const err = await second.open().then(() => null, (e: Error) => e);
  t.ok(err, 'the second open fails');
  t.match(err!.message, /^Database failed to open: IO error: lock .*LOCK: already held by process$/, err!.message);
  t.equal((err as Error & { code?: string }).code, 'LEVEL_DATABASE_NOT_OPEN', 'level\'s code is kept');
});

/** This process's RLIMIT_FSIZE (soft, hard), or null without prlimit. */
function fsizeLimit(): [string, string] | null {
  try {
    const out = execFileSync('prlimit', ['--pid', String(process.pid), '--fsize', '--output', 'SOFT,HARD', '--noheadings', '--raw'], { encoding: 'utf8' });
    const [soft, hard] = out.trim().split(/\s+/);
    return soft && hard ? [soft, hard] : null;
  } catch {
    return null;
  }
}

function setFsize(soft: string, hard: string): void {
  execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${soft}:${hard}`]);
}

const fsize = fsizeLimit();

t.test('LevelDB: a write the disk refuses makes the node read-only, and a probe brings it back', {
  skip: fsize ? false : 'prlimit (util-linux) is needed to make LevelDB writes fail',
}, async (t) => {
  const [soft, hard] = fsize!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-efbig-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const storage = new LevelStorage(dir);
  await storage.open();
  const clock = new ManualClock();
  const causes: (string | null)[] = [];
  const health = new DiskHealth({ clock, probe: probeStorage(storage), onStateChange: (_f, _t, cause) => causes.push(cause) });
  const store = new ObjectStore(storage, true, { health });
  const feed = new SegmentHashes();
  store.onChange = (key, hash, before, after) => feed.update(key, hash, before, after);
  const ignoreXfsz = (): void => {};
  process.on('SIGXFSZ', ignoreXfsz);
  t.teardown(async () => {
    setFsize(soft, hard);
    // Let a SIGXFSZ still in flight reach our listener before it goes.
    await tick();
    process.off('SIGXFSZ', ignoreXfsz);
    health.close();
    await storage.close().catch(() => {});
  });

  const first = await store.mutate('kept', (cur) => put(cur, Buffer.from('before the fault')));
  await first.durable;
  const largest = Math.max(...fs.readdirSync(dir).map((f) => fs.statSync(path.join(dir, f)).size));
  setFsize(String(largest + 64 * 1024), hard);

  let failure: unknown = null;
  const value = new Uint8Array(4096);
  let writes = 0;
  for (; writes < 200 && failure === null; writes++) {
    const m = await store.mutate(`k${writes}`, (cur) => put(cur, value));
    failure = await m.durable.then(() => null, (e: unknown) => e);
  }
  setFsize(soft, hard);
  t.ok(failure instanceof TuneKvError && failure.code === 'STORAGE_FAILED', `write ${writes} failed with STORAGE_FAILED`);
  t.match((failure as TuneKvError).message, /IO error: .*\.log: File too large/, (failure as Error).message);
  t.equal(health.state, 'unhealthy');
  t.match(causes[0], /File too large/, 'the transition carries LevelDB\'s cause');
  t.match(health.status().lastError?.message, new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\d+\\.log: File too large`), 'and names the file');

  await t.rejects(store.mutate('more', (cur) => put(cur, Buffer.from('x'))), { code: 'STORAGE_FAILED' }, 'writes are refused up front');
  const kept = await store.read('kept');
  t.same(Buffer.from(kept!.siblings[0]!.value!).toString(), 'before the fault', 'reads go on');
  await store.remove(`k${writes - 1}`, () => false);
  t.equal(await store.read(`k${writes - 1}`), undefined, 'the failed key reads as storage holds it: absent');

  clock.fireNext();
  await health.probeNow();
  t.equal(health.state, 'healthy', 'the limit raised, a probe succeeds and the node is healthy');
  const after = await store.mutate('after', (cur) => put(cur, Buffer.from('after the fault')));
  await after.durable;
  t.ok(await storage.get('m:probe'), 'the probe wrote m:probe');
  t.same(Buffer.from((await store.read('after'))!.siblings[0]!.value!).toString(), 'after the fault', 'and writes work again');
  t.same(feed.words, await hashesOf(storage), 'the segment hashes match what LevelDB holds');

  await storage.close();
  const again = new LevelStorage(dir);
  await again.open();
  t.teardown(() => again.close());
  t.ok(await again.get(dataKey('kept')), 'after a restart: the write before the fault is there');
  t.ok(await again.get(dataKey('after')), 'and so is the one after the recovery');
  t.equal(await again.get(dataKey(`k${writes - 1}`)), undefined, 'and the failed one is not');
});
