/**
 * `/bench` and `harvey bench`: each chosen local model (registered llamafiles and GGUF files,
 * Ollama's models, a server already running at the llamafile URL) is started the way Harvey
 * always starts it, then measured — load time, time to the first token, prompt and generation
 * tokens per second — and given the built-in tool tasks (`tasks.ts`) in a scratch workspace,
 * in native mode (when its backend takes tools) and in text mode, through the same turn a
 * prompt takes. One model failing is recorded and the next one measured; Ctrl-C stops the
 * model being measured and keeps the results so far.
 *
 * @module
 */
import { join } from "node:path";
import type { Agent } from "../agent.ts";
import { LocalModelSource } from "../commands/model_registry.ts";
import { CancelledError, describeError, HarveyError } from "../errors.ts";
import { fitRequest } from "../llm/fit.ts";
import { isAbort } from "../llm/errors.ts";
import { BufferOutput } from "../repl/output.ts";
import { waitIndicator } from "../repl/spinner.ts";
import { runPrompt } from "../repl/turn.ts";
import { createSession } from "../session.ts";
import { toolSupportOf } from "../tools/index.ts";
import { describeScores, type ToolMode } from "../tools/mode.ts";
import type { LLMClient, Message, Output } from "../types.ts";
import { type ModelBenchResult, type ModeScore, saveBenchResults } from "./results.ts";
import { type BenchTask, benchTasks, type Draw } from "./tasks.ts";

/** A model `/bench` can measure. */
export interface BenchTarget {
  model: string;
  source: string;
  /** Starts (or finds) it, as `/model` would, without asking anything. */
  connect(opts: { out: Output; signal?: AbortSignal; terminal?: boolean }): Promise<LLMClient>;
}

/** Options of {@linkcode benchModels}. */
export interface BenchOptions {
  /** Progress goes here; the table too. */
  out: Output;
  signal?: AbortSignal;
  /** The output is a terminal: progress is one redrawn line. */
  terminal?: boolean;
  /** Only these modes (default both; native only where the backend takes tools). */
  modes?: ToolMode[];
  /** Run only the first N tasks (default all ten). */
  tasks?: number;
  /** The longest one task may take, in ms (default 3 minutes: a slow model is real). */
  taskTimeoutMs?: number;
  /** The random source of the tasks' words (tests fix it). */
  draw?: Draw;
}

/** The most tool calls one task may make. */
const TASK_MAX_CALLS = 8;
/** Tokens asked for in the speed test. */
const SPEED_TOKENS = 64;
/** What the speed test sends: a prompt long enough for its processing to be measured. */
const SPEED_PROMPT = [
  "Here is a short passage about a harbour town.",
  ...Array.from(
    { length: 12 },
    (_, i) =>
      `On day ${i + 1} the fishing boats left before dawn, the nets were mended on the quay, ` +
      "the bakery sold out of bread by noon, and the lighthouse keeper wrote the weather down.",
  ),
  "Summarize the passage in one sentence.",
].join("\n");

/**
 * The local models of the session's sources (a registry's models are not started to list
 * them), or those named in `names` (exactly, or by a unique prefix); embedding models are left
 * out unless named. A name that matches nothing is an error that lists what there is.
 */
export async function benchTargets(agent: Agent, names: string[] = []): Promise<BenchTarget[]> {
  const all: BenchTarget[] = [];
  for (const source of agent.sources) {
    if (source instanceof LocalModelSource) {
      const { registry, backend, session } = source;
      for (const entry of [...(session ? [session] : []), ...registry.entries]) {
        all.push({
          model: entry.name,
          source: registry.kind.label,
          connect: ({ out, signal, terminal }) =>
            backend.connect(entry, out, {
              ask: false,
              signal,
              terminal,
              announce: `Starting ${entry.name}`,
            }),
        });
      }
      continue;
    }
    const listed = await source.list(AbortSignal.timeout(5_000)).catch(() => []);
    for (const c of listed) {
      all.push({
        model: c.model,
        source: c.source,
        connect: ({ signal, terminal }) => c.connect({ signal, terminal }),
      });
    }
  }
  const unique = all.filter((t, i) => all.findIndex((u) => u.model === t.model) === i);
  if (!names.length) return unique.filter((t) => !/embed/i.test(t.model));
  return names.map((name) => {
    const exact = unique.find((t) => t.model === name);
    const loose = unique.filter((t) => t.model.toLowerCase().startsWith(name.toLowerCase()));
    const found = exact ?? (loose.length === 1 ? loose[0] : undefined);
    if (found) return found;
    const known = unique.map((t) => t.model).join(", ") || "none";
    throw new HarveyError(
      `No local model named "${name}"${
        loose.length > 1 ? ` (it could be ${loose.map((t) => t.model).join(" or ")})` : ""
      } — the models are: ${known}`,
    );
  });
}

