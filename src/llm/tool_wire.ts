/**
 * Tool calls on the wire, in the three native formats Harvey speaks: OpenAI-compatible
 * (`tools`, streamed `delta.tool_calls` whose arguments arrive in fragments, several calls by
 * index), Ollama (`tools`, `message.tool_calls` with arguments as an object) and Anthropic
 * (`tools` with `input_schema`, `tool_use` content blocks with `input_json_delta` fragments).
 * Harvey's own {@linkcode Message} and {@linkcode ToolCall} are the one shape in between.
 *
 * @module
 */
import type { Message, ToolCall, ToolSpec } from "../types.ts";

/** The most calls one reply may carry on the wire; more are not read. */
const MAX_CALLS = 1024;

/** A call id for a backend that gives none (Ollama), unique within a reply. */
export function madeUpCallId(index: number): string {
  return `call_${index}`;
}

// ── OpenAI-compatible ────────────────────────────────────────────────────────────────────

/** `tools` of a chat completion request. */
export function openAITools(specs: readonly ToolSpec[]): unknown[] {
  return specs.map((s) => ({
    type: "function",
    function: { name: s.name, description: s.description, parameters: s.parameters },
  }));
}

/**
 * Harvey's history as chat completion `messages`: an assistant message keeps its calls as
 * `tool_calls` (content `null` when it said nothing else), a tool message answers its call by
 * `tool_call_id`.
 */
export function openAIMessages(messages: readonly Message[]): unknown[] {
  return messages.map((m) => {
    if (m.role === "assistant" && m.toolCalls?.length) {
      return {
        role: "assistant",
        content: m.content || null,
        tool_calls: m.toolCalls.map((c) => ({
          id: c.id,
          type: "function",
          function: { name: c.name, arguments: c.arguments },
        })),
      };
    }
    if (m.role === "tool") {
      return m.toolCallId
        ? { role: "tool", tool_call_id: m.toolCallId, content: m.content }
        : { role: "user", content: m.content };
    }
    return { role: m.role, content: m.content };
  });
}

/** One element of a streamed `delta.tool_calls`. */
interface ToolCallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: unknown };
}

/**
 * Joins the `delta.tool_calls` fragments of a stream into whole calls: the first fragment of a
 * call (by `index`) brings its id and name, the rest bring pieces of the arguments' JSON text.
 * Tolerates what servers do: no `index` (one call at a time), the id repeated on every
 * fragment, arguments sent whole as an object.
 *
 * @example
 * ```ts
 * const acc = new ToolCallAccumulator();
 * acc.add([{ index: 0, id: "c1", function: { name: "read_file", arguments: '{"pa' } }]);
 * acc.add([{ index: 0, function: { arguments: 'th":"a.ts"}' } }]);
 * acc.calls(); // [{ id: "c1", name: "read_file", arguments: '{"path":"a.ts"}' }]
 * ```
 */
export class ToolCallAccumulator {
  readonly #calls: { id?: string; name: string; arguments: string }[] = [];
  #last = -1;

  /** Adds the `tool_calls` of one delta. */
  add(deltas: unknown): void {
    if (!Array.isArray(deltas)) return;
    for (const raw of deltas as ToolCallDelta[]) {
      if (typeof raw !== "object" || raw === null) continue;
      const fn = raw.function ?? {};
      // A small whole index is a call's place; anything else (a huge, negative or broken
      // one from a hostile server) is read as no index at all.
      const index = Number.isInteger(raw.index) && raw.index! >= 0 && raw.index! < MAX_CALLS
        ? raw.index!
        : this.#indexOf(raw.id, fn.name);
      if (index >= MAX_CALLS) continue;
      const call = this.#calls[index] ??= { name: "", arguments: "" };
      this.#last = index;
      if (typeof raw.id === "string" && raw.id) call.id ??= raw.id;
      if (typeof fn.name === "string" && fn.name && !call.name) call.name = fn.name;
      const args = fn.arguments;
      if (typeof args === "string") call.arguments += args;
      else if (args !== undefined && args !== null) call.arguments = JSON.stringify(args);
    }
  }

  /** Without an `index`: a new id, or a name when the last call has one, starts the next call. */
  #indexOf(id: unknown, name: unknown): number {
    const last = this.#calls[this.#last];
    const newId = typeof id === "string" && id !== "" && id !== last?.id;
    const newName = typeof name === "string" && name !== "" && last?.name !== "";
    return !last || newId || (newName && id === undefined) ? this.#last + 1 : this.#last;
  }

  /** The calls so far, in index order, with made-up ids where the server gave none. */
  calls(): ToolCall[] {
    return this.#calls.filter(Boolean).map((c, i) => ({
      id: c.id ?? madeUpCallId(i),
      name: c.name,
      arguments: c.arguments,
    }));
  }
}

// ── Ollama ───────────────────────────────────────────────────────────────────────────────

/** `tools` of an Ollama `/api/chat` request (the OpenAI shape). */
export const ollamaTools = openAITools;

