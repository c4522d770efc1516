// Starts a real node: LevelDB storage, system clock, TCP for peers and
// clients. The order matters: listen first (a port of 0 becomes a real port
// before the node's address goes into the ring), then open storage and load
// or found the ring, then join through the seeds.

import http from 'node:http';
import { limits } from '../limits.js';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { makeConfig } from '../config.js';
import type { NodeConfig, NodeConfigInput } from '../config.js';
import { clusterKey, ensureSecretFile, fakeSaltKey, readSecretFile, secretFileName } from '../security/secret.js';
import { loadTls } from '../security/tls.js';
import type { TlsMaterial } from '../security/tls.js';
import { readUsersFile } from '../security/users.js';
import type { Security } from './router.js';
import { SystemClock } from '../io/clock.js';
import { LevelStorage } from '../io/level-storage.js';
import { TcpPeerTransport } from '../io/tcp-transport.js';
import { parseHostPort } from '../io/transport.js';
import { TuneKvError } from '../errors.js';
import { memberOf, stateOf } from '../core/ring/ring.js';
import type { EventLog } from './log.js';
import { TuneNode } from './node.js';
import { TcpServer } from './tcp-server.js';

export interface RunningNode {
  readonly node: TuneNode;
  /** host:port actually listened on. */
  readonly addr: string;
  /** host:port of the metrics endpoint, or null. */
  readonly metricsAddr: string | null;
  /** Resolves once the node left the cluster (it was exiting and handed
   * everything off) and stopped. */
  readonly exited: Promise<void>;
  stop(): Promise<void>;
}

/** The cluster secret, users and TLS material a node starts with, loaded
 * from the files its config names. Problems are plain-words Errors that
 * name the file. */
export interface LoadedSecurity {
  readonly security: Security;
  readonly tls: TlsMaterial | undefined;
  readonly secretFile: string;
  readonly secretCreated: boolean;
}

export function loadSecurity(config: NodeConfig): LoadedSecurity {
  const secretFile = config.secretFile ?? path.join(config.dataDir, secretFileName);
  // An explicit --secret-file must exist: creating one would found a
  // cluster nobody else can join. The default one is made on first start.
  const { secret, created } = config.secretFile !== null
    ? { secret: readSecretFile(secretFile), created: false }
    : ensureSecretFile(secretFile);
  const key = clusterKey(secret);
  const tls = loadTls({
    ...(config.tlsCert === null ? {} : { cert: config.tlsCert }),
    ...(config.tlsKey === null ? {} : { key: config.tlsKey }),
    ...(config.tlsCa === null ? {} : { ca: config.tlsCa }),
  });
  return {
    security: {
      clusterKey: key,
      users: config.usersFile === null ? null : readUsersFile(config.usersFile),
      fakeSaltKey: fakeSaltKey(key),
      peerCertRequired: tls?.ca !== undefined,
    },
    tls, secretFile, secretCreated: created,
  };
}

/** How this node dials its peers with TLS: our certificate (peers require
 * one), and their certificates checked against the cluster CA. */
function dialTls(tls: TlsMaterial | undefined): import('node:tls').ConnectionOptions | undefined {
  if (!tls) return undefined;
  return { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}) };
}

/** A listen that failed because the port is taken, as PORT_IN_USE naming
 * whose port it is; any other error as it came. */
function portError(err: unknown, node: string, kind: 'node' | 'metrics', host: string, port: number): unknown {
  if ((err as NodeJS.ErrnoException | undefined)?.code !== 'EADDRINUSE') return err;
  return new TuneKvError('PORT_IN_USE', `${node}'s ${kind === 'node' ? 'port' : 'metrics port'} ${port} on ${host} is in use`, { node, kind, host, port });
}

/**
 * Starts a node. `log` takes either free-text lines (tests, older callers)
 * or a structured EventLog (server/log.ts: the `tunekv node` command), which
 * then also hears node_listening and node_stopped.
 */
