// Counters and sets in the simulator: clients that increment counters and
// add and remove set members through random nodes at random levels while
// the faults run, and the two checkers that judge the converged state.
//
// Checkers (after every replica of every key holds the same state;
// numbered as in simulator.ts):
//   8. a counter equals the sum of its acknowledged increments, give or
//      take the increments whose request failed (they may have been
//      applied: an error says nothing about the replicas that took it) and
//      `eventual` increments whose only copy died with a node killed for
//      good (as checker 1 excuses for plain writes at W=1);
//   9. a set equals its adds minus its observed removes. Every add adds a
//      member no other add uses, so: an acknowledged add that no remove
//      targeted is present; a member whose acknowledged remove said its
//      coordinator held it (observed the add) is absent; and nothing is
//      present that no add sent.

import { counterOf, membersOf, typedKey } from '../core/crdt/typed-object.js';
import type { TypedKind } from '../core/crdt/typed-object.js';
import { preferenceListForKey } from '../core/ring/ring.js';
import type { TuneKvError } from '../errors.js';
import { MsgType } from '../protocol/messages.js';
import type { TypedReplyBody } from '../protocol/messages.js';
import type { MemoryCluster } from './memory-cluster.js';
import { between, derive, pick } from './random.js';

type Level = { consistency?: string; r?: number; w?: number };
const writeLevels: Level[] = [{ consistency: 'eventual' }, { consistency: 'quorum' }, { consistency: 'strong' }, { w: 3 }];
const readLevels: Level[] = [{ consistency: 'eventual' }, { consistency: 'quorum' }, { consistency: 'strong' }, { r: 3 }];

/** What the workload needs of a simulator run. */
export interface TypedRunContext {
  readonly seed: number;
  readonly opsPerClient: number;
  readonly cluster: MemoryCluster;
  request(to: string, type: number, body: unknown): Promise<{ ok: true; body: unknown } | { ok: false; error: TuneKvError }>;
  sleep(ms: number): Promise<void>;
}

interface CounterLedger {
  acked: bigint;
  /** Failed (or excused) increments: the final value may include any of them. */
  maybeDown: bigint;
  maybeUp: bigint;
  /** Acknowledged `eventual` increments by coordinator: excused if it died for good. */
  eventualBy: Map<string, bigint>;
}

interface MemberLedger {
  addAcked: boolean;
  addBy: string | null;
  addLevel: string;
  removeSent: boolean;
  removeObserved: boolean;
}

export const typedCounterKeys = ['tc1', 'tc2'];
export const typedSetKeys = ['ts1', 'ts2'];

export function typedStorageKeys(): string[] {
  return [...typedCounterKeys.map((k) => typedKey('counter', k)), ...typedSetKeys.map((k) => typedKey('set', k))];
}

export class TypedWorkload {
  readonly counters = new Map<string, CounterLedger>(typedCounterKeys.map((k) => [k, { acked: 0n, maybeDown: 0n, maybeUp: 0n, eventualBy: new Map() }]));
  readonly sets = new Map<string, Map<string, MemberLedger>>(typedSetKeys.map((k) => [k, new Map()]));
  ops = 0;
  failed = 0;

  constructor(private readonly run: TypedRunContext) {}

  async client(c: number): Promise<void> {
    const r = derive(this.run.seed, `typed${c}`);
    const mine: [string, string][] = [];
    for (let i = 0; i < this.run.opsPerClient; i++) {
      await this.run.sleep(between(r, 0, 50));
      const cl = this.run.cluster;
      const running = cl.ids.filter((id) => cl.isRunning(id));
      const to = running.length > 0 && r() < 0.9 ? pick(r, running) : pick(r, cl.ids);
      const roll = r();
      this.ops++;
      if (roll < 0.45) {
        const n = pick(r, [-3, -1, 1, 1, 2, 5]);
        await this.increment(to, pick(r, typedCounterKeys), n, pick(r, writeLevels));
      } else if (roll < 0.7) {
        const key = pick(r, typedSetKeys);
        const member = `m${c}-${i}`;
        await this.add(to, key, member, pick(r, writeLevels));
        mine.push([key, member]);
      } else if (roll < 0.85 && mine.length > 0) {
        const [key, member] = mine.splice(between(r, 0, mine.length - 1), 1)[0]!;
        await this.remove(to, key, member, pick(r, writeLevels));
      } else {
        const counter = r() < 0.5;
        const key = counter ? pick(r, typedCounterKeys) : pick(r, typedSetKeys);
        const res = await this.run.request(to, MsgType.TYPE_READ, { type: counter ? 'counter' : 'set', key, ...pick(r, readLevels) });
        if (!res.ok) this.failed++;
      }
    }
  }

