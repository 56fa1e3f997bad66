/**
 * Compaction: the oldest turns of a conversation replaced by a summary written by the same
 * model, so that the next request fits its window. The system prompt and the pinned context
 * are kept, and so are the last turns, word for word. A tool call and its results always stay
 * on the same side of the cut (cuts fall only where a user turn begins).
 *
 * The summarizing requests must fit the window too, so a long conversation is summarized in
 * chunks: each request holds the summary so far and the next messages that fit.
 *
 * @module
 */
import { PINNED_LABEL } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import type { LLMClient, Message } from "../types.ts";
import type { TokenBudget } from "./budget.ts";

/** The instruction that asks for the summary. */
export const SUMMARIZE_PROMPT =
  `Summarize our conversation so far so that it can replace the conversation itself. Keep: the
goal, the decisions made and why, the files, functions and commands discussed (exact names and
paths), code that still matters, open questions and next steps. Leave out greetings and
anything settled. Write concise Markdown bullet points; do not address me.`;

/** The label of the message that holds a summary in the history. */
export const SUMMARY_LABEL = "[Conversation summary]";

const SUMMARIZER_SYSTEM =
  "You condense a conversation between a user and a coding assistant into notes that replace it.";

/** What summarizing cost, for the report and the benchmark. */
export interface SummaryCost {
  /** Summarizing requests sent. */
  requests: number;
  /** Prompt and reply tokens of those requests, as the server reported them. */
  tokens: number;
  /** Time spent on them. */
  ms: number;
}

/** A summary and what it cost. */
export interface Summary extends SummaryCost {
  text: string;
}

/** How to summarize. */
export interface SummarizeOptions {
  budget: TokenBudget;
  /** The window of `client`. */
  window: number;
  /** The most tokens of one summary. */
  maxTokens: number;
  signal?: AbortSignal;
  /** Called with the tokens of the last (final) summary as they arrive. */
  onToken?: (token: string) => void;
}

/** How many leading messages are never compacted: the system prompt and the pinned context. */
export function keptHead(messages: Message[]): number {
  let n = 0;
  while (messages[n]?.role === "system") n++;
  if (messages[n]?.role === "user" && messages[n].content.startsWith(PINNED_LABEL)) n++;
  return n;
}

/** Where a turn begins: a user message after the head. A cut there never splits a tool call. */
export function turnStarts(messages: Message[], head = keptHead(messages)): number[] {
  const starts: number[] = [];
  for (let i = head; i < messages.length; i++) {
    if (messages[i].role === "user") starts.push(i);
  }
  return starts;
}

/** The summary as the history message that replaces what it summarizes. */
export function summaryMessage(text: string): Message {
  return { role: "user", content: `${SUMMARY_LABEL}\n\n${text}` };
}

/** One message as a block of the transcript the summarizer reads. */
function transcriptBlock(m: Message): string {
  if (m.role === "tool") {
    return `### Tool result${m.toolName ? ` (${m.toolName})` : ""}\n${m.content}`;
  }
  if (m.role === "assistant") {
    const calls = (m.toolCalls ?? []).map((c) => `- called ${c.name}(${c.arguments})`);
    return [`### Assistant`, m.content, ...calls].filter(Boolean).join("\n");
  }
  if (m.role === "system") return `### System\n${m.content}`;
  return `### User\n${m.content}`;
}

function request(prior: string | undefined, blocks: string[]): Message[] {
  const before = prior ? `Summary of the conversation before this part:\n\n${prior}\n\n` : "";
  return [
    { role: "system", content: SUMMARIZER_SYSTEM },
    {
      role: "user",
      content: `${SUMMARIZE_PROMPT}\n\n${before}Conversation:\n\n${blocks.join("\n\n")}`,
    },
  ];
}

/** Keeps the start and the end of `text`, about `share` of it, with a note of what was left out. */
function shorten(text: string, share: number): string {
  const keep = Math.max(40, Math.floor(text.length * share));
  if (keep >= text.length) return text;
  const head = Math.floor(keep * 0.6);
  const tail = keep - head;
  return `${text.slice(0, head)}\n[… ${text.length - keep} characters left out …]\n${
    text.slice(text.length - tail)
  }`;
}

/**
 * Summarizes `messages` with `client` in as many requests as the window needs, each holding
 * the summary so far and the next messages that fit; a message too long for one request is
 * shortened in its middle. Throws when the model returns nothing.
 */
