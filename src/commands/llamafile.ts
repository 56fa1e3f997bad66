/**
 * `/llamafile`: the llamafile registry (list, add, use, start, stop, status, remove, rename),
 * how a registered llamafile is started, adopted or found running, and the start-up check of
 * the active one.
 *
 * @module
 */
import { basename } from "node:path";
import type { Agent } from "../agent.ts";
import type { ModelEntry } from "../config/schema.ts";
import { describeError, HarveyError } from "../errors.ts";
import { OpenAICompatClient } from "../llm/openai_compat.ts";
import { llamafileName, llamafileSpec } from "../runtime/llamafile.ts";
import { findFreePort, probeReady } from "../runtime/probe.ts";
import type { RunningServer } from "../runtime/server.ts";
import { PortInUseError } from "../runtime/supervisor.ts";
import type { LLMClient, Output } from "../types.ts";
import {
  currentServer,
  LLAMAFILE_KIND,
  type LocalBackend,
  LocalModelSource,
  localSources,
  ModelRegistry,
  sessionEntry,
  stopCurrentServer,
} from "./model_registry.ts";
import { registryCommand } from "./registry_command.ts";
import type { CommandSpec } from "./registry.ts";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/**
 * The port a llamafile is started on: the port of `llamafile.url` when it names this machine
 * (8080 by default), otherwise undefined (a free port is used).
 *
 * @example
 * ```ts
 * loopbackPort("http://localhost:8080"); // 8080
 * loopbackPort("http://10.0.0.5:8080"); // undefined
 * ```
 */
export function loopbackPort(url: string): number | undefined {
  try {
    const u = new URL(url);
    if (!LOOPBACK.has(u.hostname)) return undefined;
    return Number(u.port || (u.protocol === "https:" ? 443 : 80));
  } catch {
    return undefined;
  }
}

/** Whether a `/v1/models` id names the model of the llamafile at `abs`. */
function servesModel(id: string, abs: string): boolean {
  const bare = basename(id).replace(/\.(gguf|llamafile)$/i, "").toLowerCase();
  return bare === llamafileName(abs).toLowerCase();
}

/** The client of a llamafile server; closing it stops the server unless it is still in use. */
function clientFor(agent: Agent, server: RunningServer, name: string): LLMClient {
  return new OpenAICompatClient({
    baseUrl: server.url,
    model: name,
    label: "llamafile",
    timeoutMs: agent.config.config.request_timeout,
    onClose: async () => {
      const now = agent.client;
      if (now instanceof OpenAICompatClient && now.baseUrl === server.url) return;
      await server.stop();
    },
  });
}

/**
 * A llamafile of `abs` that is running already: one a Harvey started (its pid file), or
 * whatever answers on `port` when it serves the same model.
 */
async function findRunning(
  agent: Agent,
  abs: string,
  port: number | undefined,
): Promise<RunningServer | undefined> {
  const adopted = await agent.supervisor.adopt("llamafile", abs);
  if (adopted || port === undefined) return adopted;
  const use = await agent.supervisor.inspectPort(port);
  if (use?.occupant.kind === "openai" && use.occupant.models.some((id) => servesModel(id, abs))) {
    return await agent.supervisor.attach("llamafile", `http://127.0.0.1:${port}`);
  }
  return undefined;
}

/**
 * Starts the llamafile of `entry` (or uses it when it runs already) and returns a client for
 * it. It starts on the port of `llamafile.url`; when something else answers there, that is
 * said and a free port is offered (taken without asking when `ask` is false).
 */
