/**
 * Anthropic's native Messages API (`POST /v1/messages`, streaming server-sent events), with
 * `fetch` and no SDK.
 *
 * Why the native API and not Anthropic's OpenAI-compatible endpoint (which
 * `OpenAICompatClient` could reach): Anthropic documents that layer as meant for testing
 * and comparing models, not for lasting use; the native stream reports usage exactly
 * (`input_tokens` in `message_start`, `output_tokens` in `message_delta`) where the
 * compatibility layer translates; listing models (`GET /v1/models`, used by `/route probe`
 * and `/route models`) needs Anthropic's own `x-api-key` and `anthropic-version` headers,
 * which the OpenAI client does not send; and the system prompt goes in the request's own
 * `system` field instead of being hoisted out of the messages.
 *
 * The key travels only in `x-api-key`. `fetch` drops `Authorization` on a redirect to another
 * origin but keeps other headers, so redirects are never followed: a key reaches only the
 * host the route names.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { ChatOptions, ChatResult, LLMClient, Message, ToolSupport } from "../types.ts";
import { explainFetchError, httpError, withTimeout } from "./errors.ts";
import { readLines } from "./ndjson.ts";
import { generationRate } from "./stats.ts";
import { anthropicMessages, AnthropicToolAccumulator, anthropicTools } from "./tool_wire.ts";

/** The `anthropic-version` header Harvey speaks. */
export const ANTHROPIC_VERSION = "2023-06-01";

/** The `max_tokens` of a request when the route does not say (the API requires one). */
export const DEFAULT_MAX_TOKENS = 8192;

/** How to reach the Messages API. */
export interface AnthropicOptions {
  /** The API root with its version, e.g. `https://api.anthropic.com/v1`; a bare host gets `/v1`. */
  baseUrl: string;
  model: string;
  /** Shown in messages and in `name`, e.g. `route:claude`. */
  label: string;
  /** Sent as `x-api-key`. */
  apiKey: string;
  /** One request's timeout in ms; 0 means none. */
  timeoutMs?: number;
  /**
   * Upper bound on the tokens of one reply when a request does not set its own
   * (`ChatOptions.maxTokens`); default {@link DEFAULT_MAX_TOKENS}.
   */
  maxTokens?: number;
}

interface StreamEvent {
  type?: string;
  index?: number;
  message?: { usage?: Usage };
  content_block?: { type?: string; id?: unknown; name?: unknown; input?: unknown };
  delta?: {
    type?: string;
    text?: string;
    thinking?: string;
    partial_json?: string;
    stop_reason?: string;
  };
  usage?: Usage;
  error?: { type?: string; message?: string };
}

interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

/** Anthropic's stop reasons in the words of the other backends. */
const STOP_REASONS: Record<string, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  tool_use: "tool_calls",
};

/** Talks to Anthropic's Messages API. */
export class AnthropicClient implements LLMClient {
  readonly name: string;
  readonly model: string;
  readonly #opts: AnthropicOptions;
  readonly #root: string;
  readonly #what: string;
  #window?: Promise<number | undefined>;

  constructor(opts: AnthropicOptions) {
    this.#opts = opts;
    const root = opts.baseUrl.replace(/\/+$/, "");
    this.#root = new URL(root).pathname === "/" ? `${root}/v1` : root;
    this.model = opts.model;
    this.name = `${opts.label}:${opts.model}`;
    this.#what = `${opts.label} at ${this.#root}`;
  }

