// What the node's background services (handoff, anti-entropy, reaper) may
// use of the node: its identity, config, clock, storage, failure detector
// and a promise-shaped peer request. One small interface instead of the
// whole node, so each service stays one concept.

import type { Membership } from '../core/membership/membership.js';
import type { Ring } from '../core/ring/ring.js';
import type { NodeConfig } from '../config.js';
import type { Clock } from '../io/clock.js';
import type { Storage } from '../io/storage.js';
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
}

/** A token bucket: `take(n)` says how many of n may go now. */
export class RateLimiter {
  private tokens: number;
  private lastMs: number;

  constructor(private readonly perSecond: number, nowMs: number) {
    this.tokens = perSecond;
    this.lastMs = nowMs;
  }

  take(wanted: number, nowMs: number): number {
    this.tokens = Math.min(this.perSecond, this.tokens + ((nowMs - this.lastMs) * this.perSecond) / 1000);
    this.lastMs = nowMs;
    const granted = Math.max(0, Math.min(wanted, Math.floor(this.tokens)));
    this.tokens -= granted;
    return granted;
  }
}
