// Repeats and their spread, and the rule for calling out a difference:
// two cells differ only when their ranges over the repeats do not overlap.
// With one run there is no spread, so no difference is called out (a
// single run on a shared machine moves by more than most level gaps).

export interface Spread {
  readonly n: number;
  readonly min: number;
  readonly max: number;
  readonly median: number;
}

export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) throw new TypeError('spreadOf needs at least one value');
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, min: s[0]!, max: s[s.length - 1]!, median };
}

/** 'higher' when a is above b beyond the spread of both, 'lower' when
 * below, 'within' when the ranges overlap or either was measured once. */
export function compareSpreads(a: Spread, b: Spread): 'higher' | 'lower' | 'within' {
  if (a.n < 2 || b.n < 2) return 'within';
  if (a.min > b.max) return 'higher';
  if (a.max < b.min) return 'lower';
  return 'within';
}

/** "4,964" for one run, "4,964 (4,700–5,100)" for several: median, then range. */
export function formatSpread(s: Spread, fmt: (x: number) => string): string {
  return s.n < 2 ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}
