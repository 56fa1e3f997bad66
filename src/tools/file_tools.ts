/**
 * The file tools: `read_file`, `list_files`, `write_file`, `edit_file`. Reading never asks;
 * a change shows its diff and asks (by the approval policy) before it is written, as one undo
 * entry per turn.
 *
 * @module
 */
import { describeError } from "../errors.ts";
import { listFolder } from "../ops/listing.ts";
import { type FileChange, planChange, sameBytes } from "../ops/changes.ts";
import { readText } from "../commands/read.ts";
import { formatBytes } from "../ops/access.ts";
import { headOf } from "../util/text_cut.ts";
import { argsSchema } from "./args.ts";
import { failed, type Tool, type ToolContext, type ToolOutcome } from "./tool.ts";

/** The largest file `read_file` and `edit_file` take (a bigger one is searched instead). */
export const TOOL_FILE_CAP = 4 * 1024 * 1024;

const plural = (n: number, word: string, words = `${word}s`) => `${n} ${n === 1 ? word : words}`;

/** Splits text into lines that keep their line ends; the last may have none. */
function splitLines(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  return lines.at(-1) === "" ? lines.slice(0, -1) : lines;
}

/** Why a path-tool call failed, for the model: the one line the user would see. */
function refused(err: unknown): ToolOutcome {
  return failed(describeError(err), "refused");
}

/** `read_file {path, offset?, limit?}` */
export const readFileTool: Tool = {
  spec: {
    name: "read_file",
    description: "Read a text file of the workspace. offset: first line (1-based); limit: lines.",
    parameters: argsSchema({
      path: { type: "string", description: "file path" },
      offset: { type: "integer", description: "first line, default 1" },
      limit: { type: "integer", description: "number of lines" },
    }, ["path"]),
  },
  brief: "Read a file; offset: first line, limit: lines.",
  kind: "read",
  subject: (args) => String(args.path),
  async run(agent, args, ctx) {
    let file;
    try {
      file = await readText(agent, String(args.path), { maxBytes: TOOL_FILE_CAP });
    } catch (err) {
      return refused(err);
    }
    const lines = splitLines(file.text);
    const total = lines.length;
    const first = Math.max(1, Number(args.offset ?? 1));
    if (total > 0 && first > total) {
      return failed(`${file.path} has ${plural(total, "line")}; offset ${first} is past its end`);
    }
    const wanted = args.limit === undefined ? total : Math.max(1, Number(args.limit));
    const header = (last: number) =>
      `[${file.path}: lines ${total ? first : 0}-${last} of ${total}${file.cut ? "+" : ""}]\n`;
    let body = "";
    let last = first - 1;
    const room = ctx.maxChars - header(total).length - 80;
    for (let i = first - 1; i < Math.min(total, first - 1 + wanted); i++) {
      if (body.length + lines[i].length > room && last >= first) break;
      body += lines[i].length > room ? `${headOf(lines[i], room)}…\n` : lines[i];
      last = i + 1;
    }
    if (body && !body.endsWith("\n")) body += "\n";
    const more = last < total || file.cut;
    const note = more
      ? `[${last < total ? `more: read_file with offset ${last + 1}` : "the file is longer"}` +
        ` to read on${file.cut ? `; only the first ${formatBytes(file.bytes)} can be read` : ""}]\n`
      : "";
    return {
      content: `${header(last)}${body}${note}`,
      summary: `${plural(last - first + 1, "line")}${
        more ? ` of ${total}${file.cut ? "+" : ""}` : ""
      }`,
    };
  },
};

/** `list_files {path?}` */
export const listFilesTool: Tool = {
  spec: {
    name: "list_files",
    description: "List a folder of the workspace (default: its root). Folders end with /.",
    parameters: argsSchema({ path: { type: "string", description: "folder path" } }, []),
  },
  brief: "List a folder (default: the root).",
  kind: "read",
  subject: (args) => String(args.path ?? "."),
  async run(agent, args, ctx) {
    let listing;
    try {
      listing = await listFolder(agent, String(args.path ?? "."));
    } catch (err) {
      return refused(err);
    }
    const lines = listing.entries.map((e) =>
      e.kind === "folder"
        ? `${e.name}/`
        : e.kind === "file"
        ? `${e.name} (${formatBytes(e.size)})`
        : `${e.name} (broken link)`
    );
    let content = "";
    let shown = 0;
    for (const line of lines) {
      if (content.length + line.length + 1 > ctx.maxChars - 80) break;
      content += `${line}\n`;
      shown++;
    }
    if (shown < lines.length) content += `[${lines.length - shown} more entries not shown]\n`;
    if (listing.hidden) {
      content += `[${plural(listing.hidden, "hidden entry", "hidden entries")} not listed]\n`;
    }
    if (!lines.length) content += "(empty folder)\n";
    return {
      content: `[${listing.path}/]\n${content}`,
      summary: plural(lines.length, "entry", "entries"),
    };
  },
};

