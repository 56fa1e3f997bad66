/**
 * A client for a request-scoped local server: the server starts with the first message, stays
 * warm for the rest of the session (every later turn goes to the same process), and is
 * stopped when the client is closed (a switch, or the end of the session).
 *
 * @module
 */
import { loadOpenAI } from "../deps.ts";
import type { RunningServer } from "../runtime/server.ts";
import type {
  ChatOptions,
  ChatResult,
  LLMClient,
  Message,
  ToolSpec,
  ToolSupport,
} from "../types.ts";
import { OpenAICompatClient } from "./openai_compat.ts";

/** How to start the server and talk to it. */
export interface LazyServerOptions {
  /** The model name sent in requests and shown, e.g. the registry name. */
  model: string;
  /** `llama-server` */
  label: string;
  /** Starts (or adopts) the server; aborting `signal` must stop a server still starting. */
  start: (signal: AbortSignal) => Promise<RunningServer>;
  /** One request's timeout in ms; 0 means none. */
  timeoutMs?: number;
  /** The context size the server is started with (`-c`), reported until it runs. */
  ctxSize?: number;
  /** Called once the server is ready (e.g. to read the real context window). */
  onStart?: (server: RunningServer) => void | Promise<void>;
}

/**
 * Starts its server on the first {@linkcode LazyServerClient.chat} and then delegates to an
 * {@linkcode OpenAICompatClient}, so the whole history goes as a native messages array.
 *
 * @example
 * ```ts
 * const client = new LazyServerClient({
 *   model: "qwen", label: "llama-server",
 *   start: (signal) => startLlamaServer(sup, "/m/qwen.gguf", { ctxSize: 8192, signal }),
 * });
 * await client.chat(history, { onToken: (t) => out.write(t) }); // starts the server
 * await client.close(); // stops it
 * ```
 */
export class LazyServerClient implements LLMClient {
  readonly name: string;
  readonly model: string;
  readonly #opts: LazyServerOptions;
  #server?: RunningServer;
  #inner?: OpenAICompatClient;
  #starting?: Promise<OpenAICompatClient>;
  #closing = new AbortController();

  constructor(opts: LazyServerOptions) {
    this.#opts = opts;
    this.model = opts.model;
    this.name = `${opts.label}:${opts.model}`;
  }

  /** The server, once started (and until stopped). */
  get server(): RunningServer | undefined {
    return this.#server?.running ? this.#server : undefined;
  }

  /**
   * Starts the server unless it runs already; concurrent callers share one start. A server
   * that died since is started again. Aborting `signal` aborts this start only.
   */
  async ensureStarted(signal?: AbortSignal): Promise<OpenAICompatClient> {
    this.#closing.signal.throwIfAborted();
    if (this.#inner && this.#server?.running) return this.#inner;
    const dead = this.#server;
    this.#inner = undefined;
    this.#server = undefined;
    // A server that died since: forget it (its pid file goes) before starting another.
    if (dead) await dead.stop().catch(() => {});
    this.#starting ??= this.#start(signal).finally(() => this.#starting = undefined);
    return await this.#starting;
  }

  async #start(signal?: AbortSignal): Promise<OpenAICompatClient> {
    const abort = signal ? AbortSignal.any([signal, this.#closing.signal]) : this.#closing.signal;
    const server = await this.#opts.start(abort);
    if (this.#closing.signal.aborted) {
      await server.stop();
      throw this.#closing.signal.reason;
    }
    this.#server = server;
    this.#inner = new OpenAICompatClient({
      baseUrl: server.url,
      model: this.model,
      label: this.#opts.label,
      timeoutMs: this.#opts.timeoutMs,
    });
    await this.#opts.onStart?.(server);
    return this.#inner;
  }

  /** Starts the server when needed, so the window and tokenizer measured next are its own. */
  async prepare(signal?: AbortSignal): Promise<void> {
    await this.ensureStarted(signal);
  }

  /** Loads the SDK its requests go through; the server is not started for this. */
  async warm(): Promise<void> {
    await loadOpenAI();
  }

  /** Starts the server when needed, then streams the reply. */
  async chat(messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    const inner = await this.ensureStarted(opts.signal);
    return await inner.chat(messages, opts);
  }

  /** The server's models once it runs; the configured model before. */
  async models(): Promise<string[]> {
    return this.#inner ? await this.#inner.models() : [this.model];
  }

  /**
   * The window of the running server as it reports it (`/props`: capped at the model's
   * trained context, divided among slots); before it runs, the size it will be asked for.
   */
  async contextWindow(): Promise<number | undefined> {
    if (this.server) return await this.#inner?.contextWindow() ?? this.server.nCtx;
    return this.#opts.ctxSize;
  }

  /** The server's tokenizer once it runs; undefined before (the estimate is used). */
  async countTokens(text: string): Promise<number | undefined> {
    return this.server ? await this.#inner?.countTokens(text) : undefined;
  }

  /** The whole request through the server's chat template, once it runs. */
  async countPrompt(messages: Message[], tools?: ToolSpec[]): Promise<number | undefined> {
    return this.server ? await this.#inner?.countPrompt(messages, tools) : undefined;
  }

  /** Whether the server's chat template takes tools (the server is started to ask it). */
  async toolSupport(): Promise<ToolSupport> {
    const inner = await this.ensureStarted();
    return await inner.toolSupport();
  }

  /** Stops the server but keeps the client: the next message starts it again. */
  async stop(): Promise<boolean> {
    if (this.#starting) await this.#starting.catch(() => {});
    const server = this.#server;
    this.#server = undefined;
    this.#inner = undefined;
    if (!server) return false;
    await server.stop();
    return true;
  }

  /** Stops the server (or a start in progress) for good. */
  async close(): Promise<void> {
    this.#closing.abort(new DOMException("The client was closed", "AbortError"));
    const starting = this.#starting;
    if (starting) await starting.catch(() => {});
    const server = this.#server;
    this.#server = undefined;
    this.#inner = undefined;
    await server?.stop();
  }
}
