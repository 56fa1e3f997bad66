/**
 * The Ollama backend: `/api/chat` streaming NDJSON, `/api/tags` for models.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { ChatOptions, ChatStats, LLMClient, Message } from "../types.ts";
import { explainFetchError, httpError, withTimeout } from "./errors.ts";
import { readLines } from "./ndjson.ts";

interface OllamaChunk {
  message?: { content?: string };
  done?: boolean;
  error?: string;
  eval_count?: number;
  eval_duration?: number;
  prompt_eval_count?: number;
}

/** Talks to an Ollama server. */
export class OllamaClient implements LLMClient {
  readonly name: string;
  readonly #what: string;

  /** `baseUrl` like `http://localhost:11434`; `timeoutMs` 0 means none. */
  constructor(readonly baseUrl: string, readonly model: string, readonly timeoutMs = 0) {
    this.name = `ollama:${model}`;
    this.#what = `Ollama at ${baseUrl}`;
  }

  /** Streams a reply; stats come from the final `done` packet. */
  async chat(messages: Message[], opts: ChatOptions): Promise<ChatStats> {
    const started = performance.now();
    const t = withTimeout(opts.signal, this.timeoutMs, this.#what);
    let replyTokens = 0;
    try {
      const res = await fetch(`${this.baseUrl}/api/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: this.model, messages, stream: true }),
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
        const text = chunk.message?.content;
        if (text) {
          replyTokens++;
          opts.onToken(text);
        }
        if (chunk.done) {
          const evalCount = chunk.eval_count ?? replyTokens;
          const evalNs = chunk.eval_duration ?? 0;
          const elapsedMs = performance.now() - started;
          return {
            promptTokens: chunk.prompt_eval_count ?? 0,
            replyTokens: evalCount,
            elapsedMs,
            tokensPerSec: evalNs > 0 ? evalCount / (evalNs / 1e9) : evalCount / (elapsedMs / 1000),
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
    const res = await fetch(`${baseUrl}/api/tags`, { signal: opts.signal });
    if (!res.ok) throw await httpError(res, what);
    const body = await res.json() as { models?: { name?: string; model?: string }[] };
    return (body.models ?? []).map((m) => m.name ?? m.model ?? "").filter(Boolean);
  } catch (err) {
    throw explainFetchError(err, what, opts.signal);
  }
}
