// Ownership transfers: the receiving side of a transition, and the sweep
// that sends data on non-owners to the owners before dropping it.
//
// For every partition this node must receive (transition.ts: receivers):
//   transfer  stream the partition from a live current replica, a page at
//             a time (at most transferPageKeysMax keys / transferPageBytesMax
//             bytes), merging each object into the local store; the cursor
//             (the last storage key merged) is kept on disk after every
//             page, so a crash on either side resumes where it stopped (from
//             another replica if the first is gone). Then tell the claimant
//             `streamed`.
//   catchup   exchange the partition with every live current replica by
//             anti-entropy (at least a majority of them must take part), so
//             every write acknowledged before the seal is here; then tell
//             the claimant `caughtup`.
// The whole node receives at most transferMBps (changeable while running).
//
// The sweep: a partition this node holds in neither the current nor the
// next replica set, but still has objects in (it handed it off, it is
// exiting, or it was down through a change), is sent key by key to the
// partition's live holders (all of them, and at least a majority of N must
// be up and acknowledge), and each key is then removed only if it has not
// changed since (compare-and-delete). A key this node keeps a hint for is a
// fallback's copy: hinted handoff owns it. Partitions still to sweep count
// as pending hints in gossip, so no tombstone is reaped while old data
// could still come back from a sweep.
//
// An exiting node, once it holds no data and no hints, tells the claimant
// (EXIT_DONE) and shuts itself down.

import { objectBytes, sameVersions } from '../core/clock/object.js';
import type { VersionedObject } from '../core/clock/object.js';
import { majority } from '../core/quorum/tally.js';
import { stateOf, memberOf } from '../core/ring/ring.js';
import type { Ring } from '../core/ring/ring.js';
import { claimant, curPrimaries, holders, holds, inTransition, phaseOf, Phase, receivers } from '../core/ring/transition.js';
import { invalid } from '../errors.js';
import { limits } from '../limits.js';
import { pack, unpack } from '../protocol/codec.js';
import { MsgType } from '../protocol/messages.js';
import { decodeObject, objectFromWire, objectToWire } from '../protocol/object-codec.js';
import { asRecord } from '../protocol/validate.js';
import type { Responder } from '../io/transport.js';
import { unknown as unknownState } from './object-store.js';
import { answer } from './replies.js';
import type { NodeContext } from './context.js';
import { partitionKeyRange, userKeyOf } from './keyspace.js';

export interface TransferStats {
  /** Partitions this node still has to receive in the current plan. */
  partitionsPending: number;
  partitionsStreamed: number;
  partitionsCaughtUp: number;
  keysReceived: number;
  bytesReceived: number;
  pagesServed: number;
  pageFailures: number;
  catchupFailures: number;
  /** Partitions held by nobody here that still hold data (sweep pending). */
  sweepPending: number;
  keysSwept: number;
  /** Estimated seconds left for this node's streams, or null. */
  etaSeconds: number | null;
}

export interface TransferDeps {
  /** Merges an object into the local store (no hint); resolves when durable. */
  mergeLocal(key: string, obj: VersionedObject): Promise<void>;
  /** Anti-entropy exchange of the whole of partition p with peer (every
   * differing segment, not one round's cap); throws if it failed. */
  exchange(ring: Ring, p: number, peer: string): Promise<number>;
  /** True when this node holds a hint for the storage key (a fallback copy). */
  hasHint(storageKey: string): boolean;
  hintsPending(): number;
  /** Keys this node stores in partition p (a q-partition ring) whose
   * storage keys sort after `after`'s segment (all: after null). */
  keysAfter(p: number, q: number, after: string | null): number;
  /** The node is exiting and has handed everything off. */
  onExited(): void;
}

const xferPrefix = 'm:xfer:';
/** A receiver re-sends an unanswered report at most this often. */
const reportEveryMs = 1000;
const sweepEveryMs = 1000;
/** Longest single sleep while waiting for transfer tokens. */
const tokenWaitStepMs = 250;

