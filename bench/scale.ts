// Flat with size: does a node's cost per operation stay the same as the
// store grows? Dynamo's and Riak's contract says it must.
//
//   node dist/bench/scale.js [--keys 1000000] [--step 100000] [--first 10000] [--value-bytes 100]
//                            [--insert-ms 3000] [--ycsb-ms 5000] [--node-args="--cache-mb 8"]
//                            [--dir DIR --snapshot SNAP] [--no-starts] [--json]
//
// A 3-node cluster (N=3, Q=64) takes new keys (`bench:<i>`, 100-byte
// values) at `quorum`, 64 in flight. At each point (the first at `first`
// keys, then every `step` up to `keys`) it measures, for a few seconds
// each:
//   - inserts: more new keys at quorum, 64 in flight (they count toward
//     the key space): ops/s and CPU µs per operation;
//   - YCSB A (50/50 get/update at quorum, 32 clients) uniformly over every
//     key inserted so far: ops/s and CPU µs per operation;
//   - each node's resident set (VmRSS from /proc/PID/status).
// CPU per operation is every node process (/proc/PID/stat) plus this load
// client, as in bench/cpu.ts: on a shared machine ops/s moves with the
// neighbours, CPU per operation much less.
//
// Then start time: one node is stopped (SIGTERM) and started again on the
// loaded store, timed until it answers ready; and once more after a
// SIGKILL (a crash: its persisted anti-entropy hashes are not trusted and
// are rebuilt by a scan).
//
// Loading a million keys takes minutes, so with --dir and --snapshot the
// loaded cluster is kept (as in bench/add-node.ts): a run that finds SNAP
// copies it back to DIR, restarts it and carries on from the number of keys
// it holds (measuring that point first); a run that loads keeps a copy of
// the cluster at its last point in SNAP. --node-args sets every node's
// extra `tunekv node` flags (a restored snapshot takes them too), e.g.
// --node-args="--cache-mb 1" to compare sizes without the small case fitting in the
// object cache.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readCluster, restartNode, secretFileOf, startCluster, stopCluster, stopNode, writeCluster } from '../cluster/launcher.js';
import { connect } from '../src/client/index.js';
import type { TuneKvClient } from '../src/client/index.js';
import { readSecretFile } from '../src/security/secret.js';
import { cpuBetween, cpuPerOp, sampleCpu } from './cpu.js';
import { closedLoop, parseLevel, tunekvStore } from './loops.js';
import type { ContextCache } from './loops.js';

export interface ScalePoint {
  keys: number;
  insertOpsPerSec: number;
  insertCpuUsPerOp: number;
  opsPerSec: number;
  cpuUsPerOp: number;
  rssMb: number[];
  /** The same split: anonymous memory (heap, LevelDB's caches, malloc) and
   * file pages mapped (LevelDB reads its tables through mmap, so table
   * pages it touched count in VmRSS though the kernel may drop them). */
  rssAnonMb: number[];
  rssFileMb: number[];
}

export interface ScaleResult {
  points: ScalePoint[];
  /** A node stopped cleanly and started again on the loaded store, until it answers. */
  startMs?: number;
  /** The same after a SIGKILL (hashes rebuilt by a scan). */
  crashStartMs?: number;
}

export interface ScaleOptions {
  readonly keys: number;
  readonly step: number;
  /** The first point (a small store to compare with). */
  readonly first: number;
  readonly valueBytes: number;
  readonly insertMs: number;
  readonly ycsbMs: number;
  /** Extra `tunekv node` flags for every node. */
  readonly nodeArgs: readonly string[];
  readonly dir?: string;
  readonly snapshot?: string;
  /** Time a node's start (clean and after SIGKILL) at the end. Default true. */
  readonly starts?: boolean;
  readonly log?: (line: string) => void;
}

