/**
 * Reasoning that arrives inside a reply's text: `<think>…</think>` blocks, split from the
 * reply as it streams (a tag may be cut between two chunks).
 *
 * @module
 */

const OPEN = "<think>";
const CLOSE = "</think>";

/** One piece of streamed text, split into reply and reasoning. */
export interface SplitText {
  content: string;
  reasoning: string;
}

/**
 * Splits streamed text into the reply and the reasoning in `<think>` blocks. Text that may be
 * the start of a tag is held back until the next piece tells; the reply's first characters
 * after a block (the blank lines models put there) are dropped.
 *
 * @example
 * ```ts
 * const s = new ThinkSplitter();
 * s.push("<thi"); // { content: "", reasoning: "" }
 * s.push("nk>hmm</think>\n\n42"); // { content: "42", reasoning: "hmm" }
 * ```
 */
export class ThinkSplitter {
  #inThink = false;
  #afterThink = false;
  #pending = "";

  /**
   * True when `chunk` is all reply, to be shown as it is — no block open, nothing held back,
   * no `<` — so a stream can skip {@linkcode push} (and its allocations) for it.
   */
  plain(chunk: string): boolean {
    return !this.#inThink && !this.#afterThink && !this.#pending && !chunk.includes("<");
  }

  /** The parts of `chunk` that can be shown now. */
  push(chunk: string): SplitText {
    const out: SplitText = { content: "", reasoning: "" };
    let text = this.#pending + chunk;
    this.#pending = "";
    for (;;) {
      const tag = this.#inThink ? CLOSE : OPEN;
      const at = text.indexOf(tag);
      if (at >= 0) {
        this.#emit(out, text.slice(0, at));
        text = text.slice(at + tag.length);
        this.#inThink = !this.#inThink;
        if (!this.#inThink) this.#afterThink = true;
        continue;
      }
      let hold = 0;
      for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
        if (text.endsWith(tag.slice(0, n))) {
          hold = n;
          break;
        }
      }
      this.#emit(out, text.slice(0, text.length - hold));
      this.#pending = text.slice(text.length - hold);
      return out;
    }
  }

  /** What was held back at the end of the stream. */
  flush(): SplitText {
    const out: SplitText = { content: "", reasoning: "" };
    this.#emit(out, this.#pending);
    this.#pending = "";
    return out;
  }

  #emit(out: SplitText, text: string): void {
    if (!text) return;
    if (this.#inThink) {
      out.reasoning += text;
      return;
    }
    let shown = text;
    if (this.#afterThink) {
      shown = text.replace(/^\s+/, "");
      if (shown) this.#afterThink = false;
    }
    out.content += shown;
  }
}
