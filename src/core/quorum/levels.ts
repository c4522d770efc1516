// Consistency levels: what R and W a request gets, and whether fallbacks count.
//
//   eventual  R=1 W=1, fallbacks count (sloppy), read repair in the background
//   quorum    R=W=floor(N/2)+1, fallbacks count (sloppy) -- the default
//   strong    a majority of the key's primaries, fallbacks never count;
//             reads write the merged result back to a majority before replying
//   {r, w}    explicit numbers from 1 to N, sloppy like quorum
//
// Pure: resolveLevel() validates and returns a plain-words problem or a Quorum.

import { majority } from './tally.js';

export const consistencyLevels = ['eventual', 'quorum', 'strong'] as const;
export type Consistency = (typeof consistencyLevels)[number];

export interface LevelRequest {
  readonly consistency?: Consistency | undefined;
  readonly r?: number | undefined;
  readonly w?: number | undefined;
}

export interface Quorum {
  /** 'eventual' | 'quorum' | 'strong' | 'custom' (explicit r/w). */
  readonly level: Consistency | 'custom';
  readonly r: number;
  readonly w: number;
  /** Strong counts only primaries and writes merged reads back before replying. */
  readonly strong: boolean;
}

export function isConsistency(value: unknown): value is Consistency {
  return typeof value === 'string' && (consistencyLevels as readonly string[]).includes(value);
}

function countProblem(name: 'r' | 'w', value: number | undefined, n: number): string | null {
  if (value === undefined) return null;
  if (!Number.isInteger(value) || value < 1) return `${name} (${String(value)}) must be an integer of at least 1`;
  if (value > n) return `${name} (${value}) cannot exceed n (${n})`;
  return null;
}

export function resolveLevel(req: LevelRequest, n: number): Quorum | string {
  const consistency = req.consistency ?? 'quorum';
  if (!isConsistency(consistency)) return `consistency must be one of ${consistencyLevels.join(', ')}; got ${String(consistency)}`;
  const problem = countProblem('r', req.r, n) ?? countProblem('w', req.w, n);
  if (problem) return problem;
  const explicit = req.r !== undefined || req.w !== undefined;
  if (consistency === 'strong') {
    if (explicit) return 'strong chooses its own r and w (a majority of primaries); pass r/w without strong instead';
    const m = majority(n);
    return { level: 'strong', r: m, w: m, strong: true };
  }
  const base = consistency === 'eventual' ? 1 : majority(n);
  if (!explicit) return { level: consistency, r: base, w: base, strong: false };
  return { level: 'custom', r: req.r ?? base, w: req.w ?? base, strong: false };
}

/** "quorum", "strong", or "r=3" / "w=3" for explicit numbers, for messages. */
export function describeLevel(q: Quorum, side: 'r' | 'w'): string {
  return q.level === 'custom' ? `${side}=${side === 'r' ? q.r : q.w}` : q.level;
}
