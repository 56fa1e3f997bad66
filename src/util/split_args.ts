/**
 * Splitting a command line into words without a shell.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";

/**
 * Splits `line` into words: whitespace separates, single quotes keep everything literally,
 * double quotes keep spaces and allow `\"` and `\\`, a backslash outside quotes escapes the
 * next character.
 *
 * @example
 * ```ts
 * splitArgs(`grep -n "two words" 'it''s'`); // ["grep", "-n", "two words", "its"]
 * ```
 */
export function splitArgs(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) {
    throw new HarveyError(`Unclosed ${quote === '"' ? "double" : "single"} quote in: ${line}`);
  }
  if (inWord) words.push(word);
  return words;
}
