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

/** Percentiles in milliseconds. */
export function percentiles(h: Histogram): Percentiles {
  const ms = (us: number) => us / 1000;
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/** The latency at each of a ladder of percentiles, for plotting curves. */
export const curvePercentiles = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99];

export function curve(h: Histogram): [number, number][] {
  return curvePercentiles.map((p) => [p, h.getValueAtPercentile(p) / 1000]);
}

/** HdrHistogram's .hgrm text, values in milliseconds. */
export function hgrm(h: Histogram): string {
  return h.outputPercentileDistribution(5, 1000);
}