/** A scratch workspace, and a session in it whose tools work on it. */
async function scratchSession(agent: Agent): Promise<{ scratch: Agent; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "harvey-bench-" });
  await Deno.mkdir(join(dir, "agents"));
  await Deno.writeTextFile(
    join(dir, "agents", "harvey.yaml"),
    `# The scratch workspace of /bench: removed when it ends\ntools:\n  max_calls: ${TASK_MAX_CALLS}\n`,
  );
  try {
    const scratch = await createSession({
      flags: { workdir: dir, yes: true, color: false },
      env: agent.env,
      cwd: dir,
      asker: agent.asker,
      err: new BufferOutput(),
      trust: "all",
    });
    return { scratch, dir };
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}

/** Empties the scratch workspace (but its `agents/`) and writes `files`. */
async function resetWorkspace(dir: string, files: Record<string, string>): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name !== "agents") await Deno.remove(join(dir, e.name), { recursive: true });
  }
  for (const [path, text] of Object.entries(files)) {
    const abs = join(dir, path);
    await Deno.mkdir(join(abs, ".."), { recursive: true });
    await Deno.writeTextFile(abs, text);
  }
}

/** Time to the first token, and the rates, of one short request. */
async function measureSpeed(
  scratch: Agent,
  client: LLMClient,
  signal?: AbortSignal,
): Promise<{ ttftMs: number; promptTps?: number; genTps?: number }> {
  const messages: Message[] = [{ role: "user", content: SPEED_PROMPT }];
  const fitted = await fitRequest(scratch, client, messages, { err: new BufferOutput(), signal });
  let first = 0;
  const started = performance.now();
  const mark = () => first ||= performance.now();
  const result = await client.chat(fitted.messages, {
    signal,
    maxTokens: Math.min(SPEED_TOKENS, fitted.maxTokens ?? SPEED_TOKENS),
    onToken: mark,
    onReasoning: mark,
  });
  const ttftMs = (first || performance.now()) - started;
  return {
    ttftMs,
    promptTps: result.promptTokens && ttftMs > 0
      ? result.promptTokens / (ttftMs / 1000)
      : undefined,
    genTps: result.tokensPerSec || undefined,
  };
}

/** Runs `tasks` in one mode; `step` is told of each task as it starts. */
async function runTasks(
  scratch: { agent: Agent; dir: string },
  client: LLMClient,
  opts: {
    mode: ToolMode;
    tasks: BenchTask[];
    signal?: AbortSignal;
    timeoutMs: number;
    step: (text: string) => void;
  },
): Promise<ModeScore> {
  let passed = 0;
  for (const [i, task] of opts.tasks.entries()) {
    opts.signal?.throwIfAborted();
    opts.step(`${opts.mode} mode, task ${i + 1}/${opts.tasks.length} (${passed} passed)`);
    await resetWorkspace(scratch.dir, task.files);
    scratch.agent.clearHistory();
    const limit = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, limit]) : limit;
    const io = { out: new BufferOutput(), err: new BufferOutput(), spinner: false, color: false };
    try {
      await runPrompt(scratch.agent, task.prompt, { ...io, signal }, {
        client,
        toolMode: opts.mode,
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      continue; // the request failed: the task is not done
    }
    opts.signal?.throwIfAborted();
    const answer = scratch.agent.history.findLast((m) => m.role === "assistant")?.content ?? "";
    const read = (path: string) =>
      Deno.readTextFile(join(scratch.dir, path)).catch(() => undefined);
    if (await task.check({ answer, read }).catch(() => false)) passed++;
  }
  return { passed, total: opts.tasks.length };
}

