/**
 * One prompt turn: the agent loop (`src/agent/loop.ts`) with every request fitted into the
 * backend's window (`sendFitted`: the oldest turns may be summarized), the reply streamed as it
 * arrives (reasoning dimmed, kept out of the history), each tool call approved, run and shown
 * as one line, then the stats line, the history and the recorder.
 *
 * The tools go as the model's mode says (`src/tools/mode.ts`): native definitions, or in text
 * mode the text protocol in the system message, with a grammar on llama.cpp backends. A server
 * that refuses the definitions gets the text protocol for the rest of the session.
 *
 * @module
 */
import type { Agent, TurnRecord } from "../agent.ts";
import { TurnApprover } from "../agent/approval.ts";
import { capResult, type LoopResult, runToolLoop } from "../agent/loop.ts";
import { needClient } from "../commands/registry.ts";
import { describeError, HarveyError } from "../errors.ts";
import { isAbort } from "../llm/errors.ts";
import { type FittedRequest, mostUsed, sendFitted, type SendOptions } from "../llm/fit.ts";
import { formatStats } from "../llm/stats.ts";
import { ChangeSet } from "../ops/changes.ts";
import { offeredTools } from "../tools/index.ts";
import { refusesTools, rememberToolRefusal, type ToolModeSetting } from "../tools/mode.ts";
import { withSystemSection } from "../tools/text_protocol.ts";
import type {
  ChatResult,
  ChatStats,
  LLMClient,
  Message,
  Output,
  ToolCall,
  ToolSpec,
} from "../types.ts";
import { type TurnDisplay, TurnView } from "./turn_view.ts";

/** Where a turn writes, and how. */
export interface TurnIO {
  out: Output;
  err: Output;
  signal?: AbortSignal;
  /** Draw the spinner (terminals only). */
  spinner: boolean;
  color: boolean;
  /** Shows the turn another way than {@linkcode TurnView} does (a program's JSON events). */
  display?: (agent: Agent, opts: { label?: string }) => TurnDisplay;
}

/** Marks a reply that Ctrl-C cut short, in the history. */
export const INTERRUPTED_MARK = "[interrupted by the user]";

/** Marks a reply that the server stopped sending before it was complete, in the history. */
export const CUT_OFF_MARK = "[interrupted: the server stopped before the reply was complete]";

/** The most characters one tool result may have, however large the window. */
const RESULT_CAP_CHARS = 24_000;
/** In small-context mode a result may have at most this share of the window. */
const SMALL_RESULT_SHARE = 1 / 4;
/** The fewest characters a result is given, however full the window (the request is then refused). */
const RESULT_FLOOR_CHARS = 400;
/** Tokens a tool message takes besides its content (role markers, the call's id). */
const RESULT_SLACK = 16;
/** Characters per token when turning room in the window into a result's size (a first guess). */
const CHARS_PER_TOKEN = 3;

/**
 * Sends `input` with the whole history to the agent's backend (or `opts.client`, for `@route`
 * turns), printing the reply as it arrives and running the tools it calls, round after round,
 * until the model answers without a call. The history gets the turn when something came back:
 * a reply cut short (Ctrl-C, a server that went away) is kept, marked as such, and so is every
 * call made before, each with its result.
 */
