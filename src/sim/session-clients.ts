// Session clients in the simulator, and their checker.
//
// A session client does what kv.session() does (client/session.ts), over
// the simulated network: its reads carry what it saw of the key (GET
// atLeast, from the same SessionState the library uses), its puts and
// deletes carry that as their context. Mostly at `eventual`, through any
// node, so a read often lands on a replica the session's last write has
// not reached.
//
// Checker 7 (session guarantees, per key): a successful session read never
// returns a state older than what the session wrote or read before it
// (read-your-writes and monotonic reads): its clock descends every clock an
// earlier acknowledged reply of the session carried. The record is the
// checker's own (every clock seen), not the SessionState's, so a session
// that forgot something is caught too. Two answers with no live value are
// excused, because a caller cannot tell them from the state it saw:
//   - the session's own last look at the key found nothing (it deleted it,
//     or read it deleted): "not found" again is the same to the caller;
//   - everything missing was superseded by a delete sent before the read
//     began (its tombstone may since have been reaped).

import { descends, covers } from '../core/clock/vclock.js';
import type { VClock } from '../core/clock/vclock.js';
import { SessionState } from '../client/session-state.js';
import type { TuneKvError } from '../errors.js';
import { MsgType } from '../protocol/messages.js';
import type { GetReplyBody, PutReplyBody, TypedReplyBody, WireClock } from '../protocol/messages.js';
import { typedKey } from '../core/crdt/typed-object.js';
import { versionFromWire } from '../core/crdt/typed-version.js';
import { between, derive, pick } from './random.js';
import type { Random } from './random.js';

/** A write as the simulator's other checkers record it (simulator.ts). */
export interface SessionWriteRecord {
  readonly key: string;
  readonly context: VClock;
  readonly wid: Uint8Array;
  readonly level: string;
  readonly isDelete: boolean;
  readonly sentMs: number;
  acked: boolean;
  ackedMs: number;
  dot: [string, number] | null;
}

/** What a session client needs of the simulator's run. */
export interface SessionSimHost {
  readonly now: number;
  readonly violations: string[];
  readonly writes: SessionWriteRecord[];
  ops: number;
  failed: number;
  sleep(ms: number): Promise<void>;
  request(to: string, type: number, body: unknown): Promise<{ ok: true; body: unknown } | { ok: false; error: TuneKvError }>;
  /** Nodes a client may send to (running ones mostly). */
  targets(r: Random): string;
}

interface Seen {
  clocks: WireClock[];
  /** The session's last look at the key found nothing. */
  lastGone: boolean;
}

const levels = [{ consistency: 'eventual' }, { consistency: 'eventual' }, { consistency: 'eventual' }, { consistency: 'quorum' }, { consistency: 'strong' }];

export class SessionClient {
  private readonly state = new SessionState();
  private readonly seen = new Map<string, Seen>();
  reads = 0;
  /** Session reads that failed with SESSION_UNAVAILABLE (allowed: a read
   * may fail, never answer older). */
  unavailable = 0;
  lookedFurther = 0;

  constructor(private readonly host: SessionSimHost, private readonly name: string) {}

  async run(seed: number, ops: number, keys: number): Promise<void> {
    const r = derive(seed, this.name);
    for (let i = 0; i < ops; i++) {
      await this.host.sleep(between(r, 0, 40));
      const key = `k${between(r, 1, keys)}`;
      const to = this.host.targets(r);
      const level = pick(r, levels);
      const roll = r();
      this.host.ops++;
      if (roll < 0.5) {
        await this.get(to, key, level);
        continue;
      }
      await this.write(to, key, roll < 0.9 ? `${this.name}-${i}` : null, level, r);
      // Half the time, read it back at once through any node at `eventual`:
      // the read races the write's replication, which is what a session
      // must win (a plain client would often see the older state here).
      if (r() < 0.5) await this.get(this.host.targets(r), key, { consistency: 'eventual' });
    }
  }

