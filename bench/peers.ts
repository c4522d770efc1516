// The peers the benchmark compares tunekv with, driven by the same load
// loops (bench/loops.ts's Store): a single redis-server through ioredis (no
// replication: the ceiling for a Node client) and a 3-member etcd through
// etcd3's gRPC client (Raft, linearizable reads by default: the peer for
// `strong`). Each is started by the bench on free loopback ports below
// 32768 with its data in a temp directory, and stopped (killed if need be,
// its directory removed) after, also when the run fails. A peer that is not
// installed is skipped with a note, never an error.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
// Types only: the clients are dev dependencies, loaded when a peer runs, so
// `tunekv bench` (and the CLI that imports it) works without them.
import type { Etcd3 } from 'etcd3';
import type { Redis } from 'ioredis';
import { benchKey } from './loops.js';
import type { Store } from './loops.js';

export type PeerName = 'redis' | 'etcd';
export const peerNames: readonly PeerName[] = ['redis', 'etcd'];

export interface Peer {
  readonly name: PeerName;
  /** How it runs here, for the report. */
  readonly setup: string;
  /** What it guarantees, next to what tunekv's levels guarantee. */
  readonly promise: string;
  /** Every server process, for CPU accounting. */
  readonly pids: number[];
  /** A Store writing `value` at every write: GET/SET or range/put. */
  readonly store: Store;
  stop(): Promise<void>;
}

export interface PeerSkipped {
  readonly name: PeerName;
  readonly skipped: string;
}

/** Ports are drawn from here: below 32768, the start of Linux's default
 * ephemeral range, so a peer never collides with an outgoing connection. */
const portLow = 20_000;
const portHigh = 32_767;
const portAttemptsMax = 50;
/** How long a peer gets to answer after its start: etcd elects a leader
 * within a few election timeouts (1 s by default) of the last member. */
const peerReadyMs = 20_000;
const peerStopMs = 5_000;
const etcdMembers = 3;

/** Every server the bench started and has not yet stopped: killed on exit,
 * so a crash of the bench does not leave a redis or an etcd behind. */
const running = new Set<ChildProcess>();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });

function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/bin', '/usr/local/bin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < portAttemptsMax && ports.length < count; i++) {
    const p = portLow + Math.floor(Math.random() * (portHigh - portLow + 1));
    if (!ports.includes(p) && await portFree(p)) ports.push(p);
  }
  if (ports.length < count) throw new Error(`no ${count} free loopback ports in ${portLow}-${portHigh} after ${portAttemptsMax} tries`);
  return ports;
}

/** A temp directory, on tmpfs when there is one: etcd fsyncs its log on
 * every commit (3.4 has no switch for it) and tunekv runs here without
 * fsync; on tmpfs an fsync costs nothing, so neither pays for a disk. */
function tempDir(prefix: string): { dir: string; tmpfs: boolean } {
  const shm = '/dev/shm';
  const tmpfs = fs.existsSync(shm);
  return { dir: fs.mkdtempSync(path.join(tmpfs ? shm : os.tmpdir(), prefix)), tmpfs };
}

function startServer(bin: string, args: string[], logFile: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), peerStopMs);
  await exited;
  clearTimeout(timer);
}

