/**
 * The read-only git that safe mode's `!git` and `/git` run: which subcommands, which options
 * and which paths. git can write files (`--output`), run programs (`--upload-pack`,
 * `--config`, `--template`, textconv drivers), and read any blob (`REV:path`); this policy
 * keeps the subcommands that only read and refuses their writing and executing options and
 * the paths outside the workspace or secret. What git runs from a repository's own config
 * is switched off by the hardening in `src/ops/git.ts` and contained by the sandbox.
 *
 * @module
 */
import { resolve } from "node:path";
import { type PathRules, refusedPath } from "./path_args.ts";
import type { Refusal } from "./safe_mode.ts";

/** The subcommands that only read. `branch` and `tag` only list (see below). */
export const GIT_READ_ONLY = [
  "status",
  "diff",
  "log",
  "show",
  "blame",
  "annotate",
  "grep",
  "ls-files",
  "ls-tree",
  "rev-parse",
  "rev-list",
  "shortlog",
  "describe",
  "branch",
  "tag",
  "cat-file",
  "show-ref",
  "for-each-ref",
  "merge-base",
  "name-rev",
  "count-objects",
  "whatchanged",
  "diff-tree",
  "diff-files",
  "diff-index",
  "reflog",
] as const;

const RUNS = "it runs another program";
const WRITES = "it writes files";
const CONFIG = "it changes git's configuration, which can name programs to run";

/** Global options (before the subcommand) that are refused, with why. */
const GLOBAL_REFUSED: Record<string, string> = {
  "-c": CONFIG,
  "--config-env": CONFIG,
  "--exec-path": RUNS,
  "--git-dir": "it points git at another repository",
  "--work-tree": "it points git at another work tree",
  "--namespace": "it changes which refs git sees",
  "--super-prefix": "it is internal to git",
  "--bare": "it points git at another repository",
  "--attr-source": "it changes which attributes git reads",
  "--help": "it starts a manual viewer",
  "--html-path": "it is not a repository command",
  "--man-path": "it is not a repository command",
  "--info-path": "it is not a repository command",
  "--list-cmds": "it is not a repository command",
};
/** Global options that are fine. `-C DIR` is checked as a path. */
const GLOBAL_OK = [
  "--no-pager",
  "-P",
  "--no-optional-locks",
  "--literal-pathspecs",
  "--glob-pathspecs",
  "--noglob-pathspecs",
  "--icase-pathspecs",
  "--no-replace-objects",
  "--no-lazy-fetch",
];

/** Options refused after any subcommand: long names (abbreviations too) and prefixes. */
const REFUSED: Record<string, string> = {
  "--output": WRITES,
  "--output-directory": WRITES,
  "--ext-diff": RUNS,
  "--textconv": RUNS,
  "--filters": RUNS,
  "--exec": RUNS,
  "--extcmd": RUNS,
  "--tool": RUNS,
  "--upload-pack": RUNS,
  "--receive-pack": RUNS,
  "--config": CONFIG,
  "--template": RUNS,
  "--show-signature": "it runs gpg",
  "--open-files-in-pager": RUNS,
  "--edit-description": RUNS,
};
/** Options whose value is a path to read. */
const PATH_OPTIONS = [
  "--contents",
  "--ignore-revs-file",
  "--pathspec-from-file",
  "--orderfile",
  "--exclude-from",
  "--exclude-per-directory",
];

/** Options of `git branch` that only list or filter. */
const BRANCH_LIST = [
  "-a",
  "--all",
  "-r",
  "--remotes",
  "-l",
  "--list",
  "-v",
  "-vv",
  "--verbose",
  "-q",
  "--quiet",
  "--show-current",
  "--color",
  "--no-color",
  "--column",
  "--no-column",
  "--sort",
  "--format",
  "--contains",
  "--no-contains",
  "--merged",
  "--no-merged",
  "--points-at",
  "-i",
  "--ignore-case",
  "--abbrev",
  "--no-abbrev",
  "--omit-empty",
];
/** Options of `git tag` that only list or filter (`-n` takes a count). */
const TAG_LIST = [
  "-l",
  "--list",
  "--contains",
  "--no-contains",
  "--merged",
  "--no-merged",
  "--points-at",
  "--sort",
  "--format",
  "--column",
  "--no-column",
  "-i",
  "--ignore-case",
  "--color",
  "--no-color",
  "--omit-empty",
];
/** Options that put `branch` and `tag` in list mode, so their words are patterns or commits. */
const LIST_MODE = ["-l", "--list", "--contains", "--no-contains", "--merged", "--no-merged"]
  .concat(["--points-at", "-a", "--all", "-r", "--remotes", "--show-current"]);

/**
 * The first argument of `git ARGS…` that the read-only policy refuses, or undefined.
 *
 * @example
 * ```ts
 * checkGitArgs(["log", "--oneline"], { root: "/w" }); // undefined
 * checkGitArgs(["log", "--output=.git/config"], { root: "/w" })?.why; // "it writes files"
 * checkGitArgs(["clean", "-fdx"], { root: "/w" })?.word; // "clean"
 * ```
 */
