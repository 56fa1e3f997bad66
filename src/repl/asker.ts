/**
 * The two askers: a line asker (headless scripts, pipes, tests — answers are read from the
 * next input line) and a terminal asker (arrow-key picker with `@inquirer/prompts`).
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import { loadInquirer } from "../deps.ts";
import type { Asker, Choice, Output } from "../types.ts";

/** The message of the error a picker throws when the user presses Ctrl-C or Esc. */
export const CANCELLED = "Cancelled";

/** Reads one answer; undefined when the input has ended. */
export type ReadAnswer = (prompt: string) => Promise<string | undefined>;

function parseYesNo(answer: string, defaultYes: boolean): boolean {
  const a = answer.trim().toLowerCase();
  if (a === "") return defaultYes;
  if (["y", "yes"].includes(a)) return true;
  if (["n", "no"].includes(a)) return false;
  throw new HarveyError(`Expected y or n, found "${answer.trim()}"`);
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
      throw new HarveyError(`No answer to "${question}": the input ended`);
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
    return parseYesNo(await this.#answer(`${question} ${hint} `, question), defaultYes);
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
 * The terminal asker: yes/no and text through the REPL's line editor, pickers with arrow keys.
 * `suspend` lets the REPL hand the terminal over to the picker while it runs.
 */
export class TerminalAsker implements Asker {
  readonly #lines: LineAsker;

  constructor(
    readonly read: ReadAnswer,
    readonly out: Output,
    readonly suspend: <R>(fn: () => Promise<R>) => Promise<R>,
    readonly opts: { yes?: boolean } = {},
  ) {
    this.#lines = new LineAsker(read, out, opts);
  }

  /** `QUESTION [Y/n]` on the line editor. */
  confirm(question: string, defaultYes = true): Promise<boolean> {
    return this.#lines.confirm(question, defaultYes);
  }

  /** Free text on the line editor. */
  input(question: string, defaultValue?: string): Promise<string> {
    return this.#lines.input(question, defaultValue);
  }

  /** Arrow-key selection; `other` adds a last entry that asks for free text. */
  async pick<T>(
    question: string,
    choices: Choice<T>[],
    opts: { other?: string } = {},
  ): Promise<{ value: T } | { other: string }> {
    const { select } = await loadInquirer();
    const OTHER = Symbol("other");
    type Pickable = { v: T } | typeof OTHER;
    const entries: { name: string; value: Pickable }[] = choices.map((c) => ({
      name: c.label,
      value: { v: c.value },
    }));
    if (opts.other) entries.push({ name: `… ${opts.other}`, value: OTHER });
    let picked: Pickable;
    try {
      picked = await this.suspend(() =>
        select<Pickable>({ message: question, choices: entries, pageSize: 12, loop: false })
      );
    } catch (err) {
      if (
        err instanceof Error &&
        /ExitPromptError|force closed|cancel/i.test(`${err.name} ${err.message}`)
      ) {
        throw new HarveyError(CANCELLED);
      }
      throw err;
    }
    if (picked === OTHER) {
      const text = await this.#lines.input(opts.other ?? "Enter a value");
      if (!text) throw new HarveyError("Cancelled: nothing entered");
      return { other: text };
    }
    return { value: picked.v };
  }
}
