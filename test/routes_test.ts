import assert from "node:assert/strict";
import { join } from "node:path";
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { startFakeAnthropic } from "./fixtures/fake_anthropic.ts";
import type { RecordedRequest } from "./fixtures/fixture_common.ts";
import { AnthropicClient } from "../src/llm/anthropic.ts";
import { anthropicMessages } from "../src/llm/tool_wire.ts";
import { testSession } from "./helpers.ts";

const KEY_A = "sk-route-alpha-0123456789abcdef";
const KEY_B = "sk-route-beta-fedcba9876543210";

/** Every provider key variable, set — what a developer's shell often looks like. */
const ALL_KEYS: Record<string, string> = {
  OPENAI_API_KEY: "sk-openai-test-key-000111222333",
  ANTHROPIC_API_KEY: "sk-ant-test-key-444555666777",
  DEEPSEEK_API_KEY: "sk-deepseek-test-key-888999000",
  GEMINI_API_KEY: "AIza-gemini-test-key-123123123",
  MISTRAL_API_KEY: "mistral-test-key-456456456456",
};

const CHAT_PATHS = ["/v1/chat/completions", "/v1/messages", "/api/chat"];

/** The chat requests a fake received (not `/tokenize` or model listings). */
function chats(fake: { requests: RecordedRequest[] }): RecordedRequest[] {
  return fake.requests.filter((r) => r.method === "POST" && CHAT_PATHS.includes(r.path));
}

async function readOrEmpty(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}

function assertNoSecret(text: string, secrets: string[], where: string): void {
  for (const s of secrets) assert.ok(!text.includes(s), `${where} must not contain ${s}`);
}

async function closeAll(...things: { close(): Promise<void> }[]): Promise<void> {
  for (const t of things) await t.close();
}

Deno.test("a key reaches only its own route's host", async () => {
  const a = await startFakeOpenAI({ modelId: "fake-a", apiKey: KEY_A, reply: () => "from A" });
  const b = await startFakeOpenAI({ modelId: "fake-b", apiKey: KEY_B, reply: () => "from B" });
  const s = await testSession({ env: { A_KEY: KEY_A, B_KEY: KEY_B } });
  try {
    const status = await s.run([
      `/route add alpha ${a.url} fake-a --key-env A_KEY`,
      `/route add beta ${b.url}/v1 fake-b --key-env B_KEY`,
      "@alpha hello",
      "@beta hello",
      "/route probe alpha",
      "/route models beta",
    ].join("\n"));
    assert.equal(status, 0, s.err.text);
    assert.match(s.out.text, /\[@alpha · fake-a\]\nfrom A/);
    assert.match(s.out.text, /\[@beta · fake-b\]\nfrom B/);
    assert.match(s.out.text, /✓ @alpha: .* answered .* 1 model; fake-a is one of them/);
    for (const [fake, key, other] of [[a, KEY_A, KEY_B], [b, KEY_B, KEY_A]] as const) {
      assert.ok(chats(fake).length >= 1);
      assert.ok(fake.requests.some((r) => r.path === "/v1/models"));
      for (const r of fake.requests) assert.equal(r.headers.authorization, `Bearer ${key}`);
      assertNoSecret(JSON.stringify(fake.requests), [other], "the other route's requests");
    }
  } finally {
    await closeAll(s, a, b);
  }
});

