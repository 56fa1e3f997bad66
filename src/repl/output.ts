/**
 * Outputs: the terminal's streams, and a buffer for tests.
 *
 * @module
 */
import type { Output } from "../types.ts";

const encoder = new TextEncoder();

/** The exit status of a program whose output was closed under it (killed by SIGPIPE). */
export const BROKEN_PIPE_STATUS = 141;

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let n = 0;
  try {
    while (n < bytes.length) n += file.writeSync(bytes.subarray(n));
  } catch (err) {
    // The reader went away (`harvey -p … | head`): end as a program does when its output is
    // closed, quietly; the exit hooks still stop the servers, and the session is saved as it
    // goes. A write is often in a timer (a reply's coalesced tokens), where a throw would be
    // an uncaught error with a stack.
    if (err instanceof Deno.errors.BrokenPipe) Deno.exit(BROKEN_PIPE_STATUS);
    throw err;
  }
}

/** Writes straight to stdout, synchronously, so tokens appear the moment they arrive. */
export const stdoutOutput: Output = { write: (text) => writeAll(Deno.stdout, text) };

/** Writes straight to stderr. */
export const stderrOutput: Output = { write: (text) => writeAll(Deno.stderr, text) };

/** Collects what is written, for tests and for commands that inject output as context. */
export class BufferOutput implements Output {
  text = "";
  /** Appends `text`. */
  write(text: string): void {
    this.text += text;
  }
}
