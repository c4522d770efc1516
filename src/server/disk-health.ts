// Disk health: the node's disk failure policy (Cassandra has a choice of
// them in disk_failure_policy; tunekv has one, described here).
//
//   healthy ──(a storage write failed)──▶ unhealthy
//   unhealthy ──(a probe write succeeded, no write failed meanwhile)──▶ healthy
//
// While unhealthy the node is read-only:
//   - every write is refused at once with STORAGE_FAILED, carrying the
//     cause (LevelDB's message): the node coordinates no put or delete,
//     takes no replica write, hint, repair or reap. A write refused up front
//     is one the client can send to another coordinator; a write accepted
//     by a node that cannot store it fails later, batch by batch, and costs
//     the client its deadline;
//   - reads go on: what is on disk is still readable, and read quorums and
//     read repair of other keys still need this replica;
//   - every probeIntervalMs a probe writes one small key (m:probe) through
//     Storage directly, synced, bypassing the refused write queue; the first
//     probe that succeeds with no storage write failing while it ran makes
//     the node healthy again. A disk that was full and got space back, or a
//     volume remounted, heals without a restart.
// Why not stop the process (Cassandra's `die`/`stop`): the node would lose
// its reads too and need an operator to come back, while replicas already
// cover its writes (sloppy quorum, hints kept elsewhere, anti-entropy). Why
// not ignore the failure: a replica must acknowledge only what is on disk,
// and a node that keeps accepting writes it cannot store lets its cache and
// anti-entropy hashes drift from its disk.
//
// Pure apart from the clock it is given: the probe is a function passed in
// (probeStorage() below for a real Storage), the state change is reported
// to a callback for the node to log, and every counter is a plain field for
// status and metrics.

import { TuneKvError } from '../errors.js';
import type { Clock, TimerHandle } from '../io/clock.js';
import { messageWithCauses } from '../io/storage.js';
import type { Storage } from '../io/storage.js';
import { probeKey } from './keyspace.js';

export type DiskState = 'healthy' | 'unhealthy';

/** How often an unhealthy node probes its storage. 5 s: a disk that got
 * space back is used again within seconds, and a failing one costs one tiny
 * synced write per 5 s (Cassandra's failure detector ticks at 1 s; a probe
 * is an fsync, so a little slower). */
export const diskProbeIntervalMsDefault = 5_000;

export interface DiskError {
  /** What failed and why, with LevelDB's cause ("IO error: ...: No space left on device"). */
  readonly message: string;
  readonly atMs: number;
}

export interface DiskHealthStatus {
  readonly state: DiskState;
  /** When the current state began (node clock, ms). */
  readonly sinceMs: number;
  /** The last storage write or probe that failed, or null. */
  readonly lastError: DiskError | null;
  /** Writes (objects, hints, ring) in storage batches that failed. */
  readonly failedWrites: number;
  /** Storage batches that failed. */
  readonly failedBatches: number;
  /** Writes refused up front with STORAGE_FAILED while unhealthy. */
  readonly refusedWrites: number;
  /** Probes run, and how many of them failed. */
  readonly probes: number;
  readonly failedProbes: number;
  /** Times the node went unhealthy. */
  readonly unhealthyTransitions: number;
}

export interface DiskHealthOptions {
  readonly clock: Clock;
  /** One small durable write through Storage directly (probeStorage()). */
  readonly probe: (nowMs: number) => Promise<void>;
  /** Default diskProbeIntervalMsDefault. */
  readonly probeIntervalMs?: number;
  /** Names the node in STORAGE_FAILED messages. */
  readonly nodeId?: string;
  /** Called on every change of state, with the cause when going unhealthy
   * (null when going healthy): the node logs it. */
  readonly onStateChange?: (from: DiskState, to: DiskState, cause: string | null) => void;
}

/** The probe of a real node: a synced write of m:probe, straight to
 * Storage (the object store's queue refuses writes while unhealthy). */
export function probeStorage(storage: Storage): (nowMs: number) => Promise<void> {
  return (nowMs) => storage.write([{ key: probeKey, value: Buffer.from(String(nowMs)) }], true);
}

