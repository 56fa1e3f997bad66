/**
 * The search engine behind `/search PATTERN [PATH]`: a regular-expression search over the
 * text files of the workspace, in path order, capped, binary-safe, never leaving the root.
 *
 * @module
 */
import { isAbsolute, relative, resolve as resolvePath, sep } from "node:path";
import { HarveyError } from "../errors.ts";
import type { SearchJob } from "./engine.ts";
import { compilePattern } from "./pattern.ts";
import { isInside } from "./walk.ts";

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
  /**
   * Stops the search after this many milliseconds with a {@linkcode SearchTimeoutError}
   * (default 30 s; 0: no limit).
   */
  timeoutMs?: number;
}

/** Default time limit of a search. */
export const DEFAULT_SEARCH_TIMEOUT_MS = 30_000;

/** Thrown when a search runs past its time limit (it is stopped, nothing is returned). */
export class SearchTimeoutError extends HarveyError {
  override name = "SearchTimeoutError";
}

/** Default cap on the number of matches. */
export const DEFAULT_MAX_MATCHES = 100;

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
  compilePattern(pattern); // an invalid pattern is refused here, with one line
  const max = opts.maxMatches ?? DEFAULT_MAX_MATCHES;
  if (!Number.isInteger(max) || max < 1) {
    throw new HarveyError(`Expected maxMatches to be a whole number above 0, got ${max}`);
  }
  opts.signal?.throwIfAborted();
  const root = await Deno.realPath(opts.root);
  const start = await resolveStart(opts, root);
  return await inWorker(
    { pattern, root, start, exclude: opts.exclude ?? [], max },
    { signal: opts.signal, timeoutMs: opts.timeoutMs ?? DEFAULT_SEARCH_TIMEOUT_MS },
  );
}

type WorkerAnswer =
  | { ok: true; result: SearchResult }
  | { ok: false; name: string; message: string };

/**
 * Runs `job` in a Worker of its own, which is terminated when the search ends, when `signal`
 * aborts or when the time limit passes: the only way to stop a regular expression that is
 * backtracking (`(a+)+$` on a long line of `a`s can take minutes).
 */
function inWorker(
  job: SearchJob,
  opts: { signal?: AbortSignal; timeoutMs: number },
): Promise<SearchResult> {
  const worker = new Worker(new URL("./search_worker.ts", import.meta.url), { type: "module" });
  const { promise, resolve, reject } = Promise.withResolvers<SearchResult>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => reject(opts.signal!.reason);
  const done = () => {
    worker.terminate();
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.timeoutMs > 0) {
    timer = setTimeout(() => {
      const s = opts.timeoutMs / 1000;
      reject(
        new SearchTimeoutError(
          `The search was stopped after ${s} s: /${job.pattern}/ takes too long on these files ` +
            "(nested repetition such as (a+)+ can take exponential time); simplify the pattern",
        ),
      );
    }, opts.timeoutMs);
  }
  worker.onmessage = (event: MessageEvent<WorkerAnswer>) => {
    const answer = event.data;
    if (answer.ok) resolve(answer.result);
    else if (answer.name === "NotCapable") reject(new Deno.errors.NotCapable(answer.message));
    else reject(new HarveyError(answer.message));
  };
  worker.onerror = (event) => {
    event.preventDefault();
    reject(new HarveyError(`The search failed: ${event.message}`));
  };
  worker.postMessage(job);
  return promise.finally(done);
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
