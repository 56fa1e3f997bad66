/**
 * Searches one file: reads its bytes into a reused buffer, skips it when it is binary,
 * rejects it on the raw bytes when the pattern's required literal is absent, and only then
 * decodes and finds the matching lines.
 *
 * A file is opened by path, so a component swapped for a symlink between the listing and the
 * open could lead it outside the root (Deno has no `openat` or `O_NOFOLLOW`). Before the lines
 * of a file are kept, the opened handle is checked to be the file its path names inside the
 * root right now (same device and inode as a fresh, resolved look-up): a handle that was led
 * outside cannot pass, unless the outside file is also hard-linked inside. Only files with
 * matches pay for the check.
 *
 * @module
 */
import { createPairFinder, type PairFinder } from "./byte_kernel.ts";
import type { SearchMatch } from "./mod.ts";
import type { CompiledPattern } from "./pattern.ts";
import { isInside } from "./walk.ts";

/** A file is binary when one of its first 8 KB is a NUL byte. */
export const BINARY_PROBE = 8192;
/** Lines longer than this are cut to a window around the match. */
export const MAX_TEXT = 300;
/** A file with a line longer than this is not searched (a huge minified bundle, a dump). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

const NEWLINE = 10;
/** How many times a matched file's handle is compared with its path (see #isInsideFile). */
const VERIFY_ROUNDS = 3;
const decoder = new TextDecoder();

/** Reads and searches files one after the other, reusing one read buffer. */
export class FileScanner {
  #finder: PairFinder = createPairFinder();
  #buf = this.#finder.buffer;
  #pattern: CompiledPattern;
  #root: string;

  /** `root` is the real path of the folder no searched file may be outside of. */
  constructor(pattern: CompiledPattern, root: string) {
    this.#pattern = pattern;
    this.#root = root;
  }

