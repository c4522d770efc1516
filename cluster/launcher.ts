// The local-cluster launcher behind `tunekv cluster ...`.
//
// A cluster lives in a directory: `cluster.json` (its nodes, ports, data
// directories and live pids: the single source of truth for every cluster
// command, whichever process runs it) and one data directory and log file
// per node. Starting founds the ring on n1, then every other node joins
// through the nodes started before it, and start returns (or, in the
// foreground, prints how to connect) once every node answers and every node
// sees the whole ring.
//
// Invariants: a pid is recorded for every node process we start, and
// cleared once it is gone; stop leaves no process behind (SIGTERM, then
// SIGKILL after stopTimeoutMs); nothing here needs root.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { ConnectionOptions } from 'node:tls';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TuneKvError } from '../src/errors.js';
import { RpcConnection } from '../src/io/connection.js';
import type { DialAuth } from '../src/io/connection.js';
import { clusterKey, ensureSecretFile, readSecretFile, secretFileName } from '../src/security/secret.js';
import { MsgType } from '../src/protocol/messages.js';

export interface ClusterNode {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** Prometheus endpoint port. */
  readonly metricsPort?: number;
  pid: number | null;
}

/** Faults the launcher has set, re-applied to a node whenever it restarts. */
export interface ClusterFaults {
  /** Partition sides: nodes in different groups cannot exchange messages. */
  groups: string[][];
  /** Delay and loss on every node-to-node link. */
  delayMs: number;
  jitterMs: number;
  loss: number;
}

export interface ClusterFile {
  readonly format: 1;
  readonly n: number;
  readonly q: number;
  readonly fsync: boolean;
  /** Extra `tunekv node` flags every node gets (timings, say). */
  readonly nodeArgs?: string[];
  faults?: ClusterFaults;
  readonly nodes: ClusterNode[];
}

export interface StartOptions {
  readonly dir: string;
  readonly nodes: number;
  /** First port; 0 picks free ports. */
  readonly basePort: number;
  readonly host: string;
  readonly n: number;
  readonly q: number;
  readonly fsync: boolean;
  readonly detach: boolean;
  /** Extra `tunekv node` flags for every node. */
  readonly nodeArgs?: string[];
  readonly log?: (line: string) => void;
}

/** How long start waits for the cluster to form. */
const readyTimeoutMs = 30_000;
/** How long stop waits for SIGTERM before SIGKILL. */
const stopTimeoutMs = 10_000;

const here = path.dirname(fileURLToPath(import.meta.url));
/** The CLI entry point next to this file, whether run from dist or source. */
export const cliEntry = fs.existsSync(path.join(here, '../src/cli/main.js'))
  ? path.join(here, '../src/cli/main.js')
  : path.join(here, '../dist/src/cli/main.js');

export function clusterFilePath(dir: string): string {
  return path.join(dir, 'cluster.json');
}

export function readCluster(dir: string): ClusterFile | undefined {
  const file = clusterFilePath(dir);
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterFile;
}

export function writeCluster(dir: string, c: ClusterFile): void {
  const file = clusterFilePath(dir);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(c, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

export function requireCluster(dir: string): ClusterFile {
  const c = readCluster(dir);
  if (!c) throw new TuneKvError('INVALID_ARGUMENT', `no cluster in ${dir} (start one with: tunekv cluster start --dir ${dir})`);
  return c;
}

/** The pid is alive and is a tunekv node with this id (pids get reused). */
export function isNodeProcess(pid: number | null, id: string): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z') return false;
    return cmd.includes('node') && cmd.includes(id);
  } catch {
    return true;
  }
}

/** `count` distinct free ports: every listener stays open until all are
 * chosen (one at a time, the kernel may hand out a port twice). */
async function freePorts(host: string, count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, host, () => resolve()); });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => { if (s.listening) s.close(() => resolve()); else resolve(); })));
  }
}

/** The cluster's secret file: made once, mode 0600, when the cluster is
 * first started; every node gets it with --secret-file. */
export function secretFileOf(dir: string): string {
  return path.join(path.resolve(dir), secretFileName);
}

/** How the launcher (and the CLI's cluster commands, tests and benchmarks)
 * prove themselves to the cluster's nodes: the cluster secret, as admin. */
export function adminAuth(dir: string): DialAuth {
  return { kind: 'secret', key: clusterKey(readSecretFile(secretFileOf(dir))), as: 'admin' };
}

/** How admin tools dial a cluster's nodes: the secret, and TLS when the
 * nodes were started with --tls-* flags (their certificate doubles as our
 * client certificate, which mutual TLS for peers requires). */
export interface AdminDial { readonly auth: DialAuth; readonly tls?: ConnectionOptions }

