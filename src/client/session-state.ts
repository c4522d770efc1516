// What a client session has seen, per key, and its token.
//
// Per key: the signed contexts (clock + the node's MAC) of the states the
// session's reads returned and its writes produced, and whether the last
// of them had no live value (a delete, or a read that found nothing). A
// newer context replaces every one it descends; one concurrent with those
// held is kept beside them (the client cannot merge two signed contexts:
// only a node can sign the merge), so a key holds at most
// sessionContextsPerKeyMax, oldest dropped first. A read that covers them
// all (the node checks) folds them back to one.
//
// Bounded: at most sessionKeysMax keys, the most recently used; a key that
// falls out loses the session's guarantees (its reads may then be older
// than what the session saw of it). Pure: no I/O, so the simulator's
// session clients use it as the library does.
//
// The token is not secret: it holds key names and contexts, which a reader
// of those keys sees anyway, and it grants nothing (every context in it is
// checked by the node that receives it, against the cluster's MAC).
// Format: base64url of msgpack [version 2, [entry, ...]], least recently
// used key first; an entry is [key, deleted 0|1, [[clock, mac], ...]] for a
// plain key, or [typed key, [[version, mac], ...]] for a counter or set
// (the typed key is the stored one, "\0c:" or "\0s:" and the caller's key:
// typed-object.ts, typedKey). Version 1 tokens (plain keys only) are read.
//
// Counters and sets: per key, the signed versions (core/crdt/typed-version.ts)
// replies returned. A reply's version is the join of the state and what the
// request sent, so one is held, except when two requests of the key ran at
// once; a version covering another replaces it, as contexts do. Typed keys
// share sessionKeysMax with plain ones.

import { clockProblem, descends } from '../core/clock/vclock.js';
import type { VClock } from '../core/clock/vclock.js';
import { invalid } from '../errors.js';
import { limits } from '../limits.js';
import { clientBounds, pack, unpack } from '../protocol/codec.js';
import type { WireClock } from '../protocol/messages.js';
import { checkKey } from '../protocol/validate.js';
import { contextMacBytes } from '../security/context-mac.js';
import { typedCounterPrefix, typedPrefixBytes, typedSetPrefix } from '../core/crdt/typed-object.js';
import type { TypedKind } from '../core/crdt/typed-object.js';
import { versionCovers, versionFromWire } from '../core/crdt/typed-version.js';
import type { TypedVersion } from '../core/crdt/typed-version.js';
import { checkPlainKey } from '../protocol/typed-keys.js';

export const sessionTokenVersion = 2;

/** A context as a node signed it. */
export interface SignedClock {
  readonly clock: WireClock;
  readonly mac: Uint8Array;
}

interface Seen {
  contexts: SignedClock[];
  deleted: boolean;
}

/** A version of a counter or set as a node signed it (wire form kept to
 * hand back unchanged; `version` decoded to compare). */
export interface SignedVersion {
  readonly wire: unknown[];
  readonly mac: Uint8Array;
  readonly version: TypedVersion;
}

interface TypedSeen {
  versions: SignedVersion[];
}

function isTyped(seen: Seen | TypedSeen): seen is TypedSeen {
  return 'versions' in seen;
}

/** The kind of a stored typed key, or undefined for a plain key. */
function kindOfKey(key: string): TypedKind | undefined {
  return key.startsWith(typedCounterPrefix) ? 'counter' : key.startsWith(typedSetPrefix) ? 'set' : undefined;
}

export class SessionState {
  /** Insertion order is recency: a touched key is moved to the end. */
  private readonly keys = new Map<string, Seen | TypedSeen>();

  constructor(private readonly keysMax: number = limits.sessionKeysMax) {}

  get size(): number {
    return this.keys.size;
  }

  /** What a read of `key` must be at least as new as (undefined: nothing). */
  atLeast(key: string): { readonly contexts: readonly SignedClock[]; readonly deleted: boolean } | undefined {
    const seen = this.keys.get(key);
    if (seen === undefined || isTyped(seen) || seen.contexts.length === 0) return undefined;
    return { contexts: seen.contexts, deleted: seen.deleted };
  }

