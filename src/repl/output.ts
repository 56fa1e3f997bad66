/**
 * Outputs: the terminal's streams, and a buffer for tests.
 *
 * @module
 */
import type { Output } from "../types.ts";

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let n = 0;
  while (n < bytes.length) n += file.writeSync(bytes.subarray(n));
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
