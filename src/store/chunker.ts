/**
 * Splits a file's text into chunks of about `size` characters for embedding. Cuts are made
 * where they hurt least: before a definition in code (or a heading in Markdown), then at a
 * blank line, then at a line end, then between words, and only as a last resort inside a
 * word. Consecutive chunks overlap by about `overlap` characters, except after a cut before
 * a definition or heading, where the new chunk starts cleanly.
 *
 * @module
 */
import { extname } from "node:path";

/** One piece of a text. */
export interface TextChunk {
  text: string;
  /** Offset of the chunk's first character in the text. */
  start: number;
  /** Offset just past the chunk's last character. */
  end: number;
  /** The 1-based line the chunk starts on. */
  line: number;
}

/** Options of {@linkcode chunkText}. */
export interface ChunkOptions {
  /** Target chunk length in characters; default 500. */
  size?: number;
  /** Characters repeated from the end of one chunk at the start of the next; default 80. */
  overlap?: number;
  /** The file's path, used to recognise code and Markdown by extension. */
  path?: string;
}

/** Default chunk length in characters. */
export const DEFAULT_CHUNK_SIZE = 500;
/**
 * Default most tokens of one chunk: under the 512-token physical batch llama-server embeds
 * one input in by default (`--ubatch-size`), with room to spare.
 */
export const DEFAULT_CHUNK_TOKENS = 256;
/** Default overlap in characters. */
export const DEFAULT_CHUNK_OVERLAP = 80;

const CODE_EXTENSIONS = new Set(
  (
    "ts tsx mts cts js jsx mjs cjs py pyi go rs java kt kts scala c h cc cpp cxx hpp hh cs " +
    "rb php swift m mm sh bash zsh fish lua sql zig dart ex exs erl hs ml mli clj cljs el " +
    "vue svelte r jl nim pl pm groovy gradle tf proto"
  ).split(" "),
);
const MARKDOWN_EXTENSIONS = new Set(["md", "markdown", "mdx", "rst", "adoc", "org"]);

const DEFINITION =
  /^\s*(?:@\w|\/\*\*|(?:export\s+(?:default\s+)?|pub(?:\([^)]*\))?\s+|public\s+|private\s+|protected\s+|static\s+|async\s+|unsafe\s+|abstract\s+|final\s+|override\s+)*(?:function\b|class\b|interface\b|type\s+\w|enum\b|struct\b|trait\b|impl\b|def\b|fn\b|func\b|module\b|namespace\b|object\b|(?:const|let|var)\s+\w+\s*(?::[^=]+)?=\s*(?:async\s*)?(?:\(|function\b)))/;
