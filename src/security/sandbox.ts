/**
 * The OS sandbox, the wall under safe mode: bubblewrap (`bwrap`) on Linux, `sandbox-exec` on
 * macOS. A sandboxed command sees the whole file system read-only; the workspace writable
 * (or read-only, for the read-only commands Harvey runs itself) except every `.git`, the paths
 * the permissions keep read-only, and `agents/`; the secrets of the workspace (every path whose
 * reading the permissions refuse) and the credential stores of `$HOME` masked by empty ones; a
 * private `/tmp`; its own pid namespace with a fresh `/proc` (Harvey's `/proc/PID/environ` is
 * not there); no network unless `sandbox.network` allows it.
 *
 * `agents/` is read-only rather than masked: the tracked files in it (a shared `harvey.yaml`)
 * then look to git as they are, and `agents/harvey.yaml` holds no keys (routes name
 * environment variables). What in it may hold a secret the user typed, `harvey_history`, is
 * masked.
 *
 * @module
 */
import { dirname, join, sep } from "node:path";
import { HarveyError } from "../errors.ts";
import { findOnPath } from "../runtime/spawn.ts";
import { checkPath, normalizeRelPath } from "./permissions.ts";
import { bwrapArgs, HOME_CREDENTIALS, sandboxExecArgs, type SandboxPlan } from "./sandbox_plan.ts";
import { type ScanResult, WorkspaceScan } from "./sandbox_scan.ts";

/** Which sandbox a system has. */
export type SandboxKind = "bwrap" | "sandbox-exec";

/** Whether this system can sandbox commands, and how to get a sandbox when it cannot. */
export interface SandboxStatus {
  available: boolean;
  kind?: SandboxKind;
  /** Absolute path of the sandbox program. */
  program?: string;
  /** One line: what the sandbox is, or why there is none. */
  detail: string;
  /** How to get one, when there is none. */
  howTo?: string;
}

/** How one command is sandboxed. */
export interface SandboxOptions {
  /** Whether it may use the network. */
  network: boolean;
  /** Whether the workspace is writable (except `.git`, `agents/` and what the permissions keep). */
  writable: boolean;
  /** Where it starts (default: the workspace root). */
  cwd?: string;
  /** Files it must read that lie in a place it sees empty (a prompt file in `/tmp`). */
  readable?: string[];
  /** It needs the machine's devices (a model runner offloading to a GPU). */
  devices?: boolean;
}

/** What a {@linkcode Sandbox} is built from. */
export interface SandboxInit {
  /** The workspace (its real path). */
  root: string;
  /** Harvey's environment: `PATH` to find the sandbox program, `HOME` for its credentials. */
  env: Record<string, string>;
  /** The live `permissions` of `harvey.yaml`. */
  permissions?: () => Record<string, readonly string[]>;
  /** The operating system (default: this one). */
  os?: typeof Deno.build.os;
}

/** Thrown when a command must be sandboxed and this system has no sandbox. */
export class SandboxUnavailableError extends HarveyError {
  override name = "SandboxUnavailableError";
}

/** Harvey's own files in `agents/` that are masked, not only read-only. */
const PRIVATE_STATE = ["agents/harvey_history"];
/** Secrets by name that stay readable: read-only with the rest of `agents/` (see the module doc). */
const READABLE_SECRETS = ["agents/harvey.yaml"];

/**
 * The sandbox of one session: probes the system once, keeps the workspace scan's cache, and
 * builds the command line of each sandboxed command.
 *
 * @example
 * ```ts
 * const sandbox = new Sandbox({ root: "/proj", env: Deno.env.toObject() });
 * if ((await sandbox.status()).available) {
 *   const argv = await sandbox.argv(["ls", "-la"], { network: false, writable: true });
 * }
 * ```
 */
export class Sandbox {
  readonly root: string;
  readonly #env: Record<string, string>;
  readonly #permissions: () => Record<string, readonly string[]>;
  readonly #os: typeof Deno.build.os;
  readonly #scan: WorkspaceScan;
  #status?: Promise<SandboxStatus>;
  #emptyFile?: string;
  #tmpDir?: string;
  #noticeGiven = false;

  constructor(init: SandboxInit) {
    this.root = init.root;
    this.#env = init.env;
    this.#permissions = init.permissions ?? (() => ({}));
    this.#os = init.os ?? Deno.build.os;
    this.#scan = new WorkspaceScan(init.root);
  }

