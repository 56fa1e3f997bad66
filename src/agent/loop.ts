/**
 * The agent loop of one prompt turn: send the conversation with the tool definitions, stream
 * the reply, run the calls it holds (in order, each through its approval), send their results
 * back, and repeat — until a reply without calls, the per-turn limit of calls, the user's
 * "quit turn", or Ctrl-C. Whatever ends it, the messages it returns are a valid conversation:
 * every call has exactly one result.
 *
 * A reply without native calls that is (or ends in) a call printed as text — the way small
 * local models call, and the way the text protocol asks them to — is run the same way, with
 * the same approvals: the assistant message keeps the text the model wrote, and the results go
 * back in the form it used (`textResult`), as one user message.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { describeError } from "../errors.ts";
import { isAbort } from "../llm/errors.ts";
import { parseToolArguments } from "../tools/args.ts";
import { findTextCalls, textResult } from "../tools/text_calls.ts";
import type { Tool, ToolContext, ToolOutcome } from "../tools/tool.ts";
import type { ChatResult, Message, ToolCall, ToolSpec } from "../types.ts";

/** The result of one request of the loop. */
export interface RoundOutcome {
  /** The reply's text (reasoning excluded). */
  text: string;
  result?: ChatResult;
  /** Ctrl-C cut the reply: `text` is what had arrived. */
  interrupted?: boolean;
  /**
   * The messages really sent, when the round changed them (the oldest turns summarized to
   * fit): later rounds build on them instead of sending the long form again.
   */
  sent?: Message[];
}

/** What the loop needs from the turn around it. */
export interface LoopHooks {
  /**
   * Sends one request with `tools` (none: the model gets no tools) and streams the reply to the
   * user; an abort returns `interrupted` rather than throwing. Budget, compaction and the reply
   * limit are the round's business.
   */
  round(messages: Message[], tools: ToolSpec[] | undefined): Promise<RoundOutcome>;
  /** A call is about to run: `subject` is its one-line description (`src/a.ts`). */
  callStarted?(call: ToolCall, subject: string): void;
  /** A call ended (or was not run). */
  callEnded?(call: ToolCall, outcome: ToolOutcome): void;
}

/** Options of {@linkcode runToolLoop}. */
export interface LoopOptions {
  /** The tools offered (empty: a plain chat turn). */
  tools: readonly Tool[];
  hooks: LoopHooks;
  /** Everything a call needs but its arguments, the signal and the result cap. */
  context: Omit<ToolContext, "signal" | "maxChars">;
  /** The most characters the next call's result may have (the room left in the window). */
  resultRoom(): number;
  /** Ctrl-C: stops the loop at once. */
  signal?: AbortSignal;
  /** The most calls one turn may run (the `tools.max_calls` setting). */
  maxCalls: number;
}

/** Why the loop ended before the model gave a reply without calls. */
export type LoopStop = "limit" | "quit" | "interrupted";

/** What the loop added to the conversation, and why it stopped. */
export interface LoopResult {
  /** The assistant messages and the tool results, in order; append them to the history. */
  messages: Message[];
  /** Undefined when the model finished on its own. */
  stopped?: LoopStop;
  /** Calls run (declined and failed ones included). */
  calls: number;
  /** Every round's result, in order. */
  rounds: ChatResult[];
}

/** The result a call gets when it is not run. */
const NOT_RUN: Record<LoopStop, string> = {
  limit: "[not run: the turn reached its limit of tool calls]",
  quit: "[not run: the user ended the turn]",
  interrupted: "[interrupted]",
};

/** A tool message answering `call`. */
export function toolResult(call: ToolCall, content: string): Message {
  return { role: "tool", content, toolCallId: call.id, toolName: call.name };
}

/**
 * Runs the loop for `messages` (the history with the new user message last); returns the
 * messages to add to it. A failure of a request (after at least one round) is thrown with the
 * messages so far attached as `partial`, so the caller can keep them.
 */