export async function summarize(
  client: LLMClient,
  messages: Message[],
  opts: SummarizeOptions,
): Promise<Summary> {
  const { budget } = opts;
  const room = opts.window - opts.maxTokens;
  const blocks = messages.map(transcriptBlock);
  const sizes = await Promise.all(blocks.map((b) => budget.text(b, client)));
  const cost: SummaryCost = { requests: 0, tokens: 0, ms: 0 };
  let prior: string | undefined;
  let next = 0;
  while (next < blocks.length) {
    const base = await budget.measure(request(prior, []), client);
    if (base >= room) {
      throw new HarveyError(
        `The ${opts.window}-token window cannot hold even the summarizing instruction; ` +
          "/clear to start over (pinned context stays)",
      );
    }
    // Pack the next blocks that fit, by their counted sizes; then check the real request.
    let end = next;
    let used = base;
    while (end < blocks.length && used + sizes[end] + 2 <= room) used += sizes[end++] + 2;
    let chunk = blocks.slice(next, Math.max(end, next + 1));
    if (end === next) chunk = [shorten(blocks[next], (room - base) / (sizes[next] + 1) * 0.8)];
    for (let tries = 0; tries < 8; tries++) {
      const size = await budget.measure(request(prior, chunk), client);
      if (size <= room) break;
      if (chunk.length > 1) chunk = chunk.slice(0, -1);
      else chunk = [shorten(chunk[0], Math.min(0.8, (room - base) / (size - base + 1)))];
    }
    const last = next + Math.max(chunk.length, 1) >= blocks.length;
    const started = performance.now();
    let text = "";
    const result = await client.chat(request(prior, chunk), {
      signal: opts.signal,
      maxTokens: opts.maxTokens,
      onToken(token) {
        text += token;
        if (last) opts.onToken?.(token);
      },
    });
    cost.requests++;
    cost.tokens += result.promptTokens + result.replyTokens;
    cost.ms += performance.now() - started;
    text = text.replace(/<think>[\s\S]*?<\/think>/g, "").trim();
    if (!text) throw new HarveyError("The model returned an empty summary; the history was kept");
    prior = text;
    next += Math.max(chunk.length, 1);
  }
  return { text: prior ?? "", ...cost };
}

/** How to compact. */
export interface CompactOptions extends Omit<SummarizeOptions, "onToken"> {
  /** Turns kept word for word, the current one included (at least 1). */
  keepTurns: number;
  /** Whether a request of these messages fits (with room for the reply). */
  fits: (messages: Message[]) => Promise<boolean>;
}

/** A compacted request. */
export interface Compacted extends SummaryCost {
  messages: Message[];
  /** The index in the input where the kept turns begin. */
  keptFrom: number;
  /** Messages replaced by the summary. */
  summarized: number;
  /** The summary message (in `messages`, after the head). */
  summary: Message;
}

/**
 * Replaces the oldest turns of `messages` by a summary until the request fits: first all but
 * the last `keepTurns` turns, then one more turn each time while it does not fit, down to the
 * current turn alone. Undefined when there is nothing older than the current turn.
 */
export async function compactMessages(
  client: LLMClient,
  messages: Message[],
  opts: CompactOptions,
): Promise<Compacted | undefined> {
  const head = keptHead(messages);
  const starts = turnStarts(messages, head);
  if (starts.length < 2) return undefined;
  let keep = Math.min(Math.max(1, opts.keepTurns), starts.length - 1);
  let from = head;
  let prior: Message | undefined;
  const cost: SummaryCost = { requests: 0, tokens: 0, ms: 0 };
  for (;;) {
    const cut = starts[starts.length - keep];
    const older = [...(prior ? [prior] : []), ...messages.slice(from, cut)];
    const summary = await summarize(client, older, opts);
    cost.requests += summary.requests;
    cost.tokens += summary.tokens;
    cost.ms += summary.ms;
    prior = summaryMessage(summary.text);
    from = cut;
    const compacted = [...messages.slice(0, head), prior, ...messages.slice(cut)];
    if (keep === 1 || await opts.fits(compacted)) {
      return {
        messages: compacted,
        keptFrom: cut,
        summarized: cut - head,
        summary: prior,
        ...cost,
      };
    }
    keep--;
  }
}
