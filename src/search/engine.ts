/**
 * The search loop itself, synchronous: walk the files in path order, scan each, stop at the
 * cap. It runs in a Worker (search_worker.ts), so that a pattern that backtracks for minutes
 * can be stopped: a JavaScript regular expression cannot be interrupted from its own thread.
 *
 * @module
 */
import type { SearchMatch, SearchResult } from "./mod.ts";
import { compilePattern } from "./pattern.ts";
import { FileScanner } from "./scan.ts";
import { type WalkEntry, walkFolder } from "./walk.ts";

/** One search, as plain data (it crosses to the worker). */
export interface SearchJob {
  pattern: string;
  /** The real path of the root. */
  root: string;
  /** Where to start: a checked real path inside the root, shown as `rel`. */
  start: { abs: string; rel: string; isFile: boolean };
  /** Folders not searched, relative to the root. */
  exclude: string[];
  /** At most this many matches. */
  max: number;
}

/** Runs `job` to the end. */
export function runSearch(job: SearchJob): SearchResult {
  const { start, root, max } = job;
  const files: Iterable<WalkEntry> = start.isFile
    ? [{ abs: start.abs, rel: start.rel }]
    : walkFolder(start.abs, start.rel, root, new Set(job.exclude));
  const scanner = new FileScanner(compilePattern(job.pattern), root);
  const matches: SearchMatch[] = [];
  let filesSearched = 0;
  let truncated = false;
  for (const file of files) {
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
