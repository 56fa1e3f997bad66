/**
 * Compiles a `/search` pattern once: the regular expressions, a literal fast path, and the
 * bytes every match must contain, so most files are rejected without being decoded.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";

/** A pattern ready to be run against file contents. */
export interface CompiledPattern {
  /** The pattern as the user typed it. */
  source: string;
  /** Set when the pattern has no regular-expression syntax: matched with `indexOf`. */
  literal: string | null;
  /** Global, multiline: finds candidate positions in a whole block of text. */
  scan: RegExp;
  /** Multiline, not global: decides whether one line matches, and where. */
  line: RegExp;
  /**
   * True when the pattern has lookarounds: a lookaround could see past a line end in a whole
   * block of text, so such patterns are tested line by line instead.
   */
  perLine: boolean;
  /** Text every match contains (the longest literal run of the pattern), or null. */
  requiredText: string | null;
  /** The same as UTF-8 bytes: a prefilter on raw file bytes. */
  required: Uint8Array | null;
  /** Indexes in `required` of its two rarest bytes, in order (equal for a single byte). */
  rare: [number, number];
}

const META = /[\\^$.|?*+()[\]{}]/;

/**
 * Compiles `pattern` (JavaScript RegExp syntax, case-sensitive, `^`/`$` at line ends).
 * Throws a HarveyError `Invalid pattern "(": Unterminated group` for a pattern that does
 * not compile.
 *
 * @example
 * ```ts
 * const p = compilePattern("fetch\\(");
 * p.required; // the bytes of "fetch("
 * ```
 */