export function checkGitArgs(args: readonly string[], rules: PathRules): Refusal | undefined {
  let cwd = rules.cwd ?? rules.root;
  let i = 0;
  for (; i < args.length && args[i].startsWith("-"); i++) {
    const arg = args[i];
    const name = arg.includes("=") ? arg.slice(0, arg.indexOf("=")) : arg;
    if (arg === "-C" || (arg.startsWith("-C") && arg.length > 2)) {
      const dir = arg === "-C" ? args[++i] : arg.slice(2);
      if (dir === undefined) return { word: arg, why: "it needs a folder" };
      const why = refusedPath(dir, { ...rules, cwd });
      if (why) return { word: dir, why, path: true };
      cwd = resolve(cwd, dir);
      continue;
    }
    if (arg.startsWith("-c") && arg !== "-c") return { word: arg, why: CONFIG };
    const refused = Object.keys(GLOBAL_REFUSED).find((o) => o === name);
    if (refused) return { word: arg, why: GLOBAL_REFUSED[refused] };
    if (!GLOBAL_OK.includes(arg)) {
      return { word: arg, why: "safe mode does not know this option of git" };
    }
  }
  const sub = args[i];
  if (sub === undefined) return { word: "git", why: "it needs a subcommand" };
  if (!(GIT_READ_ONLY as readonly string[]).includes(sub)) {
    return {
      word: sub,
      why: `git ${sub} is not one of the read-only subcommands (${GIT_READ_ONLY.join(", ")})`,
    };
  }
  return checkSubcommand(sub, args.slice(i + 1), { ...rules, cwd });
}

function checkSubcommand(
  sub: string,
  args: readonly string[],
  rules: PathRules,
): Refusal | undefined {
  const pathOf = (word: string): Refusal | undefined => {
    const why = refusedPath(word, rules);
    return why ? { word, why, path: true } : undefined;
  };
  const listing = args.some((a) => LIST_MODE.includes(a.split("=")[0]));
  let patternPending = sub === "grep" &&
    !args.some((a) => /^(-e|-f|--and|--or|--not|--all-match)/.test(a) || a === "-e");
  let options = true;
  for (let j = 0; j < args.length; j++) {
    const arg = args[j];
    if (options && arg === "--") {
      options = false;
      continue;
    }
    if (options && arg.startsWith("-") && arg.length > 1) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg : arg.slice(0, eq);
      if (name.startsWith("--")) {
        const refused = Object.keys(REFUSED).find((o) => o.startsWith(name) && name.length > 3);
        if (refused && !(sub === "ls-files" && name === "--others")) {
          return { word: arg, why: REFUSED[refused] };
        }
        if (PATH_OPTIONS.includes(name)) {
          const value = eq >= 0 ? arg.slice(eq + 1) : args[++j];
          if (value !== undefined) {
            const r = pathOf(value);
            if (r) return r;
          }
        }
      } else {
        // Short options: -c (combined diffs here, but clone's --config) and -o (the output
        // file of archive and format-patch; ls-files and grep read it otherwise) are refused;
        // -O names an order file for diff and log, and opens a pager for grep.
        if (arg.startsWith("-c")) return { word: arg, why: CONFIG };
        if (arg.startsWith("-o") && sub !== "ls-files" && sub !== "grep") {
          return { word: arg, why: WRITES };
        }
        if (arg.startsWith("-O")) {
          if (sub === "grep") return { word: arg, why: RUNS };
          const r = arg.length > 2 ? pathOf(arg.slice(2)) : undefined;
          if (r) return r;
        }
        if (arg.startsWith("-L") && (sub === "log")) {
          const file = arg.slice(arg.lastIndexOf(":") + 1);
          const r = arg.includes(":") ? pathOf(file) : undefined;
          if (r) return r;
        }
        if (sub === "grep" && /^-[a-zA-Z]*[ef]$/.test(arg)) patternPending = false;
      }
      if ((sub === "branch" || sub === "tag") && !listOption(sub, name)) {
        return { word: arg, why: `it changes ${sub === "branch" ? "branches" : "tags"}` };
      }
      if (sub === "tag" && name === "-v") return { word: arg, why: "it runs gpg" };
      continue;
    }
    if (sub === "branch" || sub === "tag") {
      if (!listing) {
        return {
          word: arg,
          why: `git ${sub} NAME makes a ${sub}; only listing is allowed (git ${sub} --list)`,
        };
      }
      continue;
    }
    if (sub === "reflog" && j === 0 && ["expire", "delete", "drop"].includes(arg)) {
      return { word: arg, why: WRITES };
    }
    if (patternPending) {
      patternPending = false;
      continue;
    }
    const r = checkRevOrPath(arg, rules);
    if (r) return r;
  }
  return undefined;
}

function listOption(sub: string, name: string): boolean {
  if (sub === "tag" && /^-n\d*$/.test(name)) return true;
  return (sub === "branch" ? BRANCH_LIST : TAG_LIST).includes(name);
}

/**
 * A positional word of git: a path, a revision, `REV:path` (a blob: its path is checked), an
 * index path (`:path`, `:2:path`) or pathspec magic (`:(exclude)path`, `:!path`).
 */
function checkRevOrPath(word: string, rules: PathRules): Refusal | undefined {
  let path = word;
  const magic = /^:(\([^)]*\)|[!^/]+)(.*)$/.exec(word);
  if (magic) {
    path = magic[2];
    if (magic[1].includes("/")) path = path || ".";
  } else {
    const colon = word.indexOf(":");
    if (colon >= 0) path = word.slice(colon + 1).replace(/^\d:/, "");
  }
  if (path === "") return undefined;
  const why = refusedPath(path, rules);
  return why ? { word, why, path: true } : undefined;
}
