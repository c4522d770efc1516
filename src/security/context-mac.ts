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
// The MAC covers the clock's canonical text: actor, counter and timestamp
// of each entry, in order. Actors are node ids (no ':' or newline) and the
// numbers print canonically, so two different clocks never share a text.

import { createHmac, timingSafeEqual } from 'node:crypto';

export const contextMacBytes = 16;

type Entries = readonly (readonly [string, number, number])[];

/** The key contexts are signed with, derived from the cluster key. */
export function contextKey(clusterKey: Buffer): Buffer {
  return createHmac('sha256', clusterKey).update('tunekv context mac v1').digest();
}

function canonical(clock: Entries): string {
  let out = '';
  for (const [actor, counter, ts] of clock) out += `${actor}:${counter}:${ts}\n`;
  return out;
}

export function contextMac(key: Buffer, clock: Entries): Buffer {
  return createHmac('sha256', key).update(canonical(clock)).digest().subarray(0, contextMacBytes);
}

/** True when `mac` is the MAC this cluster gives `clock`. Never throws. */
export function verifyContextMac(key: Buffer, clock: Entries, mac: unknown): boolean {
  if (!(mac instanceof Uint8Array) || mac.length !== contextMacBytes) return false;
  return timingSafeEqual(contextMac(key, clock), mac);
}

/** The MAC of a counter's or set's version (core/crdt/typed-version.ts,
 * versionText), under the same key as contexts but its own domain, so a
 * context's MAC never passes for a version's nor the reverse. */
export function typedVersionMac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update('typed version v1\n').update(text).digest().subarray(0, contextMacBytes);
}

export function verifyTypedVersionMac(key: Buffer, text: string, mac: unknown): boolean {
  if (!(mac instanceof Uint8Array) || mac.length !== contextMacBytes) return false;
  return timingSafeEqual(typedVersionMac(key, text), mac);
}
