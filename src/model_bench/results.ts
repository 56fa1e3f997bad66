/**
 * What `/bench` measured for a model, kept in the workspace's knowledge base
 * (`agents/knowledge.db`): one observation (kind `finding`) per model and run in the project
 * `model-bench`, a line people can read and search (`/kb search bench`) that carries the
 * figures as JSON for `/tools mode auto` to read back. And the table that shows them.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { knowledgeBase } from "../commands/kb.ts";
import { hasKnowledgeBase } from "../tools/knowledge_tools.ts";

/** The knowledge-base project that holds the results. */
export const BENCH_PROJECT = "model-bench";

/** Tool tasks passed of those run, in one mode. */
export interface ModeScore {
  passed: number;
  total: number;
}

/** One model's figures from one run of `/bench`. */
export interface ModelBenchResult {
  /** The model's name, as `/model` and `/tools mode` know it. */
  model: string;
  /** Where it came from: `llamafile`, `gguf`, `ollama`, … */
  source: string;
  /** From asking for it to its server being ready (or its first reply, when nothing starts). */
  loadMs?: number;
  /** From sending a request to its first token, the model loaded. */
  ttftMs?: number;
  /** Prompt tokens per second (the prompt over the time to the first token). */
  promptTps?: number;
  /** Reply tokens per second. */
  genTps?: number;
  /** Tool tasks in native mode; undefined when the backend takes no native tools. */
  native?: ModeScore;
  /** Tool tasks in text mode. */
  text?: ModeScore;
  /** Why the model could not be measured. */
  error?: string;
  /** When it was measured (ISO 8601). */
  at: string;
}

const MARK = /<!-- harvey-bench (\{.*\}) -->/;

const seconds = (ms?: number) =>
  ms === undefined ? "—" : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
const rate = (n?: number) => n === undefined || !Number.isFinite(n) ? "—" : `${Math.round(n)}`;
const score = (s?: ModeScore) => s ? `${s.passed}/${s.total}` : "—";

/** The readable line of a result, as the knowledge base keeps it. */
export function describeResult(r: ModelBenchResult): string {
  if (r.error) return `bench ${r.model} (${r.source}): failed — ${r.error}`;
  return `bench ${r.model} (${r.source}): load ${seconds(r.loadMs)}, first token ${
    seconds(r.ttftMs)
  }, prompt ${rate(r.promptTps)} tok/s, generation ${rate(r.genTps)} tok/s; tool tasks native ${
    score(r.native)
  }, text ${score(r.text)}`;
}

/** Keeps `results` in the knowledge base (creating it, and its project, when needed). */
export async function saveBenchResults(agent: Agent, results: ModelBenchResult[]): Promise<void> {
  if (!results.length) return;
  const kb = await knowledgeBase(agent);
  const project = kb.listProjects().find((p) => p.name === BENCH_PROJECT) ??
    kb.addProject(BENCH_PROJECT, {
      description: "what /bench measured: speed and tool-call success per model",
    });
  for (const r of results) {
    kb.observe(`${describeResult(r)}\n<!-- harvey-bench ${JSON.stringify(r)} -->`, {
      kind: "finding",
      projectId: project.id,
    });
  }
}

/** Parses the figures an observation carries; undefined when it carries none. */
function parse(body: string): ModelBenchResult | undefined {
  const m = MARK.exec(body);
  if (!m) return undefined;
  try {
    const v = JSON.parse(m[1]) as ModelBenchResult;
    return typeof v.model === "string" && typeof v.at === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The latest result of every model measured in this workspace (newest first), or of `model`
 * only; none when the workspace has no knowledge base (it is not created to find out).
 */
export async function benchResults(agent: Agent, model?: string): Promise<ModelBenchResult[]> {
  if (!await hasKnowledgeBase(agent)) return [];
  const kb = await knowledgeBase(agent);
  const project = kb.listProjects().find((p) => p.name === BENCH_PROJECT);
  if (!project) return [];
  const seen = new Set<string>();
  const out: ModelBenchResult[] = [];
  for (const o of kb.listObservations(project.id)) {
    const r = parse(o.body);
    if (!r || seen.has(r.model) || (model !== undefined && r.model !== model)) continue;
    seen.add(r.model);
    out.push(r);
  }
  return out;
}

/** The latest result for `model`, if it was measured. */
export async function latestBench(
  agent: Agent,
  model: string,
): Promise<ModelBenchResult | undefined> {
  return (await benchResults(agent, model))[0];
}

/**
 * The results as an aligned table: model, source, load, first token, prompt and generation
 * tok/s, tool tasks passed in native and text mode; a failed model says why on its row.
 */
export function formatBenchTable(results: readonly ModelBenchResult[]): string {
  const header = [
    "model",
    "source",
    "load",
    "1st token",
    "prompt t/s",
    "gen t/s",
    "native",
    "text",
  ];
  const rows = results.map((r) =>
    r.error ? [r.model, r.source, `failed: ${r.error}`] : [
      r.model,
      r.source,
      seconds(r.loadMs),
      seconds(r.ttftMs),
      rate(r.promptTps),
      rate(r.genTps),
      score(r.native),
      score(r.text),
    ]
  );
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.filter((r) => r.length > 3 || i < 2).map((r) => r[i]?.length ?? 0))
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => i < cells.length - 1 ? c.padEnd(widths[i]) : c).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "─".repeat(w))), ...rows.map(line)].join("\n") +
    "\n";
}