/** Measures one model; a failure is the result's `error`. Throws only when cancelled. */
async function benchOne(
  agent: Agent,
  target: BenchTarget,
  scratch: { agent: Agent; dir: string },
  opts: BenchOptions & { step: (text: string) => void; tasks: number },
): Promise<ModelBenchResult> {
  const result: ModelBenchResult = {
    model: target.model,
    source: target.source,
    at: new Date().toISOString(),
  };
  let client: LLMClient | undefined;
  try {
    opts.step("starting");
    // The model in use is measured as it is (a second server of it would double its memory);
    // its load time is then not known.
    const current = agent.client?.model === target.model ? agent.client : undefined;
    const started = performance.now();
    client = current ?? await target.connect({ out: new BufferOutput(), signal: opts.signal });
    await client.prepare?.(opts.signal);
    let loadMs: number | undefined = performance.now() - started;
    if (current) loadMs = undefined;
    else if (!client.prepare) {
      // Nothing was started here (Ollama loads a model with its first request).
      const warm = performance.now();
      await client.chat([{ role: "user", content: "Say OK." }], {
        signal: opts.signal,
        maxTokens: 4,
        onToken: () => {},
      });
      loadMs = (loadMs ?? 0) + performance.now() - warm;
    }
    result.loadMs = loadMs;
    opts.step("measuring speed");
    Object.assign(result, await measureSpeed(scratch.agent, client, opts.signal));
    const support = await toolSupportOf(client);
    const tasks = benchTasks(opts.draw).slice(0, opts.tasks);
    const modes = (opts.modes ?? ["native", "text"]).filter((m) =>
      m !== "native" || support.native
    );
    for (const mode of modes) {
      const score = await runTasks(scratch, client, {
        mode,
        tasks,
        signal: opts.signal,
        timeoutMs: opts.taskTimeoutMs ?? 180_000,
        step: opts.step,
      });
      if (mode === "native") result.native = score;
      else if (mode === "text") result.text = score;
    }
  } catch (err) {
    if (opts.signal?.aborted || err instanceof CancelledError) throw err;
    result.error = describeError(err).split("\n")[0];
  } finally {
    // A model this bench started is stopped; the one in use stays.
    if (client && client !== agent.client) await client.close().catch(() => {});
  }
  return result;
}

/**
 * Measures `targets` one after the other, says each result as it comes, keeps them in the
 * knowledge base and returns them. Ctrl-C (`signal`) stops at once: what was measured is kept,
 * and a `CancelledError` says so.
 */
export async function benchModels(
  agent: Agent,
  targets: BenchTarget[],
  opts: BenchOptions,
): Promise<ModelBenchResult[]> {
  const { out } = opts;
  if (!targets.length) {
    throw new HarveyError(
      "No local model to measure: register one (/llamafile add, /llamacpp add) or pull one " +
        "into Ollama",
    );
  }
  const total = Math.max(1, Math.min(opts.tasks ?? 10, 10));
  const { scratch, dir } = await scratchSession(agent);
  const results: ModelBenchResult[] = [];
  try {
    for (const [i, target] of targets.entries()) {
      const label = `Benchmarking ${target.model} (${i + 1} of ${targets.length})`;
      const wait = waitIndicator(out, {
        message: label,
        terminal: opts.terminal,
        color: agent.settings.color,
      });
      let r: ModelBenchResult;
      try {
        r = await benchOne(agent, target, { agent: scratch, dir }, {
          ...opts,
          tasks: total,
          step: (text) => wait.detail(text),
        });
      } catch (err) {
        wait.stop();
        await saveBenchResults(agent, results);
        if (isAbort(err, opts.signal) || opts.signal?.aborted || err instanceof CancelledError) {
          const kept = results.length === 1
            ? "; the model measured before is kept (/bench results)"
            : results.length
            ? `; the ${results.length} models measured before are kept (/bench results)`
            : "";
          throw new CancelledError(`Cancelled: /bench stopped at ${target.model}${kept}`);
        }
        throw err;
      }
      wait.stop();
      results.push(r);
      out.write(
        r.error
          ? `✗ ${target.model}: ${r.error}\n`
          : `✓ ${target.model}: tool tasks ${describeScores(r)}\n`,
      );
    }
  } finally {
    await scratch.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  await saveBenchResults(agent, results);
  agent.audit?.record("bench", results.map((r) => r.model).join(", "), "success");
  return results;
}
