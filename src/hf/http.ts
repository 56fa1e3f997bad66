/**
 * HTTP for pulls: redirects followed by hand so that the token only ever goes to the
 * Hugging Face endpoint itself, the file's metadata read from the hub's headers, and the hub's
 * errors turned into plain words.
 *
 * @module
 */

import { describeError, HarveyError } from "../errors.ts";

/** What the server says about the file, gathered along the redirect chain. */
export interface RemoteMeta {
  /** The hub's `X-Linked-Etag`, else the first `ETag` seen, without quotes or `W/`. */
  etag?: string;
  /** `X-Linked-Size`, else the size the final response gives. */
  size?: number;
  /** `X-Repo-Commit`: the commit the revision resolved to. */
  commit?: string;
}

/** A response whose body is still to be read, and what the server said about the file. */
export interface Fetched {
  res: Response;
  meta: RemoteMeta;
  /** The URL that answered, after redirects. */
  url: URL;
}

/** A failure worth retrying: the network, a dropped connection, a 5xx or 429 answer. */
export class TransientError extends HarveyError {
  override name = "TransientError";
}

/** What a request is for, to word its errors. */
export interface RequestContext {
  repo: string;
  file: string;
  revision: string;
  /** The Hugging Face endpoint: the only origin the token is sent to. */
  endpoint: URL;
  token?: string;
  signal?: AbortSignal;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const USER_AGENT = "harvey/0.1 (hf-pull)";

/**
 * Sends `method` to `url` and follows redirects itself: the bearer token goes only to URLs of
 * the endpoint's origin (scheme, host and port), never to the host a redirect points to.
 * `range` asks for the bytes from that offset on. Throws {@linkcode TransientError} for
 * network failures; HTTP errors are returned for {@linkcode httpError}.
 */
export async function fetchFollow(
  url: URL,
  ctx: RequestContext,
  opts: {
    method?: "GET" | "HEAD";
    range?: number;
    /** Looks at what is known after each answer; throwing stops before the next hop. */
    check?: (meta: RemoteMeta) => void;
    /**
     * Returns a redirect to another origin instead of following it: the hub's own answer
     * carries the metadata, and the file store's signed URLs may refuse a HEAD.
     */
    stayOnOrigin?: boolean;
  } = {},
): Promise<Fetched> {
  const meta: RemoteMeta = {};
  const tags: { linked?: string; plain?: string } = {};
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers = new Headers({ "user-agent": USER_AGENT, "accept-encoding": "identity" });
    if (opts.range !== undefined && opts.range > 0) headers.set("range", `bytes=${opts.range}-`);
    if (ctx.token && current.origin === ctx.endpoint.origin) {
      headers.set("authorization", `Bearer ${ctx.token}`);
    }
    let res: Response;
    try {
      res = await fetch(current, {
        method: opts.method ?? "GET",
        headers,
        redirect: "manual",
        signal: ctx.signal,
      });
    } catch (err) {
      throw requestFailure(err, current, ctx.signal);
    }
    collectMeta(meta, tags, res);
    try {
      opts.check?.(meta);
    } catch (err) {
      await discard(res);
      throw err;
    }
    const location = res.headers.get("location");
    if (REDIRECTS.has(res.status) && location) {
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        await discard(res);
        throw new HarveyError(`${current.host} redirected to an invalid URL "${location}"`);
      }
      if (opts.stayOnOrigin && next.origin !== current.origin) {
        return { res, meta, url: current };
      }
      await discard(res);
      if (next.protocol !== "https:" && next.protocol !== "http:") {
        throw new HarveyError(`${current.host} redirected to an unsupported URL ${next.href}`);
      }
      current = next;
      continue;
    }
    if (meta.size === undefined) meta.size = sizeOf(res);
    return { res, meta, url: current };
  }
  throw new HarveyError(`Too many redirects (more than ${MAX_REDIRECTS}) fetching ${url.href}`);
}

function collectMeta(
  meta: RemoteMeta,
  tags: { linked?: string; plain?: string },
  res: Response,
): void {
  const h = res.headers;
  tags.linked ??= h.get("x-linked-etag") ?? undefined;
  tags.plain ??= h.get("etag") ?? undefined;
  const tag = tags.linked ?? tags.plain;
  if (tag) meta.etag = normalizeEtag(tag);
  const linkedSize = h.get("x-linked-size");
  if (linkedSize && /^\d+$/.test(linkedSize) && meta.size === undefined) {
    meta.size = Number(linkedSize);
  }
  const commit = h.get("x-repo-commit");
  if (commit && meta.commit === undefined) meta.commit = commit;
}

function sizeOf(res: Response): number | undefined {
  const range = res.headers.get("content-range");
  const m = range ? /\/(\d+)\s*$/.exec(range) : null;
  if (m) return Number(m[1]);
  const length = res.headers.get("content-length");
  if (res.status === 200 && length && /^\d+$/.test(length)) return Number(length);
  return undefined;
}

/** An ETag without its `W/` prefix and quotes. */
export function normalizeEtag(tag: string): string {
  let t = tag.trim();
  if (t.startsWith("W/") || t.startsWith("w/")) t = t.slice(2);
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1);
  return t;
}

