// The memory ceiling: clients that ask and never read, and sockets that
// connect and never speak.
//
//   node dist/bench/idle-clients.js [--clients 1000] [--sources 1] [--value-bytes 102400]
//                                   [--duration-ms 20000] [--sample-ms 500] [--variants pipeline,silent,silent-reconnect]
//
// A 3-node cluster (N=3) in a temp dir; one key holds a `value-bytes` value.
// Against the target node (n1):
//   pipeline          `clients` connections each send HELLO, then pipeline GETs
//                     of that key (quorum, so every GET also pulls the value
//                     from both peers) as fast as the socket takes them, and
//                     never read a byte of the replies (the socket is paused:
//                     Node buffers at most its high-water mark, then the
//                     kernel's receive buffer fills and stays full)
//   silent            `clients` connections that connect and never send a byte
//   silent-reconnect  the same, and each one the node closes is replaced at
//                     once (a sustained attack on the handshake pool)
// Each variant runs on a fresh cluster. During it, the target's RSS (VmRSS
// from /proc/PID/status) is sampled every `sample-ms`, a normal client tries
// a quorum put and get every 2 s (routed through the library, which may fail
// over to n2/n3; and direct to the target over raw frames on a connection
// we close ourselves), and the target's connection counts are read from its
// admin status. Then the sockets are closed and we watch (up to 120 s) for
// the direct client to succeed again and for the node to let go of the
// attack's connections (a failed connect() of the library leaves its
// connection open: those are counted and not held against the node).
// `--sources K` spreads the clients over K loopback addresses (127.0.1.1..K),
// to see connectionsMax (1024) rather than connectionsPerSourceMax (512);
// the normal client always comes from 127.0.0.1.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { adminAuth, probe, startCluster, stopCluster } from '../cluster/launcher.js';
import type { ClusterNode } from '../cluster/launcher.js';
import { connect } from '../src/index.js';
import { TuneKvError } from '../src/errors.js';
import { limits } from '../src/limits.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { MsgType, protocolVersion } from '../src/protocol/messages.js';
import { RawConn, openIn } from './fuzz-wire.js';
import { newHistogram, percentiles } from './histogram.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    sources: { type: 'string', default: '1' },
    'value-bytes': { type: 'string', default: String(100 * 1024) },
    'duration-ms': { type: 'string', default: '20000' },
    'sample-ms': { type: 'string', default: '500' },
    variants: { type: 'string', default: 'pipeline,silent,silent-reconnect' },
  },
});
const clients = Number(values.clients);
const sources = Number(values.sources);
const valueBytes = Number(values['value-bytes']);
const durationMs = Number(values['duration-ms']);
const sampleMs = Number(values['sample-ms']);
const variants = values.variants!.split(',');
const checkEveryMs = 2000;
/** How long after the attack stops we keep watching for the node to recover. */
const recoveryWaitMs = 120_000;
const bigKey = 'idle:big';

