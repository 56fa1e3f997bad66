/**
 * `HARVEY.md`, the system prompt, with its dynamic sections expanded.
 *
 * @module
 */
import { join } from "node:path";
import { describeError, HarveyError } from "../errors.ts";
import type { Output } from "../types.ts";
import type { Workspace } from "../workspace.ts";
import type { Sandbox } from "../security/sandbox.ts";
import { lazyImport } from "../util/lazy_import.ts";

/** What the dynamic sections may use: the environment git gets (filtered), and the sandbox. */
export interface DynamicOptions {
  now?: Date;
  /** Harvey's environment; git sees it filtered (default: none but PATH from Deno). */
  env?: Record<string, string>;
  /** `<!-- @git-status -->` runs git inside it when it is available. */
  sandbox?: Sandbox;
}

/** The system prompt used when the workspace has no `HARVEY.md`. */
export const BUILTIN_SYSTEM_PROMPT =
  `You are Harvey, a coding assistant working in the user's project folder. Answer concisely.
When you propose a change to a file, put the whole new file in a fenced code block whose info
string names the path, for example \`\`\`ts src/main.ts, so the user can apply it with /apply.`;

const FILES_CAP = 200;

/**
 * Reads `HARVEY.md` at the workspace root, through the workspace sandbox (a link leading
 * outside is refused: the built-in prompt then applies, said in one line on `err`), and
 * expands `<!-- @date -->`, `<!-- @files -->` and `<!-- @git-status -->`. Without the file,
 * the built-in prompt.
 */
export async function loadSystemPrompt(
  workspace: Workspace,
  opts: DynamicOptions & { err?: Output } = {},
): Promise<string> {
  let text: string;
  try {
    text = await workspace.readTextFile("HARVEY.md");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return BUILTIN_SYSTEM_PROMPT;
    if (e instanceof HarveyError) {
      opts.err?.write(
        `⚠ HARVEY.md is not used (${describeError(e)}); the built-in system prompt applies\n`,
      );
      return BUILTIN_SYSTEM_PROMPT;
    }
    throw e;
  }
  return await expandDynamicSections(text, workspace.root, opts);
}

/**
 * Replaces the dynamic markers of a system prompt with live data. git runs hardened, with the
 * filtered environment, and in the sandbox when there is one (`src/ops/git.ts`).
 *
 * @example
 * ```ts
 * await expandDynamicSections("Date: <!-- @date -->", "/proj", { now: new Date("2026-01-02") });
 * // "Date: 2026-01-02"
 * ```
 */
export async function expandDynamicSections(
  text: string,
  root: string,
  opts: DynamicOptions = {},
): Promise<string> {
  const now = opts.now ?? new Date();
  let out = text.replaceAll("<!-- @date -->", now.toISOString().slice(0, 10));
  if (out.includes("<!-- @files -->")) {
    out = out.replaceAll("<!-- @files -->", (await fileTree(root, FILES_CAP)).join("\n"));
  }
  if (out.includes("<!-- @git-status -->")) {
    out = out.replaceAll("<!-- @git-status -->", await gitStatus(root, opts));
  }
  return out;
}

/** The workspace tree, hidden files and folders excluded, at most `cap` lines. */
export async function fileTree(root: string, cap: number): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      if (lines.length >= cap) {
        if (lines[lines.length - 1] !== "…") lines.push("…");
        return;
      }
      lines.push(`${prefix}${e.name}${e.isDirectory ? "/" : ""}`);
      if (e.isDirectory && depth < 6) await walk(join(dir, e.name), `${prefix}  `, depth + 1);
    }
  };
  await walk(root, "", 0);
  return lines;
}

async function gitStatus(root: string, opts: DynamicOptions): Promise<string> {
  const env = opts.env ?? { PATH: Deno.env.get("PATH") ?? "" };
  try {
    const { gitOutput } = await lazyImport<typeof import("../ops/git.ts")>(
      new URL("../ops/git.ts", import.meta.url),
    ); // only a prompt that asks for it
    const out = await gitOutput(["status", "--short"], { root, env, sandbox: opts.sandbox });
    if (out.failure !== undefined) return "(not a git repository)";
    const text = out.text.trimEnd();
    return text || "(clean)";
  } catch {
    return "(git not available)";
  }
}