export class Transfers {
  readonly stats: TransferStats = {
    partitionsPending: 0, partitionsStreamed: 0, partitionsCaughtUp: 0, keysReceived: 0, bytesReceived: 0,
    // Unknown until the first sweep has looked: counted as pending.
    pagesServed: 0, pageFailures: 0, catchupFailures: 0, sweepPending: 1, keysSwept: 0, etaSeconds: null,
  };
  /** MB/s this node receives at most (config.transferMBps, changeable). */
  mbps: number;
  private tokens: number;
  private lastRefillMs: number;
  private running = false;
  private again = false;
  private readonly reportedAt = new Map<string, number>();
  private readonly streaming = new Set<string>();
  private readonly caughtUp = new Set<string>();
  /** Keys still to come per partition being streamed (plan/p): what the
   * source holds in it less what came so far (an estimate: the source's
   * partition changes while it streams). */
  private readonly remaining = new Map<string, number>();
  private lastSweepMs = Number.NEGATIVE_INFINITY;
  /** Where the ETA's rate is measured from: the plan's first page. */
  private etaFrom = { plan: -1, ms: 0, keys: 0 };
  private exitSent = false;

  constructor(private readonly ctx: NodeContext, private readonly d: TransferDeps) {
    this.mbps = ctx.config.transferMBps;
    this.tokens = this.mbps * 1e6;
    this.lastRefillMs = ctx.clock.elapsedMs();
  }

  setLimit(mbps: number): void {
    if (!(mbps >= limits.transferMBpsMin && mbps <= limits.transferMBpsMax)) {
      throw invalid(`transfer limit must be a number of MB/s from ${limits.transferMBpsMin} to ${limits.transferMBpsMax}`);
    }
    this.mbps = mbps;
    this.tokens = Math.min(this.tokens, mbps * 1e6);
    this.ctx.log(`${this.ctx.id} transfer limit ${mbps} MB/s`);
  }

  /** Runs a pass now (a new ring arrived), or right after the current one.
   * Until that pass's sweep has looked, this node says it may have data to
   * sweep (a tombstone must not be reaped meanwhile). */
  kick(): void {
    this.stats.sweepPending = Math.max(1, this.stats.sweepPending);
    this.lastSweepMs = Number.NEGATIVE_INFINITY;
    if (this.running) { this.again = true; return; }
    void this.run();
  }

