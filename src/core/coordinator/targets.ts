// Which replicas a request goes to: the sloppy quorum.
//
// Primaries that are up are always asked. For `eventual`, `quorum` and
// explicit r/w, each primary that is down is replaced by the next fallback
// that is up (in ring order), which stores the write with a hint naming the
// primary it stands in for. `strong` never uses fallbacks: a down primary
// just counts as a failure. Pure: `isUp` is the local failure detector's view.

import type { PreferenceList } from '../ring/ring.js';
import type { ReplicaTarget } from './types.js';

export interface Targets {
  /** Replicas to contact, primaries first. */
  readonly targets: ReplicaTarget[];
  /** Primaries known to be down and not replaced: failures from the start. */
  readonly down: string[];
}

export function selectTargets(pl: PreferenceList, isUp: (id: string) => boolean, sloppy: boolean): Targets {
  const targets: ReplicaTarget[] = [];
  const down: string[] = [];
  const spare = sloppy ? pl.fallbacks.filter(isUp) : [];
  const stand: ReplicaTarget[] = [];
  for (const p of pl.primaries) {
    if (isUp(p)) { targets.push({ node: p, role: 'primary' }); continue; }
    const fallback = spare.shift();
    if (fallback === undefined) down.push(p);
    else stand.push({ node: fallback, role: 'fallback', hintFor: p });
  }
  return { targets: [...targets, ...stand], down };
}
