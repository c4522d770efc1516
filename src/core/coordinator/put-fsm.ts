// The put (and delete) request state machine (Riak's put_fsm).
//
//   coordinating ──object built──▶ replicating ──W acks──▶ collecting ──▶ done
//
// coordinating: this node, itself a replica of the key, builds the new version
//               (it alone names dots after itself) and starts storing it.
// replicating:  the new object goes to every other replica, which merges it;
//               the local store's completion counts as one ack. Reply at W.
// collecting:   replied; wait for the remaining acks or the deadline.
//
// Invariants: exactly one reply, then one done; the coordinator is one of the
// replicas; a put that fails to reach W may still be stored on the replicas
// that acked (as in Dynamo, Riak and Cassandra): the reply says which.

import assert from 'node:assert/strict';
import type { VersionedObject } from '../clock/object.js';
import { describeLevel } from '../quorum/levels.js';
import type { Quorum } from '../quorum/levels.js';
import { groupTallies, groupsVerdict, reportedTally } from '../quorum/tally.js';
import type { QuorumGroup, Tally } from '../quorum/tally.js';
import type { Effect, FsmError, ReplicaOutcome, ReplicaReport, ReplicaTarget } from './types.js';


type State = 'coordinating' | 'replicating' | 'collecting' | 'done';

export type CoordinateResult = { readonly ok: true; readonly object: VersionedObject } | { readonly ok: false; readonly error: FsmError };

export interface PutFsmOptions {
  /** This node; must be one of `replicas`. */
  readonly self: string;
  readonly replicas: readonly ReplicaTarget[];
  /** Primaries known to be down: reported, and counted as failures. */
  readonly down?: readonly string[];
  readonly quorum: Quorum;
  /** Who counts, and how many each group needs (default: one group of every
   * replica and down primary, needing W). A replica in no group is sent
   * the write but not counted (a transfer's receiver). */
  readonly groups?: readonly QuorumGroup[];
}

export class PutFsm {
  private state: State = 'coordinating';
  private readonly outcomes: Map<string, ReplicaOutcome>;
  private readonly groups: readonly QuorumGroup[];
  private object: VersionedObject | undefined;
  private replied = false;
  /** Which replicas the write went to: the coordinator itself once it is
   * told to coordinate, the others once the object is built. A replica the
   * request failed before reaching is reported `notsent`, not `pending`. */
  private readonly sent = new Set<string>();

  constructor(private readonly opts: PutFsmOptions) {
    const down = opts.down ?? [];
    this.outcomes = new Map(opts.replicas.map((t) => [t.node, 'pending' as ReplicaOutcome]));
    for (const node of down) this.outcomes.set(node, 'failed');
    assert.equal(this.outcomes.size, opts.replicas.length + down.length, 'replicas are distinct');
    assert.ok(opts.replicas.some((t) => t.node === opts.self), 'the coordinator is a replica of the key');
    this.groups = opts.groups ?? [{ nodes: [...this.outcomes.keys()], required: opts.quorum.w }];
  }

  private get tallies(): Tally[] {
    return groupTallies(this.groups, (n) => {
      const o = this.outcomes.get(n);
      return o === 'ok' ? 'ok' : o === 'pending' ? 'pending' : 'failed';
    });
  }

  start(): Effect[] {
    if (groupsVerdict(this.tallies) === 'unreachable') return [...this.fail('QUORUM_UNAVAILABLE'), ...this.finish()];
    this.sent.add(this.opts.self);
    return [{ kind: 'coordinate' }];
  }

  onCoordinated(result: CoordinateResult): Effect[] {
    if (this.state !== 'coordinating') return [];
    if (!result.ok) {
      this.replied = true;
      return [{ kind: 'reply', reply: { ok: false, error: result.error } }, ...this.finish()];
    }
    this.object = result.object;
    this.state = 'replicating';
    const object = result.object;
    const others = this.opts.replicas.filter((t) => t.node !== this.opts.self);
    for (const t of others) this.sent.add(t.node);
    return others.map((t) => ({ kind: 'write', to: t.node, object, hintFor: t.hintFor }));
  }

  onWrite(from: string, ok: boolean): Effect[] {
    if (this.outcomes.get(from) !== 'pending' || this.state === 'done' || this.state === 'coordinating') return [];
    this.outcomes.set(from, ok ? 'ok' : 'failed');
    const effects: Effect[] = [];
    if (this.state === 'replicating') {
      const v = groupsVerdict(this.tallies);
      if (v === 'met') effects.push(...this.replyOk());
      else if (v === 'unreachable') effects.push(...this.fail('QUORUM_UNAVAILABLE'));
    }
    const pending = [...this.outcomes.values()].some((o) => o === 'pending');
    return pending ? effects : [...effects, ...this.finish()];
  }

  onTimeout(): Effect[] {
    if (this.state === 'done') return [];
    return [...(this.replied ? [] : this.fail('TIMEOUT')), ...this.finish()];
  }

  private reports(): ReplicaReport[] {
    const down = (this.opts.down ?? []).map((node) => ({ node, role: 'primary' as const, outcome: 'failed' as const, hintFor: undefined }));
    return [...this.opts.replicas.map((t) => ({ node: t.node, role: t.role, outcome: this.reported(t.node), hintFor: t.hintFor })), ...down];
  }

  private reported(node: string): ReplicaOutcome {
    const o = this.outcomes.get(node)!;
    return o === 'pending' && !this.sent.has(node) ? 'notsent' : o;
  }

  private replyOk(): Effect[] {
    this.replied = true;
    this.state = 'collecting';
    return [{ kind: 'reply', reply: { ok: true, object: this.object, replicas: this.reports() } }];
  }

  private fail(code: FsmError['code']): Effect[] {
    if (this.replied) return [];
    this.replied = true;
    if (this.state !== 'done') this.state = 'collecting';
    const t = reportedTally(this.tallies);
    const what = code === 'TIMEOUT' ? 'timed out' : 'cannot reach its quorum';
    const error: FsmError = {
      code,
      message: `${describeLevel(this.opts.quorum, 'w')} write ${what}: needed ${t.required}, got ${t.succeeded}, ${t.failed} failed`,
      details: { required: t.required, received: t.succeeded, failed: t.failed, replicas: this.reports() },
    };
    return [{ kind: 'reply', reply: { ok: false, error } }];
  }

  private finish(): Effect[] {
    if (this.state === 'done') return [];
    this.state = 'done';
    // Only a replica that was sent the write can have timed out.
    const timedOut = [...this.outcomes].filter(([n, o]) => o === 'pending' && this.sent.has(n)).length;
    return [{ kind: 'done', stats: { readRepairs: 0, timedOut } }];
  }
}
