/**
 * What one input line means: a slash command, `!command`, `@route prompt` or a prompt.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import type { TurnIO } from "./turn.ts";
import { lazyImport } from "../util/lazy_import.ts";

/**
 * Runs one line of input, from the terminal or a headless script. A prompt loads the turn's
 * modules (the agent loop, the tools) the first time: a session that only runs commands, and
 * every start-up, goes without them.
 */
export async function handleLine(agent: Agent, line: string, io: TurnIO): Promise<void> {
  const text = line.trim();
  if (!text) return;
  // The spinner is drawn only on a terminal, and so are the commands' redrawn lines.
  const ctx = { signal: io.signal, terminal: io.spinner };
  if (text.startsWith("/")) {
    await agent.commands.dispatch(agent, text, io.out, ctx);
    return;
  }
  if (text.startsWith("!")) {
    if (!agent.commands.get("run")) throw new HarveyError("Shell commands are not available");
    await agent.commands.dispatch(agent, `/run ${text.slice(1)}`, io.out, ctx);
    return;
  }
  if (text.startsWith("@")) {
    const m = /^@(\S+)\s*(.*)$/s.exec(text)!;
    if (!agent.routeClient) {
      throw new HarveyError(`No route named @${m[1]} — add one with /route add`);
    }
    if (!m[2].trim()) throw new HarveyError(`Usage: @${m[1]} PROMPT`);
    const client = await agent.routeClient(m[1]);
    const { runPrompt } = await lazyImport<typeof import("./turn.ts")>(
      new URL("./turn.ts", import.meta.url),
    );
    await runPrompt(agent, m[2], io, { client, label: `[@${m[1]} · ${client.model}]` });
    return;
  }
  const { runPrompt } = await lazyImport<typeof import("./turn.ts")>(
    new URL("./turn.ts", import.meta.url),
  );
  await runPrompt(agent, text, io);
}
