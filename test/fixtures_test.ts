import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { fakeEmbedding } from "./fixtures/fake_embed.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { type FakeOpenAI, renderChat, startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { countTokens, splitTokens } from "./fixtures/fixture_common.ts";

// ---------------------------------------------------------------------------------------------
// Helpers: incremental readers for the two streaming formats, as a client would write them.

interface StreamRead {
  /** Complete units (SSE `data:` payloads or NDJSON lines), in arrival order. */
  items: string[];
  /** The error that ended the stream, when it did not end cleanly. */
  error?: unknown;
}

async function readFramed(res: Response, separator: string, prefix: string): Promise<StreamRead> {
  assert.ok(res.body, "expected a response body");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const items: string[] = [];
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let at;
      while ((at = buffer.indexOf(separator)) !== -1) {
        const unit = buffer.slice(0, at);
        buffer = buffer.slice(at + separator.length);
        if (unit.startsWith(prefix)) items.push(unit.slice(prefix.length));
      }
    }
  } catch (error) {
    return { items, error };
  }
  if (buffer !== "") items.push(buffer.startsWith(prefix) ? buffer.slice(prefix.length) : buffer);
  return { items };
}

const readSSE = (res: Response) => readFramed(res, "\n\n", "data: ");
const readNDJSON = (res: Response) => readFramed(res, "\n", "");

// deno-lint-ignore no-explicit-any
type Json = any;