Deno.test("local backends get no Authorization header even with every provider key set", async (t) => {
  await t.step(
    "OpenAI-compatible local server, with a keyed route in the same session",
    async () => {
      const local = await startFakeOpenAI({ modelId: "local-model", reply: () => "local" });
      const remote = await startFakeOpenAI({
        modelId: "gpt-fake",
        apiKey: ALL_KEYS.OPENAI_API_KEY,
        reply: () => "remote",
      });
      const s = await testSession({
        flags: { llamafileUrl: local.url },
        env: ALL_KEYS,
        selectBackend: true,
      });
      try {
        assert.ok(s.agent.client, "the local server is the primary backend");
        const status = await s.run([
          "first local prompt",
          `/route add gpt ${remote.url} gpt-fake --provider openai`,
          "@gpt a remote turn",
          "/model",
          "second local prompt",
        ].join("\n"));
        assert.equal(status, 0, s.err.text);
        assert.equal(chats(local).length, 2);
        assert.equal(chats(remote).length, 1);
        for (const r of local.requests) {
          assert.equal(r.headers.authorization, undefined, `${r.method} ${r.path}`);
        }
        assertNoSecret(JSON.stringify(local.requests), Object.values(ALL_KEYS), "local requests");
        assert.equal(chats(remote)[0].headers.authorization, `Bearer ${ALL_KEYS.OPENAI_API_KEY}`);
      } finally {
        await closeAll(s, local, remote);
      }
    },
  );

  await t.step("Ollama as the primary backend and as a route", async () => {
    const ollama = await startFakeOllama({ models: ["llama3.2:latest"] });
    const s = await testSession({
      flags: { ollama: ollama.url },
      env: ALL_KEYS,
      selectBackend: true,
    });
    try {
      const status = await s.run([
        "a local prompt",
        `/route add lo ${ollama.url} llama3.2:latest --provider ollama`,
        "@lo a routed prompt",
        "/route probe lo",
      ].join("\n"));
      assert.equal(status, 0, s.err.text);
      assert.equal(ollama.requests.filter((r) => r.path === "/api/chat").length, 2);
      for (const r of ollama.requests) assert.equal(r.headers.authorization, undefined);
      assertNoSecret(JSON.stringify(ollama.requests), Object.values(ALL_KEYS), "Ollama requests");
    } finally {
      await closeAll(s, ollama);
    }
  });

  await t.step("an Ollama route refuses a key variable", async () => {
    const s = await testSession({ env: ALL_KEYS });
    try {
      const status = await s.run(
        "/route add lo http://127.0.0.1:11434 m --provider ollama --key-env OPENAI_API_KEY",
      );
      assert.equal(status, 1);
      assert.match(s.err.text, /Ollama takes no key/);
      assert.deepEqual(s.agent.config.config.routes, []);
    } finally {
      await s.close();
    }
  });
});

Deno.test("@name sends one turn to the route and leaves the primary backend as it was", async () => {
  const primary = await startFakeOpenAI({
    modelId: "primary",
    reply: (m) => `primary saw ${m.length} messages`,
  });
  const remote = await startFakeOpenAI({
    modelId: "remote",
    apiKey: KEY_A,
    reply: (m) => `remote answers: ${m.at(-1)?.content}`,
  });
  const s = await testSession({
    flags: { llamafileUrl: primary.url },
    env: { R_KEY: KEY_A },
    selectBackend: true,
  });
  try {
    const before = s.agent.client;
    assert.ok(before);
    assert.equal(await s.run(`/route add r ${remote.url} remote --key-env R_KEY`), 0);
    assert.equal(await s.run("@r what is 2+2?"), 0, s.err.text);
    assert.equal(s.agent.client, before, "the primary client object is unchanged");
    assert.equal(chats(primary).length, 0, "the primary server saw nothing of the @ turn");
    assert.deepEqual(s.agent.history.slice(-2), [
      { role: "user", content: "what is 2+2?" },
      { role: "assistant", content: "remote answers: what is 2+2?" },
    ]);
    assert.match(s.out.text, /\[@r · remote\]\nremote answers: what is 2\+2\?\n/);
    // The next plain prompt goes to the primary backend, with the routed turn in its history.
    assert.equal(await s.run("and now?"), 0);
    assert.equal(chats(primary).length, 1);
    const sent = JSON.stringify(chats(primary)[0].body);
    assert.ok(sent.includes("remote answers: what is 2+2?"));
    assert.equal(s.agent.client, before);
  } finally {
    await closeAll(s, primary, remote);
  }
});

