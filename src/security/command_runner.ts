/**
 * Running one `/run` command: no shell, its own session and process group (so Ctrl-C in the
 * terminal does not reach it and a stop reaches every process it started), output streamed
 * as it arrives and the first bytes kept for the conversation, a timeout and an abort signal
 * that kill the whole group.
 *
 * @module
 */
import { findOnPath, launch, signalProcess } from "../runtime/spawn.ts";

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
  /** How long the group has after SIGTERM before SIGKILL (default 2 s). */
  graceMs?: number;
  /** Wrap in `setpriv --pdeathsig KILL` when found on Linux, so the command dies with Harvey. */
  pdeathsig?: boolean;
}

/** How a command ended. */
export interface RunResult {
  /** Exit status (128 + signal number when a signal ended it). */
  code: number;
  signal: Deno.Signal | null;
  /** The first `captureBytes` bytes of the output. */
  captured: string;
  /** Bytes of output in all. */
  totalBytes: number;
  truncated: boolean;
  timedOut: boolean;
  interrupted: boolean;
}

/**
 * Runs `command args…` (an absolute path) and waits for it and for its output to end.
 * Throws what `Deno.Command` throws when the program cannot be started.
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
  const child = launch(command, args, { env: opts.env, cwd: opts.cwd, setpriv });
  const pid = child.pid;
  const cap = opts.captureBytes ?? 8192;
  const buffer = new Uint8Array(cap);
  let kept = 0;
  let totalBytes = 0;
  let stopped: "timeout" | "interrupt" | undefined;
  let killTimer: ReturnType<typeof setTimeout> | undefined;

  const stop = (why: "timeout" | "interrupt") => {
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
    if (r.read < text.length) cut = true;
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

  try {
    const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
    // Members of the group that closed their output may still run: a stop reaches them too.
    if (stopped) signalProcess(pid, "SIGKILL");
    return {
      code: status.code,
      signal: status.signal,
      captured: new TextDecoder().decode(buffer.subarray(0, kept)),
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
