/**
 * The one supervisor of local model servers (llamafile, llama-server, and any runtime that
 * speaks the OpenAI API on a port): start, wait until ready, adopt from a pid file, stop.
 *
 * @module
 */
import { basename, resolve } from "node:path";
import { HarveyError } from "../errors.ts";
import type { Output } from "../types.ts";
import { childEnv } from "../security/child_env.ts";
import { LogRing } from "./log_ring.ts";
import {
  processAlive,
  processCmdline,
  readRecords,
  type ServerRecord,
  writeRecord,
} from "./pid_file.ts";
import {
  describeOccupant,
  findFreePort,
  identifyServer,
  isPortFree,
  type PortOccupant,
  probeReady,
  readContextSize,
} from "./probe.ts";
import { type RunningServer, Server } from "./server.ts";
import {
  findOnPath,
  isExecRefusal,
  isExecutable,
  isWrapperExecRefusal,
  launch,
  type PidNamespace,
  pidNamespaceFinder,
} from "./spawn.ts";

/** What to start. The runtime files (`llamafile.ts`, `llama_server.ts`) build these. */
export interface ServerSpec {
  /** `llamafile`, `llama-server`, … (names the pid file and the messages). */
  backend: string;
  /** The program: a path, or a name looked up on PATH. */
  command: string;
  /** Its arguments, including `--host 127.0.0.1 --port PORT`. */
  args: string[];
  /** Display name of the model. */
  model: string;
  /** Path of the model file (for a llamafile, the llamafile itself). */
  modelPath: string;
  /** The port the arguments name; checked to be free before starting. */
  port: number;
  /** An Actually Portable Executable: run `sh COMMAND ARGS…` when the kernel refuses it. */
  ape?: boolean;
  /** Variables added to the filtered environment (e.g. `CUDA_VISIBLE_DEVICES`). */
  env?: Record<string, string>;
  cwd?: string;
}

/** Options of a {@linkcode Supervisor}. */
export interface SupervisorOptions {
  /** Where the pid files live: the workspace's `agents/` folder. */
  stateDir: string;
  /** How long a server may take to become ready (default 120 s). */
  startupTimeoutMs?: number;
  /** How long a server has to exit after SIGTERM before SIGKILL (default 3 s). */
  graceMs?: number;
  /** Environment the child's is filtered from (default: Harvey's own). */
  env?: Record<string, string>;
  /** Where notices go (a stale pid file removed, a server killed after the grace period). */
  out?: Output;
  /** Use `setpriv --pdeathsig KILL` when found on Linux (default true). */
  pdeathsig?: boolean;
}

/** A server could not be started: it exited early, or did not become ready in time. */
export class ServerStartError extends HarveyError {
  override name = "ServerStartError";
  /** The last lines the server wrote. */
  readonly output: string[];
  /** Its exit status, when it exited by itself. */
  readonly status?: Deno.CommandStatus;

  constructor(message: string, output: string[], status?: Deno.CommandStatus) {
    const details = output.length > 0
      ? `\nLast lines of its output:\n${output.map((l) => `  ${l}`).join("\n")}`
      : "";
    super(message + details);
    this.output = output;
    this.status = status;
  }
}

/** How a start is watched: cancelled through `signal`, its progress reported as it loads. */
export interface StartOptions {
  /** Aborting stops the server that is starting (SIGTERM, then SIGKILL after the grace period). */
  signal?: AbortSignal;
  /**
   * Called while the server loads, whenever what it says changes: llama.cpp's load progress
   * (`loading 42%`) or its last line of stderr.
   */
  onProgress?: (text: string) => void;
}

/** What answers on a port that is taken. */
export interface PortUse {
  port: number;
  occupant: PortOccupant;
  /** Harvey's pid file for that port, when a live server of Harvey's is there. */
  record?: ServerRecord;
  /** `Ollama 0.5.1`, `llamafile qwen (started by Harvey, pid 123)`, … */
  description: string;
}

/** The port a server was to start on is taken; `freePort` is one that is free now. */
export class PortInUseError extends HarveyError {
  override name = "PortInUseError";
  constructor(readonly use: PortUse, readonly freePort: number) {
    super(
      `Port ${use.port} is already in use by ${use.description}; ` +
        `use another port (${freePort} is free) or stop what runs there`,
    );
  }
}

