// Latency histograms (hdr-histogram-js), recorded in microseconds.

import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
}

export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/**
 * The value at a percentile, in microseconds, never above the largest value
 * recorded. A histogram answers with the highest value of the bucket the
 * percentile falls in, which can exceed the exact maximum it also keeps
 * (10,001 µs recorded reads back as 10,007 at p99.9 with 3 significant
 * digits); a report showing p99.9 > max is wrong on its face.
 */
export function valueAtPercentile(h: Histogram, p: number): number {
  return Math.min(h.getValueAtPercentile(p), h.maxValue);
}

/** Percentiles in milliseconds. */
export function percentiles(h: Histogram): Percentiles {
  const ms = (us: number) => us / 1000;
  return {
    count: h.totalCount,
    p50: ms(valueAtPercentile(h, 50)),
    p90: ms(valueAtPercentile(h, 90)),
    p99: ms(valueAtPercentile(h, 99)),
    p999: ms(valueAtPercentile(h, 99.9)),
    max: ms(h.maxValue),
  };
}

/** The latency at each of a ladder of percentiles, for plotting curves. */
export const curvePercentiles = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99];

export function curve(h: Histogram): [number, number][] {
  return curvePercentiles.map((p) => [p, valueAtPercentile(h, p) / 1000]);
}

/** HdrHistogram's .hgrm text, values in milliseconds. */
export function hgrm(h: Histogram): string {
  return h.outputPercentileDistribution(5, 1000);
}
