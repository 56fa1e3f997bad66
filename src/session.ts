/**
 * Building a session: workspace, configuration, settings, system prompt, commands, sources.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { Agent } from "./agent.ts";
import { createRegistry } from "./commands/index.ts";
import { loadSystemPrompt } from "./config/harvey_md.ts";
import { type Flags, resolveSettings } from "./config/settings.ts";
import { ConfigStore } from "./config/store.ts";
import { HarveyError } from "./errors.ts";
import type { ModelSource } from "./llm/catalog.ts";
import { ollamaSource, openaiServerSource } from "./llm/sources.ts";
import type { Asker, Output } from "./types.ts";
import { Workspace } from "./workspace.ts";

/** What a session is built from. */
export interface SessionOptions {
  flags: Flags;
  env: Record<string, string>;
  cwd: string;
  asker: Asker;
  /** Warnings about the configuration go here. */
  err: Output;
}

/** Builds the agent of one session; nothing is probed or started yet. */
export async function createSession(opts: SessionOptions): Promise<Agent> {
  const root = resolve(opts.cwd, opts.flags.workdir ?? ".");
  let workspace: Workspace;
  try {
    workspace = await Workspace.open(root);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new HarveyError(`Workspace folder ${root} does not exist (check -w/--workdir)`);
    }
    throw err;
  }
  const [config, report] = await ConfigStore.load(join(workspace.root, "agents", "harvey.yaml"), {
    root: workspace.root,
  });
  for (const w of report.warnings) opts.err.write(`⚠ ${w}\n`);
  const settings = resolveSettings(config.config, {
    flags: opts.flags,
    env: opts.env,
    root: workspace.root,
  });
  const agent = new Agent({
    workspace,
    config,
    settings,
    asker: opts.asker,
    commands: createRegistry(),
    systemPrompt: await loadSystemPrompt(workspace.root),
    env: opts.env,
    err: opts.err,
  });
  agent.sources = defaultSources(agent, opts.flags);
  return agent;
}

/** Ollama, and the OpenAI-compatible server at the llamafile URL (first with `--llamafile-url`). */
export function defaultSources(agent: Agent, flags: Flags): ModelSource[] {
  const timeoutMs = agent.config.config.request_timeout;
  const server = openaiServerSource(agent.settings.llamafileUrl, { label: "llamafile", timeoutMs });
  const ollama = ollamaSource(agent.settings.ollamaUrl, timeoutMs);
  return flags.llamafileUrl ? [server] : [ollama, server];
}
