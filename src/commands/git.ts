/**
 * `/git`: read-only git commands at the workspace root; the output goes into the
 * conversation as context.
 *
 * @module
 */
import { dirname, posix } from "node:path";
import type { Agent } from "../agent.ts";
import { describeError, HarveyError, UsageError } from "../errors.ts";
import { childEnv } from "../security/child_env.ts";
import { SandboxError } from "../workspace.ts";
import { accessPath, addContext, formatBytes } from "./files.ts";
import type { CommandSpec } from "./registry.ts";

/** The git subcommands `/git` runs: none of them changes the repository. */
export const GIT_SUBCOMMANDS = ["status", "diff", "log", "show", "blame"] as const;

/** The most git output `/git` prints and adds to the conversation. */
export const GIT_OUTPUT_CAP = 8 * 1024;

/** How long one `/git` may run. */
export const GIT_TIMEOUT_MS = 15_000;

/**
 * Why an argument is refused (it could write a file or run a program), or undefined.
 *
 * @example
 * ```ts
 * refusedGitArg("--output=/tmp/x"); // "--output writes files"
 * refusedGitArg("-n"); // undefined
 * ```
 */
export function refusedGitArg(arg: string): string | undefined {
  if (arg.startsWith("--output")) return "--output writes files";
  if (/^-o/.test(arg)) return "-o writes files";
  if (arg.startsWith("--exec")) return "--exec runs programs";
  if (/^-c/.test(arg)) return "-c changes git's configuration";
  if (arg.includes("--ext-diff")) return "--ext-diff runs programs";
  if (arg.includes("--upload-pack")) return "--upload-pack runs programs";
  return undefined;
}

/** Checks the paths among the arguments: inside the workspace, and readable. */
async function checkPathArgs(agent: Agent, args: string[]): Promise<void> {
  for (const arg of args) {
    if (arg.startsWith("-") || arg === "") continue;
    const colon = /^[^:/]*:(.+)$/.exec(arg); // REV:path names a file in the repository
    if (colon) {
      const path = posix.normalize(colon[1].replace(/^\.\//, ""));
      if (path.startsWith("/") || path === ".." || path.startsWith("../")) {
        throw new HarveyError(`Refused: ${arg} names a file outside the workspace`);
      }
      agent.checkPath?.(path, "read");
      continue;
    }
    try {
      if (await agent.workspace.exists(arg)) await accessPath(agent, arg, "read");
    } catch (err) {
      const pathLike = arg.startsWith("/") || arg === ".." || arg.startsWith("../");
      if (err instanceof SandboxError && !pathLike) continue; // a revision, not a path
      throw err;
    }
  }
}

/** Reads a stream up to `cap` bytes, then cancels it; returns the bytes and whether it was cut. */
async function readCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
): Promise<{ bytes: Uint8Array; cut: boolean }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let cut = false;
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.length;
      if (total > cap) {
        cut = true;
        await reader.cancel().catch(() => {});
        break;
      }
    }
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { bytes, cut };
}

/** Runs `git SUB ARGS…` at the workspace root; returns its output (cut at the cap). */
async function runGit(
  agent: Agent,
  sub: string,
  args: string[],
  signal?: AbortSignal,
): Promise<{ text: string; cut: boolean }> {
  const root = agent.workspace.root;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), GIT_TIMEOUT_MS);
  const onAbort = () => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const noExtDiff = sub === "blame" || sub === "status" ? [] : ["--no-ext-diff"];
  const command = new Deno.Command("git", {
    args: [
      "--no-pager",
      ...["-c", "color.ui=never", "-c", "core.fsmonitor=false", "-c", "core.quotepath=off"],
      sub,
      ...noExtDiff,
      ...args,
    ],
    cwd: root,
    clearEnv: true,
    env: {
      ...childEnv(agent.env),
      GIT_TERMINAL_PROMPT: "0",
      GIT_OPTIONAL_LOCKS: "0",
      // Only a repository at the workspace root: never one in a folder above it.
      GIT_CEILING_DIRECTORIES: dirname(root),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: stop.signal,
  });
  let child: Deno.ChildProcess;
  try {
    child = command.spawn();
  } catch (err) {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    if (err instanceof Deno.errors.NotFound) {
      throw new HarveyError("git is not installed (not found on PATH); /git needs it");
    }
    throw err;
  }
  try {
    const [out, errOut, status] = await Promise.all([
      readCapped(child.stdout, GIT_OUTPUT_CAP),
      readCapped(child.stderr, 4096),
      child.status,
    ]);
    if (signal?.aborted) throw new HarveyError("Interrupted");
    if (stop.signal.aborted) {
      throw new HarveyError(
        `git ${sub} took longer than ${
          GIT_TIMEOUT_MS / 1000
        } s and was stopped; narrow it (a path, -n 20)`,
      );
    }
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    if (!status.success && !out.cut) {
      const why = decode(errOut.bytes).trim().split("\n")[0] || `exit status ${status.code}`;
      throw new HarveyError(`git ${sub} failed: ${why}`);
    }
    let bytes = out.bytes;
    if (out.cut) {
      bytes = bytes.subarray(0, GIT_OUTPUT_CAP);
      const nl = bytes.lastIndexOf(10);
      if (nl > 0) bytes = bytes.subarray(0, nl + 1);
    }
    return { text: decode(bytes), cut: out.cut };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    try {
      child.kill();
    } catch {
      // it has exited already
    }
  }
}

/** `/git status|diff|log|show|blame [ARGS…]` */
export const gitCommand: CommandSpec = {
  name: "git",
  usage: GIT_SUBCOMMANDS.map((s) => `/git ${s} [ARGS…]`),
  summary: "Run a read-only git command and add its output to the conversation",
  subcommands: [...GIT_SUBCOMMANDS],
  async run(agent, args, out, ctx) {
    const [sub, ...rest] = args;
    const allowed = GIT_SUBCOMMANDS.join(", ");
    if (!sub) throw new UsageError(`/git needs one of: ${allowed}`);
    if (!(GIT_SUBCOMMANDS as readonly string[]).includes(sub)) {
      throw new UsageError(`/git runs only read-only commands (${allowed}); "${sub}" is refused`);
    }
    for (const arg of rest) {
      const why = refusedGitArg(arg);
      if (why) throw new HarveyError(`Refused /git argument ${JSON.stringify(arg)}: ${why}`);
    }
    await accessPath(agent, ".", "read");
    try {
      await checkPathArgs(agent, rest);
    } catch (err) {
      throw new HarveyError(`Refused /git ${sub}: ${describeError(err)}`);
    }
    const { text, cut } = await runGit(agent, sub, rest, ctx.signal);
    const body = text || "(no output)\n";
    const note = cut
      ? `[output cut: the first ${
        formatBytes(GIT_OUTPUT_CAP)
      } are shown; narrow it with a path or -n N]`
      : undefined;
    out.write(body.endsWith("\n") ? body : `${body}\n`);
    if (note) out.write(`${note}\n`);
    addContext(agent, ["/git", sub, ...rest].join(" "), body, { note });
  },
};
