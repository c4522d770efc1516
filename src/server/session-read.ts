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
import { verifyContextMac } from '../security/context-mac.js';

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
