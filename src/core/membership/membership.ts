// Gossip membership and failure detection, as a pure state machine.
//
// Every node keeps a table of heartbeats: for each member, (generation,
// counter, hintsPending). A node bumps its own counter every gossip round
// and sends its table to a few random peers; receivers keep, per member, the
// larger (generation, counter), and note *when they saw it grow*. A member
// whose heartbeat has not grown for suspectAfterMs is `suspect`, for
// downAfterMs `down` (a heartbeat detector, as in Cassandra's gossip before
// phi; thresholds are config). A refused connection is direct evidence: the
// peer is `down` at once, until its heartbeat grows again. The generation is
// the node's start time, so a restarted node's fresh counter still wins.
//
// Invariants: heartbeats only move forward; a node never suspects itself;
// time and randomness come in as arguments, so the same inputs give the same
// states in the simulator and on real nodes.

import { limits } from '../../limits.js';

export type PeerState = 'up' | 'suspect' | 'down';

export interface Heartbeat {
  readonly generation: number;
  readonly counter: number;
  /** Hints the member holds for others: reaping tombstones waits for zero. */
  readonly hintsPending: number;
}

/** Wire form: [id, generation, counter, hintsPending]. */
export type WireHeartbeat = [string, number, number, number];

interface PeerView {
  hb: Heartbeat;
  /** Local time the heartbeat last grew (or the peer was first heard of). */
  grewAtMs: number;
  state: PeerState;
  sinceMs: number;
  /** Direct evidence of failure, cleared by the next heartbeat growth. */
  refusedAtMs: number | undefined;
}

export interface DetectorConfig {
  readonly suspectAfterMs: number;
  readonly downAfterMs: number;
}

/**
 * A heartbeat from the future is forged or from a badly skewed clock, and
 * believing it would keep a member's real heartbeats from ever counting
 * again (a generation of 2^52 would keep a healthy node `down` forever).
 * Generations are start times, so one more than gossipClockSkewMaxMs ahead
 * of our clock is refused; and a counter grows at most once per
 * gossipIntervalMinMs, so one above what its generation's age allows is
 * refused too. Both are counted (`refusedHeartbeats`).
 */
export function heartbeatFromFuture(generation: number, counter: number, nowMs: number): boolean {
  const horizonMs = nowMs + limits.gossipClockSkewMaxMs;
  if (generation > horizonMs) return true;
  return counter > Math.max(0, horizonMs - generation) / limits.gossipIntervalMinMs + 1;
}

export interface PeerStatus {
  readonly id: string;
  readonly state: PeerState;
  readonly sinceMs: number;
  readonly lastHeardMs: number;
  readonly heartbeat: Heartbeat;
}

function newer(a: Heartbeat, b: Heartbeat): boolean {
  return a.generation > b.generation || (a.generation === b.generation && a.counter > b.counter);
}

export class Membership {
  private readonly peers = new Map<string, PeerView>();
  /** Heartbeats ignored because they came from the future. */
  refusedHeartbeats = 0;
  private own: Heartbeat;
  /** The last time this node looked at the clock here. */
  private lastSeenMs: number | undefined;
  /** Called on every state change of a peer (metrics, convergence timing). */
  onTransition: ((id: string, from: PeerState, to: PeerState, nowMs: number) => void) | undefined;

  constructor(readonly self: string, generation: number, private readonly cfg: DetectorConfig) {
    this.own = { generation, counter: 0, hintsPending: 0 };
  }

  /** Starts tracking members of the ring; unknown ones start `up` (as if
   * heard now) so a fresh node does not declare the cluster dead. */
  track(ids: readonly string[], nowMs: number): void {
    for (const id of ids) {
      if (id === this.self || this.peers.has(id)) continue;
      this.peers.set(id, {
        hb: { generation: 0, counter: 0, hintsPending: 0 }, grewAtMs: nowMs, state: 'up', sinceMs: nowMs, refusedAtMs: undefined,
      });
    }
    for (const id of [...this.peers.keys()]) if (!ids.includes(id)) this.peers.delete(id);
  }

  /** A gossip round: bump our heartbeat, return our table to send. */
  tick(nowMs: number, hintsPending: number): WireHeartbeat[] {
    this.own = { generation: this.own.generation, counter: this.own.counter + 1, hintsPending };
    this.refresh(nowMs);
    return this.table();
  }

  table(): WireHeartbeat[] {
    const out: WireHeartbeat[] = [[this.self, this.own.generation, this.own.counter, this.own.hintsPending]];
    for (const [id, v] of this.peers) out.push([id, v.hb.generation, v.hb.counter, v.hb.hintsPending]);
    return out;
  }