/** Inserts in flight while loading and measuring inserts (as issue 9's figures). */
const insertConcurrency = 64;
/** YCSB A clients. */
const ycsbClients = 32;
/** Where a snapshot says how many keys it holds. */
const snapshotMetaFile = 'scale-keys.json';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function rssMb(pid: number | null, field: 'VmRSS' | 'RssAnon' | 'RssFile' = 'VmRSS'): number {
  if (!pid) return 0;
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** The key-space sizes to measure at, ascending. */
export function scalePoints(from: number, first: number, step: number, keys: number): number[] {
  const out = new Set<number>();
  if (from > 0) out.add(from);
  if (first > from && first < keys) out.add(first);
  for (let k = step; k < keys; k += step) if (k > from) out.add(k);
  if (keys > from) out.add(keys);
  return [...out].sort((a, b) => a - b);
}

/** Inserts keys [next, end) (or until `untilMs`), `insertConcurrency` at a
 * time; resolves to the next key. A put that times out on a busy machine
 * is retried (with what is there as context, so it is not doubled). */
async function insert(kv: TuneKvClient, from: number, end: number, value: Buffer, untilMs = Number.POSITIVE_INFINITY): Promise<number> {
  let next = from;
  await Promise.all(Array.from({ length: insertConcurrency }, async () => {
    while (next < end && Date.now() < untilMs) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          const got = attempt === 1 ? undefined : await kv.get(`bench:${i}`).catch(() => undefined);
          await kv.put(`bench:${i}`, value, got?.context ? { context: got.context } : {});
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
        }
      }
    }
  }));
  return next;
}

async function dial(dir: string): Promise<TuneKvClient> {
  const c = readCluster(dir)!;
  return connect({ hosts: c.nodes.map((nd) => `${nd.host}:${nd.port}`), timeoutMs: 10_000, secret: readSecretFile(secretFileOf(dir)) });
}

async function start(dir: string, nodeArgs: readonly string[], fresh: boolean): Promise<void> {
  if (!fresh) {
    // A restored cluster takes this run's node flags.
    const c = readCluster(dir)!;
    writeCluster(dir, { ...c, nodeArgs: [...nodeArgs] });
  }
  await startCluster({
    dir, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {},
    ...(fresh ? { nodes: 3, nodeArgs: [...nodeArgs] } : {}),
  });
}

async function measure(kv: TuneKvClient, dir: string, keys: number, opts: ScaleOptions, value: Buffer): Promise<{ point: ScalePoint; keys: number }> {
  const pids = readCluster(dir)!.nodes.map((nd) => nd.pid);
  const a = sampleCpu(pids);
  const t0 = Date.now();
  const after = await insert(kv, keys, Number.MAX_SAFE_INTEGER, value, t0 + opts.insertMs);
  const ins = cpuBetween(a, sampleCpu(pids));
  const inserted = after - keys;
  const spec = { workload: 'A' as const, distribution: 'uniform' as const, keys: after, seed: keys };
  const contexts: ContextCache = new Map();
  const b = sampleCpu(pids);
  const r = await closedLoop(tunekvStore(kv, parseLevel('quorum'), value, contexts), spec, ycsbClients, opts.ycsbMs, () => {});
  const use = cpuBetween(b, sampleCpu(pids));
  return {
    keys: after,
    point: {
      keys: after,
      insertOpsPerSec: Math.round(inserted / ins.wallS),
      insertCpuUsPerOp: cpuPerOp(ins, inserted).total,
      opsPerSec: Math.round(r.ops / (r.elapsedMs / 1000)),
      cpuUsPerOp: cpuPerOp(use, r.ops).total,
      rssMb: pids.map((pid) => rssMb(pid)),
      rssAnonMb: pids.map((pid) => rssMb(pid, 'RssAnon')),
      rssFileMb: pids.map((pid) => rssMb(pid, 'RssFile')),
    },
  };
}

