// A node's status, as STATUS answers it and `tunekv status` prints it.
//
// Two views: the summary any caller with the `read` role may see (who the
// node is, whether it is ready, the ring's members and what the failure
// detector thinks of them) and the details for `admin` (hints, anti-entropy,
// faults, storage and disk health, connections, counters, limits). The
// details name keys (oversized objects) and the fault settings, so they are
// not for every reader.

import { replicatedPartitions } from '../core/ring/ring.js';
import { transitionProgress } from './cluster-view.js';
import { limits } from '../limits.js';
import type { Clock } from '../io/clock.js';
import type { Membership } from '../core/membership/membership.js';
import type { ClusterView } from './cluster-view.js';

export interface StatusSources {
  readonly id: string;
  readonly listen: string;
  readonly clock: Clock;
  readonly startedMs: number;
  readonly view: ClusterView;
  readonly membership: Membership;
  /** Everything else only admins see, assembled by the node. */
  details(): Record<string, unknown>;
  /** Headline metrics, for admins. */
  metrics(): Promise<Record<string, unknown>>;
}

export function statusSummary(s: StatusSources): Record<string, unknown> {
  const ring = s.view.ring;
  const now = s.clock.nowMs();
  return {
    nodeId: s.id,
    addr: s.listen,
    ready: ring !== undefined && s.view.isAnnounced,
    uptimeMs: now - s.startedMs,
    ring: ring ? {
      version: ring.version, q: ring.q, n: ring.n,
      members: ring.members.map((m) => ({
        id: m.id, addr: m.addr, state: m.state ?? 'valid',
        claimed: ring.owners.filter((o) => o === m.id).length,
        share: ring.owners.filter((o) => o === m.id).length / ring.q,
        replicates: replicatedPartitions(ring, m.id).length,
      })),
      // While a plan is in transition: its next owners and partitions per phase.
      next: ring.next ?? null,
      transition: transitionProgress(ring),
    } : null,
    peers: s.membership.statuses().map((p) => ({
      id: p.id, state: p.state, sinceMs: p.sinceMs, forMs: now - p.sinceMs, lastHeardAgoMs: now - p.lastHeardMs,
      hintsPending: p.heartbeat.hintsPending,
    })),
  };
}

/** The whole status: summary, details and, with metrics, the headline figures. */
export async function statusFull(s: StatusSources, withMetrics: boolean): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { ...statusSummary(s), ...s.details(), limits };
  if (withMetrics) out.metrics = await s.metrics();
  return out;
}