  /** Whether the sandbox works here (probed once: the program must start a sandbox). */
  status(): Promise<SandboxStatus> {
    this.#status ??= probeSandbox({ env: this.#env, os: this.#os });
    return this.#status;
  }

  /**
   * The line to show the first time a command runs without the sandbox in this session, or
   * undefined (the sandbox is there, or the line was shown already).
   */
  async noticeOnce(): Promise<string | undefined> {
    const status = await this.status();
    if (status.available || this.#noticeGiven) return undefined;
    this.#noticeGiven = true;
    return `Commands run without the OS sandbox: ${status.detail}${
      status.howTo ? ` (${status.howTo})` : ""
    }`;
  }

  /**
   * The command line that runs `argv` (its first word an absolute path) inside the sandbox.
   * Throws {@linkcode SandboxUnavailableError} when this system has none.
   */
  async argv(argv: readonly string[], opts: SandboxOptions): Promise<string[]> {
    const status = await this.status();
    if (!status.available || !status.program) {
      throw new SandboxUnavailableError(
        `No OS sandbox: ${status.detail}${status.howTo ? `; ${status.howTo}` : ""}`,
      );
    }
    const plan = await this.plan(opts);
    return status.kind === "bwrap"
      ? bwrapArgs(status.program, argv, plan)
      : sandboxExecArgs(status.program, argv, plan);
  }

  /** Variables a sandboxed command needs besides its filtered environment (`TMPDIR` on macOS). */
  env(): Record<string, string> {
    return this.#tmpDir ? { TMPDIR: this.#tmpDir } : {};
  }

  /** What the sandbox of a command protects right now (the workspace scanned through the cache). */
  async plan(opts: SandboxOptions): Promise<SandboxPlan> {
    const found = this.scan();
    const masks = homeMasks(this.#env.HOME, this.root);
    const plan: SandboxPlan = {
      root: this.root,
      writable: opts.writable,
      network: opts.network,
      cwd: opts.cwd ?? this.root,
      readOnly: outermost([...found.gits, join(this.root, "agents"), ...found.readOnly]),
      maskFiles: [...found.maskFiles, ...masks.files],
      maskDirs: [...found.maskDirs, ...masks.dirs],
      emptyFile: await this.#empty(),
      readable: opts.readable,
      devices: opts.devices,
    };
    if (this.#os === "darwin") {
      this.#tmpDir ??= await Deno.realPath(await Deno.makeTempDir({ prefix: "harvey-sandbox-" }));
      plan.tmpDir = this.#tmpDir;
    }
    return plan;
  }

  /** The workspace scan under the live permissions. */
  scan(): ScanResult {
    const permissions = this.#permissions();
    const keys = Object.keys(permissions).map((k) => normalizeRelPath(k)).filter((k) =>
      k !== undefined
    );
    return this.#scan.scan({
      key: JSON.stringify(permissions),
      hidden: (rel) =>
        PRIVATE_STATE.includes(rel) ||
        (!READABLE_SECRETS.includes(rel) && !checkPath(rel, "read", { permissions }).allowed),
      readOnly: (rel) => !checkPath(rel, "write", { permissions }).allowed,
      hasRulesBelow: (rel) => keys.some((k) => k.startsWith(`${rel}/`)),
    });
  }

