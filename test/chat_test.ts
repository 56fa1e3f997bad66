import assert from "node:assert/strict";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { OpenAICompatClient } from "../src/llm/openai_compat.ts";
import { OllamaClient } from "../src/llm/ollama.ts";
import { CUT_OFF_MARK, INTERRUPTED_MARK } from "../src/repl/turn.ts";
import { testSession } from "./helpers.ts";

const REPLY = "The quick brown fox jumps over the lazy dog.";

Deno.test("OpenAI-compatible streaming: tokens arrive one by one, usage read wherever it comes", async (t) => {
  for (const usage of ["final-chunk", "separate", "none"] as const) {
    await t.step(`usage ${usage}`, async () => {
      const fake = await startFakeOpenAI({ usage, reply: () => REPLY });
      try {
        const client = new OpenAICompatClient({
          baseUrl: fake.url,
          model: "fake-model",
          label: "llamafile",
        });
        const tokens: string[] = [];
        const stats = await client.chat([{ role: "user", content: "hi there" }], {
          onToken: (tok) => tokens.push(tok),
        });
        assert.equal(tokens.join(""), REPLY);
        assert.ok(tokens.length > 5, "streamed in pieces, not one block");
        assert.equal(stats.replyTokens, tokens.length);
        if (usage !== "none") assert.ok(stats.promptTokens > 0);
        assert.ok(stats.tokensPerSec > 0);
      } finally {
        await fake.close();
      }
    });
  }
});

Deno.test("Ollama streaming: stats from the final done packet", async () => {
  const fake = await startFakeOllama({ models: ["llama3.2:latest"], reply: () => REPLY });
  try {
    const client = new OllamaClient(fake.url, "llama3.2:latest");
    let text = "";
    const stats = await client.chat([{ role: "user", content: "hi" }], {
      onToken: (t) => text += t,
    });
    assert.equal(text, REPLY);
    assert.ok(stats.replyTokens > 0);
    assert.ok(stats.promptTokens > 0);
    assert.ok(stats.tokensPerSec > 0);
    assert.deepEqual(await client.models(), ["llama3.2:latest"]);
  } finally {
    await fake.close();
  }
});