export function adminDial(dir: string): AdminDial {
  const c = readCluster(dir);
  const args = c?.nodeArgs ?? [];
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const ca = flag('--tls-ca');
  const cert = flag('--tls-cert');
  const key = flag('--tls-key');
  const auth = adminAuth(dir);
  if (cert === undefined || key === undefined) return { auth };
  return { auth, tls: { cert: fs.readFileSync(cert), key: fs.readFileSync(key), ...(ca ? { ca: fs.readFileSync(ca) } : {}) } };
}

function dialOf(d: DialAuth | AdminDial | undefined): { auth?: DialAuth; tls?: ConnectionOptions } {
  if (d === undefined) return {};
  return 'kind' in d ? { auth: d } : { auth: d.auth, ...(d.tls ? { tls: d.tls } : {}) };
}

function nodeArgs(c: ClusterFile, node: ClusterNode, seeds: readonly ClusterNode[], dir: string): string[] {
  const args = [cliEntry, 'node', '--id', node.id, '--listen', `${node.host}:${node.port}`, '--data', node.dataDir,
    '--n', String(c.n), '--q', String(c.q), '--secret-file', secretFileOf(dir)];
  if (seeds.length > 0) args.push('--join', seeds.map((s) => `${s.host}:${s.port}`).join(','));
  if (c.fsync) args.push('--fsync');
  if (node.metricsPort !== undefined) args.push('--metrics', `${node.host}:${node.metricsPort}`);
  args.push(...(c.nodeArgs ?? []));
  return args;
}

/** Starts one node process. `seeds` are the nodes it may join through: at
 * first start the nodes started before it (so n1 founds the ring), at a
 * restart every other node (it normally reloads its ring and needs none). */
