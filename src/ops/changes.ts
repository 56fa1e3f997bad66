/**
 * Changing workspace files the way `/apply` and the model's `write_file` and `edit_file` do:
 * one check of the path, one coloured diff, and one undo journal (`agents/undo/`) written before
 * any file, so `/unapply` restores exactly what was changed, byte for byte, also after a restart.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { dirname } from "node:path";
import type { Agent } from "../agent.ts";
import { describeError, HarveyError } from "../errors.ts";
import type { Output } from "../types.ts";
import { diffLines, diffStats, unifiedDiff } from "../util/diff.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { accessPath, formatBytes, isBinary, refuseKeptPath } from "./access.ts";

/** Where the undo journal lives, relative to the workspace root. */
export const UNDO_JOURNAL = "agents/undo/last_apply.json";

/** The most diff lines shown for one file. */
const DIFF_LINES_SHOWN = 200;

/** One file to write: its path (relative, checked) and its bytes before (null: new) and after. */
export interface FileChange {
  path: string;
  before: Uint8Array | null;
  after: Uint8Array;
  /** The file replaced is executable (it keeps its mode): what is written will be run. */
  executable?: boolean;
}

/** The journal of the last change set: every file it changed, with what was there before. */
export interface Journal {
  version: 1;
  created: string;
  /** `before` is base64 (null for a file that did not exist); `after` the sha256 written. */
  files: { path: string; before: string | null; after: string }[];
  /** Folders the change set created, deepest first. */
  dirs: string[];
  /** What made the change set: `/apply`, or the model's edits of a turn. */
  by?: string;
}

/** The hex sha256 of `bytes`. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Reads a workspace file when it exists (null when it does not). */
export async function readIfExists(agent: Agent, rel: string): Promise<Uint8Array | null> {
  if (!await agent.workspace.exists(rel)) return null;
  return await agent.workspace.readFile(rel);
}

/**
 * Checks that `path` may be written (sandbox, `write` permission, not a folder, not git's or the
 * journal's, `read` permission when it exists) and reads what is there now. Throws a
 * HarveyError that says why not.
 */
