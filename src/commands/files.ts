/**
 * `/files`, and context messages. The path check, binary detection and sizes the workflow
 * commands share now live in `src/ops/access.ts`; they are re-exported here for the commands.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { listFolder } from "../ops/listing.ts";
import { escapeControls } from "../util/terminal_text.ts";
import type { CommandHandler } from "./registry.ts";

export {
  type Access,
  accessPath,
  BINARY_PROBE_BYTES,
  formatBytes,
  isBinary,
  refuseKeptPath,
} from "../ops/access.ts";
import { formatBytes } from "../ops/access.ts";

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
export const filesCommand: CommandHandler = {
  paths: [{}],
  async run(agent, args, out) {
    if (args.length > 1) throw new HarveyError("Usage: /files [PATH] (one folder)");
    const { path: rel, entries, hidden } = await listFolder(agent, args[0] ?? ".");
    // A file name may hold control characters: shown, not obeyed.
    const rows: [string, string][] = entries.map((e) => {
      const name = escapeControls(e.name);
      return e.kind === "folder"
        ? [`${name}/`, ""]
        : e.kind === "file"
        ? [name + (e.link ? " →" : ""), formatBytes(e.size)]
        : [`${name} ✗`, "broken or outside link"];
    });
    out.write(`${rel === "." ? "Workspace root" : `${rel}/`}:\n`);
    if (!rows.length) out.write("  (empty)\n");
    const width = Math.max(0, ...rows.map(([name]) => name.length)) + 2;
    for (const [name, size] of rows) out.write(`  ${name.padEnd(width)}${size}`.trimEnd() + "\n");
    if (hidden) out.write(`  (${hidden} hidden ${hidden === 1 ? "entry" : "entries"} not shown)\n`);
  },
};
