/**
 * Safe mode: `/run` and `!` start only the commands on the allowlist, by name, found on PATH.
 *
 * The allowlist is a list of program names, so it is only as safe as the programs on it. A
 * few arguments that make an allowed program run another program or delete files are refused
 * as well (`find -exec`, `rg --pre`, `git -c`, `git config core.pager …`); this is a guard
 * against mistakes, not a sandbox.
 *
 * @module
 */
import { posix } from "node:path";

/** The answer of {@linkcode checkSafeMode}. */
export interface SafeModeDecision {
  allowed: boolean;
  /** Why not, as one line for the user. */
  reason?: string;
}

/** Options (or their prefixes, ending in `=`) that make a program run another program. */
const RISKY_OPTIONS: Record<string, readonly string[]> = {
  find: [
    "-exec",
    "-execdir",
    "-ok",
    "-okdir",
    "-delete",
    "-fprint",
    "-fprint0",
    "-fprintf",
    "-fls",
  ],
  rg: ["--pre", "--pre="],
  git: [
    "-c",
    "--config-env",
    "--config-env=",
    "--exec-path",
    "--exec-path=",
    "--upload-pack",
    "--upload-pack=",
    "--receive-pack",
    "--receive-pack=",
    "--exec",
    "--exec=",
    "--extcmd",
    "--extcmd=",
    "-O",
    "--open-files-in-pager",
    "--open-files-in-pager=",
  ],
};

/** git subcommands that run programs named in their arguments or change git's configuration. */
const RISKY_GIT: readonly string[][] = [
  ["filter-branch"],
  ["submodule", "foreach"],
  ["bisect", "run"],
  ["difftool"],
  ["mergetool"],
];
const GIT_CONFIG_READS = ["--get", "--get-all", "--get-regexp", "--list", "-l", "get", "list"];

/** The program name of `argv0`: its last path component. */
export function commandName(argv0: string): string {
  return posix.basename(argv0);
}

/**
 * Decides whether safe mode lets `argv` run: `argv[0]` must be a bare name (no `/`) whose
 * name is on `allowed` (compared by last path component), and no argument may be one that
 * makes it run another program.
 *
 * @example
 * ```ts
 * checkSafeMode(["ls", "-la"], { allowed: ["ls"] }).allowed; // true
 * checkSafeMode(["find", ".", "-delete"], { allowed: ["find"] }).allowed; // false
 * ```
 */
export function checkSafeMode(
  argv: readonly string[],
  opts: { allowed: readonly string[] },
): SafeModeDecision {
  const name = commandName(argv[0] ?? "");
  const allowed = [...new Set(opts.allowed.map(commandName))];
  const list = allowed.length ? allowed.join(", ") : "none";
  if (!allowed.includes(name)) {
    return {
      allowed: false,
      reason:
        `Safe mode does not allow "${name}"; allowed commands: ${list} (/safemode allow ${name} adds it, /safemode off turns safe mode off)`,
    };
  }
  if (argv[0].includes("/")) {
    return {
      allowed: false,
      reason: `Safe mode runs allowed commands by name from PATH, not "${
        argv[0]
      }"; type ${name} alone`,
    };
  }
  const risky = riskyArgument(name, argv.slice(1));
  if (risky) {
    return {
      allowed: false,
      reason:
        `Safe mode refuses "${risky}" for ${name}: it runs other programs or changes files (/safemode off to run it)`,
    };
  }
  return { allowed: true };
}

function riskyArgument(name: string, args: readonly string[]): string | undefined {
  const options = RISKY_OPTIONS[name] ?? [];
  for (const arg of args) {
    if (arg === "--") break;
    if (options.some((o) => o.endsWith("=") ? arg.startsWith(o) : arg === o)) return arg;
  }
  if (name !== "git") return undefined;
  const words = args.filter((a) => !a.startsWith("-"));
  for (const seq of RISKY_GIT) {
    if (seq.every((w, i) => words[i] === w)) return seq.join(" ");
  }
  if (words[0] === "config" && !args.some((a) => GIT_CONFIG_READS.includes(a))) {
    const rest = args.slice(args.indexOf("config") + 1).filter((a) => !a.startsWith("-"));
    if (rest.length !== 1) return "config";
  }
  if (words[0] === "rebase" && args.includes("-x")) return "-x";
  return undefined;
}
