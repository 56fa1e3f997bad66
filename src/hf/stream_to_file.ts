/**
 * Streams a response body into a file while hashing it, with two 1 MiB buffers: the next
 * read fills one while the other is being written, and hashing runs while the write is in
 * flight. Reading with a BYOB reader keeps memory flat however large the file.
 *
 * Hashing stays on this thread: a worker (with transfers, and later with a shared ring and
 * `Atomics`) used more CPU in all and made pulls slower on a busy two-core machine.
 *
 * Nothing here calls fsync: the caller syncs once before the rename. Syncing every 64 MiB in
 * the background was measured slower (it contends with the writes it follows), and the kernel
 * already writes a large file back in the background once enough of it is dirty.
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { TransientError } from "./http.ts";

const BUFFER = 1 << 20;

/** Why the body stopped before its end; what was read before is on disk and hashed. */
export class BodyReadError extends Error {
  override name = "BodyReadError";
}

/** Options of {@linkcode streamToFile}. */
export interface StreamOptions {
  file: Deno.FsFile;
  hash: Hash;
  /** Called with the bytes streamed so far, after each piece is handed to the disk. */
  onBytes?: (streamed: number) => void;
  /** No data for this long cancels the body with a {@linkcode TransientError}. */
  idleTimeoutMs: number;
  /** Names the server in the idle-timeout message. */
  host: string;
}

/**
 * Writes `body` to `opts.file` at its current position and feeds every byte to `opts.hash`.
 * Returns the number of bytes streamed. A failed read (network, abort, idle timeout) throws
 * {@linkcode BodyReadError} with the cause, after everything read before it is written;
 * a failed write throws the file system's error.
 */
export async function streamToFile(
  body: ReadableStream<Uint8Array>,
  opts: StreamOptions,
): Promise<number> {
  let streamed = 0;
  let pending: Promise<void> | undefined;
  const hand = async (view: Uint8Array): Promise<void> => {
    if (pending) await pending;
    pending = undefined;
    if (view.byteLength === 0) return;
    const p = writeAll(opts.file, view);
    p.catch(() => {});
    pending = p;
    opts.hash.update(view);
    streamed += view.byteLength;
    opts.onBytes?.(streamed);
  };

  let reader: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array>;
  let byob = true;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    reader = body.getReader();
    byob = false;
  }
  let lastData = performance.now();
  let idled = false;
  const timer = setInterval(() => {
    if (performance.now() - lastData > opts.idleTimeoutMs) {
      idled = true;
      reader.cancel().catch(() => {});
    }
  }, Math.max(20, Math.min(1000, opts.idleTimeoutMs / 4)));
  const buffers = [new ArrayBuffer(BUFFER), new ArrayBuffer(BUFFER)];
  let which = 0;
  let failure: unknown;
  let ended = false;
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = byob
          ? await (reader as ReadableStreamBYOBReader).read(new Uint8Array(buffers[which]))
          : await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
      } catch (err) {
        failure = err;
        break;
      }
      if (r.done) {
        if (idled) {
          const ms = opts.idleTimeoutMs;
          const wait = ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
          failure = new TransientError(`No data from ${opts.host} for ${wait}`);
        } else ended = true;
        break;
      }
      lastData = performance.now();
      await hand(r.value);
      if (byob) {
        buffers[which] = r.value.buffer as ArrayBuffer;
        which ^= 1;
      }
    }
  } finally {
    clearInterval(timer);
    if (!ended) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (pending) await pending;
  if (failure !== undefined) throw new BodyReadError("Body read failed", { cause: failure });
  return streamed;
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.byteLength) done += await file.write(data.subarray(done));
}