/**
 * Starts, watches and stops local model servers; one per Harvey process.
 *
 * @example
 * ```ts
 * const sup = new Supervisor({ stateDir: "agents" });
 * const server = await sup.adopt("llamafile", path) ??
 *   await sup.start(llamafileSpec(path, { ctxSize: 8192 }));
 * console.log(server.url, server.nCtx);
 * await sup.stopAll();
 * ```
 */
export class Supervisor {
  readonly #stateDir: string;
  readonly #startupTimeoutMs: number;
  readonly #graceMs: number;
  #closing = false;
  readonly #env: Record<string, string>;
  readonly #out?: Output;
  readonly #setpriv?: string;
  readonly #pidNamespace: () => PidNamespace | undefined = () => undefined;
  readonly #servers = new Set<Server>();
  #spawnCount = 0;

  constructor(opts: SupervisorOptions) {
    this.#stateDir = opts.stateDir;
    this.#startupTimeoutMs = opts.startupTimeoutMs ?? 120_000;
    this.#graceMs = opts.graceMs ?? 3_000;
    this.#env = opts.env ?? Deno.env.toObject();
    this.#out = opts.out;
    if (Deno.build.os === "linux" && opts.pdeathsig !== false) {
      this.#setpriv = findOnPath("setpriv", this.#env.PATH ?? "");
      this.#pidNamespace = pidNamespaceFinder(this.#env.PATH ?? "");
    }
  }

  /** How many processes this supervisor has spawned. */
  get spawnCount(): number {
    return this.#spawnCount;
  }

  /** Whether servers die with Harvey even on `kill -9` (`setpriv` was found on Linux). */
  get diesWithHarvey(): boolean {
    return this.#setpriv !== undefined;
  }

