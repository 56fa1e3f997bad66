/**
 * The terminal as Harvey's REPL owns it: stdin in raw mode with bracketed paste, read only
 * while someone wants keys, and every key going to exactly one place.
 *
 * - While a line is edited (the prompt, a question, a picker), keys go to that editor.
 * - While a line runs (a reply streams, a command works), Ctrl-C interrupts it and every other
 *   key is kept as type-ahead: not echoed (nothing is drawn over the spinner or the reply),
 *   and replayed into the next prompt, so what was typed runs after the reply and a partial
 *   line comes back with its cursor. A question asked meanwhile gets only the keys typed after
 *   it appeared.
 * - Otherwise nothing reads stdin, so a program given the terminal (`$EDITOR`) gets every key.
 *
 * @module
 */
import { type Key, KeyDecoder } from "./keys.ts";

/** A key handler that owns the keyboard until it finishes. */
export interface KeyConsumer {
  handle(key: Key): void | Promise<void>;
  readonly finished: boolean;
  /** Settles when the consumer has finished. */
  readonly done: Promise<unknown>;
  /** Draws itself again (after a resize). */
  render?(): void;
}

/** How a {@linkcode Terminal} reads and writes: the process's own, or a script in tests. */
export interface TerminalIO {
  /** Reads into `buf`; null when the input has ended. */
  read(buf: Uint8Array): Promise<number | null>;
  write(text: string): void;
  /** Puts the input in raw mode, or back. */
  setRaw(raw: boolean): void;
  size(): { columns: number; rows: number };
  /** Calls `fn` on a signal (SIGINT, SIGWINCH); returns how to stop. */
  onSignal?(signal: "SIGINT" | "SIGWINCH", fn: () => void): () => void;
}

const encoder = new TextEncoder();

/** The process's terminal: stdin and stdout. */
export function processTerminalIO(): TerminalIO {
  return {
    read: (buf) => Deno.stdin.read(buf),
    write(text) {
      const bytes = encoder.encode(text);
      let n = 0;
      try {
        while (n < bytes.length) n += Deno.stdout.writeSync(bytes.subarray(n));
      } catch {
        // The terminal is gone (its window closed): there is no one to show this to, and
        // the session must still end cleanly (stop its servers).
      }
    },
    setRaw: (raw) => Deno.stdin.setRaw(raw),
    size() {
      try {
        return Deno.consoleSize();
      } catch {
        return { columns: 80, rows: 24 };
      }
    },
    onSignal(signal, fn) {
      try {
        Deno.addSignalListener(signal, fn);
      } catch {
        return () => {};
      }
      return () => Deno.removeSignalListener(signal, fn);
    },
  };
}

/** The terminal of one interactive session. */
export class Terminal {
  readonly #io: TerminalIO;
  readonly #decoder = new KeyDecoder();
  readonly #buf = new Uint8Array(4096);
  #consumer?: KeyConsumer;
  #busy?: () => void;
  #typeAhead: Key[] = [];
  #pumping = false;
  #replaying = false;
  #ended = false;
  #open = false;
  #removers: (() => void)[] = [];
  readonly #restore = () => this.close();

  constructor(io: TerminalIO) {
    this.#io = io;
  }

