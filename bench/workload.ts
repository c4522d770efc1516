// Workloads: YCSB's A (50/50 read/update) and B (95/5), over uniform or
// Zipfian key choice, with a seeded PRNG so a run's key sequence repeats.

import { seededRandom } from '../src/sim/random.js';
import type { Random } from '../src/sim/random.js';

export const workloads = { A: 0.5, B: 0.95 } as const;
export type WorkloadName = keyof typeof workloads;
export type Distribution = 'uniform' | 'zipfian';

export interface KeyChooser { next(): number }

export function uniform(keys: number, random: Random): KeyChooser {
  return { next: () => Math.floor(random() * keys) };
}

/**
 * YCSB's Zipfian generator (Gray et al., "Quickly generating billion-record
 * synthetic databases"), theta 0.99, scrambled by a multiplicative hash so
 * the hot keys are spread over the ring instead of sitting together.
 */
export function zipfian(keys: number, random: Random, theta = 0.99): KeyChooser {
  let zetan = 0;
  for (let i = 1; i <= keys; i++) zetan += 1 / i ** theta;
  const zeta2 = 1 + 1 / 2 ** theta;
  const alpha = 1 / (1 - theta);
  const eta = (1 - (2 / keys) ** (1 - theta)) / (1 - zeta2 / zetan);
  return {
    next: () => {
      const u = random();
      const uz = u * zetan;
      let rank: number;
      if (uz < 1) rank = 0;
      else if (uz < zeta2) rank = 1;
      else rank = Math.floor(keys * (eta * u - eta + 1) ** alpha);
      return Number((BigInt(Math.min(rank, keys - 1)) * 2654435761n) % BigInt(keys));
    },
  };
}

export function chooser(d: Distribution, keys: number, seed: number): KeyChooser {
  const r = seededRandom(seed);
  return d === 'zipfian' ? zipfian(keys, r) : uniform(keys, r);
}