export async function runPrompt(
  agent: Agent,
  input: string,
  io: TurnIO,
  opts: {
    client?: LLMClient;
    label?: string;
    /** This turn's tool mode instead of the model's setting (`/bench` runs each mode). */
    toolMode?: ToolModeSetting;
  } = {},
): Promise<void> {
  const client = opts.client ?? needClient(agent);
  let prompt = input;
  if (agent.augmentPrompt) {
    try {
      prompt = await agent.augmentPrompt(input, io.err, io.signal);
    } catch (err) {
      if (!isAbort(err, io.signal)) throw err;
      io.err.write("⏹ Interrupted before the prompt was sent\n");
      return;
    }
  }
  const user: Message = { role: "user", content: prompt };
  const view = io.display?.(agent, { label: opts.label }) ??
    new TurnView(agent, io, { label: opts.label });
  const say = (text: string) => view.notices.write(text);
  const offer = await offeredTools(agent, client, { override: opts.toolMode });
  const { tools } = offer;
  // Small-context mode: a result gets at most a quarter of the window.
  const resultCap = offer.small && offer.window
    ? Math.max(RESULT_FLOOR_CHARS, Math.floor(offer.window * SMALL_RESULT_SHARE) * CHARS_PER_TOKEN)
    : RESULT_CAP_CHARS;
  let asText = offer.mode === "text";
  const settings = agent.config.config.tools;
  const approver = new TurnApprover(agent, {
    policy: settings.approve,
    yes: agent.settings.yes,
    out: view.out,
    color: io.color,
    hold: (ask) => view.hold(ask),
    interactive: io.spinner,
  });
  const changes = new ChangeSet(agent);
  let fitted: FittedRequest | undefined;
  let last: ChatResult | undefined;
  let room = Infinity; // tokens left in the window for tool results
  let round = 0;
  let text = "";
  const transcript: string[] = [];
  const subjects = new Map<ToolCall, string>();

  let loop: LoopResult;
  try {
    loop = await runToolLoop(agent, [...agent.history, user], {
      tools,
      maxCalls: settings.max_calls,
      signal: io.signal,
      context: {
        approve: (request) => approver.approve(request),
        write: (files) =>
          changes.write(files, { audit: "tool", by: "the model's edits of the last turn" }),
        onOutput: (t) => view.callOutput(t),
      },
      resultRoom() {
        const chars = Number.isFinite(room) ? room * CHARS_PER_TOKEN : resultCap;
        return Math.max(RESULT_FLOOR_CHARS, Math.min(resultCap, chars));
      },
      hooks: {
        async round(messages, specs) {
          text = "";
          const send = async (textMode: boolean) => {
            const sent = await sendRound(agent, client, messages, {
              specs,
              section: textMode ? offer.section : undefined,
              grammar: textMode ? offer.grammar : undefined,
              err: view.notices,
              signal: io.signal,
              onSend: () => view.beginRound(),
              onToken(t) {
                text += t;
                view.token(t);
              },
              onReasoning: (t) => view.thinking(t),
            });
            fitted = sent.fitted;
            last = sent.result;
            if (fitted.window) {
              const { window, maxTokens = 0, counting } = fitted;
              const left = (n: number) => window - maxTokens - n - sent.result.replyTokens;
              // Sent before the server counted it: until its count is in, the room is what
              // is left if the prediction was as far off as it is allowed to be.
              const assumed = room = left(mostUsed(fitted));
              const current = ++round;
              counting?.then((n) => {
                if (current === round) room += left(n) - assumed;
              });
            }
            return { text, result: sent.result, sent: sent.messages };
          };
          try {
            try {
              return await send(asText && Boolean(specs?.length));
            } catch (err) {
              // A server that refuses the definitions (llama-server without --jinja answers
              // 500) gets the tools as text instead, this turn and the rest of the session.
              if (asText || !specs?.length || text || !offer.section || !refusesTools(err)) {
                throw err;
              }
              const why = describeError(err);
              rememberToolRefusal(client, why);
              asText = true;
              say(
                `⚠ ${why} — the tools are stated in the prompt instead (/tools mode text ` +
                  `keeps it so for ${client.model})\n`,
              );
              return await send(true);
            }
          } catch (err) {
            if (isAbort(err, io.signal)) return { text, interrupted: true };
            throw err;
          } finally {
            view.endRound();
            if (text) transcript.push(text);
          }
        },
        callStarted(call, subject) {
          subjects.set(call, subject);
          view.callStarted(call, subject);
        },
        callEnded(call, outcome) {
          view.callEnded(call, outcome);
          const subject = subjects.get(call);
          transcript.push(`● ${call.name}${subject ? ` ${subject}` : ""} — ${outcome.summary}`);
        },
        notice: (line) => say(`${line}\n`),
        async fitResult(content) {
          // Characters are only a guess of tokens (CJK, digits, minified code run denser):
          // the result is counted the way the server counts, and cut again until it fits.
          const budget = agent.budget;
          if (!budget || !Number.isFinite(room)) return content;
          let result = content;
          let tokens = await budget.text(result, client);
          for (let i = 0; i < 3 && tokens > room - RESULT_SLACK; i++) {
            const share = Math.max(0, room - RESULT_SLACK) / tokens;
            result = capResult(
              content,
              Math.max(RESULT_FLOOR_CHARS, Math.floor(result.length * share * 0.9)),
            );
            tokens = await budget.text(result, client);
          }
          room -= tokens + RESULT_SLACK;
          return result;
        },
      },
    });
  } catch (err) {
    view.close();
    // What the loop did before the failure stays; a reply the server stopped sending in the
    // middle is kept, marked, and the error said.
    const kept = [...(err as { partial?: Message[] }).partial ?? []];
    if (text) kept.push({ role: "assistant", content: `${text}\n${CUT_OFF_MARK}` });
    if (kept.length) {
      await keep(agent, input, user, kept, transcript, { client, outcome: "failed" });
    }
    throw err instanceof HarveyError ? err : new HarveyError(describeError(err));
  }
  view.close();
  const { messages } = loop;
  const final = messages.at(-1)!;
  if (loop.stopped === "interrupted") {
    if (messages.length === 1 && !final.content) {
      say(
        view.reasoning
          ? "⏹ Interrupted while the model was reasoning; nothing was added to the history\n"
          : "⏹ Interrupted before the reply began; nothing was added to the history\n",
      );
      return;
    }
    if (final.role === "assistant") {
      final.content = final.content ? `${final.content}\n${INTERRUPTED_MARK}` : INTERRUPTED_MARK;
    }
    say(
      final.role !== "assistant"
        ? "⏹ Interrupted — the tool call was stopped; the turn so far is kept in the history\n"
        : "⏹ Interrupted — the partial reply is kept in the history\n",
    );
    await keep(agent, input, user, messages, transcript, { client, outcome: "interrupted" });
    return;
  }
  const stats = totals(loop.rounds);
  agent.stats.add(stats);
  const percent = fitted?.window
    ? ((stats.promptTokens + (last?.replyTokens ?? 0) ||
      await (fitted.counting ?? fitted.used)) / fitted.window) * 100
    : undefined;
  const calls = loop.calls ? ` · ${loop.calls} tool ${loop.calls === 1 ? "call" : "calls"}` : "";
  const line = formatStats(stats, percent).replace(/( · context|$)/, `${calls}$1`);
  view.stats(stats, line);
  const cut = last?.finishReason === "length" ? cutLine(fitted?.maxTokens) : undefined;
  if (loop.stopped === "limit") {
    say(
      `⚠ The turn stopped after ${loop.calls} tool calls (tools.max_calls in agents/harvey.yaml); ` +
        'say "continue" to let the model go on\n',
    );
  } else if (loop.stopped === "quit" && !approver.unanswered) {
    say("The turn was ended at your request; what was done so far is in the history\n");
  } else if (!final.content.trim()) {
    if (messages.length === 1) {
      say(
        `⚠ ${
          view.reasoning
            ? `The model only reasoned (${
              stats.reasoningTokens ?? view.reasoning
            } tokens) and gave no answer${cut ? ", cut at the reply limit" : ""}`
            : "The model returned an empty reply"
        }; nothing was added to the history — ask again${
          cut ? ", or raise context.reply_reserve in agents/harvey.yaml" : ""
        }\n`,
      );
      return;
    }
    say("⚠ The model gave no answer after its tool calls — ask it to sum up\n");
  }
  if (cut) say(`${cut}\n`);
  await keep(agent, input, user, messages, transcript, {
    client,
    outcome: approver.unanswered ? "failed" : "done",
    stats,
    line,
  });
  // A script (or -p) that could not approve fails the line, its turn kept as far as it went.
  if (approver.unanswered) throw new HarveyError(approver.unanswered);
}

