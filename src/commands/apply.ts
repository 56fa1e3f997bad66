/**
 * `/apply` and `/unapply`: write the files the model proposed in fenced blocks tagged with a
 * path, after showing their diffs and asking once; undo the last `/apply` byte for byte, also
 * after a restart (a journal in `agents/undo/`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import type { Agent } from "../agent.ts";
import { describeError, HarveyError } from "../errors.ts";
import type { Output } from "../types.ts";
import { diffLines, diffStats, unifiedDiff } from "../util/diff.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { type Access, accessPath, formatBytes, isBinary } from "./files.ts";
import type { CommandSpec } from "./registry.ts";

/** Where `/apply` keeps what `/unapply` needs, relative to the workspace root. */
export const UNDO_JOURNAL = "agents/undo/last_apply.json";

/** The most diff lines `/apply` prints for one file. */
const DIFF_LINES_SHOWN = 200;

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

/** The journal of one `/apply`: every file it changed, with what was there before. */
interface Journal {
  version: 1;
  created: string;
  files: { path: string; before: string | null; after: string }[];
  /** Folders `/apply` created, deepest first. */
  dirs: string[];
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

/** Reads a file when it exists (null when it does not). */
async function readIfExists(agent: Agent, rel: string): Promise<Uint8Array | null> {
  if (!await agent.workspace.exists(rel)) return null;
  return await agent.workspace.readFile(rel);
}

/** Paths `/apply` never writes: git's own files and the undo journal. */
function protectedPath(rel: string): boolean {
  return /^\.git(\/|$)/.test(rel) || rel === "agents/undo" || rel.startsWith("agents/undo/");
}

interface Planned {
  path: string;
  before: Uint8Array | null;
  after: Uint8Array;
}

async function plan(agent: Agent, blocks: TaggedBlock[], out: Output): Promise<Planned[]> {
  const byPath = new Map<string, Planned>();
  for (const block of blocks) {
    let rel: string;
    try {
      rel = await accessPath(agent, block.path, "write");
      if (rel === ".") throw new HarveyError("it names the workspace itself");
      if (protectedPath(rel)) throw new HarveyError(`${rel} is kept by git or Harvey`);
      if (!block.closed) throw new HarveyError("the block is not closed (was the reply cut?)");
      const exists = await agent.workspace.exists(rel);
      if (exists) {
        if ((await agent.workspace.stat(rel)).isDirectory) throw new HarveyError("it is a folder");
        await accessPath(agent, rel, "read");
      }
    } catch (err) {
      throw new HarveyError(
        `Refused the block for ${JSON.stringify(block.path)}: ${
          describeError(err)
        }; nothing was written`,
      );
    }
    if (byPath.has(rel)) out.write(`⚠ ${rel} has several blocks; the last one is used\n`);
    byPath.set(rel, {
      path: rel,
      before: await readIfExists(agent, rel),
      after: new TextEncoder().encode(block.body),
    });
  }
  return [...byPath.values()];
}

/** A diff line in the usual colours: removals red, additions green, hunk headers cyan. */
function paint(line: string): string {
  if (line.startsWith("+++") || line.startsWith("---")) return `\x1b[1m${line}\x1b[0m`;
  if (line.startsWith("+")) return `\x1b[32m${line}\x1b[0m`;
  if (line.startsWith("-")) return `\x1b[31m${line}\x1b[0m`;
  if (line.startsWith("@@")) return `\x1b[36m${line}\x1b[0m`;
  return line;
}

/**
 * Shows what writing `p` changes. The model wrote the text and the path: their control
 * characters are made visible before Harvey adds its own colours, so a reply cannot hide a
 * line of the diff (`ESC[2K ESC[1G`) or retitle the terminal.
 */
function showDiff(p: Planned, out: Output, color: boolean): void {
  const after = new TextDecoder().decode(p.after);
  const path = escapeControls(p.path);
  if (p.before && isBinary(p.before)) {
    out.write(`${path} (binary file of ${formatBytes(p.before.length)}, replaced by text)\n`);
    return;
  }
  const before = p.before ? new TextDecoder().decode(p.before) : "";
  const { added, removed } = diffStats(diffLines(before, after));
  out.write(
    p.before
      ? `${path} (changed, +${added} −${removed})\n`
      : `${path} (new file, ${added} ${added === 1 ? "line" : "lines"})\n`,
  );
  const diff = unifiedDiff(before, after, {
    from: p.before ? `a/${p.path}` : "/dev/null",
    to: `b/${p.path}`,
  }).split("\n");
  if (diff.at(-1) === "") diff.pop();
  for (const raw of diff.slice(0, DIFF_LINES_SHOWN)) {
    const line = escapeControls(raw);
    out.write(`${color ? paint(line) : line}\n`);
  }
  if (diff.length > DIFF_LINES_SHOWN) {
    out.write(`… ${diff.length - DIFF_LINES_SHOWN} more diff lines not shown\n`);
  }
}

/** Folders missing above `rel` (deepest first): the ones writing it will create. */
async function missingDirs(agent: Agent, rel: string): Promise<string[]> {
  const dirs: string[] = [];
  for (let d = dirname(rel); d !== "." && d !== "/"; d = dirname(d)) {
    if (await agent.workspace.exists(d)) break;
    dirs.push(d);
  }
  return dirs;
}

/** `/apply` */
export const applyCommand: CommandSpec = {
  name: "apply",
  usage: ["/apply"],
  summary: "Write the files of the last reply's path-tagged code blocks (shows diffs, asks first)",
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
    for (const p of changes) showDiff(p, out, agent.settings.color);
    const n = changes.length;
    if (!await agent.asker.confirm(`Apply ${n === 1 ? "this change" : `these ${n} changes`}?`)) {
      out.write("Nothing written.\n");
      return;
    }
    const dirs = new Set<string>();
    for (const p of changes) {
      if (!p.before) { for (const d of await missingDirs(agent, p.path)) dirs.add(d); }
    }
    const journal: Journal = {
      version: 1,
      created: new Date().toISOString(),
      files: changes.map((p) => ({
        path: p.path,
        before: p.before ? Buffer.from(p.before).toString("base64") : null,
        after: sha256(p.after),
      })),
      dirs: [...dirs].sort((a, b) => b.split("/").length - a.split("/").length),
    };
    // The journal goes first: whatever happens next, /unapply knows what to restore.
    await agent.workspace.writeFile(UNDO_JOURNAL, JSON.stringify(journal, null, 2) + "\n");
    let written = 0;
    for (const p of changes) {
      try {
        await agent.workspace.writeFile(p.path, p.after);
        agent.audit?.record("apply", `${p.before ? "wrote" : "created"} ${p.path}`, "success");
      } catch (err) {
        agent.audit?.record("apply", `${p.path}: ${describeError(err)}`, "error");
        throw new HarveyError(
          `Wrote ${written} of ${n} files; ${p.path} failed: ${
            describeError(err)
          } (/unapply undoes the rest)`,
        );
      }
      written++;
      out.write(`✓ ${p.before ? "Wrote" : "Created"} ${p.path}\n`);
    }
    out.write(`Applied ${n} ${n === 1 ? "file" : "files"} (/unapply undoes this).\n`);
  },
};