  /** The servers this supervisor started, adopted or attached and has not stopped. */
  get servers(): RunningServer[] {
    return [...this.#servers];
  }

  /**
   * Starts `spec` and waits until it serves `/v1/models`. Throws a {@linkcode PortInUseError}
   * when the port is taken, a {@linkcode ServerStartError} when the server exits early or is
   * not ready within the startup timeout (it is stopped then), and `signal.reason` when
   * aborted (the server is stopped too).
   */
  async start(spec: ServerSpec, opts: StartOptions = {}): Promise<RunningServer> {
    opts.signal?.throwIfAborted();
    this.#refuseWhenEnding(spec);
    const use = await this.inspectPort(spec.port);
    if (use) throw new PortInUseError(use, findFreePort());
    const env = { ...childEnv(this.#env), ...spec.env };
    let viaSh = spec.ape === true && Deno.build.os !== "windows" &&
      spec.command.includes("/") && !isExecutable(spec.command);
    if (viaSh) this.#noteSh(spec, "it has no execute permission");
    for (;;) {
      this.#refuseWhenEnding(spec);
      const server = this.#spawn(spec, env, viaSh);
      try {
        await this.#waitReady(server, spec, opts);
        return server;
      } catch (err) {
        if (!(err instanceof ExecRefused)) throw err;
        viaSh = true;
        this.#noteSh(spec, err.message);
      }
    }
  }

  /**
   * Finds a server of `backend` that a Harvey started earlier (its pid file), still alive
   * and healthy and serving `modelPath` (any model when omitted). It is owned, and stopped on
   * exit, only when the Harvey that started it is gone. Pid files of dead processes are
   * removed.
   */
  async adopt(backend: string, modelPath?: string): Promise<RunningServer | undefined> {
    const want = modelPath === undefined ? undefined : resolve(modelPath);
    for (const { path, record } of await readRecords(this.#stateDir)) {
      if (!record) {
        await removeFile(path);
        this.#out?.write(`Removed ${basename(path)}: it is not a pid file Harvey can read\n`);
        continue;
      }
      if (record.backend !== backend) continue;
      const known = [...this.#servers].find((s) => s.pid === record.pid);
      if (known && !known.running) {
        // It died since: forget it (its pid file goes) rather than hand back a dead server.
        await known.stop().catch(() => {});
        continue;
      }
      if (known) {
        if (want === undefined || known.modelPath === want) return known;
        continue;
      }
      if (!isSameProcess(record)) {
        await removeFile(path);
        this.#out?.write(
          `Removed a stale pid file for ${backend} ${record.model} (process ${record.pid} is gone)\n`,
        );
        continue;
      }
      if (want !== undefined && record.model_path !== want) continue;
      const ready = await probeReady(record.url);
      if (ready.state !== "ready") continue;
      if (record.model_id !== undefined && !ready.models.includes(record.model_id)) continue;
      const owned = !processAlive(record.harvey_pid);
      const server = new Server(this.#context(), {
        backend,
        model: record.model,
        modelPath: record.model_path,
        port: record.port,
        pid: record.pid,
        owned,
        adopted: true,
        startedAt: new Date(record.started_at),
      });
      server.modelIds = ready.models;
      server.nCtx = await readContextSize(server.url);
      if (owned) writeRecord(this.#stateDir, { ...record, harvey_pid: Deno.pid });
      this.#servers.add(server);
      return server;
    }
    return undefined;
  }

  /**
   * Uses a server Harvey did not start, at `url` (with or without `/v1`). It is never
   * stopped unless the user asks (`stop({ force: true })` needs its pid, so that fails).
   */
  async attach(
    backend: string,
    url: string,
    opts: { model?: string } = {},
  ): Promise<RunningServer> {
    const base = url.replace(/\/+$/, "").replace(/\/v1$/, "");
    let parsed: URL;
    try {
      parsed = new URL(base);
    } catch {
      throw new HarveyError(`Expected a URL such as http://127.0.0.1:8080, found "${url}"`);
    }
    const ready = await probeReady(base);
    if (ready.state !== "ready") {
      throw new HarveyError(
        ready.state === "loading"
          ? `The server at ${base} is still loading its model; try again in a moment`
          : `Nothing answers at ${base}: expected an OpenAI-compatible server; start it or check the URL`,
      );
    }
    const port = Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80));
    const server = new Server(this.#context(), {
      backend,
      model: opts.model ?? ready.models[0] ?? backend,
      port,
      url: base,
      owned: false,
      adopted: false,
      startedAt: new Date(),
    });
    server.modelIds = ready.models;
    server.nCtx = await readContextSize(base);
    this.#servers.add(server);
    return server;
  }

  /** What answers on `port` of 127.0.0.1, or `undefined` when it is free. */
  async inspectPort(port: number): Promise<PortUse | undefined> {
    if (isPortFree(port)) return undefined;
    const occupant = await identifyServer(`http://127.0.0.1:${port}`);
    const found = await readRecords(this.#stateDir);
    const record = found.map((f) => f.record).find((r) => r?.port === port && isSameProcess(r));
    const description = record
      ? `${record.backend} ${record.model} (started by Harvey, pid ${record.pid})`
      : describeOccupant(occupant);
    return { port, occupant, record, description };
  }

  /** Stops every server this supervisor owns and forgets the others; none starts after. */
  async stopAll(): Promise<void> {
    this.#closing = true;
    const results = await Promise.allSettled([...this.#servers].map((s) => s.stop()));
    for (const r of results) {
      if (r.status === "rejected") this.#out?.write(`${String(r.reason?.message ?? r.reason)}\n`);
    }
  }

  /** Sends SIGTERM to every owned server at once, without waiting (for `unload`). */
  terminateAllNow(): void {
    for (const s of this.#servers) s.terminateNow();
  }

  #context() {
    return {
      stateDir: this.#stateDir,
      graceMs: this.#graceMs,
      out: this.#out,
      forget: (s: Server) => this.#servers.delete(s),
    };
  }

  /** Once Harvey is ending, nothing new starts (a dead server is not restarted then). */
  #refuseWhenEnding(spec: ServerSpec): void {
    if (this.#closing) {
      throw new HarveyError(`Harvey is ending: ${spec.backend} ${spec.model} is not started`);
    }
  }

  #noteSh(spec: ServerSpec, reason: string): void {
    this.#out?.write(
      `${basename(spec.command)} cannot be executed directly (${reason}); running it with sh\n`,
    );
  }

  #spawn(spec: ServerSpec, env: Record<string, string>, viaSh: boolean): Server {
    let child: Deno.ChildProcess;
    try {
      child = launch(spec.command, spec.args, {
        env,
        cwd: spec.cwd,
        setpriv: this.#setpriv,
        viaSh,
        pidNamespace: this.#pidNamespace(),
      });
    } catch (err) {
      if (spec.ape && !viaSh && isExecRefusal(err)) {
        this.#noteSh(spec, (err as Error).message);
        return this.#spawn(spec, env, true);
      }
      if (err instanceof Deno.errors.NotFound) {
        throw new HarveyError(
          `Cannot start ${spec.backend}: ${spec.command} was not found; check the path or install it`,
        );
      }
      throw new HarveyError(`Cannot start ${spec.backend}: ${(err as Error).message}`);
    }
    this.#spawnCount++;
    const ring = new LogRing();
    const pumps = Promise.all([
      ring.pump(child.stdout, "stdout"),
      ring.pump(child.stderr, "stderr"),
    ])
      .then(() => {});
    const server = new Server(this.#context(), {
      backend: spec.backend,
      model: spec.model,
      modelPath: resolve(spec.modelPath),
      port: spec.port,
      pid: child.pid,
      owned: true,
      adopted: false,
      startedAt: new Date(),
      child,
      ring,
      pumps,
    });
    server.viaSh = viaSh;
    this.#servers.add(server);
    writeRecord(this.#stateDir, recordOf(server));
    return server;
  }