  /**
   * Appends to `out` the matching lines of the file at `path` (shown as `rel`), at most
   * `limit` of them. Returns false when the file was not searched (binary, unreadable, a line
   * longer than MAX_LINE_BYTES, or not the file inside the root that its path names); `out`
   * may then hold some of its lines, to be dropped.
   */
  scanFile(path: string, rel: string, limit: number, out: SearchMatch[]): boolean {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) throw err;
      return false; // vanished or unreadable: skipped, as grep tools do
    }
    try {
      const before = out.length;
      if (!this.#scanOpen(file, rel, limit, out)) return false;
      return out.length === before || this.#isInsideFile(file, path);
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) throw err;
      return false;
    } finally {
      file.close();
    }
  }

  /**
   * The handle is the file `path` resolves to now, and that file is inside the root. A folder
   * on the way that is swapped for a symlink and back can fool a single look-up, so the path
   * is resolved again after each comparison: the swapper would have to win every round.
   */
  #isInsideFile(file: Deno.FsFile, path: string): boolean {
    const held = file.statSync();
    let real = Deno.realPathSync(path);
    for (let round = 0; round < VERIFY_ROUNDS; round++) {
      if (!isInside(real, this.#root)) return false;
      const now = Deno.lstatSync(real);
      if (held.dev !== now.dev || held.ino !== now.ino || !now.isFile) return false;
      const again = Deno.realPathSync(path);
      if (again !== real) return false;
      real = again;
    }
    return true;
  }

  #scanOpen(file: Deno.FsFile, rel: string, limit: number, out: SearchMatch[]): boolean {
    let buf = this.#buf;
    let len = 0; // bytes held in buf
    let lineBase = 1; // line number of buf[0]
    let probed = false;
    const start = out.length;
    for (;;) {
      const n = file.readSync(buf.subarray(len));
      const eof = n === null || n === 0;
      if (!eof) len += n;
      if (!probed && (eof || len >= BINARY_PROBE)) {
        if (this.#finder.find(buf, 0, Math.min(len, BINARY_PROBE), 0, 0, 0) >= 0) return false;
        probed = true;
      }
      if (eof) {
        if (len > 0) this.#searchBlock(buf, len, rel, lineBase, limit - (out.length - start), out);
        return true;
      }
      if (len < buf.length) continue;
      // The buffer is full: search the complete lines and keep the rest for the next read.
      const cut = buf.lastIndexOf(NEWLINE, len - 1) + 1;
      if (cut === 0) {
        // One line longer than the buffer: grow it (for this file only).
        if (buf.length >= MAX_LINE_BYTES) return false;
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
        continue;
      }
      this.#searchBlock(buf, cut, rel, lineBase, limit - (out.length - start), out);
      if (out.length - start >= limit) return true;
      lineBase += countNewlines(buf.subarray(0, cut));
      buf.copyWithin(0, cut, len);
      len -= cut;
    }
  }

  /** Searches `buf[0, end)`, a block of whole lines whose first line is `lineBase`. */
  #searchBlock(
    buf: Uint8Array,
    end: number,
    rel: string,
    lineBase: number,
    limit: number,
    out: SearchMatch[],
  ): void {
    const p = this.#pattern;
    if (limit <= 0) return;
    const block = buf.subarray(0, end);
    if (p.required && indexOfBytes(this.#finder, block, p.required, p.rare) < 0) return;
    const text = decoder.decode(block);
    if (p.perLine) searchLines(text, p, { path: rel, lineBase, limit }, out);
    else searchText(text, p, { path: rel, lineBase, limit }, out);
  }
}

/** Where a block of text comes from, and how many matches it may still add. */
export interface BlockInfo {
  /** The file's path, as shown. */
  path: string;
  /** Line number of the block's first line. */
  lineBase: number;
  /** At most this many matches are added. */
  limit: number;
}

/**
 * Finds the matching lines of `text` by searching it whole (the regex or `indexOf` jumps
 * straight to candidates), then checking the line each candidate falls in: a match that
 * spans a line end does not count, as in grep.
 */
export function searchText(
  text: string,
  p: CompiledPattern,
  block: BlockInfo,
  out: SearchMatch[],
): void {
  let from = 0; // where the next search starts: always the start of a line
  let counted = 0; // position up to which newlines have been counted
  let line = block.lineBase;
  const lit = p.literal;
  const req = p.requiredText;
  const scan = p.scan;
  let found = 0;
  while (from < text.length && found < block.limit) {
    let at: number;
    let end: number;
    if (lit !== null) {
      at = text.indexOf(lit, from);
      end = at + lit.length;
    } else {
      if (req !== null) {
        // Only a line holding the required text can match: start at the next such line
        // (String indexOf is several times faster than the regex engine's own scan).
        const k = text.indexOf(req, from);
        if (k < 0) return;
        from = Math.max(from, k > 0 ? text.lastIndexOf("\n", k - 1) + 1 : 0);
      }
      scan.lastIndex = from;
      const m = scan.exec(text);
      at = m ? m.index : -1;
      end = m ? at + m[0].length : -1;
    }
    // No match, or only an empty "line" after the final newline.
    if (at < 0 || (at === text.length && text.charCodeAt(at - 1) === 10)) return;
    const lineStart = at > 0 ? text.lastIndexOf("\n", at - 1) + 1 : 0;
    let lineEnd = text.indexOf("\n", at);
    if (lineEnd < 0) lineEnd = text.length;
    for (
      let i = text.indexOf("\n", counted);
      i >= 0 && i < lineStart;
      i = text.indexOf("\n", i + 1)
    ) {
      line++;
    }
    counted = lineStart;
    const lineText = text.slice(lineStart, lineEnd);
    // A match inside the line is the line's first match; one that runs past the line's end
    // says nothing about the line alone, which is then tested on its own.
    const col = end <= lineEnd ? at - lineStart : matchColumn(lineText, p);
    if (col >= 0) {
      out.push({ path: block.path, line, text: clip(lineText, col) });
      found++;
    }
    from = lineEnd + 1;
  }
}

/** Tests each line on its own: for patterns whose lookarounds could see past a line end. */
export function searchLines(
  text: string,
  p: CompiledPattern,
  block: BlockInfo,
  out: SearchMatch[],
): void {
  const lines = text.split("\n");
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  let found = 0;
  for (let i = 0; i < lines.length && found < block.limit; i++) {
    const col = matchColumn(lines[i], p);
    if (col >= 0) {
      out.push({ path: block.path, line: block.lineBase + i, text: clip(lines[i], col) });
      found++;
    }
  }
}

function matchColumn(line: string, p: CompiledPattern): number {
  const m = p.line.exec(line);
  return m ? m.index : -1;
}

/** The line without its `\r`, cut to about MAX_TEXT characters around column `col`. */
export function clip(line: string, col: number): string {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (text.length <= MAX_TEXT) return text;
  let start = Math.max(0, Math.min(col - 100, text.length - MAX_TEXT));
  let end = Math.min(text.length, start + MAX_TEXT);
  if (isLowSurrogate(text.charCodeAt(start))) start++;
  if (isLowSurrogate(text.charCodeAt(end))) end--;
  return `${start > 0 ? "…" : ""}${text.slice(start, end)}${end < text.length ? "…" : ""}`;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/**
 * Index of `needle` in `hay`, or -1: looks for the needle's two rarest bytes (at offsets
 * `rare`) with the SIMD kernel, then compares the rest.
 */
export function indexOfBytes(
  finder: PairFinder,
  hay: Uint8Array,
  needle: Uint8Array,
  rare: [number, number],
): number {
  const [o1, o2] = rare;
  const n = needle.length;
  const a = needle[o1];
  const b = needle[o2];
  const to = hay.length - (n - 1 - o2); // the last candidate puts the needle's end at the end
  for (let p = o1;; p++) {
    p = finder.find(hay, p, to, a, b, o2 - o1);
    if (p < 0) return -1;
    const s = p - o1;
    let k = 0;
    while (k < n && hay[s + k] === needle[k]) k++;
    if (k === n) return s;
  }
}

function countNewlines(bytes: Uint8Array): number {
  let count = 0;
  for (let i = bytes.indexOf(NEWLINE); i >= 0; i = bytes.indexOf(NEWLINE, i + 1)) count++;
  return count;
}