  /** The API root requests go to, e.g. `https://api.anthropic.com/v1`. */
  get baseUrl(): string {
    return this.#root;
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("x-api-key", this.#opts.apiKey);
    headers.set("anthropic-version", ANTHROPIC_VERSION);
    let res: Response;
    try {
      res = await fetch(`${this.#root}${path}`, { ...init, headers, redirect: "manual" });
    } catch (err) {
      throw explainFetchError(err, this.#what, init.signal ?? undefined);
    }
    if (res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400)) {
      await res.body?.cancel();
      throw new HarveyError(
        `${this.#what} answered with a redirect; Harvey does not follow redirects with an API ` +
          "key (check the route's URL)",
      );
    }
    if (!res.ok) throw await httpError(res, this.#what);
    return res;
  }

  /**
   * Streams a reply (thinking deltas go to `onReasoning`); prompt tokens come from
   * `message_start`, reply tokens from `message_delta`.
   */
  async chat(messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    const started = performance.now();
    const t = withTimeout(opts.signal, this.#opts.timeoutMs ?? 0, this.#what);
    const { system, messages: turns } = anthropicMessages(messages);
    const calls = new AnthropicToolAccumulator();
    let promptTokens = 0;
    let usageReply = 0;
    let deltas = 0;
    let reasoning = 0;
    let firstAt = 0;
    let finishReason: string | undefined;
    try {
      const res = await this.#fetch("/messages", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify({
          model: this.model,
          max_tokens: opts.maxTokens ?? this.#opts.maxTokens ?? DEFAULT_MAX_TOKENS,
          ...(system ? { system } : {}),
          messages: turns,
          ...(opts.tools?.length ? { tools: anthropicTools(opts.tools) } : {}),
          stream: true,
        }),
        signal: t.signal,
      });
      let stopped = false;
      for await (const line of readLines(res.body!)) {
        if (!line.startsWith("data:")) continue;
        const event = this.#parse(line.slice(5).trim());
        switch (event.type) {
          case "message_start":
            promptTokens = inputTokens(event.message?.usage) || promptTokens;
            break;
          case "content_block_start":
            if (event.content_block?.type === "tool_use") {
              firstAt ||= performance.now();
              calls.start(event.index ?? 0, event.content_block);
            }
            break;
          case "content_block_delta":
            if (event.delta?.type === "input_json_delta") {
              deltas++;
              calls.delta(event.index ?? 0, event.delta.partial_json);
            } else if (event.delta?.type === "text_delta" && event.delta.text) {
              firstAt ||= performance.now();
              deltas++;
              opts.onToken(event.delta.text);
            } else if (event.delta?.type === "thinking_delta" && event.delta.thinking) {
              firstAt ||= performance.now();
              deltas++;
              reasoning++;
              opts.onReasoning?.(event.delta.thinking);
            }
            break;
          case "message_delta":
            usageReply = event.usage?.output_tokens ?? usageReply;
            promptTokens = inputTokens(event.usage) || promptTokens;
            if (event.delta?.stop_reason) {
              finishReason = STOP_REASONS[event.delta.stop_reason] ?? event.delta.stop_reason;
            }
            break;
          case "error": {
            const detail = `${event.error?.type ?? "error"}: ${event.error?.message ?? ""}`;
            throw new HarveyError(`${this.#what} reported ${shorten(detail)}`);
          }
          case "message_stop":
            stopped = true;
        }
        if (stopped) break;
      }
      if (!stopped) {
        if (t.signal?.aborted) throw t.signal.reason;
        throw new HarveyError(`${this.#what} closed the connection in the middle of the reply`);
      }
    } catch (err) {
      throw explainFetchError(err, this.#what, t.signal);
    } finally {
      t.clear();
    }
    const endedAt = performance.now();
    const replyTokens = usageReply || deltas;
    const toolCalls = calls.calls();
    return {
      promptTokens,
      replyTokens,
      reasoningTokens: reasoning || undefined,
      elapsedMs: endedAt - started,
      tokensPerSec: generationRate(replyTokens, firstAt, endedAt),
      finishReason,
      ...(toolCalls.length ? { toolCalls } : {}),
    };
  }

  /** The Messages API takes tools natively. */
  toolSupport(): Promise<ToolSupport> {
    return Promise.resolve({ native: true, reason: "Anthropic's Messages API takes tools" });
  }

  /**
   * The model's input window from the Models API (`GET /v1/models/{id}` → `max_input_tokens`),
   * read once; undefined when the API does not say.
   */
  contextWindow(): Promise<number | undefined> {
    this.#window ??= (async () => {
      try {
        const res = await this.#fetch(`/models/${encodeURIComponent(this.model)}`, {
          method: "GET",
          signal: AbortSignal.timeout(10_000),
        });
        const body = await res.json() as { max_input_tokens?: unknown };
        const n = body.max_input_tokens;
        return typeof n === "number" && n > 0 ? n : undefined;
      } catch {
        return undefined;
      }
    })();
    return this.#window;
  }

  #parse(data: string): StreamEvent {
    try {
      const event = JSON.parse(data);
      if (typeof event === "object" && event !== null) return event as StreamEvent;
    } catch {
      // reported below
    }
    throw new HarveyError(`${this.#what} sent a malformed event: ${data.slice(0, 80)}`);
  }

  /** The model ids `GET /v1/models` lists, every page of them. */
  async models(): Promise<string[]> {
    const ids: string[] = [];
    let after = "";
    for (let page = 0; page < 50; page++) {
      const query = `?limit=1000${after ? `&after_id=${encodeURIComponent(after)}` : ""}`;
      const res = await this.#fetch(`/models${query}`, { method: "GET" });
      const body = await res.json() as {
        data?: { id?: string }[];
        has_more?: boolean;
        last_id?: string;
      };
      ids.push(...(body.data ?? []).map((m) => m.id ?? "").filter(Boolean));
      if (!body.has_more || !body.last_id) break;
      after = body.last_id;
    }
    return ids;
  }

  /** Nothing to stop: the API is remote. */
  async close(): Promise<void> {}
}

function inputTokens(usage: Usage | undefined): number {
  if (!usage) return 0;
  return (usage.input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0) +
    (usage.cache_read_input_tokens ?? 0);
}

function shorten(text: string): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > 200 ? `${one.slice(0, 199)}…` : one;
}
