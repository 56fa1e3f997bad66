/**
 * `/read`: put workspace files into the conversation as context.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { accessPath, addContext, BINARY_PROBE_BYTES, formatBytes, isBinary } from "./files.ts";
import type { CommandHandler } from "./registry.ts";

/** The most of one file `/read` puts into the conversation. */
export const READ_CAP_BYTES = 100 * 1024;

/** A workspace file read as text for the conversation. */
export interface TextFile {
  /** Its path relative to the workspace root. */
  path: string;
  /** The text (whole lines only when the file was cut). */
  text: string;
  /** The size of the file on disk. */
  size: number;
  /** Bytes of the file in `text`. */
  bytes: number;
  lines: number;
  /** True when the file was longer than the cap. */
  cut: boolean;
}

/** Thrown by {@linkcode readText} for a file with a NUL byte in its first 8 KB. */
export class BinaryFileError extends HarveyError {
  override name = "BinaryFileError";
}

/**
 * Reads a text file of the workspace (permission `read`), at most `maxBytes` of it, cut at
 * the last whole line. Throws {@linkcode BinaryFileError} for a binary file. With `exact`, the
 * text is the file's bytes exactly (a BOM kept, bytes that are not UTF-8 refused), for an edit
 * that writes it back.
 */
export async function readText(
  agent: Agent,
  path: string,
  opts: { maxBytes?: number; exact?: boolean } = {},
): Promise<TextFile> {
  const max = opts.maxBytes ?? READ_CAP_BYTES;
  const rel = await accessPath(agent, path, "read");
  const info = await agent.workspace.stat(rel);
  if (info.isDirectory) {
    throw new HarveyError(`${rel} is a folder, not a file (/files ${rel} lists it)`);
  }
  let data = await agent.workspace.readFile(rel, {
    maxBytes: Math.max(max, BINARY_PROBE_BYTES) + 1,
  });
  if (isBinary(data)) {
    throw new BinaryFileError(
      `${rel} looks binary (a NUL byte in its first 8 KB); /read takes text files only`,
    );
  }
  const cut = data.length > max;
  if (cut) {
    data = data.subarray(0, max);
    const nl = data.lastIndexOf(10);
    if (nl >= 0) data = data.subarray(0, nl + 1);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: opts.exact, ignoreBOM: opts.exact }).decode(data);
  } catch {
    throw new BinaryFileError(
      `${rel} is not UTF-8 text; it cannot be edited as text without changing other bytes`,
    );
  }
  const lines = text === "" ? 0 : text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  return {
    path: rel,
    text,
    size: Math.max(info.size, data.length),
    bytes: data.length,
    lines,
    cut,
  };
}

/** `/read FILE [FILE…]` */
export const readCommand: CommandHandler = {
  paths: [{ rest: true }],
  async run(agent, args, out) {
    if (!args.length) throw new HarveyError("Usage: /read FILE [FILE…]");
    // Every file is read before any is added: a refused file adds nothing.
    const files: TextFile[] = [];
    for (const path of args) files.push(await readText(agent, path));
    for (const f of files) {
      const note = f.cut
        ? `[cut: only the first ${formatBytes(f.bytes)} of ${formatBytes(f.size)} are shown]`
        : undefined;
      addContext(agent, `/read ${f.path}`, f.text, { note });
      const lines = `${f.lines} ${f.lines === 1 ? "line" : "lines"}`;
      out.write(`✓ ${f.path}: ${lines}, ${formatBytes(f.bytes)}`);
      out.write(
        f.cut
          ? ` (cut: the file has ${formatBytes(f.size)}, /read keeps the first ${
            formatBytes(READ_CAP_BYTES)
          })\n`
          : "\n",
      );
    }
  },
};
