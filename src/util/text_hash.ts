/**
 * A fast, non-cryptographic hash of a string, for cache keys that must not keep the text
 * itself alive. Two texts get the same key only by a 1-in-2^53 accident; never use it where a
 * collision could be forced to harm (trust, integrity: use SHA-256 there).
 *
 * @module
 */

/**
 * A 53-bit hash of the UTF-16 code units of `text`, seeded with its length (cyrb53's mixing).
 *
 * @example
 * ```ts
 * textHash("hello") === textHash("hello"); // true
 * ```
 */
export function textHash(text: string): number {
  let h1 = 0xdeadbeef ^ text.length;
  let h2 = 0x41c6ce57 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
