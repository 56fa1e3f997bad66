/**
 * A local model server as the rest of Harvey sees it, and how it is stopped.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { Output } from "../types.ts";
import { loadProgress, type LogRing } from "./log_ring.ts";
import { processAlive, processGroup, removeRecord } from "./pid_file.ts";
import { signalProcess } from "./spawn.ts";

/** How a stop ended. */
export interface StopResult {
  /** False when the server was left running because Harvey did not start it. */
  stopped: boolean;
  /** The server exited by itself on SIGTERM (a status 134 after SIGTERM counts as clean). */
  clean: boolean;
  /** It ignored SIGTERM for the grace period and was killed with SIGKILL. */
  killed: boolean;
  /** Exit status, when Harvey is its parent. */
  code?: number;
  signal?: string | null;
}

/** A running local model server: started, adopted from a pid file, or attached by URL. */
export interface RunningServer {
  /** `llamafile`, `llama-server`, … */
  readonly backend: string;
  /** Display name of the model. */
  readonly model: string;
  /** Absolute path of the model file, when known. */
  readonly modelPath?: string;
  /** The ids `/v1/models` answered when the server became ready. */
  readonly modelIds: readonly string[];
  /** Base URL without `/v1`, e.g. `http://127.0.0.1:41873`. */
  readonly url: string;
  readonly port: number;
  /** Process id, when known. */
  readonly pid?: number;
  /** Harvey started it (or took over from a Harvey that is gone) and stops it on exit. */
  readonly owned: boolean;
  /** It was found through a pid file rather than started by this process. */
  readonly adopted: boolean;
  /** The context size the server really uses (`/props` `n_ctx`, else `n_ctx_train`). */
  readonly nCtx?: number;
  readonly startedAt: Date;
  /** Whether the process is still there (always true for a server attached by URL). */
  readonly running: boolean;
  /** The last lines the server wrote (empty for a server this process did not start). */
  logs(): string[];
  /**
   * Stops the server: SIGTERM to its process group, the grace period, then SIGKILL. A server
   * Harvey does not own is only forgotten, unless `force` (the user asked) is set.
   */
  stop(opts?: { force?: boolean }): Promise<StopResult>;
}

/** What a {@linkcode Server} needs from its supervisor. */
export interface ServerContext {
  stateDir: string;
  graceMs: number;
  out?: Output;
  forget(server: Server): void;
}

/** The fields a {@linkcode Server} starts with. */
export interface ServerInit {
  backend: string;
  model: string;
  modelPath?: string;
  port: number;
  /** Base URL, when it is not `http://127.0.0.1:PORT`. */
  url?: string;
  pid?: number;
  owned: boolean;
  adopted: boolean;
  startedAt: Date;
  child?: Deno.ChildProcess;
  ring?: LogRing;
  pumps?: Promise<void>;
}

/** The one implementation of {@linkcode RunningServer}, used by the supervisor. */
export class Server implements RunningServer {
  readonly backend: string;
  readonly model: string;
  readonly modelPath?: string;
  readonly url: string;
  readonly port: number;
  readonly pid?: number;
  readonly adopted: boolean;
  readonly startedAt: Date;
  owned: boolean;
  modelIds: string[] = [];
  nCtx?: number;
  /** It was started as `sh FILE …` because the kernel refused to execute the file. */
  viaSh = false;
  /** Set once a child of this process has exited. */
  exit?: Deno.CommandStatus;
  readonly child?: Deno.ChildProcess;
  readonly pumps: Promise<void>;
  readonly #ring?: LogRing;
  readonly #ctx: ServerContext;
  #stopping?: Promise<StopResult>;

  constructor(ctx: ServerContext, init: ServerInit) {
    this.#ctx = ctx;
    this.backend = init.backend;
    this.model = init.model;
    this.modelPath = init.modelPath;
    this.port = init.port;
    this.url = init.url ?? `http://127.0.0.1:${init.port}`;
    this.pid = init.pid;
    this.owned = init.owned;
    this.adopted = init.adopted;
    this.startedAt = init.startedAt;
    this.child = init.child;
    this.#ring = init.ring;
    this.pumps = init.pumps ?? Promise.resolve();
    this.child?.status.then((st) => this.exit = st);
  }

