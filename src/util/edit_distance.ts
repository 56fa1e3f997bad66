/**
 * How far apart two words are, for "did you mean" suggestions.
 *
 * @module
 */

/**
 * The optimal-string-alignment distance of `a` and `b`: insertions, deletions, substitutions
 * and swaps of two neighbouring characters each count one.
 *
 * @example
 * ```ts
 * editDistance("lamafile", "llamafile"); // 1
 * editDistance("mdoel", "model"); // 1
 * ```
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The words of `known` that `typed` was probably meant to be: those it begins, and those
 * within one edit (two for words longer than four letters), nearest first, at most three.
 *
 * @example
 * ```ts
 * nearWords("lamafile", ["llamafile", "llamacpp", "model"]); // ["llamafile"]
 * ```
 */
export function nearWords(typed: string, known: readonly string[]): string[] {
  const word = typed.toLowerCase();
  const limit = word.length <= 4 ? 1 : 2;
  return known
    .map((k) => ({ k, d: word.length >= 2 && k.startsWith(word) ? 0 : editDistance(word, k) }))
    .filter((x) => x.d <= limit)
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, 3)
    .map((x) => x.k);
}
