/**
 * What the OS sandbox must protect inside the workspace: every `.git` (folders and files, at
 * any depth, in any case), the paths whose writing the permissions refuse, and the paths whose
 * reading they refuse (secrets), found by a walk of the workspace.
 *
 * The walk is cached per folder. A folder is listed again only when its inode, mtime or ctime
 * changed since it was listed (creating, removing or renaming an entry changes the folder's
 * mtime and ctime, and nobody can set a ctime back), or when it was listed less than
 * {@linkcode RACY_MS} after its last change (a change within the same timestamp tick would
 * leave the times equal: such a folder is listed again until it is older, as git does with
 * "racily clean" index entries). So a run costs one `lstat` per folder when nothing changed.
 * Whether an entry is protected depends on the live permissions as well: the classification is
 * redone from the cached listings whenever the permissions change.
 *
 * @module
 */
import { join, relative, sep } from "node:path";

/** A folder listed less than this long after its last change is listed again next time. */
export const RACY_MS = 2_000;

/** How to classify the entries of the workspace. */
export interface ScanRules {
  /** Whether reading this workspace path (relative, "/"-separated) is refused: it is masked. */
  hidden(rel: string): boolean;
  /** Whether writing this path is refused: it is bound read-only. */
  readOnly(rel: string): boolean;
  /** Whether some rule names a path below `rel` (then a hidden folder is walked, not masked). */
  hasRulesBelow(rel: string): boolean;
  /** Changes whenever the answers above may change (e.g. the permissions as JSON). */
  key: string;
}

/** What one scan found, as absolute paths. */
export interface ScanResult {
  /** `.git` folders and files (their real paths when they are symlinks into the workspace). */
  gits: string[];
  /** Other paths whose writing is refused. */
  readOnly: string[];
  /** Files to cover with an empty file. */
  maskFiles: string[];
  /** Folders to cover with an empty folder. */
  maskDirs: string[];
  /** Folders listed again by this scan (0 when the cache held). */
  listed: number;
  /** Folders looked at. */
  folders: number;
}

type Kind = "dir" | "file" | "link" | "other";

/** What the entries of one folder are, under the rules of one key. */
interface Classified {
  key: string;
  gits: string[];
  gitLinks: string[];
  readOnly: string[];
  maskFiles: string[];
  maskDirs: string[];
  maskLinks: string[];
  subdirs: string[];
}

interface Listing {
  ino: number | null;
  mtime: number;
  ctime: number;
  racy: boolean;
  entries: { name: string; kind: Kind }[];
  classified?: Classified;
}

/**
 * The cached walk of one workspace.
 *
 * @example
 * ```ts
 * const scan = new WorkspaceScan("/proj");
 * const found = scan.scan(rules); // found.gits, found.maskFiles, …
 * ```
 */
export class WorkspaceScan {
  readonly #root: string;
  readonly #racyMs: number;
  #listings = new Map<string, Listing>();

  /** `racyMs` (default {@linkcode RACY_MS}) is for tests: a negative one trusts fresh listings. */
  constructor(root: string, opts: { racyMs?: number } = {}) {
    this.#root = root;
    this.#racyMs = opts.racyMs ?? RACY_MS;
  }

  /** Walks the workspace (through the cache) and classifies what it holds under `rules`. */
  scan(rules: ScanRules): ScanResult {
    const started = Date.now();
    const next = new Map<string, Listing>();
    const out: ScanResult = {
      gits: [],
      readOnly: [],
      maskFiles: [],
      maskDirs: [],
      listed: 0,
      folders: 0,
    };
    const stack = [this.#root];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      const listing = this.#listing(dir, started, out);
      if (!listing) continue;
      next.set(dir, listing);
      out.folders++;
      if (listing.classified?.key !== rules.key) {
        listing.classified = this.#classify(dir, listing, rules);
      }
      const c = listing.classified;
      out.gits.push(...c.gits);
      for (const link of c.gitLinks) out.gits.push(this.#insideReal(link) ?? link);
      out.readOnly.push(...c.readOnly);
      out.maskFiles.push(...c.maskFiles);
      out.maskDirs.push(...c.maskDirs);
      for (const link of c.maskLinks) this.#maskLink(link, out);
      stack.push(...c.subdirs);
    }
    this.#listings = next;
    return out;
  }

  #classify(dir: string, listing: Listing, rules: ScanRules): Classified {
    const c: Classified = {
      key: rules.key,
      gits: [],
      gitLinks: [],
      readOnly: [],
      maskFiles: [],
      maskDirs: [],
      maskLinks: [],
      subdirs: [],
    };
    for (const { name, kind } of listing.entries) {
      const abs = join(dir, name);
      const rel = relative(this.#root, abs).split(sep).join("/");
      if (name.toLowerCase() === ".git") {
        (kind === "link" ? c.gitLinks : c.gits).push(abs);
      } else if (rules.hidden(rel) && !(kind === "dir" && rules.hasRulesBelow(rel))) {
        (kind === "dir" ? c.maskDirs : kind === "link" ? c.maskLinks : c.maskFiles).push(abs);
      } else {
        if (rules.readOnly(rel)) c.readOnly.push(abs);
        if (kind === "dir") c.subdirs.push(abs);
      }
    }
    return c;
  }

  /** The cached listing of `dir` while its times hold, else a fresh one. */
  #listing(dir: string, started: number, out: ScanResult): Listing | undefined {
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(dir);
    } catch {
      return undefined;
    }
    if (!st.isDirectory) return undefined;
    const mtime = st.mtime?.getTime() ?? NaN;
    const ctime = st.ctime?.getTime() ?? mtime;
    const cached = this.#listings.get(dir);
    if (
      cached && !cached.racy && cached.ino === st.ino && cached.mtime === mtime &&
      cached.ctime === ctime
    ) {
      return cached;
    }
    let entries: { name: string; kind: Kind }[];
    try {
      entries = [...Deno.readDirSync(dir)].map((e) => ({
        name: e.name,
        kind: e.isSymlink ? "link" : e.isDirectory ? "dir" : e.isFile ? "file" : "other",
      }));
    } catch {
      return undefined;
    }
    out.listed++;
    // ctime may be truncated to whole seconds: count a second more before trusting it.
    const changed = Math.max(mtime, ctime + 1_000);
    const racy = !(changed < started - this.#racyMs);
    return { ino: st.ino, mtime, ctime, racy, entries };
  }

  /** Masks what the symlink `abs` names, wherever it is; a dangling link reads nothing. */
  #maskLink(abs: string, out: ScanResult): void {
    try {
      const real = Deno.realPathSync(abs);
      if (Deno.statSync(real).isDirectory) out.maskDirs.push(real);
      else out.maskFiles.push(real);
    } catch {
      // dangling
    }
  }

  /** The real path of `abs` when it lies inside the workspace. */
  #insideReal(abs: string): string | undefined {
    try {
      const real = Deno.realPathSync(abs);
      const rel = relative(this.#root, real);
      return rel.startsWith("..") || rel === "" ? undefined : real;
    } catch {
      return undefined;
    }
  }
}
