/**
 * `harvey pull`: downloads one file (a GGUF, a llamafile) from a Hugging Face repository.
 * Resumable (`FILE.part` and its sidecar `FILE.part.json`, HTTP Range), verified (sha256
 * computed while streaming, checked against `--sha256` or the hub's LFS hash) and atomic (the
 * destination only ever holds a complete, verified file: fsync, then rename).
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { basename, dirname } from "node:path";
import { HarveyError } from "../errors.ts";
import type { Output } from "../types.ts";
import {
  discard,
  type Fetched,
  fetchFollow,
  httpError,
  networkReason,
  parseContentRange,
  type RemoteMeta,
  type RequestContext,
  sha256FromEtag,
  TransientError,
  unsatisfiedTotal,
} from "./http.ts";
import {
  fsError,
  hashPrefix,
  hashWholeFile,
  partPath,
  readSidecar,
  removeIfThere,
  type Sidecar,
  sidecarPath,
  writeSidecar,
} from "./part_file.ts";
import { formatBytes, formatDuration, type ProgressInfo, ProgressReporter } from "./progress.ts";
import {
  DEFAULT_HF_ENDPOINT,
  destinationPath,
  parseEndpoint,
  parseRepoFile,
  parseRevision,
  parseSha256,
  resolveUrl,
} from "./repo_path.ts";
import { BodyReadError, streamToFile } from "./stream_to_file.ts";

export { parseRepoFile } from "./repo_path.ts";

/** What to pull, where to, and how to report. */
export interface PullOptions {
  /** `owner/name`. */
  repo: string;
  /** The path inside the repository; folders allowed. */
  file: string;
  /** Branch, tag or commit; default `main`. */
  revision?: string;
  /** The folder the file lands in (its base name is kept). */
  dir: string;
  /** The expected sha256 (64 hex digits); else the hub's LFS hash is used when it gives one. */
  sha256?: string;
  /** Default `https://huggingface.co`; the caller passes `HF_ENDPOINT`. */
  endpoint?: string;
  /** Sent as a bearer token to the endpoint's own origin only; the caller passes `HF_TOKEN`. */
  token?: string;
  /** Ctrl-C: stops the pull, keeping the part and its sidecar for the next pull to resume. */
  signal?: AbortSignal;
  /** Called as bytes arrive (at the drawing interval, and once at the end). */
  progress?: (p: ProgressInfo) => void;
  /** Where progress and messages go. */
  out?: Output;
  /** A redrawn progress bar instead of a plain line every few seconds. */
  isTerminal?: boolean;
  /** How often progress is drawn; default 100 ms for the bar, 5000 ms for plain lines. */
  progressIntervalMs?: number;
  /** How many times a dropped connection or a 5xx answer is retried (resuming); default 3. */
  retries?: number;
  /** The first wait before a retry, doubled each time; default 1000 ms. */
  retryDelayMs?: number;
  /** No data for this long counts as a dropped connection; default 60000 ms. */
  idleTimeoutMs?: number;
  /** When the final fsync takes longer than this, a line says so; default 1000 ms, 0 always. */
  syncNoticeMs?: number;
}

/** What a pull did. */
export interface PullResult {
  /** The destination file. */
  path: string;
  /** The sha256 of the file, hex. */
  sha256: string;
  bytes: number;
  /** True when a verified file was already there and nothing was downloaded. */
  skipped: boolean;
  /** The offset this pull resumed from (0 for a fresh download). */
  resumedFrom: number;
  /** True when the hash was checked against `--sha256` or the hub's hash. */
  verified: boolean;
  /** The commit the revision resolved to, when the hub said. */
  commit?: string;
}

/** Thrown when the pull was interrupted through its signal; the part is kept for resuming. */
export class PullInterrupted extends HarveyError {
  override name = "PullInterrupted";
}

const REDIRECTED = new Set([301, 302, 303, 307, 308]);

