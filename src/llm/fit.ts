/**
 * Making one request fit the window the server really has: the one function a prompt turn
 * (and every round of an agent loop) calls before it sends. It gets the backend ready (a
 * request-scoped server starts here, so its real `n_ctx` and tokenizer are used), measures
 * the request, compacts the conversation when it would not fit (and `context.auto_compact`
 * allows), and says how long the reply may be.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import type { ChatOptions, ChatResult, LLMClient, Message, Output, ToolSpec } from "../types.ts";
import { BudgetError, replyReserve } from "./budget.ts";
import { compactMessages, keptHead, type SummaryCost, turnStarts } from "./compact.ts";
import { ContextOverflowError } from "./errors.ts";

/** Share of the room for the request at which a warning is printed. */
const WARN_AT = 0.8;

/**
 * How far below the warning line a predicted count must stay for a round to be sent before
 * the server has counted it: the prediction may be this many times too low.
 */
const PREDICTION_MARGIN = 2;

/** The fewest tokens a reply may be left after compaction before the request is refused. */
const MIN_REPLY = 64;

/** What compacting did to a request. */
export interface CompactionReport extends SummaryCost {
  /** Messages replaced by the summary. */
  summarized: number;
  /** Tokens of the request before and after. */
  before: number;
  after: number;
}

/** A request ready to send. */
export interface FittedRequest {
  /** What to send: the messages given, or their compacted form. */
  messages: Message[];
  /** The reply's limit (`max_tokens`): the reply reserve, or the room left when smaller. */
  maxTokens?: number;
  /** Tokens of `messages`, as counted. */
  used: number;
  /** The window of the client, when it tells. */
  window?: number;
  /** Set when the oldest turns were summarized to make room. */
  compacted?: CompactionReport;
  /** The tools to send with it: those asked for, unless their definitions would not fit. */
  tools?: ToolSpec[];
  /**
   * The server's count, still coming: `used` is then a prediction (at most half the warning
   * line; a count above it makes the next prediction higher, and that request waits for its
   * count and warns).
   */
  counting?: Promise<number>;
  /**
   * Starts that count (`sendFitted` does when the reply's first token comes, or when the
   * reply ends): the server gets the request before the two requests of the count.
   */
  startCount?: () => void;
}

/**
 * The most tokens `fitted` can take: `used`, or, while the server's count is still coming,
 * the prediction as far off as it is allowed to be.
 */
export function mostUsed(fitted: FittedRequest): number {
  return fitted.counting ? fitted.used * PREDICTION_MARGIN : fitted.used;
}

/** Where `fitRequest` reports. */
export interface FitOptions {
  /** Warnings and the compaction line go here. */
  err: Output;
  signal?: AbortSignal;
  /** Tools sent with the request: their definitions count too. */
  tools?: ToolSpec[];
  /**
   * A request far from full by a calibrated prediction is returned at once, the server's
   * count still coming (`counting`): the request goes out while the server counts it.
   */
  deferCount?: boolean;
}

/**
 * Fits `messages` (the history, then what this turn adds) into `client`'s window:
 *
 * - the client gets ready first (`prepare`: a request-scoped server starts), then its window
 *   is read (a client remembers it until its server goes away or refuses a request as too
 *   long);
 * - the request is measured (exactly with the server's template and tokenizer when it has
 *   them); at 80 % of the room a warning is printed;
 * - when it does not fit with the reply reserve, the oldest turns are summarized by the same
 *   model (one line says so) unless `context.auto_compact` is off, and the agent's history is
 *   replaced the same way when `messages` begins with it; when it still does not fit, or
 *   compaction is off, {@linkcode BudgetError} is thrown and nothing is changed.
 *
 * Without a known window nothing is measured by the server and nothing is refused; the reply
 * limit is then the configured `context.reply_reserve`, if any.
 */
