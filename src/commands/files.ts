/**
 * `/files`, and the workspace helpers the coding-workflow commands share: the one place where
 * their reads, writes and deletions are checked ({@linkcode accessPath}), binary detection,
 * sizes, and context messages.
 *
 * @module
 */
import { isAbsolute, posix } from "node:path";
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { escapeControls } from "../util/terminal_text.ts";
import type { CommandSpec } from "./registry.ts";

/** What a command is about to do with a path. */
export type Access = "read" | "write" | "delete";

/**
 * THE check of the workflow commands: resolves `path` through the workspace sandbox (refusing
 * escapes), then asks the permission hook (`agent.checkPath`, set by the security layer) for
 * `perm`. Returns the path relative to the root, which is what the command then uses.
 */
export async function accessPath(agent: Agent, path: string, perm: Access): Promise<string> {
  const rel = agent.workspace.relative(await agent.workspace.resolve(path));
  agent.checkPath?.(rel, perm);
  // The name as written is checked too: a rule on it must hold even when a link renames it.
  const written = isAbsolute(path) ? undefined : posix.normalize(path).replace(/\/+$/, "");
  if (written && written !== rel && written !== ".." && !written.startsWith("../")) {
    agent.checkPath?.(written, perm);
  }
  return rel;
}

/**
 * Refuses `rel` (relative to the root, normalized) as the destination of a recording or a
 * download when it is inside Harvey's own `agents/` folder or inside any `.git` folder,
 * whatever the permissions say: a file there could replace Harvey's configuration, its audit
 * log, or a hook git runs. `what` names the destination in the message.
 */
export function refuseKeptPath(rel: string, what: string): void {
  const parts = rel.split("/");
  if (parts[0] === "agents") {
    throw new HarveyError(
      `${what} "${rel}" is inside agents/, where Harvey keeps its own files; choose another path`,
    );
  }
  if (parts.some((p) => p.toLowerCase() === ".git")) {
    throw new HarveyError(
      `${what} "${rel}" is inside a .git folder, whose hooks and config git runs; choose another path`,
    );
  }
}

/** How many leading bytes {@linkcode isBinary} looks at. */
export const BINARY_PROBE_BYTES = 8192;

/** True when `bytes` has a NUL byte in its first 8 KB (how git tells binary files too). */
export function isBinary(bytes: Uint8Array): boolean {
  return bytes.subarray(0, BINARY_PROBE_BYTES).includes(0);
}

/**
 * A byte count for people.
 *
 * @example
 * ```ts
 * formatBytes(3481); // "3.4 KB"
 * ```
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** `text` in a fenced block whose fence is longer than any run of backticks inside it. */
export function fenced(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  return `${fence}\n${text}${text.endsWith("\n") || !text ? "" : "\n"}${fence}`;
}

/**
 * Adds `[context: LABEL]` and `body` (fenced) to the history as a user message; `note` goes
 * on a line after the block.
 */
export function addContext(
  agent: Agent,
  label: string,
  body: string,
  opts: { note?: string } = {},
): void {
  const note = opts.note ? `\n\n${opts.note}` : "";
  agent.addMessage("user", `[context: ${label}]\n\n${fenced(body)}${note}`);
}

/** `/files [PATH]` */
export const filesCommand: CommandSpec = {
  name: "files",
  usage: ["/files [PATH]"],
  paths: [{}],
  summary: "List a workspace folder (hidden entries are not shown, only counted)",
  async run(agent, args, out) {
    if (args.length > 1) throw new HarveyError("Usage: /files [PATH] (one folder)");
    const rel = await accessPath(agent, args[0] ?? ".", "read");
    const entries = await agent.workspace.readDir(rel);
    const shown = entries.filter((e) => !e.name.startsWith("."));
    // A file name may hold control characters: shown, not obeyed.
    const hidden = entries.length - shown.length;
    const prefix = rel === "." ? "" : `${rel}/`;
    const rows: [string, string][] = [];
    for (const e of shown) {
      let info: Deno.FileInfo | undefined;
      try {
        info = await agent.workspace.stat(prefix + e.name);
      } catch {
        info = undefined; // a dangling link, or one that points outside the workspace
      }
      const name = escapeControls(e.name);
      if (info?.isDirectory) rows.push([`${name}/`, ""]);
      else if (info) rows.push([name + (e.isSymlink ? " →" : ""), formatBytes(info.size)]);
      else rows.push([`${name} ✗`, "broken or outside link"]);
    }
    out.write(`${rel === "." ? "Workspace root" : `${rel}/`}:\n`);
    if (!rows.length) out.write("  (empty)\n");
    const width = Math.max(0, ...rows.map(([name]) => name.length)) + 2;
    for (const [name, size] of rows) out.write(`  ${name.padEnd(width)}${size}`.trimEnd() + "\n");
    if (hidden) out.write(`  (${hidden} hidden ${hidden === 1 ? "entry" : "entries"} not shown)\n`);
  },
};
