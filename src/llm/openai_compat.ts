/**
 * The OpenAI-compatible backend (`npm:openai`): llamafile, llama-server, cloud endpoints.
 *
 * @module
 */
import { loadOpenAI } from "../deps.ts";
import { HarveyError } from "../errors.ts";
import type { ChatOptions, ChatResult, LLMClient, Message } from "../types.ts";
import { explainFetchError, httpError, withTimeout } from "./errors.ts";

/** How to reach an OpenAI-compatible server. */
export interface OpenAICompatOptions {
  /** Base URL without `/v1`, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  model: string;
  /** Shown in messages and in `name`, e.g. `llamafile`, `llama-server`, `route:gpt`. */
  label: string;
  /** Sent as a bearer token. Leave unset for local servers: they never get a key. */
  apiKey?: string;
  /** One request's timeout in ms; 0 means none. */
  timeoutMs?: number;
  /**
   * Where the OpenAI API lives when it is not `baseUrl/v1`, e.g. Gemini's
   * `…/v1beta/openai`. Chat and models go there; `/props` and `/tokenize` stay on `baseUrl`.
   */
  apiRoot?: string;
  /** Called by {@link OpenAICompatClient.close}, e.g. to stop a server Harvey started. */
  onClose?: () => Promise<void>;
}

interface LlamaTimings {
  prompt_n?: number;
  predicted_n?: number;
  predicted_per_second?: number;
}

type OpenAIClient = InstanceType<Awaited<ReturnType<typeof loadOpenAI>>["default"]>;

/** Talks to any server with `/v1/chat/completions` and `/v1/models`. */
export class OpenAICompatClient implements LLMClient {
  readonly name: string;
  readonly model: string;
  readonly #opts: OpenAICompatOptions;
  readonly #what: string;
  #sdk?: OpenAIClient;
  #tokenize: boolean | undefined;

  constructor(opts: OpenAICompatOptions) {
    this.#opts = { ...opts, baseUrl: opts.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "") };
    this.model = opts.model;
    this.name = `${opts.label}:${opts.model}`;
    this.#what = `${opts.label} at ${this.#opts.baseUrl}`;
  }

  /** The server's base URL (without `/v1`). */
  get baseUrl(): string {
    return this.#opts.baseUrl;
  }

  get #apiRoot(): string {
    return (this.#opts.apiRoot ?? `${this.#opts.baseUrl}/v1`).replace(/\/+$/, "");
  }

