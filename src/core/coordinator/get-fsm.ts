// The get request state machine (Riak's get_fsm around a pure tally).
//
//   reading ──R replies──▶ (strong, majority lacks merged) writingBack ──▶ collecting ──▶ done
//      │                                   │                                  ▲
//      └──────────── R met (not strong, or majority holds it) ────────────────┘
//
// reading:     reads went to R replicas (or to every replica, see below);
//              count ok/notfound as success. A replica that fails, or the
//              speculative-retry timer (onSpeculate), sends the read to the
//              next replica not asked yet, as Cassandra does.
// Who is asked: with `askAll` (a read-repair sample, a transition's groups,
// a delete's read) every replica at once, as Dynamo does; otherwise the
// first R targets (the coordinator puts itself first) plus `hedge` more. Replicas never asked are reported
// `notasked`; they count as still possible for the quorum (not failed)
// until the last one is asked.
// writingBack: strong only. The merged result goes to the primaries that do not
//              hold it; the reply waits until a majority of primaries holds it,
//              so a later strong read cannot see an older state (no new-old
//              inversion).
// collecting:  replied; keep gathering the remaining replies until all have
//              answered or the deadline passes, then read-repair stale replicas.
//
// Sessions (`atLeast`): a read that carries what its session has seen of
// the key stays in `reading` after R answered while their merged result is
// older than that (core/clock/session-cover.ts): it asks the replicas not
// asked yet, one at once and the rest on the speculative timer, and replies
// as soon as the answers cover it (counting `lookedFurther`). When every
// replica has answered, or the deadline passes, with R met but nothing
// current, it fails with SESSION_UNAVAILABLE: never older data.
//
// Invariants: exactly one 'reply' effect, then exactly one 'done'; every
// effect comes out of an event; no I/O, no clock.

import assert from 'node:assert/strict';
import { mergeAll, sameVersions } from '../clock/object.js';
import type { VersionedObject } from '../clock/object.js';
import { sessionCovers } from '../clock/session-cover.js';
import type { AtLeast, ClockAtLeast } from '../clock/session-cover.js';
import { describeLevel } from '../quorum/levels.js';
import type { Quorum } from '../quorum/levels.js';
import { groupTallies, groupsVerdict, reportedTally } from '../quorum/tally.js';
import type { QuorumGroup, Tally } from '../quorum/tally.js';
import type { Effect, FsmError, ReplicaOutcome, ReplicaReport, ReplicaTarget } from './types.js';

type State = 'reading' | 'writingBack' | 'collecting' | 'done';

export type ReadResult = { readonly ok: true; readonly object: VersionedObject | undefined } | { readonly ok: false };

interface ReplicaSlot {
  readonly target: ReplicaTarget;
  outcome: ReplicaOutcome;
  object: VersionedObject | undefined;
  /** The object this replica was sent (write-back); avoids repairing twice. */
  sent: VersionedObject | undefined;
}

export interface GetFsmOptions {
  readonly replicas: readonly ReplicaTarget[];
  /** Primaries known to be down: reported, and counted as failures. */
  readonly down?: readonly string[];
  readonly quorum: Quorum;
  /** Send the merged object to stale replicas once all have answered. */
  readonly readRepair: boolean;
  /** Who counts (default: one group of every replica and down primary).
   * R replies are needed from every group, and a strong read's write-back
   * must leave W holders in every group. */
  readonly groups?: readonly QuorumGroup[];
  /** Ask every replica at once (default); false asks the first R targets
   * (plus `hedge`) and more only when one fails or onSpeculate() is called. */
  readonly askAll?: boolean;
  /** Replicas asked beyond R at the start (askAll: false). Default 0. */
  readonly hedge?: number;
  /** A session read: reply only with a result at least this new. */
  readonly atLeast?: AtLeast;
  /** The time, for atLeast's pruning rule (session-cover.ts). */
  readonly nowMs?: number;
}

export class GetFsm {
  private state: State = 'reading';
  private readonly slots: Map<string, ReplicaSlot>;
  private readonly groups: readonly QuorumGroup[];
  /** Write-back outcomes, by node (strong reads). */
  private readonly wrote = new Map<string, 'ok' | 'failed' | 'pending'>();
  private writingBack = false;
  private merged: VersionedObject | undefined;
  private replied = false;
  /** Targets not asked yet, in order (askAll: false). */
  private readonly reserve: ReplicaTarget[] = [];
  /** Replicas asked because the answers were older than atLeast. */
  private lookedFurther = 0;

