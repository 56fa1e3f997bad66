/**
 * `--mode rpc`: an editor or a script drives Harvey with JSON commands on stdin, one per line,
 * and reads the events of `json_display.ts` on stdout:
 *
 * - `{"type":"prompt","text":"…","id":…}` — a prompt turn;
 * - `{"type":"command","line":"/session list","id":…}` — a line as typed at the prompt (a slash
 *   command, `!command`, `@route prompt`);
 * - `{"type":"abort"}` — stops what runs now (as Ctrl-C does), and cancels its question;
 * - `{"type":"answer","id":N,"value":…}` — answers question N: `true`/`false` for `confirm`,
 *   text for `input`, for `pick` the index of a choice (from 0) or text when `other` allows;
 *   `{"type":"answer","id":N,"cancel":true}` cancels it.
 *
 * Prompts and commands run one at a time, in order; each ends with a `result` event carrying
 * its `id`. A line that is not a command is an `error` event and the rest go on. The input
 * ending (or `/exit`) ends Harvey, after what runs: a pending question is cancelled, and the
 * last event is `end`.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { CancelledError, describeError, HarveyError } from "../errors.ts";
import { currentLog } from "../session/current.ts";
import type { Asker, Choice } from "../types.ts";
import type { LineSource } from "./headless.ts";
import { type EventWriter, JsonTurnDisplay } from "./json_display.ts";
import { handleLine } from "./line.ts";
import { runPrompt, type TurnIO } from "./turn.ts";

/** A question waiting for its `answer` command. */
interface Waiting {
  kind: "confirm" | "input" | "pick";
  question: string;
  choices?: number;
  other: boolean;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/**
 * The asker of the program modes: a question is a `question` event, its answer an `answer`
 * command. Once the input has ended (`close`), or in `-p` where there is none, a question is
 * cancelled at once, as in a script whose input ended.
 */
export class EventAsker implements Asker {
  #next = 1;
  #waiting = new Map<number, Waiting>();
  #closed: boolean;

  constructor(
    readonly events: EventWriter,
    readonly opts: { yes?: boolean; closed?: boolean } = {},
  ) {
    this.#closed = opts.closed ?? false;
  }

  /** A yes/no question; `--yes` answers yes without asking. */
  async confirm(question: string, defaultYes = true): Promise<boolean> {
    if (this.opts.yes) return true;
    return await this.#ask<boolean>({ kind: "confirm", question, other: false }, {
      default: defaultYes,
    });
  }

  /** A line of text; an empty answer takes `defaultValue`. */
  async input(question: string, defaultValue?: string): Promise<string> {
    const answer = await this.#ask<string>({ kind: "input", question, other: true }, {
      ...(defaultValue !== undefined ? { default: defaultValue } : {}),
    });
    return answer.trim() || defaultValue || "";
  }

  /** One of `choices` by its index, or free text when `other` allows it. */
  async pick<T>(
    question: string,
    choices: Choice<T>[],
    opts: { other?: string } = {},
  ): Promise<{ value: T } | { other: string }> {
    const answer = await this.#ask<number | string>(
      { kind: "pick", question, choices: choices.length, other: opts.other !== undefined },
      { choices: choices.map((c) => c.label), ...(opts.other ? { other: opts.other } : {}) },
    );
    return typeof answer === "number" ? { value: choices[answer].value } : { other: answer };
  }

  /** Answers question `id` with `value` (checked against what was asked). */
  answer(id: unknown, value: unknown, cancel: boolean): void {
    const w = typeof id === "number" ? this.#waiting.get(id) : undefined;
    if (!w) throw new HarveyError(`No question ${JSON.stringify(id)} is waiting for an answer`);
    if (cancel) {
      this.#waiting.delete(id as number);
      w.reject(new CancelledError());
      return;
    }
    const ok = w.kind === "confirm"
      ? typeof value === "boolean"
      : w.kind === "input"
      ? typeof value === "string"
      : (Number.isInteger(value) && (value as number) >= 0 && (value as number) < w.choices!) ||
        (w.other && typeof value === "string" && value.trim() !== "");
    if (!ok) {
      const expected = w.kind === "confirm"
        ? "true or false"
        : w.kind === "input"
        ? "text"
        : `a choice from 0 to ${w.choices! - 1}${w.other ? " or text" : ""}`;
      throw new HarveyError(
        `Question ${id} expects ${expected} as its "value", found ${JSON.stringify(value)}`,
      );
    }
    this.#waiting.delete(id as number);
    w.resolve(value);
  }

  /** Cancels every question waiting (an `abort`). */
  cancelAll(): void {
    for (const [id, w] of this.#waiting) {
      this.#waiting.delete(id);
      w.reject(new CancelledError());
    }
  }

  /** The input ended: questions waiting, and those asked from now on, are cancelled. */
  close(): void {
    this.#closed = true;
    for (const [id, w] of this.#waiting) {
      this.#waiting.delete(id);
      w.reject(ended(w.question));
    }
  }

  #ask<R>(
    w: Omit<Waiting, "resolve" | "reject">,
    extra: { default?: boolean | string; choices?: string[]; other?: string },
  ): Promise<R> {
    const id = this.#next++;
    this.events.emit({ type: "question", id, kind: w.kind, question: w.question, ...extra });
    if (this.#closed) return Promise.reject(ended(w.question));
    return new Promise<R>((resolve, reject) => {
      this.#waiting.set(id, { ...w, resolve: resolve as (v: unknown) => void, reject });
    });
  }
}

