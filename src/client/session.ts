// kv.session(): read-your-writes, monotonic reads, monotonic writes and
// writes-follow-reads per key, at any level (`eventual` included).
//
//   - A session read sends what the session has seen of the key (GET
//     `atLeast`, signed contexts); the coordinator answers only with a
//     state at least that new, asking more replicas when the first are
//     behind, and fails with SESSION_UNAVAILABLE rather than answer older
//     (core/coordinator/get-fsm.ts). Its reply is recorded: later reads
//     never go back (monotonic reads), and a read after the session's own
//     write sees it (read-your-writes).
//   - A session put or delete carries, as its context, what the session has
//     seen of the key (unless the caller passes one), so it supersedes
//     exactly that and is ordered after the session's earlier writes and
//     reads of the key (monotonic writes, writes-follow-reads). A plain
//     kv.put is unchanged: it has seen nothing.
//   - A delete of a key the session has seen nothing of is a plain delete
//     (the node reads at the delete's level and deletes what it sees).
//
// The guarantees hold per key, for the sessionKeysMax most recently used
// keys (session-state.ts). s.token() carries a session between processes:
// kv.session(token).
//
// Counters and sets: s.counter(key) and s.set(key) are kv.counter() and
// kv.set() whose every request carries `session: true` and the signed
// versions the session holds of the key (`atLeast`); every reply's version
// (the state's joined with those sent, signed by the node:
// core/crdt/typed-version.ts) is recorded. A read is then at least as new as
// the session's own updates and earlier reads of the key, and a session's
// remove, clear or reset takes away at least what the session saw
// (server/coordinator.ts, sessionNeedsRead). Increments and adds need no
// order: they commute.

import type { DeleteOptions, GetOptions, GetResult, PutOptions, PutResult, TuneKvClient } from './client.js';
import { decodeSignedContext, encodeContext } from './client.js';
import { SessionState } from './session-state.js';
import { TuneKvError } from '../errors.js';
import { typedCounterPrefix } from '../core/crdt/typed-object.js';
import { versionFromWire } from '../core/crdt/typed-version.js';
import { contextMacBytes } from '../security/context-mac.js';
import type { TypedReplyBody } from '../protocol/messages.js';
import type { CounterHandle, SetHandle, TypedSessionHook } from './types.js';

export class Session {
  private readonly state: SessionState;

  constructor(private readonly kv: TuneKvClient, token?: string) {
    this.state = token === undefined ? new SessionState() : SessionState.fromToken(token);
  }

  /** Keys the session remembers (at most sessionKeysMax). */
  get keys(): number {
    return this.state.size;
  }

  /** The session as a string (not secret; see session-state.ts), for
   * kv.session(token) in another request or process. */
  token(): string {
    return this.state.token();
  }

  async get<T = unknown>(key: string, options: GetOptions = {}): Promise<GetResult<T>> {
    const res = await this.kv.get<T>(key, { ...options, ...this.atLeastOptions(key) });
    this.observe(key, res.context, !res.found);
    return res;
  }

  async put(key: string, value: unknown, options: PutOptions = {}): Promise<PutResult> {
    const res = await this.kv.put(key, value, { ...options, context: options.context ?? this.contextFor(key) });
    this.observe(key, res.context, false);
    return res;
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<PutResult> {
    const res = await this.kv.delete(key, { ...options, context: options.context ?? this.contextFor(key) });
    this.observe(key, res.context, true);
    return res;
  }

  /** kv.counter(key) within this session (see the header). */
  counter(key: string): CounterHandle {
    return this.kv.typedHandle('counter', key, this.typedHook);
  }

  /** kv.set(key) within this session (see the header). */
  set(key: string): SetHandle {
    return this.kv.typedHandle('set', key, this.typedHook);
  }

  private readonly typedHook: TypedSessionHook = {
    fields: (stored) => {
      const held = this.state.typedAtLeast(stored);
      return held.length === 0 ? { session: true } : { session: true, atLeast: held.map((v) => [v.wire, v.mac]) };
    },
    observe: (stored, reply) => this.observeTyped(stored, reply),
  };

  /** Records a typed reply's version. A node that sends none (an older
   * version of tunekv) leaves the session as it was; a malformed one is a
   * PROTOCOL_ERROR, since handing it back would fail every later request. */
  private observeTyped(stored: string, reply: TypedReplyBody): void {
    const v = reply.version;
    if (v === undefined) return;
    const kind = stored.startsWith(typedCounterPrefix) ? 'counter' : 'set';
    const version = Array.isArray(v) && v.length === 2 ? versionFromWire(kind, v[0]) : 'not [version, mac]';
    if (typeof version === 'string' || !(v[1] instanceof Uint8Array) || v[1].length !== contextMacBytes) {
      throw new TuneKvError('PROTOCOL_ERROR', `typed reply with a malformed session version: ${typeof version === 'string' ? version : 'mac'}`);
    }
    this.state.observeTyped(stored, { wire: v[0], mac: v[1], version });
  }

  /** The read options that hold a read of `key` to what the session saw. */
  atLeastOptions(key: string): Pick<GetOptions, 'atLeast' | 'atLeastDeleted'> {
    const seen = this.state.atLeast(key);
    if (seen === undefined) return {};
    return { atLeast: seen.contexts.map((c) => encodeContext(c.clock, c.mac)), atLeastDeleted: seen.deleted };
  }

  /** The context a write of `key` carries: what the session saw of it. */
  contextFor(key: string): string | undefined {
    const c = this.state.contextFor(key);
    return c === undefined ? undefined : encodeContext(c.clock, c.mac);
  }

  /** Records a state of `key` a node returned (a context string). */
  observe(key: string, context: string, deleted: boolean): void {
    const { clock, mac } = decodeSignedContext(context);
    this.state.observe(key, clock, mac, deleted);
  }
}
