import assert from "node:assert/strict";
import { join } from "node:path";
import { LazyServerClient } from "../src/llm/lazy_server_client.ts";
import {
  chatmlPrompt,
  llamaCliArgs,
  LlamaCliClient,
  parseLlamaPerf,
  StopFilter,
} from "../src/llm/llama_cli.ts";
import { processAlive } from "../src/runtime/pid_file.ts";
import {
  makeFakeLlamaCli,
  makeFakeRolesServer,
  writeGguf,
} from "./fixtures/make_fake_llama_cpp.ts";
import { type TestSession, testSession } from "./helpers.ts";

interface Bench {
  bin: string;
  log: string;
  s: TestSession;
  cleanup(): Promise<void>;
}

/**
 * A session whose PATH holds only `bin` (with the fakes the test writes there), whose
 * ~/Models holds `qwen-tiny.gguf` and `other.gguf`, and whose fakes log every run.
 */
async function ggufSession(
  setup: (bin: string) => Promise<unknown>,
  opts: { yaml?: string; flags?: Record<string, string> } = {},
): Promise<Bench> {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  await setup(bin);
  const log = join(bin, "runs.log");
  const s = await testSession({
    files: opts.yaml ? { "agents/harvey.yaml": opts.yaml } : {},
    env: { PATH: bin, HARVEY_FAKE_LOG: log },
    flags: { ollama: "http://127.0.0.1:9", ...opts.flags },
  });
  await Deno.mkdir(join(s.root, "Models"));
  await writeGguf(join(s.root, "Models", "qwen-tiny.gguf"));
  await writeGguf(join(s.root, "Models", "other.gguf"), 2000);
  return {
    bin,
    log,
    s,
    async cleanup() {
      await s.close();
      await Deno.remove(bin, { recursive: true });
    },
  };
}

