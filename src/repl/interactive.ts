/**
 * The interactive REPL on `node:readline`: persistent history, tab completion, Ctrl-C that
 * stops a reply or clears the line, Ctrl-D that leaves.
 *
 * @module
 */
import * as readline from "node:readline";
import process from "node:process";
import { join } from "node:path";
import type { Agent } from "../agent.ts";
import { describeError } from "../errors.ts";
import { handleLine } from "./line.ts";
import type { ReadAnswer } from "./asker.ts";
import type { TurnIO } from "./turn.ts";
import { appendHistory, HISTORY_LIMIT } from "./history.ts";

type Completer = (line: string) => Promise<[string[], string]>;

/** The terminal line editor shared by the REPL prompt and the asker. */
export class LineEditor {
  #rl: readline.Interface;
  #closed = false;
  #suspended = false;
  #pending?: (line: string | undefined) => void;
  #onInterrupt?: () => void;
  readonly #completer?: Completer;

  constructor(opts: { history: string[]; completer?: Completer }) {
    this.#completer = opts.completer;
    this.#rl = this.#open([...opts.history].reverse());
  }

  #open(history: string[]): readline.Interface {
    const completer = this.#completer;
    const rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: true,
      history,
      historySize: HISTORY_LIMIT,
      removeHistoryDuplicates: true,
      completer: completer
        ? (line: string, cb: (err: Error | null, result: [string[], string]) => void) => {
          completer(line).then((r) => cb(null, r), () => cb(null, [[], line]));
        }
        : undefined,
    });
    rl.on("close", () => {
      if (this.#suspended) return;
      this.#closed = true;
      this.#pending?.(undefined);
    });
    rl.on("SIGINT", () => {
      if (this.#onInterrupt) {
        this.#onInterrupt();
        return;
      }
      // Ctrl-C at the prompt clears the line.
      rl.write("", { ctrl: true, name: "u" });
      process.stdout.write("^C\n");
      rl.prompt();
    });
    return rl;
  }

  /** True once Ctrl-D closed the input. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Reads one line; undefined after Ctrl-D. */
  read: ReadAnswer = (prompt) => {
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#pending = resolve;
      this.#rl.question(prompt, (answer) => {
        this.#pending = undefined;
        resolve(answer);
      });
    });
  };

  /** Runs `fn` while Ctrl-C calls `onInterrupt` instead of clearing the line. */
  async whileBusy<R>(onInterrupt: () => void, fn: () => Promise<R>): Promise<R> {
    this.#onInterrupt = onInterrupt;
    try {
      return await fn();
    } finally {
      this.#onInterrupt = undefined;
    }
  }

  /**
   * Hands the terminal to another prompt (the arrow-key picker) while `fn` runs. The line
   * editor is closed meanwhile, not just paused: a paused editor still hears the arrow keys and
   * redraws its line under the picker. It is opened again with the same history.
   */
  async suspend<R>(fn: () => Promise<R>): Promise<R> {
    const history = (this.#rl as unknown as { history: string[] }).history ?? [];
    this.#suspended = true;
    this.#rl.close();
    try {
      return await fn();
    } finally {
      this.#suspended = false;
      if (!this.#closed) this.#rl = this.#open(history);
    }
  }

  /** Closes the editor. */
  close(): void {
    if (!this.#closed) this.#rl.close();
  }
}

/** Runs the REPL until `/exit` or Ctrl-D. */
export async function runInteractive(
  agent: Agent,
  editor: LineEditor,
  io: Omit<TurnIO, "signal">,
): Promise<void> {
  const agentsDir = join(agent.workspace.root, "agents");
  while (!agent.exitRequested) {
    const line = await editor.read(io.color ? "\x1b[1mharvey>\x1b[0m " : "harvey> ");
    if (line === undefined) {
      io.out.write("\n");
      break;
    }
    if (!line.trim()) continue;
    await appendHistory(agentsDir, line);
    const controller = new AbortController();
    try {
      await editor.whileBusy(
        () => controller.abort(),
        () => handleLine(agent, line, { ...io, signal: controller.signal }),
      );
    } catch (err) {
      io.err.write(`${io.color ? "\x1b[31m✗\x1b[0m" : "✗"} ${describeError(err)}\n`);
    }
  }
}
