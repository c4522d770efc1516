// AbortSignal support for every client call: the call rejects at once with
// ABORTED when its signal fires; a signal already aborted sends nothing.
//
// Invariant: the listener a call adds to its signal is removed when the call
// settles, however it settles, so a long-lived signal passed to many calls
// holds no listener per finished call.

import { TuneKvError } from '../errors.js';

/** TypeError unless `signal` is undefined or an AbortSignal. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  return signal;
}

export function abortedError(signal: AbortSignal, maybeApplied: boolean): TuneKvError {
  const reason = signal.reason instanceof Error ? signal.reason.message : signal.reason === undefined ? '' : String(signal.reason);
  return new TuneKvError('ABORTED', `the request was aborted${reason ? `: ${reason}` : ''}`, { maybeApplied, reason: signal.reason });
}

/** Runs `work`; if `signal` fires first, rejects with what `onAbort` makes
 * (and calls `cleanup` so the abandoned work stops holding resources). */
export async function withSignal<T>(signal: AbortSignal | undefined, work: () => Promise<T>, onAbort: () => TuneKvError): Promise<T> {
  if (signal === undefined) return work();
  if (signal.aborted) throw onAbort();
  let listener: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    listener = () => reject(onAbort());
    signal.addEventListener('abort', listener, { once: true });
  });
  try {
    return await Promise.race([work(), aborted]);
  } finally {
    signal.removeEventListener('abort', listener!);
  }
}

/** A wait that an abort cuts short (rejecting with ABORTED). */
export function sleep(ms: number, signal: AbortSignal | undefined, maybeApplied: () => boolean): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return withSignal(signal, () => new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); }),
    () => abortedError(signal!, maybeApplied())).finally(() => clearTimeout(timer));
}