Deno.test("harvey.yaml, the recording and the audit log never hold a key", async () => {
  const remote = await startFakeOpenAI({ modelId: "m1", apiKey: KEY_A });
  const claude = await startFakeAnthropic({ apiKey: ALL_KEYS.ANTHROPIC_API_KEY });
  const s = await testSession({ env: { ...ALL_KEYS, A_KEY: KEY_A } });
  const secrets = [KEY_A, ...Object.values(ALL_KEYS)];
  const yaml = join(s.root, "agents", "harvey.yaml");
  try {
    const lines = [
      "/record start session.md",
      "/route add gpt openai gpt-4o-mini",
      `/route add mine ${remote.url}/v1 m1 --key-env A_KEY`,
      `/route add claude anthropic claude-fake-1 --url ${claude.url}/v1`,
      "/route add ds deepseek deepseek-chat",
      "/route add mis mistral",
      "/route disable gpt",
      "/route enable gpt",
      "/route model mis mistral-small-latest",
      "/route probe mine",
      "/route models claude",
      "@mine hello",
      "@claude hello",
      "/route list",
      "/route remove ds",
      "/record stop",
    ];
    for (const line of lines) {
      assert.equal(await s.run(line), 0, `${line}: ${s.err.text}`);
      assertNoSecret(await readOrEmpty(yaml), secrets, `harvey.yaml after ${line}`);
    }
    const text = await Deno.readTextFile(yaml);
    assert.match(text, /api_key_env: A_KEY/);
    assert.match(text, /api_key_env: OPENAI_API_KEY/);
    assert.match(text, /model: mistral-small-latest/);
    assert.ok(!text.includes("name: ds"));
    assertNoSecret(await Deno.readTextFile(join(s.root, "session.md")), secrets, "the recording");
    const audit = await Deno.readTextFile(join(s.root, "agents", "audit.jsonl"));
    assert.match(audit, /"action":"route"/);
    assert.match(audit, /@mine → openai-compatible/);
    assertNoSecret(audit, secrets, "the audit log");
    assertNoSecret(s.out.text + s.err.text, secrets, "what Harvey printed");
    // `/route list` says which variable holds each key and whether it is set, never the key.
    assert.match(
      s.out.text,
      /@gpt\s+openai\s+https:\/\/api\.openai\.com\/v1\s+gpt-4o-mini\s+OPENAI_API_KEY \(set\)/,
    );
  } finally {
    await closeAll(s, remote, claude);
  }
});

Deno.test("--key-env takes a variable name, never a key", async () => {
  const s = await testSession();
  try {
    assert.equal(await s.run("/route add gpt openai --key-env sk-live-abcdef123456"), 2);
    assert.match(s.err.text, /NAME of an environment variable/);
    assert.equal(await s.run("/route add x https://user:sk-secret@example.com/v1 m"), 1);
    assert.match(s.err.text, /must not carry a user name, password or query string/);
    const file = join(s.root, "agents", "harvey.yaml");
    const text = await readOrEmpty(file);
    assertNoSecret(text, ["sk-live-abcdef123456", "sk-secret"], "harvey.yaml");
  } finally {
    await s.close();
  }
});

Deno.test("a missing key is one line naming the variable to set", async () => {
  const s = await testSession({ env: {} });
  try {
    assert.equal(await s.run("/route add gpt openai gpt-4o-mini"), 0);
    assert.match(s.out.text, /Set OPENAI_API_KEY before using @gpt/);
    assert.match(s.out.text, /OPENAI_API_KEY \(not set\)/);
    assert.equal(await s.run("@gpt hello"), 1);
    assert.match(s.err.text, /✗ line 1: Set OPENAI_API_KEY to use @gpt\n$/);
    assert.equal(await s.run("/route probe gpt"), 1);
    assert.match(s.err.text, /Set OPENAI_API_KEY to use @gpt\n$/);
    assert.equal(s.agent.history.length, 1, "nothing was added to the history");
  } finally {
    await s.close();
  }
});

