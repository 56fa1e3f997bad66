/**
 * The read-only git, one implementation with two faces (`/git` now, the model's git tool
 * next): the policy of `src/security/git_policy.ts`, then git hardened and run in the OS
 * sandbox. Every git Harvey runs goes through {@linkcode hardenGit}: `/git`, safe mode's
 * `!git`, and the `<!-- @git-status -->` section of `HARVEY.md`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { Agent } from "../agent.ts";
import { HarveyError, UsageError } from "../errors.ts";
import { findOnPath } from "../runtime/spawn.ts";
import { commandEnv } from "../security/child_env.ts";
import { runCommand } from "../security/command_runner.ts";
import { checkGitArgs, GIT_READ_ONLY } from "../security/git_policy.ts";
import { SECRET_PATTERNS } from "../security/permissions.ts";
import type { Sandbox } from "../security/sandbox.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { readableRule } from "./readable.ts";

/** The most git output kept (printed, and added to the conversation). */
export const GIT_OUTPUT_CAP = 8 * 1024;

/** How long one git command may run. */
export const GIT_TIMEOUT_MS = 15_000;

/**
 * Configuration that would make git run a program, switched off (`-c` wins over every config
 * file, the repository's own `.git/config` included).
 */
export const GIT_HARDENING: readonly string[] = [
  "core.fsmonitor=false",
  "core.hooksPath=/dev/null",
  "core.pager=cat",
  "core.editor=false",
  "sequence.editor=false",
  "core.sshCommand=false",
  "core.askPass=false",
  "core.gitProxy=false",
  "core.alternateRefsCommand=false",
  "credential.helper=",
  "gpg.program=false",
  "gpg.ssh.program=false",
  "gpg.x509.program=false",
  "log.showSignature=false",
  "protocol.allow=never",
  "submodule.recurse=false",
  "status.submoduleSummary=false",
  "core.attributesFile=/dev/null",
  "color.ui=never",
  "core.quotepath=off",
  // A folder that looks like a bare repository is not one unless named by --git-dir.
  "safe.bareRepository=explicit",
];

/** Subcommands that print file contents: committed secrets are left out of what they show. */
const PRINT_CONTENT = ["diff", "log", "show", "whatchanged", "grep", "diff-tree", "diff-index"];

/**
 * Pathspecs that leave the secret patterns (`.env*`, keys, `.ssh/`, …) out of a git command's
 * output: a secret committed by mistake is as closed to `git show` or `git log -p` as the file
 * itself is to `/read`.
 */
export const SECRET_EXCLUDES: readonly string[] = SECRET_PATTERNS.map((p) =>
  `:(exclude,icase,glob)**/${p.endsWith("/") ? `${p}**` : p}`
);

/** Subcommands that take `--no-ext-diff` and `--no-textconv` (grep only the second). */
const NO_EXT_DIFF = [
  "diff",
  "log",
  "show",
  "whatchanged",
  "diff-tree",
  "diff-files",
  "diff-index",
  "blame",
  "annotate",
  "shortlog",
];

/**
 * git's command line and environment, hardened: `--no-pager`, the {@linkcode GIT_HARDENING}
 * configuration, `--no-ext-diff --no-textconv` where the subcommand takes them, the secrets
 * left out of what prints file contents ({@linkcode SECRET_EXCLUDES}), the workspace's own
 * repository and work tree only (`GIT_DIR`, `GIT_WORK_TREE`: a nested or planted repository is
 * not used), no system or global configuration, no terminal prompt, no optional locks; the
 * environment filtered (`commandEnv`).
 *
 * @example
 * ```ts
 * const { args, env } = hardenGit(["diff", "--stat"], { root: "/w", env: Deno.env.toObject() });
 * // args: ["--no-pager", "-c", "core.fsmonitor=false", …, "diff", "--no-ext-diff", …]
 * ```
 */
export function hardenGit(
  args: readonly string[],
  opts: { root: string; env: Record<string, string> },
): { args: string[]; env: Record<string, string> } {
  let i = 0;
  while (i < args.length && args[i].startsWith("-")) i += args[i] === "-C" ? 2 : 1;
  const sub = args[i];
  const extra = sub && NO_EXT_DIFF.includes(sub)
    ? ["--no-ext-diff", "--no-textconv"]
    : sub === "grep"
    ? ["--no-textconv"]
    : [];
  const rest = args.slice(i + 1);
  // The secrets' excludes go with the user's own pathspecs (after `--`), or limit to `.`.
  const excludes = sub && PRINT_CONTENT.includes(sub)
    ? [...(rest.includes("--") ? [] : ["--", "."]), ...SECRET_EXCLUDES]
    : [];
  return {
    args: [
      "--no-pager",
      ...GIT_HARDENING.flatMap((c) => ["-c", c]),
      ...args.slice(0, i + 1),
      ...extra,
      ...rest,
      ...excludes,
    ],
    env: {
      ...commandEnv(opts.env, { cwd: opts.root }),
      // The workspace's own repository and work tree, whatever a config or a folder says
      // (`core.worktree = /` in a planted repository would open the whole machine).
      GIT_DIR: join(opts.root, ".git"),
      GIT_WORK_TREE: opts.root,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_ATTR_NOSYSTEM: "1",
      GIT_TERMINAL_PROMPT: "0",
      GIT_OPTIONAL_LOCKS: "0",
      GIT_PAGER: "cat",
      PAGER: "cat",
      // Only a repository at or below the workspace: never one in a folder above it.
      GIT_CEILING_DIRECTORIES: dirname(opts.root),
    },
  };
}