interface Job {
  ctx: RequestContext;
  url: URL;
  dest: string;
  part: string;
  side: string;
  wanted?: string;
  opts: PullOptions;
  say: (text: string) => void;
}

/**
 * Downloads `opts.file` from `opts.repo` into `opts.dir`, resuming a previous attempt when it
 * can, and returns where the file is and its sha256. Throws a {@linkcode HarveyError} with a
 * one-line message ({@linkcode PullInterrupted} when `opts.signal` aborts).
 *
 * @example
 * ```ts
 * const r = await pullFile({
 *   repo: "bartowski/Qwen2.5-0.5B-Instruct-GGUF",
 *   file: "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf",
 *   dir: "/home/me/Models",
 *   token: Deno.env.get("HF_TOKEN"),
 * });
 * ```
 */
export async function pullFile(opts: PullOptions): Promise<PullResult> {
  const { repo, file } = parseRepoFile(opts.repo, opts.file);
  const revision = parseRevision(opts.revision ?? "main");
  const wanted = opts.sha256 === undefined ? undefined : parseSha256(opts.sha256);
  const endpoint = parseEndpoint(opts.endpoint || DEFAULT_HF_ENDPOINT);
  const dest = destinationPath(opts.dir, file);
  const job: Job = {
    ctx: { repo, file, revision, endpoint, token: opts.token || undefined, signal: opts.signal },
    url: resolveUrl(endpoint, repo, revision, file),
    dest,
    part: partPath(dest),
    side: sidecarPath(dest),
    wanted,
    opts,
    say: (text) => opts.out?.write(`${text}\n`),
  };
  let made: string[] = [];
  try {
    made = await makeFolder(dirname(dest));
    const existing = await checkExisting(job);
    if (existing) return existing;
    return await withPartFile(job);
  } catch (err) {
    // A failed pull leaves no folders it made behind (unless they hold a part to resume).
    for (const dir of made.reverse()) await Deno.remove(dir).catch(() => {});
    if (opts.signal?.aborted && !(err instanceof PullInterrupted)) {
      throw await interrupted(job);
    }
    throw err;
  }
}

/** Creates `dir` and its missing parents; returns the folders it made, outermost first. */
async function makeFolder(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    try {
      await Deno.lstat(d);
      break;
    } catch {
      missing.unshift(d);
    }
  }
  try {
    await Deno.mkdir(dir, { recursive: true });
    return missing;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new HarveyError(`Cannot save into ${dir}: it is a file, not a folder`);
    }
    throw fsError(err, "create the folder", dir);
  }
}

async function checkExisting(job: Job): Promise<PullResult | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(job.dest);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw fsError(err, "read", job.dest);
  }
  if (!info.isFile) {
    throw new HarveyError(
      `${job.dest} exists and is not a file: move it away or choose another --dir`,
    );
  }
  let want = job.wanted;
  let meta: RemoteMeta | undefined;
  if (!want) {
    meta = await withRetries(job, () => probe(job));
    want = sha256FromEtag(meta.etag);
  }
  if (!want) {
    job.say(
      `${job.dest} is already there, but the server gives no sha256 to check it against: ` +
        `downloading it again`,
    );
    return undefined;
  }
  const hash = createHash("sha256");
  let size: number;
  try {
    size = await hashWholeFile(job.dest, hash, job.opts.signal);
  } catch (err) {
    if (job.opts.signal?.aborted) throw err;
    throw fsError(err, "read", job.dest);
  }
  const got = hash.digest("hex");
  if (got === want) {
    job.say(`${job.dest} is already there and its sha256 matches: nothing to do`);
    return {
      path: job.dest,
      sha256: got,
      bytes: size,
      skipped: true,
      resumedFrom: 0,
      verified: true,
      commit: meta?.commit,
    };
  }
  job.say(
    `${job.dest} is already there but its sha256 is ${got}, not ${want}: downloading it again`,
  );
  return undefined;
}

