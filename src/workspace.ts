/**
 * The workspace sandbox: every file path Harvey touches goes through one check here.
 *
 * A path is checked as a string (NUL bytes, lengths, `~`, backslashes, look-alikes of "." and
 * "/", `..` escapes) and then on the file system: the real path of its deepest existing
 * ancestor must lie inside the real root, following dangling symlinks to where a write would
 * land. `..` is applied to the text before any symlink is followed, and every operation works
 * on the resolved real path, never on the text it was given. Each operation checks again at
 * the moment of use (see the comments on {@linkcode Workspace}).
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { HarveyError } from "./errors.ts";
import { atomicWrite } from "./util/atomic_write.ts";

/** Thrown when a path leaves the workspace or cannot be checked safely. */
export class SandboxError extends HarveyError {
  override name = "SandboxError";
}

/** One entry of {@linkcode Workspace.readDir}. */
export type DirEntry = { name: string; isFile: boolean; isDirectory: boolean; isSymlink: boolean };

/** Options of {@linkcode Workspace.open}. */
export interface WorkspaceOptions {
  /** Called after the path check and before the operation touches the file system, with the
   * checked absolute path; lets tests change the file system inside that window. */
  beforeUse?: (absPath: string) => void | Promise<void>;
}

const PATH_MAX = 4095;
// Control characters, line and paragraph separators, and the marks that reorder text: a name
// holding one can be shown as another (a fake diff header, "aexe.txt" for "a\u202etxt.exe").
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
/** Rounds of the moment-of-use comparison of a handle with its path (see #sameFile). */
const VERIFY_ROUNDS = 3;
const NAME_MAX = 255;
const MAX_LINKS = 40;
// Characters that look like "/" or "\" but have no NFKC mapping to them.
const SLASH_LOOKALIKES = /[\u2044\u2215\u2216\u29F5\u29F8\u29F9]/;
const bytesOf = (s: string) => new TextEncoder().encode(s).length;
const isMissing = (e: unknown) =>
  e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory;