  constructor(private readonly opts: GetFsmOptions) {
    const down = opts.down ?? [];
    this.slots = new Map<string, ReplicaSlot>(opts.replicas.map((t) => [t.node, { target: t, outcome: 'pending', object: undefined, sent: undefined }]));
    for (const node of down) this.slots.set(node, { target: { node, role: 'primary' }, outcome: 'failed', object: undefined, sent: undefined });
    assert.equal(this.slots.size, opts.replicas.length + down.length, 'replicas are distinct');
    this.groups = opts.groups ?? [{ nodes: [...this.slots.keys()], required: opts.quorum.r }];
  }

  private get readTallies(): Tally[] {
    return groupTallies(this.groups, (n) => {
      const o = this.slots.get(n)?.outcome;
      return o === 'ok' || o === 'notfound' ? 'ok' : o === 'pending' || o === 'notasked' ? 'pending' : 'failed';
    });
  }

  /** Per group: holders of the merged object count as done; the write-back
   * targets count as they answer; everyone else has failed. */
  private get writeTallies(): Tally[] {
    return groupTallies(this.groups.map((g) => ({ nodes: g.nodes, required: this.opts.quorum.w })), (n) => {
      const s = this.slots.get(n);
      if (!s) return 'failed';
      if ((s.outcome === 'ok' || s.outcome === 'notfound') && sameVersions(s.object, this.merged)) return 'ok';
      return this.wrote.get(n) ?? 'failed';
    });
  }

  start(): Effect[] {
    const tallies = this.readTallies;
    if (groupsVerdict(tallies) === 'unreachable') {
      // Nothing is sent: the report must not say these replicas were asked.
      for (const s of this.slots.values()) if (s.outcome === 'pending') s.outcome = 'notsent';
      return [...this.fail('QUORUM_UNAVAILABLE', tallies), ...this.finish()];
    }
    if (this.opts.askAll ?? true) return this.opts.replicas.map((t) => ({ kind: 'read', to: t.node }));
    const first = Math.min(this.opts.quorum.r + (this.opts.hedge ?? 0), this.opts.replicas.length);
    for (const t of this.opts.replicas.slice(first)) {
      this.slots.get(t.node)!.outcome = 'notasked';
      this.reserve.push(t);
    }
    const effects: Effect[] = this.opts.replicas.slice(0, first).map((t) => ({ kind: 'read', to: t.node }));
    if (this.reserve.length > 0) effects.push({ kind: 'speculate' });
    return effects;
  }

  /** The speculative-retry timer fired: while the quorum is not met, ask
   * one more replica (a slow one is not waited for alone). */
  onSpeculate(): Effect[] {
    if (this.state !== 'reading' || this.replied) return [];
    if (this.reserve.length > 0 && groupsVerdict(this.readTallies) === 'met') this.lookedFurther++;
    return this.askNext();
  }

  private askNext(): Effect[] {
    const t = this.reserve.shift();
    if (t === undefined) return [];
    this.slots.get(t.node)!.outcome = 'pending';
    const effects: Effect[] = [{ kind: 'read', to: t.node }];
    if (this.reserve.length > 0) effects.push({ kind: 'speculate' });
    return effects;
  }

  onRead(from: string, result: ReadResult): Effect[] {
    const slot = this.slots.get(from);
    if (!slot || slot.outcome !== 'pending' || this.state === 'done') return [];
    if (result.ok) {
      slot.outcome = result.object === undefined ? 'notfound' : 'ok';
      slot.object = result.object;
    } else {
      slot.outcome = 'failed';
    }
    if (this.state === 'reading') {
      const v = groupsVerdict(this.readTallies);
      if (v === 'met' && !this.current()) return this.lookFurther();
      if (v === 'met') return [...this.quorumMet(), ...this.maybeFinish()];
      if (v === 'unreachable') return [...this.fail('QUORUM_UNAVAILABLE', this.readTallies), ...this.maybeFinish()];
      if (!result.ok) return this.askNext();
    }
    return this.maybeFinish();
  }

