/**
 * `/llamacpp`: the GGUF registry served by llama.cpp. A selected model gets a request-scoped
 * `llama-server`: it starts with the first message, stays warm for the session, and stops on
 * a switch or at exit. Without llama-server, every turn runs the one-shot `llama-cli`.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import type { ModelEntry } from "../config/schema.ts";
import { CancelledError, describeError, HarveyError } from "../errors.ts";
import { LazyServerClient } from "../llm/lazy_server_client.ts";
import {
  buildNumber,
  findOneShot,
  FIRST_CHAT_ONLY_BUILD,
  LlamaCliClient,
  type OneShotProgram,
  programVersion,
} from "../llm/llama_cli.ts";
import { startLlamaServer } from "../runtime/llama_server.ts";
import { slotSavePath } from "../session/warm.ts";
import { findOnPath, isExecutable } from "../runtime/spawn.ts";
import type { LLMClient, Output } from "../types.ts";
import { waitIndicator } from "../repl/spinner.ts";
import {
  type ConnectOptions,
  currentServer,
  GGUF_KIND,
  keptModel,
  type LocalBackend,
  LocalModelSource,
  localSources,
  ModelRegistry,
  sessionEntry,
  switchTo,
} from "./model_registry.ts";
import { registryCommand } from "./registry_command.ts";
import type { CommandHandler } from "./registry.ts";

/** The context size llama-server and llama-cli are given when `llamacpp.ctx_size` is unset. */
export const DEFAULT_GGUF_CTX = 8192;

/** Sessions already told that the one-shot fallback is in use. */
const toldOneShot = new WeakSet<Agent>();

/** Where a GGUF client's server reports its load progress while a command waits for it. */
const progressOf = new WeakMap<LazyServerClient, { report?: (text: string) => void }>();

/** The llama-server program of `llamacpp.server_bin`, when it can be found. */
export function findLlamaServer(agent: Agent): string | undefined {
  const bin = agent.config.config.llamacpp.server_bin;
  if (bin.includes("/")) return isExecutable(bin) ? bin : undefined;
  return findOnPath(bin, agent.env.PATH ?? "");
}

/** The one-shot program to fall back on; throws when it is a chat-only `llama-cli`. */
async function usableOneShot(agent: Agent): Promise<OneShotProgram | undefined> {
  const program = findOneShot(agent.config.config.llamacpp.cli_bin, agent.env.PATH ?? "");
  if (!program || program.name === "llama-completion") return program;
  const build = buildNumber(await programVersion(program.path));
  if (build !== undefined && build >= FIRST_CHAT_ONLY_BUILD) {
    throw new HarveyError(
      `${program.path} is llama.cpp build ${build}, whose llama-cli is an interactive chat only; ` +
        "install llama-server (same llama.cpp package) or put llama-completion on PATH",
    );
  }
  return program;
}

/**
 * A client for the GGUF model of `entry`: a llama-server that starts with the first message,
 * or the one-shot llama-cli when llama-server is not installed (said once per session).
 */
export async function connectGguf(
  agent: Agent,
  entry: ModelEntry,
  opts: { out: Output },
): Promise<LLMClient> {
  const { out } = opts;
  const registry = new ModelRegistry(agent, GGUF_KIND);
  const abs = await registry.checkFile(entry.path);
  const cfg = agent.config.config.llamacpp;
  // 0 asks llama.cpp for the model's own context size, read back once the server runs.
  const ctxSize = cfg.ctx_size ?? DEFAULT_GGUF_CTX;
  const serverBin = findLlamaServer(agent);
  if (serverBin) {
    const progress: { report?: (text: string) => void } = {};
    const client: LazyServerClient = new LazyServerClient({
      model: entry.name,
      label: "llama-server",
      ctxSize: ctxSize || undefined,
      timeoutMs: agent.config.config.request_timeout,
      start: (signal) =>
        startLlamaServer(agent.supervisor, abs, {
          binary: serverBin,
          ctxSize,
          gpuLayers: cfg.gpu_layers,
          extraArgs: cfg.extra_args,
          slotSavePath: slotSavePath(agent),
          signal,
          onProgress: (text) => progress.report?.(text),
        }),
      // The real n_ctx is known once the server runs: read it into the session.
      onStart: async () => {
        if (agent.client === client) await agent.setClient(client);
      },
    });
    progressOf.set(client, progress);
    return client;
  }
  const program = await usableOneShot(agent);
  if (!program) {
    throw new HarveyError(
      `Neither ${cfg.server_bin} nor ${cfg.cli_bin} was found on PATH; install llama.cpp (harvey doctor tells how)`,
    );
  }
  if (!toldOneShot.has(agent)) {
    toldOneShot.add(agent);
    out.write(
      `${cfg.server_bin} was not found: every message runs ${program.name} once, ` +
        "loading the model each time (install llama.cpp's llama-server to keep it warm)\n",
    );
  }
  return new LlamaCliClient({
    program,
    modelPath: abs,
    model: entry.name,
    ctxSize,
    gpuLayers: cfg.gpu_layers,
    env: agent.env,
    sandbox: agent.sandbox,
  });
}