  private async get(to: string, key: string, level: object): Promise<void> {
    const startMs = this.host.now;
    const atLeast = this.state.atLeast(key);
    const body = {
      key, ...level,
      ...(atLeast ? { atLeast: atLeast.contexts.map((c) => [c.clock, c.mac]), ...(atLeast.deleted ? { atLeastDeleted: true } : {}) } : {}),
    };
    const res = await this.host.request(to, MsgType.GET, body);
    if (!res.ok) {
      this.host.failed++;
      if (res.error.code === 'SESSION_UNAVAILABLE') this.unavailable++;
      return;
    }
    this.reads++;
    const reply = res.body as GetReplyBody;
    if ((reply.lookedFurther ?? 0) > 0) this.lookedFurther++;
    const found = reply.values.length > 0;
    this.check(key, reply.context, found, startMs, `${JSON.stringify(level)} via ${to}`);
    this.state.observe(key, reply.context, reply.contextMac ?? null, !found);
    this.record(key, reply.context, !found);
  }

  private async write(to: string, key: string, value: string | null, level: object, r: Random): Promise<void> {
    let context = this.state.contextFor(key)?.clock;
    if (value === null && context === undefined) {
      // Deletes carry a context, so the other checkers know what they superseded.
      await this.get(to, key, level);
      context = this.state.contextFor(key)?.clock ?? [];
    }
    const wid = Buffer.from(Array.from({ length: 12 }, () => between(r, 0, 255)));
    const rec: SessionWriteRecord = {
      key, context: (context ?? []) as VClock, wid, level: JSON.stringify(level), isDelete: value === null, sentMs: this.host.now, acked: false, ackedMs: 0, dot: null,
    };
    this.host.writes.push(rec);
    const body = { key, ...level, wid, ...(context ? { context } : {}), ...(value === null ? {} : { value: Buffer.from(value), vtype: 1 }) };
    const res = await this.host.request(to, value === null ? MsgType.DELETE : MsgType.PUT, body);
    if (!res.ok) { this.host.failed++; return; }
    const reply = res.body as PutReplyBody;
    rec.acked = true;
    rec.ackedMs = this.host.now;
    rec.dot = reply.dot ?? null;
    this.state.observe(key, reply.context, reply.contextMac ?? null, value === null);
    this.record(key, reply.context, value === null);
  }

  private record(key: string, clock: WireClock, gone: boolean): void {
    const s = this.seen.get(key) ?? { clocks: [], lastGone: false };
    s.clocks.push(clock);
    s.lastGone = gone;
    this.seen.set(key, s);
  }

  /** Checker 7: this read is at least as new as everything seen before. */
  private check(key: string, got: WireClock, found: boolean, startMs: number, how: string): void {
    const s = this.seen.get(key);
    if (s === undefined) return;
    if (!found && s.lastGone) return;
    for (const before of s.clocks) {
      if (descends(got as VClock, before as VClock)) continue;
      const missing = (before as VClock).filter(([actor, counter]) => !covers(got as VClock, actor, counter));
      const deleted = !found && missing.every(([actor, counter]) => this.host.writes.some((d) => d.isDelete && d.key === key
        && d.sentMs < startMs && covers(d.context, actor, counter)));
      if (deleted) continue;
      this.host.violations.push(`session ${this.name} read ${key} (${how}) at ${startMs} went back: got ${JSON.stringify(got.map(([a, c]) => [a, c]))}`
        + `, had seen ${JSON.stringify(before.map(([a, c]) => [a, c]))} (found ${found})`);
      return;
    }
  }
}

/**
 * A session client of counters and sets (s.counter(), s.set()), checked by
 * checker 7 too. It alone writes its keys (`<name>:c`, `<name>:s`), so what
 * a read must show follows from its own record, not from the versions the
 * nodes signed (the thing under test):
 *   - a counter only ever incremented by it reads at least the sum of its
 *     acknowledged increments, and never less than an earlier read (a
 *     failed increment may count once, twice or not at all: no upper bound);
 *   - a set member whose last operation was acknowledged is present after
 *     an add and absent after a remove; one whose last operation failed may
 *     be either.
 * Mostly at `eventual`, through any node, reading back at once.
 */
export class TypedSessionClient {
  private readonly state = new SessionState();
  private ackedSum = 0n;
  private lastRead = 0n;
  /** Member -> present after its last acknowledged op. */
  private readonly members = new Map<string, boolean>();
  /** Members an operation of which failed: that add may surface later
   * (add wins over a remove that did not see it), so never checked again. */
  private readonly uncertain = new Set<string>();
  private seq = 0;
  reads = 0;
  unavailable = 0;
  lookedFurther = 0;

  constructor(private readonly host: SessionSimHost, private readonly name: string) {}

