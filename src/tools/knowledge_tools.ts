/**
 * `kb_search {query}`: the model's face of `/kb search`, offered when the workspace has a
 * knowledge base.
 *
 * @module
 */
import { describeError } from "../errors.ts";
import { KNOWLEDGE_DB, knowledgeBase } from "../commands/kb.ts";
import { argsSchema } from "./args.ts";
import { failed, type Tool } from "./tool.ts";

/** `kb_search {query}` */
export const kbSearchTool: Tool = {
  spec: {
    name: "kb_search",
    description: "Search the project's knowledge base (notes, findings, decisions) for words.",
    parameters: argsSchema({ query: { type: "string", description: "words to find" } }, ["query"]),
  },
  kind: "read",
  subject: (args) => String(args.query),
  async run(agent, args, ctx) {
    let hits;
    try {
      hits = (await knowledgeBase(agent)).search(String(args.query), { limit: 10 });
    } catch (err) {
      return failed(describeError(err));
    }
    if (!hits.length) {
      return {
        content: `Nothing in the knowledge base matches ${args.query}`,
        summary: "no matches",
      };
    }
    let content = "";
    let shown = 0;
    for (const { observation: o } of hits) {
      const entry = `[${o.kind} #${o.id}, project ${o.projectName}] ${o.body}\n`;
      if (content.length + entry.length > ctx.maxChars - 80) break;
      content += entry;
      shown++;
    }
    if (shown < hits.length) content += `[${hits.length - shown} more not shown]\n`;
    return { content, summary: `${hits.length} ${hits.length === 1 ? "note" : "notes"}` };
  },
};

/** Whether the workspace has a knowledge base for `kb_search` to search. */
export async function hasKnowledgeBase(
  agent: { workspace: { exists(p: string): Promise<boolean> } },
): Promise<boolean> {
  return await agent.workspace.exists(KNOWLEDGE_DB).catch(() => false);
}
