/**
 * What answers on a local port: readiness of a llama.cpp-style server, its context size,
 * and whether a port is free.
 *
 * @module
 */

/** The status and parsed JSON body (or `undefined`) of one GET. */
export interface JsonReply {
  status: number;
  body: unknown;
}

/**
 * GETs `url` with a timeout and reads the whole body. Throws when nothing answers
 * (connection refused, timeout).
 */
export async function getJson(
  url: string,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<JsonReply> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeoutMs ?? 2_000);
  const signal = opts.signal ? AbortSignal.any([ctl.signal, opts.signal]) : ctl.signal;
  try {
    const res = await fetch(url, { signal, headers: { accept: "application/json" } });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, body };
  } finally {
    clearTimeout(timer);
  }
}

/** The ids listed by an OpenAI-compatible `/v1/models` body, or `undefined` for another shape. */
export function modelIds(body: unknown): string[] | undefined {
  const data = (body as { data?: unknown } | undefined)?.data;
  if (!Array.isArray(data)) return undefined;
  return data.map((m) => (m as { id?: unknown })?.id).filter((id): id is string =>
    typeof id === "string"
  );
}

/** One readiness probe: the server answers `/health` and then `/v1/models` with a list. */
export type Readiness =
  | { state: "ready"; models: string[] }
  | { state: "loading" }
  | { state: "down" };

/**
 * Probes `baseUrl` once: `/health` (a 503 "Loading model" means loading; a 404 is skipped, as
 * old servers lack it) then `/v1/models`.
 */
export async function probeReady(
  baseUrl: string,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Readiness> {
  try {
    const health = await getJson(`${baseUrl}/health`, opts);
    if (health.status !== 200 && health.status !== 404) return { state: "loading" };
    const models = await getJson(`${baseUrl}/v1/models`, opts);
    const ids = models.status === 200 ? modelIds(models.body) : undefined;
    return ids ? { state: "ready", models: ids } : { state: "loading" };
  } catch {
    return { state: "down" };
  }
}

/**
 * The context size the server really uses: `/props` → `default_generation_settings.n_ctx`,
 * else `/v1/models` → `data[0].meta.n_ctx_train`; `undefined` when neither says.
 */
export async function readContextSize(baseUrl: string): Promise<number | undefined> {
  try {
    const props = await getJson(`${baseUrl}/props`);
    const n = (props.body as { default_generation_settings?: { n_ctx?: unknown } } | undefined)
      ?.default_generation_settings?.n_ctx;
    if (props.status === 200 && typeof n === "number" && n > 0) return n;
  } catch {
    // fall through to /v1/models
  }
  try {
    const models = await getJson(`${baseUrl}/v1/models`);
    const data = (models.body as { data?: { meta?: { n_ctx_train?: unknown } }[] } | undefined)
      ?.data;
    const n = Array.isArray(data) ? data[0]?.meta?.n_ctx_train : undefined;
    if (models.status === 200 && typeof n === "number" && n > 0) return n;
  } catch {
    // nothing answers
  }
  return undefined;
}

/** What answers on a port that is taken. */
export type PortOccupant =
  | { kind: "ollama"; version: string }
  | { kind: "openai"; models: string[] }
  | { kind: "other" };

/** Asks whoever listens at `baseUrl` what it is: Ollama, an OpenAI-compatible server, or other. */
export async function identifyServer(baseUrl: string): Promise<PortOccupant> {
  try {
    const v = await getJson(`${baseUrl}/api/version`);
    const version = (v.body as { version?: unknown } | undefined)?.version;
    if (v.status === 200 && typeof version === "string") return { kind: "ollama", version };
  } catch {
    return { kind: "other" };
  }
  try {
    const m = await getJson(`${baseUrl}/v1/models`);
    const ids = m.status === 200 ? modelIds(m.body) : undefined;
    if (ids) return { kind: "openai", models: ids };
    if (m.status === 503) return { kind: "openai", models: [] };
  } catch {
    // not HTTP, or too slow
  }
  return { kind: "other" };
}

/** A phrase for a {@linkcode PortOccupant}, e.g. `an OpenAI-compatible server serving qwen3`. */
export function describeOccupant(o: PortOccupant): string {
  if (o.kind === "ollama") return `Ollama ${o.version}`;
  if (o.kind === "other") return "something that is not an OpenAI-compatible server";
  if (o.models.length === 0) return "an OpenAI-compatible server that is still loading its model";
  return `an OpenAI-compatible server serving ${o.models.join(", ")}`;
}

/** Whether nothing listens on `port` of 127.0.0.1 (a test bind that is released at once). */
export function isPortFree(port: number): boolean {
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    l.close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return false;
    throw err;
  }
}

/**
 * A TCP port of 127.0.0.1 that is free right now, chosen by the kernel.
 *
 * @example
 * ```ts
 * const port = findFreePort(); // e.g. 41873
 * ```
 */
export function findFreePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
