/**
 * `/run COMMAND [ARGS…]` and `!COMMAND`: run a program in the workspace without a shell and
 * add its output to the conversation.
 *
 * @module
 */
import { delimiter, isAbsolute, relative, resolve, sep } from "node:path";
import type { Agent } from "../agent.ts";
import { HarveyError, UsageError } from "../errors.ts";
import { findOnPath, isExecutable } from "../runtime/spawn.ts";
import { commandEnv } from "../security/child_env.ts";
import { runCommand, type RunResult } from "../security/command_runner.ts";
import { isSecretPath } from "../security/permissions.ts";
import { checkSafeMode } from "../security/safe_mode.ts";
import { SandboxError } from "../workspace.ts";
import { addContext } from "./files.ts";
import type { CommandSpec } from "./registry.ts";

/** Bytes of a command's output that go into the conversation. */
export const RUN_CONTEXT_BYTES = 8192;

/** `/run COMMAND [ARGS…]` */
export const runCommandSpec: CommandSpec = {
  name: "run",
  usage: ["/run COMMAND [ARGS…]", "!COMMAND [ARGS…]"],
  summary: "Run a program in the workspace (no shell) and add its output to the conversation",
  complete: (agent, before) =>
    before.length === 0 && agent.config.config.safe_mode
      ? agent.config.config.allowed_commands
      : [],
  async run(agent, args, out, ctx) {
    if (args.length === 0) throw new UsageError("Usage: /run COMMAND [ARGS…] (or !COMMAND)");
    const shown = args.map(quoteArg).join(" ");
    const deny = (message: string): never => {
      agent.audit?.record("run", `${shown}: ${message}`, "denied");
      throw new HarveyError(message);
    };
    const config = agent.config.config;
    if (config.safe_mode) {
      const decision = checkSafeMode(args, { allowed: config.allowed_commands });
      if (!decision.allowed) deny(decision.reason!);
    }
    const env = commandEnv(agent.env, { cwd: agent.workspace.root });
    const program = await locate(agent, args[0], env.PATH ?? "", deny);
    checkArguments(agent, args.slice(1), deny);

    agent.audit?.record("run", shown, "allowed");
    let last = "\n";
    let result: RunResult;
    try {
      result = await runCommand(program, args.slice(1), {
        cwd: agent.workspace.root,
        env,
        timeoutMs: config.run_timeout,
        signal: ctx.signal,
        onOutput: (text) => {
          out.write(text);
          last = text;
        },
        captureBytes: RUN_CONTEXT_BYTES,
      });
    } catch (err) {
      const why = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
      agent.audit?.record("run", `${shown}: could not start: ${why}`, "error");
      throw new HarveyError(`Could not start ${args[0]}: ${why}`);
    }
    if (!last.endsWith("\n")) out.write("\n");

    const ending = describeEnding(result, config.run_timeout);
    const cutNote = result.truncated
      ? `[output cut at ${
        RUN_CONTEXT_BYTES / 1024
      } KB for the conversation; ${result.totalBytes} bytes in all]`
      : "";
    addContext(agent, `/run ${ctx.rest.trim() || shown}`, result.captured, {
      note: [cutNote, `[${ending}]`].filter(Boolean).join("\n"),
    });
    if (cutNote) out.write(`${cutNote}\n`);
    const ok = result.code === 0 && !result.timedOut && !result.interrupted;
    agent.audit?.record("run", `${shown}: ${ending}`, ok ? "success" : "error");
    if (ok) out.write(`[${ending}]\n`);
    if (result.timedOut) {
      throw new HarveyError(
        `${args[0]} ran longer than run_timeout (${
          formatMs(config.run_timeout)
        }) and was killed with its process group; raise run_timeout in agents/harvey.yaml if it needs longer`,
      );
    }
    if (result.interrupted) throw new HarveyError(`Interrupted: ${args[0]} was stopped`);
    if (result.code !== 0) throw new HarveyError(`${args[0]} ${ending}`);
  },
};

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
 * Best effort against `cat .env`: an argument (or the value of `--opt=value`) that names an
 * existing file inside the workspace needs `read` permission on it, and one whose name is a
 * secret (`id_rsa`, `*.pem`, …) is refused wherever it is.
 */
function checkArguments(agent: Agent, args: string[], deny: (message: string) => never): void {
  const root = agent.workspace.root;
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
      try {
        agent.checkPath?.(rel, "read");
      } catch (err) {
        if (err instanceof HarveyError) deny(err.message);
        throw err;
      }
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

/** `abs` relative to `root` ("/"-separated), or undefined when outside. */
function insideRoot(root: string, abs: string): string | undefined {
  const rel = relative(root, abs);
  if (rel === "") return ".";
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  return rel.split(sep).join("/");
}

function describeEnding(r: RunResult, timeoutMs: number): string {
  if (r.timedOut) return `killed after run_timeout ${formatMs(timeoutMs)}`;
  if (r.interrupted) return "interrupted";
  if (r.signal) return `killed by ${r.signal}`;
  return `exited with status ${r.code}`;
}

/** Quotes an argument for display when it has spaces or quotes. */
function quoteArg(arg: string): string {
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