export async function fitRequest(
  agent: Agent,
  client: LLMClient,
  messages: Message[],
  opts: FitOptions,
): Promise<FittedRequest> {
  const budget = agent.budget;
  const settings = agent.config.config.context;
  if (!budget) return { messages, used: 0, tools: opts.tools };
  await client.prepare?.(opts.signal);
  const window = await client.contextWindow?.().catch(() => undefined);
  agent.rememberWindow(client, window);
  if (!window) {
    return {
      messages,
      used: budget.estimate(messages),
      maxTokens: settings.reply_reserve || undefined,
      tools: opts.tools,
    };
  }
  const reserve = replyReserve(window, settings.reply_reserve);
  const room = window - reserve;
  const tools = await toolsThatFit(agent, client, room, opts);
  if (opts.deferCount) {
    // Counting exactly takes the server two requests; far from full, they need not come first.
    const predicted = budget.predict(messages, client, tools);
    if (predicted !== undefined && predicted * PREDICTION_MARGIN <= WARN_AT * room) {
      let startCount!: () => void;
      const started = new Promise<void>((resolve) => startCount = resolve);
      const counting = started.then(() => budget.measure(messages, client, tools));
      return { messages, maxTokens: reserve, used: predicted, window, tools, counting, startCount };
    }
  }
  const used = await budget.measure(messages, client, tools);
  if (used <= room) {
    if (used >= WARN_AT * room) {
      opts.err.write(
        `⚠ Context ${Math.round((used / room) * 100)}% full: ${used} of ${room} tokens ` +
          `(window ${window}, ${reserve} kept for the reply) — ${
            settings.auto_compact
              ? "the oldest turns are summarized when it is full (/summarize does it now)"
              : "/summarize to make room"
          }\n`,
      );
    }
    return { messages, maxTokens: reserve, used, window, tools };
  }
  const refuse = (needed: number, why: string) =>
    new BudgetError(
      `The request needs ${needed} tokens but the context window of ${window} leaves ${room} ` +
        `after ${reserve} kept for the reply; it was not sent — ${why}`,
      needed,
      window,
    );
  if (!settings.auto_compact) {
    throw refuse(used, "/summarize (or /clear) to make room, or shorten the prompt");
  }
  // What compaction cannot shrink: the head and the current turn. When there is nothing older,
  // or even they leave no room for a reply, summarizing would be wasted work.
  const head = keptHead(messages);
  const starts = turnStarts(messages, head);
  if (starts.length < 2) {
    throw refuse(used, "shorten the prompt (there is no older turn to summarize), or /clear");
  }
  const floor = await budget.measure(
    [...messages.slice(0, head), ...messages.slice(starts.at(-1))],
    client,
    tools,
  );
  if (window - floor < Math.min(MIN_REPLY, reserve)) {
    throw refuse(
      used,
      "shorten the prompt (summarizing the older turns would not be enough), or /clear",
    );
  }
  const compacted = await compactMessages(client, messages, {
    budget,
    window,
    maxTokens: Math.min(reserve, Math.max(64, Math.floor(window * 0.15))),
    keepTurns: settings.keep_turns,
    signal: opts.signal,
    fits: async (candidate) => await budget.measure(candidate, client, tools) <= room,
  });
  if (!compacted) throw refuse(used, "shorten the prompt, or /clear");
  const after = await budget.measure(compacted.messages, client, tools);
  if (window - after < Math.min(MIN_REPLY, reserve)) {
    throw refuse(
      after,
      "even with the older turns summarized; shorten the prompt, or /clear",
    );
  }
  replaceHistory(agent, messages, compacted.keptFrom, compacted.messages);
  const kept = messages.length - compacted.keptFrom;
  opts.err.write(
    `⟳ The conversation did not fit the ${window}-token window: its oldest ${
      plural(compacted.summarized, "message")
    } ${
      compacted.summarized === 1 ? "was" : "were"
    } summarized by ${client.model} (${used} → ${after} tokens, ${
      plural(compacted.requests, "request")
    }); the last ${plural(kept, "message")} ${kept === 1 ? "is" : "are"} kept as ${
      kept === 1 ? "it was" : "they were"
    }\n`,
  );
  return {
    messages: compacted.messages,
    maxTokens: Math.min(reserve, window - after),
    used: after,
    window,
    tools,
    compacted: {
      summarized: compacted.summarized,
      before: used,
      after,
      requests: compacted.requests,
      tokens: compacted.tokens,
      ms: compacted.ms,
    },
  };
}