/** Reads and checks the journal; undefined when there is none. */
async function readJournal(agent: Agent): Promise<Journal | undefined> {
  if (!await agent.workspace.exists(UNDO_JOURNAL)) return undefined;
  const text = await agent.workspace.readTextFile(UNDO_JOURNAL);
  const bad = (why: string) =>
    new HarveyError(`${UNDO_JOURNAL} is not an /apply journal (${why}); remove it to go on`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bad(describeError(err));
  }
  const j = value as Partial<Journal>;
  if (typeof j !== "object" || j === null || j.version !== 1) throw bad("unknown version");
  if (!Array.isArray(j.files) || !Array.isArray(j.dirs ?? [])) throw bad("no file list");
  for (const f of j.files) {
    if (
      typeof f?.path !== "string" || typeof f.after !== "string" ||
      (f.before !== null && typeof f.before !== "string")
    ) throw bad("a file entry is malformed");
  }
  if (!(j.dirs ?? []).every((d) => typeof d === "string")) throw bad("a folder entry is malformed");
  return { version: 1, created: String(j.created ?? ""), files: j.files, dirs: j.dirs ?? [] };
}

interface Undo {
  path: string;
  action: "restore" | "remove";
  before?: Uint8Array;
  /** Edited since /apply: those edits will be lost. */
  edited: boolean;
}

/** `/unapply` */
export const unapplyCommand: CommandSpec = {
  name: "unapply",
  usage: ["/unapply"],
  summary: "Undo the last /apply: restore the files it changed, remove the ones it created",
  async run(agent, _args, out) {
    const journal = await readJournal(agent);
    if (!journal) {
      throw new HarveyError("Nothing to undo: no /apply since the last /unapply");
    }
    const undo: Undo[] = [];
    for (const f of journal.files) {
      const perm: Access = f.before === null ? "delete" : "write";
      const rel = await accessPath(agent, f.path, perm);
      const now = await readIfExists(agent, rel);
      const edited = now !== null && sha256(now) !== f.after;
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
      out.write("Nothing to undo: the files are as they were before the last /apply.\n");
      return;
    }
    for (const u of undo) {
      const what = u.action === "remove" ? "remove (created by /apply)" : "restore";
      const edited = u.edited ? " — ⚠ changed since /apply; those changes will be lost" : "";
      out.write(`  ${what} ${u.path}${edited}\n`);
    }
    const n = undo.length;
    if (!await agent.asker.confirm(`Undo the last /apply (${n} ${n === 1 ? "file" : "files"})?`)) {
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
    out.write(`Undid the last /apply (${n} ${n === 1 ? "file" : "files"}).\n`);
  },
};
