// The local-cluster launcher behind `tunekv cluster ...`.
//
// A cluster lives in a directory: `cluster.json` (its nodes, ports, data
// directories and live pids: the single source of truth for every cluster
// command, whichever process runs it) and one data directory and log file
// per node. Starting founds the ring on n1, then every other node joins
// through the nodes started before it, and start returns (or, in the
// foreground, prints how to connect) once every node answers, every node
// sees the whole ring and (for a new cluster) the joins' transition is over.
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
import { isErrorCode, TuneKvError } from '../src/errors.js';
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
  /** Prometheus endpoint port (also /health and /ready). A restart with a
   * new --metrics-base-port moves it (it is not in the ring). */
  metricsPort?: number;
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
  /** The --metrics-base-port the nodes' metrics ports follow: node i on
   * this + i - 1 (with distinctAddresses, every node on this one), 0 for
   * free ports. Absent: each node's port + metricsPortOffset. */
  metricsBasePort?: number;
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
   * every node listens on (0 picks one free on every address). Default
   * basePortDefault for a new cluster; given for an existing one, it must
   * be the one the cluster was started with (the members' addresses are in
   * every node's ring: moving a node is `replace`). */
  readonly basePort?: number;
  /** First metrics port: node i's metrics on this + i - 1 (with
   * distinctAddresses, every node's on this port of its own address); 0
   * picks free ports; absent: node port + metricsPortOffset (2000). Kept in
   * cluster.json; a different one given for an existing cluster is applied
   * (metrics ports are not in the ring). */
  readonly metricsBasePort?: number;
  /** Every node's host; ignored with distinctAddresses. */
  readonly host: string;
  /** Node i on 127.0.0.i, all on basePort: separate machines rehearsed on
   * one. At most distinctAddressesNodesMax nodes. */
  readonly distinctAddresses?: boolean;
  /** Replicas and partitions of a new cluster (3, 64); given for an
   * existing one, they must match its ring. */
  readonly n?: number;
  readonly q?: number;
  readonly fsync: boolean;
  readonly detach: boolean;
  /** Extra `tunekv node` flags for every node. */
  readonly nodeArgs?: string[];
  readonly log?: (line: string) => void;
}

/** How long start (and restart) waits for a node to answer, ready. A node
 * that exits is noticed at once; a live one may be opening a large store
 * (it rebuilds its anti-entropy hashes by a scan: about 8 s per million
 * keys on an idle machine, several times that on a busy one), so this is
 * generous: 30 s failed a restart of 1M keys per node on a loaded machine. */
const readyTimeoutMs = 120_000;
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
/** A new cluster's first port and ring shape when none is given. */
export const basePortDefault = 7001;
const nDefault = 3;
const qDefault = 64;
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
  if (!c) throw new TuneKvError('INVALID_ARGUMENT', `no cluster in ${dir} (start one with: npx tunekv cluster start --dir ${dir})`);
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
async function freePorts(host: string, count: number, avoid: readonly number[] = []): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const out: number[] = [];
    // `avoid`: ports already chosen but not held (the nodes' own ports,
    // when metrics ports are picked after them).
    for (let tries = 0; out.length < count && tries < count + sharedPortAttemptsMax; tries++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, host, () => resolve()); });
      const port = (s.address() as net.AddressInfo).port;
      if (!avoid.includes(port)) out.push(port);
    }
    if (out.length < count) throw new TuneKvError('UNAVAILABLE', `the kernel offered no ${count} free ports on ${host}`);
    return out;
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
async function sharedFreePort(hosts: readonly string[], metricsBasePort: number | undefined): Promise<number> {
  for (let attempt = 0; attempt < sharedPortAttemptsMax; attempt++) {
    const [candidate] = await freePorts(hosts[0]!, 1);
    const port = candidate!;
    // Without a metrics base port the metrics port rides along (port +
    // metricsPortOffset) and must be free too; with one it is chosen apart.
    const withMetrics = metricsBasePort === undefined ? [port, port + metricsPortOffset] : [port];
    if (metricsBasePort === undefined && port + metricsPortOffset > 65_535) continue;
    if (metricsBasePort !== undefined && metricsBasePort !== 0 && port === metricsBasePort) continue;
    if (await portsFreeOnAll(hosts, withMetrics)) return port;
  }
  throw new TuneKvError('UNAVAILABLE', `no port was free on all of ${hosts[0]} .. ${hosts[hosts.length - 1]} after ${sharedPortAttemptsMax} tries`);
}

/** The nodes of a new cluster: their addresses, ports and files. */
async function layOut(opts: StartOptions, dir: string): Promise<ClusterNode[]> {
  const count = opts.nodes ?? startNodesDefault;
  const basePort = opts.basePort ?? basePortDefault;
  const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const files = (id: string): { dataDir: string; logFile: string } => ({ dataDir: path.join(dir, id), logFile: path.join(dir, `${id}.log`) });
  if (opts.distinctAddresses === true) {
    const hosts = ids.map((_, i) => distinctAddress(i + 1));
    const port = basePort === 0 ? await sharedFreePort(hosts, opts.metricsBasePort) : basePort;
    const nodes = ids.map((id, i) => ({ id, host: hosts[i]!, port, ...files(id), pid: null } as ClusterNode));
    await assignMetricsPorts(nodes, opts.metricsBasePort, true);
    return nodes;
  }
  const picked = basePort === 0 ? await freePorts(opts.host, count) : [];
  const nodes = ids.map((id, i): ClusterNode => ({ id, host: opts.host, port: basePort === 0 ? picked[i]! : basePort + i, ...files(id), pid: null }));
  // Free node ports get free metrics ports too (port + 2000 of a port the
  // kernel picked may be taken, or past 65535), as before the option.
  await assignMetricsPorts(nodes, opts.metricsBasePort ?? (basePort === 0 ? 0 : undefined), false);
  return nodes;
}

/** Sets each node's metrics port from the metrics base port (see
 * ClusterFile.metricsBasePort); 0 picks free ones. */