export class DiskHealth {
  private stateValue: DiskState = 'healthy';
  private sinceMsValue: number;
  private lastError: DiskError | null = null;
  private failedWrites = 0;
  private failedBatches = 0;
  private refusedWrites = 0;
  private probes = 0;
  private failedProbes = 0;
  private unhealthyTransitions = 0;
  private timer: TimerHandle | undefined;
  private probing: Promise<boolean> | undefined;
  private closed = false;
  readonly probeIntervalMs: number;

  constructor(private readonly opts: DiskHealthOptions) {
    const interval = opts.probeIntervalMs ?? diskProbeIntervalMsDefault;
    if (!Number.isInteger(interval) || interval < 1) throw new TypeError(`probeIntervalMs (${interval}) must be a positive integer`);
    if (typeof opts.probe !== 'function') throw new TypeError('DiskHealth needs a probe function');
    this.probeIntervalMs = interval;
    this.sinceMsValue = opts.clock.nowMs();
  }

  get state(): DiskState {
    return this.stateValue;
  }

  get writable(): boolean {
    return this.stateValue === 'healthy';
  }

  /** Throws STORAGE_FAILED (counted) while the node is unhealthy. */
  checkWritable(): void {
    const state = this.stateValue;
    switch (state) {
      case 'healthy':
        return;
      case 'unhealthy': {
        this.refusedWrites++;
        const cause = this.lastError?.message ?? 'unknown';
        const who = this.opts.nodeId === undefined ? 'this node' : `node ${this.opts.nodeId}`;
        throw new TuneKvError('STORAGE_FAILED',
          `${who} cannot write to its storage (${cause}); it refuses writes until a probe write succeeds (every ${this.probeIntervalMs} ms)`,
          { cause, sinceMs: this.sinceMsValue });
      }
      default: {
        const never: never = state;
        throw new Error(`unknown disk state ${String(never)}`);
      }
    }
  }

  /** A storage batch of `writes` writes failed: the node goes unhealthy. */
  writeFailed(err: unknown, writes: number): void {
    this.failedBatches++;
    this.failedWrites += writes;
    this.lastError = { message: messageWithCauses(err), atMs: this.opts.clock.nowMs() };
    if (this.stateValue === 'healthy') {
      this.unhealthyTransitions++;
      this.enter('unhealthy', this.lastError.message);
    }
    this.scheduleProbe();
  }

  /** Runs one probe now (the timer does this every probeIntervalMs while
   * unhealthy); resolves to whether storage took the write. */
  probeNow(): Promise<boolean> {
    this.probing ??= this.runProbe().finally(() => { this.probing = undefined; });
    return this.probing;
  }

  private async runProbe(): Promise<boolean> {
    this.probes++;
    const failedBefore = this.failedBatches;
    try {
      await this.opts.probe(this.opts.clock.nowMs());
    } catch (err) {
      this.failedProbes++;
      this.lastError = { message: `probe: ${messageWithCauses(err)}`, atMs: this.opts.clock.nowMs() };
      this.scheduleProbe();
      return false;
    }
    // A batch that failed while the probe ran is newer news than the probe.
    if (this.failedBatches !== failedBefore) {
      this.scheduleProbe();
      return false;
    }
    if (this.stateValue === 'unhealthy') this.enter('healthy', null);
    return true;
  }

  private scheduleProbe(): void {
    if (this.closed || this.stateValue !== 'unhealthy' || this.timer !== undefined) return;
    this.timer = this.opts.clock.setTimer(this.probeIntervalMs, () => {
      this.timer = undefined;
      if (!this.closed) void this.probeNow();
    });
  }

  private enter(to: DiskState, cause: string | null): void {
    if (to === 'healthy' && this.timer !== undefined) {
      this.opts.clock.clearTimer(this.timer);
      this.timer = undefined;
    }
    const from = this.stateValue;
    this.stateValue = to;
    this.sinceMsValue = this.opts.clock.nowMs();
    this.opts.onStateChange?.(from, to, cause);
  }

  status(): DiskHealthStatus {
    return {
      state: this.stateValue,
      sinceMs: this.sinceMsValue,
      lastError: this.lastError,
      failedWrites: this.failedWrites,
      failedBatches: this.failedBatches,
      refusedWrites: this.refusedWrites,
      probes: this.probes,
      failedProbes: this.failedProbes,
      unhealthyTransitions: this.unhealthyTransitions,
    };
  }

  /** Stops probing (the node is stopping). */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.opts.clock.clearTimer(this.timer);
    this.timer = undefined;
  }
}