function postJSON(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

async function chatStream(fake: FakeOpenAI, extra: Record<string, unknown> = {}) {
  const res = await postJSON(`${fake.url}/v1/chat/completions`, {
    model: "whatever",
    stream: true,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Say hi!" }],
    ...extra,
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  return readSSE(res);
}

function contentOf(events: string[]): string {
  return events.filter((e) => e !== "[DONE]")
    .map((e) => JSON.parse(e).choices[0]?.delta?.content ?? "")
    .join("");
}

function cosine(a: number[], b: number[]): number {
  return a.reduce((sum, x, i) => sum + x * b[i], 0);
}

function assertOpenAIError(body: Json, code: number, type: string, message?: string) {
  assert.equal(body.error.code, code);
  assert.equal(body.error.type, type);
  assert.equal(typeof body.error.message, "string");
  if (message !== undefined) assert.equal(body.error.message, message);
}

// ---------------------------------------------------------------------------------------------

Deno.test("fakeEmbedding is a deterministic unit vector that ranks shared words higher", () => {
  const a = fakeEmbedding("The quick brown fox jumps");
  assert.equal(a.length, 64);
  assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-9);
  assert.deepEqual(fakeEmbedding("the QUICK brown fox jumps"), a);
  assert.equal(fakeEmbedding("x y z", 16).length, 16);
  const related = fakeEmbedding("a quick brown fox");
  const unrelated = fakeEmbedding("sqlite write ahead logging");
  assert.ok(cosine(a, related) > cosine(a, unrelated));
  assert.ok(cosine(a, related) > 0.5);
  assert.deepEqual(fakeEmbedding("  ...  ", 4), [0, 0, 0, 0]);
  assert.throws(() => fakeEmbedding("x", 0), RangeError);
});

Deno.test("splitTokens splits words, spaces and symbols and joins back to the text", () => {
  assert.deepEqual(splitTokens("Hi, there  you!"), ["Hi", ",", " ", "there", "  ", "you", "!"]);
  const text = "naïve café 🙂 x=1\n";
  assert.equal(splitTokens(text).join(""), text);
  assert.ok(splitTokens(text).includes("🙂"));
  assert.deepEqual(splitTokens(""), []);
});

Deno.test("fake OpenAI server answers like llama-server", async (t) => {
  const fake = await startFakeOpenAI({ nCtx: 2048, nCtxTrain: 131072 });
  try {
    assert.match(fake.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(fake.url, `http://127.0.0.1:${fake.port}`);

    await t.step("health, models and props", async () => {
      assert.deepEqual(await (await fetch(`${fake.url}/health`)).json(), { status: "ok" });
      const models: Json = await (await fetch(`${fake.url}/v1/models`)).json();
      assert.equal(models.object, "list");
      assert.equal(models.data[0].id, "fake-model");
      assert.equal(models.data[0].owned_by, "llamacpp");
      assert.equal(models.data[0].meta.n_ctx_train, 131072);
      for (const key of ["n_params", "size", "n_vocab"]) {
        assert.equal(typeof models.data[0].meta[key], "number", key);
      }
      const props: Json = await (await fetch(`${fake.url}/props`)).json();
      assert.equal(props.default_generation_settings.n_ctx, 2048);
      assert.equal(props.total_slots, 1);
      assert.equal(typeof props.chat_template, "string");
    });

    await t.step(
      "streams one SSE chunk per token, usage and timings on the finish chunk",
      async () => {
        const { items, error } = await chatStream(fake);
        assert.equal(error, undefined);
        assert.equal(items.at(-1), "[DONE]");
        const chunks: Json[] = items.slice(0, -1).map((e) => JSON.parse(e));
        assert.equal(contentOf(items), "Hello from fake-model.");
        assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
        assert.ok(chunks.every((c) => c.model === "fake-model"));
        // No role-only first chunk: the first chunk already carries text.
        assert.equal(chunks[0].choices[0].delta.content, "Hello");
        assert.equal(chunks[0].choices[0].delta.role, undefined);
        const content = chunks.filter((c) => c.choices[0].delta.content !== undefined);
        assert.equal(content.length, splitTokens("Hello from fake-model.").length);
        const last = chunks.at(-1);
        assert.equal(last.choices[0].finish_reason, "stop");
        assert.deepEqual(last.choices[0].delta, {});
        // The prompt is the chat template's rendering of both messages.
        const promptTokens = countTokens(renderChat([
          { role: "system", content: "Be brief." },
          { role: "user", content: "Say hi!" },
        ]));
        assert.deepEqual(last.usage, {
          prompt_tokens: promptTokens,
          completion_tokens: content.length,
          total_tokens: promptTokens + content.length,
        });
        assert.equal(last.timings.prompt_n, promptTokens);
        assert.equal(last.timings.predicted_n, content.length);
        assert.ok(last.timings.predicted_per_second > 0);
        assert.ok(last.timings.prompt_ms > 0 && last.timings.predicted_ms > 0);
        assert.ok(chunks.slice(0, -1).every((c) => c.usage === undefined));
      },
    );

    await t.step("stream false gives one chat.completion", async () => {
      const res = await postJSON(`${fake.url}/v1/chat/completions`, {
        messages: [{ role: "user", content: "hello" }],
      });
      assert.equal(res.status, 200);
      const body: Json = await res.json();
      assert.equal(body.object, "chat.completion");
      assert.deepEqual(body.choices[0].message, {
        role: "assistant",
        content: "Hello from fake-model.",
      });
      assert.equal(body.choices[0].finish_reason, "stop");
      assert.equal(body.usage.prompt_tokens, countTokens("<|user|>\nhello\n<|assistant|>\n"));
      assert.equal(body.usage.completion_tokens, 8); // Hello, " ", from, " ", fake, -, model, .
    });

    await t.step("/tokenize counts the same pieces the stream sends", async () => {
      const res = await postJSON(`${fake.url}/tokenize`, { content: "Hello from fake-model." });
      const body: Json = await res.json();
      assert.equal(body.tokens.length, 8);
      assert.ok(body.tokens.every((id: unknown) => Number.isInteger(id)));
      const again: Json = await (await postJSON(`${fake.url}/tokenize`, {
        content: "Hello from fake-model.",
        with_pieces: true,
      })).json();
      assert.deepEqual(again.tokens.map((x: Json) => x.id), body.tokens);
      assert.equal(again.tokens.map((x: Json) => x.piece).join(""), "Hello from fake-model.");
    });

    await t.step("scripted replies are used in order, then the default comes back", async () => {
      fake.script({ text: "First one" }, { status: 429, message: "Slow down" });
      assert.equal(contentOf((await chatStream(fake)).items), "First one");
      const res = await postJSON(`${fake.url}/v1/chat/completions`, {
        stream: true,
        messages: [{ role: "user", content: "again" }],
      });
      assert.equal(res.status, 429);
      assertOpenAIError(await res.json(), 429, "invalid_request_error", "Slow down");
      assert.equal(contentOf((await chatStream(fake)).items), "Hello from fake-model.");
    });

    await t.step("dropAfterTokens cuts the connection mid-stream", async () => {
      fake.script({ text: "one two three four", dropAfterTokens: 3 });
      const { items, error } = await chatStream(fake);
      assert.ok(error instanceof TypeError, `expected a network error, got ${error}`);
      assert.equal(contentOf(items), "one two");
      assert.ok(!items.includes("[DONE]"));

      fake.script({ text: "one two", dropAfterTokens: 1 });
      const res = await postJSON(`${fake.url}/v1/chat/completions`, {
        messages: [{ role: "user", content: "x" }],
      });
      await assert.rejects(res.text(), TypeError);
    });

    await t.step("malformedAfterTokens sends a broken event and ends cleanly", async () => {
      fake.script({ text: "alpha beta", malformedAfterTokens: 2 });
      const { items, error } = await chatStream(fake);
      assert.equal(error, undefined);
      assert.equal(items.length, 3);
      assert.equal(contentOf(items.slice(0, 2)), "alpha ");
      assert.equal(items[2], "{not json");
      assert.throws(() => JSON.parse(items[2]), SyntaxError);
    });

    await t.step("a client can abort while the server waits between tokens", async () => {
      fake.script({ text: "a b c d e f g h", tokenDelayMs: 60_000 });
      const res = await postJSON(`${fake.url}/v1/chat/completions`, {
        stream: true,
        messages: [{ role: "user", content: "x" }],
      });
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.match(new TextDecoder().decode(first.value), /"content":"a"/);
      await reader.cancel();
      // The server is still healthy for the next request.
      assert.equal(contentOf((await chatStream(fake)).items), "Hello from fake-model.");
    });

    await t.step("malformed request JSON is a 500 and an unknown path a 404", async () => {
      const bad = await fetch(`${fake.url}/v1/chat/completions`, { method: "POST", body: "{oops" });
      assert.equal(bad.status, 500);
      assertOpenAIError(await bad.json(), 500, "server_error");
      const missing = await fetch(`${fake.url}/v1/nothing`);
      assert.equal(missing.status, 404);
      assertOpenAIError(await missing.json(), 404, "not_found_error");
      const noMessages = await postJSON(`${fake.url}/v1/chat/completions`, { stream: true });
      assert.equal(noMessages.status, 400);
      assertOpenAIError(await noMessages.json(), 400, "invalid_request_error");
    });

    await t.step("embeddings for a string and for a list", async () => {
      const one: Json = await (await postJSON(`${fake.url}/v1/embeddings`, {
        model: "m",
        input: "red apples",
      })).json();
      assert.equal(one.object, "list");
      assert.equal(one.data.length, 1);
      assert.equal(one.data[0].object, "embedding");
      assert.deepEqual(one.data[0].embedding, fakeEmbedding("red apples", 64));
      const two: Json = await (await postJSON(`${fake.url}/v1/embeddings`, {
        model: "m",
        input: ["a", "b c"],
      })).json();
      assert.deepEqual(two.data.map((d: Json) => d.index), [0, 1]);
      assert.deepEqual(two.data[1].embedding, fakeEmbedding("b c"));
      assert.equal(two.usage.prompt_tokens, 4);
    });

    await t.step("every request is recorded in order", () => {
      const paths = fake.requests.map((r) => `${r.method} ${r.path}`);
      assert.deepEqual(paths.slice(0, 3), ["GET /health", "GET /v1/models", "GET /props"]);
      const malformed = fake.requests.find((r) => r.body === "{oops");
      assert.ok(malformed, "the malformed body is recorded as text");
      const embed = fake.requests.findLast((r) => r.path === "/v1/embeddings");
      assert.deepEqual(embed?.body, { model: "m", input: ["a", "b c"] });
      assert.equal(embed?.headers["content-type"], "application/json");
      assert.equal(fake.requests[0].body, null);
    });
  } finally {
    await fake.close();
  }
});

Deno.test("fake OpenAI server options", async (t) => {
  await t.step("every endpoint answers 503 while loading, then the server is ready", async () => {
    const fake = await startFakeOpenAI({ loadingMs: 400 });
    try {
      const early = await Promise.all([
        fetch(`${fake.url}/health`),
        fetch(`${fake.url}/v1/models`),
        fetch(`${fake.url}/props`),
        fetch(`${fake.url}/nowhere`),
        postJSON(`${fake.url}/tokenize`, { content: "x" }),
        postJSON(`${fake.url}/v1/embeddings`, { input: "x" }),
        postJSON(`${fake.url}/v1/chat/completions`, { messages: [], stream: true }),
      ]);
      for (const res of early) {
        assert.equal(res.status, 503);
        assert.deepEqual(await res.json(), {
          error: { code: 503, message: "Loading model", type: "unavailable_error" },
        });
      }
      let res = await fetch(`${fake.url}/health`);
      for (let i = 0; res.status === 503 && i < 200; i++) {
        await res.body?.cancel();
        await new Promise((r) => setTimeout(r, 20));
        res = await fetch(`${fake.url}/health`);
      }
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: "ok" });
    } finally {
      await fake.close();
    }
  });

  await t.step("apiKey: 401 without the bearer token, except on the public endpoints", async () => {
    const fake = await startFakeOpenAI({ apiKey: "sekret" });
    try {
      // llama-server's middleware_validate_api_key leaves these open.
      for (const path of ["/health", "/v1/health", "/v1/models", "/models"]) {
        const open = await fetch(`${fake.url}${path}`);
        assert.equal(open.status, 200, path);
        await open.body?.cancel();
      }
      const none = await fetch(`${fake.url}/props`);
      assert.equal(none.status, 401);
      assertOpenAIError(await none.json(), 401, "authentication_error", "Invalid API Key");
      const tokenize = await postJSON(`${fake.url}/tokenize`, { content: "x" });
      assert.equal(tokenize.status, 401);
      await tokenize.body?.cancel();
      const wrong = await fetch(`${fake.url}/props`, {
        headers: { authorization: "Bearer nope" },
      });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const right = await fetch(`${fake.url}/props`, {
        headers: { authorization: "Bearer sekret" },
      });
      assert.equal(right.status, 200);
      assert.equal((await right.json()).default_generation_settings.n_ctx, 4096);
      assert.equal(fake.requests.at(-1)?.headers.authorization, "Bearer sekret");
    } finally {
      await fake.close();
    }
  });

  await t.step("roleChunk, modelId and a reply function", async () => {
    const seen: { role: string; content: string }[][] = [];
    const fake = await startFakeOpenAI({
      roleChunk: true,
      modelId: "tiny-1",
      reply: (messages) => {
        seen.push(messages);
        return `echo ${messages.at(-1)?.content}`;
      },
    });
    try {
      const { items } = await chatStream(fake, {
        messages: [{ role: "user", content: [{ type: "text", text: "parts work" }] }],
      });
      const first = JSON.parse(items[0]);
      assert.deepEqual(first.choices[0].delta, { role: "assistant", content: null });
      assert.equal(first.model, "tiny-1");
      assert.equal(contentOf(items), "echo parts work");
      assert.deepEqual(seen, [[{ role: "user", content: "parts work" }]]);
    } finally {
      await fake.close();
    }
  });

  await t.step("usage separate comes in its own chunk only when asked for", async () => {
    const fake = await startFakeOpenAI({ usage: "separate" });
    try {
      const asked = (await chatStream(fake, { stream_options: { include_usage: true } })).items;
      const chunks = asked.slice(0, -1).map((e) => JSON.parse(e));
      const finish = chunks.find((c) => c.choices[0]?.finish_reason === "stop");
      assert.equal(finish.usage, undefined);
      const usage = chunks.at(-1);
      assert.deepEqual(usage.choices, []);
      assert.equal(usage.usage.completion_tokens, 8);
      const notAsked = (await chatStream(fake)).items.slice(0, -1).map((e) => JSON.parse(e));
      assert.ok(notAsked.every((c) => c.usage === undefined && c.choices.length === 1));
    } finally {
      await fake.close();
    }
  });

  await t.step("usage none reports no usage", async () => {
    const fake = await startFakeOpenAI({ usage: "none" });
    try {
      const { items } = await chatStream(fake, { stream_options: { include_usage: true } });
      assert.equal(items.at(-1), "[DONE]");
      assert.ok(items.slice(0, -1).every((e) => JSON.parse(e).usage === undefined));
    } finally {
      await fake.close();
    }
  });

  await t.step("embeddings off answers 501, embedDims sets the size", async () => {
    const off = await startFakeOpenAI({ embeddings: false });
    const small = await startFakeOpenAI({ embedDims: 8 });
    try {
      const res = await postJSON(`${off.url}/v1/embeddings`, { input: "x" });
      assert.equal(res.status, 501);
      assertOpenAIError(await res.json(), 501, "not_supported_error");
      const body: Json = await (await postJSON(`${small.url}/v1/embeddings`, { input: "x" }))
        .json();
      assert.equal(body.data[0].embedding.length, 8);
    } finally {
      await off.close();
      await small.close();
    }
  });

  await t.step("close cuts a reply that is still waiting for its first token", async () => {
    const fake = await startFakeOpenAI();
    fake.script({ firstTokenDelayMs: 60_000 });
    const res = await postJSON(`${fake.url}/v1/chat/completions`, {
      stream: true,
      messages: [{ role: "user", content: "x" }],
    });
    const reading = readSSE(res);
    await fake.close();
    const { items, error } = await reading;
    assert.ok(error instanceof TypeError);
    assert.deepEqual(items, []);
  });
});

Deno.test("fake OpenAI server: llama-server's window, template, limits, reasoning and modes", async (t) => {
  await t.step(
    "the slot window: -c divided among -np slots, capped at the trained context",
    async () => {
      for (
        const [opts, window, slots] of [
          [{ nCtx: 8192, nCtxTrain: 2048 }, 2048, 1],
          [{ nCtx: 8192, nCtxTrain: 8192, parallel: 2 }, 4096, 2],
          [{ nCtx: 0, nCtxTrain: 3000 }, 3000, 1],
        ] as const
      ) {
        const fake = await startFakeOpenAI(opts);
        try {
          const props: Json = await (await fetch(`${fake.url}/props`)).json();
          assert.equal(props.default_generation_settings.n_ctx, window, JSON.stringify(opts));
          assert.equal(props.total_slots, slots);
        } finally {
          await fake.close();
        }
      }
    },
  );

  const fake = await startFakeOpenAI({ nCtx: 64, reply: () => "one two three four five" });
  try {
    const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }];
    await t.step("/apply-template + /tokenize count exactly what the chat counts", async () => {
      const { prompt }: Json = await (await postJSON(`${fake.url}/apply-template`, { messages }))
        .json();
      assert.equal(prompt, "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n");
      const { tokens }: Json = await (await postJSON(`${fake.url}/tokenize`, { content: prompt }))
        .json();
      const body: Json = await (await postJSON(`${fake.url}/v1/chat/completions`, { messages }))
        .json();
      assert.equal(body.usage.prompt_tokens, tokens.length);
    });

    await t.step("a prompt of n_ctx tokens or more: 400 exceed_context_size_error", async () => {
      const long = [{ role: "user", content: "w ".repeat(40) }];
      const res = await postJSON(`${fake.url}/v1/chat/completions`, { messages: long });
      assert.equal(res.status, 400);
      const body: Json = await res.json();
      assert.equal(body.error.type, "exceed_context_size_error");
      assert.equal(body.error.n_ctx, 64);
      assert.equal(body.error.n_prompt_tokens, countTokens(renderChat(long)));
      assert.match(body.error.message, /exceeds the available context size \(64 tokens\)/);
    });

    await t.step("max_tokens cuts the reply with finish_reason length", async () => {
      const { items } = await chatStream(fake, { max_tokens: 3 });
      assert.equal(contentOf(items), "one two");
      const last = JSON.parse(items.at(-2)!);
      assert.equal(last.choices[0].finish_reason, "length");
      assert.equal(last.usage.completion_tokens, 3);
    });

    await t.step("without a limit the reply runs until the window is full", async () => {
      const used = countTokens(renderChat([{ role: "user", content: "x ".repeat(25) }]));
      fake.script({ text: "z ".repeat(100) });
      const { items } = await chatStream(fake, {
        messages: [{ role: "user", content: "x ".repeat(25) }],
      });
      const last = JSON.parse(items.at(-2)!);
      assert.equal(last.choices[0].finish_reason, "length");
      assert.equal(last.usage.completion_tokens, 64 - used);
    });

    await t.step(
      "endWithoutFinish ends cleanly with neither a finish chunk nor [DONE]",
      async () => {
        fake.script({ text: "alpha beta", endWithoutFinish: true });
        const { items, error } = await chatStream(fake);
        assert.equal(error, undefined);
        assert.equal(contentOf(items), "alpha beta");
        assert.ok(!items.includes("[DONE]"));
        assert.ok(items.every((e) => JSON.parse(e).choices[0].finish_reason === null));
      },
    );
  } finally {
    await fake.close();
  }

  await t.step("reasoning: reasoning_content before the reply, or <think> in content", async () => {
    const deepseek = await startFakeOpenAI({ reasoning: () => "let me think", reply: () => "42" });
    const none = await startFakeOpenAI({
      reasoning: () => "hmm",
      reply: () => "42",
      reasoningFormat: "none",
    });
    try {
      const { items } = await chatStream(deepseek);
      const deltas = items.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta);
      assert.equal(deltas.map((d) => d.reasoning_content ?? "").join(""), "let me think");
      assert.equal(contentOf(items), "42");
      assert.ok(
        deltas.findIndex((d) => d.content) > deltas.findLastIndex((d) => d.reasoning_content),
      );
      assert.equal(contentOf((await chatStream(none)).items), "<think>hmm</think>42");
    } finally {
      await deepseek.close();
      await none.close();
    }
  });

  await t.step("router mode: n_ctx 0 in /props, the model's own with ?model=", async () => {
    const router = await startFakeOpenAI({ routerModels: { small: 2048, big: 8192 } });
    try {
      const plain: Json = await (await fetch(`${router.url}/props`)).json();
      assert.equal(plain.default_generation_settings.n_ctx, 0);
      assert.equal(plain.role, "router");
      const big: Json = await (await fetch(`${router.url}/props?model=big`)).json();
      assert.equal(big.default_generation_settings.n_ctx, 8192);
      const ids: Json = await (await fetch(`${router.url}/v1/models`)).json();
      assert.deepEqual(ids.data.map((m: Json) => m.id), ["small", "big"]);
      const missing = await postJSON(`${router.url}/tokenize`, { content: "a b" });
      assert.equal(missing.status, 400);
      assertOpenAIError(
        await missing.json(),
        400,
        "invalid_request_error",
        "model name is missing from the request",
      );
      const named: Json = await (await postJSON(`${router.url}/tokenize`, {
        model: "small",
        content: "a b",
      })).json();
      assert.equal(named.tokens.length, 3);
      const chat = await postJSON(`${router.url}/v1/chat/completions`, {
        messages: [{ role: "user", content: "x" }],
      });
      assert.equal(chat.status, 400);
      await chat.body?.cancel();
    } finally {
      await router.close();
    }
  });

  await t.step("--embeddings: chat answers 501; pooling none refuses embeddings", async () => {
    const only = await startFakeOpenAI({ embeddingOnly: true });
    const unpooled = await startFakeOpenAI({ pooling: "none" });
    try {
      const chat = await postJSON(`${only.url}/v1/chat/completions`, {
        messages: [{ role: "user", content: "x" }],
      });
      assert.equal(chat.status, 501);
      await chat.body?.cancel();
      const ok = await postJSON(`${only.url}/v1/embeddings`, { input: "x" });
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
      const refused = await postJSON(`${unpooled.url}/v1/embeddings`, { input: "x" });
      assert.equal(refused.status, 400);
      assert.match((await refused.json()).error.message, /Pooling type 'none'/);
    } finally {
      await only.close();
      await unpooled.close();
    }
  });
});