Deno.test("a rate limit gives the provider's message, shortened, and the session goes on", async () => {
  const remote = await startFakeOpenAI({ modelId: "m", apiKey: KEY_A, reply: () => "fine now" });
  const s = await testSession({ env: { R_KEY: KEY_A } });
  try {
    assert.equal(await s.run(`/route add r ${remote.url} m --key-env R_KEY`), 0);
    const long = `Rate limit reached for m in organization org-1 on requests per min. ${
      "Please retry later. ".repeat(40)
    }`;
    remote.script({ status: 429, message: long });
    assert.equal(await s.run("@r hello\n/route list"), 1, "the script stops at the failed line");
    const line = s.err.text.trim().split("\n").at(-1)!;
    assert.match(line, /answered 429: Rate limit reached for m/);
    assert.match(line, /rate limited; wait and try again/);
    assert.ok(line.length < 320, `shortened: ${line.length} characters`);
    assert.equal(s.agent.history.length, 1, "the failed turn is not in the history");
    assert.equal(await s.run("@r hello again\n/route list"), 0, s.err.text);
    assert.match(s.out.text, /fine now/);
    assert.equal(s.agent.history.length, 3);
    remote.script({ status: 500, message: "The server had an error while processing" });
    assert.equal(await s.run("@r once more"), 1);
    assert.match(s.err.text, /answered 500: The server had an error while processing\n$/);
  } finally {
    await closeAll(s, remote);
  }
});

Deno.test("unknown and disabled routes are errors that list the routes", async () => {
  const s = await testSession();
  try {
    assert.equal(await s.run("@nobody hi"), 1);
    assert.match(s.err.text, /No route named @nobody — add one with \/route add/);
    assert.equal(
      await s.run("/route add alpha http://127.0.0.1:9/v1 m\n/route add beta openai m"),
      0,
    );
    assert.equal(await s.run("@nope hi"), 1);
    assert.match(s.err.text, /No route named @nope — routes: @alpha, @beta\n$/);
    assert.equal(await s.run("/route disable beta"), 0);
    assert.equal(await s.run("@beta hi"), 1);
    assert.match(
      s.err.text,
      /Route @beta is disabled — turn it on with \/route enable beta; enabled: @alpha\n$/,
    );
    assert.equal(await s.run("@nope hi"), 1);
    assert.match(s.err.text, /routes: @alpha, @beta \(disabled\)\n$/);
  } finally {
    await s.close();
  }
});

Deno.test("route names: letters, digits, - and _; duplicates refused", async () => {
  const s = await testSession();
  try {
    assert.equal(await s.run("/route add bad.name openai"), 2);
    assert.match(s.err.text, /letters, digits, "-" and "_" only/);
    assert.equal(await s.run("/route add my_route-2 openai m"), 0);
    assert.equal(await s.run("/route add my_route-2 mistral m"), 1);
    assert.match(s.err.text, /A route named @my_route-2 already exists/);
    assert.equal(await s.run("/route add MY_ROUTE-2 mistral m"), 1);
    assert.equal(await s.run("/route add x nosuchprovider"), 2);
    assert.match(s.err.text, /Expected a URL or one of the providers openai, anthropic/);
    assert.equal(await s.run("/route add y openai-compatible"), 2);
    assert.match(s.err.text, /needs a URL/);
    assert.equal(s.agent.config.config.routes.length, 1);
  } finally {
    await s.close();
  }
});

Deno.test("tab completion of @ offers the enabled routes", async () => {
  const s = await testSession();
  try {
    await s.run([
      "/route add alpha openai m",
      "/route add beta mistral m",
      "/route add gamma deepseek m",
      "/route disable gamma",
    ].join("\n"));
    const c = (line: string) => s.agent.commands.complete(s.agent, line);
    assert.deepEqual(await c("@"), [["@alpha", "@beta"], "@"]);
    assert.deepEqual(await c("@b"), [["@beta "], "@b"]);
    assert.deepEqual(await c("@g"), [[], "@g"]);
    assert.deepEqual(await c("@alpha hi"), [[], "@alpha hi"]);
    assert.deepEqual((await c("/route probe "))[0], ["alpha", "beta", "gamma"]);
    assert.deepEqual((await c("/route enable "))[0], ["gamma "]);
    assert.deepEqual((await c("/route disable a"))[0], ["alpha "]);
    assert.ok((await c("/route add x "))[0].includes("anthropic"));
    assert.ok((await c("/route "))[0].includes("probe"));
  } finally {
    await s.close();
  }
});

