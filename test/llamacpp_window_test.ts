/**
 * llama.cpp's own programs and the window: a llama-server Harvey starts is measured against
 * the `n_ctx` it really has (capped at the model's trained context, divided among `-np`
 * slots), not the `-c` Harvey asked for; the one-shot fallback counts with `llama-tokenize`,
 * is given the reply reserve as `-n`, says when a reply was cut, and reports failures without
 * llama.cpp's start-up log.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runDoctor } from "../src/doctor.ts";
import { chatmlPrompt, failureLines } from "../src/llm/llama_cli.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { countTokens } from "./fixtures/fixture_common.ts";
import {
  makeFakeLlamaCli,
  makeFakeLlamaTokenize,
  makeFakeRolesServer,
  writeGguf,
} from "./fixtures/make_fake_llama_cpp.ts";
import { type TestSession, testSession } from "./helpers.ts";

interface Bench {
  s: TestSession;
  log: string;
  cleanup(): Promise<void>;
}

/** A session whose PATH holds only the fakes `setup` writes, with `Models/tiny.gguf`. */
async function session(
  setup: (bin: string) => Promise<unknown>,
  opts: { yaml?: string; nCtxTrain?: number } = {},
): Promise<Bench> {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  await setup(bin);
  const log = join(bin, "runs.log");
  const s = await testSession({
    files: { "HARVEY.md": "Be brief.", ...(opts.yaml ? { "agents/harvey.yaml": opts.yaml } : {}) },
    env: { PATH: bin, HARVEY_FAKE_LOG: log },
    flags: { ollama: "http://127.0.0.1:9" },
  });
  await Deno.mkdir(join(s.root, "Models"));
  await writeGguf(join(s.root, "Models", "tiny.gguf"), 64, { nCtxTrain: opts.nCtxTrain });
  return {
    s,
    log,
    async cleanup() {
      await s.close();
      await Deno.remove(bin, { recursive: true });
    },
  };
}

