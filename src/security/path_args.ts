/**
 * The one check of a path argument of a command Harvey runs in safe mode: it must resolve
 * inside the workspace, also after following symlinks, and must not be a path whose reading
 * the permissions refuse (a secret).
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { isSecretPath } from "./permissions.ts";

/** Where path arguments are resolved and what may be read. */
export interface PathRules {
  /** The workspace root (its real path). */
  root: string;
  /** The folder relative words are resolved against (default: `root`). */
  cwd?: string;
  /**
   * Why reading this workspace path (relative, "/"-separated) is refused, or undefined when it
   * may be read. Default: refused for secret names.
   */
  readable?: (rel: string) => string | undefined;
}

/**
 * Why `word` may not be used as a path, or undefined when it may: it is outside the
 * workspace, leads outside through a symlink, starts with `~` (there is no shell to expand
 * it), or may not be read. `-` (standard input, which is empty) and `/dev/null` are fine.
 *
 * @example
 * ```ts
 * refusedPath("../x", { root: "/w" }); // "it is outside the workspace"
 * refusedPath("src/a.ts", { root: "/w" }); // undefined
 * ```
 */
export function refusedPath(word: string, rules: PathRules): string | undefined {
  if (word === "" || word === "-" || word === "/dev/null") return undefined;
  if (word.startsWith("~")) {
    return "Harvey runs no shell, so ~ is not expanded; give a path inside the workspace";
  }
  if (word.includes("\0")) return "it holds a NUL byte";
  const root = rules.root;
  const abs = resolve(rules.cwd ?? root, word);
  const rel = insideRoot(root, abs);
  if (rel === undefined) return "it is outside the workspace";
  const realRel = insideRoot(root, realOf(abs));
  if (realRel === undefined) return "it leads outside the workspace through a symlink";
  const readable = rules.readable ?? defaultReadable;
  for (const r of new Set([rel, realRel])) {
    const why = readable(r);
    if (why) return why;
  }
  return undefined;
}

function defaultReadable(rel: string): string | undefined {
  return isSecretPath(rel) ? `it names a secret file (${rel})` : undefined;
}

/** `abs` relative to `root` ("/"-separated, "." for the root), or undefined when outside. */
export function insideRoot(root: string, abs: string): string | undefined {
  const rel = relative(root, abs);
  if (rel === "") return ".";
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  return rel.split(sep).join("/");
}

/** Where `abs` really is: its deepest existing ancestor resolved, the rest appended. */
function realOf(abs: string): string {
  const tail: string[] = [];
  for (let cur = abs;; cur = dirname(cur)) {
    try {
      return join(Deno.realPathSync(cur), ...tail);
    } catch {
      // missing or dangling: try the folder above
    }
    if (dirname(cur) === cur) return abs;
    tail.unshift(basename(cur));
  }
}
