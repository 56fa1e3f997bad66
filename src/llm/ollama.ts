/**
 * The Ollama backend: `/api/chat` streaming NDJSON, `/api/tags` for models.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type {
  ChatOptions,
  ChatResult,
  LLMClient,
  Message,
  ToolCall,
  ToolSupport,
} from "../types.ts";
import { explainFetchError, httpError, withTimeout } from "./errors.ts";
import { readLines } from "./ndjson.ts";
import { ThinkSplitter } from "./reasoning.ts";
import { generationRate } from "./stats.ts";
import { ollamaMessages, ollamaToolCalls, ollamaTools } from "./tool_wire.ts";
import { refusedHere } from "../util/refused.ts";

interface OllamaChunk {
  message?: { content?: string; thinking?: string; tool_calls?: unknown };
  done?: boolean;
  done_reason?: string;
  error?: string;
  eval_count?: number;
  eval_duration?: number;
  prompt_eval_count?: number;
}

/** What `/api/show` says of a model, as far as Harvey reads it. */
interface OllamaShow {
  model_info?: Record<string, unknown>;
  capabilities?: string[];
}

/** How an {@link OllamaClient} talks to its server. */
export interface OllamaOptions {
  /** One request's timeout in ms; 0 (the default) means none. */
  timeoutMs?: number;
  /**
   * The context size to ask for (`options.num_ctx`), capped by the model's trained length;
   * 0 asks for the model's full length. Default 8192.
   */
  numCtx?: number;
}

/**
 * Talks to an Ollama server. Ollama silently cuts a prompt longer than its `num_ctx`, so
 * Harvey sets `num_ctx` on every request and budgets against that same number.
 */
export class OllamaClient implements LLMClient {
  readonly name: string;
  readonly timeoutMs: number;
  readonly #what: string;
  readonly #numCtx: number;
  #window?: Promise<number | undefined>;
  #shown?: Promise<OllamaShow | undefined>;

  /** `baseUrl` like `http://localhost:11434`. */
  constructor(readonly baseUrl: string, readonly model: string, opts: OllamaOptions = {}) {
    this.name = `ollama:${model}`;
    this.timeoutMs = opts.timeoutMs ?? 0;
    this.#numCtx = opts.numCtx ?? 8192;
    this.#what = `Ollama at ${baseUrl}`;
  }

  /**
   * The context window of every request: `num_ctx` capped by the model's trained length
   * (`/api/show`). Undefined when neither is known.
   */
  contextWindow(): Promise<number | undefined> {
    this.#window ??= this.#readWindow();
    return this.#window;
  }

  async #readWindow(): Promise<number | undefined> {
    const wanted = this.#numCtx > 0 ? this.#numCtx : undefined;
    const info = (await this.#show())?.model_info ?? {};
    const arch = info["general.architecture"];
    const trained = info[`${arch}.context_length`];
    if (typeof trained !== "number" || trained <= 0) return wanted;
    return wanted ? Math.min(wanted, trained) : trained;
  }

