/**
 * Safe mode: `/run` and `!` start only the commands on the allowlist, by name, found on PATH,
 * and an allowed read-only command cannot write, run code, reach outside the workspace or
 * print a secret. That is a policy of arguments, not only of names: for each default command
 * the options that write, execute or follow symlinks out are refused, and every path argument
 * (a word or an option's value) must resolve inside the workspace and be readable; git is held
 * to its read-only subcommands (`src/security/git_policy.ts`). The OS sandbox
 * (`src/security/sandbox.ts`) is the wall behind this policy: what the policy misses, it
 * contains.
 *
 * @module
 */
import { posix } from "node:path";
import { checkGitArgs } from "./git_policy.ts";
import { type PathRules, refusedPath } from "./path_args.ts";

/** The answer of {@linkcode checkSafeMode}. */
export interface SafeModeDecision {
  allowed: boolean;
  /** Why not, as one line for the user. */
  reason?: string;
}

/** One refused argument and why, as a clause ("it runs another program"). */
export interface Refusal {
  word: string;
  why: string;
  /** The refusal is about a path (outside, secret) rather than an option or a subcommand. */
  path?: boolean;
}

const RUNS = "it runs another program";
const WRITES = "it writes or deletes files";
const FOLLOWS = "it follows symlinks out of the workspace";

/** How the arguments of one command are read. */
export interface ArgRules {
  /** Refused long options (`--pre`), with why; an abbreviation of one is refused too. */
  long?: Record<string, string>;
  /** Refused short options (one letter), with why. */
  short?: Record<string, string>;
  /** Long options that take a value (the next word when there is no `=`). */
  longValued?: readonly string[];
  /** Short options (letters) that take a value (the rest of the word, or the next word). */
  shortValued?: string;
  /** Options whose values are not paths (patterns, formats, numbers). */
  notPaths?: readonly string[];
  /**
   * The first positional word is a pattern, not a path, unless one of these options gives
   * the pattern (`-e`, `-f`) or makes the command take none (`--files`).
   */
  pattern?: readonly string[];
}

const GREP_CONTEXT = ["-A", "-B", "-C", "--after-context", "--before-context", "--context"];

/** The argument rules of the default allowed commands (git has its own, in git_policy.ts). */
export const COMMAND_RULES: Record<string, ArgRules> = {
  ls: {
    short: { L: FOLLOWS },
    long: { "--dereference": FOLLOWS },
    shortValued: "IwT",
    longValued: [
      "--hide",
      "--ignore",
      "--width",
      "--tabsize",
      "--format",
      "--time-style",
      "--sort",
      "--block-size",
      "--indicator-style",
      "--quoting-style",
      "--time",
    ],
    notPaths: ["-I", "-w", "-T", "--hide", "--ignore", "--width", "--tabsize", "--format"]
      .concat(["--time-style", "--sort", "--block-size", "--indicator-style"])
      .concat(["--quoting-style", "--time", "--color"]),
  },
  stat: {
    short: { L: FOLLOWS },
    long: { "--dereference": FOLLOWS },
    shortValued: "c",
    longValued: ["--format", "--printf", "--cached"],
    notPaths: ["-c", "--format", "--printf", "--cached"],
  },
  cat: {},
  head: {
    shortValued: "nc",
    longValued: ["--lines", "--bytes"],
    notPaths: ["-n", "-c", "--lines", "--bytes"],
  },
  tail: {
    shortValued: "ncs",
    longValued: ["--lines", "--bytes", "--pid", "--sleep-interval", "--max-unchanged-stats"],
    notPaths: ["-n", "-c", "-s", "--lines", "--bytes", "--pid", "--sleep-interval"]
      .concat(["--max-unchanged-stats"]),
  },
  wc: { longValued: ["--files0-from"] },
  grep: {
    short: { R: FOLLOWS },
    long: { "--dereference-recursive": FOLLOWS },
    shortValued: "efmABCdD",
    longValued: [
      "--regexp",
      "--file",
      "--max-count",
      "--label",
      "--include",
      "--exclude",
      "--exclude-dir",
      "--exclude-from",
      "--directories",
      "--devices",
      "--binary-files",
      "--color",
      "--colour",
      "--group-separator",
      ...GREP_CONTEXT,
    ],
    notPaths: ["-e", "-m", "-d", "-D", "--regexp", "--max-count", "--label", "--include"]
      .concat(["--exclude", "--exclude-dir", "--directories", "--devices", "--binary-files"])
      .concat(["--color", "--colour", "--group-separator", ...GREP_CONTEXT]),
    pattern: ["-e", "-f", "--regexp", "--file"],
  },
  rg: {
    short: { z: RUNS, L: FOLLOWS },
    long: {
      "--pre": RUNS,
      "--pre-glob": RUNS,
      "--search-zip": RUNS,
      "--hostname-bin": RUNS,
      "--follow": FOLLOWS,
    },
    shortValued: "efgtTmABCMjdErV",
    longValued: [
      "--regexp",
      "--file",
      "--glob",
      "--iglob",
      "--type",
      "--type-not",
      "--type-add",
      "--type-clear",
      "--max-count",
      "--max-columns",
      "--threads",
      "--max-depth",
      "--max-filesize",
      "--ignore-file",
      "--colors",
      "--color",
      "--encoding",
      "--engine",
      "--sort",
      "--sortr",
      "--replace",
      "--path-separator",
      "--context-separator",
      "--field-match-separator",
      "--field-context-separator",
      "--dfa-size-limit",
      "--regex-size-limit",
      "--hyperlink-format",
      ...GREP_CONTEXT,
    ],
    notPaths: ["-e", "-g", "-t", "-T", "-m", "-M", "-j", "-d", "-E", "-r", "-V"]
      .concat(["--regexp", "--glob", "--iglob", "--type", "--type-not", "--type-add"])
      .concat(["--type-clear", "--max-count", "--max-columns", "--threads", "--max-depth"])
      .concat(["--max-filesize", "--colors", "--color", "--encoding", "--engine", "--sort"])
      .concat(["--sortr", "--replace", "--path-separator", "--context-separator"])
      .concat(["--field-match-separator", "--field-context-separator", "--dfa-size-limit"])
      .concat(["--regex-size-limit", "--hyperlink-format", ...GREP_CONTEXT]),
    pattern: ["-e", "-f", "--regexp", "--file", "--files", "--type-list"],
  },
};

