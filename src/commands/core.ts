/**
 * The session commands: /help, /status, /clear, /exit.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { UsageError } from "../errors.ts";
import { replyReserve } from "../llm/budget.ts";
import { estimateTokens } from "../llm/tokens.ts";
import { nearWords } from "../util/edit_distance.ts";
import type { CommandHandler } from "./registry.ts";

/** `/help [COMMAND]` */
export const helpCommand: CommandHandler = {
  complete: (agent) => agent.commands.list().map((c) => c.name),
  run(agent, args, out) {
    if (args[0]) {
      const spec = agent.commands.get(args[0]);
      if (!spec) {
        const name = args[0].replace(/^\//, "");
        const near = nearWords(name, agent.commands.list().map((c) => c.name));
        const hint = near.length ? ` — did you mean ${near.map((n) => `/${n}`).join(", ")}?` : "";
        throw new UsageError(`Unknown command /${name}${hint}`);
      }
      out.write(`${spec.summary}\n`);
      for (const u of spec.usage) out.write(`  ${u}\n`);
      if (spec.aliases?.length) {
        out.write(`  Also: ${spec.aliases.map((a) => `/${a}`).join(" ")}\n`);
      }
      return Promise.resolve();
    }
    out.write("Commands:\n");
    const width = Math.max(...agent.commands.list().map((c) => c.name.length)) + 2;
    for (const c of agent.commands.list()) {
      out.write(`  /${c.name.padEnd(width)}${c.summary}\n`);
    }
    out.write(
      "\nAlso: !COMMAND runs a command, @ROUTE PROMPT asks a named route, anything else is a prompt.\n" +
        "Keys: Tab completes commands and paths; a paste stays one prompt; Ctrl-J adds a line;\n" +
        "Ctrl-X Ctrl-E edits the line in $EDITOR; Ctrl-C stops a reply, clears the line or\n" +
        "cancels a question (so do Esc and Ctrl-D); Ctrl-D on an empty line or /exit leaves.\n",
    );
    return Promise.resolve();
  },
};

/**
 * The lines of `/status` about the conversation and the session; `usage` is the measured size
 * of the history (the token budget's count), else an estimate is shown.
 */
export function statusLines(agent: Agent, usage?: { used: number; window?: number }): string[] {
  const tokens = usage?.used ?? estimateTokens(agent.history);
  const window = usage?.window ?? agent.contextWindow;
  const use = window
    ? ` (${Math.round((tokens / window) * 100)}% of the ${window}-token window)`
    : "";
  const client = agent.client;
  const reserve = window
    ? `, ${replyReserve(window, agent.config.config.context.reply_reserve)} kept for each reply`
    : "";
  const n = agent.history.length;
  return [
    `Backend:   ${client ? client.name : "none — /model, /ollama start or /llamafile add"}`,
    `Context:   ${
      window ? `${window} tokens (n_ctx reported by the server)${reserve}` : "unknown"
    }`,
    `History:   ${n} message${n === 1 ? "" : "s"}, ${
      usage?.window ? "" : "~"
    }${tokens} tokens${use}`,
    `Pinned:    ${agent.pinned ? `${agent.pinned.length} characters` : "none"}`,
    `Workspace: ${agent.workspace.root}`,
    `Recording: ${agent.recorder ? agent.recorder.displayPath : "off"}`,
  ];
}

/**
 * The history measured by the token budget against the backend's window, when the backend
 * tells its window (a server that starts with the first message is not started for this).
 */
async function measuredHistory(
  agent: Agent,
): Promise<{ used: number; window?: number } | undefined> {
  const client = agent.client;
  if (!client || !agent.budget) return undefined;
  try {
    const window = await client.contextWindow?.();
    agent.rememberWindow(client, window);
    if (!window) return undefined;
    return { used: await agent.budget.measure(agent.history, client), window };
  } catch {
    return undefined;
  }
}

/** `/status` */
export const statusCommand: CommandHandler = {
  async run(agent, _args, out) {
    for (const line of statusLines(agent, await measuredHistory(agent))) out.write(`${line}\n`);
  },
};

/** `/clear` */
export const clearCommand: CommandHandler = {
  run(agent, _args, out) {
    agent.clearHistory();
    out.write("History cleared.\n");
    return Promise.resolve();
  },
};

/** `/exit`, `/quit`, `/bye` */
export const exitCommand: CommandHandler = {
  run(agent, _args, out) {
    agent.exitRequested = true;
    out.write("Bye.\n");
    return Promise.resolve();
  },
};