async function probe(job: Job): Promise<RemoteMeta> {
  const { res, meta, url } = await fetchFollow(job.url, job.ctx, {
    method: "HEAD",
    stayOnOrigin: true,
  });
  await discard(res);
  if (!res.ok && !REDIRECTED.has(res.status)) throw httpError(res, url, job.ctx);
  return meta;
}

async function withPartFile(job: Job): Promise<PullResult> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(job.part, { read: true, write: true, create: true, mode: 0o644 });
  } catch (err) {
    throw fsError(err, "write", job.part);
  }
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) {
      throw new HarveyError(
        `Another pull is already downloading ${job.dest} (${job.part} is locked): wait for it ` +
          `to finish`,
      );
    }
    return await withRetries(job, () => transfer(job, file));
  } catch (err) {
    if (locked) await dropEmptyPart(job, file);
    throw err;
  } finally {
    // Unlock before closing: a close can wait for an operation still holding the file, and
    // the next pull (a resume right after Ctrl-C) must find the part unlocked.
    if (locked) await file.unlock().catch(() => {});
    file.close();
  }
}

/** A part with no bytes is worth nothing: remove it (and its sidecar) rather than leave litter. */
async function dropEmptyPart(job: Job, file: Deno.FsFile): Promise<void> {
  try {
    if ((await file.stat()).size === 0) await removePart(job);
  } catch {
    // best effort: the error being reported matters more
  }
}

async function withRetries<T>(job: Job, attempt: () => Promise<T>): Promise<T> {
  const retries = Math.max(0, job.opts.retries ?? 3);
  const firstDelay = Math.max(0, job.opts.retryDelayMs ?? 1000);
  for (let i = 0;; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof TransientError) || job.opts.signal?.aborted) throw err;
      if (i >= retries) {
        const kept = await partSize(job.part);
        const resume = kept > 0
          ? `; ${formatBytes(kept)} kept in ${job.part}: run the same pull again to resume`
          : "; check your network connection and try again";
        const tries = i + 1;
        throw new HarveyError(
          `${err.message} (${tries} attempt${tries === 1 ? "" : "s"})${resume}`,
        );
      }
      const delay = Math.min(30_000, firstDelay * 2 ** i);
      job.say(
        `${err.message}: retrying in ${formatDuration(delay / 1000)} ` +
          `(attempt ${i + 2} of ${retries + 1})`,
      );
      await sleep(delay, job.opts.signal);
    }
  }
}

async function transfer(job: Job, file: Deno.FsFile): Promise<PullResult> {
  const { say } = job;
  const side = await readSidecar(job.side).catch(() => undefined);
  const onDisk = (await file.stat()).size;
  let offset = 0;
  if (onDisk > 0) {
    const refusal = resumeRefusal(job, side, onDisk);
    if (refusal) say(`${refusal}: starting over`);
    else offset = onDisk;
  }
  const check = (meta: RemoteMeta) => checkServerSha(job, meta);
  let fetched = await fetchFollow(job.url, job.ctx, { range: offset, check });
  let start = offset;
  let complete = false;
  if (offset > 0 && side) {
    const verdict = resumeCheck(fetched, side, offset);
    if (verdict === "complete") complete = true;
    else if (verdict) {
      say(`${verdict}: starting over`);
      start = 0;
      if (fetched.res.status !== 200) {
        await discard(fetched.res);
        fetched = await fetchFollow(job.url, job.ctx, { check });
      }
    }
  }
  const { res, meta } = fetched;
  const okStatus = complete || (start === 0 ? res.status === 200 : res.status === 206);
  if (!okStatus) {
    await discard(res);
    if (res.ok) {
      throw new HarveyError(
        `Unexpected answer from ${fetched.url.host}: HTTP ${res.status} to a ` +
          `${start === 0 ? "plain" : "Range"} request`,
      );
    }
    throw httpError(res, fetched.url, job.ctx);
  }
  const serverSha = sha256FromEtag(meta.etag);
  const expected = job.wanted ?? serverSha;
  const total = meta.size;
  const hash = createHash("sha256");
  const received = await receive(job, file, fetched, { start, complete, total, hash });
  return await install(job, file, {
    sha256: hash.digest("hex"),
    expected,
    bytes: received,
    resumedFrom: start,
    commit: meta.commit,
  });
}

