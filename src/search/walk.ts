/**
 * The file walk behind `/search`: depth first, each folder's entries sorted by name, so files
 * come out in path order and a capped search is the same every time.
 *
 * @module
 */
import { isAbsolute, relative, sep } from "node:path";

/** A file to search: where to read it and the path shown to the user. */
export interface WalkEntry {
  /** Absolute path to open. */
  abs: string;
  /** Path relative to the workspace root, with "/" separators. */
  rel: string;
}

/** Names never searched below the start folder (besides hidden names, starting with "."). */
const SKIPPED = new Set(["node_modules"]);

/** True when `path` (a real path) is `root` or inside it. */
export function isInside(path: string, root: string): boolean {
  const r = relative(root, path);
  return r === "" || (r !== ".." && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}

/**
 * Yields the files under the folder `abs` (shown as `rel`), in path order. Skips hidden
 * entries, `node_modules`, symlinked folders, and symlinked files whose real path is outside
 * `root`. Folders that cannot be read are skipped; a refused Deno permission is thrown.
 */
export function* walkFolder(abs: string, rel: string, root: string): Generator<WalkEntry> {
  let names: Deno.DirEntry[];
  try {
    names = Array.from(Deno.readDirSync(abs));
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) throw err;
    return;
  }
  names = names.filter((e) => e.name.charCodeAt(0) !== 46 && !SKIPPED.has(e.name));
  names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const base = abs.endsWith("/") || abs.endsWith(sep) ? abs : `${abs}/`;
  for (const e of names) {
    const childAbs = base + e.name;
    const childRel = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory) {
      yield* walkFolder(childAbs, childRel, root);
    } else if (e.isFile) {
      yield { abs: childAbs, rel: childRel };
    } else if (e.isSymlink && isLinkedFileInside(childAbs, root)) {
      yield { abs: childAbs, rel: childRel };
    }
  }
}

/** A symlink is searched only when it leads to a regular file inside `root`. */
function isLinkedFileInside(link: string, root: string): boolean {
  try {
    const real = Deno.realPathSync(link);
    return isInside(real, root) && Deno.statSync(real).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) throw err;
    return false; // a broken link
  }
}