export async function planChange(
  agent: Agent,
  path: string,
  after: Uint8Array,
  opts: { maxBytes?: number } = {},
): Promise<FileChange> {
  const rel = await accessPath(agent, path, "write");
  if (rel === ".") throw new HarveyError("it names the workspace itself");
  // Never into agents/ (Harvey's own state: the undo journal, pid files it adopts, its
  // databases, the line history) nor a .git folder, whatever the permissions say.
  refuseKeptPath(rel, "The file");
  if (await agent.workspace.exists(rel)) {
    const info = await agent.workspace.stat(rel);
    if (info.isDirectory) throw new HarveyError(`${rel} is a folder`);
    // The old bytes go into the undo journal: a file too large to keep is not replaced.
    if (opts.maxBytes !== undefined && info.size > opts.maxBytes) {
      throw new HarveyError(
        `${rel} is ${formatBytes(info.size)}; files larger than ${
          formatBytes(opts.maxBytes)
        } are not changed this way`,
      );
    }
    await accessPath(agent, rel, "read");
    if (info.mode !== null && (info.mode & 0o111) !== 0) {
      return { path: rel, before: await readIfExists(agent, rel), after, executable: true };
    }
  }
  return { path: rel, before: await readIfExists(agent, rel), after };
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
 * Writes the header and unified diff of `change` to `out` (at most 200 lines unless `all`),
 * coloured when `color` is set. The file's text is data: its control characters are shown, not
 * obeyed. Returns how many diff lines were left out.
 */
export function showChange(
  change: FileChange,
  out: Output,
  color: boolean,
  opts: { all?: boolean } = {},
): number {
  const after = new TextDecoder().decode(change.after);
  const path = escapeControls(change.path);
  // A script or a hook runs later as written, outside the sandbox, by the user or their tools.
  const warn = () => {
    if (change.executable) {
      out.write(`⚠ ${path} is executable: what is written here runs when it is run, unsandboxed\n`);
    }
  };
  if (change.before && isBinary(change.before)) {
    out.write(`${path} (binary file of ${formatBytes(change.before.length)}, replaced by text)\n`);
    warn();
    return 0;
  }
  const before = change.before ? new TextDecoder().decode(change.before) : "";
  const { added, removed } = diffStats(diffLines(before, after));
  out.write(
    change.before
      ? `${path} (changed, +${added} −${removed})\n`
      : `${path} (new file, ${added} ${added === 1 ? "line" : "lines"})\n`,
  );
  warn();
  const diff = unifiedDiff(before, after, {
    from: change.before ? `a/${change.path}` : "/dev/null",
    to: `b/${change.path}`,
  }).split("\n");
  if (diff.at(-1) === "") diff.pop();
  const shown = opts.all ? diff.length : Math.min(diff.length, DIFF_LINES_SHOWN);
  for (const raw of diff.slice(0, shown)) {
    const line = escapeControls(raw);
    out.write(`${color ? paint(line) : line}\n`);
  }
  const left = diff.length - shown;
  if (left) out.write(`… ${left} more diff lines not shown\n`);
  return left;
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

/**
 * One undo entry that grows as changes are made: `/apply` adds its whole set at once, an agent
 * turn adds each file as the model changes it. The journal file is written before each file,
 * so whatever happens next, `/unapply` knows what to restore; a file changed twice keeps the
 * state from before its first change.
 */
export class ChangeSet {
  #journal: Journal = { version: 1, created: new Date().toISOString(), files: [], dirs: [] };

  constructor(readonly agent: Agent) {}

  /** How many files the set has changed. */
  get size(): number {
    return this.#journal.files.length;
  }

  /**
   * Records `changes` in the journal, then writes them; `audit` names the action, `by` what
   * made them (shown by `/unapply`).
   */
  async write(changes: FileChange[], opts: { audit: string; by: string }): Promise<void> {
    const j = this.#journal;
    j.by = opts.by;
    for (const c of changes) {
      const known = j.files.find((f) => f.path === c.path);
      if (known) known.after = await sha256(c.after);
      else {
        j.files.push({
          path: c.path,
          before: c.before ? Buffer.from(c.before).toString("base64") : null,
          after: await sha256(c.after),
        });
        if (!c.before) j.dirs.push(...await missingDirs(this.agent, c.path));
      }
    }
    j.dirs = [...new Set(j.dirs)].sort((a, b) => b.split("/").length - a.split("/").length);
    await this.agent.workspace.writeFile(UNDO_JOURNAL, JSON.stringify(j, null, 2) + "\n");
    let written = 0;
    for (const c of changes) {
      try {
        await this.agent.workspace.writeFile(c.path, c.after);
        this.agent.audit?.record(
          opts.audit,
          `${c.before ? "wrote" : "created"} ${c.path}`,
          "success",
        );
      } catch (err) {
        this.agent.audit?.record(opts.audit, `${c.path}: ${describeError(err)}`, "error");
        throw new HarveyError(
          `Wrote ${written} of ${changes.length} files; ${c.path} failed: ${
            describeError(err)
          } (/unapply undoes the rest)`,
        );
      }
      written++;
    }
  }
}

/** Reads and checks the journal; undefined when there is none. */
export async function readJournal(agent: Agent): Promise<Journal | undefined> {
  if (!await agent.workspace.exists(UNDO_JOURNAL)) return undefined;
  const text = await agent.workspace.readTextFile(UNDO_JOURNAL);
  const bad = (why: string) =>
    new HarveyError(`${UNDO_JOURNAL} is not an undo journal (${why}); remove it to go on`);
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
  return {
    version: 1,
    created: String(j.created ?? ""),
    files: j.files,
    dirs: j.dirs ?? [],
    by: typeof j.by === "string" ? j.by : "the last /apply",
  };
}
