/**
 * Pid files under `agents/` that record the servers Harvey started, so the next Harvey can
 * adopt one that is still healthy instead of starting a second one; and the few questions
 * about a process id that adoption needs.
 *
 * @module
 */
import { join } from "node:path";
import { tempPath } from "../util/atomic_write.ts";

/** What Harvey remembers about a server it started. */
export interface ServerRecord {
  backend: string;
  pid: number;
  /** The display name of the model. */
  model: string;
  /** Absolute path of the model file (for a llamafile, the llamafile itself). */
  model_path: string;
  /** The id `/v1/models` answered once the server was ready. */
  model_id?: string;
  url: string;
  port: number;
  /** ISO 8601 time the server was started. */
  started_at: string;
  /** The Harvey process that started it (or took it over). */
  harvey_pid: number;
}

const PREFIX = "server-";
const SUFFIX = ".pid.json";

/** The pid file of the `backend` server on `port`: `DIR/server-BACKEND-PORT.pid.json`. */
export function recordPath(stateDir: string, rec: Pick<ServerRecord, "backend" | "port">): string {
  const safe = rec.backend.replace(/[^A-Za-z0-9_.-]/g, "_");
  return join(stateDir, `${PREFIX}${safe}-${rec.port}${SUFFIX}`);
}

/**
 * Writes (or replaces) the pid file of `rec`, creating `stateDir` when needed: a temporary
 * file, then a rename. Synchronously, so that no stop can run between the check that a server
 * is not stopping and the file landing (a rename still in flight when SIGTERM's stop removed
 * the file left it behind). Not synced: after a crash of the machine its server is gone too.
 */
export function writeRecord(stateDir: string, rec: ServerRecord): void {
  Deno.mkdirSync(stateDir, { recursive: true });
  const path = recordPath(stateDir, rec);
  const tmp = tempPath(path);
  try {
    Deno.writeTextFileSync(tmp, JSON.stringify(rec, null, 2) + "\n", { createNew: true });
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // not created
    }
    throw err;
  }
}

/** Removes the pid file of `rec` if it still describes the same process. */
export async function removeRecord(
  stateDir: string,
  rec: Pick<ServerRecord, "backend" | "port" | "pid">,
): Promise<void> {
  const path = recordPath(stateDir, rec);
  try {
    const current = parseRecord(await Deno.readTextFile(path));
    if (current && current.pid !== rec.pid) return;
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** One pid file found in the state folder; `record` is `undefined` when it cannot be parsed. */
export interface FoundRecord {
  path: string;
  record?: ServerRecord;
}

/** Every pid file in `stateDir` (none when the folder does not exist). */
export async function readRecords(stateDir: string): Promise<FoundRecord[]> {
  const found: FoundRecord[] = [];
  try {
    for await (const entry of Deno.readDir(stateDir)) {
      if (!entry.isFile || !entry.name.startsWith(PREFIX) || !entry.name.endsWith(SUFFIX)) {
        continue;
      }
      const path = join(stateDir, entry.name);
      try {
        found.push({ path, record: parseRecord(await Deno.readTextFile(path)) });
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

function parseRecord(text: string): ServerRecord | undefined {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const str = (k: string) => typeof v?.[k] === "string";
  const int = (k: string) => Number.isInteger(v?.[k]) && (v[k] as number) > 0;
  if (
    !str("backend") || !str("model") || !str("model_path") || !str("url") ||
    !str("started_at") || !int("pid") || !int("port") || !int("harvey_pid") ||
    (v.model_id !== undefined && !str("model_id"))
  ) return undefined;
  return v as unknown as ServerRecord;
}

/**
 * The text of `/proc/PID/NAME`: `undefined` when the process is gone, `null` when it cannot be
 * read at all.
 *
 * Deno refuses its own reads of `/proc` unless it runs with `--allow-all` (`NotCapable`, even
 * with `--allow-read`: `/proc/self/environ` or `/proc/self/mem` would get around its other
 * permissions), and `deno task harvey` never uses `--allow-all`. The same file is then read by
 * a `cat` child, which the task's `--allow-run` permits; `cat` only copies the bytes.
 */
function readProc(pid: number, name: "stat" | "cmdline"): string | undefined | null {
  const path = `/proc/${pid}/${name}`;
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable)) return undefined; // gone (or never was)
  }
  try {
    const out = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return null; // no cat, or running programs is refused too
  }
}

/** Whether a process with this id exists, by signal 0 (a zombie counts as existing). */
function signalZero(pid: number): boolean {
  try {
    Deno.kill(pid, 0 as unknown as Deno.Signal);
    return true;
  } catch (err) {
    return err instanceof Deno.errors.PermissionDenied;
  }
}

/** The fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, … */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * Whether process `pid` exists and is not a zombie (a process that exited but was not
 * reaped yet counts as gone).
 */
export function processAlive(pid: number): boolean {
  if (!signalZero(pid)) return false;
  if (Deno.build.os !== "linux") return true;
  const stat = readProc(pid, "stat");
  if (stat === null) return true; // it exists; whether it is a zombie cannot be told
  if (stat === undefined) return false;
  const state = statFields(stat)[0];
  return state !== "Z" && state !== "X";
}

/** The process group of `pid` (Linux only; `undefined` elsewhere or when it is gone). */
export function processGroup(pid: number): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  const stat = readProc(pid, "stat");
  return stat ? Number(statFields(stat)[2]) : undefined;
}

/**
 * The command line of `pid` (Linux `/proc/PID/cmdline`); `undefined` on other systems or
 * when the process is gone or cannot be inspected.
 */
export function processCmdline(pid: number): string[] | undefined {
  if (Deno.build.os !== "linux") return undefined;
  const text = readProc(pid, "cmdline");
  return text ? text.split("\0").filter((a) => a !== "") : undefined;
}
