// How stale partial quorums are, measured as in the PBS paper (Bailis et
// al., "Probabilistically Bounded Staleness"):
//   t-visibility: after a write is acknowledged at W, the probability that a
//     read at R issued t ms later returns it;
//   k-staleness: when it does not, how many versions behind the read is.
//
// Each trial writes version v+1 of a key at W through the key's first
// primary, waits t ms after the acknowledgement, and reads at R through
// another primary (so the read does not start at the node that took the
// write). Each write carries the previous write's context, so versions
// supersede one another and "behind" is well defined.

import type { TuneKvClient } from '../src/index.js';
import { preferenceListForKey } from '../src/core/ring/ring.js';
import type { Ring } from '../src/core/ring/ring.js';

export interface StalenessPoint {
  readonly tMs: number;
  readonly trials: number;
  /** Reads that returned the acknowledged write (or something newer). */
  readonly fresh: number;
  readonly pFresh: number;
  /** Versions behind, over the stale reads only. */
  readonly meanVersionsBehind: number;
  readonly maxVersionsBehind: number;
  readonly errors: number;
}

export interface StalenessCurve {
  readonly r: number;
  readonly w: number;
  readonly delay: string;
  readonly points: StalenessPoint[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureStaleness(kv: TuneKvClient, ring: Ring, r: number, w: number, tValues: readonly number[],
  trials: number, delay: string, tick: () => void): Promise<StalenessCurve> {
  const byId = new Map(ring.members.map((m) => [m.id, m.addr]));
  const points: StalenessPoint[] = [];
  for (const tMs of tValues) {
    const key = `staleness:r${r}w${w}:t${tMs}:${delay.replace(/[^a-z0-9]/gi, '')}:${Date.now()}`;
    const [writer, reader] = preferenceListForKey(ring, key).primaries.map((id) => byId.get(id)!);
    let context: string | undefined;
    let version = 0;
    let fresh = 0;
    let behind = 0;
    let maxBehind = 0;
    let errors = 0;
    for (let i = 0; i < trials; i++) {
      try {
        version++;
        const res = await kv.put(key, version, { w, context, host: writer });
        context = res.context;
        if (tMs > 0) await sleep(tMs);
        const got = await kv.get(key, { r, host: reader ?? writer });
        const seen = Math.max(0, ...got.values.map((v) => (typeof v === 'number' ? v : 0)));
        if (seen >= version) fresh++;
        else { behind += version - seen; maxBehind = Math.max(maxBehind, version - seen); }
      } catch {
        errors++;
      }
      tick();
    }
    const stale = trials - fresh - errors;
    points.push({
      tMs, trials, fresh, pFresh: trials - errors === 0 ? 0 : fresh / (trials - errors),
      meanVersionsBehind: stale > 0 ? behind / stale : 0, maxVersionsBehind: maxBehind, errors,
    });
  }
  return { r, w, delay, points };
}
