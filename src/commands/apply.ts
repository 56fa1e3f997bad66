/**
 * `/apply` and `/unapply`: write the files the model proposed in fenced blocks tagged with a
 * path, after showing their diffs and asking once; undo the last `/apply` byte for byte, also
 * after a restart (a journal in `agents/undo/`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Agent } from "../agent.ts";
import { describeError, HarveyError } from "../errors.ts";
import type { Output } from "../types.ts";
import {
  ChangeSet,
  type FileChange,
  planChange,
  readIfExists,
  readJournal,
  sameBytes,
  sha256,
  showChange,
  UNDO_JOURNAL,
} from "../ops/changes.ts";
import { type Access, accessPath } from "./files.ts";
import { escapeControls } from "../util/terminal_text.ts";
import type { CommandHandler } from "./registry.ts";

/** A fenced code block of a Markdown text. */
export interface FencedBlock {
  /** The info string after the opening fence, trimmed (`go src/x.go`). */
  info: string;
  /** The lines between the fences, each ending with a newline. */
  body: string;
  /** False when the text ended before the closing fence (a cut reply). */
  closed: boolean;
}

/**
 * The fenced code blocks of `text` (``` or ~~~, three or more, indented up to three spaces;
 * a block closes at a fence of the same character at least as long, as in CommonMark).
 *
 * @example
 * ```ts
 * findFencedBlocks("x\n```go a.go\nfunc f() {}\n```\n");
 * // [{ info: "go a.go", body: "func f() {}\n", closed: true }]
 * ```
 */
export function findFencedBlocks(text: string): FencedBlock[] {
  const lines = text.split("\n");
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3})(`{3,}|~{3,})(.*)$/.exec(lines[i].replace(/\r$/, ""));
    if (!open || (open[2][0] === "`" && open[3].includes("`"))) continue;
    const [, indent, fence, info] = open;
    const body: string[] = [];
    let closed = false;
    for (i++; i < lines.length; i++) {
      const line = lines[i].replace(/\r$/, "");
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) {
        closed = true;
        break;
      }
      // Content lines lose up to as many leading spaces as the opening fence had.
      const strip = Math.min(indent.length, /^ */.exec(lines[i])![0].length);
      body.push(lines[i].slice(strip));
    }
    if (!closed && body.at(-1) === "") body.pop(); // the text's own last newline
    blocks.push({ info: info.trim(), body: body.map((l) => `${l}\n`).join(""), closed });
  }
  return blocks;
}

/** Info-string words that look like file names but are language names. */
const NOT_PATHS = new Set(["asp.net", "vb.net", "node.js", "vue.js", "next.js", "c#.net"]);

/** True when a word of an info string names a file: it has a "/" or ends in `.ext`. */
function looksLikePath(word: string): boolean {
  if (!word || word.includes("://") || NOT_PATHS.has(word.toLowerCase())) return false;
  return word.includes("/") || /\.[A-Za-z][A-Za-z0-9_+-]*$/.test(word);
}

/**
 * The file path an info string names: ```` ```go src/x.go ```` (language and path),
 * ```` ```README.md ```` (path only) or ```` ```ts file=src/x.ts ````; undefined for a bare
 * language (```` ```go ````).
 */
export function blockPath(info: string): string | undefined {
  const words = info.split(/\s+/).slice(0, 2).map((w) =>
    w.replace(/^(?:file|path|title|filename)=/, "").replace(/^["']|["']$/g, "").replace(/:$/, "")
  );
  const path = words.find(looksLikePath);
  return path?.replace(/^(?:\.\/)+/, "");
}

/** A fenced block tagged with the path of a file. */
export interface TaggedBlock {
  path: string;
  body: string;
  closed: boolean;
}

/** The blocks of `text` whose info string names a file path. */
export function findTaggedBlocks(text: string): TaggedBlock[] {
  const tagged: TaggedBlock[] = [];
  for (const b of findFencedBlocks(text)) {
    const path = blockPath(b.info);
    if (path) tagged.push({ path, body: b.body, closed: b.closed });
  }
  return tagged;
}

/** The last assistant message of the history, or a clear error. */
export function lastReply(agent: Agent, command: string): string {
  const reply = agent.history.findLast((m) => m.role === "assistant");
  if (!reply) throw new HarveyError(`No reply to ${command} yet — ask the model something first`);
  return reply.content;
}

async function plan(agent: Agent, blocks: TaggedBlock[], out: Output): Promise<FileChange[]> {
  const byPath = new Map<string, FileChange>();
  for (const block of blocks) {
    let change: FileChange;
    try {
      if (!block.closed) throw new HarveyError("the block is not closed (was the reply cut?)");
      change = await planChange(agent, block.path, new TextEncoder().encode(block.body));
    } catch (err) {
      throw new HarveyError(
        `Refused the block for ${JSON.stringify(block.path)}: ${
          describeError(err)
        }; nothing was written`,
      );
    }
    if (byPath.has(change.path)) {
      out.write(`⚠ ${change.path} has several blocks; the last one is used\n`);
    }
    byPath.set(change.path, change);
  }
  return [...byPath.values()];
}

/** `/apply` */
export const applyCommand: CommandHandler = {
  async run(agent, _args, out) {
    const blocks = findTaggedBlocks(lastReply(agent, "/apply"));
    if (!blocks.length) {
      throw new HarveyError(
        "The last reply has no code block tagged with a path (like ```go src/main.go); nothing to apply",
      );
    }
    const planned = await plan(agent, blocks, out);
    const changes = planned.filter((p) => !p.before || !sameBytes(p.before, p.after));
    for (const p of planned) {
      if (!changes.includes(p)) out.write(`${escapeControls(p.path)} (unchanged)\n`);
    }
    if (!changes.length) {
      out.write("Nothing to apply: every file already has this content.\n");
      return;
    }
    for (const p of changes) showChange(p, out, agent.settings.color);
    const n = changes.length;
    if (!await agent.asker.confirm(`Apply ${n === 1 ? "this change" : `these ${n} changes`}?`)) {
      out.write("Nothing written.\n");
      return;
    }
    await new ChangeSet(agent).write(changes, { audit: "apply", by: "the last /apply" });
    for (const p of changes) {
      out.write(`✓ ${p.before ? "Wrote" : "Created"} ${escapeControls(p.path)}\n`);
    }
    out.write(`Applied ${n} ${n === 1 ? "file" : "files"} (/unapply undoes this).\n`);
  },
};

