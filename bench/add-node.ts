// Adding a node to a populated cluster: how long the transfer takes, at
// what rate, and what clients at `quorum` see before and during it.
//
//   node dist/bench/add-node.js [--keys 100000] [--mbps 20] [--concurrency 64]
//
// A 3-node cluster (N=3, Q=64) is loaded with `keys` 100-byte values at
// quorum; a fourth node is started on standby and joined (stage + commit);
// the transfer is timed until no transition is in progress. Meanwhile a
// reader issues quorum gets over the loaded keys, and its latencies are
// split into before (the 3 s before the commit) and during. Prints the
// time, keys and bytes received per second by the new node, p50/p99.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { adminAuth, cliEntry, probe, secretFileOf, startCluster, stopCluster } from '../cluster/launcher.js';
import { connect } from '../src/index.js';
import { readSecretFile } from '../src/security/secret.js';

const { values } = parseArgs({ options: {
  keys: { type: 'string', default: '100000' }, mbps: { type: 'string', default: '20' }, concurrency: { type: 'string', default: '64' },
} });
const keys = Number(values.keys);
const concurrency = Number(values.concurrency);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-add-'));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const started = await startCluster({ dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {} });
    const hosts = started.cluster.nodes.map((nd) => `${nd.host}:${nd.port}`);
    const kv = await connect({ hosts, timeoutMs: 10_000, secret: readSecretFile(secretFileOf(dir)) });
    const value = 'x'.repeat(100);
    let next = 0;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < keys) { const i = next++; await kv.put(`add:${i}`, value); }
    }));
    console.log(`loaded ${keys} keys in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // The fourth node, on standby.
    const port = started.cluster.nodes[2]!.port + 10;
    const addr = `127.0.0.1:${port}`;
    const data = path.join(dir, 'n4');
    fs.mkdirSync(data);
    child = spawn(process.execPath, [cliEntry, 'node', '--id', 'n4', '--listen', addr, '--data', data, '--standby',
      '--secret-file', secretFileOf(dir), '--transfer-mbps', String(values.mbps), '--metrics', 'off'], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await probe('127.0.0.1', port, 500, adminAuth(dir))); i++) await new Promise((r) => setTimeout(r, 100));
    // A reader at quorum, throughout.
    const lat: { at: number; ms: number }[] = [];
    let reading = true;
    const reader = (async () => {
      let i = 0;
      while (reading) {
        const s = performance.now();
        await kv.get(`add:${(i++ * 7919) % keys}`).catch(() => undefined);
        lat.push({ at: Date.now(), ms: performance.now() - s });
      }
    })();
    await new Promise((r) => setTimeout(r, 3000));
    const c0 = Date.now();
    await kv.stage({ op: 'join', addr }, hosts[0]);
    await kv.commit(hosts[0]);
    let st: Record<string, unknown> | undefined;
    for (;;) {
      st = await probe('127.0.0.1', started.cluster.nodes[0]!.port, 2000, adminAuth(dir));
      const ring = st?.ring as { next?: unknown } | null | undefined;
      if (ring && (ring as { members?: unknown[] }).members?.length === 4 && (ring.next === null || ring.next === undefined)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const doneMs = Date.now() - c0;
    reading = false;
    await reader;
    const n4 = await probe('127.0.0.1', port, 2000, adminAuth(dir));
    const tr = (n4?.transfers ?? {}) as { keysReceived?: number; bytesReceived?: number };
    const before = lat.filter((x) => x.at < c0).map((x) => x.ms);
    const during = lat.filter((x) => x.at >= c0).map((x) => x.ms);
    console.log(`added n4 to 3 nodes holding ${keys} keys: transition done ${(doneMs / 1000).toFixed(1)} s after the commit`);
    console.log(`n4 received ${tr.keysReceived} keys, ${((tr.bytesReceived ?? 0) / 1e6).toFixed(1)} MB: ${Math.round((tr.keysReceived ?? 0) / (doneMs / 1000))} keys/s, ${((tr.bytesReceived ?? 0) / 1e6 / (doneMs / 1000)).toFixed(1)} MB/s (limit ${values.mbps} MB/s)`);
    console.log(`quorum get before: ${before.length} reads, p50 ${pct(before, 50).toFixed(2)} ms, p99 ${pct(before, 99).toFixed(2)} ms`);
    console.log(`quorum get during: ${during.length} reads, p50 ${pct(during, 50).toFixed(2)} ms, p99 ${pct(during, 99).toFixed(2)} ms`);
    await kv.close();
  } finally {
    child?.kill('SIGKILL');
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
