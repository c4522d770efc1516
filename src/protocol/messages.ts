// Wire message types and their bodies. One protocol serves client→node and
// node→node.
//
// Message numbers are append-only: a number, once released, keeps its meaning
// forever; retired numbers are never reused. Bumping protocolVersion is for
// changes an older peer cannot ignore.
//
// Every request carries a request id in its frame; the reply (or ERROR)
// carries the same id, so one connection carries many requests in flight.

export const protocolVersion = 1;

export const MsgType = {
  HELLO: 1,
  HELLO_OK: 2,
  ERROR: 3,
  OK: 4,
  /** Proof of identity after HELLO_OK: the cluster secret (peers, the
   * launcher, admin tools) or a user's password, as an HMAC over both
   * sides' nonces. Answered with AUTH_OK carrying the node's own proof. */
  AUTH: 5,
  AUTH_OK: 6,
  // client requests
  GET: 10,
  GET_REPLY: 11,
  PUT: 12,
  PUT_REPLY: 13,
  DELETE: 14,
  STATUS: 16,
  STATUS_REPLY: 17,
  RING_GET: 18,
  RING_REPLY: 19,
  // node to node
  REPLICA_READ: 30,
  REPLICA_READ_REPLY: 31,
  REPLICA_WRITE: 32,
  JOIN: 34,
  RING_PUSH: 36,
  /** A node announcing itself to a peer (answered with OK): the peer stops
   * treating it as down at once instead of after peerRetryDelayMs. */
  PING: 38,
  /** Push-pull gossip: our heartbeat table and ring version; the reply
   * carries theirs. */
  GOSSIP: 40,
  GOSSIP_REPLY: 41,
  /** Remove a tombstone that every primary holds (answered with OK). */
  REPLICA_REAP: 42,
  /** Anti-entropy: a partition's segment hashes, then one segment's keys. */
  AAE_SEGMENTS: 44,
  AAE_SEGMENTS_REPLY: 45,
  AAE_KEYS: 46,
  AAE_KEYS_REPLY: 47,
  /** Set this node's fault layer (partitions, delay, loss). */
  ADMIN_FAULTS: 50,
  // changing the cluster's shape (core/ring/transition.ts, server/transfers.ts)
  /** A node's id, incarnation and ring version (asked before staging its join). */
  NODE_INFO: 52,
  NODE_INFO_REPLY: 53,
  /** One page of a partition, streamed to a transfer's receiver. */
  XFER_PAGE: 54,
  XFER_PAGE_REPLY: 55,
  /** A receiver tells the claimant a partition is streamed or caught up. */
  XFER_REPORT: 56,
  /** An exiting node handed everything off: the claimant drops it. */
  EXIT_DONE: 58,
  /** Admin: stage a join, leave, remove or replace; see the plan; commit it. */
  CLUSTER_STAGE: 60,
  CLUSTER_PLAN: 62,
  CLUSTER_PLAN_REPLY: 63,
  CLUSTER_COMMIT: 64,
  /** Admin: this node's transfer limit in MB/s. */
  TRANSFER_LIMIT: 66,
  // counters and sets (server/typed-requests.ts has the bodies)
  /** A counter or set operation (write role); answered with TYPE_UPDATE_REPLY. */
  TYPE_UPDATE: 70,
  TYPE_UPDATE_REPLY: 71,
  /** A counter's value or a set's members (read role). */
  TYPE_READ: 72,
  TYPE_READ_REPLY: 73,
  /** A page of this node's conflict log (role read: records hold values). */
  CONFLICTS: 85,
  CONFLICTS_REPLY: 86,
} as const;

export type MsgTypeName = keyof typeof MsgType;
export type MsgTypeNumber = (typeof MsgType)[MsgTypeName];

const names = new Map<number, MsgTypeName>(Object.entries(MsgType).map(([k, v]) => [v, k as MsgTypeName]));

export function msgTypeName(type: number): MsgTypeName | undefined {
  return names.get(type);
}

/** Types a node accepts as requests (anything else on a server connection
 * is a protocol error). */
export const requestTypes: ReadonlySet<number> = new Set([
  MsgType.HELLO, MsgType.AUTH, MsgType.GET, MsgType.PUT, MsgType.DELETE, MsgType.STATUS, MsgType.RING_GET,
  MsgType.REPLICA_READ, MsgType.REPLICA_WRITE, MsgType.JOIN, MsgType.RING_PUSH, MsgType.PING,
  MsgType.GOSSIP, MsgType.REPLICA_REAP, MsgType.AAE_SEGMENTS, MsgType.AAE_KEYS, MsgType.ADMIN_FAULTS,
  MsgType.NODE_INFO, MsgType.XFER_PAGE, MsgType.XFER_REPORT, MsgType.EXIT_DONE, MsgType.CLUSTER_STAGE,
  MsgType.CLUSTER_PLAN, MsgType.CLUSTER_COMMIT, MsgType.TRANSFER_LIMIT,
  MsgType.TYPE_UPDATE, MsgType.TYPE_READ,
  MsgType.CONFLICTS,
]);

// ---- bodies (as they travel; values are msgpack types) ----

export interface HelloBody {
  readonly protocol: number;
  /** Free text: "tunekv-js/0.1.0", or "node:n2" for a peer. */
  readonly agent: string;
}

export interface HelloOkBody {
  readonly protocol: number;
  readonly nodeId: string;
  readonly ringVersion: number;
}

export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

/** Wire form of a vector clock: [[actor, counter, tsMs], ...]. */
export type WireClock = [string, number, number][];