  /** Raw mode and bracketed paste on; both are restored by `close()` and at exit. */
  open(): void {
    if (this.#open) return;
    this.#open = true;
    this.#io.setRaw(true);
    this.#io.write("\x1b[?2004h");
    globalThis.addEventListener("unload", this.#restore);
    const on = this.#io.onSignal?.bind(this.#io);
    if (on) {
      // A SIGINT from outside (the keyboard's Ctrl-C is a key in raw mode) interrupts too.
      this.#removers.push(on("SIGINT", () => this.#busy?.()));
      this.#removers.push(on("SIGWINCH", () => this.#consumer?.render?.()));
    }
  }

  /** Back to a cooked terminal without bracketed paste. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.#io.write("\x1b[?2004l");
      this.#io.setRaw(false);
    } catch {
      // The terminal is gone (a closed window): nothing to restore, and exit must go on.
    }
    globalThis.removeEventListener("unload", this.#restore);
    for (const remove of this.#removers.splice(0)) remove();
  }

  /** Writes to the terminal. */
  write(text: string): void {
    this.#io.write(text);
  }

  /** The terminal's size now. */
  size(): { columns: number; rows: number } {
    return this.#io.size();
  }

  /** True once the terminal's input has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Gives the keyboard to `consumer` until it finishes. With `typeAhead` (the prompt), the keys
   * typed while the last line ran are given to it first; a question gets only newer keys.
   */
  async run(consumer: KeyConsumer, opts: { typeAhead?: boolean } = {}): Promise<void> {
    const outer = this.#consumer;
    this.#consumer = consumer;
    try {
      if (opts.typeAhead) {
        // Keys that arrive meanwhile queue up behind the older ones.
        this.#replaying = true;
        try {
          while (!consumer.finished && this.#typeAhead.length) {
            await consumer.handle(this.#typeAhead.shift()!);
          }
        } finally {
          this.#replaying = false;
        }
      }
      if (!consumer.finished && this.#ended) await consumer.handle({ kind: "eof" });
      if (!consumer.finished) this.#startPump();
      await consumer.done;
    } finally {
      this.#consumer = outer;
    }
  }

  /**
   * Runs `fn` (a line) while Ctrl-C calls `onInterrupt` and other keys are kept as type-ahead.
   */
  async whileBusy<R>(onInterrupt: () => void, fn: () => Promise<R>): Promise<R> {
    const outer = this.#busy;
    this.#busy = onInterrupt;
    this.#startPump();
    try {
      return await fn();
    } finally {
      this.#busy = outer;
    }
  }

  /**
   * Runs `fn` with the terminal cooked and unread (a program such as `$EDITOR` gets it), then
   * takes it back. Call it only from a key handler or between lines, when no read is pending.
   */
  async handOver<R>(fn: () => Promise<R>): Promise<R> {
    const wasOpen = this.#open;
    if (wasOpen) {
      this.#io.write("\x1b[?2004l");
      this.#io.setRaw(false);
    }
    try {
      return await fn();
    } finally {
      if (wasOpen) {
        this.#io.setRaw(true);
        this.#io.write("\x1b[?2004h");
      }
    }
  }

  #wanted(): boolean {
    return (this.#consumer !== undefined && !this.#consumer.finished) || this.#busy !== undefined;
  }

  #startPump(): void {
    if (this.#pumping || this.#ended) return;
    this.#pumping = true;
    void this.#pump();
  }

  /**
   * Reads while someone wants keys. The last check of `#wanted()` and the end of `#pumping`
   * happen in one step, so a consumer that comes meanwhile is never left without a reader.
   */
  async #pump(): Promise<void> {
    try {
      while (this.#wanted()) {
        let n: number | null;
        try {
          n = await this.#io.read(this.#buf);
        } catch {
          n = null;
        }
        if (n === null) {
          this.#ended = true;
          await this.#dispatch({ kind: "eof" });
          return;
        }
        for (const key of this.#decoder.push(this.#buf.subarray(0, n))) {
          await this.#dispatch(key);
        }
      }
    } catch {
      // A key handler failed (the terminal went away while it drew): the input has ended.
      this.#ended = true;
      await this.#dispatch({ kind: "eof" }).catch(() => {});
    } finally {
      this.#pumping = false;
    }
  }

  async #dispatch(key: Key): Promise<void> {
    const consumer = this.#consumer;
    if (consumer && !consumer.finished && !this.#replaying) {
      await consumer.handle(key);
      return;
    }
    if (key.kind === "eof") return;
    if (this.#busy && key.kind === "key" && key.ctrl && key.name === "c") {
      this.#busy();
      return;
    }
    this.#typeAhead.push(key);
  }
}