async function assignMetricsPorts(nodes: ClusterNode[], metricsBasePort: number | undefined, distinct: boolean): Promise<void> {
  if (metricsBasePort === undefined) {
    for (const nd of nodes) nd.metricsPort = nd.port + metricsPortOffset;
    return;
  }
  if (metricsBasePort === 0) {
    if (distinct) {
      const port = await sharedFreeMetricsPort(nodes.map((nd) => nd.host), nodes.map((nd) => nd.port));
      for (const nd of nodes) nd.metricsPort = port;
      return;
    }
    const picked = await freePorts(nodes[0]?.host ?? '127.0.0.1', nodes.length, nodes.map((nd) => nd.port));
    nodes.forEach((nd, i) => { nd.metricsPort = picked[i]!; });
    return;
  }
  for (const nd of nodes) nd.metricsPort = distinct ? metricsBasePort : metricsBasePort + (nodeNumber(nd.id) ?? 1) - 1;
}

/** One port free on every host, other than the nodes' own ports. */
async function sharedFreeMetricsPort(hosts: readonly string[], avoid: readonly number[]): Promise<number> {
  for (let attempt = 0; attempt < sharedPortAttemptsMax; attempt++) {
    const [port] = await freePorts(hosts[0]!, 1, avoid);
    if (await portsFreeOnAll(hosts, [port!])) return port!;
  }
  throw new TuneKvError('UNAVAILABLE', `no metrics port was free on all of ${hosts[0]} .. ${hosts[hosts.length - 1]} after ${sharedPortAttemptsMax} tries`);
}

/** Every one of `ports` can be bound on every one of `hosts`. Each
 * listener stays open until the whole set is tested, so ports free on each
 * address one at a time are free on all of them at once. */
async function portsFreeOnAll(hosts: readonly string[], ports: readonly number[]): Promise<boolean> {
  const held: net.Server[] = [];
  let free = true;
  for (const host of hosts) {
    for (const p of ports) {
      const s = free ? await bindTest(host, p) : undefined;
      if (s) held.push(s); else free = false;
    }
  }
  await closeAll(held);
  return free;
}

/** PORT_IN_USE naming the node, which of its ports and the address, for
 * the first of its ports another process holds now. Checked before a node
 * is spawned, so the clash is named instead of a node that exits. */
async function checkNodePorts(nd: ClusterNode): Promise<void> {
  const ports: [number, 'node' | 'metrics'][] = [[nd.port, 'node']];
  if (nd.metricsPort !== undefined) ports.push([nd.metricsPort, 'metrics']);
  for (const [port, kind] of ports) {
    const s = await bindTest(nd.host, port);
    if (s) { await closeAll([s]); continue; }
    throw new TuneKvError('PORT_IN_USE', `${nd.id}'s ${kind === 'node' ? 'port' : 'metrics port'} ${port} on ${nd.host} is in use`,
      { node: nd.id, kind, host: nd.host, port });
  }
}

/** The coded error a node process logged when it failed to start
 * (`node_start_failed`, server/log.ts), read from the end of its log. */
