/**
 * Which tools the model is offered, and how: the built-in set (file tools, search, commands,
 * git, and — when the workspace has them — the knowledge base), in the mode chosen for the
 * model (`src/tools/mode.ts`: native tool calling, the text protocol, or none). Under an 8k
 * window (small-context mode) fewer tools go, with shorter descriptions; `/tools` says what
 * is offered, why, and what it costs.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { replyReserve } from "../llm/budget.ts";
import type { LLMClient, ToolSpec, ToolSupport } from "../types.ts";
import type { ArgsSchema } from "./args.ts";
import { gitTool, runCommandTool } from "./exec_tools.ts";
import { FILE_TOOLS } from "./file_tools.ts";
import { toolCallGrammar } from "./grammar.ts";
import { hasKnowledgeBase, hasRagStore, kbSearchTool, ragSearchTool } from "./knowledge_tools.ts";
import { chooseMode, type ToolMode, type ToolModeSetting } from "./mode.ts";
import { searchTool } from "./search_tool.ts";
import { textProtocol } from "./text_protocol.ts";
import type { Tool } from "./tool.ts";

/** Windows smaller than this get the small-context tool set. */
export const SMALL_CONTEXT = 8192;

/** The tools of small-context mode, in the order they are given. */
export const SMALL_CONTEXT_TOOLS = [
  "read_file",
  "list_files",
  "search",
  "edit_file",
  "write_file",
  "run_command",
];

const support = new WeakMap<LLMClient, Promise<ToolSupport>>();

/** Whether `client` takes tools natively, asked once per client. */
export function toolSupportOf(client: LLMClient): Promise<ToolSupport> {
  let known = support.get(client);
  if (!known) {
    known = client.toolSupport
      ? client.toolSupport().catch((err) => ({
        native: false,
        reason: `${client.name} could not be asked (${err instanceof Error ? err.message : err})`,
      }))
      : Promise.resolve({ native: false, reason: `${client.name} has no native tool calling` });
    support.set(client, known);
  }
  return known;
}

/** Every tool this workspace has, whether or not the backend takes them. */
export async function workspaceTools(agent: Agent): Promise<Tool[]> {
  const tools: Tool[] = [
    ...FILE_TOOLS.slice(0, 2),
    searchTool,
    ...FILE_TOOLS.slice(2),
    runCommandTool,
    gitTool,
  ];
  if (await hasKnowledgeBase(agent)) tools.push(kbSearchTool);
  if (hasRagStore(agent)) tools.push(ragSearchTool);
  return tools;
}

/**
 * `tool` with its brief description and no per-argument descriptions (the argument names say
 * enough), for a small window.
 */
export function briefTool(tool: Tool): Tool {
  const schema = tool.spec.parameters as unknown as ArgsSchema;
  const properties = Object.fromEntries(
    Object.entries(schema.properties).map(([name, arg]) => [name, { type: arg.type }]),
  );
  const spec: ToolSpec = {
    name: tool.spec.name,
    description: tool.brief ?? tool.spec.description,
    parameters: { type: "object", properties, required: schema.required },
  };
  return { ...tool, spec };
}

/** The small-context set of `tools`, brief. */
export function smallContextTools(tools: readonly Tool[]): Tool[] {
  return SMALL_CONTEXT_TOOLS.map((name) => tools.find((t) => t.spec.name === name))
    .filter((t): t is Tool => t !== undefined).map(briefTool);
}

/** What the model is offered on a backend, and how. */
export interface ToolOffer {
  /** The tools offered (brief ones in small-context mode); empty: none. */
  tools: Tool[];
  /** How they go: native definitions, the text protocol, or not at all. */
  mode: ToolMode;
  setting: ToolModeSetting;
  /** Why this mode, or why no tools. */
  why: string;
  /** The backend's own word on native tools. */
  support?: ToolSupport;
  /** The window is under {@linkcode SMALL_CONTEXT}: fewer tools, shorter, smaller results. */
  small: boolean;
  window?: number;
  /** The system-prompt section of the text protocol for these tools. */
  section?: string;
  /** The grammar that constrains a text-mode reply, when the backend takes one. */
  grammar?: string;
}

const forms = new Map<string, { section: string; grammar?: string }>();

/**
 * The text protocol's section and grammar for `tools`, made once per set (the definitions are
 * constants; every turn asks, for the fallback to text mode).
 */
function textForms(
  tools: readonly Tool[],
  small: boolean,
  withGrammar: boolean,
): { section: string; grammar?: string } {
  const key = `${small}|${withGrammar}|${tools.map((t) => t.spec.name).join(",")}`;
  let known = forms.get(key);
  if (!known) {
    const specs = tools.map((t) => t.spec);
    known = {
      section: textProtocol(specs),
      grammar: withGrammar ? toolCallGrammar(specs) : undefined,
    };
    forms.set(key, known);
  }
  return known;
}

/**
 * What the model is offered on `client`: nothing when tools are off; else the mode chosen for
 * the model (`override`: this turn's, e.g. `/bench`'s), the tools (the small-context set under
 * an 8k window) and, for text mode, the prompt section and the grammar. Text-mode tools whose
 * section would take more than half the room for the request are not offered.
 */
export async function offeredTools(
  agent: Agent,
  client: LLMClient,
  opts: { override?: ToolModeSetting } = {},
): Promise<ToolOffer> {
  const setting = opts.override ?? agent.config.config.tools.modes[client.model] ?? "auto";
  if (!agent.config.config.tools.enabled && !opts.override) {
    return {
      tools: [],
      mode: "off",
      setting,
      why: "tools are off (/tools on turns them on)",
      small: false,
    };
  }
  const s = await toolSupportOf(client);
  const choice = await chooseMode(agent, client, { support: s, override: opts.override });
  const window = await client.contextWindow?.().catch(() => undefined);
  const small = window !== undefined && window < SMALL_CONTEXT;
  const base = { mode: choice.mode, setting, why: choice.why, support: s, small, window };
  if (choice.mode === "off") return { ...base, tools: [] };
  const all = await workspaceTools(agent);
  const tools = small ? smallContextTools(all) : all;
  const { section, grammar } = textForms(tools, small, s.grammar === true);
  if (choice.mode === "text" && window && agent.budget) {
    const room = window - replyReserve(window, agent.config.config.context.reply_reserve);
    const cost = await agent.budget.text(section, client).catch(() => 0);
    if (cost > room / 2) {
      return {
        ...base,
        tools: [],
        why: `${choice.why}; but stating the tools takes ${cost} tokens, more than half of the ` +
          `${room} left for the request in the ${window}-token window`,
      };
    }
  }
  return { ...base, tools, section, grammar };
}