  get running(): boolean {
    if (this.child) return this.exit === undefined;
    return this.pid === undefined || processAlive(this.pid);
  }

  logs(): string[] {
    return this.#ring?.lines() ?? [];
  }

  /** What the server says while it loads (`loading 42%`, its last line), when it said anything. */
  progress(): string | undefined {
    return this.#ring ? loadProgress(this.#ring) : undefined;
  }

  /** The last `n` lines of stderr (or of stdout when stderr is empty). */
  tail(n: number): string[] {
    const err = this.#ring?.tail(n, "stderr") ?? [];
    return err.length > 0 ? err : this.#ring?.tail(n) ?? [];
  }

  /** A stop has begun (Harvey is ending, or the user asked). */
  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  stop(opts: { force?: boolean } = {}): Promise<StopResult> {
    if (!this.owned && !opts.force) {
      this.#ctx.forget(this);
      return Promise.resolve({ stopped: false, clean: true, killed: false });
    }
    if (this.pid === undefined) {
      return Promise.reject(
        new HarveyError(
          `Cannot stop the server at ${this.url}: its process id is unknown; stop it where it was started`,
        ),
      );
    }
    this.#stopping ??= (this.child ? this.#stopChild(this.child) : this.#stopOther(this.pid))
      .finally(() => this.#ctx.forget(this));
    return this.#stopping;
  }

  /** Sends SIGTERM to the group right away, without waiting (for `unload`). */
  terminateNow(): void {
    if (this.owned && this.pid !== undefined && this.running) {
      signalProcess(this.pid, "SIGTERM", this.#isGroupLeader());
    }
  }

  async #stopChild(child: Deno.ChildProcess): Promise<StopResult> {
    const pid = child.pid;
    let killed = false;
    let status = this.exit;
    if (!status) {
      signalProcess(pid, "SIGTERM");
      status = await within(child.status, this.#ctx.graceMs);
      if (!status) {
        killed = true;
        this.#ctx.out?.write(
          `${this.backend} did not stop within ${
            this.#ctx.graceMs / 1000
          } s of SIGTERM; sent SIGKILL\n`,
        );
        signalProcess(pid, "SIGKILL");
        status = await child.status;
      }
    }
    await this.pumps;
    await removeRecord(this.#ctx.stateDir, { backend: this.backend, port: this.port, pid });
    const clean = !killed &&
      (status.success || status.signal === "SIGTERM" || status.code === 134 ||
        status.code === 143);
    return { stopped: true, clean, killed, code: status.code, signal: status.signal };
  }

  async #stopOther(pid: number): Promise<StopResult> {
    let killed = false;
    const group = this.#isGroupLeader();
    if (processAlive(pid)) {
      signalProcess(pid, "SIGTERM", group);
      if (!await until(() => !processAlive(pid), this.#ctx.graceMs)) {
        killed = true;
        signalProcess(pid, "SIGKILL", group);
        if (!await until(() => !processAlive(pid), 5_000)) {
          throw new HarveyError(
            `${this.backend} (pid ${pid}) is still running after SIGKILL; stop it by hand`,
          );
        }
      }
    }
    await removeRecord(this.#ctx.stateDir, { backend: this.backend, port: this.port, pid });
    return { stopped: true, clean: !killed, killed };
  }

  /** Harvey starts servers as group leaders; an adopted one is checked where /proc allows. */
  #isGroupLeader(): boolean {
    if (this.child || this.pid === undefined) return true;
    const pgid = processGroup(this.pid);
    return pgid === undefined ? this.adopted : pgid === this.pid;
  }
}

/** `promise`'s value, or `undefined` when it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 50 ms until it holds (true) or `ms` pass (false). */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
