/**
 * The one command runner: no shell, its own session and process group (so Ctrl-C in the
 * terminal does not reach it and a stop reaches every process it started), inside the OS
 * sandbox when asked, output streamed as it arrives and the first bytes kept for the
 * conversation, a timeout and an abort signal that kill the whole group (and, sandboxed, the
 * whole pid namespace: the sandbox dies with its first process).
 *
 * @module
 */
import { findOnPath, launch, signalProcess } from "../runtime/spawn.ts";
import type { Sandbox, SandboxOptions } from "./sandbox.ts";

/** How to run a command. */
export interface RunOptions {
  cwd: string;
  /** The child's whole environment (it gets nothing else). */
  env: Record<string, string>;
  /** Kill the process group after this many ms; 0 means never. */
  timeoutMs: number;
  /** Kills the process group when aborted (Ctrl-C). */
  signal?: AbortSignal;
  /** Called with the output as it arrives (stdout and stderr, decoded). */
  onOutput?: (text: string) => void;
  /** Bytes of output kept in {@linkcode RunResult.captured} (default 8 KiB). */
  captureBytes?: number;
  /** Stop the command (SIGTERM to its group) once more output came than `captureBytes`. */
  stopWhenFull?: boolean;
  /**
   * Keep standard error apart: up to this many bytes of it go to {@linkcode RunResult.stderr},
   * none to `onOutput` or `captured`.
   */
  stderrBytes?: number;
  /** How long the group has after SIGTERM before SIGKILL (default 2 s). */
  graceMs?: number;
  /** Wrap in `setpriv --pdeathsig KILL` when found on Linux, so the command dies with Harvey. */
  pdeathsig?: boolean;
  /**
   * Run inside this sandbox; throws its `SandboxUnavailableError` when the system has none.
   * Its options' `cwd` defaults to `cwd`.
   */
  sandbox?: { sandbox: Sandbox } & SandboxOptions;
}

/** How a command ended. */
export interface RunResult {
  /** Exit status (128 + signal number when a signal ended it). */
  code: number;
  signal: Deno.Signal | null;
  /** The first `captureBytes` bytes of the output. */
  captured: string;
  /** The first `stderrBytes` bytes of standard error, when it was kept apart. */
  stderr?: string;
  /** Bytes of output in all. */
  totalBytes: number;
  truncated: boolean;
  timedOut: boolean;
  interrupted: boolean;
}

/**
 * Runs `command args…` (an absolute path) and waits for it and for its output to end.
 * Throws what `Deno.Command` throws when the program cannot be started, and
 * `SandboxUnavailableError` when it must be sandboxed on a system without a sandbox.
 *
 * @example
 * ```ts
 * const r = await runCommand("/bin/ls", ["-la"], { cwd: ".", env: {}, timeoutMs: 5000 });
 * ```
 */
export async function runCommand(
  command: string,
  args: string[],
  opts: RunOptions,
): Promise<RunResult> {
  const setpriv = opts.pdeathsig !== false && Deno.build.os === "linux"
    ? findOnPath("setpriv", opts.env.PATH ?? "")
    : undefined;
  let argv = [command, ...args];
  let env = opts.env;
  if (opts.sandbox) {
    const { sandbox, ...how } = opts.sandbox;
    argv = await sandbox.argv(argv, { ...how, cwd: how.cwd ?? opts.cwd });
    env = { ...env, ...sandbox.env() };
  }
  const child = launch(argv[0], argv.slice(1), { env, cwd: opts.cwd, setpriv });
  const pid = child.pid;
  const cap = opts.captureBytes ?? 8192;
  const buffer = new Uint8Array(cap);
  let kept = 0;
  let totalBytes = 0;
  let stopped: "timeout" | "interrupt" | "full" | undefined;
  let killTimer: ReturnType<typeof setTimeout> | undefined;

  const stop = (why: "timeout" | "interrupt" | "full") => {
    if (stopped) return;
    stopped = why;
    signalProcess(pid, "SIGTERM");
    killTimer = setTimeout(() => signalProcess(pid, "SIGKILL"), opts.graceMs ?? 2000);
  };
  const timer = opts.timeoutMs > 0 ? setTimeout(() => stop("timeout"), opts.timeoutMs) : undefined;
  const onAbort = () => stop("interrupt");
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.signal?.aborted) stop("interrupt");

  const encoder = new TextEncoder();
  let cut = false;
  const keep = (text: string) => {
    if (cut) return;
    const r = encoder.encodeInto(text, buffer.subarray(kept));
    kept += r.written;
    if (r.read < text.length) {
      cut = true;
      if (opts.stopWhenFull) stop("full");
    }
  };
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      totalBytes += chunk.length;
      const text = decoder.decode(chunk, { stream: true });
      if (text) {
        opts.onOutput?.(text);
        keep(text);
      }
    }
    const last = decoder.decode();
    if (last) {
      opts.onOutput?.(last);
      keep(last);
    }
  };
  const errChunks: Uint8Array[] = [];
  let errKept = 0;
  const pumpErr = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      const room = (opts.stderrBytes ?? 0) - errKept;
      if (room > 0) errChunks.push(chunk.subarray(0, room));
      errKept += Math.min(room, chunk.length);
    }
  };

  try {
    const [status] = await Promise.all([
      child.status,
      pump(child.stdout),
      opts.stderrBytes === undefined ? pump(child.stderr) : pumpErr(child.stderr),
    ]);
    // Members of the group that closed their output may still run: a stop reaches them too.
    if (stopped) signalProcess(pid, "SIGKILL");
    return {
      code: status.code,
      signal: status.signal,
      captured: new TextDecoder().decode(buffer.subarray(0, kept)),
      stderr: opts.stderrBytes === undefined
        ? undefined
        : new TextDecoder().decode(concat(errChunks)),
      totalBytes,
      truncated: cut,
      timedOut: stopped === "timeout",
      interrupted: stopped === "interrupt",
    };
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
