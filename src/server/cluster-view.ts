// The cluster view: this node's ring, how it changes, and gossip.
//
// Owns the ring value (persisted under m:ring), joining through seeds,
// admitting joiners, pushing and pulling newer rings, and the push-pull
// gossip rounds that feed the failure detector (core/membership).
//
// Invariants:
//   - the ring only moves to a newer version (isNewer), and every ring that
//     is adopted was rebuilt field by field from a validated value
//     (ringFromWire), so nothing a peer adds to a ring is ever stored;
//   - a ring is only pulled from a member's address as *our* ring names it,
//     or from a seed the operator configured, never from an address a
//     caller supplied in a message;
//   - every message handled here comes from a caller that proved the
//     cluster secret (the router refuses the rest), and gossip is still
//     checked against clock skew (membership.merge).

import { Membership, wireHeartbeatsProblem } from '../core/membership/membership.js';
import type { WireHeartbeat } from '../core/membership/membership.js';
import { claim, createRing, memberOf, ringFromWire, ringProblem } from '../core/ring/ring.js';
import type { Ring } from '../core/ring/ring.js';
import type { NodeConfig } from '../config.js';
import { TuneKvError, invalid } from '../errors.js';
import type { Clock } from '../io/clock.js';
import type { PeerTransport, Responder } from '../io/transport.js';
import { pack, unpack } from '../protocol/codec.js';
import { MsgType, protocolVersion } from '../protocol/messages.js';
import type { HelloOkBody } from '../protocol/messages.js';
import { asRecord } from '../protocol/validate.js';
import type { PeerReply } from './context.js';
import type { ObjectStore } from './object-store.js';
import { ringKey } from './keyspace.js';

export interface ClusterViewDeps {
  readonly config: NodeConfig;
  readonly clock: Clock;
  readonly random: () => number;
  readonly store: ObjectStore;
  readonly membership: Membership;
  readonly transport: PeerTransport;
  ask(to: string, type: number, body: unknown, timeoutMs?: number): Promise<PeerReply>;
  hintsPending(): number;
  sleep(ms: number): Promise<void>;
  log(line: string): void;
}

/** Ring order: higher version wins; equal versions with different content
 * (two seeds admitted joins at once) are ordered by their encoding, so every
 * node picks the same one. */
export function isNewer(a: Ring, b: Ring): boolean {
  if (a.version !== b.version) return a.version > b.version;
  return Buffer.compare(pack(a), pack(b)) > 0;
}

export class ClusterView {
  private ringValue: Ring | undefined;
  private announced = false;
  readonly id: string;

  constructor(private readonly d: ClusterViewDeps) {
    this.id = d.config.id;
  }

  get ring(): Ring | undefined {
    return this.ringValue;
  }

  /** True once this node has told its peers it is up. */
  get isAnnounced(): boolean {
    return this.announced;
  }

  requireRing(): Ring {
    if (!this.ringValue) throw new TuneKvError('UNAVAILABLE', `node ${this.id} has not joined a cluster yet`);
    return this.ringValue;
  }

  addrOf(id: string): string | undefined {
    return this.ringValue ? memberOf(this.ringValue, id)?.addr : undefined;
  }

  helloInfo(): HelloOkBody {
    return { protocol: protocolVersion, nodeId: this.id, ringVersion: this.ringValue?.version ?? 0 };
  }

  // ---- lifecycle ----

  /** Loads the stored ring, or founds one (no ring and no seeds). A stored
   * ring that does not validate stops the start: it is this node's own
   * file, and guessing a ring could route writes to the wrong nodes. */
  async load(stored: Uint8Array | undefined): Promise<void> {
    if (stored) this.setRing(ringFromWire(unpack(stored), 'stored ring'));
    const self = { id: this.id, addr: this.d.config.listen };
    if (!this.ringValue && this.d.config.join.length === 0) {
      await this.adoptRing(createRing(this.d.config.q, this.d.config.n, self));
    } else if (this.ringValue && this.d.config.join.length === 0) {
      // Restarted on another address: claim() only updates our address.
      await this.adoptRing(claim(this.ringValue, self));
    }
  }

  /** True when this node must join through its seeds before serving. */
  get needsJoin(): boolean {
    const me = this.ringValue ? memberOf(this.ringValue, this.id) : undefined;
    return this.d.config.join.length > 0 && (me === undefined || me.addr !== this.d.config.listen);
  }

  /** Asks the seeds, in turn, to add this node to the ring, until one
   * answers or joinTimeoutMs passes. */
  async join(): Promise<void> {
    const deadline = this.d.clock.nowMs() + this.d.config.joinTimeoutMs;
    let lastError = 'no seed answered';
    for (let attempt = 0; ; attempt++) {
      for (const seed of this.d.config.join) {
        if (seed === this.d.config.listen) continue;
        const result = await this.askSeed(seed);
        if (result === null) return;
        lastError = result;
      }
      if (this.d.clock.nowMs() >= deadline) throw new Error(`could not join through ${this.d.config.join.join(', ')}: ${lastError}`);
      await this.d.sleep(Math.min(1000, 100 * (attempt + 1)));
    }
  }

  private askSeed(seed: string): Promise<string | null> {
    return new Promise((resolve) => {
      this.d.transport.requestAddr(seed, MsgType.JOIN, { id: this.id, addr: this.d.config.listen }, this.d.config.requestTimeoutMs,
        (err, _type, body) => {
          if (err) {
            const hint = err.code === 'UNAUTHORIZED' ? ' (every node of a cluster needs the same --secret-file)' : '';
            resolve(`${seed}: ${err.message}${hint}`);
            return;
          }
          let ring: Ring;
          try {
            ring = ringFromWire((body as { ring?: unknown } | null)?.ring);
          } catch (e) {
            resolve(`${seed}: ${(e as Error).message}`);
            return;
          }
          this.adoptRing(ring).then(() => resolve(null), (e: Error) => resolve(e.message));
        });
    });
  }

