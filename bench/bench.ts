// `tunekv bench` / `make bench`: what each consistency level costs.
//
// Phases (each printed with the configuration in the report):
//   floor       a plain node:net echo round trip, measured in the same run;
//   preload     every key written once, so reads find data;
//   unloaded    one client, one request at a time, per level (YCSB A);
//   loaded      C clients in a closed loop, per workload and level;
//   open        a fixed offered rate per level, coordinated omission corrected;
//   delay       the unloaded run again with a one-way delay on every
//               node-to-node message, as between zones;
//   staleness   t-visibility and k-staleness per (R, W), with and without delay.
// --full adds (each also on its own flag):
//   repeats     every unloaded and loaded cell run 3 times, levels interleaved
//               within each round so the neighbours' noise falls on all;
//   sweep       open-loop latency against throughput per level, to saturation;
//   profile     CPU profiles of every node and the load client under the
//               loaded quorum YCSB A cell: where the CPU goes;
//   peers       redis-server and a 3-member etcd with the same load;
//   scale       bench/scale.ts's phase, when that module exists (see ScaleResult).
// Every cell records CPU per operation: the node processes (from /proc, when
// the bench started them) plus this load client.
// Results go to bench/results/<timestamp>/ (report.md, report.html,
// results.json, *.hgrm, *.svg).

import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setLinkFaults, startCluster, stopCluster } from '../cluster/launcher.js';
import { clusterKey, readSecretFile } from '../src/security/secret.js';
import { connect } from '../src/client/index.js';
import type { TuneKvClient } from '../src/client/index.js';
import type { Ring } from '../src/core/ring/ring.js';
import { RpcConnection } from '../src/io/connection.js';
import { parseHostPort } from '../src/io/transport.js';
import { MsgType } from '../src/protocol/messages.js';
import { cpuBetween, cpuPerOp, sampleCpu } from './cpu.js';
import { measureEcho } from './echo.js';
import { curve, hgrm, percentiles } from './histogram.js';
import type { Histogram, Percentiles } from './histogram.js';
import { closedLoop, openLoop, parseLevel, tunekvStore } from './loops.js';
import type { ContextCache, LevelSpec, LoadSpec, LoopResult, Store } from './loops.js';
import { isSkipped, peerNames, startPeer } from './peers.js';
import type { PeerName } from './peers.js';
import { collectProfiles, profileDirEnv, profilePreloadPath, profileSelf, summarizeProfile } from './profile.js';
import type { ProfileSummary } from './profile.js';
import { Progress } from './progress.js';
import { latencyChart, scaleCharts, stalenessChart, sweepChart, writeReport } from './report.js';
import type { BenchReport, CellCpu, CellReport, Chart, PeerReport, ScaleReport, SweepCurve, Target } from './report.js';
import type { ScaleOptions } from './scale.js';
import { measureStaleness } from './staleness.js';
import type { StalenessCurve } from './staleness.js';
import { defaultSweepConfig, sweepRates, sweepVerdict } from './sweep.js';
import type { SweepConfig, SweepPoint } from './sweep.js';
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
  /** Runs of every unloaded and loaded cell (1: no spread is known). */
  readonly repeats: number;
  /** Run the latency-against-throughput sweep. */
  readonly sweep: boolean;
  /** Each sweep step's offered-rate duration. */
  readonly sweepStepMs: number;
  readonly sweepConfig: SweepConfig;
  /** Profile the loaded quorum YCSB A cell (needs a cluster the bench starts). */
  readonly profile: boolean;
  /** Peers to run beside tunekv (skipped with a note when not installed). */
  readonly peers: PeerName[];
  /** Run bench/scale.ts's phase when the module exists. */
  readonly scale: boolean;
}

/** What `--full` turns on, unless the caller set the option itself. */
export const fullBenchOptions: Partial<BenchOptions> = {
  repeats: 3, sweep: true, profile: true, peers: [...peerNames], scale: true,
};

