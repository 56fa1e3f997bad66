/**
 * Building a session: workspace, configuration, settings, system prompt, commands, sources.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { Agent } from "./agent.ts";
import { createRegistry } from "./commands/index.ts";
import { llamafileSource } from "./commands/llamafile.ts";
import { ggufSource } from "./commands/llamacpp.ts";
import { loadSystemPrompt } from "./config/harvey_md.ts";
import { type Flags, resolveSettings } from "./config/settings.ts";
import { ConfigStore, type TrustPolicy } from "./config/store.ts";
import { type Finding, trustFile, TrustStore } from "./config/trust.ts";
import { HarveyError } from "./errors.ts";
import { processAlive } from "./runtime/pid_file.ts";
import { TokenBudget } from "./llm/budget.ts";
import type { ModelSource } from "./llm/catalog.ts";
import { ollamaSource, openaiServerSource } from "./llm/sources.ts";
import { Supervisor } from "./runtime/supervisor.ts";
import { routeClients } from "./routes/clients.ts";
import { AuditLog } from "./security/audit.ts";
import { pathGuard } from "./security/guard.ts";
import { Sandbox } from "./security/sandbox.ts";
import { secretRedactor } from "./security/redact.ts";
import type { Asker, Output } from "./types.ts";
import { Workspace } from "./workspace.ts";
import { startSession } from "./session/current.ts";
import { lazyImport } from "./util/lazy_import.ts";

/** What a session is built from. */
export interface SessionOptions {
  flags: Flags;
  env: Record<string, string>;
  cwd: string;
  asker: Asker;
  /** Warnings about the configuration go here. */
  err: Output;
  /**
   * The settings of the workspace's own `agents/harvey.yaml` that need trust (see
   * src/config/trust.ts): `ask` once in a terminal and remember the answer; `remembered`
   * (the default: headless, `-p`, subcommands) uses them only when they were trusted
   * before; `all` uses them (a caller that made the workspace itself, such as a test).
   */
  trust?: "ask" | "remembered" | "all";
}

const HOW_TO_TRUST = "start Harvey in a terminal in this workspace to review the file and trust it";

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
    // Through the sandbox: a harvey.yaml that is a symlink leading outside is not used.
    read: (path) => workspace.readFile(path).catch(nullIfMissing),
    write: (path, bytes) => workspace.writeFile(path, bytes),
    trust: trustPolicy(workspace, opts),
    alive: processAlive,
  });
  for (const w of report.warnings) opts.err.write(`⚠ ${w}\n`);
  const settings = resolveSettings(config.config, {
    flags: opts.flags,
    env: opts.env,
    root: workspace.root,
  });
  const sandbox = new Sandbox({
    root: workspace.root,
    env: opts.env,
    permissions: () => config.config.permissions,
  });
  const supervisor = new Supervisor({
    stateDir: join(workspace.root, "agents"),
    startupTimeoutMs: config.config.startup_timeout,
    env: opts.env,
    out: opts.err,
  });
  const agent = new Agent({
    workspace,
    config,
    settings,
    asker: opts.asker,
    commands: createRegistry(),
    systemPrompt: await loadSystemPrompt(workspace, { env: opts.env, sandbox, err: opts.err }),
    env: opts.env,
    err: opts.err,
    supervisor,
  });
  agent.onShutdown(() => supervisor.stopAll());
  agent.sandbox = sandbox;
  agent.onShutdown(() => sandbox.close());
  agent.audit = new AuditLog({
    file: join(workspace.root, "agents", "audit.jsonl"),
    redact: secretRedactor(opts.env),
    warn: opts.err,
  });
  agent.checkPath = pathGuard(agent);
  agent.budget = new TokenBudget();
  // The RAG store's code loads with the first prompt, not at start-up.
  agent.augmentPrompt = async (prompt, err, signal) =>
    await (await lazyImport<typeof import("./commands/rag.ts")>(
      new URL("./commands/rag.ts", import.meta.url),
    )).ragAugmentHook(agent)(prompt, err, signal);
  agent.sources = defaultSources(agent, opts.flags);
  // Registered llamafiles and GGUF models; `--llamafile`/`--gguf` for this session only.
  const { llamafile, gguf } = opts.flags;
  agent.sources.push(
    llamafileSource(agent, llamafile ? resolve(opts.cwd, llamafile) : undefined),
    ggufSource(agent, gguf ? resolve(opts.cwd, gguf) : undefined),
  );
  // `@name` turns: route clients are built on first use (only they hold keys), closed at exit.
  routeClients(agent);
  // The conversation is saved as it goes (agents/sessions/ID.jsonl).
  startSession(agent);
  return agent;
}