export async function runToolLoop(
  agent: Agent,
  messages: readonly Message[],
  opts: LoopOptions,
): Promise<LoopResult> {
  const byName = new Map(opts.tools.map((t) => [t.spec.name, t]));
  const specs = opts.tools.length ? opts.tools.map((t) => t.spec) : undefined;
  const added: Message[] = [];
  const rounds: ChatResult[] = [];
  let calls = 0;
  let prefix: readonly Message[] = messages;
  for (;;) {
    let round: RoundOutcome;
    try {
      round = await opts.hooks.round([...prefix, ...added], specs);
    } catch (err) {
      if (added.length) Object.assign(err as object, { partial: added });
      throw err;
    }
    if (round.sent) prefix = round.sent.slice(0, round.sent.length - added.length);
    if (round.result) rounds.push(round.result);
    const native = round.interrupted ? [] : round.result?.toolCalls ?? [];
    const printed = native.length || round.interrupted || !byName.size
      ? undefined
      : findTextCalls(round.text, new Set(byName.keys()));
    const toolCalls = native.length ? native : printed?.calls ?? [];
    added.push({
      role: "assistant",
      content: round.text,
      ...(native.length ? { toolCalls: native } : {}),
    });
    if (round.interrupted) return { messages: added, stopped: "interrupted", calls, rounds };
    if (!toolCalls.length) return { messages: added, calls, rounds };
    // Printed calls are answered together, in the form the model wrote them.
    const answers: string[] = [];
    const answer = (call: ToolCall, content: string) =>
      printed
        ? answers.push(textResult(printed.form, call.name, content))
        : added.push(toolResult(call, content));
    let stopped: LoopStop | undefined;
    for (const call of toolCalls) {
      if (!stopped && opts.signal?.aborted) stopped = "interrupted";
      if (!stopped && calls >= opts.maxCalls) stopped = "limit";
      if (stopped) {
        const outcome = { content: NOT_RUN[stopped], summary: "not run" };
        opts.hooks.callEnded?.(call, outcome);
        answer(call, outcome.content);
        continue;
      }
      calls++;
      const outcome = await runCall(agent, call, byName, opts);
      opts.hooks.callEnded?.(call, outcome);
      answer(call, outcome.content);
      if (outcome.declined === "quit") stopped = "quit";
      if (outcome.interrupted) stopped = "interrupted";
    }
    if (answers.length) added.push({ role: "user", content: answers.join("\n") });
    if (stopped) return { messages: added, stopped, calls, rounds };
  }
}

/** Runs one call: unknown tools, broken arguments and failures become results, never throws. */
async function runCall(
  agent: Agent,
  call: ToolCall,
  byName: Map<string, Tool>,
  opts: LoopOptions,
): Promise<ToolOutcome> {
  const tool = byName.get(call.name);
  if (!tool) {
    const known = [...byName.keys()].join(", ") || "none";
    opts.hooks.callStarted?.(call, "");
    return {
      content: `There is no tool named "${call.name}"; the tools are: ${known}`,
      summary: "unknown tool",
      error: true,
    };
  }
  const args = parseToolArguments(tool.spec, call.arguments);
  if (!args.ok) {
    opts.hooks.callStarted?.(call, "");
    return { content: args.error, summary: "invalid arguments", error: true };
  }
  opts.hooks.callStarted?.(call, tool.subject(args.value));
  try {
    const maxChars = opts.resultRoom();
    const outcome = await tool.run(agent, args.value, {
      ...opts.context,
      signal: opts.signal,
      maxChars,
    });
    const cut = capResult(outcome.content, maxChars);
    agent.audit?.record(
      "tool",
      `${call.name} ${tool.subject(args.value)}: ${outcome.summary}`,
      outcome.error ? "error" : outcome.declined ? "denied" : "success",
    );
    return cut === outcome.content ? outcome : { ...outcome, content: cut };
  } catch (err) {
    if (isAbort(err, opts.signal)) {
      return { content: NOT_RUN.interrupted, summary: "interrupted", interrupted: true };
    }
    const why = describeError(err);
    agent.audit?.record("tool", `${call.name}: ${why}`, "error");
    return { content: why, summary: "error", error: true };
  }
}

/**
 * The last guard on a result's size: a tool cuts its own output with a note that says how to
 * get the rest; whatever is still longer than `maxChars` is cut here, at a line end.
 */
export function capResult(content: string, maxChars: number): string {
  if (content.length <= maxChars) return content;
  const note = `\n[cut: ${content.length - maxChars} more characters not shown; ask for less]`;
  const room = Math.max(0, maxChars - note.length);
  const nl = content.lastIndexOf("\n", room);
  return content.slice(0, nl > room / 2 ? nl : room) + note;
}