/**
 * The scale phase's interface, for bench/scale.ts (written separately):
 * the module exports `runScale(opts: ScaleOptions): Promise<ScaleResult>`.
 * It starts and stops its own cluster (the bench's is stopped by then) and
 * grows the key space, measuring at each size; the bench plots ops/s, CPU
 * per operation and RSS against keys stored and checks them against the
 * flat-with-size target. Extra fields in the result are kept in
 * results.json.
 */
export type { ScaleOptions } from './scale.js';
export interface ScaleResult {
  readonly points: { readonly keys: number; readonly opsPerSec: number; readonly cpuUsPerOp: number; readonly rssMb: number[] }[];
  readonly [more: string]: unknown;
}
const scaleModule = './scale.js';

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
  // Every level's (R, W) and both ends of R or W = 3.
  stalenessPairs: [[1, 1], [1, 2], [2, 1], [2, 2], [1, 3], [3, 1], [3, 3]],
  stalenessT: [0, 1, 2, 5, 10, 20],
  stalenessTrials: 30,
  out: path.join(repoRoot, 'bench', 'results'),
  seed: 1,
  repeats: 1,
  sweep: false,
  sweepStepMs: 2000,
  sweepConfig: defaultSweepConfig,
  profile: false,
  peers: [],
  scale: false,
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
    load: `load average ${os.loadavg().map((l) => l.toFixed(2)).join(', ')} at the start`,
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

/** Runs a loop and the CPU every server process and this client used
 * meanwhile. `pids` null: the servers are not ours to see. */
async function withCpu(pids: readonly number[] | null, run: () => Promise<LoopResult>): Promise<{ r: LoopResult; cpu: CellCpu }> {
  const a = sampleCpu(pids ?? []);
  const r = await run();
  const use = cpuBetween(a, sampleCpu(pids ?? []));
  const per = cpuPerOp(use, r.ops);
  const known = pids !== null;
  return {
    r,
    cpu: {
      nodesUsPerOp: known ? per.nodes : null, clientUsPerOp: per.client, totalUsPerOp: known ? per.total : null,
      cores: Number((known ? use.cores : use.clientS / Math.max(use.wallS, 1e-9)).toFixed(2)),
    },
  };
}

interface CellMeta {
  readonly id: string; readonly store: string; readonly phase: string; readonly level: string; readonly run: number;
  readonly spec: LoadSpec; readonly loop: 'closed' | 'open'; readonly clients?: number; readonly offeredRate?: number;
}

function cellReport(m: CellMeta, r: LoopResult, cpu: CellCpu): CellReport {
  return {
    id: m.id, store: m.store, phase: m.phase, workload: m.spec.workload, distribution: m.spec.distribution, loop: m.loop,
    level: m.level, run: m.run, ...(m.clients !== undefined ? { clients: m.clients } : {}),
    ...(m.offeredRate !== undefined ? { offeredRate: m.offeredRate } : {}),
    elapsedMs: Math.round(r.elapsedMs), ops: r.ops, throughput: Math.round(r.ops / (r.elapsedMs / 1000)), errors: r.errors, cpu,
    read: percentiles(r.reads), write: percentiles(r.writes), readCurve: curve(r.reads), writeCurve: curve(r.writes),
  };
}

const slug = (s: string) => s.replace(/[=,]/g, '');

function parseWorkloads(list: string[]): { workload: WorkloadName; distribution: Distribution }[] {
  return list.map((w) => {
    const [name, dist] = w.split(':');
    if (name !== 'A' && name !== 'B') throw new TypeError(`workload "${w}" must be A or B, optionally :uniform or :zipfian`);
    const distribution = (dist ?? 'uniform') as Distribution;
    if (distribution !== 'uniform' && distribution !== 'zipfian') throw new TypeError(`distribution "${dist}" must be uniform or zipfian`);
    return { workload: name, distribution };
  });
}

