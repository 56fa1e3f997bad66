/**
 * `/model`: list every usable model from every source, and switch among them.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { OpenAICompatClient } from "../llm/openai_compat.ts";
import { discoverModels, findCandidate, type ModelCandidate } from "../llm/catalog.ts";
import type { Output } from "../types.ts";
import { keptModel, switchTo } from "./model_registry.ts";
import type { CommandHandler } from "./registry.ts";

/** How long `/model` waits for a source before listing without it. */
export const PROBE_TIMEOUT_MS = 1500;

/** Connects to `candidate`, makes it the backend and says so. */
export async function useCandidate(
  agent: Agent,
  candidate: ModelCandidate,
  out: Output,
  opts: { save?: boolean; signal?: AbortSignal; terminal?: boolean } = {},
): Promise<void> {
  let client;
  try {
    client = await candidate.connect({ signal: opts.signal, terminal: opts.terminal });
  } catch (err) {
    throw keptModel(agent, err);
  }
  // Load the HTTP SDK now, while the user types, so the first reply does not wait for it.
  if (client instanceof OpenAICompatClient) client.warm().catch(() => {});
  await switchTo(agent, client, { out, name: candidate.model, note: candidate.source });
  if (opts.save && agent.config.config.model !== candidate.model) {
    try {
      await agent.config.update([[["model"], candidate.model]]);
    } catch (err) {
      agent.err.write(`Not saved: ${err instanceof Error ? err.message : err}\n`);
    }
  }
}

/** `/model [NAME]`, `/model use NAME`, `/model list` */
export const modelCommand: CommandHandler = {
  subcommands: ["list", "use"],
  async complete(agent, args) {
    if (args.length > 1 || (args.length === 1 && args[0] !== "use")) return [];
    const { candidates } = await discoverModels(agent.sources, { timeoutMs: 500 });
    const names = candidates.map((c) => c.model);
    return args.length === 0 ? ["list", "use", ...names] : names;
  },
  async run(agent, args, out, ctx) {
    const name = args[0] === "use" ? args[1] : args[0] === "list" ? undefined : args[0];
    if (args[0] === "use" && !name) throw new HarveyError("Usage: /model use NAME");
    const { candidates, down } = await discoverModels(agent.sources, {
      timeoutMs: PROBE_TIMEOUT_MS,
    });
    if (!name) {
      if (!candidates.length) {
        out.write("No models found.\n");
        for (const d of down) out.write(`  ✗ ${d.source}: ${d.reason}\n`);
        out.write("  → /ollama start, /llamafile add, or /llamacpp add to get one\n");
        return;
      }
      const current = agent.client?.model;
      out.write("Models:\n");
      for (const c of candidates) {
        out.write(`${c.model === current ? "→" : " "} ${c.label}\n`);
      }
      for (const d of down) out.write(`  (${d.source}: ${d.reason})\n`);
      return;
    }
    const found = findCandidate(candidates, name);
    if (!found) {
      const list = candidates.map((c) => c.model).join(", ") || "none";
      throw new HarveyError(`No model named "${name}" — available: ${list}`);
    }
    await useCandidate(agent, found, out, {
      save: true,
      signal: ctx.signal,
      terminal: ctx.terminal,
    });
  },
};