/** How one request of the loop goes. */
interface RoundOptions extends Omit<SendOptions, "tools" | "grammar"> {
  specs?: ToolSpec[];
  /** Text mode: the text protocol, added to the system message instead of sending `specs`. */
  section?: string;
  grammar?: string;
}

/**
 * Sends one request of the loop: `specs` as native definitions, or, with `section`, stated in
 * the system message (and `grammar` sent). `messages` is what the round got: the section is
 * added only to what is sent, and the agent's history keeps its own system message, also when
 * the request was compacted (the history is compacted with it). Returns the messages sent
 * when compaction changed them, without the section.
 */
async function sendRound(
  agent: Agent,
  client: LLMClient,
  messages: Message[],
  opts: RoundOptions,
): Promise<{ result: ChatResult; fitted: FittedRequest; messages?: Message[] }> {
  const { specs, section, grammar, ...send } = opts;
  if (!section || !specs?.length) {
    const sent = await sendFitted(agent, client, messages, { ...send, tools: specs });
    const changed = sent.fitted.messages === messages ? undefined : sent.fitted.messages;
    return { ...sent, messages: changed };
  }
  const original = messages[0];
  const request = withSystemSection(messages, section);
  const system = request[0];
  // The window fit compacts the history along with a request that begins with it: for the
  // moment of the request the history begins with the same system message.
  const swapped = agent.history[0] === original && original?.role === "system";
  if (swapped) agent.history[0] = system;
  try {
    const sent = await sendFitted(agent, client, request, { ...send, grammar });
    const out = sent.fitted.messages;
    const own = original?.role === "system" ? [original] : [];
    const changed = out === request
      ? undefined
      : out[0] === system
      ? [...own, ...out.slice(1)]
      : out;
    return { ...sent, messages: changed };
  } finally {
    if (swapped && agent.history[0] === system) agent.history[0] = original;
  }
}