export async function connectLlamafile(
  agent: Agent,
  entry: ModelEntry,
  opts: { out: Output; ask: boolean; announce?: string },
): Promise<LLMClient> {
  const { out } = opts;
  const registry = new ModelRegistry(agent, LLAMAFILE_KIND);
  const abs = await registry.checkFile(entry.path);
  let port = loopbackPort(agent.settings.llamafileUrl);
  const running = await findRunning(agent, abs, port);
  if (running) return clientFor(agent, running, entry.name);
  await stopCurrentServer(agent, out, { keepPath: abs });
  const sup = agent.supervisor;
  for (const s of sup.servers) {
    if (s.backend === "llamafile" && s.port === port && s.owned) {
      out.write(`Stopping ${registry.findByPath(s.modelPath ?? "")?.name ?? s.model}...\n`);
      await s.stop();
    }
  }
  port ??= findFreePort();
  const use = await sup.inspectPort(port);
  if (use) {
    const free = findFreePort();
    out.write(`✗ Port ${port} is already in use by ${use.description}\n`);
    if (opts.ask) {
      if (!await agent.asker.confirm(`Start ${entry.name} on port ${free} instead?`)) {
        throw new PortInUseError(use, free);
      }
    } else out.write(`Using port ${free} instead.\n`);
    port = free;
  }
  out.write(opts.announce ?? `Starting ${entry.name}...\n`);
  const cfg = agent.config.config.llamafile;
  const server = await sup.start(
    llamafileSpec(abs, { port, ctxSize: cfg.ctx_size, gpuLayers: cfg.gpu_layers }),
  );
  return clientFor(agent, server, entry.name);
}

/** The llamafile way of bringing up a registered model. */
export function llamafileBackend(agent: Agent): LocalBackend {
  return { connect: (entry, out, opts) => connectLlamafile(agent, entry, { ...opts, out }) };
}

/** Registered llamafiles as `/model` candidates, with the `--llamafile PATH` of this session. */
export function llamafileSource(agent: Agent, sessionPath?: string): LocalModelSource {
  return new LocalModelSource(
    new ModelRegistry(agent, LLAMAFILE_KIND),
    llamafileBackend(agent),
    sessionPath ? sessionEntry(sessionPath, LLAMAFILE_KIND.ext) : undefined,
  );
}

/** The llamafile given with `--llamafile PATH`, if any. */
function sessionLlamafile(agent: Agent): ModelEntry | undefined {
  return localSources(agent.sources).find((s) => s.registry.kind === LLAMAFILE_KIND)?.session;
}

/** Connects to `entry`, makes it the backend and says so. */
async function useLlamafile(
  agent: Agent,
  entry: ModelEntry,
  out: Output,
  opts: { ask: boolean; announce?: string },
): Promise<void> {
  const before = currentServer(agent);
  let client: LLMClient;
  try {
    client = await connectLlamafile(agent, entry, { ...opts, out });
  } catch (err) {
    // The old server may have been stopped already: do not leave a dead backend selected.
    if (before && !before.running) await agent.setClient(undefined);
    throw err;
  }
  await agent.setClient(client);
  out.write(`✓ Using model: ${entry.name}\n`);
}

/**
 * Start-up with an active llamafile (`llamafile.active`, or the registered llamafile `name`):
 * checks whether it runs, asks to start it when not (`ask` false: starts it without asking),
 * and selects it. Returns true when it became the backend.
 */
export async function checkActiveLlamafile(
  agent: Agent,
  out: Output,
  opts: { ask: boolean; name?: string },
): Promise<boolean> {
  const registry = new ModelRegistry(agent, LLAMAFILE_KIND);
  const name = opts.name ?? registry.active;
  if (!name) return false;
  const entry = registry.find(name);
  if (!entry) {
    out.write(
      `⚠ llamafile.active is "${name}", but no llamafile is registered under that name (/llamafile list)\n`,
    );
    return false;
  }
  out.write(`Checking llamafile (${name}) at ${agent.settings.llamafileUrl}...\n`);
  try {
    const abs = await registry.checkFile(entry.path);
    const running = await findRunning(agent, abs, loopbackPort(agent.settings.llamafileUrl));
    if (running) {
      out.write(`✓ Llamafile is running\n`);
      await agent.setClient(clientFor(agent, running, name));
      out.write(`✓ Using model: ${name}\n`);
      return true;
    }
    out.write("✗ Llamafile is not running\n");
    if (opts.ask && !await agent.asker.confirm(`Start ${name} now?`)) return false;
    await useLlamafile(agent, entry, out, { ask: opts.ask, announce: "Starting llamafile...\n" });
    return true;
  } catch (err) {
    out.write(`✗ ${describeError(err)}\n`);
    return false;
  }
}

