/**
 * Warm resume: the time to the first token of the first turn after a session is resumed on a
 * llama-server that has just started (its cache empty), with the saved slot cache restored
 * (`src/session/warm.ts`) against without (the prompt evaluated again). The fake llama-server
 * (`test/fixtures/fake_openai.ts`, in this process) charges `PROMPT_MS_PER_TOKEN` for every
 * prompt token outside the slot's cache and a twentieth of that per token restored, and reuses
 * the longest common prefix the way llama-server does; the conversation is 30 turns (about
 * 3,000 tokens).
 *
 * Both paths are Harvey's own: a real session (`createSession`), `saveWarm` when the first
 * session is left, then per trial a fresh server, the conversation put back, `restoreWarm` or
 * not, and `runPrompt` to the first token (window fit with the server's template and tokenizer
 * included). Interleaved, medians of `RUNS`.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/warm_resume_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import { type BenchResult, median } from "./result.ts";
import { printResults } from "./run_all.ts";
import type { Agent } from "../src/agent.ts";
import { LazyServerClient } from "../src/llm/lazy_server_client.ts";
import { LineAsker } from "../src/repl/asker.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { runPrompt } from "../src/repl/turn.ts";
import type { TurnDisplay } from "../src/repl/turn_view.ts";
import type { RunningServer } from "../src/runtime/server.ts";
import { currentLog } from "../src/session/current.ts";
import { restoreWarm, saveWarm, slotSavePath } from "../src/session/warm.ts";
import { createSession } from "../src/session.ts";
import type { Message } from "../src/types.ts";
import { type FakeOpenAI, startFakeOpenAI } from "../test/fixtures/fake_openai.ts";

const RUNS = 5;
const TURNS = 30;
const PROMPT_MS_PER_TOKEN = 0.25;
const round = (n: number) => Math.round(n * 10) / 10;

/** A client of the in-process fake, as Harvey's llama-server client sees a server it started. */
function clientOf(fake: FakeOpenAI, modelPath: string): LazyServerClient {
  const server: RunningServer = {
    backend: "llama-server",
    model: "tiny",
    modelPath,
    modelIds: ["fake-model"],
    url: fake.url,
    port: fake.port,
    owned: true,
    adopted: false,
    startedAt: new Date(),
    running: true,
    logs: () => [],
    stop: () => Promise.resolve({ stopped: true, clean: true, killed: false }),
  };
  return new LazyServerClient({
    model: "fake-model",
    label: "llama-server",
    start: () => Promise.resolve(server),
  });
}

/** A display that notes when the first token came, and nothing else. */
function firstTokenDisplay(seen: { at?: number }): TurnDisplay {
  const none = { write() {} };
  return {
    out: none,
    notices: none,
    reasoning: 0,
    beginRound() {},
    token() {
      seen.at ??= performance.now();
    },
    thinking() {},
    endRound() {},
    callStarted() {},
    callOutput() {},
    callEnded() {},
    stats() {},
    hold: (ask) => ask(),
    close() {},
  };
}

/** The conversation of a long session: `TURNS` questions and answers of about 100 tokens. */
function conversation(): Message[] {
  return Array.from({ length: TURNS }, (_, i) => [
    {
      role: "user" as const,
      content: `Question ${i}: ${Array.from({ length: 20 }, (_, j) => `q${i}w${j}`).join(" ")}`,
    },
    {
      role: "assistant" as const,
      content: `Answer ${i}: ${Array.from({ length: 30 }, (_, j) => `a${i}w${j}`).join(" ")}`,
    },
  ]).flat();
}

