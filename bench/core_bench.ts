/**
 * The core figures of Harvey measured in one process or from a clean start, each against a
 * baseline measured in the same run (interleaved, medians):
 *
 * 1. start-up to a ready prompt with no backend reachable vs `deno run` of an empty script
 *    (headless, and — when `script` from util-linux is there — the interactive prompt on a pty);
 * 2. resident memory of an idle headless Harvey vs an idle empty script;
 * 3. time to first token through `runPrompt` vs a raw `fetch` of the same fake server, warm,
 *    and the first prompt of a session sent the moment start-up ends (scripts, `-p`);
 * 4. streaming throughput of 20,000 tokens through `runPrompt` into a real file descriptor vs
 *    a raw fetch + SSE parse writing to the same descriptor.
 *
 * `core_session_bench.ts` has the rows measured on a Harvey child talking to the fake server:
 * the first prompt typed at the REPL, a stream into a pipe, memory over ten turns.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/core_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import { median } from "./result.ts";
import type { BenchResult } from "./result.ts";
import { printResults } from "./run_all.ts";
import {
  childEnv,
  CLOSED,
  FakeServerChild,
  harveyArgs,
  kill,
  LONG_REPLY_CONFIG,
  progress,
  round,
  scriptBinary,
  SHORT_REPLY,
  spawnOnPty,
  STREAM_PROMPT,
  STREAM_TOKENS,
  StreamWatch,
  vmRssMiB,
} from "./core_rig.ts";
import type { Agent } from "../src/agent.ts";
import { LineAsker } from "../src/repl/asker.ts";
import { selectBackend } from "../src/repl/startup.ts";
import { runPrompt, type TurnIO } from "../src/repl/turn.ts";
import { createSession } from "../src/session.ts";
import type { Message, Output } from "../src/types.ts";

const STARTUP_RUNS = 15;
/** Start-up at most this many times an empty `deno run`. */
const STARTUP_TARGET_RATIO = 4;
const PTY_RUNS = 5;
const TTFT_RUNS = 50;
const TTFT_WARMUP = 5;
const TTFT_TARGET_ADDED_MS = 2;
const STREAM_RUNS = 5;
/** Harvey's stream at least this share of the raw client's rate. */
const STREAM_TARGET_RATIO = 0.95;
const MEMORY_RUNS = 3;
const MEMORY_IDLE_MS = 1000;
const MEMORY_TARGET_MIB = 90;

const encoder = new TextEncoder();