/** Hashes the part's first `start` bytes, then streams the rest; returns the file's size. */
async function receive(
  job: Job,
  file: Deno.FsFile,
  { res, meta, url }: Fetched,
  o: { start: number; complete: boolean; total?: number; hash: Hash },
): Promise<number> {
  const { start, total, hash } = o;
  const say = job.say;
  const label = job.ctx.file.slice(job.ctx.file.lastIndexOf("/") + 1);
  let received = start;
  try {
    if (start === 0) {
      await file.truncate(0);
      await writeSidecar(job.side, sidecarFor(job, meta));
      say(
        `Downloading ${job.ctx.repo}/${job.ctx.file}${
          total !== undefined ? ` (${formatBytes(total)})` : ""
        } to ${job.dest}`,
      );
    } else {
      say(
        `Resuming ${label} at ${formatBytes(start)}${
          total !== undefined ? ` of ${formatBytes(total)}` : ""
        }`,
      );
      await hashPrefix(file, start, hash, job.opts.signal);
    }
  } catch (err) {
    await discard(res);
    if (job.opts.signal?.aborted) throw err;
    throw fsError(err, start === 0 ? "write" : "read", job.part);
  }
  if (!o.complete && res.body) {
    await file.seek(start, Deno.SeekMode.Start);
    const reporter = new ProgressReporter({
      out: job.opts.out,
      isTerminal: job.opts.isTerminal,
      intervalMs: job.opts.progressIntervalMs,
      hook: job.opts.progress,
      label,
      total,
      startAt: start,
    });
    try {
      const streamed = await streamToFile(res.body, {
        file,
        hash,
        idleTimeoutMs: job.opts.idleTimeoutMs ?? 60_000,
        host: url.host,
        onBytes: (n) => reporter.update(start + n),
      });
      received = start + streamed;
      reporter.finish(received);
    } catch (err) {
      reporter.stop();
      received = (await file.stat().catch(() => ({ size: start }))).size;
      if (job.opts.signal?.aborted) throw err;
      if (err instanceof BodyReadError) {
        const cause = err.cause;
        if (cause instanceof TransientError) throw cause;
        throw new TransientError(
          `The connection to ${url.host} broke at ${formatBytes(received)}` +
            `${total !== undefined ? ` of ${formatBytes(total)}` : ""} (${networkReason(cause)})`,
        );
      }
      throw fsError(err, "write", job.part, { received, total });
    }
  } else {
    await discard(res);
  }
  if (total !== undefined && received < total) {
    throw new TransientError(
      `The connection to ${url.host} ended at ${formatBytes(received)} of ${formatBytes(total)}`,
    );
  }
  if (total !== undefined && received > total) {
    await removePart(job);
    throw new HarveyError(
      `${url.host} sent ${received} bytes for ${job.ctx.file}, more than the ${total} it ` +
        `announced: the download was deleted; try again later`,
    );
  }
  return received;
}

/** Stops before any byte is fetched when the hub's sha256 contradicts `--sha256`. */
function checkServerSha(job: Job, meta: RemoteMeta): void {
  const serverSha = sha256FromEtag(meta.etag);
  if (job.wanted && serverSha && serverSha !== job.wanted) {
    throw new HarveyError(
      `The server's sha256 for ${job.ctx.file} is ${serverSha}, not ${job.wanted} as given ` +
        `with --sha256: check the value and the revision (nothing was downloaded)`,
    );
  }
}

function resumeRefusal(job: Job, side: Sidecar | undefined, onDisk: number): string | undefined {
  if (!side) return `${job.part} has no record of where it came from`;
  if (side.url !== job.url.href) return `${job.part} was started from another URL`;
  if (side.etag === null) return `The server gave no ETag when ${job.part} was started`;
  if (side.size !== null && onDisk > side.size) return `${job.part} is larger than the file`;
  return undefined;
}

