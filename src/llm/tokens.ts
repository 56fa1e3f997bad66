/**
 * Token estimates, for when a server has no tokenizer endpoint.
 *
 * @module
 */
import type { Message } from "../types.ts";

/** Overhead of a chat template per message, in tokens (role markers and separators). */
export const PER_MESSAGE_OVERHEAD = 4;

/**
 * Estimates tokens of text: about one token per 3.5 characters, never fewer than the number
 * of words (a conservative figure so a budget errs on the safe side).
 *
 * @example
 * ```ts
 * estimateTextTokens("hello world"); // 4
 * ```
 */
export function estimateTextTokens(text: string): number {
  if (!text) return 0;
  const words = text.split(/\s+/).filter(Boolean).length;
  return Math.max(words, Math.ceil(text.length / 3.5));
}

/** Estimates the tokens of a whole message list, template overhead included. */
export function estimateTokens(messages: Message[]): number {
  return messages.reduce((n, m) => n + estimateTextTokens(m.content) + PER_MESSAGE_OVERHEAD, 0);
}