const nullIfMissing = (err: unknown) =>
  err instanceof Deno.errors.NotFound ? undefined : Promise.reject(err);

/** How this session decides the settings of `agents/harvey.yaml` that need trust. */
function trustPolicy(workspace: Workspace, opts: SessionOptions): TrustPolicy {
  // `-y` answers confirmations, never this question: a file cannot trust itself that way.
  const yes = opts.flags.yes === true && opts.trust === "ask";
  const mode = yes ? "remembered" : opts.trust ?? "remembered";
  const home = opts.env.HOME ?? "";
  const file = trustFile(opts.env);
  const outside = file !== undefined && !file.startsWith(`${workspace.root}/`);
  const ask = async (findings: Finding[]) => {
    if (file && !outside) {
      opts.err.write(
        `⚠ The trust file ${file} is inside this workspace, so it cannot vouch for it; set XDG_CONFIG_HOME to a folder outside to remember the answer\n`,
      );
    }
    opts.err.write("This workspace's agents/harvey.yaml asks for settings that need your trust:\n");
    for (const f of findings) opts.err.write(`  • ${f.key}: ${f.what}\n`);
    return await opts.asker.confirm("Trust this workspace's agents/harvey.yaml?", false);
  };
  return {
    mode,
    store: file && outside ? new TrustStore(file) : undefined,
    ask,
    root: workspace.root,
    home,
    howTo: yes ? `-y does not answer this question; ${HOW_TO_TRUST} without -y` : HOW_TO_TRUST,
  };
}

/** Ollama, and the OpenAI-compatible server at the llamafile URL (first with `--llamafile-url`). */
export function defaultSources(agent: Agent, flags: Flags): ModelSource[] {
  const timeoutMs = agent.config.config.request_timeout;
  const url = agent.settings.llamafileUrl;
  // The server's own key (llama-server --api-key), from LLAMA_API_KEY or llamafile.api_key_env.
  const keyEnv = agent.config.config.llamafile.api_key_env || "LLAMA_API_KEY";
  const apiKey = agent.env[keyEnv]?.trim() || undefined;
  const running = openaiServerSource(url, { label: "llamafile", timeoutMs, apiKey, keyEnv });
  // A registered llamafile this session runs at that URL is listed by its registry name by
  // the registry's own source: listing it here too would show one model twice.
  const server: ModelSource = {
    name: running.name,
    list: (signal) =>
      agent.supervisor.servers.some((s) => s.running && sameServer(s.url, url))
        ? Promise.resolve([])
        : running.list(signal),
  };
  const ollama = ollamaSource(agent.settings.ollamaUrl, {
    timeoutMs,
    numCtx: agent.config.config.ollama.num_ctx,
  });
  return flags.llamafileUrl ? [server] : [ollama, server];
}

/** True when two URLs reach the same loopback server (`localhost` and `127.0.0.1` alike). */
function sameServer(a: string, b: string): boolean {
  const loopback = (h: string) => ["localhost", "127.0.0.1", "[::1]", "::1"].includes(h);
  const ua = new URL(a);
  const ub = new URL(b);
  const host = (u: URL) => loopback(u.hostname) ? "loopback" : u.hostname;
  return host(ua) === host(ub) && (ua.port || "80") === (ub.port || "80");
}