/** Why the answer to a Range request cannot continue the part, "complete", or nothing. */
function resumeCheck(
  { res, meta }: Fetched,
  side: Sidecar,
  offset: number,
): string | "complete" | undefined {
  const usable = res.ok || res.status === 416;
  if (!usable) return undefined;
  if (meta.etag !== side.etag) return "The file changed on the server since the part was started";
  if (res.status === 416) {
    const total = unsatisfiedTotal(res.headers.get("content-range")) ?? meta.size;
    return total === offset ? "complete" : "The server refused to resume this part";
  }
  if (res.status === 200) return "The server does not support resuming";
  const range = parseContentRange(res.headers.get("content-range"));
  if (res.status !== 206 || !range || range.start !== offset) {
    return "The server answered the Range request with other bytes";
  }
  if (side.size !== null && range.total !== undefined && range.total !== side.size) {
    return "The file's size changed on the server";
  }
  return undefined;
}

function sidecarFor(job: Job, meta: RemoteMeta): Sidecar {
  return {
    url: job.url.href,
    etag: meta.etag ?? null,
    size: meta.size ?? null,
    commit: meta.commit,
    started: new Date().toISOString(),
  };
}

async function install(
  job: Job,
  file: Deno.FsFile,
  r: { sha256: string; expected?: string; bytes: number; resumedFrom: number; commit?: string },
): Promise<PullResult> {
  if (r.expected && r.sha256 !== r.expected) {
    await removePart(job);
    const source = job.wanted ? "given with --sha256" : "announced by the server";
    throw new HarveyError(
      `Checksum mismatch for ${job.ctx.file}: expected sha256 ${r.expected} (${source}), got ` +
        `${r.sha256}; the download was deleted and nothing was installed`,
    );
  }
  // The only fsync of the pull: on a slow disk it can take a while after the bar shows 100%.
  const noticeMs = job.opts.syncNoticeMs ?? 1000;
  const sayWriting = () => job.say(`Writing ${basename(job.dest)} to the disk…`);
  let notice: ReturnType<typeof setTimeout> | undefined;
  if (noticeMs > 0) notice = setTimeout(sayWriting, noticeMs);
  else sayWriting();
  try {
    await file.syncData();
    await Deno.rename(job.part, job.dest);
  } catch (err) {
    throw fsError(err, "save", job.dest);
  } finally {
    clearTimeout(notice);
  }
  await removeIfThere(job.side).catch(() => {});
  await syncFolder(dirname(job.dest));
  const verified = r.expected !== undefined;
  job.say(
    `Saved ${job.dest} (${formatBytes(r.bytes)}, sha256 ${r.sha256}${
      verified ? ", verified" : ", not verified: no sha256 from the server or --sha256"
    })`,
  );
  return {
    path: job.dest,
    sha256: r.sha256,
    bytes: r.bytes,
    skipped: false,
    resumedFrom: r.resumedFrom,
    verified,
    commit: r.commit,
  };
}

async function removePart(job: Job): Promise<void> {
  await removeIfThere(job.part).catch(() => {});
  await removeIfThere(job.side).catch(() => {});
}

async function syncFolder(dir: string): Promise<void> {
  try {
    using folder = await Deno.open(dir, { read: true });
    await folder.sync();
  } catch {
    // Not every platform can open a folder; the rename is done either way.
  }
}

async function partSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

async function interrupted(job: Job): Promise<PullInterrupted> {
  const kept = await partSize(job.part);
  const side = await readSidecar(job.side).catch(() => undefined);
  const of = side?.size ? ` of ${formatBytes(side.size)}` : "";
  return new PullInterrupted(
    kept > 0
      ? `Pull interrupted: ${formatBytes(kept)}${of} kept in ${job.part}; run the same pull ` +
        `again to resume`
      : "Pull interrupted before any data was saved",
  );
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