export function startFailureOf(nd: ClusterNode): TuneKvError | undefined {
  let text: string;
  try {
    const fd = fs.openSync(nd.logFile, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const lines = text.split('\n').filter((l) => l.includes('"node_start_failed"'));
  const last = lines[lines.length - 1];
  if (!last) return undefined;
  try {
    const e = JSON.parse(last) as { code?: unknown; error?: unknown };
    if (!isErrorCode(e.code) || typeof e.error !== 'string') return undefined;
    return new TuneKvError(e.code, e.error);
  } catch {
    return undefined;
  }
}

/** A node exited while starting: its own coded error when it logged one
 * (PORT_IN_USE, say), else UNAVAILABLE pointing at its log. */
function exitedDuringStart(nd: ClusterNode, what = 'during start'): TuneKvError {
  const own = startFailureOf(nd);
  if (own) return new TuneKvError(own.code, `${own.message} (node ${nd.id} exited ${what}; see ${nd.logFile})`, own.details);
  return new TuneKvError('UNAVAILABLE', `node ${nd.id} exited ${what}; see ${nd.logFile}`);
}

const startNodesDefault = 3;

/** Options a caller got wrong, in plain words (TypeError: API misuse). */
function checkStartOptions(opts: StartOptions): void {
  const nodes = opts.nodes ?? startNodesDefault;
  if (!Number.isInteger(nodes) || nodes < 1) throw new TypeError(`nodes (${nodes}) must be a positive integer`);
  const basePort = opts.basePort ?? basePortDefault;
  if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65_535) {
    throw new TypeError(`base port (${basePort}) must be 0 (pick free ports) or a port number`);
  }
  const mb = opts.metricsBasePort;
  if (mb !== undefined && (!Number.isInteger(mb) || mb < 0 || mb > 65_535)) {
    throw new TypeError(`metrics base port (${mb}) must be 0 (pick free ports) or a port number`);
  }
  const distinct = opts.distinctAddresses === true;
  if (distinct && nodes > distinctAddressesNodesMax) {
    throw new TypeError(`distinct addresses give each node one of 127.0.0.1 .. 127.0.0.${distinctAddressesNodesMax}: at most ${distinctAddressesNodesMax} nodes; got ${nodes}`);
  }
  // The last port each range needs must exist, and the two ranges must
  // not overlap (a node and a metrics listener on one port is a clash we
  // would cause ourselves).
  const span = distinct ? 1 : nodes;
  if (basePort !== 0 && basePort + span - 1 > 65_535) throw new TypeError(`base port (${basePort}) + ${span} nodes runs past port 65535`);
  if (mb === undefined) {
    if (basePort !== 0 && basePort + span - 1 + metricsPortOffset > 65_535) {
      throw new TypeError(`base port (${basePort}) leaves no room for the metrics ports (node port + ${metricsPortOffset}); give --metrics-base-port`);
    }
  } else if (mb !== 0) {
    if (mb + span - 1 > 65_535) throw new TypeError(`metrics base port (${mb}) + ${span} nodes runs past port 65535`);
    if (basePort !== 0 && mb < basePort + span && basePort < mb + span) {
      throw new TypeError(`metrics ports ${mb}..${mb + span - 1} overlap the node ports ${basePort}..${basePort + span - 1}`);
    }
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
function spawnNode(dir: string, c: ClusterFile, node: ClusterNode, seeds: readonly ClusterNode[] | 'standby', detach: boolean): ChildProcess {
  fs.mkdirSync(node.dataDir, { recursive: true });
  // Every start of a node (start, foreground or not, add, restart) appends
  // its output to the same file, DIR/nN.log: one place per node to read.
  const out = fs.openSync(node.logFile, 'a');
  try {
    const child = spawn(process.execPath, nodeArgs(c, node, seeds, dir), { detached: detach, stdio: ['ignore', out, out] });
    if (detach) child.unref();
    return child;
  } finally {
    fs.closeSync(out);
  }
}

/** STATUS of one node, or undefined if it does not answer in time. */
export function probe(host: string, port: number, timeoutMs: number, dial: DialAuth | AdminDial | undefined): Promise<Record<string, unknown> | undefined> {
  return adminCall(dial, { host, port }, MsgType.STATUS, {}, timeoutMs).then((body) => body as Record<string, unknown>, () => undefined);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until the node answers and sees a ring of `members` nodes. */
async function waitReady(auth: AdminDial, node: ClusterNode, members: number, deadline: number, alive: () => boolean,
  atRest = false): Promise<void> {
  for (;;) {
    const st = await probe(node.host, node.port, 1000, auth);
    const ring = st?.ring as { members?: unknown[]; transition?: unknown } | null | undefined;
    // Ready once the node sees the members and, when atRest (a fresh
    // cluster, whose joins move ownership partition by partition), no
    // transition is running. A restart does not wait for one: a cluster
    // stopped in the middle of moving real data resumes it, which may take
    // far longer than a start may.
    if (st?.ready === true && ring && (ring.members?.length ?? 0) >= members && (!atRest || (ring.transition ?? null) === null)) return;
    if (!alive()) throw exitedDuringStart(node);
    if (Date.now() > deadline) throw new TuneKvError('UNAVAILABLE', `node ${node.id} was not ready within ${readyTimeoutMs} ms; see ${node.logFile}`);
    await sleep(100);
  }
}

export interface StartedCluster {
  readonly cluster: ClusterFile;
  /** Foreground only: the children, to wait on. */
  readonly children: Map<string, ChildProcess>;
}

/**
 * A restart keeps what the ring holds: the members' addresses (so their
 * host and port, hence --base-port and --distinct-addresses), n and q are
 * in every node's stored ring, and a launcher that changed them would
 * start nodes the ring does not know at those addresses. Asked for a
 * different one, it refuses, naming the stored value, rather than ignore
 * the flag. (Moving a member to a new address is `tunekv replace`.)
 */
function refuseRingChanges(c: ClusterFile, opts: StartOptions, dir: string): void {
  const refuse = (what: string, asked: string, stored: string, hint: string): never => {
    throw new TuneKvError('INVALID_ARGUMENT', `${dir} holds a cluster started with ${what} ${stored}; ${asked} cannot be applied to it: ${hint}. `
      + `Omit ${what} to restart it as it is, or use another --dir for a new cluster`);
  };
  const inRing = 'the members\' addresses and ring shape are stored in every node\'s ring (moving a member is tunekv replace)';
  if (opts.distinctAddresses === true && c.distinctAddresses !== true) {
    refuse('--distinct-addresses', 'distinct addresses', `one address (${c.nodes[0]?.host})`, inRing);
  }
  const stored = basePortOf(c);
  if (opts.basePort !== undefined && opts.basePort !== stored) {
    refuse('--base-port', `--base-port ${opts.basePort}`, stored === 0 ? '0 (free ports)' : String(stored), inRing);
  }
  if (opts.n !== undefined && opts.n !== c.n) refuse('--n', `--n ${opts.n}`, String(c.n), inRing);
  if (opts.q !== undefined && opts.q !== c.q) refuse('--q', `--q ${opts.q}`, String(c.q), inRing);
}

/** A restart may move the metrics ports (they are not in the ring): a
 * --metrics-base-port different from the stored one is applied, and said. */
async function applyMetricsBasePort(c: ClusterFile, metricsBasePort: number | undefined, log: (l: string) => void): Promise<void> {
  if (metricsBasePort === undefined || metricsBasePort === c.metricsBasePort) return;
  const nodes = activeNodes(c);
  const before = nodes.map((nd) => nd.metricsPort);
  await assignMetricsPorts(nodes, metricsBasePort, c.distinctAddresses === true);
  c.metricsBasePort = metricsBasePort;
  log(`metrics base port ${metricsBasePort === 0 ? '0 (free ports)' : metricsBasePort} applied: `
    + nodes.map((nd, i) => `${nd.id} metrics ${before[i] ?? 'none'} -> ${nd.metricsPort}`).join(', '));
}

export async function startCluster(opts: StartOptions): Promise<StartedCluster> {
  const log = opts.log ?? ((l: string) => console.log(l));
  checkStartOptions(opts);
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  let c = readCluster(dir);
  const fresh = c === undefined;
  if (c) {
    const running = c.nodes.filter((nd) => isNodeProcess(nd.pid, nd.id));
    if (running.length > 0) {
      throw new TuneKvError('INVALID_ARGUMENT', `the cluster in ${dir} is running (${running.map((nd) => `${nd.id} pid ${nd.pid}`).join(', ')}); stop it first`);
    }
    const active = activeNodes(c).length;
    if (opts.nodes !== undefined && active !== opts.nodes) {
      throw new TuneKvError('INVALID_ARGUMENT', `${dir} holds a ${active}-node cluster (cluster add and leave change that); `
        + `omit --nodes to restart it, or use another --dir for ${opts.nodes} nodes`);
    }
    refuseRingChanges(c, opts, dir);
    await applyMetricsBasePort(c, opts.metricsBasePort, log);
  } else {
    const nodes = await layOut(opts, dir);
    c = {
      format: 1, n: opts.n ?? nDefault, q: opts.q ?? qDefault, fsync: opts.fsync, nodeArgs: opts.nodeArgs ?? [],
      ...(opts.distinctAddresses === true ? { distinctAddresses: true } : {}), basePort: opts.basePort ?? basePortDefault,
      ...(opts.metricsBasePort === undefined ? {} : { metricsBasePort: opts.metricsBasePort }), nodes,
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
    // is the same on every fresh start of the same cluster. A restart
    // skips nodes that left or were removed (n1 included): every other
    // node reloads its ring and needs no seed.
    const nodes = activeNodes(cluster);
    for (const [i, node] of nodes.entries()) {
      await checkNodePorts(node);
      const child = spawnNode(dir, cluster, node, nodes.slice(0, i), opts.detach);
      node.pid = child.pid ?? null;
      children.set(node.id, child);
      writeCluster(dir, cluster);
      await waitReady(auth, node, i + 1, deadline, () => child.exitCode === null && child.signalCode === null, fresh);
    }
    for (const node of nodes) {
      const child = children.get(node.id)!;
      await waitReady(auth, node, nodes.length, deadline, () => opts.detach ? isNodeProcess(node.pid, node.id) : child.exitCode === null);
    }
    // Each join is a transition; the last may still be stepping when every
    // node lists every member. Requests work during one, but a new cluster
    // is handed over at rest. (A restarted cluster may resume a long
    // transition of real data: it is not waited for.)
    if (fresh) await waitForRing(cluster, auth, (ring) => !inTransition(ring), deadline, 'the joins of the new cluster to complete');
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
  // A leave that finished while nobody watched: learn it while the
  // others still run, so a restart does not start the node again.
  await settleLeaves(c, adminDialIfAny(dir)).catch(() => {});
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

/** A node that is (or may be) a member: one that left or was removed is refused. */
function findActiveNode(c: ClusterFile, id: string): ClusterNode {
  const nd = findNode(c, id);
  if (isGone(nd)) {
    throw new TuneKvError('INVALID_ARGUMENT', `${id} ${nd.left === true ? 'left' : 'was removed from'} this cluster; its data is stale `
      + `(active nodes: ${activeNodes(c).map((x) => x.id).join(', ')})`);
  }
  return nd;
}

/** SIGKILL: the crash a kill -9 or a power cut makes of the process. */
export async function killNode(dir: string, id: string): Promise<void> {
  const c = requireCluster(dir);
  const nd = findActiveNode(c, id);
  if (!isNodeProcess(nd.pid, nd.id)) throw new TuneKvError('INVALID_ARGUMENT', `${id} is not running`);
  await stopNode(nd, 'SIGKILL');
  writeCluster(dir, c);
}

/** Stops the node if it runs, then starts it again on its data, detached. */
export async function restartNode(dir: string, id: string): Promise<void> {
  const c = requireCluster(dir);
  await settleLeaves(c, adminDial(dir));
  writeCluster(dir, c);
  const nd = findActiveNode(c, id);
  await stopNode(nd);
  await checkNodePorts(nd);
  const others = activeNodes(c).filter((x) => x.id !== id);
  const child = spawnNode(dir, c, nd, others, true);
  nd.pid = child.pid ?? null;
  writeCluster(dir, c);
  // Its own stored ring names it and its peers; it may lag (it learns the
  // newer one from them), so only its own presence is waited for.
  await waitReady(adminDial(dir), nd, 1, Date.now() + readyTimeoutMs, () => isNodeProcess(nd.pid, nd.id));
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
  const nd = findActiveNode(c, id);
  if (!isNodeProcess(nd.pid, nd.id)) throw new TuneKvError('INVALID_ARGUMENT', `${id} is not running`);
  process.kill(nd.pid!, 'SIGSTOP');
}

export async function resumeNode(dir: string, id: string): Promise<void> {
  const c = requireCluster(dir);
  const nd = findActiveNode(c, id);
  if (!isNodeProcess(nd.pid, nd.id)) throw new TuneKvError('INVALID_ARGUMENT', `${id} is not running`);
  process.kill(nd.pid!, 'SIGCONT');
  await applyFaults(dir, c, [nd]);
}

const noClusterFaults = (): ClusterFaults => ({ groups: [], delayMs: 0, jitterMs: 0, loss: 0 });

/** Splits the cluster: nodes in different groups cannot talk. Nodes named
 * in no group form one more group together. */
export async function partition(dir: string, groups: string[][]): Promise<string[]> {
  const c = requireCluster(dir);
  const ids = activeNodes(c).map((nd) => nd.id);
  for (const g of groups) for (const id of g) findActiveNode(c, id);
  const named = new Set(groups.flat());
  if (named.size !== groups.flat().length) throw new TuneKvError('INVALID_ARGUMENT', 'a node may be in only one group');
  const rest = ids.filter((id) => !named.has(id));
  c.faults = { ...(c.faults ?? noClusterFaults()), groups: rest.length > 0 ? [...groups, rest] : groups };
  writeCluster(dir, c);
  return applyFaults(dir, c, activeNodes(c));
}

/** Removes every partition (delay and loss stay). */
export async function heal(dir: string): Promise<string[]> {
  const c = requireCluster(dir);
  c.faults = { ...(c.faults ?? noClusterFaults()), groups: [] };
  writeCluster(dir, c);
  return applyFaults(dir, c, activeNodes(c));
}

/** Delay (fixed + uniform jitter) and loss on every node-to-node link. */
export async function setLinkFaults(dir: string, link: { delayMs: number; jitterMs: number; loss: number }): Promise<string[]> {
  const c = requireCluster(dir);
  c.faults = { ...(c.faults ?? noClusterFaults()), ...link };
  writeCluster(dir, c);
  return applyFaults(dir, c, activeNodes(c));
}

/** The fault spec one node should have. */
export function faultSpecFor(c: ClusterFile, id: string): { blocked: string[]; delayMs: number; jitterMs: number; loss: number } {
  const f = c.faults ?? noClusterFaults();
  const mine = f.groups.find((g) => g.includes(id)) ?? [];
  const blocked = f.groups.length === 0 ? [] : activeNodes(c).map((nd) => nd.id).filter((x) => x !== id && !mine.includes(x));
  return { blocked, delayMs: f.delayMs, jitterMs: f.jitterMs, loss: f.loss };
}

/** Sends each node its fault spec; returns the nodes that did not take it. */
async function applyFaults(dir: string, c: ClusterFile, nodes: readonly ClusterNode[]): Promise<string[]> {
  const missed: string[] = [];
  const auth = adminDial(dir);
  await Promise.all(nodes.map(async (nd) => {
    if (!isNodeProcess(nd.pid, nd.id)) { missed.push(nd.id); return; }
    const ok = await adminCall(auth, nd, MsgType.ADMIN_FAULTS, faultSpecFor(c, nd.id), 2000).then(() => true, () => false);
    if (!ok) missed.push(nd.id);
  }));
  return missed.sort();
}

// ---- admin requests ----

/** How long a change request (stage, plan, commit) may take: staging a
 * join asks the new node who it is, through the claimant. */
const changeTimeoutMs = 10_000;
/** How often the launcher polls a node while it waits for a change. */
const pollMs = 200;

/** One admin request to one node: its reply body, or the node's coded
 * error (UNAVAILABLE when it cannot be reached, TIMEOUT when it is silent). */
export function adminCall(dial: DialAuth | AdminDial | undefined, node: { readonly host: string; readonly port: number }, type: number,
  body: unknown, timeoutMs = changeTimeoutMs): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = new RpcConnection({ host: node.host, port: node.port, agent: 'tunekv-cluster', connectTimeoutMs: timeoutMs, ...dialOf(dial) });
    conn.request(type, body, timeoutMs, (err, _t, reply) => {
      conn.close();
      if (err) reject(err); else resolve(reply);
    });
  });
}

/** The admin dial, or undefined when the cluster has no secret yet. */
function adminDialIfAny(dir: string): AdminDial | undefined {
  return fs.existsSync(secretFileOf(dir)) ? adminDial(dir) : undefined;
}

/** One node's ring (RING_GET), or undefined: not running, not answering,
 * or on standby (no ring yet). */
export async function ringOf(dial: AdminDial | undefined, node: ClusterNode, timeoutMs = 1000): Promise<Ring | undefined> {
  if (!isNodeProcess(node.pid, node.id)) return undefined;
  try {
    const body = await adminCall(dial, node, MsgType.RING_GET, {}, timeoutMs) as { ring?: unknown } | null;
    return ringFromWire(body?.ring);
  } catch {
    return undefined;
  }
}

/** The newest ring any running active node holds (nodes lag a step at most
 * while a transition runs), or undefined when none answers. */
export async function newestRing(c: ClusterFile, dial: AdminDial | undefined): Promise<Ring | undefined> {
  const rings = await Promise.all(activeNodes(c).map((nd) => ringOf(dial, nd)));
  let best: Ring | undefined;
  for (const r of rings) if (r !== undefined && (best === undefined || r.version > best.version)) best = r;
  return best;
}

/** Nodes whose leave was committed and whose process is gone: once no
 * ring lists them any more they left. Returns true if any was marked. */
async function settleLeaves(c: ClusterFile, dial: AdminDial | undefined): Promise<boolean> {
  const candidates = c.nodes.filter((nd) => nd.leaving === true && !isGone(nd) && !isNodeProcess(nd.pid, nd.id));
  if (candidates.length === 0 || dial === undefined) return false;
  const ring = await newestRing(c, dial);
  if (!ring) return false;
  let changed = false;
  for (const nd of candidates) {
    if (memberOf(ring, nd.id)) continue;
    markLeft(nd);
    changed = true;
  }
  return changed;
}

function markLeft(nd: ClusterNode): void {
  nd.left = true;
  delete nd.leaving;
  nd.pid = null;
}

/** Polls the newest ring until `done` holds for it. */
async function waitForRing(c: ClusterFile, dial: AdminDial, done: (ring: Ring) => boolean, deadline: number, what: string): Promise<Ring> {
  for (;;) {
    const ring = await newestRing(c, dial);
    if (ring && done(ring)) return ring;
    if (Date.now() > deadline) {
      throw new TuneKvError('TIMEOUT', `gave up waiting for ${what}${ring ? ` (ring v${ring.version}${describeTransition(ring)})` : ' (no node answered)'}`);
    }
    await sleep(pollMs);
  }
}

function describeTransition(ring: Ring): string {
  if (!inTransition(ring)) return '';
  return `, plan ${ring.plan ?? 0} in transition: ${Object.entries(phaseCounts(ring)).map(([k, v]) => `${v} ${k}`).join(', ')}`;
}

// ---- changing the cluster ----

export interface ChangeOptions {
  /** Return once the transition completed (add: the new nodes valid and no
   * transition running; leave: the node's process exited and no ring lists
   * it; remove: no ring lists it). */
  readonly wait?: boolean;
  /** How long a wait may take; transitionWaitMsDefault. */
  readonly waitTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface ChangeResult {
  /** The nodes added, leaving or removed. */
  readonly nodes: string[];
  /** The node the change was staged and committed through. */
  readonly via: string;
  /** The plan committed, and the ring version that started it (a queued
   * commit starts later, behind the transition in progress). */
  readonly plan: number | null;
  readonly ringVersion: number;
  readonly queued: boolean;
  /** The newest ring when the command returned. */
  readonly ring: Ring;
  /** The transition is over (always after a wait). */
  readonly complete: boolean;
}

interface Committed { via: ClusterNode; plan: number | null; ringVersion: number; queued: boolean }

/** The first running active node (not in `exclude`) that answers a plan
 * request; refused while the claimant has changes staged. */
async function changeNode(c: ClusterFile, dial: AdminDial, exclude: readonly string[]): Promise<ClusterNode> {
  const candidates = activeNodes(c).filter((nd) => !exclude.includes(nd.id) && isNodeProcess(nd.pid, nd.id));
  let last: TuneKvError | undefined;
  for (const nd of candidates) {
    let plan: { staged?: unknown[] };
    try {
      plan = await adminCall(dial, nd, MsgType.CLUSTER_PLAN, {}) as { staged?: unknown[] };
    } catch (err) {
      if (!(err instanceof TuneKvError) || (err.code !== 'UNAVAILABLE' && err.code !== 'TIMEOUT')) throw err;
      last = err;
      continue;
    }
    // Our commit would apply whatever else is staged: refuse rather than
    // commit changes someone else is still reviewing.
    const staged = plan.staged ?? [];
    if (staged.length > 0) {
      throw new TuneKvError('CHANGE_REFUSED', `changes are already staged (${JSON.stringify(staged)}): review them with `
        + `tunekv plan --host ${nd.host}:${nd.port}, then commit them before making another`);
    }
    return nd;
  }
  throw new TuneKvError('UNAVAILABLE', `no running node answered to make the change (tried ${candidates.map((nd) => nd.id).join(', ') || 'none'})`
    + `${last ? `: ${last.message}` : ''}`);
}

/** Stages `changes` through `via`, in order, then commits them as one plan.
 * `onStaged` hears of each one staged. A commit is not retried: one that
 * timed out may have been applied (tunekv plan says). */
async function stageAndCommit(dial: AdminDial, via: ClusterNode, changes: readonly Record<string, unknown>[],
  onStaged: (i: number) => void = () => {}): Promise<Committed> {
  for (const [i, change] of changes.entries()) {
    await adminCall(dial, via, MsgType.CLUSTER_STAGE, change);
    onStaged(i);
  }
  const r = await adminCall(dial, via, MsgType.CLUSTER_COMMIT, {}) as { plan?: unknown; ringVersion?: unknown; queued?: unknown };
  return {
    via, plan: typeof r.plan === 'number' ? r.plan : null, ringVersion: typeof r.ringVersion === 'number' ? r.ringVersion : 0, queued: r.queued === true,
  };
}

function nodeNumber(id: string): number | undefined {
  const m = /^n(\d+)$/.exec(id);
  return m ? Number(m[1]) : undefined;
}

/** The base port of a file written before basePort was recorded: ports
 * base, base + 1, ... in node order with metrics 2000 above means slots;
 * anything else was picked free (0). */
function basePortOf(c: ClusterFile): number {
  if (c.basePort !== undefined) return c.basePort;
  const first = c.nodes[0];
  if (!first) return 0;
  const slots = c.nodes.every((nd) => nodeNumber(nd.id) !== undefined && nd.port === first.port + nodeNumber(nd.id)! - 1
    && nd.metricsPort === nd.port + metricsPortOffset);
  return slots && nodeNumber(first.id) === 1 ? first.port : 0;
}

/** The next `count` nodes: ids after the highest ever used (ids of nodes
 * that left are never reused: their peers remember them as removed), on
 * the cluster's layout. */
async function layOutMore(c: ClusterFile, dir: string, count: number): Promise<ClusterNode[]> {
  const highest = Math.max(0, ...c.nodes.map((nd) => nodeNumber(nd.id) ?? 0));
  const nums = Array.from({ length: count }, (_, i) => highest + 1 + i);
  const files = (id: string): { dataDir: string; logFile: string } => ({ dataDir: path.join(dir, id), logFile: path.join(dir, `${id}.log`) });
  // A new node must start empty: data left there (by hand, or by an add
  // that died before recording it) would bring an old ring and old keys.
  for (const num of nums) {
    const dataDir = files(`n${num}`).dataDir;
    if (fs.existsSync(dataDir)) throw new TuneKvError('INVALID_ARGUMENT', `${dataDir} exists but cluster.json lists no n${num}: move it away first`);
  }
  const distinct = c.distinctAddresses === true;
  // Free node ports came with free metrics ports (layOut).
  const mb = c.metricsBasePort ?? (!distinct && basePortOf(c) === 0 ? 0 : undefined);
  if (distinct) {
    const port = c.nodes[0]!.port;
    const last = nums[nums.length - 1]!;
    if (last > distinctAddressesNodesMax) {
      throw new TuneKvError('INVALID_ARGUMENT', `distinct addresses end at 127.0.0.${distinctAddressesNodesMax}: n${last} would need 127.0.0.${last}`);
    }
    // Every node's metrics on the same port of its own address: the
    // cluster's (a free one was picked once for all when 0).
    const metricsPort = mb === undefined ? port + metricsPortOffset : mb === 0 ? c.nodes[0]!.metricsPort ?? port + metricsPortOffset : mb;
    return nums.map((num) => ({ id: `n${num}`, host: distinctAddress(num), port, metricsPort, ...files(`n${num}`), pid: null }));
  }
  const host = c.nodes[0]!.host;
  const base = basePortOf(c);
  const taken = c.nodes.flatMap((nd) => [nd.port, ...(nd.metricsPort === undefined ? [] : [nd.metricsPort])]);
  const ports = base === 0 ? await freePorts(host, count, taken) : nums.map((num) => base + num - 1);
  const out = nums.map((num, i): ClusterNode => ({ id: `n${num}`, host, port: ports[i]!, ...files(`n${num}`), pid: null }));
  if (mb === 0) {
    const picked = await freePorts(host, count, [...taken, ...ports]);
    out.forEach((nd, i) => { nd.metricsPort = picked[i]!; });
  } else {
    for (const [i, nd] of out.entries()) nd.metricsPort = mb === undefined ? ports[i]! + metricsPortOffset : mb + nums[i]! - 1;
  }
  for (const nd of out) {
    if (nd.port > 65_535 || nd.metricsPort! > 65_535) {
      throw new TuneKvError('INVALID_ARGUMENT', `${nd.id}'s slot, port ${nd.port} (metrics ${nd.metricsPort}) on ${host}, is out of range`);
    }
  }
  // A slot another process holds is PORT_IN_USE, checked before spawning.
  return out;
}

/** Waits until the node answers STATUS at all (a standby node has no ring). */
async function waitAnswers(dial: AdminDial, node: ClusterNode, deadline: number): Promise<void> {
  for (;;) {
    if (await probe(node.host, node.port, 1000, dial)) return;
    if (!isNodeProcess(node.pid, node.id)) throw exitedDuringStart(node);
    if (Date.now() > deadline) throw new TuneKvError('UNAVAILABLE', `node ${node.id} did not answer within ${readyTimeoutMs} ms; see ${node.logFile}`);
    await sleep(100);
  }
}

/** Stops nodes add started but never joined, and forgets them. */
async function discardNodes(dir: string, c: ClusterFile, nodes: readonly ClusterNode[]): Promise<void> {
  for (const nd of nodes) {
    await stopNode(nd);
    const i = c.nodes.indexOf(nd);
    if (i >= 0) c.nodes.splice(i, 1);
    fs.rmSync(nd.dataDir, { recursive: true, force: true });
  }
  writeCluster(dir, c);
}

/**
 * `cluster add`: starts `count` nodes on standby, stages their joins through
 * a running member and commits them as one plan (the joins are claimed one
 * after another; their transfers overlap), then returns once the new nodes
 * answer with a ring that lists them all; with `wait`, once the transition
 * is over too. A node that never got staged is stopped and forgotten.
 */
export async function addNodes(dir: string, count: number, opts: ChangeOptions = {}): Promise<ChangeResult> {
  if (!Number.isInteger(count) || count < 1 || count > addNodesMax) throw new TypeError(`nodes (${count}) must be an integer from 1 to ${addNodesMax}`);
  const log = opts.log ?? ((l: string) => console.log(l));
  const c = requireCluster(dir);
  const dial = adminDial(dir);
  if (await settleLeaves(c, dial)) writeCluster(dir, c);
  const via = await changeNode(c, dial, []);
  const added = await layOutMore(c, path.resolve(dir), count);
  c.nodes.push(...added);
  writeCluster(dir, c);
  const staged = new Set<ClusterNode>();
  let committed: Committed;
  try {
    const deadline = Date.now() + readyTimeoutMs;
    for (const nd of added) {
      await checkNodePorts(nd);
      const child = spawnNode(dir, c, nd, 'standby', true);
      nd.pid = child.pid ?? null;
      writeCluster(dir, c);
    }
    for (const nd of added) await waitAnswers(dial, nd, deadline);
    committed = await stageAndCommit(dial, via, added.map((nd) => ({ op: 'join', addr: `${nd.host}:${nd.port}` })), (i) => staged.add(added[i]!));
  } catch (err) {
    const unstaged = added.filter((nd) => !staged.has(nd));
    await discardNodes(dir, c, unstaged);
    if (staged.size === 0) throw err;
    const e = err instanceof TuneKvError ? err : new TuneKvError('INTERNAL', (err as Error).message);
    throw new TuneKvError(e.code, `${e.message}; ${[...staged].map((nd) => nd.id).join(', ')} staged and still running `
      + `(apply with: tunekv commit --host ${via.host}:${via.port}), ${unstaged.map((nd) => nd.id).join(', ') || 'none'} stopped`, e.details);
  }
  log(`started ${added.map((nd) => `${nd.id}=${nd.host}:${nd.port}`).join(' ')} on standby; joins committed through ${via.id}: `
    + `${committed.queued ? 'queued behind the transition in progress' : `plan ${committed.plan}, ring v${committed.ringVersion}`}`);
  const ids = added.map((nd) => nd.id);
  const deadline = Date.now() + (committed.queued ? opts.waitTimeoutMs ?? transitionWaitMsDefault : readyTimeoutMs);
  for (const nd of added) {
    for (;;) {
      const st = await probe(nd.host, nd.port, 1000, dial);
      const members = ((st?.ring as { members?: { id: string }[] } | null | undefined)?.members ?? []).map((m) => m.id);
      if (st?.ready === true && ids.every((id) => members.includes(id))) break;
      if (!isNodeProcess(nd.pid, nd.id)) throw exitedDuringStart(nd, 'while joining');
      if (Date.now() > deadline) throw new TuneKvError('TIMEOUT', `${nd.id} did not get a ring listing ${ids.join(', ')} in time; see ${nd.logFile}`);
      await sleep(pollMs);
    }
  }
  return finishChange(c, dial, ids, committed, opts, (ring) => !inTransition(ring)
    && ids.every((id) => { const m = memberOf(ring, id); return m !== undefined && stateOf(m) === 'valid'; }), log, 'the joins to complete');
}

/** A leave or remove is complete: no ring lists the node, none is moving. */
function goneAtRest(id: string): (ring: Ring) => boolean {
  return (ring) => !memberOf(ring, id) && !inTransition(ring);
}

async function finishChange(c: ClusterFile, dial: AdminDial, ids: string[], committed: Committed, opts: ChangeOptions,
  done: (ring: Ring) => boolean, log: (l: string) => void, what: string): Promise<ChangeResult> {
  let ring: Ring | undefined;
  if (opts.wait === true) {
    ring = await waitForRing(c, dial, done, Date.now() + (opts.waitTimeoutMs ?? transitionWaitMsDefault), what);
    log(`transition complete: ring v${ring.version}, members ${ring.members.map((m) => `${m.id}(${stateOf(m)})`).join(' ')}`);
  } else {
    ring = await newestRing(c, dial);
  }
  if (!ring) throw new TuneKvError('UNAVAILABLE', 'no node answered with its ring after the change');
  return {
    nodes: ids, via: committed.via.id, plan: committed.plan, ringVersion: committed.ringVersion, queued: committed.queued, ring, complete: done(ring),
  };
}

/**
 * `cluster leave`: stages the node's leave through another running node and
 * commits it. The node keeps serving until its partitions are handed off,
 * then exits by itself. With `wait`, returns once its process exited and no
 * ring lists it, and marks it left in cluster.json.
 */
export async function leaveNode(dir: string, id: string, opts: ChangeOptions = {}): Promise<ChangeResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const c = requireCluster(dir);
  const dial = adminDial(dir);
  if (await settleLeaves(c, dial)) writeCluster(dir, c);
  const nd = findActiveNode(c, id);
  const via = await changeNode(c, dial, [id]);
  const committed = await stageAndCommit(dial, via, [{ op: 'leave', id }]);
  nd.leaving = true;
  writeCluster(dir, c);
  log(`${id} leaves: committed through ${via.id}, ${committed.queued ? 'queued behind the transition in progress' : `plan ${committed.plan}, ring v${committed.ringVersion}`}`);
  if (opts.wait !== true) return finishChange(c, dial, [id], committed, opts, goneAtRest(id), log, `${id} to leave`);
  const deadline = Date.now() + (opts.waitTimeoutMs ?? transitionWaitMsDefault);
  const pid = nd.pid;
  while (isNodeProcess(pid, id)) {
    if (Date.now() > deadline) throw new TuneKvError('TIMEOUT', `${id} (pid ${pid}) still runs: it has not handed everything off yet; see ${nd.logFile}`);
    await sleep(pollMs);
  }
  // The process is gone: it left only if the ring dropped it (a crash
  // leaves it a member, to restart).
  const ring = await waitForRing(c, dial, (r) => !memberOf(r, id), Math.min(deadline, Date.now() + leftSettleMs), `${id} to drop out of the ring`)
    .catch((err: TuneKvError) => {
      throw new TuneKvError(err.code, `${id} exited but is still a member: ${err.message}; see ${nd.logFile}`);
    });
  markLeft(nd);
  writeCluster(dir, c);
  log(`${id} left (process exited); ring v${ring.version}: ${ring.members.map((m) => `${m.id}(${stateOf(m)})`).join(' ')}`);
  return finishChange(c, dial, [id], committed, opts, goneAtRest(id), () => {}, `${id}'s transition to complete`);
}

/**
 * `cluster remove`: for a dead node (refused while its process runs). Its
 * partitions go to the others, streamed from the surviving replicas; it is
 * marked removed in cluster.json at once, since its data is stale.
 */
export async function removeNode(dir: string, id: string, opts: ChangeOptions = {}): Promise<ChangeResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const c = requireCluster(dir);
  const dial = adminDial(dir);
  if (await settleLeaves(c, dial)) writeCluster(dir, c);
  const nd = findActiveNode(c, id);
  if (isNodeProcess(nd.pid, nd.id)) {
    throw new TuneKvError('INVALID_ARGUMENT', `${id} is running (pid ${nd.pid}): remove is for a dead node. Kill it first `
      + `(tunekv cluster kill ${id}), or let it hand its data off with tunekv cluster leave ${id}`);
  }
  const via = await changeNode(c, dial, [id]);
  const committed = await stageAndCommit(dial, via, [{ op: 'remove', id }]);
  nd.removed = true;
  delete nd.leaving;
  nd.pid = null;
  writeCluster(dir, c);
  log(`${id} removed: committed through ${via.id}, ${committed.queued ? 'queued behind the transition in progress' : `plan ${committed.plan}, ring v${committed.ringVersion}`}`);
  return finishChange(c, dial, [id], committed, opts, goneAtRest(id), log, `${id}'s removal to complete`);
}

// ---- status ----

export type NodeState = MemberState | 'standby' | 'left' | 'removed' | 'not a member';

export interface NodeStatus {
  readonly id: string;
  readonly addr: string;
  readonly pid: number | null;
  readonly running: boolean;
  /** Stopped with SIGSTOP (cluster pause). */
  readonly paused: boolean;
  readonly answering: boolean;
  readonly ringVersion: number | null;
  readonly members: number | null;
  /** Its part in the newest ring any node holds; `standby` for a running
   * node without a ring; left and removed from cluster.json. */
  readonly state: NodeState | null;
  /** Partitions it owns (claimed) in that ring, and its share of q. */
  readonly owns: number | null;
  readonly share: number | null;
  /** Partitions it will own once the transition in progress completes. */
  readonly ownsNext: number | null;
  /** Partitions it holds a replica of. */
  readonly replicates: number | null;
  /** Its transfers (admin STATUS `transfers`): partitions it still has to
   * receive, partitions it still has to sweep to their owners, keys and
   * bytes received in this run, its estimated seconds left, its limit. */
  readonly transfers: {
    readonly partitionsPending: number; readonly sweepPending: number; readonly keysReceived: number; readonly bytesReceived: number;
    readonly etaSeconds: number | null; readonly limitMBps: number;
  } | null;
  /** Keys and bytes it stores, when its STATUS reports them (`keys` and
   * `dataBytes`, at the top or under `storage`); null otherwise. */
  readonly keys: number | null;
  readonly dataBytes: number | null;
  /** Faults it applies (partition, delay, loss), or null when none. */
  readonly faults: { readonly blocked: string[]; readonly delayMs: number; readonly jitterMs: number; readonly loss: number } | null;
}

export interface ClusterStatus {
  /** The newest ring any node holds, summarised; null when none answers. */
  readonly ring: {
    readonly version: number; readonly n: number; readonly q: number; readonly members: number;
    /** The plan in transition and its partitions per phase, or null at rest. */
    readonly transition: { readonly plan: number; readonly phases: Record<string, number> } | null;
  } | null;
  readonly nodes: NodeStatus[];
}

function isPaused(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'T';
  } catch {
    return false;
  }
}

function transfersOf(st: Record<string, unknown> | undefined): NodeStatus['transfers'] {
  const t = st?.transfers as Record<string, unknown> | undefined;
  if (!t) return null;
  const num = (k: string): number => (typeof t[k] === 'number' ? t[k] : 0);
  return {
    partitionsPending: num('partitionsPending'), sweepPending: num('sweepPending'), keysReceived: num('keysReceived'),
    bytesReceived: num('bytesReceived'), etaSeconds: typeof t.etaSeconds === 'number' ? t.etaSeconds : null, limitMBps: num('limitMBps'),
  };
}

/** A numeric status field, at the top level or under `storage`. */
function storedFigure(st: Record<string, unknown> | undefined, name: string): number | null {
  const top = st?.[name];
  if (typeof top === 'number') return top;
  const nested = (st?.storage as Record<string, unknown> | undefined)?.[name];
  return typeof nested === 'number' ? nested : null;
}

function faultsOf(st: Record<string, unknown> | undefined): NodeStatus['faults'] {
  const f = st?.faults as { blocked?: string[]; delayMs?: number; jitterMs?: number; loss?: number } | undefined;
  if (!f) return null;
  const out = { blocked: f.blocked ?? [], delayMs: f.delayMs ?? 0, jitterMs: f.jitterMs ?? 0, loss: f.loss ?? 0 };
  return out.blocked.length > 0 || out.delayMs > 0 || out.jitterMs > 0 || out.loss > 0 ? out : null;
}

export async function clusterStatus(dir: string): Promise<ClusterStatus> {
  const c = requireCluster(dir);
  const dial = adminDial(dir);
  if (await settleLeaves(c, dial)) writeCluster(dir, c);
  const probes = await Promise.all(c.nodes.map(async (nd) => {
    const running = !isGone(nd) && isNodeProcess(nd.pid, nd.id);
    const paused = running && isPaused(nd.pid);
    const [st, ring] = running && !paused ? await Promise.all([probe(nd.host, nd.port, 1000, dial), ringOf(dial, nd)]) : [undefined, undefined];
    return { nd, running, paused, st, ring };
  }));
  let newest: Ring | undefined;
  for (const p of probes) if (p.ring && (!newest || p.ring.version > newest.version)) newest = p.ring;
  const next = newest && inTransition(newest) ? nextView(newest) : undefined;
  const nodes = probes.map(({ nd, running, paused, st, ring }): NodeStatus => {
    const m = newest ? memberOf(newest, nd.id) : undefined;
    let state: NodeState | null = null;
    if (nd.left === true) state = 'left';
    else if (nd.removed === true) state = 'removed';
    else if (m) state = stateOf(m);
    else if (st && ring === undefined) state = 'standby';
    else if (newest) state = 'not a member';
    const owns = m && newest ? newest.owners.filter((o) => o === nd.id).length : null;
    return {
      id: nd.id, addr: `${nd.host}:${nd.port}`, pid: running ? nd.pid : null, running, paused,
      answering: st !== undefined, ringVersion: ring?.version ?? null, members: ring?.members.length ?? null,
      state, owns, share: owns !== null && newest ? owns / newest.q : null,
      ownsNext: m && next ? next.owners.filter((o) => o === nd.id).length : null,
      replicates: m && newest ? replicatedPartitions(newest, nd.id).length : null,
      keys: storedFigure(st, 'keys'), dataBytes: storedFigure(st, 'dataBytes'), transfers: transfersOf(st), faults: faultsOf(st),
    };
  });
  const ring = newest ? {
    version: newest.version, n: newest.n, q: newest.q, members: newest.members.length,
    transition: inTransition(newest) ? { plan: newest.plan ?? 0, phases: phaseCounts(newest) } : null,
  } : null;
  return { ring, nodes };
}

function phaseCounts(ring: Ring): Record<string, number> {
  const out: Record<string, number> = {};
  for (const ph of ring.phase ?? []) {
    const name = phaseNames[ph] ?? String(ph);
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}
