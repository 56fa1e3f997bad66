/**
 * The Markdown session recorder: a header, then one `### Turn N` section per turn.
 *
 * @module
 */

/** Where `/record start` writes when no file is named: `harvey-session-YYYYMMDD-HHMMSS.md`. */
export function defaultSessionFile(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const date = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}`;
  const time = `${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `harvey-session-${date}-${time}.md`;
}

/** Appends turns to a Markdown file. */
export class Recorder {
  #turns = 0;
  #file: Deno.FsFile;

  private constructor(readonly path: string, readonly displayPath: string, file: Deno.FsFile) {
    this.#file = file;
  }

  /** Creates (or appends to) `path` and writes the header. */
  static async start(
    path: string,
    opts: { displayPath: string; model: string; workspace: string; now?: Date },
  ): Promise<Recorder> {
    const file = await Deno.open(path, { append: true, create: true });
    const rec = new Recorder(path, opts.displayPath, file);
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
    const bytes = new TextEncoder().encode(text);
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
