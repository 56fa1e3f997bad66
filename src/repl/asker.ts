/**
 * The two askers: a line asker (headless scripts, pipes, tests — answers are read from the
 * next input line) and a terminal asker (the line editor and the arrow-key picker).
 *
 * Both cancel the same way: a question that is not answered — Ctrl-C, Escape or Ctrl-D at a
 * terminal, or the input ending in a script — throws {@linkcode CancelledError}, never takes a
 * default, and so cancels the action the question guarded. Callers tell it apart from a "no"
 * by its type.
 *
 * @module
 */
import { CancelledError, HarveyError } from "../errors.ts";
import type { Asker, Choice, Output } from "../types.ts";
import type { Terminal } from "./terminal.ts";
import { lazyImport } from "../util/lazy_import.ts";

/** Reads one answer; undefined when the input has ended. */
export type ReadAnswer = (prompt: string) => Promise<string | undefined>;

function parseYesNo(answer: string, defaultYes: boolean): boolean | undefined {
  const a = answer.trim().toLowerCase();
  if (a === "") return defaultYes;
  if (["y", "yes"].includes(a)) return true;
  if (["n", "no"].includes(a)) return false;
  return undefined;
}

/** Asks on plain lines: a numbered picker, `[Y/n]`, free text. */
export class LineAsker implements Asker {
  constructor(
    readonly read: ReadAnswer,
    readonly out: Output,
    readonly opts: { yes?: boolean; echo?: boolean } = {},
  ) {}

  async #answer(prompt: string, question: string): Promise<string> {
    const line = await this.read(prompt);
    if (line === undefined) {
      if (this.opts.echo) this.out.write("\n");
      throw new CancelledError(`No answer to "${question}": the input ended`);
    }
    if (this.opts.echo) this.out.write(`${line}\n`);
    return line;
  }

  /** `QUESTION [Y/n]`; with `--yes` the answer is yes without reading. */
  async confirm(question: string, defaultYes = true): Promise<boolean> {
    const hint = defaultYes ? "[Y/n]" : "[y/N]";
    if (this.opts.yes) {
      this.out.write(`${question} ${hint} y (--yes)\n`);
      return true;
    }
    const answer = await this.#answer(`${question} ${hint} `, question);
    const yes = parseYesNo(answer, defaultYes);
    if (yes === undefined) throw new HarveyError(`Expected y or n, found "${answer.trim()}"`);
    return yes;
  }

  /** `QUESTION [DEFAULT]: ` */
  async input(question: string, defaultValue?: string): Promise<string> {
    const hint = defaultValue ? ` [${defaultValue}]` : "";
    const answer = (await this.#answer(`${question}${hint}: `, question)).trim();
    return answer || defaultValue || "";
  }

  /** A numbered list; the answer is a number, or free text when `other` allows it. */
  async pick<T>(
    question: string,
    choices: Choice<T>[],
    opts: { other?: string } = {},
  ): Promise<{ value: T } | { other: string }> {
    this.out.write(`${question}\n`);
    choices.forEach((c, i) => this.out.write(`  [${i + 1}] ${c.label}\n`));
    const range = choices.length ? `[1-${choices.length}]` : "";
    const prompt = `Select ${range}${opts.other ? ` or ${opts.other}` : ""}: `;
    const answer = (await this.#answer(prompt, question)).trim();
    const n = Number(answer);
    if (/^\d+$/.test(answer) && n >= 1 && n <= choices.length) {
      return { value: choices[n - 1].value };
    }
    if (opts.other && answer && !/^\d+$/.test(answer)) return { other: answer };
    throw new HarveyError(`Expected a number from 1 to ${choices.length}, found "${answer}"`);
  }
}

/**
 * The terminal asker: yes/no and text on the line editor, pickers with arrow keys. A question
 * gets only the keys typed after it appeared (type-ahead stays for the prompt); an answer that
 * is not y or n asks again.
 */
export class TerminalAsker implements Asker {
  constructor(
    readonly terminal: Terminal,
    readonly opts: { yes?: boolean; color?: boolean } = {},
  ) {}

  async #line(prompt: string): Promise<string> {
    // Loaded with the first question: a script's start-up (LineAsker) goes without them.
    const { LineEditor } = await lazyImport<typeof import("./line_editor.ts")>(
      new URL("./line_editor.ts", import.meta.url),
    );
    const editor = new LineEditor({
      prompt,
      write: (t) => this.terminal.write(t),
      size: () => this.terminal.size(),
      question: true,
      color: this.opts.color,
    });
    await this.terminal.run(editor);
    const result = await editor.done;
    if (result.kind !== "line") throw new CancelledError();
    return result.text;
  }

  /** `QUESTION [Y/n]`; Enter takes the default, Ctrl-C, Escape or Ctrl-D cancel. */
  async confirm(question: string, defaultYes = true): Promise<boolean> {
    const hint = defaultYes ? "[Y/n]" : "[y/N]";
    if (this.opts.yes) {
      this.terminal.write(`${question} ${hint} y (--yes)\r\n`);
      return true;
    }
    for (;;) {
      const answer = await this.#line(`${question} ${hint} `);
      const yes = parseYesNo(answer, defaultYes);
      if (yes !== undefined) return yes;
      this.terminal.write(`Expected y or n, found "${answer.trim()}" (Esc cancels)\r\n`);
    }
  }

  /** `QUESTION [DEFAULT]: `; Enter on nothing takes the default. */
  async input(question: string, defaultValue?: string): Promise<string> {
    const hint = defaultValue ? ` [${defaultValue}]` : "";
    const answer = (await this.#line(`${question}${hint}: `)).trim();
    return answer || defaultValue || "";
  }

  /** The arrow-key picker; a typed number picks that row, typed text is `other`. */
  async pick<T>(
    question: string,
    choices: Choice<T>[],
    opts: { other?: string } = {},
  ): Promise<{ value: T } | { other: string }> {
    const { Picker } = await lazyImport<typeof import("./picker.ts")>(
      new URL("./picker.ts", import.meta.url),
    );
    const picker = new Picker({
      question,
      choices,
      other: opts.other,
      write: (t) => this.terminal.write(t),
      size: () => this.terminal.size(),
      color: this.opts.color,
    });
    await this.terminal.run(picker);
    const outcome = await picker.done;
    if ("cancelled" in outcome) throw new CancelledError();
    return outcome;
  }
}
