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
import { openAIMessages } from "./tool_wire.ts";

/** What llama-server answered to a slot's save or restore (`POST /slots/N?action=…`). */
export interface SlotResult {
  slot: number;
  /** Tokens saved (`n_saved`) or restored (`n_restored`). */
  tokens: number;
  /** Bytes written (`n_written`) or read (`n_read`). */
  bytes: number;
  /** The server's own time for it (`timings.save_ms` / `timings.restore_ms`). */
  ms: number;
}

/** The longest a slot's save or restore may take (a large model's cache is gigabytes). */
const SLOT_TIMEOUT_MS = 120_000;
/** The longest the template and the tokenizer may take to count a conversation. */
const COUNT_TIMEOUT_MS = 10_000;

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
  #pending?: () => Promise<void>;

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

  /**
   * Starts the server when needed, so the window and tokenizer measured next are its own,
   * and runs the work left for the next request ({@linkcode LazyServerClient.beforeNextRequest}).
   */
  async prepare(signal?: AbortSignal): Promise<void> {
    await this.ensureStarted(signal);
    await this.#runPending();
  }

  /** Loads the SDK its requests go through; the server is not started for this. */
  async warm(): Promise<void> {
    await loadOpenAI();
  }

  /** Starts the server when needed, then streams the reply. */
  async chat(messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    const inner = await this.ensureStarted(opts.signal);
    await this.#runPending();
    return await inner.chat(messages, opts);
  }

  /**
   * Leaves `work` to run once the server is ready, before the next request is measured or
   * sent (restoring a saved cache); a failure of it is ignored. It replaces work left before.
   */
  beforeNextRequest(work: () => Promise<void>): void {
    this.#pending = work;
  }

  async #runPending(): Promise<void> {
    const work = this.#pending;
    this.#pending = undefined;
    await work?.().catch(() => {});
  }

  /**
   * The token ids of `messages` as the server's chat template renders them, without the
   * prompt of a reply (`add_generation_prompt: false`), so a longer conversation's tokens
   * begin with a shorter one's. Undefined when the server is not running or cannot tell.
   */
  async conversationTokens(messages: Message[]): Promise<number[] | undefined> {
    const server = this.server;
    if (!server) return undefined;
    const rendered = await postJson(server.url, "/apply-template", {
      model: this.model,
      messages: openAIMessages(messages),
      add_generation_prompt: false,
    }, COUNT_TIMEOUT_MS);
    if (typeof rendered?.prompt !== "string") return undefined;
    const counted = await postJson(server.url, "/tokenize", {
      model: this.model,
      content: rendered.prompt,
      add_special: true,
      parse_special: true,
    }, COUNT_TIMEOUT_MS);
    const tokens = counted?.tokens;
    return Array.isArray(tokens) && tokens.every((t) => Number.isInteger(t))
      ? tokens as number[]
      : undefined;
  }

  /**
   * Saves the cache of the slot that served the last request (the highest `id_task` in `GET
   * /slots`, else slot 0) to `filename` in the server's `--slot-save-path`. Undefined when
   * the server is not running or cannot (started without `--slot-save-path`: 501).
   */
  async saveSlot(filename: string): Promise<SlotResult | undefined> {
    const server = this.server;
    if (!server) return undefined;
    const slot = await lastSlot(server.url);
    const body = await postJson(
      server.url,
      `/slots/${slot}?action=save`,
      { filename },
      SLOT_TIMEOUT_MS,
    );
    return slotResult(body, "n_saved", "n_written", "save_ms");
  }

  /**
   * Loads the cache saved as `filename` into slot `slot` (default 0). Undefined when the server
   * is not running or refuses (no `--slot-save-path`, a missing or foreign file: the server
   * then leaves the slot empty).
   */
  async restoreSlot(filename: string, slot = 0): Promise<SlotResult | undefined> {
    const server = this.server;
    if (!server) return undefined;
    const body = await postJson(
      server.url,
      `/slots/${slot}?action=restore`,
      { filename },
      SLOT_TIMEOUT_MS,
    );
    return slotResult(body, "n_restored", "n_read", "restore_ms");
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

/** POSTs `body` as JSON; the answer's JSON object when the status is 2xx, else undefined. */
async function postJson(
  base: string,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    const value = await res.json();
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The slot whose task came last (`GET /slots`), 0 when the server does not say. */
async function lastSlot(base: string): Promise<number> {
  try {
    const res = await fetch(`${base}/slots`, { signal: AbortSignal.timeout(COUNT_TIMEOUT_MS) });
    if (!res.ok) {
      await res.body?.cancel();
      return 0;
    }
    const slots = await res.json();
    if (!Array.isArray(slots)) return 0;
    let best = { id: 0, task: -Infinity };
    for (const s of slots) {
      if (Number.isInteger(s?.id) && typeof s.id_task === "number" && s.id_task > best.task) {
        best = { id: s.id, task: s.id_task };
      }
    }
    return best.id;
  } catch {
    return 0;
  }
}

function slotResult(
  body: Record<string, unknown> | undefined,
  tokens: string,
  bytes: string,
  ms: string,
): SlotResult | undefined {
  if (!body || typeof body[tokens] !== "number") return undefined;
  const timings = body.timings as Record<string, unknown> | undefined;
  return {
    slot: typeof body.id_slot === "number" ? body.id_slot : 0,
    tokens: body[tokens] as number,
    bytes: typeof body[bytes] === "number" ? body[bytes] as number : 0,
    ms: typeof timings?.[ms] === "number" ? timings[ms] as number : 0,
  };
}
