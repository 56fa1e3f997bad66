/**
 * Searching the workspace, for `/search` and the model's `search` tool: a regular expression
 * over the text files under a path, in path order, capped, stopped by Ctrl-C or after
 * `search_timeout` (a backtracking pattern cannot be interrupted otherwise); Harvey's own
 * `agents/` folder and the files the permissions do not let it read give no matches.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { searchFiles, type SearchMatch, SearchTimeoutError } from "../search/mod.ts";
import { accessPath } from "./access.ts";

/** What a workspace search found. */
export interface WorkspaceSearch {
  /** The folder or file searched, relative to the root ("." for all of it). */
  path: string;
  matches: SearchMatch[];
  /** More matches than `maxMatches` existed. */
  truncated: boolean;
  filesSearched: number;
  /** Files left out because the permissions refuse reading them. */
  denied: number;
}

/** Searches `pattern` under `path` (default the whole workspace). */
export async function searchWorkspace(
  agent: Agent,
  pattern: string,
  opts: { path?: string; maxMatches: number; signal?: AbortSignal },
): Promise<WorkspaceSearch> {
  const rel = await accessPath(agent, opts.path ?? ".", "read");
  let result;
  try {
    result = await searchFiles(pattern, {
      root: agent.workspace.root,
      start: rel === "." ? undefined : await agent.workspace.resolve(rel),
      // Harvey's own files (history, audit log, undo journal, databases) are not the project.
      exclude: ["agents"],
      maxMatches: opts.maxMatches,
      signal: opts.signal,
      timeoutMs: agent.config.config.search_timeout,
    });
  } catch (err) {
    if (err instanceof SearchTimeoutError) {
      throw new HarveyError(`${err.message}, or raise search_timeout in agents/harvey.yaml`);
    }
    if (opts.signal?.aborted) {
      throw new HarveyError("Search interrupted; nothing was added to the conversation");
    }
    throw err;
  }
  const denied = new Map<string, boolean>();
  const readable = (p: string) => {
    if (!denied.has(p)) {
      try {
        agent.checkPath?.(p, "read");
        denied.set(p, false);
      } catch {
        denied.set(p, true);
      }
    }
    return !denied.get(p);
  };
  return {
    path: rel,
    matches: result.matches.filter((m) => readable(m.path)),
    truncated: result.truncated,
    filesSearched: result.filesSearched,
    denied: [...denied.values()].filter(Boolean).length,
  };
}
