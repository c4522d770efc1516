// Hint drain rate: how fast a node catches up from hints when it returns.
//
//   node dist/bench/handoff-drain.js [--keys 50000] [--concurrency 64]
//
// A 5-node cluster (N=3); n3 is killed; `keys` quorum writes go in, so the
// fallbacks hold a hint for every key whose primaries include n3; n3 is
// restarted and the hints are timed until none is left. Prints the hint
// count, the drain time and keys/s, with handoffKeysPerSecMax (the limit).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { adminAuth, killNode, probe, readCluster, restartNode, startCluster, stopCluster } from '../cluster/launcher.js';
import { connect } from '../src/index.js';
import { defaultConfig } from '../src/config.js';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '50000' }, concurrency: { type: 'string', default: '64' } } });
const keys = Number(values.keys);
const concurrency = Number(values.concurrency);

async function hintsPending(dir: string): Promise<number> {
  let total = 0;
  for (const nd of readCluster(dir)!.nodes) {
    const st = await probe(nd.host, nd.port, 5000, adminAuth(dir));
    total += (st?.hints as { pending?: number } | undefined)?.pending ?? 0;
  }
  return total;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-handoff-'));
  try {
    const started = await startCluster({
      dir, nodes: 5, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {},
      nodeArgs: ['--gossip-ms', '100', '--suspect-ms', '500', '--down-ms', '1000'],
    });
    const hosts = started.cluster.nodes.filter((nd) => nd.id !== 'n3').map((nd) => `${nd.host}:${nd.port}`);
    await killNode(dir, 'n3');
    const kv = await connect({ hosts, timeoutMs: 10_000 });
    let next = 0;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < keys) { const i = next++; await kv.put(`drain:${i}`, `value-${i}`); }
    }));
    const writeSecs = (Date.now() - t0) / 1000;
    await kv.close();
    const hints = await hintsPending(dir);
    const r0 = Date.now();
    await restartNode(dir, 'n3');
    const answeredMs = Date.now() - r0;
    while ((await hintsPending(dir)) > 0) await new Promise((r) => setTimeout(r, 20));
    const drainMs = Date.now() - r0;
    console.log(`hint drain: ${keys} quorum writes with n3 down (${Math.round(keys / writeSecs)} writes/s), ${hints} hints held for n3`);
    console.log(`n3 restarted and answering after ${answeredMs} ms; every hint delivered ${drainMs} ms after the restart began`);
    console.log(`drain rate: ${Math.round(hints / ((drainMs - answeredMs) / 1000))} keys/s after n3 answered (${Math.round(hints / (drainMs / 1000))} keys/s counting its start); limit handoffKeysPerSecMax=${defaultConfig.handoffKeysPerSecMax} per fallback node`);
  } finally {
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => { console.error(err); process.exit(1); });