/** Stops n1 (SIGTERM, or SIGKILL for a crash) and times its restart until it answers. */
async function timeStart(dir: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<number> {
  const c = readCluster(dir)!;
  const nd = c.nodes[0]!;
  await stopNode(nd, signal);
  writeCluster(dir, c);
  const t0 = Date.now();
  await restartNode(dir, nd.id);
  return Date.now() - t0;
}

export async function runScale(opts: ScaleOptions): Promise<ScaleResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  if ((opts.dir === undefined) !== (opts.snapshot === undefined)) throw new TypeError('dir and snapshot go together');
  const dir = opts.dir !== undefined ? path.resolve(opts.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-scale-'));
  const snapshot = opts.snapshot !== undefined ? path.resolve(opts.snapshot) : undefined;
  const value = Buffer.alloc(opts.valueBytes, 0x78);
  const result: ScaleResult = { points: [] };
  let kv: TuneKvClient | undefined;
  try {
    let keys = 0;
    let restored = 0;
    fs.rmSync(dir, { recursive: true, force: true });
    if (snapshot !== undefined && fs.existsSync(path.join(snapshot, snapshotMetaFile))) {
      keys = (JSON.parse(fs.readFileSync(path.join(snapshot, snapshotMetaFile), 'utf8')) as { keys: number }).keys;
      restored = keys;
      fs.cpSync(snapshot, dir, { recursive: true });
      await start(dir, opts.nodeArgs, false);
      log(`restarted the cluster of ${keys} keys copied from ${snapshot}`);
      await sleep(3000);
    } else {
      await start(dir, opts.nodeArgs, true);
    }
    kv = await dial(dir);
    let warm = false;
    for (const target of scalePoints(keys, opts.first, opts.step, opts.keys)) {
      if (target > keys) {
        const t0 = Date.now();
        keys = await insert(kv, keys, target, value);
        log(`  loaded to ${keys} keys (${Math.round((Date.now() - t0) / 1000)} s)`);
      }
      if (!warm) {
        // JIT and connections warm before the first figure (ops/s at the
        // first point would otherwise read low).
        const spec = { workload: 'A' as const, distribution: 'uniform' as const, keys, seed: 0 };
        await closedLoop(tunekvStore(kv, parseLevel('quorum'), value, new Map()), spec, ycsbClients, 2000, () => {});
        warm = true;
      }
      const m = await measure(kv, dir, keys, opts, value);
      keys = m.keys;
      result.points.push(m.point);
      const p = m.point;
      log(`${String(p.keys).padStart(8)} keys: insert ${p.insertOpsPerSec} ops/s ${p.insertCpuUsPerOp} µs CPU/op; `
        + `YCSB A ${p.opsPerSec} ops/s ${p.cpuUsPerOp} µs CPU/op; RSS ${p.rssMb.join(' / ')} MB `
        + `(anonymous ${p.rssAnonMb.join(' / ')}, file ${p.rssFileMb.join(' / ')})`);
    }
    await kv.close();
    kv = undefined;
    // A snapshot is (re)written only when this run loaded past it (the
    // measurements add a few thousand keys; those are not worth a copy).
    if (snapshot !== undefined && (restored === 0 || opts.keys > restored)) {
      await stopCluster(dir, () => {});
      fs.rmSync(snapshot, { recursive: true, force: true });
      fs.cpSync(dir, snapshot, { recursive: true });
      fs.writeFileSync(path.join(snapshot, snapshotMetaFile), JSON.stringify({ keys }));
      await start(dir, opts.nodeArgs, false);
      log(`kept a copy of the cluster of ${keys} keys in ${snapshot}`);
    }
    if (opts.starts === false) return result;
    result.startMs = await timeStart(dir, 'SIGTERM');
    log(`start of a node holding ${keys} keys (clean stop before): ${result.startMs} ms`);
    result.crashStartMs = await timeStart(dir, 'SIGKILL');
    log(`start of a node holding ${keys} keys after a SIGKILL: ${result.crashStartMs} ms`);
    return result;
  } finally {
    await kv?.close().catch(() => {});
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    keys: { type: 'string', default: '1000000' }, step: { type: 'string', default: '100000' },
    first: { type: 'string', default: '10000' }, 'value-bytes': { type: 'string', default: '100' },
    'insert-ms': { type: 'string', default: '3000' }, 'ycsb-ms': { type: 'string', default: '5000' },
    'node-args': { type: 'string', default: '' }, dir: { type: 'string' }, snapshot: { type: 'string' },
    json: { type: 'boolean', default: false }, 'no-starts': { type: 'boolean', default: false },
  } });
  const opts: ScaleOptions = {
    keys: Number(values.keys), step: Number(values.step), first: Number(values.first), valueBytes: Number(values['value-bytes']),
    insertMs: Number(values['insert-ms']), ycsbMs: Number(values['ycsb-ms']),
    nodeArgs: values['node-args'].split(' ').filter((s) => s.length > 0), starts: !values['no-starts'],
    ...(values.dir === undefined ? {} : { dir: values.dir }), ...(values.snapshot === undefined ? {} : { snapshot: values.snapshot }),
  };
  for (const [name, v] of Object.entries({ keys: opts.keys, step: opts.step, first: opts.first, valueBytes: opts.valueBytes })) {
    if (!Number.isInteger(v) || v <= 0) throw new TypeError(`--${name} (${v}) must be a positive integer`);
  }
  console.log(`scale: 3 nodes N=3 Q=64, quorum, ${opts.valueBytes}-byte values, inserts ${insertConcurrency} in flight for ${opts.insertMs} ms, `
    + `YCSB A ${ycsbClients} clients for ${opts.ycsbMs} ms, node flags [${opts.nodeArgs.join(' ')}], ${os.cpus().length} cores`);
  const r = await runScale(opts);
  if (values.json) console.log(JSON.stringify(r));
}

if (process.argv[1] !== undefined && /scale\.[jt]s$/.test(process.argv[1])) {
  main().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