/** Runs the core benchmarks and returns their figures. */
export async function run(): Promise<BenchResult[]> {
  const tmp = await Deno.makeTempDir({ prefix: "harvey_core_bench_" });
  try {
    const results: BenchResult[] = [];
    const startup = new StartupRig(tmp);
    await startup.prepare();
    results.push(...await startupBench(startup));
    results.push(...await ptyBench(startup));
    results.push(...await memoryBench(startup));
    const fake = await FakeServerChild.start();
    try {
      const session = await benchSession(tmp, fake.url);
      try {
        results.push(...await ttftBench(session));
        results.push(...await streamBench(session));
      } finally {
        await session.agent.shutdown();
      }
    } finally {
      await fake.stop();
    }
    return results;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

// ─── 1. start-up ─────────────────────────────────────────────────────────────────────────────

/** Commands and environment shared by the start-up, pty and memory measurements. */
class StartupRig {
  harveyArgs: string[] = [];
  env: Record<string, string> = {};
  readonly workspace: string;
  readonly emptyScript: string;
  readonly idleScript: string;

  constructor(readonly tmp: string) {
    this.workspace = join(tmp, "workspace");
    this.emptyScript = join(tmp, "empty.ts");
    this.idleScript = join(tmp, "idle.ts");
  }

  async prepare(): Promise<void> {
    await Deno.mkdir(this.workspace);
    this.env = await childEnv(join(this.tmp, "home"));
    await Deno.writeTextFile(this.emptyScript, "");
    // Shows a prompt, then waits on stdin as Harvey's line reader does.
    await Deno.writeTextFile(
      this.idleScript,
      'Deno.stdout.writeSync(new TextEncoder().encode("harvey> "));\n' +
        "for await (const chunk of Deno.stdin.readable) {\n" +
        "  if (chunk.includes(10) || chunk.includes(13)) break;\n" +
        "}\n",
    );
    this.harveyArgs = await harveyArgs(["--llamafile-url", `http://${CLOSED}`]);
  }

  command(args: string[]): Deno.Command {
    return new Deno.Command(Deno.execPath(), {
      args,
      cwd: this.workspace,
      env: this.env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
  }

  /** Spawns `args`, writes `input` to stdin, waits for the exit; returns the wall time. */
  async timed(args: string[], input: string): Promise<{ ms: number; out: Deno.CommandOutput }> {
    const started = performance.now();
    const child = this.command(args).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode(input));
    await writer.close();
    const out = await child.output();
    return { ms: performance.now() - started, out };
  }
}

async function startupBench(rig: StartupRig): Promise<BenchResult[]> {
  const harvey = [...rig.harveyArgs, "--run", "-"];
  const empty = ["run", "--no-prompt", rig.emptyScript];
  const check = (out: Deno.CommandOutput) => {
    const stdout = new TextDecoder().decode(out.stdout);
    if (out.code !== 0 || !stdout.includes("Bye")) {
      const stderr = new TextDecoder().decode(out.stderr);
      throw new Error(`Expected Harvey to exit 0 after /exit, found status ${out.code}: ${stderr}`);
    }
  };
  // Warm-up: fills the module cache and the page cache for both.
  for (let i = 0; i < 2; i++) {
    check((await rig.timed(harvey, "/exit\n")).out);
    await rig.timed(empty, "");
  }
  const harveyMs: number[] = [];
  const emptyMs: number[] = [];
  for (let i = 0; i < STARTUP_RUNS; i++) {
    const h = await rig.timed(harvey, "/exit\n");
    check(h.out);
    harveyMs.push(h.ms);
    emptyMs.push((await rig.timed(empty, "")).ms);
  }
  const value = median(harveyMs);
  const baseline = median(emptyMs);
  progress(
    `startup: Harvey ${value.toFixed(1)} ms (min ${Math.min(...harveyMs).toFixed(1)}), ` +
      `empty deno run ${baseline.toFixed(1)} ms (min ${Math.min(...emptyMs).toFixed(1)})`,
  );
  return [
    {
      name: "startup to prompt, headless, no backend (median)",
      value: round(value, 1),
      unit: "ms",
      baseline: round(baseline, 1),
      ratio: round(value / baseline),
      target: `≤ ${STARTUP_TARGET_RATIO}× empty deno run`,
      pass: value / baseline <= STARTUP_TARGET_RATIO,
    },
    {
      name: "startup added over an empty deno run",
      value: round(value - baseline, 1),
      unit: "ms",
    },
  ];
}

/** Time until "harvey>" appears on a pty (`script -qec`), vs an empty script showing a prompt. */
async function ptyBench(rig: StartupRig): Promise<BenchResult[]> {
  const script = scriptBinary();
  if (!script) {
    progress("pty: skipped (no `script` from util-linux)");
    return [];
  }
  const viaPty = async (args: string[]) => {
    const started = performance.now();
    const child = spawnOnPty(script, args, { cwd: rig.workspace, env: rig.env });
    try {
      const at = await child.watch.seen("harvey>");
      // Enter is \r on a terminal (\n is Ctrl-J, a new line in Harvey's editor).
      await child.end("/exit\r");
      return at - started;
    } catch (err) {
      await child.kill();
      throw err;
    }
  };
  const harvey = rig.harveyArgs;
  const idle = ["run", "--no-prompt", rig.idleScript];
  await viaPty(harvey);
  await viaPty(idle);
  const harveyMs: number[] = [];
  const idleMs: number[] = [];
  for (let i = 0; i < PTY_RUNS; i++) {
    harveyMs.push(await viaPty(harvey));
    idleMs.push(await viaPty(idle));
  }
  const value = median(harveyMs);
  const baseline = median(idleMs);
  progress(
    `pty: Harvey ${value.toFixed(1)} ms (min ${Math.min(...harveyMs).toFixed(1)}), ` +
      `prompt script ${baseline.toFixed(1)} ms (min ${Math.min(...idleMs).toFixed(1)})`,
  );
  return [{
    name: 'interactive: "harvey>" on a pty (median)',
    value: round(value, 1),
    unit: "ms",
    baseline: round(baseline, 1),
    ratio: round(value / baseline),
  }];
}

// ─── 2. idle memory ──────────────────────────────────────────────────────────────────────────

/** Starts `args` with stdin held open, waits for `ready` on `stream` plus the idle time. */
async function idleRss(
  rig: StartupRig,
  args: string[],
  ready: { text: string; on: "stdout" | "stderr"; label: string },
): Promise<number> {
  const child = rig.command(args).spawn();
  const stdout = new StreamWatch(child.stdout);
  const stderr = new StreamWatch(child.stderr);
  const writer = child.stdin.getWriter();
  try {
    await (ready.on === "stdout" ? stdout : stderr).seen(ready.text);
    await new Promise((resolve) => setTimeout(resolve, MEMORY_IDLE_MS));
    return await vmRssMiB(child.pid);
  } catch (err) {
    kill(child);
    throw err;
  } finally {
    await writer.close().catch(() => {});
    const status = await child.status;
    await Promise.all([stdout.done, stderr.done]);
    if (!status.success) {
      console.error(`  memory: ${ready.label} exited ${status.code}: ${stderr.text}`);
    }
  }
}

async function memoryBench(rig: StartupRig): Promise<BenchResult[]> {
  const harvey = [...rig.harveyArgs, "--run", "-"];
  const idle = ["run", "--no-prompt", rig.idleScript];
  const harveyMiB: number[] = [];
  const idleMiB: number[] = [];
  for (let i = 0; i < MEMORY_RUNS; i++) {
    // Side by side: memory does not disturb memory, and it halves the wait. Harvey's last
    // start-up line names the URL where nothing answers.
    const [h, b] = await Promise.all([
      idleRss(rig, harvey, { text: "Nothing answers at", on: "stderr", label: "Harvey" }),
      idleRss(rig, idle, { text: "harvey>", on: "stdout", label: "the idle script" }),
    ]);
    harveyMiB.push(h);
    idleMiB.push(b);
  }
  const value = median(harveyMiB);
  const baseline = median(idleMiB);
  progress(`memory: Harvey ${value.toFixed(1)} MiB, idle script ${baseline.toFixed(1)} MiB`);
  return [{
    name: "idle resident memory, headless (VmRSS)",
    value: round(value, 1),
    unit: "MiB",
    baseline: round(baseline, 1),
    ratio: round(value / baseline),
    target: `≤ ${MEMORY_TARGET_MIB} MiB`,
    pass: value <= MEMORY_TARGET_MIB,
  }];
}

// ─── 3 and 4: through Harvey vs raw fetch, in this process ───────────────────────────────────

interface BenchSession {
  agent: Agent;
  url: string;
  model: string;
}

const nullOutput: Output = { write() {} };

/** A real session in a temp workspace, its backend selected at the fake server. */
async function benchSession(tmp: string, url: string): Promise<BenchSession> {
  const root = join(tmp, "session");
  await Deno.mkdir(join(root, "agents"), { recursive: true });
  await Deno.writeTextFile(join(root, "agents", "harvey.yaml"), LONG_REPLY_CONFIG);
  const err = new RecordingOutput();
  const asker = new LineAsker(() => Promise.resolve(undefined), err);
  const agent = await createSession({
    flags: { workdir: root, llamafileUrl: url },
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: root },
    cwd: root,
    asker,
    err,
  });
  await selectBackend(agent, err, { interactive: false, urlGiven: true });
  const model = (agent.client as { model?: string } | undefined)?.model;
  if (!agent.client || !model) {
    await agent.shutdown();
    throw new Error(`Expected the fake server to be selected, found: ${err.text}`);
  }
  return { agent, url, model };
}

/** Remembers when it was first written to, and what was written. */
class RecordingOutput implements Output {
  firstAt = 0;
  text = "";
  write(text: string): void {
    if (!this.firstAt) this.firstAt = performance.now();
    this.text += text;
  }
}

/** Writes to a real file descriptor, synchronously, the way `stdoutOutput` does. */
class FileOutput implements Output {
  bytes = 0;
  constructor(readonly file: Deno.FsFile) {}
  write(text: string): void {
    const data = encoder.encode(text);
    let n = 0;
    while (n < data.length) n += this.file.writeSync(data.subarray(n));
    this.bytes += data.length;
  }
}

/** The raw baseline: one streamed request, SSE parsed by hand; returns the content deltas seen. */
async function rawStream(
  s: BenchSession,
  messages: Message[],
  onToken: (text: string) => void,
): Promise<number> {
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: s.model,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok || !res.body) throw new Error(`Expected 200 from the fake, found ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = "";
  let tokens = 0;
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let start = 0;
    let end: number;
    while ((end = buffer.indexOf("\n\n", start)) >= 0) {
      const event = buffer.slice(start, end);
      start = end + 2;
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") continue;
      const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string } }[] };
      const content = parsed.choices?.[0]?.delta?.content;
      if (content) {
        tokens++;
        onToken(content);
      }
    }
    buffer = buffer.slice(start);
  }
  return tokens;
}

function turnIO(out: Output): TurnIO {
  return { out, err: nullOutput, spinner: false, color: false };
}

/** Harvey's time to first token for one prompt, from the call to the first `out.write`. */
async function harveyTtft(s: BenchSession, prompt: string): Promise<number> {
  s.agent.clearHistory();
  const out = new RecordingOutput();
  const started = performance.now();
  await runPrompt(s.agent, prompt, turnIO(out));
  if (!out.text.startsWith(SHORT_REPLY.split(" ")[0])) {
    throw new Error(`Expected the fake server's reply, found: ${out.text.slice(0, 80)}`);
  }
  return out.firstAt - started;
}

async function rawTtft(s: BenchSession, prompt: string): Promise<number> {
  s.agent.clearHistory();
  const messages: Message[] = [...s.agent.history, { role: "user", content: prompt }];
  let firstAt = 0;
  const started = performance.now();
  await rawStream(s, messages, () => {
    if (!firstAt) firstAt = performance.now();
  });
  if (!firstAt) throw new Error("Expected a reply from the fake server, found none");
  return firstAt - started;
}

async function ttftBench(s: BenchSession): Promise<BenchResult[]> {
  // The first request of each path pays one-time costs (Harvey: what the first prompt loads,
  // here only the openai SDK: this process imported the rest).
  const harveyCold = await harveyTtft(s, "hello");
  const rawCold = await rawTtft(s, "hello");
  for (let i = 0; i < TTFT_WARMUP; i++) {
    await harveyTtft(s, "hello");
    await rawTtft(s, "hello");
  }
  const harveyMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < TTFT_RUNS; i++) {
    harveyMs.push(await harveyTtft(s, "hello"));
    rawMs.push(await rawTtft(s, "hello"));
  }
  const value = median(harveyMs);
  const baseline = median(rawMs);
  const added = value - baseline;
  progress(
    `ttft: Harvey ${value.toFixed(2)} ms, raw ${baseline.toFixed(2)} ms; ` +
      `cold ${harveyCold.toFixed(1)} ms vs ${rawCold.toFixed(1)} ms`,
  );
  return [
    {
      name: "time to first token, warm (median)",
      value: round(value, 2),
      unit: "ms",
      baseline: round(baseline, 2),
      ratio: round(value / baseline),
    },
    {
      name: "time to first token added by Harvey",
      value: round(added, 2),
      unit: "ms",
      target: `≤ ${TTFT_TARGET_ADDED_MS} ms`,
      pass: added <= TTFT_TARGET_ADDED_MS,
    },
    {
      name: "first prompt sent the moment start-up ends, in process (script, -p)",
      value: round(harveyCold, 1),
      unit: "ms",
      baseline: round(rawCold, 1),
      ratio: round(harveyCold / rawCold),
    },
  ];
}

