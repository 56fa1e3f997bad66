/**
 * Token estimates, for when a server has no tokenizer endpoint.
 *
 * @module
 */
import type { Message } from "../types.ts";

/** Overhead of a chat template per message, in tokens (role markers and separators), guessed. */
export const PER_MESSAGE_OVERHEAD = 4;

/** Whether `c` (a UTF-16 unit) is one of the non-ASCII characters `\s` matches. */
function isWideSpace(c: number): boolean {
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 ||
    c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * Estimates tokens of text: about one token per 3.5 ASCII characters plus one per other
 * character (a CJK character is one token or more in common vocabularies), never fewer than
 * the number of words, so a budget errs on the safe side. One pass, no allocation: every
 * round of a turn estimates the whole conversation.
 *
 * @example
 * ```ts
 * estimateTextTokens("hello world"); // 4
 * estimateTextTokens("日本語"); // 3
 * ```
 */
export function estimateTextTokens(text: string): number {
  if (!text) return 0;
  let words = 0;
  let inWord = false;
  let others = 0; // characters (code points) outside ASCII
  let otherUnits = 0; // their UTF-16 units
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let space: boolean;
    if (c < 0x80) space = c === 32 || (c >= 9 && c <= 13);
    else {
      others++;
      otherUnits++;
      space = isWideSpace(c);
      if (c >= 0xd800 && c <= 0xdbff) {
        const next = text.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) {
          i++;
          otherUnits++;
        }
      }
    }
    if (space) inWord = false;
    else if (!inWord) {
      inWord = true;
      words++;
    }
  }
  const ascii = text.length - otherUnits;
  return Math.max(words, Math.ceil(ascii / 3.5 + others));
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
