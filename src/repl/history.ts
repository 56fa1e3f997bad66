/**
 * The REPL's line history, `agents/harvey_history`: read at start, appended to after each
 * line. Both go through the workspace sandbox, so a history file that is a symlink leading
 * outside the workspace (or one swapped in meanwhile) is neither read nor appended to.
 *
 * @module
 */
import { dirname } from "node:path";
import { describeError } from "../errors.ts";
import type { Output } from "../types.ts";
import { Workspace } from "../workspace.ts";
import { stderrOutput } from "./output.ts";

/** Lines kept in the history. */
export const HISTORY_LIMIT = 1000;

const FILE = "agents/harvey_history";

/**
 * Reads the saved history of the workspace whose `agents/` folder is `agentsDir`, oldest
 * first. A history that cannot be read safely is refused with one line on `warn` (default
 * stderr); a missing one is empty.
 */
export async function loadHistory(
  agentsDir: string,
  opts: { warn?: Output } = {},
): Promise<string[]> {
  let ws: Workspace;
  try {
    ws = await Workspace.open(dirname(agentsDir));
  } catch {
    return [];
  }
  try {
    const text = await ws.readTextFile(FILE);
    return text.split("\n").filter(Boolean).slice(-HISTORY_LIMIT);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      (opts.warn ?? stderrOutput).write(
        `⚠ The line history is not used (${describeError(err)}); remove ${FILE} if it is a link\n`,
      );
    }
    return [];
  }
}

/**
 * Appends one line to the history. History is a convenience: a read-only workspace, or a
 * history file that leads outside (refused, and said once by {@linkcode loadHistory}), does
 * not stop the session.
 */
export async function appendHistory(agentsDir: string, line: string): Promise<void> {
  try {
    const ws = await Workspace.open(dirname(agentsDir));
    using file = await ws.openAppend(FILE);
    const bytes = new TextEncoder().encode(`${line.replace(/\n/g, " ")}\n`);
    let n = 0;
    while (n < bytes.length) n += await file.write(bytes.subarray(n));
  } catch {
    // not written
  }
}
