/**
 * Running a program for the user (`/run`, `!`) or the model (the `run_command` tool): one
 * implementation, two faces. {@linkcode runProgram} applies safe mode's policy, the path
 * permissions, the OS sandbox, the filtered environment, the timeout and the audit log; the
 * faces only format what it returns.
 *
 * Where a command runs: with safe mode on, inside the sandbox; a command from the model always
 * inside the sandbox, whatever safe mode says, and refused where there is none (a `git` of
 * either is hardened and sees the workspace read-only); with safe mode off, a command the user typed
 * runs as they asked, outside the sandbox, with the filtered environment. The network inside
 * the sandbox follows `sandbox.network`.
 *
 * @module
 */
import { delimiter, isAbsolute, resolve } from "node:path";
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { findOnPath, isExecutable } from "../runtime/spawn.ts";
import { commandEnv } from "../security/child_env.ts";
import { runCommand, type RunResult } from "../security/command_runner.ts";
import { insideRoot } from "../security/path_args.ts";
import { isSecretPath } from "../security/permissions.ts";
import { checkSafeMode, commandName } from "../security/safe_mode.ts";
import type { SandboxOptions } from "../security/sandbox.ts";
import { SandboxError } from "../workspace.ts";
import { hardenGit } from "./git.ts";
import { readableRule } from "./readable.ts";

/** Who asked for a command. */
export type CommandSource = "user" | "model";

/** How {@linkcode runProgram} runs a command. */
export interface RunProgramOptions {
  source: CommandSource;
  /** Aborted by Ctrl-C: the command's process group (and sandbox) is killed. */
  signal?: AbortSignal;
  /** The output as it arrives (stdout and stderr, decoded, control characters as they are). */
  onOutput?: (text: string) => void;
  /** Bytes of output kept in the result (default 8 KiB). */
  captureBytes?: number;
  /**
   * Asked after every refusal has had its say and before the program starts (the model's
   * approval): false declines it, and {@linkcode DeclinedError} is thrown.
   */
  confirm?: () => Promise<boolean>;
}

/** The command was not run: {@linkcode RunProgramOptions.confirm} said no. */
export class DeclinedError extends HarveyError {
  override name = "DeclinedError";
}

/** How a command ended, and how it ran. */
export interface ProgramResult extends RunResult {
  /** It ran inside the OS sandbox. */
  sandboxed: boolean;
  /** "exited with status 0", "killed after run_timeout 5m", "interrupted", … */
  ending: string;
}

/**
 * Runs `argv` (no shell) in the workspace for `opts.source`. Throws HarveyError, after
 * auditing it, when safe mode or the permissions refuse it, when the program cannot be found
 * or started, and when a command of the model has no sandbox to run in.
 *
 * @example
 * ```ts
 * const r = await runProgram(agent, ["ls", "-la"], { source: "user" });
 * console.log(r.captured, r.ending);
 * ```
 */
export async function runProgram(
  agent: Agent,
  argv: readonly string[],
  opts: RunProgramOptions,
): Promise<ProgramResult> {
  const shown = argv.map(quoteArg).join(" ");
  const deny = (message: string): never => {
    agent.audit?.record("run", `${shown}: ${message}`, "denied");
    throw new HarveyError(message);
  };
  if (argv.length === 0) deny("There is no command to run");
  const config = agent.config.config;
  const root = agent.workspace.root;
  if (config.safe_mode) {
    const decision = checkSafeMode(argv, {
      allowed: config.allowed_commands,
      root,
      readable: readableRule(agent),
    });
    if (!decision.allowed) deny(decision.reason!);
  }
  let env = commandEnv(agent.env, { cwd: root });
  const program = await locate(agent, argv[0], env.PATH ?? "", deny);
  checkArguments(agent, argv.slice(1), deny);

  let args = argv.slice(1);
  let writable = true;
  if ((config.safe_mode || opts.source === "model") && commandName(argv[0]) === "git") {
    ({ args, env } = hardenGit(args, { root, env: agent.env }));
    writable = false; // the read-only git writes nothing
  }
  let sandbox: ({ sandbox: NonNullable<Agent["sandbox"]> } & SandboxOptions) | undefined;
  if (opts.source === "model" || config.safe_mode) {
    const status = await agent.sandbox?.status();
    if (agent.sandbox && status?.available) {
      sandbox = { sandbox: agent.sandbox, network: config.sandbox.network, writable };
    } else if (opts.source === "model") {
      deny(
        `Refused: commands from the model run only inside the OS sandbox, and there is none: ${
          status ? `${status.detail}${status.howTo ? ` (${status.howTo})` : ""}` : "no sandbox"
        }`,
      );
    } else {
      const notice = await agent.sandbox?.noticeOnce();
      if (notice) agent.err.write(`${notice}\n`);
    }
  }

  const where = sandbox ? " (sandboxed)" : "";
  if (opts.confirm && !await opts.confirm()) {
    agent.audit?.record("run", `${shown}${where}: declined by the user`, "denied");
    throw new DeclinedError(`${shown} was declined`);
  }
  agent.audit?.record("run", `${shown}${where}`, "allowed");
  let result: RunResult;
  try {
    result = await runCommand(program, args, {
      cwd: root,
      env,
      timeoutMs: config.run_timeout,
      signal: opts.signal,
      onOutput: opts.onOutput,
      captureBytes: opts.captureBytes,
      sandbox,
    });
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
    agent.audit?.record("run", `${shown}: could not start: ${why}`, "error");
    throw new HarveyError(`Could not start ${argv[0]}: ${why}`);
  }
  const ending = describeEnding(result, config.run_timeout);
  const ok = result.code === 0 && !result.timedOut && !result.interrupted;
  agent.audit?.record("run", `${shown}: ${ending}`, ok ? "success" : "error");
  return { ...result, sandboxed: sandbox !== undefined, ending };
}

