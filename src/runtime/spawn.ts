/**
 * How Harvey starts a server process: in its own session and process group (so a Ctrl-C
 * in the terminal does not reach it and a stop reaches all of it), under
 * `setpriv --pdeathsig KILL` on Linux when `setpriv` is installed (so the kernel kills it
 * when Harvey dies, even on `kill -9`), with a filtered environment.
 *
 * `setpriv` reaches only the process Harvey started: a llamafile launcher that starts the real
 * server as its child without `exec`ing it would leave that child running. Where bubblewrap
 * works, the server therefore also gets its own pid namespace ({@linkcode PidNamespace}): when
 * its first process dies, the kernel kills every process in it.
 *
 * Without `setpriv` (macOS, BSD, a Linux without util-linux) the server still gets its own
 * process group, and Harvey stops the whole group on every exit path it controls (`/exit`,
 * Ctrl-D, SIGTERM, SIGHUP, `Deno.exit`); after a `kill -9` it keeps running, and the pid file
 * lets the next Harvey adopt or stop it.
 *
 * @module
 */
import { delimiter, join } from "node:path";

/** The first executable file called `name` in the folders of `pathVar`. */
export function findOnPath(name: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Whether `path` is a regular file with an execute bit set (always true on Windows). */
export function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    if (!st.isFile) return false;
    return st.mode === null || (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** How to start one server. */
export interface LaunchOptions {
  env: Record<string, string>;
  cwd?: string;
  /** Absolute path of `setpriv`, to wrap the command in `setpriv --pdeathsig KILL`. */
  setpriv?: string;
  /** Run the command as a shell script: `/bin/sh COMMAND ARGS…`. */
  viaSh?: boolean;
  /** Run the command in its own pid namespace (see {@linkcode PidNamespace}). */
  pidNamespace?: PidNamespace;
}

/**
 * The programs that give a server its own pid namespace: bubblewrap with the whole file
 * system, the devices and the network as they are (a server needs its model files, the GPU and
 * loopback), `--unshare-pid --die-with-parent`; so its first process is the only one Harvey
 * has to kill, and the kernel kills the rest. coreutils' `env` makes bubblewrap ignore the
 * SIGTERM that Harvey sends to the process group (bubblewrap would die of it at once and take
 * the server with it, without its grace period) and gives the server SIGTERM back as it was.
 */
export interface PidNamespace {
  /** Absolute path of `bwrap`. */
  bwrap: string;
  /** Absolute path of an `env` that knows `--ignore-signal` and `--default-signal`. */
  env: string;
}

/** The argument vector that runs `argv` in the pid namespace `ns`. */
export function inPidNamespace(argv: readonly string[], ns: PidNamespace): string[] {
  return [
    ns.env,
    "--ignore-signal=TERM",
    ns.bwrap,
    ...["--dev-bind", "/", "/"],
    ...["--proc", "/proc"],
    "--unshare-pid",
    "--die-with-parent",
    "--",
    ns.env,
    "--default-signal=TERM",
    ...argv,
  ];
}

/**
 * Finds bubblewrap and coreutils' `env` in `pathVar` and checks once that they start a pid
 * namespace here (user namespaces may be disabled, `env` may be busybox's). The answer is kept
 * by the returned function; undefined when there is none.
 */
export function pidNamespaceFinder(pathVar: string): () => PidNamespace | undefined {
  let found: PidNamespace | null | undefined;
  return () => {
    if (found === undefined) {
      const bwrap = findOnPath("bwrap", pathVar);
      const env = findOnPath("env", pathVar);
      const trueBin = findOnPath("true", pathVar);
      found = null;
      if (bwrap && env && trueBin) {
        const argv = inPidNamespace([trueBin], { bwrap, env });
        try {
          const out = new Deno.Command(argv[0], {
            args: argv.slice(1),
            clearEnv: true,
            env: { PATH: pathVar },
            stdin: "null",
            stdout: "null",
            stderr: "null",
          }).outputSync();
          if (out.success) found = { bwrap, env };
        } catch {
          // not allowed to run it: no namespace
        }
      }
    }
    return found ?? undefined;
  };
}

/**
 * Spawns `command args…` detached (its own session and process group), stdin closed,
 * stdout and stderr piped, with exactly `opts.env` as its environment.
 */
export function launch(command: string, args: string[], opts: LaunchOptions): Deno.ChildProcess {
  let argv = opts.viaSh ? ["/bin/sh", command, ...args] : [command, ...args];
  if (opts.pidNamespace) argv = inPidNamespace(argv, opts.pidNamespace);
  if (opts.setpriv) argv = [opts.setpriv, "--pdeathsig", "KILL", ...argv];
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: opts.env,
    clearEnv: true,
    cwd: opts.cwd,
    detached: Deno.build.os !== "windows",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Whether a spawn error means the kernel refused to execute the file (no execute
 * permission, a `noexec` mount, an unknown binary format), so `sh FILE` may still run it.
 */
export function isExecRefusal(err: unknown): boolean {
  if (err instanceof Deno.errors.PermissionDenied) return true;
  return err instanceof Error && /exec format error|os error 8\b|permission denied/i.test(
    err.message,
  );
}

/**
 * Whether an early exit is a wrapper (`setpriv`, or the `env` inside the pid namespace)
 * failing to execute the command: status 126 and the wrapper's message ("failed to execute",
 * "Permission denied", "Exec format error"), which the same fallback can cure.
 */
export function isWrapperExecRefusal(code: number, stderr: string[]): boolean {
  return code === 126 &&
    stderr.some((l) => /failed to execute|permission denied|exec format error/i.test(l));
}

/**
 * Sends `signal` to the process group led by `pid` (to `pid` alone on Windows, or when
 * `group` is false). Returns false when there was nothing to signal.
 */
export function signalProcess(pid: number, signal: Deno.Signal, group = true): boolean {
  try {
    Deno.kill(group && Deno.build.os !== "windows" ? -pid : pid, signal);
    return true;
  } catch {
    return false;
  }
}