type Variant = 'pipeline' | 'silent' | 'silent-reconnect';
for (const v of variants) if (!['pipeline', 'silent', 'silent-reconnect'].includes(v)) throw new TypeError(`unknown variant ${v}`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function procKb(pid: number | null, field: 'VmRSS' | 'VmHWM'): number {
  if (pid === null) return Number.NaN;
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const mb = (kb: number): string => (Number.isNaN(kb) ? 'gone' : `${(kb / 1024).toFixed(0)} MB`);

function sourceOf(i: number): string | undefined {
  if (sources <= 1) return undefined;
  return `127.0.1.${(i % sources) + 1}`;
}

interface Attack {
  readonly sockets: Set<net.Socket>;
  opened: number;
  closedByNode: number;
  connectErrors: number;
  /** GET frames handed to the kernel (written), across sockets. */
  getsWritten: number;
  stop(): void;
}

function attack(variant: Variant, target: ClusterNode): Attack {
  const hello = encodeFrame(MsgType.HELLO, 0, { protocol: protocolVersion, agent: 'idle-bench' });
  const perBlock = 512;
  const block = Buffer.concat(Array.from({ length: perBlock }, (_, i) => encodeFrame(MsgType.GET, i + 1, { key: bigKey })));
  let stopped = false;
  const a: Attack = {
    sockets: new Set(), opened: 0, closedByNode: 0, connectErrors: 0, getsWritten: 0,
    stop: () => { stopped = true; for (const s of a.sockets) s.destroy(); a.sockets.clear(); },
  };
  const open = (i: number): void => {
    const local = sourceOf(i);
    const s = net.connect({ host: target.host, port: target.port, ...(local ? { localAddress: local } : {}) });
    a.opened++;
    a.sockets.add(s);
    let connected = false;
    if (variant === 'pipeline') {
      // Never read: paused before connect, so Node never even starts reading
      // the socket. A close by the node is then seen only through a failed
      // write (the node resets a connection it drops with our requests
      // unread); the node's own counts are read from its status too.
      s.pause();
    } else {
      // A silent socket receives nothing but the close: let it flow, so the
      // close is seen at once.
      s.on('data', () => {});
    }
    const pump = (): void => {
      while (!s.destroyed && !stopped) {
        a.getsWritten += perBlock;
        if (!s.write(block)) return;
      }
    };
    s.on('connect', () => {
      connected = true;
      if (variant !== 'pipeline') return;
      s.write(hello);
      pump();
    });
    s.on('drain', pump);
    s.on('error', () => { if (!connected) a.connectErrors++; });
    s.on('close', () => {
      a.sockets.delete(s);
      if (stopped) return;
      if (connected) a.closedByNode++;
      if (variant === 'silent-reconnect') setImmediate(() => { if (!stopped) open(i); });
    });
  };
  for (let i = 0; i < clients; i++) open(i);
  return a;
}

interface Check { readonly atMs: number; readonly routed: string; readonly direct: string }

/** connect() calls that failed: each leaves its connection open (a client
 * library finding of this work), which the node then counts as a client. */
let failedConnects = 0;
/** Every check writes a key of its own (a blind put to a used key would add a sibling). */
let checkNo = 0;

/** A normal client from 127.0.0.1, a quorum put and get: routed, through the
 * library (it may fail over to n2/n3), and direct to the target over raw
 * frames on one connection we close ourselves. */
async function normalClient(hosts: string[], target: ClusterNode, tag0: string): Promise<{ routed: string; direct: string }> {
  const tag = `${tag0}-${++checkNo}`;
  const routed = async (): Promise<string> => {
    const t0 = process.hrtime.bigint();
    let kv: Awaited<ReturnType<typeof connect>> | undefined;
    try {
      kv = await connect({ hosts, timeoutMs: 3000, connectTimeoutMs: 2000 }).catch((err: unknown) => { failedConnects++; throw err; });
      const key = `normal:${tag}:r`;
      await kv.put(key, 'x');
      const got = await kv.get(key);
      if (got.values[0] !== 'x') return 'wrong value';
      return `ok ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms`;
    } catch (err) {
      return err instanceof TuneKvError ? err.code : (err as Error).message.slice(0, 40);
    } finally {
      await kv?.close().catch(() => {});
    }
  };
  const direct = async (): Promise<string> => {
    const t0 = process.hrtime.bigint();
    let conn: RawConn | undefined;
    try {
      conn = await openIn('client', target.host, target.port, undefined, 3000);
      const key = `normal:${tag}:d`;
      conn.send(encodeFrame(MsgType.PUT, 1, { key, value: Buffer.from('x'), vtype: 1, timeoutMs: 3000 }));
      const put = await conn.waitReply(1, 4000);
      if (put.reply?.type !== MsgType.PUT_REPLY) return put.reply ? String((put.reply.body as { code?: string }).code) : put.outcome.toUpperCase();
      conn.send(encodeFrame(MsgType.GET, 2, { key, timeoutMs: 3000 }));
      const get = await conn.waitReply(2, 4000);
      if (get.reply?.type !== MsgType.GET_REPLY) return get.reply ? String((get.reply.body as { code?: string }).code) : get.outcome.toUpperCase();
      const values = (get.reply.body as { values: [number, Uint8Array][] }).values;
      if (values.length !== 1 || Buffer.from(values[0]![1]).toString() !== 'x') return 'wrong value';
      return `ok ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms`;
    } catch (err) {
      return /HELLO/.test((err as Error).message) ? 'HELLO unanswered' : (err as Error).message.slice(0, 40);
    } finally {
      conn?.destroy();
    }
  };
  const [r, d] = await Promise.all([routed(), direct()]);
  return { routed: r, direct: d };
}

interface Row {
  variant: string;
  /** From closing the attacking sockets until a normal client's direct put
   * and get succeeded again, and until the node's client connections were
   * back to what they were before. */
  recoveryMs: number;
  connsBackMs: number;
  nodeConnsAfter: string;
  rssBefore: number;
  rssPeak: number;
  hwm: number;
  rssEnd: number;
  rssAfter: number;
  peersRssPeak: string;
  opened: number;
  closedByNode: number;
  connectErrors: number;
  stillOpen: number;
  nodeClientConns: string;
  gets: number;
  during: Check[];
  after: { routed: string; direct: string };
  rssTrace: number[];
}

async function runVariant(variant: Variant, nodes: ClusterNode[], dir: string): Promise<Row> {
  const target = nodes[0]!;
  const hosts = nodes.map((nd) => `${nd.host}:${nd.port}`);
  const auth = adminAuth(dir);
  await sleep(1000);
  const base = (await probe(target.host, target.port, 2000, auth))?.connections as { client?: number; handshaking?: number } | undefined;
  // The probe's own connection is counted while it asks.
  const baseConns = (base?.client ?? 0) + (base?.handshaking ?? 0);
  const rssBefore = procKb(target.pid, 'VmRSS');
  const failedAtStart = failedConnects;
  const a = attack(variant, target);
  const t0 = Date.now();
  const rssTrace: number[] = [];
  const peerPeak = new Map<string, number>();
  const during: Check[] = [];
  let nodeConns: string[] = [];
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    const r = procKb(target.pid, 'VmRSS');
    rssTrace.push(r);
    if (r > rssPeak) rssPeak = r;
    for (const nd of nodes.slice(1)) peerPeak.set(nd.id, Math.max(peerPeak.get(nd.id) ?? 0, procKb(nd.pid, 'VmRSS')));
  }, sampleMs);
  let n = 0;
  while (Date.now() - t0 < durationMs) {
    await sleep(checkEveryMs);
    const c = await normalClient(hosts, target, `${variant}-${n++}`);
    const st = await probe(target.host, target.port, 2000, auth);
    const conns = st?.connections as { client?: number; handshaking?: number; peer?: number } | undefined;
    nodeConns.push(conns ? `${conns.client}/${conns.handshaking}` : 'n/a');
    during.push({ atMs: Date.now() - t0, ...c });
    console.log(`  ${variant} t=${((Date.now() - t0) / 1000).toFixed(1)}s RSS ${mb(procKb(target.pid, 'VmRSS'))}, our sockets open ${a.sockets.size}, closed by node ${a.closedByNode}, node client/handshaking ${nodeConns[nodeConns.length - 1]}, normal client routed: ${c.routed}, direct: ${c.direct}`);
  }
  const rssEnd = procKb(target.pid, 'VmRSS');
  const stillOpen = a.sockets.size;
  const gets = a.getsWritten;
  a.stop();
  const stoppedAt = Date.now();
  await sleep(3000);
  const after = await normalClient(hosts, target, `${variant}-after`);
  const rssAfter = procKb(target.pid, 'VmRSS');
  // How long until the node serves a normal client again, and until it has
  // let go of every connection of the attack (up to recoveryWaitMs).
  let recoveryMs = after.direct.startsWith('ok') ? 3000 : Number.NaN;
  let connsBackMs = Number.NaN;
  let nodeConnsAfter = 'n/a';
  let lastLogMs = 0;
  while (Date.now() - stoppedAt < recoveryWaitMs && (Number.isNaN(recoveryMs) || Number.isNaN(connsBackMs))) {
    const st = await probe(target.host, target.port, 2000, auth);
    if (Number.isNaN(recoveryMs)) {
      const c = await normalClient(hosts, target, `${variant}-rec`);
      if (c.direct.startsWith('ok')) recoveryMs = Date.now() - stoppedAt;
      else if (Date.now() - lastLogMs >= 5000) {
        lastLogMs = Date.now();
        const peers = (st?.peers as { id: string; state: string }[] | undefined)?.map((p) => `${p.id}:${p.state}`).join(' ') ?? 'n/a';
        console.log(`  ${variant} +${((Date.now() - stoppedAt) / 1000).toFixed(0)}s after: normal client routed ${c.routed}, direct ${c.direct}; n1 sees peers ${peers}; RSS ${mb(procKb(target.pid, 'VmRSS'))}`);
      }
    }
    const conns = st?.connections as { client?: number; handshaking?: number } | undefined;
    if (conns) {
      nodeConnsAfter = `${conns.client}/${conns.handshaking}`;
      // Connections left open by our own failed connect() calls are the
      // library's, not the node's: they do not count against the node.
      const leakedByUs = failedConnects - failedAtStart;
      if (Number.isNaN(connsBackMs) && (conns.client ?? 0) + (conns.handshaking ?? 0) <= baseConns + leakedByUs) connsBackMs = Date.now() - stoppedAt;
    }
    await sleep(500);
  }
  clearInterval(sampler);
  const hwm = procKb(target.pid, 'VmHWM');
  const states = socketStates(target.port);
  console.log(`  ${variant}: ${((Date.now() - stoppedAt) / 1000).toFixed(0)} s after the attack stopped the node reports client/handshaking ${nodeConnsAfter}; TCP states on its port: ${states}; failed connect() calls of the routed normal client in this variant (each leaves a connection open): ${failedConnects - failedAtStart}`);
  nodeConns = nodeConns.slice(-3);
  return {
    variant, recoveryMs, connsBackMs, nodeConnsAfter, rssBefore, rssPeak, hwm, rssEnd, rssAfter,
    peersRssPeak: [...peerPeak].map(([id, kb]) => `${id} ${mb(kb)}`).join(', '),
    opened: a.opened, closedByNode: a.closedByNode, connectErrors: a.connectErrors, stillOpen,
    nodeClientConns: nodeConns.join(' '), gets, during, after, rssTrace,
  };
}