/** Clients already told that their window is too small for the tool definitions. */
const toldTooSmall = new WeakSet<LLMClient>();

/**
 * The tools of `opts`, unless their definitions would take more than half the room for the
 * request: a small window then gets no tools rather than no room (said once per backend).
 */
async function toolsThatFit(
  agent: Agent,
  client: LLMClient,
  room: number,
  opts: FitOptions,
): Promise<ToolSpec[] | undefined> {
  const tools = opts.tools;
  if (!tools?.length || !agent.budget) return tools;
  const cost = await agent.budget.text(JSON.stringify(tools), client);
  if (cost <= room / 2) return tools;
  if (!toldTooSmall.has(client)) {
    toldTooSmall.add(client);
    opts.err.write(
      `⚠ No tools offered to ${client.model}: their definitions take ${cost} tokens, more than ` +
        `half of the ${room} left for the request in its window (/tools lists them)\n`,
    );
  }
  return undefined;
}

/**
 * When `messages` begins with the agent's history, the history gets the same compaction:
 * the head, the summary, and the history's own messages from `keptFrom` on.
 */
function replaceHistory(
  agent: Agent,
  messages: Message[],
  keptFrom: number,
  compacted: Message[],
): void {
  const history = agent.history;
  if (keptFrom > history.length || !history.every((m, i) => messages[i] === m)) return;
  const head = compacted.length - (messages.length - keptFrom);
  agent.history = [...compacted.slice(0, head), ...history.slice(keptFrom)];
}

/** How to send a fitted request. */
export interface SendOptions
  extends FitOptions, Pick<ChatOptions, "onToken" | "onReasoning" | "grammar"> {
  /** Called when the fitted request is about to be sent (e.g. to start a spinner). */
  onSend?: (fitted: FittedRequest) => void;
}

/**
 * Fits `messages` ({@linkcode fitRequest}) and streams the reply. When the server refuses the
 * request as longer than its window (its window changed: a restart with another `-c`), the
 * window is read again and the request fitted and sent once more, before any token came.
 */
export async function sendFitted(
  agent: Agent,
  client: LLMClient,
  messages: Message[],
  opts: SendOptions,
): Promise<{ result: ChatResult; fitted: FittedRequest }> {
  let fitted = await fitRequest(agent, client, messages, { ...opts, deferCount: true });
  for (let attempt = 0;; attempt++) {
    let streamed = false;
    opts.onSend?.(fitted);
    try {
      const result = await client.chat(fitted.messages, {
        signal: opts.signal,
        maxTokens: fitted.maxTokens,
        tools: fitted.tools,
        grammar: opts.grammar,
        onToken(token) {
          if (!streamed) fitted.startCount?.();
          streamed = true;
          opts.onToken(token);
        },
        onReasoning: opts.onReasoning &&
          ((token) => {
            if (!streamed) fitted.startCount?.();
            streamed = true;
            opts.onReasoning!(token);
          }),
      });
      fitted.startCount?.();
      return { result, fitted };
    } catch (err) {
      fitted.startCount?.();
      if (!(err instanceof ContextOverflowError) || streamed || attempt > 0) throw err;
      const was = fitted.window ? ` (Harvey had ${fitted.window})` : "";
      opts.err.write(
        `⚠ ${err.message}; the server's window is ${err.window ?? "smaller"}${was}: ` +
          "measuring the request again\n",
      );
      fitted = await fitRequest(agent, client, fitted.messages, opts);
    }
  }
}

function plural(n: number, one: string): string {
  return `${n} ${n === 1 ? one : `${one}s`}`;
}
