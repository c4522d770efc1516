// Load loops. Closed: C clients, each issuing its next request when the last
// one answers (throughput is what the store allows). Open: requests issued
// on a fixed schedule whatever the store does, each timed from when it was
// *due*, not when it could be sent, so a stall shows up in the latency of
// every request it delayed (no coordinated omission).
//
// The loops drive a Store: one read or one write of key number k. tunekv at
// a consistency level is one Store (tunekvStore); the peers (bench/peers.ts)
// are others, so every store sees the same key sequence and mix.

import type { GetOptions, PutOptions, TuneKvClient } from '../src/client/index.js';
import { TuneKvError } from '../src/errors.js';
import { newHistogram } from './histogram.js';
import type { Histogram } from './histogram.js';
import { chooser, workloads } from './workload.js';
import type { Distribution, WorkloadName } from './workload.js';
import { seededRandom } from '../src/sim/random.js';

export interface LevelSpec {
  readonly name: string;
  readonly read: GetOptions;
  readonly write: PutOptions;
}

/** eventual | quorum | strong | r=R,w=W (also rRwW, e.g. r3w3). */
export function parseLevel(text: string): LevelSpec {
  if (text === 'eventual' || text === 'quorum' || text === 'strong') {
    return { name: text, read: { consistency: text }, write: { consistency: text } };
  }
  const m = /^r=?(\d+),?w=?(\d+)$/.exec(text);
  if (!m) throw new TypeError(`level "${text}" must be eventual, quorum, strong or r=R,w=W`);
  const r = Number(m[1]);
  const w = Number(m[2]);
  return { name: `r=${r},w=${w}`, read: { r }, write: { w } };
}

/** What a loop drives: a read or a write of key number k (the key's name
 * and the value are the store's business). */
export interface Store {
  read(k: number): Promise<void>;
  write(k: number): Promise<void>;
}

/** The request mix of a cell: which keys, which share of reads, the seed. */
export interface LoadSpec {
  readonly workload: WorkloadName;
  readonly distribution: Distribution;
  readonly keys: number;
  readonly seed: number;
}

export interface LoopResult {
  readonly reads: Histogram;
  readonly writes: Histogram;
  readonly ops: number;
  readonly errors: Record<string, number>;
  readonly elapsedMs: number;
}

/** The context last seen for each key, shared by all clients of a run, so
 * an update supersedes what was there (a YCSB update) instead of piling up
 * siblings; only truly concurrent updates become siblings. */
export type ContextCache = Map<number, string>;

export const benchKey = (k: number): string => `bench:${k}`;

/** tunekv at one consistency level. */
export function tunekvStore(kv: TuneKvClient, level: LevelSpec, value: Buffer, contexts: ContextCache): Store {
  return {
    read: async (k) => {
      const got = await kv.get(benchKey(k), level.read);
      contexts.set(k, got.context);
    },
    write: async (k) => {
      const ctx = contexts.get(k);
      const res = await kv.put(benchKey(k), value, ctx === undefined ? level.write : { ...level.write, context: ctx });
      contexts.set(k, res.context);
    },
  };
}

function recordUs(h: Histogram, startNs: bigint): void {
  h.recordValue(Math.max(1, Math.round(Number(process.hrtime.bigint() - startNs) / 1000)));
}

function countError(errors: Record<string, number>, err: unknown): void {
  const code = err instanceof TuneKvError ? err.code : 'CLIENT';
  errors[code] = (errors[code] ?? 0) + 1;
}

export async function closedLoop(store: Store, spec: LoadSpec, clients: number, durationMs: number,
  tick: () => void): Promise<LoopResult> {
  const reads = newHistogram();
  const writes = newHistogram();
  const errors: Record<string, number> = {};
  const readShare = workloads[spec.workload];
  let ops = 0;
  const start = Date.now();
  const end = start + durationMs;
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const keys = chooser(spec.distribution, spec.keys, spec.seed + c);
    const mix = seededRandom(spec.seed * 7919 + c);
    while (Date.now() < end) {
      const isRead = mix() < readShare;
      const k = keys.next();
      const t0 = process.hrtime.bigint();
      try {
        await (isRead ? store.read(k) : store.write(k));
        recordUs(isRead ? reads : writes, t0);
        ops++;
      } catch (err) {
        countError(errors, err);
      }
      if ((ops & 255) === 0) tick();
    }
  }));
  return { reads, writes, ops, errors, elapsedMs: Date.now() - start };
}

/** How long past its scheduled end an open loop keeps issuing: a store that
 * cannot keep up would otherwise stretch a 2 s step to the time it needs to
 * serve every request, and the sweep would wait on a point it already knows
 * is saturated. Requests never issued count as not achieved. */
const openLoopOverrunMs = 1000;

export async function openLoop(store: Store, spec: LoadSpec, ratePerSec: number, durationMs: number,
  tick: () => void, inFlightMax = 4096): Promise<LoopResult> {
  const reads = newHistogram();
  const writes = newHistogram();
  const errors: Record<string, number> = {};
  const readShare = workloads[spec.workload];
  const keys = chooser(spec.distribution, spec.keys, spec.seed);
  const mix = seededRandom(spec.seed * 7919);
  const intervalNs = BigInt(Math.round(1e9 / ratePerSec));
  const total = Math.floor((ratePerSec * durationMs) / 1000);
  const t0 = process.hrtime.bigint();
  const issueEndNs = t0 + BigInt((durationMs + openLoopOverrunMs) * 1e6);
  let inFlight = 0;
  let ops = 0;
  let waiters: (() => void)[] = [];
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + BigInt(i) * intervalNs;
    const now = process.hrtime.bigint();
    if (now > issueEndNs) break;
    if (due > now) await new Promise((r) => setTimeout(r, Math.max(0, Number(due - now) / 1e6 - 0.5)));
    while (inFlight >= inFlightMax) await new Promise<void>((r) => waiters.push(r));
    const isRead = mix() < readShare;
    const k = keys.next();
    inFlight++;
    // Timed from when it was due, or from when it was sent if the timer
    // woke early (up to 0.5 ms before due): a request sent late is charged
    // the wait (no coordinated omission), one sent early is not credited.
    const sent = process.hrtime.bigint();
    const from = sent < due ? sent : due;
    pending.push((isRead ? store.read(k) : store.write(k)).then(
      () => { recordUs(isRead ? reads : writes, from); ops++; },
      (err) => countError(errors, err),
    ).finally(() => {
      inFlight--;
      const w = waiters;
      waiters = [];
      for (const r of w) r();
      if ((ops & 255) === 0) tick();
    }));
  }
  await Promise.all(pending);
  return { reads, writes, ops, errors, elapsedMs: Number(process.hrtime.bigint() - t0) / 1e6 };
}
