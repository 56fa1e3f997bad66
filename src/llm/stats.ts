/**
 * Reply statistics: the stats line and the ETA from recent turns.
 *
 * @module
 */
import type { ChatStats } from "../types.ts";

/**
 * Formats stats as the line printed after a reply.
 *
 * @example
 * ```ts
 * formatStats({ promptTokens: 10, replyTokens: 123, elapsedMs: 2700, tokensPerSec: 45.6 });
 * // "123 tokens · 45.6 tok/s · 2.7s"
 * ```
 */
export function formatStats(s: ChatStats, contextPercent?: number): string {
  const reasoning = s.reasoningTokens ? ` (${s.reasoningTokens} reasoning)` : "";
  const parts = [
    `${s.replyTokens} tokens${reasoning}`,
    `${s.tokensPerSec.toFixed(1)} tok/s`,
    `${(s.elapsedMs / 1000).toFixed(1)}s`,
  ];
  if (contextPercent !== undefined) parts.push(`context ${Math.round(contextPercent)}%`);
  return parts.join(" · ");
}

/**
 * Tokens per second of generation: from the first token to the last, so the wait for the
 * first token (loading, prompt processing) does not count. 0 without a measurable span.
 *
 * @example
 * ```ts
 * generationRate(11, 1000, 1500); // 20 (10 tokens after the first, in 0.5 s)
 * ```
 */
export function generationRate(tokens: number, firstTokenAt: number, endedAt: number): number {
  const span = endedAt - firstTokenAt;
  if (tokens < 2 || span <= 0) return 0;
  return (tokens - 1) / (span / 1000);
}

/** A rolling window of the last turns' stats, for the spinner's ETA. */
export class StatsWindow {
  #items: ChatStats[] = [];
  constructor(readonly size = 5) {}

  /** Records one finished turn. */
  add(s: ChatStats): void {
    this.#items.push(s);
    if (this.#items.length > this.size) this.#items.shift();
  }

  /** The turns kept, oldest first. */
  get items(): readonly ChatStats[] {
    return this.#items;
  }

  /** Average reply duration (reply tokens / tokens per second) in ms, or 0 without data. */
  estimateMs(): number {
    const usable = this.#items.filter((s) => s.replyTokens > 0 && s.tokensPerSec > 0);
    if (!usable.length) return 0;
    const total = usable.reduce((sum, s) => sum + (s.replyTokens / s.tokensPerSec) * 1000, 0);
    return total / usable.length;
  }
}