/** One resumed turn on a fresh server: ms to its first token, and the tokens it reused. */
async function trial(
  agent: Agent,
  saved: { systemPrompt: string; messages: Message[]; id: string; modelPath: string },
  warm: boolean,
): Promise<{ ms: number; cached: number; evaluated: number }> {
  const fake = await startFakeOpenAI({
    nCtx: 16384,
    nCtxTrain: 16384,
    slotSavePath: slotSavePath(agent),
    promptMsPerToken: PROMPT_MS_PER_TOKEN,
    reply: () => "Fine.",
  });
  try {
    await agent.setClient(clientOf(fake, saved.modelPath));
    agent.restore({ systemPrompt: saved.systemPrompt, pinned: "", messages: saved.messages });
    if (warm) restoreWarm(agent, saved.id);
    const seen: { at?: number } = {};
    const sink = new BufferOutput();
    const started = performance.now();
    await runPrompt(agent, "And one more question?", {
      out: sink,
      err: sink,
      spinner: false,
      color: false,
      display: () => firstTokenDisplay(seen),
    });
    const prompt = fake.prompts.at(-1)!;
    return { ms: (seen.at ?? performance.now()) - started, ...prompt };
  } finally {
    await agent.setClient(undefined);
    await fake.close();
  }
}

/** Runs the benchmark; see the module doc. */
export async function run(): Promise<BenchResult[]> {
  const root = await Deno.makeTempDir({ prefix: "harvey_warm_bench_" });
  const modelPath = join(root, "tiny.gguf");
  await Deno.writeTextFile(modelPath, "GGUF fake model");
  const out = new BufferOutput();
  const agent = await createSession({
    flags: { workdir: root, llamafileUrl: "http://127.0.0.1:9" },
    env: { HOME: root },
    cwd: root,
    asker: new LineAsker(() => Promise.resolve(undefined), out),
    err: out,
  });
  try {
    await Deno.mkdir(slotSavePath(agent), { recursive: true });
    // The first session: its conversation is evaluated once, then its cache is saved.
    const first = await startFakeOpenAI({
      nCtx: 16384,
      nCtxTrain: 16384,
      slotSavePath: slotSavePath(agent),
      reply: () => "Fine.",
    });
    const all = conversation();
    agent.restore({ systemPrompt: agent.systemPrompt, pinned: "", messages: all.slice(0, -2) });
    await agent.setClient(clientOf(first, modelPath));
    // Its last turn is a real one: the cache holds what Harvey sends (the tools included).
    await runPrompt(agent, all.at(-2)!.content, {
      out,
      err: out,
      spinner: false,
      color: false,
      display: () => firstTokenDisplay({}),
    });
    const messages = agent.history.slice(1);
    const id = currentLog(agent)!.id;
    await currentLog(agent)!.flush();
    const meta = await saveWarm(agent, id);
    await agent.setClient(undefined);
    await first.close();
    if (!meta) throw new Error("the slot cache was not saved");
    const saved = { systemPrompt: agent.systemPrompt, messages, id, modelPath };
    const cold: number[] = [];
    const warm: number[] = [];
    let reused = 0;
    let evaluatedCold = 0;
    for (let i = 0; i < RUNS + 1; i++) {
      const c = await trial(agent, saved, false);
      const w = await trial(agent, saved, true);
      if (i === 0) continue; // warm-up: the SDK and the JIT
      cold.push(c.ms);
      warm.push(w.ms);
      reused = w.cached;
      evaluatedCold = c.evaluated;
      console.error(`  run ${i}: cold ${round(c.ms)} ms, warm ${round(w.ms)} ms`);
    }
    const msCold = median(cold);
    const msWarm = median(warm);
    return [
      {
        name: "first token on resume, cache restored",
        value: round(msWarm),
        unit: "ms",
        baseline: round(msCold),
        ratio: Math.round((msWarm / msCold) * 100) / 100,
        target: "≤ 0.5× without",
        pass: msWarm <= msCold / 2,
      },
      { name: "time saved", value: round(msCold - msWarm), unit: "ms" },
      {
        name: "prompt tokens evaluated on resume",
        value: evaluatedCold - reused,
        unit: "tokens",
        baseline: evaluatedCold,
      },
      { name: "tokens in the saved cache", value: meta.saved, unit: "tokens" },
    ];
  } finally {
    await agent.shutdown();
    await Deno.remove(root, { recursive: true });
  }
}

if (import.meta.main) {
  printResults("warm_resume_bench", await run());
}
