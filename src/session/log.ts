/**
 * Saving a session as it goes. The log watches the agent's conversation (it is the agent's
 * `observer`): after every change it compares the conversation with what the file holds and
 * appends only the difference — new messages, or a `truncate` and what replaced the cut part
 * (compaction, `/clear`, `/summarize`), and the pinned context when it changed — then a `turn`
 * line when a turn ends. Each batch is one write followed by an fsync: a `kill -9` loses at
 * most the turn in flight (a turn ends once its write is done: the kernel has it), a crash of
 * the machine at most what the fsync in flight covers (the next prompt does not wait for it). The file is created with its first line, through the
 * workspace (`openAppend`: never through a symlink that leads out).
 *
 * What is written is redacted the way the audit log is (`secretRedactor`): a resumed
 * conversation has `[redacted]` where a secret of the environment or a token was.
 *
 * @module
 */
import { type Agent, type ConversationObserver, PINNED_LABEL, type TurnRecord } from "../agent.ts";
import { describeError, HarveyError } from "../errors.ts";
import type { Message } from "../types.ts";
import {
  encodeEvent,
  plainMessage,
  SESSION_FORMAT,
  type SessionEvent,
  type SessionHeader,
} from "./format.ts";
import { SUMMARY_LABEL } from "../llm/compact.ts";
import { sessionPath } from "./store.ts";

/** What a log needs besides the agent. */
export interface SessionLogOptions {
  /** Applied to all text that is written (see `secretRedactor`). */
  redact: (text: string) => string;
  /** The clock, for tests. */
  now?: () => Date;
}

/** Where a log starts from. */
export interface SessionLogInit {
  id: string;
  /**
   * The session as its file holds it already (a resume); absent for a new session, whose file
   * is created with the first thing worth saving.
   */
  existing?: { conversation: Message[]; pinned: string; repair?: string };
  /** Header fields of a new session (`forkedFrom`, `replayOf`, …). */
  header?: Partial<Pick<SessionHeader, "forkedFrom" | "replayOf" | "replayModel">>;
  /**
   * Events a new file starts with after its header (a fork's copy of its source), and the
   * conversation and pinned context they leave.
   */
  seed?: { events: SessionEvent[]; conversation: Message[]; pinned: string };
}

/** The session file of one conversation. */
export class SessionLog implements ConversationObserver {
  readonly id: string;
  readonly path: string;
  readonly #agent: Agent;
  readonly #opts: SessionLogOptions;
  readonly #init: SessionLogInit;
  /** The conversation as the file holds it, each message as JSON of what is in memory. */
  #recorded: string[] = [];
  #pinned = "";
  #file?: Deno.FsFile;
  #created: boolean;
  #dirty = false;
  #running?: Promise<void>;
  /** The fsync of the last write, not waited for by the turn. */
  #syncing?: Promise<void>;
  #closed = false;
  #warned = false;

  constructor(agent: Agent, opts: SessionLogOptions, init: SessionLogInit) {
    this.#agent = agent;
    this.#opts = opts;
    this.#init = init;
    this.id = init.id;
    this.path = sessionPath(init.id);
    this.#created = init.existing !== undefined;
    const start = init.existing ?? init.seed;
    if (start) {
      this.#recorded = start.conversation.map(key);
      this.#pinned = start.pinned;
    }
  }

  /** Whether the session has a file (something was saved, or it was resumed). */
  get saved(): boolean {
    return this.#created;
  }

  /** The conversation changed: the difference is written soon (coalesced with other changes). */
  changed(): void {
    if (this.#closed) return;
    this.#dirty = true;
    this.#running ??= this.#drain();
  }

  /** A turn ended: its messages, then its `turn` line, are written (and synced soon). */
  async turnEnded(turn: TurnRecord): Promise<void> {
    await this.#written();
    if (this.#closed) return;
    const redact = this.#opts.redact;
    // The turn's last messages and its line go in one write and one sync.
    this.#running = this.#sync([{
      type: "turn",
      time: this.#now(),
      input: redact(turn.input),
      model: turn.model,
      backend: turn.backend,
      outcome: turn.outcome,
      ...(turn.stats ? { stats: turn.stats } : {}),
    }]).finally(() => {
      this.#running = undefined;
      // A change made while this was written is written next.
      if (this.#dirty) this.changed();
    });
    await this.#written();
  }

  /** Sets the session's name (a `name` line; the file is created when it has none yet). */
  async rename(name: string): Promise<void> {
    await this.flush();
    if (!await this.#write([{ type: "name", time: this.#now(), name }], { force: true })) {
      throw new HarveyError(`The session could not be saved to ${this.path}`);
    }
  }

  /** Creates the file now (with its header, and a fork's copy) when it has none yet. */
  async create(): Promise<void> {
    await this.flush();
    if (!this.#created && !await this.#write([], { force: true })) {
      throw new HarveyError(`The session could not be saved to ${this.path}`);
    }
  }

  /** Waits until every change so far is written and synced. */
  async flush(): Promise<void> {
    await this.#written();
    await this.#syncing;
  }

