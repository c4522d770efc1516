// What a session remembers of a counter or set: the typed state's own
// version, and the rule that says whether a state is at least that new.
//
// Typed states are joins, so "at least as new" is the type's own order:
//   - a counter covers a version when, for every actor of the version, its
//     increments (P) and decrements (N) are each at least the version's;
//   - a set (ORSWOT) covers a version when its clock dominates the
//     version's (every actor's counter at least the version's): a set whose
//     clock has seen a dot has seen that add and every remove of it.
// A missing object is the empty state: it covers only the empty version.
//
// A version is what a node saw (a state's P/N entries or set clock, joined
// with the versions the session sent along, which were signed, so they too
// were seen). Nodes sign versions (security/context-mac.ts,
// typedVersionMac) as they sign contexts, so a client cannot forge one that
// makes every replica look behind for ever.
//
// Bounded: at most sessionTypedEntriesMax entries. A state with more actors
// gives a subset of its entries (a weaker requirement, never a false
// "behind"): first the actors the caller names (the coordinator's own actor
// after an update, so read-your-writes holds for the session's own write),
// then the rest by actor order.
//
// Pure: no I/O.

import { actorProblem, counterProblem } from '../clock/vclock.js';
import type { VersionedObject } from '../clock/object.js';
import { limits } from '../../limits.js';
import { int64Max } from './counter.js';
import { decodeTyped } from './typed-object.js';
import type { TypedKind, TypedState } from './typed-object.js';

/** counter: [actor, p, n]; set: [actor, clock counter, 0n]. Sorted by actor,
 * no duplicates, no all-zero entries. */
export type VersionEntry = readonly [string, bigint, bigint];

export interface TypedVersion {
  readonly kind: TypedKind;
  readonly entries: readonly VersionEntry[];
}

function byActor(a: VersionEntry, b: VersionEntry): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** The full version of a state (not bounded: see boundVersion). */
export function versionOfState(t: TypedState): TypedVersion {
  if (t.kind === 'set') return { kind: 'set', entries: t.state.clock.map(([a, c]) => [a, BigInt(c), 0n] as const) };
  const m = new Map<string, [bigint, bigint]>();
  for (const [a, p] of t.state.p) m.set(a, [p, 0n]);
  for (const [a, n] of t.state.n) m.set(a, [m.get(a)?.[0] ?? 0n, n]);
  return { kind: 'counter', entries: [...m].map(([a, [p, n]]) => [a, p, n] as const).sort(byActor) };
}

/** The version of a stored object (undefined: never written). */
export function versionOf(kind: TypedKind, obj: VersionedObject | undefined): TypedVersion {
  if (obj === undefined) return { kind, entries: [] };
  const t = decodeTyped(obj);
  return t.kind === kind ? versionOfState(t) : { kind, entries: [] };
}

function lookup(v: TypedVersion): Map<string, VersionEntry> {
  return new Map(v.entries.map((e) => [e[0], e]));
}

/** True when `have` is at least as new as `seen`, in the type's order. */
export function versionCovers(have: TypedVersion, seen: TypedVersion): boolean {
  if (seen.entries.length === 0) return true;
  if (have.kind !== seen.kind) return false;
  const h = lookup(have);
  for (const [actor, x, y] of seen.entries) {
    const e = h.get(actor);
    if (e === undefined || e[1] < x || e[2] < y) return false;
  }
  return true;
}

/** The session-read rule for typed keys: does `obj` (a merged read result,
 * undefined = not found) cover what the session saw? */
export function typedCovers(obj: VersionedObject | undefined, seen: TypedVersion): boolean {
  return versionCovers(versionOf(seen.kind, obj), seen);
}

/** Entry-wise maximum: a state that covers both covers this. */
export function joinVersions(a: TypedVersion, b: TypedVersion): TypedVersion {
  const m = lookup(a);
  for (const e of b.entries) {
    const x = m.get(e[0]);
    m.set(e[0], x === undefined ? e : [e[0], x[1] > e[1] ? x[1] : e[1], x[2] > e[2] ? x[2] : e[2]]);
  }
  return { kind: a.kind, entries: [...m.values()].sort(byActor) };
}

/** At most `max` entries: `keep` first (those present), then by actor. */
export function boundVersion(v: TypedVersion, keep: readonly string[], max: number = limits.sessionTypedEntriesMax): TypedVersion {
  if (v.entries.length <= max) return v;
  const first = v.entries.filter((e) => keep.includes(e[0]));
  const rest = v.entries.filter((e) => !keep.includes(e[0]));
  return { kind: v.kind, entries: [...first, ...rest].slice(0, max).sort(byActor) };
}

/** Wire form: counter [[actor, p, n], ...]; set [[actor, counter], ...]
 * (msgpack ints; p and n may be int64). */
export function versionToWire(v: TypedVersion): unknown[] {
  return v.kind === 'counter' ? v.entries.map(([a, p, n]) => [a, p, n]) : v.entries.map(([a, c]) => [a, Number(c)]);
}

function total(raw: unknown): bigint | undefined {
  const t = typeof raw === 'bigint' ? raw : Number.isSafeInteger(raw) ? BigInt(raw as number) : undefined;
  return t === undefined || t < 0n || t > int64Max ? undefined : t;
}

/** A version from outside (request, token), or why it is not one. */
export function versionFromWire(kind: TypedKind, raw: unknown): TypedVersion | string {
  if (!Array.isArray(raw)) return 'a typed version must be a list of entries';
  if (raw.length > limits.sessionTypedEntriesMax) {
    return `a typed version has ${raw.length} entries; at most sessionTypedEntriesMax (${limits.sessionTypedEntriesMax})`;
  }
  const entries: VersionEntry[] = [];
  for (const e of raw as unknown[]) {
    if (!Array.isArray(e) || e.length !== (kind === 'counter' ? 3 : 2)) {
      return kind === 'counter' ? 'a counter version entry is [actor, p, n]' : 'a set version entry is [actor, counter]';
    }
    const problem = actorProblem(e[0]);
    if (problem !== null) return `typed version: ${problem}`;
    let entry: VersionEntry;
    if (kind === 'counter') {
      const p = total(e[1]);
      const n = total(e[2]);
      if (p === undefined || n === undefined || (p === 0n && n === 0n)) return 'a counter version\'s totals are integers from 0 to 2^63 - 1, not both 0';
      entry = [e[0] as string, p, n];
    } else {
      const c = counterProblem(e[1]);
      if (c !== null) return `typed version: ${c}`;
      entry = [e[0] as string, BigInt(e[1] as number), 0n];
    }
    const prev = entries[entries.length - 1];
    if (prev !== undefined && prev[0] >= entry[0]) return 'typed version entries must be sorted by actor without duplicates';
    entries.push(entry);
  }
  return { kind, entries };
}

/** The text a node signs: kind, then each entry, in order. Actors are node
 * ids (no ':' or newline) and the numbers print canonically, so two
 * different versions never share a text. */
export function versionText(v: TypedVersion): string {
  let out = `${v.kind}\n`;
  for (const [a, x, y] of v.entries) out += `${a}:${x}:${y}\n`;
  return out;
}
