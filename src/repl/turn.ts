/**
 * One prompt turn: fit the request into the window, stream the reply token by token (reasoning
 * dimmed, kept out of the history), stats, history, recorder.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { needClient } from "../commands/registry.ts";
import { describeError, HarveyError } from "../errors.ts";
import { isAbort } from "../llm/errors.ts";
import { sendFitted } from "../llm/fit.ts";
import { formatStats } from "../llm/stats.ts";
import type { LLMClient, Message, Output } from "../types.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { Spinner } from "./spinner.ts";

/** Where a turn writes, and how. */
export interface TurnIO {
  out: Output;
  err: Output;
  signal?: AbortSignal;
  /** Draw the spinner (terminals only). */
  spinner: boolean;
  color: boolean;
}

/** Marks a reply that Ctrl-C cut short, in the history. */
export const INTERRUPTED_MARK = "[interrupted by the user]";

/** Marks a reply that the server stopped sending before it was complete, in the history. */
export const CUT_OFF_MARK = "[interrupted: the server stopped before the reply was complete]";

/**
 * Sends `input` with the whole history to the agent's backend (or `opts.client`, for `@route`
 * turns), printing the reply as it arrives. The request is fitted into the backend's window
 * first (`sendFitted`: the oldest turns may be summarized). The history gets the turn only
 * when a reply came back; a reply cut short (Ctrl-C, a server that went away) is kept,
 * marked as such.
 */
export async function runPrompt(
  agent: Agent,
  input: string,
  io: TurnIO,
  opts: { client?: LLMClient; label?: string } = {},
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
  const showReasoning = agent.config.config.context.show_reasoning;
  const dim = (text: string) => io.color ? `\x1b[2m${text}\x1b[0m` : text;
  let spinner: Spinner | undefined;
  let labelled = false;
  let reply = "";
  let reasoning = 0;
  let reasoningOpen = false;
  // Called when the fitted request goes out (again, after a refusal as too long).
  const begin = () => {
    if (!labelled && opts.label) io.out.write(`${opts.label}\n`);
    labelled = true;
    spinner?.stop();
    spinner = io.spinner
      ? new Spinner((t) => io.err.write(t), agent.stats.estimateMs(), io.color)
      : undefined;
    spinner?.start();
  };
  // A line said while the spinner runs (the refusal before a retry) goes on a clean line.
  const lines: Output = {
    write(text) {
      spinner?.stop();
      io.err.write(text);
    },
  };
  const endReasoning = () => {
    if (reasoningOpen) io.err.write("\n");
    reasoningOpen = false;
  };
  let sent: Awaited<ReturnType<typeof sendFitted>>;
  try {
    sent = await sendFitted(agent, client, [...agent.history, user], {
      err: lines,
      signal: io.signal,
      onSend: begin,
      onToken(token) {
        spinner?.stop();
        endReasoning();
        reply += token;
        io.out.write(escapeControls(token));
      },
      onReasoning(token) {
        spinner?.stop();
        reasoning++;
        if (!showReasoning) return;
        reasoningOpen = true;
        io.err.write(dim(escapeControls(token)));
      },
    });
  } catch (err) {
    spinner?.stop();
    endReasoning();
    if (reply && !reply.endsWith("\n")) io.out.write("\n");
    if (isAbort(err, io.signal)) {
      if (!reply) {
        io.err.write(
          reasoning
            ? "⏹ Interrupted while the model was reasoning; nothing was added to the history\n"
            : "⏹ Interrupted before the reply began; nothing was added to the history\n",
        );
        return;
      }
      io.err.write("⏹ Interrupted — the partial reply is kept in the history\n");
      await keep(agent, input, user, `${reply}\n${INTERRUPTED_MARK}`);
      return;
    }
    // A reply the server stopped sending in the middle is kept, marked, and the error said.
    if (reply) await keep(agent, input, user, `${reply}\n${CUT_OFF_MARK}`);
    throw err instanceof HarveyError ? err : new HarveyError(describeError(err));
  }
  spinner?.stop();
  endReasoning();
  const { result, fitted } = sent;
  if (reply && !reply.endsWith("\n")) io.out.write("\n");
  agent.stats.add(result);
  const percent = fitted.window
    ? ((result.promptTokens + result.replyTokens || fitted.used) / fitted.window) * 100
    : undefined;
  const line = formatStats(result, percent);
  io.err.write(io.color ? `\x1b[2m${line}\x1b[0m\n` : `${line}\n`);
  const cut = result.finishReason === "length" ? cutLine(fitted.maxTokens) : undefined;
  if (!reply.trim()) {
    io.err.write(
      `⚠ ${
        reasoning
          ? `The model only reasoned (${
            result.reasoningTokens ?? reasoning
          } tokens) and gave no answer${cut ? ", cut at the reply limit" : ""}`
          : "The model returned an empty reply"
      }; nothing was added to the history — ask again${
        cut ? ", or raise context.reply_reserve in agents/harvey.yaml" : ""
      }\n`,
    );
    return;
  }
  if (cut) io.err.write(`${cut}\n`);
  agent.history.push(user, { role: "assistant", content: reply });
  await agent.recorder?.turn(input, reply, line);
}

/** The line for a reply the server cut at its limit. */
function cutLine(limit: number | undefined): string {
  const at = limit ? `its limit of ${limit} tokens` : "the end of the window";
  return `✂ The reply was cut at ${at} — say "continue" for the rest, or raise ` +
    "context.reply_reserve in agents/harvey.yaml";
}

async function keep(agent: Agent, input: string, user: Message, reply: string): Promise<void> {
  agent.history.push(user, { role: "assistant", content: reply });
  await agent.recorder?.turn(input, reply);
}
