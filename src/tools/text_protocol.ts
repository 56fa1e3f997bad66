/**
 * The text protocol of tool calling, for backends without native tools: a compact section of
 * the system prompt that states the tools (one line each) and the one call format, Hermes
 * `<tool_call>{json}</tool_call>`, which `findTextCalls` reads back and `textResult` answers
 * with `<tool_response>`. It travels in the system message, so the window fit counts it like
 * any other text.
 *
 * @module
 */
import type { ArgsSchema } from "./args.ts";
import type { Message, ToolSpec } from "../types.ts";

/** The first line of the section, which also marks a system message that carries one. */
export const TOOLS_HEADING = "## Tools";

/** One tool as a line: `- read_file(path, offset?: integer): Read a text file.` */
function toolLine(spec: ToolSpec): string {
  const schema = spec.parameters as unknown as ArgsSchema;
  const args = Object.entries(schema.properties ?? {}).map(([name, arg]) =>
    `${name}${schema.required?.includes(name) ? "" : "?"}${
      arg.type === "string" ? "" : `: ${arg.type}`
    }`
  );
  return `- ${spec.name}(${args.join(", ")}): ${spec.description}`;
}

/**
 * The system-prompt section that states `specs` and how to call them.
 *
 * @example
 * ```ts
 * textProtocol([readFileTool.spec]);
 * // "## Tools\nYou can use these tools. To use one, end your reply with exactly one call: …"
 * ```
 */
export function textProtocol(specs: readonly ToolSpec[]): string {
  const example = specs[0]?.name ?? "read_file";
  return [
    TOOLS_HEADING,
    "You can use these tools. To use one, end your reply with exactly one call:",
    `<tool_call>{"name": "${example}", "arguments": {…}}</tool_call>`,
    "Its result comes back in <tool_response>; then go on. A reply without a call is your answer.",
    ...specs.map(toolLine),
  ].join("\n");
}

/**
 * `messages` with `section` added to the system message (a new first message when there is
 * none); the messages themselves are not changed.
 */
export function withSystemSection(messages: readonly Message[], section: string): Message[] {
  const [first, ...rest] = messages;
  if (first?.role === "system") {
    const content = first.content.trim() ? `${first.content.trimEnd()}\n\n${section}` : section;
    return [{ ...first, content }, ...rest];
  }
  return [{ role: "system", content: section }, ...messages];
}
