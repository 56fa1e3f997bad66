/**
 * Embedding models over HTTP: Ollama's `/api/embed` and OpenAI-compatible `/v1/embeddings`
 * (llama-server, llamafile, cloud providers), batched, with one-line errors that say what to
 * do.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";

/** Turns texts into vectors with one embedding model. */
export interface Embedder {
  /** The embedding model's name; a RAG store only accepts vectors from the model it was built with. */
  readonly name: string;
  /** One vector per text, in order. */
  embed(texts: string[], opts?: { signal?: AbortSignal }): Promise<Float32Array[]>;
  /**
   * Tokens of `text` by the embedding model's own tokenizer, when the server has one
   * (llama-server's `/tokenize`); undefined when it cannot tell.
   */
  countTokens?(text: string, opts?: { signal?: AbortSignal }): Promise<number | undefined>;
}

/** Options shared by the HTTP embedders. */
export interface HttpEmbedderOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:11434` (for OpenAI-compatible servers, without `/v1`). */
  baseUrl: string;
  /** The embedding model, e.g. `nomic-embed-text`. */
  model: string;
  /** Texts per request; default 32. */
  batchSize?: number;
  /** The fetch to use; default the global one. */
  fetch?: typeof fetch;
}

/** Options of {@linkcode OpenAIEmbedder}. */
export interface OpenAIEmbedderOptions extends HttpEmbedderOptions {
  /** Sent as `Authorization: Bearer …` when given. */
  apiKey?: string;
  /** Headers that authorize requests to this server (a local server's own key). */
  headers?: Record<string, string>;
}

const DEFAULT_BATCH = 32;

/**
 * Embeds with Ollama's `POST /api/embed` (`{model, input}` → `{embeddings}`).
 *
 * @example
 * ```ts
 * const e = new OllamaEmbedder({ baseUrl: "http://127.0.0.1:11434", model: "nomic-embed-text" });
 * const [v] = await e.embed(["hello"]);
 * ```
 */
export class OllamaEmbedder implements Embedder {
  /** The embedding model. */
  readonly name: string;
  readonly #http: HttpPoster;

  /** An embedder for `opts.model` on the Ollama server at `opts.baseUrl`. */
  constructor(opts: HttpEmbedderOptions) {
    this.name = opts.model;
    this.#http = new HttpPoster(opts, `${trimSlash(opts.baseUrl)}/api/embed`, {}, "ollama");
  }

  /** One vector per text, requested `batchSize` texts at a time. */
  embed(texts: string[], opts: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    return this.#http.batched(texts, opts.signal, async (batch, signal) => {
      const reply = await this.#http.post({ model: this.name, input: batch }, signal);
      const embeddings = (reply as { embeddings?: unknown })?.embeddings;
      if (!Array.isArray(embeddings)) {
        throw this.#http.unexpected("an object with embeddings: number[][]");
      }
      return embeddings;
    });
  }
}

/**
 * Embeds with an OpenAI-compatible `POST /v1/embeddings` (`{model, input}` → `data[].embedding`,
 * put back in `index` order).
 *
 * @example
 * ```ts
 * const e = new OpenAIEmbedder({ baseUrl: "http://127.0.0.1:8080", model: "nomic-embed-text" });
 * const vectors = await e.embed(["first text", "second text"]);
 * ```
 */
export class OpenAIEmbedder implements Embedder {
  /** The embedding model. */
  readonly name: string;
  readonly #http: HttpPoster;

  readonly #tokenize: HttpPoster;
  #canTokenize = true;

  /** An embedder for `opts.model` on the server at `opts.baseUrl` (given without `/v1`). */
  constructor(opts: OpenAIEmbedderOptions) {
    this.name = opts.model;
    const headers: Record<string, string> = {
      ...opts.headers,
      ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
    };
    const base = trimSlash(opts.baseUrl).replace(/\/v1$/, "");
    this.#http = new HttpPoster(opts, `${base}/v1/embeddings`, headers, "openai");
    this.#tokenize = new HttpPoster(opts, `${base}/tokenize`, headers, "openai");
  }

  /** Tokens of `text` by llama-server's `/tokenize`; undefined where the server has none. */
  async countTokens(
    text: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<number | undefined> {
    if (!this.#canTokenize) return undefined;
    try {
      const reply = await this.#tokenize.post({ content: text, model: this.name }, opts.signal);
      const tokens = (reply as { tokens?: unknown })?.tokens;
      return Array.isArray(tokens) ? tokens.length : undefined;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      this.#canTokenize = false;
      return undefined;
    }
  }

  /** One vector per text, requested `batchSize` texts at a time. */
  embed(texts: string[], opts: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    return this.#http.batched(texts, opts.signal, async (batch, signal) => {
      const reply = await this.#http.post({ model: this.name, input: batch }, signal);
      const data = (reply as { data?: unknown })?.data;
      if (!Array.isArray(data)) {
        throw this.#http.unexpected("an object with data: [{index, embedding}]");
      }
      const items = data as { index?: unknown; embedding?: unknown }[];
      const ordered = items.every((d) => typeof d?.index === "number")
        ? [...items].sort((a, b) => (a.index as number) - (b.index as number))
        : items;
      return ordered.map((d) => d?.embedding);
    });
  }
}

type Flavour = "ollama" | "openai";

class HttpPoster {
  readonly #url: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;
  readonly #batchSize: number;
  readonly #flavour: Flavour;
  readonly #model: string;

  constructor(
    opts: HttpEmbedderOptions,
    url: string,
    headers: Record<string, string>,
    flavour: Flavour,
  ) {
    const batch = opts.batchSize ?? DEFAULT_BATCH;
    if (!Number.isSafeInteger(batch) || batch < 1) {
      throw new HarveyError(`Expected an embedding batch size of 1 or more, found ${batch}`);
    }
    this.#url = url;
    this.#headers = { "content-type": "application/json", ...headers };
    this.#fetch = opts.fetch ?? fetch;
    this.#batchSize = batch;
    this.#flavour = flavour;
    this.#model = opts.model;
  }

  async batched(
    texts: string[],
    signal: AbortSignal | undefined,
    request: (batch: string[], signal?: AbortSignal) => Promise<unknown[]>,
  ): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    let dims = 0;
    for (let i = 0; i < texts.length; i += this.#batchSize) {
      signal?.throwIfAborted();
      const batch = texts.slice(i, i + this.#batchSize);
      const raw = await request(batch, signal);
      if (raw.length !== batch.length) {
        throw new HarveyError(
          `The embedding server at ${this.#url} returned ${raw.length} vectors for ${batch.length} texts: check that it serves the embedding model ${this.#model}`,
        );
      }
      for (const item of raw) {
        const vector = toVector(item);
        if (!vector) throw this.unexpected("vectors of numbers");
        if (dims === 0) dims = vector.length;
        if (vector.length !== dims) {
          throw new HarveyError(
            `The embedding server at ${this.#url} returned vectors of different sizes (${dims} and ${vector.length}): check its embedding model`,
          );
        }
        out.push(vector);
      }
    }
    return out;
  }

  async post(body: unknown, signal?: AbortSignal): Promise<unknown> {
    let res: Response;
    try {
      res = await this.#fetch(this.#url, {
        method: "POST",
        headers: this.#headers,
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (signal?.aborted || (err instanceof Error && err.name === "AbortError")) throw err;
      if (err instanceof Deno.errors.NotCapable) throw err;
      throw new HarveyError(
        `Cannot reach the embedding server at ${this.#url}: ${
          networkReason(err)
        } (${this.#startHint()})`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      const message = serverMessage(text) || res.statusText;
      throw new HarveyError(
        `The embedding server at ${this.#url} answered ${res.status}: ${message} (${
          this.#statusHint(res.status, message)
        })`,
      );
    }
    try {
      return JSON.parse(text);
    } catch {
      throw this.unexpected("JSON");
    }
  }

  unexpected(expected: string): HarveyError {
    return new HarveyError(
      `Expected ${expected} from the embedding server at ${this.#url}, found something else: check that the URL points at ${
        this.#flavour === "ollama" ? "Ollama" : "an OpenAI-compatible server"
      }`,
    );
  }

  #startHint(): string {
    return this.#flavour === "ollama"
      ? "is Ollama running? start it with: ollama serve"
      : "is the server running? start llama-server with --embeddings --pooling mean";
  }

  #statusHint(status: number, message: string): string {
    if (/too large|batch size/i.test(message)) {
      return "one chunk has more tokens than the server embeds at once (its --ubatch-size, " +
        "512 by default): start llama-server with a larger -ub, or ingest with smaller chunks";
    }
    if (status === 401 || status === 403) return "check the API key";
    if (status === 503) return "the server is still loading its model: try again in a moment";
    if (this.#flavour === "ollama") {
      if (status === 404) return `pull the model with: ollama pull ${this.#model}`;
      return `check that ${this.#model} is an embedding model`;
    }
    if (status === 400 || status === 501) {
      return "llama-server serves embeddings only when started with --embeddings --pooling mean";
    }
    if (status === 404) return "check the base URL (given without /v1) and the model name";
    return `check that the server serves the embedding model ${this.#model}`;
  }
}

function toVector(item: unknown): Float32Array | undefined {
  if (!Array.isArray(item) || item.length === 0) return undefined;
  const v = new Float32Array(item.length);
  for (let i = 0; i < item.length; i++) {
    const x = item[i];
    if (typeof x !== "number" || !Number.isFinite(x)) return undefined;
    v[i] = x;
  }
  return v;
}

function serverMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const e = body.error;
    if (typeof e === "string") return oneLine(e);
    if (e && typeof e === "object" && typeof (e as { message?: unknown }).message === "string") {
      return oneLine((e as { message: string }).message);
    }
    if (typeof body.message === "string") return oneLine(body.message);
  } catch {
    // not JSON: use the text itself
  }
  return oneLine(text).slice(0, 200);
}

function networkReason(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 5; e = (e as Error).cause) {
    parts.push(e instanceof Error ? e.message : String(e));
    if (!(e instanceof Error)) break;
  }
  const message = parts.join(": ");
  if (/connection refused/i.test(message)) return "connection refused";
  if (/dns error|failed to lookup|name or service not known/i.test(message)) {
    return "host name not found";
  }
  if (/timed out/i.test(message)) return "connection timed out";
  return oneLine(parts.at(-1) ?? message);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim().replace(/\.$/, "");
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}
