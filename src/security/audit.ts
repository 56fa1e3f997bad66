/**
 * The audit log: what Harvey ran, wrote and refused. The last 1,000 events stay in memory
 * for `/audit show`; every event is also appended to `agents/audit.jsonl`, one JSON object
 * per line (`time`, `action`, `details`, `outcome`), a file Harvey only ever appends to.
 *
 * @module
 */
import type { Output } from "../types.ts";
import { escapeControls } from "../util/terminal_text.ts";

/** How an audited action ended. */
export type AuditOutcome = "allowed" | "denied" | "error" | "success";

/** One audited event. */
export interface AuditEvent {
  /** ISO 8601 time. */
  time: string;
  /** What kind of action: `run`, `permission`, `safemode`, `permissions`, `apply`, … */
  action: string;
  /** What exactly, with secrets redacted. */
  details: string;
  outcome: AuditOutcome;
}

/** Options of an {@linkcode AuditLog}. */
export interface AuditLogOptions {
  /** The JSON-lines file to append to; none keeps events in memory only. */
  file?: string;
  /** Events kept in memory (default 1,000). */
  capacity?: number;
  /** Applied to every `details` before it is stored (see `secretRedactor`). */
  redact?: (text: string) => string;
  /** Told once when the file cannot be written. */
  warn?: Output;
  /** The clock, for tests. */
  now?: () => Date;
}

/**
 * A ring buffer of the recent events, and the append-only file of all of them.
 *
 * @example
 * ```ts
 * const log = new AuditLog({ file: "agents/audit.jsonl" });
 * log.record("run", "ls -la", "success");
 * log.recent(10);
 * ```
 */
export class AuditLog {
  readonly file?: string;
  readonly capacity: number;
  #ring: AuditEvent[] = [];
  #next = 0;
  #total = 0;
  #written = 0;
  #lastError?: string;
  #warned = false;
  readonly #redact: (text: string) => string;
  readonly #warn?: Output;
  readonly #now: () => Date;

  constructor(opts: AuditLogOptions = {}) {
    this.file = opts.file;
    this.capacity = Math.max(1, opts.capacity ?? 1000);
    this.#redact = opts.redact ?? ((t) => t);
    this.#warn = opts.warn;
    this.#now = opts.now ?? (() => new Date());
  }

  /** Records one event: in memory, and appended to the file at once (synchronously). */
  record(action: string, details: string, outcome: AuditOutcome): AuditEvent {
    const event: AuditEvent = {
      time: this.#now().toISOString(),
      action,
      details: this.#redact(details).replace(/[\r\n]+/g, " "),
      outcome,
    };
    if (this.#ring.length < this.capacity) this.#ring.push(event);
    else this.#ring[this.#next] = event;
    this.#next = (this.#next + 1) % this.capacity;
    this.#total++;
    this.#append(event);
    return event;
  }

  /** The last `n` events in memory (all of them by default), oldest first. */
  recent(n = this.capacity): AuditEvent[] {
    const ordered = this.#ring.length < this.capacity
      ? this.#ring
      : [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
    return n >= ordered.length ? [...ordered] : ordered.slice(ordered.length - n);
  }

  /** Empties the in-memory buffer; the file is kept as it is. */
  clear(): void {
    this.#ring = [];
    this.#next = 0;
  }

  /** Events in memory now. */
  get size(): number {
    return this.#ring.length;
  }

  /** Events recorded since the session started (cleared ones included). */
  get total(): number {
    return this.#total;
  }

  /** Lines appended to the file this session. */
  get written(): number {
    return this.#written;
  }

  /** Why the last append to the file failed, if one did. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  #append(event: AuditEvent): void {
    if (!this.file) return;
    try {
      // Append only: never through a symlink, never rewriting what is there.
      const info = lstatOrNull(this.file);
      if (info?.isSymlink) throw new Error(`${this.file} is a symlink; Harvey will not follow it`);
      Deno.writeTextFileSync(this.file, `${JSON.stringify(event)}\n`, {
        append: true,
        create: true,
        mode: 0o600,
      });
      this.#written++;
      this.#lastError = undefined;
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
      if (!this.#warned) {
        this.#warned = true;
        this.#warn?.write(
          `⚠ The audit log cannot be written (${this.#lastError}); events stay in memory\n`,
        );
      }
    }
  }
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * One event as a line for `/audit show`. The details hold the model's own strings (paths,
 * commands): their control characters are shown, not obeyed.
 */
export function formatAuditEvent(event: AuditEvent): string {
  return `${event.time}  ${event.outcome.padEnd(7)}  ${event.action.padEnd(11)}  ${
    escapeControls(event.details)
  }`;
}
