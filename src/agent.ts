/**
 * The Agent: one session's conversation, pinned context, current backend and stats.
 *
 * @module
 */
import type { CommandRegistry } from "./commands/registry.ts";
import type { ConfigStore } from "./config/store.ts";
import type { Settings } from "./config/settings.ts";
import type { TokenBudget } from "./llm/budget.ts";
import { StatsWindow } from "./llm/stats.ts";
import type { ModelSource } from "./llm/catalog.ts";
import type { Recorder } from "./repl/recorder.ts";
import type { Supervisor } from "./runtime/supervisor.ts";
import type { AuditLog } from "./security/audit.ts";
import type { Sandbox } from "./security/sandbox.ts";
import type { Asker, ChatStats, LLMClient, Message, Output } from "./types.ts";
import type { Workspace } from "./workspace.ts";

/** What an Agent is built from. */
export interface AgentOptions {
  workspace: Workspace;
  config: ConfigStore;
  settings: Settings;
  asker: Asker;
  commands: CommandRegistry;
  systemPrompt: string;
  /** The environment Harvey started with (read once, passed down; never mutated). */
  env: Record<string, string>;
  /** Where diagnostics go (stderr in headless mode). */
  err: Output;
  /** The one supervisor of the local servers this session starts. */
  supervisor: Supervisor;
}

/** The label of the history message that holds the pinned context. */
export const PINNED_LABEL = "[pinned context]";

/** What one finished turn was, besides the messages it added to the history. */
export interface TurnRecord {
  /** What the user typed (before RAG augmented it). */
  input: string;
  /** The model and the backend that answered (`client.model`, `client.name`). */
  model: string;
  backend: string;
  /** The turn's tokens and time; none when it was interrupted or failed. */
  stats?: ChatStats;
  /** How the turn ended. */
  outcome: "done" | "interrupted" | "failed";
}

/**
 * Told about every change of the conversation (the history, the pinned context) and about
 * every finished turn: what keeps the session on disk (`src/session/log.ts`).
 */
export interface ConversationObserver {
  /** The history or the pinned context changed (a message, `/clear`, compaction, a pin). */
  changed(): void;
  /** A turn ended; its messages are in the history already. */
  turnEnded(turn: TurnRecord): Promise<void>;
}

/** One session of Harvey. */
export class Agent {
  readonly workspace: Workspace;
  readonly config: ConfigStore;
  readonly settings: Settings;
  readonly asker: Asker;
  readonly commands: CommandRegistry;
  readonly env: Record<string, string>;
  readonly err: Output;
  /** Starts, adopts and stops this session's local model servers. */
  readonly supervisor: Supervisor;
  readonly stats = new StatsWindow(5);
  systemPrompt: string;
  recorder?: Recorder;
  /** Keeps the conversation as it goes (the session file), when set. */
  observer?: ConversationObserver;
  /** Where `/model` and start-up look for models. */
  sources: ModelSource[] = [];
  /** Rewrites a prompt before it is sent (RAG retrieval), when set. */
  augmentPrompt?: (prompt: string, err: Output, signal?: AbortSignal) => Promise<string>;
  /**
   * Measures every request before it is sent (`src/llm/fit.ts` fits it into the window with
   * it); unset, nothing is measured and nothing is refused.
   */
  budget?: TokenBudget;
  /**
   * Permission check of a workspace path (relative, "/"-separated) before it is read, written,
   * run or deleted; throws HarveyError when denied. Unset: everything inside the workspace.
   */
  checkPath?: (path: string, perm: "read" | "write" | "exec" | "delete") => void;
  /** The audit log (src/security/audit.ts): `agent.audit?.record(action, details, outcome)`. */
  audit?: AuditLog;
  /** The OS sandbox of the commands this session runs (src/security/sandbox.ts). */
  sandbox?: Sandbox;
  /** The client of a named route, for `@name` turns, when routes are configured. */
  routeClient?: (name: string) => Promise<LLMClient>;
  /** Set by `/exit`: the loop ends after the current line. */
  exitRequested = false;
  #history: Message[] = [];
  #pinned = "";
  #client?: LLMClient;
  #contextWindow?: number;
  #shutdown: (() => Promise<unknown>)[] = [];
  #beforeClose: (() => Promise<unknown>)[] = [];
  #ending?: Promise<void>;

