/**
 * The shape every benchmark reports, so `bench/run_all.ts` can print one table.
 *
 * @module
 */

/** One measured figure, with the baseline measured in the same run where there is one. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** The same measure for the baseline (raw fetch, ripgrep, curl, an empty script…). */
  baseline?: number;
  /** value / baseline, or whatever ratio the target is stated in. */
  ratio?: number;
  /** The target in words, e.g. "≤ 3× ripgrep". */
  target?: string;
  pass?: boolean;
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
