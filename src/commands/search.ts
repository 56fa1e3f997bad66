/**
 * `/search`: a regular-expression search over the workspace's text files; the matches go into
 * the conversation as context.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import { DEFAULT_MAX_MATCHES } from "../search/mod.ts";
import { searchWorkspace } from "../ops/search.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { addContext } from "./files.ts";
import type { CommandHandler } from "./registry.ts";

/** `/search PATTERN [PATH]` */
export const searchCommand: CommandHandler = {
  paths: [{ at: 1 }],
  async run(agent, args, out, ctx) {
    if (!args.length || args.length > 2 || !args[0]) {
      throw new HarveyError('Usage: /search PATTERN [PATH] (quote a pattern with spaces: "a b")');
    }
    const [pattern, path] = args;
    const found = await searchWorkspace(agent, pattern, {
      path,
      maxMatches: DEFAULT_MAX_MATCHES,
      signal: ctx.signal,
    });
    const { path: rel, matches, denied: hidden } = found;
    const where = rel === "." ? "the workspace" : rel;
    const searched = `${found.filesSearched} ${found.filesSearched === 1 ? "file" : "files"}`;
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
    const note = found.truncated
      ? `[only the first ${DEFAULT_MAX_MATCHES} matches; narrow the pattern or give a PATH]`
      : undefined;
    out.write(`${summary}${note ? `\n${note}` : ""}\n`);
    addContext(agent, `/search ${ctx.rest.trim()}`, lines, { note });
  },
};
