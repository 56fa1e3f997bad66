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
import { CancelledError, HarveyError } from "../errors.ts";
import { LazyServerClient } from "../llm/lazy_server_client.ts";
import { llamafileName, llamafileSpec } from "../runtime/llamafile.ts";
import { findFreePort, probeReady } from "../runtime/probe.ts";
import type { RunningServer } from "../runtime/server.ts";
import { PortInUseError } from "../runtime/supervisor.ts";
import type { LLMClient, Output } from "../types.ts";
import { waitIndicator } from "../repl/spinner.ts";
import {
  type ConnectOptions,
  currentServer,
  keptModel,
  LLAMAFILE_KIND,
  type LocalBackend,
  LocalModelSource,
  localSources,
  ModelRegistry,
  sessionEntry,
  switchTo,
} from "./model_registry.ts";
import { registryCommand } from "./registry_command.ts";
import type { CommandHandler } from "./registry.ts";

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

/** The llamafile each client of this module serves (its absolute path). */
const served = new WeakMap<LLMClient, string>();

/**
 * The client of a llamafile server that is ready. When the server dies, the next message
 * starts it again (said on the session's diagnostics); closing the client stops it.
 */
async function llamafileClient(
  agent: Agent,
  entry: ModelEntry,
  opts: { abs: string; server: RunningServer },
): Promise<LLMClient> {
  let ready: RunningServer | undefined = opts.server;
  const client: LazyServerClient = new LazyServerClient({
    model: entry.name,
    label: "llamafile",
    timeoutMs: agent.config.config.request_timeout,
    start: async (signal) => {
      const given = ready;
      ready = undefined;
      if (given?.running) return given;
      // This runs inside a turn, under its spinner: on a terminal, its line is erased first.
      const erase = Deno.stdout.isTerminal() && Deno.stderr.isTerminal() ? "\r\x1b[2K" : "";
      agent.err.write(
        `${erase}⚠ The llamafile server of ${entry.name} has stopped; starting it again\n`,
      );
      return await startServer(agent, entry, { abs: opts.abs, out: agent.err, ask: false, signal });
    },
    // A restarted server may have another n_ctx: read it into the session.
    onStart: async () => {
      if (agent.client === client) await agent.setClient(client);
    },
  });
  served.set(client, opts.abs);
  // Hands the server over at once, and loads the HTTP SDK while the user types.
  (await client.ensureStarted()).warm().catch(() => {});
  return client;
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
 * Starts the llamafile `abs` on the port of `llamafile.url`. When a model of this session has
 * that port, a free port is used (the old model keeps running until this one is ready); when
 * something else answers there, that is said and a free port is offered (taken without asking
 * when `ask` is false). Ctrl-C (`signal`) stops the start.
 */
async function startServer(
  agent: Agent,
  entry: ModelEntry,
  opts: ConnectOptions & { abs: string; out: Output },
): Promise<RunningServer> {
  const { out } = opts;
  const sup = agent.supervisor;
  let port = loopbackPort(agent.settings.llamafileUrl) ?? findFreePort();
  const use = await sup.inspectPort(port);
  if (use) {
    const free = findFreePort();
    const ours = sup.servers.some((s) => s.port === port && s.owned && s.running);
    if (!ours) {
      out.write(`✗ Port ${port} is already in use by ${use.description}\n`);
      if (opts.ask) {
        if (!await agent.asker.confirm(`Start ${entry.name} on port ${free} instead?`)) {
          throw new PortInUseError(use, free);
        }
      } else out.write(`Using port ${free} instead.\n`);
    }
    port = free;
  }
  const cfg = agent.config.config.llamafile;
  const wait = waitIndicator(out, {
    message: opts.announce ?? `Starting ${entry.name}`,
    terminal: opts.terminal,
    color: agent.settings.color,
  });
  try {
    return await sup.start(
      llamafileSpec(opts.abs, { port, ctxSize: cfg.ctx_size, gpuLayers: cfg.gpu_layers }),
      { signal: opts.signal, onProgress: (text) => wait.detail(text) },
    );
  } catch (err) {
    if (opts.signal?.aborted) {
      throw new CancelledError(`Cancelled: ${entry.name} was not started (its server is stopped)`);
    }
    throw err;
  } finally {
    wait.stop();
  }
}

/**
 * A client for the llamafile of `entry`: the current backend when it serves that file already,
 * else a server running it (adopted, or found on the port), else one started now. The current
 * model keeps running until the new one is ready.
 */
export async function connectLlamafile(
  agent: Agent,
  entry: ModelEntry,
  opts: ConnectOptions & { out: Output },
): Promise<LLMClient> {
  const registry = new ModelRegistry(agent, LLAMAFILE_KIND);
  const abs = await registry.checkFile(entry.path);
  const current = agent.client;
  if (current && served.get(current) === abs && currentServer(agent)?.running) return current;
  const running = await findRunning(agent, abs, loopbackPort(agent.settings.llamafileUrl));
  const server = running ?? await startServer(agent, entry, { ...opts, abs });
  return await llamafileClient(agent, entry, { abs, server });
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

/**
 * Connects to `entry` and makes it the backend, saying so. The model in use stops only once
 * the new one is ready; when the new one fails, the old one stays (and the error says so).
 */
async function useLlamafile(
  agent: Agent,
  entry: ModelEntry,
  out: Output,
  opts: ConnectOptions,
): Promise<void> {
  let client: LLMClient;
  try {
    client = await connectLlamafile(agent, entry, { ...opts, out });
  } catch (err) {
    throw keptModel(agent, err);
  }
  await switchTo(agent, client, { out, name: entry.name });
}

/** What start-up did with the active llamafile. */
export type ActiveOutcome = "selected" | "declined" | "none";

/**
 * Start-up with an active llamafile (`llamafile.active`, or the registered llamafile `name`):
 * uses it when it runs; otherwise asks to start it when `ask` is set (a person at a terminal),
 * or starts it without asking and says so (scripts, `-p`). Throws when it cannot be had.
 */
export async function checkActiveLlamafile(
  agent: Agent,
  out: Output,
  opts: { ask: boolean; name?: string; signal?: AbortSignal; terminal?: boolean },
): Promise<ActiveOutcome> {
  const registry = new ModelRegistry(agent, LLAMAFILE_KIND);
  const name = opts.name ?? registry.active;
  if (!name) return "none";
  const entry = registry.find(name);
  if (!entry) {
    out.write(
      `⚠ llamafile.active is "${name}", but no llamafile is registered under that name (/llamafile list)\n`,
    );
    return "none";
  }
  out.write(`Checking llamafile (${name}) at ${agent.settings.llamafileUrl}...\n`);
  const abs = await registry.checkFile(entry.path);
  const running = await findRunning(agent, abs, loopbackPort(agent.settings.llamafileUrl));
  if (running) {
    out.write(`✓ Llamafile is running\n`);
    await switchTo(agent, await llamafileClient(agent, entry, { abs, server: running }), {
      out,
      name,
    });
    return "selected";
  }
  out.write("✗ Llamafile is not running\n");
  if (opts.ask && !await agent.asker.confirm(`Start ${name} now?`)) return "declined";
  await useLlamafile(agent, entry, out, {
    ask: opts.ask,
    signal: opts.signal,
    terminal: opts.terminal,
    announce: opts.ask
      ? "Starting llamafile"
      : `Starting ${name}, the active llamafile, without asking (no terminal to ask at)`,
  });
  return "selected";
}

/** Start-up with `--llamafile PATH`: starts it for this session; nothing is saved. */
export async function startSessionLlamafile(
  agent: Agent,
  out: Output,
  opts: { ask: boolean; signal?: AbortSignal; terminal?: boolean },
): Promise<boolean> {
  const entry = sessionLlamafile(agent);
  if (!entry) return false;
  await useLlamafile(agent, entry, out, { ...opts, announce: "Starting llamafile" });
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
  opts: ConnectOptions & { out: Output; name?: string },
): Promise<void> {
  const { name, out } = opts;
  const entry = name ? registry.get(name) : sessionLlamafile(agent) ??
    (registry.active ? registry.get(registry.active) : undefined);
  if (!entry) {
    throw new HarveyError(
      "No active llamafile — /llamafile use NAME selects one, /llamafile start NAME starts one",
    );
  }
  const server = currentServer(agent);
  const current = agent.client;
  if (server && current && served.get(current) === await registry.checkFile(entry.path)) {
    out.write(`${entry.name} is already running at ${server.url}.\n`);
    return;
  }
  await useLlamafile(agent, entry, out, opts);
}

/** `/llamafile list|add|use|start|stop|status|remove|rename` */
export const llamafileCommand: CommandHandler = registryCommand({
  kind: LLAMAFILE_KIND,
  use: (agent, entry, { firstAdd, out, ...opts }) =>
    useLlamafile(agent, entry, out, {
      ...opts,
      announce: firstAdd ? "Starting llamafile" : undefined,
    }),
  start,
  stop,
  status,
});