  private wid(): Buffer {
    return Buffer.from(`typed-${this.ops}-${Math.floor(this.run.cluster.clock.nowMs())}`.padEnd(12, '.').slice(0, 32));
  }

  private update(to: string, kind: TypedKind, key: string, op: Record<string, unknown>, level: Level) {
    return this.run.request(to, MsgType.TYPE_UPDATE, { type: kind, key, ...op, ...level, wid: this.wid() });
  }

  private async increment(to: string, key: string, n: number, level: Level): Promise<void> {
    const ledger = this.counters.get(key)!;
    const res = await this.update(to, 'counter', key, { op: 'incr', n }, level);
    if (!res.ok) {
      this.failed++;
      if (n > 0) ledger.maybeUp += BigInt(n); else ledger.maybeDown += BigInt(n);
      return;
    }
    ledger.acked += BigInt(n);
    if (level.consistency === 'eventual') {
      const by = (res.body as TypedReplyBody).coordinator;
      ledger.eventualBy.set(by, (ledger.eventualBy.get(by) ?? 0n) + BigInt(n));
    }
  }

  private async add(to: string, key: string, member: string, level: Level): Promise<void> {
    const entry: MemberLedger = { addAcked: false, addBy: null, addLevel: JSON.stringify(level), removeSent: false, removeObserved: false };
    this.sets.get(key)!.set(member, entry);
    const res = await this.update(to, 'set', key, { op: 'add', member }, level);
    if (!res.ok) { this.failed++; return; }
    entry.addAcked = true;
    entry.addBy = (res.body as TypedReplyBody).coordinator;
  }

  private async remove(to: string, key: string, member: string, level: Level): Promise<void> {
    const entry = this.sets.get(key)!.get(member)!;
    entry.removeSent = true;
    const res = await this.update(to, 'set', key, { op: 'remove', member }, level);
    if (!res.ok) { this.failed++; return; }
    entry.removeObserved = (res.body as TypedReplyBody).held === true;
  }

  private async finalState(key: string) {
    const cl = this.run.cluster;
    const primaries = preferenceListForKey(cl.ringNow(), key).primaries;
    const first = primaries.find((p) => cl.isRunning(p));
    return first === undefined ? undefined : cl.node(first).store.read(key);
  }

  /** Checkers 8 and 9; call once replicas have converged. */
  async check(violations: string[]): Promise<void> {
    const gone = this.run.cluster.gone;
    for (const [key, l] of this.counters) {
      const value = counterOf(await this.finalState(typedKey('counter', key)));
      let excusedUp = 0n;
      let excusedDown = 0n;
      for (const [by, n] of l.eventualBy) if (gone.has(by)) { if (n > 0n) excusedUp += n; else excusedDown += n; }
      const low = l.acked - excusedUp + l.maybeDown;
      const high = l.acked - excusedDown + l.maybeUp;
      if (value < low || value > high) {
        violations.push(`counter ${key} is ${value}, not the sum of acknowledged increments ${l.acked} (allowed ${low}..${high} for failed or excused ones)`);
      }
    }
    for (const [key, ledger] of this.sets) {
      const members = new Set(membersOf(await this.finalState(typedKey('set', key))));
      for (const m of members) if (!ledger.has(m)) violations.push(`set ${key} holds ${m}, which no add sent`);
      for (const [m, e] of ledger) {
        const excused = e.addLevel === JSON.stringify({ consistency: 'eventual' }) && e.addBy !== null && gone.has(e.addBy);
        if (e.addAcked && !e.removeSent && !members.has(m) && !excused) violations.push(`set ${key} lost acknowledged add of ${m} (coordinated by ${e.addBy})`);
        if (e.removeObserved && members.has(m)) violations.push(`set ${key} still holds ${m}, whose acknowledged remove had observed its add`);
      }
    }
  }
}