async function until(what: string, deadline: number, children: ChildProcess[], attempt: () => Promise<void>): Promise<void> {
  for (;;) {
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead) throw new Error(`${what}: a server process exited (${dead.exitCode ?? dead.signalCode})`);
    try { await attempt(); return; } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: not ready after ${peerReadyMs} ms (${(err as Error).message})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function startRedis(bin: string, value: Buffer): Promise<Peer> {
  const { Redis } = await import('ioredis');
  const { dir } = tempDir('tunekv-bench-redis-');
  const children: ChildProcess[] = [];
  let client: Redis | undefined;
  const stop = async (): Promise<void> => {
    client?.disconnect();
    await Promise.all(children.map(stopServer));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [port] = await freePorts(1);
    // No persistence at all: tunekv runs here without fsync, and an RDB
    // snapshot in the middle of a cell would be the peer's noise.
    children.push(startServer(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'no', '--protected-mode', 'no', '--daemonize', 'no'], path.join(dir, 'redis.log')));
    const c = new Redis({ host: '127.0.0.1', port: port!, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await until('redis', Date.now() + peerReadyMs, children, async () => {
      const probe = new Redis({ host: '127.0.0.1', port: port!, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => { /* refused until the server listens: the attempt's rejection says so */ });
      try { await probe.connect(); await probe.ping(); } finally { probe.disconnect(); }
    });
    c.on('error', () => { /* a failed request rejects and is counted by the loop */ });
    await c.connect();
    client = c;
    return {
      name: 'redis',
      setup: `redis-server on 127.0.0.1:${port}, one process, no persistence, through ioredis (one connection, pipelined)`,
      promise: 'a single node with no replication: what a Node.js client can get from a store at all (the ceiling)',
      pids: children.map((ch) => ch.pid ?? 0),
      store: {
        read: async (k) => { await c.getBuffer(benchKey(k)); },
        write: async (k) => { await c.set(benchKey(k), value); },
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startEtcd(bin: string, value: Buffer): Promise<Peer> {
  const { Etcd3 } = await import('etcd3');
  const { dir, tmpfs } = tempDir('tunekv-bench-etcd-');
  const children: ChildProcess[] = [];
  let client: Etcd3 | undefined;
  const stop = async (): Promise<void> => {
    client?.close();
    await Promise.all(children.map(stopServer));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports = await freePorts(2 * etcdMembers);
    const members = Array.from({ length: etcdMembers }, (_, i) => ({
      name: `e${i + 1}`, client: `http://127.0.0.1:${ports[2 * i]}`, peer: `http://127.0.0.1:${ports[2 * i + 1]}`,
    }));
    const initial = members.map((m) => `${m.name}=${m.peer}`).join(',');
    for (const m of members) {
      children.push(startServer(bin, [
        '--name', m.name, '--data-dir', path.join(dir, m.name),
        '--listen-client-urls', m.client, '--advertise-client-urls', m.client,
        '--listen-peer-urls', m.peer, '--initial-advertise-peer-urls', m.peer,
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `tunekv-bench-${process.pid}`,
      ], path.join(dir, `${m.name}.log`)));
    }
    const c = new Etcd3({ hosts: members.map((m) => m.client), dialTimeout: 2000 });
    client = c;
    await until('etcd', Date.now() + peerReadyMs, children, async () => { await c.put('bench:ready').value('1'); });
    return {
      name: 'etcd',
      setup: `${etcdMembers} etcd members on loopback (${members.map((m) => m.client.replace('http://', '')).join(', ')}), `
        + `data ${tmpfs ? 'on tmpfs (its fsync costs nothing there, as tunekv runs here without fsync)' : 'in a temp directory (etcd fsyncs every commit; tunekv here does not)'}, `
        + 'through etcd3 (gRPC); reads are linearizable (the default)',
      promise: 'a linearizable register (Raft): every read sees every write that completed before it, and concurrent writes are ordered, never kept as siblings',
      pids: children.map((ch) => ch.pid ?? 0),
      store: {
        read: async (k) => { await c.get(benchKey(k)).buffer(); },
        write: async (k) => { await c.put(benchKey(k)).value(value); },
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Starts a peer, or says why it was skipped (not installed, failed to start). */
export async function startPeer(name: PeerName, value: Buffer): Promise<Peer | PeerSkipped> {
  const binary = name === 'redis' ? 'redis-server' : 'etcd';
  const install = name === 'redis' ? 'apt-get install redis-server' : 'apt-get install etcd-server';
  const clientPackage = name === 'redis' ? 'ioredis' : 'etcd3';
  const bin = findBinary(binary);
  if (bin === undefined) return { name, skipped: `\`${binary}\` is not installed (Debian: \`${install}\`)` };
  try {
    await import(clientPackage);
  } catch {
    return { name, skipped: `its client \`${clientPackage}\` is not installed (\`npm install --save-dev ${clientPackage}\`)` };
  }
  try {
    return await (name === 'redis' ? startRedis(bin, value) : startEtcd(bin, value));
  } catch (err) {
    return { name, skipped: `${binary} did not start: ${(err as Error).message}` };
  }
}

export function isSkipped(p: Peer | PeerSkipped): p is PeerSkipped {
  return 'skipped' in p;
}
