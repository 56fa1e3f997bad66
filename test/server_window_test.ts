/**
 * The window is the server's: read from `/props` (per slot, `?model=` in router mode), read
 * again when the server restarts or refuses a request as too long, and a `--llamafile-url`
 * server's own key (`LLAMA_API_KEY`) sent to it and nowhere else.
 */
import assert from "node:assert/strict";
import { OpenAICompatClient } from "../src/llm/openai_compat.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fake_openai.ts";
import type { RecordedRequest } from "./fixtures/fixture_common.ts";
import { runHarvey } from "./harvey_child.ts";
import { testSession } from "./helpers.ts";

const chats = (fake: { requests: RecordedRequest[] }) =>
  fake.requests.filter((r) => r.path === "/v1/chat/completions");
const words = (tag: string, n: number) =>
  Array.from({ length: Math.ceil(n / 2) }, (_, j) => `${tag}${j}`).join(" ");

Deno.test("a server restarted with another -c: the refused request is measured again", async (t) => {
  await t.step("refused as too long: its n_ctx is taken and the history compacted", async () => {
    const first = await startFakeOpenAI({ nCtx: 4096, reply: () => "Sure." });
    const port = first.port;
    const s = await testSession({ flags: { llamafileUrl: first.url }, selectBackend: true });
    let second: FakeOpenAI | undefined;
    try {
      assert.equal(await s.run(`${words("a", 600)}\n`), 0, s.err.text);
      assert.equal(s.agent.contextWindow, 4096);
      await first.close();
      second = await startFakeOpenAI({ port, nCtx: 512, reply: () => "- summary" });
      s.err.text = "";
      assert.equal(await s.run("and a short one\n"), 0, s.err.text);
      assert.match(
        s.err.text,
        /⚠ llamafile at http:\/\/127\.0\.0\.1:\d+ refused the request: request \(\d+ tokens\) exceeds the available context size \(512 tokens\), try increasing it; the server's window is 512 \(Harvey had 4096\): measuring the request again\n/,
      );
      assert.match(s.err.text, /⟳ The conversation did not fit the 512-token window/);
      assert.equal(s.agent.contextWindow, 512);
      const sent = chats(second);
      assert.ok(sent.length >= 3, "refused, the summary (in parts), the turn");
      const turn = sent.at(-1)!.body as { messages: { content: string }[] };
      assert.equal(turn.messages.at(-1)!.content, "and a short one");
    } finally {
      await s.close();
      await first.close();
      await second?.close();
    }
  });

  await t.step("gone in between: the next turn reads the new window first", async () => {
    const first = await startFakeOpenAI({ nCtx: 4096 });
    const port = first.port;
    const s = await testSession({ flags: { llamafileUrl: first.url }, selectBackend: true });
    let second: FakeOpenAI | undefined;
    try {
      assert.equal(await s.run("hello\n"), 0, s.err.text);
      await first.close();
      assert.equal(await s.run("anyone there?\n"), 1);
      assert.match(s.err.text, /connection refused/);
      second = await startFakeOpenAI({ port, nCtx: 64 });
      assert.equal(await s.run(`${words("w", 120)}\n`), 1);
      assert.match(s.err.text, /context window of 64 leaves 32 after 32 kept for the reply/);
      assert.equal(chats(second).length, 0, "caught before it was sent");
    } finally {
      await s.close();
      await first.close();
      await second?.close();
    }
  });
});

Deno.test("router mode: the window of the chosen model, /tokenize with its name", async () => {
  const router = await startFakeOpenAI({ routerModels: { small: 1024, big: 8192 } });
  const s = await testSession({
    flags: { llamafileUrl: router.url, model: "small" },
    selectBackend: true,
  });
  try {
    assert.equal(s.agent.client?.model, "small");
    assert.equal(s.agent.contextWindow, 1024);
    assert.ok(router.requests.some((r) => r.path === "/props" && r.headers.host));
    assert.equal(await s.run("hello\n"), 0, s.err.text);
    const counted = router.requests.filter((r) =>
      r.path === "/tokenize" || r.path === "/apply-template"
    );
    assert.ok(counted.length >= 2);
    for (const r of counted) assert.equal((r.body as { model?: string }).model, "small");
    assert.equal(await s.run(`${words("x", 1200)}\n`), 1);
    assert.match(s.err.text, /context window of 1024 leaves/);
    assert.equal(chats(router).length, 1);
  } finally {
    await s.close();
    await router.close();
  }
});

