/**
 * The session files of a workspace (`agents/sessions/ID.jsonl`), read and removed through the
 * workspace sandbox: listing, loading, finding one by ID, name or the start of its ID.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { Workspace } from "../workspace.ts";
import { encodeEvent, parseSessionText, type SessionEvent, SESSIONS_DIR } from "./format.ts";
import { foldSession, type SessionState, type SessionSummary, summarize } from "./state.ts";

/** A session file that could not be read, and why. */
export interface BrokenSession {
  id: string;
  error: string;
}

/** A loaded session, with what its file needs before more is appended. */
export interface LoadedSession {
  state: SessionState;
  warnings: string[];
  /** The file's last line had no newline: the text to put back before appending. */
  repair?: string;
}

const ID_CHARS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * A new session ID from the local time and four random hex digits, e.g. `20250301-142501-7f3a`:
 * sorted by when it started, readable, safe as a file name.
 */
export function newSessionId(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const date = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}`;
  const time = `${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  const random = crypto.getRandomValues(new Uint16Array(1))[0].toString(16).padStart(4, "0");
  return `${date}-${time}-${random}`;
}

/** The workspace path of session `id`'s file. */
export function sessionPath(id: string): string {
  if (!ID_CHARS.test(id)) {
    throw new HarveyError(
      `"${id}" is not a session ID (letters, digits, ".", "_" and "-"; /session list shows them)`,
    );
  }
  return `${SESSIONS_DIR}/${id}.jsonl`;
}

/** The session files of one workspace. */
export class SessionStore {
  constructor(readonly workspace: Workspace) {}

  /** The IDs of every session file, sorted. */
  async ids(): Promise<string[]> {
    if (!await this.workspace.exists(SESSIONS_DIR)) return [];
    const entries = await this.workspace.readDir(SESSIONS_DIR);
    return entries
      .filter((e) => e.isFile && e.name.endsWith(".jsonl"))
      .map((e) => e.name.slice(0, -".jsonl".length))
      .filter((id) => ID_CHARS.test(id));
  }

  /** Loads session `id`; throws HarveyError when it is missing or cannot be read. */
  async load(id: string): Promise<LoadedSession> {
    const path = sessionPath(id);
    let text: string;
    try {
      text = await this.workspace.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new HarveyError(`No session ${id} in ${SESSIONS_DIR} (/session list shows them)`);
      }
      throw err;
    }
    const parsed = parseSessionText(text, path);
    const state = foldSession(parsed.events, path);
    if (state.id !== id) {
      throw new HarveyError(`${path} holds session ${state.id}, not ${id}; rename the file back`);
    }
    return {
      state,
      warnings: parsed.warnings,
      repair: parsed.torn ? parsed.complete : undefined,
    };
  }

  /** Every session, the most recently updated first, and the files that could not be read. */
  async list(): Promise<{ sessions: SessionSummary[]; broken: BrokenSession[] }> {
    const sessions: SessionSummary[] = [];
    const broken: BrokenSession[] = [];
    for (const id of await this.ids()) {
      try {
        sessions.push(summarize((await this.load(id)).state));
      } catch (err) {
        broken.push({ id, error: err instanceof Error ? err.message : String(err) });
      }
    }
    sessions.sort((a, b) => a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0);
    return { sessions, broken };
  }

  /** The most recently updated session, if there is one. */
  async latest(): Promise<SessionSummary | undefined> {
    return (await this.list()).sessions[0];
  }

  /**
   * The ID of the session `ref` names: its ID, its name, or the start of one ID. Throws
   * HarveyError when none or several match.
   */
  async find(ref: string): Promise<string> {
    // An exact ID is taken even when its file does not read: loading it then says why.
    if ((await this.ids()).includes(ref)) return ref;
    const { sessions } = await this.list();
    const named = sessions.filter((s) => s.name === ref);
    if (named.length === 1) return named[0].id;
    const prefixed = named.length ? named : sessions.filter((s) => s.id.startsWith(ref));
    if (prefixed.length === 1) return prefixed[0].id;
    if (prefixed.length > 1) {
      throw new HarveyError(
        `"${ref}" names ${prefixed.length} sessions (${
          prefixed.slice(0, 4).map((s) => s.id).join(", ")
        }${prefixed.length > 4 ? ", …" : ""}); give more of the ID`,
      );
    }
    throw new HarveyError(
      `No session "${ref}" in ${SESSIONS_DIR} — /session list shows them${
        sessions.length ? "" : " (there are none yet)"
      }`,
    );
  }

  /** Appends `events` to session `id`'s file (which must exist), synced. */
  async append(id: string, events: SessionEvent[]): Promise<void> {
    const { repair } = await this.load(id);
    if (repair !== undefined) await this.workspace.writeFile(sessionPath(id), repair);
    const file = await this.workspace.openAppend(sessionPath(id));
    try {
      const bytes = new TextEncoder().encode(events.map(encodeEvent).join(""));
      let n = 0;
      while (n < bytes.length) n += await file.write(bytes.subarray(n));
      await file.sync();
    } finally {
      file.close();
    }
  }

  /** Removes session `id`'s file. */
  async remove(id: string): Promise<void> {
    await this.workspace.remove(sessionPath(id));
  }
}