function validate(opts: BenchOptions): void {
  if (!Number.isInteger(opts.repeats) || opts.repeats < 1) throw new TypeError(`repeats (${opts.repeats}) must be a whole number ≥ 1`);
  for (const p of opts.peers) if (!peerNames.includes(p)) throw new TypeError(`peer "${p}" must be one of ${peerNames.join(', ')}`);
  for (const [r, w] of opts.stalenessPairs) if (r < 1 || w < 1 || r > 3 || w > 3) throw new TypeError(`staleness pair ${r}/${w}: R and W must be 1..3 (N = 3)`);
  if (opts.profile && opts.hosts) throw new TypeError('--profile needs a cluster the bench starts (it preloads a profiler into the nodes); drop --hosts');
  sweepRates(opts.sweepConfig);
}

/** Seconds a staleness measurement takes: each trial waits t, then a write
 * and a read, a round trip to a replica each, twice the one-way delay. */
function stalenessSeconds(opts: BenchOptions, delayMs: number): number {
  const perOpMs = 1 + 4 * delayMs;
  const perPair = opts.stalenessT.reduce((a, t) => a + opts.stalenessTrials * (t + 2 * perOpMs), 0);
  return (opts.stalenessPairs.length * perPair) / 1000;
}

/** How long a run takes, from its configured durations: the typical figure
 * and the most (every sweep step run to its end, none saturating early). */
export function estimateBenchSeconds(opts: BenchOptions): { typical: number; most: number; note: string } {
  const levels = opts.levels.length;
  const d = opts.durationMs / 1000;
  const startS = opts.hosts ? 0 : 6;
  const preloadS = opts.keys / 3000 + opts.warmupMs / 1000;
  const cellsS = d * levels * (opts.repeats * (1 + opts.workloads.length) + 1 + (opts.delayMs > 0 ? 1 : 0));
  const stalenessS = stalenessSeconds(opts, 0) + (opts.delayMs > 0 ? stalenessSeconds(opts, opts.delayMs + opts.jitterMs / 2) : 0);
  const rates = opts.sweep ? sweepRates(opts.sweepConfig).length : 0;
  const sweepMost = levels * rates * (opts.sweepStepMs / 1000 + 1);
  const sweepTypical = sweepMost / 2;
  const profileS = opts.profile ? d + 5 : 0;
  const peerS = opts.peers.length * (5 + preloadS + d * (opts.repeats + 1));
  // The scale phase loads 1M keys at about 3,000 quorum puts/s here, and
  // measures five sizes (inserts and YCSB A, 5 s each) and two restarts.
  const scaleS = opts.scale ? 1_000_000 / 3000 + 5 * 13 + 40 : 0;
  const fixed = 3 + startS + preloadS + cellsS + stalenessS + profileS + peerS + scaleS;
  return { typical: fixed + sweepTypical, most: fixed + sweepMost, note: opts.scale ? ' (the scale phase loads 1M keys: about 7 minutes of it)' : '' };
}

