/**
 * `search {pattern, path?}`: the model's face of `/search`.
 *
 * @module
 */
import { describeError } from "../errors.ts";
import { searchWorkspace } from "../ops/search.ts";
import { argsSchema } from "./args.ts";
import { failed, type Tool } from "./tool.ts";

/** The most matches one `search` call returns. */
export const TOOL_MAX_MATCHES = 50;

/** `search {pattern, path?}` */
export const searchTool: Tool = {
  spec: {
    name: "search",
    description: "Search the workspace's text files for a regular expression; path:line: text.",
    parameters: argsSchema({
      pattern: { type: "string", description: "regular expression" },
      path: { type: "string", description: "folder or file, default all" },
    }, ["pattern"]),
  },
  brief: "Search files for a regex: path:line: text.",
  kind: "read",
  subject: (args) => `${args.pattern}${args.path ? ` in ${args.path}` : ""}`,
  async run(agent, args, ctx) {
    let found;
    try {
      found = await searchWorkspace(agent, String(args.pattern), {
        path: args.path === undefined ? undefined : String(args.path),
        maxMatches: TOOL_MAX_MATCHES,
        signal: ctx.signal,
      });
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      return failed(describeError(err), "refused");
    }
    const where = found.path === "." ? "the workspace" : found.path;
    if (!found.matches.length) {
      return {
        content:
          `No matches for ${args.pattern} in ${where} (${found.filesSearched} files searched)`,
        summary: "no matches",
      };
    }
    let content = "";
    let shown = 0;
    for (const m of found.matches) {
      const line = `${m.path}:${m.line}: ${m.text}\n`;
      if (content.length + line.length > ctx.maxChars - 120) break;
      content += line;
      shown++;
    }
    const more = found.truncated || shown < found.matches.length;
    if (more) content += `[more matches not shown: narrow the pattern or give a path]\n`;
    if (found.denied) content += `[${found.denied} files left out by the permissions]\n`;
    return { content, summary: `${shown}${more ? "+" : ""} matches` };
  },
};