Deno.test("a session streams through the headless runner and keeps history and stats", async () => {
  const fake = await startFakeOpenAI({ reply: (m) => `You said: ${m.at(-1)?.content}` });
  const s = await testSession({
    flags: { llamafileUrl: fake.url },
    env: { OPENAI_API_KEY: "sk-should-never-be-sent" },
    selectBackend: true,
  });
  try {
    assert.equal(await s.run("hello\n# a comment\n\nsecond prompt\n"), 0);
    assert.match(s.out.text, /You said: hello\n/);
    assert.match(s.out.text, /You said: second prompt\n/);
    assert.match(s.err.text, /\d+ tokens · [\d.]+ tok\/s · [\d.]+s/);
    assert.deepEqual(s.agent.history.slice(1).map((m) => m.role), [
      "user",
      "assistant",
      "user",
      "assistant",
    ]);
    assert.equal(s.agent.stats.items.length, 2);
    const chats = fake.requests.filter((r) => r.path === "/v1/chat/completions");
    assert.equal(chats.length, 2);
    for (const r of fake.requests) assert.equal(r.headers["authorization"], undefined);
    // The second request carries the whole history.
    const body = chats[1].body as { messages: { content: string }[] };
    assert.equal(body.messages.length, 4);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("Ctrl-C aborts the reply only: partial kept and marked, the next prompt works", async () => {
  const fake = await startFakeOpenAI({ reply: () => "one two three four five six seven eight" });
  const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
  try {
    fake.script({ tokenDelayMs: 40 });
    const controller = new AbortController();
    const client = s.agent.client!;
    const original = client.chat.bind(client);
    client.chat = (messages, opts) =>
      original(messages, {
        ...opts,
        onToken(tok) {
          opts.onToken(tok);
          if (tok.includes("three")) controller.abort();
        },
      });
    assert.equal(await s.run("count please", { signal: controller.signal }), 0);
    assert.match(s.err.text, /Interrupted — the partial reply is kept/);
    const last = s.agent.history.at(-1)!;
    assert.equal(last.role, "assistant");
    assert.match(last.content, /^one two three/);
    assert.ok(last.content.endsWith(INTERRUPTED_MARK));
    assert.doesNotMatch(last.content, /eight/);
    client.chat = original;
    assert.equal(await s.run("again"), 0);
    assert.match(s.agent.history.at(-1)!.content, /eight$/);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("server failures give one clear line and the session goes on", async (t) => {
  const fake = await startFakeOpenAI({ reply: () => "fine reply here" });
  const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
  try {
    const before = [
      [{ status: 500, message: "boom" }, /answered 500: boom/],
      [{ status: 503, message: "Loading model" }, /still loading/],
    ] as const;
    for (const [reply, pattern] of before) {
      await t.step(`before any token: ${JSON.stringify(reply)}`, async () => {
        s.err.text = "";
        const history = s.agent.history.length;
        fake.script(reply);
        assert.equal(await s.run("hello"), 1);
        const lines = s.err.text.trim().split("\n");
        assert.equal(lines.length, 1, s.err.text);
        assert.match(lines[0], pattern);
        assert.equal(s.agent.history.length, history, "a failed turn leaves the history as it was");
        assert.equal(await s.run("hello"), 0);
      });
    }
    // A reply the server stops sending is an error, and what came is kept, marked.
    const during = [
      [{ dropAfterTokens: 2 }, /closed the connection in the middle of the reply/],
      [{ malformedAfterTokens: 1 }, /malformed chunk/],
      [{ endWithoutFinish: true }, /ended the reply without finishing it \(no finish reason\)/],
    ] as const;
    for (const [reply, pattern] of during) {
      await t.step(`in the middle: ${JSON.stringify(reply)}`, async () => {
        s.err.text = "";
        const history = s.agent.history.length;
        fake.script(reply);
        assert.equal(await s.run("hello"), 1);
        const lines = s.err.text.trim().split("\n");
        assert.equal(lines.length, 1, s.err.text);
        assert.match(lines[0], pattern);
        assert.equal(s.agent.history.length, history + 2);
        const kept = s.agent.history.at(-1)!;
        assert.match(kept.content, /^fine/);
        assert.ok(kept.content.endsWith(`\n${CUT_OFF_MARK}`), kept.content);
        assert.equal(await s.run("hello"), 0);
      });
    }
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("a server killed in the middle of a reply: one line, the partial reply kept", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      new URL("./fixtures/fake_openai.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--token-delay-ms",
      "30",
      "--reply",
      "one two three four five six seven eight nine ten",
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  while (!banner.includes("\n")) banner += (await reader.read()).value ?? "";
  const url = /listening on (\S+)/.exec(banner)![1];
  const s = await testSession({ flags: { llamafileUrl: url }, selectBackend: true });
  try {
    const client = s.agent.client!;
    const original = client.chat.bind(client);
    client.chat = (messages, opts) =>
      original(messages, {
        ...opts,
        onToken(tok) {
          opts.onToken(tok);
          if (tok.includes("three")) child.kill("SIGKILL");
        },
      });
    s.err.text = "";
    assert.equal(await s.run("count please"), 1);
    const lines = s.err.text.trim().split("\n");
    assert.equal(lines.length, 1, s.err.text);
    assert.match(lines[0], /closed the connection in the middle of the reply|without finishing/);
    const kept = s.agent.history.at(-1)!;
    assert.match(kept.content, /^one two three/);
    assert.doesNotMatch(kept.content, /ten/);
    assert.ok(kept.content.endsWith(CUT_OFF_MARK));
  } finally {
    await s.close();
    await reader.cancel().catch(() => {});
    await child.status;
  }
});

Deno.test("Ctrl-C before the first token: said so, nothing added", async () => {
  const fake = await startFakeOpenAI();
  const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
  try {
    fake.script({ firstTokenDelayMs: 60_000 });
    const controller = new AbortController();
    const running = s.run("hello", { signal: controller.signal });
    while (!fake.requests.some((r) => r.path === "/v1/chat/completions")) {
      await new Promise((r) => setTimeout(r, 10));
    }
    controller.abort();
    assert.equal(await running, 0);
    assert.match(s.err.text, /⏹ Interrupted before the reply began; nothing was added/);
    assert.doesNotMatch(s.err.text, /partial reply is kept/);
    assert.equal(s.agent.history.length, 1);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("tok/s is the generation rate, without the wait for the first token", async () => {
  const fake = await startFakeOpenAI({ usage: "none", reply: () => "a b c d e f g h i j" });
  try {
    const client = new OpenAICompatClient({ baseUrl: fake.url, model: "m", label: "x" });
    fake.script({ firstTokenDelayMs: 600 });
    const stats = await client.chat([{ role: "user", content: "hi" }], { onToken() {} });
    const overall = stats.replyTokens / (stats.elapsedMs / 1000);
    assert.ok(stats.elapsedMs >= 600);
    assert.ok(
      stats.tokensPerSec > 2 * overall,
      `${stats.tokensPerSec} tok/s should not count the ${stats.elapsedMs} ms wait`,
    );
  } finally {
    await fake.close();
  }
});

Deno.test("reasoning is shown dimmed, kept out of the history and counted apart", async (t) => {
  for (const format of ["deepseek", "none"] as const) {
    await t.step(format === "none" ? "<think> in the content" : "reasoning_content", async () => {
      const fake = await startFakeOpenAI({
        reasoning: () => "first I add two and two",
        reply: () => "It is 4.",
        reasoningFormat: format,
      });
      const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
      try {
        assert.equal(await s.run("what is 2+2?\n"), 0, s.err.text);
        assert.equal(s.out.text.trim().split("\n").at(-1), "It is 4.");
        assert.doesNotMatch(s.out.text, /add two|think>/);
        assert.match(s.err.text, /first I add two and two\n/);
        assert.match(s.err.text, /\d+ tokens \(\d+ reasoning\) · /);
        assert.deepEqual(s.agent.history.at(-1), { role: "assistant", content: "It is 4." });
        assert.equal(await s.run("and 3+3?\n"), 0, s.err.text);
        const sent = fake.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!
          .body as { messages: { content: string }[] };
        assert.ok(sent.messages.every((m) => !m.content.includes("add two")));
      } finally {
        await s.close();
        await fake.close();
      }
    });
  }
  await t.step("a reply of reasoning only says so and stores nothing", async () => {
    const fake = await startFakeOpenAI({ reasoning: () => "hmm let me see", reply: () => "" });
    const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
    try {
      assert.equal(await s.run("hard question\n"), 0, s.err.text);
      assert.match(
        s.err.text,
        /⚠ The model only reasoned \(\d+ tokens\) and gave no answer; nothing was added to the history — ask again/,
      );
      assert.equal(s.agent.history.length, 1);
    } finally {
      await s.close();
      await fake.close();
    }
  });
});

Deno.test("Ollama: num_predict, done_reason length and thinking", async () => {
  const fake = await startFakeOllama({ models: ["r1:latest"], reply: () => "one two three" });
  try {
    const client = new OllamaClient(fake.url, "r1:latest");
    fake.script({ reasoning: "think think" });
    let text = "";
    let thought = "";
    const stats = await client.chat([{ role: "user", content: "x" }], {
      maxTokens: 5,
      onToken: (t) => text += t,
      onReasoning: (t) => thought += t,
    });
    assert.equal(thought, "think think");
    assert.equal(text, "one ", "5 pieces: think, ' ', think, then the reply's first two");
    assert.equal(stats.finishReason, "length");
    assert.equal(stats.reasoningTokens, 3);
    const chat = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!;
    assert.equal((chat.body as { options: { num_predict: number } }).options.num_predict, 5);
  } finally {
    await fake.close();
  }
});

Deno.test("a dead server: one line naming it", async () => {
  const fake = await startFakeOpenAI();
  const url = fake.url;
  const s = await testSession({ flags: { llamafileUrl: url }, selectBackend: true });
  try {
    await fake.close();
    assert.equal(await s.run("hello"), 1);
    assert.match(
      s.err.text,
      /Cannot reach llamafile at http:\/\/127\.0\.0\.1:\d+: connection refused/,
    );
  } finally {
    await s.close();
  }
});

Deno.test("Ollama errors: unknown model and dropped stream", async () => {
  const fake = await startFakeOllama({ models: ["a:latest"] });
  try {
    const gone = new OllamaClient(fake.url, "missing");
    await assert.rejects(
      () => gone.chat([{ role: "user", content: "x" }], { onToken() {} }),
      /answered 404/,
    );
    fake.script({ dropAfterTokens: 1 });
    const client = new OllamaClient(fake.url, "a:latest");
    await assert.rejects(
      () => client.chat([{ role: "user", content: "x" }], { onToken() {} }),
      /closed the connection/,
    );
  } finally {
    await fake.close();
  }
});

Deno.test("Ollama: Harvey sets num_ctx on every request and budgets against it", async (t) => {
  const fake = await startFakeOllama({ models: ["small:latest"], contextLength: 2048 });
  try {
    await t.step(
      "num_ctx is the configured size capped by the model's trained length",
      async () => {
        const s = await testSession({ flags: { ollama: fake.url }, selectBackend: true });
        try {
          assert.equal(s.agent.contextWindow, 2048);
          assert.equal(await s.run("hello\n/status\n"), 0, s.err.text);
          const chat = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!;
          assert.deepEqual((chat.body as { options?: unknown }).options, {
            num_ctx: 2048,
            num_predict: 410,
          });
          assert.match(s.out.text, /Context: +2048 tokens/);
        } finally {
          await s.close();
        }
      },
    );
    await t.step(
      "a smaller num_ctx in harvey.yaml wins, and a prompt that does not fit is not sent",
      async () => {
        const s = await testSession({
          flags: { ollama: fake.url },
          files: { "agents/harvey.yaml": "ollama:\n  num_ctx: 512\n" },
          selectBackend: true,
        });
        try {
          assert.equal(s.agent.contextWindow, 512);
          const before = fake.requests.filter((r) => r.path === "/api/chat").length;
          assert.equal(await s.run(`${"many words here ".repeat(300)}\n`), 1);
          assert.match(s.err.text, /512/);
          assert.equal(fake.requests.filter((r) => r.path === "/api/chat").length, before);
        } finally {
          await s.close();
        }
      },
    );
    await t.step("num_ctx 0 asks for the model's full length", async () => {
      const client = new OllamaClient(fake.url, "small:latest", { numCtx: 0 });
      assert.equal(await client.contextWindow(), 2048);
    });
  } finally {
    await fake.close();
  }
});
