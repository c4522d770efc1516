// `tunekv bench` / `make bench`: what each consistency level costs.
//
// Phases (each printed with the configuration in the report's header):
//   floor       a plain node:net echo round trip, measured in the same run;
//   preload     every key written once, so reads find data;
//   unloaded    one client, one request at a time, per level (YCSB A);
//   loaded      C clients in a closed loop, per workload and level;
//   open        a fixed offered rate per level, coordinated omission corrected;
//   delay       the unloaded run again with a one-way delay on every
//               node-to-node message, as between zones;
//   staleness   t-visibility and k-staleness per (R, W), with and without delay.
// Results go to bench/results/<timestamp>/ (report.md, report.html,
// results.json, *.hgrm, *.svg).

import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setLinkFaults, startCluster, stopCluster } from '../cluster/launcher.js';
import { clusterKey, readSecretFile } from '../src/security/secret.js';
import { connect } from '../src/index.js';
import type { TuneKvClient } from '../src/index.js';
import type { Ring } from '../src/core/ring/ring.js';
import { RpcConnection } from '../src/io/connection.js';
import { parseHostPort } from '../src/io/transport.js';
import { MsgType } from '../src/protocol/messages.js';
import { measureEcho } from './echo.js';
import { curve, hgrm, percentiles } from './histogram.js';
import { closedLoop, openLoop, parseLevel } from './loops.js';
import type { CellSpec, ContextCache, LevelSpec, LoopResult } from './loops.js';
import { Progress } from './progress.js';
import { latencyChart, stalenessChart, writeReport } from './report.js';
import type { BenchReport, CellReport, Target } from './report.js';
import { measureStaleness } from './staleness.js';
import type { StalenessCurve } from './staleness.js';
import type { Distribution, WorkloadName } from './workload.js';

export interface BenchOptions {
  /** Target a running cluster; without it the bench starts its own. */
  readonly hosts?: string[];
  /** The cluster secret of a cluster we did not start: setting the
   * injected delay is an admin operation. */
  readonly secretFile?: string;
  readonly nodes: number;
  readonly levels: string[];
  /** "A" or "B", optionally with a key distribution: "A:uniform", "B:zipfian". */
  readonly workloads: string[];
  readonly keys: number;
  readonly valueBytes: number;
  readonly clients: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly openRate: number;
  /** One-way delay on node-to-node messages for the delay phase; 0 skips it. */
  readonly delayMs: number;
  readonly jitterMs: number;
  readonly stalenessPairs: [number, number][];
  readonly stalenessT: number[];
  readonly stalenessTrials: number;
  readonly out: string;
  readonly seed: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = fs.existsSync(path.join(here, '../package.json')) ? path.join(here, '..') : path.join(here, '../..');

export const defaultBenchOptions: BenchOptions = {
  nodes: 3,
  levels: ['eventual', 'quorum', 'strong', 'r=3,w=3'],
  workloads: ['A:uniform', 'B:zipfian'],
  keys: 10_000,
  valueBytes: 100,
  clients: 32,
  durationMs: 2500,
  warmupMs: 2000,
  openRate: 3000,
  delayMs: 5,
  jitterMs: 2,
  stalenessPairs: [[1, 1], [1, 2], [2, 1], [2, 2]],
  stalenessT: [0, 1, 2, 5, 10, 20, 50],
  stalenessTrials: 30,
  out: path.join(repoRoot, 'bench', 'results'),
  seed: 1,
};

function stamp(d: Date): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
}

