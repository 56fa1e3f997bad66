/**
 * `/write`: save the last reply (or its first code block) to a workspace file.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import { INTERRUPTED_MARK } from "../repl/turn.ts";
import { findFencedBlocks, lastReply } from "./apply.ts";
import { accessPath, formatBytes } from "./files.ts";
import type { CommandHandler } from "./registry.ts";

/**
 * What `/write` saves from a reply: the body of its first fenced code block when it has one,
 * otherwise the whole reply (ending with a newline); the interruption mark is left out.
 */
export function writableText(reply: string): { text: string; fromBlock: boolean } {
  const clean = reply.endsWith(INTERRUPTED_MARK)
    ? reply.slice(0, -INTERRUPTED_MARK.length).replace(/\n$/, "")
    : reply;
  const block = findFencedBlocks(clean)[0];
  if (block) return { text: block.body, fromBlock: true };
  return { text: clean.endsWith("\n") || !clean ? clean : `${clean}\n`, fromBlock: false };
}

/** `/write PATH` */
export const writeCommand: CommandHandler = {
  paths: [{}],
  async run(agent, args, out) {
    if (args.length !== 1) throw new HarveyError("Usage: /write PATH (one file)");
    const { text, fromBlock } = writableText(lastReply(agent, "/write"));
    if (!text.trim()) throw new HarveyError("The last reply is empty; nothing to write");
    const rel = await accessPath(agent, args[0], "write");
    if (await agent.workspace.exists(rel)) {
      if ((await agent.workspace.stat(rel)).isDirectory) {
        throw new HarveyError(`${rel} is a folder; give a file name`);
      }
      if (!await agent.asker.confirm(`${rel} exists. Overwrite it?`, false)) {
        out.write("Not written.\n");
        return;
      }
    }
    await agent.workspace.writeFile(rel, text);
    const bytes = new TextEncoder().encode(text).length;
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    const what = fromBlock ? "the first code block of the last reply" : "the last reply";
    out.write(`✓ Wrote ${what} to ${rel} (${lines} lines, ${formatBytes(bytes)})\n`);
  },
};
