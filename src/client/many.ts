// getMany / putMany: many keys in one call, as single requests pipelined
// on the client's connections.
//
// Why not a batch message: each key already goes straight to a replica of
// its own (routing), so a batch would have to be split per coordinator and
// fanned out again on the node, with a new message for every node to
// validate. Single requests need nothing new on the wire: every frame is
// one request already bounded by clientFrameBytesMax (a batch can never
// build a frame past it), each key gets its own result or error, and the
// connection coalesces the frames written in one event-loop round into one
// socket write, so a batch of small keys costs few syscalls anyway.
//
// Invariants: at most manyInFlightMax requests of one call are in flight;
// at most manyKeysMax keys per call (TOO_LARGE before anything is sent);
// results are in input order, one per key, each ok or a TuneKvError; a
// non-TuneKvError (a bug, or a throwing resolver) rejects the call once
// every started request has settled.

import { TuneKvError } from '../errors.js';
import { limits } from '../limits.js';
import type { GetOptions, PutOptions } from './client.js';

export type GetManyOptions = Omit<GetOptions, 'atLeast' | 'atLeastDeleted'>;
export type PutManyOptions = Omit<PutOptions, 'context' | 'resolved'>;

/** One entry of putMany(): `context` as put()'s, per key. */
export interface PutEntry {
  readonly key: string;
  readonly value: unknown;
  readonly context?: string;
}

/** One key's outcome. */
export type ManyResult<R> =
  | { readonly key: string; readonly ok: true; readonly result: R }
  | { readonly key: string; readonly ok: false; readonly error: TuneKvError };

export function checkManyInput(count: number): void {
  if (count > limits.manyKeysMax) {
    throw new TuneKvError('TOO_LARGE', `${count} keys in one call; the limit is manyKeysMax (${limits.manyKeysMax}): split the call`,
      { size: count, limit: limits.manyKeysMax });
  }
}

type Keyed = string | { readonly key: string };

function keyOf(item: Keyed): string {
  return typeof item === 'string' ? item : item.key;
}

/** Runs `fn` on every item, at most `inFlightMax` at once; stops starting
 * new ones once `signal` fires (the caller rejects with ABORTED). */
export async function pipelined<I extends Keyed, R>(items: readonly I[], inFlightMax: number, signal: AbortSignal | undefined,
  fn: (item: I) => Promise<R>): Promise<ManyResult<R>[]> {
  const out = new Array<ManyResult<R>>(items.length);
  let next = 0;
  let bug: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && bug === undefined && !signal?.aborted) {
      const i = next++;
      const item = items[i]!;
      try {
        out[i] = { key: keyOf(item), ok: true, result: await fn(item) };
      } catch (err) {
        if (err instanceof TuneKvError) out[i] = { key: keyOf(item), ok: false, error: err };
        else bug ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlightMax, items.length) }, worker));
  if (bug !== undefined) throw bug;
  return out;
}