export async function runBench(options: Partial<BenchOptions> = {}, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)):
  Promise<{ dir: string; report: BenchReport }> {
  const opts: BenchOptions = { ...defaultBenchOptions, ...options };
  validate(opts);
  const levels: LevelSpec[] = opts.levels.map(parseLevel);
  const workloadCells = parseWorkloads(opts.workloads);
  const est = estimateBenchSeconds(opts);
  const minutes = (s: number) => (s < 90 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);
  say(`tunekv bench: about ${minutes(est.typical)}${est.most > est.typical * 1.05 ? ` (at most ${minutes(est.most)})` : ''}${est.note}`);
  const startedAt = new Date();
  const dir = path.join(opts.out, stamp(startedAt));
  const value = Buffer.alloc(opts.valueBytes, 0x78);
  const cellsPlanned = levels.length * (opts.repeats * (1 + workloadCells.length) + 1 + (opts.delayMs > 0 ? 1 : 0))
    + (opts.sweep ? levels.length * 4 : 0) + opts.peers.length * (opts.repeats + 2) + (opts.profile ? 1 : 0);
  const stalenessTicks = (opts.stalenessPairs.length * opts.stalenessT.length * opts.stalenessTrials * (opts.delayMs > 0 ? 2 : 1)) / 10;
  const progress = new Progress(Math.ceil(2 + cellsPlanned + stalenessTicks));
  const cells: CellReport[] = [];
  const hgrms = new Map<string, string>();
  const staleness: StalenessCurve[] = [];
  const sweep: SweepCurve[] = [];
  const peers: PeerReport[] = [];
  let profiles: ProfileSummary[] = [];
  let profileNote = 'Not profiled (`--profile` or `--full`).';
  let clusterDir: string | undefined;
  let profileDir: string | undefined;
  let kv: TuneKvClient | undefined;
  let clusterText = '';
  let echo: Percentiles | undefined;
  let echoH: Histogram | undefined;
  let pids: number[] | null = null;

  const record = (m: CellMeta, r: LoopResult, cpu: CellCpu): void => {
    cells.push(cellReport(m, r, cpu));
    if (r.reads.totalCount > 0) hgrms.set(`${m.id}-read`, hgrm(r.reads));
    if (r.writes.totalCount > 0) hgrms.set(`${m.id}-write`, hgrm(r.writes));
    progress.step();
  };

  try {
    let hosts = opts.hosts;
    if (!hosts) {
      progress.startPhase(`starting a ${opts.nodes}-node cluster`);
      clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-bench-'));
      if (opts.profile) profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-bench-prof-'));
      const started = await withProfilerPreload(profileDir, () => startCluster({
        dir: clusterDir!, nodes: opts.nodes, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {},
      }));
      hosts = started.cluster.nodes.map((nd) => `${nd.host}:${nd.port}`);
      pids = started.cluster.nodes.map((nd) => nd.pid ?? 0);
      clusterText = `${opts.nodes} local node processes started by the bench, N=3, Q=64, LevelDB without fsync`;
    } else {
      clusterText = `existing cluster at ${hosts.join(', ')}`;
    }
    progress.step();

    progress.startPhase('echo floor');
    echoH = await measureEcho(1500, 500);
    echo = percentiles(echoH);
    progress.step();

    kv = await connect({ hosts, timeoutMs: 10_000 });
    const ring = kv.currentRing!;
    const contexts: ContextCache = new Map();
    progress.startPhase(`preloading ${opts.keys} keys`);
    await preload(opts.keys, (k) => kv!.put(`bench:${k}`, value).then((res) => { contexts.set(k, res.context); }));
    const load: LoadSpec = { workload: 'A', distribution: 'uniform', keys: opts.keys, seed: opts.seed };
    const store = (level: LevelSpec): Store => tunekvStore(kv!, level, value, contexts);
    await closedLoop(store(parseLevel('quorum')), load, opts.clients, opts.warmupMs, () => {});

    // Rounds of every level in turn, so a noisy neighbour's burst lands on
    // one round of every level rather than on every round of one.
    for (let run = 1; run <= opts.repeats; run++) {
      for (const level of levels) {
        progress.startPhase(`unloaded ${level.name}${opts.repeats > 1 ? ` (run ${run})` : ''}`);
        const { r, cpu } = await withCpu(pids, () => closedLoop(store(level), load, 1, opts.durationMs, () => {}));
        record({ id: `unloaded-A-uniform-${slug(level.name)}-${run}`, store: 'tunekv', phase: 'unloaded', level: level.name, run, spec: load, loop: 'closed', clients: 1 }, r, cpu);
      }
      for (const w of workloadCells) {
        for (const level of levels) {
          progress.startPhase(`loaded ${w.workload}/${w.distribution} ${level.name}${opts.repeats > 1 ? ` (run ${run})` : ''}`);
          const spec: LoadSpec = { ...load, ...w };
          const { r, cpu } = await withCpu(pids, () => closedLoop(store(level), spec, opts.clients, opts.durationMs, () => {}));
          record({ id: `loaded-${w.workload}-${w.distribution}-${slug(level.name)}-${run}`, store: 'tunekv', phase: 'loaded', level: level.name, run, spec, loop: 'closed', clients: opts.clients }, r, cpu);
        }
      }
    }
    for (const level of levels) {
      progress.startPhase(`open loop ${level.name} at ${opts.openRate}/s`);
      const { r, cpu } = await withCpu(pids, () => openLoop(store(level), load, opts.openRate, opts.durationMs, () => {}));
      record({ id: `open-A-uniform-${slug(level.name)}`, store: 'tunekv', phase: 'open', level: level.name, run: 1, spec: load, loop: 'open', offeredRate: opts.openRate }, r, cpu);
    }

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
          const { r, cpu } = await withCpu(pids, () => closedLoop(store(level), load, 1, opts.durationMs, () => {}));
          record({ id: `delay-A-uniform-${slug(level.name)}`, store: 'tunekv', phase: `delay ${opts.delayMs}±${opts.jitterMs} ms`, level: level.name, run: 1, spec: load, loop: 'closed', clients: 1 }, r, cpu);
        }
        await stalenessRun(delayText);
      } finally {
        if (clusterDir) await setLinkFaults(clusterDir, { delayMs: 0, jitterMs: 0, loss: 0 });
        else await setDelayOn(ring, 0, 0, opts.secretFile);
      }
    }

    if (opts.sweep) {
      for (const level of levels) sweep.push(await runSweep(level.name, store(level), load, opts, pids, progress));
    }

    if (opts.profile && profileDir && pids) {
      progress.startPhase('profiling the loaded quorum YCSB A cell');
      const p = await profileCell(pids, profileDir, () => closedLoop(store(parseLevel('quorum')), load, opts.clients, opts.durationMs, () => {}));
      profiles = p.profiles;
      profileNote = p.note;
      progress.step();
    }

    for (const name of opts.peers) {
      progress.startPhase(`starting ${name}`);
      peers.push(await runPeer(name, value, load, opts, record, progress));
    }
  } finally {
    await kv?.close();
    if (clusterDir) {
      await stopCluster(clusterDir, () => {});
      fs.rmSync(clusterDir, { recursive: true, force: true });
    }
    if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
  }

  const scale = opts.scale ? await runScalePhase(opts, (l) => progress.startPhase(l)) : { ran: false, note: 'The scale phase was not run (`--full` runs it).', points: [] };
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    header: machineHeader(opts, clusterText),
    config: { ...opts, out: undefined },
    cpuNote: pids === null
      ? 'Node CPU is unknown: the bench did not start this cluster, so CPU per operation is the load client\'s only.'
      : `CPU per operation: the ${pids.length} node processes (from /proc) plus the load client (this process), over each cell.`,
    echo: echo!, echoCurve: curve(echoH!), cells, staleness, sweep, peers, profiles, profileNote, scale,
    targets: computeTargets(cells, echo!.p50, scale, opts.clients),
  };
  writeReport(dir, report, hgrms, buildCharts(report));
  progress.finish();
  return { dir, report };
}