/** Stores the big value through n1. The put goes on a connection that has
 * already done a request: a request larger than handshakeFrameBytesMax
 * pipelined right behind HELLO on a fresh connection is refused TOO_LARGE
 * (a finding of this work; see the fuzz test). */
async function putBig(nodes: readonly ClusterNode[]): Promise<void> {
  const host = `${nodes[0]!.host}:${nodes[0]!.port}`;
  const kv = await connect({ hosts: [host], route: false });
  try {
    await kv.get(bigKey, { host });
    await kv.put(bigKey, new Uint8Array(valueBytes).fill(0x5a), { host });
  } finally {
    await kv.close();
  }
}

/** The TCP states of the target's connections (Linux `ss`), for a node that
 * holds on to connections its clients have closed. */
function socketStates(port: number): string {
  if (process.platform !== 'linux') return 'n/a';
  try {
    const out = execFileSync('ss', ['-tnH', 'state', 'all', `( sport = :${port} )`], { encoding: 'utf8' });
    const counts = new Map<string, number>();
    for (const line of out.split('\n')) {
      const [state, recvQ] = line.trim().split(/\s+/);
      if (!state || state === 'LISTEN') continue;
      const k = `${state}${Number(recvQ) > 0 ? ' (unread bytes)' : ''}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return [...counts].map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
  } catch (err) {
    return `ss failed: ${(err as Error).message.slice(0, 60)}`;
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-idle-'));
  const rows: Row[] = [];
  try {
    const started = await startCluster({ dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {} });
    let nodes = started.cluster.nodes;
    console.log('tunekv idle clients: the memory ceiling');
    console.log(`  clients ${clients} from ${sources} source address${sources === 1 ? ' (127.0.0.1)' : `es (127.0.1.1-${sources})`}, value ${valueBytes} bytes, ${durationMs} ms per variant, RSS sampled every ${sampleMs} ms, normal client every ${checkEveryMs} ms`);
    console.log(`  variants: ${variants.join(', ')}; target n1 ${nodes[0]!.host}:${nodes[0]!.port} pid ${nodes[0]!.pid}; cluster 3 nodes N=3 Q=64 in ${dir}`);
    console.log(`  limits: connectionsMax ${limits.connectionsMax}, connectionsPerSourceMax ${limits.connectionsPerSourceMax}, handshakingConnectionsMax ${limits.handshakingConnectionsMax}, handshakeTimeoutMs ${limits.handshakeTimeoutMs}, connectionReadPauseBytes ${limits.connectionReadPauseBytes}, connectionOutputBytesMax ${limits.connectionOutputBytesMax}, outputBytesTotalMax ${limits.outputBytesTotalMax}, inFlightPerConnectionMax ${limits.inFlightPerConnectionMax}, requestsInFlightMax ${limits.requestsInFlightMax}`);
    console.log(`  node ${process.version}, ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB`);
    await putBig(nodes);
    for (const [i, v] of variants.entries()) {
      // Each variant on a fresh cluster: what one leaves behind must not be
      // charged to the next.
      if (i > 0) {
        await stopCluster(dir, () => {});
        fs.rmSync(dir, { recursive: true, force: true });
        const again = await startCluster({ dir, nodes: 3, basePort: 0, host: '127.0.0.1', n: 3, q: 64, fsync: false, detach: true, log: () => {} });
        nodes = again.cluster.nodes;
        await putBig(nodes);
      }
      console.log(`variant ${v}: target n1 pid ${nodes[0]!.pid}`);
      rows.push(await runVariant(v as Variant, nodes, dir));
    }

    const pct = (checks: Check[], k: 'routed' | 'direct'): string => `${checks.filter((c) => c[k].startsWith('ok')).length}/${checks.length}`;
    console.log('\nresults (target n1)');
    const secs = (ms: number): string => (Number.isNaN(ms) ? `> ${recoveryWaitMs / 1000} s` : `${(ms / 1000).toFixed(1)} s`);
    const head = ['variant', 'RSS before', 'RSS peak', 'VmHWM', 'RSS end', 'RSS 3 s after', 'peers RSS peak', 'sockets opened', 'closed by node (seen)', 'open at end (our view)', 'node client/hs conns during (last 3)', 'GETs written', 'normal routed ok', 'normal direct ok', '3 s after: routed / direct', 'normal client back after', 'node conns back after', 'node client/hs conns at end'];
    const body = rows.map((r) => [
      r.variant, mb(r.rssBefore), mb(r.rssPeak), mb(r.hwm), mb(r.rssEnd), mb(r.rssAfter), r.peersRssPeak, String(r.opened), String(r.closedByNode),
      String(r.stillOpen), r.nodeClientConns, r.variant === 'pipeline' ? String(r.gets) : '-', pct(r.during, 'routed'), pct(r.during, 'direct'), `${r.after.routed} / ${r.after.direct}`,
      secs(r.recoveryMs), secs(r.connsBackMs), r.nodeConnsAfter,
    ]);
    console.log(`| ${head.join(' | ')} |`);
    console.log(`| ${head.map(() => '---').join(' | ')} |`);
    for (const b of body) console.log(`| ${b.join(' | ')} |`);
    for (const r of rows) {
      const h = newHistogram();
      for (const c of r.during) {
        const m = /^ok (\d+) ms$/.exec(c.direct);
        if (m) h.recordValue(Number(m[1]) * 1000);
      }
      const p = percentiles(h);
      console.log(`  ${r.variant}: normal client direct put+get (incl. connect) ok ${p.count}, p50 ${p.p50.toFixed(0)} ms, max ${p.max.toFixed(0)} ms; failures: ${r.during.filter((c) => !c.direct.startsWith('ok')).map((c) => c.direct).join(', ') || 'none'}`);
      console.log(`  ${r.variant}: RSS trace (MB): ${r.rssTrace.map((kb) => (kb / 1024).toFixed(0)).join(' ')}`);
    }
    const results = path.resolve('bench/results', `idle-clients-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    fs.mkdirSync(results, { recursive: true });
    fs.writeFileSync(path.join(results, 'results.json'), JSON.stringify({ config: { clients, sources, valueBytes, durationMs, sampleMs, variants }, rows }, null, 2));
    fs.copyFileSync(nodes[0]!.logFile, path.join(results, 'n1.log'));
    console.log(`  written: ${path.join(results, 'results.json')}`);
  } finally {
    await stopCluster(dir, () => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => { console.error(err); process.exit(1); });
