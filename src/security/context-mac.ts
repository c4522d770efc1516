// Contexts a node issued, and only those, come back: every causal context a
// node hands a client (in GET_REPLY and PUT_REPLY) carries a MAC under a key
// derived from the cluster secret, and a put that hands a context back must
// carry it unchanged. A client can then only say "I saw this" about states
// some node of this cluster really showed it, never invent counters that
// would supersede writes it never saw (red team finding F2: a forged
// counter of another node made that node's later acknowledged writes
// disappear in merges). Every node holds the same secret, so a context
// issued by one node is accepted by all.
//
// The MAC covers the key the context was issued for and the clock's
// canonical text: actor, counter and timestamp of each entry, in order.
// Actors are node ids (no ':' or newline), the numbers print canonically
// and the key goes first with its byte length, so two different (key,
// clock) pairs never share a text. The key is in it because dot counters
// are a node's clock in µs, shared by every key it coordinates: a context
// of key A handed back with a put of key B would otherwise cover every
// version of B that node wrote before A's read, versions no read of B
// showed anyone (red team, issue 10: an acknowledged value was wiped by a
// put carrying another key's context, and by a session token whose key
// was renamed).

import { createHmac, timingSafeEqual } from 'node:crypto';

export const contextMacBytes = 16;

type Entries = readonly (readonly [string, number, number])[];

/** The key contexts are signed with, derived from the cluster key. */
export function contextKey(clusterKey: Buffer): Buffer {
  return createHmac('sha256', clusterKey).update('tunekv context mac v2').digest();
}

function canonical(dataKey: string, clock: Entries): string {
  let out = `${Buffer.byteLength(dataKey, 'utf8')}:${dataKey}\n`;
  for (const [actor, counter, ts] of clock) out += `${actor}:${counter}:${ts}\n`;
  return out;
}

/** The MAC of `clock` as a context of `dataKey` (the key a client names). */
export function contextMac(key: Buffer, dataKey: string, clock: Entries): Buffer {
  return createHmac('sha256', key).update(canonical(dataKey, clock)).digest().subarray(0, contextMacBytes);
}

/** True when `mac` is the MAC this cluster gives `clock` as a context of
 * `dataKey`. Never throws. */
export function verifyContextMac(key: Buffer, dataKey: string, clock: Entries, mac: unknown): boolean {
  if (!(mac instanceof Uint8Array) || mac.length !== contextMacBytes) return false;
  return timingSafeEqual(contextMac(key, dataKey, clock), mac);
}

/** The MAC of a counter's or set's version (core/crdt/typed-version.ts,
 * versionText) for the stored key `dataKey`, under the same key as
 * contexts but its own domain, so a context's MAC never passes for a
 * version's nor the reverse; bound to its key as contexts are, so one
 * counter's version cannot be handed back for another. */
export function typedVersionMac(key: Buffer, dataKey: string, text: string): Buffer {
  return createHmac('sha256', key).update('typed version v1\n').update(`${Buffer.byteLength(dataKey, 'utf8')}:${dataKey}\n`).update(text)
    .digest().subarray(0, contextMacBytes);
}

export function verifyTypedVersionMac(key: Buffer, dataKey: string, text: string, mac: unknown): boolean {
  if (!(mac instanceof Uint8Array) || mac.length !== contextMacBytes) return false;
  return timingSafeEqual(typedVersionMac(key, dataKey, text), mac);
}