async function preload(keys: number, put: (k: number) => Promise<void>, concurrency = 64): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < keys) await put(next++);
  }));
}

/** Runs `start` with NODE_OPTIONS preloading the profiler into every
 * process it spawns (the nodes), then restores the environment so nothing
 * else the bench starts carries it. */
async function withProfilerPreload<T>(profileDir: string | undefined, start: () => Promise<T>): Promise<T> {
  if (profileDir === undefined || !fs.existsSync(profilePreloadPath)) return start();
  const saved = { nodeOptions: process.env.NODE_OPTIONS, dir: process.env[profileDirEnv] };
  process.env.NODE_OPTIONS = `${saved.nodeOptions ?? ''} --require ${JSON.stringify(profilePreloadPath)}`.trim();
  process.env[profileDirEnv] = profileDir;
  try {
    return await start();
  } finally {
    if (saved.nodeOptions === undefined) delete process.env.NODE_OPTIONS; else process.env.NODE_OPTIONS = saved.nodeOptions;
    if (saved.dir === undefined) delete process.env[profileDirEnv]; else process.env[profileDirEnv] = saved.dir;
  }
}

/** Profiles one cell: SIGUSR2 starts and stops the preloaded profiler in
 * every node; this process profiles itself. */
async function profileCell(pids: number[], dir: string, run: () => Promise<LoopResult>): Promise<{ profiles: ProfileSummary[]; note: string }> {
  if (!fs.existsSync(profilePreloadPath)) {
    return { profiles: [], note: `Not profiled: ${profilePreloadPath} is missing (build with \`npx tsc -p tsconfig.build.json\` and run from dist/).` };
  }
  const signal = () => { for (const pid of pids) if (pid) process.kill(pid, 'SIGUSR2'); };
  signal();
  let result: LoopResult;
  let client;
  try {
    ({ result, profile: client } = await profileSelf(run));
  } finally {
    signal();
  }
  const files = await collectProfiles(dir, pids.length, 15_000);
  const profiles = [
    ...files.map(({ file, profile }) => summarizeProfile(`node ${file.replace(/\.cpuprofile$/, '')}`, profile)),
    summarizeProfile('load client (this process)', client),
  ];
  const opsPerS = Math.round(result.ops / (result.elapsedMs / 1000));
  return {
    profiles,
    note: `The loaded \`quorum\` YCSB A cell again (${opsPerS.toLocaleString('en-US')} ops/s while profiled, 200 µs sampling), profiled in every node `
      + `(node:inspector, preloaded through NODE_OPTIONS and toggled by SIGUSR2) and in the load client. Self time is spent in the function itself; `
      + `inclusive time adds what it calls. Shares are of the process's busy (non-idle) time.${files.length < pids.length ? ` Only ${files.length} of ${pids.length} node profiles arrived.` : ''}`,
  };
}

