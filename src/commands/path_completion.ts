/**
 * Tab completion of paths, for the words a command declares as paths in its table entry
 * (`CommandHandler.paths`): workspace paths through the sandbox (never outside it, never a path
 * the permissions close), or model files in the models folder and absolute paths.
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { Agent } from "../agent.ts";

/** Which word of a command is a path, and of what kind. */
export interface PathArg {
  /** The subcommand the path follows (`start` in `/record start FILE`); none: the command. */
  after?: string;
  /** The position of the path among the words after the command (and `after`), from 0. */
  at?: number;
  /** This word and every later one are paths (`/read FILE…`). */
  rest?: boolean;
  /**
   * `workspace` (default): files and folders inside the workspace. `models`: files with
   * `ext` in the models folder, and absolute (or `~/`) paths anywhere.
   */
  kind?: "workspace" | "models";
  /** For `models`: the extension of the files offered, e.g. `.llamafile`. */
  ext?: string;
}

/** The path argument `args` (the words before the one being typed) is at, if any. */
export function pathArgAt(paths: PathArg[] | undefined, args: string[]): PathArg | undefined {
  for (const p of paths ?? []) {
    const words = p.after === undefined ? args : args[0] === p.after ? args.slice(1) : undefined;
    if (!words) continue;
    const at = p.at ?? 0;
    if (words.length === at || (p.rest && words.length >= at)) return p;
  }
  return undefined;
}

/**
 * The completions of `word` as a path of kind `arg`: folders end with `/`, files do not.
 *
 * @example
 * ```ts
 * await completePath(agent, "src/re", {}); // ["src/repl/"]
 * ```
 */
export async function completePath(agent: Agent, word: string, arg: PathArg): Promise<string[]> {
  if (arg.kind === "models") {
    if (word.startsWith("/") || word.startsWith("~")) return await absolutePaths(agent, word, arg);
    return await modelFiles(agent, word, arg.ext ?? "");
  }
  return await workspacePaths(agent, word);
}

/** Entries of the workspace folder `word` names, through the sandbox and the permissions. */
async function workspacePaths(agent: Agent, word: string): Promise<string[]> {
  if (word.startsWith("/") || word.startsWith("~")) return [];
  const slash = word.lastIndexOf("/");
  const dir = word.slice(0, slash + 1);
  const base = word.slice(slash + 1);
  let entries;
  try {
    entries = await agent.workspace.readDir(dir || ".");
  } catch {
    return []; // outside the workspace, or not a folder
  }
  const found: string[] = [];
  for (const e of entries) {
    if (!e.name.startsWith(base) || (e.name.startsWith(".") && !base.startsWith("."))) continue;
    const rel = `${dir}${e.name}`;
    let folder = e.isDirectory;
    if (e.isSymlink) {
      try {
        folder = (await agent.workspace.stat(rel)).isDirectory;
      } catch {
        continue; // a link out of the workspace, or dangling
      }
    }
    try {
      agent.checkPath?.(rel.replace(/\/+$/, ""), "read");
    } catch {
      continue;
    }
    found.push(folder ? `${rel}/` : rel);
  }
  return found;
}

/** The files of the models folder with `ext` whose names start with `word`, as `~/Models/…`. */
async function modelFiles(agent: Agent, word: string, ext: string): Promise<string[]> {
  const dir = agent.settings.modelsDir;
  const found: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.startsWith(word) || !e.name.toLowerCase().endsWith(ext)) continue;
      found.push(tilde(agent, join(dir, e.name)));
    }
  } catch {
    return [];
  }
  return found.sort();
}

/** Folders, and files with the extension, of an absolute or `~/` path. */
async function absolutePaths(agent: Agent, word: string, arg: PathArg): Promise<string[]> {
  const home = agent.env.HOME ?? "";
  if (word.startsWith("~") && !word.startsWith("~/")) return word === "~" ? ["~/"] : [];
  const abs = word.startsWith("~/") ? join(home, word.slice(2)) : word;
  const dir = abs.endsWith("/") ? abs : dirname(abs);
  const base = abs.endsWith("/") ? "" : abs.slice(dir.length).replace(/^\//, "");
  const shown = word.slice(0, word.length - base.length);
  const found: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.startsWith(base) || (e.name.startsWith(".") && !base.startsWith("."))) continue;
      let folder = e.isDirectory;
      if (e.isSymlink) {
        folder = await Deno.stat(join(dir, e.name)).then((s) => s.isDirectory, () => false);
      }
      if (folder) found.push(`${shown}${e.name}/`);
      else if (!arg.ext || e.name.toLowerCase().endsWith(arg.ext)) found.push(`${shown}${e.name}`);
    }
  } catch {
    return [];
  }
  return found.sort();
}

function tilde(agent: Agent, path: string): string {
  const home = (agent.env.HOME ?? "").replace(/\/+$/, "");
  return home && path.startsWith(`${home}/`) ? `~/${path.slice(home.length + 1)}` : path;
}
