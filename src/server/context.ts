// What the node's background services (handoff, anti-entropy, reaper) may
// use of the node: its identity, config, clock, storage, failure detector
// and a promise-shaped peer request. One small interface instead of the
// whole node, so each service stays one concept.

import type { Membership } from '../core/membership/membership.js';
import type { Ring } from '../core/ring/ring.js';
import type { NodeConfig } from '../config.js';
import type { Clock } from '../io/clock.js';
import type { Storage } from '../io/storage.js';
import type { EventLog } from './log.js';
import type { ObjectStore } from './object-store.js';

export interface PeerReply {
  readonly type: number;
  readonly body: unknown;
}

export interface NodeContext {
  readonly id: string;
  readonly config: NodeConfig;
  readonly clock: Clock;
  readonly storage: Storage;
  readonly store: ObjectStore;
  readonly membership: Membership;
  readonly ring: Ring | undefined;
  /** A peer request; rejects with the TuneKvError the transport or peer gave. */
  ask(to: string, type: number, body: unknown, timeoutMs?: number): Promise<PeerReply>;
  log(line: string): void;
  /** Structured events (server/log.ts); absent in tests that need none. */
  readonly events?: EventLog;
  /** Object bytes sent to peers for replication, by purpose (metrics). */
  replicationSent?(kind: 'replica' | 'hint' | 'aae' | 'transfer', bytes: number): void;
}

/**
 * A token bucket: `take(n, nowMs)` says how many of n may go now. Holds at
 * most one second of tokens (a burst of `perSecond`), and starts full.
 *
 * `nowMs` should be monotonic (Clock.elapsedMs()): durations must not
 * follow the wall clock. If time still appears to go backwards, no tokens
 * are added or taken away for it: a wall clock stepped back an hour would
 * otherwise leave the bucket an hour in debt and stall handoff and repair.
 */
export class RateLimiter {
  private tokens: number;
  private lastMs: number;

  constructor(private readonly perSecond: number, nowMs: number) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new TypeError(`perSecond (${perSecond}) must be a positive number`);
    this.tokens = perSecond;
    this.lastMs = nowMs;
  }

  take(wanted: number, nowMs: number): number {
    const elapsedMs = Math.max(0, nowMs - this.lastMs);
    this.tokens = Math.min(this.perSecond, this.tokens + (elapsedMs * this.perSecond) / 1000);
    this.lastMs = nowMs;
    const granted = Math.max(0, Math.min(wanted, Math.floor(this.tokens)));
    this.tokens -= granted;
    return granted;
  }
}