/** Asks for approval of `change` and writes it; `done` is the outcome once it is written. */
async function approveAndWrite(
  tool: string,
  change: FileChange,
  ctx: ToolContext,
  done: ToolOutcome,
): Promise<ToolOutcome> {
  const answer = await ctx.approve({ kind: "edit", tool, change });
  if (answer !== "yes") {
    return {
      content: `declined by the user: ${change.path} was not changed`,
      summary: "declined",
      declined: answer,
    };
  }
  try {
    await ctx.write([change]);
  } catch (err) {
    return failed(describeError(err));
  }
  return done;
}

/** `write_file {path, content}` */
export const writeFileTool: Tool = {
  spec: {
    name: "write_file",
    description: "Create a file, or replace all of it, with content.",
    parameters: argsSchema({
      path: { type: "string", description: "file path" },
      content: { type: "string", description: "the whole new file" },
    }, ["path", "content"]),
  },
  brief: "Create or replace a whole file.",
  kind: "edit",
  subject: (args) => String(args.path),
  async run(agent, args, ctx) {
    const text = String(args.content);
    let change;
    try {
      change = await planChange(agent, String(args.path), new TextEncoder().encode(text), {
        maxBytes: TOOL_FILE_CAP,
      });
    } catch (err) {
      return refused(err);
    }
    if (change.before && sameBytes(change.before, change.after)) {
      return {
        content: `${change.path} already has this content; nothing written`,
        summary: "unchanged",
      };
    }
    const lines = plural(splitLines(text).length, "line");
    const verb = change.before ? "wrote" : "created";
    return await approveAndWrite("write_file", change, ctx, {
      content: `${verb === "wrote" ? "Wrote" : "Created"} ${change.path} (${lines})`,
      summary: `${verb}, ${lines}`,
    });
  },
};

/** The 1-based line numbers where `needle` starts in `text`. */
function matchLines(text: string, needle: string): number[] {
  const found: number[] = [];
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
    found.push(text.slice(0, i).split("\n").length);
  }
  return found;
}

/** `edit_file {path, old_text, new_text}` */
export const editFileTool: Tool = {
  spec: {
    name: "edit_file",
    description: "Replace old_text, which must occur exactly once in the file, with new_text.",
    parameters: argsSchema({
      path: { type: "string", description: "file path" },
      old_text: { type: "string", description: "exact text to replace" },
      new_text: { type: "string", description: "replacement" },
    }, ["path", "old_text", "new_text"]),
  },
  brief: "Replace old_text (found exactly once) with new_text.",
  kind: "edit",
  subject: (args) => String(args.path),
  async run(agent, args, ctx) {
    let oldText = String(args.old_text);
    let newText = String(args.new_text);
    if (!oldText) {
      return failed(
        "old_text is empty; give the exact text to replace (write_file creates a file)",
      );
    }
    let file;
    try {
      file = await readText(agent, String(args.path), { maxBytes: TOOL_FILE_CAP, exact: true });
    } catch (err) {
      return refused(err);
    }
    if (file.cut) {
      return failed(
        `${file.path} is larger than ${formatBytes(TOOL_FILE_CAP)}; edit_file cannot change it`,
      );
    }
    let at = matchLines(file.text, oldText);
    // A file with CRLF line ends: the model's text most likely came with plain LF.
    if (at.length === 0 && file.text.includes("\r\n") && !oldText.includes("\r\n")) {
      const crlf = (t: string) => t.replace(/\r?\n/g, "\r\n");
      const found = matchLines(file.text, crlf(oldText));
      if (found.length) {
        at = found;
        oldText = crlf(oldText);
        newText = crlf(newText);
      }
    }
    if (at.length === 0) {
      const loose = (s: string) => s.replace(/[ \t]+/g, " ").replace(/ ?\r?\n ?/g, "\n").trim();
      const hint = loose(file.text).includes(loose(oldText))
        ? "; it matches only when spaces are ignored: copy the exact text, indentation included"
        : "; read_file it again and copy the text exactly";
      return failed(`old_text was not found in ${file.path}${hint}`, "no match");
    }
    if (at.length > 1) {
      return failed(
        `old_text occurs ${at.length} times in ${file.path} (lines ${
          at.slice(0, 10).join(", ")
        }); ` +
          "include more of the surrounding lines so it occurs once",
        "several matches",
      );
    }
    const i = file.text.indexOf(oldText);
    const after = file.text.slice(0, i) + newText + file.text.slice(i + oldText.length);
    let change;
    try {
      change = await planChange(agent, file.path, new TextEncoder().encode(after));
    } catch (err) {
      return refused(err);
    }
    if (change.before && sameBytes(change.before, change.after)) {
      return {
        content: `old_text and new_text are the same; ${file.path} is unchanged`,
        summary: "unchanged",
      };
    }
    const removed = splitLines(oldText).length;
    const added = newText ? splitLines(newText).length : 0;
    return await approveAndWrite("edit_file", change, ctx, {
      content: `Edited ${file.path}: at line ${at[0]}, ${
        plural(removed, "line")
      } replaced by ${added}`,
      summary: `line ${at[0]}, −${removed} +${added}`,
    });
  },
};

/** The file tools, in the order the model is given them. */
export const FILE_TOOLS: readonly Tool[] = [
  readFileTool,
  listFilesTool,
  writeFileTool,
  editFileTool,
];