/** Wire form of a sibling: [actor, counter, tsMs, vtype, lww 0|1, value|null, wid|null]. */
export type WireSibling = [string, number, number, number, number, Uint8Array | null, Uint8Array | null];

/** Wire (and disk) form of a stored object. */
export type WireObject = [WireClock, WireSibling[]];

export interface GetBody {
  readonly key: string;
  readonly consistency?: string;
  readonly r?: number;
  readonly timeoutMs?: number;
  /** A session read: contexts [clock, mac] the session saw of the key (at
   * most sessionContextsPerKeyMax, each signed by this cluster). The reply
   * is at least as new as all of them, or the read fails with
   * SESSION_UNAVAILABLE (server/session-read.ts). */
  readonly atLeast?: [WireClock, Uint8Array][];
  /** The last state the session saw had no live value (session-cover.ts). */
  readonly atLeastDeleted?: boolean;
}

export interface PutBody {
  readonly key: string;
  /** null for DELETE. */
  readonly value?: Uint8Array | null;
  readonly vtype?: number;
  readonly context?: WireClock;
  /** The MAC the context came with (required for a non-empty context from
   * a client). */
  readonly contextMac?: Uint8Array;
  readonly consistency?: string;
  readonly w?: number;
  readonly lww?: boolean;
  readonly timeoutMs?: number;
  /** Client's write id (8-32 bytes), identical on retries of one put. */
  readonly wid?: Uint8Array;
  /** Set by a node that forwarded the request to a replica of the key, so
   * the replica coordinates it instead of forwarding again. */
  readonly forwarded?: boolean;
  /** How many versions this put resolves (the siblings of the read whose
   * context it carries): recorded in the coordinator's conflict log as a
   * `resolver` conflict. kv.update() and a default resolver writing back
   * set it; an integer from 0 to 1,000,000. */
  readonly resolved?: number;
  /** Peers only: the user a forwarding node says wrote this put (for the
   * conflict log); a client's is ignored. */
  readonly by?: string | null;
}

export interface ReplicaReportWire {
  readonly node: string;
  readonly role: string;
  readonly outcome: string;
  readonly stale?: boolean;
  readonly hintFor?: string;
  /** Session reads: this replica's copy was older than the session's state. */
  readonly behind?: boolean;
}

export interface GetReplyBody {
  readonly found: boolean;
  /** The MAC of `context` under the cluster's context key: a put that
   * hands the context back must carry it (src/security/context-mac.ts). */
  readonly contextMac?: Uint8Array;
  /** Live siblings: [vtype, bytes]. */
  readonly values: [number, Uint8Array][];
  /** Tombstones among the siblings (deletes concurrent with values). */
  readonly tombstones: number;
  readonly context: WireClock;
  readonly level: string;
  readonly r: number;
  readonly coordinator: string;
  readonly replicas: ReplicaReportWire[];
  /** Session reads only: replicas asked beyond the first because the first
   * answers were older than the session's state (0: the first were current). */
  readonly lookedFurther?: number;
}

export interface PutReplyBody {
  readonly context: WireClock;
  readonly contextMac?: Uint8Array;
  /** The dot [actor, counter] of the version this write created (or found,
   * for a retry), when it survives on the coordinator. */
  readonly dot?: [string, number] | null;
  /** Versions the key holds after this write on the coordinator. */
  readonly siblings: number;
  readonly level: string;
  readonly w: number;
  readonly coordinator: string;
  readonly replicas: ReplicaReportWire[];
}

export interface ReplicaReadBody { readonly key: string }
export interface ReplicaReadReplyBody { readonly object: WireObject | null }
export interface ReplicaWriteBody {
  readonly key: string;
  readonly object: WireObject;
  /** The primary this write stands in for, when sent to a fallback. */
  readonly hintFor?: string;
}
export interface JoinBody { readonly id: string; readonly addr: string }

/** The reply to TYPE_UPDATE and TYPE_READ: a counter's value as a decimal
 * string (exact at any size: merges may sum past 64 bits), or a set's
 * members (sorted; only TYPE_READ sends them, an update sends the count). */
export interface TypedReplyBody {
  readonly found: boolean;
  readonly value?: string;
  readonly members?: string[];
  readonly size?: number;
  /** Set add or remove: the coordinator's copy held the member before it
   * (a remove answering false observed no add, so it removed nothing). */
  readonly held?: boolean;
  /** A session's request (`session: true` or `atLeast`): the state's
   * version joined with `atLeast`, signed [version, mac]
   * (core/crdt/typed-version.ts, server/session-read.ts). */
  readonly version?: [unknown[], Uint8Array];
  /** Session reads: replicas asked because the first answers were behind. */
  readonly lookedFurther?: number;
  readonly level: string;
  readonly r?: number;
  readonly w?: number;
  readonly coordinator: string;
  readonly replicas: ReplicaReportWire[];
}

/** CONFLICTS: every field optional; records oldest first. */
export interface ConflictsBody {
  readonly key?: string;
  /** Records at or after this wall-clock time, ms. */
  readonly sinceMs?: number;
  /** The `next` of the previous page. */
  readonly afterSeq?: number;
  /** Records wanted, 1..conflictsPageMax. */
  readonly limit?: number;
}

export interface ConflictsReplyBody {
  readonly node: string;
  /** Wire records (server/conflict-log.ts, recordToWire). */
  readonly records: unknown[];
  /** The cursor for the next page, or null after the last. */
  readonly next: number | null;
}