const HEADING = /^(?:#{1,6}\s|\*+\s|=+\s|={3,}$|-{3,}$)/;
const COMMENT = /^\s*(?:\/\/|\/\*|\*|#(?!\s*\w+\s*\()|--|;;|"""|''')/;

/** How a file's structure is recognised. */
export type TextKind = "code" | "markdown" | "text";

/** Whether `path` holds code, Markdown-like prose, or plain text, judging by its extension. */
export function textKind(path: string | undefined): TextKind {
  const ext = extname(path ?? "").slice(1).toLowerCase();
  if (CODE_EXTENSIONS.has(ext)) return "code";
  if (MARKDOWN_EXTENSIONS.has(ext)) return "markdown";
  return "text";
}

/**
 * Splits `text` into chunks of about `opts.size` characters (see the module documentation).
 * Whitespace-only stretches produce no chunk.
 *
 * @example
 * ```ts
 * const chunks = chunkText(source, { path: "src/agent.ts" });
 * chunks[0].line; // 1
 * ```
 */
export function chunkText(text: string, opts: ChunkOptions = {}): TextChunk[] {
  const size = Math.max(50, Math.floor(opts.size ?? DEFAULT_CHUNK_SIZE));
  const overlap = Math.max(
    0,
    Math.min(Math.floor(opts.overlap ?? DEFAULT_CHUNK_OVERLAP), size / 2),
  );
  const lines = analyseLines(text, textKind(opts.path));
  const chunks: TextChunk[] = [];
  let start = 0;
  while (start < text.length) {
    let cut: number;
    let clean = false;
    if (text.length - start <= size) {
      cut = text.length;
    } else {
      ({ cut, clean } = findCut(text, lines, start, size));
    }
    pushChunk(chunks, text, lines, start, cut);
    if (cut >= text.length) break;
    start = clean || overlap === 0 ? cut : overlapStart(text, lines, start, cut, overlap);
  }
  return chunks;
}

/** Options of {@linkcode chunkByTokens}. */
export interface TokenChunkOptions extends ChunkOptions {
  /** The most tokens one chunk may have; default {@linkcode DEFAULT_CHUNK_TOKENS}. */
  maxTokens?: number;
  /** Counts the tokens of a text with the embedding model's tokenizer (or an estimate). */
  count: (text: string) => Promise<number>;
}

/**
 * Chunks `text` as {@linkcode chunkText} does, then splits every chunk that has more than
 * `maxTokens` tokens by the embedding model's own count, in proportion, until each fits: 500
 * characters of English are about 125 tokens, 500 CJK characters 500 or more.
 *
 * @example
 * ```ts
 * const chunks = await chunkByTokens(text, { count: async (t) => t.length, maxTokens: 256 });
 * ```
 */
export async function chunkByTokens(text: string, opts: TokenChunkOptions): Promise<TextChunk[]> {
  const maxTokens = Math.max(8, opts.maxTokens ?? DEFAULT_CHUNK_TOKENS);
  const out: TextChunk[] = [];
  const fit = async (chunk: TextChunk, depth: number): Promise<void> => {
    const tokens = await opts.count(chunk.text);
    if (tokens <= maxTokens || depth > 8 || chunk.text.length < 2) {
      out.push(chunk);
      return;
    }
    const size = Math.max(1, Math.floor(chunk.text.length * (maxTokens / tokens) * 0.9));
    const parts = size >= 50
      ? chunkText(chunk.text, { size, overlap: 0, path: opts.path })
      : splitEvery(chunk.text, size);
    const base = text.slice(0, chunk.start).split("\n").length - 1;
    for (const p of parts) {
      await fit({
        text: p.text,
        start: chunk.start + p.start,
        end: chunk.start + p.end,
        line: base + p.line,
      }, depth + 1);
    }
  };
  for (const chunk of chunkText(text, opts)) await fit(chunk, 0);
  return out;
}

/** `text` in pieces of `size` characters, for the rare text too dense for {@linkcode chunkText}. */
function splitEvery(text: string, size: number): TextChunk[] {
  const out: TextChunk[] = [];
  for (let start = 0; start < text.length; start += size) {
    const piece = text.slice(start, start + size);
    if (!piece.trim()) continue;
    out.push({
      text: piece,
      start,
      end: start + piece.length,
      line: text.slice(0, start).split("\n").length,
    });
  }
  return out;
}

interface Lines {
  /** Offset of the first character of each line. */
  starts: number[];
  /** Priority of cutting just before each line: 3 definition/heading, 2 after a blank line, 1 other. */
  priority: number[];
}

function analyseLines(text: string, kind: TextKind): Lines {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  const content = starts.map((s, i) =>
    text.slice(s, i + 1 < starts.length ? starts[i + 1] - 1 : text.length)
  );
  const blank = content.map((l) => l.trim() === "");
  const priority = content.map((line, i) => {
    if (kind === "code" && DEFINITION.test(line)) return 3;
    if (kind === "markdown" && HEADING.test(line)) return 3;
    return i > 0 && blank[i - 1] ? 2 : 1;
  });
  if (kind === "code") {
    // Comments and decorators just above a definition belong to it: cut before them instead.
    for (let i = 1; i < priority.length; i++) {
      if (priority[i] !== 3) continue;
      let j = i;
      while (j - 1 > 0 && !blank[j - 1] && COMMENT.test(content[j - 1])) j--;
      if (j !== i) {
        priority[j] = 3;
        for (let k = j + 1; k <= i; k++) priority[k] = 1;
      }
    }
  }
  return { starts, priority };
}

function findCut(text: string, lines: Lines, start: number, size: number) {
  const limit = start + size;
  const earliest = start + Math.floor(size * 0.3);
  let best = -1;
  let bestPriority = 0;
  for (let i = firstLineAfter(lines.starts, earliest); i < lines.starts.length; i++) {
    const at = lines.starts[i];
    if (at > limit) break;
    if (lines.priority[i] >= bestPriority) {
      best = at;
      bestPriority = lines.priority[i];
    }
  }
  if (best > start) return { cut: best, clean: bestPriority === 3 };
  const window = text.slice(earliest, limit);
  const space = Math.max(window.lastIndexOf(" "), window.lastIndexOf("\t"));
  if (space >= 0) return { cut: earliest + space + 1, clean: false };
  return { cut: limit, clean: false };
}

function overlapStart(text: string, lines: Lines, start: number, cut: number, overlap: number) {
  const from = Math.max(start + 1, cut - overlap);
  const i = firstLineAfter(lines.starts, from);
  if (i < lines.starts.length && lines.starts[i] < cut) return lines.starts[i];
  const space = text.slice(from, cut).search(/\s\S/);
  return space >= 0 ? from + space + 1 : cut;
}

function pushChunk(chunks: TextChunk[], text: string, lines: Lines, start: number, end: number) {
  const raw = text.slice(start, end);
  if (raw.trim() === "") return;
  const lead = raw.length - raw.replace(/^\s*\n/, "").length;
  const body = raw.slice(lead).trimEnd();
  const from = start + lead;
  chunks.push({
    text: body,
    start: from,
    end: from + body.length,
    line: lineOf(lines.starts, from),
  });
}

/** The index of the first line starting at or after `offset`. */
function firstLineAfter(starts: number[], offset: number): number {
  let lo = 0, hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid] < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lineOf(starts: number[], offset: number): number {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
