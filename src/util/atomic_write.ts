/**
 * The one way Harvey writes a file a user may care about.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Options of {@linkcode atomicWrite}. */
export interface AtomicWriteOptions {
  /** File mode of a new file (default 644; an existing file keeps its own). */
  mode?: number;
  /**
   * Called once the temporary file exists and before a byte is written, with its path and
   * the information of the open handle; throws to refuse (the temporary file is removed and
   * the error passed on). The workspace uses it to check that the file was not created
   * through a folder swapped for a symlink.
   */
  verify?: (tmp: string, held: Deno.FileInfo) => void | Promise<void>;
  /**
   * Told the temporary file's path when it could not be removed after a failure (its folder
   * was moved away meanwhile), so that the caller can try again later.
   */
  onLeftover?: (tmp: string) => void;
}

/** `.NAME.PID-RANDOM.tmp`: the process id lets a later Harvey remove what a killed one left. */
const TEMP_NAME = /^\.(.+)\.(\d+)-[0-9a-f]{8}\.tmp$/;

/** The temporary file of a write to `path` by this process. */
/** The temporary file a write of `path` goes through (named so leftovers can be found). */
export function tempPath(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`,
  );
}

/**
 * Removes `tmp` (true once it is gone). A folder on the way that is being swapped for a
 * symlink can send a try elsewhere, or have put the file elsewhere: each round tries the path,
 * then where its folder resolves to right now if the file there is `held` (same inode), for
 * about a second, waiting longer each time. The name is unique: only this file is removed.
 */
async function removeTemp(tmp: string, held?: Deno.FileInfo): Promise<boolean> {
  const name = basename(tmp);
  for (let wait = 1; wait <= 512; wait *= 2) {
    try {
      await Deno.remove(tmp);
      return true;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) return false;
    }
    if (held) {
      try {
        const there = join(await Deno.realPath(dirname(tmp)), name);
        const info = await Deno.lstat(there);
        if (info.ino === held.ino && info.dev === held.dev) {
          await Deno.remove(there);
          return true;
        }
      } catch {
        // not there either
      }
    }
    await new Promise((r) => setTimeout(r, wait));
  }
  return false;
}

/**
 * Writes `data` to `path` atomically: a temporary file in the same folder, fsync, then
 * rename. A reader never sees a half-written file, and a failure leaves the old file as it
 * was and no temporary file behind. The file mode of an existing file is kept.
 *
 * @example
 * ```ts
 * await atomicWrite("agents/harvey.yaml", "model: qwen3\n");
 * ```
 */
export async function atomicWrite(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = tempPath(path);
  let mode = opts.mode;
  if (mode === undefined) {
    try {
      mode = (await Deno.stat(path)).mode ?? undefined;
    } catch {
      mode = undefined;
    }
  }
  const file = await Deno.open(tmp, { write: true, createNew: true, mode: mode ?? 0o644 });
  let held: Deno.FileInfo | undefined;
  try {
    held = await file.stat();
    await opts.verify?.(tmp, held);
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync();
  } catch (err) {
    file.close();
    if (!await removeTemp(tmp, held)) opts.onLeftover?.(tmp);
    throw err;
  }
  file.close();
  try {
    if (mode !== undefined) await Deno.chmod(tmp, mode & 0o7777);
    await Deno.rename(tmp, path);
  } catch (err) {
    if (!await removeTemp(tmp, held)) opts.onLeftover?.(tmp);
    throw err;
  }
}

/**
 * Removes the temporary files that writes by processes no longer running left in `dir`
 * (a Harvey killed in the middle of a save); `alive` tells whether a process id runs.
 * Returns the names removed.
 */
export async function removeStaleTemps(
  dir: string,
  opts: { alive: (pid: number) => boolean },
): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = TEMP_NAME.exec(entry.name);
      if (!m || !entry.isFile) continue;
      const pid = Number(m[2]);
      if (pid === Deno.pid || opts.alive(pid)) continue;
      try {
        await Deno.remove(join(dir, entry.name));
        removed.push(entry.name);
      } catch {
        // gone meanwhile, or not ours to remove
      }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return removed;
}
