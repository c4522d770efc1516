// Changing the cluster's shape under load, with real processes over real
// TCP and LevelDB: `cluster add` (nodes start on standby, their joins are
// staged and committed as one plan), `cluster leave` (the node hands its
// partitions off and exits by itself), and a joining node killed with
// SIGKILL in the middle of its transfer.
//
// What must hold, whatever the ring does:
//   - every key written at `strong` before a change reads back at `strong`
//     during and after it;
//   - read-modify-write clients at `strong` lose nothing acknowledged: each
//     counter ends at its last acknowledged value (one more if the last put
//     failed: a failed put may still have been applied);
//   - no strong read returns less than a value acknowledged or read before
//     it (no stale strong read);
//   - the transition completes (no ring has `next` at the end).
// A request that fails is retried or counted, never taken as a value.
import t from 'tap';
import type { Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { adminDial, cliEntry, isNodeProcess, newestRing, probe, readCluster, secretFileOf } from '../../cluster/launcher.js';
import type { Ring } from '../../src/core/ring/ring.js';
import { connect, TuneKvError } from '../../src/index.js';
import type { TuneKvClient } from '../../src/index.js';
import { fastNodeArgs, testCluster } from '../helpers/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Transfers start slowed to the lowest limit a node takes (10 KB/s a
 * receiving node, about 10 of these keys a second), so a transition holds
 * still while reads and writes meet its phases; the test then lifts the
 * limit to fastTransferMBps to let it finish. */
const slowTransferMBps = '0.01';
const fastTransferMBps = 20;
/** ~1 KB values. */
const valueBytes = 1000;
/** How long a transition may take here before the test gives up. */
const transitionTimeoutMs = 30_000;
/** Attempts at one strong read before it counts as failed. */
const readAttemptsMax = 5;

function value(i: number): string {
  return `v${i}:`.padEnd(valueBytes, String.fromCharCode(97 + (i % 26)));
}

async function ringNow(cluster: TestCluster): Promise<Ring | undefined> {
  return newestRing(cluster.file(), adminDial(cluster.dir));
}

function inTransition(ring: Ring | undefined): boolean {
  return ring !== undefined && ring.next !== null && ring.next !== undefined;
}

/** Waits until no node's ring has a transition in progress. */
function transitionDone(cluster: TestCluster): Promise<Ring> {
  return ringAtRest(cluster, () => true);
}

/** Waits until the newest ring has no transition in progress and `also` holds. */
async function ringAtRest(cluster: TestCluster, also: (ring: Ring) => boolean): Promise<Ring> {
  const deadline = Date.now() + transitionTimeoutMs;
  for (;;) {
    const ring = await ringNow(cluster);
    if (ring && !inTransition(ring) && also(ring)) return ring;
    if (Date.now() > deadline) throw new Error(`transition not done after ${transitionTimeoutMs} ms (ring v${ring?.version})`);
    await sleep(200);
  }
}

/** Attempts at one write before the test gives up. */
const writeAttemptsMax = 5;

/** Writes every key at strong. A failed put may have been applied on some
 * replicas, so a retry reads first and writes with that context: the key
 * then holds one value, not two siblings of it. */
async function writeKeys(kv: TuneKvClient, count: number, prefix: string): Promise<void> {
  let next = 0;
  const writeOne = async (key: string, v: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const context = attempt === 1 ? undefined : (await kv.get(key, { consistency: 'strong' })).context;
        await kv.put(key, v, { consistency: 'strong', context });
        return;
      } catch (err) {
        if (!(err instanceof TuneKvError) || attempt >= writeAttemptsMax) throw err;
        await sleep(50 * attempt);
      }
    }
  };
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await writeOne(`${prefix}${i}`, value(i));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** A strong read, retried on failure (never on a wrong answer). */
async function strongGet(kv: TuneKvClient, key: string): Promise<{ values: unknown[]; context: string } | TuneKvError> {
  let last: TuneKvError | undefined;
  for (let attempt = 0; attempt < readAttemptsMax; attempt++) {
    try {
      return await kv.get(key, { consistency: 'strong' });
    } catch (err) {
      if (!(err instanceof TuneKvError)) throw err;
      last = err;
      await sleep(50 * (attempt + 1));
    }
  }
  return last!;
}

