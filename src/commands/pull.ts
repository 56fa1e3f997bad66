/**
 * `/pull` and `harvey pull`: download a GGUF or llamafile from Hugging Face, then offer to
 * register it (and switch to it).
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, posix } from "node:path";
import type { Agent } from "../agent.ts";
import { HarveyError, UsageError } from "../errors.ts";
import { pullFile, type PullResult } from "../hf/pull.ts";
import { isInside } from "../search/walk.ts";
import type { Asker, Output } from "../types.ts";
import type { ConfigStore } from "../config/store.ts";
import { expandPath } from "../config/settings.ts";
import { SandboxError } from "../workspace.ts";
import { accessPath, refuseKeptPath } from "./files.ts";
import type { CommandHandler } from "./registry.ts";

/** The parsed arguments of a pull. */
export interface PullArgs {
  repo: string;
  file: string;
  revision?: string;
  dir?: string;
  sha256?: string;
  name?: string;
}

/** Parses `REPO FILE [--revision REV] [--dir DIR] [--sha256 HEX] [--name NAME]`. */
export function parsePullArgs(args: string[]): PullArgs {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = /^--(revision|dir|sha256|name)(?:=(.*))?$/.exec(a);
    if (m) {
      const value = m[2] ?? args[++i];
      if (value === undefined) throw new UsageError(`--${m[1]} needs a value`);
      flags[m[1]] = value;
    } else if (a.startsWith("--")) {
      throw new UsageError(`Unknown option ${a} (expected --revision, --dir, --sha256 or --name)`);
    } else positional.push(a);
  }
  if (positional.length !== 2) {
    throw new UsageError(
      "Usage: /pull REPO FILE [--revision REV] [--dir DIR] [--sha256 HEX] [--name NAME]",
    );
  }
  return { repo: positional[0], file: positional[1], ...flags };
}

/** Which registry a downloaded file belongs in, by its extension. */
export function registryOf(path: string): "llamafile" | "llamacpp" | undefined {
  if (path.endsWith(".llamafile")) return "llamafile";
  if (path.endsWith(".gguf")) return "llamacpp";
  return undefined;
}

/** A registry name derived from a file name: its base name without the extension. */
export function nameFromFile(path: string): string {
  return basename(path).replace(/\.(llamafile|gguf)$/i, "");
}

/**
 * After a successful pull: offer to register the file under `name` in the registry that fits
 * it. Returns the registry and name when it was registered.
 */
export async function offerRegistration(
  result: PullResult,
  opts: { config: ConfigStore; asker: Asker; out: Output; name?: string },
): Promise<{ registry: "llamafile" | "llamacpp"; name: string } | undefined> {
  const registry = registryOf(result.path);
  if (!registry) return undefined;
  const section = opts.config.config[registry];
  const existing = section.models.find((m) => m.path === result.path);
  if (existing) {
    opts.out.write(`Already registered as ${existing.name}.\n`);
    return { registry, name: existing.name };
  }
  const kind = registry === "llamafile" ? "llamafile" : "GGUF model";
  if (!await opts.asker.confirm(`Register it as a ${kind}?`)) return undefined;
  let name = opts.name ?? nameFromFile(result.path);
  if (section.models.some((m) => m.name === name)) {
    name = await opts.asker.input(`The name ${name} is taken; another name`, `${name}-2`);
  }
  await opts.config.update([[[registry, "models"], [...section.models, {
    name,
    path: result.path,
  }]]]);
  opts.out.write(`Registered ${name} in agents/harvey.yaml.\n`);
  return { registry, name };
}

/** The real path of `abs`: its deepest existing ancestor resolved, the rest appended. */
async function realOf(abs: string): Promise<string> {
  const tail: string[] = [];
  for (let cur = abs;; cur = dirname(cur)) {
    try {
      return join(await Deno.realPath(cur), ...tail);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound) || dirname(cur) === cur) throw err;
    }
    tail.unshift(basename(cur));
  }
}

/**
 * Where a pull may write: the models folder or a folder inside it; or a folder inside the
 * workspace that the permissions let Harvey write, never `agents/` (Harvey's own files) nor a
 * `.git` folder (hooks git runs), with the downloaded file's name checked too (no secret
 * names). A relative `--dir` is taken from the workspace root; `~` is the home folder.
 * `anywhereOutside` (for `harvey pull`, typed in the user's own shell) also lets `--dir` name
 * any folder outside the workspace; inside it the same rule holds.
 */
export async function pullFolder(
  agent: Agent,
  dir: string | undefined,
  opts: { file: string; anywhereOutside?: boolean },
): Promise<string> {
  const { file } = opts;
  const models = agent.settings.modelsDir;
  const given = dir === undefined
    ? models
    : expandPath(dir, { home: agent.env.HOME ?? "", root: agent.workspace.root });
  const real = await realOf(given);
  let inWorkspace = true;
  try {
    await agent.workspace.resolve(real);
  } catch (err) {
    if (!(err instanceof SandboxError)) throw err;
    inWorkspace = false;
  }
  if (!inWorkspace) {
    if (opts.anywhereOutside || isInside(real, await realOf(models))) return real;
    throw new HarveyError(
      `--dir "${dir}" is neither a folder inside the workspace nor the models folder ${models}; ` +
        "to download elsewhere, set --llamafile-dir, HARVEY_LLAMAFILE_DIR or llamafile.models_dir",
    );
  }
  // The path as typed is checked too (a permissions rule on it holds through a symlink).
  const typed = dir !== undefined && !isAbsolute(dir) && !dir.startsWith("~") ? dir : real;
  const rel = await accessPath(agent, typed, "write");
  refuseKeptPath(rel, "The download folder");
  await accessPath(agent, posix.join(rel, basename(file)), "write");
  return await agent.workspace.resolve(rel);
}

/**
 * Runs a pull for a session into the models folder, or into `--dir` (see
 * {@linkcode pullFolder} for what it may name; `commandLine` for `harvey pull`).
 */
export async function runPull(
  agent: Agent,
  args: PullArgs,
  out: Output,
  opts: { signal?: AbortSignal; isTerminal?: boolean; commandLine?: boolean },
): Promise<PullResult> {
  return await pullFile({
    repo: args.repo,
    file: args.file,
    revision: args.revision,
    dir: await pullFolder(agent, args.dir, { file: args.file, anywhereOutside: opts.commandLine }),
    sha256: args.sha256,
    endpoint: agent.settings.hfEndpoint,
    token: agent.settings.hfToken,
    signal: opts.signal,
    out,
    isTerminal: opts.isTerminal ?? false,
  });
}

/** `/pull REPO FILE [--revision REV] [--dir DIR] [--sha256 HEX] [--name NAME]` */
export const pullCommand: CommandHandler = {
  async run(agent, args, out, ctx) {
    const parsed = parsePullArgs(args);
    const result = await runPull(agent, parsed, out, {
      signal: ctx.signal,
      isTerminal: ctx.terminal,
    });
    const registered = await offerRegistration(result, {
      config: agent.config,
      asker: agent.asker,
      out,
      name: parsed.name,
    });
    if (!registered || result.skipped) return;
    const command = registered.registry === "llamafile" ? "/llamafile" : "/llamacpp";
    if (
      agent.commands.get(registered.registry) &&
      await agent.asker.confirm(`Switch to ${registered.name} now?`)
    ) {
      await agent.commands.dispatch(agent, `${command} use ${registered.name}`, out, ctx);
    }
  },
};