  onWrite(from: string, ok: boolean): Effect[] {
    if (this.state !== 'writingBack' || this.wrote.get(from) !== 'pending') return this.maybeFinish();
    this.wrote.set(from, ok ? 'ok' : 'failed');
    const v = groupsVerdict(this.writeTallies);
    if (v === 'met') {
      this.state = 'collecting';
      return [...this.replyOk(), ...this.maybeFinish()];
    }
    if (v === 'unreachable') return [...this.fail('QUORUM_UNAVAILABLE', this.writeTallies, 'write-back'), ...this.maybeFinish()];
    return [];
  }

  onTimeout(): Effect[] {
    if (this.state === 'done') return [];
    if (!this.replied && this.state === 'reading' && groupsVerdict(this.readTallies) === 'met') {
      return [...this.failBehind('timed out'), ...this.finish()];
    }
    const effects = this.replied ? [] : this.fail('TIMEOUT', this.writingBack ? this.writeTallies : this.readTallies,
      this.state === 'writingBack' ? 'write-back' : 'read');
    return [...effects, ...this.finish()];
  }

  /** Without atLeast, always; with it, whether the answers so far merge
   * into a state at least as new as what the session saw. */
  private current(): boolean {
    const atLeast = this.opts.atLeast;
    if (atLeast === undefined) return true;
    const merged = mergeAll(this.answered().flatMap((s) => (s.object ? [s.object] : [])));
    // Counters and sets are never deleted nor reaped: "not found" from
    // every primary means the session's state is on a fallback, not gone,
    // and no rule below applies to them.
    if ('typed' in atLeast) return sessionCovers(merged, atLeast, this.opts.nowMs ?? 0);
    if (this.everyPrimaryNotFound()) return true;
    // Not accepted (tried, and taken out): every primary answering with a
    // state written after the newest write the session saw, which is what
    // a key deleted, reaped and written again looks like. Simulator seeds
    // 92, 335, 507 and 704 then found sessions going back, so a session
    // whose key was deleted, reaped and written again by others fails with
    // SESSION_UNAVAILABLE until the node that coordinated the session's
    // last write of it coordinates another (README: Sessions).
    return sessionCovers(merged, atLeast, this.opts.nowMs ?? 0);
  }

  /**
   * Every primary of the key answered "not found": the key was deleted and
   * its tombstone reaped (the reaper removes one only once every primary
   * holds it), even if the session last saw a live value (another client
   * deleted it). Accepted as current; otherwise such a key would fail every
   * read of the session for as long as the session remembered it. The one
   * state this can hide is a write held only by fallbacks while every
   * primary was down (sloppy quorum), until its hints are handed off. So
   * the read must have had every replica a primary: when a fallback stood
   * in for one, that primary (down to this node) may hold the state, and
   * the simulator found exactly that (seed 96: a session's write on the
   * far side of a partition, read back as "not found").
   */
  private everyPrimaryNotFound(): boolean {
    let primaries = 0;
    for (const s of this.slots.values()) {
      if (s.target.role !== 'primary' || s.outcome !== 'notfound') return false;
      primaries++;
    }
    return primaries > 0;
  }

  private isBehind(s: ReplicaSlot): boolean {
    const atLeast = this.opts.atLeast;
    return atLeast !== undefined && (s.outcome === 'ok' || s.outcome === 'notfound') && !sessionCovers(s.object, atLeast, this.opts.nowMs ?? 0);
  }

  /** R answered, all older than the session's state: ask the next replica
   * now (askNext arms the timer for the rest), wait for those asked, or
   * fail once nobody is left. */
  private lookFurther(): Effect[] {
    if (this.reserve.length > 0) {
      this.lookedFurther++;
      return this.askNext();
    }
    if ([...this.slots.values()].some((s) => s.outcome === 'pending')) return [];
    return [...this.failBehind('every replica answered'), ...this.maybeFinish()];
  }

  private failBehind(why: string): Effect[] {
    const answered = this.answered();
    const behind = answered.filter((s) => this.isBehind(s)).length;
    this.replied = true;
    this.state = 'collecting';
    const error: FsmError = {
      code: 'SESSION_UNAVAILABLE',
      message: `${describeLevel(this.opts.quorum, 'r')} session read found no replica as current as the session (${why}): `
        + `${answered.length} answered, ${behind} behind, ${this.reserve.length} not asked`,
      details: { required: this.opts.quorum.r, received: answered.length, behind, lookedFurther: this.lookedFurther, replicas: this.reports() },
    };
    return [{ kind: 'reply', reply: { ok: false, error } }];
  }