  /** The context a session put or delete of `key` carries: the newest one
   * held (with several, the others stay for reads). */
  contextFor(key: string): SignedClock | undefined {
    const seen = this.keys.get(key);
    return seen === undefined || isTyped(seen) ? undefined : seen.contexts[seen.contexts.length - 1];
  }

  /**
   * Records a state of `key` a node showed the session (a read's reply or a
   * write's). An unsigned context (`mac` null: a node that signs nothing,
   * or a reply to a caller trusted with unsigned contexts) cannot be
   * handed back to a node, so it is not kept; `deleted` still is.
   */
  observe(key: string, clock: WireClock, mac: Uint8Array | null, deleted: boolean): void {
    const held = this.keys.get(key);
    const seen = held === undefined || isTyped(held) ? { contexts: [], deleted: false } : held;
    this.keys.delete(key);
    this.keys.set(key, seen);
    if (clock.length > 0 && mac !== null) {
      const c = clock as VClock;
      // Already covered by one held (an accepted answer older than the
      // session, e.g. "not found" after a reaped delete): nothing new.
      if (!seen.contexts.some((s) => descends(s.clock as VClock, c))) {
        seen.contexts = seen.contexts.filter((s) => !descends(c, s.clock as VClock));
        seen.contexts.push({ clock, mac });
        while (seen.contexts.length > limits.sessionContextsPerKeyMax) seen.contexts.shift();
        seen.deleted = deleted;
      } else if (seen.contexts.some((s) => descends(c, s.clock as VClock))) {
        seen.deleted = deleted;
      }
    } else if (seen.contexts.length === 0) {
      seen.deleted = deleted;
    }
    this.trim();
  }

  private trim(): void {
    while (this.keys.size > this.keysMax) this.keys.delete(this.keys.keys().next().value as string);
  }

  /** The versions a read or update of typed key `key` (the stored key,
   * typedKey()) must be at least as new as; empty: nothing seen. */
  typedAtLeast(key: string): readonly SignedVersion[] {
    const seen = this.keys.get(key);
    return seen !== undefined && isTyped(seen) ? seen.versions : [];
  }

  /** Records a signed version a node returned for typed key `key`. One
   * covered by a version held adds nothing; one that covers others
   * replaces them; a concurrent one is kept beside them (at most
   * sessionContextsPerKeyMax, oldest dropped). */
  observeTyped(key: string, v: SignedVersion): void {
    const held = this.keys.get(key);
    const seen: TypedSeen = held !== undefined && isTyped(held) ? held : { versions: [] };
    this.keys.delete(key);
    this.keys.set(key, seen);
    if (v.version.entries.length > 0 && !seen.versions.some((s) => versionCovers(s.version, v.version))) {
      seen.versions = seen.versions.filter((s) => !versionCovers(v.version, s.version));
      seen.versions.push(v);
      while (seen.versions.length > limits.sessionContextsPerKeyMax) seen.versions.shift();
    }
    this.trim();
  }

  token(): string {
    const entries = [...this.keys].map(([key, s]) => (isTyped(s)
      ? [key, s.versions.map((v) => [v.wire, v.mac])]
      : [key, s.deleted ? 1 : 0, s.contexts.map((c) => [c.clock, c.mac])]));
    return pack([sessionTokenVersion, entries]).toString('base64url');
  }

