// A node's configuration: one typed object, each field with its unit, its
// default and the reason for the default. validateConfig() says what is
// wrong in plain words.

import { nodeIdProblem, ringParamsProblem } from './core/ring/ring.js';
import { limits } from './limits.js';
import { parseHostPort } from './io/transport.js';

export interface NodeConfig {
  /** Unique, stable node id; it names this node's dots in vector clocks, so
   * a node whose data directory is wiped must come back under a new id. */
  readonly id: string;
  /** host:port to listen on for clients and peers. */
  readonly listen: string;
  /** Directory for this node's LevelDB. */
  readonly dataDir: string;
  /** Seeds (host:port) to join through; empty founds a new cluster. */
  readonly join: readonly string[];
  /** Partitions Q of a new cluster. Default 64: even spread for up to ~16
   * nodes at a few partitions each, and cheap per-partition state. Fixed
   * once the cluster exists; joiners take the cluster's. */
  readonly q: number;
  /** Replicas N of a new cluster. Default 3: Dynamo's, survives one failure
   * at quorum and two at eventual. Fixed once the cluster exists. */
  readonly n: number;
  /** Deadline of a request this node coordinates when the caller gives
   * none. Default 5000 ms: well above a healthy quorum (sub-millisecond
   * locally), short enough that a stalled replica fails fast. */
  readonly requestTimeoutMs: number;
  /** fsync every storage batch before acknowledging. Default false, like
   * Riak and Cassandra's periodic commit log: a process crash (kill -9)
   * loses nothing acknowledged, because LevelDB's log is written before the
   * ack; a power loss can lose the last moments of writes on this node,
   * which its replicas still hold. true costs a disk flush per batch. */
  readonly fsync: boolean;
  /** Last-writer-wins for every put this node coordinates, unless a request
   * says otherwise. Default false: concurrent writes become siblings. */
  readonly lww: boolean;
  /** Send merged objects to stale replicas after a read. Default true. */
  readonly readRepair: boolean;
  /** Peer connect timeout. Default 1000 ms: loopback and LAN connect in
   * well under a millisecond; longer means the peer is in trouble. */
  readonly peerConnectTimeoutMs: number;
  /** After a refused connection, fail requests to that peer at once for
   * this long. Default 500 ms: a dead replica costs nothing, a restarted
   * one is used again within half a second. */
  readonly peerRetryDelayMs: number;
  /** How long a joining node keeps trying its seeds. Default 30000 ms. */
  readonly joinTimeoutMs: number;
}

export const defaultConfig = {
  join: [] as string[],
  q: 64,
  n: 3,
  requestTimeoutMs: 5000,
  fsync: false,
  lww: false,
  readRepair: true,
  peerConnectTimeoutMs: 1000,
  peerRetryDelayMs: 500,
  joinTimeoutMs: 30_000,
} satisfies Partial<NodeConfig>;

export type NodeConfigInput = Pick<NodeConfig, 'id' | 'listen' | 'dataDir'> & Partial<NodeConfig>;

export function makeConfig(input: NodeConfigInput): NodeConfig {
  const config: NodeConfig = { ...defaultConfig, ...stripUndefined(input) };
  const problem = configProblem(config);
  if (problem) throw new TypeError(problem);
  return config;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function timeoutProblem(name: string, v: number): string | null {
  if (!Number.isInteger(v) || v < limits.requestTimeoutMinMs || v > limits.requestTimeoutMaxMs) {
    return `${name} (${v}) must be an integer from ${limits.requestTimeoutMinMs} to ${limits.requestTimeoutMaxMs} ms`;
  }
  return null;
}

export function configProblem(c: NodeConfig): string | null {
  const idProblem = nodeIdProblem(c.id);
  if (idProblem) return idProblem;
  if (!parseHostPort(c.listen)) return `listen (${c.listen}) must be host:port`;
  for (const seed of c.join) if (!parseHostPort(seed)) return `join seed (${seed}) must be host:port`;
  if (typeof c.dataDir !== 'string' || c.dataDir.length === 0) return 'dataDir is required';
  return ringParamsProblem(c.q, c.n)
    ?? timeoutProblem('requestTimeoutMs', c.requestTimeoutMs)
    ?? timeoutProblem('peerConnectTimeoutMs', c.peerConnectTimeoutMs)
    ?? timeoutProblem('peerRetryDelayMs', c.peerRetryDelayMs)
    ?? timeoutProblem('joinTimeoutMs', c.joinTimeoutMs);
}