/** The stats of a whole turn: its requests' tokens and time added up. */
function totals(rounds: ChatResult[]): ChatStats {
  const replyTokens = rounds.reduce((n, r) => n + r.replyTokens, 0);
  const reasoning = rounds.reduce((n, r) => n + (r.reasoningTokens ?? 0), 0);
  // Generation time of each request, from its own rate; the turn's rate is their average.
  const genMs = rounds.reduce(
    (n, r) => n + (r.tokensPerSec > 0 ? (r.replyTokens / r.tokensPerSec) * 1000 : 0),
    0,
  );
  return {
    promptTokens: rounds.at(-1)?.promptTokens ?? 0,
    replyTokens,
    reasoningTokens: reasoning || undefined,
    elapsedMs: rounds.reduce((n, r) => n + r.elapsedMs, 0),
    tokensPerSec: genMs > 0 ? replyTokens / (genMs / 1000) : 0,
  };
}

/** The line for a reply the server cut at its limit. */
function cutLine(limit: number | undefined): string {
  const at = limit ? `its limit of ${limit} tokens` : "the end of the window";
  return `✂ The reply was cut at ${at} — say "continue" for the rest, or raise ` +
    "context.reply_reserve in agents/harvey.yaml";
}

async function keep(
  agent: Agent,
  input: string,
  user: Message,
  added: Message[],
  transcript: string[],
  end: { client: LLMClient; outcome: TurnRecord["outcome"]; stats?: ChatStats; line?: string },
): Promise<void> {
  agent.history.push(user, ...added);
  await agent.endTurn({
    input,
    model: end.client.model,
    backend: end.client.name,
    stats: end.stats,
    outcome: end.outcome,
  });
  await agent.recorder?.turn(input, transcript.join("\n\n"), end.line);
}
