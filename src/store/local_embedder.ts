/**
 * Embeddings from a GGUF model on this machine, without Ollama: a request-scoped llama-server
 * started for it with `--embeddings --pooling mean` on the first text to embed, warm for the
 * rest of the session, stopped with the session's other servers.
 *
 * @module
 */
import type { RunningServer } from "../runtime/server.ts";
import { type Embedder, OpenAIEmbedder } from "./embedder.ts";

/** The arguments that make llama-server an embedding server for llama-type models too. */
export const EMBEDDING_ARGS = ["--embeddings", "--pooling", "mean"];

/** How a {@linkcode ServerEmbedder} gets its server. */
export interface ServerEmbedderOptions {
  /** The embedding model's name, as the RAG store records it. */
  name: string;
  /** Starts (or adopts) the server; called again when the one it gave has stopped. */
  start: (signal?: AbortSignal) => Promise<RunningServer>;
}

/**
 * An embedder whose llama-server starts with the first text it embeds (or counts) and is then
 * reused; a server that died since is started again.
 *
 * @example
 * ```ts
 * const e = new ServerEmbedder({ name: "nomic", start: (signal) => startIt(signal) });
 * await e.embed(["hello"]); // starts the server, then embeds
 * ```
 */
export class ServerEmbedder implements Embedder {
  readonly name: string;
  readonly #opts: ServerEmbedderOptions;
  #server?: RunningServer;
  #inner?: OpenAIEmbedder;
  #starting?: Promise<OpenAIEmbedder>;

  constructor(opts: ServerEmbedderOptions) {
    this.name = opts.name;
    this.#opts = opts;
  }

  /** The server, once started and while it runs. */
  get server(): RunningServer | undefined {
    return this.#server?.running ? this.#server : undefined;
  }

  async #ready(signal?: AbortSignal): Promise<OpenAIEmbedder> {
    if (this.#inner && this.#server?.running) return this.#inner;
    this.#starting ??= (async () => {
      const server = await this.#opts.start(signal);
      this.#server = server;
      this.#inner = new OpenAIEmbedder({ baseUrl: server.url, model: this.name });
      return this.#inner;
    })().finally(() => this.#starting = undefined);
    return await this.#starting;
  }

  /** Starts the server when needed, then embeds. */
  async embed(texts: string[], opts: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    return await (await this.#ready(opts.signal)).embed(texts, opts);
  }

  /** The model's own count, from the server's `/tokenize`. */
  async countTokens(
    text: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<number | undefined> {
    return await (await this.#ready(opts.signal)).countTokens(text, opts);
  }
}
