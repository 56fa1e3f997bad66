/**
 * Harvey as people run it — a child started with the `harvey` task's flags, talking to the fake
 * server in another child — against a raw client script doing the same in a child of its own
 * (fetch, SSE parsed by hand), interleaved, medians:
 *
 * 1. the first prompt of a session, typed at the REPL on a terminal a moment after the prompt
 *    appears: from Enter to the reply's first token on the screen;
 * 2. a 20,000-token reply into a pipe (`-p`): the streaming-only rate, from the first byte of
 *    the reply to its last;
 * 3. resident memory over the first ten turns of a conversation (1,000-token replies).
 *
 * Run alone: `deno run --allow-all --no-prompt bench/core_session_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import { median } from "./result.ts";
import type { BenchResult } from "./result.ts";
import { printResults } from "./run_all.ts";
import {
  childEnv,
  FakeServerChild,
  harveyArgs,
  kill,
  LONG_REPLY_CONFIG,
  progress,
  round,
  scriptBinary,
  sleep,
  spawnOnPty,
  STREAM_PROMPT,
  STREAM_TOKENS,
  StreamWatch,
  TURN_PROMPT,
  TURN_TOKENS,
  vmRssMiB,
} from "./core_rig.ts";

const FIRST_PROMPT_RUNS = 7;
/** How long after the prompt appears the first prompt is sent: a person typing it. */
const TYPING_MS = 1000;
/** The first prompt at most this many times the raw client's. */
const FIRST_PROMPT_TARGET_RATIO = 3;
const PIPE_RUNS = 5;
const PIPE_TARGET_TPS = 60_000;
const TURNS = 10;
const TURN_RUNS = 3;
const SETTLE_MS = 500;
const GROWTH_TARGET_MIB = 20;

/**
 * The raw client: shows `harvey> ` (on a terminal) or nothing, then for each line of stdin
 * streams one reply of the fake server for the conversation so far, writes each token as it
 * comes, and says `turn done` on stderr. `--print PROMPT` sends one prompt and exits.
 */
const RAW_CLIENT = `
const [url, mode, prompt] = Deno.args;
const encoder = new TextEncoder();
const history = [];
function write(file, text) {
  const data = encoder.encode(text);
  for (let n = 0; n < data.length;) n += file.writeSync(data.subarray(n));
}
async function turn(content) {
  history.push({ role: "user", content });
  const res = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "fake-model", messages: history, stream: true, max_tokens: 24000 }),
  });
  const decoder = new TextDecoder();
  let buffer = "";
  let reply = "";
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let start = 0;
    let end;
    while ((end = buffer.indexOf("\\n\\n", start)) >= 0) {
      const event = buffer.slice(start, end);
      start = end + 2;
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const text = JSON.parse(event.slice(6)).choices?.[0]?.delta?.content;
      if (text) {
        reply += text;
        write(Deno.stdout, text);
      }
    }
    buffer = buffer.slice(start);
  }
  write(Deno.stdout, "\\n");
  history.push({ role: "assistant", content: reply });
  write(Deno.stderr, "turn done\\n");
}
if (mode === "--print") {
  await turn(prompt);
} else {
  if (mode === "--prompt") write(Deno.stdout, "harvey> ");
  write(Deno.stderr, "ready\\n");
  let pending = "";
  for await (const chunk of Deno.stdin.readable) {
    pending += new TextDecoder().decode(chunk);
    let at;
    while ((at = pending.search(/[\\r\\n]/)) >= 0) {
      const line = pending.slice(0, at).trim();
      pending = pending.slice(at + 1);
      if (line === "/exit") Deno.exit(0);
      if (line) await turn(line);
    }
  }
}
`;