function ended(question: string): CancelledError {
  return new CancelledError(`No answer to "${question}": the input ended`);
}

/** One prompt or line to run. */
interface Job {
  kind: "prompt" | "command";
  text: string;
  id?: string | number;
}

/**
 * Runs the RPC loop on `lines` (stdin) until the input ends or `/exit`; returns the exit
 * status (0: every error was reported as an event).
 */
export async function runRpc(
  agent: Agent,
  opts: { lines: LineSource; events: EventWriter; asker: EventAsker; resumed?: boolean },
): Promise<number> {
  const { events, asker } = opts;
  events.session(agent, opts.resumed ?? false);
  const jobs: Job[] = [];
  let wake: (() => void) | undefined;
  let running: AbortController | undefined;
  let ended = false;

  const worker = (async () => {
    let session = currentLog(agent)?.id;
    for (;;) {
      const job = jobs.shift();
      if (!job) {
        if (ended) return;
        await new Promise<void>((r) => wake = r);
        continue;
      }
      const ctl = new AbortController();
      running = ctl;
      const io: TurnIO = {
        out: events.output("output"),
        err: events.output("notice"),
        spinner: false,
        color: false,
        signal: ctl.signal,
        display: () => new JsonTurnDisplay(events),
      };
      try {
        if (job.kind === "prompt") await runPrompt(agent, job.text, io);
        else await handleLine(agent, job.text, io);
        events.emit({ type: "result", ...idOf(job), ok: true });
      } catch (err) {
        events.emit({ type: "result", ...idOf(job), ok: false, error: describeError(err) });
      } finally {
        running = undefined;
      }
      const now = currentLog(agent)?.id;
      if (now !== session) {
        session = now;
        events.session(agent, true);
      }
      if (agent.exitRequested) return;
    }
  })();

  const push = (job: Job) => {
    jobs.push(job);
    wake?.();
    wake = undefined;
  };
  const reader = (async () => {
    let n = 0;
    for (let line = await opts.lines.next(); line !== undefined; line = await opts.lines.next()) {
      n++;
      if (agent.exitRequested) break;
      if (!line.trim()) continue;
      try {
        const command = parseCommand(line, n);
        if (command.type === "abort") {
          running?.abort();
          asker.cancelAll();
        } else if (command.type === "answer") {
          asker.answer(command.id, command.value, command.cancel);
        } else push(command.job);
      } catch (err) {
        events.emit({ type: "error", message: describeError(err) });
      }
    }
  })();

  await Promise.race([reader, worker]);
  // The input ended (or /exit): what is queued runs; a question now has no answer.
  ended = true;
  asker.close();
  wake?.();
  await worker;
  events.emit({ type: "end", status: 0 });
  return 0;
}

function idOf(job: Job): { id?: string | number } {
  return job.id === undefined ? {} : { id: job.id };
}

type Command =
  | { type: "abort" }
  | { type: "answer"; id: unknown; value: unknown; cancel: boolean }
  | { type: "job"; job: Job };

/** Parses one input line into a command; throws HarveyError saying what is wrong. */
export function parseCommand(line: string, n: number): Command {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new HarveyError(
      `stdin line ${n}: expected a JSON command such as {"type":"prompt","text":"…"}, found ${
        JSON.stringify(line.length > 40 ? `${line.slice(0, 39)}…` : line)
      }`,
    );
  }
  const v = value as Record<string, unknown>;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new HarveyError(`stdin line ${n}: expected a JSON object with a "type"`);
  }
  const id = typeof v.id === "string" || typeof v.id === "number" ? v.id : undefined;
  switch (v.type) {
    case "prompt":
      if (typeof v.text !== "string" || !v.text.trim()) {
        throw new HarveyError(`stdin line ${n}: a "prompt" needs "text"`);
      }
      return { type: "job", job: { kind: "prompt", text: v.text, id } };
    case "command":
      if (typeof v.line !== "string" || !v.line.trim()) {
        throw new HarveyError(`stdin line ${n}: a "command" needs "line", e.g. "/status"`);
      }
      return { type: "job", job: { kind: "command", text: v.line, id } };
    case "abort":
      return { type: "abort" };
    case "answer":
      return { type: "answer", id: v.id, value: v.value, cancel: v.cancel === true };
    default:
      throw new HarveyError(
        `stdin line ${n}: unknown command type ${
          JSON.stringify(v.type)
        }; expected prompt, command, abort or answer`,
      );
  }
}
