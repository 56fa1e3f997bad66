/**
 * The spinner shown until the first token: braille frames, Edward Lear's waiting messages
 * and a timer with the estimate from recent turns. The same spinner, with its own message and
 * a detail, shows a model server starting (`⠋ Starting qwen… [12s] · loading 42%`).
 *
 * @module
 */
import type { Output } from "../types.ts";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** Waiting messages after Edward Lear's nonsense verse. */
export const LEAR_MESSAGES = [
  "Going to sea in a sieve",
  "Dancing by the light of the moon",
  "Sailing in a pea-green boat",
  "Weighing the runcible spoon",
  "Consulting the Owl and the Pussy-cat",
  "Looking for the Bong-tree",
  "Asking the Jumblies the way",
  "Crossing the Torrible Zone",
  "Buying a ring from the Piggy-wig",
  "Waiting for the Dong with a luminous nose",
  "Knitting the Pobble's scarlet flannel",
  "Counting the Quangle Wangle's guests",
  "Rowing past the Chankly Bore",
  "Winding the Yonghy-Bonghy-Bò's clock",
  "Feeding the Scroobious Pip",
  "Wrapping the quince in a five-pound note",
  "Tuning the small guitar",
  "Following the Akond of Swat",
  "Brewing tea with the Pelicans",
  "Sweeping the hills of the Chankly Bore",
];

/**
 * The timer label: `[8s]` without an estimate, `[8s / ~12s]` while under it, `[13s]` once
 * past it (an overrun estimate is dropped).
 *
 * @example
 * ```ts
 * timerLabel(8000, 12000); // "[8s / ~12s]"
 * ```
 */
export function timerLabel(elapsedMs: number, estimateMs: number): string {
  const s = Math.floor(elapsedMs / 1000);
  if (estimateMs <= 0 || elapsedMs > estimateMs) return `[${s}s]`;
  return `[${s}s / ~${Math.round(estimateMs / 1000)}s]`;
}

/** A spinner on one terminal line; `stop()` erases it. */
export class Spinner {
  #timer?: ReturnType<typeof setInterval>;
  #started = 0;
  #frame = 0;
  #message: string;
  #fixed = false;
  /** Shown after the timer, e.g. a server's load progress; cut to the terminal's width. */
  detail?: string;

  constructor(
    readonly write: (text: string) => void,
    readonly estimateMs: number,
    readonly color = true,
  ) {
    this.#message = LEAR_MESSAGES[Math.floor(Math.random() * LEAR_MESSAGES.length)];
  }

  /** Replaces the rotating waiting messages with one message of its own. */
  set message(text: string) {
    this.#message = text;
    this.#fixed = true;
  }

  /** Starts drawing every 100 ms. */
  start(): void {
    this.#started = performance.now();
    this.#draw();
    this.#timer = setInterval(() => this.#draw(), 100);
  }

  #draw(): void {
    const elapsed = performance.now() - this.#started;
    if (!this.#fixed && this.#frame > 0 && this.#frame % 40 === 0) {
      this.#message =
        LEAR_MESSAGES[(LEAR_MESSAGES.indexOf(this.#message) + 1) % LEAR_MESSAGES.length];
    }
    const frame = FRAMES[this.#frame++ % FRAMES.length];
    const detail = this.detail ? ` · ${this.detail}` : "";
    // A line wider than the terminal would wrap, and `\r` would then redraw only its last row.
    const text = fit(`${frame} ${this.#message}… ${timerLabel(elapsed, this.estimateMs)}${detail}`);
    this.write(`\r\x1b[2K${this.color ? `\x1b[2m${text}\x1b[0m` : text}`);
  }

  /** Stops and erases the spinner line. Safe to call twice. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.write("\r\x1b[2K");
  }
}

function fit(text: string): string {
  let columns = 80;
  try {
    columns = Deno.consoleSize().columns || columns;
  } catch {
    // not a terminal: the caller draws nothing anyway
  }
  const chars = [...text];
  return chars.length < columns ? text : `${chars.slice(0, columns - 2).join("")}…`;
}

/**
 * Shows a wait that is not a reply, e.g. a model server starting: a spinner with the elapsed
 * time and a detail on a terminal, the message on its own line elsewhere.
 *
 * @example
 * ```ts
 * const wait = waitIndicator(out, { message: "Starting qwen", terminal: true });
 * wait.detail("loading 42%");
 * wait.stop();
 * ```
 */
export function waitIndicator(
  out: Output,
  opts: { message: string; terminal?: boolean; color?: boolean },
): { detail(text: string): void; stop(): void } {
  if (!opts.terminal) {
    out.write(`${opts.message}...\n`);
    return { detail() {}, stop() {} };
  }
  const spinner = new Spinner((t) => out.write(t), 0, opts.color ?? true);
  spinner.message = opts.message;
  spinner.start();
  return {
    detail: (text) => spinner.detail = text,
    stop: () => spinner.stop(),
  };
}
