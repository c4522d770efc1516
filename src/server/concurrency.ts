// Bounded concurrency: the one helper the background services (hinted
// handoff, anti-entropy) use to run many peer round trips a few at a time.
//
// Invariants: at most `limit` calls of fn are in flight; results keep the
// order of the items; after the first failure no new item is started, and
// the returned promise settles only once every call it started has settled,
// so nothing it began is still running when the caller moves on.

/** Runs fn over items, at most `limit` at a time; resolves to the results in
 * item order, or rejects with the first error. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`limit (${limit}) must be a positive integer`);
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        if (!failed) { failed = true; firstError = err; }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw firstError;
  return out;
}