function spawnNode(dir: string, c: ClusterFile, node: ClusterNode, seeds: readonly ClusterNode[], detach: boolean,
  log: (l: string) => void): ChildProcess {
  fs.mkdirSync(node.dataDir, { recursive: true });
  if (detach) {
    const out = fs.openSync(node.logFile, 'a');
    const child = spawn(process.execPath, nodeArgs(c, node, seeds, dir), { detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child.unref();
    return child;
  }
  const child = spawn(process.execPath, nodeArgs(c, node, seeds, dir), { stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.length > 0) log(`[${node.id}] ${line}`);
  };
  child.stdout?.on('data', prefix);
  child.stderr?.on('data', prefix);
  return child;
}

/** STATUS of one node, or undefined if it does not answer in time. */
export function probe(host: string, port: number, timeoutMs: number, dial: DialAuth | AdminDial | undefined): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const conn = new RpcConnection({ host, port, agent: 'tunekv-cluster', connectTimeoutMs: timeoutMs, ...dialOf(dial) });
    conn.request(MsgType.STATUS, {}, timeoutMs, (err, _t, body) => {
      conn.close();
      resolve(err ? undefined : body as Record<string, unknown>);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until the node answers and sees a ring of `members` nodes. */
async function waitReady(auth: AdminDial, node: ClusterNode, members: number, deadline: number, alive: () => boolean): Promise<void> {
  for (;;) {
    const st = await probe(node.host, node.port, 1000, auth);
    const ring = st?.ring as { members?: unknown[] } | null | undefined;
    if (st?.ready === true && ring && (ring.members?.length ?? 0) >= members) return;
    if (!alive()) throw new TuneKvError('UNAVAILABLE', `node ${node.id} exited during start; see ${node.logFile}`);
    if (Date.now() > deadline) throw new TuneKvError('UNAVAILABLE', `node ${node.id} was not ready within ${readyTimeoutMs} ms; see ${node.logFile}`);
    await sleep(100);
  }
}

export interface StartedCluster {
  readonly cluster: ClusterFile;
  /** Foreground only: the children, to wait on. */
  readonly children: Map<string, ChildProcess>;
}

export async function startCluster(opts: StartOptions): Promise<StartedCluster> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  let c = readCluster(dir);
  if (c) {
    const running = c.nodes.filter((nd) => isNodeProcess(nd.pid, nd.id));
    if (running.length > 0) {
      throw new TuneKvError('INVALID_ARGUMENT', `the cluster in ${dir} is running (${running.map((nd) => `${nd.id} pid ${nd.pid}`).join(', ')}); stop it first`);
    }
    if (c.nodes.length !== opts.nodes) {
      throw new TuneKvError('INVALID_ARGUMENT', `${dir} holds a ${c.nodes.length}-node cluster; use another --dir for ${opts.nodes} nodes`);
    }
  } else {
    const nodes: ClusterNode[] = [];
    const picked = opts.basePort === 0 ? await freePorts(opts.host, opts.nodes * 2) : [];
    for (let i = 0; i < opts.nodes; i++) {
      const id = `n${i + 1}`;
      const port = opts.basePort === 0 ? picked[2 * i]! : opts.basePort + i;
      const metricsPort = opts.basePort === 0 ? picked[2 * i + 1]! : port + 2000;
      nodes.push({ id, host: opts.host, port, metricsPort, dataDir: path.join(dir, id), logFile: path.join(dir, `${id}.log`), pid: null });
    }
    c = { format: 1, n: opts.n, q: opts.q, fsync: opts.fsync, nodeArgs: opts.nodeArgs ?? [], nodes };
  }
  // Faults belong to a run of the cluster, not to its data.
  c.faults = undefined;
  const secret = ensureSecretFile(secretFileOf(dir));
  if (secret.created) log(`made a cluster secret in ${secretFileOf(dir)} (mode 0600): every node of this cluster proves it to its peers`);
  const cluster = c;
  writeCluster(dir, cluster);
  const auth = adminDial(dir);
  const children = new Map<string, ChildProcess>();
  const deadline = Date.now() + readyTimeoutMs;
  try {
    // n1 first: it founds the ring (or reloads it); the others join through
    // it one at a time, so the ring (which depends on the order of joins)
    // is the same on every fresh start of the same cluster.
    for (const [i, node] of cluster.nodes.entries()) {
      const child = spawnNode(dir, cluster, node, cluster.nodes.slice(0, i), opts.detach, log);
      node.pid = child.pid ?? null;
      children.set(node.id, child);
      writeCluster(dir, cluster);
      await waitReady(auth, node, i + 1, deadline, () => child.exitCode === null && child.signalCode === null);
    }
    for (const node of cluster.nodes) {
      const child = children.get(node.id)!;
      await waitReady(auth, node, cluster.nodes.length, deadline, () => opts.detach ? isNodeProcess(node.pid, node.id) : child.exitCode === null);
    }
  } catch (err) {
    await stopCluster(dir, () => {});
    throw err;
  }
  return { cluster, children };
}

async function waitGone(pid: number, id: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isNodeProcess(pid, id)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

export async function stopNode(node: ClusterNode, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = node.pid;
  if (pid === null || !isNodeProcess(pid, node.id)) { node.pid = null; return; }
  try { process.kill(pid, signal); } catch { /* already gone */ }
  if (signal === 'SIGTERM' && !(await waitGone(pid, node.id, stopTimeoutMs))) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  // A paused node cannot act on SIGTERM until it runs again.
  try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
  await waitGone(pid, node.id, stopTimeoutMs);
  node.pid = null;
}

export async function stopCluster(dir: string, log: (l: string) => void = (l) => console.log(l)): Promise<void> {
  const c = readCluster(dir);
  if (!c) return;
  await Promise.all(c.nodes.map(async (nd) => {
    const had = nd.pid !== null && isNodeProcess(nd.pid, nd.id);
    await stopNode(nd);
    if (had) log(`${nd.id} stopped`);
  }));
  writeCluster(dir, c);
}

function findNode(c: ClusterFile, id: string): ClusterNode {
  const nd = c.nodes.find((x) => x.id === id);
  if (!nd) throw new TuneKvError('INVALID_ARGUMENT', `no node ${id} in this cluster (nodes: ${c.nodes.map((x) => x.id).join(', ')})`);
  return nd;
}

/** SIGKILL: the crash a kill -9 or a power cut makes of the process. */
export async function killNode(dir: string, id: string): Promise<void> {
  const c = requireCluster(dir);
  const nd = findNode(c, id);
  if (!isNodeProcess(nd.pid, nd.id)) throw new TuneKvError('INVALID_ARGUMENT', `${id} is not running`);
  await stopNode(nd, 'SIGKILL');
  writeCluster(dir, c);
}

/** Stops the node if it runs, then starts it again on its data, detached. */
export async function restartNode(dir: string, id: string): Promise<void> {
  const c = requireCluster(dir);
  const nd = findNode(c, id);
  await stopNode(nd);
  const child = spawnNode(dir, c, nd, c.nodes.filter((x) => x.id !== id), true, () => {});
  nd.pid = child.pid ?? null;
  writeCluster(dir, c);
  await waitReady(adminDial(dir), nd, c.nodes.length, Date.now() + readyTimeoutMs, () => isNodeProcess(nd.pid, nd.id));
  await applyFaults(dir, c, [nd]);
}

// ---- fault injection ----
//
// pause/resume are SIGSTOP/SIGCONT: the process stops dead, its sockets stay
// open, peers time out on it and then mark it down. Partitions, delay and
// loss live in each node's own peer transport (src/server/faults.ts), set by
// an ADMIN_FAULTS message: no root, no netem. The launcher keeps them in
// cluster.json and re-sends them to a node that restarts or resumes.

/** SIGSTOP: the node freezes (a GC pause, a stuck VM) until resumed. */
export async function pauseNode(dir: string, id: string): Promise<void> {
  const c = requireCluster(dir);
  const nd = findNode(c, id);
  if (!isNodeProcess(nd.pid, nd.id)) throw new TuneKvError('INVALID_ARGUMENT', `${id} is not running`);
  process.kill(nd.pid!, 'SIGSTOP');
}

export async function resumeNode(dir: string, id: string): Promise<void> {
  const c = requireCluster(dir);
  const nd = findNode(c, id);
  if (!isNodeProcess(nd.pid, nd.id)) throw new TuneKvError('INVALID_ARGUMENT', `${id} is not running`);
  process.kill(nd.pid!, 'SIGCONT');
  await applyFaults(dir, c, [nd]);
}

const noClusterFaults = (): ClusterFaults => ({ groups: [], delayMs: 0, jitterMs: 0, loss: 0 });

/** Splits the cluster: nodes in different groups cannot talk. Nodes named
 * in no group form one more group together. */
export async function partition(dir: string, groups: string[][]): Promise<string[]> {
  const c = requireCluster(dir);
  const ids = c.nodes.map((nd) => nd.id);
  for (const g of groups) for (const id of g) findNode(c, id);
  const named = new Set(groups.flat());
  if (named.size !== groups.flat().length) throw new TuneKvError('INVALID_ARGUMENT', 'a node may be in only one group');
  const rest = ids.filter((id) => !named.has(id));
  c.faults = { ...(c.faults ?? noClusterFaults()), groups: rest.length > 0 ? [...groups, rest] : groups };
  writeCluster(dir, c);
  return applyFaults(dir, c, c.nodes);
}

/** Removes every partition (delay and loss stay). */
export async function heal(dir: string): Promise<string[]> {
  const c = requireCluster(dir);
  c.faults = { ...(c.faults ?? noClusterFaults()), groups: [] };
  writeCluster(dir, c);
  return applyFaults(dir, c, c.nodes);
}

/** Delay (fixed + uniform jitter) and loss on every node-to-node link. */
export async function setLinkFaults(dir: string, link: { delayMs: number; jitterMs: number; loss: number }): Promise<string[]> {
  const c = requireCluster(dir);
  c.faults = { ...(c.faults ?? noClusterFaults()), ...link };
  writeCluster(dir, c);
  return applyFaults(dir, c, c.nodes);
}

/** The fault spec one node should have. */
export function faultSpecFor(c: ClusterFile, id: string): { blocked: string[]; delayMs: number; jitterMs: number; loss: number } {
  const f = c.faults ?? noClusterFaults();
  const mine = f.groups.find((g) => g.includes(id)) ?? [];
  const blocked = f.groups.length === 0 ? [] : c.nodes.map((nd) => nd.id).filter((x) => x !== id && !mine.includes(x));
  return { blocked, delayMs: f.delayMs, jitterMs: f.jitterMs, loss: f.loss };
}

/** Sends each node its fault spec; returns the nodes that did not take it. */
async function applyFaults(dir: string, c: ClusterFile, nodes: readonly ClusterNode[]): Promise<string[]> {
  const missed: string[] = [];
  const auth = adminDial(dir);
  await Promise.all(nodes.map(async (nd) => {
    if (!isNodeProcess(nd.pid, nd.id)) { missed.push(nd.id); return; }
    const ok = await adminRequest(auth, nd.host, nd.port, MsgType.ADMIN_FAULTS, faultSpecFor(c, nd.id));
    if (!ok) missed.push(nd.id);
  }));
  return missed.sort();
}

function adminRequest(dial: AdminDial, host: string, port: number, type: number, body: unknown, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = new RpcConnection({ host, port, agent: 'tunekv-cluster', connectTimeoutMs: timeoutMs, ...dialOf(dial) });
    conn.request(type, body, timeoutMs, (err) => { conn.close(); resolve(err === null); });
  });
}

export interface NodeStatus {
  readonly id: string;
  readonly addr: string;
  readonly pid: number | null;
  readonly running: boolean;
  readonly answering: boolean;
  readonly ringVersion: number | null;
  readonly members: number | null;
}

export async function clusterStatus(dir: string): Promise<NodeStatus[]> {
  const c = requireCluster(dir);
  const auth = adminDial(dir);
  return Promise.all(c.nodes.map(async (nd) => {
    const running = isNodeProcess(nd.pid, nd.id);
    const st = running ? await probe(nd.host, nd.port, 1000, auth) : undefined;
    const ring = st?.ring as { version: number; members: unknown[] } | null | undefined;
    return {
      id: nd.id, addr: `${nd.host}:${nd.port}`, pid: running ? nd.pid : null, running,
      answering: st !== undefined, ringVersion: ring?.version ?? null, members: ring?.members.length ?? null,
    };
  }));
}
