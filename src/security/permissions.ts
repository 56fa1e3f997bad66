/**
 * Path permissions: which of `read`, `write`, `exec` and `delete` a workspace path allows.
 *
 * `permissions` in `harvey.yaml` maps path prefixes (relative to the workspace, whole path
 * components: `src` covers `src/a.ts`, not `srcx`) to the operations they allow; the longest
 * prefix that matches wins, and `.` covers the whole workspace. A path no entry matches allows
 * everything — the workspace sandbox already keeps Harvey inside the folder — except secrets
 * (see {@linkcode SECRET_PATTERNS}; names compared without regard to case, as a
 * case-insensitive file system would), which only an entry for exactly that path opens, every
 * `.git` folder (nested ones too), read-only unless an entry inside it says otherwise, and
 * `agents/audit.jsonl`, which stays read-only unless an entry names it.
 *
 * @module
 */
import { posix } from "node:path";
import { HarveyError, UsageError } from "../errors.ts";

/** One operation on a path. */
export type Perm = "read" | "write" | "exec" | "delete";

/** Every operation, in display order. */
export const PERMS: readonly Perm[] = ["read", "write", "exec", "delete"];

/** The answer of {@linkcode checkPath}. */
export interface PathDecision {
  allowed: boolean;
  /** The normalized path that was checked. */
  path: string;
  /** The permissions entry that decided, when one did. */
  rule?: string;
  /** Why, in a few words, for messages and the audit log. */
  reason: string;
}

/**
 * File names that hold secrets, refused unless an entry names exactly the path; matched
 * without regard to case (`.ENV`, `server.PEM` and `ID_RSA` are the same files on macOS and
 * Windows, and just as secret elsewhere).
 */
const SECRET_NAMES: readonly RegExp[] = [
  /^\.env/i, // .env, .env.local, .envrc
  /\.(pem|key|p12|pfx|jks|keystore|kdbx|ppk)$/i, // keys, certificates with keys, key stores
  /^id_(rsa|dsa|ecdsa|ed25519)/i, // ssh keys (and their .pub halves)
  /^[._]netrc$/i,
  /^\.(npmrc|pypirc|pgpass|git-credentials|htpasswd)$/i, // registry tokens, passwords
];
/** Folders whose every file is a secret. */
const SECRET_FOLDERS: readonly string[] = [".ssh", ".gnupg", ".aws"];
// The line history holds whatever the user typed (a key pasted by mistake, too).
const SECRET_PATHS: readonly string[] = ["agents/harvey.yaml", "agents/harvey_history"];
/** Folders of Harvey's own state whose files are closed like secrets: the saved sessions and caches. */
const SECRET_STATE: readonly string[] = ["agents/sessions", "agents/slots"];
/** Files Harvey keeps that the agent may read but not change. */
const READ_ONLY_PATHS: readonly string[] = ["agents/audit.jsonl"];
/**
 * A folder name that is read-only by default wherever it is: `.git` holds hooks and config
 * (`core.fsmonitor`, aliases) that git runs, so a write there — in the top folder or in a
 * nested repository — could make a safe-mode `git` run anything.
 */
const READ_ONLY_FOLDER = ".git";

/** The secret patterns, for messages and `/security`. */
export const SECRET_PATTERNS: readonly string[] = [
  ".env*",
  "*.pem",
  "*.key",
  "*.p12",
  "*.pfx",
  "*.jks",
  "*.keystore",
  "*.kdbx",
  "*.ppk",
  "id_rsa*",
  "id_dsa*",
  "id_ecdsa*",
  "id_ed25519*",
  ".netrc",
  ".npmrc",
  ".pypirc",
  ".pgpass",
  ".git-credentials",
  ".htpasswd",
  ...SECRET_FOLDERS.map((f) => `${f}/`),
  ...SECRET_STATE.map((f) => `${f}/`),
  ...SECRET_PATHS,
];

/** The files that are read-only by default, for messages and `/security`. */
export const READ_ONLY_DEFAULTS: readonly string[] = [
  ...READ_ONLY_PATHS,
  `${READ_ONLY_FOLDER}/ (every one)`,
];

/**
 * Normalizes a workspace-relative path: `/` separators, `.` and `..` applied, no leading `./`
 * or trailing `/`; the workspace itself is `.`. Returns undefined when the path leaves the
 * workspace (starts with `..`) or is absolute.
 *
 * @example
 * ```ts
 * normalizeRelPath("./src//a/../b.ts/"); // "src/b.ts"
 * ```
 */
export function normalizeRelPath(path: string): string | undefined {
  if (path === "" || posix.isAbsolute(path)) return undefined;
  const norm = posix.normalize(path).replace(/\/+$/, "");
  if (norm === ".." || norm.startsWith("../")) return undefined;
  return norm === "" ? "." : norm;
}

/**
 * Whether a component of `relPath` (normalized) is a secret name or a secret folder, or the
 * path is a secret file; case does not matter.
 *
 * @example
 * ```ts
 * isSecretPath("config/.ENV"); // true
 * isSecretPath("keys/ID_ED25519"); // true
 * isSecretPath("src/env.ts"); // false
 * ```
 */
