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
// Two layouts: every node on one host and its own port (base port + i), or,
// with distinctAddresses, node i on 127.0.0.i and every node on the same
// port, the way separate machines would run it. Linux routes all of
// 127.0.0.0/8 to the loopback device, so the second needs no setup either.
// Either way each node's host and port are in cluster.json, and every
// command after start reads them from there.
//
// The cluster can change shape while it runs (core/ring/transition.ts):
// `add` starts new nodes on standby and stages and commits their joins in
// one plan; `leave` and `remove` stage and commit a member's departure
// through another running node. A node that left (it handed everything
// off and exited) or was removed keeps its entry in cluster.json, marked
// `left` or `removed`, so its id is never reused; every command skips it.
//
// Invariants: a pid is recorded for every node process we start, and
// cleared once it is gone; stop leaves no process behind (SIGTERM, then
// SIGKILL after stopTimeoutMs); nothing here needs root; a node marked
// left or removed is never started again.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { ConnectionOptions } from 'node:tls';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TuneKvError } from '../src/errors.js';
import { memberOf, replicatedPartitions, ringFromWire, stateOf } from '../src/core/ring/ring.js';
import type { MemberState, Ring } from '../src/core/ring/ring.js';
import { inTransition, nextView, phaseNames } from '../src/core/ring/transition.js';
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
  /** Its leave was committed; it exits by itself once it handed off. */
  leaving?: boolean;
  /** It left the cluster (handed everything off and exited). */
  left?: boolean;
  /** It was removed from the cluster while dead; its data is stale. */
  removed?: boolean;
}

/** The node left or was removed: no command starts, stops or asks it. */
export function isGone(node: ClusterNode): boolean {
  return node.left === true || node.removed === true;
}

/** The nodes that are (or may be) part of the cluster. */
export function activeNodes(c: ClusterFile): ClusterNode[] {
  return c.nodes.filter((nd) => !isGone(nd));
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
  /** Node i listens on 127.0.0.i, every node on the same port. Absent in
   * files written before the option existed: one host, a port each. */
  readonly distinctAddresses?: boolean;
  /** The --base-port the cluster was started with (0: free ports). Absent
   * in files written before `cluster add`; then inferred (portPlan). */
  readonly basePort?: number;
  faults?: ClusterFaults;
  readonly nodes: ClusterNode[];
}

export interface StartOptions {
  readonly dir: string;
  /** Nodes of a new cluster (default 3). An existing cluster restarts with
   * the nodes its file lists (grown by add, shrunk by leave and remove);
   * a count given for it must match them. */
  readonly nodes?: number;
  /** First port; 0 picks free ports. With distinctAddresses, the one port
   * every node listens on (0 picks one free on every address). */
  readonly basePort: number;
  /** Every node's host; ignored with distinctAddresses. */
  readonly host: string;
  /** Node i on 127.0.0.i, all on basePort: separate machines rehearsed on
   * one. At most distinctAddressesNodesMax nodes. */
  readonly distinctAddresses?: boolean;
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
/** How long add, leave and remove wait for a transition (transfers at the
 * nodes' limit, 20 MB/s by default, move about 12 GB in that time); a
 * caller may pass its own. */
export const transitionWaitMsDefault = 600_000;
/** How long after a leaving node's process exited its id may stay in the
 * ring: the claimant drops it on its next step (every 200 ms by default). */
const leftSettleMs = 10_000;
/** Nodes one `cluster add` starts at most: a ring holds at most
 * limits.nodesMax, and one plan of many joins is one long transition. */
export const addNodesMax = 32;
/** 127.0.0.1 .. 127.0.0.254: one /24 of the loopback block is plenty for a
 * local cluster, and keeps every address's last byte the node's number. */
export const distinctAddressesNodesMax = 254;
/** Metrics listen on the node's port + this (7001 -> 9001), as `tunekv
 * node` does by default. */
const metricsPortOffset = 2000;
/** Ports the kernel offers that are tried on every address before giving
 * up: another process would have to hold each of them on some 127.0.0.i. */
const sharedPortAttemptsMax = 20;

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

/** Node i's address (1-based) when every node has one of its own. */
export function distinctAddress(i: number): string {
  return `127.0.0.${i}`;
}

function bindTest(host: string, port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, host, () => resolve(s));
  });
}

function closeAll(servers: readonly net.Server[]): Promise<void> {
  return Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => {});
}

/** One port free on every one of `hosts`, and its metrics port (port +
 * metricsPortOffset) too: the kernel offers a candidate on the first host,
 * then it is bind-tested on each of the others. */