/**
 * Starts the llama-server of `client` now rather than with the first message, with a spinner
 * and the load progress on a terminal; Ctrl-C (`signal`) stops it.
 */
async function startNow(
  agent: Agent,
  client: LazyServerClient,
  opts: ConnectOptions & { out: Output },
): Promise<void> {
  const wait = waitIndicator(opts.out, {
    message: opts.announce ?? `Starting ${client.model}`,
    terminal: opts.terminal,
    color: agent.settings.color,
  });
  const progress = progressOf.get(client);
  if (progress) progress.report = (text) => wait.detail(text);
  try {
    await client.ensureStarted(opts.signal);
  } catch (err) {
    if (opts.signal?.aborted) {
      throw new CancelledError(
        `Cancelled: ${client.model} was not started (its server is stopped)`,
      );
    }
    throw err;
  } finally {
    if (progress) progress.report = undefined;
    wait.stop();
  }
}

/**
 * A client for `entry`. When a local server of the current model is running, the new server
 * starts now, so that a switch keeps the old model until the new one is ready; otherwise it
 * starts with the first message.
 */
async function prepareGguf(
  agent: Agent,
  entry: ModelEntry,
  opts: ConnectOptions & { out: Output },
): Promise<LLMClient> {
  const old = currentServer(agent);
  const client = await connectGguf(agent, entry, opts);
  if (client instanceof LazyServerClient && old?.running) {
    try {
      await startNow(agent, client, opts);
    } catch (err) {
      await client.close().catch(() => {});
      throw err;
    }
  }
  return client;
}

/** The llama.cpp way of bringing up a registered GGUF model. */
export function ggufBackend(agent: Agent): LocalBackend {
  return { connect: (entry, out, opts) => prepareGguf(agent, entry, { ...opts, out }) };
}

/** Registered GGUF models as `/model` candidates, with the `--gguf PATH` of this session. */
export function ggufSource(agent: Agent, sessionPath?: string): LocalModelSource {
  return new LocalModelSource(
    new ModelRegistry(agent, GGUF_KIND),
    ggufBackend(agent),
    sessionPath ? sessionEntry(sessionPath, GGUF_KIND.ext) : undefined,
  );
}

function sessionGguf(agent: Agent): ModelEntry | undefined {
  return localSources(agent.sources).find((s) => s.registry.kind === GGUF_KIND)?.session;
}

/**
 * Selects `entry` as the backend and says so; its server starts with the first message, or
 * now when a model runs already (which stops only once the new one is ready).
 */
async function useGguf(
  agent: Agent,
  entry: ModelEntry,
  opts: ConnectOptions & { out: Output },
): Promise<LLMClient> {
  const { out } = opts;
  const current = agent.client;
  if (
    current instanceof LazyServerClient && current.model === entry.name &&
    current.server?.modelPath === await new ModelRegistry(agent, GGUF_KIND).checkFile(entry.path)
  ) {
    out.write(`✓ Using model: ${entry.name} (llama-server is running at ${current.server.url})\n`);
    return current;
  }
  let client: LLMClient;
  try {
    client = await prepareGguf(agent, entry, opts);
  } catch (err) {
    throw keptModel(agent, err);
  }
  const server = client instanceof LazyServerClient ? client.server : undefined;
  const note = server
    ? `llama-server is running at ${server.url}`
    : client instanceof LazyServerClient
    ? "llama-server starts with the first message"
    : "one-shot llama-cli";
  await switchTo(agent, client, { out, name: entry.name, note });
  return client;
}

/**
 * Start-up: `--gguf PATH` for this session, else the GGUF model `name`, else the active one
 * (`llamacpp.active`). Nothing starts yet. Returns true when a model was selected.
 */