Deno.test("Anthropic routes use the native Messages API", async (t) => {
  const key = ALL_KEYS.ANTHROPIC_API_KEY;
  const claude = await startFakeAnthropic({
    apiKey: key,
    models: ["claude-a", "claude-b", "claude-c"],
    pageSize: 2,
    reply: (m) => `Claude read: ${m.at(-1)?.content}`,
  });
  const s = await testSession({ env: ALL_KEYS, files: { "HARVEY.md": "You are terse." } });
  try {
    await t.step(
      "a turn streams, with the key in x-api-key only and the system prompt apart",
      async () => {
        assert.equal(
          await s.run(
            `/route add claude anthropic claude-a --url ${claude.url}/v1\n@claude hi there`,
          ),
          0,
          s.err.text,
        );
        assert.match(s.out.text, /\[@claude · claude-a\]\nClaude read: hi there\n/);
        assert.match(s.err.text, /tokens/);
        const [req] = chats(claude);
        assert.equal(req.path, "/v1/messages");
        assert.equal(req.headers["x-api-key"], key);
        assert.equal(req.headers["anthropic-version"], "2023-06-01");
        assert.equal(req.headers.authorization, undefined);
        const body = req.body as Record<string, unknown>;
        assert.match(String(body.system), /You are terse\./);
        assert.equal(body.stream, true);
        assert.ok(Number(body.max_tokens) > 0);
        const roles = (body.messages as { role: string }[]).map((m) => m.role);
        assert.deepEqual(roles, ["user"]);
        assert.deepEqual(s.agent.history.at(-1), {
          role: "assistant",
          content: "Claude read: hi there",
        });
      },
    );

    await t.step("models are listed across pages", async () => {
      assert.equal(await s.run("/route models claude"), 0);
      assert.match(s.out.text, /→ claude-a\n {2}claude-b\n {2}claude-c\n/);
    });

    await t.step("a 429 and an error event in the middle of a stream are reported", async () => {
      claude.script({
        status: 429,
        message: "Number of request tokens has exceeded your per-minute rate limit",
      });
      assert.equal(await s.run("@claude again"), 1);
      assert.match(s.err.text, /answered 429: Number of request tokens has exceeded/);
      claude.script({ text: "one two three four", errorAfterTokens: 2 });
      assert.equal(await s.run("@claude again"), 1);
      assert.match(s.err.text, /reported overloaded_error: Overloaded\n$/);
      assert.equal(await s.run("@claude and now"), 0, "the route still works");
      assert.match(s.out.text, /Claude read: and now/);
    });

    await t.step("a wrong key is a 401 that never echoes the key", async () => {
      const other = await testSession({ env: { ANTHROPIC_API_KEY: "sk-ant-wrong-key-000000" } });
      try {
        await other.run(`/route add c anthropic claude-a --url ${claude.url}`);
        assert.equal(await other.run("@c hi"), 1);
        assert.match(other.err.text, /answered 401: invalid x-api-key \(check the API key\)/);
      } finally {
        await other.close();
      }
    });
  } finally {
    await closeAll(s, claude);
  }
});

Deno.test("history becomes Anthropic turns: system apart, roles alternate, no empty text", () => {
  const out = anthropicMessages([
    { role: "system", content: "sys" },
    { role: "user", content: "[pinned context]\n\nnotes" },
    { role: "user", content: "q1" },
    { role: "assistant", content: "" },
    { role: "tool", content: "tool output" },
    { role: "assistant", content: "a1" },
  ]);
  assert.equal(out.system, "sys");
  assert.deepEqual(out.messages, [
    { role: "user", content: "[pinned context]\n\nnotes\n\nq1\n\ntool output" },
    { role: "assistant", content: "a1" },
  ]);
});

