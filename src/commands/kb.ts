/**
 * `/kb`: the workspace's knowledge base (`agents/knowledge.db`) — projects, observations,
 * concepts, full-text search, and injecting observations into the conversation. The database
 * is opened on first use (one connection, closed when the session ends); the current project
 * is session state.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError, UsageError } from "../errors.ts";
import {
  formatObservationContext,
  KnowledgeBase,
  type Observation,
  OBSERVATION_KINDS,
  parseObserveArgs,
  type Project,
  PROJECT_STATUSES,
} from "../store/knowledge.ts";
import type { Output } from "../types.ts";
import { type CommandHandler, required, subcommand } from "./registry.ts";
import { escapeControls } from "../util/terminal_text.ts";

/** Where the knowledge base lives, relative to the workspace. */
export const KNOWLEDGE_DB = "agents/knowledge.db";

const SUBCOMMANDS = ["status", "project", "observe", "concept", "search", "inject"];
const PROJECT_SUBS = ["list", "add", "use", "status"];
const CONCEPT_SUBS = ["list", "add", "link"];
const NO_PROJECT =
  "No current project: choose one with /kb project use ID (or add one with /kb project add NAME)";

interface KbSession {
  kb?: KnowledgeBase;
  /** The id of the project chosen with `/kb project use` in this session. */
  current?: number;
}

const sessions = new WeakMap<Agent, KbSession>();

function sessionOf(agent: Agent): KbSession {
  let s = sessions.get(agent);
  if (!s) {
    s = {};
    sessions.set(agent, s);
  }
  return s;
}

/**
 * The agent's knowledge base, opened on first use; the connection is closed at shutdown.
 *
 * @example
 * ```ts
 * const kb = await knowledgeBase(agent);
 * kb.listProjects();
 * ```
 */
export async function knowledgeBase(agent: Agent): Promise<KnowledgeBase> {
  const s = sessionOf(agent);
  if (s.kb) return s.kb;
  const kb = KnowledgeBase.open(await agent.workspace.resolve(KNOWLEDGE_DB));
  s.kb = kb;
  agent.onShutdown(() => {
    if (s.kb === kb) s.kb = undefined;
    kb.close();
    return Promise.resolve();
  });
  return kb;
}

/** The project chosen with `/kb project use` in this session, if it still exists. */
export function currentProject(agent: Agent, kb: KnowledgeBase): Project | undefined {
  const id = sessionOf(agent).current;
  if (id === undefined) return undefined;
  return kb.listProjects().find((p) => p.id === id);
}

/** `/kb …` */
export const kbCommand: CommandHandler = {
  freeText: true,
  subcommands: SUBCOMMANDS,
  complete(_agent, args) {
    if (args.length === 0) return SUBCOMMANDS;
    if (args.length === 1 && args[0] === "project") return PROJECT_SUBS;
    if (args.length === 1 && args[0] === "concept") return CONCEPT_SUBS;
    if (args.length === 1 && args[0] === "observe") return [...OBSERVATION_KINDS];
    if (args.length === 3 && args[0] === "project" && args[1] === "status") {
      return [...PROJECT_STATUSES];
    }
    return [];
  },
  async run(agent, args, out) {
    const sub = subcommand("/kb", args, SUBCOMMANDS, "status");
    const kb = await knowledgeBase(agent);
    const rest = args.slice(1);
    switch (sub) {
      case "status":
        return showStatus(agent, kb, out);
      case "project":
        return project(agent, kb, rest, out);
      case "observe":
        return observe(agent, kb, rest, out);
      case "concept":
        return concept(agent, kb, rest, out);
      case "search":
        return search(kb, rest, out);
      case "inject":
        return inject(agent, kb, rest, out);
    }
  },
};

function showStatus(agent: Agent, kb: KnowledgeBase, out: Output): void {
  const status = kb.status({ recent: 3 });
  const current = currentProject(agent, kb);
  const { projects, observations, concepts } = status.totals;
  out.write(
    `Knowledge base ${KNOWLEDGE_DB}: ${plural(projects, "project")}, ${
      plural(observations, "observation")
    }, ${plural(concepts, "concept")}\n`,
  );
  out.write(
    current
      ? `Current project: #${current.id} ${current.name}\n`
      : "No current project (choose one with /kb project use ID)\n",
  );
  for (const p of status.projects) {
    const mark = p.project.id === current?.id ? "*" : " ";
    const linked = p.concepts.length ? ` · concepts: ${p.concepts.join(", ")}` : "";
    out.write(
      `${mark} #${p.project.id} ${p.project.name} [${p.project.status}] · ${
        plural(p.observationCount, "observation")
      }${linked}\n`,
    );
    for (const o of p.recent) out.write(`    ${observationLine(o)}\n`);
  }
}