interface Undo {
  path: string;
  action: "restore" | "remove";
  before?: Uint8Array;
  /** Edited since /apply: those edits will be lost. */
  edited: boolean;
}

/** `/unapply` */
export const unapplyCommand: CommandHandler = {
  async run(agent, _args, out) {
    const journal = await readJournal(agent);
    if (!journal) {
      throw new HarveyError(
        "Nothing to undo: no /apply and no edit of the model since the last /unapply",
      );
    }
    const undo: Undo[] = [];
    for (const f of journal.files) {
      const perm: Access = f.before === null ? "delete" : "write";
      const rel = await accessPath(agent, f.path, perm);
      const now = await readIfExists(agent, rel);
      const edited = now !== null && await sha256(now) !== f.after;
      if (f.before === null) {
        if (now !== null) undo.push({ path: rel, action: "remove", edited });
      } else {
        const before = new Uint8Array(Buffer.from(f.before, "base64"));
        if (!now || !sameBytes(now, before)) {
          undo.push({ path: rel, action: "restore", before, edited: edited || now === null });
        }
      }
    }
    if (!undo.length) {
      await agent.workspace.remove(UNDO_JOURNAL);
      out.write(`Nothing to undo: the files are as they were before ${journal.by}.\n`);
      return;
    }
    for (const u of undo) {
      const what = u.action === "remove" ? `remove (created by ${journal.by})` : "restore";
      const edited = u.edited ? ` — ⚠ changed since ${journal.by}; those changes will be lost` : "";
      out.write(`  ${what} ${u.path}${edited}\n`);
    }
    const n = undo.length;
    const files = `${n} ${n === 1 ? "file" : "files"}`;
    if (!await agent.asker.confirm(`Undo ${journal.by} (${files})?`)) {
      out.write("Nothing changed.\n");
      return;
    }
    for (const u of undo) {
      try {
        if (u.action === "remove") await agent.workspace.remove(u.path);
        else await agent.workspace.writeFile(u.path, u.before!);
      } catch (err) {
        agent.audit?.record("unapply", `${u.path}: ${describeError(err)}`, "error");
        throw err;
      }
      const did = u.action === "remove" ? "Removed" : "Restored";
      agent.audit?.record("unapply", `${did.toLowerCase()} ${u.path}`, "success");
      out.write(`✓ ${did} ${u.path}\n`);
    }
    for (const d of journal.dirs) {
      try {
        if (!await agent.workspace.exists(d)) continue;
        if ((await agent.workspace.readDir(d)).length) continue; // something else lives there
        await agent.workspace.remove(await accessPath(agent, d, "delete"));
      } catch (err) {
        agent.err.write(`⚠ Left the folder ${d}: ${describeError(err)}\n`);
      }
    }
    await agent.workspace.remove(UNDO_JOURNAL);
    out.write(`Undid ${journal.by} (${files}).\n`);
  },
};
