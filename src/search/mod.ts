/**
 * The search engine behind `/search PATTERN [PATH]`: a regular-expression search over the
 * text files of the workspace, in path order, capped, binary-safe, never leaving the root.
 *
 * @module
 */
import { isAbsolute, relative, resolve as resolvePath, sep } from "node:path";
import { setImmediate } from "node:timers";
import { HarveyError } from "../errors.ts";
import { compilePattern } from "./pattern.ts";
import { FileScanner } from "./scan.ts";
import { isInside, type WalkEntry, walkFolder } from "./walk.ts";

/** One matching line. */
export interface SearchMatch {
  /** Path relative to the workspace root, with "/" separators. */
  path: string;
  /** 1-based line number. */
  line: number;
  /** The line, cut to about 300 characters around the match. */
  text: string;
}

/** What a search found. */
export interface SearchResult {
  /** Sorted by path (folder by folder, names in code-unit order), then line. */
  matches: SearchMatch[];
  /** True when there were more matches than `maxMatches`. */
  truncated: boolean;
  /** Text files read and searched (binary files are not counted). */
  filesSearched: number;
}

/** Options of {@linkcode searchFiles}. */
export interface SearchOptions {
  /** The workspace root; its real path bounds the search. */
  root: string;
  /**
   * Folder or file to search instead of the whole root. Absolute and already checked by the
   * sandbox, unless `resolve` is given; a relative path is taken from the root.
   */
  start?: string;
  /** The sandbox's path check, applied to `start` (e.g. the PATH the user typed). */
  resolve?: (path: string) => Promise<string>;
  /** Folders not searched, relative to the root (e.g. Harvey's own `agents`). */
  exclude?: string[];
  /** At most this many matches are returned (default 100). */
  maxMatches?: number;
  /** Aborts the search; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Default cap on the number of matches. */
export const DEFAULT_MAX_MATCHES = 100;

// The walk and the reads are synchronous (much faster than async file ops, see
// bench/search_bench.ts); the event loop gets a turn this often so that Ctrl-C, spinners and
// timers keep working during a long search (setImmediate: setTimeout(0) costs a millisecond).
const SLICE_MS = 20;

/**
 * Searches the text files under `opts.start` (default: the root) for lines matching
 * `pattern`, a JavaScript regular expression. Hidden files and folders, `node_modules`,
 * binary files (a NUL byte in the first 8 KB) and symlinked folders are skipped; a symlinked
 * file is searched only when its real path is inside the root.
 *
 * @example
 * ```ts
 * const { matches, truncated } = await searchFiles("TODO\\(", { root: Deno.cwd() });
 * for (const m of matches) console.log(`${m.path}:${m.line}: ${m.text}`);
 * ```
 */
export async function searchFiles(pattern: string, opts: SearchOptions): Promise<SearchResult> {
  const compiled = compilePattern(pattern);
  const max = opts.maxMatches ?? DEFAULT_MAX_MATCHES;
  if (!Number.isInteger(max) || max < 1) {
    throw new HarveyError(`Expected maxMatches to be a whole number above 0, got ${max}`);
  }
  opts.signal?.throwIfAborted();
  const root = await Deno.realPath(opts.root);
  const start = await resolveStart(opts, root);
  const files: Iterable<WalkEntry> = start.isFile
    ? [{ abs: start.abs, rel: start.rel }]
    : walkFolder(start.abs, start.rel, root, new Set(opts.exclude ?? []));

  const scanner = new FileScanner(compiled, root);
  const matches: SearchMatch[] = [];
  let filesSearched = 0;
  let truncated = false;
  let sliceEnd = performance.now() + SLICE_MS;
  let count = 0;
  for (const file of files) {
    if ((++count & 15) === 0 && performance.now() > sliceEnd) {
      await new Promise((r) => setImmediate(r));
      sliceEnd = performance.now() + SLICE_MS;
    }
    opts.signal?.throwIfAborted();
    const before = matches.length;
    // One match more than the cap tells whether the result is truncated.
    if (!scanner.scanFile(file.abs, file.rel, max + 1 - before, matches)) {
      matches.length = before;
      continue;
    }
    filesSearched++;
    if (matches.length > max) {
      matches.length = max;
      truncated = true;
      break;
    }
  }
  return { matches, truncated, filesSearched };
}

interface Start {
  abs: string;
  rel: string;
  isFile: boolean;
}

async function resolveStart(opts: SearchOptions, root: string): Promise<Start> {
  if (opts.start === undefined) return { abs: root, rel: "", isFile: false };
  const shown = opts.start;
  let path = opts.resolve ? await opts.resolve(shown) : shown;
  if (!isAbsolute(path)) path = resolvePath(root, path);
  let real: string;
  let info: Deno.FileInfo;
  try {
    real = await Deno.realPath(path);
    info = await Deno.stat(real);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new HarveyError(
        `Nothing to search at "${shown}": no such file or folder in the workspace`,
      );
    }
    throw err;
  }
  if (!isInside(real, root)) {
    throw new HarveyError(
      `Search path "${shown}" is outside the workspace (${root}): give a folder or file inside it`,
    );
  }
  const rel = relative(root, real).split(sep).join("/");
  if (info.isFile) return { abs: real, rel, isFile: true };
  if (info.isDirectory) return { abs: real, rel, isFile: false };
  throw new HarveyError(`Cannot search "${shown}": expected a folder or a regular file`);
}
