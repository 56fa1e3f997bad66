/**
 * Token estimates, for when a server has no tokenizer endpoint.
 *
 * @module
 */
import type { Message } from "../types.ts";

/** Overhead of a chat template per message, in tokens (role markers and separators), guessed. */
export const PER_MESSAGE_OVERHEAD = 4;

// deno-lint-ignore no-control-regex
const NON_ASCII = /[^\x00-\x7f]/gu;

/**
 * Estimates tokens of text: about one token per 3.5 ASCII characters plus one per other
 * character (a CJK character is one token or more in common vocabularies), never fewer than
 * the number of words, so a budget errs on the safe side.
 *
 * @example
 * ```ts
 * estimateTextTokens("hello world"); // 4
 * estimateTextTokens("日本語"); // 3
 * ```
 */
export function estimateTextTokens(text: string): number {
  if (!text) return 0;
  const words = text.split(/\s+/).filter(Boolean).length;
  const others = text.match(NON_ASCII) ?? [];
  const ascii = text.length - others.join("").length;
  return Math.max(words, Math.ceil(ascii / 3.5 + others.length));
}

/** What of a message is sent as text: its content and its tool calls' JSON. */
export function messageText(m: Message): string {
  return m.toolCalls?.length ? `${m.content}\n${JSON.stringify(m.toolCalls)}` : m.content;
}

/** Estimates the tokens of a whole message list, template overhead included. */
export function estimateTokens(messages: Message[]): number {
  return messages.reduce(
    (n, m) => n + estimateTextTokens(messageText(m)) + PER_MESSAGE_OVERHEAD,
    0,
  );
}
