/**
 * The file access RAG ingest needs, as a narrow interface so that Harvey's workspace
 * sandbox does the reading, plus the walk that turns files and folders into a file list.
 *
 * @module
 */
import { extname, isAbsolute, join, relative, resolve, sep } from "node:path";

/** A directory entry, as `Deno.readDir` yields them. */
export interface IngestEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
  isSymlink?: boolean;
}

/** What ingest reads through: the workspace (sandboxed) or {@linkcode directFiles}. */
export interface IngestFiles {
  /** The text of the file at absolute `path`. */
  readTextFile(path: string): Promise<string>;
  /** The entries of the folder at absolute `path`. */
  readDir(
    path: string,
  ): AsyncIterable<IngestEntry> | Iterable<IngestEntry> | Promise<Iterable<IngestEntry>>;
  /** What is at absolute `path` (following symlinks). */
  stat(path: string): Promise<{ isFile: boolean; isDirectory: boolean; size?: number | null }>;
  /** The name a chunk's source is recorded under, normally the path relative to the workspace. */
  relative(path: string): string;
}

/** A file found by {@linkcode walkFiles}. */
export interface FoundFile {
  path: string;
  size: number | undefined;
}

/** Folder names never walked into (hidden entries are skipped as well). */
export const DEFAULT_EXCLUDES: readonly string[] = ["node_modules"];

const BINARY_EXTENSIONS = new Set(
  (
    "png jpg jpeg gif bmp ico webp tif tiff psd heic avif pdf zip gz tgz bz2 xz zst 7z rar tar " +
    "jar war class o obj a lib so dylib dll exe bin dat gguf ggml llamafile safetensors pt pth " +
    "onnx pkl npy npz db sqlite sqlite3 db-wal db-shm wasm mp3 mp4 m4a wav ogg flac aac mov avi " +
    "mkv webm woff woff2 ttf otf eot pyc pyo dmg iso img deb rpm"
  ).split(" "),
);

/** True when `path`'s extension says it is not text (an image, an archive, a model…). */
export function hasBinaryExtension(path: string): boolean {
  return BINARY_EXTENSIONS.has(extname(path).slice(1).toLowerCase());
}

/** True when text read from a file looks binary: a NUL, or many undecodable bytes. */
export function looksBinary(text: string): boolean {
  if (text.includes("\u0000")) return true;
  const sample = text.length > 65536 ? text.slice(0, 65536) : text;
  let bad = 0;
  for (let i = sample.indexOf("\uFFFD"); i !== -1; i = sample.indexOf("\uFFFD", i + 1)) bad++;
  return bad > 8 && bad > sample.length / 100;
}

/**
 * Expands `paths` (files and folders, absolute) into the files under them, sorted and without
 * duplicates. Hidden entries, symlinked folders, folders named in `exclude` and anything at
 * or under `skipPaths` are left out.
 */
export async function walkFiles(
  paths: string[],
  files: IngestFiles,
  opts: { exclude?: readonly string[]; skipPaths?: readonly string[] } = {},
): Promise<FoundFile[]> {
  const exclude = new Set(opts.exclude ?? DEFAULT_EXCLUDES);
  const skipped = (opts.skipPaths ?? []).map((p) => resolve(p));
  const isSkipped = (path: string) => {
    const abs = resolve(path);
    return skipped.some((s) => abs === s || abs.startsWith(s.endsWith(sep) ? s : s + sep));
  };
  const found = new Map<string, FoundFile>();
  const visit = async (path: string) => {
    if (isSkipped(path)) return;
    const info = await files.stat(path);
    if (info.isFile) {
      found.set(path, { path, size: info.size ?? undefined });
      return;
    }
    if (!info.isDirectory) return;
    const entries: IngestEntry[] = [];
    for await (const entry of await files.readDir(path)) entries.push(entry);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith(".") || exclude.has(entry.name)) continue;
      const child = join(path, entry.name);
      if (entry.isSymlink) {
        const target = await files.stat(child).catch(() => undefined);
        if (target?.isFile && !isSkipped(child)) {
          found.set(child, { path: child, size: target.size ?? undefined });
        }
        continue;
      }
      if (entry.isDirectory || entry.isFile) await visit(child);
    }
  };
  for (const path of paths) await visit(path);
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Plain file access under `root`, without Harvey's sandbox: for tests, benchmarks and tools.
 * Harvey itself passes its workspace.
 */
export function directFiles(root: string): IngestFiles {
  const base = resolve(root);
  return {
    readTextFile: (path) => Deno.readTextFile(path),
    readDir: (path) => Deno.readDir(path),
    stat: (path) => Deno.stat(path),
    relative: (path) => {
      const abs = isAbsolute(path) ? path : resolve(base, path);
      const rel = relative(base, abs);
      return sep === "/" ? rel : rel.split(sep).join("/");
    },
  };
}
