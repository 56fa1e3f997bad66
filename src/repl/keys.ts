/**
 * Keys from a terminal in raw mode: bytes in, key presses out, with bracketed paste (the text
 * between `ESC [200~` and `ESC [201~`) as one key that keeps its newlines.
 *
 * @module
 */

/** One key press, or one paste. */
export type Key =
  /** Text typed: one character (a surrogate pair stays together). */
  | { kind: "text"; text: string; meta?: boolean }
  /** A whole bracketed paste; line breaks are `\n`. */
  | { kind: "paste"; text: string }
  /** A named key; letters with Ctrl are `{ name: "c", ctrl: true }`. */
  | { kind: "key"; name: KeyName; ctrl?: boolean; meta?: boolean }
  /** The terminal's input ended. */
  | { kind: "eof" };

/** The keys that are not text. */
export type KeyName =
  | "enter"
  | "newline"
  | "tab"
  | "backspace"
  | "delete"
  | "escape"
  | "up"
  | "down"
  | "left"
  | "right"
  | "home"
  | "end"
  | "pageup"
  | "pagedown"
  | "a"
  | "b"
  | "c"
  | "d"
  | "e"
  | "f"
  | "g"
  | "h"
  | "k"
  | "l"
  | "n"
  | "p"
  | "r"
  | "t"
  | "u"
  | "w"
  | "x"
  | "y"
  | "z"
  | "other";

const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

const CSI_NAMES: Record<string, KeyName> = {
  A: "up",
  B: "down",
  C: "right",
  D: "left",
  H: "home",
  F: "end",
  "1~": "home",
  "7~": "home",
  "4~": "end",
  "8~": "end",
  "3~": "delete",
  "5~": "pageup",
  "6~": "pagedown",
};

/** The Ctrl-letter keys Harvey's editors know (Ctrl-I, -J, -M are Tab, newline and Enter). */
const CTRL_LETTERS = new Set("abcdefghklnprtuwxyz");

/**
 * Turns the bytes of a raw terminal into keys. Bytes may arrive in any chunks: a paste, a
 * UTF-8 character or an escape sequence split across chunks is put back together. A lone ESC
 * at the end of a chunk is the Escape key (terminals send a sequence in one write).
 *
 * @example
 * ```ts
 * const d = new KeyDecoder();
 * d.push(new TextEncoder().encode("hi\x1b[200~a\rb\x1b[201~\r"));
 * // [{kind:"text",text:"h"}, {kind:"text",text:"i"}, {kind:"paste",text:"a\nb"}, {kind:"key",name:"enter"}]
 * ```
 */
export class KeyDecoder {
  readonly #utf8 = new TextDecoder();
  #pending = "";
  #paste?: string;

  /** The keys in `bytes` (and what was left over from earlier chunks). */
  push(bytes: Uint8Array): Key[] {
    this.#pending += this.#utf8.decode(bytes, { stream: true });
    const keys: Key[] = [];
    for (;;) {
      if (this.#paste !== undefined) {
        const end = this.#pending.indexOf(PASTE_END);
        if (end < 0) {
          // Keep a possible start of the end marker for the next chunk.
          const keep = partialSuffix(this.#pending, PASTE_END);
          this.#paste += this.#pending.slice(0, this.#pending.length - keep);
          this.#pending = this.#pending.slice(this.#pending.length - keep);
          return keys;
        }
        const text = this.#paste + this.#pending.slice(0, end);
        this.#pending = this.#pending.slice(end + PASTE_END.length);
        this.#paste = undefined;
        keys.push({ kind: "paste", text: text.replace(/\r\n?/g, "\n") });
        continue;
      }
      if (!this.#pending) return keys;
      const taken = this.#next(this.#pending, keys);
      if (taken === 0) return keys; // an incomplete sequence: wait for more bytes
      this.#pending = this.#pending.slice(taken);
    }
  }

  /** Reads one key from the start of `s`; returns how many characters it took (0: incomplete). */
  #next(s: string, keys: Key[]): number {
    const c = s[0];
    if (c === "\x1b") return this.#escape(s, keys);
    const code = c.charCodeAt(0);
    if (c === "\r") keys.push({ kind: "key", name: "enter" });
    else if (c === "\n") keys.push({ kind: "key", name: "newline" });
    else if (c === "\t") keys.push({ kind: "key", name: "tab" });
    else if (c === "\x7f" || c === "\b") keys.push({ kind: "key", name: "backspace" });
    else if (code < 0x20) {
      const letter = String.fromCharCode(code + 0x60);
      keys.push({
        kind: "key",
        name: CTRL_LETTERS.has(letter) ? letter as KeyName : "other",
        ctrl: true,
      });
    } else {
      const len = code >= 0xd800 && code <= 0xdbff && s.length > 1 ? 2 : 1;
      keys.push({ kind: "text", text: s.slice(0, len) });
      return len;
    }
    return 1;
  }

  #escape(s: string, keys: Key[]): number {
    if (s.length === 1) {
      keys.push({ kind: "key", name: "escape" });
      return 1;
    }
    if (s.startsWith(PASTE_START)) {
      this.#paste = "";
      return PASTE_START.length;
    }
    if (PASTE_START.startsWith(s)) return 0;
    const kind = s[1];
    if (kind === "[" || kind === "O") {
      // CSI: parameters 0x30–0x3f, intermediates 0x20–0x2f, one final byte 0x40–0x7e.
      const body = s.slice(1);
      const m = /^[[O]([0-9;?]*)([ -/]*)([@-~])/.exec(body);
      if (!m) return /^[[O][0-9;?]*[ -/]*$/.test(body) ? 0 : this.#unknown(keys, 2);
      const params = m[1].split(";");
      const name = CSI_NAMES[m[3] === "~" ? `${params[0]}~` : m[3]];
      const mod = Number(params[1] ?? 1) - 1; // xterm: 1 + shift(1) + alt(2) + ctrl(4)
      if (name) {
        keys.push({
          kind: "key",
          name,
          ...(mod & 4 ? { ctrl: true } : {}),
          ...(mod & 2 ? { meta: true } : {}),
        });
      } else keys.push({ kind: "key", name: "other" });
      return 1 + m[0].length;
    }
    // ESC then a key: the key with Alt (meta).
    const inner: Key[] = [];
    const taken = this.#next(s.slice(1), inner);
    const key = inner[0];
    if (!key) return 0;
    keys.push(key.kind === "text" || key.kind === "key" ? { ...key, meta: true } : key);
    return 1 + taken;
  }

  #unknown(keys: Key[], n: number): number {
    keys.push({ kind: "key", name: "other" });
    return n;
  }
}

/** How many characters at the end of `text` begin `marker` (so may continue in the next chunk). */
function partialSuffix(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (marker.startsWith(text.slice(-n))) return n;
  }
  return 0;
}