/** Reads every key at strong; returns the keys that came back wrong and
 * the reads that failed even after retries. */
async function readAll(kv: TuneKvClient, count: number, prefix: string): Promise<{ wrong: string[]; failed: string[] }> {
  const wrong: string[] = [];
  const failed: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const got = await strongGet(kv, `${prefix}${i}`);
      if (got instanceof TuneKvError) failed.push(`${prefix}${i}: ${got.code} ${got.message}`);
      else if (got.values.length !== 1 || got.values[0] !== value(i)) wrong.push(`${prefix}${i}: ${got.values.length} value(s) ${got.values.map((v) => String(v).slice(0, 8)).join(',')}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { wrong, failed };
}

// ---- read-modify-write counters ----

interface Counter {
  readonly key: string;
  /** The last value a put of ours was acknowledged for. */
  acked: number;
  /** The highest value acknowledged or read so far. */
  seen: number;
  /** The last put failed: it may or may not have been applied. */
  lastPutFailed: boolean;
  acks: number;
  readFailures: number;
  putFailures: number;
  siblingReads: number;
  /** Strong reads that returned less than `seen`. */
  readonly stale: string[];
  readonly errors: Map<string, number>;
}

function newCounter(key: string): Counter {
  return { key, acked: 0, seen: 0, lastPutFailed: false, acks: 0, readFailures: 0, putFailures: 0, siblingReads: 0, stale: [], errors: new Map() };
}

function countError(c: Counter, err: unknown): void {
  const code = err instanceof TuneKvError ? err.code : 'THROWN';
  c.errors.set(code, (c.errors.get(code) ?? 0) + 1);
  if (!(err instanceof TuneKvError)) throw err;
}

/** The counter's value in a read: the highest sibling (a failed put that
 * was applied anyway can leave two concurrent values). */
function counterValue(values: unknown[]): number {
  let v = 0;
  for (const x of values) {
    if (typeof x !== 'number') throw new Error(`counter holds ${typeof x}`);
    v = Math.max(v, x);
  }
  return v;
}

/** get(strong) then put(strong, value + 1, context), until `stop`. */
async function rmwLoop(kv: TuneKvClient, c: Counter, stop: () => boolean): Promise<void> {
  while (!stop()) {
    let got;
    try {
      got = await kv.get(c.key, { consistency: 'strong' });
    } catch (err) {
      c.readFailures++;
      countError(c, err);
      await sleep(20);
      continue;
    }
    const v = counterValue(got.values);
    if (got.values.length > 1) c.siblingReads++;
    if (v < c.seen) c.stale.push(`${c.key}: strong read ${v} after ${c.seen} (acked ${c.acked}) via ${got.coordinator}`);
    c.seen = Math.max(c.seen, v);
    try {
      await kv.put(c.key, v + 1, { consistency: 'strong', context: got.context });
      c.acked = v + 1;
      c.seen = Math.max(c.seen, c.acked);
      c.acks++;
      c.lastPutFailed = false;
    } catch (err) {
      c.putFailures++;
      c.lastPutFailed = true;
      countError(c, err);
      await sleep(20);
    }
  }
}

interface Load {
  readonly counters: Counter[];
  stop(): Promise<void>;
}

function startLoad(kv: TuneKvClient, prefix: string, clients: number): Load {
  const counters = Array.from({ length: clients }, (_, i) => newCounter(`${prefix}${i}`));
  let stopping = false;
  const loops = counters.map((c) => rmwLoop(kv, c, () => stopping));
  return {
    counters,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

/** Every invariant of the counters, once the load stopped. */
async function checkCounters(t: Test, kv: TuneKvClient, load: Load, ackedMin: number): Promise<void> {
  for (const c of load.counters) {
    t.same(c.stale, [], `${c.key}: no strong read went back in time`);
    t.ok(c.acks >= ackedMin, `${c.key}: ${c.acks} increments acknowledged (at least ${ackedMin})`, {
      readFailures: c.readFailures, putFailures: c.putFailures, errors: Object.fromEntries(c.errors),
    });
    const got = await strongGet(kv, c.key);
    if (got instanceof TuneKvError) {
      t.fail(`${c.key}: the final strong read failed: ${got.code} ${got.message}`);
      continue;
    }
    const final = counterValue(got.values);
    if (c.lastPutFailed) {
      t.ok(final === c.acked || final === c.acked + 1, `${c.key}: ends at ${final}: the last acknowledged ${c.acked} (or the failed put after it)`);
    } else {
      t.equal(final, c.acked, `${c.key}: ends at its last acknowledged value ${c.acked}`);
    }
    t.ok(final >= c.seen, `${c.key}: nothing read or acknowledged (${c.seen}) was lost`);
  }
  t.comment(`counters: ${load.counters.map((c) => `${c.key}=${c.acked} (${c.acks} acks, ${c.readFailures}/${c.putFailures} failed r/w, `
    + `${c.siblingReads} sibling reads${c.errors.size > 0 ? `, ${JSON.stringify(Object.fromEntries(c.errors))}` : ''})`).join('; ')}`);
}

/** The tunekv command run from `cwd` with no environment choosing its hosts. */
function tunekv(cwd: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const env = { ...process.env };
  for (const name of ['TUNEKV_HOST', 'TUNEKV_USER', 'TUNEKV_PASSWORD_FILE', 'TUNEKV_SECRET_FILE']) delete env[name];
  const r = spawnSync(process.execPath, [cliEntry, ...args], { cwd, env, encoding: 'utf8', timeout: 2 * transitionTimeoutMs });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('add two nodes, then n1 leaves: every strong write stays readable', async (t) => {
  const cluster = await testCluster(t, { localLayout: true, nodeArgs: [...fastNodeArgs, '--transfer-mbps', slowTransferMBps] });
  const kv = await connect({ hosts: cluster.hosts, timeoutMs: 3000 });
  t.teardown(() => kv.close());
  const keys = 300;
  await writeKeys(kv, keys, 'a:');

  // Through the CLI, as an operator would (it finds ./data/cluster).
  const addCli = tunekv(cluster.root, 'cluster', 'add', '--nodes', '2', '--json');
  t.equal(addCli.code, 0, 'cluster add --nodes 2 exits 0', { out: addCli.out, err: addCli.err });
  const added = JSON.parse(addCli.out) as { nodes: string[]; queued: boolean; ring: { members: { id: string; state: string }[] } };
  t.same(added.nodes, ['n4', 'n5'], 'the new nodes continue the ids');
  t.equal(added.queued, false, 'one plan, committed at once');
  t.same(added.ring.members.map((m) => m.id), ['n1', 'n2', 'n3', 'n4', 'n5'], 'the ring lists them when add returns');
  t.same(cluster.file().nodes.map((nd) => nd.id), ['n1', 'n2', 'n3', 'n4', 'n5'], 'cluster.json records them');
  t.same(await readAll(kv, keys, 'a:'), { wrong: [], failed: [] }, 'right after add: every key reads back at strong');

  // The slow limit holds the transition in its transfer phases.
  for (let pass = 1; pass <= 2; pass++) {
    t.same(await readAll(kv, keys, 'a:'), { wrong: [], failed: [] }, `during the transfer, pass ${pass}: every key reads back`);
    const ring = await ringNow(cluster);
    t.ok(inTransition(ring), `and the transition was still running after it (ring v${ring?.version})`);
  }
  const st = await cluster.status();
  const pending = st.nodes.filter((nd) => (nd.transfers?.partitionsPending ?? 0) > 0).map((nd) => nd.id);
  t.ok(pending.length > 0, `cluster status shows partitions still to receive (on ${pending.join(', ')})`);
  const etas = st.nodes.map((nd) => nd.transfers?.etaSeconds).filter((x): x is number => typeof x === 'number');
  t.ok(etas.length > 0 && etas.every((x) => x > 0), `and an ETA for them (${etas.join(', ')} s)`);
  const text = tunekv(cluster.root, 'status', '--host', cluster.hosts[0]!);
  t.equal(text.code, 0, 'tunekv status (text) exits 0', { err: text.err });
  t.match(text.out, /n4\s+joining/, 'and lists n4 as joining');
  t.match(text.out, /transition of plan \d+:/, 'and the transition');
  t.match(text.out, /stores \d+ keys/, 'and what the node stores');
  t.same(await cluster.transferLimit(fastTransferMBps), ['n1', 'n2', 'n3', 'n4', 'n5'], 'every node takes the raised transfer limit');
  const afterAdd = await transitionDone(cluster);
  t.same(afterAdd.members.map((m) => [m.id, m.state ?? 'valid']), ['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => [id, 'valid']), 'all five valid');
  t.same(await readAll(kv, keys, 'a:'), { wrong: [], failed: [] }, 'after the transfer: every key reads back');

  const leaveCli = tunekv(cluster.root, 'cluster', 'leave', 'n1', '--wait', '--timeout-ms', String(transitionTimeoutMs), '--json');
  t.equal(leaveCli.code, 0, 'cluster leave n1 --wait exits 0', { out: leaveCli.out, err: leaveCli.err });
  t.equal((JSON.parse(leaveCli.out) as { complete: boolean }).complete, true, 'leave --wait returns with the transition over');
  const n1Log = fs.readFileSync(cluster.file().nodes.find((nd) => nd.id === 'n1')!.logFile, 'utf8');
  t.match(n1Log, /handed off everything and leaves the cluster/, 'n1 handed off everything');
  t.match(n1Log, /left the cluster and stopped/, 'and stopped by itself');
  t.equal(cluster.file().nodes.find((nd) => nd.id === 'n1')?.left, true, 'cluster.json marks n1 left');
  t.equal(cluster.file().nodes.find((nd) => nd.id === 'n1')?.pid, null, 'and its process is gone');
  t.same(readCluster(cluster.dir)?.nodes.map((nd) => nd.id), ['n1', 'n2', 'n3', 'n4', 'n5'], 'n1 keeps its entry');
  t.same(await readAll(kv, keys, 'a:'), { wrong: [], failed: [] }, 'after n1 left: every key reads back at strong');

  const after = await cluster.status();
  t.equal(after.ring?.members, 4, 'status: 4 members');
  t.equal(after.ring?.transition, null, 'status: no transition');
  t.same(after.nodes.map((nd) => [nd.id, nd.state]), [['n1', 'left'], ['n2', 'valid'], ['n3', 'valid'], ['n4', 'valid'], ['n5', 'valid']],
    'status: n1 left, the rest valid');
  t.equal(after.nodes.filter((nd) => nd.state === 'valid').reduce((a, nd) => a + (nd.owns ?? 0), 0), 64, 'the four own all 64 partitions');
  // With N=3 of 4 members every node holds about three quarters of the keys.
  for (const nd of after.nodes.filter((x) => x.state === 'valid')) {
    t.ok(nd.keys !== null && nd.keys >= keys / 2 && nd.keys <= keys, `status: ${nd.id} stores ${nd.keys} of ${keys} keys`);
    t.ok(nd.dataBytes !== null && nd.dataBytes >= (nd.keys ?? 0) * valueBytes, `status: ${nd.id} stores ${nd.dataBytes} value bytes`);
  }

  // The CLI's default hosts skip n1, which left.
  const cliGet = tunekv(cluster.root, 'get', 'a:7', '--consistency', 'strong', '--json');
  t.equal(cliGet.code, 0, 'get without --host after n1 left', { out: cliGet.out, err: cliGet.err });
  t.same((JSON.parse(cliGet.out) as { values: string[] }).values, [value(7)], 'and reads the key');
  const cliStatus = tunekv(cluster.root, 'cluster', 'status', '--json');
  t.equal(cliStatus.code, 0, 'cluster status --json exits 0', { err: cliStatus.err });
  t.same((JSON.parse(cliStatus.out) as { nodes: { id: string; state: string }[] }).nodes.map((nd) => nd.state),
    ['left', 'valid', 'valid', 'valid', 'valid'], 'cluster status shows n1 as left');

  // A restart of the whole cluster skips n1.
  await kv.close();
  await cluster.stop();
  await cluster.start();
  const kv2 = await connect({ hosts: cluster.activeHosts(), timeoutMs: 3000 });
  t.teardown(() => kv2.close());
  t.equal(cluster.file().nodes.find((nd) => nd.id === 'n1')?.pid, null, 'restarting the cluster does not start n1');
  t.same(await readAll(kv2, keys, 'a:'), { wrong: [], failed: [] }, 'after a restart of the four: every key reads back');

  // remove is for a dead node only.
  const refused = tunekv(cluster.root, 'cluster', 'remove', 'n5', '--json');
  t.equal(refused.code, 2, 'cluster remove of a running node fails (INVALID_ARGUMENT: exit 2)');
  t.match(JSON.parse(refused.out), { error: { code: 'INVALID_ARGUMENT', message: /is running.*kill it first/i } }, 'and says to kill it first');
  await cluster.transferLimit(fastTransferMBps);
  await cluster.kill('n5');
  const removeCli = tunekv(cluster.root, 'cluster', 'remove', 'n5', '--wait', '--timeout-ms', String(transitionTimeoutMs), '--json');
  t.equal(removeCli.code, 0, 'cluster remove n5 --wait exits 0', { out: removeCli.out, err: removeCli.err });
  t.same((JSON.parse(removeCli.out) as { ring: { members: { id: string }[] } }).ring.members.map((m) => m.id), ['n2', 'n3', 'n4'], 'n2, n3, n4 remain');
  t.equal(cluster.file().nodes.find((nd) => nd.id === 'n5')?.removed, true, 'cluster.json marks n5 removed');
  t.same(await readAll(kv2, keys, 'a:'), { wrong: [], failed: [] }, 'after n5 was removed: every key reads back at strong');
  const tooFew = tunekv(cluster.root, 'cluster', 'leave', 'n2', '--json');
  t.equal(tooFew.code, 5, 'a leave that would leave fewer than n members fails (refused by a rule: exit 5)');
  t.match(JSON.parse(tooFew.out), { error: { code: 'CHANGE_REFUSED' } }, 'coded CHANGE_REFUSED');
});

t.test('strong read-modify-write while two nodes join and n1 leaves', async (t) => {
  const cluster = await testCluster(t, { nodeArgs: [...fastNodeArgs, '--transfer-mbps', slowTransferMBps] });
  const kv = await connect({ hosts: cluster.hosts, timeoutMs: 3000 });
  t.teardown(() => kv.close());
  await writeKeys(kv, 200, 'b:');
  const load = startLoad(kv, 'b:counter:', 4);
  await sleep(500);
  await cluster.add(2);
  // Committed while the joins are in transition: queued behind them. n1
  // is the claimant; the next valid member takes over once it leaves.
  const leave = await cluster.leave('n1');
  t.equal(leave.queued, true, 'the leave is queued behind the joins');
  await sleep(2000);
  t.ok(inTransition(await ringNow(cluster)), 'the clients ran 2 s against the slowed transition');
  await cluster.transferLimit(fastTransferMBps);
  const ring = await ringAtRest(cluster, (r) => r.members.every((m) => m.id !== 'n1'));
  const n1 = cluster.file().nodes.find((nd) => nd.id === 'n1')!;
  for (const deadline = Date.now() + transitionTimeoutMs; isNodeProcess(n1.pid, 'n1') && Date.now() < deadline;) await sleep(100);
  t.notOk(isNodeProcess(n1.pid, 'n1'), 'n1 exited by itself once it handed everything off');
  await sleep(500);
  await load.stop();
  t.same(ring.members.map((m) => [m.id, m.state ?? 'valid']), ['n2', 'n3', 'n4', 'n5'].map((id) => [id, 'valid']), 'n2..n5, all valid');
  t.equal(inTransition(await ringNow(cluster)), false, 'transfers completed');
  t.same((await cluster.status()).nodes.map((nd) => [nd.id, nd.state]), [['n1', 'left'], ...['n2', 'n3', 'n4', 'n5'].map((id) => [id, 'valid'])],
    'cluster status marks n1 left');
  await checkCounters(t, kv, load, 5);
  t.same(await readAll(kv, 200, 'b:'), { wrong: [], failed: [] }, 'every key written before reads back at strong');
});

t.test('a joining node killed with SIGKILL mid-transfer, then restarted', async (t) => {
  const cluster = await testCluster(t, { nodeArgs: [...fastNodeArgs, '--transfer-mbps', slowTransferMBps] });
  const kv = await connect({ hosts: cluster.hosts, timeoutMs: 3000 });
  t.teardown(() => kv.close());
  const keys = 300;
  await writeKeys(kv, keys, 'c:');
  const load = startLoad(kv, 'c:counter:', 4);
  await cluster.add(1);
  const n4 = cluster.file().nodes.find((nd) => nd.id === 'n4')!;
  // Mid-transfer: n4 has received keys and still has partitions to receive.
  const dial = adminDial(cluster.dir);
  let before: { keysReceived: number; partitionsPending: number } | undefined;
  const deadline = Date.now() + transitionTimeoutMs;
  for (;;) {
    const st = await probe(n4.host, n4.port, 1000, dial);
    const tr = st?.transfers as { keysReceived: number; partitionsPending: number } | undefined;
    if (tr && tr.keysReceived > 0 && tr.partitionsPending > 0) { before = tr; break; }
    if (Date.now() > deadline || !inTransition(await ringNow(cluster))) break;
    await sleep(50);
  }
  t.ok(before, 'n4 was caught in the middle of its transfer', { before });
  await cluster.kill('n4');
  t.ok(inTransition(await ringNow(cluster)), 'the transition is still running with n4 dead');
  await sleep(1000);
  await cluster.restart('n4');
  t.ok(inTransition(await ringNow(cluster)), 'n4 restarted while the transition still runs');
  await sleep(500);
  await load.stop();
  // The whole cluster stopped and started in the middle of the transition:
  // the start returns (it does not wait for the slow transfer) and the
  // transition resumes from the nodes' stored rings and cursors.
  await cluster.stop();
  await cluster.start();
  t.ok(inTransition(await ringNow(cluster)), 'cluster start returned with the transition still running');
  t.same(await cluster.transferLimit(fastTransferMBps), ['n1', 'n2', 'n3', 'n4'], 'the limit is lifted, on every restarted node');
  const ring = await transitionDone(cluster);
  t.same(ring.members.map((m) => [m.id, m.state ?? 'valid']), ['n1', 'n2', 'n3', 'n4'].map((id) => [id, 'valid']), 'n4 joined after all');
  await checkCounters(t, kv, load, 5);
  t.same(await readAll(kv, keys, 'c:'), { wrong: [], failed: [] }, 'every key written before reads back at strong');
});

t.test('a removed node that comes back with its old data is refused and stops by itself', async (t) => {
  const cluster = await testCluster(t, { nodes: 4, localLayout: true, nodeArgs: fastNodeArgs });
  const kv = await connect({ hosts: cluster.hosts, timeoutMs: 3000 });
  t.teardown(() => kv.close());
  await writeKeys(kv, 100, 'r:');
  const n4Args = cluster.file().nodes.find((nd) => nd.id === 'n4')!;
  await cluster.kill('n4');
  const removed = await cluster.remove('n4', { wait: true, waitTimeoutMs: transitionTimeoutMs });
  t.same(removed.ring.members.map((m) => m.id), ['n1', 'n2', 'n3'], 'n4 removed');

  // The launcher refuses to start it again...
  const refused = tunekv(cluster.root, 'cluster', 'restart', 'n4');
  t.equal(refused.code, 2, 'cluster restart n4 fails (INVALID_ARGUMENT: exit 2)');
  t.match(refused.err + refused.out, /was removed from this cluster/, 'because it was removed');

  // ...so an operator starts it by hand, on its old data directory.
  const child = spawn(process.execPath, [cliEntry, 'node', '--id', 'n4', '--listen', `${n4Args.host}:${n4Args.port}`, '--data', n4Args.dataDir,
    '--secret-file', secretFileOf(cluster.dir), ...fastNodeArgs, '--metrics', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const exited = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => resolve(-1), transitionTimeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
  t.not(exited, -1, 'the returning n4 stops by itself', { out });
  t.match(out, /was removed from the cluster/, 'and says it was removed');
  t.match(out, /Wipe .* and join it anew/, 'and how to bring it back');

  // Nor under another id (its data directory is still n4's), nor a fresh
  // node under a member's id: each is refused and stops at once.
  const freshDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-impostor-'));
  t.teardown(() => fs.rmSync(freshDir, { recursive: true, force: true }));
  const seed = cluster.hosts[0]!;
  for (const [id, dataDir, what] of [['n9', n4Args.dataDir, /data directory was n4's/], ['n2', freshDir, /already a member, with another data directory/]] as const) {
    const r = spawnSync(process.execPath, [cliEntry, 'node', '--id', id, '--listen', `${n4Args.host}:${n4Args.port}`, '--data', dataDir,
      '--secret-file', secretFileOf(cluster.dir), ...fastNodeArgs, '--metrics', 'off', '--join', seed], { encoding: 'utf8', timeout: transitionTimeoutMs });
    t.equal(r.status, 5, `${id} on ${dataDir === freshDir ? 'a fresh directory' : "n4's directory"} is refused and exits 5 (CHANGE_REFUSED)`, { out: r.stdout, err: r.stderr });
    t.match(r.stdout + r.stderr, /CHANGE_REFUSED/, 'coded CHANGE_REFUSED');
    t.match(r.stdout + r.stderr, what, 'saying why');
  }

  // The others never took any of them: three members, every key readable.
  const ring = await ringNow(cluster);
  t.same(ring?.members.map((m) => m.id), ['n1', 'n2', 'n3'], 'the ring still has three members');
  t.same(await readAll(kv, 100, 'r:'), { wrong: [], failed: [] }, 'every key reads back at strong');

  // A node on standby answers status and takes a transfer limit.
  const standbyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-standby-'));
  t.teardown(() => fs.rmSync(standbyDir, { recursive: true, force: true }));
  const both = tunekv(cluster.root, 'node', '--id', 'n8', '--listen', `${n4Args.host}:${n4Args.port}`, '--data', freshDir, '--standby', '--join', seed);
  t.equal(both.code, 2, '--standby with --join is a usage error');
  const standby = spawn(process.execPath, [cliEntry, 'node', '--id', 'n8', '--listen', `${n4Args.host}:${n4Args.port}`, '--data', freshDir,
    '--secret-file', secretFileOf(cluster.dir), '--standby', '--metrics', 'off'].map((a) => (a === freshDir ? standbyDir : a)), { stdio: 'ignore' });
  t.teardown(() => { if (standby.exitCode === null) standby.kill('SIGKILL'); });
  const at = `${n4Args.host}:${n4Args.port}`;
  let st = tunekv(cluster.root, 'status', '--host', at, '--json');
  for (let i = 0; i < 50 && st.code !== 0; i++) { await sleep(100); st = tunekv(cluster.root, 'status', '--host', at, '--json'); }
  t.equal(st.code, 0, 'status of a standby node answers', { out: st.out, err: st.err });
  t.match(JSON.parse(st.out), { nodeId: 'n8', ready: false, ring: null }, 'not ready, no ring');
  const limit = tunekv(cluster.root, 'transfer-limit', '5', '--host', at);
  t.equal(limit.code, 0, 'and takes a transfer limit', { out: limit.out, err: limit.err });
  const hex = tunekv(cluster.root, 'transfer-limit', '0x10', '--host', at);
  t.equal(hex.code, 2, 'a limit in hex is a usage error');
});