async function runSweep(level: string, store: Store, load: LoadSpec, opts: BenchOptions, pids: number[] | null, progress: Progress): Promise<SweepCurve> {
  const points: SweepCurve['points'][number][] = [];
  let first: SweepPoint | undefined;
  let ended = `reached the highest rate tried (${opts.sweepConfig.maxRate.toLocaleString('en-US')} ops/s) unsaturated`;
  for (const rate of sweepRates(opts.sweepConfig)) {
    progress.startPhase(`sweep ${level} at ${rate}/s`);
    const { r, cpu } = await withCpu(pids, () => openLoop(store, load, rate, opts.sweepStepMs, () => {}));
    const all = r.reads.totalCount >= r.writes.totalCount ? r.reads : r.writes;
    const p = percentiles(all);
    const point: SweepPoint = { offered: rate, achieved: Math.round(r.ops / (r.elapsedMs / 1000)), p50Ms: p.p50, p99Ms: p.p99 };
    first ??= point;
    const verdict = sweepVerdict(point, first, opts.sweepConfig);
    points.push({ ...point, verdict, cpuUsPerOp: cpu.totalUsPerOp });
    if (verdict !== 'ok') {
      ended = `saturated at ${rate.toLocaleString('en-US')} ops/s offered: ${verdict === 'rate-short'
        ? `achieved ${point.achieved.toLocaleString('en-US')}` : `p99 ${point.p99Ms.toFixed(1)} ms against ${first.p99Ms.toFixed(2)} ms at the first step`}`;
      break;
    }
  }
  progress.step(4);
  return { level, points, ended };
}

async function runPeer(name: PeerName, value: Buffer, load: LoadSpec, opts: BenchOptions,
  record: (m: CellMeta, r: LoopResult, cpu: CellCpu) => void, progress: Progress): Promise<PeerReport> {
  const peer = await startPeer(name, value);
  if (isSkipped(peer)) return peer;
  try {
    progress.startPhase(`${name}: preloading ${opts.keys} keys`);
    await preload(opts.keys, (k) => peer.store.write(k));
    await closedLoop(peer.store, load, opts.clients, opts.warmupMs, () => {});
    for (let run = 1; run <= opts.repeats; run++) {
      progress.startPhase(`${name}: unloaded${opts.repeats > 1 ? ` (run ${run})` : ''}`);
      const un = await withCpu(peer.pids, () => closedLoop(peer.store, load, 1, opts.durationMs, () => {}));
      record({ id: `unloaded-A-uniform-${name}-${run}`, store: name, phase: 'unloaded', level: name, run, spec: load, loop: 'closed', clients: 1 }, un.r, un.cpu);
      progress.startPhase(`${name}: loaded${opts.repeats > 1 ? ` (run ${run})` : ''}`);
      const lo = await withCpu(peer.pids, () => closedLoop(peer.store, load, opts.clients, opts.durationMs, () => {}));
      record({ id: `loaded-A-uniform-${name}-${run}`, store: name, phase: 'loaded', level: name, run, spec: load, loop: 'closed', clients: opts.clients }, lo.r, lo.cpu);
    }
    return { name, setup: peer.setup, promise: peer.promise };
  } finally {
    await peer.stop();
  }
}