  /**
   * Tells every peer this node is (back) up, so they use it at once rather
   * than after their retry delay, and learns of a newer ring through the
   * handshake. Waits for the answers (or failures); a node reports ready in
   * its status only after this.
   */
  async announce(): Promise<void> {
    const ring = this.ringValue;
    const peers = ring ? ring.members.filter((m) => m.id !== this.id) : [];
    await Promise.all(peers.map((m) => this.d.ask(m.id, MsgType.PING, {}, this.d.config.peerConnectTimeoutMs).catch(() => undefined)));
    this.announced = true;
  }

  // ---- the ring ----

  private setRing(ring: Ring): void {
    this.ringValue = ring;
    this.d.membership.track(ring.members.map((m) => m.id), this.d.clock.nowMs());
  }

  /** Replaces the ring when `ring` is newer; persists it. */
  async adoptRing(ring: Ring): Promise<boolean> {
    const mine = this.ringValue;
    if (mine && !isNewer(ring, mine)) return false;
    this.setRing(ring);
    await this.d.store.writeRaw({ key: ringKey, value: pack(ring) });
    if (!mine || mine.members.length !== ring.members.length) {
      this.d.log(`ring v${ring.version}: ${ring.members.map((m) => `${m.id}@${m.addr}`).join(', ')}`);
    }
    return true;
  }

  private pushRing(ring: Ring): void {
    for (const m of ring.members) {
      if (m.id === this.id) continue;
      this.d.ask(m.id, MsgType.RING_PUSH, { ring }).catch(() => {});
    }
  }

  /** Fetches the ring from an address this node chose (a member's address
   * in our ring, or a configured seed) and adopts it if newer. */
  pullRingFrom(addr: string): void {
    this.d.transport.requestAddr(addr, MsgType.RING_GET, {}, this.d.config.requestTimeoutMs, (err, _t, body) => {
      if (err) return;
      let ring: Ring;
      try {
        ring = ringFromWire((body as { ring?: unknown } | null)?.ring);
      } catch (e) {
        this.d.log(`ring from ${addr} refused: ${(e as Error).message}`);
        return;
      }
      this.adoptRing(ring).catch((e: Error) => this.d.log(`ring not stored: ${e.message}`));
    });
  }

  /** A proven peer says its ring is newer: pull from its address in ours. */
  peerRingVersion(peer: string, version: unknown): void {
    if (typeof version !== 'number' || version <= (this.ringValue?.version ?? 0)) return;
    const addr = this.addrOf(peer);
    if (addr) this.pullRingFrom(addr);
  }

  // ---- requests from peers ----

  onJoin(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'JOIN');
    if (typeof b.id !== 'string' || typeof b.addr !== 'string') throw invalid('JOIN needs id and addr');
    const ring = this.requireRing();
    let next: Ring;
    try {
      next = claim(ring, { id: b.id, addr: b.addr });
    } catch (err) {
      throw invalid((err as Error).message);
    }
    const problem = ringProblem(next);
    if (problem) throw invalid(`JOIN refused: ${problem}`);
    if (next !== ring) {
      // Adopt synchronously so a concurrent JOIN claims on top of this one.
      this.setRing(next);
      this.d.store.writeRaw({ key: ringKey, value: pack(next) }).catch((e: Error) => this.d.log(`ring not stored: ${e.message}`));
      this.d.log(`${b.id} joined at ${b.addr}: ring v${next.version}`);
      this.pushRing(next);
    }
    respond(MsgType.RING_REPLY, { ring: next });
  }

  onRingPush(body: unknown, respond: Responder): void {
    const ring = ringFromWire(asRecord(body, 'RING_PUSH').ring);
    this.adoptRing(ring).catch((e: Error) => this.d.log(`ring not stored: ${e.message}`));
    respond(MsgType.OK, null);
  }

  onGossip(body: unknown, respond: Responder, peer: string | undefined): void {
    const b = asRecord(body, 'GOSSIP');
    const problem = wireHeartbeatsProblem(b.table);
    if (problem) throw invalid(problem);
    this.d.membership.merge(b.table as WireHeartbeat[], this.d.clock.nowMs());
    if (peer !== undefined) this.peerRingVersion(peer, b.ringVersion);
    respond(MsgType.GOSSIP_REPLY, { table: this.d.membership.table(), ringVersion: this.ringValue?.version ?? 0 });
  }

  // ---- gossip rounds ----

  /** Push-pull gossip with a few peers. */
  async gossipRound(): Promise<void> {
    const now = this.d.clock.nowMs();
    const table = this.d.membership.tick(now, this.d.hintsPending());
    const body = { table, ringVersion: this.ringValue?.version ?? 0 };
    const peers = this.d.membership.gossipTargets(this.d.config.gossipFanout, this.d.random);
    await Promise.all(peers.map(async (peer) => {
      try {
        const r = await this.d.ask(peer, MsgType.GOSSIP, body, this.d.config.gossipIntervalMs * 4);
        this.onGossipReply(peer, r.body);
      } catch {
        // The detector learns from silence and refusals; nothing else to do.
      }
    }));
    this.d.membership.refresh(this.d.clock.nowMs());
  }

  private onGossipReply(peer: string, body: unknown): void {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { table?: unknown; ringVersion?: unknown };
    if (wireHeartbeatsProblem(b.table) !== null) return;
    this.d.membership.merge(b.table as WireHeartbeat[], this.d.clock.nowMs());
    this.peerRingVersion(peer, b.ringVersion);
  }
}