export function compilePattern(pattern: string): CompiledPattern {
  const flags = compileFlags(pattern);
  const literal = META.test(pattern) || pattern === "" ? null : pattern;
  const required = literal ?? requiredLiteral(pattern);
  // A lone surrogate or U+FFFD would not be found in raw bytes as TextEncoder writes it.
  const bytes = required && required.isWellFormed() && !required.includes("\uFFFD")
    ? new TextEncoder().encode(required)
    : null;
  return {
    source: pattern,
    literal,
    scan: new RegExp(pattern, `g${flags}`),
    line: new RegExp(pattern, flags),
    perLine: /\(\?<?[=!]/.test(pattern),
    requiredText: bytes && bytes.length > 0 ? required : null,
    required: bytes && bytes.length > 0 ? bytes : null,
    rare: bytes ? rarestTwo(bytes) : [0, 0],
  };
}

/** Unicode mode when the pattern allows it, else the lenient legacy syntax (`\-`, `{`). */
function compileFlags(pattern: string): string {
  try {
    new RegExp(pattern, "mu");
    return "mu";
  } catch {
    try {
      new RegExp(pattern, "m");
      return "m";
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const reason = msg.slice(msg.lastIndexOf(": ") + 2);
      throw new HarveyError(
        `Invalid pattern "${pattern}": ${reason.charAt(0).toUpperCase()}${reason.slice(1)}`,
      );
    }
  }
}

/**
 * The longest run of literal characters that every match of `pattern` must contain, or null
 * when there is none that is certain (top-level alternation, only classes and groups…).
 * Conservative: anything it does not understand ends the current run.
 */
export function requiredLiteral(pattern: string): string | null {
  const runs: string[] = [];
  let run = "";
  const close = () => {
    if (run) runs.push(run);
    run = "";
  };
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i];
    let atom: string | null = null; // a literal character, or null for anything else
    if (c === "\\") {
      const e = pattern[i + 1];
      if (e === undefined) return null;
      if (/[A-Za-z0-9]/.test(e)) {
        const end = escapeEnd(pattern, i);
        if (end < 0) return null;
        i = end;
      } else {
        atom = e;
        i += 2;
      }
    } else if (c === "|") {
      return null; // top-level alternation: no single literal is required
    } else if (c === "[") {
      const end = classEnd(pattern, i);
      if (end < 0) return null;
      i = end;
    } else if (c === "(") {
      const end = groupEnd(pattern, i);
      if (end < 0) return null;
      i = end;
    } else if (c === "." || c === "^" || c === "$" || c === ")" || c === "]") {
      i += 1;
    } else if (
      c === "*" || c === "+" || c === "?" || (c === "{" && quantifierEnd(pattern, i) > 0)
    ) {
      return null; // a quantifier with nothing before it: let the regex engine judge
    } else {
      // A character; a surrogate pair is one character (and one atom under a quantifier).
      const pair = isHighSurrogate(c.charCodeAt(0)) && isLowSurrogate(pattern.charCodeAt(i + 1));
      atom = pair ? pattern.slice(i, i + 2) : c;
      i += atom.length;
    }
    // A quantifier applies to the atom just read.
    const q = pattern[i];
    let min = 1;
    let quantified = false;
    if (q === "*" || q === "?") {
      min = 0;
      quantified = true;
      i += 1;
    } else if (q === "+") {
      quantified = true;
      i += 1;
    } else if (q === "{") {
      const end = quantifierEnd(pattern, i);
      if (end > 0) {
        min = Number(/^\{(\d+)/.exec(pattern.slice(i))![1]);
        quantified = true;
        i = end;
      }
    }
    if (quantified && pattern[i] === "?") i += 1; // lazy
    if (atom === null || min === 0) {
      close();
    } else if (quantified) {
      run += atom; // required at least once, but what follows may not be adjacent
      close();
      run = atom;
    } else {
      run += atom;
    }
  }
  close();
  let best: string | null = null;
  for (const r of runs) if (best === null || r.length > best.length) best = r;
  return best;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Index just past an escape that starts with `\` + a letter or digit, or -1. */
function escapeEnd(p: string, i: number): number {
  const e = p[i + 1];
  if (e === "x") return i + 4;
  if (e === "c") return i + 3;
  if (e === "u") {
    if (p[i + 2] === "{") return closeAt(p, i + 3, "}");
    return i + 6;
  }
  if ((e === "p" || e === "P") && p[i + 2] === "{") return closeAt(p, i + 3, "}");
  if (e === "k" && p[i + 2] === "<") return closeAt(p, i + 3, ">");
  if (/[0-9]/.test(e)) {
    let j = i + 2;
    while (j < p.length && /[0-9]/.test(p[j])) j++;
    return j;
  }
  return i + 2;
}

function closeAt(p: string, from: number, ch: string): number {
  const j = p.indexOf(ch, from);
  return j < 0 ? -1 : j + 1;
}

/** Index just past the `]` that closes the class opened at `i`, or -1. */
function classEnd(p: string, i: number): number {
  for (let j = i + 1; j < p.length; j++) {
    if (p[j] === "\\") j++;
    else if (p[j] === "]") return j + 1;
  }
  return -1;
}

/** Index just past the `)` that closes the group opened at `i`, or -1. */
function groupEnd(p: string, i: number): number {
  let depth = 0;
  for (let j = i; j < p.length; j++) {
    const c = p[j];
    if (c === "\\") j++;
    else if (c === "[") {
      const end = classEnd(p, j);
      if (end < 0) return -1;
      j = end - 1;
    } else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return j + 1;
  }
  return -1;
}

/** Index just past a `{n}`, `{n,}` or `{n,m}` quantifier at `i`, or -1. */
function quantifierEnd(p: string, i: number): number {
  const m = /^\{\d+(,\d*)?\}/.exec(p.slice(i, i + 24));
  return m ? i + m[0].length : -1;
}

// How common a byte is in source code, lower is rarer (a rough guess: letters by English
// frequency, spaces and punctuation very common, upper case, digits and non-ASCII rare).
const COMMON = " etaoinsrlcdhupmfgbyw.,;:()=\"'_-{}/\n\tvkxjqz";

function rarestTwo(bytes: Uint8Array): [number, number] {
  const score = (b: number) => {
    if (b >= 128) return 0;
    const k = COMMON.indexOf(String.fromCharCode(b));
    return k < 0 ? 5 : COMMON.length - k + 10;
  };
  const order = Array.from(bytes.keys()).sort((i, j) => score(bytes[i]) - score(bytes[j]) || i - j);
  const [first, second = first] = order;
  return first < second ? [first, second] : [second, first];
}
