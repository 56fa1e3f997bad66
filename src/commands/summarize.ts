/**
 * `/summarize`: ask the model for a summary of the conversation and replace the history with
 * it (the system prompt and the pinned context stay). The summary is written the way
 * auto-compaction writes one (`src/llm/compact.ts`): in as many requests as the window needs.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { describeError, HarveyError } from "../errors.ts";
import { replyReserve, TokenBudget } from "../llm/budget.ts";
import { keptHead, summarize, SUMMARY_LABEL } from "../llm/compact.ts";
import { isAbort } from "../llm/errors.ts";
import { type CommandHandler, needClient } from "./registry.ts";

export { SUMMARIZE_PROMPT, SUMMARY_LABEL } from "../llm/compact.ts";

/** The summary's limit when the backend does not tell its window. */
const UNKNOWN_WINDOW_SUMMARY = 1024;

async function run(agent: Agent, signal: AbortSignal | undefined, out: { write(t: string): void }) {
  const client = needClient(agent);
  const head = keptHead(agent.history);
  const conversation = agent.history.slice(head);
  if (!conversation.length) {
    throw new HarveyError("Nothing to summarize: the conversation is empty");
  }
  await client.prepare?.(signal);
  const window = await client.contextWindow?.().catch(() => undefined);
  agent.rememberWindow(client, window);
  const reserve = window
    ? replyReserve(window, agent.config.config.context.reply_reserve)
    : UNKNOWN_WINDOW_SUMMARY;
  let reply = "";
  const summary = await summarize(client, conversation, {
    budget: agent.budget ?? new TokenBudget(),
    window: window ?? Number.MAX_SAFE_INTEGER,
    maxTokens: window ? Math.min(reserve, Math.max(64, Math.floor(window * 0.15))) : reserve,
    signal,
    onToken(token) {
      reply += token;
      out.write(token);
    },
  }).catch((err) => {
    if (reply && !reply.endsWith("\n")) out.write("\n");
    if (isAbort(err, signal)) {
      throw new HarveyError("Interrupted: the summary is incomplete and the history was kept");
    }
    throw err instanceof HarveyError ? err : new HarveyError(describeError(err));
  });
  if (reply && !reply.endsWith("\n")) out.write("\n");
  const line = `${summary.tokens} tokens in ${summary.requests} request${
    summary.requests === 1 ? "" : "s"
  } · ${(summary.ms / 1000).toFixed(1)}s`;
  agent.err.write(`${line}\n`);
  agent.clearHistory();
  agent.addMessage("user", `${SUMMARY_LABEL}\n\n${summary.text}`);
  await agent.recorder?.turn("/summarize", summary.text, line);
  out.write(
    `✓ ${conversation.length} message${
      conversation.length === 1 ? "" : "s"
    } replaced by the summary (pinned context kept)\n`,
  );
}

/** `/summarize` */
export const summarizeCommand: CommandHandler = {
  run: (agent, _args, out, ctx) => run(agent, ctx.signal, out),
};
