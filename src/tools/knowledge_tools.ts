/**
 * `kb_search {query}` and `rag_search {query}`: the model's faces of `/kb search` and of the
 * retrieval RAG does before a prompt, offered when the workspace has a knowledge base or an
 * active RAG store.
 *
 * @module
 */
import { describeError } from "../errors.ts";
import type { Agent } from "../agent.ts";
import { KNOWLEDGE_DB, knowledgeBase } from "../commands/kb.ts";
import { activeEntry, retrievalFailure, retrieve } from "../commands/rag.ts";
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
export async function hasKnowledgeBase(agent: Agent): Promise<boolean> {
  return await agent.workspace.exists(KNOWLEDGE_DB).catch(() => false);
}

/** `rag_search {query}` */
export const ragSearchTool: Tool = {
  spec: {
    name: "rag_search",
    description: "Find the passages of the indexed documents closest in meaning to a query.",
    parameters: argsSchema({ query: { type: "string", description: "what to look for" } }, [
      "query",
    ]),
  },
  kind: "read",
  subject: (args) => String(args.query),
  async run(agent, args, ctx) {
    let found;
    try {
      found = await retrieve(agent, String(args.query), { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      return failed(`The RAG store cannot be searched: ${retrievalFailure(err)}`);
    }
    if (!found.chunks.length) {
      return {
        content: `Nothing in the store ${found.store} is close to ${args.query}`,
        summary: "no passages",
      };
    }
    let content = "";
    let shown = 0;
    for (const c of found.chunks) {
      const entry = `[${c.source}, score ${c.score.toFixed(2)}]\n${c.content}\n\n`;
      if (content.length + entry.length > ctx.maxChars - 80) break;
      content += entry;
      shown++;
    }
    if (shown < found.chunks.length) content += `[${found.chunks.length - shown} more not shown]\n`;
    return { content, summary: `${shown} ${shown === 1 ? "passage" : "passages"}` };
  },
};

/** Whether the workspace has an active RAG store for `rag_search` to search. */
export function hasRagStore(agent: Agent): boolean {
  return activeEntry(agent) !== undefined;
}