  constructor(opts: AgentOptions) {
    this.workspace = opts.workspace;
    this.config = opts.config;
    this.settings = opts.settings;
    this.asker = opts.asker;
    this.commands = opts.commands;
    this.env = opts.env;
    this.err = opts.err;
    this.supervisor = opts.supervisor;
    this.systemPrompt = opts.systemPrompt;
    this.clearHistory();
  }

  /**
   * The conversation as it is sent: the system prompt, the pinned context, then the turns.
   * Replacing it (compaction does) tells the observer, as every method that changes it does;
   * code that pushes onto it calls {@linkcode Agent.endTurn} or {@linkcode Agent.touched}.
   */
  get history(): Message[] {
    return this.#history;
  }

  set history(messages: Message[]) {
    this.#history = messages;
    this.touched();
  }

  /** Tells the observer that the history or the pinned context changed. */
  touched(): void {
    this.observer?.changed();
  }

  /**
   * A turn ended (its messages are in the history): the observer records them with the turn,
   * in one go.
   */
  async endTurn(turn: TurnRecord): Promise<void> {
    await this.observer?.turnEnded(turn);
  }

  /**
   * Puts a saved conversation back: its system prompt, its pinned context and its messages
   * (after the system prompt and the pin), as they were.
   */
  restore(saved: { systemPrompt: string; pinned: string; messages: Message[] }): void {
    this.systemPrompt = saved.systemPrompt;
    this.#pinned = saved.pinned;
    this.clearHistory();
    this.#history.push(...saved.messages);
    this.touched();
  }

  /** The current backend, if one is selected. */
  get client(): LLMClient | undefined {
    return this.#client;
  }

  /** The real context window of the current backend, as it last reported it. */
  get contextWindow(): number | undefined {
    return this.#contextWindow;
  }

  /** Records the window `client` reported, when it is the current backend. */
  rememberWindow(client: LLMClient, window: number | undefined): void {
    if (client === this.#client) this.#contextWindow = window;
  }

  /**
   * Makes `client` the primary backend. The previous client is closed (which stops a server
   * Harvey started for it) unless it is the same object.
   */
  async setClient(client: LLMClient | undefined): Promise<void> {
    const previous = this.#client;
    this.#client = client;
    this.#contextWindow = undefined;
    if (previous && previous !== client) await previous.close();
    if (client?.contextWindow) this.#contextWindow = await client.contextWindow();
  }

  /** The pinned context: text that survives `/clear` and `/summarize`. */
  get pinned(): string {
    return this.#pinned;
  }

  /** Replaces the pinned context and its one message in the history. */
  setPinned(text: string): void {
    this.#pinned = text;
    const i = this.history.findIndex((m) =>
      m.role === "user" && m.content.startsWith(PINNED_LABEL)
    );
    if (i >= 0) this.history.splice(i, 1);
    if (text) this.history.splice(1, 0, { role: "user", content: `${PINNED_LABEL}\n\n${text}` });
    this.touched();
  }

  /** Appends a message to the history. */
  addMessage(role: Message["role"], content: string): void {
    this.history.push({ role, content });
    this.touched();
  }

  /** Resets the history to the system prompt and the pinned context. */
  clearHistory(): void {
    const history: Message[] = [{ role: "system", content: this.systemPrompt }];
    if (this.#pinned) {
      history.push({ role: "user", content: `${PINNED_LABEL}\n\n${this.#pinned}` });
    }
    this.history = history;
  }

  /** Registers work to do when the session ends (stop servers, close databases). */
  onShutdown(fn: () => Promise<unknown>): void {
    this.#shutdown.push(fn);
  }

  /**
   * Registers work to do when the session ends, before the backend is closed (while its
   * server still runs: saving its cache, the last lines of the session file).
   */
  beforeClose(fn: () => Promise<unknown>): void {
    this.#beforeClose.push(fn);
  }

  /**
   * Ends the session: closes the recorder and the backend, runs shutdown hooks. A second call
   * (a signal while the session is already ending) waits for the first to finish.
   */
  shutdown(): Promise<void> {
    this.#ending ??= this.#end();
    return this.#ending;
  }

  async #end(): Promise<void> {
    for (const fn of this.#beforeClose.splice(0).reverse()) await fn().catch(() => {});
    const hooks = this.#shutdown.splice(0).reverse();
    const client = this.#client;
    this.#client = undefined;
    await this.recorder?.close().catch(() => {});
    this.recorder = undefined;
    await client?.close().catch(() => {});
    for (const fn of hooks) await fn().catch(() => {});
  }
}
