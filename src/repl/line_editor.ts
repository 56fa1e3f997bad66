/**
 * The line editor of the REPL prompt and of questions, on keys from {@linkcode Terminal}:
 * editing keys as in readline, history, tab completion, a paste as one piece of text with its
 * newlines, Ctrl-J or Alt-Enter for a newline, and Ctrl-X Ctrl-E for `$VISUAL`/`$EDITOR`.
 *
 * @module
 */
import type { Key } from "./keys.ts";
import { charWidth, cutToWidth, ScreenArea, shownChar, stripColor, textWidth } from "./screen.ts";
import type { KeyConsumer } from "./terminal.ts";

/** Tab completion: the candidates for the word before the cursor, and that word. */
export type Completer = (before: string) => Promise<[string[], string]>;

/** How an edit ended. */
export type EditResult =
  | { kind: "line"; text: string }
  /** Ctrl-D on an empty line, or the input ended. */
  | { kind: "eof" }
  /** Ctrl-C. */
  | { kind: "interrupt" }
  /** Escape (questions only; the prompt ignores it). */
  | { kind: "escape" };

/** The lines entered at the prompt, oldest first, and a walk through them. */
export class History {
  readonly entries: string[];
  #limit: number;

  constructor(entries: string[] = [], limit = 1000) {
    this.entries = entries.slice(-limit);
    this.#limit = limit;
  }

  /** Adds a line unless it repeats the last one. */
  add(line: string): void {
    if (!line.trim() || this.entries.at(-1) === line) return;
    this.entries.push(line);
    if (this.entries.length > this.#limit) this.entries.shift();
  }
}

/** What a {@linkcode LineEditor} is given. */
export interface LineEditorOptions {
  /** The prompt, possibly with colour codes. */
  prompt: string;
  write: (text: string) => void;
  size: () => { columns: number; rows: number };
  history?: History;
  completer?: Completer;
  /** Text the line starts with (after `/edit`), the cursor at its end. */
  prefill?: string;
  /** A question: Escape ends the edit too (the caller cancels). */
  question?: boolean;
  /** Opens the text in the user's editor; undefined leaves the line as it was. */
  editExternally?: (text: string) => Promise<string | undefined>;
  /** Dims the continuation marks of a multi-line text. */
  color?: boolean;
}

const CONTINUATION = "… ";

/** One edited line (which may hold newlines): a {@linkcode KeyConsumer} until it finishes. */
export class LineEditor implements KeyConsumer {
  readonly done: Promise<EditResult>;
  #finish!: (r: EditResult) => void;
  #finished = false;
  #chars: string[];
  #cursor: number;
  readonly #opts: LineEditorOptions;
  readonly #area: ScreenArea;
  #historyAt: number;
  #draft = "";
  #lastWasTab = false;
  #ctrlX = false;
  #killed = "";

  constructor(opts: LineEditorOptions) {
    this.#opts = opts;
    this.#area = new ScreenArea(opts.write);
    this.#chars = Array.from(opts.prefill ?? "");
    this.#cursor = this.#chars.length;
    this.#historyAt = opts.history?.entries.length ?? 0;
    this.done = new Promise((r) => this.#finish = r);
    this.render();
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** The text as it stands. */
  get text(): string {
    return this.#chars.join("");
  }

  /** Redraws the prompt and the text (after a resize, or output above it). */
  render(): void {
    const { columns, rows } = this.#opts.size();
    const laid = layout(this.#opts.prompt, this.#chars, this.#cursor, {
      columns: Math.max(columns, 10),
      color: this.#opts.color,
    });
    // A text taller than the screen shows the rows around the cursor.
    const max = Math.max(rows - 1, 3);
    let start = 0;
    if (laid.rows.length > max) {
      start = Math.min(Math.max(0, laid.cursor.row - max + 1), laid.rows.length - max);
    }
    this.#area.draw(laid.rows.slice(start, start + max), {
      row: laid.cursor.row - start,
      col: laid.cursor.col,
    });
  }

