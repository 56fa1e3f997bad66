/**
 * The last lines a child process wrote, kept in a capped ring so a chatty server cannot
 * grow Harvey's memory.
 *
 * @module
 */

/** One line of a child's output. */
export interface LogLine {
  stream: "stdout" | "stderr";
  text: string;
}

/** Limits of a {@linkcode LogRing}. */
export interface LogRingOptions {
  /** Lines kept (default 200). */
  maxLines?: number;
  /** Characters kept over all lines (default 65,536); a longer single line is cut. */
  maxChars?: number;
}

/**
 * A ring of the last lines of a child's stdout and stderr, in the order they arrived.
 *
 * @example
 * ```ts
 * const ring = new LogRing({ maxLines: 2 });
 * ring.push("stderr", "a");
 * ring.push("stderr", "b");
 * ring.push("stdout", "c");
 * ring.lines(); // ["b", "c"]
 * ```
 */
export class LogRing {
  #lines: LogLine[] = [];
  #chars = 0;
  /** The line each stream is still writing (no newline yet), e.g. llama.cpp's progress dots. */
  #partial: Record<LogLine["stream"], string> = { stdout: "", stderr: "" };
  readonly #maxLines: number;
  readonly #maxChars: number;

  constructor(opts: LogRingOptions = {}) {
    this.#maxLines = opts.maxLines ?? 200;
    this.#maxChars = opts.maxChars ?? 65_536;
  }

  /** Adds one line, dropping the oldest ones beyond the limits. */
  push(stream: LogLine["stream"], text: string): void {
    if (text.length > this.#maxChars) text = text.slice(0, this.#maxChars - 1) + "…";
    this.#lines.push({ stream, text });
    this.#chars += text.length;
    while (this.#lines.length > this.#maxLines || this.#chars > this.#maxChars) {
      this.#chars -= this.#lines.shift()!.text.length;
    }
  }

  /** Every kept line, oldest first. */
  lines(): string[] {
    return this.#lines.map((l) => l.text);
  }

  /** The last `n` lines of `stream` (or of both when omitted), oldest first. */
  tail(n: number, stream?: LogLine["stream"]): string[] {
    const picked = stream ? this.#lines.filter((l) => l.stream === stream) : this.#lines;
    return picked.slice(-n).map((l) => l.text);
  }

  /** The line `stream` is still writing (no newline yet), cut to the last 200 characters. */
  partial(stream: LogLine["stream"]): string {
    return this.#partial[stream];
  }

  /** Reads `source` to its end, one line at a time, into the ring. */
  async pump(source: ReadableStream<Uint8Array>, stream: LogLine["stream"]): Promise<void> {
    let pending = "";
    try {
      for await (const chunk of source.pipeThrough(new TextDecoderStream())) {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          this.push(stream, pending.slice(0, nl).replace(/\r$/, ""));
          pending = pending.slice(nl + 1);
        }
        if (pending.length > this.#maxChars) {
          this.push(stream, pending);
          pending = "";
        }
        this.#partial[stream] = pending.slice(-200);
      }
    } catch {
      // The pipe broke (the child was killed): keep what was read.
    }
    this.#partial[stream] = "";
    if (pending) this.push(stream, pending.replace(/\r$/, ""));
  }
}

/**
 * What a loading server says it is doing, for a spinner: llama.cpp prints one dot per percent
 * while it loads the weights (`loading 42%`), else its last line of stderr (cut to `width`).
 *
 * @example
 * ```ts
 * const ring = new LogRing();
 * ring.push("stderr", "load_tensors: loading model tensors, this can take a while...");
 * loadProgress(ring); // "load_tensors: loading model tensors, this can take a while..."
 * ```
 */
export function loadProgress(ring: LogRing, width = 60): string | undefined {
  const partial = ring.partial("stderr").trim();
  if (/^\.+$/.test(partial)) return `loading ${Math.min(partial.length, 100)}%`;
  const line = (partial || ring.tail(1, "stderr")[0] || "").trim();
  if (!line) return undefined;
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}
