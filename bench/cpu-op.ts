// The short CPU-per-operation measurement used while tuning: starts a
// 3-node cluster, preloads keys, runs a closed loop per level and prints
// ops/s, p50/p99 and CPU microseconds per operation (all node processes
// plus this load client).
//
//   node dist/bench/cpu-op.js [--level quorum]... [--clients 32] [--keys 10000]
//                             [--duration-ms 5000] [--workload A] [--value-bytes 100]
//                             [--fsync] [--signal] [--perf] [--warmup-ms 3000]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readCluster, secretFileOf, startCluster, stopCluster } from '../cluster/launcher.js';
import { readSecretFile } from '../src/security/secret.js';
import { connect } from '../src/client/index.js';
import { percentiles } from './histogram.js';
import { closedLoop, parseLevel, tunekvStore } from './loops.js';
import type { ContextCache } from './loops.js';
import { formatPerfSplit, perfAvailable, startPerf } from './perf-split.js';
import { cpuBetween, cpuPerOp, processSyscalls, sampleCpu } from './cpu.js';

const { values } = parseArgs({
  options: {
    level: { type: 'string', multiple: true },
    clients: { type: 'string', default: '32' },
    keys: { type: 'string', default: '10000' },
    'duration-ms': { type: 'string', default: '5000' },
    workload: { type: 'string', default: 'A' },
    'value-bytes': { type: 'string', default: '100' },
    fsync: { type: 'boolean', default: false },
    /** Send SIGUSR2 to every node and to this process when the measured
     * loop starts and ends (a preloaded profiler toggles on it). */
    signal: { type: 'boolean', default: false },
    /** A perf record of the nodes and this client over each measured loop, split by kind
     * of work (bench/perf-split.ts). */
    perf: { type: 'boolean', default: false },
    /** Load before the first level is measured. perf showed the first
     * level of a run still compiling (15.9% of all CPU in V8's compiler
     * after 1 s, 3.1% for the next level), which charged it ~20% more CPU
     * per operation than the same level measured later. */
    'warmup-ms': { type: 'string', default: '3000' },
  },
});

async function main(): Promise<void> {
  const levels = (values.level ?? ['quorum']).map(parseLevel);
  const clients = Number(values.clients);
  const keys = Number(values.keys);
  const durationMs = Number(values['duration-ms']);
  const workload = values.workload as 'A' | 'B';
  const value = Buffer.alloc(Number(values['value-bytes']), 0x78);
  if (values.perf) {
    if (!perfAvailable()) throw new Error('--perf needs perf (Debian: apt install linux-perf)');
    // JIT frames get names only when the node processes write perf maps.
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --perf-basic-prof`.trim();
  }
  let pids: (number | null)[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-cpu-'));
  try {
    await startCluster({ dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: values.fsync, detach: true, log: () => {} });
    const c = readCluster(dir)!;
    pids = c.nodes.map((nd) => nd.pid);
    const kv = await connect({ hosts: c.nodes.map((nd) => `${nd.host}:${nd.port}`), timeoutMs: 10_000, secret: readSecretFile(secretFileOf(dir)) });
    const contexts: ContextCache = new Map();
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < keys) {
        const k = next++;
        contexts.set(k, (await kv.put(`bench:${k}`, value)).context);
      }
    }));
    for (const level of levels) {
      const spec = { workload, distribution: 'uniform' as const, keys, seed: 1 };
      const store = tunekvStore(kv, level, value, contexts);
      await closedLoop(store, spec, clients, level === levels[0] ? Number(values['warmup-ms']) : 1000, () => {});
      const toggle = (): void => {
        if (!values.signal) return;
        for (const pid of [...pids, process.pid]) if (pid) process.kill(pid, 'SIGUSR2');
      };
      toggle();
      const all = [...pids, null];
      const calls = (): { reads: number; writes: number } => all.map(processSyscalls).reduce((s, x) => ({ reads: s.reads + x.reads, writes: s.writes + x.writes }));
      const perf = values.perf ? startPerf([...pids.filter((p): p is number => p !== null), process.pid]) : undefined;
      const c0 = calls();
      const a = sampleCpu(pids);
      const r = await closedLoop(store, spec, clients, durationMs, () => {});
      const use = cpuBetween(a, sampleCpu(pids));
      const c1 = calls();
      const split = await perf?.stop();
      toggle();
      const per = cpuPerOp(use, r.ops);
      const rd = percentiles(r.reads);
      const wr = percentiles(r.writes);
      console.log(`${level.name.padEnd(9)} ${clients} clients: ${Math.round(r.ops / (r.elapsedMs / 1000))} ops/s, `
        + `CPU/op ${per.total} µs (nodes ${per.nodes}, client ${per.client}), ${use.cores.toFixed(2)} cores; `
        + `syscalls/op: ${((c1.writes - c0.writes) / r.ops).toFixed(1)} writes, ${((c1.reads - c0.reads) / r.ops).toFixed(1)} reads; `
        + `get p50 ${rd.p50.toFixed(3)} p99 ${rd.p99.toFixed(3)} ms, put p50 ${wr.p50.toFixed(3)} p99 ${wr.p99.toFixed(3)} ms`
        + (Object.keys(r.errors).length > 0 ? ` errors ${JSON.stringify(r.errors)}` : ''));
      if (split) console.log(formatPerfSplit(split));
    }
    await kv.close();
  } finally {
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
    if (values.perf) for (const pid of [...pids, process.pid]) fs.rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
