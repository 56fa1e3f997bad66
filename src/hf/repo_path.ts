/**
 * What a pull names — repository, revision, file — checked strictly, and the URL and the
 * local path built from them.
 *
 * @module
 */

import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { HarveyError, UsageError } from "../errors.ts";

/** Where Hugging Face lives unless `HF_ENDPOINT` says otherwise. */
export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

const REPO_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/;

/**
 * Checks a repository id (`owner/name`) and a file path inside it (folders allowed; no `..`,
 * no absolute path, no backslash), and returns them unchanged. Throws a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * parseRepoFile("bartowski/Qwen2.5-7B-Instruct-GGUF", "Qwen2.5-7B-Instruct-Q4_K_M.gguf");
 * ```
 */
export function parseRepoFile(repo: string, file: string): { repo: string; file: string } {
  const parts = repo.split("/");
  if (
    parts.length !== 2 || !parts.every((p) => REPO_PART.test(p) && !/\.\.|--/.test(p))
  ) {
    throw new UsageError(
      `Expected a repository as owner/name (letters, digits, ".", "_", "-"), for example ` +
        `bartowski/Qwen2.5-7B-Instruct-GGUF, found "${printable(repo)}"`,
    );
  }
  const problem = filePathProblem(file);
  if (problem) {
    throw new UsageError(
      `Expected a file path inside the repository, such as model-Q4_K_M.gguf or ` +
        `folder/model-Q4_K_M.gguf, found "${printable(file)}": ${problem}`,
    );
  }
  return { repo, file };
}

function filePathProblem(file: string): string | undefined {
  if (file === "") return "it is empty";
  if (file.length > 1024) return "it is longer than 1024 characters";
  if (hasControl(file)) return "it contains control characters";
  if (file.includes("\\")) return "use / between folders, not \\";
  if (file.startsWith("/") || isAbsolute(file)) return "it must be relative, not absolute";
  for (const segment of file.split("/")) {
    if (segment === "") return "it has an empty folder name (//, or / at the end)";
    if (segment === "." || segment === "..") return `"${segment}" is not allowed`;
    if (segment.length > 255) return "a name in it is longer than 255 characters";
  }
  return undefined;
}

/**
 * Checks a revision: a branch, a tag, a commit id, or a ref such as `refs/pr/1`. Returns it
 * unchanged; throws a {@linkcode UsageError}.
 */
export function parseRevision(revision: string): string {
  const bad = revision === "" || revision.length > 255 || hasControl(revision) ||
    /[\s\\~^:?*[]/.test(revision) || revision.includes("..") || revision.startsWith("/") ||
    revision.endsWith("/") || revision.includes("//");
  if (bad) {
    throw new UsageError(
      `Expected a revision such as main, a tag, a commit id or refs/pr/1, found ` +
        `"${printable(revision)}"`,
    );
  }
  return revision;
}

/**
 * Checks a 64-hex sha256 given by the user and returns it in lower case; throws a
 * {@linkcode UsageError}.
 */
export function parseSha256(hex: string): string {
  const clean = hex.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(clean)) {
    throw new UsageError(
      `Expected --sha256 to be 64 hexadecimal digits, found "${printable(hex)}" ` +
        `(${hex.trim().length} characters)`,
    );
  }
  return clean;
}

/**
 * Parses the Hugging Face endpoint (`HF_ENDPOINT`): an http or https URL, possibly with a
 * path for a mirror. Throws a {@linkcode HarveyError}.
 */
export function parseEndpoint(endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new HarveyError(
      `Expected HF_ENDPOINT to be a URL such as ${DEFAULT_HF_ENDPOINT}, found "${
        printable(endpoint)
      }"`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new HarveyError(
      `Expected HF_ENDPOINT to be an http or https URL, found "${printable(endpoint)}"`,
    );
  }
  if (url.username || url.password) {
    throw new HarveyError("HF_ENDPOINT must not contain a user name or password: use HF_TOKEN");
  }
  url.search = "";
  url.hash = "";
  return url;
}

/**
 * The download URL of `file` at `revision`: `{endpoint}/{repo}/resolve/{revision}/{file}`,
 * each part percent-encoded (a `/` in the revision too, as Hugging Face expects).
 *
 * @example
 * ```ts
 * resolveUrl(new URL("https://huggingface.co"), "o/n", "main", "a b/x.gguf").href;
 * // "https://huggingface.co/o/n/resolve/main/a%20b/x.gguf"
 * ```
 */
export function resolveUrl(endpoint: URL, repo: string, revision: string, file: string): URL {
  const base = endpoint.href.replace(/\/+$/, "");
  const encodedFile = file.split("/").map(encodeURIComponent).join("/");
  return new URL(
    `${base}/${repo}/resolve/${encodeURIComponent(revision)}/${encodedFile}`,
  );
}

/**
 * Where `file` lands: `dir` joined with the file's base name. Throws when the result would not
 * be inside `dir`.
 */
export function destinationPath(dir: string, file: string): string {
  const name = basename(file);
  const dest = join(dir, name);
  const rel = relative(resolve(dir), resolve(dest));
  if (name === "" || rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new UsageError(`Refusing to write "${printable(file)}" outside ${dir}`);
  }
  return dest;
}

function printable(text: string): string {
  const shown = [...text].map((c) => hasControl(c) ? "?" : c).join("");
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown;
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