async function runScalePhase(opts: BenchOptions, log: (line: string) => void): Promise<ScaleReport> {
  let mod: { runScale?: (o: ScaleOptions) => Promise<ScaleResult> };
  try {
    mod = await import(scaleModule) as typeof mod;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return { ran: false, note: 'The scale phase was not run: bench/scale.ts is not in this build.', points: [] };
    throw err;
  }
  if (typeof mod.runScale !== 'function') return { ran: false, note: 'The scale phase was not run: bench/scale.ts exports no runScale.', points: [] };
  const result = await mod.runScale({
    keys: 1_000_000, step: 250_000, first: 10_000, valueBytes: opts.valueBytes, insertMs: 5000, ycsbMs: 5000, nodeArgs: [], log,
  });
  return {
    ran: true,
    note: 'The scale phase (bench/scale.ts): one cluster, its key space grown, ops/s, CPU per operation and each node\'s RSS measured at each size.',
    points: result.points,
  };
}

/** Issue 9's targets. Figures on a shared machine, never assertions. */
export function computeTargets(cells: CellReport[], floor: number, scale: ScaleReport, clients: number): Target[] {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const pick = (phase: string, level: string) => cells.filter((c) => c.phase === phase && c.store === 'tunekv' && c.level === level && c.workload === 'A' && c.distribution === 'uniform');
  const ms = (x: number) => x.toFixed(3);
  const out: Target[] = [];
  const loaded = pick('loaded', 'quorum');
  const cpu = median(loaded.map((c) => c.cpu.totalUsPerOp).filter((x): x is number => x !== null));
  out.push({
    name: `quorum YCSB A, ${clients} clients: CPU per operation (three nodes + load client)`, goal: '≤ 100 µs (goal 60)',
    measured: cpu === undefined ? (loaded.length > 0 ? `node CPU unknown; client ${median(loaded.map((c) => c.cpu.clientUsPerOp))} µs` : 'not measured') : `${cpu} µs`,
    met: cpu === undefined ? null : cpu <= 100,
  });
  const ops = median(loaded.map((c) => c.throughput));
  const p99 = median(loaded.map((c) => Math.max(c.read.p99, c.write.p99)));
  out.push({
    name: `quorum YCSB A, ${clients} clients: throughput`, goal: '≥ 15,000 ops/s',
    measured: ops === undefined ? 'not measured' : `${ops.toLocaleString('en-US')} ops/s (p99 ${ms(p99!)} ms)`, met: ops === undefined ? null : ops >= 15_000,
  });
  const latencyTarget = (level: string, op: 'read' | 'write', k: number): Target => {
    const g = pick('unloaded', level);
    const p50 = median(g.map((c) => c[op].p50));
    const p99s = median(g.map((c) => c[op].p99));
    return {
      name: `\`${level}\` ${op === 'read' ? 'get' : 'put'} p50, one client`, goal: `≤ ${k}× echo p50 (${ms(k * floor)} ms)`,
      measured: p50 === undefined ? 'not measured' : `${ms(p50)} ms = ${(p50 / floor).toFixed(1)}× echo (p99 ${ms(p99s!)} ms)`,
      met: p50 === undefined ? null : p50 <= k * floor,
    };
  };
  out.push(latencyTarget('eventual', 'read', 3), latencyTarget('quorum', 'write', 6));
  out.push({
    name: 'no level slower to make another faster', goal: 'every level\'s p50, p99, ops/s and CPU/op no worse than before a change',
    measured: 'judged against a run of the commit before the change (this report is one side of it)', met: null,
  });
  if (!scale.ran || scale.points.length < 2) {
    out.push({ name: 'flat with size: 1M keys against 10k', goal: 'ops/s and CPU/op within 20%; RSS ≤ 300 MB per node at 1M keys', measured: 'scale phase not run', met: null });
    return out;
  }
  const pts = [...scale.points].sort((a, b) => a.keys - b.keys);
  const small = pts[0]!;
  const big = pts[pts.length - 1]!;
  const within = (a: number, b: number) => Math.abs(a - b) <= 0.2 * b;
  const rss = Math.max(...big.rssMb);
  out.push({
    name: `flat with size: ${big.keys.toLocaleString('en-US')} keys against ${small.keys.toLocaleString('en-US')}`, goal: 'ops/s and CPU/op within 20%',
    measured: `${big.opsPerSec.toLocaleString('en-US')} against ${small.opsPerSec.toLocaleString('en-US')} ops/s; ${big.cpuUsPerOp} against ${small.cpuUsPerOp} µs/op`,
    met: within(big.opsPerSec, small.opsPerSec) && within(big.cpuUsPerOp, small.cpuUsPerOp),
  });
  out.push({ name: `node RSS at ${big.keys.toLocaleString('en-US')} keys`, goal: '≤ 300 MB per node', measured: `${big.rssMb.map((x) => x.toFixed(0)).join(', ')} MB`, met: rss <= 300 });
  return out;
}