Deno.test("a redirect never carries a key to another host", async (t) => {
  const target = await startFakeOpenAI({ modelId: "m", apiKey: KEY_A });
  const claude = await startFakeAnthropic({ apiKey: KEY_B });
  let to = target.url;
  const redirector = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      const url = new URL(req.url);
      return new Response(null, { status: 307, headers: { location: `${to}${url.pathname}` } });
    },
  );
  const hop = `http://127.0.0.1:${redirector.addr.port}`;
  try {
    await t.step("OpenAI-compatible: the Authorization header is dropped", async () => {
      const s = await testSession({ env: { K: KEY_A } });
      try {
        await s.run(`/route add r ${hop} m --key-env K`);
        assert.equal(await s.run("@r hi"), 1);
        assert.match(s.err.text, /401/);
        assert.ok(target.requests.length > 0, "the redirect was followed");
        for (const r of target.requests) assert.equal(r.headers.authorization, undefined);
        assertNoSecret(JSON.stringify(target.requests), [KEY_A], "the other host's requests");
      } finally {
        await s.close();
      }
    });

    await t.step("Anthropic: the redirect is not followed", async () => {
      to = claude.url;
      const s = await testSession({ env: { ANTHROPIC_API_KEY: KEY_B } });
      try {
        await s.run(`/route add c anthropic claude-fake-1 --url ${hop}/v1`);
        assert.equal(await s.run("@c hi"), 1);
        assert.match(s.err.text, /answered with a redirect; Harvey does not follow redirects/);
        assert.equal(claude.requests.length, 0);
      } finally {
        await s.close();
      }
    });
  } finally {
    await redirector.shutdown();
    await closeAll(target, claude);
  }
});

Deno.test("a route without a model takes its server's only model, or asks and saves", async () => {
  const single = await startFakeOpenAI({ modelId: "only-one", reply: () => "single" });
  const claude = await startFakeAnthropic({
    apiKey: KEY_B,
    models: ["claude-a", "claude-b"],
    reply: () => "picked",
  });
  const s = await testSession({ env: { ANTHROPIC_API_KEY: KEY_B } });
  try {
    assert.equal(await s.run(`/route add one ${single.url}`), 0, s.err.text);
    assert.match(s.out.text, /No model yet/);
    assert.equal(await s.run("@one hi"), 0, s.err.text);
    assert.match(s.out.text, /\[@one · only-one\]\nsingle/);
    await s.run(`/route add c anthropic --url ${claude.url}`);
    assert.equal(await s.run("@c hi\n2"), 0, s.err.text);
    assert.match(s.out.text, /Which model should @c use\?/);
    assert.match(s.out.text, /\[@c · claude-b\]\npicked/);
    const yaml = await Deno.readTextFile(join(s.root, "agents", "harvey.yaml"));
    assert.match(yaml, /model: only-one/);
    assert.match(yaml, /model: claude-b/);
    assert.equal((chats(claude)[0].body as { model: string }).model, "claude-b");
  } finally {
    await closeAll(s, single, claude);
  }
});

Deno.test("probing an unreachable route says so", async () => {
  const gone: FakeOpenAI = await startFakeOpenAI();
  const url = gone.url;
  await gone.close();
  const s = await testSession();
  try {
    await s.run(`/route add down ${url}/v1 m`);
    assert.equal(await s.run("/route probe down"), 1);
    assert.match(s.err.text, /Cannot reach @down at .*: connection refused/);
  } finally {
    await s.close();
  }
});

Deno.test("an OpenAI-compatible API root that is not /v1 (Gemini's) is used as it is", async () => {
  const fake = await startFakeOpenAI({
    apiKey: ALL_KEYS.GEMINI_API_KEY,
    reply: () => "from gemini",
  });
  // A front that serves the OpenAI API under /v1beta/openai, as Gemini does.
  const front = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (!url.pathname.startsWith("/v1beta/openai/")) {
      return new Response("not here", { status: 404 });
    }
    const target = `${fake.url}/v1/${url.pathname.slice("/v1beta/openai/".length)}`;
    return fetch(target, { method: req.method, headers: req.headers, body: req.body });
  });
  const s = await testSession({ env: ALL_KEYS });
  try {
    const root = `http://127.0.0.1:${front.addr.port}/v1beta/openai`;
    assert.equal(await s.run(`/route add gem ${root} fake-model --key-env GEMINI_API_KEY`), 0);
    assert.equal(await s.run("@gem hi"), 0, s.err.text);
    assert.match(s.out.text, /from gemini/);
    const chat = fake.requests.find((r) => r.path === "/v1/chat/completions")!;
    assert.equal(chat.headers["authorization"], `Bearer ${ALL_KEYS.GEMINI_API_KEY}`);
  } finally {
    await s.close();
    await front.shutdown();
    await fake.close();
  }
});

