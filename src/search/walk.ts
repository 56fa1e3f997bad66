/**
 * The file walk behind `/search`: depth first, each folder's entries sorted by name, so files
 * come out in path order and a capped search is the same every time.
 *
 * A file or folder swapped for a symlink between the listing and the open is followed here;
 * the scanner (scan.ts) then refuses the lines of any handle that is not the file its path
 * names inside the root, so nothing from outside is shown.
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
 * entries, `node_modules`, the folders in `exclude` (paths relative to the root), symlinked
 * folders, and symlinked files whose real path is outside `root`. Folders that cannot be read
 * are skipped; a refused Deno permission is thrown.
 */
export function* walkFolder(
  abs: string,
  rel: string,
  root: string,
  exclude: ReadonlySet<string> = new Set(),
): Generator<WalkEntry> {
  // Depth first with an explicit stack (no generator per folder): the next entry is on top.
  const absOf: string[] = [abs];
  const relOf: string[] = [rel];
  const isDir: boolean[] = [true];
  while (absOf.length) {
    const a = absOf.pop()!;
    const r = relOf.pop()!;
    if (!isDir.pop()) {
      yield { abs: a, rel: r };
      continue;
    }
    const entries = listFolder(a, root);
    const base = a.endsWith("/") || a.endsWith(sep) ? a : `${a}/`;
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      const childRel = r === "" ? e.name : `${r}/${e.name}`;
      if (e.isDirectory && exclude.has(childRel)) continue;
      absOf.push(base + e.name);
      relOf.push(childRel);
      isDir.push(e.isDirectory);
    }
  }
}

/** The entries of a folder worth visiting, sorted by name (code-unit order). */
function listFolder(abs: string, root: string): Deno.DirEntry[] {
  const kept: Deno.DirEntry[] = [];
  try {
    for (const e of Deno.readDirSync(abs)) {
      if (e.name.charCodeAt(0) === 46 || SKIPPED.has(e.name)) continue;
      if (e.isDirectory || e.isFile) kept.push(e);
      else if (e.isSymlink && isLinkedFileInside(`${abs}/${e.name}`, root)) {
        kept.push({ ...e, isFile: true, isSymlink: true });
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) throw err;
    return []; // unreadable, or removed meanwhile
  }
  return kept.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
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
