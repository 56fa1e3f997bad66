/**
 * The token budget: how many tokens a request takes for a given backend, counted the way the
 * server counts when it can tell (llama-server's `/apply-template` + `/tokenize`: the chat
 * template's own tokens included), else message by message with its tokenizer, else
 * estimated; and how much of a window is kept for the reply.
 *
 * Counting message by message is cheap on the streaming path: each text is counted once per
 * client (the server's `/tokenize` when it has one, else an estimate) and remembered by a hash
 * of the text (not the text: the cache must not keep a cleared history alive).
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { LLMClient, Message, ToolSpec } from "../types.ts";
import { textHash } from "../util/text_hash.ts";
import { estimateTextTokens, messageText, PER_MESSAGE_OVERHEAD } from "./tokens.ts";

/** Thrown when a request would not fit the context window; it carries the numbers. */
export class BudgetError extends HarveyError {
  override name = "BudgetError";
  constructor(
    message: string,
    /** Tokens the request needs. */
    readonly used: number,
    /** The context window (n_ctx). */
    readonly window: number,
  ) {
    super(message);
  }
}

/** The most a reply reserve is when it is chosen automatically. */
export const MAX_AUTO_RESERVE = 8192;

/**
 * Tokens kept free for the reply, and sent as its `max_tokens`: `setting` when it is set (at
 * most half the window), else a fifth of the window, at least 256 and at most 8192, never more
 * than half the window (so a tiny window still takes a short prompt).
 *
 * @example
 * ```ts
 * replyReserve(2048); // 410
 * replyReserve(2048, 1500); // 1024
 * ```
 */
export function replyReserve(window: number, setting = 0): number {
  const half = Math.floor(window / 2);
  if (setting > 0) return Math.min(setting, half);
  return Math.min(Math.max(256, Math.ceil(window * 0.2)), MAX_AUTO_RESERVE, half);
}

/** Options of {@linkcode TokenBudget}. */
export interface TokenBudgetOptions {
  /** How long counting may wait for the server's tokenizer before estimating; default 5000 ms. */
  countTimeoutMs?: number;
  /** Counts remembered per client; default 4096. */
  cacheSize?: number;
}

const CONCURRENCY = 4;

/** Measures requests for a backend. */
export class TokenBudget {
  readonly #opts: Required<TokenBudgetOptions>;
  readonly #counts = new WeakMap<LLMClient, Map<number, number>>();
  /** Estimates of messages, kept with what they were made from (a message can change). */
  readonly #estimates = new WeakMap<Message, { content: string; calls?: unknown; n: number }>();
  readonly #definitions = new WeakMap<ToolSpec[], number>();
  /** Per client, the most its exact counts exceeded this budget's estimate (a ratio). */
  readonly #calibration = new WeakMap<LLMClient, number>();

  constructor(opts: TokenBudgetOptions = {}) {
    this.#opts = { countTimeoutMs: 5000, cacheSize: 4096, ...opts };
  }