/** The sha256 an ETag carries, when it is one (64 hex digits): Hugging Face's LFS files. */
export function sha256FromEtag(etag: string | undefined): string | undefined {
  return etag && /^[0-9a-f]{64}$/i.test(etag) ? etag.toLowerCase() : undefined;
}

/** The first offset and the total of a 206's `Content-Range: bytes a-b/total`. */
export function parseContentRange(
  value: string | null,
): { start: number; total?: number } | undefined {
  const m = value ? /^bytes\s+(\d+)-\d+\/(\d+|\*)$/.exec(value.trim()) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[2] === "*" ? undefined : Number(m[2]) };
}

/** The total of a 416's `Content-Range: bytes * /total`. */
export function unsatisfiedTotal(value: string | null): number | undefined {
  const m = value ? /^bytes\s+\*\/(\d+)$/.exec(value.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

/** Drops a body that will not be read, so the connection is released. */
export async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // already closed or errored: nothing to release
  }
}

/** The error for a failed `fetch`: permission refusals as they are, the rest transient. */
export function requestFailure(err: unknown, url: URL, signal?: AbortSignal): Error {
  if (signal?.aborted) return err instanceof Error ? err : new Error(String(err));
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
    return new HarveyError(describeError(err));
  }
  return new TransientError(`Could not reach ${url.host}: ${networkReason(err)}`);
}

/** The useful end of a network error message ("connection refused", "dns error"...). */
export function networkReason(err: unknown): string {
  const text = err instanceof Error ? `${err.message} ${causeText(err)}` : String(err);
  const known: [RegExp, string][] = [
    [/connection refused/i, "connection refused"],
    [/connection reset/i, "connection reset"],
    [/dns error|failed to lookup|name or service not known|no such host/i, "host name not found"],
    [/timed out|timeout/i, "timed out"],
    [/certificate|tls|ssl/i, "TLS error"],
    [/network is unreachable/i, "network unreachable"],
    [
      /connection closed before message completed|unexpected eof|end of file before message|error reading a body|incomplete/i,
      "the connection closed early",
    ],
  ];
  for (const [re, words] of known) if (re.test(text)) return words;
  const first = text.split("\n", 1)[0].trim();
  return first.length > 160 ? `${first.slice(0, 157)}...` : first || "network error";
}

function causeText(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${cause.message} ${causeText(cause)}` : "";
}

/**
 * Turns an HTTP error answer into a one-line error. Uses Hugging Face's `X-Error-Code`
 * (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`) and `X-Error-Message`.
 * 5xx and 429 answers become a {@linkcode TransientError}.
 */
export function httpError(res: Response, url: URL, ctx: RequestContext): HarveyError {
  const code = res.headers.get("x-error-code") ?? "";
  const said = oneLine(res.headers.get("x-error-message") ?? "");
  const where = `${ctx.endpoint.host}`;
  const repoUrl = `${ctx.endpoint.href.replace(/\/+$/, "")}/${ctx.repo}`;
  const status = res.status;
  const tokenHint = ctx.token
    ? "HF_TOKEN was sent: check that its account has access to this repository"
    : "set HF_TOKEN to a token of an account with access";
  if (code === "GatedRepo") {
    return new HarveyError(
      `Repository ${ctx.repo} is gated (HTTP ${status}): accept its terms at ${repoUrl}, then ` +
        (ctx.token
          ? "make sure HF_TOKEN belongs to that account"
          : "set HF_TOKEN to a token of that account"),
    );
  }
  if (status === 401 && /invalid credentials/i.test(said)) {
    return new HarveyError(
      `${where} rejected HF_TOKEN as invalid (HTTP 401): check the token or create a new one`,
    );
  }
  if (status === 401 || status === 403) {
    if (code === "RepoNotFound") {
      return new HarveyError(
        `Repository ${ctx.repo} was not found on ${where}, or it is private (HTTP ${status}): ` +
          `check the owner/name, or ${tokenHint}`,
      );
    }
    return new HarveyError(
      `Access to ${ctx.repo} was refused (HTTP ${status}): the repository is private or gated; ` +
        tokenHint,
    );
  }
  if (status === 404) {
    if (code === "RepoNotFound") {
      return new HarveyError(
        `Repository ${ctx.repo} not found on ${where} (HTTP 404): check the owner/name`,
      );
    }
    if (code === "RevisionNotFound") {
      return new HarveyError(
        `Revision "${ctx.revision}" not found in ${ctx.repo} (HTTP 404): check the branch, tag ` +
          `or commit given with --revision`,
      );
    }
    if (code === "EntryNotFound") {
      return new HarveyError(
        `File ${ctx.file} not found in ${ctx.repo} at revision ${ctx.revision} (HTTP 404): ` +
          `check the file name and its folder`,
      );
    }
    return new HarveyError(
      `Not found (HTTP 404) at ${url.host}: the repository, revision or file does not exist` +
        (said ? ` (server said: ${said})` : ""),
    );
  }
  const detail = said ? ` (server said: ${said})` : "";
  if (status === 429) {
    return new TransientError(
      `${url.host} is limiting requests (HTTP 429)${detail}: wait a minute and try again`,
    );
  }
  if (status >= 500) {
    return new TransientError(`${url.host} failed with HTTP ${status}${detail}`);
  }
  return new HarveyError(
    `Unexpected answer from ${url.host}: HTTP ${status} ${res.statusText}${detail}`.trim(),
  );
}

function oneLine(text: string): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}
