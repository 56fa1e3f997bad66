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
import { headOf } from "../util/text_cut.ts";
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
  /** Something the user should know, on one line (calls dropped from a reply). */
  notice?(line: string): void;
  /**
   * Makes a result fit the room left in the window, measured with the server's own counter
   * (a result sized in characters may still be too many tokens); returns what to send.
   */
  fitResult?(content: string): Promise<string>;
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

/** The result of a call whose reply was cut at the reply limit before the call was complete. */
const CUT_CALL = "[not run: your reply was cut at its length limit before this call was " +
  "complete; make smaller calls (write a long file in parts: write_file a first part, then " +
  "edit_file to add the rest)]";

/** A tool name as models and servers send them; anything else names no tool. */
const TOOL_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * Makes the ids of `calls` unique in the conversation (`seen`): a backend that gives none gets
 * made-up ones that repeat from reply to reply, and a server may repeat its own; Anthropic and
 * others refuse a conversation in which two calls share an id.
 */
function uniqueIds(calls: ToolCall[], seen: Set<string>): void {
  for (const call of calls) {
    if (!call.id || seen.has(call.id) || !/^[A-Za-z0-9_-]{1,64}$/.test(call.id)) {
      call.id = `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
    }
    seen.add(call.id);
  }
}

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
  const seenIds = new Set(messages.flatMap((m) => (m.toolCalls ?? []).map((c) => c.id)));
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
    let toolCalls = native.length ? native : printed?.calls ?? [];
    // A reply that asks for more calls than the turn has left: the rest are dropped from it
    // (a model stuck repeating itself must not flood the history), said once.
    const left = Math.max(1, opts.maxCalls - calls);
    const dropped = toolCalls.length > left;
    if (dropped) {
      opts.hooks.notice?.(
        `⚠ The model asked for ${toolCalls.length} tool calls in one reply; the first ${left} ` +
          `are taken, the other ${toolCalls.length - left} dropped (tools.max_calls)`,
      );
      toolCalls = toolCalls.slice(0, left);
    }
    uniqueIds(toolCalls, seenIds);
    added.push({
      role: "assistant",
      content: round.text,
      ...(native.length ? { toolCalls } : {}),
    });
    if (round.interrupted) return { messages: added, stopped: "interrupted", calls, rounds };
    if (!toolCalls.length) return { messages: added, calls, rounds };
    // Cut at the reply limit: the last call (at least) is incomplete; none of them is run.
    const cutCalls = round.result?.finishReason === "length";
    if (cutCalls) {
      opts.hooks.notice?.(
        "✂ The reply was cut at its length limit inside a tool call: no call of it was run, " +
          "and the model was told to make smaller ones",
      );
    }
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
      if (stopped || cutCalls) {
        const outcome = {
          content: cutCalls ? CUT_CALL : NOT_RUN[stopped!],
          summary: cutCalls ? "cut at the reply limit, not run" : "not run",
          notRun: true,
        };
        call.arguments = safeArguments(call.arguments);
        agent.audit?.record("tool", `${shownName(call.name)}: ${outcome.summary}`, "denied");
        opts.hooks.callEnded?.(call, outcome);
        answer(call, outcome.content);
        continue;
      }
      calls++;
      const outcome = await runCall(agent, call, byName, opts);
      // Results go back in every later request: no lone surrogate a JSON parser refuses.
      const measured = opts.hooks.fitResult
        ? await opts.hooks.fitResult(outcome.content.toWellFormed())
        : outcome.content;
      const content = measured.toWellFormed();
      opts.hooks.callEnded?.(call, outcome);
      answer(call, content);
      if (outcome.declined === "quit") stopped = "quit";
      if (outcome.interrupted) stopped = "interrupted";
    }
    if (answers.length) added.push({ role: "user", content: answers.join("\n") });
    if (!stopped && dropped) stopped = "limit";
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
    const name = shownName(call.name);
    call.arguments = safeArguments(call.arguments);
    opts.hooks.callStarted?.(call, "");
    agent.audit?.record("tool", `${name}: no such tool`, "error");
    return {
      content: `There is no tool named ${JSON.stringify(name)}; the tools are: ${known}`,
      summary: "unknown tool",
      error: true,
    };
  }
  const args = parseToolArguments(tool.spec, call.arguments);
  if (!args.ok) {
    // The history keeps arguments that parse: a server re-reads every earlier call, and some
    // (llama-server with templates that take object arguments) refuse one that does not.
    call.arguments = safeArguments(call.arguments);
    opts.hooks.callStarted?.(call, "");
    agent.audit?.record("tool", `${call.name}: invalid arguments`, "error");
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
    const content = outcome.error
      ? relativePaths(outcome.content, agent.workspace.root)
      : outcome.content;
    const cut = capResult(content, maxChars);
    agent.audit?.record(
      "tool",
      `${call.name} ${tool.subject(args.value)}: ${outcome.summary}`,
      outcome.error || outcome.interrupted ? "error" : outcome.declined ? "denied" : "success",
    );
    return cut === outcome.content ? outcome : { ...outcome, content: cut };
  } catch (err) {
    if (isAbort(err, opts.signal)) {
      agent.audit?.record("tool", `${call.name} ${tool.subject(args.value)}: interrupted`, "error");
      return { content: NOT_RUN.interrupted, summary: "interrupted", interrupted: true };
    }
    const why = describeError(err);
    agent.audit?.record("tool", `${call.name}: ${why}`, "error");
    return { content: relativePaths(why, agent.workspace.root), summary: "error", error: true };
  }
}

/**
 * An error for the model in the workspace's terms: `/home/me/proj/src/x.ts` is `src/x.ts`, as
 * the model names files, and where the project lives on this machine stays here (a cloud
 * route sees the results too).
 */
function relativePaths(text: string, root: string): string {
  return text.includes(root) ? text.replaceAll(`${root}/`, "").replaceAll(root, ".") : text;
}

/** Arguments as the history keeps them: the model's when they are a JSON object, else `{}`. */
function safeArguments(text: string): string {
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? text : "{}";
  } catch {
    return "{}";
  }
}

/** A tool name as it may be shown and logged: a name, or its JSON quoted and cut. */
function shownName(name: string): string {
  return TOOL_NAME.test(name) ? name : JSON.stringify(name.slice(0, 64)).slice(1, -1);
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
  return headOf(content, nl > room / 2 ? nl : room) + note;
}