Deno.test("a --llamafile-url server's key comes from LLAMA_API_KEY and goes to it alone", async (t) => {
  const KEY = "llama-key-0123456789";
  await t.step("sent to that server; never to Ollama or a route", async () => {
    const server = await startFakeOpenAI({ apiKey: KEY, reply: () => "keyed" });
    const other = await startFakeOpenAI({ modelId: "routed", reply: () => "routed" });
    const ollama = await startFakeOllama();
    const s = await testSession({
      files: { "agents/harvey.yaml": `llamafile:\n  url: ${server.url}\n` },
      flags: { ollama: ollama.url, model: "fake-model" },
      env: { LLAMA_API_KEY: KEY },
      selectBackend: true,
    });
    try {
      const status = await s.run([
        "hello",
        `/route add r ${other.url} routed`,
        "@r hi",
        "/model",
      ].join("\n"));
      assert.equal(status, 0, s.err.text);
      assert.match(s.out.text, /keyed/);
      assert.equal(s.agent.contextWindow, 4096, "/props answered with the key");
      const privateCalls = server.requests.filter((r) =>
        !["/health", "/v1/models"].includes(r.path)
      );
      assert.ok(privateCalls.length >= 3);
      for (const r of privateCalls) assert.equal(r.headers.authorization, `Bearer ${KEY}`);
      for (const r of [...other.requests, ...ollama.requests]) {
        assert.ok(!JSON.stringify(r).includes(KEY), `${r.method} ${r.path} carries the key`);
      }
    } finally {
      await s.close();
      await server.close();
      await other.close();
      await ollama.close();
    }
  });

  await t.step("llamafile.api_key_env names another variable", async () => {
    const server = await startFakeOpenAI({ apiKey: KEY });
    const s = await testSession({
      files: { "agents/harvey.yaml": "llamafile:\n  api_key_env: MY_SERVER_KEY\n" },
      flags: { llamafileUrl: server.url },
      env: { MY_SERVER_KEY: KEY },
      selectBackend: true,
    });
    try {
      assert.equal(await s.run("hello\n"), 0, s.err.text);
      assert.equal(chats(server)[0].headers.authorization, `Bearer ${KEY}`);
    } finally {
      await s.close();
      await server.close();
    }
  });

  await t.step("no key, or a wrong one: one line naming the variable", async () => {
    const server = await startFakeOpenAI({ apiKey: KEY });
    for (
      const [env, hint] of [
        [{}, /answered 401: Invalid API Key \(the server wants an API key: set LLAMA_API_KEY\)/],
        [
          { LLAMA_API_KEY: "wrong" },
          /answered 401: Invalid API Key \(the server refused the key in LLAMA_API_KEY; check it\)/,
        ],
      ] as const
    ) {
      // /v1/models is public: the model is found and selected without the key.
      const s = await testSession({
        flags: { llamafileUrl: server.url },
        env,
        selectBackend: true,
      });
      try {
        assert.ok(s.agent.client);
        s.err.text = "";
        assert.equal(await s.run("hello\n"), 1);
        const lines = s.err.text.trim().split("\n");
        assert.equal(lines.length, 1, s.err.text);
        assert.match(lines[0], hint);
      } finally {
        await s.close();
      }
    }
    await server.close();
  });

  await t.step("a 401 on /tokenize is not asked again every message", async () => {
    const server = await startFakeOpenAI({ apiKey: KEY });
    try {
      const client = new OpenAICompatClient({ baseUrl: server.url, model: "m", label: "x" });
      assert.equal(await client.countTokens("one"), undefined);
      assert.equal(await client.countTokens("two"), undefined);
      assert.equal(await client.countPrompt([{ role: "user", content: "three" }]), undefined);
      const asked = server.requests.filter((r) =>
        r.path === "/tokenize" || r.path === "/apply-template"
      );
      assert.equal(asked.length, 1);
    } finally {
      await server.close();
    }
  });
});

Deno.test("harvey -p, run as the harvey task runs it: the key is sent, reasoning stays on stderr", async () => {
  const KEY = "llama-key-e2e-000";
  const server = await startFakeOpenAI({
    apiKey: KEY,
    reasoning: () => "thinking it over",
    reply: () => "The answer.",
  });
  const cwd = await Deno.makeTempDir({ prefix: "harvey-e2e-" });
  try {
    const run = await runHarvey(["--llamafile-url", server.url, "-p", "question"], {
      cwd,
      env: { LLAMA_API_KEY: KEY },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), "The answer.");
    assert.match(run.stderr, /thinking it over/);
    assert.match(run.stderr, /tokens \(\d+ reasoning\)/);
    const chat = chats(server)[0];
    assert.equal(chat.headers.authorization, `Bearer ${KEY}`);
    assert.equal(typeof (chat.body as { max_tokens?: number }).max_tokens, "number");
  } finally {
    await server.close();
    await Deno.remove(cwd, { recursive: true });
  }
});