async function streamBench(s: BenchSession): Promise<BenchResult[]> {
  const devNull = await Deno.open("/dev/null", { write: true });
  try {
    const harveyRun = async () => {
      s.agent.clearHistory();
      const out = new FileOutput(devNull);
      const started = performance.now();
      await runPrompt(s.agent, STREAM_PROMPT, turnIO(out));
      const ms = performance.now() - started;
      // Every token plus the newline Harvey adds after a reply that lacks one.
      if (out.bytes < STREAM_TOKENS * 2) {
        throw new Error(`Expected ${STREAM_TOKENS} tokens through Harvey, got ${out.bytes} bytes`);
      }
      return (STREAM_TOKENS / ms) * 1000;
    };
    const rawRun = async () => {
      s.agent.clearHistory();
      const out = new FileOutput(devNull);
      const messages: Message[] = [...s.agent.history, { role: "user", content: STREAM_PROMPT }];
      const started = performance.now();
      const tokens = await rawStream(s, messages, (t) => out.write(t));
      const ms = performance.now() - started;
      if (tokens !== STREAM_TOKENS) {
        throw new Error(`Expected ${STREAM_TOKENS} tokens from the fake, got ${tokens}`);
      }
      return (tokens / ms) * 1000;
    };
    await harveyRun();
    await rawRun();
    const harveyTps: number[] = [];
    const rawTps: number[] = [];
    for (let i = 0; i < STREAM_RUNS; i++) {
      harveyTps.push(await harveyRun());
      rawTps.push(await rawRun());
    }
    const value = median(harveyTps);
    const baseline = median(rawTps);
    progress(`stream: Harvey ${value.toFixed(0)} tok/s, raw ${baseline.toFixed(0)} tok/s`);
    return [{
      name: `stream ${STREAM_TOKENS.toLocaleString("en-US")} tokens to a file descriptor`,
      value: Math.round(value),
      unit: "tok/s",
      baseline: Math.round(baseline),
      ratio: round(value / baseline),
      target: `≥ ${STREAM_TARGET_RATIO}× raw`,
      pass: value / baseline >= STREAM_TARGET_RATIO,
    }];
  } finally {
    devNull.close();
  }
}

if (import.meta.main) {
  const started = performance.now();
  printResults("core_bench", await run());
  console.log(`core_bench took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