  async #written(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Writes what is left and closes the file; later changes are not saved. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    this.#file?.close();
    this.#file = undefined;
  }

  async #drain(): Promise<void> {
    // Changes made in one go (a restore: clear, then the messages) are written as one.
    await Promise.resolve();
    try {
      while (this.#dirty && !this.#closed) {
        this.#dirty = false;
        await this.#sync();
      }
    } finally {
      this.#running = undefined;
    }
  }

  /** Appends the difference between the conversation and what the file holds, then `after`. */
  async #sync(after: SessionEvent[] = []): Promise<void> {
    this.#dirty = false;
    const agent = this.#agent;
    const conversation = conversationOf(agent);
    const keys = conversation.map(key);
    let same = 0;
    while (
      same < this.#recorded.length && same < keys.length && this.#recorded[same] === keys[same]
    ) same++;
    const time = this.#now();
    const redact = this.#opts.redact;
    const events: SessionEvent[] = [];
    if (agent.pinned !== this.#pinned) {
      events.push({ type: "pinned", time, text: redact(agent.pinned) });
    }
    if (same < this.#recorded.length) {
      events.push({ type: "truncate", time, keep: same, reason: cutReason(conversation, same) });
    }
    for (const m of conversation.slice(same)) {
      events.push({ type: "message", time, message: redactMessage(m, redact) });
    }
    const changes = events.length;
    events.push(...after);
    if (!events.length) return;
    if (await this.#write(events) && changes) {
      this.#recorded = keys;
      this.#pinned = agent.pinned;
    }
  }

  /**
   * Appends `events` in one write and syncs the file; a new session's file is created first,
   * with its header (unless nothing but a system prompt would be in it, or `force`). Returns
   * false when it could not be written (said once).
   */
  async #write(events: SessionEvent[], opts: { force?: boolean } = {}): Promise<boolean> {
    if (this.#closed) return false;
    let lines = events;
    try {
      if (!this.#created) {
        const worth = opts.force ||
          events.some((e) => e.type !== "message" || e.message.role !== "system");
        if (!worth) return false;
        lines = [this.#header(events[0]?.time), ...(this.#init.seed?.events ?? []), ...events];
      }
      const file = await this.#open();
      const bytes = new TextEncoder().encode(lines.map(encodeEvent).join(""));
      let n = 0;
      while (n < bytes.length) n += await file.write(bytes.subarray(n));
      const syncing: Promise<void> = file.sync().catch((err) => this.#warn(err)).finally(() => {
        if (this.#syncing === syncing) this.#syncing = undefined;
      });
      this.#syncing = syncing;
      this.#created = true;
      return true;
    } catch (err) {
      this.#warn(err);
      return false;
    }
  }

  #warn(err: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#agent.err.write(
      `⚠ The session cannot be saved to ${this.path} (${
        describeError(err)
      }); the conversation goes on unsaved\n`,
    );
  }

  async #open(): Promise<Deno.FsFile> {
    if (this.#file) return this.#file;
    const ws = this.#agent.workspace;
    const repair = this.#init.existing?.repair;
    // A last line cut short by a crash goes before anything is appended after it.
    if (repair !== undefined) await ws.writeFile(this.path, repair);
    this.#file = await ws.openAppend(this.path);
    if (this.#init.existing) this.#init.existing.repair = undefined;
    return this.#file;
  }

  #header(time = this.#now()): SessionHeader {
    return {
      type: "session",
      version: SESSION_FORMAT,
      id: this.id,
      time,
      workspace: this.#agent.workspace.root,
      ...this.#init.header,
    };
  }

  #now(): string {
    return (this.#opts.now?.() ?? new Date()).toISOString();
  }
}

/**
 * The conversation of `agent` as a session holds it: the history without the message of the
 * pinned context (which is saved apart, so a pin does not rewrite the turns after it).
 */
export function conversationOf(agent: Agent): Message[] {
  const h = agent.history;
  const pin = agent.pinned ? `${PINNED_LABEL}\n\n${agent.pinned}` : undefined;
  const i = h.findIndex((m) => m.role === "user");
  if (pin !== undefined && i >= 0 && h[i].content === pin && i <= 1) {
    return [...h.slice(0, i), ...h.slice(i + 1)];
  }
  return [...h];
}

function key(m: Message): string {
  return JSON.stringify(plainMessage(m));
}

function redactMessage(m: Message, redact: (text: string) => string): Message {
  const out = plainMessage(m);
  out.content = redact(out.content);
  if (out.toolCalls) {
    out.toolCalls = out.toolCalls.map((c) => ({ ...c, arguments: redact(c.arguments) }));
  }
  return out;
}

/** Why the conversation was cut back to `keep` messages, from what replaced the rest. */
function cutReason(conversation: Message[], keep: number): string {
  const next = conversation[keep];
  if (next?.content.startsWith(SUMMARY_LABEL)) return "summary";
  if (!next && keep <= 1) return "clear";
  return "edit";
}
