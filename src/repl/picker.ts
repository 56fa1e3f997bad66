/**
 * The arrow-key picker of a terminal: a numbered list with a highlighted row, and under it the
 * design's line, `Select [1-N] or enter a path: `, that takes a number or typed text. Escape,
 * Ctrl-C and Ctrl-D cancel it and erase it from the screen.
 *
 * @module
 */
import type { Choice } from "../types.ts";
import type { Key } from "./keys.ts";
import { commonPrefix, type Completer } from "./line_editor.ts";
import { cutToWidth, ScreenArea, shownChar, textWidth } from "./screen.ts";
import type { KeyConsumer } from "./terminal.ts";

/** What the user did with a picker. */
export type PickOutcome<T> = { value: T } | { other: string } | { cancelled: true };

/** What a {@linkcode Picker} shows and takes. */
export interface PickerOptions<T> {
  question: string;
  choices: Choice<T>[];
  /** Free text is accepted too, e.g. `enter a path`. */
  other?: string;
  write: (text: string) => void;
  size: () => { columns: number; rows: number };
  color?: boolean;
  /** Tab completion of the typed text. */
  completer?: Completer;
}

/** One picker on the screen until it finishes. */
export class Picker<T> implements KeyConsumer {
  readonly done: Promise<PickOutcome<T>>;
  #finish!: (r: PickOutcome<T>) => void;
  #finished = false;
  readonly #opts: PickerOptions<T>;
  readonly #area: ScreenArea;
  #highlight = 0;
  #top = 0;
  #input: string[] = [];
  #cursor = 0;
  #error?: string;

