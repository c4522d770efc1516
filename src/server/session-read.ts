// The session fields of a GET, as the coordinator receives them: `atLeast`
// (the contexts a session saw of the key) and `atLeastDeleted`, validated
// like a put's context before any state machine sees them.
//
// Every clock must carry this cluster's MAC, as a put's context must
// (security/context-mac.ts): a session can only ask a read to be at least
// as new as states some node of this cluster really showed it. A made-up
// clock could otherwise make every read of a key fail with
// SESSION_UNAVAILABLE for as long as the caller liked (harmless to others,
// since it only fails the caller's own reads, but a wrong answer). Empty
// clocks need no MAC: they ask for nothing.

import type { AtLeast } from '../core/clock/session-cover.js';
import type { VClock } from '../core/clock/vclock.js';
import { invalid } from '../errors.js';
import { limits } from '../limits.js';
import { clockFromWire } from '../protocol/object-codec.js';
import { checkOptionalBool } from '../protocol/validate.js';
import { typedVersionMac, verifyContextMac, verifyTypedVersionMac } from '../security/context-mac.js';
import type { VersionedObject } from '../core/clock/object.js';
import type { TypedKind } from '../core/crdt/typed-object.js';
import { boundVersion, joinVersions, versionFromWire, versionOf, versionText, versionToWire } from '../core/crdt/typed-version.js';
import type { TypedVersion } from '../core/crdt/typed-version.js';

/** The session constraint of a GET body, or undefined when it has none.
 * Throws INVALID_ARGUMENT on anything malformed or unsigned. */
export function parseAtLeast(b: Record<string, unknown>, contextKey: Buffer, key: string): AtLeast | undefined {
  const deleted = checkOptionalBool('atLeastDeleted', b.atLeastDeleted) ?? false;
  if (b.atLeast === undefined || b.atLeast === null) {
    if (deleted) throw invalid('atLeastDeleted needs atLeast');
    return undefined;
  }
  if (!Array.isArray(b.atLeast)) throw invalid('atLeast must be a list of [context, mac]');
  if (b.atLeast.length > limits.sessionContextsPerKeyMax) {
    throw invalid(`atLeast has ${b.atLeast.length} contexts; at most sessionContextsPerKeyMax (${limits.sessionContextsPerKeyMax}) are allowed`);
  }
  const clocks: VClock[] = [];
  for (const item of b.atLeast as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2) throw invalid('atLeast must be a list of [context, mac]');
    const clock = clockFromWire(item[0], 'atLeast context');
    if (clock.length === 0) continue;
    if (!verifyContextMac(contextKey, key, clock, item[1])) {
      throw invalid('atLeast context was not issued by this cluster for this key (or was changed): pass the contexts reads and writes of this key returned, unchanged');
    }
    clocks.push(clock);
  }
  return { clocks, deleted };
}

/**
 * The session fields of a TYPE_READ or TYPE_UPDATE: `session: true` asks
 * for the signed version of the state in the reply; `atLeast: [version,
 * mac], ...]` is what the session saw of the key
 * (core/crdt/typed-version.ts), each version carrying this cluster's MAC,
 * as a GET's contexts must. The reply signs the join of the state and every
 * version sent, so a session holds one version per key except while two of
 * its requests of the key ran at once (at most sessionContextsPerKeyMax).
 */
export interface TypedSession {
  readonly atLeast: TypedVersion | undefined;
}

export function parseTypedSession(b: Record<string, unknown>, dataKey: string, kind: TypedKind, contextKey: Buffer): TypedSession | undefined {
  const session = checkOptionalBool('session', b.session) ?? false;
  if (b.atLeast === undefined || b.atLeast === null) return session ? { atLeast: undefined } : undefined;
  if (!Array.isArray(b.atLeast)) throw invalid('atLeast of a counter or set is a list of [version, mac]');
  if (b.atLeast.length > limits.sessionContextsPerKeyMax) {
    throw invalid(`atLeast has ${b.atLeast.length} versions; at most sessionContextsPerKeyMax (${limits.sessionContextsPerKeyMax}) are allowed`);
  }
  let joined: TypedVersion | undefined;
  for (const item of b.atLeast as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2) throw invalid('atLeast of a counter or set is a list of [version, mac]');
    const version = versionFromWire(kind, item[0]);
    if (typeof version === 'string') throw invalid(`atLeast: ${version}`);
    if (!verifyTypedVersionMac(contextKey, dataKey, versionText(version), item[1])) {
      throw invalid('atLeast version was not issued by this cluster (or was changed): pass the versions replies returned, unchanged');
    }
    joined = joined === undefined ? version : joinVersions(joined, version);
  }
  return { atLeast: joined };
}

/** The reply field of a session's typed request: the version of `obj`
 * joined with what the session sent, bounded (the update's actor kept),
 * signed. */
export function typedVersionReply(kind: TypedKind, dataKey: string, obj: VersionedObject | undefined, s: TypedSession, contextKey: Buffer,
  keep: readonly string[]): [unknown[], Buffer] {
  const mine = versionOf(kind, obj);
  const joined = s.atLeast === undefined ? mine : joinVersions(mine, s.atLeast);
  const v = boundVersion(joined, [...keep, ...(s.atLeast?.entries.map((e) => e[0]) ?? [])]);
  return [versionToWire(v), typedVersionMac(contextKey, dataKey, versionText(v))];
}