  /** Merges a received table. */
  merge(table: readonly WireHeartbeat[], nowMs: number): void {
    this.noticeStall(nowMs);
    for (const entry of table) {
      const [id, generation, counter, hintsPending] = entry;
      if (id === this.self) continue;
      const v = this.peers.get(id);
      if (!v) continue;
      if (heartbeatFromFuture(generation, counter, nowMs)) {
        this.refusedHeartbeats++;
        continue;
      }
      const hb = { generation, counter, hintsPending };
      if (newer(hb, v.hb)) {
        v.hb = hb;
        v.grewAtMs = nowMs;
        v.refusedAtMs = undefined;
      }
    }
    this.refresh(nowMs);
  }

  /** A connection to the peer was refused: it is down now. */
  refused(id: string, nowMs: number): void {
    const v = this.peers.get(id);
    if (!v) return;
    v.refusedAtMs = nowMs;
    this.setState(v, 'down', nowMs, id);
  }

  /** The peer spoke to us directly (a request or a handshake). */
  heardFrom(id: string, nowMs: number): void {
    const v = this.peers.get(id);
    if (!v || v.refusedAtMs === undefined) return;
    // A refusal is overruled by the peer itself reaching us after it.
    if (nowMs > v.refusedAtMs) {
      v.refusedAtMs = undefined;
      v.grewAtMs = nowMs;
      this.refresh(nowMs);
    }
  }

  isUp(id: string): boolean {
    if (id === this.self) return true;
    return this.peers.get(id)?.state === 'up';
  }

  stateOf(id: string): PeerState {
    if (id === this.self) return 'up';
    return this.peers.get(id)?.state ?? 'down';
  }

  /**
   * A gap longer than suspectAfterMs since this node last looked means *it*
   * was stalled (SIGSTOP, a long GC pause, a suspended VM), not that every
   * peer went silent: the silence is ours, so every peer gets a fresh grace
   * period instead of being declared down the moment we wake up.
   */
  private noticeStall(nowMs: number): void {
    if (this.lastSeenMs !== undefined && nowMs - this.lastSeenMs > this.cfg.suspectAfterMs) {
      for (const v of this.peers.values()) v.grewAtMs = Math.max(v.grewAtMs, nowMs);
    }
    this.lastSeenMs = nowMs;
  }

  /** Re-evaluates every peer's state against the thresholds. */
  refresh(nowMs: number): void {
    this.noticeStall(nowMs);
    for (const [id, v] of this.peers) {
      const silentMs = nowMs - v.grewAtMs;
      const state: PeerState = v.refusedAtMs !== undefined || silentMs >= this.cfg.downAfterMs ? 'down'
        : silentMs >= this.cfg.suspectAfterMs ? 'suspect' : 'up';
      this.setState(v, state, nowMs, id);
    }
  }

  private setState(v: PeerView, state: PeerState, nowMs: number, id?: string): void {
    if (v.state === state) return;
    const from = v.state;
    v.state = state;
    v.sinceMs = nowMs;
    if (id !== undefined) this.onTransition?.(id, from, state, nowMs);
  }

  /** Chooses up to `fanout` peers to gossip with: live ones first, and
   * one non-live peer now and then so a recovered node is noticed. */
  gossipTargets(fanout: number, random: () => number): string[] {
    const ids = [...this.peers.keys()].sort();
    const live = ids.filter((id) => this.peers.get(id)!.state !== 'down');
    const dead = ids.filter((id) => this.peers.get(id)!.state === 'down');
    const out: string[] = [];
    const pool = [...live];
    while (out.length < fanout && pool.length > 0) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!);
    if (dead.length > 0 && random() < 0.5) out.push(dead[Math.floor(random() * dead.length)]!);
    return out;
  }

  statuses(): PeerStatus[] {
    return [...this.peers.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([id, v]) => ({
      id, state: v.state, sinceMs: v.sinceMs, lastHeardMs: v.grewAtMs, heartbeat: v.hb,
    }));
  }

  /** When the peer's heartbeat last grew (local time), and its hint count. */
  lastHeard(id: string): { atMs: number; hintsPending: number } | undefined {
    const v = this.peers.get(id);
    return v && { atMs: v.grewAtMs, hintsPending: v.hb.hintsPending };
  }
}

export function wireHeartbeatsProblem(value: unknown): string | null {
  if (!Array.isArray(value)) return 'heartbeats must be an array';
  if (value.length > limits.nodesMax) return `heartbeats list more than ${limits.nodesMax} members`;
  for (const e of value as unknown[]) {
    if (!Array.isArray(e) || e.length !== 4 || typeof e[0] !== 'string' || e[0].length > 64
      || !e.slice(1).every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
      return 'heartbeat entry must be [id, generation, counter, hintsPending] with non-negative integers';
    }
  }
  return null;
}