  /** Removes the files this sandbox made (the empty mask file, the macOS temporary folder). */
  async close(): Promise<void> {
    for (const path of [this.#emptyFile, this.#tmpDir]) {
      if (path) await Deno.remove(path, { recursive: true }).catch(() => {});
    }
    this.#emptyFile = this.#tmpDir = undefined;
  }

  /** An empty regular file outside the workspace, made again if something wrote into it. */
  async #empty(): Promise<string> {
    if (this.#emptyFile) {
      const st = await Deno.lstat(this.#emptyFile).catch(() => undefined);
      if (st?.isFile && st.size === 0) return this.#emptyFile;
      await Deno.remove(this.#emptyFile).catch(() => {});
    }
    const path = await Deno.makeTempFile({ prefix: "harvey-sandbox-empty-" });
    await Deno.chmod(path, 0o444).catch(() => {});
    this.#emptyFile = await Deno.realPath(path);
    return this.#emptyFile;
  }
}

/** `paths` without those inside another of them (one mount covers them), each once. */
function outermost(paths: string[]): string[] {
  const unique = [...new Set(paths)];
  return unique.filter((p) => !unique.some((q) => q !== p && p.startsWith(`${q}${sep}`)));
}

/** The credential stores of `home` that exist, split into files and folders (real paths). */
function homeMasks(home: string | undefined, root: string): { files: string[]; dirs: string[] } {
  const out = { files: [] as string[], dirs: [] as string[] };
  if (!home) return out;
  for (const rel of HOME_CREDENTIALS) {
    let real: string;
    let st: Deno.FileInfo;
    try {
      real = Deno.realPathSync(join(home, rel));
      st = Deno.statSync(real);
    } catch {
      continue;
    }
    // A workspace inside a credential folder stays visible (masking it would hide the work).
    if (root === real || root.startsWith(`${real}${sep}`)) continue;
    (st.isDirectory ? out.dirs : out.files).push(real);
  }
  return out;
}

/**
 * What the sandbox covers, or why there is none and how to get it, in lines for `/security`
 * and `harvey doctor`.
 *
 * @example
 * ```ts
 * sandboxLines(await sandbox.status(), { network: false });
 * // ["bubblewrap (/usr/bin/bwrap): the system read-only; …", "used by: …"]
 * ```
 */
export function sandboxLines(status: SandboxStatus, opts: { network: boolean }): string[] {
  if (!status.available) {
    return [
      `none — ${status.detail}${status.howTo ? `; ${status.howTo}` : ""}`,
      "safe-mode commands run without it; the model's commands are refused",
    ];
  }
  return [
    `${status.detail}: the system read-only; the workspace writable except every .git, ` +
    `agents/ and read-only paths; secrets and $HOME credentials masked; a private /tmp; ` +
    `its own pids${status.kind === "bwrap" ? " and /proc" : ""}; network ${
      opts.network ? "on" : "off"
    } (sandbox.network)`,
    "used by: safe-mode ! and /run, every git Harvey runs, all commands of the model",
  ];
}

/**
 * Probes this system's sandbox: on Linux, `bwrap` on PATH must start a sandbox like the one
 * commands get (user namespaces may be disabled); on macOS, `/usr/bin/sandbox-exec` must
 * exist. Elsewhere there is none.
 *
 * @example
 * ```ts
 * const s = await probeSandbox({ env: Deno.env.toObject() });
 * console.log(s.available ? s.detail : `${s.detail}: ${s.howTo}`);
 * ```
 */
export async function probeSandbox(
  opts: { env: Record<string, string>; os?: typeof Deno.build.os },
): Promise<SandboxStatus> {
  const os = opts.os ?? Deno.build.os;
  const path = opts.env.PATH ?? "";
  if (os === "darwin") {
    const program = findOnPath("sandbox-exec", `${path}:/usr/bin`);
    return program
      ? { available: true, kind: "sandbox-exec", program, detail: `sandbox-exec (${program})` }
      : {
        available: false,
        detail: "sandbox-exec was not found (it ships with macOS in /usr/bin)",
        howTo: "check that /usr/bin/sandbox-exec exists",
      };
  }
  if (os !== "linux") {
    return {
      available: false,
      detail: `no OS sandbox on ${os}`,
      howTo: "run Harvey in WSL 2 with bubblewrap (apt install bubblewrap) to get one",
    };
  }
  const program = findOnPath("bwrap", path);
  if (!program) {
    return {
      available: false,
      detail: "bubblewrap (bwrap) was not found on PATH",
      howTo: "apt install bubblewrap, dnf install bubblewrap or pacman -S bubblewrap",
    };
  }
  const trueBin = findOnPath("true", path) ?? "/bin/true";
  const probe = bwrapArgs(program, [trueBin], {
    root: dirname(trueBin),
    writable: false,
    network: false,
    cwd: "/",
    readOnly: [],
    maskFiles: [],
    maskDirs: [],
    emptyFile: "",
  });
  try {
    const out = await new Deno.Command(probe[0], {
      args: probe.slice(1),
      clearEnv: true,
      env: { PATH: path },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) {
      return { available: true, kind: "bwrap", program, detail: `bubblewrap (${program})` };
    }
    const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ||
      `exit status ${out.code}`;
    return {
      available: false,
      program,
      detail: `${program} cannot start a sandbox here (${why})`,
      howTo:
        "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04+ the bwrap AppArmor profile)",
    };
  } catch (err) {
    return {
      available: false,
      program,
      detail: `${program} could not be run (${(err as Error).message.split("\n")[0]})`,
      howTo: "check that Harvey may run it (--allow-run)",
    };
  }
}