  async #waitReady(server: Server, spec: ServerSpec, opts: StartOptions): Promise<void> {
    const { signal } = opts;
    const child = server.child!;
    let said: string | undefined;
    const started = Date.now();
    const deadline = started + this.#startupTimeoutMs;
    // Small models are ready within a second: poll often then, so readiness is noticed within
    // ~10 ms; after that back off, since a large model takes seconds to minutes.
    let delay = 10;
    for (;;) {
      const status = server.exit;
      if (status) {
        await server.stop();
        const tail = server.tail(10);
        if (spec.ape && !server.viaSh && isWrapperExecRefusal(status.code, tail)) {
          throw new ExecRefused(tail.at(-1) ?? "exec refused");
        }
        throw new ServerStartError(
          `${spec.backend} exited during startup with ${describeStatus(status)}`,
          tail,
          status,
        );
      }
      if (signal?.aborted) {
        await server.stop();
        throw signal.reason;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        await server.stop();
        const tail = server.tail(10);
        const s = Number((this.#startupTimeoutMs / 1000).toFixed(1));
        throw new ServerStartError(
          `${spec.backend} did not become ready within ${s} s and was stopped; a large model ` +
            `on a slow machine needs longer: raise startup_timeout in agents/harvey.yaml ` +
            `(e.g. startup_timeout: 10m)`,
          tail,
        );
      }
      const ready = await probeReady(server.url, {
        timeoutMs: Math.min(2_000, remaining),
        signal,
      });
      if (ready.state === "ready" && !server.exit) {
        server.modelIds = ready.models;
        break;
      }
      const progress = server.progress();
      if (progress !== undefined && progress !== said && opts.onProgress) {
        said = progress;
        opts.onProgress(progress);
      }
      await pause(Math.min(delay, Math.max(0, deadline - Date.now())), child.status, signal);
      if (Date.now() - started > 1_000) delay = Math.min(delay * 1.5, 1_000);
    }
    server.nCtx = await readContextSize(server.url);
    // A stop that began meanwhile (Harvey ending on SIGTERM) has removed the pid file already.
    if (!server.stopping) writeRecord(this.#stateDir, recordOf(server));
  }
}

/** The kernel refused to execute a llamafile behind `setpriv`; retried with `sh`. */
class ExecRefused extends Error {}

function recordOf(server: Server): ServerRecord {
  return {
    backend: server.backend,
    pid: server.pid!,
    model: server.model,
    model_path: server.modelPath!,
    model_id: server.modelIds[0],
    url: server.url,
    port: server.port,
    started_at: server.startedAt.toISOString(),
    harvey_pid: Deno.pid,
  };
}

/** The process of `rec.pid` is alive and (where /proc tells) runs `rec.model_path`. */
function isSameProcess(rec: ServerRecord): boolean {
  if (!processAlive(rec.pid)) return false;
  const cmdline = processCmdline(rec.pid);
  if (cmdline === undefined) return true;
  return cmdline.some((a) => a === rec.model_path || a.endsWith(`/${basename(rec.model_path)}`));
}

function describeStatus(st: Deno.CommandStatus): string {
  return st.signal ? `signal ${st.signal}` : `status ${st.code}`;
}

async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Waits `ms`, or less when `wake` settles or `signal` aborts. */
async function pause(ms: number, wake: Promise<unknown>, signal?: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const done = new Promise<void>((r) => {
    timer = setTimeout(r, ms);
    onAbort = () => r();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([done, wake]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
