// Adding a node to a populated cluster: how long the transfer takes, at
// what rate, and what clients at `quorum` see before and during it.
//
//   node dist/bench/add-node.js [--keys 100000] [--value-bytes 100] [--mbps 20] [--concurrency 64]
//                               [--dir DIR --snapshot SNAP]
//
// Loading a million keys takes a while, so with --dir and --snapshot the
// loaded 3-node cluster is kept: the first run loads it in DIR, stops it
// and copies DIR to SNAP; later runs copy SNAP back to DIR (the same path:
// cluster.json names its files) and restart it instead of loading.
//
// A 3-node cluster (N=3, Q=64, `cluster start`) is loaded with `keys`
// values at quorum; then `cluster add` (the launcher's addNodes: a fourth
// node on standby, its join staged and committed) runs with every node's
// transfer limit set to `mbps`, and is timed until the new node is valid and
// no transition is in progress. Meanwhile one reader issues quorum gets over
// the loaded keys, one at a time; its latencies are split into before (the
// 5 s before the add) and during. Prints the time, what the new node
// received per second, p50/p99/max, and the CPU every node process spent
// during the transfer (from /proc/PID/stat).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { addNodes, adminAuth, adminCall, adminDial, probe, readCluster, secretFileOf, startCluster, stopCluster } from '../cluster/launcher.js';
import { MsgType } from '../src/protocol/messages.js';
import { processCpuSeconds } from './cpu.js';
import { connect } from '../src/index.js';
import { readSecretFile } from '../src/security/secret.js';

