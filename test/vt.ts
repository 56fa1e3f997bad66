/**
 * A small terminal emulator for tests: it interprets what Harvey writes (text, CR, LF,
 * cursor moves, erases) onto a screen of cells, so a test can assert what a person would see,
 * e.g. that a cancelled picker left nothing behind.
 *
 * @module
 */

/** A screen of `columns` × `rows` cells with a scrollback above it. */
export class VirtualTerminal {
  readonly scrollback: string[] = [];
  #screen: string[][];
  row = 0;
  col = 0;
  #pendingWrap = false;
  #pending = "";

  constructor(readonly columns = 80, readonly rows = 24) {
    this.#screen = Array.from({ length: rows }, () => []);
  }

  /** Interprets `text` as a terminal would (an LF also returns the carriage, as ONLCR does). */
  write(text: string): void {
    const s = this.#pending + text;
    this.#pending = "";
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (c === "\x1b") {
        const rest = s.slice(i + 1);
        const m = /^\[([?0-9;]*)([@-~])/.exec(rest);
        if (!m) {
          if (/^(\[[?0-9;]*)?$/.test(rest)) {
            this.#pending = s.slice(i);
            return;
          }
          continue;
        }
        this.#csi(m[1], m[2]);
        i += m[0].length;
      } else if (c === "\r") {
        this.col = 0;
        this.#pendingWrap = false;
      } else if (c === "\n") {
        this.col = 0;
        this.#pendingWrap = false;
        this.#down();
      } else if (c.charCodeAt(0) >= 0x20) {
        if (this.#pendingWrap) {
          this.col = 0;
          this.#down();
          this.#pendingWrap = false;
        }
        const line = this.#screen[this.row];
        while (line.length < this.col) line.push(" ");
        line[this.col] = c;
        if (this.col === this.columns - 1) this.#pendingWrap = true;
        else this.col++;
      }
    }
  }

  #down(): void {
    if (this.row < this.rows - 1) {
      this.row++;
      return;
    }
    this.scrollback.push(this.#screen.shift()!.join("").trimEnd());
    this.#screen.push([]);
  }

  #csi(params: string, final: string): void {
    if (params.startsWith("?")) return;
    const n = Number(params.split(";")[0] || 0);
    const line = this.#screen[this.row];
    this.#pendingWrap = false;
    switch (final) {
      case "A":
        this.row = Math.max(0, this.row - (n || 1));
        break;
      case "B":
        this.row = Math.min(this.rows - 1, this.row + (n || 1));
        break;
      case "C":
        this.col = Math.min(this.columns - 1, this.col + (n || 1));
        break;
      case "D":
        this.col = Math.max(0, this.col - (n || 1));
        break;
      case "G":
        this.col = Math.max(0, (n || 1) - 1);
        break;
      case "H":
        this.row = 0;
        this.col = 0;
        break;
      case "J":
        if (n === 2) this.#screen = Array.from({ length: this.rows }, () => []);
        else {
          line.length = Math.min(line.length, this.col);
          for (let r = this.row + 1; r < this.rows; r++) this.#screen[r] = [];
        }
        break;
      case "K":
        if (n === 2) this.#screen[this.row] = [];
        else line.length = Math.min(line.length, this.col);
        break;
    }
  }

  /**
   * The screen's lines, trailing spaces and empty lines at the bottom dropped; the cursor's
   * line reaches the cursor (so `/harvey> $/` means the cursor is after the prompt).
   */
  screen(): string[] {
    const lines = this.#screen.map((l, r) => {
      const text = l.join("").trimEnd();
      return r === this.row ? text.padEnd(this.col) : text;
    });
    while (lines.length > this.row + 1 && !lines.at(-1)) lines.pop();
    return lines;
  }

  /** Scrollback and screen as one text. */
  text(): string {
    return [...this.scrollback, ...this.screen()].join("\n");
  }
}
