/**
 * The one check of every workspace path a command or a tool reads, writes or deletes, and the
 * small facts about files they share (binary or text, sizes for people).
 *
 * @module
 */
import { isAbsolute, posix } from "node:path";
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";

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
  // Case folded: on a case-insensitive file system AGENTS/undo is agents/undo.
  if (parts[0].toLowerCase() === "agents") {
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
