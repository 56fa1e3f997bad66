/**
 * Download progress: a single redrawn line on a terminal, a plain line every few seconds
 * otherwise, and an optional hook for callers that draw their own.
 *
 * @module
 */

import type { Output } from "../types.ts";

/** What a progress hook receives. */
export interface ProgressInfo {
  /** Bytes of the file on disk so far, resumed bytes included. */
  received: number;
  /** The file's size, when the server gave it. */
  total?: number;
  /** Bytes per second over the last few seconds. */
  rate: number;
}

/** Options of {@linkcode ProgressReporter}. */
export interface ProgressOptions {
  out?: Output;
  /** A redrawn bar (`\r`) instead of plain lines. */
  isTerminal?: boolean;
  /** How often to draw; default 100 ms for the bar, 5000 ms for plain lines. */
  intervalMs?: number;
  hook?: (p: ProgressInfo) => void;
  /** Names the download in plain lines. */
  label: string;
  total?: number;
  /** Bytes already there when this run started (a resumed part). */
  startAt: number;
  /** The clock, in milliseconds. */
  now?: () => number;
}

const WINDOW_MS = 5000;
const BAR_WIDTH = 20;

/** Reports the progress of one download; call `update` as bytes arrive and `finish` at the end. */
export class ProgressReporter {
  #opts: ProgressOptions;
  #interval: number;
  #now: () => number;
  #samples: { t: number; bytes: number }[];
  #last = -Infinity;
  #barShown = false;
  #received: number;

  constructor(opts: ProgressOptions) {
    this.#opts = opts;
    this.#interval = opts.intervalMs ?? (opts.isTerminal ? 100 : 5000);
    this.#now = opts.now ?? (() => performance.now());
    this.#received = opts.startAt;
    const t = this.#now();
    this.#samples = [{ t, bytes: opts.startAt }];
    if (!opts.isTerminal) this.#last = t;
  }

  /** Records that `received` bytes are on disk; draws when the interval has passed. */
  update(received: number): void {
    this.#received = received;
    const t = this.#now();
    if (t - this.#last < this.#interval) return;
    this.#last = t;
    this.#emit(t, false);
  }

  /** Writes a message on its own line, ending the bar's line first. */
  note(text: string): void {
    this.#endBar();
    this.#opts.out?.write(`${text}\n`);
  }

  /** Draws the final state and ends the bar's line. */
  finish(received: number): void {
    this.#received = received;
    if (this.#opts.isTerminal) this.#emit(this.#now(), true);
    else this.#opts.hook?.(this.#info(this.#now()));
    this.#endBar();
  }

  /** Ends the bar's line without a final drawing (interruptions, errors). */
  stop(): void {
    this.#endBar();
  }

  #endBar(): void {
    if (this.#barShown) {
      this.#opts.out?.write("\n");
      this.#barShown = false;
    }
  }

  #info(t: number): ProgressInfo {
    const samples = this.#samples;
    samples.push({ t, bytes: this.#received });
    while (samples.length > 2 && t - samples[1].t >= WINDOW_MS) samples.shift();
    const first = samples[0];
    const dt = (t - first.t) / 1000;
    const rate = dt > 0 ? Math.max(0, (this.#received - first.bytes) / dt) : 0;
    return { received: this.#received, total: this.#opts.total, rate };
  }

  #emit(t: number, final: boolean): void {
    const info = this.#info(t);
    this.#opts.hook?.(info);
    const out = this.#opts.out;
    if (!out) return;
    if (this.#opts.isTerminal) {
      out.write(`\r${barLine(info, final)}\x1b[K`);
      this.#barShown = true;
    } else {
      out.write(`${this.#opts.label}: ${plainLine(info)}\n`);
    }
  }
}

function barLine(p: ProgressInfo, final: boolean): string {
  const rate = `${formatBytes(p.rate)}/s`;
  if (p.total === undefined || p.total === 0) {
    return `${formatBytes(p.received)}  ${rate}`;
  }
  const frac = Math.min(1, p.received / p.total);
  const filled = Math.round(frac * BAR_WIDTH);
  const bar = "#".repeat(filled) + "-".repeat(BAR_WIDTH - filled);
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const eta = final ? "" : `  ETA ${etaText(p)}`;
  return `${pct} [${bar}] ${formatBytes(p.received)} / ${formatBytes(p.total)}  ${rate}${eta}`;
}

function plainLine(p: ProgressInfo): string {
  const rate = `${formatBytes(p.rate)}/s`;
  if (p.total === undefined || p.total === 0) return `${formatBytes(p.received)}, ${rate}`;
  const pct = Math.floor(Math.min(1, p.received / p.total) * 100);
  return `${formatBytes(p.received)} of ${formatBytes(p.total)} (${pct}%), ${rate}, ` +
    `about ${etaText(p)} left`;
}

function etaText(p: ProgressInfo): string {
  if (p.total === undefined || p.rate <= 0) return "?";
  return formatDuration(Math.max(0, p.total - p.received) / p.rate);
}

/**
 * A byte count for people, in binary units.
 *
 * @example
 * ```ts
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B`;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/**
 * A duration in seconds for people: `7s`, `2m05s`, `1h02m`.
 *
 * @example
 * ```ts
 * formatDuration(125); // "2m05s"
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