/**
 * The absolute path of the program: a bare name is looked up in the absolute folders of the
 * child's PATH; a path must lie inside the workspace and have `exec` permission.
 */
async function locate(
  agent: Agent,
  name: string,
  pathVar: string,
  deny: (message: string) => never,
): Promise<string> {
  const root = agent.workspace.root;
  if (!name.includes("/")) {
    const dirs = pathVar.split(delimiter).filter((d) => isAbsolute(d)).join(delimiter);
    const found = findOnPath(name, dirs);
    if (!found) {
      agent.audit?.record("run", `${name}: not found on PATH`, "error");
      throw new HarveyError(
        `Command "${name}" was not found on PATH (give a path such as ./${name} for a program in the workspace)`,
      );
    }
    const rel = insideRoot(root, Deno.realPathSync(found));
    if (rel !== undefined) checkExec(agent, rel, deny);
    return found;
  }
  let abs: string;
  try {
    abs = await agent.workspace.resolve(name);
  } catch (err) {
    if (err instanceof SandboxError) {
      deny(
        `"${name}" is outside the workspace; run a program from PATH by its bare name, or one inside the workspace`,
      );
    }
    throw err;
  }
  checkExec(agent, agent.workspace.relative(abs), deny);
  if (!exists(abs)) {
    agent.audit?.record("run", `${name}: no such file`, "error");
    throw new HarveyError(`"${name}" does not exist in the workspace`);
  }
  if (!isExecutable(abs)) {
    agent.audit?.record("run", `${name}: not an executable file`, "error");
    throw new HarveyError(
      `"${name}" is not an executable file (make it executable, or run it through its interpreter)`,
    );
  }
  return abs;
}

function checkExec(agent: Agent, rel: string, deny: (message: string) => never): void {
  try {
    agent.checkPath?.(rel, "exec");
  } catch (err) {
    if (err instanceof HarveyError) deny(err.message);
    throw err;
  }
}

/**
 * Also with safe mode off, against `cat .env`: an argument (or the value of `--opt=value`)
 * that names an existing file inside the workspace needs `read` permission on it, and one
 * whose name is a secret (`id_rsa`, `*.pem`, …) is refused wherever it is.
 */
function checkArguments(
  agent: Agent,
  args: readonly string[],
  deny: (message: string) => never,
): void {
  const root = agent.workspace.root;
  const readable = readableRule(agent);
  for (const arg of args) {
    const candidates = [arg];
    const eq = arg.indexOf("=");
    if (arg.startsWith("-") && eq > 0) candidates.push(arg.slice(eq + 1));
    for (const word of candidates) {
      if (!word || (word.startsWith("-") && word === arg)) continue;
      const abs = resolve(root, word);
      const rel = insideRoot(root, abs);
      if (rel === undefined) {
        if (isSecretPath(word.split("/").filter(Boolean).at(-1) ?? "")) {
          deny(`Argument "${word}" names a secret file; Harvey does not pass it to commands`);
        }
        continue;
      }
      if (!exists(abs)) continue;
      const why = readable(rel);
      if (why) deny(why);
    }
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** How a command ended, in a few words. */
export function describeEnding(r: RunResult, timeoutMs: number): string {
  if (r.timedOut) return `killed after run_timeout ${formatMs(timeoutMs)}`;
  if (r.interrupted) return "interrupted";
  if (r.signal) return `killed by ${r.signal}`;
  return `exited with status ${r.code}`;
}

/** Quotes an argument for display when it has spaces or quotes. */
export function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** 300000 → "5m", 90000 → "1m30s", 1500 → "1.5s", 250 → "250ms". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m}m${s}s` : `${m}m`;
}