const { values } = parseArgs({ options: {
  keys: { type: 'string', default: '100000' }, 'value-bytes': { type: 'string', default: '100' },
  mbps: { type: 'string', default: '20' }, concurrency: { type: 'string', default: '64' },
  dir: { type: 'string' }, snapshot: { type: 'string' },
} });
const keys = Number(values.keys);
const concurrency = Number(values.concurrency);
const mbps = Number(values.mbps);
const valueBytes = Number(values['value-bytes']);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  if ((values.dir === undefined) !== (values.snapshot === undefined)) throw new TypeError('--dir and --snapshot go together');
  const dir = values.dir !== undefined ? path.resolve(values.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-add-'));
  const snapshot = values.snapshot !== undefined ? path.resolve(values.snapshot) : undefined;
  try {
    const fromSnapshot = snapshot !== undefined && fs.existsSync(snapshot);
    if (fromSnapshot) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.cpSync(snapshot, dir, { recursive: true });
      await startCluster({ dir, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {} });
      console.log(`restarted the loaded cluster copied from ${snapshot}`);
    } else {
      if (snapshot !== undefined) fs.rmSync(dir, { recursive: true, force: true });
      await startCluster({ dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {} });
    }
    const hosts = readCluster(dir)!.nodes.map((nd) => `${nd.host}:${nd.port}`);
    const kv = await connect({ hosts, timeoutMs: 10_000, secret: readSecretFile(secretFileOf(dir)) });
    if (!fromSnapshot) {
      const value = 'x'.repeat(valueBytes);
      let next = 0;
      let loadRetries = 0;
      const t0 = Date.now();
      let lastLog = t0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < keys) {
          const i = next++;
          // A loaded machine may time a put out: retry it (with what is
          // there as context, so a put that did land is not doubled).
          for (let attempt = 1; ; attempt++) {
            try {
              const got = attempt === 1 ? undefined : await kv.get(`add:${i}`).catch(() => undefined);
              await kv.put(`add:${i}`, value, got?.context ? { context: got.context } : {});
              break;
            } catch (err) {
              loadRetries++;
              if (attempt >= 5) throw err;
            }
          }
          if (Date.now() - lastLog > 10_000) { lastLog = Date.now(); console.log(`  loaded ${i} keys`); }
        }
      }));
      console.log(`loaded ${keys} keys of ${valueBytes} bytes at quorum in ${((Date.now() - t0) / 1000).toFixed(1)} s (${loadRetries} puts retried)`);
      if (snapshot !== undefined) {
        await stopCluster(dir, () => {});
        fs.cpSync(dir, snapshot, { recursive: true });
        await startCluster({ dir, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {} });
        console.log(`kept a copy of the loaded cluster in ${snapshot}`);
      }
    }
    // Let the restarted nodes settle (anti-entropy builds, gossip) first.
    await sleep(5000);

    // A reader at quorum, throughout.
    const lat: { at: number; ms: number; ok: boolean }[] = [];
    /** What the reads that did not return the one value were, by kind. */
    const misses = new Map<string, number>();
    const miss = (kind: string): false => { misses.set(kind, (misses.get(kind) ?? 0) + 1); return false; };
    let reading = true;
    const reader = (async () => {
      let i = 0;
      while (reading) {
        const s = performance.now();
        const ok = await kv.get(`add:${(i++ * 7919) % keys}`, { consistency: 'quorum' }).then(
          (r) => r.values.length === 1 || miss(r.values.length === 0 ? 'not found' : 'siblings'),
          (err: unknown) => {
            const code = (err as { code?: string }).code ?? String(err);
            if (!misses.has(code)) console.log(`  first ${code}: ${(err as Error).message} ${JSON.stringify((err as { details?: unknown }).details)}`);
            return miss(code);
          });
        lat.push({ at: Date.now(), ms: performance.now() - s, ok });
      }
    })();
    await sleep(5000);
    const pidsBefore = (readCluster(dir)?.nodes ?? []).map((nd) => nd.pid);
    const cpuBefore = pidsBefore.map(processCpuSeconds);
    const c0 = Date.now();
    let added: string[] = [];
    // Every node's limit, the new one's too: it takes the limit once it answers.
    const limitAll = async (): Promise<void> => {
      const dial = adminDial(dir);
      for (const nd of readCluster(dir)?.nodes ?? []) {
        await adminCall(dial, nd, MsgType.TRANSFER_LIMIT, { mbps }).catch(() => undefined);
      }
    };
    await limitAll();
    const adding = addNodes(dir, 1, { wait: true, waitTimeoutMs: 3_600_000, log: (l) => console.log(`  ${l}`) })
      .then((r) => { added = r.nodes; });
    await sleep(300);
    await limitAll();
    await adding;
    const doneMs = Date.now() - c0;
    reading = false;
    await reader;
    const c = readCluster(dir)!;
    const cpuAfter = c.nodes.map((nd) => processCpuSeconds(nd.pid));
    const cpuDuring = cpuAfter.reduce((a, x, i) => a + x - (cpuBefore[i] ?? 0), 0);
    const newNode = c.nodes.find((nd) => nd.id === added[0])!;
    const st = await probe(newNode.host, newNode.port, 2000, adminAuth(dir));
    const tr = (st?.transfers ?? {}) as { keysReceived?: number; bytesReceived?: number };
    const before = lat.filter((x) => x.at < c0);
    const during = lat.filter((x) => x.at >= c0);
    const line = (name: string, xs: typeof lat): string => {
      const ms = xs.map((x) => x.ms);
      return `quorum get ${name}: ${xs.length} reads (${xs.filter((x) => !x.ok).length} failed or missing), `
        + `p50 ${pct(ms, 50).toFixed(2)} ms, p99 ${pct(ms, 99).toFixed(2)} ms, max ${ms.reduce((a, x) => Math.max(a, x), 0).toFixed(1)} ms`;
    };
    console.log(`added ${newNode.id} to 3 nodes holding ${keys} keys: the add returned ${(doneMs / 1000).toFixed(1)} s after it began (joined, transferred, flipped)`);
    console.log(`${newNode.id} received ${tr.keysReceived} keys, ${((tr.bytesReceived ?? 0) / 1e6).toFixed(1)} MB: `
      + `${Math.round((tr.keysReceived ?? 0) / (doneMs / 1000))} keys/s, ${((tr.bytesReceived ?? 0) / 1e6 / (doneMs / 1000)).toFixed(2)} MB/s (limit ${mbps} MB/s)`);
    console.log(`CPU of all node processes during the add: ${cpuDuring.toFixed(1)} s (${os.cpus().length} cores, ${(cpuDuring / (doneMs / 1000) * 100).toFixed(0)}% of one)`);
    console.log(line('before', before));
    console.log(line('during', during));
    if (misses.size > 0) console.log(`reads that did not return the value: ${JSON.stringify(Object.fromEntries(misses))}`);
    await kv.close();
  } finally {
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}


main().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
