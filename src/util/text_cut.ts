/**
 * Cutting text by length without cutting a character in two: a UTF-16 cut between the two
 * halves of a surrogate pair (an emoji, a rare CJK character) leaves a lone surrogate, which a
 * JSON parser on the other end refuses — and a tool result stays in every later request.
 *
 * @module
 */

const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/**
 * The first `n` UTF-16 units of `text` at most, one fewer when the `n`th would split a pair.
 *
 * @example
 * ```ts
 * headOf("ab😀", 3); // "ab"
 * ```
 */
export function headOf(text: string, n: number): string {
  if (n >= text.length) return text;
  const end = n > 0 && isHigh(text.charCodeAt(n - 1)) ? n - 1 : Math.max(0, n);
  return text.slice(0, end);
}

/**
 * The last `n` UTF-16 units of `text` at most, one fewer when the first would be the second
 * half of a pair.
 *
 * @example
 * ```ts
 * tailOf("😀ab", 3); // "ab"
 * ```
 */
export function tailOf(text: string, n: number): string {
  if (n >= text.length) return text;
  const start = text.length - Math.max(0, n);
  return text.slice(isLow(text.charCodeAt(start)) ? start + 1 : start);
}
