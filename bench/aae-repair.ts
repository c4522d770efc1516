// Anti-entropy at scale: how long it takes to repair `divergent` keys among
// `total`, and what it costs.
//
//   node dist/bench/aae-repair.js [--total 1000000] [--divergent 10000] [--aae-keys-per-sec 10000]
//
// A 3-node cluster (N=3, so every node holds every key) is created, stopped,
// and loaded straight into LevelDB: `total` identical keys on every node,
// except `divergent` of them missing on n3. The cluster is started again
// and timed: node start (which rebuilds each node's segment hashes from
// storage), then until anti-entropy has repaired every missing key, which
// is then checked in n3's storage.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { adminAuth, probe, readCluster, startCluster, stopCluster } from '../cluster/launcher.js';
import { update } from '../src/core/clock/object.js';
import { emptyClock } from '../src/core/clock/vclock.js';
import { LevelStorage } from '../src/io/level-storage.js';
import type { StorageOp } from '../src/io/storage.js';
import { encodeObject } from '../src/protocol/object-codec.js';
import { dataKey, dataKeyRange } from '../src/server/keyspace.js';

const { values } = parseArgs({
  options: {
    total: { type: 'string', default: '1000000' },
    divergent: { type: 'string', default: '10000' },
    'aae-keys-per-sec': { type: 'string', default: '10000' },
  },
});
const total = Number(values.total);
const divergent = Number(values.divergent);
const nodeArgs = ['--aae-interval-ms', '1000', '--aae-keys-per-sec', values['aae-keys-per-sec']!];

async function load(dir: string, id: string, skip: (i: number) => boolean): Promise<void> {
  const storage = new LevelStorage(path.join(dir, id));
  await storage.open();
  let batch: StorageOp[] = [];
  for (let i = 0; i < total; i++) {
    if (skip(i)) continue;
    const key = `aae:${i}`;
    const obj = update(undefined, { actor: 'n1', value: Buffer.from(`value-${i}`.padEnd(100, '.')), vtype: 1, context: emptyClock, nowMs: 1_700_000_000_000, lww: false, wid: null });
    batch.push({ key: dataKey(key), value: encodeObject(obj) });
    if (batch.length === 10_000) { await storage.write(batch, false); batch = []; }
  }
  if (batch.length > 0) await storage.write(batch, false);
  await storage.close();
}

async function countKeys(dir: string, id: string): Promise<number> {
  const storage = new LevelStorage(path.join(dir, id));
  await storage.open();
  let n = 0;
  let gte: string = dataKeyRange.gte;
  for (;;) {
    const page = await storage.range({ gte, lt: dataKeyRange.lt, limit: 50_000 });
    n += page.length;
    if (page.length < 50_000) break;
    gte = `${page[page.length - 1]![0]}\0`;
  }
  await storage.close();
  return n;
}

interface Aae { rounds: number; exchanges: number; segmentsDiffering: number; keysCompared: number; keysRepaired: number }

/** True once every node has finished a round, begun after `sinceRounds`,
 * that found nothing differing. */
async function inSync(dir: string, sinceRounds: Map<string, number>): Promise<boolean> {
  for (const nd of readCluster(dir)!.nodes) {
    const a = (await probe(nd.host, nd.port, 5000, adminAuth(dir)))?.antiEntropy as { rounds: number; lastRoundSegmentsDiffering: number } | undefined;
    if (!a || a.rounds <= (sinceRounds.get(nd.id) ?? 0) + 1 || a.lastRoundSegmentsDiffering !== 0) return false;
  }
  return true;
}

async function aaeTotals(dir: string): Promise<Aae> {
  const sum: Aae = { rounds: 0, exchanges: 0, segmentsDiffering: 0, keysCompared: 0, keysRepaired: 0 };
  for (const nd of readCluster(dir)!.nodes) {
    const a = (await probe(nd.host, nd.port, 5000, adminAuth(dir)))?.antiEntropy as Aae | undefined;
    if (!a) continue;
    for (const k of Object.keys(sum) as (keyof Aae)[]) sum[k] += a[k];
  }
  return sum;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-aae-'));
  const opts = { dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {}, nodeArgs };
  try {
    await startCluster(opts);
    await stopCluster(dir, () => {});
    const every = Math.floor(total / divergent);
    const missingOnN3 = (i: number) => i % every === 0 && i / every < divergent;
    const l0 = Date.now();
    await Promise.all([load(dir, 'n1', () => false), load(dir, 'n2', () => false), load(dir, 'n3', missingOnN3)]);
    console.log(`loaded ${total} keys on n1 and n2, ${total - divergent} on n3, in ${((Date.now() - l0) / 1000).toFixed(1)} s`);
    const s0 = Date.now();
    await startCluster(opts);
    const startMs = Date.now() - s0;
    const r0 = Date.now();
    const roundsAtStart = new Map<string, number>();
    for (const nd of readCluster(dir)!.nodes) {
      roundsAtStart.set(nd.id, ((await probe(nd.host, nd.port, 5000, adminAuth(dir)))?.antiEntropy as { rounds: number }).rounds);
    }
    while (!(await inSync(dir, roundsAtStart))) await new Promise((r) => setTimeout(r, 100));
    const repairMs = Date.now() - r0;
    const a = await aaeTotals(dir);
    await stopCluster(dir, () => {});
    const onN3 = await countKeys(dir, 'n3');
    console.log(`cluster started (segment hashes rebuilt from ${total} keys per node) in ${(startMs / 1000).toFixed(1)} s`);
    console.log(`anti-entropy repaired ${a.keysRepaired} keys; every node then finished a round finding nothing, ${(repairMs / 1000).toFixed(1)} s after start (rounds every 1 s, aaeKeysPerSecMax ${values['aae-keys-per-sec']})`);
    console.log(`cost: ${a.exchanges} partition exchanges, ${a.segmentsDiffering} differing segments, ${a.keysCompared} keys compared (of ${total * 3} stored)`);
    console.log(`n3 now holds ${onN3} of ${total} keys${onN3 === total ? ': fully repaired' : ': NOT fully repaired'}`);
  } finally {
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => { console.error(err); process.exit(1); });
