/**
 * Local servers, as a user meets them:
 *
 * - `/llamafile use NAME` to the first token of a reply, against the fake llamafile's own
 *   time to become ready (started directly and polled on `/health` every 2 ms, in the same
 *   run, interleaved): Harvey's overhead (supervision, readiness polling, the request) should
 *   stay within 60 ms (median).
 * - A request-scoped llama-server over several turns: turn 1 starts the server, later turns
 *   reuse it (the spawn count stays 1); their latency is reported against turn 1.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/llamafile_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import type { BenchResult } from "./result.ts";
import type { Agent } from "../src/agent.ts";
import { LineAsker } from "../src/repl/asker.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { runPrompt } from "../src/repl/turn.ts";
import { llamafileSpec } from "../src/runtime/llamafile.ts";
import { findFreePort } from "../src/runtime/probe.ts";
import { Supervisor } from "../src/runtime/supervisor.ts";
import { createSession } from "../src/session.ts";
import { makeFakeLlamafile, makeFakeLlamaServer } from "../test/fixtures/make_fake_llamafile.ts";
import { writeGguf } from "../test/fixtures/make_fake_llama_cpp.ts";

const STARTS = 7;
const TURNS = 10;
const OVERHEAD_TARGET_MS = 60;

/** Runs the local-server benchmarks and returns their figures. */
export async function run(): Promise<BenchResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "harvey_llamafile_bench_" });
  try {
    return [...(await startBench(dir)), ...(await turnsBench(dir))];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

async function session(root: string, env: Record<string, string>): Promise<Agent> {
  const out = new BufferOutput();
  const asker = new LineAsker(() => Promise.resolve(undefined), out);
  return await createSession({
    flags: { workdir: root, ollama: "http://127.0.0.1:9" },
    env,
    cwd: root,
    asker,
    err: out,
    // The bench wrote the harvey.yaml that registers its llamafile: it trusts it, as its author.
    trust: "all",
  });
}

/** The fake llamafile started directly: ms from spawn until `/health` answers 200. */
async function fakeReadyMs(path: string): Promise<number> {
  const port = findFreePort();
  const started = performance.now();
  const child = new Deno.Command(path, {
    args: ["--server", "--nobrowser", "--host", "127.0.0.1", "--port", String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        await res.body?.cancel();
        if (res.ok) return performance.now() - started;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

/** The supervisor alone: ms from `start` until it returns a ready server. */
async function supervisorReadyMs(root: string, path: string): Promise<number> {
  const sup = new Supervisor({ stateDir: join(root, "agents") });
  try {
    const started = performance.now();
    await sup.start(llamafileSpec(path, { port: findFreePort() }));
    return performance.now() - started;
  } finally {
    await sup.stopAll();
  }
}

/** A fresh session's `/llamafile use NAME`, then a prompt: ms until its first token. */
async function harveyFirstTokenMs(root: string, env: Record<string, string>): Promise<number> {
  const agent = await session(root, env);
  try {
    const out = new BufferOutput();
    let first = 0;
    const started = performance.now();
    await agent.commands.dispatch(agent, "/llamafile use bench", out);
    await runPrompt(agent, "hi", {
      out: {
        write(t) {
          first ||= performance.now();
          out.write(t);
        },
      },
      err: out,
      spinner: false,
      color: false,
    });
    if (!out.text.includes("Hello from bench.")) throw new Error(`unexpected: ${out.text}`);
    return first - started;
  } finally {
    await agent.shutdown();
  }
}

async function startBench(dir: string): Promise<BenchResult[]> {
  const root = join(dir, "start");
  await Deno.mkdir(join(root, "agents"), { recursive: true });
  const path = await makeFakeLlamafile(root, "bench");
  await Deno.writeTextFile(
    join(root, "agents", "harvey.yaml"),
    `llamafile:\n  url: http://127.0.0.1:${findFreePort()}\n  models:\n` +
      `    - name: bench\n      path: ${path}\n`,
  );
  const env = { PATH: Deno.env.get("PATH") ?? "", HOME: root };
  // Warm up both paths once (module loading, Deno's cache for the fake).
  await fakeReadyMs(path);
  await harveyFirstTokenMs(root, env);
  const fake: number[] = [];
  const supervised: number[] = [];
  const harvey: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    fake.push(await fakeReadyMs(path));
    supervised.push(await supervisorReadyMs(root, path));
    harvey.push(await harveyFirstTokenMs(root, env));
  }
  const h = median(harvey);
  const f = median(fake);
  const sv = median(supervised);
  const overhead = h - f;
  return [
    {
      name: "llamafile use → first token",
      value: round(h),
      unit: "ms",
      baseline: round(f),
      ratio: round(h / f, 2),
      target: "baseline: the fake llamafile's own time to ready",
    },
    {
      name: "llamafile: supervisor start → ready",
      value: round(sv),
      unit: "ms",
      baseline: round(f),
      ratio: round(sv / f, 2),
      target: "how much of the overhead is readiness polling",
    },
    {
      name: "llamafile: Harvey's layer over the supervisor",
      value: round(h - sv),
      unit: "ms",
      target: "registry, port check, client, first request",
    },
    {
      name: "llamafile: Harvey's overhead over the server's start",
      value: round(overhead),
      unit: "ms",
      target: `≤ ${OVERHEAD_TARGET_MS} ms (median)`,
      pass: overhead <= OVERHEAD_TARGET_MS,
    },
  ];
}

async function turnsBench(dir: string): Promise<BenchResult[]> {
  const root = join(dir, "turns");
  const bin = join(dir, "bin");
  await Deno.mkdir(join(root, "agents"), { recursive: true });
  await Deno.mkdir(bin);
  await makeFakeLlamaServer(bin);
  const gguf = await writeGguf(join(root, "bench.gguf"));
  const env = { PATH: `${bin}:${Deno.env.get("PATH") ?? ""}`, HOME: root };
  const agent = await session(root, env);
  const times: number[] = [];
  try {
    const out = new BufferOutput();
    await agent.commands.dispatch(agent, `/llamacpp add ${gguf}`, out);
    for (let i = 0; i < TURNS; i++) {
      const started = performance.now();
      await runPrompt(agent, `turn ${i}`, { out, err: out, spinner: false, color: false });
      times.push(performance.now() - started);
    }
    const spawns = agent.supervisor.spawnCount;
    const later = median(times.slice(1));
    return [
      {
        name: "llama-server turn 1 (starts the server)",
        value: round(times[0]),
        unit: "ms",
      },
      {
        name: `llama-server turns 2..${TURNS} (median)`,
        value: round(later),
        unit: "ms",
        baseline: round(times[0]),
        ratio: round(later / times[0], 3),
        target: "no server start after turn 1",
      },
      {
        name: `llama-server spawns over ${TURNS} turns`,
        value: spawns,
        unit: "processes",
        target: "1",
        pass: spawns === 1,
      },
    ];
  } finally {
    await agent.shutdown();
  }
}

if (import.meta.main) {
  const started = performance.now();
  const results = await run();
  console.table(results.map((r) => ({
    name: r.name,
    value: `${r.value} ${r.unit}`,
    baseline: r.baseline === undefined ? "" : `${r.baseline} ${r.unit}`,
    ratio: r.ratio ?? "",
    target: r.target ?? "",
    pass: r.pass ?? "",
  })));
  console.log(`llamafile_bench took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
