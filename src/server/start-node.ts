// Starts a real node: LevelDB storage, system clock, TCP for peers and
// clients. The order matters: listen first (a port of 0 becomes a real port
// before the node's address goes into the ring), then open storage and load
// or found the ring, then join through the seeds.

import http from 'node:http';
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

export async function startNode(input: NodeConfigInput, log?: (line: string) => void): Promise<RunningNode> {
  const requested = makeConfig(input);
  const loaded = loadSecurity(requested);
  const say = log ?? (() => {});
  if (loaded.secretCreated) {
    say(`${requested.id} created a new cluster secret in ${loaded.secretFile} (mode 0600); nodes joining this cluster need --secret-file ${loaded.secretFile}`);
  }
  const hp = parseHostPort(requested.listen)!;
  const server = new TcpServer(loaded.tls);
  const bound = await server.listen(hp.host, hp.port);
  const addr = `${hp.host}:${bound.port}`;
  const config = makeConfig({ ...input, listen: addr });
  const clock = new SystemClock();
  const node = new TuneNode({
    config,
    storage: new LevelStorage(config.dataDir),
    clock,
    random: Math.random,
    security: loaded.security,
    log,
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
  try {
    await node.open();
    server.attach(node);
    if (node.needsJoin) await node.join();
    await node.announce();
    node.startBackground();
  } catch (err) {
    await server.close();
    await node.close().catch(() => {});
    throw err;
  }
  const metrics = config.metricsListen === null ? undefined : await serveMetrics(node, config.metricsListen).catch(async (err: Error) => {
    await server.close();
    await node.close();
    throw new Error(`metrics port ${config.metricsListen}: ${err.message}`);
  });
  if (metrics) node.metricsUrl = `http://${metrics.addr}/metrics`;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await new Promise<void>((resolve) => { if (metrics) metrics.server.close(() => resolve()); else resolve(); });
      await server.close();
      await node.close();
    })();
    return stopping;
  };
  const exited = new Promise<void>((resolve) => {
    node.onExited = () => { stop().then(resolve, resolve); };
    if (node.exitRequested) node.onExited();
  });
  return { node, addr, metricsAddr: metrics?.addr ?? null, exited, stop };
}

/** Prometheus text format on GET /metrics; 404 elsewhere. */
function serveMetrics(node: TuneNode, listen: string): Promise<{ server: http.Server; addr: string }> {
  const hp = parseHostPort(listen)!;
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    node.metrics.registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': node.metrics.registry.contentType }).end(text);
    }, (err: Error) => res.writeHead(500).end(err.message));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(hp.port, hp.host, () => {
      server.off('error', reject);
      resolve({ server, addr: `${hp.host}:${(server.address() as AddressInfo).port}` });
    });
  });
}
