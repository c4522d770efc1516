// connect({ retry }): how many times a request walks the nodes it may use
// before failing, and how long it waits between walks.
//
// One walk already tries every candidate node once (the replicas of the key
// first, then any member), so a retry is for riding out something that
// affects every node at once: a rolling restart, a short network cut, a
// cluster-wide OVERLOADED. Only failures that are safe to repeat start
// another walk: UNAVAILABLE (no node reached; for a counter update only when
// nothing may have been applied, since a counter's write id does not protect
// it across coordinators) and OVERLOADED (the node refused before doing
// anything). TIMEOUT, QUORUM_UNAVAILABLE and refusals are answers, returned
// at once. The wait before walk k+1 is min(maxDelayMs, baseDelayMs * 2^(k-1)),
// with full jitter by default (a random wait up to that), so many clients
// cut off together do not come back in step.

import { shown } from './shown.js';

export interface RetryOptions {
  /** Walks over the nodes per request, 1 (no retry) to retryAttemptsMax.
   * Default 1: one walk already fails over to every node. */
  readonly attempts?: number;
  /** The wait before the second walk, ms. Default 100. */
  readonly baseDelayMs?: number;
  /** The longest wait between walks, ms. Default 2000. */
  readonly maxDelayMs?: number;
  /** Wait a random time up to the computed delay (true, default) or
   * exactly it (false). */
  readonly jitter?: boolean;
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly jitter: boolean;
}

/** The most walks a request may make: a caller who wants to wait longer
 * for a cluster to come back should loop above the client, where it can
 * see the errors. */
export const retryAttemptsMax = 100;
/** The longest configurable wait between walks, ms. */
export const retryDelayMsMax = 60_000;

export const retryDefaults: RetryPolicy = { attempts: 1, baseDelayMs: 100, maxDelayMs: 2000, jitter: true };

/** Validates connect()'s retry option (TypeError on nonsense: it is a
 * programming error, not a runtime condition). */
export function retryPolicy(opts: RetryOptions | undefined): RetryPolicy {
  if (opts === undefined) return retryDefaults;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new TypeError('retry must be an object: { attempts, baseDelayMs, maxDelayMs, jitter }');
  for (const k of Object.keys(opts)) {
    if (!['attempts', 'baseDelayMs', 'maxDelayMs', 'jitter'].includes(k)) throw new TypeError(`retry has an unknown option "${k}"`);
  }
  const int = (name: string, v: unknown, min: number, max: number, fallback: number): number => {
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new TypeError(`retry.${name} (${shown(v)}) must be an integer from ${min} to ${max}`);
    return v;
  };
  const attempts = int('attempts', opts.attempts, 1, retryAttemptsMax, retryDefaults.attempts);
  const baseDelayMs = int('baseDelayMs', opts.baseDelayMs, 0, retryDelayMsMax, retryDefaults.baseDelayMs);
  const maxDelayMs = int('maxDelayMs', opts.maxDelayMs, 0, retryDelayMsMax, Math.max(retryDefaults.maxDelayMs, baseDelayMs));
  if (maxDelayMs < baseDelayMs) throw new TypeError(`retry.maxDelayMs (${maxDelayMs}) must be at least retry.baseDelayMs (${baseDelayMs})`);
  if (opts.jitter !== undefined && typeof opts.jitter !== 'boolean') throw new TypeError('retry.jitter must be true or false');
  return { attempts, baseDelayMs, maxDelayMs, jitter: opts.jitter ?? retryDefaults.jitter };
}

/** The wait before walk `attempt + 1` (attempt counts from 1). */
export function retryDelayMs(p: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return p.jitter ? Math.floor(random() * (exp + 1)) : exp;
}