/** What {@linkcode gitOutput} returns. */
export interface GitOutput {
  /** Standard output, cut at a whole line when longer than the cap. */
  text: string;
  cut: boolean;
  code: number;
  /** The first line of standard error (or the exit status) when git failed. */
  failure?: string;
  /** Whether it ran inside the sandbox. */
  sandboxed: boolean;
}

/** How {@linkcode gitOutput} runs git. */
export interface GitOutputOptions {
  root: string;
  /** Harvey's environment (filtered before git sees it). */
  env: Record<string, string>;
  /** The sandbox; git runs inside it, the workspace read-only, when it is available. */
  sandbox?: Sandbox;
  signal?: AbortSignal;
  /** Default {@linkcode GIT_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Default {@linkcode GIT_OUTPUT_CAP}. */
  cap?: number;
}

/**
 * Runs `git ARGS…` hardened (and sandboxed when a sandbox is there) at `root`, no policy
 * applied: the caller decides what may run. Throws HarveyError when git is missing, when it
 * ran out of time, or when `signal` aborted it.
 */
export async function gitOutput(
  args: readonly string[],
  opts: GitOutputOptions,
): Promise<GitOutput> {
  const git = findOnPath("git", opts.env.PATH ?? "");
  if (!git) throw new HarveyError("git is not installed (not found on PATH); install git first");
  const hardened = hardenGit(args, { root: opts.root, env: opts.env });
  const sandboxed = opts.sandbox !== undefined && (await opts.sandbox.status()).available;
  const cap = opts.cap ?? GIT_OUTPUT_CAP;
  const timeoutMs = opts.timeoutMs ?? GIT_TIMEOUT_MS;
  const result = await runCommand(git, hardened.args, {
    cwd: opts.root,
    env: hardened.env,
    timeoutMs,
    signal: opts.signal,
    captureBytes: cap,
    stopWhenFull: true,
    stderrBytes: 4096,
    sandbox: sandboxed ? { sandbox: opts.sandbox!, network: false, writable: false } : undefined,
  });
  const sub = args.find((a) => !a.startsWith("-")) ?? "";
  if (result.interrupted) throw new HarveyError("Interrupted");
  if (result.timedOut) {
    throw new HarveyError(
      `git ${sub} took longer than ${
        timeoutMs / 1000
      } s and was stopped; narrow it (a path, -n 20)`,
    );
  }
  let text = result.captured;
  if (result.truncated) {
    const nl = text.lastIndexOf("\n");
    if (nl > 0) text = text.slice(0, nl + 1);
  }
  const failed = result.code !== 0 && !result.truncated;
  return {
    text,
    cut: result.truncated,
    code: result.code,
    failure: failed
      ? escapeControls((result.stderr ?? "").trim().split("\n")[0]) || `exit status ${result.code}`
      : undefined,
    sandboxed,
  };
}

/**
 * The read-only git of `/git` and the model's git tool: refuses what the policy refuses
 * (with `label` in the message, e.g. `/git`), runs the rest through {@linkcode gitOutput} in
 * the session's sandbox, audits it, and returns the output. A git that fails is an error.
 *
 * @example
 * ```ts
 * const { text, cut } = await runGit(agent, ["log", "--oneline", "-n", "5"]);
 * ```
 */
export async function runGit(
  agent: Agent,
  args: readonly string[],
  opts: { signal?: AbortSignal; label?: string } = {},
): Promise<{ text: string; cut: boolean }> {
  const label = opts.label ?? "git";
  const root = agent.workspace.root;
  const shown = ["git", ...args].join(" ");
  const sub = args.find((a) => !a.startsWith("-"));
  const refusal = checkGitArgs(args, { root, readable: readableRule(agent) });
  if (refusal) {
    agent.audit?.record("git", `${shown}: ${refusal.why}`, "denied");
    if (refusal.word === sub && !refusal.path) {
      throw new UsageError(
        `${label} runs only read-only commands (${GIT_READ_ONLY.join(", ")}); "${sub}" is refused`,
      );
    }
    throw new HarveyError(
      refusal.path
        ? `Refused ${label} ${sub ?? ""}: ${refusal.why}`
        : `Refused ${label} argument ${JSON.stringify(refusal.word)}: ${refusal.why}`,
    );
  }
  const sandbox = agent.sandbox;
  const notice = await sandbox?.noticeOnce();
  if (notice) agent.err.write(`${notice}\n`);
  const out = await gitOutput(args, {
    root,
    env: agent.env,
    sandbox,
    signal: opts.signal,
  });
  if (out.failure !== undefined) {
    agent.audit?.record("git", `${shown}: ${out.failure}`, "error");
    throw new HarveyError(`git ${sub ?? ""} failed: ${out.failure}`);
  }
  agent.audit?.record("git", `${shown}${out.sandboxed ? " (sandboxed)" : ""}`, "success");
  return { text: out.text, cut: out.cut };
}
