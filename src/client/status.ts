// What kv.status() returns: the node's STATUS reply (src/server/status.ts),
// typed. The summary is what any reader sees; an admin's reply adds the
// node's details (hints, anti-entropy, storage, disk, connections,
// counters, limits, headline metrics), typed here only as far as a client
// can rely on: their inner fields are operational and may grow, so they
// are `Record<string, unknown>` and the index signature keeps fields a
// newer node adds.

/** One member of the node's ring. */
export interface RingMemberStatus {
  readonly id: string;
  readonly addr: string;
  /** 'valid' once it takes part; 'joining' / 'exiting' during a change. */
  readonly state: string;
  /** Partitions it owns as primary, and that share of the ring (0..1). */
  readonly claimed: number;
  readonly share: number;
  /** Partitions it holds a replica of. */
  readonly replicates: number;
}

/** The node's ring: null on a standby node that has not joined yet. */
export interface RingStatus {
  readonly version: number;
  /** Partitions, and replicas per key. */
  readonly q: number;
  readonly n: number;
  readonly members: RingMemberStatus[];
  /** The next owners while a change is in transition, else null. */
  readonly next: unknown;
  /** The transition's plan and partitions per phase, else null. */
  readonly transition: { readonly plan: number; readonly phases: Record<string, number> } | null;
}

/** What the node's failure detector thinks of a peer. */
export interface PeerStatus {
  readonly id: string;
  readonly state: 'up' | 'suspect' | 'down';
  /** When it entered that state (node clock, ms), and for how long. */
  readonly sinceMs: number;
  readonly forMs: number;
  readonly lastHeardAgoMs: number;
  /** Hints the peer reports holding for others. */
  readonly hintsPending: number;
}

export interface NodeStatus {
  readonly nodeId: string;
  /** The node's client address (host:port). */
  readonly addr: string;
  /** It has a ring and has announced itself: it serves requests. */
  readonly ready: boolean;
  readonly uptimeMs: number;
  readonly ring: RingStatus | null;
  readonly peers: PeerStatus[];
  // Admin only (present when the caller has the admin role):
  readonly hints?: Record<string, unknown>;
  readonly antiEntropy?: Record<string, unknown>;
  readonly storage?: Record<string, unknown>;
  readonly disk?: Record<string, unknown>;
  readonly connections?: Record<string, unknown>;
  readonly stats?: Record<string, unknown>;
  readonly limits?: Record<string, number>;
  readonly metrics?: Record<string, unknown>;
  /** Other fields (admin details; fields newer nodes add). */
  readonly [field: string]: unknown;
}