  async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    } catch (err) {
      this.ctx.log(`${this.ctx.id} transfer pass failed: ${(err as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async pass(): Promise<void> {
    const ring = this.ctx.ring;
    if (!ring) {
      // On standby: no ring, so no data of any partition to sweep.
      this.stats.sweepPending = 0;
      return;
    }
    const me = memberOf(ring, this.ctx.id);
    if (inTransition(ring) && me) {
      const plan = ring.plan ?? 0;
      const todo: number[] = [];
      const catchups: number[] = [];
      let pending = 0;
      for (let p = 0; p < ring.q; p++) {
        if (!receivers(ring, p).includes(this.ctx.id)) continue;
        const ph = phaseOf(ring, p);
        if (ph === Phase.transfer) {
          pending++;
          if ((await this.cursor(plan, p)).done) { pending--; this.report(plan, p, 'streamed'); } else todo.push(p);
        } else if (ph === Phase.catchup) {
          if (this.caughtUp.has(`${plan}/${p}`)) this.report(plan, p, 'caughtup'); else catchups.push(p);
        }
      }
      this.stats.partitionsPending = pending;
      await Promise.all([
        this.forEachLimited(todo, (p) => this.stream(ring, plan, p)),
        this.forEachLimited(catchups, (p) => this.catchup(ring, plan, p)),
      ]);
      this.updateEta();
    } else {
      this.stats.partitionsPending = 0;
      this.stats.etaSeconds = null;
      if (!inTransition(ring)) await this.forgetCursors();
    }
    const now = this.ctx.clock.elapsedMs();
    if (now - this.lastSweepMs >= sweepEveryMs) {
      this.lastSweepMs = now;
      await this.sweep(ring);
    }
    if (me && stateOf(me) === 'exiting') await this.maybeExit(ring);
  }

  private async forEachLimited(items: number[], fn: (p: number) => Promise<void>): Promise<void> {
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < items.length) await fn(items[i++]!);
    };
    await Promise.all(Array.from({ length: Math.min(limits.transfersInFlightMax, items.length) }, worker));
  }

  private report(plan: number, p: number, what: 'streamed' | 'caughtup'): void {
    const ring = this.ctx.ring;
    if (!ring) return;
    const key = `${plan}/${p}/${what}`;
    const now = this.ctx.clock.elapsedMs();
    if (now - (this.reportedAt.get(key) ?? Number.NEGATIVE_INFINITY) < reportEveryMs) return;
    this.reportedAt.set(key, now);
    const lead = claimant(ring, (id) => this.ctx.membership.isUp(id));
    this.ctx.ask(lead, MsgType.XFER_REPORT, { plan, partition: p, what }).catch(() => this.reportedAt.delete(key));
  }

  // ---- streaming ----

  private cursorKey(plan: number, p: number): string {
    return `${xferPrefix}${plan}:${p}`;
  }

  private async cursor(plan: number, p: number): Promise<{ after: string | null; done: boolean }> {
    const raw = await this.ctx.storage.get(this.cursorKey(plan, p));
    if (!raw) return { after: null, done: false };
    try {
      const v = unpack(raw) as { after?: unknown; done?: unknown };
      return { after: typeof v.after === 'string' ? v.after : null, done: v.done === true };
    } catch {
      return { after: null, done: false };
    }
  }

  private async waitTokens(): Promise<void> {
    for (;;) {
      const now = this.ctx.clock.elapsedMs();
      const cap = this.mbps * 1e6;
      this.tokens = Math.min(cap, this.tokens + ((now - this.lastRefillMs) / 1000) * cap);
      this.lastRefillMs = now;
      if (this.tokens > 0) return;
      // Sleep in short steps: a limit raised meanwhile (transfer-limit)
      // takes effect within one step, not after a wait the old limit set.
      const waitMs = Math.min(tokenWaitStepMs, Math.max(5, Math.ceil((-this.tokens / cap) * 1000)));
      await new Promise<void>((resolve) => { this.ctx.clock.setTimer(waitMs, resolve); });
    }
  }

  /** Streams partition p from a live current replica, resuming from the
   * stored cursor; a failed page ends this attempt (the next pass resumes). */
  private async stream(ring: Ring, plan: number, p: number): Promise<void> {
    const tag = `${plan}/${p}`;
    if (this.streaming.has(tag)) return;
    this.streaming.add(tag);
    try {
      let { after } = await this.cursor(plan, p);
      const sources = curPrimaries(ring, p).filter((id) => id !== this.ctx.id && this.ctx.membership.isUp(id));
      if (sources.length === 0) return;
      // Spread the load: receivers of different partitions pick different sources.
      const source = sources[p % sources.length]!;
      for (;;) {
        if (this.ctx.ring !== ring && (this.ctx.ring?.plan !== plan || phaseOf(this.ctx.ring, p) !== Phase.transfer)) return;
        await this.waitTokens();
        let page: ReturnType<typeof pageFromWire>;
        try {
          const r = await this.ctx.ask(source, MsgType.XFER_PAGE, { partition: p, q: ring.q, after });
          page = pageFromWire(r.body);
        } catch (err) {
          this.stats.pageFailures++;
          this.ctx.log(`${this.ctx.id} transfer of partition ${p} from ${source} paused: ${(err as Error).message}`);
          return;
        }
        // The source counts the stored bytes it sent: that is what the limit meters.
        const bytes = page.bytes;
        if (this.etaFrom.plan !== plan) this.etaFrom = { plan, ms: this.ctx.clock.elapsedMs(), keys: this.stats.keysReceived };
        await Promise.all(page.entries.map(([key, wire]) => this.d.mergeLocal(key, objectFromWire(wire))));
        this.tokens -= bytes;
        this.stats.keysReceived += page.entries.length;
        this.stats.bytesReceived += bytes;
        this.remaining.set(tag, page.remaining);
        this.updateEta();
        after = page.last ?? after;
        await this.ctx.store.writeRaw({ key: this.cursorKey(plan, p), value: pack({ after, done: page.done }) });
        if (page.done) break;
      }
      this.remaining.delete(tag);
      this.stats.partitionsStreamed++;
      this.stats.partitionsPending = Math.max(0, this.stats.partitionsPending - 1);
      this.report(plan, p, 'streamed');
    } finally {
      this.streaming.delete(tag);
    }
  }

  /** ETA: keys still to come over the rate pages arrived at since this
   * plan's first page (the limit and the sources decide that rate). */
  private updateEta(): void {
    let left = 0;
    for (const v of this.remaining.values()) left += v;
    // Partitions not started yet: as many keys as the average one streamed.
    const notStarted = Math.max(0, this.stats.partitionsPending - this.remaining.size);
    if (notStarted > 0 && this.stats.partitionsStreamed > 0) left += notStarted * (this.stats.keysReceived / this.stats.partitionsStreamed);
    const now = this.ctx.clock.elapsedMs();
    const received = this.stats.keysReceived - this.etaFrom.keys;
    const seconds = (now - this.etaFrom.ms) / 1000;
    this.stats.etaSeconds = left > 0 && received > 0 && seconds > 0 ? Math.round(left / (received / seconds) * 10) / 10 : null;
  }

  /** Serves one page of partition p to a receiver. */
  onPage(body: unknown, respond: Responder): void {
    const b = asRecord(body, 'XFER_PAGE');
    const ring = this.ctx.ring;
    if (!ring || b.q !== ring.q || !Number.isInteger(b.partition) || (b.partition as number) < 0 || (b.partition as number) >= ring.q) {
      throw invalid('XFER_PAGE needs a partition of this ring');
    }
    if (b.after !== undefined && b.after !== null && (typeof b.after !== 'string' || b.after.length > 2048)) throw invalid('XFER_PAGE after must be a storage key');
    const p = b.partition as number;
    const range = partitionKeyRange(p, ring.q);
    const after = typeof b.after === 'string' && b.after >= range.gte ? `${b.after}\0` : range.gte;
    this.stats.pagesServed++;
    answer(respond, MsgType.XFER_PAGE_REPLY, this.page(after, range.lt, (last) => this.d.keysAfter(p, ring.q, last)));
  }

  private async page(gte: string, lt: string, keysAfter: (last: string | null) => number): Promise<Record<string, unknown>> {
    const rows = await this.ctx.storage.range({ gte, lt, limit: limits.transferPageKeysMax });
    const entries: [string, unknown][] = [];
    let bytes = 0;
    let last: string | null = null;
    for (const [sk, raw] of rows) {
      last = sk;
      const key = userKeyOf(sk);
      // A pending write (or the cache) may be newer than the bytes the scan
      // read; otherwise those bytes are what storage holds. (Reading every
      // key through the store cost a LevelDB get per key already scanned.)
      const known = this.ctx.store.peek(key);
      let obj: VersionedObject | undefined = known === unknownState ? undefined : known;
      if (obj === undefined) {
        try { obj = decodeObject(raw); } catch { continue; }
      }
      entries.push([key, objectToWire(obj)]);
      bytes += sk.length + raw.length;
      if (bytes >= limits.transferPageBytesMax) break;
    }
    const done = rows.length < limits.transferPageKeysMax && (last === null || last === rows[rows.length - 1]![0]);
    // What is left: the keys stored in the partition's segments after the
    // one this page ended in (storage keys sort by hash, so by segment),
    // counted without a scan; the rest of that segment is not counted.
    const remaining = done ? 0 : Math.max(1, keysAfter(last));
    // The page goes to the receiver in our reply: bytes this node sends.
    this.ctx.replicationSent?.('transfer', bytes);
    return { entries, last, done, remaining, bytes };
  }

  // ---- catch-up ----

  private async catchup(ring: Ring, plan: number, p: number): Promise<void> {
    const peers = curPrimaries(ring, p).filter((id) => id !== this.ctx.id);
    const live = peers.filter((id) => this.ctx.membership.isUp(id));
    const cur = curPrimaries(ring, p);
    const inCur = cur.includes(this.ctx.id) ? 1 : 0;
    if (live.length + inCur < majority(cur.length)) return;
    try {
      for (const peer of live) await this.d.exchange(ring, p, peer);
    } catch (err) {
      this.stats.catchupFailures++;
      this.ctx.log(`${this.ctx.id} catch-up of partition ${p} failed: ${(err as Error).message}; retrying`);
      return;
    }
    this.caughtUp.add(`${plan}/${p}`);
    this.stats.partitionsCaughtUp++;
    this.report(plan, p, 'caughtup');
  }

  private async forgetCursors(): Promise<void> {
    const old = await this.ctx.storage.range({ gte: xferPrefix, lt: `${xferPrefix}~`, limit: 256 });
    for (const [k] of old) await this.ctx.store.writeRaw({ key: k, value: null });
    if (old.length === 0) this.caughtUp.clear();
  }

  // ---- the sweep ----

  private async sweep(ring: Ring): Promise<void> {
    let pending = 0;
    for (let p = 0; p < ring.q; p++) {
      if (holds(ring, this.ctx.id, p)) continue;
      const range = partitionKeyRange(p, ring.q);
      const any = await this.ctx.storage.range({ ...range, limit: 1 });
      if (any.length === 0) continue;
      const left = await this.sweepPartition(ring, p, range);
      if (left > 0) pending++;
    }
    this.stats.sweepPending = pending;
  }

  /** Sends every unhinted key of partition p to its holders, then drops it
   * if unchanged. Returns how many keys stayed (hinted, or not delivered). */
  private async sweepPartition(ring: Ring, p: number, range: { gte: string; lt: string }): Promise<number> {
    const targets = holders(ring, p).filter((id) => id !== this.ctx.id);
    const live = targets.filter((id) => this.ctx.membership.isUp(id));
    let gte = range.gte;
    let kept = 0;
    for (;;) {
      const rows = await this.ctx.storage.range({ gte, lt: range.lt, limit: 256 });
      for (const [sk] of rows) {
        if (this.d.hasHint(sk)) { kept++; continue; }
        if (live.length < targets.length || live.length < majority(ring.n)) { kept++; continue; }
        const key = userKeyOf(sk);
        const obj = await this.ctx.store.read(key).catch(() => undefined);
        if (!obj) continue;
        try {
          this.ctx.replicationSent?.('transfer', objectBytes(obj) * live.length);
          await Promise.all(live.map((t) => this.ctx.ask(t, MsgType.REPLICA_WRITE, { key, object: objectToWire(obj) })));
        } catch {
          kept++;
          continue;
        }
        if (await this.ctx.store.remove(key, (cur) => sameVersions(cur, obj)).catch(() => false)) this.stats.keysSwept++;
        else kept++;
      }
      if (rows.length < 256) break;
      gte = `${rows[rows.length - 1]![0]}\0`;
    }
    return kept;
  }

  // ---- exiting ----

  private async maybeExit(ring: Ring): Promise<void> {
    if (this.exitSent || this.stats.sweepPending > 0 || this.d.hintsPending() > 0) return;
    for (let p = 0; p < ring.q; p++) {
      const any = await this.ctx.storage.range({ ...partitionKeyRange(p, ring.q), limit: 1 });
      if (any.length > 0) return;
    }
    const lead = claimant(ring, (id) => this.ctx.membership.isUp(id));
    try {
      await this.ctx.ask(lead, MsgType.EXIT_DONE, {});
    } catch {
      return;
    }
    this.exitSent = true;
    this.ctx.log(`${this.ctx.id} handed off everything and leaves the cluster`);
    this.d.onExited();
  }
}

function pageFromWire(body: unknown): { entries: [string, unknown][]; last: string | null; done: boolean; remaining: number; bytes: number } {
  const b = asRecord(body, 'XFER_PAGE_REPLY');
  if (!Array.isArray(b.entries) || b.entries.length > limits.transferPageKeysMax) throw invalid('XFER_PAGE_REPLY entries malformed');
  for (const e of b.entries as unknown[]) if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string') throw invalid('XFER_PAGE_REPLY entry malformed');
  if (b.last !== null && typeof b.last !== 'string') throw invalid('XFER_PAGE_REPLY last malformed');
  return {
    entries: b.entries as [string, unknown][], last: b.last as string | null, done: b.done === true,
    remaining: typeof b.remaining === 'number' && Number.isFinite(b.remaining) ? b.remaining : 0,
    bytes: typeof b.bytes === 'number' && Number.isFinite(b.bytes) && b.bytes >= 0 ? b.bytes : 0,
  };
}
