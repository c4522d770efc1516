// The key-space rule of counters and sets, shared by client and node: a
// typed key is stored under a prefix starting with NUL (see
// core/crdt/typed-object.ts, typedKey), and plain keys may not start with
// NUL, so no plain key can ever name a counter's or a set's storage.

import { invalid } from '../errors.js';

export const typedKeyLead = '\u0000';

/** Throws INVALID_ARGUMENT for a plain key in the typed key space. */
export function checkPlainKey(key: string): string {
  if (key.startsWith(typedKeyLead)) {
    throw invalid('a key may not start with NUL (\\u0000): that prefix is the key space of counters and sets');
  }
  return key;
}
