/**
 * The OpenAI-compatible backend (`npm:openai`): llamafile, llama-server, cloud endpoints.
 *
 * @module
 */
import { type ChatCompletionChunk as Chunk, loadOpenAI } from "../deps.ts";
import { HarveyError } from "../errors.ts";
import type {
  ChatOptions,
  ChatResult,
  LLMClient,
  Message,
  ToolSpec,
  ToolSupport,
} from "../types.ts";
import { ContextOverflowError, explainFetchError, httpError, withTimeout } from "./errors.ts";
import { leanFetch, leanResponse } from "./lean_fetch.ts";
import { readEvents } from "./sse.ts";
import { ThinkSplitter } from "./reasoning.ts";
import { generationRate } from "./stats.ts";
import { openAIMessages, openAITools, ToolCallAccumulator } from "./tool_wire.ts";

/** How to reach an OpenAI-compatible server. */
export interface OpenAICompatOptions {
  /** Base URL without `/v1`, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  model: string;
  /** Shown in messages and in `name`, e.g. `llamafile`, `llama-server`, `route:gpt`. */
  label: string;
  /** Sent as a bearer token, to this server only. Unset: no `Authorization` header at all. */
  apiKey?: string;
  /**
   * The variable a local server's key is read from (e.g. `LLAMA_API_KEY`), named when the
   * server refuses a request for want of a key. Unset: the generic "check the API key".
   */
  keyEnv?: string;
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

interface ModelEntry {
  id?: string;
  meta?: { n_ctx?: number } | null;
  context_length?: number;
  max_context_length?: number;
  context_window?: number;
}

type OpenAIClient = InstanceType<Awaited<ReturnType<typeof loadOpenAI>>["default"]>;
type OpenAIModule = Awaited<ReturnType<typeof loadOpenAI>>;

/**
 * A short streamed reply as llama-server sends it, that {@linkcode OpenAICompatClient.warm}
 * runs through the SDK without a server: the first prompt then runs code V8 compiled already.
 */
const WARM_REPLY = [
  { choices: [{ index: 0, delta: { role: "assistant", content: "ok" }, finish_reason: null }] },
  {
    choices: [{ index: 0, delta: {}, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  },
].map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join("") + "data: [DONE]\n\n";

/** The SDK's `fetch` for the warm-up: {@linkcode WARM_REPLY}, as a byte stream from memory. */
function warmFetch(): Promise<Response> {
  const bytes = new TextEncoder().encode(WARM_REPLY);
  const body = new ReadableStream({
    type: "bytes",
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  return Promise.resolve(
    leanResponse(new Response(body, { headers: { "content-type": "text/event-stream" } })),
  );
}

/** Status codes that mean an endpoint is not there (or not for us): stop asking it. */
const ABSENT = new Set([401, 403, 404, 405, 501]);

/** Talks to any server with `/v1/chat/completions` and `/v1/models`. */
export class OpenAICompatClient implements LLMClient {
  readonly name: string;
  readonly model: string;
  readonly #opts: OpenAICompatOptions;
  readonly #what: string;
  #sdk?: Promise<OpenAIClient>;
  #module?: OpenAIModule;
  #warm?: Promise<void>;
  #tokenize: boolean | undefined;
  #template: boolean | undefined;
  #window?: Promise<number | undefined>;
  /** The server is llama-server's router: `/props` needs `?model=`. */
  #router = false;

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

  /**
   * The headers that authorize a request to this same server (its key, when it has one), for
   * another client of it such as the embedder.
   */
  authHeaders(): Record<string, string> {
    return this.#opts.apiKey ? { authorization: `Bearer ${this.#opts.apiKey}` } : {};
  }

  #client(): Promise<OpenAIClient> {
    if (!this.#sdk) {
      this.#sdk = this.#newClient();
      // A failed load is tried again by the next request.
      this.#sdk.catch(() => this.#sdk = undefined);
    }
    return this.#sdk;
  }

  async #newClient(fetch: typeof leanFetch = leanFetch): Promise<OpenAIClient> {
    const module = this.#module = await loadOpenAI();
    const OpenAI = module.default;
    return new OpenAI({
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
      // The streamed reply without a 64 KiB buffer per token (see lean_fetch.ts).
      fetch,
    });
  }

  /**
   * Loads the SDK ahead of the first request, and runs one reply through it from memory
   * (nothing is sent), so the first prompt neither waits for the SDK nor runs its code for
   * the first time. Once per client; a failure is left to the first request to report.
   */
  warm(): Promise<void> {
    this.#warm ??= this.#client().then(async () => {
      const sdk = await this.#newClient(warmFetch);
      await this.#stream(sdk, [{ role: "user", content: "warm-up" }], { onToken() {} });
    }).catch(() => {});
    return this.#warm;
  }

  /**
   * Starts loading the SDK without waiting for it: the window fit's requests (`/props`,
   * `/apply-template`, `/tokenize`, sent with `fetch`) go out meanwhile.
   */
  prepare(): Promise<void> {
    this.#client().catch(() => {});
    return Promise.resolve();
  }

  /**
   * Streams a reply: content to `onToken`, reasoning (`reasoning_content`, `<think>` blocks)
   * to `onReasoning`; usage is read from whichever chunk carries it. A stream that ends
   * without a finish reason is an error: the reply is incomplete.
   */
  async chat(messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    return await this.#stream(await this.#client(), messages, opts);
  }

  async #stream(sdk: OpenAIClient, messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    const started = performance.now();
    const t = withTimeout(opts.signal, this.#opts.timeoutMs ?? 0, this.#what);
    const split = new ThinkSplitter();
    let firstAt = 0;
    let deltas = 0;
    let reasoningDeltas = 0;
    let promptTokens = 0;
    let usageReply = 0;
    let usageReasoning = 0;
    let tps = 0;
    let finishReason: string | undefined;
    const calls = new ToolCallAccumulator();
    const emit = (part: { content: string; reasoning: string }) => {
      if (part.reasoning) {
        reasoningDeltas++;
        opts.onReasoning?.(part.reasoning);
      }
      if (part.content) opts.onToken(part.content);
    };
    try {
      const response = await sdk.chat.completions.create({
        model: this.model,
        // The SDK's message types are wider than what is sent; the wire shape is tool_wire's.
        messages: openAIMessages(messages) as never,
        ...(opts.tools?.length ? { tools: openAITools(opts.tools) as never } : {}),
        stream: true,
        stream_options: { include_usage: true },
        ...(opts.maxTokens ? { max_tokens: opts.maxTokens } : {}),
        // llama.cpp's own field (llama-server, llamafile): the reply must match this GBNF.
        ...(opts.grammar ? { grammar: opts.grammar } as never : {}),
      }, { signal: t.signal }).asResponse();
      const onChunk = (chunk: Chunk) => {
        const choice = chunk.choices?.[0];
        const delta = choice?.delta as
          | { content?: string | null; reasoning_content?: string | null; tool_calls?: unknown }
          | undefined;
        if (delta?.tool_calls) {
          firstAt ||= performance.now();
          calls.add(delta.tool_calls);
        }
        const reasoning = delta?.reasoning_content;
        const text = delta?.content;
        if (reasoning || text) {
          firstAt ||= performance.now();
          deltas++;
        }
        if (reasoning) {
          reasoningDeltas++;
          opts.onReasoning?.(reasoning);
        }
        if (text) {
          if (split.plain(text)) opts.onToken(text);
          else emit(split.push(text));
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) {
          promptTokens = chunk.usage.prompt_tokens ?? promptTokens;
          usageReply = chunk.usage.completion_tokens ?? usageReply;
          usageReasoning = chunk.usage.completion_tokens_details?.reasoning_tokens ??
            usageReasoning;
        }
        const timings = (chunk as { timings?: LlamaTimings }).timings;
        if (timings?.predicted_per_second) tps = timings.predicted_per_second;
        if (timings?.prompt_n && !promptTokens) promptTokens = timings.prompt_n;
      };
      const { APIError } = this.#module!;
      try {
        // The events as the SDK's parser reads them, each handed over at once (see sse.ts).
        await readEvents(response.body!, (data, event) => {
          let value;
          try {
            value = JSON.parse(data);
          } catch {
            throw new SyntaxError("Error reading response: malformed server-sent event JSON.");
          }
          if (event === "error" || value?.error) {
            throw new APIError(undefined, value?.error ?? value, undefined, response.headers);
          }
          onChunk(value as Chunk);
        });
      } catch (err) {
        // An abort ends the stream: it is told apart from a finished reply below.
        if (!t.signal?.aborted) throw err;
      }
      if (t.signal?.aborted) throw t.signal.reason ?? new DOMException("Aborted", "AbortError");
      emit(split.flush());
      if (!finishReason) {
        this.#window = undefined; // the server may be gone, or another one by now
        throw new HarveyError(
          `${this.#what} ended the reply without finishing it (no finish reason): the server ` +
            "may have stopped — check it, then ask again",
        );
      }
    } catch (err) {
      throw this.#explain(err, t.signal);
    } finally {
      t.clear();
    }
    const endedAt = performance.now();
    const reply = usageReply || deltas;
    const toolCalls = calls.calls();
    return {
      promptTokens,
      replyTokens: reply,
      reasoningTokens: usageReasoning || reasoningDeltas || undefined,
      elapsedMs: endedAt - started,
      tokensPerSec: tps || generationRate(reply, firstAt, endedAt),
      finishReason,
      ...(toolCalls.length ? { toolCalls } : {}),
    };
  }

  #explain(err: unknown, signal?: AbortSignal): Error {
    if (err instanceof HarveyError) return err;
    const e = err as {
      status?: number;
      error?: { message?: string; type?: string; n_prompt_tokens?: number; n_ctx?: number };
      message?: string;
    };
    if (typeof e?.status === "number") {
      const detail = (e.error?.message ?? e.message ?? "").replace(/^\d{3}\s*/, "")
        .replace(/\s+/g, " ").slice(0, 200);
      if (e.status === 400 && e.error?.type === "exceed_context_size_error") {
        const n = e.error.n_ctx;
        if (typeof n === "number" && n > 0) this.#window = Promise.resolve(n);
        else this.#window = undefined;
        return new ContextOverflowError(
          `${this.#what} refused the request: ${detail}`,
          e.error.n_prompt_tokens,
          typeof n === "number" && n > 0 ? n : undefined,
        );
      }
      return new HarveyError(
        `${this.#what} answered ${e.status}: ${detail}${this.#hint(e.status)}`,
      );
    }
    if (err instanceof SyntaxError || /JSON|parse/i.test(e?.message ?? "")) {
      return new HarveyError(`${this.#what} sent a malformed chunk (${e.message?.slice(0, 80)})`);
    }
    const explained = explainFetchError(err, this.#what, signal);
    // A server that went away may come back as another one (another -c): read its window again.
    if (!signal?.aborted) this.#window = undefined;
    return explained;
  }

  #hint(status: number): string {
    if (status === 401 || status === 403) {
      const env = this.#opts.keyEnv;
      if (!env) return " (check the API key)";
      return this.#opts.apiKey
        ? ` (the server refused the key in ${env}; check it)`
        : ` (the server wants an API key: set ${env})`;
    }
    if (status === 429) return " (rate limited; wait and try again)";
    if (status === 503) return " (the model is still loading; try again in a moment)";
    return "";
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

  async #postJson(path: string, body: unknown): Promise<Response> {
    return await this.#get(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  }

  /** The model ids `/v1/models` lists. */
  async models(): Promise<string[]> {
    const res = await this.#get("/v1/models");
    if (!res.ok) throw await httpError(res, this.#what, this.#hint(res.status));
    const body = await res.json() as { data?: { id?: string }[] };
    return (body.data ?? []).map((m) => m.id ?? "").filter(Boolean);
  }

  /**
   * The window the server really uses, read once and remembered until the server goes away
   * or refuses a request as too long: llama-server's `/props` (per slot; in router mode
   * `/props?model=ID`), else what `/v1/models` says of this model (`meta.n_ctx`,
   * `context_length`, `max_context_length`, `context_window`). Undefined when nothing says.
   */
  contextWindow(): Promise<number | undefined> {
    if (this.#window) return this.#window;
    const reading = this.#readWindow().then(({ n, answered }) => {
      if (!answered && this.#window === reading) this.#window = undefined; // ask again later
      return n;
    });
    this.#window = reading;
    return reading;
  }

  async #readWindow(): Promise<{ n?: number; answered: boolean }> {
    try {
      return { n: await this.#windowFromServer(), answered: true };
    } catch {
      return { answered: false };
    }
  }

  async #windowFromServer(): Promise<number | undefined> {
    const props = await this.#props(this.#router ? this.model : undefined);
    if (props.router && !this.#router) {
      this.#router = true;
      const own = await this.#props(this.model);
      if (own.nCtx) return own.nCtx;
    } else if (props.nCtx) return props.nCtx;
    const models = await this.#get("/v1/models", { signal: AbortSignal.timeout(10_000) });
    if (!models.ok) {
      await models.body?.cancel();
      return undefined;
    }
    const body = await models.json() as { data?: ModelEntry[] };
    const data = body.data ?? [];
    const entry = data.find((m) => m.id === this.model) ?? (data.length === 1 ? data[0] : {});
    const n = entry.meta?.n_ctx ?? entry.context_length ?? entry.max_context_length ??
      entry.context_window;
    return typeof n === "number" && n > 0 ? n : undefined;
  }

  async #props(model?: string): Promise<{ nCtx?: number; router: boolean }> {
    const query = model ? `?model=${encodeURIComponent(model)}` : "";
    const res = await this.#get(`/props${query}`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) {
      await res.body?.cancel();
      return { router: false };
    }
    const props = await res.json() as {
      role?: string;
      default_generation_settings?: { n_ctx?: number };
    };
    const n = props.default_generation_settings?.n_ctx;
    return {
      nCtx: typeof n === "number" && n > 0 ? n : undefined,
      router: props.role === "router" || n === 0,
    };
  }

  /**
   * Token count from the server's `/tokenize` (with this model named, as llama-server's router
   * needs), or undefined when it has none. A server that refuses it (404, 401, …) is not asked
   * again.
   */
  async countTokens(text: string): Promise<number | undefined> {
    if (this.#tokenize === false) return undefined;
    const tokens = await this.#tokens({ content: text, model: this.model });
    if (tokens === false) this.#tokenize = false;
    return typeof tokens === "number" ? tokens : undefined;
  }

  /**
   * The tokens of a whole request as llama-server's chat template renders it:
   * `/apply-template`, then `/tokenize` of that prompt (special tokens as the chat parses
   * them). Undefined when the server has no `/apply-template`; it is then not asked again.
   */
  async countPrompt(messages: Message[], tools?: ToolSpec[]): Promise<number | undefined> {
    if (this.#template === false || this.#tokenize === false) return undefined;
    try {
      const res = await this.#postJson("/apply-template", {
        model: this.model,
        messages: openAIMessages(messages),
        ...(tools?.length ? { tools: openAITools(tools) } : {}),
      });
      if (!res.ok) {
        await res.body?.cancel();
        if (ABSENT.has(res.status)) this.#template = false;
        return undefined;
      }
      const { prompt } = await res.json() as { prompt?: unknown };
      if (typeof prompt !== "string") {
        this.#template = false;
        return undefined;
      }
      this.#template = true;
      const tokens = await this.#tokens({
        content: prompt,
        model: this.model,
        add_special: true,
        parse_special: true,
      });
      if (tokens === false) this.#tokenize = false;
      return typeof tokens === "number" ? tokens : undefined;
    } catch {
      return undefined;
    }
  }

  /** `/tokenize`: the count, undefined for a passing failure, false when it is not there. */
  async #tokens(body: Record<string, unknown>): Promise<number | undefined | false> {
    try {
      const res = await this.#postJson("/tokenize", body);
      if (!res.ok) {
        await res.body?.cancel();
        return ABSENT.has(res.status) ? false : undefined;
      }
      const reply = await res.json() as { tokens?: unknown[] };
      this.#tokenize = true;
      return Array.isArray(reply.tokens) ? reply.tokens.length : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Whether the server takes tools: llama-server reports its chat template's capabilities in
   * `/props` (`chat_template_caps.supports_tools`, with `--jinja`); a server without `/props`
   * (a cloud endpoint, vLLM, LM Studio…) is taken at its OpenAI-compatible word.
   */
  async toolSupport(): Promise<ToolSupport> {
    let res: Response;
    try {
      res = await this.#get(
        `/props${this.#router ? `?model=${encodeURIComponent(this.model)}` : ""}`,
        {
          signal: AbortSignal.timeout(10_000),
        },
      );
    } catch {
      return { native: false, reason: `${this.#what} does not answer` };
    }
    if (res.status === 404 || res.status === 405) {
      await res.body?.cancel();
      return { native: true, reason: "an OpenAI-compatible API without /props: tools are sent" };
    }
    if (!res.ok) {
      await res.body?.cancel();
      return { native: false, reason: `${this.#what} answered ${res.status} to /props` };
    }
    const props = await res.json().catch(() => ({})) as {
      chat_template_caps?: { supports_tools?: boolean; supports_tool_calls?: boolean };
      default_generation_settings?: unknown;
    };
    // llama.cpp's server (llama-server, a llamafile) answers /props, and takes a `grammar`.
    const grammar = props.default_generation_settings !== undefined;
    const caps = props.chat_template_caps;
    if (!caps || caps.supports_tools === undefined) {
      return {
        native: false,
        reason: "the server reports no chat_template_caps in /props (llama-server needs --jinja)",
        grammar,
      };
    }
    return caps.supports_tools
      ? {
        native: true,
        reason: "its chat template supports tools (/props chat_template_caps)",
        grammar,
      }
      : {
        native: false,
        reason:
          `the chat template of ${this.model} does not support tools (/props chat_template_caps)`,
        grammar,
      };
  }

  /** Stops what this client started (a local server), if anything. */
  async close(): Promise<void> {
    await this.#opts.onClose?.();
  }
}