  private answered(): ReplicaSlot[] {
    return [...this.slots.values()].filter((s) => s.outcome === 'ok' || s.outcome === 'notfound');
  }

  private quorumMet(): Effect[] {
    this.merged = mergeAll(this.answered().flatMap((s) => (s.object ? [s.object] : [])));
    if (!this.opts.quorum.strong || this.merged === undefined) {
      this.state = 'collecting';
      return this.replyOk();
    }
    if (groupsVerdict(this.writeTallies) === 'met') {
      this.state = 'collecting';
      return this.replyOk();
    }
    const targets = [...this.slots.values()].filter((s) => (s.outcome === 'ok' || s.outcome === 'notfound' || s.outcome === 'pending')
      && !sameVersions(s.object, this.merged));
    for (const s of targets) this.wrote.set(s.target.node, 'pending');
    this.writingBack = true;
    if (groupsVerdict(this.writeTallies) === 'unreachable') return this.fail('QUORUM_UNAVAILABLE', this.writeTallies, 'write-back');
    this.state = 'writingBack';
    const object = this.merged;
    return targets.map((s) => {
      s.sent = object;
      return { kind: 'write', to: s.target.node, object, hintFor: s.target.hintFor };
    });
  }

  private replyOk(): Effect[] {
    assert.ok(!this.replied, 'one reply per request');
    this.replied = true;
    const merged = this.merged;
    const replicas: ReplicaReport[] = [...this.slots.values()].map((s) => ({
      node: s.target.node,
      role: s.target.role,
      outcome: s.outcome,
      stale: (s.outcome === 'ok' || s.outcome === 'notfound') && merged !== undefined && !sameVersions(s.object, merged),
      hintFor: s.target.hintFor,
      ...(this.isBehind(s) ? { behind: true } : {}),
    }));
    if (this.opts.atLeast !== undefined) return [{ kind: 'reply', reply: { ok: true, object: merged, replicas, lookedFurther: this.lookedFurther } }];
    return [{ kind: 'reply', reply: { ok: true, object: merged, replicas } }];
  }

  private fail(code: FsmError['code'], tallies: readonly Tally[], phase = 'read'): Effect[] {
    if (this.replied) return [];
    const tally = reportedTally(tallies);
    this.replied = true;
    this.state = this.state === 'done' ? 'done' : 'collecting';
    const what = code === 'TIMEOUT' ? 'timed out' : 'cannot reach its quorum';
    const error: FsmError = {
      code,
      message: `${describeLevel(this.opts.quorum, 'r')} ${phase} ${what}: needed ${tally.required}, got ${tally.succeeded}, ${tally.failed} failed`,
      details: { required: tally.required, received: tally.succeeded, failed: tally.failed, replicas: this.reports() },
    };
    return [{ kind: 'reply', reply: { ok: false, error } }];
  }

  private reports(): ReplicaReport[] {
    return [...this.slots.values()].map((s) => ({
      node: s.target.node, role: s.target.role, outcome: s.outcome, hintFor: s.target.hintFor, ...(this.isBehind(s) ? { behind: true } : {}),
    }));
  }

  private maybeFinish(): Effect[] {
    if (this.state !== 'collecting') return [];
    const pending = [...this.slots.values()].some((s) => s.outcome === 'pending');
    return pending ? [] : this.finish();
  }

  /** Read repair, then done. Runs once. */
  private finish(): Effect[] {
    if (this.state === 'done') return [];
    this.state = 'done';
    const finalMerged = mergeAll(this.answered().flatMap((s) => (s.object ? [s.object] : [])));
    const repairs: Effect[] = [];
    if (this.opts.readRepair && finalMerged !== undefined) {
      for (const s of this.answered()) {
        if (sameVersions(s.object, finalMerged) || sameVersions(s.sent, finalMerged)) continue;
        repairs.push({ kind: 'write', to: s.target.node, object: finalMerged, hintFor: s.target.hintFor });
      }
    }
    const timedOut = [...this.slots.values()].filter((s) => s.outcome === 'pending').length;
    return [...repairs, { kind: 'done', stats: { readRepairs: repairs.length, timedOut } }];
  }
}
