/**
 * `/bench` and `harvey bench` against fixture models: one good at tools (`fake_agent.ts`
 * `tools`), one that never calls (`prose`), one that cannot start — on Ollama, on a
 * llama-server at the llamafile URL (which checks the grammar of every text-mode request),
 * and on registered GGUF files served by a fake llama-server started as Harvey starts one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fakeAgent } from "./fixtures/fake_agent.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { makeFakeAgentServer, writeGguf } from "./fixtures/make_fake_llama_cpp.ts";
import { runHarvey } from "./harvey_child.ts";
import { testSession } from "./helpers.ts";
import { benchTasks } from "../src/model_bench/tasks.ts";

type Body = { messages: { role: string; content: string }[]; tools?: unknown[]; grammar?: string };

function ollamaWith(models: Record<string, "tools" | "prose">, toolModels: string[]) {
  return startFakeOllama({
    models: Object.keys(models),
    toolModels,
    respond: (messages, model, request) =>
      fakeAgent(models[model] ?? models[`${model}:latest`] ?? "prose")(messages, request),
  });
}

const GHOST_YAML = "llamacpp:\n  models:\n    - name: ghost\n      path: Models/ghost.gguf\n";

Deno.test("/bench measures every local model, keeps going past one that fails, and auto uses it", async () => {
  const fake = await ollamaWith({ "agent:latest": "tools", "story:latest": "prose" }, ["agent"]);
  const s = await testSession({
    files: { "agents/harvey.yaml": GHOST_YAML, "keep.txt": "mine\n" },
    flags: { ollama: fake.url, model: "story:latest" },
    selectBackend: true,
  });
  try {
    assert.equal(await s.run("/bench"), 0, s.err.text);
    const out = s.out.text;
    assert.match(
      out,
      /Benchmarking agent:latest \(1 of 3\)\.\.\.\n✓ agent:latest: tool tasks native 10\/10, text 10\/10\n/,
    );
    assert.match(out, /✓ story:latest: tool tasks text 0\/10\n/);
    assert.match(out, /✗ ghost: No file at .*ghost\.gguf/);
    // The table: speed figures for the models that ran, the failure on its row.
    assert.match(
      out,
      /model\s+source\s+load\s+1st token\s+prompt t\/s\s+gen t\/s\s+native\s+text\n/,
    );
    assert.match(
      out,
      /agent:latest\s+ollama\s+[\d.]+ s\s+[\d.]+ s\s+\d+\s+\d+\s+10\/10\s+10\/10\n/,
    );
    // The model in use is measured as it runs: its load time is not known.
    assert.match(out, /story:latest\s+ollama\s+—\s+[\d.]+ s\s+\d+\s+\d+\s+—\s+0\/10\n/);
    assert.match(out, /ghost\s+gguf\s+failed: No file at/);
    // Native tasks went with definitions, text tasks with the protocol in the system prompt.
    const bodies = fake.requests.filter((r) => r.path === "/api/chat").map((r) => r.body as Body);
    assert.ok(bodies.some((b) => b.tools?.length));
    assert.ok(bodies.some((b) => !b.tools && b.messages[0]?.content.includes("## Tools")));
    // The tasks ran in a scratch workspace, not in this one.
    assert.equal(await Deno.readTextFile(join(s.root, "keep.txt")), "mine\n");
    await assert.rejects(Deno.stat(join(s.root, "notes")), Deno.errors.NotFound);
    // Kept in the knowledge base: /bench results, /kb search, and /tools mode auto.
    s.out.text = "";
    assert.equal(await s.run("/bench results\n/kb search bench agent"), 0, s.err.text);
    assert.match(s.out.text, /agent:latest\s+ollama\s.*10\/10\s+10\/10\n/);
    assert.match(s.out.text, /model-bench: \[bench\] \[agent\]:latest \(ollama\): load [\d.]+ s/);
    assert.equal(await s.run("/tools"), 0, s.err.text);
    assert.match(
      s.out.text,
      /Mode:\s+off — no tools; auto: \/bench scored text 0\/10 on \d{4}-\d\d-\d\d: no tool task passed/,
    );
    const before = bodies.length;
    assert.equal(await s.run("tell me a story"), 0, s.err.text);
    const plain = fake.requests.filter((r) => r.path === "/api/chat").map((r) => r.body as Body)
      .slice(before);
    assert.equal(plain[0].tools, undefined);
    assert.doesNotMatch(plain[0].messages[0].content, /## Tools/, "off: no tools at all");
    assert.equal(await s.run("/model use agent:latest\n/tools"), 0, s.err.text);
    assert.match(s.out.text, /Mode:\s+native — .*auto: \/bench scored native 10\/10, text 10\/10/);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("/bench on a llama-server: text-mode calls pass the grammar it checks", async () => {
  const fake = await startFakeOpenAI({ nCtx: 16384, respond: fakeAgent("tools") });
  const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
  try {
    assert.equal(await s.run("/bench fake-model --mode text --tasks 4"), 0, s.err.text);
    assert.match(s.out.text, /✓ fake-model: tool tasks text 4\/4\n/);
    assert.ok(fake.grammars.length >= 8, `${fake.grammars.length} grammars`);
    assert.match(s.out.text, /fake-model\s+llamafile\s.*—\s+4\/4\n/);
    assert.equal(await s.run("/bench nothing-like-it"), 1);
    assert.match(s.err.text, /No local model named "nothing-like-it" — the models are: fake-model/);
    assert.equal(await s.run("/bench --tasks 11"), 2, "a usage error");
    assert.match(s.err.text, /--tasks takes a number from 1 to 10, found "11"/);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("Ctrl-C stops /bench at once and keeps the models measured before", async () => {
  const fake = await ollamaWith({ "agent:latest": "tools", "story:latest": "prose" }, ["agent"]);
  const s = await testSession({ flags: { ollama: fake.url }, selectBackend: true });
  const ctl = new AbortController();
  const write = s.out.write.bind(s.out);
  s.out.write = (text: string) => {
    write(text);
    if (text.startsWith("✓ agent:latest")) setTimeout(() => ctl.abort(), 0);
  };
  try {
    assert.equal(await s.run("/bench", { signal: ctl.signal }), 1);
    assert.match(
      s.err.text,
      /Cancelled: \/bench stopped at story:latest; the model measured before is kept/,
    );
    assert.doesNotMatch(s.out.text, /✓ story:latest/);
    s.out.text = "";
    assert.equal(await s.run("/bench results"), 0, s.err.text);
    assert.match(s.out.text, /agent:latest/);
    assert.doesNotMatch(s.out.text, /story:latest/);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("the tasks are solvable, and their checks refuse a wrong answer", async () => {
  const tasks = benchTasks(() => 0);
  assert.equal(tasks.length, 10);
  assert.equal(new Set(tasks.map((t) => t.id)).size, 10);
  for (const task of tasks) {
    const none = () => Promise.resolve(undefined);
    assert.equal(await task.check({ answer: "I do not know", read: none }), false, task.id);
  }
  // Fresh words every run (two runs draw the same one with a chance of 1 in 108,000).
  const words = (t: ReturnType<typeof benchTasks>) => t[0].files["notes/alpha.txt"];
  assert.notEqual(words(benchTasks()), words(benchTasks()));
});

Deno.test("harvey bench: registered GGUF models started by llama-server, a table on stdout", async () => {
  const root = await Deno.makeTempDir({ prefix: "harvey-bench-e2e-" });
  const bin = join(root, "bin");
  const ws = join(root, "ws");
  await Deno.mkdir(bin);
  await Deno.mkdir(join(ws, "Models"), { recursive: true });
  await makeFakeAgentServer(bin);
  await writeGguf(join(ws, "Models", "coder.gguf"), 64, { agent: "tools" });
  await writeGguf(join(ws, "Models", "stories.gguf"), 64, { agent: "prose" });
  await Deno.mkdir(join(ws, "agents"));
  await Deno.writeTextFile(
    join(ws, "agents", "harvey.yaml"),
    "llamacpp:\n  models:\n    - name: coder\n      path: Models/coder.gguf\n" +
      "    - name: stories\n      path: Models/stories.gguf\n",
  );
  const env = { PATH: `${bin}:${Deno.env.get("PATH")}`, OLLAMA_HOST: "http://127.0.0.1:9" };
  try {
    const run = await runHarvey(["bench", "--tasks", "3"], { cwd: ws, env });
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /Benchmarking coder \(1 of 2\)\.\.\.\n✓ coder: tool tasks native 3\/3, text 3\/3\n/,
    );
    assert.match(run.stderr, /✓ stories: tool tasks native 0\/3, text 0\/3\n/);
    assert.match(run.stdout, /^model\s+source\s+load/);
    assert.match(run.stdout, /coder\s+gguf\s+[\d.]+ s\s+[\d.]+ s\s+\d+\s+\d+\s+3\/3\s+3\/3\n/);
    assert.match(run.stdout, /stories\s+gguf\s+.*0\/3\s+0\/3\n/);
    // The servers it started are stopped: no pid file is left.
    const left = [...Deno.readDirSync(join(ws, "agents"))].filter((e) =>
      e.name.endsWith(".pid.json")
    );
    assert.deepEqual(left, []);
    // A later Harvey picks each model's mode from what was measured.
    const later = await runHarvey(["--run", "-"], {
      cwd: ws,
      env,
      stdin: "/llamacpp use stories\n/tools\n",
    });
    assert.equal(later.code, 0, later.stderr);
    assert.match(
      later.stdout,
      /Mode:\s+off — no tools; auto: \/bench scored native 0\/3, text 0\/3/,
    );
    const bad = await runHarvey(["bench", "--mode", "both"], { cwd: ws, env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--mode takes native or text, found "both"/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