  /** True when this client sends an API key. */
  get hasKey(): boolean {
    return Boolean(this.#opts.apiKey);
  }

  async #client(): Promise<OpenAIClient> {
    if (this.#sdk) return this.#sdk;
    const { default: OpenAI } = await loadOpenAI();
    this.#sdk = new OpenAI({
      baseURL: this.#apiRoot,
      apiKey: this.#opts.apiKey ?? "no-key",
      maxRetries: 0,
      timeout: 24 * 3600 * 1000,
      // The SDK would read these from OPENAI_ORG_ID / OPENAI_PROJECT_ID and send them to
      // every server; they belong to OpenAI alone and are never sent.
      organization: null,
      project: null,
      // A local server gets no Authorization header at all.
      defaultHeaders: this.#opts.apiKey ? {} : { Authorization: null },
    });
    return this.#sdk;
  }

  /** Loads the SDK ahead of the first request, so the first reply does not wait for it. */
  async warm(): Promise<void> {
    await this.#client();
  }

  /** Streams a reply; usage is read from whichever chunk carries it. */
  async chat(messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    const sdk = await this.#client();
    const started = performance.now();
    const t = withTimeout(opts.signal, this.#opts.timeoutMs ?? 0, this.#what);
    let replyTokens = 0;
    let promptTokens = 0;
    let usageReply = 0;
    let tps = 0;
    try {
      const stream = await sdk.chat.completions.create({
        model: this.model,
        messages: messages.map((m) => ({
          role: m.role === "tool" ? "user" : m.role,
          content: m.content,
        })),
        stream: true,
        stream_options: { include_usage: true },
      }, { signal: t.signal });
      for await (const chunk of stream) {
        const text = chunk.choices?.[0]?.delta?.content;
        if (text) {
          replyTokens++;
          opts.onToken(text);
        }
        if (chunk.usage) {
          promptTokens = chunk.usage.prompt_tokens ?? promptTokens;
          usageReply = chunk.usage.completion_tokens ?? usageReply;
        }
        const timings = (chunk as { timings?: LlamaTimings }).timings;
        if (timings?.predicted_per_second) tps = timings.predicted_per_second;
        if (timings?.prompt_n && !promptTokens) promptTokens = timings.prompt_n;
      }
      // An abort ends the SDK's loop silently: tell it apart from a finished reply.
      if (t.signal?.aborted) throw t.signal.reason ?? new DOMException("Aborted", "AbortError");
    } catch (err) {
      throw this.#explain(err, t.signal);
    } finally {
      t.clear();
    }
    const elapsedMs = performance.now() - started;
    const reply = usageReply || replyTokens;
    return {
      promptTokens,
      replyTokens: reply,
      elapsedMs,
      tokensPerSec: tps || (elapsedMs > 0 ? reply / (elapsedMs / 1000) : 0),
    };
  }

  #explain(err: unknown, signal?: AbortSignal): Error {
    const e = err as { status?: number; error?: { message?: string }; message?: string };
    if (typeof e?.status === "number") {
      const detail = (e.error?.message ?? e.message ?? "").replace(/^\d{3}\s*/, "")
        .replace(/\s+/g, " ").slice(0, 200);
      const hint = e.status === 401 || e.status === 403
        ? " (check the API key)"
        : e.status === 429
        ? " (rate limited; wait and try again)"
        : e.status === 503
        ? " (the model is still loading; try again in a moment)"
        : "";
      return new HarveyError(`${this.#what} answered ${e.status}: ${detail}${hint}`);
    }
    if (err instanceof SyntaxError || /JSON|parse/i.test(e?.message ?? "")) {
      return new HarveyError(`${this.#what} sent a malformed chunk (${e.message?.slice(0, 80)})`);
    }
    return explainFetchError(err, this.#what, signal);
  }

  async #get(path: string, init?: RequestInit): Promise<Response> {
    const headers = new Headers(init?.headers);
    if (this.#opts.apiKey) headers.set("authorization", `Bearer ${this.#opts.apiKey}`);
    const url = path.startsWith("/v1/")
      ? `${this.#apiRoot}${path.slice(3)}`
      : `${this.#opts.baseUrl}${path}`;
    try {
      return await fetch(url, { ...init, headers });
    } catch (err) {
      throw explainFetchError(err, this.#what, init?.signal ?? undefined);
    }
  }

  /** The model ids `/v1/models` lists. */
  async models(): Promise<string[]> {
    const res = await this.#get("/v1/models");
    if (!res.ok) throw await httpError(res, this.#what);
    const body = await res.json() as { data?: { id?: string }[] };
    return (body.data ?? []).map((m) => m.id ?? "").filter(Boolean);
  }

  /** The real `n_ctx`: `/props`, else `/v1/models` metadata; undefined when neither says. */
  async contextWindow(): Promise<number | undefined> {
    try {
      const res = await this.#get("/props");
      if (res.ok) {
        const props = await res.json() as { default_generation_settings?: { n_ctx?: number } };
        const n = props.default_generation_settings?.n_ctx;
        if (typeof n === "number" && n > 0) return n;
      } else await res.body?.cancel();
      const models = await this.#get("/v1/models");
      if (!models.ok) {
        await models.body?.cancel();
        return undefined;
      }
      const body = await models.json() as { data?: { meta?: { n_ctx?: number } }[] };
      const n = body.data?.[0]?.meta?.n_ctx;
      return typeof n === "number" && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** Token count from the server's `/tokenize`, or undefined when it has none. */
  async countTokens(text: string): Promise<number | undefined> {
    if (this.#tokenize === false) return undefined;
    try {
      const res = await this.#get("/tokenize", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ content: text }),
      });
      if (!res.ok) {
        await res.body?.cancel();
        if (res.status === 404 || res.status === 405) this.#tokenize = false;
        return undefined;
      }
      const body = await res.json() as { tokens?: unknown[] };
      this.#tokenize = true;
      return Array.isArray(body.tokens) ? body.tokens.length : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops what this client started (a local server), if anything. */
  async close(): Promise<void> {
    await this.#opts.onClose?.();
  }
}