/** Start-up with `--llamafile PATH`: starts it for this session; nothing is saved. */
export async function startSessionLlamafile(
  agent: Agent,
  out: Output,
  opts: { ask: boolean },
): Promise<boolean> {
  const entry = sessionLlamafile(agent);
  if (!entry) return false;
  await useLlamafile(agent, entry, out, { ask: opts.ask, announce: "Starting llamafile...\n" });
  return true;
}

async function status(agent: Agent, registry: ModelRegistry, out: Output): Promise<void> {
  const server = agent.supervisor.servers.find((s) => s.backend === "llamafile" && s.running);
  const url = server?.url ?? agent.settings.llamafileUrl;
  const ready = await probeReady(url, { timeoutMs: 1_500 });
  const session = sessionLlamafile(agent);
  const n = registry.entries.length;
  out.write(`Active model:  ${registry.active ?? "none"}\n`);
  if (session) out.write(`This session:  ${session.name} (--llamafile, not saved)\n`);
  out.write(`API URL:       ${url}\n`);
  let reach = ready.state === "ready" ? "yes" : ready.state === "loading" ? "loading" : "no";
  if (server) {
    const who = server.owned ? "started by Harvey" : "not started by this session";
    reach += ` (${server.model}${server.pid ? `, pid ${server.pid}` : ""}, ${who}${
      server.nCtx ? `, n_ctx ${server.nCtx}` : ""
    })`;
  }
  out.write(`Reachable:     ${reach}\n`);
  out.write(`Models dir:    ${registry.shown(agent.settings.modelsDir)}\n`);
  out.write(`Registered:    ${n} model${n === 1 ? "" : "s"}\n`);
}

async function stop(agent: Agent, registry: ModelRegistry, out: Output): Promise<void> {
  const servers = agent.supervisor.servers.filter((s) => s.backend === "llamafile");
  if (!servers.length) {
    out.write("No llamafile started by Harvey is running.\n");
    return;
  }
  for (const s of servers) {
    const name = registry.findByPath(s.modelPath ?? "")?.name ?? s.model;
    if (!s.owned) {
      out.write(`${name} at ${s.url} was not started by this session; it is left running.\n`);
      continue;
    }
    out.write(`Stopping ${name}...\n`);
    const inUse = currentServer(agent) === s;
    await s.stop();
    if (inUse) await agent.setClient(undefined);
    out.write(`Stopped ${name}.\n`);
  }
}

async function start(
  agent: Agent,
  registry: ModelRegistry,
  name: string | undefined,
  out: Output,
): Promise<void> {
  const entry = name ? registry.get(name) : sessionLlamafile(agent) ??
    (registry.active ? registry.get(registry.active) : undefined);
  if (!entry) {
    throw new HarveyError(
      "No active llamafile — /llamafile use NAME selects one, /llamafile start NAME starts one",
    );
  }
  const server = currentServer(agent);
  if (server && server.modelPath === await registry.checkFile(entry.path)) {
    out.write(`${entry.name} is already running at ${server.url}.\n`);
    return;
  }
  await useLlamafile(agent, entry, out, { ask: true });
}

/** `/llamafile list|add|use|start|stop|status|remove|rename` */
export const llamafileCommand: CommandSpec = registryCommand({
  kind: LLAMAFILE_KIND,
  summary: "Register llamafiles, switch among them, start and stop their servers",
  use: (agent, entry, out, { firstAdd }) =>
    useLlamafile(agent, entry, out, {
      ask: true,
      announce: firstAdd ? "Starting llamafile...\n" : undefined,
    }),
  start,
  stop,
  status,
});
