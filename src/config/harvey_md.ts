/**
 * `HARVEY.md`, the system prompt, with its dynamic sections expanded.
 *
 * @module
 */
import { join } from "node:path";

/** The system prompt used when the workspace has no `HARVEY.md`. */
export const BUILTIN_SYSTEM_PROMPT =
  `You are Harvey, a coding assistant working in the user's project folder. Answer concisely.
When you propose a change to a file, put the whole new file in a fenced code block whose info
string names the path, for example \`\`\`ts src/main.ts, so the user can apply it with /apply.`;

const FILES_CAP = 200;

/**
 * Reads `HARVEY.md` at the workspace root and expands `<!-- @date -->`, `<!-- @files -->` and
 * `<!-- @git-status -->`. Without the file, the built-in prompt.
 */
export async function loadSystemPrompt(root: string, now = new Date()): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(root, "HARVEY.md"));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return BUILTIN_SYSTEM_PROMPT;
    throw err;
  }
  return await expandDynamicSections(text, root, now);
}

/**
 * Replaces the dynamic markers of a system prompt with live data.
 *
 * @example
 * ```ts
 * await expandDynamicSections("Date: <!-- @date -->", "/proj", new Date("2026-01-02"));
 * // "Date: 2026-01-02"
 * ```
 */
export async function expandDynamicSections(
  text: string,
  root: string,
  now = new Date(),
): Promise<string> {
  let out = text.replaceAll("<!-- @date -->", now.toISOString().slice(0, 10));
  if (out.includes("<!-- @files -->")) {
    out = out.replaceAll("<!-- @files -->", (await fileTree(root, FILES_CAP)).join("\n"));
  }
  if (out.includes("<!-- @git-status -->")) {
    out = out.replaceAll("<!-- @git-status -->", await gitStatus(root));
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

async function gitStatus(root: string): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["status", "--short"],
      cwd: root,
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return "(not a git repository)";
    const text = new TextDecoder().decode(out.stdout).trimEnd();
    return text || "(clean)";
  } catch {
    return "(git not available)";
  }
}