Deno.test("the native Anthropic client on its own: stats from message_start and message_delta", async () => {
  const claude = await startFakeAnthropic({ apiKey: "k-123", reply: () => "Hello there, friend." });
  try {
    const client = new AnthropicClient({
      baseUrl: claude.url,
      model: "claude-fake-1",
      label: "anthropic",
      apiKey: "k-123",
    });
    assert.equal(client.baseUrl, `${claude.url}/v1`);
    const tokens: string[] = [];
    const stats = await client.chat(
      [{ role: "system", content: "Be kind" }, { role: "user", content: "Say hello" }],
      { onToken: (tok) => tokens.push(tok) },
    );
    assert.equal(tokens.join(""), "Hello there, friend.");
    assert.ok(tokens.length > 3);
    assert.equal(stats.replyTokens, tokens.length);
    assert.equal(stats.promptTokens, 6, "Be kind + Say hello, counted by the server");
    claude.script({ text: "cut short here", dropAfterTokens: 2 });
    await assert.rejects(
      () => client.chat([{ role: "user", content: "x" }], { onToken: () => {} }),
      /closed the connection in the middle of the reply/,
    );
    const ctl = new AbortController();
    claude.script({ text: "a b c d e f", tokenDelayMs: 20 });
    await assert.rejects(
      () =>
        client.chat([{ role: "user", content: "x" }], {
          signal: ctl.signal,
          onToken: () => ctl.abort(),
        }),
      (err: Error) => err.name === "AbortError",
    );
  } finally {
    await claude.close();
  }
});

Deno.test("every @route turn is checked against the route's own window", async (t) => {
  const big = Array.from({ length: 10_000 }, (_, i) => `w${i}`).join(" ");
  await t.step("a local server's /props window", async () => {
    const server = await startFakeOpenAI({ modelId: "small", nCtx: 512 });
    const s = await testSession();
    try {
      assert.equal(await s.run(`/route add lan ${server.url} small`), 0, s.err.text);
      assert.equal(await s.run(`@lan ${big}`), 1);
      assert.match(s.err.text, /needs \d+ tokens but the context window of 512 leaves 256/);
      assert.equal(chats(server).length, 0, "the 20k-token request never reached the server");
      assert.equal(await s.run("@lan a short one"), 0, s.err.text);
      assert.equal((chats(server)[0].body as { max_tokens: number }).max_tokens, 256);
    } finally {
      await closeAll(s, server);
    }
  });
  await t.step("Anthropic's max_input_tokens", async () => {
    const fake = await startFakeAnthropic({ apiKey: KEY_A, maxInputTokens: 1000 });
    const s = await testSession({ env: { ANTHROPIC_API_KEY: KEY_A } });
    try {
      assert.equal(
        await s.run(`/route add claude ${fake.url} claude-fake-1 --provider anthropic`),
        0,
        s.err.text,
      );
      assert.equal(await s.run(`@claude ${big}`), 1);
      assert.match(s.err.text, /context window of 1000 leaves/);
      assert.equal(chats(fake).length, 0);
      assert.ok(fake.requests.some((r) => r.path === "/v1/models/claude-fake-1"));
    } finally {
      await closeAll(s, fake);
    }
  });
  await t.step("the route's context setting, when the server does not tell", async () => {
    const ollama = await startFakeOllama({ models: ["m:latest"] });
    const yaml = `routes:\n  - name: lo\n    provider: ollama\n    url: ${ollama.url}\n` +
      "    model: m:latest\n    context: 300\n";
    const s = await testSession({ files: { "agents/harvey.yaml": yaml } });
    try {
      assert.equal(await s.run(`@lo ${big}`), 1);
      assert.match(s.err.text, /context window of 300 leaves/);
      assert.equal(chats(ollama).length, 0);
      assert.equal(await s.run("@lo hi"), 0, s.err.text);
      const sent = chats(ollama)[0].body as { options: { num_predict: number } };
      assert.equal(sent.options.num_predict, 150);
    } finally {
      await closeAll(s, ollama);
    }
  });
});
