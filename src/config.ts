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
  /** host:port for the Prometheus metrics endpoint (HTTP, /metrics), or
   * null for none. Default: the listen host, port + 2000 (7001 -> 9001). */
  readonly metricsListen: string | null;
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
  /** Share of reads that ask every replica at once, as Dynamo does; the
   * rest ask R of them (the coordinator first), so a `quorum` read of N=3
   * costs one remote read instead of two and an `eventual` one none.
   * Cassandra's read_repair_chance. Default 0.1: a tenth of reads compare
   * every replica and read-repair the stale ones; anti-entropy covers the
   * rest. 1 asks every replica on every read (the old behaviour). */
  readonly readRepairChance: number;
  /** A read that asked R replicas asks one more when its quorum is not met
   * this long after it began (and at once when a replica fails): a slow
   * replica is not waited for alone (Cassandra's speculative_retry, here
   * a fixed time). Default 20 ms: above a loaded cluster's p99 replica read
   * on a LAN, so it rarely doubles work; far below the request deadline. */
  readonly speculativeRetryMs: number;
  /** How far V8 lets the old generation grow past what the last full
   * collection found alive, in percent (V8's --heap-growing-percent; 0
   * leaves it to V8). Process-wide: the last node opened in a process
   * sets it. Default limits.heapGrowthPercent (50): the heap stays near
   * 1.5x what is alive, which keeps a node with 1M keys under its 300 MB
   * budget; measured, it also costs the loaded tail (a YCSB A `quorum`
   * p99 of 28-34 ms against 20-25 ms with V8's own growth, README
   * "Where the CPU goes"), so a node with memory to spare may set 0. */
  readonly heapGrowthPercent: number;
  /** Peer connect timeout. Default 1000 ms: loopback and LAN connect in
   * well under a millisecond; longer means the peer is in trouble. */
  readonly peerConnectTimeoutMs: number;
  /** After a refused connection, fail requests to that peer at once for
   * this long. Default 500 ms: a dead replica costs nothing, a restarted
   * one is used again within half a second. */
  readonly peerRetryDelayMs: number;
  /** How long a joining node keeps trying its seeds. Default 30000 ms. */
  readonly joinTimeoutMs: number;
  /** Gossip round. Default 250 ms: a crash is suspected within two rounds
   * of its threshold, at 4 small messages per second per node. */
  readonly gossipIntervalMs: number;
  /** Peers contacted per gossip round. Default 2: news reaches every node
   * of a small cluster in a round or two. */
  readonly gossipFanout: number;
  /** A peer whose heartbeat has not grown for this long is `suspect`.
   * Default 1500 ms: six missed rounds, well past a GC pause or a busy loop. */
  readonly suspectAfterMs: number;
  /** ...and `down` after this long: sloppy quorums then route around it.
   * Default 3000 ms. A refused connection marks a peer down at once. */
  readonly downAfterMs: number;
  /** How often the hint handoff runs. Default 500 ms. */
  readonly handoffIntervalMs: number;
  /** Hinted keys handed off per second, at most. Default 20000: drains a
   * node's backlog in seconds without starving client requests. */
  readonly handoffKeysPerSecMax: number;
  /** A hint older than this is no longer kept for its owner: its key is
   * handed to the key's other live primaries instead, and the hint dropped.
   * Default 3 h, Cassandra's max_hint_window. */
  readonly hintAgeMaxMs: number;
  /** Pause between anti-entropy rounds over this node's partitions.
   * Default 10000 ms. */
  readonly aaeIntervalMs: number;
  /** Pause between two partition exchanges inside a round. Default 20 ms:
   * a round of 64 matching partitions costs about a second and 64 small
   * messages. */
  readonly aaeExchangePauseMs: number;
  /** Keys anti-entropy repairs per second, at most. Default 10000. */
  readonly aaeKeysPerSecMax: number;
  /** Ownership transfers (a join, leave, remove or replace): megabytes per
   * second this node receives, at most, over all partitions. Default 20:
   * a 1M-key, 100-byte-value share moves in seconds while clients keep
   * most of the node. Changed while running with `tunekv transfer-limit`. */
  readonly transferMBps: number;
  /** How often a node looks for transfer work and the claimant advances a
   * transition. Default 200 ms (transfers also start at once on a new ring). */
  readonly transferIntervalMs: number;
  /** Start without a ring and wait to be joined by `tunekv join` (a node
   * started with --join stages and commits its own join instead). */
  readonly standby: boolean;
  /** A tombstone is reaped no sooner than this after it was written, and
   * only once every primary holds it and no node holds hints. Default
   * 90000 ms: longer than any request may run (requestTimeoutMaxMs), so no
   * read repair carrying the old value is still in flight. */
  readonly tombstoneReapDelayMs: number;
  /** The cluster secret every peer proves before any node-to-node message
   * is accepted. Default null: DATA/cluster.secret, created (mode 0600) on
   * first start; nodes joining this one must be given the same file. */
  readonly secretFile: string | null;
  /** Users and roles (see src/security/users.ts for the format). Default
   * null: protected mode, where loopback clients may read and write and
   * everything else needs the cluster secret (as Redis's protected mode). */
  readonly usersFile: string | null;
  /** TLS for clients and peers: this node's certificate and key (PEM).
   * Default null: plain TCP. */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  /** The CA that signs every node's certificate: peers must present one it
   * signed (mutual TLS), and nodes check each other's against it. */
  readonly tlsCa: string | null;
  /** Bytes of decoded objects this node keeps cached, least recently used
   * out first, charged at what they really cost the heap (object-store.ts:
   * about 1 KiB for a key with a 100-byte value). Default 32 MiB
   * (limits.objectCacheBytesMax): some 32k such keys, so hot reads and the
   * read half of every read-modify-write skip LevelDB, within the node's
   * memory budget (README, "Memory and start-up"). 0 caches nothing. */
  readonly objectCacheBytes: number;
}

