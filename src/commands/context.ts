/**
 * `/context`: the pinned context, text that is sent with every request and survives `/clear`
 * and `/summarize`.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { describeError, HarveyError, UsageError } from "../errors.ts";
import { estimateTextTokens } from "../llm/tokens.ts";
import type { Output } from "../types.ts";
import { accessPath, fenced, formatBytes } from "./files.ts";
import { BinaryFileError, readText } from "./read.ts";
import { type CommandHandler, subcommand } from "./registry.ts";

/** The most file content one `/context load-dir` pins. */
export const LOAD_DIR_BUDGET_BYTES = 200 * 1024;

/** The most folder entries one `/context load-dir` looks at. */
const MAX_ENTRIES = 20_000;

/**
 * A regular expression for a simple glob: `*` and `?` stay within one folder, `**` crosses
 * folders, `{a,b}` is either. A glob without "/" is matched against file names at any depth;
 * one with "/" against the path below the loaded folder.
 *
 * @example
 * ```ts
 * globToRegExp("**\/*.go").test("cmd/main.go"); // true
 * globToRegExp("*.ts").test("main.ts"); // true
 * ```
 */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  let inBraces = false;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      const slash = glob[i + 2] === "/";
      re += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "{" && !inBraces) {
      re += "(?:";
      inBraces = true;
    } else if (c === "}" && inBraces) {
      re += ")";
      inBraces = false;
    } else if (c === "," && inBraces) re += "|";
    else re += c.replace(/[.+^$()|[\]\\{}]/g, "\\$&");
  }
  if (inBraces) throw new UsageError(`Glob ${JSON.stringify(glob)} has an unclosed "{"`);
  return new RegExp(`^${re}$`);
}

/** Appends `text` to the pinned context, on its own line. */
function pin(agent: Agent, text: string): void {
  agent.setPinned(agent.pinned ? `${agent.pinned}\n${text}` : text);
}

interface Skipped {
  binary: string[];
  budget: string[];
  refused: string[];
}

/** Files under `dir` whose path matches, depth first, sorted; hidden entries, node_modules and links to folders skipped. */
async function* walk(
  agent: Agent,
  dir: string,
  match: (relBelow: string) => boolean,
  skipped: Skipped,
): AsyncGenerator<string> {
  let seen = 0;
  const stack: string[] = [dir];
  while (stack.length) {
    const folder = stack.pop()!;
    const prefix = folder === "." ? "" : `${folder}/`;
    const below = (p: string) => (dir === "." ? p : p.slice(dir.length + 1));
    const subfolders: string[] = [];
    for (const e of await agent.workspace.readDir(folder)) {
      if (++seen > MAX_ENTRIES) {
        skipped.refused.push(`(stopped after ${MAX_ENTRIES} entries)`);
        return;
      }
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const path = prefix + e.name;
      if (path === "agents" && dir === ".") continue; // Harvey's own files
      if (e.isDirectory) subfolders.push(path);
      else if (e.isFile && match(below(path))) yield path;
      else if (e.isSymlink && match(below(path))) {
        try {
          if ((await agent.workspace.stat(path)).isFile) yield path; // links to folders: never
        } catch {
          skipped.refused.push(path); // dangling, or pointing outside the workspace
        }
      }
    }
    stack.push(...subfolders.reverse());
  }
}

async function loadDir(agent: Agent, args: string[], out: Output): Promise<void> {
  const [path, glob] = [args[1] ?? ".", args[2] ?? "*"];
  if (args.length > 3) throw new UsageError("Usage: /context load-dir PATH [GLOB]");
  const dir = await accessPath(agent, path, "read");
  if (!(await agent.workspace.stat(dir)).isDirectory) {
    throw new HarveyError(`${dir} is a file, not a folder (/read ${dir} reads one file)`);
  }
  const re = globToRegExp(glob);
  const match = glob.includes("/")
    ? (p: string) => re.test(p)
    : (p: string) => re.test(p.slice(p.lastIndexOf("/") + 1));
  const skipped: Skipped = { binary: [], budget: [], refused: [] };
  const parts: string[] = [];
  let used = 0;
  for await (const file of walk(agent, dir, match, skipped)) {
    try {
      const size = (await agent.workspace.stat(file)).size;
      if (used + size > LOAD_DIR_BUDGET_BYTES) {
        skipped.budget.push(file);
        continue;
      }
      const f = await readText(agent, file, { maxBytes: size });
      used += f.bytes;
      parts.push(`File: ${f.path}\n${fenced(f.text)}`);
    } catch (err) {
      if (err instanceof BinaryFileError) skipped.binary.push(file);
      else skipped.refused.push(`${file} (${describeError(err)})`);
    }
  }
  if (!parts.length) {
    const why = skipped.budget.length + skipped.binary.length + skipped.refused.length
      ? "none could be loaded"
      : "none matched";
    throw new HarveyError(`No files pinned from ${dir} with ${JSON.stringify(glob)}: ${why}`);
  }
  const text = parts.join("\n\n");
  pin(agent, `[context: /context load-dir ${dir} ${glob}]\n\n${text}`);
  out.write(
    `✓ Pinned ${parts.length} ${parts.length === 1 ? "file" : "files"} from ${dir} ` +
      `(${formatBytes(used)}, ~${estimateTextTokens(text)} tokens, sent with every request)\n`,
  );
  const list = (names: string[]) =>
    names.slice(0, 5).join(", ") + (names.length > 5 ? `, … ${names.length - 5} more` : "");
  if (skipped.budget.length) {
    out.write(
      `  Skipped over the ${formatBytes(LOAD_DIR_BUDGET_BYTES)} budget: ${list(skipped.budget)}\n`,
    );
  }
  if (skipped.binary.length) out.write(`  Skipped binary: ${list(skipped.binary)}\n`);
  if (skipped.refused.length) out.write(`  Skipped: ${list(skipped.refused)}\n`);
}

/** `/context add TEXT…|show|clear|load-dir PATH [GLOB]` */
export const contextCommand: CommandHandler = {
  freeText: true,
  subcommands: ["add", "show", "clear", "load-dir"],
  paths: [{ after: "load-dir" }],
  async run(agent, args, out, ctx) {
    const sub = subcommand("/context", args, ["add", "show", "clear", "load-dir"], "show");
    if (sub === "add") {
      const text = ctx.rest.replace(/^\s*add\b\s*/, "").trim();
      if (!text) throw new UsageError("Usage: /context add TEXT…");
      pin(agent, text);
      out.write(`✓ Pinned (${agent.pinned.length} characters in the pinned context)\n`);
    } else if (sub === "show") {
      if (!agent.pinned) out.write("No pinned context (/context add TEXT… pins some).\n");
      else out.write(`Pinned context (${agent.pinned.length} characters):\n${agent.pinned}\n`);
    } else if (sub === "clear") {
      agent.setPinned("");
      out.write("Pinned context cleared.\n");
    } else {
      await loadDir(agent, args, out);
    }
  },
};