/** Runs the session benchmarks and returns their figures. */
export async function run(): Promise<BenchResult[]> {
  const tmp = await Deno.makeTempDir({ prefix: "harvey_core_session_bench_" });
  const fake = await FakeServerChild.start();
  try {
    const rig = await SessionRig.create(tmp, fake.url);
    return [
      ...await firstPromptBench(rig),
      ...await pipeBench(rig),
      ...await turnsBench(rig),
    ];
  } finally {
    await fake.stop();
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Two workspaces (one without settings, one whose reserve takes the long reply) and the raw client. */
class SessionRig {
  private constructor(
    readonly url: string,
    readonly plain: string,
    readonly long: string,
    readonly raw: string,
    readonly env: Record<string, string>,
  ) {}

  static async create(tmp: string, url: string): Promise<SessionRig> {
    const plain = join(tmp, "plain");
    const long = join(tmp, "long");
    await Deno.mkdir(plain);
    await Deno.mkdir(join(long, "agents"), { recursive: true });
    await Deno.writeTextFile(join(long, "agents", "harvey.yaml"), LONG_REPLY_CONFIG);
    const raw = join(tmp, "raw_client.js");
    await Deno.writeTextFile(raw, RAW_CLIENT);
    return new SessionRig(url, plain, long, raw, await childEnv(join(tmp, "home")));
  }

  harvey(args: string[]): Promise<string[]> {
    return harveyArgs(["--llamafile-url", this.url, ...args]);
  }

  rawArgs(args: string[]): string[] {
    return [
      "run",
      "--no-prompt",
      `--allow-net=${new URL(this.url).host}`,
      this.raw,
      this.url,
      ...args,
    ];
  }

  spawn(args: string[], cwd: string): Deno.ChildProcess {
    return new Deno.Command(Deno.execPath(), {
      args,
      cwd,
      env: this.env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }
}

// ─── 1. the first prompt, typed at the REPL ──────────────────────────────────────────────────

/** From Enter to the first token of the reply on the terminal; the prompt is typed a moment after it appears. */
async function firstPromptOnPty(script: string, rig: SessionRig, args: string[]): Promise<number> {
  const child = spawnOnPty(script, args, { cwd: rig.plain, env: rig.env });
  try {
    await child.watch.seen("harvey>");
    await sleep(TYPING_MS);
    await child.type("hello");
    // The reply is the first "Hello" after what was typed.
    const from = child.watch.text.length;
    const sent = performance.now();
    await child.type("\r");
    const at = await child.watch.seen("Hello", { from });
    await child.watch.seen("ready when you are", { from });
    await child.end("/exit\r");
    return at - sent;
  } catch (err) {
    await child.kill();
    throw err;
  }
}

async function firstPromptBench(rig: SessionRig): Promise<BenchResult[]> {
  const script = scriptBinary();
  if (!script) {
    progress("first prompt: skipped (no `script` from util-linux)");
    return [];
  }
  const harvey = await rig.harvey([]);
  const raw = rig.rawArgs(["--prompt"]);
  await firstPromptOnPty(script, rig, harvey);
  await firstPromptOnPty(script, rig, raw);
  const harveyMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < FIRST_PROMPT_RUNS; i++) {
    harveyMs.push(await firstPromptOnPty(script, rig, harvey));
    rawMs.push(await firstPromptOnPty(script, rig, raw));
  }
  const value = median(harveyMs);
  const baseline = median(rawMs);
  progress(
    `first prompt at the REPL: Harvey ${value.toFixed(1)} ms (min ${
      Math.min(...harveyMs).toFixed(1)
    }), raw client ${baseline.toFixed(1)} ms (min ${Math.min(...rawMs).toFixed(1)})`,
  );
  return [{
    name: `first prompt of a session at the REPL, typed ${TYPING_MS} ms after the prompt (median)`,
    value: round(value, 1),
    unit: "ms",
    baseline: round(baseline, 1),
    ratio: round(value / baseline),
    target: `≤ ${FIRST_PROMPT_TARGET_RATIO}× raw`,
    pass: value / baseline <= FIRST_PROMPT_TARGET_RATIO,
  }];
}

// ─── 2. a long reply into a pipe ─────────────────────────────────────────────────────────────

/** Tokens per second from the first byte of the reply on stdout to its last. */
async function pipeRate(rig: SessionRig, args: string[], cwd: string): Promise<number> {
  const child = rig.spawn(args, cwd);
  await child.stdin.close();
  const out = new StreamWatch(child.stdout);
  const err = new StreamWatch(child.stderr);
  const status = await child.status;
  await Promise.all([out.done, err.done]);
  const words = out.text.match(/w\d+ /g)?.length ?? 0;
  if (!status.success || words * 2 !== STREAM_TOKENS) {
    throw new Error(
      `Expected ${STREAM_TOKENS} tokens on stdout and status 0, found ${words * 2} and ` +
        `${status.code}: ${err.text.slice(-300)}`,
    );
  }
  return (STREAM_TOKENS / (out.lastAt - out.firstAt)) * 1000;
}

async function pipeBench(rig: SessionRig): Promise<BenchResult[]> {
  const harvey = await rig.harvey(["-p", STREAM_PROMPT]);
  const raw = rig.rawArgs(["--print", STREAM_PROMPT]);
  await pipeRate(rig, harvey, rig.long);
  await pipeRate(rig, raw, rig.long);
  const harveyTps: number[] = [];
  const rawTps: number[] = [];
  for (let i = 0; i < PIPE_RUNS; i++) {
    harveyTps.push(await pipeRate(rig, harvey, rig.long));
    rawTps.push(await pipeRate(rig, raw, rig.long));
  }
  const value = median(harveyTps);
  const baseline = median(rawTps);
  progress(
    `pipe: Harvey ${value.toFixed(0)} tok/s (max ${Math.max(...harveyTps).toFixed(0)}), ` +
      `raw client ${baseline.toFixed(0)} tok/s (max ${Math.max(...rawTps).toFixed(0)})`,
  );
  return [{
    name: `${STREAM_TOKENS.toLocaleString("en-US")}-token reply into a pipe, streaming-only (-p)`,
    value: Math.round(value),
    unit: "tok/s",
    baseline: Math.round(baseline),
    ratio: round(value / baseline),
    target: `≥ ${PIPE_TARGET_TPS.toLocaleString("en-US")} tok/s`,
    pass: value >= PIPE_TARGET_TPS,
  }];
}

// ─── 3. memory over ten turns ────────────────────────────────────────────────────────────────

/**
 * VmRSS when the session is ready and after each of {@linkcode TURNS} turns (a line on stdin
 * each, the end of a turn seen on stderr: Harvey's stats line, the raw client's "turn done").
 */
async function turnsRss(
  rig: SessionRig,
  args: string[],
  marks: { ready: string; turn: string },
): Promise<number[]> {
  const child = rig.spawn(args, rig.long);
  const out = new StreamWatch(child.stdout);
  const err = new StreamWatch(child.stderr);
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  try {
    await err.seen(marks.ready);
    await sleep(SETTLE_MS);
    const rss = [await vmRssMiB(child.pid)];
    for (let i = 1; i <= TURNS; i++) {
      await writer.write(encoder.encode(`${TURN_PROMPT} ${i}\n`));
      while (err.count(marks.turn) < i) await err.seen(marks.turn, { from: err.text.length });
      if (i === TURNS) await sleep(SETTLE_MS);
      rss.push(await vmRssMiB(child.pid));
    }
    const words = out.text.match(/w\d+ /g)?.length ?? 0;
    if (words * 2 !== TURNS * TURN_TOKENS) {
      throw new Error(`Expected ${TURNS * TURN_TOKENS} tokens on stdout, found ${words * 2}`);
    }
    return rss;
  } catch (e) {
    kill(child);
    throw new Error(`${e instanceof Error ? e.message : e}; stderr: ${err.text.slice(-300)}`);
  } finally {
    await writer.write(encoder.encode("/exit\n")).catch(() => {});
    await writer.close().catch(() => {});
    await child.status;
    await Promise.all([out.done, err.done]);
  }
}

async function turnsBench(rig: SessionRig): Promise<BenchResult[]> {
  const harvey = await rig.harvey(["--run", "-"]);
  const raw = rig.rawArgs([]);
  const harveyGrowth: number[] = [];
  const rawGrowth: number[] = [];
  const harveyTurn1: number[] = [];
  for (let i = 0; i < TURN_RUNS; i++) {
    const h = await turnsRss(rig, harvey, { ready: "Using model", turn: " tokens · " });
    const r = await turnsRss(rig, raw, { ready: "ready", turn: "turn done" });
    harveyGrowth.push(h[TURNS] - h[0]);
    harveyTurn1.push(h[1] - h[0]);
    rawGrowth.push(r[TURNS] - r[0]);
    progress(
      `turns: Harvey ${h.map((m) => m.toFixed(0)).join(" ")} MiB; raw ${
        r.map((m) => m.toFixed(0)).join(" ")
      } MiB`,
    );
  }
  const value = median(harveyGrowth);
  const baseline = median(rawGrowth);
  return [
    {
      name: `resident memory growth over the first ${TURNS} turns (VmRSS)`,
      value: round(value, 1),
      unit: "MiB",
      baseline: round(baseline, 1),
      target: `≤ ${GROWTH_TARGET_MIB} MiB`,
      pass: value <= GROWTH_TARGET_MIB,
    },
    {
      name: "of which the first turn (what the first prompt loads)",
      value: round(median(harveyTurn1), 1),
      unit: "MiB",
    },
  ];
}

if (import.meta.main) {
  const started = performance.now();
  printResults("core_session_bench", await run());
  console.log(`core_session_bench took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
