// AbortSignal support for every client call: the call rejects at once with
// ABORTED when its signal fires; a signal already aborted sends nothing.
//
// Invariant: a caller's signal carries at most one listener of ours however
// many calls use it at once (Node warns, MaxListenersExceededWarning, past
// ten on one signal: a putMany of 100 entries with one signal, or 500
// concurrent gets with one, used to pass it). The calls listen on an
// internal signal linked to the caller's by that one listener; the internal
// signal is ours, so raising its listener limit hides no leak of the
// caller's. The link is counted: when the last call using it settles, the
// listener is removed from the caller's signal, so a long-lived signal
// holds no listener between calls.

import { setMaxListeners } from 'node:events';
import { TuneKvError } from '../errors.js';

/** TypeError unless `signal` is undefined or an AbortSignal. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  return signal;
}

/** The abort reason as text for details.reason: an Error's message (or its
 * name), a string as it is; anything else its message or name if it has
 * one, else nothing (details must stay plain, printable data). */
export function reasonText(reason: unknown): string | undefined {
  if (reason === undefined || reason === null) return undefined;
  if (typeof reason === 'string') return reason;
  if (typeof reason === 'number' || typeof reason === 'boolean' || typeof reason === 'bigint') return String(reason);
  if (typeof reason === 'object') {
    const r = reason as { message?: unknown; name?: unknown };
    if (typeof r.message === 'string' && r.message !== '') return r.message;
    if (typeof r.name === 'string' && r.name !== '') return r.name;
  }
  return undefined;
}

export function abortedError(signal: AbortSignal, maybeApplied: boolean): TuneKvError {
  const reason = reasonText(signal.reason);
  return new TuneKvError('ABORTED', `the request was aborted${reason ? `: ${reason}` : ''}`,
    { maybeApplied, ...(reason === undefined ? {} : { reason }) });
}

interface Link {
  readonly internal: AbortController;
  readonly forward: () => void;
  users: number;
}

/** Caller's signal -> its link (weak: a signal dropped by the caller takes
 * its link with it). */
const links = new WeakMap<AbortSignal, Link>();

/** An internal signal that fires when `signal` does, shared by every call
 * using `signal` at the moment; release() when the call settles. */
export function linkSignal(signal: AbortSignal): { readonly signal: AbortSignal; release(): void } {
  let link = links.get(signal);
  if (link === undefined) {
    const internal = new AbortController();
    // Ours alone, and its listeners are removed as calls settle: any number
    // of concurrent calls is no leak.
    setMaxListeners(0, internal.signal);
    const forward = (): void => internal.abort(signal.reason);
    signal.addEventListener('abort', forward, { once: true });
    link = { internal, forward, users: 0 };
    links.set(signal, link);
  }
  const l = link;
  l.users++;
  let released = false;
  return {
    signal: l.internal.signal,
    release: () => {
      if (released) return;
      released = true;
      if (--l.users > 0) return;
      signal.removeEventListener('abort', l.forward);
      if (links.get(signal) === l) links.delete(signal);
    },
  };
}

/** Runs `work`; if `signal` fires first, rejects with what `onAbort` makes
 * (and calls `cleanup` so the abandoned work stops holding resources). */
export async function withSignal<T>(signal: AbortSignal | undefined, work: () => Promise<T>, onAbort: () => TuneKvError): Promise<T> {
  if (signal === undefined) return work();
  if (signal.aborted) throw onAbort();
  const link = linkSignal(signal);
  let listener: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    listener = () => reject(onAbort());
    link.signal.addEventListener('abort', listener, { once: true });
  });
  try {
    return await Promise.race([work(), aborted]);
  } finally {
    link.signal.removeEventListener('abort', listener!);
    link.release();
  }
}

/** A wait that an abort cuts short (rejecting with ABORTED). */
export function sleep(ms: number, signal: AbortSignal | undefined, maybeApplied: () => boolean): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return withSignal(signal, () => new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); }),
    () => abortedError(signal!, maybeApplied())).finally(() => clearTimeout(timer));
}
