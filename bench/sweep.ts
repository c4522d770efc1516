// The latency-against-throughput sweep's rules, pure so they can be tested:
// which offered rates to try, and when the store is saturated so the sweep
// stops. The loop itself is openLoop (timed from each request's due time,
// so the latency at a rate includes the queueing that rate causes).

export interface SweepConfig {
  /** The first offered rate (ops/s): low enough that every store keeps up. */
  readonly startRate: number;
  /** Each step offers this many times the last (geometric: the knee shows
   * up within a few steps at any scale). */
  readonly factor: number;
  /** Never offer more than this (the load client's own ceiling is near). */
  readonly maxRate: number;
  /** A step is saturated when it achieves less than this share of what
   * was offered. */
  readonly achievedShareMin: number;
  /** ... or when its p99 is this many times the p99 of the first step ... */
  readonly p99GrowthMax: number;
  /** ... and above this many ms: a p99 of a few ms growing to 16 ms on two
   * shared cores is queueing, not saturation (the sweep stopped at 1,280
   * ops/s for strong while every request was still served). */
  readonly p99SaturatedMinMs: number;
}

export const defaultSweepConfig: SweepConfig = {
  startRate: 500,
  factor: 1.6,
  maxRate: 40_000,
  achievedShareMin: 0.9,
  p99GrowthMax: 10,
  p99SaturatedMinMs: 100,
};

/** The offered rates, lowest first; the sweep may stop before the end. */
export function sweepRates(c: SweepConfig): number[] {
  if (!(c.startRate > 0) || !(c.factor > 1) || c.maxRate < c.startRate) {
    throw new TypeError(`a sweep needs startRate > 0, factor > 1 and maxRate >= startRate (got ${c.startRate}, ${c.factor}, ${c.maxRate})`);
  }
  const rates: number[] = [];
  for (let r = c.startRate; r <= c.maxRate; r *= c.factor) rates.push(Math.round(r));
  return rates;
}

export interface SweepPoint {
  readonly offered: number;
  readonly achieved: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export type SweepVerdict = 'ok' | 'rate-short' | 'p99-exploded';

/** Whether a step shows saturation. `first` is the sweep's first step (its
 * p99 is the unsaturated reference); the first step judges only its rate. */
export function sweepVerdict(point: SweepPoint, first: SweepPoint | undefined, c: SweepConfig): SweepVerdict {
  if (point.achieved < c.achievedShareMin * point.offered) return 'rate-short';
  if (first !== undefined && first !== point && point.p99Ms > Math.max(c.p99GrowthMax * first.p99Ms, c.p99SaturatedMinMs)) return 'p99-exploded';
  return 'ok';
}