function project(agent: Agent, kb: KnowledgeBase, args: string[], out: Output): void {
  const sub = subcommand("/kb project", args, PROJECT_SUBS, "list");
  if (sub === "list") {
    const projects = kb.listProjects();
    if (projects.length === 0) {
      out.write("No projects yet (add one with /kb project add NAME [DESCRIPTION])\n");
      return;
    }
    const current = currentProject(agent, kb);
    for (const p of projects) {
      const desc = p.description ? ` — ${p.description}` : "";
      const mark = p.id === current?.id ? "*" : " ";
      out.write(
        `${mark} #${p.id} ${p.name} [${p.status}]${desc}${mark === "*" ? " (current)" : ""}\n`,
      );
    }
    // A project's status (active, paused, concluded) is not whether it is the current one.
    if (!current) out.write("No current project (choose one with /kb project use ID)\n");
  } else if (sub === "add") {
    const name = required(args[1], "/kb project add NAME [DESCRIPTION]");
    const p = kb.addProject(name, { description: args.slice(2).join(" ") });
    const session = sessionOf(agent);
    if (!currentProject(agent, kb)) {
      // The first project of a session is the one its observations go to.
      session.current = p.id;
      out.write(`Added project #${p.id} ${p.name}; it is the current project\n`);
      return;
    }
    out.write(`Added project #${p.id} ${p.name} (make it current with /kb project use ${p.id})\n`);
  } else if (sub === "use") {
    const id = parseId(required(args[1], "/kb project use ID"), "project");
    const p = kb.getProject(id);
    sessionOf(agent).current = p.id;
    out.write(`Current project: #${p.id} ${p.name}\n`);
  } else {
    const usage = `/kb project status ID ${PROJECT_STATUSES.join("|")}`;
    const id = parseId(required(args[1], usage), "project");
    const p = kb.setProjectStatus(id, required(args[2], usage));
    out.write(`Project #${p.id} ${p.name} is now ${p.status}\n`);
  }
}

function observe(agent: Agent, kb: KnowledgeBase, args: string[], out: Output): void {
  const { kind, text } = parseObserveArgs(args.join(" "));
  if (!text) throw new UsageError(`Usage: /kb observe [${OBSERVATION_KINDS.join("|")}] TEXT`);
  const current = needProject(agent, kb);
  const o = kb.observe(text, { kind, projectId: current.id });
  out.write(`Recorded ${o.kind} #${o.id} in project ${o.projectName}\n`);
}

function concept(agent: Agent, kb: KnowledgeBase, args: string[], out: Output): void {
  const sub = subcommand("/kb concept", args, CONCEPT_SUBS, "list");
  if (sub === "list") {
    const concepts = kb.listConcepts();
    if (concepts.length === 0) {
      out.write("No concepts yet (add one with /kb concept add NAME [DESCRIPTION])\n");
      return;
    }
    for (const c of concepts) {
      const desc = c.description ? ` — ${c.description}` : "";
      const projects = c.projects.length ? ` (projects: ${c.projects.join(", ")})` : "";
      out.write(`#${c.id} ${c.name}${desc}${projects}\n`);
    }
  } else if (sub === "add") {
    const name = required(args[1], "/kb concept add NAME [DESCRIPTION]");
    const c = kb.addConcept(name, { description: args.slice(2).join(" ") });
    out.write(`Added concept #${c.id} ${c.name}\n`);
  } else {
    const name = required(args.slice(1).join(" "), "/kb concept link CONCEPT");
    const current = needProject(agent, kb);
    const link = kb.linkConcept(name, { projectId: current.id });
    out.write(`Linked concept ${link.concept.name} to project ${link.project.name}\n`);
  }
}

function search(kb: KnowledgeBase, args: string[], out: Output): void {
  const text = required(args.join(" "), "/kb search TEXT");
  const hits = kb.search(text, { limit: 20 });
  if (hits.length === 0) {
    out.write(`No observations match "${text}"\n`);
    return;
  }
  for (const h of hits) {
    const o = h.observation;
    out.write(`#${o.id} ${o.kind} · ${o.projectName}: ${oneLine(h.snippet)}\n`);
  }
  out.write(
    `(${
      plural(hits.length, "match", "matches")
    }; add them to the conversation with /kb inject ID...)\n`,
  );
}

function inject(agent: Agent, kb: KnowledgeBase, args: string[], out: Output): void {
  const words = args.flatMap((a) => a.split(",")).filter(Boolean);
  if (words.length === 0) {
    throw new UsageError("Usage: /kb inject ID... (ids from /kb search or /kb status)");
  }
  const ids = [...new Set(words.map((w) => parseId(w.replace(/^#/, ""), "observation")))];
  const observations = kb.getObservations(ids);
  const label = `/kb inject ${ids.join(" ")}`;
  agent.addMessage("user", `[context: ${label}]\n\n${formatObservationContext(observations)}`);
  out.write(`Added ${plural(observations.length, "observation")} to the conversation\n`);
}

function needProject(agent: Agent, kb: KnowledgeBase): Project {
  const current = currentProject(agent, kb);
  if (!current) throw new HarveyError(NO_PROJECT);
  return current;
}

function parseId(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`Expected a ${what} id (a whole number from 1), found "${text}"`);
  }
  return Number(text);
}

function observationLine(o: Observation): string {
  const date = o.createdAt ? ` ${o.createdAt.toISOString().slice(0, 10)}` : "";
  const body = oneLine(o.body);
  return `#${o.id} ${o.kind}${date}: ${body.length > 100 ? `${body.slice(0, 99)}…` : body}`;
}

/** Stored text on one line, its control characters shown rather than obeyed. */
function oneLine(text: string): string {
  return escapeControls(text.replace(/\s+/g, " ").trim());
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