export async function selectStartupGguf(
  agent: Agent,
  out: Output,
  opts: { name?: string } = {},
): Promise<boolean> {
  const registry = new ModelRegistry(agent, GGUF_KIND);
  const wanted = opts.name ?? registry.active;
  const entry = sessionGguf(agent) ?? (wanted ? registry.find(wanted) : undefined);
  if (!entry) {
    if (registry.active) {
      out.write(
        `⚠ llamacpp.active is "${registry.active}", but no GGUF model is registered under that name (/llamacpp list)\n`,
      );
    }
    return false;
  }
  try {
    await useGguf(agent, entry, { ask: false, out });
    return true;
  } catch (err) {
    out.write(`✗ ${describeError(err)}\n`);
    return false;
  }
}

/** Whether `--gguf PATH` was given. */
export function hasSessionGguf(agent: Agent): boolean {
  return sessionGguf(agent) !== undefined;
}

function activeEntry(agent: Agent, registry: ModelRegistry, name?: string): ModelEntry {
  if (name) return registry.get(name);
  const entry = sessionGguf(agent) ?? (registry.active ? registry.get(registry.active) : undefined);
  if (!entry) {
    throw new HarveyError(
      "No active GGUF model — /llamacpp use NAME selects one, /llamacpp add registers one",
    );
  }
  return entry;
}

async function start(
  agent: Agent,
  registry: ModelRegistry,
  opts: ConnectOptions & { out: Output; name?: string },
): Promise<void> {
  const { out } = opts;
  const entry = activeEntry(agent, registry, opts.name);
  let client = agent.client;
  if (
    !(client instanceof LazyServerClient || client instanceof LlamaCliClient) ||
    client.model !== entry.name
  ) {
    client = await useGguf(agent, entry, opts);
  }
  if (!(client instanceof LazyServerClient)) {
    out.write(`${client.name.split(":")[0]} runs once per message; there is no server to start.\n`);
    return;
  }
  if (client.server) {
    out.write(`${entry.name} is already running at ${client.server.url}.\n`);
    return;
  }
  await startNow(agent, client, opts);
  const server = client.server!;
  out.write(
    `✓ llama-server is running at ${server.url}${server.nCtx ? ` (n_ctx ${server.nCtx})` : ""}\n`,
  );
}

async function stop(agent: Agent, out: Output): Promise<void> {
  const client = agent.client;
  if (!(client instanceof LazyServerClient) || !client.server) {
    out.write("No llama-server started by Harvey is running.\n");
    return;
  }
  out.write(`Stopping ${client.model}...\n`);
  await client.stop();
  out.write(`Stopped ${client.model}; it starts again with the next message.\n`);
}

function status(agent: Agent, registry: ModelRegistry, out: Output): void {
  const cfg = agent.config.config.llamacpp;
  const serverBin = findLlamaServer(agent);
  const oneShot = findOneShot(cfg.cli_bin, agent.env.PATH ?? "");
  const client = agent.client;
  const session = sessionGguf(agent);
  const n = registry.entries.length;
  out.write(`Active model:  ${registry.active ?? "none"}\n`);
  if (session) out.write(`This session:  ${session.name} (--gguf, not saved)\n`);
  out.write(`llama-server:  ${serverBin ?? `not found (${cfg.server_bin}) — see harvey doctor`}\n`);
  out.write(`One-shot:      ${oneShot?.path ?? `not found (${cfg.cli_bin})`}\n`);
  if (client instanceof LazyServerClient) {
    const s = client.server;
    out.write(
      `Running:       ${
        s
          ? `yes — ${client.model} at ${s.url}${s.pid ? `, pid ${s.pid}` : ""}${
            s.nCtx ? `, n_ctx ${s.nCtx}` : ""
          }`
          : `no — ${client.model} starts with the next message`
      }\n`,
    );
  } else if (client instanceof LlamaCliClient) {
    out.write(`Running:       ${client.model} through one-shot ${client.name.split(":")[0]}\n`);
  } else {
    out.write("Running:       no\n");
  }
  const ctx = cfg.ctx_size ?? DEFAULT_GGUF_CTX;
  out.write(`Context size:  ${ctx ? `${ctx} (-c)` : "the model's own (-c 0)"}\n`);
  out.write(`Models dir:    ${registry.shown(agent.settings.modelsDir)}\n`);
  out.write(`Registered:    ${n} model${n === 1 ? "" : "s"}\n`);
}

/** `/llamacpp list|add|use|start|stop|status|remove|rename` */
export const llamacppCommand: CommandHandler = registryCommand({
  kind: GGUF_KIND,
  use: async (agent, entry, opts) => void await useGguf(agent, entry, opts),
  start,
  stop: (agent, _registry, out) => stop(agent, out),
  status,
});