export const defaultConfig = {
  join: [] as string[],
  q: 64,
  n: 3,
  requestTimeoutMs: 5000,
  fsync: false,
  lww: false,
  readRepair: true,
  readRepairChance: 0.1,
  speculativeRetryMs: 20,
  heapGrowthPercent: limits.heapGrowthPercent as number,
  peerConnectTimeoutMs: 1000,
  peerRetryDelayMs: 500,
  joinTimeoutMs: 30_000,
  gossipIntervalMs: 250,
  gossipFanout: 2,
  suspectAfterMs: 1500,
  downAfterMs: 3000,
  handoffIntervalMs: 500,
  handoffKeysPerSecMax: 20_000,
  hintAgeMaxMs: 3 * 60 * 60 * 1000,
  aaeIntervalMs: 10_000,
  aaeExchangePauseMs: 20,
  aaeKeysPerSecMax: 10_000,
  transferMBps: 20,
  transferIntervalMs: 200,
  standby: false,
  tombstoneReapDelayMs: 90_000,
  secretFile: null,
  usersFile: null,
  tlsCert: null,
  tlsKey: null,
  tlsCa: null,
  objectCacheBytes: limits.objectCacheBytesMax,
} satisfies Partial<NodeConfig>;

export type NodeConfigInput = Pick<NodeConfig, 'id' | 'listen' | 'dataDir'> & Partial<NodeConfig>;

/** The listen port + 2000, when that is a valid port. */
export function defaultMetricsListen(listen: string): string | null {
  const hp = parseHostPort(listen);
  if (!hp || hp.port === 0 || hp.port + 2000 > 65535) return null;
  return `${hp.host}:${hp.port + 2000}`;
}