function machineHeader(opts: BenchOptions, cluster: string): Record<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  let commit = 'unknown';
  try { commit = execSync('git rev-parse --short HEAD', { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { /* not a checkout */ }
  const cpus = os.cpus();
  return {
    tunekv: `${pkg.version} (commit ${commit})`,
    node: process.version,
    machine: `${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    cluster,
    values: `${opts.valueBytes} bytes, ${opts.keys} keys`,
  };
}

/** Sets (or clears) the delay on every node of a cluster we did not start. */
async function setDelayOn(ring: Ring, delayMs: number, jitterMs: number, secretFile: string | undefined): Promise<void> {
  if (secretFile === undefined) throw new TypeError('--delay-ms on a cluster the bench did not start needs --secret-file (faults are an admin operation)');
  const auth = { kind: 'secret' as const, key: clusterKey(readSecretFile(secretFile)), as: 'admin' };
  await Promise.all(ring.members.map((m) => new Promise<void>((resolve, reject) => {
    const hp = parseHostPort(m.addr)!;
    const conn = new RpcConnection({ host: hp.host, port: hp.port, agent: 'tunekv-bench', connectTimeoutMs: 2000, auth });
    conn.request(MsgType.ADMIN_FAULTS, { blocked: [], delayMs, jitterMs, loss: 0 }, 5000, (err) => {
      conn.close();
      if (err) reject(err); else resolve();
    });
  })));
}

function cellReport(id: string, phase: string, spec: CellSpec, loop: 'closed' | 'open', r: LoopResult,
  extra: { clients?: number; offeredRate?: number }): CellReport {
  return {
    id, phase, workload: spec.workload, distribution: spec.distribution, loop, level: spec.level.name, ...extra,
    elapsedMs: r.elapsedMs, ops: r.ops, throughput: Math.round(r.ops / (r.elapsedMs / 1000)), errors: r.errors,
    read: percentiles(r.reads), write: percentiles(r.writes), readCurve: curve(r.reads), writeCurve: curve(r.writes),
  };
}

export async function runBench(options: Partial<BenchOptions> = {}): Promise<{ dir: string; report: BenchReport }> {
  const opts: BenchOptions = { ...defaultBenchOptions, ...options };
  const levels: LevelSpec[] = opts.levels.map(parseLevel);
  const workloadCells = opts.workloads.map((w) => {
    const [name, dist] = w.split(':');
    if (name !== 'A' && name !== 'B') throw new TypeError(`workload "${w}" must be A or B, optionally :uniform or :zipfian`);
    const distribution = (dist ?? 'uniform') as Distribution;
    if (distribution !== 'uniform' && distribution !== 'zipfian') throw new TypeError(`distribution "${dist}" must be uniform or zipfian`);
    return { workload: name as WorkloadName, distribution };
  });
  const startedAt = new Date();
  const dir = path.join(opts.out, stamp(startedAt));
  const value = Buffer.alloc(opts.valueBytes, 0x78);
  const totalSteps = 2 + levels.length * (2 + workloadCells.length + (opts.delayMs > 0 ? 1 : 0))
    + opts.stalenessPairs.length * opts.stalenessT.length * opts.stalenessTrials * (opts.delayMs > 0 ? 2 : 1) / 10;
  const progress = new Progress(Math.ceil(totalSteps));
  let clusterDir: string | undefined;
  let kv: TuneKvClient | undefined;
  try {
    let hosts = opts.hosts;
    let clusterText: string;
    if (!hosts) {
      progress.startPhase(`starting a ${opts.nodes}-node cluster`);
      clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-bench-'));
      const started = await startCluster({
        dir: clusterDir, nodes: opts.nodes, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {},
      });
      hosts = started.cluster.nodes.map((nd) => `${nd.host}:${nd.port}`);
      clusterText = `${opts.nodes} local node processes started by the bench, N=3, Q=64, LevelDB without fsync`;
    } else {
      clusterText = `existing cluster at ${hosts.join(', ')}`;
    }
    progress.step();

    progress.startPhase('echo floor');
    const echoH = await measureEcho(1500, 500);
    const echo = percentiles(echoH);
    progress.step();

    kv = await connect({ hosts, timeoutMs: 10_000 });
    const ring = kv.currentRing!;
    const contexts: ContextCache = new Map();
    progress.startPhase(`preloading ${opts.keys} keys`);
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < opts.keys) {
        const k = next++;
        const res = await kv!.put(`bench:${k}`, value);
        contexts.set(k, res.context);
      }
    }));
    const warm: CellSpec = { level: levels[0]!, workload: 'A', distribution: 'uniform', keys: opts.keys, value, seed: opts.seed };
    await closedLoop(kv, { ...warm, level: parseLevel('quorum') }, opts.clients, opts.warmupMs, contexts, () => {});

    const cells: CellReport[] = [];
    const hgrms = new Map<string, string>();
    const keep = (id: string, r: LoopResult): void => {
      if (r.reads.totalCount > 0) hgrms.set(`${id}-read`, hgrm(r.reads));
      if (r.writes.totalCount > 0) hgrms.set(`${id}-write`, hgrm(r.writes));
    };

    for (const level of levels) {
      progress.startPhase(`unloaded ${level.name}`);
      const spec: CellSpec = { ...warm, level };
      const r = await closedLoop(kv, spec, 1, opts.durationMs, contexts, () => {});
      const id = `unloaded-A-uniform-${level.name.replace(/[=,]/g, '')}`;
      cells.push(cellReport(id, 'unloaded', spec, 'closed', r, { clients: 1 }));
      keep(id, r);
      progress.step();
    }
    for (const w of workloadCells) {
      for (const level of levels) {
        progress.startPhase(`loaded ${w.workload}/${w.distribution} ${level.name}`);
        const spec: CellSpec = { ...warm, ...w, level };
        const r = await closedLoop(kv, spec, opts.clients, opts.durationMs, contexts, () => {});
        const id = `loaded-${w.workload}-${w.distribution}-${level.name.replace(/[=,]/g, '')}`;
        cells.push(cellReport(id, 'loaded', spec, 'closed', r, { clients: opts.clients }));
        keep(id, r);
        progress.step();
      }
    }
    for (const level of levels) {
      progress.startPhase(`open loop ${level.name} at ${opts.openRate}/s`);
      const spec: CellSpec = { ...warm, level };
      const r = await openLoop(kv, spec, opts.openRate, opts.durationMs, contexts, () => {});
      const id = `open-A-uniform-${level.name.replace(/[=,]/g, '')}`;
      cells.push(cellReport(id, 'open', spec, 'open', r, { offeredRate: opts.openRate }));
      keep(id, r);
      progress.step();
    }

    const staleness: StalenessCurve[] = [];
    const stalenessRun = async (delay: string): Promise<void> => {
      for (const [r, w] of opts.stalenessPairs) {
        progress.startPhase(`staleness R=${r} W=${w} (${delay})`);
        let n = 0;
        staleness.push(await measureStaleness(kv!, ring, r, w, opts.stalenessT, opts.stalenessTrials, delay, () => {
          if (++n % 10 === 0) progress.step();
        }));
      }
    };
    await stalenessRun('no added delay');

    if (opts.delayMs > 0) {
      const delayText = `${opts.delayMs} ms + up to ${opts.jitterMs} ms one-way`;
      if (clusterDir) await setLinkFaults(clusterDir, { delayMs: opts.delayMs, jitterMs: opts.jitterMs, loss: 0 });
      else await setDelayOn(ring, opts.delayMs, opts.jitterMs, opts.secretFile);
      try {
        // One client: with the delay, the cost of each level is its round
        // trips to other replicas, and a single client shows exactly that.
        for (const level of levels) {
          progress.startPhase(`delay ${delayText}: unloaded ${level.name}`);
          const spec: CellSpec = { ...warm, level };
          const r = await closedLoop(kv, spec, 1, opts.durationMs, contexts, () => {});
          const id = `delay-A-uniform-${level.name.replace(/[=,]/g, '')}`;
          cells.push(cellReport(id, `delay ${opts.delayMs}±${opts.jitterMs} ms`, spec, 'closed', r, { clients: 1 }));
          keep(id, r);
          progress.step();
        }
        await stalenessRun(delayText);
      } finally {
        if (clusterDir) await setLinkFaults(clusterDir, { delayMs: 0, jitterMs: 0, loss: 0 });
        else await setDelayOn(ring, 0, 0, opts.secretFile);
      }
    }

    const targets = computeTargets(cells, echo.p50);
    const report: BenchReport = {
      startedAt: startedAt.toISOString(),
      header: machineHeader(opts, clusterText),
      config: { ...opts, out: undefined },
      echo, echoCurve: curve(echoH), cells, staleness, targets,
    };
    const charts = buildCharts(report);
    writeReport(dir, report, hgrms, charts);
    progress.finish();
    return { dir, report };
  } finally {
    await kv?.close();
    if (clusterDir) {
      await stopCluster(clusterDir, () => {});
      fs.rmSync(clusterDir, { recursive: true, force: true });
    }
  }
}

function computeTargets(cells: CellReport[], floor: number): Target[] {
  const find = (phase: string, level: string, workload = 'A', distribution = 'uniform') =>
    cells.find((c) => c.phase === phase && c.level === level && c.workload === workload && c.distribution === distribution);
  const out: Target[] = [];
  const ev = find('unloaded', 'eventual');
  if (ev) out.push({ name: 'eventual get p50', goal: `≤ 2× echo p50 (${(2 * floor).toFixed(3)} ms)`, measured: `${ev.read.p50.toFixed(3)} ms = ${(ev.read.p50 / floor).toFixed(1)}× echo`, met: ev.read.p50 <= 2 * floor });
  const q = find('unloaded', 'quorum');
  if (q) out.push({ name: 'quorum put p50', goal: `≤ 4× echo p50 (${(4 * floor).toFixed(3)} ms)`, measured: `${q.write.p50.toFixed(3)} ms = ${(q.write.p50 / floor).toFixed(1)}× echo`, met: q.write.p50 <= 4 * floor });
  const thr = find('loaded', 'quorum');
  if (thr) out.push({ name: 'quorum throughput, 50/50 (YCSB A)', goal: '≥ 30,000 ops/s', measured: `${thr.throughput.toLocaleString('en-US')} ops/s with ${thr.clients} clients`, met: thr.throughput >= 30_000 });
  return out;
}

function buildCharts(r: BenchReport): { title: string; file: string; svg: string }[] {
  const charts: { title: string; file: string; svg: string }[] = [];
  const add = (title: string, file: string, svg: string) => charts.push({ title, file, svg });
  const phase = (p: string, w = 'A', d = 'uniform') => r.cells.filter((c) => c.phase === p && c.workload === w && c.distribution === d);
  add('Get latency, one client', 'latency-unloaded-get.svg', latencyChart('Get latency by level, one client (YCSB A)', phase('unloaded'), 'read', r.echoCurve));
  add('Put latency, one client', 'latency-unloaded-put.svg', latencyChart('Put latency by level, one client (YCSB A)', phase('unloaded'), 'write', r.echoCurve));
  const loaded = phase('loaded');
  if (loaded.length > 0) {
    add('Get latency, loaded', 'latency-loaded-get.svg', latencyChart(`Get latency by level, ${loaded[0]!.clients} clients (YCSB A)`, loaded, 'read', r.echoCurve));
    add('Put latency, loaded', 'latency-loaded-put.svg', latencyChart(`Put latency by level, ${loaded[0]!.clients} clients (YCSB A)`, loaded, 'write', r.echoCurve));
  }
  const delayed = r.cells.filter((c) => c.phase.startsWith('delay'));
  if (delayed.length > 0) {
    add('Get latency, injected delay', 'latency-delay-get.svg', latencyChart(`Get latency, one client, ${delayed[0]!.phase} links`, delayed, 'read', r.echoCurve));
    add('Put latency, injected delay', 'latency-delay-put.svg', latencyChart(`Put latency, one client, ${delayed[0]!.phase} links`, delayed, 'write', r.echoCurve));
  }
  const byDelay = new Map<string, StalenessCurve[]>();
  for (const c of r.staleness) byDelay.set(c.delay, [...(byDelay.get(c.delay) ?? []), c]);
  let i = 0;
  for (const [delay, curves] of byDelay) {
    add(`Staleness, ${delay}`, `staleness-${i++}.svg`, stalenessChart(`t-visibility, ${delay}`, curves));
  }
  return charts;
}