/** find's expression words that run programs, write files or follow symlinks. */
const FIND_REFUSED: Record<string, string> = {
  "-exec": RUNS,
  "-execdir": RUNS,
  "-ok": RUNS,
  "-okdir": RUNS,
  "-delete": WRITES,
  "-fprint": WRITES,
  "-fprint0": WRITES,
  "-fprintf": WRITES,
  "-fls": WRITES,
  "-follow": FOLLOWS,
  "-L": FOLLOWS,
};
/** find's expression words whose value is a path. */
const FIND_PATH_VALUED = ["-newer", "-anewer", "-cnewer", "-samefile", "-files0-from"];
/** find's expression words whose value is not a path. */
const FIND_VALUED = [
  ...["-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex"],
  ...["-lname", "-ilname", "-type", "-xtype", "-perm", "-size", "-user", "-group", "-uid"],
  ...["-gid", "-mtime", "-atime", "-ctime", "-mmin", "-amin", "-cmin", "-maxdepth", "-mindepth"],
  ...["-links", "-inum", "-used", "-printf", "-fstype", "-context", "-regextype", "-D", "-O"],
];

/** The program name of `argv0`: its last path component. */
export function commandName(argv0: string): string {
  return posix.basename(argv0);
}

/**
 * Decides whether safe mode lets `argv` run: `argv[0]` must be a bare name (no `/`) on
 * `allowed`; no option may write, run another program or follow symlinks out; every path
 * argument must resolve inside `root` and be readable (`readable`, default: not a secret);
 * git runs only its read-only subcommands. A command added to the allowlist by the user has
 * its path arguments checked; what it does with them is the user's choice.
 *
 * @example
 * ```ts
 * checkSafeMode(["ls", "-la"], { allowed: ["ls"], root: "/w" }).allowed; // true
 * checkSafeMode(["find", ".", "-delete"], { allowed: ["find"], root: "/w" }).allowed; // false
 * checkSafeMode(["cat", "../x"], { allowed: ["cat"], root: "/w" }).allowed; // false
 * ```
 */
export function checkSafeMode(
  argv: readonly string[],
  opts: { allowed: readonly string[] } & PathRules,
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
  const refusal = refusedArgument(name, argv.slice(1), opts);
  if (!refusal) return { allowed: true };
  return {
    allowed: false,
    reason: `Safe mode refuses "${refusal.word}" for ${name}: ${refusal.why}${
      refusal.path ? "" : " (/safemode off to run it)"
    }`,
  };
}