/** `f()`, or null when what it looks up is missing. */
function orNull<T>(f: () => T): T | null {
  try {
    return f();
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}
const fail = (message: string) => new SandboxError(message);

/** Quotes a path for a one-line message. */
function quote(path: string): string {
  return JSON.stringify(path.length > 120 ? `${path.slice(0, 70)}…${path.slice(-40)}` : path);
}

/**
 * A folder that Harvey may read and write; nothing outside it is read, written or removed.
 *
 * The checks use the synchronous file-system calls: each takes a few microseconds, where an
 * asynchronous one costs a round trip through Deno's thread pool (50–80 µs on two cores), and
 * one tool call makes a dozen of them. Opening and reading stay asynchronous.
 *
 * Residual races (Deno has no openat/renameat): a directory component swapped for a symlink
 * between the last check and the syscall can still redirect `mkdir` (an empty folder),
 * `remove`, or `readDir`'s listing, and can make the temporary file of a write be created
 * outside for a moment (empty; it is found and removed). File contents do not cross: a read,
 * an append and the temporary file of a write are each compared with the checked path after
 * they are opened and before a byte moves (device and inode, a few rounds, so a folder
 * swapped for a symlink and back has to win every look-up), and the rename of a write can
 * only move a file that is where it was checked. Hard links are files inside the root and
 * are not detected.
 *
 * @example
 * ```ts
 * const ws = await Workspace.open(".");
 * await ws.writeFile("notes/todo.md", "- ship it\n");
 * ```
 */
export class Workspace {
  readonly #prefix: string;
  readonly #options: WorkspaceOptions;
  /** Temporary files of failed writes whose folder was moved away meanwhile: removed later. */
  readonly #leftovers = new Set<string>();

  private constructor(readonly root: string, options: WorkspaceOptions) {
    this.#prefix = root.endsWith(sep) ? root : root + sep;
    this.#options = options;
  }

  /** Opens the workspace at `root` (must exist and be a folder), resolves its real path, creates `agents/`. */
  static async open(root: string, options: WorkspaceOptions = {}): Promise<Workspace> {
    const real = orNull(() => Deno.realPathSync(root));
    if (real === null) {
      throw fail(`Workspace folder ${quote(root)} does not exist; create it first`);
    }
    if (!Deno.statSync(real).isDirectory) {
      throw fail(`Workspace ${quote(root)} is a file; give a folder`);
    }
    const ws = new Workspace(real, options);
    await ws.mkdir("agents");
    return ws;
  }

  /** Absolute real path of `path` (relative to root, or absolute inside root); for a path that
   * does not exist yet, its deepest existing ancestor is resolved and the rest appended.
   * Throws SandboxError when it leaves the root. */
  async resolve(path: string): Promise<string> {
    return this.#inside(await this.#realOf(this.#lexical(path), path, 0), path);
  }

  /** Path relative to the root, with "/" separators ("." for the root). */
  relative(absPath: string): string {
    this.#inside(resolve(absPath), absPath);
    return relative(this.root, resolve(absPath)).split(sep).join("/") || ".";
  }

  /** Reads a file; `maxBytes` reads at most that many bytes. */
  async readFile(path: string, opts: { maxBytes?: number } = {}): Promise<Uint8Array> {
    const abs = await this.#checked(path);
    // Opening a FIFO waits for a writer (no O_NONBLOCK in Deno): only files and folders.
    const kind = Deno.statSync(abs);
    if (!kind.isFile && !kind.isDirectory) {
      throw new HarveyError(
        `Path ${quote(path)} is not a regular file (a FIFO, socket or device); it is not read`,
      );
    }
    using file = await Deno.open(abs, { read: true });
    // Moment of use: the handle must be the file that the checked path names right now.
    const held = file.statSync();
    this.#sameFile(held, abs, path);
    if (held.isDirectory) throw new HarveyError(`Path ${quote(path)} is a folder, not a file`);
    if (!held.isFile) throw new HarveyError(`Path ${quote(path)} is not a regular file`);
    // Reads the size seen at open (a file that grows meanwhile is read up to that size).
    const out = new Uint8Array(Math.min(opts.maxBytes ?? Infinity, held.size));
    let total = 0;
    while (total < out.length) {
      const n = await file.read(out.subarray(total));
      if (n === null) break;
      total += n;
    }
    return out.subarray(0, total);
  }

  /** Reads a file as UTF-8 text; `maxBytes` reads at most that many bytes. */
  async readTextFile(path: string, opts: { maxBytes?: number } = {}): Promise<string> {
    return new TextDecoder().decode(await this.readFile(path, opts));
  }

  /** Atomic write (src/util/atomic_write.ts); creates missing parent folders inside the root. */
  async writeFile(path: string, data: string | Uint8Array): Promise<void> {
    if (path.endsWith("/")) {
      throw fail(`Path ${quote(path)} ends with "/"; give a file name to write`);
    }
    const abs = await this.#checked(path);
    if (abs === this.root) throw fail(`Path ${quote(path)} is the workspace itself`);
    this.#mkdirs(dirname(abs), path);
    let existing: Deno.FileInfo | null = null;
    try {
      existing = Deno.lstatSync(abs);
    } catch {
      existing = null;
    }
    if (existing?.isDirectory) throw new HarveyError(`Path ${quote(path)} is a folder, not a file`);
    // Moment of use: the parent must still resolve to itself (no component swapped for a
    // symlink), and the temporary file must be where it was meant to be before it gets data.
    if (Deno.realPathSync(dirname(abs)) !== dirname(abs)) throw this.#changed(path);
    await this.removeLeftovers();
    await atomicWrite(abs, data, {
      verify: (tmp, held) => this.#sameFile(held, tmp, path),
      onLeftover: (tmp) => this.#leftovers.size < 100 && this.#leftovers.add(tmp),
    });
  }

  /**
   * Removes the temporary files of failed writes that could not be removed at the time (a
   * folder on the way was swapped away); the next write and the end of the session try.
   */
  async removeLeftovers(): Promise<void> {
    for (const tmp of this.#leftovers) {
      try {
        await Deno.remove(tmp);
        this.#leftovers.delete(tmp);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) this.#leftovers.delete(tmp);
      }
    }
  }

  /**
   * Opens a file for appending, creating it (mode 600) when missing, with the check a read
   * gets: the handle must be the file the checked path names, so a symlink that leads outside,
   * or one swapped in meanwhile, is refused before a byte is written. The caller closes it.
   */
  async openAppend(path: string): Promise<Deno.FsFile> {
    if (path.endsWith("/")) {
      throw fail(`Path ${quote(path)} ends with "/"; give a file name to write`);
    }
    const abs = await this.#checked(path);
    if (abs === this.root) throw fail(`Path ${quote(path)} is the workspace itself`);
    this.#mkdirs(dirname(abs), path);
    const exists = orNull(() => Deno.lstatSync(abs)) !== null;
    const file = await Deno.open(abs, { append: true, create: !exists, mode: 0o600 });
    try {
      const held = file.statSync();
      this.#sameFile(held, abs, path);
      if (!held.isFile) throw new HarveyError(`Path ${quote(path)} is not a regular file`);
      return file;
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** Removes a file, a symlink (not its target) or a folder (`recursive` for a non-empty one). */
  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    // resolve() refuses escapes and symlinks that point outside; the entry itself is removed.
    if (await this.resolve(path) === this.root) {
      throw fail(`Path ${quote(path)} is the workspace itself; it cannot be removed`);
    }
    const lexical = this.#lexical(path);
    const parent = this.#inside(await this.#realOf(dirname(lexical), path, 0), path);
    const entry = join(parent, basename(lexical));
    await this.#options.beforeUse?.(entry);
    if (Deno.realPathSync(parent) !== parent) throw this.#changed(path);
    if (Deno.lstatSync(entry).isSymlink) this.#inside(await this.#realOf(entry, path, 0), path);
    await Deno.remove(entry, { recursive: opts.recursive ?? false });
  }

  /** Lists a folder, sorted by name. */
  async readDir(path: string): Promise<DirEntry[]> {
    const abs = await this.#checked(path);
    const before = this.#still(abs, path);
    if (!before.isDirectory) throw new HarveyError(`Path ${quote(path)} is a file, not a folder`);
    const entries: DirEntry[] = [];
    for await (const e of Deno.readDir(abs)) {
      const { name, isFile, isDirectory, isSymlink } = e;
      entries.push({ name, isFile, isDirectory, isSymlink });
    }
    const after = this.#still(abs, path);
    if (before.dev !== after.dev || before.ino !== after.ino) throw this.#changed(path);
    return entries.sort((a, b) => a.name < b.name ? -1 : 1); // names in a folder are unique
  }

  /** Information about a file or folder (a symlink inside the root is followed). */
  async stat(path: string): Promise<Deno.FileInfo> {
    return this.#still(await this.#checked(path), path);
  }

  /** Whether `path` exists; throws SandboxError for a path outside the root. */
  async exists(path: string): Promise<boolean> {
    try {
      await this.stat(path);
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /** Creates a folder and its missing parents. */
  async mkdir(path: string): Promise<void> {
    this.#mkdirs(await this.#checked(path), path);
  }

  /** The string checks, then the absolute path with `..` and `.` applied to the text. */
  #lexical(path: string): string {
    if (typeof path !== "string" || path === "") {
      throw fail('Path is empty; give a path inside the workspace ("." for its root)');
    }
    const q = quote(path);
    if (path.includes("\0")) throw fail("Path contains a NUL byte");
    if (UNPRINTABLE.test(path)) {
      throw fail(
        `Path ${q} has a control, line-break or text-direction character; use a plain name`,
      );
    }
    const size = bytesOf(path);
    if (size > PATH_MAX) throw fail(`Path is ${size} bytes long; the limit is ${PATH_MAX}`);
    if (path.includes("\\")) {
      throw fail(`Path ${q} contains a backslash; separate folders with "/"`);
    }
    if (path.startsWith("~")) {
      throw fail(`Path ${q} starts with "~"; give a path inside the workspace ${this.root}`);
    }
    for (const part of path.split("/")) {
      const n = bytesOf(part);
      if (n > NAME_MAX) throw fail(`Path has a name of ${n} bytes; the limit is ${NAME_MAX}`);
      const folded = part.normalize("NFKC");
      if (SLASH_LOOKALIKES.test(part) || (folded !== part && /[/\\]|^\.\.?$/.test(folded))) {
        throw fail(`Path ${q} has a look-alike of "." or "/"; use plain ASCII`);
      }
    }
    const abs = isAbsolute(path) ? resolve(path) : resolve(this.root, path);
    // An absolute path may name the root through a symlinked alias: the real-path check decides.
    return isAbsolute(path) ? abs : this.#inside(abs, path);
  }

  /** Real path of `abs`: its deepest existing ancestor resolved, dangling symlinks followed. */
  async #realOf(abs: string, shown: string, depth: number): Promise<string> {
    const tail: string[] = [];
    for (let cur = abs;; cur = dirname(cur)) {
      try {
        return join(Deno.realPathSync(cur), ...tail);
      } catch (err) {
        if (err instanceof Deno.errors.FilesystemLoop) {
          throw fail(`Path ${quote(shown)} runs into a symlink loop`);
        }
        if (!isMissing(err)) throw err;
      }
      const info = orNull(() => Deno.lstatSync(cur));
      if (info?.isSymlink) { // dangling: resolve where its target would be created
        if (depth >= MAX_LINKS) throw fail(`Path ${quote(shown)} runs into a symlink loop`);
        const dir = await this.#realOf(dirname(cur), shown, depth + 1);
        // A link that stops being one meanwhile: the path is changing under Harvey.
        let link: string;
        try {
          link = Deno.readLinkSync(cur);
        } catch {
          throw this.#changed(shown);
        }
        const target = await this.#realOf(resolve(dir, link), shown, depth + 1);
        return join(target, ...tail);
      }
      tail.unshift(basename(cur));
    }
  }

  /** Returns `real` when it is the root or inside it; throws SandboxError otherwise. */
  #inside(real: string, shown: string): string {
    if (real !== this.root && !real.startsWith(this.#prefix)) {
      const via = resolve(this.root, shown) === real ? "" : ` (it resolves to ${real})`;
      throw fail(`Path ${quote(shown)} is outside the workspace ${this.root}${via}`);
    }
    if (bytesOf(real) > PATH_MAX) {
      throw fail(`Path ${quote(shown)} resolves to more than ${PATH_MAX} bytes`);
    }
    return real;
  }

  async #checked(path: string): Promise<string> {
    const abs = await this.resolve(path);
    await this.#options.beforeUse?.(abs);
    return abs;
  }

  /** Moment-of-use check: the checked real path still resolves to itself; its fresh stat. */
  #still(abs: string, shown: string): Deno.FileInfo {
    const real = this.#inside(Deno.realPathSync(abs), shown);
    if (real !== abs) throw this.#changed(shown);
    return Deno.statSync(real);
  }

  /**
   * Moment-of-use check of an open handle: `abs` (a checked real path) still resolves to
   * itself and names the file `held` describes. One look-up can be fooled by a folder on the
   * way that is swapped for a symlink and back; the check runs a few rounds and resolves the
   * path again after each, so a swapper has to win every one.
   */
  #sameFile(held: Deno.FileInfo, abs: string, shown: string): void {
    try {
      for (let round = 0; round < VERIFY_ROUNDS; round++) {
        if (this.#inside(Deno.realPathSync(abs), shown) !== abs) throw this.#changed(shown);
        const now = Deno.lstatSync(abs);
        if (held.dev !== now.dev || held.ino !== now.ino) throw this.#changed(shown);
      }
      if (Deno.realPathSync(abs) !== abs) throw this.#changed(shown);
    } catch (err) {
      throw isMissing(err) ? this.#changed(shown) : err;
    }
  }

  /** Creates the folders of `absDir` one at a time, checking each before making the next. */
  #mkdirs(absDir: string, shown: string): void {
    let cur = this.root;
    for (const part of relative(this.root, absDir).split(sep).filter(Boolean)) {
      cur = join(cur, part);
      try {
        Deno.mkdirSync(cur);
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
      const real = orNull(() => Deno.realPathSync(cur));
      if (real === null || this.#inside(real, shown) !== cur) throw this.#changed(shown);
      if (!Deno.statSync(real).isDirectory) {
        const needs = quote(this.relative(cur));
        throw new HarveyError(`Path ${quote(shown)} needs ${needs} to be a folder, not a file`);
      }
    }
  }

  #changed(shown: string): SandboxError {
    return fail(`Path ${quote(shown)} changed while it was being used; refused, try again`);
  }
}
