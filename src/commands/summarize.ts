/**
 * `/summarize`: ask the model for a summary of the conversation and replace the history with
 * it (the system prompt and the pinned context stay).
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { describeError, HarveyError } from "../errors.ts";
import { BudgetError } from "../llm/budget.ts";
import { isAbort } from "../llm/errors.ts";
import { formatStats } from "../llm/stats.ts";
import type { Message } from "../types.ts";
import { type CommandSpec, needClient } from "./registry.ts";

/** The instruction sent after the history. */
export const SUMMARIZE_PROMPT =
  `Summarize our conversation so far so that it can replace the conversation itself. Keep: the
goal, the decisions made and why, the files, functions and commands discussed (exact names and
paths), code that still matters, open questions and next steps. Leave out greetings and
anything settled. Write concise Markdown bullet points; do not address me.`;

/** The label of the message that replaces the history. */
export const SUMMARY_LABEL = "[Conversation summary]";

const silent = { write() {} };

/** The system prompt and the pinned context: what `clearHistory` keeps. */
function keptHead(agent: Agent): number {
  let n = agent.history[0]?.role === "system" ? 1 : 0;
  if (agent.pinned && agent.history[n]?.content.startsWith("[pinned context]")) n++;
  return n;
}

/**
 * The request for the summary: the history (its oldest messages dropped while it does not
 * fit the context window) and the instruction. Returns how many messages were dropped.
 */
async function request(agent: Agent): Promise<{ messages: Message[]; dropped: number }> {
  const client = needClient(agent);
  const head = agent.history.slice(0, keptHead(agent));
  const conversation = agent.history.slice(head.length);
  if (!conversation.length) {
    throw new HarveyError("Nothing to summarize: the conversation is empty");
  }
  const instruction: Message = { role: "user", content: SUMMARIZE_PROMPT };
  for (let dropped = 0; dropped < conversation.length; dropped++) {
    const messages = [...head, ...conversation.slice(dropped), instruction];
    try {
      await agent.checkBudget?.(messages, client, silent);
      return { messages, dropped };
    } catch (err) {
      if (!(err instanceof BudgetError)) throw err;
    }
  }
  throw new HarveyError(
    "Even the last message does not fit the context window with the summary instruction; " +
      "/clear to start over (pinned context stays)",
  );
}

/** `/summarize` */
export const summarizeCommand: CommandSpec = {
  name: "summarize",
  usage: ["/summarize"],
  summary: "Replace the conversation with a summary written by the model (frees context)",
  async run(agent, _args, out, ctx) {
    const client = needClient(agent);
    const before = agent.history.length;
    const { messages, dropped } = await request(agent);
    const total = before - keptHead(agent);
    if (dropped) {
      out.write(
        `⚠ The conversation does not fit the context window: summarizing its last ${
          total - dropped
        } of ${total} messages\n`,
      );
    }
    let reply = "";
    let line: string;
    try {
      const stats = await client.chat(messages, {
        signal: ctx.signal,
        onToken(token) {
          reply += token;
          out.write(token);
        },
      });
      if (reply && !reply.endsWith("\n")) out.write("\n");
      agent.stats.add(stats);
      line = formatStats(stats);
      agent.err.write(`${line}\n`);
    } catch (err) {
      if (reply && !reply.endsWith("\n")) out.write("\n");
      if (isAbort(err, ctx.signal)) {
        throw new HarveyError("Interrupted: the summary is incomplete and the history was kept");
      }
      throw err instanceof HarveyError ? err : new HarveyError(describeError(err));
    }
    const summary = reply.replace(/<think>[\s\S]*?<\/think>/g, "").trim();
    if (!summary) {
      throw new HarveyError("The model returned an empty summary; the history was kept");
    }
    agent.clearHistory();
    agent.addMessage("user", `${SUMMARY_LABEL}\n\n${summary}`);
    await agent.recorder?.turn("/summarize", reply, line);
    out.write(`✓ ${total} messages replaced by the summary (pinned context kept)\n`);
  },
};
