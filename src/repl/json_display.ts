/**
 * Output for programs: Harvey's events as JSON Lines on stdout (`-p … --output json`,
 * `--mode rpc`), one object per line with a `type`; the README lists them all. A turn is shown
 * through {@linkcode JsonTurnDisplay}, the same `TurnDisplay` interface the terminal's view
 * implements, so the agent loop is the same in every mode.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { currentLog } from "../session/current.ts";
import type { ToolOutcome } from "../tools/tool.ts";
import type { ChatStats, Output, ToolCall } from "../types.ts";
import type { TurnDisplay } from "./turn_view.ts";

/** One event Harvey writes for a program. */
export type HarveyEvent =
  | {
    type: "session";
    id: string;
    resumed: boolean;
    workspace: string;
    model?: string;
    backend?: string;
  }
  | { type: "text"; delta: string }
  | { type: "reasoning"; delta: string }
  | { type: "tool_call"; id: string; name: string; arguments: string; subject: string }
  | { type: "tool_output"; id: string; delta: string }
  | {
    type: "tool_result";
    id: string;
    name: string;
    summary: string;
    content: string;
    error: boolean;
    declined: "no" | "quit" | null;
    interrupted: boolean;
  }
  | ({ type: "stats"; line: string } & ChatStats)
  | { type: "notice"; text: string }
  | { type: "output"; text: string }
  | {
    type: "question";
    id: number;
    kind: "confirm" | "input" | "pick";
    question: string;
    default?: boolean | string;
    choices?: string[];
    other?: string;
  }
  | { type: "result"; id?: string | number; ok: boolean; error?: string }
  | { type: "error"; message: string }
  | { type: "end"; status: number };

/** Writes events, one JSON object per line, and nothing else. */
export class EventWriter {
  constructor(readonly out: Output) {}

  /** Writes one event. */
  emit(event: HarveyEvent): void {
    this.out.write(`${JSON.stringify(event)}\n`);
  }

  /** An output whose every write is one event of `type` (`output` or `notice`). */
  output(type: "output" | "notice"): Output {
    return {
      write: (text) => {
        if (!text) return;
        this.emit({ type, text });
      },
    };
  }

  /** The `session` event for the agent's current session. */
  session(agent: Agent, resumed: boolean): void {
    this.emit({
      type: "session",
      id: currentLog(agent)?.id ?? "",
      resumed,
      workspace: agent.workspace.root,
      ...(agent.client ? { model: agent.client.model, backend: agent.client.name } : {}),
    });
  }
}

/** A turn as events: text and reasoning deltas, each tool call's start, output and result, stats. */
export class JsonTurnDisplay implements TurnDisplay {
  readonly out: Output;
  readonly notices: Output;
  reasoning = 0;
  #call?: ToolCall;

  constructor(readonly events: EventWriter) {
    this.out = events.output("output");
    this.notices = events.output("notice");
  }

  beginRound(): void {}

  token(text: string): void {
    if (text) this.events.emit({ type: "text", delta: text });
  }

  thinking(text: string): void {
    this.reasoning++;
    if (text) this.events.emit({ type: "reasoning", delta: text });
  }

  endRound(): void {}

  callStarted(call: ToolCall, subject: string): void {
    this.#call = call;
    this.events.emit({
      type: "tool_call",
      id: call.id,
      name: call.name,
      arguments: call.arguments,
      subject,
    });
  }

  callOutput(text: string): void {
    if (this.#call && text) {
      this.events.emit({ type: "tool_output", id: this.#call.id, delta: text });
    }
  }

  callEnded(call: ToolCall, outcome: ToolOutcome): void {
    this.#call = undefined;
    this.events.emit({
      type: "tool_result",
      id: call.id,
      name: call.name,
      summary: outcome.summary,
      content: outcome.content,
      error: outcome.error === true,
      declined: outcome.declined ?? null,
      interrupted: outcome.interrupted === true,
    });
  }

  stats(stats: ChatStats, line: string): void {
    this.events.emit({ type: "stats", ...stats, line });
  }

  hold<R>(ask: () => Promise<R>): Promise<R> {
    return ask();
  }

  close(): void {}
}
