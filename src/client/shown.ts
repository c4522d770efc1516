// A value as the caller wrote it, for the message of a TypeError: the
// string '3' shows with its quotes (so `attempts: '3'` does not read as
// "(3)"), a number as itself (NaN, Infinity, which JSON would print as
// null), anything JSON cannot print as String() does.

export function shown(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'symbol' || typeof v === 'function') return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
