// Starts a real node: LevelDB storage, system clock, TCP for peers and
// clients. The order matters: listen first (a port of 0 becomes a real port
// before the node's address goes into the ring), then open storage and load
// or found the ring, then join through the seeds.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeConfig } from '../config.js';
import type { NodeConfigInput } from '../config.js';
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
  stop(): Promise<void>;
}

export async function startNode(input: NodeConfigInput, log?: (line: string) => void): Promise<RunningNode> {
  const requested = makeConfig(input);
  const hp = parseHostPort(requested.listen)!;
  const server = new TcpServer();
  const bound = await server.listen(hp.host, hp.port);
  const addr = `${hp.host}:${bound.port}`;
  const config = makeConfig({ ...input, listen: addr });
  const clock = new SystemClock();
  const node = new TuneNode({
    config,
    storage: new LevelStorage(config.dataDir),
    clock,
    random: Math.random,
    log,
    transport: (n) => new TcpPeerTransport({
      selfId: config.id,
      addrOf: (id) => n.addrOf(id),
      connectTimeoutMs: config.peerConnectTimeoutMs,
      retryDelayMs: config.peerRetryDelayMs,
      hello: () => ({ ringVersion: n.ring?.version ?? 0, addr }),
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
  return {
    node,
    addr,
    metricsAddr: metrics?.addr ?? null,
    stop: () => {
      stopping ??= (async () => {
        await new Promise<void>((resolve) => { if (metrics) metrics.server.close(() => resolve()); else resolve(); });
        await server.close();
        await node.close();
      })();
      return stopping;
    },
  };
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