function buildCharts(r: BenchReport): Chart[] {
  const charts: Chart[] = [];
  const add = (title: string, file: string, svg: string) => charts.push({ title, file, svg });
  // One run of each level per chart (the first): curves of repeats would
  // only hide one another.
  const phase = (p: string, w = 'A', d = 'uniform') => r.cells.filter((c) => c.phase === p && c.workload === w && c.distribution === d && c.run === 1);
  add('Get latency, one client', 'latency-unloaded-get.svg', latencyChart('Get latency, one client (YCSB A)', phase('unloaded'), 'read', r.echoCurve));
  add('Put latency, one client', 'latency-unloaded-put.svg', latencyChart('Put latency, one client (YCSB A)', phase('unloaded'), 'write', r.echoCurve));
  const loaded = phase('loaded');
  if (loaded.length > 0) {
    add('Get latency, loaded', 'latency-loaded-get.svg', latencyChart(`Get latency, ${loaded[0]!.clients} clients (YCSB A)`, loaded, 'read', r.echoCurve));
    add('Put latency, loaded', 'latency-loaded-put.svg', latencyChart(`Put latency, ${loaded[0]!.clients} clients (YCSB A)`, loaded, 'write', r.echoCurve));
  }
  const delayed = r.cells.filter((c) => c.phase.startsWith('delay'));
  if (delayed.length > 0) {
    add('Get latency, injected delay', 'latency-delay-get.svg', latencyChart(`Get latency, one client, ${delayed[0]!.phase} links`, delayed, 'read', r.echoCurve));
    add('Put latency, injected delay', 'latency-delay-put.svg', latencyChart(`Put latency, one client, ${delayed[0]!.phase} links`, delayed, 'write', r.echoCurve));
  }
  const byDelay = new Map<string, StalenessCurve[]>();
  for (const c of r.staleness) byDelay.set(c.delay, [...(byDelay.get(c.delay) ?? []), c]);
  let i = 0;
  for (const [delay, curves] of byDelay) add(`Staleness, ${delay}`, `staleness-${i++}.svg`, stalenessChart(`t-visibility, ${delay}`, curves));
  if (r.sweep.length > 0) add('Latency against throughput', 'sweep.svg', sweepChart('Latency against throughput, YCSB A, open loop', r.sweep));
  charts.push(...scaleCharts(r.scale));
  return charts;
}
