/**
 * The partial download beside the destination (`FILE.part`), its sidecar (`FILE.part.json`:
 * where the bytes come from), hashing what is on disk, and file-system errors in plain words.
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { describeError, HarveyError } from "../errors.ts";
import { atomicWrite } from "../util/atomic_write.ts";
import { formatBytes } from "./progress.ts";

/** What `FILE.part.json` records, so that a later pull knows whether the part can be resumed. */
export interface Sidecar {
  /** The resolve URL on the hub (not the short-lived address it redirects to). */
  url: string;
  /** The normalised ETag the hub gave when the part was started; `null` when it gave none. */
  etag: string | null;
  /** The file's full size; `null` when unknown. */
  size: number | null;
  commit?: string;
  /** When the part was started (ISO 8601). */
  started: string;
}

/** `FILE.part` for a destination `FILE`. */
export function partPath(dest: string): string {
  return `${dest}.part`;
}

/** `FILE.part.json` for a destination `FILE`. */
export function sidecarPath(dest: string): string {
  return `${dest}.part.json`;
}

/** Reads a sidecar; `undefined` when it is missing or not one Harvey wrote. */
export async function readSidecar(path: string): Promise<Sidecar | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const okEtag = v.etag === null || typeof v.etag === "string";
    const okSize = v.size === null || (typeof v.size === "number" && Number.isSafeInteger(v.size));
    if (typeof v.url !== "string" || !okEtag || !okSize) return undefined;
    return {
      url: v.url,
      etag: v.etag as string | null,
      size: v.size as number | null,
      commit: typeof v.commit === "string" ? v.commit : undefined,
      started: typeof v.started === "string" ? v.started : "",
    };
  } catch {
    return undefined;
  }
}

/** Writes a sidecar atomically. */
export async function writeSidecar(path: string, sidecar: Sidecar): Promise<void> {
  await atomicWrite(path, `${JSON.stringify(sidecar, null, 2)}\n`);
}

/** Removes a file; a missing file is fine. */
export async function removeIfThere(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

const READ_CHUNK = 4 << 20;

/**
 * Feeds the first `length` bytes of `file` (from its start) into `hash`. Stops early with the
 * abort reason when `signal` aborts. Throws when the file is shorter than `length`.
 */
export async function hashPrefix(
  file: Deno.FsFile,
  length: number,
  hash: Hash,
  signal?: AbortSignal,
): Promise<void> {
  await file.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(Math.min(READ_CHUNK, Math.max(length, 1)));
  let done = 0;
  while (done < length) {
    signal?.throwIfAborted();
    const n = await file.read(buf.subarray(0, Math.min(buf.length, length - done)));
    if (n === null) throw new Error(`File ended after ${done} of ${length} bytes`);
    hash.update(buf.subarray(0, n));
    done += n;
  }
}

/** Hashes the whole file at `path` into `hash`; returns its size. */
export async function hashWholeFile(
  path: string,
  hash: Hash,
  signal?: AbortSignal,
): Promise<number> {
  using file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  await hashPrefix(file, size, hash, signal);
  return size;
}

/** Whether an error means the disk (or the user's quota) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === "ENOSPC" || code === "EDQUOT" ||
    (err instanceof Error && /no space left|quota exceeded/i.test(err.message));
}

/**
 * A file-system error in plain words: what could not be done to `path`, why, and what to do.
 * `progress` adds how much is kept, for errors in the middle of a download.
 */
export function fsError(
  err: unknown,
  what: string,
  path: string,
  progress?: { received: number; total?: number },
): HarveyError {
  if (err instanceof HarveyError) return err;
  const kept = progress
    ? `; ${formatBytes(progress.received)}${
      progress.total ? ` of ${formatBytes(progress.total)}` : ""
    } kept`
    : "";
  if (isDiskFull(err)) {
    const need = progress?.total !== undefined
      ? ` (about ${formatBytes(Math.max(0, progress.total - progress.received))} more needed)`
      : "";
    return new HarveyError(
      `Disk full while trying to ${what} ${path}${kept}: free some space${need} and run the ` +
        `same pull again to resume`,
    );
  }
  if (err instanceof Deno.errors.NotCapable) return new HarveyError(describeError(err));
  const code = (err as { code?: unknown })?.code;
  if (err instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM") {
    return new HarveyError(
      `Cannot ${what} ${path}: permission denied; choose a folder you can write to with --dir`,
    );
  }
  if (code === "EROFS" || (err instanceof Error && /read-only file system/i.test(err.message))) {
    return new HarveyError(
      `Cannot ${what} ${path}: the file system is read-only; choose another folder with --dir`,
    );
  }
  if (err instanceof Deno.errors.NotADirectory) {
    return new HarveyError(`Cannot ${what} ${path}: a part of the path is a file, not a folder`);
  }
  const message = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
  return new HarveyError(`Cannot ${what} ${path}: ${message}${kept}`);
}
