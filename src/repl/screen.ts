/**
 * Drawing an editable region of the terminal in place: how many columns text takes, and a
 * region (a prompt and its text, a picker) that is redrawn over itself as it changes.
 *
 * @module
 */

// deno-lint-ignore no-control-regex
const SGR = /\x1b\[[0-9;]*m/g;

/**
 * The columns one code point takes: 0 for combining marks, 2 for wide (East Asian, emoji), 1
 * otherwise.
 */
export function charWidth(cp: number): number {
  if (
    (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0x1ab0 && cp <= 0x1aff) ||
    (cp >= 0x20d0 && cp <= 0x20ff)
  ) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

/** `text` without its colour codes. */
export function stripColor(text: string): string {
  return text.replace(SGR, "");
}

/** The columns `text` takes, colour codes not counted. */
export function textWidth(text: string): number {
  let w = 0;
  for (const ch of text.replace(SGR, "")) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/** How one character of an edited text is shown: controls as visible symbols, a tab as spaces. */
export function shownChar(ch: string): string {
  if (ch === "\t") return "    ";
  const code = ch.charCodeAt(0);
  if (code === 0x1b) return "␛";
  if (code < 0x20) return String.fromCharCode(0x2400 + code);
  if (code === 0x7f) return "␡";
  return ch;
}

/** Cuts `text` (no colour codes) to at most `columns` columns. */
export function cutToWidth(text: string, columns: number): string {
  let w = 0;
  let out = "";
  for (const ch of text) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (w + cw > columns) return out.length < text.length ? `${out.slice(0, -1)}…` : out;
    w += cw;
    out += ch;
  }
  return out;
}

/**
 * A region of the terminal that starts on the line the cursor is on and is redrawn over
 * itself. Rows must fit the terminal's width (the caller wraps them).
 */
export class ScreenArea {
  /** Rows between the region's first row and the cursor. */
  #cursorRow = 0;
  #rows = 0;

  constructor(readonly write: (text: string) => void) {}

  /** Draws `rows` over what was drawn before and puts the cursor at `cursor`. */
  draw(rows: string[], cursor: { row: number; col: number }): void {
    let out = "\x1b[?25l";
    if (this.#cursorRow > 0) out += `\x1b[${this.#cursorRow}A`;
    out += `\r\x1b[J${rows.join("\r\n")}`;
    const last = rows.length - 1;
    if (last > cursor.row) out += `\x1b[${last - cursor.row}A`;
    out += `\r${cursor.col > 0 ? `\x1b[${cursor.col}C` : ""}\x1b[?25h`;
    this.#cursorRow = cursor.row;
    this.#rows = rows.length;
    this.write(out);
  }

  /** Erases the region; the cursor goes to where it began. */
  clear(): void {
    this.write(`${this.#cursorRow > 0 ? `\x1b[${this.#cursorRow}A` : ""}\r\x1b[J`);
    this.#cursorRow = 0;
    this.#rows = 0;
  }

  /** Leaves the region as drawn and puts the cursor at the start of the line below it. */
  leave(): void {
    const below = this.#rows - 1 - this.#cursorRow;
    this.write(`${below > 0 ? `\x1b[${below}B` : ""}\r\n`);
    this.#cursorRow = 0;
    this.#rows = 0;
  }

  /** Forgets the region: the next draw starts on the line the cursor is on now. */
  reset(): void {
    this.#cursorRow = 0;
    this.#rows = 0;
  }
}