async function runs(log: string): Promise<{ mode: string; pid: number; argv: string[] }[]> {
  try {
    return (await Deno.readTextFile(log)).trim().split("\n").map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

Deno.test("a request-scoped llama-server: lazy start, warm for the session, stopped on switch", async (t) => {
  const b = await ggufSession((bin) => makeFakeRolesServer(bin), {
    yaml: "llamacpp:\n  ctx_size: 3072\n  gpu_layers: 0\n  extra_args: [--jinja]\n",
  });
  const { s } = b;
  try {
    await t.step("the first add selects the model; nothing starts yet", async () => {
      assert.equal(await s.run("/llamacpp add\n2\n"), 0, s.err.text);
      assert.equal(
        s.out.text,
        "GGUF files found in ~/Models:\n" +
          "  [1] other.gguf (2.0 KB)\n" +
          "  [2] qwen-tiny.gguf (64 B)\n" +
          "Select [1-2] or enter a path: 2\n" +
          "✓ Using model: qwen-tiny (llama-server starts with the first message)\n" +
          "Saved to agents/harvey.yaml — Harvey will connect automatically on next start.\n",
      );
      assert.equal(s.agent.supervisor.spawnCount, 0);
      assert.equal(s.agent.contextWindow, 3072, "the size it will be started with");
      const yaml = await Deno.readTextFile(join(s.root, "agents", "harvey.yaml"));
      assert.match(yaml, /ctx_size: 3072/);
      assert.match(
        yaml,
        new RegExp(`- name: qwen-tiny\n +path: ${s.root}/Models/qwen-tiny\\.gguf`),
      );
      assert.match(yaml, /active: qwen-tiny/);
    });

    await t.step("the first message starts it; later turns reuse it", async () => {
      s.out.text = "";
      assert.equal(await s.run("hello\nsecond\nthird\n"), 0, s.err.text);
      assert.equal(
        s.out.text,
        "roles system,user: hello\n" +
          "roles system,user,assistant,user: second\n" +
          "roles system,user,assistant,user,assistant,user: third\n",
      );
      assert.equal(s.agent.supervisor.spawnCount, 1, "one server for every turn");
      const started = await runs(b.log);
      assert.equal(started.length, 1);
      assert.deepEqual(started[0].argv.slice(4), [
        "--port",
        started[0].argv[5],
        "-c",
        "3072",
        "-ngl",
        "0",
        "--slot-save-path",
        join(s.root, "agents", "slots"),
        "--jinja",
      ]);
      assert.equal(s.agent.contextWindow, 3072, "n_ctx read back from the running server");
    });

    await t.step("status shows the running server and its context", async () => {
      s.out.text = "";
      assert.equal(await s.run("/llamacpp status\n/status\n"), 0);
      assert.match(
        s.out.text,
        /Running: +yes — qwen-tiny at http:\/\/127\.0\.0\.1:\d+, pid \d+, n_ctx 3072/,
      );
      assert.match(s.out.text, new RegExp(`llama-server: +${b.bin}/llama-server\n`));
      assert.match(s.out.text, /Context: +3072 tokens \(n_ctx reported by the server\)/);
    });

    const client = s.agent.client as LazyServerClient;
    const first = client.server!;
    await t.step(
      "a second add asks for a name; use starts the new server, then stops the old",
      async () => {
        s.out.text = "";
        assert.equal(await s.run("/llamacpp add\n1\nsmall\n/llamacpp use small\n"), 0, s.err.text);
        const url = (s.agent.client as LazyServerClient).server?.url;
        assert.equal(
          s.out.text,
          "GGUF files found in ~/Models:\n" +
            "  [1] other.gguf (2.0 KB)\n" +
            "  [2] qwen-tiny.gguf (64 B) (registered as qwen-tiny)\n" +
            "Select [1-2] or enter a path: 1\n" +
            "Name [other]: small\n" +
            "Registered small — use /llamacpp use small to switch.\n" +
            "Starting small...\n" +
            `✓ Using model: small (llama-server is running at ${url})\n` +
            "Stopped qwen-tiny.\n",
        );
        assert.equal(first.running, false);
        assert.equal(processAlive(first.pid!), false);
        assert.equal(s.agent.supervisor.spawnCount, 2, "a model ran: the new one started at once");
        assert.equal(await s.run("fourth\n"), 0);
        assert.equal(s.agent.supervisor.spawnCount, 2);
        assert.equal(
          (s.agent.client as LazyServerClient).server?.modelPath,
          `${s.root}/Models/other.gguf`,
        );
      },
    );

    await t.step("stop keeps the model selected; the next message starts it again", async () => {
      s.out.text = "";
      assert.equal(await s.run("/llamacpp stop\nfifth\n/llamacpp list\n"), 0, s.err.text);
      assert.match(
        s.out.text,
        /^Stopping small\.\.\.\nStopped small; it starts again with the next message\.\n/,
      );
      assert.equal(s.agent.supervisor.spawnCount, 3);
      assert.match(
        s.out.text,
        /Registered GGUF models:\n  qwen-tiny  ~\/Models\/qwen-tiny\.gguf \(64 B\)\n→ small +~\/Models\/other\.gguf \(2\.0 KB\)\n/,
      );
    });

    await t.step("rename and remove", async () => {
      assert.equal(await s.run("/llamacpp rename small s2\n/llamacpp remove qwen-tiny\n"), 0);
      const yaml = await Deno.readTextFile(join(s.root, "agents", "harvey.yaml"));
      assert.match(yaml, /active: s2/);
      assert.doesNotMatch(yaml, /qwen-tiny/);
    });
  } finally {
    const server = (s.agent.client as LazyServerClient | undefined)?.server;
    await b.cleanup();
    if (server?.pid) {
      assert.equal(processAlive(server.pid), false, "the server dies with the session");
    }
  }
});

Deno.test("--gguf PATH is used for this session only, lazily, over the saved active model", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  const models = await Deno.makeTempDir({ prefix: "harvey_models_" });
  const yaml =
    "llamafile:\n  active: saved\n  models:\n    - name: saved\n      path: saved.llamafile\n";
  try {
    await makeFakeRolesServer(bin);
    const gguf = await writeGguf(join(models, "session-model.gguf"));
    const s = await testSession({
      env: { PATH: bin },
      files: { "agents/harvey.yaml": yaml },
      flags: { gguf, ollama: "http://127.0.0.1:9" },
      selectBackend: true,
    });
    try {
      assert.match(
        s.err.text,
        /✓ Using model: session-model \(llama-server starts with the first message\)/,
      );
      assert.doesNotMatch(s.err.text, /Checking llamafile/, "the saved model is not used");
      assert.equal(s.agent.supervisor.spawnCount, 0);
      assert.equal(await s.run("hi\nagain\n/llamacpp status\n"), 0, s.err.text);
      assert.match(s.out.text, /roles system,user: hi\nroles system,user,assistant,user: again\n/);
      assert.match(s.out.text, /This session: +session-model \(--gguf, not saved\)/);
      assert.equal(s.agent.supervisor.spawnCount, 1);
      assert.equal(await Deno.readTextFile(join(s.root, "agents", "harvey.yaml")), yaml);
    } finally {
      await s.close();
    }
  } finally {
    await Deno.remove(bin, { recursive: true });
    await Deno.remove(models, { recursive: true });
  }
});

Deno.test("without llama-server, every turn runs llama-cli once, said once", async (t) => {
  const b = await ggufSession((bin) => makeFakeLlamaCli(bin));
  const { s } = b;
  try {
    await t.step("add and two turns: the history is flattened into one prompt", async () => {
      assert.equal(
        await s.run("/llamacpp add Models/qwen-tiny.gguf\nhello there\nand again\n"),
        0,
        s.err.text,
      );
      assert.match(
        s.out.text,
        /llama-server was not found: every message runs llama-cli once, loading the model each time/,
      );
      assert.match(s.out.text, /✓ Using model: qwen-tiny \(one-shot llama-cli\)\n/);
      assert.match(s.out.text, /echo\(2\): hello there\necho\(4\): and again\n/);
      assert.doesNotMatch(s.out.text, /invented turn|end of text|im_end/);
      assert.deepEqual(s.agent.history.at(-1), {
        role: "assistant",
        content: "echo(4): and again",
      });
      const all = await runs(b.log);
      assert.equal(all.length, 2, "one run per turn");
      const argv = all[1].argv;
      assert.deepEqual(argv.slice(0, 8), [
        "-m",
        `${s.root}/Models/qwen-tiny.gguf`,
        "-c",
        "8192",
        "-n",
        "1639", // the reply reserve of an 8192-token window
        "-no-cnv",
        "--no-display-prompt",
      ]);
      assert.equal(argv[8], "-p");
      assert.match(
        argv[9],
        /<\|im_start\|>system\n[\s\S]*<\|im_end\|>\n<\|im_start\|>user\nhello there<\|im_end\|>\n<\|im_start\|>assistant\necho\(2\): hello there<\|im_end\|>\n<\|im_start\|>user\nand again<\|im_end\|>\n<\|im_start\|>assistant\n$/,
      );
      assert.match(s.err.text, /3 tokens · [\d.]+ tok\/s/, "llama.cpp's own counts are read");
      assert.equal(s.agent.contextWindow, 8192);
    });

    await t.step("the notice comes once per session", async () => {
      s.out.text = "";
      assert.equal(await s.run("/llamacpp add Models/other.gguf o\n/llamacpp use o\nhi\n"), 0);
      assert.doesNotMatch(s.out.text, /was not found/);
      assert.match(s.out.text, /echo\(6\): hi\n/);
    });
  } finally {
    await b.cleanup();
  }
});

Deno.test("llama-cli: llama-completion preferred, chat-only builds refused, failures reported", async (t) => {
  await t.step("llama-completion is used when both are installed", async () => {
    const b = await ggufSession(async (bin) => {
      await makeFakeLlamaCli(bin);
      await makeFakeLlamaCli(bin, { name: "llama-completion" });
    });
    try {
      assert.equal(await b.s.run("/llamacpp add Models/qwen-tiny.gguf\nhi\n"), 0, b.s.err.text);
      assert.match(b.s.out.text, /every message runs llama-completion once/);
      assert.equal(b.s.agent.client?.name, "llama-completion:qwen-tiny");
    } finally {
      await b.cleanup();
    }
  });
  await t.step("a llama-cli of build 7348 or later is only a chat", async () => {
    const b = await ggufSession((bin) => makeFakeLlamaCli(bin, { build: 7400 }));
    try {
      assert.equal(await b.s.run("/llamacpp add Models/qwen-tiny.gguf\n"), 1);
      assert.match(
        b.s.err.text,
        /is llama\.cpp build 7400, whose llama-cli is an interactive chat only/,
      );
    } finally {
      await b.cleanup();
    }
  });
  await t.step("a failing run names the status and its last words", async () => {
    const b = await ggufSession((bin) => makeFakeLlamaCli(bin, { fail: "error: bad magic" }));
    try {
      assert.equal(await b.s.run("/llamacpp add Models/qwen-tiny.gguf\nhi\n"), 1);
      assert.match(b.s.err.text, /llama-cli exited with status 1: .*error: bad magic/);
    } finally {
      await b.cleanup();
    }
  });
  await t.step("neither program: a clear error", async () => {
    const b = await ggufSession(() => Promise.resolve());
    try {
      assert.equal(await b.s.run("/llamacpp add Models/qwen-tiny.gguf\n"), 1);
      assert.match(b.s.err.text, /Neither llama-server nor llama-cli was found on PATH/);
      assert.equal(await b.s.run("/llamacpp add Models/nothing.gguf x\n"), 1);
      assert.match(b.s.err.text, /No file at Models\/nothing\.gguf/);
      await Deno.writeTextFile(join(b.s.root, "Models", "fake.gguf"), "not a model");
      assert.equal(await b.s.run("/llamacpp add Models/fake.gguf y\n"), 1);
      assert.match(b.s.err.text, /Models\/fake\.gguf is not a GGUF file/);
    } finally {
      await b.cleanup();
    }
  });
});

Deno.test("llama-cli streams its output token by token", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  try {
    const gate = join(bin, "gate");
    const cli = await makeFakeLlamaCli(bin, { gate });
    const gguf = await writeGguf(join(bin, "m.gguf"));
    const client = new LlamaCliClient({
      program: { path: cli, name: "llama-cli" },
      modelPath: gguf,
      model: "m",
      ctxSize: 1024,
      env: { PATH: bin },
    });
    const tokens: string[] = [];
    // The fake holds the rest of its reply until the gate exists: a client that waited for
    // the process to end would never see the first token, and the fake would time out.
    await client.chat([{ role: "user", content: "one two three" }], {
      onToken(t) {
        if (tokens.length === 0) Deno.writeTextFileSync(gate, "");
        tokens.push(t);
      },
    });
    assert.equal(tokens.join(""), "echo(1): one two three");
    assert.ok(tokens.length > 1);
    await client.close();
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("ChatML prompt, stop filter, perf lines and arguments", () => {
  assert.equal(
    chatmlPrompt([{ role: "system", content: "S" }, { role: "user", content: "U" }]),
    "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n",
  );
  const f = new StopFilter();
  assert.equal(f.push("Hello <|im"), "Hello ");
  assert.equal(f.push("_end|> more"), "");
  assert.equal(f.stopped, true);
  assert.equal(f.push("x"), "");
  const g = new StopFilter();
  assert.equal(g.push("a <"), "a ");
  assert.equal(g.push("b"), "<b");
  assert.equal(g.push(" ["), "");
  assert.equal(g.push("x"), " [x");
  assert.equal(g.push(" [end of"), "");
  assert.equal(g.push(" text]\n"), "");
  assert.equal(g.flush(), "");
  const h = new StopFilter();
  assert.equal(h.push("tail <|"), "tail ");
  assert.equal(h.flush(), "<|");
  assert.deepEqual(
    parseLlamaPerf([
      "llama_perf_context_print: prompt eval time =     120.00 ms /    42 tokens (  2.86 ms per token)",
      "llama_perf_context_print:        eval time =     500.00 ms /    25 runs   ( 20.00 ms per token)",
    ]),
    { promptTokens: 42, replyTokens: 25, evalMs: 500 },
  );
  const opts = {
    program: { path: "/x/llama-cli", name: "llama-cli" },
    modelPath: "/m.gguf",
    model: "m",
    ctxSize: 4096,
    gpuLayers: 20,
    maxTokens: 100,
    env: {},
  };
  assert.deepEqual(llamaCliArgs(opts, { file: "/tmp/p.txt" }), [
    "-m",
    "/m.gguf",
    "-c",
    "4096",
    "-n",
    "100",
    "-no-cnv",
    "--no-display-prompt",
    "-ngl",
    "20",
    "-f",
    "/tmp/p.txt",
  ]);
});

Deno.test("a long history goes to llama-cli through a prompt file", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  try {
    const cli = await makeFakeLlamaCli(bin);
    const gguf = await writeGguf(join(bin, "m.gguf"));
    const client = new LlamaCliClient({
      program: { path: cli, name: "llama-cli" },
      modelPath: gguf,
      model: "m",
      ctxSize: 200_000,
      env: { PATH: bin, HARVEY_FAKE_LOG: join(bin, "log") },
    });
    let reply = "";
    const big = "x".repeat(150_000);
    await client.chat([{ role: "user", content: big }, { role: "user", content: "last" }], {
      onToken: (t) => reply += t,
    });
    assert.equal(reply, "echo(2): last");
    const argv = (await runs(join(bin, "log")))[0].argv;
    assert.equal(argv.at(-2), "-f");
    await assert.rejects(
      Deno.stat(argv.at(-1)!),
      Deno.errors.NotFound,
      "the prompt file is removed",
    );
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("start-up selects the active GGUF model lazily; -m names another registered one", async (t) => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  const models = await Deno.makeTempDir({ prefix: "harvey_models_" });
  try {
    await makeFakeRolesServer(bin);
    const a = await writeGguf(join(models, "a.gguf"));
    const b = await writeGguf(join(models, "b.gguf"));
    const files = {
      "agents/harvey.yaml": "llamacpp:\n  active: first\n  models:\n" +
        `    - name: first\n      path: ${a}\n    - name: second\n      path: ${b}\n`,
    };
    await t.step("the active model, nothing started", async () => {
      const s = await testSession({
        files,
        env: { PATH: bin },
        flags: { ollama: "http://127.0.0.1:9" },
        selectBackend: true,
      });
      try {
        assert.match(
          s.err.text,
          /✓ Using model: first \(llama-server starts with the first message\)/,
        );
        assert.doesNotMatch(s.err.text, /Ollama/);
        assert.equal(s.agent.supervisor.spawnCount, 0);
        assert.equal(await s.run("hi\n"), 0, s.err.text);
        assert.equal((s.agent.client as LazyServerClient).server?.modelPath, a);
      } finally {
        await s.close();
      }
    });
    await t.step("-m second", async () => {
      const s = await testSession({
        files,
        env: { PATH: bin },
        flags: { ollama: "http://127.0.0.1:9", model: "second" },
        selectBackend: true,
      });
      try {
        assert.match(s.err.text, /✓ Using model: second\n/);
        assert.equal(await s.run("hi\n"), 0, s.err.text);
        assert.equal((s.agent.client as LazyServerClient).server?.modelPath, b);
      } finally {
        await s.close();
      }
    });
  } finally {
    await Deno.remove(bin, { recursive: true });
    await Deno.remove(models, { recursive: true });
  }
});

Deno.test("a model that runs past the end marker is cut there and stopped", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  try {
    const log = join(bin, "log");
    const cli = await makeFakeLlamaCli(bin, { runaway: true });
    const client = new LlamaCliClient({
      program: { path: cli, name: "llama-cli" },
      modelPath: await writeGguf(join(bin, "m.gguf")),
      model: "m",
      ctxSize: 1024,
      env: { PATH: bin, HARVEY_FAKE_LOG: log },
    });
    let reply = "";
    const stats = await client.chat([{ role: "user", content: "stop me" }], {
      onToken: (t) => reply += t,
    });
    assert.equal(reply, "echo(1): stop me");
    assert.equal(stats.replyTokens > 0, true, "estimated when llama.cpp had no time to count");
    const all = await runs(log);
    assert.equal(processAlive(all[0].pid), false);
    assert.equal(all.some((r) => r.mode === "runaway-finished"), false, "it was stopped");
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("ctx_size 0: the context window is read back once the server runs", async () => {
  const b = await ggufSession((bin) => makeFakeRolesServer(bin), {
    yaml: "llamacpp:\n  ctx_size: 0\n",
  });
  try {
    const { s } = b;
    assert.equal(await s.run("/llamacpp add Models/qwen-tiny.gguf\n/status\n"), 0, s.err.text);
    assert.match(s.out.text, /Context: +unknown\n/);
    assert.equal(await s.run("hi\n/status\n"), 0, s.err.text);
    assert.equal(s.agent.contextWindow, 8192, "the model's own size, from the server");
    assert.match(s.out.text, /Context: +8192 tokens \(n_ctx reported by the server\)/);
    assert.deepEqual((await runs(b.log))[0].argv.slice(-5, -2), ["-c", "0", "--slot-save-path"]);
  } finally {
    await b.cleanup();
  }
});

Deno.test("aborting a llama-cli turn stops the run", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  try {
    const log = join(bin, "log");
    const gate = join(bin, "never");
    const cli = await makeFakeLlamaCli(bin, { gate });
    const client = new LlamaCliClient({
      program: { path: cli, name: "llama-cli" },
      modelPath: await writeGguf(join(bin, "m.gguf")),
      model: "m",
      ctxSize: 1024,
      env: { PATH: bin, HARVEY_FAKE_LOG: log },
    });
    const ctl = new AbortController();
    await assert.rejects(
      client.chat([{ role: "user", content: "a b c" }], {
        signal: ctl.signal,
        onToken: () => ctl.abort(),
      }),
      (err: Error) => err.name === "AbortError",
    );
    assert.equal(processAlive((await runs(log))[0].pid), false);
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});