  async run(seed: number, ops: number): Promise<void> {
    const r = derive(seed, this.name);
    for (let i = 0; i < ops; i++) {
      await this.host.sleep(between(r, 0, 40));
      const level = pick(r, levels);
      const roll = r();
      this.host.ops++;
      if (roll < 0.4) await this.increment(this.host.targets(r), BigInt(between(r, 1, 5)), level);
      else if (roll < 0.8) await this.setOp(this.host.targets(r), `m${between(r, 1, 6)}`, r() < 0.6 ? 'add' : 'remove', level);
      else await this.read(this.host.targets(r), roll < 0.9 ? 'counter' : 'set', level);
      if (r() < 0.5) await this.read(this.host.targets(r), roll < 0.4 ? 'counter' : 'set', { consistency: 'eventual' });
    }
  }

  private stored(kind: 'counter' | 'set'): string {
    return kind === 'counter' ? typedKey('counter', `${this.name}:c`) : typedKey('set', `${this.name}:s`);
  }

  private sessionFields(kind: 'counter' | 'set'): Record<string, unknown> {
    const held = this.state.typedAtLeast(this.stored(kind));
    return held.length === 0 ? { session: true } : { session: true, atLeast: held.map((v) => [v.wire, v.mac]) };
  }

  private observe(kind: 'counter' | 'set', reply: TypedReplyBody): void {
    const v = reply.version;
    if (v === undefined) return;
    const version = versionFromWire(kind, v[0]);
    if (typeof version === 'string') {
      this.host.violations.push(`typed session ${this.name}: malformed version in a reply: ${version}`);
      return;
    }
    this.state.observeTyped(this.stored(kind), { wire: v[0], mac: v[1], version });
  }

  private async increment(to: string, n: bigint, level: object): Promise<void> {
    const wid = Buffer.from(`${this.name}-${++this.seq}`.padEnd(12, '.'));
    const res = await this.host.request(to, MsgType.TYPE_UPDATE,
      { type: 'counter', key: `${this.name}:c`, op: 'incr', n, wid, ...level, ...this.sessionFields('counter') });
    if (!res.ok) { this.host.failed++; return; }
    this.ackedSum += n;
    this.observe('counter', res.body as TypedReplyBody);
  }

  private async setOp(to: string, member: string, op: 'add' | 'remove', level: object): Promise<void> {
    this.members.delete(member);
    const res = await this.host.request(to, MsgType.TYPE_UPDATE,
      { type: 'set', key: `${this.name}:s`, op, member, ...level, ...this.sessionFields('set') });
    if (!res.ok) { this.host.failed++; this.uncertain.add(member); return; }
    if (!this.uncertain.has(member)) this.members.set(member, op === 'add');
    this.observe('set', res.body as TypedReplyBody);
  }

  private async read(to: string, kind: 'counter' | 'set', level: object): Promise<void> {
    const startMs = this.host.now;
    const expected = new Map(this.members);
    const floor = this.ackedSum > this.lastRead ? this.ackedSum : this.lastRead;
    const res = await this.host.request(to, MsgType.TYPE_READ,
      { type: kind, key: kind === 'counter' ? `${this.name}:c` : `${this.name}:s`, ...level, ...this.sessionFields(kind) });
    if (!res.ok) {
      this.host.failed++;
      if (res.error.code === 'SESSION_UNAVAILABLE') this.unavailable++;
      return;
    }
    this.reads++;
    const reply = res.body as TypedReplyBody;
    if ((reply.lookedFurther ?? 0) > 0) this.lookedFurther++;
    const how = `${JSON.stringify(level)} via ${to} at ${startMs}`;
    if (kind === 'counter') {
      const value = BigInt(reply.value ?? '0');
      if (value < floor) this.host.violations.push(`typed session ${this.name} read its counter (${how}) as ${value}, below ${floor} (acknowledged ${this.ackedSum}, read before ${this.lastRead})`);
      if (value > this.lastRead) this.lastRead = value;
    } else {
      const got = new Set(reply.members ?? []);
      for (const [m, present] of expected) {
        if (got.has(m) !== present) this.host.violations.push(`typed session ${this.name} read its set (${how}): ${m} ${present ? 'missing after its acknowledged add' : 'present after its acknowledged remove'}`);
      }
    }
    this.observe(kind, reply);
  }
}
