/**
 * What auto-compaction costs the turn that compacts, on a 2048-token window (the fake
 * llama.cpp-style server in a child process, streaming 500 tokens/s, its replies 60 tokens):
 *
 * - the turn whose request no longer fits (three earlier turns of about 400 tokens, a fourth
 *   prompt of 400): the oldest turns are summarized by the same model, then the turn is sent;
 * - the baseline: the same turn on a history that still fits (two earlier turns), in the same
 *   run, interleaved.
 *
 * Rows: the ms the compacting turn takes against the baseline turn, the ms compaction adds
 * (the difference of the medians) and how much of it the summarizing requests took (the rest
 * is Harvey counting the candidates with the server), and the tokens it adds (prompt and
 * reply tokens of the summarizing requests, as the server counted them) against the baseline
 * turn's own.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/compaction_bench.ts`
 *
 * @module
 */
import { startFakeServer } from "./fake_server.ts";
import { type BenchResult, median } from "./result.ts";
import { printResults } from "./run_all.ts";
import type { Agent } from "../src/agent.ts";
import { sendFitted } from "../src/llm/fit.ts";
import { LineAsker } from "../src/repl/asker.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { selectBackend } from "../src/repl/startup.ts";
import { createSession } from "../src/session.ts";
import type { Message } from "../src/types.ts";

const RUNS = 7;
const TURN_TOKENS = 400;
const REPLY = Array.from({ length: 30 }, (_, i) => `r${i}`).join(" "); // 59 tokens
const TOKEN_DELAY_MS = 2;

const round = (n: number) => Math.round(n * 10) / 10;
const prompt = (tag: string) =>
  Array.from({ length: TURN_TOKENS / 2 }, (_, j) => `${tag}w${j}`).join(" ");

/** The fake server as a child process, like a real model server. */
function startServer() {
  return startFakeServer([
    "--n-ctx",
    "2048",
    "--token-delay-ms",
    String(TOKEN_DELAY_MS),
    "--reply",
    REPLY,
  ]);
}

async function session(root: string, url: string): Promise<Agent> {
  const out = new BufferOutput();
  const agent = await createSession({
    flags: { workdir: root, llamafileUrl: url },
    env: { HOME: root },
    cwd: root,
    asker: new LineAsker(() => Promise.resolve(undefined), out),
    err: out,
  });
  await selectBackend(agent, out, { interactive: false, urlGiven: true });
  if (!agent.client) throw new Error(`no backend at ${url}: ${out.text}`);
  return agent;
}

/** One turn after `earlier` turns: its ms, its own tokens, and what compaction added. */
async function turn(agent: Agent, earlier: number, tag: string) {
  agent.clearHistory();
  for (let i = 0; i < earlier; i++) {
    agent.history.push({ role: "user", content: prompt(`${tag}${i}`) }, {
      role: "assistant",
      content: REPLY,
    });
  }
  const messages: Message[] = [...agent.history, { role: "user", content: prompt(`${tag}n`) }];
  const err = new BufferOutput();
  const started = performance.now();
  const { result, fitted } = await sendFitted(agent, agent.client!, messages, {
    err,
    onToken() {},
  });
  const ms = performance.now() - started;
  return {
    ms,
    tokens: result.promptTokens + result.replyTokens,
    compacted: fitted.compacted,
  };
}

/** Runs the compaction benchmark and returns its figures. */
export async function run(): Promise<BenchResult[]> {
  const root = await Deno.makeTempDir({ prefix: "harvey_compaction_bench_" });
  await Deno.writeTextFile(`${root}/HARVEY.md`, "Be brief.");
  const server = await startServer();
  try {
    const agent = await session(root, server.url);
    try {
      await turn(agent, 1, "warm"); // loads the SDK, reads the window
      const base: number[] = [];
      const compacting: number[] = [];
      const added: number[] = [];
      const summaryMs: number[] = [];
      const own: number[] = [];
      const requests: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const fits = await turn(agent, 2, `b${i}`);
        if (fits.compacted) throw new Error("the baseline turn compacted; it should fit");
        base.push(fits.ms);
        own.push(fits.tokens);
        const full = await turn(agent, 3, `c${i}`);
        if (!full.compacted) throw new Error("the full turn did not compact");
        compacting.push(full.ms);
        added.push(full.compacted.tokens);
        summaryMs.push(full.compacted.ms);
        requests.push(full.compacted.requests);
        console.error(
          `  run ${i + 1}: baseline ${round(fits.ms)} ms, compacting ${round(full.ms)} ms ` +
            `(+${full.compacted.tokens} tokens in ${full.compacted.requests} request)`,
        );
      }
      const msBase = median(base);
      const msFull = median(compacting);
      const tokens = median(added);
      const tokensBase = median(own);
      return [
        {
          name: "turn that compacts, 2048-token window",
          value: round(msFull),
          unit: "ms",
          baseline: round(msBase),
          ratio: round(msFull / msBase),
        },
        { name: "ms added by compaction", value: round(msFull - msBase), unit: "ms" },
        {
          name: "of which the summarizing requests",
          value: round(median(summaryMs)),
          unit: "ms",
        },
        {
          name: "tokens added by compaction",
          value: tokens,
          unit: "tokens",
          baseline: tokensBase,
          ratio: Math.round((tokens / tokensBase) * 100) / 100,
        },
        { name: "summarizing requests per compaction", value: median(requests), unit: "" },
      ];
    } finally {
      await agent.shutdown();
    }
  } finally {
    await server.stop();
    await Deno.remove(root, { recursive: true });
  }
}

if (import.meta.main) {
  printResults("compaction_bench", await run());
}