  /**
   * Tokens of `messages` (and the definitions of `tools`, sent with them) for `client`: the
   * server's count of the whole rendered request when it can give one (exact), else the
   * server's count of each message's text (remembered) or an estimate, plus a guessed
   * template overhead per message.
   */
  async measure(messages: Message[], client: LLMClient, tools?: ToolSpec[]): Promise<number> {
    if (client.countPrompt) {
      const exact = await this.#limited(client.countPrompt(messages, tools));
      if (exact !== undefined) {
        const ratio = exact / Math.max(1, this.#estimateWith(messages, tools));
        this.#calibration.set(client, Math.max(ratio, this.#calibration.get(client) ?? 0));
        return exact;
      }
    }
    const counts = await this.#contentCounts(messages, client);
    const definitions = tools?.length ? await this.text(JSON.stringify(tools), client) : 0;
    return counts.reduce((a, b) => a + b, 0) + messages.length * PER_MESSAGE_OVERHEAD +
      definitions;
  }

  /**
   * Tokens of each message, its share of the template overhead included, for choosing which
   * messages to keep; they add up to {@linkcode measure}'s total.
   */
  async perMessage(messages: Message[], client: LLMClient): Promise<number[]> {
    const counts = await this.#contentCounts(messages, client);
    const total = await this.measure(messages, client);
    const content = counts.reduce((a, b) => a + b, 0);
    const overhead = Math.max(0, total - content);
    const share = messages.length ? overhead / messages.length : 0;
    return counts.map((n) => n + share);
  }

  /** Tokens of one text for `client` (remembered), or an estimate. */
  async text(text: string, client: LLMClient): Promise<number> {
    const [n] = await this.#contentCounts([{ role: "user", content: text }], client);
    return n;
  }

  /**
   * What `client`'s exact count of this request is likely to be, without asking it: the
   * estimate scaled by the most an exact count of this client ever exceeded it. Undefined
   * before the client's first exact count.
   */
  predict(messages: Message[], client: LLMClient, tools?: ToolSpec[]): number | undefined {
    const ratio = this.#calibration.get(client);
    return ratio === undefined ? undefined : Math.ceil(this.#estimateWith(messages, tools) * ratio);
  }

  #estimateWith(messages: Message[], tools?: ToolSpec[]): number {
    let definitions = 0;
    if (tools?.length) {
      const known = this.#definitions.get(tools);
      definitions = known ?? estimateTextTokens(JSON.stringify(tools));
      if (known === undefined) this.#definitions.set(tools, definitions);
    }
    return this.estimate(messages) + definitions;
  }

  /** Estimates a request without asking any server (each message estimated once). */
  estimate(messages: Message[]): number {
    let n = 0;
    for (const m of messages) {
      let known = this.#estimates.get(m);
      if (known?.content !== m.content || known.calls !== m.toolCalls) {
        known = { content: m.content, calls: m.toolCalls, n: estimateTextTokens(messageText(m)) };
        this.#estimates.set(m, known);
      }
      n += known.n + PER_MESSAGE_OVERHEAD;
    }
    return n;
  }

  async #limited<T>(work: Promise<T | undefined>): Promise<T | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.#opts.countTimeoutMs);
    });
    try {
      return await Promise.race([work.catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #contentCounts(messages: Message[], client: LLMClient): Promise<number[]> {
    let cache = this.#counts.get(client);
    if (!cache) this.#counts.set(client, cache = new Map());
    const texts = messages.map(messageText);
    const counts = new Array<number | undefined>(messages.length);
    const missing: { i: number; key: number }[] = [];
    texts.forEach((text, i) => {
      if (!text) return void (counts[i] = 0);
      const key = textHash(text);
      const n = cache.get(key);
      if (n === undefined) missing.push({ i, key });
      else {
        cache.delete(key); // most recently used last
        cache.set(key, n);
        counts[i] = n;
      }
    });
    if (missing.length && client.countTokens) {
      await this.#count(client, texts, missing, counts, cache);
    }
    return texts.map((text, i) => counts[i] ?? estimateTextTokens(text));
  }

  async #count(
    client: LLMClient,
    texts: string[],
    missing: { i: number; key: number }[],
    counts: (number | undefined)[],
    cache: Map<number, number>,
  ): Promise<void> {
    let next = 0;
    let stop = false;
    const worker = async () => {
      while (next < missing.length && !stop) {
        const { i, key } = missing[next++];
        const n = await client.countTokens!(texts[i]);
        if (n === undefined) {
          stop = true; // no tokenizer, or it failed: estimate the rest
          return;
        }
        counts[i] = n;
        cache.set(key, n);
        if (cache.size > this.#opts.cacheSize) cache.delete(cache.keys().next().value!);
      }
    };
    const workers = Array.from({ length: Math.min(CONCURRENCY, missing.length) }, worker);
    await this.#limited(Promise.all(workers).then(() => undefined)).finally(() => stop = true);
  }
}