  /** `/api/show` of the model, asked once; undefined when Ollama does not answer it. */
  #show(): Promise<OllamaShow | undefined> {
    this.#shown ??= (async () => {
      try {
        const res = await fetch(`${this.baseUrl}/api/show`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: this.model }),
          signal: AbortSignal.timeout(5_000),
        });
        if (!res.ok) {
          await res.body?.cancel();
          return undefined;
        }
        return await res.json() as OllamaShow;
      } catch {
        this.#shown = undefined; // ask again next time
        return undefined;
      }
    })();
    return this.#shown;
  }

  /** Whether the model takes tools: `/api/show` lists the `tools` capability. */
  async toolSupport(): Promise<ToolSupport> {
    const show = await this.#show();
    if (!show) return { native: false, reason: `${this.#what} did not answer /api/show` };
    const caps = Array.isArray(show.capabilities) ? show.capabilities : [];
    return caps.includes("tools")
      ? { native: true, reason: `${this.model} lists the tools capability (/api/show)` }
      : {
        native: false,
        reason: `${this.model} does not list the tools capability (/api/show: ${
          caps.join(", ") || "none"
        })`,
      };
  }

  /**
   * Streams a reply (reasoning, as `message.thinking` or `<think>` blocks, goes to
   * `onReasoning`); stats come from the final `done` packet. `maxTokens` is sent as
   * `options.num_predict`.
   */
  async chat(messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    const started = performance.now();
    const numCtx = await this.contextWindow();
    const t = withTimeout(opts.signal, this.timeoutMs, this.#what);
    const split = new ThinkSplitter();
    let replyTokens = 0;
    let reasoningTokens = 0;
    let firstAt = 0;
    const toolCalls: ToolCall[] = [];
    const emit = (part: { content: string; reasoning: string }) => {
      if (part.reasoning) {
        reasoningTokens++;
        opts.onReasoning?.(part.reasoning);
      }
      if (part.content) opts.onToken(part.content);
    };
    const options = {
      ...(numCtx ? { num_ctx: numCtx } : {}),
      ...(opts.maxTokens ? { num_predict: opts.maxTokens } : {}),
    };
    try {
      const res = await fetch(`${this.baseUrl}/api/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: this.model,
          messages: ollamaMessages(messages),
          ...(opts.tools?.length ? { tools: ollamaTools(opts.tools) } : {}),
          stream: true,
          ...(Object.keys(options).length ? { options } : {}),
        }),
        signal: t.signal,
      });
      if (!res.ok || !res.body) throw await httpError(res, this.#what);
      for await (const line of readLines(res.body)) {
        let chunk: OllamaChunk;
        try {
          chunk = JSON.parse(line);
        } catch {
          throw new HarveyError(`${this.#what} sent a malformed chunk: ${line.slice(0, 80)}`);
        }
        if (chunk.error) throw new HarveyError(`${this.#what} reported: ${chunk.error}`);
        const thinking = chunk.message?.thinking;
        const text = chunk.message?.content;
        if (thinking || text) {
          firstAt ||= performance.now();
          replyTokens++;
        }
        if (thinking) {
          reasoningTokens++;
          opts.onReasoning?.(thinking);
        }
        if (text) emit(split.push(text));
        if (chunk.message?.tool_calls) {
          firstAt ||= performance.now();
          for (const call of ollamaToolCalls(chunk.message.tool_calls, toolCalls.length)) {
            toolCalls.push(call);
          }
        }
        if (chunk.done) {
          emit(split.flush());
          const evalCount = chunk.eval_count ?? replyTokens;
          const evalNs = chunk.eval_duration ?? 0;
          const endedAt = performance.now();
          return {
            promptTokens: chunk.prompt_eval_count ?? 0,
            replyTokens: evalCount,
            reasoningTokens: reasoningTokens || undefined,
            elapsedMs: endedAt - started,
            tokensPerSec: evalNs > 0
              ? evalCount / (evalNs / 1e9)
              : generationRate(evalCount, firstAt, endedAt),
            finishReason: toolCalls.length && chunk.done_reason === "stop"
              ? "tool_calls"
              : chunk.done_reason,
            ...(toolCalls.length ? { toolCalls } : {}),
          };
        }
      }
      if (t.signal?.aborted) throw t.signal.reason;
      throw new HarveyError(`${this.#what} closed the connection in the middle of the reply`);
    } catch (err) {
      throw explainFetchError(err, this.#what, t.signal);
    } finally {
      t.clear();
    }
  }

  /** The models Ollama has pulled. */
  async models(): Promise<string[]> {
    return await listOllamaModels(this.baseUrl);
  }

  /** Nothing to stop: Harvey does not own an Ollama server through this client. */
  async close(): Promise<void> {}
}

/** Lists the models of the Ollama server at `baseUrl` (`/api/tags`). */
export async function listOllamaModels(
  baseUrl: string,
  opts: { signal?: AbortSignal } = {},
): Promise<string[]> {
  const what = `Ollama at ${baseUrl}`;
  try {
    if (await refusedHere(baseUrl)) throw new Deno.errors.ConnectionRefused("Connection refused");
    const res = await fetch(`${baseUrl}/api/tags`, { signal: opts.signal });
    if (!res.ok) throw await httpError(res, what);
    const body = await res.json() as { models?: { name?: string; model?: string }[] };
    return (body.models ?? []).map((m) => m.name ?? m.model ?? "").filter(Boolean);
  } catch (err) {
    throw explainFetchError(err, what, opts.signal);
  }
}
