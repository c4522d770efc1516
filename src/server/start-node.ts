// Starts a real node: LevelDB storage, system clock, TCP for peers and
// clients. The order matters: listen first (a port of 0 becomes a real port
// before the node's address goes into the ring), then open storage and load
// or found the ring, then join through the seeds.

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
  let stopping: Promise<void> | undefined;
  return {
    node,
    addr,
    stop: () => {
      stopping ??= (async () => {
        await server.close();
        await node.close();
      })();
      return stopping;
    },
  };
}
