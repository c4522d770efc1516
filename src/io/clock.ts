// Time: the only place the shell reads the wall clock or sets timers.
// SystemClock for real nodes; ManualClock for tests and the simulator, where
// time moves only when the driver advances it.

export interface TimerHandle { readonly id: number }

export interface Clock {
  /** Wall-clock time, ms since the epoch: timestamps, deadlines. */
  nowMs(): number;
  /** Monotonic high-resolution time, ms (fractional): durations. */
  elapsedMs(): number;
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export class SystemClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  nowMs(): number {
    return Date.now();
  }

  elapsedMs(): number {
    return performance.now();
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const id = this.nextId++;
    const t = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, delayMs);
    this.timers.set(id, t);
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    const t = this.timers.get(handle.id);
    if (t) clearTimeout(t);
    this.timers.delete(handle.id);
  }

  /** Timers still set (a clean shutdown leaves none). */
  get pending(): number {
    return this.timers.size;
  }
}

interface ManualTimer { id: number; atMs: number; fn: () => void }

/** Deterministic time. Timers due at the same instant fire in the order
 * they were set. */
export class ManualClock implements Clock {
  private now: number;
  private timers: ManualTimer[] = [];
  private nextId = 1;

  constructor(startMs = 1_700_000_000_000) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  elapsedMs(): number {
    return this.now;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const timer = { id: this.nextId++, atMs: this.now + Math.max(0, delayMs), fn };
    let i = this.timers.length;
    while (i > 0 && this.timers[i - 1]!.atMs > timer.atMs) i--;
    this.timers.splice(i, 0, timer);
    return { id: timer.id };
  }

  clearTimer(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle.id);
  }

  /** When the next timer is due, or undefined. */
  nextDueMs(): number | undefined {
    return this.timers[0]?.atMs;
  }

  /** Fires the earliest timer (moving time to it); false when none. */
  fireNext(): boolean {
    const t = this.timers.shift();
    if (!t) return false;
    this.now = Math.max(this.now, t.atMs);
    t.fn();
    return true;
  }

  get pending(): number {
    return this.timers.length;
  }
}