async function runs(log: string): Promise<{ mode: string; argv: string[] }[]> {
  const text = await Deno.readTextFile(log).catch(() => "");
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

const long = (n: number) => Array.from({ length: Math.ceil(n / 2) }, (_, i) => `w${i}`).join(" ");

Deno.test("a llama-server Harvey starts: its first turn is checked against the real n_ctx", async (t) => {
  await t.step("-c 8192 on a model trained for 2048 gives 2048", async () => {
    const b = await session((bin) => makeFakeRolesServer(bin), { nCtxTrain: 2048 });
    try {
      assert.equal(await b.s.run("/llamacpp add Models/tiny.gguf\n"), 0, b.s.err.text);
      assert.equal(b.s.agent.contextWindow, 8192, "before it runs: the size asked for");
      // 3,300 tokens fit the 8192 asked for, not the 2048 the server has.
      assert.equal(await b.s.run(`${long(3300)}\n`), 1);
      assert.match(b.s.err.text, /needs \d+ tokens but the context window of 2048 leaves 1638/);
      assert.doesNotMatch(b.s.out.text, /roles /, "nothing was sent");
      const started = (await runs(b.log)).filter((r) => r.mode === "server");
      assert.equal(started.length, 1);
      const argv = started[0].argv;
      assert.equal(argv[argv.indexOf("-c") + 1], "8192", "Harvey asked for 8192");
      assert.equal(await b.s.run("hello\n/status\n"), 0, b.s.err.text);
      assert.match(b.s.out.text, /roles system,user: hello/);
      assert.match(b.s.out.text, /Context: +2048 tokens \(n_ctx reported by the server\)/);
    } finally {
      await b.cleanup();
    }
  });
  await t.step("-np 2 divides the window between the slots", async () => {
    const b = await session((bin) => makeFakeRolesServer(bin), {
      yaml: 'llamacpp:\n  extra_args: [-np, "2"]\n',
    });
    try {
      assert.equal(await b.s.run("/llamacpp add Models/tiny.gguf\nhello\n"), 0, b.s.err.text);
      assert.equal(b.s.agent.contextWindow, 4096);
    } finally {
      await b.cleanup();
    }
  });
});

Deno.test("the one-shot fallback: llama-tokenize counts, -n is the reserve, cuts are said", async (t) => {
  await t.step("llama-tokenize beside it counts the prompt exactly", async () => {
    const b = await session(async (bin) => {
      await makeFakeLlamaCli(bin, { name: "llama-completion" });
      await makeFakeLlamaTokenize(bin);
    }, { yaml: "llamacpp:\n  ctx_size: 256\n" });
    try {
      assert.equal(await b.s.run("/llamacpp add Models/tiny.gguf\n"), 0, b.s.err.text);
      const prompt = long(300);
      assert.equal(await b.s.run(`${prompt}\n`), 1);
      const exact = countTokens(chatmlPrompt([
        { role: "system", content: "Be brief." },
        { role: "user", content: prompt },
      ]));
      assert.match(b.s.err.text, new RegExp(`needs ${exact} tokens but the context window of 256`));
      assert.ok((await runs(b.log)).some((r) => r.mode === "tokenize"));
      assert.ok(!(await runs(b.log)).some((r) => r.mode === "cli"), "nothing was run");
      assert.equal(await b.s.run("hello\n"), 0, b.s.err.text);
      const cli = (await runs(b.log)).find((r) => r.mode === "cli")!;
      assert.equal(cli.argv[cli.argv.indexOf("-n") + 1], "128", "the reply reserve of 256");
    } finally {
      await b.cleanup();
    }
  });
  await t.step("a reply cut at -n says so", async () => {
    const b = await session((bin) => makeFakeLlamaCli(bin), {
      yaml: "context:\n  reply_reserve: 3\n",
    });
    try {
      assert.equal(
        await b.s.run("/llamacpp add Models/tiny.gguf\nplease say a lot of words\n"),
        0,
        b.s.err.text,
      );
      assert.match(b.s.out.text, /echo\(2\): please say \n/, "three pieces");
      assert.match(b.s.err.text, /✂ The reply was cut at its limit of 3 tokens/);
    } finally {
      await b.cleanup();
    }
  });
  await t.step("a failure is its error lines, not the start-up log", async () => {
    const b = await session((bin) =>
      makeFakeLlamaCli(bin, { fail: "llama_model_load: error loading model: invalid magic" })
    );
    try {
      assert.equal(await b.s.run("/llamacpp add Models/tiny.gguf\nhi\n"), 1);
      const line = b.s.err.text.trim().split("\n").at(-1)!;
      assert.match(
        line,
        /llama-cli exited with status 1: llama_model_load: error loading model: invalid magic \| main: error: unable to load model$/,
      );
      assert.doesNotMatch(line, /system_info|AVX/);
      assert.ok(line.length < 300);
    } finally {
      await b.cleanup();
    }
  });
});

Deno.test("failureLines keeps errors and drops llama.cpp's start-up log", () => {
  assert.deepEqual(
    failureLines([
      "build: 4589 (1a2b3c4) with cc",
      `system_info: n_threads = 8 | ${"AVX = 1 | ".repeat(40)}`,
      "llama_model_loader: - kv 0: general.architecture str = llama",
      "gguf_init_from_file: failed to read magic",
      "main: error: unable to load model",
    ]),
    ["gguf_init_from_file: failed to read magic", "main: error: unable to load model"],
  );
  assert.deepEqual(failureLines(["something odd happened"]), ["something odd happened"]);
  assert.equal(failureLines([`error: ${"x".repeat(400)}`])[0].length, 160);
});

Deno.test("harvey doctor does not mark a chat-only llama-cli as the one-shot fallback", async () => {
  const b = await session((bin) => makeFakeLlamaCli(bin, { build: 7400 }));
  try {
    const out = new BufferOutput();
    await runDoctor(b.s.agent, out, { os: "linux" });
    assert.match(
      out.text,
      /✗ llama-cli +\S+\/llama-cli — build 7400 is an interactive chat only, no one-shot fallback/,
    );
    assert.doesNotMatch(out.text, /✓ llama-cli/);
  } finally {
    await b.cleanup();
  }
});
