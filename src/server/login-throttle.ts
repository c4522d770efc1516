// Slows down password and secret guessing: a failed AUTH is answered after
// loginFailureDelayMs, doubled for each further failure from the same
// address within loginFailureWindowMs, up to loginFailureDelayMaxMs (and
// the connection is then closed, so every guess costs a new handshake).
// Pure: time comes in as an argument. Bounded: at most
// loginSourcesTrackedMax addresses are remembered, the oldest forgotten.

import { limits } from '../limits.js';

interface Failures { count: number; firstMs: number }

export class LoginThrottle {
  /** Insertion-ordered: the first entry is the oldest. */
  private readonly bySource = new Map<string, Failures>();

  /** Records a failure from `source`; returns how long to wait before answering. */
  fail(source: string, nowMs: number): number {
    let f = this.bySource.get(source);
    if (f && nowMs - f.firstMs > limits.loginFailureWindowMs) f = undefined;
    if (!f) f = { count: 0, firstMs: nowMs };
    f.count++;
    this.bySource.delete(source);
    this.bySource.set(source, f);
    for (const k of this.bySource.keys()) {
      if (this.bySource.size <= limits.loginSourcesTrackedMax) break;
      this.bySource.delete(k);
    }
    return Math.min(limits.loginFailureDelayMaxMs, limits.loginFailureDelayMs * 2 ** Math.min(f.count - 1, 30));
  }

  get tracked(): number {
    return this.bySource.size;
  }
}