  constructor(opts: PickerOptions<T>) {
    this.#opts = opts;
    this.#area = new ScreenArea(opts.write);
    this.done = new Promise((r) => this.#finish = r);
    this.render();
  }

  get finished(): boolean {
    return this.#finished;
  }

  get #prompt(): string {
    const n = this.#opts.choices.length;
    const range = n ? `[1-${n}]` : "";
    return `Select ${range}${this.#opts.other ? ` or ${this.#opts.other}` : ""}: `;
  }

  render(): void {
    const { columns, rows: screenRows } = this.#opts.size();
    const width = Math.max(columns, 20) - 1;
    const { choices, color } = this.#opts;
    const style = (code: string, text: string) => color ? `\x1b[${code}m${text}\x1b[0m` : text;
    const page = Math.max(1, Math.min(choices.length, 12, screenRows - 4));
    if (this.#highlight < this.#top) this.#top = this.#highlight;
    if (this.#highlight >= this.#top + page) this.#top = this.#highlight - page + 1;
    const rows = [style("1", cutToWidth(this.#opts.question, width))];
    for (let i = this.#top; i < Math.min(choices.length, this.#top + page); i++) {
      const on = i === this.#highlight;
      const text = cutToWidth(`${on ? "❯" : " "} ${i + 1}. ${choices[i].label}`, width);
      rows.push(on ? style("36", text) : text);
    }
    if (page < choices.length) {
      rows.push(style("2", `  (${this.#top + 1}–${this.#top + page} of ${choices.length})`));
    }
    const prompt = this.#prompt;
    const shown = this.#input.map(shownChar);
    rows.push(prompt + shown.join(""));
    const inputRow = rows.length - 1;
    rows.push(
      this.#error
        ? style("31", cutToWidth(`✗ ${this.#error}`, width))
        : style("2", cutToWidth("↑/↓ move · Enter picks · Esc cancels", width)),
    );
    const col = Math.min(
      textWidth(prompt) + textWidth(shown.slice(0, this.#cursor).join("")),
      width,
    );
    this.#area.draw(rows, { row: inputRow, col });
  }

  async handle(key: Key): Promise<void> {
    if (this.#finished) return;
    this.#error = undefined;
    if (key.kind === "eof") return this.#end({ cancelled: true });
    if (key.kind === "paste") return this.#type(key.text.replace(/\n/g, " "));
    if (key.kind === "text") return key.meta ? undefined : this.#type(key.text);
    const n = this.#opts.choices.length;
    if (key.ctrl) {
      if (key.name === "c" || key.name === "d") return this.#end({ cancelled: true });
      if (key.name === "p") return this.#moveTo(this.#highlight - 1);
      if (key.name === "n") return this.#moveTo(this.#highlight + 1);
      if (key.name === "u") return this.#setInput([]);
      if (key.name === "a") return this.#caret(0);
      if (key.name === "e") return this.#caret(this.#input.length);
      return;
    }
    switch (key.name) {
      case "escape":
        return this.#end({ cancelled: true });
      case "up":
        return this.#moveTo(this.#highlight - 1);
      case "down":
        return this.#moveTo(this.#highlight + 1);
      case "pageup":
        return this.#moveTo(this.#highlight - 10);
      case "pagedown":
        return this.#moveTo(this.#highlight + 10);
      case "left":
        return this.#caret(this.#cursor - 1);
      case "right":
        return this.#caret(this.#cursor + 1);
      case "home":
        return this.#caret(0);
      case "end":
        return this.#caret(this.#input.length);
      case "backspace":
        if (this.#cursor === 0) return this.render();
        this.#input.splice(this.#cursor - 1, 1);
        this.#cursor--;
        return this.#follow();
      case "delete":
        this.#input.splice(this.#cursor, 1);
        return this.#follow();
      case "tab":
        return await this.#complete();
      case "enter":
        return this.#choose(n);
    }
    this.render();
  }

  #choose(n: number): void {
    const text = this.#input.join("").trim();
    if (!text) {
      if (n) return this.#end({ value: this.#opts.choices[this.#highlight].value });
      this.#error = `Type ${this.#opts.other ?? "a value"}`;
      return this.render();
    }
    if (/^\d+$/.test(text)) {
      const i = Number(text);
      if (i >= 1 && i <= n) return this.#end({ value: this.#opts.choices[i - 1].value });
      this.#error = `Expected a number from 1 to ${n}, found ${text}`;
      return this.render();
    }
    if (this.#opts.other) return this.#end({ other: text });
    this.#error = `Expected a number from 1 to ${n}, found "${text}"`;
    this.render();
  }

  #type(text: string): void {
    const add = Array.from(text);
    this.#input.splice(this.#cursor, 0, ...add);
    this.#cursor += add.length;
    this.#follow();
  }

  #setInput(chars: string[]): void {
    this.#input = chars;
    this.#cursor = chars.length;
    this.#follow();
  }

  /** A number typed moves the highlight to its row. */
  #follow(): void {
    const text = this.#input.join("").trim();
    const i = Number(text);
    if (/^\d+$/.test(text) && i >= 1 && i <= this.#opts.choices.length) this.#highlight = i - 1;
    this.render();
  }

  #moveTo(i: number): void {
    const n = this.#opts.choices.length;
    if (!n) return this.render();
    this.#highlight = Math.max(0, Math.min(n - 1, i));
    // A number typed earlier no longer says which row: the arrows do.
    if (/^\d+$/.test(this.#input.join("").trim())) {
      this.#input = [];
      this.#cursor = 0;
    }
    this.render();
  }

  #caret(at: number): void {
    this.#cursor = Math.max(0, Math.min(this.#input.length, at));
    this.render();
  }

  async #complete(): Promise<void> {
    const completer = this.#opts.completer;
    if (!completer) return this.render();
    const before = this.#input.slice(0, this.#cursor).join("");
    const [candidates, word] = await completer(before).catch(() => [[], ""] as [string[], string]);
    if (this.#finished) return;
    if (
      candidates.length === 1 ||
      (candidates.length > 1 && commonPrefix(candidates).length > word.length)
    ) {
      const text = candidates.length === 1 ? candidates[0].trimEnd() : commonPrefix(candidates);
      const n = before.endsWith(word) ? Array.from(word).length : 0;
      this.#input.splice(this.#cursor - n, n, ...Array.from(text));
      this.#cursor += Array.from(text).length - n;
    } else if (candidates.length > 1) {
      this.#error = candidates.slice(0, 8).join("  ") + (candidates.length > 8 ? "  …" : "");
    }
    this.render();
  }

  #end(outcome: PickOutcome<T>): void {
    if (this.#finished) return;
    this.#finished = true;
    try {
      this.#area.clear();
      if (!("cancelled" in outcome)) {
        const answer = "value" in outcome
          ? this.#opts.choices.find((c) => c.value === outcome.value)?.label ?? ""
          : outcome.other;
        this.#opts.write(`${this.#opts.question} ${answer}\r\n`);
      }
    } finally {
      this.#finish(outcome);
    }
  }
}