export function isSecretPath(relPath: string): boolean {
  const lower = relPath.toLowerCase();
  if (SECRET_PATHS.includes(lower)) return true;
  if (SECRET_STATE.some((dir) => lower === dir || lower.startsWith(`${dir}/`))) return true;
  return lower.split("/").some((part) =>
    SECRET_FOLDERS.includes(part) || SECRET_NAMES.some((re) => re.test(part))
  );
}

/** The `.git` folder (top or nested, any case) that holds `relPath` (normalized), if one does. */
function gitFolderOf(relPath: string): string | undefined {
  const parts = relPath.split("/");
  const i = parts.findIndex((p) => p.toLowerCase() === READ_ONLY_FOLDER);
  return i < 0 ? undefined : parts.slice(0, i + 1).join("/");
}

/** Whether `prefix` (normalized) covers `relPath` (normalized), by whole components. */
function covers(prefix: string, relPath: string): boolean {
  return prefix === "." || relPath === prefix || relPath.startsWith(`${prefix}/`);
}

/**
 * Decides whether `perm` is allowed on `relPath` (relative to the workspace) under the
 * `permissions` map of `harvey.yaml`. Pure: it looks at nothing but its arguments.
 *
 * @example
 * ```ts
 * checkPath("src/a.ts", "write", { permissions: { src: ["read"] } }).allowed; // false
 * checkPath(".env", "read", { permissions: {} }).allowed; // false
 * checkPath(".env", "read", { permissions: { ".env": ["read"] } }).allowed; // true
 * ```
 */
export function checkPath(
  relPath: string,
  perm: Perm,
  opts: { permissions: Record<string, readonly string[]> },
): PathDecision {
  const path = normalizeRelPath(relPath);
  if (path === undefined) {
    return { allowed: false, path: relPath, reason: "outside the workspace" };
  }
  let best: string | undefined;
  for (const key of Object.keys(opts.permissions)) {
    const prefix = normalizeRelPath(key);
    if (prefix === undefined || !covers(prefix, path)) continue;
    if (best === undefined || specificity(prefix) > specificity(normalizeRelPath(best)!)) {
      best = key;
    }
  }
  const exact = best !== undefined && normalizeRelPath(best) === path;
  if (isSecretPath(path) && !exact) {
    return {
      allowed: false,
      path,
      reason:
        `a secret file; only an entry for exactly this path opens it: /permissions set ${path} ${perm}`,
    };
  }
  if (READ_ONLY_PATHS.includes(path.toLowerCase()) && perm !== "read" && !exact) {
    return {
      allowed: false,
      path,
      reason:
        `a log Harvey keeps, read-only unless an entry names it: /permissions set ${path} read,${perm}`,
    };
  }
  const folder = gitFolderOf(path);
  if (
    folder && perm !== "read" && (best === undefined || !covers(folder, normalizeRelPath(best)!))
  ) {
    return {
      allowed: false,
      path,
      reason: `inside ${folder}/, read-only by default (git runs hooks and config from there): ` +
        `/permissions set ${folder} read,${perm} opens it`,
    };
  }
  if (best === undefined) return { allowed: true, path, reason: "no permissions entry: allowed" };
  const granted = opts.permissions[best];
  const allowed = granted.includes(perm);
  const shown = granted.length ? granted.join(",") : "none";
  return {
    allowed,
    path,
    rule: best,
    reason:
      `permissions entry "${best}" allows ${shown}; change it with /permissions set ${best} PERMS`,
  };
}

/** Longer prefixes are more specific; `.` is the least specific of all. */
function specificity(prefix: string): number {
  return prefix === "." ? 0 : prefix.length + 1;
}

/**
 * Parses the PERMS argument of `/permissions set`: operation names separated by commas
 * (`read,write`), `all` for the four, or `none` for nothing.
 *
 * @example
 * ```ts
 * parsePerms("write,read"); // ["read", "write"]
 * ```
 */
export function parsePerms(text: string): Perm[] {
  const t = text.trim().toLowerCase();
  if (t === "none") return [];
  if (t === "all") return [...PERMS];
  const words = t.split(",").map((w) => w.trim()).filter(Boolean);
  const bad = words.filter((w) => !(PERMS as readonly string[]).includes(w));
  if (words.length === 0 || bad.length > 0) {
    throw new UsageError(
      `Permissions must be names from ${
        PERMS.join(", ")
      } separated by commas, or all, or none; found "${text}"`,
    );
  }
  return PERMS.filter((p) => words.includes(p));
}

/**
 * Normalizes the PATH of `/permissions set` into the key stored in `harvey.yaml`: relative to
 * the workspace (an absolute path inside `root` is made relative), `.` for the whole of it.
 */
export function permissionKey(path: string, root: string): string {
  let rel: string | undefined;
  if (posix.isAbsolute(path)) {
    const r = posix.relative(root, posix.normalize(path));
    rel = r === "" ? "." : normalizeRelPath(r);
  } else {
    rel = normalizeRelPath(path);
  }
  if (rel === undefined) {
    throw new HarveyError(
      `Path "${path}" is outside the workspace ${root}; permissions name paths inside it`,
    );
  }
  return rel;
}