async function sharedFreePort(hosts: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < sharedPortAttemptsMax; attempt++) {
    const [candidate] = await freePorts(hosts[0]!, 1);
    const port = candidate!;
    if (port + metricsPortOffset > 65_535) continue;
    const held: net.Server[] = [];
    let free = true;
    // Every listener stays open until the whole set is tested, so a port
    // that is free on each address one at a time is free on all at once.
    for (const host of hosts) {
      for (const p of [port, port + metricsPortOffset]) {
        const s = free ? await bindTest(host, p) : undefined;
        if (s) held.push(s); else free = false;
      }
    }
    await closeAll(held);
    if (free) return port;
  }
  throw new TuneKvError('UNAVAILABLE', `no port was free on all of ${hosts[0]} .. ${hosts[hosts.length - 1]} after ${sharedPortAttemptsMax} tries`);
}

/** The nodes of a new cluster: their addresses, ports and files. */
async function layOut(opts: StartOptions, dir: string): Promise<ClusterNode[]> {
  const count = opts.nodes ?? startNodesDefault;
  const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const files = (id: string): { dataDir: string; logFile: string } => ({ dataDir: path.join(dir, id), logFile: path.join(dir, `${id}.log`) });
  if (opts.distinctAddresses === true) {
    const hosts = ids.map((_, i) => distinctAddress(i + 1));
    const port = opts.basePort === 0 ? await sharedFreePort(hosts) : opts.basePort;
    return ids.map((id, i) => ({ id, host: hosts[i]!, port, metricsPort: port + metricsPortOffset, ...files(id), pid: null }));
  }
  const picked = opts.basePort === 0 ? await freePorts(opts.host, count * 2) : [];
  return ids.map((id, i) => {
    const port = opts.basePort === 0 ? picked[2 * i]! : opts.basePort + i;
    const metricsPort = opts.basePort === 0 ? picked[2 * i + 1]! : port + metricsPortOffset;
    return { id, host: opts.host, port, metricsPort, ...files(id), pid: null };
  });
}

const startNodesDefault = 3;

/** Options a caller got wrong, in plain words (TypeError: API misuse). */
function checkStartOptions(opts: StartOptions): void {
  const nodes = opts.nodes ?? startNodesDefault;
  if (!Number.isInteger(nodes) || nodes < 1) throw new TypeError(`nodes (${nodes}) must be a positive integer`);
  if (!Number.isInteger(opts.basePort) || opts.basePort < 0 || opts.basePort > 65_535) {
    throw new TypeError(`base port (${opts.basePort}) must be 0 (pick free ports) or a port number`);
  }
  if (opts.distinctAddresses !== true) return;
  if (nodes > distinctAddressesNodesMax) {
    throw new TypeError(`distinct addresses give each node one of 127.0.0.1 .. 127.0.0.${distinctAddressesNodesMax}: at most ${distinctAddressesNodesMax} nodes; got ${nodes}`);
  }
  if (opts.basePort + metricsPortOffset > 65_535) {
    throw new TypeError(`base port (${opts.basePort}) leaves no room for the metrics port (base port + ${metricsPortOffset})`);
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

/** A node's `tunekv node` command line. `seeds`: see spawnNode; a node
 * started on standby (by add) has none and waits for its join. */
function nodeArgs(c: ClusterFile, node: ClusterNode, seeds: readonly ClusterNode[] | 'standby', dir: string): string[] {
  const args = [cliEntry, 'node', '--id', node.id, '--listen', `${node.host}:${node.port}`, '--data', node.dataDir,
    '--n', String(c.n), '--q', String(c.q), '--secret-file', secretFileOf(dir)];
  if (seeds === 'standby') args.push('--standby');
  else if (seeds.length > 0) args.push('--join', seeds.map((s) => `${s.host}:${s.port}`).join(','));
  if (c.fsync) args.push('--fsync');
  if (node.metricsPort !== undefined) args.push('--metrics', `${node.host}:${node.metricsPort}`);
  args.push(...(c.nodeArgs ?? []));
  return args;
}

/** Starts one node process. `seeds` are the nodes it may join through: at
 * first start the nodes started before it (so n1 founds the ring), at a
 * restart every other active node (it normally reloads its ring and needs
 * none); `standby` for a node that add joins. */
function spawnNode(dir: string, c: ClusterFile, node: ClusterNode, seeds: readonly ClusterNode[] | 'standby', detach: boolean,
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
  checkStartOptions(opts);
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
    // A restart keeps the stored addresses; asking for distinct ones for a
    // cluster whose ring names one host's ports would silently not happen.
    if (opts.distinctAddresses === true && c.distinctAddresses !== true) {
      throw new TuneKvError('INVALID_ARGUMENT', `${dir} holds a cluster on one address (${c.nodes[0]?.host}); use another --dir for distinct addresses`);
    }
  } else {
    const nodes = await layOut(opts, dir);
    c = {
      format: 1, n: opts.n, q: opts.q, fsync: opts.fsync, nodeArgs: opts.nodeArgs ?? [],
      ...(opts.distinctAddresses === true ? { distinctAddresses: true } : {}), nodes,
    };
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
