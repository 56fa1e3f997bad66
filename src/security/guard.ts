/**
 * The agent's path guard: {@linkcode checkPath} applied to the live `permissions` of
 * `harvey.yaml`, for both the path as written and the real path it resolves to (so a symlink
 * cannot reach a secret under another name), with every refusal audited.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { HarveyError } from "../errors.ts";
import type { HarveyConfig } from "../config/schema.ts";
import type { AuditLog } from "./audit.ts";
import { checkPath, type PathDecision, type Perm } from "./permissions.ts";

/** Thrown when the path permissions refuse an operation. */
export class PermissionDeniedError extends HarveyError {
  override name = "PermissionDeniedError";
}

/** What the guard reads: the workspace root, the live configuration and the audit log. */
export interface GuardSource {
  workspace: { root: string };
  config: { config: Pick<HarveyConfig, "permissions"> };
  audit?: AuditLog;
}

/**
 * Builds the `agent.checkPath` hook: throws {@linkcode PermissionDeniedError} (and records a
 * `permission` event with outcome `denied`) when `perm` is not allowed on `path`. A path
 * outside the workspace is left to the workspace sandbox, which refuses it.
 *
 * @example
 * ```ts
 * agent.checkPath = pathGuard(agent);
 * agent.checkPath(".env", "read"); // throws PermissionDeniedError
 * ```
 */
export function pathGuard(source: GuardSource): (path: string, perm: Perm) => void {
  return (path, perm) => {
    const decision = decide(source, path, perm);
    if (!decision || decision.allowed) return;
    source.audit?.record("permission", `${perm} ${decision.path}: ${decision.reason}`, "denied");
    throw new PermissionDeniedError(
      `Permission denied: ${perm} of "${decision.path}" (${decision.reason})`,
    );
  };
}

/** The first refusal among the written and the real path, else an allowance; none when outside. */
function decide(source: GuardSource, path: string, perm: Perm): PathDecision | undefined {
  const root = source.workspace.root;
  const permissions = source.config.config.permissions;
  const abs = isAbsolute(path) ? resolve(path) : resolve(root, path);
  const candidates = new Set<string>();
  const lexical = inside(root, abs);
  if (lexical !== undefined) candidates.add(lexical);
  const real = inside(root, realPathSync(abs));
  if (real !== undefined) candidates.add(real);
  let allowed: PathDecision | undefined;
  for (const rel of candidates) {
    const d = checkPath(rel, perm, { permissions });
    if (!d.allowed) return d;
    allowed ??= d;
  }
  return allowed;
}

/** `abs` relative to `root` with "/" separators, or undefined when it is outside. */
function inside(root: string, abs: string): string | undefined {
  const rel = relative(root, abs);
  if (rel === "") return ".";
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  return rel.split(sep).join("/");
}

/**
 * Where `abs` really is: its deepest existing ancestor resolved, dangling symlinks followed
 * to where a write would land (at most 40 links).
 */
function realPathSync(abs: string, depth = 0): string {
  const tail: string[] = [];
  for (let cur = abs;; cur = dirname(cur)) {
    try {
      return join(Deno.realPathSync(cur), ...tail);
    } catch {
      // missing, or a dangling symlink: look at the entry itself
    }
    let info: Deno.FileInfo | undefined;
    try {
      info = Deno.lstatSync(cur);
    } catch {
      info = undefined;
    }
    if (info?.isSymlink && depth < 40) {
      const target = resolve(dirname(cur), Deno.readLinkSync(cur));
      return join(realPathSync(target, depth + 1), ...tail);
    }
    if (dirname(cur) === cur) return abs;
    tail.unshift(basename(cur));
  }
}
