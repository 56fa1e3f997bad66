/**
 * Finding an executable on PATH.
 *
 * @module
 */
import { delimiter, isAbsolute, join } from "node:path";

/**
 * The absolute path of `name` on `PATH` (or `name` itself when it is a path to an
 * executable file), or undefined.
 *
 * @example
 * ```ts
 * await which("git", Deno.env.get("PATH") ?? ""); // "/usr/bin/git"
 * ```
 */
export async function which(name: string, path: string): Promise<string | undefined> {
  const candidates = name.includes("/") || isAbsolute(name)
    ? [name]
    : path.split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const c of candidates) {
    try {
      const info = await Deno.stat(c);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111)) return c;
    } catch {
      // not here
    }
  }
  return undefined;
}
