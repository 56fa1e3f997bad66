/**
 * The token budget, through real sessions against the fake llama.cpp-style server: requests
 * are measured with its `/tokenize` against its `n_ctx` before they are sent.
 */
import assert from "node:assert/strict";
import { SUMMARIZE_PROMPT } from "../src/commands/summarize.ts";
import { PER_MESSAGE_OVERHEAD } from "../src/llm/tokens.ts";
import { OpenAICompatClient } from "../src/llm/openai_compat.ts";
import type { LLMClient, Message } from "../src/types.ts";
import { countTokens } from "./fixtures/fixture_common.ts";
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { type TestSession, testSession } from "./helpers.ts";

// A short system prompt keeps the numbers small: "Be brief." is 4 tokens for the fake.
const FILES = { "HARVEY.md": "Be brief." };

async function withSession(
  nCtx: number,
  fn: (s: TestSession, fake: FakeOpenAI) => Promise<void>,
): Promise<void> {
  const fake = await startFakeOpenAI({ nCtx, reply: () => "Sure." });
  const s = await testSession({
    files: FILES,
    flags: { llamafileUrl: fake.url },
    selectBackend: true,
  });
  try {
    await fn(s, fake);
  } finally {
    await s.close();
    await fake.close();
  }
}

const chats = (fake: FakeOpenAI) => fake.requests.filter((r) => r.path === "/v1/chat/completions");
const tokenized = (fake: FakeOpenAI) =>
  fake.requests.filter((r) => r.path === "/tokenize").map((r) =>
    (r.body as { content: string }).content
  );
/** What the budget counts for `messages` with the fake's tokenizer. */
const tokensOf = (messages: Message[]) =>
  messages.reduce((n, m) => n + countTokens(m.content) + PER_MESSAGE_OVERHEAD, 0);

const LONG_PROMPT = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");

Deno.test("a request that does not fit n_ctx is refused before it is sent", async () => {
  // n_ctx 64: 32 tokens are kept for the reply, 32 are left for the request.
  await withSession(64, async (s, fake) => {
    assert.equal(s.agent.contextWindow, 64);
    assert.equal(await s.run(`${LONG_PROMPT}\n`), 1);
    assert.equal(chats(fake).length, 0, "no chat request reached the server");
    assert.ok(tokenized(fake).includes(LONG_PROMPT), "the server's tokenizer measured it");
    const used = tokensOf([{ role: "system", content: "Be brief." }, {
      role: "user",
      content: LONG_PROMPT,
    }]);
    assert.match(
      s.err.text,
      new RegExp(
        `The request needs ${used} tokens but the context window of 64 leaves 32 after 32 ` +
          "kept for the reply; it was not sent — /summarize",
      ),
    );
    assert.equal(s.agent.history.length, 1, "the history is unchanged");

    assert.equal(await s.run("hi\n"), 0, s.err.text);
    assert.equal(chats(fake).length, 1, "a short prompt still goes through");
  });
});

Deno.test("at 80 % of the room for the request a warning suggests /summarize", async () => {
  await withSession(64, async (s, fake) => {
    assert.equal(await s.run("hi\n"), 0, s.err.text);
    assert.doesNotMatch(s.err.text, /⚠ Context/);
    await s.run("/clear\n");
    // 8 (system) + 15 + 4 = 27 of 32 tokens: 84 %.
    const prompt = "a b c d e f g h";
    assert.equal(countTokens(prompt), 15);
    assert.equal(await s.run(`${prompt}\n`), 0, s.err.text);
    assert.match(
      s.err.text,
      /⚠ Context 84% full: 27 of 32 tokens \(window 64, 32 kept for the reply\) — \/summarize/,
    );
    assert.equal(chats(fake).length, 2, "a warning does not stop the request");
    assert.match(s.err.text, /context \d+%/, "the stats line shows the share of the window");
  });
});

Deno.test("each turn tokenizes only the messages it has not counted yet", async () => {
  await withSession(4096, async (s, fake) => {
    assert.equal(await s.run("first question\nsecond question\nthird question\n"), 0, s.err.text);
    const counted = tokenized(fake);
    // Every distinct text once: the system prompt, three prompts, and "Sure." (three times in the history).
    assert.deepEqual(counted.toSorted(), [
      "Be brief.",
      "Sure.",
      "first question",
      "second question",
      "third question",
    ]);
  });
});

Deno.test("/status shows the measured history as a share of the real window", async () => {
  await withSession(4096, async (s) => {
    assert.equal(await s.run("hello there\n/status\n"), 0, s.err.text);
    const used = tokensOf(s.agent.history);
    const percent = Math.round((used / 4096) * 100);
    assert.match(
      s.out.text,
      new RegExp(`History: +3 messages, ${used} tokens \\(${percent}% of the 4096-token window\\)`),
    );
  });
});

Deno.test("/summarize drops the oldest messages that do not fit and frees the context", async () => {
  await withSession(600, async (s, fake) => {
    // 600 - 256 kept for the reply = 344 tokens for the request.
    const prompt = (i: number) => Array.from({ length: 40 }, (_, j) => `t${i}w${j}`).join(" ");
    let turns = 0;
    while (turns < 10 && await s.run(`${prompt(turns)}\n`) === 0) turns++;
    assert.ok(turns >= 1 && turns < 10, `the history grew past the window after ${turns} turns`);
    assert.match(s.err.text, /it was not sent — \/summarize/);
    assert.equal(await s.run("/summarize\n"), 0, s.err.text);
    assert.match(s.out.text, /summarizing its last \d+ of \d+ messages/);
    const last = chats(fake).at(-1)!.body as { messages: Message[] };
    assert.equal(last.messages.at(-1)!.content, SUMMARIZE_PROMPT);
    assert.ok(tokensOf(last.messages) <= 344, "the summary request itself fits");
    assert.equal(s.agent.history.length, 2, "the system prompt and the summary");
    assert.equal(await s.run("hi\n"), 0, s.err.text);
  });
});

/** A backend that cannot tell its context window nor count tokens. */
function windowless(inner: OpenAICompatClient): LLMClient {
  return {
    name: inner.name,
    model: inner.model,
    chat: (messages, opts) => inner.chat(messages, opts),
    models: () => inner.models(),
    close: () => inner.close(),
  };
}

Deno.test("without a known window nothing is refused and nothing is tokenized", async () => {
  await withSession(4096, async (s, fake) => {
    await s.agent.setClient(
      windowless(new OpenAICompatClient({ baseUrl: fake.url, model: "fake-model", label: "x" })),
    );
    assert.equal(s.agent.contextWindow, undefined);
    assert.equal(await s.run(`${LONG_PROMPT}\n`), 0, s.err.text);
    assert.equal(chats(fake).length, 1);
    assert.deepEqual(tokenized(fake), []);
    assert.doesNotMatch(s.err.text, /context \d+%|⚠/);
  });
});