export function makeConfig(input: NodeConfigInput): NodeConfig {
  const config: NodeConfig = { metricsListen: defaultMetricsListen(input.listen), ...defaultConfig, ...stripUndefined(input) };
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
  if (c.metricsListen !== null && !parseHostPort(c.metricsListen)) return `metricsListen (${c.metricsListen}) must be host:port`;
  if (typeof c.dataDir !== 'string' || c.dataDir.length === 0) return 'dataDir is required';
  return ringParamsProblem(c.q, c.n)
    ?? timeoutProblem('requestTimeoutMs', c.requestTimeoutMs)
    ?? timeoutProblem('peerConnectTimeoutMs', c.peerConnectTimeoutMs)
    ?? timeoutProblem('peerRetryDelayMs', c.peerRetryDelayMs)
    ?? timeoutProblem('joinTimeoutMs', c.joinTimeoutMs)
    ?? (Number.isInteger(c.gossipIntervalMs) && c.gossipIntervalMs >= limits.gossipIntervalMinMs ? null
      : `gossipIntervalMs (${c.gossipIntervalMs}) must be an integer of at least ${limits.gossipIntervalMinMs}`)
    ?? ((c.tlsCert === null) === (c.tlsKey === null) ? null : 'tlsCert and tlsKey must be given together')
    ?? (c.tlsCa === null || c.tlsCert !== null ? null : 'tlsCa needs tlsCert and tlsKey')
    ?? (typeof c.readRepairChance === 'number' && c.readRepairChance >= 0 && c.readRepairChance <= 1 ? null
      : `readRepairChance (${c.readRepairChance}) must be a number from 0 to 1`)
    ?? (Number.isInteger(c.speculativeRetryMs) && c.speculativeRetryMs >= 1 && c.speculativeRetryMs < c.requestTimeoutMs ? null
      : `speculativeRetryMs (${c.speculativeRetryMs}) must be an integer from 1 to below requestTimeoutMs (${c.requestTimeoutMs}): `
        + 'a retry after the deadline never happens, and a read with one silent replica would time out')
    ?? (Number.isInteger(c.heapGrowthPercent) && c.heapGrowthPercent >= 0 && c.heapGrowthPercent <= limits.heapGrowthPercentMax ? null
      : `heapGrowthPercent (${c.heapGrowthPercent}) must be an integer from 0 (V8 decides) to ${limits.heapGrowthPercentMax}`)
    ?? positiveProblem('gossipFanout', c.gossipFanout)
    ?? positiveProblem('suspectAfterMs', c.suspectAfterMs)
    ?? (c.downAfterMs > c.suspectAfterMs ? null : `downAfterMs (${c.downAfterMs}) must exceed suspectAfterMs (${c.suspectAfterMs})`)
    ?? (c.suspectAfterMs > c.gossipIntervalMs ? null : `suspectAfterMs (${c.suspectAfterMs}) must exceed gossipIntervalMs (${c.gossipIntervalMs})`)
    ?? positiveProblem('handoffIntervalMs', c.handoffIntervalMs)
    ?? positiveProblem('handoffKeysPerSecMax', c.handoffKeysPerSecMax)
    ?? positiveProblem('hintAgeMaxMs', c.hintAgeMaxMs)
    ?? positiveProblem('aaeIntervalMs', c.aaeIntervalMs)
    ?? (Number.isInteger(c.aaeExchangePauseMs) && c.aaeExchangePauseMs >= 0 ? null : 'aaeExchangePauseMs must be a non-negative integer')
    ?? positiveProblem('aaeKeysPerSecMax', c.aaeKeysPerSecMax)
    ?? (typeof c.transferMBps === 'number' && c.transferMBps >= limits.transferMBpsMin && c.transferMBps <= limits.transferMBpsMax ? null : `transferMBps (${c.transferMBps}) must be a number from ${limits.transferMBpsMin} to ${limits.transferMBpsMax}`)
    ?? positiveProblem('transferIntervalMs', c.transferIntervalMs)
    ?? (Number.isSafeInteger(c.objectCacheBytes) && c.objectCacheBytes >= 0 && c.objectCacheBytes <= limits.objectCacheBytesSettingMax ? null
      : `objectCacheBytes (${c.objectCacheBytes}) must be an integer from 0 to ${limits.objectCacheBytesSettingMax}`)
    ?? (c.tombstoneReapDelayMs > c.requestTimeoutMs ? null
      : `tombstoneReapDelayMs (${c.tombstoneReapDelayMs}) must exceed requestTimeoutMs (${c.requestTimeoutMs})`);
}

function positiveProblem(name: string, v: number): string | null {
  return Number.isInteger(v) && v > 0 ? null : `${name} (${v}) must be a positive integer`;
}
