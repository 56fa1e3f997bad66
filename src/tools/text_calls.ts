/**
 * Tool calls a model printed as text instead of sending them natively — the most common way a
 * small local model "calls" a tool and nothing happens. Recognized forms: a fenced JSON object
 * `{"name": …, "arguments"|"parameters": …}`, Hermes/Qwen `<tool_call>…</tool_call>`, Mistral
 * `[TOOL_CALLS]`, Llama 3 `<|python_tag|>`, and a reply that is nothing but such a JSON object.
 * Only a reply that is a call, or ends in one, counts: a code block in the middle of an answer
 * is the answer, not a call. Results go back in the form the model used.
 *
 * @module
 */
import type { ToolCall } from "../types.ts";
import { madeUpCallId } from "../llm/tool_wire.ts";

/** How a model wrote its calls. */
export type TextCallForm = "hermes" | "mistral" | "llama3" | "json-block" | "json";

/** Calls found in a reply's text. */
export interface TextCalls {
  form: TextCallForm;
  calls: ToolCall[];
  /** The reply's text before the calls (what the user should see as the answer so far). */
  prose: string;
}

/** `{"name": "x", "arguments"|"parameters": {...}}` → a call, when `name` is a known tool. */
function callOf(value: unknown, known: ReadonlySet<string>, index: number): ToolCall | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  // `{"function": {"name", "arguments"}}` and `{"tool": …}` are seen too.
  const inner = typeof v.function === "object" && v.function !== null
    ? v.function as Record<string, unknown>
    : v;
  const name = inner.name ?? v.tool ?? v.tool_name;
  if (typeof name !== "string" || !known.has(name)) return undefined;
  const args = inner.arguments ?? inner.parameters ?? v.arguments ?? v.parameters ?? {};
  return {
    id: madeUpCallId(index),
    name,
    arguments: typeof args === "string" ? args : JSON.stringify(args),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Parses one JSON value, or a list of them; each must be a call of a known tool. */
function callsOf(json: string, known: ReadonlySet<string>, start: number): ToolCall[] | undefined {
  const value = parseJson(json.trim());
  const items = Array.isArray(value) ? value : [value];
  const calls: ToolCall[] = [];
  for (const item of items) {
    const call = callOf(item, known, start + calls.length);
    if (!call) return undefined;
    calls.push(call);
  }
  return calls.length ? calls : undefined;
}

const HERMES = /<tool_call>\s*([\s\S]*?)\s*(?:<\/tool_call>|$)/g;
const FENCE_AT_END =
  /(?:^|\n)[ ]{0,3}(`{3,}|~{3,})[ \t]*(?:json|tool_call|tool)?[ \t]*\n([\s\S]*?)\n[ ]{0,3}\1[ \t]*$/;

/**
 * The tool calls `reply` holds as text, for the tools named in `known`; undefined when it holds
 * none (or only in the middle of other text). A malformed call (broken JSON, an unknown tool)
 * is not a call: the reply stays a plain answer.
 *
 * @example
 * ```ts
 * findTextCalls('<tool_call>{"name":"read_file","arguments":{"path":"a.ts"}}</tool_call>', new Set(["read_file"]));
 * // { form: "hermes", prose: "", calls: [{ id: "call_0", name: "read_file", arguments: '{"path":"a.ts"}' }] }
 * ```
 */
export function findTextCalls(reply: string, known: ReadonlySet<string>): TextCalls | undefined {
  const text = reply.trimEnd();
  // Hermes / Qwen: one or more <tool_call> blocks, the last at the end.
  const first = text.indexOf("<tool_call>");
  if (first >= 0) {
    const calls: ToolCall[] = [];
    for (const m of text.slice(first).matchAll(HERMES)) {
      const found = callsOf(m[1], known, calls.length);
      if (!found) return undefined;
      calls.push(...found);
    }
    const rest = text.slice(first).replace(HERMES, "").trim();
    if (calls.length && rest === "") {
      return { form: "hermes", calls, prose: text.slice(0, first).trim() };
    }
    return undefined;
  }
  // Mistral: `[TOOL_CALLS] [{…}]`, or (v11) `[TOOL_CALLS]name[ARGS]{…}`, repeated.
  const mistral = text.indexOf("[TOOL_CALLS]");
  if (mistral >= 0) {
    const body = text.slice(mistral + "[TOOL_CALLS]".length).trim();
    const prose = text.slice(0, mistral).trim();
    if (body.includes("[ARGS]")) {
      const calls: ToolCall[] = [];
      for (const part of body.split("[TOOL_CALLS]").map((p) => p.trim())) {
        const m = /^([A-Za-z_][\w-]*)\[ARGS\]([\s\S]*)$/.exec(part);
        if (!m || !known.has(m[1]) || parseJson(m[2].trim()) === undefined) return undefined;
        calls.push({ id: madeUpCallId(calls.length), name: m[1], arguments: m[2].trim() });
      }
      return { form: "mistral", calls, prose };
    }
    const calls = callsOf(body, known, 0);
    return calls ? { form: "mistral", calls, prose } : undefined;
  }
  // Llama 3: `<|python_tag|>{…}` (several separated by `;`), at the end.
  const tag = text.indexOf("<|python_tag|>");
  if (tag >= 0) {
    const body = text.slice(tag + "<|python_tag|>".length).replace(/<\|eom_id\|>|<\|eot_id\|>/g, "")
      .trim();
    const calls: ToolCall[] = [];
    for (const part of body.split(/;\s*(?=\{)/)) {
      const found = callsOf(part, known, calls.length);
      if (!found) return undefined;
      calls.push(...found);
    }
    return { form: "llama3", calls, prose: text.slice(0, tag).trim() };
  }
  // A fenced JSON block that ends the reply.
  const fence = FENCE_AT_END.exec(text);
  if (fence) {
    const calls = callsOf(fence[2], known, 0);
    if (calls) return { form: "json-block", calls, prose: text.slice(0, fence.index).trim() };
    return undefined;
  }
  // The whole reply is one call (Llama 3.1's JSON tool calling, or a model being terse).
  if (text.trimStart().startsWith("{") || text.trimStart().startsWith("[")) {
    const calls = callsOf(text, known, 0);
    if (calls) return { form: "json", calls, prose: "" };
  }
  return undefined;
}

/**
 * A tool's result as text in the form the model called it, for a model that has no native
 * tool messages.
 *
 * @example
 * ```ts
 * textResult("hermes", "read_file", "x = 1\n"); // "<tool_response>\n{\"name\": \"read_file\", \"content\": \"x = 1\\n\"}\n</tool_response>"
 * ```
 */
export function textResult(form: TextCallForm, name: string, content: string): string {
  const json = JSON.stringify({ name, content });
  switch (form) {
    case "hermes":
      return `<tool_response>\n${json}\n</tool_response>`;
    case "mistral":
      return `[TOOL_RESULTS]${json}[/TOOL_RESULTS]`;
    case "llama3":
      return `<|python_tag|>result of ${name}:\n${content}`;
    default:
      return `Result of ${name}:\n\`\`\`\n${content.replace(/```/g, "ʼʼʼ")}\n\`\`\``;
  }
}