Deno.test("fake Ollama server speaks Ollama's API", async (t) => {
  const fake = await startFakeOllama({
    models: ["llama3.2:latest", "qwen3:8b"],
    contextLength: 32768,
  });
  try {
    await t.step("root, version, tags and show", async () => {
      assert.equal(await (await fetch(`${fake.url}/`)).text(), "Ollama is running");
      assert.equal(
        typeof (await (await fetch(`${fake.url}/api/version`)).json()).version,
        "string",
      );
      const tags: Json = await (await fetch(`${fake.url}/api/tags`)).json();
      assert.deepEqual(tags.models.map((m: Json) => m.name), ["llama3.2:latest", "qwen3:8b"]);
      assert.equal(tags.models[0].details.family, "llama");
      assert.equal(typeof tags.models[0].size, "number");
      const show: Json = await (await postJSON(`${fake.url}/api/show`, { model: "qwen3:8b" }))
        .json();
      assert.equal(show.model_info["general.architecture"], "llama");
      assert.equal(show.model_info["llama.context_length"], 32768);
      assert.equal(show.details.format, "gguf");
    });

    await t.step("chat streams NDJSON and ends with the counts", async () => {
      const res = await postJSON(`${fake.url}/api/chat`, {
        model: "llama3.2",
        messages: [{ role: "user", content: "Hi there" }],
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/x-ndjson");
      const { items, error } = await readNDJSON(res);
      assert.equal(error, undefined);
      const lines: Json[] = items.map((l) => JSON.parse(l));
      const parts = lines.slice(0, -1);
      assert.ok(parts.every((l) => l.done === false && l.message.role === "assistant"));
      assert.ok(parts.every((l) => l.model === "llama3.2" && typeof l.created_at === "string"));
      assert.equal(parts.map((l) => l.message.content).join(""), "Hello from llama3.2.");
      const last = lines.at(-1);
      assert.equal(last.done, true);
      assert.equal(last.done_reason, "stop");
      assert.equal(last.eval_count, parts.length);
      assert.equal(last.prompt_eval_count, 3);
      for (
        const key of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"]
      ) {
        assert.ok(Number.isInteger(last[key]) && last[key] > 0, key);
      }
    });

    await t.step("stream false gives one object", async () => {
      const body: Json = await (await postJSON(`${fake.url}/api/chat`, {
        model: "qwen3:8b",
        stream: false,
        messages: [{ role: "user", content: "x" }],
      })).json();
      assert.deepEqual(body.message, { role: "assistant", content: "Hello from qwen3:8b." });
      assert.equal(body.done, true);
      assert.equal(body.eval_count, splitTokens("Hello from qwen3:8b.").length);
    });

    await t.step("unknown model is a 404, malformed JSON a 400, unknown path a 404", async () => {
      const res = await postJSON(`${fake.url}/api/chat`, { model: "nope", messages: [] });
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), { error: "model 'nope' not found" });
      const bad = await fetch(`${fake.url}/api/chat`, { method: "POST", body: "{" });
      assert.equal(bad.status, 400);
      assert.equal(typeof (await bad.json()).error, "string");
      const missing = await fetch(`${fake.url}/api/nothing`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    });

    await t.step("scripted errors, drops and malformed lines", async () => {
      fake.script(
        { status: 500, message: "model crashed" },
        { text: "a b c d", dropAfterTokens: 2 },
        { text: "a b c d", malformedAfterTokens: 1 },
        { text: "Scripted!" },
      );
      const chat = () =>
        postJSON(`${fake.url}/api/chat`, {
          model: "llama3.2:latest",
          messages: [{ role: "user", content: "x" }],
        });
      const failed = await chat();
      assert.equal(failed.status, 500);
      assert.deepEqual(await failed.json(), { error: "model crashed" });
      const dropped = await readNDJSON(await chat());
      assert.ok(dropped.error instanceof TypeError);
      assert.deepEqual(dropped.items.map((l) => JSON.parse(l).message.content), ["a", " "]);
      const broken = await readNDJSON(await chat());
      assert.equal(broken.error, undefined);
      assert.equal(broken.items.length, 2);
      assert.equal(JSON.parse(broken.items[0]).message.content, "a");
      assert.equal(broken.items[1], "{not json");
      const scripted = await readNDJSON(await chat());
      const text = scripted.items.map((l) => JSON.parse(l).message.content).join("");
      assert.equal(text, "Scripted!");
    });

    await t.step("embed and the request log", async () => {
      const body: Json = await (await postJSON(`${fake.url}/api/embed`, {
        model: "qwen3:8b",
        input: ["one", "two"],
      })).json();
      assert.equal(body.model, "qwen3:8b");
      assert.deepEqual(body.embeddings, [fakeEmbedding("one"), fakeEmbedding("two")]);
      const last = fake.requests.at(-1);
      assert.equal(last?.method, "POST");
      assert.equal(last?.path, "/api/embed");
      assert.deepEqual(last?.body, { model: "qwen3:8b", input: ["one", "two"] });
    });
  } finally {
    await fake.close();
  }
});

async function runFixtureScript(file: string, args: string[]) {
  const path = fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-net=127.0.0.1", path, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await stdout.read();
    if (done) break;
    seen += value;
  }
  return { child, stdout, stderr, firstLine: seen.split("\n")[0] };
}