export async function startNode(input: NodeConfigInput, log?: ((line: string) => void) | EventLog): Promise<RunningNode> {
  const requested = makeConfig(input);
  const loaded = loadSecurity(requested);
  const events = typeof log === 'object' ? log : undefined;
  const lines = typeof log === 'function' ? log : undefined;
  const say = lines ?? ((l: string) => events?.event('info', 'note', { msg: l }));
  if (loaded.secretCreated) {
    say(`${requested.id} created a new cluster secret in ${loaded.secretFile} (mode 0600); nodes joining this cluster need --secret-file ${loaded.secretFile}`);
  }
  const hp = parseHostPort(requested.listen)!;
  const server = new TcpServer(loaded.tls);
  const bound = await server.listen(hp.host, hp.port).catch((err: unknown) => { throw portError(err, requested.id, 'node', hp.host, hp.port); });
  const addr = `${hp.host}:${bound.port}`;
  const config = makeConfig({ ...input, listen: addr });
  const clock = new SystemClock();
  const node = new TuneNode({
    config,
    storage: new LevelStorage(config.dataDir),
    clock,
    random: Math.random,
    security: loaded.security,
    ...(lines ? { log: lines } : {}),
    ...(events ? { events } : {}),
    transport: (n) => new TcpPeerTransport({
      selfId: config.id,
      addrOf: (id) => n.addrOf(id),
      connectTimeoutMs: config.peerConnectTimeoutMs,
      retryDelayMs: config.peerRetryDelayMs,
      auth: { kind: 'secret', key: loaded.security.clusterKey, as: `node:${config.id}` },
      tls: dialTls(loaded.tls),
      hello: () => ({ ringVersion: n.ring?.version ?? 0 }),
      // peerAddr is an address we dialled (a member's, from our ring, or a
      // configured seed), and the peer has proven the secret by now.
      onHelloOk: (peerAddr, body) => { if (body.ringVersion > (n.ring?.version ?? 0)) n.pullRingFrom(peerAddr); },
    }),
  });
  node.metrics.collectProcessMetrics();
  // The metrics listener (with /health and /ready) binds before the node
  // opens its storage and joins: a taken metrics port fails the start
  // before the node announced itself to the cluster, and /ready can say
  // "starting" while it opens a large store.
  const phase: { starting: boolean; stopping: boolean } = { starting: true, stopping: false };
  let metrics: { server: http.Server; addr: string } | undefined;
  if (config.metricsListen !== null) {
    const mhp = parseHostPort(config.metricsListen)!;
    try {
      metrics = await serveMetrics(node, mhp.host, mhp.port, phase);
    } catch (err) {
      await server.close();
      // LevelDB opens itself in the background once constructed: close it
      // so its lock is not held by a node that never started.
      // Not clean: there is nothing opened to persist.
      await node.close(false).catch(() => {});
      throw portError(err, config.id, 'metrics', mhp.host, mhp.port);
    }
  }
  const closeMetrics = (): Promise<void> => new Promise<void>((resolve) => { if (metrics) metrics.server.close(() => resolve()); else resolve(); });
  try {
    await node.open();
    server.attach(node);
    if (node.needsJoin) await node.join();
    await node.announce();
    node.startBackground();
  } catch (err) {
    await closeMetrics();
    await server.close();
    await node.close().catch(() => {});
    throw err;
  }
  phase.starting = false;
  if (metrics) node.metricsUrl = `http://${metrics.addr}/metrics`;
  const ring = node.ring;
  events?.event('info', 'node_listening', {
    listen: addr, metrics: metrics ? `http://${metrics.addr}/metrics` : null, dataDir: config.dataDir,
    ...(ring ? { ringVersion: ring.version, members: ring.members.length, n: ring.n, q: ring.q } : { standby: true }),
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      phase.stopping = true;
      await closeMetrics();
      await server.close();
      await node.close();
      events?.event('info', 'node_stopped', {});
    })();
    return stopping;
  };
  const exited = new Promise<void>((resolve) => {
    node.onExited = () => { stop().then(resolve, resolve); };
    if (node.exitRequested) node.onExited();
  });
  return { node, addr, metricsAddr: metrics?.addr ?? null, exited, stop };
}

/** Why the node should not get traffic now (empty: ready). */
export function notReadyReasons(node: TuneNode, phase: { readonly starting: boolean; readonly stopping: boolean }): string[] {
  const reasons: string[] = [];
  if (phase.starting) reasons.push('starting: opening storage or joining');
  if (phase.stopping || node.isStopped) reasons.push('stopping');
  const ring = node.ring;
  if (!ring) {
    reasons.push('no ring: on standby, waiting to be joined');
  } else {
    const me = memberOf(ring, node.id);
    if (!me) reasons.push(`not a member of ring v${ring.version}`);
    else if (stateOf(me) !== 'valid') reasons.push(`member state ${stateOf(me)} (not valid yet or any more)`);
  }
  if (!node.health.writable) reasons.push('storage refuses writes (disk failure policy)');
  return reasons;
}

/**
 * The metrics listener:
 * - GET /metrics: Prometheus text format (the node's registry, with the
 *   default process metrics, collected at scrape time);
 * - GET /health: liveness, 200 {"status":"ok"} while the process and its
 *   event loop run (this handler runs on the loop, so a stuck loop does not
 *   answer at all);
 * - GET /ready: 200 {"status":"ready"} when the node should get traffic,
 *   else 503 {"status":"not ready","reasons":[...]} (notReadyReasons);
 * 404 elsewhere. Nothing here reads a request body.
 */
function serveMetrics(node: TuneNode, host: string, port: number, phase: { readonly starting: boolean; readonly stopping: boolean }): Promise<{ server: http.Server; addr: string }> {
  const json = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
  };
  // Node checks headersTimeout only every connectionsCheckingInterval (30 s
  // by default): a probe dribbling one header line every 2 s held its slot
  // about 40 s, not metricsIdleTimeoutMs (red team). Check every second.
  const server = http.createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
    const url = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/health') { json(res, 200, { status: 'ok', node: node.id }); return; }
    if (url === '/ready') {
      const reasons = notReadyReasons(node, phase);
      json(res, reasons.length === 0 ? 200 : 503, reasons.length === 0 ? { status: 'ready', node: node.id } : { status: 'not ready', node: node.id, reasons });
      return;
    }
    if (url !== '/metrics' && url !== '/') {
      res.writeHead(404).end('see /metrics, /health, /ready\n');
      return;
    }
    node.metrics.registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': node.metrics.registry.contentType }).end(text);
    }, (err: Error) => res.writeHead(500).end(err.message));
  });
  // Bounded like the client port: a fixed number of connections, each
  // closed when idle or slow to send its headers (limits.ts).
  server.maxConnections = limits.metricsConnectionsMax;
  server.headersTimeout = limits.metricsIdleTimeoutMs;
  server.requestTimeout = limits.metricsIdleTimeoutMs;
  server.keepAliveTimeout = Math.min(5_000, limits.metricsIdleTimeoutMs);
  server.setTimeout(limits.metricsIdleTimeoutMs, (socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({ server, addr: `${host}:${(server.address() as AddressInfo).port}` });
    });
  });
}
