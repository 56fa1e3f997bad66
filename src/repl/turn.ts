/**
 * One prompt turn: budget check, stream the reply token by token, stats, history, recorder.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { needClient } from "../commands/registry.ts";
import { describeError, HarveyError } from "../errors.ts";
import { isAbort } from "../llm/errors.ts";
import { formatStats } from "../llm/stats.ts";
import type { LLMClient, Message, Output } from "../types.ts";
import { Spinner } from "./spinner.ts";
import { escapeControls } from "../util/terminal_text.ts";

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

/**
 * Sends `input` with the whole history to the agent's backend (or `opts.client`, for `@route`
 * turns), printing the reply as it arrives. The history gets the turn only when a reply came
 * back; an interrupted reply is kept, marked as such.
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
  const messages: Message[] = [...agent.history, { role: "user", content: prompt }];
  const budget = agent.checkBudget ? await agent.checkBudget(messages, client, io.err) : undefined;

  if (opts.label) io.out.write(`${opts.label}\n`);
  const spinner = io.spinner
    ? new Spinner((t) => io.err.write(t), agent.stats.estimateMs(), io.color)
    : undefined;
  spinner?.start();
  let reply = "";
  try {
    const stats = await client.chat(messages, {
      signal: io.signal,
      onToken(token) {
        if (!reply) spinner?.stop();
        reply += token;
        io.out.write(escapeControls(token));
      },
    });
    spinner?.stop();
    if (reply && !reply.endsWith("\n")) io.out.write("\n");
    agent.history.push({ role: "user", content: prompt }, { role: "assistant", content: reply });
    agent.stats.add(stats);
    const percent = budget?.window
      ? ((stats.promptTokens + stats.replyTokens || budget.used) / budget.window) * 100
      : undefined;
    const line = formatStats(stats, percent);
    io.err.write(io.color ? `\x1b[2m${line}\x1b[0m\n` : `${line}\n`);
    await agent.recorder?.turn(input, reply, line);
  } catch (err) {
    spinner?.stop();
    if (isAbort(err, io.signal)) {
      if (reply && !reply.endsWith("\n")) io.out.write("\n");
      io.err.write("⏹ Interrupted — the partial reply is kept in the history\n");
      agent.history.push(
        { role: "user", content: prompt },
        { role: "assistant", content: `${reply}\n${INTERRUPTED_MARK}` },
      );
      await agent.recorder?.turn(input, `${reply}\n${INTERRUPTED_MARK}`);
      return;
    }
    if (reply) io.out.write("\n");
    throw err instanceof HarveyError ? err : new HarveyError(describeError(err));
  }
}
