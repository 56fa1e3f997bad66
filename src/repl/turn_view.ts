/**
 * How a prompt turn looks as it runs: the spinner until the first token of each request, the
 * reply streamed as it arrives (its control characters shown, not obeyed), reasoning dimmed on
 * the diagnostics stream, and one line per tool call (`● read_file src/a.ts — 120 lines`).
 * On a terminal a running call shows a transient line that is erased before anything else is
 * written; a script gets only the finished lines.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import type { ToolOutcome } from "../tools/tool.ts";
import type { ChatStats, Output, ToolCall } from "../types.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { headOf } from "../util/text_cut.ts";
import { Spinner } from "./spinner.ts";
import type { TurnIO } from "./turn.ts";

/** How often a running call's transient line may be redrawn. */
const REDRAW_MS = 100;

/**
 * Reply text that comes sooner than this after the last write waits for the next one: a fast
 * stream is written a few hundred times a second instead of once per token (a syscall each),
 * and the first token of a pause is written at once.
 */
const REPLY_WRITE_MS = 8;

/**
 * What a turn shows as it runs. {@linkcode TurnView} is the one for people (a terminal or a
 * script's stdout and stderr); a program's front end (JSON lines) implements the same.
 */
export interface TurnDisplay {
  /** Where approvals write what they ask about (diffs, commands). */
  readonly out: Output;
  /** Where diagnostics go: warnings, compaction, the ends of a turn. */
  readonly notices: Output;
  /** Reasoning pieces seen so far. */
  readonly reasoning: number;
  /** A request is about to be sent. */
  beginRound(): void;
  /** A piece of the reply. */
  token(text: string): void;
  /** A piece of reasoning. */
  thinking(text: string): void;
  /** The request ended or failed. */
  endRound(): void;
  /** A tool call starts; `subject` is its one-line description (empty when it cannot run). */
  callStarted(call: ToolCall, subject: string): void;
  /** Output of the running call. */
  callOutput(text: string): void;
  /** A call ended, or was not run. */
  callEnded(call: ToolCall, outcome: ToolOutcome): void;
  /** The turn's stats, and the line that says them. */
  stats(stats: ChatStats, line: string): void;
  /** Runs a question to the user with the display out of its way. */
  hold<R>(ask: () => Promise<R>): Promise<R>;
  /** Ends whatever is still drawn. */
  close(): void;
}

/** The display of one turn for people. */
export class TurnView implements TurnDisplay {
  #spinner?: Spinner;
  #labelled = false;
  #reasoningOpen = false;
  #lineOpen = false;
  /** The reply text of the current request ends with a newline (or nothing was written). */
  #atLineStart = true;
  #drawnAt = 0;
  #call?: { call: ToolCall; subject: string; lines: number; started: number };
  #ticker?: ReturnType<typeof setInterval>;
  /** A question is being asked: the transient line stays away until it is answered. */
  #held = false;
  /** Reasoning pieces seen, for the stats. */
  reasoning = 0;
  /** Reply text not written yet, and when reply text was last written. */
  #reply = "";
  #replyTimer?: ReturnType<typeof setTimeout>;
  #repliedAt = -Infinity;

  constructor(
    readonly agent: Agent,
    readonly io: TurnIO,
    readonly opts: { label?: string } = {},
  ) {}

  /** Where diffs and questions go: the transient line is erased first. */
  readonly out: Output = {
    write: (text) => {
      this.#flush();
      this.#clear();
      this.io.out.write(text);
    },
  };

  /** Where notices go (a refusal before a retry, compaction): on a clean line. */
  readonly notices: Output = {
    write: (text) => {
      this.#flush();
      this.#spinner?.stop();
      this.#clear();
      this.#endReasoning();
      this.io.err.write(text);
    },
  };