Deno.test("fixtures run as scripts print where they listen and stop on SIGTERM", async (t) => {
  await t.step("fake_openai.ts", async () => {
    const run = await runFixtureScript("fake_openai.ts", ["--port", "0", "--model", "cli-model"]);
    try {
      const match = run.firstLine.match(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/);
      assert.ok(match, `unexpected first line: ${run.firstLine}`);
      const models: Json = await (await fetch(`${match[1]}/v1/models`)).json();
      assert.equal(models.data[0].id, "cli-model");
    } finally {
      run.child.kill("SIGTERM");
    }
    const status = await run.child.status;
    assert.equal(status.code, 0, await run.stderr);
    assert.equal((await run.stdout.read()).done, true);
  });

  await t.step("fake_ollama.ts with two models", async () => {
    const run = await runFixtureScript("fake_ollama.ts", ["--model", "a:1", "--model", "b:2"]);
    try {
      const match = run.firstLine.match(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/);
      assert.ok(match, `unexpected first line: ${run.firstLine}`);
      const tags: Json = await (await fetch(`${match[1]}/api/tags`)).json();
      assert.deepEqual(tags.models.map((m: Json) => m.name), ["a:1", "b:2"]);
    } finally {
      run.child.kill("SIGTERM");
    }
    assert.equal((await run.child.status).code, 0, await run.stderr);
    assert.equal((await run.stdout.read()).done, true);
  });

  await t.step("a bad flag is a usage error", async () => {
    const run = await runFixtureScript("fake_openai.ts", ["--port", "eighty"]);
    assert.equal((await run.child.status).code, 2);
    assert.match(await run.stderr, /--port expects a whole number, found "eighty"/);
    assert.equal(run.firstLine, "");
  });
});