  handle(key: Key): void | Promise<void> {
    if (this.#finished) return;
    const tab = key.kind === "key" && key.name === "tab" && !key.ctrl;
    const wasTab = this.#lastWasTab;
    this.#lastWasTab = tab;
    if (this.#ctrlX) {
      this.#ctrlX = false;
      if (key.kind === "key" && key.ctrl && key.name === "e") return this.#external();
      return;
    }
    if (key.kind === "eof") return this.#end({ kind: "eof" });
    if (key.kind === "paste") return this.#insert(key.text);
    if (key.kind === "text") {
      if (key.meta) return this.#meta(key.text);
      return this.#insert(key.text);
    }
    if (tab) return this.#complete(wasTab);
    if (key.ctrl) return this.#ctrl(key.name);
    if (key.meta) {
      if (key.name === "enter") return this.#insert("\n");
      if (key.name === "backspace") return this.#deleteWordBack();
      if (key.name === "left") return this.#move(this.#wordStart());
      if (key.name === "right") return this.#move(this.#wordEnd());
      return;
    }
    switch (key.name) {
      case "enter":
        return this.#end({ kind: "line", text: this.text });
      case "newline":
        return this.#insert("\n");
      case "backspace":
        if (this.#cursor > 0) this.#splice(this.#cursor - 1, 1);
        return;
      case "delete":
        if (this.#cursor < this.#chars.length) this.#splice(this.#cursor, 1, "", false);
        return;
      case "left":
        return this.#move(this.#cursor - 1);
      case "right":
        return this.#move(this.#cursor + 1);
      case "home":
        return this.#move(this.#lineStart());
      case "end":
        return this.#move(this.#lineEnd());
      case "up":
        return this.#vertical(-1);
      case "down":
        return this.#vertical(1);
      case "escape":
        if (this.#opts.question) return this.#end({ kind: "escape" });
        return;
    }
  }

  #ctrl(name: string): void | Promise<void> {
    switch (name) {
      case "c":
        return this.#end({ kind: "interrupt" });
      case "d":
        if (!this.#chars.length) return this.#end({ kind: "eof" });
        if (this.#cursor < this.#chars.length) this.#splice(this.#cursor, 1, "", false);
        return;
      case "a":
        return this.#move(this.#lineStart());
      case "e":
        return this.#move(this.#lineEnd());
      case "b":
        return this.#move(this.#cursor - 1);
      case "f":
        return this.#move(this.#cursor + 1);
      case "h":
        if (this.#cursor > 0) this.#splice(this.#cursor - 1, 1);
        return;
      case "k":
        this.#killed = this.#chars.slice(this.#cursor, this.#lineEnd()).join("");
        this.#splice(this.#cursor, this.#lineEnd() - this.#cursor, "", false);
        return;
      case "u": {
        const start = this.#lineStart();
        this.#killed = this.#chars.slice(start, this.#cursor).join("");
        this.#splice(start, this.#cursor - start);
        return;
      }
      case "w":
        return this.#deleteWordBack();
      case "y":
        return this.#insert(this.#killed);
      case "p":
        return this.#history(-1);
      case "n":
        return this.#history(1);
      case "l":
        this.#opts.write("\x1b[H\x1b[2J");
        this.#area.reset();
        return this.render();
      case "x":
        this.#ctrlX = true;
        return;
    }
  }

  #meta(text: string): void {
    if (text === "b") this.#move(this.#wordStart());
    else if (text === "f") this.#move(this.#wordEnd());
    else if (text === "d") {
      const end = this.#wordEnd();
      this.#killed = this.#chars.slice(this.#cursor, end).join("");
      this.#splice(this.#cursor, end - this.#cursor, "", false);
    }
  }

  #insert(text: string): void {
    if (text) this.#splice(this.#cursor, 0, text);
  }

  /** Replaces `count` characters at `at` with `text`; the cursor ends after the text. */
  #splice(at: number, count: number, text = "", moveCursor = true): void {
    const add = Array.from(text);
    this.#chars.splice(at, count, ...add);
    this.#cursor = moveCursor || this.#cursor > at ? at + add.length : this.#cursor;
    this.render();
  }

  #move(to: number): void {
    this.#cursor = Math.max(0, Math.min(this.#chars.length, to));
    this.render();
  }

  #lineStart(): number {
    let i = this.#cursor;
    while (i > 0 && this.#chars[i - 1] !== "\n") i--;
    return i;
  }

  #lineEnd(): number {
    let i = this.#cursor;
    while (i < this.#chars.length && this.#chars[i] !== "\n") i++;
    return i;
  }

  #wordStart(): number {
    let i = this.#cursor;
    while (i > 0 && /\s/.test(this.#chars[i - 1])) i--;
    while (i > 0 && !/\s/.test(this.#chars[i - 1])) i--;
    return i;
  }

  #wordEnd(): number {
    let i = this.#cursor;
    while (i < this.#chars.length && /\s/.test(this.#chars[i])) i++;
    while (i < this.#chars.length && !/\s/.test(this.#chars[i])) i++;
    return i;
  }

  #deleteWordBack(): void {
    const start = this.#wordStart();
    this.#killed = this.#chars.slice(start, this.#cursor).join("");
    this.#splice(start, this.#cursor - start);
  }

  /** Up and down move between the lines of a multi-line text, else through the history. */
  #vertical(dir: -1 | 1): void {
    const start = this.#lineStart();
    if (dir < 0 && start > 0) {
      const col = this.#cursor - start;
      let prevStart = start - 1;
      while (prevStart > 0 && this.#chars[prevStart - 1] !== "\n") prevStart--;
      return this.#move(Math.min(prevStart + col, start - 1));
    }
    const end = this.#lineEnd();
    if (dir > 0 && end < this.#chars.length) {
      const col = this.#cursor - start;
      let nextEnd = end + 1;
      while (nextEnd < this.#chars.length && this.#chars[nextEnd] !== "\n") nextEnd++;
      return this.#move(Math.min(end + 1 + col, nextEnd));
    }
    this.#history(dir);
  }

  #history(dir: -1 | 1): void {
    const history = this.#opts.history;
    if (!history) return;
    const at = this.#historyAt + dir;
    if (at < 0 || at > history.entries.length) return;
    if (this.#historyAt === history.entries.length) this.#draft = this.text;
    this.#historyAt = at;
    this.#chars = Array.from(at === history.entries.length ? this.#draft : history.entries[at]);
    this.#cursor = this.#chars.length;
    this.render();
  }

  async #complete(again: boolean): Promise<void> {
    const completer = this.#opts.completer;
    if (!completer) return this.#insert("\t");
    const before = this.#chars.slice(0, this.#cursor).join("");
    let found: [string[], string];
    try {
      found = await completer(before);
    } catch {
      return;
    }
    const [candidates, word] = found;
    if (this.#finished || !candidates.length) return;
    const replace = (text: string) => {
      const n = before.endsWith(word) ? Array.from(word).length : 0;
      this.#splice(this.#cursor - n, n, text);
    };
    if (candidates.length === 1) return replace(candidates[0]);
    const prefix = commonPrefix(candidates);
    if (prefix.length > word.length && prefix.startsWith(word)) return replace(prefix);
    if (!again) return;
    // A second Tab lists the candidates below the line, then draws the line again.
    const cursor = this.#cursor;
    this.#move(this.#chars.length);
    this.#area.leave();
    this.#opts.write(columnsOf(candidates.map(shortName), this.#opts.size().columns));
    this.#move(cursor);
  }

  async #external(): Promise<void> {
    const edit = this.#opts.editExternally;
    if (!edit) return;
    this.#move(this.#chars.length);
    this.#area.leave();
    const edited = await edit(this.text);
    if (edited !== undefined) {
      this.#chars = Array.from(edited);
      this.#cursor = this.#chars.length;
    }
    this.render();
  }

  #end(result: EditResult): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#cursor = this.#chars.length;
    if (result.kind === "line") this.#opts.history?.add(result.text);
    try {
      this.render();
      if (result.kind === "interrupt") this.#opts.write("^C");
      this.#area.leave();
    } finally {
      // Settled even when the terminal is gone and drawing failed.
      this.#finish(result);
    }
  }
}

/** The rows of `prompt` and `chars` wrapped at `columns`, and where the cursor is among them. */
export function layout(
  prompt: string,
  chars: string[],
  cursor: number,
  opts: { columns: number; color?: boolean },
): { rows: string[]; cursor: { row: number; col: number } } {
  const { columns } = opts;
  const rows: string[] = [];
  let row = cutPrompt(prompt, columns - 2);
  let col = textWidth(row);
  const at = { row: 0, col };
  const cont = opts.color ? `\x1b[2m${CONTINUATION}\x1b[0m` : CONTINUATION;
  for (let i = 0; i <= chars.length; i++) {
    if (i === cursor) {
      if (col >= columns) {
        rows.push(row);
        row = "";
        col = 0;
      }
      at.row = rows.length;
      at.col = col;
    }
    if (i === chars.length) break;
    if (chars[i] === "\n") {
      rows.push(row);
      row = cont;
      col = textWidth(CONTINUATION);
      continue;
    }
    const shown = shownChar(chars[i]);
    for (const ch of shown) {
      const w = charWidth(ch.codePointAt(0)!);
      if (col + w > columns) {
        rows.push(row);
        row = "";
        col = 0;
      }
      row += ch;
      col += w;
    }
  }
  rows.push(row);
  return { rows, cursor: at };
}

function cutPrompt(prompt: string, columns: number): string {
  return textWidth(prompt) <= columns ? prompt : cutToWidth(stripColor(prompt), columns);
}

/** The longest start all of `words` share. */
export function commonPrefix(words: string[]): string {
  let prefix = words[0];
  for (const w of words) {
    while (!w.startsWith(prefix)) prefix = prefix.slice(0, -1);
  }
  return prefix;
}

/** A path candidate is listed by its last part (`src/repl/` as `repl/`). */
function shortName(candidate: string): string {
  const m = /([^/]+\/?)\s*$/.exec(candidate);
  return m ? m[1] : candidate.trim();
}

/** Words in columns that fit `width`, ending with a newline. */
function columnsOf(words: string[], width: number): string {
  const cell = Math.max(...words.map(textWidth)) + 2;
  const perRow = Math.max(1, Math.floor(width / cell));
  let out = "";
  for (let i = 0; i < words.length; i += perRow) {
    out += words.slice(i, i + perRow).map((w) => w + " ".repeat(cell - textWidth(w))).join("")
      .trimEnd() + "\r\n";
  }
  return out;
}
