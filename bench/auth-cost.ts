// What authentication and TLS cost: the same load against a cluster in
// each security mode, back to back, reporting connect time, unloaded
// latency and CPU per operation (all node processes plus this client).
//
//   node dist/bench/auth-cost.js [--modes plain,users,tls] [--ops 3000] [--load-ms 5000] [--clients 32]
//   node dist/bench/auth-cost.js --hosts H:P,... --pids PID,... --label NAME   (a cluster started elsewhere,
//                                                                            e.g. an older build, no login)
//
// Modes: plain = protected mode, a loopback client without login (what
// every client did before authentication existed); users = a users file
// and a client that logs in (SCRAM over scrypt); tls = users plus TLS for
// clients and mutual TLS between peers. Each mode starts its own 3-node
// cluster (N=3, Q=64, no fsync) on free ports and stops it afterwards.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { readCluster, startCluster, stopCluster } from '../cluster/launcher.js';
import { connect } from '../src/index.js';
import type { ConnectOptions, TuneKvClient } from '../src/index.js';
import { userLine } from '../src/security/users.js';
import { makeCerts } from '../test/helpers/certs.js';

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'plain,users,tls' },
    ops: { type: 'string', default: '3000' },
    'load-ms': { type: 'string', default: '5000' },
    clients: { type: 'string', default: '32' },
    hosts: { type: 'string' },
    pids: { type: 'string' },
    label: { type: 'string', default: 'external' },
  },
});
const ops = Number(values.ops);
const loadMs = Number(values['load-ms']);
const concurrency = Number(values.clients);
const value = Buffer.alloc(100, 0x61);
const keys = 10_000;
const ticksPerSec = 100; // USER_HZ on Linux

interface Row {
  mode: string; connectMs: number; getP50: number; getP99: number; putP50: number; putP99: number;
  opsPerSec: number; cpuUsPerOp: number; loadP50: number; loadP99: number;
}

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}
const ms = (h: hdr.Histogram, p: number): number => h.getValueAtPercentile(p) / 1e6;

/** utime + stime of a process, in µs. */
function procCpuUs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / ticksPerSec;
}

function cpuNow(pids: number[]): number {
  const own = process.cpuUsage();
  return pids.reduce((a, p) => a + procCpuUs(p), 0) + own.user + own.system;
}

async function measure(mode: string, opts: ConnectOptions, pids: number[]): Promise<Row> {
  const t0 = process.hrtime.bigint();
  const kv = await connect(opts);
  // A fresh connection to every node: the handshake (and login) is paid here.
  for (const h of opts.hosts) await kv.get('auth-cost:probe', { host: h });
  const connectMs = Number(process.hrtime.bigint() - t0) / 1e6;
  for (let i = 0; i < keys; i += 1) if (i % 10 === 0) await kv.put(`auth-cost:${i}`, value);
  const gets = histogram();
  const puts = histogram();
  for (let i = 0; i < ops; i++) {
    const k = `auth-cost:${(i * 7919) % keys}`;
    let s = process.hrtime.bigint();
    await kv.put(k, value, { consistency: 'quorum' });
    puts.recordValue(Number(process.hrtime.bigint() - s));
    s = process.hrtime.bigint();
    await kv.get(k, { consistency: 'quorum' });
    gets.recordValue(Number(process.hrtime.bigint() - s));
  }
  const load = await loaded(kv, pids);
  await kv.close();
  return {
    mode, connectMs, getP50: ms(gets, 50), getP99: ms(gets, 99), putP50: ms(puts, 50), putP99: ms(puts, 99), ...load,
  };
}

/** YCSB A (50/50 reads and writes) at quorum over uniform keys, `concurrency` in flight. */
async function loaded(kv: TuneKvClient, pids: number[]): Promise<{ opsPerSec: number; cpuUsPerOp: number; loadP50: number; loadP99: number }> {
  const h = histogram();
  let done = 0;
  let seed = 12345;
  const rand = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000; };
  const cpu0 = cpuNow(pids);
  const t0 = Date.now();
  const deadline = t0 + loadMs;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < deadline) {
      const k = `auth-cost:${Math.floor(rand() * keys)}`;
      const s = process.hrtime.bigint();
      if (rand() < 0.5) await kv.get(k, { consistency: 'quorum' });
      else await kv.put(k, value, { consistency: 'quorum', lww: true });
      h.recordValue(Number(process.hrtime.bigint() - s));
      done++;
    }
  }));
  const secs = (Date.now() - t0) / 1000;
  const cpu = cpuNow(pids) - cpu0;
  return { opsPerSec: done / secs, cpuUsPerOp: cpu / done, loadP50: ms(h, 50), loadP99: ms(h, 99) };
}

async function runMode(mode: string, work: string): Promise<Row> {
  const dir = fs.mkdtempSync(path.join(work, `${mode}-`));
  const nodeArgs: string[] = [];
  const opts: { user?: string; password?: string; tls?: { ca: Buffer } } = {};
  if (mode === 'users' || mode === 'tls') {
    const usersFile = path.join(work, 'users.txt');
    if (!fs.existsSync(usersFile)) fs.writeFileSync(usersFile, `${await userLine('bench', 'bench-pw', 'write')}\n`, { mode: 0o600 });
    nodeArgs.push('--users-file', usersFile);
    opts.user = 'bench';
    opts.password = 'bench-pw';
  }
  if (mode === 'tls') {
    const certs = makeCerts(path.join(work, 'certs'));
    nodeArgs.push('--tls-cert', certs.nodeCert, '--tls-key', certs.nodeKey, '--tls-ca', certs.ca);
    opts.tls = { ca: fs.readFileSync(certs.ca) };
  }
  const started = await startCluster({
    dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {}, nodeArgs,
  });
  try {
    const hosts = started.cluster.nodes.map((nd) => `${nd.host}:${nd.port}`);
    const pids = (readCluster(dir)?.nodes ?? []).map((nd) => nd.pid).filter((p): p is number => p !== null);
    return await measure(mode, { hosts, timeoutMs: 10_000, ...opts }, pids);
  } finally {
    await stopCluster(dir, () => {});
  }
}

function print(rows: Row[]): void {
  console.log('| mode | connect to 3 nodes ms | get p50 / p99 ms | put p50 / p99 ms | YCSB A ops/s | p50 / p99 ms under load | CPU µs/op (nodes + client) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.mode} | ${r.connectMs.toFixed(1)} | ${r.getP50.toFixed(3)} / ${r.getP99.toFixed(3)} | ${r.putP50.toFixed(3)} / ${r.putP99.toFixed(3)} | `
      + `${Math.round(r.opsPerSec)} | ${r.loadP50.toFixed(2)} / ${r.loadP99.toFixed(2)} | ${Math.round(r.cpuUsPerOp)} |`);
  }
}

async function main(): Promise<void> {
  console.log(`auth-cost: ${ops} sequential put+get pairs at quorum, then YCSB A (50/50, uniform over ${keys} keys) with ${concurrency} in flight for ${loadMs} ms; 100-byte values; ${os.cpus().length} cores`);
  if (values.hosts !== undefined) {
    const pids = (values.pids ?? '').split(',').filter((x) => x.length > 0).map(Number);
    print([await measure(values.label!, { hosts: values.hosts.split(','), timeoutMs: 10_000 }, pids)]);
    return;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-auth-cost-'));
  try {
    const rows: Row[] = [];
    for (const mode of values.modes!.split(',')) rows.push(await runMode(mode, work));
    print(rows);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: Error) => { console.error(err); process.exit(1); });
