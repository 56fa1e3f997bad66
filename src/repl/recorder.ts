/**
 * The Markdown session recorder: a header, then one `### Turn N` section per turn. What it
 * writes is redacted (secrets typed or echoed become `[redacted]`) and its control characters
 * are made visible, so `cat`-ing a recording cannot drive the terminal.
 *
 * @module
 */
import { escapeControls } from "../util/terminal_text.ts";

/** Where `/record start` writes when no file is named: `harvey-session-YYYYMMDD-HHMMSS.md`. */
export function defaultSessionFile(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const date = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}`;
  const time = `${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `harvey-session-${date}-${time}.md`;
}

/** Options of {@linkcode Recorder.start}. */
export interface RecorderOptions {
  displayPath: string;
  model: string;
  workspace: string;
  /** Applied to everything written (see `secretRedactor`). */
  redact?: (text: string) => string;
  now?: Date;
}

/** Appends turns to a Markdown file. */
export class Recorder {
  #turns = 0;
  #file: Deno.FsFile;
  readonly #redact: (text: string) => string;

  private constructor(
    readonly path: string,
    readonly displayPath: string,
    file: Deno.FsFile,
    redact: (text: string) => string,
  ) {
    this.#file = file;
    this.#redact = redact;
  }

  /**
   * Writes the header to `file`, opened for appending (the caller checks where it is: see
   * `Workspace.openAppend`), and returns the recorder that owns it from then on.
   */
  static async start(path: string, file: Deno.FsFile, opts: RecorderOptions): Promise<Recorder> {
    const rec = new Recorder(path, opts.displayPath, file, opts.redact ?? ((t) => t));
    await rec.#append(
      `# Harvey session\n\n- Started: ${(opts.now ?? new Date()).toISOString()}\n` +
        `- Model: ${opts.model}\n- Workspace: ${opts.workspace}\n\n`,
    );
    return rec;
  }

  /** How many turns were written. */
  get turns(): number {
    return this.#turns;
  }

  /** Writes one turn: what the user typed and what came back. */
  async turn(input: string, reply: string, footer?: string): Promise<void> {
    this.#turns++;
    const foot = footer ? `\n\n_${footer}_` : "";
    await this.#append(
      `### Turn ${this.#turns}\n\n**User:**\n\n${input}\n\n**Harvey:**\n\n${reply}${foot}\n\n`,
    );
  }

  async #append(text: string): Promise<void> {
    const bytes = new TextEncoder().encode(escapeControls(this.#redact(text)));
    let n = 0;
    while (n < bytes.length) n += await this.#file.write(bytes.subarray(n));
  }

  /** Closes the file. */
  async close(): Promise<void> {
    try {
      await this.#file.sync();
    } finally {
      this.#file.close();
    }
  }
}
