/**
 * The core types every part of Harvey shares.
 *
 * @module
 */

/** One message of a conversation, as sent to a model. */
export interface Message {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
}

/** What one reply cost: token counts and timing. Zero where a backend does not report it. */
export interface ChatStats {
  promptTokens: number;
  replyTokens: number;
  elapsedMs: number;
  tokensPerSec: number;
}

/** Options for one chat request. */
export interface ChatOptions {
  /** Aborts this request only. */
  signal?: AbortSignal;
  /** Called with each piece of the reply as it arrives. */
  onToken: (token: string) => void;
}

/** A model backend: Ollama, an OpenAI-compatible server, a one-shot CLI. */
export interface LLMClient {
  /** A short label such as `ollama:qwen3` or `llamafile:qwen-coding`. */
  readonly name: string;
  /** The model this client sends requests to. */
  readonly model: string;
  /** Streams a reply to `messages`, calling `onToken` as tokens arrive. */
  chat(messages: Message[], opts: ChatOptions): Promise<ChatStats>;
  /** The models the backend offers. */
  models(): Promise<string[]>;
  /** The context size (`n_ctx`) the server really uses, when it can tell. */
  contextWindow?(): Promise<number | undefined>;
  /** Counts the tokens of `text` with the server's own tokenizer, when it has one. */
  countTokens?(text: string): Promise<number | undefined>;
  /** Stops whatever this client started. */
  close(): Promise<void>;
}

/** Where a command writes what it has to say. */
export interface Output {
  write(text: string): void;
}

/** One choice of a picker. */
export interface Choice<T> {
  /** What the user sees. */
  label: string;
  value: T;
}

/** Asks the user questions: in a terminal, in headless mode, or in a test. */
export interface Asker {
  /** A yes/no question; an empty answer takes `defaultYes`. */
  confirm(question: string, defaultYes?: boolean): Promise<boolean>;
  /** A line of free text; an empty answer takes `defaultValue` when given. */
  input(question: string, defaultValue?: string): Promise<string>;
  /**
   * Picks one of `choices`. With `other`, the user may instead type free text (a path, a
   * name), which is returned as `{ other: text }`.
   */
  pick<T>(
    question: string,
    choices: Choice<T>[],
    opts?: { other?: string },
  ): Promise<{ value: T } | { other: string }>;
}