  /** A request is about to be sent: the label (once), then the spinner. */
  beginRound(): void {
    this.#flush();
    this.#clear();
    if (!this.#labelled && this.opts.label) this.io.out.write(`${this.opts.label}\n`);
    this.#labelled = true;
    this.#spinner?.stop();
    this.#spinner = this.io.spinner
      ? new Spinner((t) => this.io.err.write(t), this.agent.stats.estimateMs(), this.io.color)
      : undefined;
    this.#spinner?.start();
  }

  /** A piece of the reply: written now, or with what follows within {@linkcode REPLY_WRITE_MS}. */
  token(text: string): void {
    this.#spinner?.stop();
    this.#endReasoning();
    const shown = escapeControls(text);
    if (!shown) return;
    this.#atLineStart = shown.endsWith("\n");
    this.#reply += shown;
    if (this.#replyTimer !== undefined) return;
    const wait = this.#repliedAt + REPLY_WRITE_MS - performance.now();
    if (wait <= 0) this.#flush();
    else this.#replyTimer = setTimeout(() => this.#flush(), wait);
  }

  /** A piece of reasoning: dimmed on the diagnostics stream (when shown at all). */
  thinking(text: string): void {
    this.#flush();
    this.#spinner?.stop();
    this.reasoning++;
    if (!this.agent.config.config.context.show_reasoning) return;
    this.#reasoningOpen = true;
    const shown = escapeControls(text);
    this.io.err.write(this.io.color ? `\x1b[2m${shown}\x1b[0m` : shown);
  }

  /** The request ended (or failed): the spinner goes, the reply's last line is ended. */
  endRound(): void {
    this.#flush();
    this.#spinner?.stop();
    this.#endReasoning();
    if (!this.#atLineStart) this.io.out.write("\n");
    this.#atLineStart = true;
  }

  /** A tool call starts: on a terminal, a transient line with its time until it ends. */
  callStarted(call: ToolCall, subject: string): void {
    this.#flush();
    this.#call = { call, subject, lines: 0, started: performance.now() };
    this.#draw();
    if (this.io.spinner) this.#ticker = setInterval(() => this.#draw(), 1000);
  }

  /** Runs `ask` (a question to the user) with the transient line out of its way. */
  async hold<R>(ask: () => Promise<R>): Promise<R> {
    this.#flush();
    this.#clear();
    this.#held = true;
    try {
      return await ask();
    } finally {
      this.#held = false;
      if (this.#call) this.#call.started = performance.now(); // the time it runs, not the wait
      this.#draw();
    }
  }

  /** Output of the running call (a command's): counted on the transient line. */
  callOutput(text: string): void {
    if (!this.#call) return;
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.#call.lines++;
    if (performance.now() - this.#drawnAt >= REDRAW_MS) this.#draw();
  }

  /** A call ended: its one finished line. */
  callEnded(call: ToolCall, outcome: ToolOutcome): void {
    const subject = this.#call?.call === call ? this.#call.subject : "";
    this.#call = undefined;
    clearInterval(this.#ticker);
    this.#flush();
    this.#clear();
    const ok = !outcome.error && !outcome.declined && !outcome.interrupted && !outcome.notRun;
    const mark = ok ? "●" : "○";
    // The name is the model's too: shown as data, like the subject.
    const what = `${oneLine(call.name)}${subject ? ` ${oneLine(subject)}` : ""}`;
    this.io.out.write(`${this.#paint(mark, outcome)} ${what} — ${outcome.summary}\n`);
  }

  /** The stats line, dimmed on the diagnostics stream. */
  stats(_stats: ChatStats, line: string): void {
    this.#flush();
    this.io.err.write(this.io.color ? `\x1b[2m${line}\x1b[0m\n` : `${line}\n`);
  }

  /** Ends whatever is still drawn. */
  close(): void {
    this.#flush();
    clearInterval(this.#ticker);
    this.#spinner?.stop();
    this.#clear();
    this.#endReasoning();
  }

  #paint(mark: string, outcome: ToolOutcome): string {
    if (!this.io.color) return mark;
    const code = outcome.error || outcome.interrupted
      ? 31
      : outcome.declined || outcome.notRun
      ? 33
      : 32;
    return `\x1b[${code}m${mark}\x1b[0m`;
  }

  #draw(): void {
    if (!this.io.spinner || !this.#call || this.#held) return;
    const c = this.#call;
    const secs = Math.floor((performance.now() - c.started) / 1000);
    const extra = [c.lines ? `${c.lines} lines` : "", secs ? `${secs}s` : ""].filter(Boolean);
    const line = `● ${oneLine(c.call.name)} ${oneLine(c.subject)} …${
      extra.length ? ` ${extra.join(", ")}` : ""
    }`;
    const columns = Deno.stdout.isTerminal() ? Deno.consoleSize().columns : 80;
    const cut = line.length >= columns ? `${headOf(line, columns - 2)}…` : line;
    this.#drawnAt = performance.now();
    this.io.out.write(`\r\x1b[2K${this.io.color ? `\x1b[2m${cut}\x1b[0m` : cut}`);
    this.#lineOpen = true;
  }

  /** Writes the reply text that waits, before anything else is written. */
  #flush(): void {
    clearTimeout(this.#replyTimer);
    this.#replyTimer = undefined;
    if (!this.#reply) return;
    const text = this.#reply;
    this.#reply = "";
    this.#repliedAt = performance.now();
    this.io.out.write(text);
  }

  #clear(): void {
    if (!this.#lineOpen) return;
    this.io.out.write("\r\x1b[2K");
    this.#lineOpen = false;
  }

  #endReasoning(): void {
    if (this.#reasoningOpen) this.io.err.write("\n");
    this.#reasoningOpen = false;
  }
}

/** A subject on one line, its control characters shown, at most 80 characters. */
function oneLine(text: string): string {
  const flat = escapeControls(text.replace(/\s*\n\s*/g, " ⏎ "));
  return flat.length > 80 ? `${headOf(flat, 79)}…` : flat;
}