/** The first argument of `name` that safe mode refuses, or undefined. */
export function refusedArgument(
  name: string,
  args: readonly string[],
  rules: PathRules,
): Refusal | undefined {
  if (name === "git") return checkGitArgs(args, rules);
  if (name === "find") return refusedFindArgument(args, rules);
  return refusedByRules(args, COMMAND_RULES[name] ?? {}, rules);
}

/** One word (or option and value) of a command line, as getopt reads it. */
type Token =
  | { kind: "refused"; word: string; why: string }
  | { kind: "option"; option: string; value?: string }
  | { kind: "positional"; word: string };

/** Reads `args` getopt style: `--long[=value]`, clusters of short letters, `--` ends options. */
function tokenize(args: readonly string[], argRules: ArgRules): Token[] {
  const long = argRules.long ?? {};
  const short = argRules.short ?? {};
  const longValued = argRules.longValued ?? [];
  const shortValued = argRules.shortValued ?? "";
  const tokens: Token[] = [];
  let options = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (options && arg === "--") {
      options = false;
    } else if (options && arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const opt = eq < 0 ? arg : arg.slice(0, eq);
      // getopt takes an unambiguous abbreviation of a long option for the option.
      const refused = Object.keys(long).find((o) => o.startsWith(opt) && opt.length > 2);
      if (refused) {
        tokens.push({ kind: "refused", word: arg, why: long[refused] });
        continue;
      }
      const named = longValued.find((o) => o === opt) ??
        longValued.find((o) => o.startsWith(opt) && opt.length > 3);
      const option = named ?? opt;
      if (eq >= 0) tokens.push({ kind: "option", option, value: arg.slice(eq + 1) });
      else if (named) tokens.push({ kind: "option", option, value: args[++i] });
      else tokens.push({ kind: "option", option });
    } else if (options && arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j];
        if (short[letter]) {
          tokens.push({ kind: "refused", word: arg, why: short[letter] });
          break;
        }
        if (shortValued.includes(letter)) {
          const rest = arg.slice(j + 1);
          tokens.push({ kind: "option", option: `-${letter}`, value: rest || args[++i] });
          break;
        }
        tokens.push({ kind: "option", option: `-${letter}` });
      }
    } else {
      tokens.push({ kind: "positional", word: arg });
    }
  }
  return tokens;
}

/**
 * Reads `args` by `argRules` and returns the first refused option or path: a refused option,
 * an option value that is a path and is refused, or a positional word (but the pattern) that
 * is refused.
 */
export function refusedByRules(
  args: readonly string[],
  argRules: ArgRules,
  rules: PathRules,
): Refusal | undefined {
  const tokens = tokenize(args, argRules);
  const notPaths = argRules.notPaths ?? [];
  let patternPending = argRules.pattern !== undefined &&
    !tokens.some((t) => t.kind === "option" && argRules.pattern!.includes(t.option));
  for (const t of tokens) {
    let word: string | undefined;
    if (t.kind === "refused") return { word: t.word, why: t.why };
    if (t.kind === "option") {
      if (t.value !== undefined && !notPaths.includes(t.option)) word = t.value;
    } else if (patternPending) {
      patternPending = false;
    } else {
      word = t.word;
    }
    if (word === undefined) continue;
    const why = refusedPath(word, rules);
    if (why) return { word, why, path: true };
  }
  return undefined;
}

/** find: its starting points are paths, its expression is checked word by word. */
function refusedFindArgument(args: readonly string[], rules: PathRules): Refusal | undefined {
  const pathOf = (word: string): Refusal | undefined => {
    const why = refusedPath(word, rules);
    return why ? { word, why, path: true } : undefined;
  };
  let i = 0;
  // Leading options: -H -L -P -D DEBUG -O LEVEL.
  for (; i < args.length && /^-[HLPDO]/.test(args[i]); i++) {
    if (args[i] === "-L") return { word: "-L", why: FOLLOWS };
    if (args[i] === "-D") i++;
  }
  for (; i < args.length && !/^[-(),!]/.test(args[i]); i++) {
    const r = pathOf(args[i]);
    if (r) return r;
  }
  for (; i < args.length; i++) {
    const word = args[i];
    if (FIND_REFUSED[word]) return { word, why: FIND_REFUSED[word] };
    if (FIND_PATH_VALUED.includes(word) || /^-newer[amcB][amcB]$/.test(word)) {
      const next = args[++i];
      if (next !== undefined && !/^-newer..t$/.test(word)) {
        const r = pathOf(next);
        if (r) return r;
      }
    } else if (FIND_VALUED.includes(word) || /^-newer..t$/.test(word)) {
      i++;
    }
  }
  return undefined;
}