/** A call's arguments as the object Ollama wants; text that is not a JSON object becomes `{}`. */
function argumentsObject(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

/** Harvey's history as Ollama `messages`: calls with arguments as objects, `tool_name` on results. */
export function ollamaMessages(messages: readonly Message[]): unknown[] {
  return messages.map((m) => {
    if (m.role === "assistant" && m.toolCalls?.length) {
      return {
        role: "assistant",
        content: m.content,
        tool_calls: m.toolCalls.map((c) => ({
          function: { name: c.name, arguments: argumentsObject(c.arguments) },
        })),
      };
    }
    if (m.role === "tool") {
      return { role: "tool", content: m.content, ...(m.toolName ? { tool_name: m.toolName } : {}) };
    }
    return { role: m.role, content: m.content };
  });
}

/** The calls of an Ollama `message.tool_calls` (ids made up from `start`, arguments as JSON text). */
export function ollamaToolCalls(raw: unknown, start = 0): ToolCall[] {
  if (!Array.isArray(raw)) return [];
  const calls: ToolCall[] = [];
  for (const c of raw) {
    const fn = (c as { function?: { name?: unknown; arguments?: unknown } })?.function;
    if (!fn || typeof fn.name !== "string") continue;
    const args = typeof fn.arguments === "string"
      ? fn.arguments
      : JSON.stringify(fn.arguments ?? {});
    const id = (c as { id?: unknown }).id;
    calls.push({
      id: typeof id === "string" && id ? id : madeUpCallId(start + calls.length),
      name: fn.name,
      arguments: args,
    });
  }
  return calls;
}

// ── Anthropic ────────────────────────────────────────────────────────────────────────────

/** `tools` of a Messages API request. */
export function anthropicTools(specs: readonly ToolSpec[]): unknown[] {
  return specs.map((s) => ({
    name: s.name,
    description: s.description,
    input_schema: s.parameters,
  }));
}

/** One content block of the Messages API. */
export type AnthropicBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> }
  | { type: "tool_result"; tool_use_id: string; content: string };

/** One turn of the Messages API. */
export interface AnthropicTurn {
  role: "user" | "assistant";
  content: string | AnthropicBlock[];
}

/**
 * Splits Harvey's history into Anthropic's `system` text and its turns: system messages join
 * `system`; an assistant message with calls becomes text and `tool_use` blocks; tool results
 * become `tool_result` blocks of a user turn; empty messages are dropped and consecutive turns
 * of one role are joined (the API wants the roles to alternate).
 *
 * @example
 * ```ts
 * anthropicMessages([{ role: "system", content: "Be brief" }, { role: "user", content: "Hi" }]);
 * // { system: "Be brief", messages: [{ role: "user", content: "Hi" }] }
 * ```
 */
export function anthropicMessages(
  messages: readonly Message[],
): { system: string; messages: AnthropicTurn[] } {
  const system: string[] = [];
  const turns: { role: "user" | "assistant"; blocks: AnthropicBlock[] }[] = [];
  const push = (role: "user" | "assistant", block: AnthropicBlock) => {
    const last = turns.at(-1);
    if (last?.role !== role) return void turns.push({ role, blocks: [block] });
    const prev = last.blocks.at(-1);
    if (block.type === "text" && prev?.type === "text") prev.text += `\n\n${block.text}`;
    else last.blocks.push(block);
  };
  for (const m of messages) {
    if (m.role === "system") {
      if (m.content.trim()) system.push(m.content);
      continue;
    }
    if (m.role === "tool" && m.toolCallId) {
      push("user", { type: "tool_result", tool_use_id: m.toolCallId, content: m.content });
      continue;
    }
    const role = m.role === "assistant" ? "assistant" : "user";
    if (m.content.trim()) push(role, { type: "text", text: m.content });
    for (const c of m.toolCalls ?? []) {
      push("assistant", {
        type: "tool_use",
        id: c.id,
        name: c.name,
        input: argumentsObject(c.arguments),
      });
    }
  }
  return {
    system: system.join("\n\n"),
    messages: turns.map((t) => ({
      role: t.role,
      content: t.blocks.length === 1 && t.blocks[0].type === "text" ? t.blocks[0].text : t.blocks,
    })),
  };
}

/** The `tool_use` blocks of a Messages API stream, joined from their `input_json_delta` parts. */
export class AnthropicToolAccumulator {
  readonly #blocks = new Map<number, { id: string; name: string; json: string }>();

  /** `content_block_start` with a `tool_use` block at `index`. */
  start(index: number, block: { id?: unknown; name?: unknown; input?: unknown }): void {
    const input = block.input && typeof block.input === "object" &&
        Object.keys(block.input).length
      ? JSON.stringify(block.input)
      : "";
    this.#blocks.set(index, {
      id: typeof block.id === "string" ? block.id : madeUpCallId(this.#blocks.size),
      name: typeof block.name === "string" ? block.name : "",
      json: input,
    });
  }

  /** `content_block_delta` with an `input_json_delta` for the block at `index`. */
  delta(index: number, partialJson: unknown): void {
    const block = this.#blocks.get(index);
    if (block && typeof partialJson === "string") block.json += partialJson;
  }

  /** The calls, in block order. */
  calls(): ToolCall[] {
    return [...this.#blocks.entries()].sort(([a], [b]) => a - b).map(([, b]) => ({
      id: b.id,
      name: b.name,
      arguments: b.json,
    }));
  }
}
