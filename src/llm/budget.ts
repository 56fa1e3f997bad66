/**
 * The token budget: every request is measured before it is sent, against the context window
 * the server really uses, so a prompt that does not fit is refused instead of being silently
 * truncated by the server.
 *
 * Counting is cheap on the streaming path: each message is counted once per client (the
 * server's `/tokenize` when it has one, else an estimate) and remembered by a hash of its
 * text, so a turn tokenizes only the new message.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import type { LLMClient, Message, Output } from "../types.ts";
import { estimateTextTokens, PER_MESSAGE_OVERHEAD } from "./tokens.ts";

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

/**
 * Tokens kept free for the reply: 20 % of the window, at least 256, at most half the window
 * (so a tiny window still takes a short prompt).
 */
export function replyReserve(window: number): number {
  return Math.min(Math.max(256, Math.ceil(window * 0.2)), Math.floor(window / 2));
}

/** Options of {@linkcode TokenBudget}. */
export interface TokenBudgetOptions {
  /** The context window of `client`, when known. */
  windowOf: (client: LLMClient) => number | undefined | Promise<number | undefined>;
  /** Share of the room for the prompt at which a warning is printed; default 0.8. */
  warnAt?: number;
  /** How long counting may wait for the server's tokenizer before estimating; default 5000 ms. */
  countTimeoutMs?: number;
  /** Counts remembered per client; default 4096. */
  cacheSize?: number;
}

const hashOf = (text: string) => createHash("sha1").update(text).digest("base64");
const CONCURRENCY = 4;

/** Measures requests and refuses the ones that do not fit. */
export class TokenBudget {
  readonly #opts: Required<TokenBudgetOptions>;
  readonly #counts = new WeakMap<LLMClient, Map<string, number>>();

  constructor(opts: TokenBudgetOptions) {
    this.#opts = { warnAt: 0.8, countTimeoutMs: 5000, cacheSize: 4096, ...opts };
  }

  /**
   * Tokens of `messages` for `client`: the server's count of each message's text (remembered),
   * or an estimate where the server cannot count, plus the chat template's overhead.
   */
  async measure(messages: Message[], client: LLMClient): Promise<number> {
    let cache = this.#counts.get(client);
    if (!cache) this.#counts.set(client, cache = new Map());
    const counts = new Array<number | undefined>(messages.length);
    const missing: { i: number; key: string }[] = [];
    messages.forEach((m, i) => {
      if (!m.content) return void (counts[i] = 0);
      const key = hashOf(m.content);
      const n = cache.get(key);
      if (n === undefined) missing.push({ i, key });
      else {
        cache.delete(key); // most recently used last
        cache.set(key, n);
        counts[i] = n;
      }
    });
    if (missing.length && client.countTokens) {
      await this.#count(client, messages, missing, counts, cache);
    }
    let total = messages.length * PER_MESSAGE_OVERHEAD;
    messages.forEach((m, i) => total += counts[i] ?? estimateTextTokens(m.content));
    return total;
  }

  async #count(
    client: LLMClient,
    messages: Message[],
    missing: { i: number; key: string }[],
    counts: (number | undefined)[],
    cache: Map<string, number>,
  ): Promise<void> {
    let next = 0;
    let stop = false;
    const worker = async () => {
      while (next < missing.length && !stop) {
        const { i, key } = missing[next++];
        const n = await client.countTokens!(messages[i].content);
        if (n === undefined) {
          stop = true; // no tokenizer, or it failed: estimate the rest
          return;
        }
        counts[i] = n;
        cache.set(key, n);
        if (cache.size > this.#opts.cacheSize) cache.delete(cache.keys().next().value!);
      }
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        stop = true;
        resolve();
      }, this.#opts.countTimeoutMs);
    });
    const workers = Array.from({ length: Math.min(CONCURRENCY, missing.length) }, worker);
    try {
      await Promise.race([Promise.all(workers), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Measures `messages` against the window of `client`: warns on `err` at 80 % of the room
   * for the prompt, throws {@linkcode BudgetError} when the request would not fit. Without a
   * known window the estimate is returned and nothing is refused.
   */
  async check(
    messages: Message[],
    client: LLMClient,
    err: Output,
  ): Promise<{ used: number; window?: number }> {
    const window = await this.#opts.windowOf(client);
    if (!window) {
      return {
        used: messages.reduce((n, m) => n + estimateTextTokens(m.content), 0) +
          messages.length * PER_MESSAGE_OVERHEAD,
      };
    }
    const used = await this.measure(messages, client);
    const reserve = replyReserve(window);
    const room = window - reserve;
    if (used > room) {
      throw new BudgetError(
        `The request needs ${used} tokens but the context window of ${window} leaves ${room} ` +
          `after ${reserve} kept for the reply; it was not sent — /summarize (or /clear) to ` +
          `make room, or shorten the prompt`,
        used,
        window,
      );
    }
    if (used >= this.#opts.warnAt * room) {
      err.write(
        `⚠ Context ${Math.round((used / room) * 100)}% full: ${used} of ${room} tokens ` +
          `(window ${window}, ${reserve} kept for the reply) — /summarize to make room\n`,
      );
    }
    return { used, window };
  }
}

/**
 * The `agent.checkBudget` hook: the primary backend's window is `agent.contextWindow`; a
 * route's client is asked once for its own.
 *
 * @example
 * ```ts
 * agent.checkBudget = budgetHook(agent);
 * ```
 */
export function budgetHook(agent: Agent): NonNullable<Agent["checkBudget"]> {
  const routeWindows = new WeakMap<LLMClient, Promise<number | undefined>>();
  const budget = new TokenBudget({
    windowOf(client) {
      if (client === agent.client) return agent.contextWindow;
      let w = routeWindows.get(client);
      if (!w) {
        w = client.contextWindow?.().catch(() => undefined) ?? Promise.resolve(undefined);
        routeWindows.set(client, w);
      }
      return w;
    },
  });
  return (messages, client, err) => budget.check(messages, client, err);
}