  /** A session from a token, validated fully: INVALID_ARGUMENT on anything
   * malformed (the MACs are checked by the node each context reaches). */
  static fromToken(token: unknown, keysMax: number = limits.sessionKeysMax): SessionState {
    if (typeof token !== 'string') throw invalid('session token must be a string (from session.token())');
    if (token.length > limits.sessionTokenCharsMax) {
      throw invalid(`session token is ${token.length} characters; at most sessionTokenCharsMax (${limits.sessionTokenCharsMax})`);
    }
    if (!/^[A-Za-z0-9_-]*$/.test(token)) throw invalid('session token must be base64url (from session.token())');
    let value: unknown;
    try {
      value = unpack(Buffer.from(token, 'base64url'), clientBounds);
    } catch {
      throw invalid('session token is not a tunekv session token');
    }
    if (!Array.isArray(value) || value.length !== 2) throw invalid('session token is not a tunekv session token');
    if (value[0] !== sessionTokenVersion && value[0] !== 1) {
      throw invalid(`session token version ${String(value[0])} is not supported (expected 1 or ${sessionTokenVersion})`);
    }
    const entries = value[1] as unknown;
    if (!Array.isArray(entries)) throw invalid('session token is not a tunekv session token');
    if (entries.length > keysMax) throw invalid(`session token has ${entries.length} keys; at most sessionKeysMax (${keysMax})`);
    const state = new SessionState(keysMax);
    for (const e of entries as unknown[]) {
      if (value[0] === sessionTokenVersion && Array.isArray(e) && e.length === 2) {
        const [key, typed] = SessionState.typedEntry(e[0], e[1]);
        if (state.keys.has(key)) throw invalid('session token names a key twice');
        state.keys.set(key, typed);
        continue;
      }
      if (!Array.isArray(e) || e.length !== 3) throw invalid('session token entry is not [key, deleted, contexts]');
      const [key, deleted, contexts] = e as unknown[];
      checkPlainKey(checkKey(key));
      if (state.keys.has(key as string)) throw invalid('session token names a key twice');
      if (deleted !== 0 && deleted !== 1) throw invalid('session token entry: deleted must be 0 or 1');
      if (!Array.isArray(contexts) || contexts.length > limits.sessionContextsPerKeyMax) {
        throw invalid(`session token entry: at most sessionContextsPerKeyMax (${limits.sessionContextsPerKeyMax}) contexts per key`);
      }
      const seen: Seen = { contexts: [], deleted: deleted === 1 };
      for (const c of contexts as unknown[]) {
        if (!Array.isArray(c) || c.length !== 2) throw invalid('session token context is not [clock, mac]');
        const problem = clockProblem(c[0]);
        if (problem !== null) throw invalid(`session token context: ${problem}`);
        if (!(c[1] instanceof Uint8Array) || c[1].length !== contextMacBytes) throw invalid(`session token context: mac must be ${contextMacBytes} bytes`);
        if ((c[0] as unknown[]).length === 0) throw invalid('session token context: an empty clock is never kept');
        seen.contexts.push({ clock: c[0] as WireClock, mac: c[1] });
      }
      state.keys.set(key as string, seen);
    }
    return state;
  }

  /** A typed entry of a token, validated: INVALID_ARGUMENT otherwise. */
  private static typedEntry(rawKey: unknown, rawVersions: unknown): [string, TypedSeen] {
    const key = checkKey(rawKey);
    const kind = kindOfKey(key);
    if (kind === undefined || key.length === typedPrefixBytes) throw invalid('session token: a typed entry names no counter or set key');
    if (Buffer.byteLength(key, 'utf8') - typedPrefixBytes > limits.typedKeyBytesMax) {
      throw invalid(`session token: a counter or set key is at most typedKeyBytesMax (${limits.typedKeyBytesMax}) bytes`);
    }
    if (!Array.isArray(rawVersions) || rawVersions.length > limits.sessionContextsPerKeyMax) {
      throw invalid(`session token entry: at most sessionContextsPerKeyMax (${limits.sessionContextsPerKeyMax}) versions per key`);
    }
    const versions: SignedVersion[] = [];
    for (const v of rawVersions as unknown[]) {
      if (!Array.isArray(v) || v.length !== 2) throw invalid('session token version is not [version, mac]');
      const version = versionFromWire(kind, v[0]);
      if (typeof version === 'string') throw invalid(`session token: ${version}`);
      if (version.entries.length === 0) throw invalid('session token: an empty version is never kept');
      if (!(v[1] instanceof Uint8Array) || v[1].length !== contextMacBytes) throw invalid(`session token version: mac must be ${contextMacBytes} bytes`);
      versions.push({ wire: v[0] as unknown[], mac: v[1], version });
    }
    return [key, { versions }];
  }
}
