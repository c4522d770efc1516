// What sessions cost: a write through one node read back at once through
// another, the case read-your-writes is about. Three ways to read it back:
// a plain `eventual` read, a plain `quorum` read, and a session `eventual`
// read (kv.session()). Each runs with no injected delay and with
// --delay-ms between nodes (the fault layer, as `cluster faults
// --delay-ms` sets it), on its own 3-node cluster (N=3) on free ports.
//
//   node dist/bench/session-cost.js [--rounds 200] [--delay-ms 20] [--warmup 100]
//
// Every round writes a fresh key at `eventual` through n1 (the session's
// own put for the session mode), then reads it through n2. Reported per
// mode: read latency p50/p99 (ms, from an HDR histogram), the fraction of
// reads that were behind (did not return the write just acknowledged), and
// for sessions the fraction that had to look further than the first
// replica (and the ones that failed SESSION_UNAVAILABLE: none expected).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { readCluster, setLinkFaults, startCluster, stopCluster } from '../cluster/launcher.js';
import { connect, TuneKvError } from '../src/index.js';
import type { TuneKvClient } from '../src/index.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '200' },
    'delay-ms': { type: 'string', default: '20' },
    warmup: { type: 'string', default: '100' },
  },
});
const rounds = Number(values.rounds);
const delayMs = Number(values['delay-ms']);
const warmup = Number(values.warmup);
if (!(rounds > 0) || !(delayMs >= 0) || !(warmup >= 0)) throw new TypeError('--rounds, --delay-ms and --warmup take numbers');

type Mode = 'plain eventual' | 'plain quorum' | 'session eventual';
const modes: Mode[] = ['plain eventual', 'plain quorum', 'session eventual'];

interface Row { delayMs: number; mode: Mode; p50: number; p99: number; behind: number; lookedFurther: number; failed: number }

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

async function measure(kv: TuneKvClient, n1: string, n2: string, mode: Mode, delay: number, count: number, tag: string): Promise<Row> {
  const h = histogram();
  let behind = 0;
  let further = 0;
  let failed = 0;
  const s = kv.session();
  for (let i = 0; i < count; i++) {
    const key = `bench:${tag}:${delay}:${mode}:${i}`;
    const value = `v${i}`;
    if (mode === 'session eventual') await s.put(key, value, { consistency: 'eventual', host: n1 });
    else await kv.put(key, value, { consistency: 'eventual', host: n1 });
    const started = process.hrtime.bigint();
    try {
      const got = mode === 'session eventual'
        ? await s.get(key, { consistency: 'eventual', host: n2 })
        : await kv.get(key, { consistency: mode === 'plain quorum' ? 'quorum' : 'eventual', host: n2 });
      h.recordValue(Number((process.hrtime.bigint() - started) / 1000n));
      if (!got.values.includes(value)) behind++;
      if ((got.lookedFurther ?? 0) > 0) further++;
    } catch (err) {
      if (!(err instanceof TuneKvError)) throw err;
      failed++;
    }
  }
  const row = {
    delayMs: delay, mode, p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000,
    behind: behind / count, lookedFurther: further / count, failed,
  };
  h.destroy();
  return row;
}

async function main(): Promise<void> {
  console.log(`session-cost: rounds ${rounds} per mode, warm-up ${warmup}, delays 0 and ${delayMs} ms one way between nodes; `
    + `3 nodes, N=3, no fsync; node ${process.version}, ${os.cpus().length} CPUs`);
  const rows: Row[] = [];
  for (const delay of [0, delayMs]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-session-cost-'));
    try {
      await startCluster({ dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {}, nodeArgs: [] });
      const hosts = readCluster(dir)!.nodes.map((nd) => `${nd.host}:${nd.port}`);
      const [n1, n2] = hosts as [string, string];
      if (delay > 0) await setLinkFaults(dir, { delayMs: delay, jitterMs: 0, loss: 0 });
      const kv = await connect({ hosts: [n1], timeoutMs: 5000 });
      try {
        for (const mode of modes) await measure(kv, n1, n2, mode, delay, warmup, 'warm');
        for (const mode of modes) rows.push(await measure(kv, n1, n2, mode, delay, rounds, 'run'));
      } finally {
        await kv.close();
      }
    } finally {
      await stopCluster(dir, () => {});
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log('');
  console.log('| delay between nodes | read | p50 ms | p99 ms | behind (missed the write just acknowledged) | looked further | failed |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
    console.log(`| ${r.delayMs} ms | ${r.mode} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${pct(r.behind)} | ${r.mode === 'session eventual' ? pct(r.lookedFurther) : '-'} | ${r.failed} |`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
