/**
 * The core types every part of Harvey shares.
 *
 * @module
 */

/** One call of a tool that a model asked for. */
export interface ToolCall {
  /** The id the backend gave the call (made up by Harvey when the backend gives none). */
  id: string;
  /** The tool's name, as the model wrote it (it may name no known tool). */
  name: string;
  /** The arguments as the JSON text the model wrote (it may not parse). */
  arguments: string;
}

/** One message of a conversation, as sent to a model. */
export interface Message {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  /** An assistant message's tool calls, in the order the model made them. */
  toolCalls?: ToolCall[];
  /** A tool message: the id of the call it answers. */
  toolCallId?: string;
  /** A tool message: the name of the tool that answered. */
  toolName?: string;
}

/** A tool the model may call: its name, what it does, and a JSON Schema of its arguments. */
export interface ToolSpec {
  name: string;
  description: string;
  /** A JSON Schema `object` with `properties` and `required`. */
  parameters: Record<string, unknown>;
}

/** Whether a backend takes tools natively, and why (for `/tools`). */
export interface ToolSupport {
  native: boolean;
  /** E.g. "the chat template supports tools (/props)", "qwen3 lists the tools capability". */
  reason: string;
  /**
   * The backend takes a GBNF grammar that constrains the reply (`grammar` of llama-server and
   * llamafile, `--grammar-file` of llama-completion): text-mode tool calls are then sent one.
   */
  grammar?: boolean;
}

/** What one reply cost: token counts and timing. Zero where a backend does not report it. */
export interface ChatStats {
  promptTokens: number;
  replyTokens: number;
  elapsedMs: number;
  tokensPerSec: number;
  /** Tokens of reasoning (`reasoning_content`, `<think>`), when the reply had any. */
  reasoningTokens?: number;
}

/** What a reply was, besides its streamed text: why it ended, and the tools it called. */
export interface ChatResult extends ChatStats {
  /**
   * Why the reply ended, as the backend said: `stop`, `length` (cut at `maxTokens` or the
   * window), `tool_calls`; undefined when the backend does not say.
   */
  finishReason?: string;
  /** Native tool calls of the reply, complete (their argument fragments joined). */
  toolCalls?: ToolCall[];
}

/** Options for one chat request. */
export interface ChatOptions {
  /** Aborts this request only. */
  signal?: AbortSignal;
  /** Called with each piece of the reply as it arrives. */
  onToken: (token: string) => void;
  /** Called with each piece of reasoning as it arrives; it is not part of the reply. */
  onReasoning?: (token: string) => void;
  /** The most tokens the reply may have (`max_tokens`); unset lets the server decide. */
  maxTokens?: number;
  /** Tools offered to the model through the backend's native tool calling. */
  tools?: ToolSpec[];
  /**
   * A GBNF grammar the reply must match (llama.cpp backends only: a client that cannot send
   * one ignores it). Text-mode tool calling sends one that allows prose or one well-formed call.
   */
  grammar?: string;
}

/** A model backend: Ollama, an OpenAI-compatible server, a one-shot CLI. */
export interface LLMClient {
  /** A short label such as `ollama:qwen3` or `llamafile:qwen-coding`. */
  readonly name: string;
  /** The model this client sends requests to. */
  readonly model: string;
  /** Streams a reply to `messages`, calling `onToken` as tokens arrive. */
  chat(messages: Message[], opts: ChatOptions): Promise<ChatResult>;
  /** The models the backend offers. */
  models(): Promise<string[]>;
  /** The context size (`n_ctx`) the server really uses, when it can tell. */
  contextWindow?(): Promise<number | undefined>;
  /** Counts the tokens of `text` with the server's own tokenizer, when it has one. */
  countTokens?(text: string): Promise<number | undefined>;
  /**
   * Counts a whole request as the server's chat template renders it (template tokens
   * included), when the server can tell; undefined when it cannot.
   */
  countPrompt?(messages: Message[], tools?: ToolSpec[]): Promise<number | undefined>;
  /** Whether this backend takes tools natively (undefined: it cannot tell, so it does not). */
  toolSupport?(): Promise<ToolSupport>;
  /**
   * Gets ready for a request: a client whose server starts with the first message starts it
   * here, so the window and the tokenizer measured before sending are the server's own.
   */
  prepare?(signal?: AbortSignal): Promise<void>;
  /**
   * Loads what the first request needs (a client library) ahead of it, e.g. while the person
   * types; never starts a server or sends anything.
   */
  warm?(): Promise<void>;
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

/**
 * Asks the user questions: in a terminal, in headless mode, or in a test. A question that is
 * not answered (Ctrl-C, Escape or Ctrl-D at a terminal; the input ending in a script) throws
 * `CancelledError` (`src/errors.ts`) — never a default, never a "no" — so the action it
 * guards is cancelled and a caller can tell "cancelled" from "declined".
 */
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
