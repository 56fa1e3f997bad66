/**
 * `/search`: a regular-expression search over the workspace's text files; the matches go into
 * the conversation as context.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import { DEFAULT_MAX_MATCHES, searchFiles, SearchTimeoutError } from "../search/mod.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { accessPath, addContext } from "./files.ts";
import type { CommandSpec } from "./registry.ts";

/** `/search PATTERN [PATH]` */
export const searchCommand: CommandSpec = {
  name: "search",
  usage: ["/search PATTERN [PATH]"],
  paths: [{ at: 1 }],
  summary: "Search workspace files for a regular expression and add the matches as context",
  async run(agent, args, out, ctx) {
    if (!args.length || args.length > 2 || !args[0]) {
      throw new HarveyError('Usage: /search PATTERN [PATH] (quote a pattern with spaces: "a b")');
    }
    const [pattern, path] = args;
    const rel = await accessPath(agent, path ?? ".", "read");
    let result;
    try {
      result = await searchFiles(pattern, {
        root: agent.workspace.root,
        start: rel === "." ? undefined : await agent.workspace.resolve(rel),
        // Harvey's own files (history, audit log, undo journal, databases) are not the project.
        exclude: ["agents"],
        maxMatches: DEFAULT_MAX_MATCHES,
        signal: ctx.signal,
        timeoutMs: agent.config.config.search_timeout,
      });
    } catch (err) {
      if (err instanceof SearchTimeoutError) {
        throw new HarveyError(`${err.message}, or raise search_timeout in agents/harvey.yaml`);
      }
      if (ctx.signal?.aborted) {
        throw new HarveyError("Search interrupted; nothing was added to the conversation");
      }
      throw err;
    }
    // A file the permissions do not let Harvey read gives no matches.
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
    const matches = result.matches.filter((m) => readable(m.path));
    const hidden = [...denied.values()].filter(Boolean).length;
    const where = rel === "." ? "the workspace" : rel;
    const searched = `${result.filesSearched} ${result.filesSearched === 1 ? "file" : "files"}`;
    const deniedNote = hidden
      ? ` (${hidden} ${hidden === 1 ? "file" : "files"} left out by the permissions)`
      : "";
    if (!matches.length) {
      out.write(`No matches for /${pattern}/ in ${where} (${searched} searched)${deniedNote}.\n`);
      return;
    }
    const lines = matches.map((m) => `${m.path}:${m.line}: ${m.text}\n`).join("");
    // The file's text goes to the model as it is, and to the terminal as data.
    out.write(escapeControls(lines));
    const files = new Set(matches.map((m) => m.path)).size;
    const summary = `${matches.length} ${matches.length === 1 ? "match" : "matches"} in ${files} ${
      files === 1 ? "file" : "files"
    } (${searched} searched)${deniedNote}`;
    const note = result.truncated
      ? `[only the first ${DEFAULT_MAX_MATCHES} matches; narrow the pattern or give a PATH]`
      : undefined;
    out.write(`${summary}${note ? `\n${note}` : ""}\n`);
    addContext(agent, `/search ${ctx.rest.trim()}`, lines, { note });
  },
};
