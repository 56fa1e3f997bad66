/**
 * Which tools the model is offered: the built-in set (file tools, search, and — when the
 * workspace has them — the knowledge base), if tools are on and the backend takes them
 * natively. Why none are offered is said by `/tools`.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import type { LLMClient, ToolSupport } from "../types.ts";
import { gitTool, runCommandTool } from "./exec_tools.ts";
import { FILE_TOOLS } from "./file_tools.ts";
import { hasKnowledgeBase, hasRagStore, kbSearchTool, ragSearchTool } from "./knowledge_tools.ts";
import { searchTool } from "./search_tool.ts";
import type { Tool } from "./tool.ts";

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

/** What the model is offered on `client`, and why nothing when nothing is. */
export async function offeredTools(
  agent: Agent,
  client: LLMClient,
): Promise<{ tools: Tool[]; why?: string }> {
  if (!agent.config.config.tools.enabled) {
    return { tools: [], why: "tools are off (/tools on turns them on)" };
  }
  const s = await toolSupportOf(client);
  if (!s.native) return { tools: [], why: s.reason };
  return { tools: await workspaceTools(agent) };
}
