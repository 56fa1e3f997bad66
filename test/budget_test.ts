/**
 * The token budget and auto-compaction, through real sessions against the fake llama.cpp-style
 * server: requests are counted the way the server counts them (`/apply-template` +
 * `/tokenize`), replies are bounded by the reserve, and a conversation that outgrows the
 * window is summarized by the same model.
 */
import assert from "node:assert/strict";
import { SUMMARIZE_PROMPT, SUMMARY_LABEL } from "../src/commands/summarize.ts";
import { fitRequest } from "../src/llm/fit.ts";
import { estimateTextTokens, PER_MESSAGE_OVERHEAD } from "../src/llm/tokens.ts";
import { OpenAICompatClient } from "../src/llm/openai_compat.ts";
import { BufferOutput } from "../src/repl/output.ts";
import type { LLMClient, Message } from "../src/types.ts";
import { countTokens } from "./fixtures/fixture_common.ts";
import { type FakeOpenAI, type FakeOpenAIOptions, renderChat } from "./fixtures/fake_openai.ts";
import { type TestSession, withFakeServer } from "./helpers.ts";

// A short system prompt keeps the numbers small: "Be brief." is 4 tokens for the fake.
const SYSTEM = "Be brief.";

async function withSession(
  fakeOpts: FakeOpenAIOptions,
  fn: (s: TestSession, fake: FakeOpenAI) => Promise<void>,
  yaml = "",
): Promise<void> {
  // These count chat turns exactly: no tool definitions in the requests (the agent loop's
  // requests are budgeted in agent_turn_test.ts).
  const files = { "HARVEY.md": SYSTEM, "agents/harvey.yaml": `tools:\n  enabled: false\n${yaml}` };
  await withFakeServer({ reply: () => "Sure.", ...fakeOpts }, { files }, fn);
}

interface ChatBody {
  messages: Message[];
  max_tokens?: number;
}

const chats = (fake: FakeOpenAI) =>
  fake.requests.filter((r) => r.path === "/v1/chat/completions").map((r) => r.body as ChatBody);
const tokenized = (fake: FakeOpenAI) =>
  fake.requests.filter((r) => r.path === "/tokenize").map((r) =>
    (r.body as { content: string }).content
  );
/** What the server counts for a request: its chat template's rendering, tokenized. */
const exact = (messages: Message[]) => countTokens(renderChat(messages));
const system: Message = { role: "system", content: SYSTEM };
const user = (content: string): Message => ({ role: "user", content });

const LONG_PROMPT = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");
const NO_COMPACT = "context:\n  auto_compact: false\n";

Deno.test("a request that does not fit n_ctx is refused before it is sent", async (t) => {
  // n_ctx 64: 32 tokens are kept for the reply, 32 are left for the request.
  await t.step("counted as the server counts it, template included", async () => {
    await withSession({ nCtx: 64 }, async (s, fake) => {
      assert.equal(s.agent.contextWindow, 64);
      assert.equal(await s.run(`${LONG_PROMPT}\n`), 1);
      assert.equal(chats(fake).length, 0, "no chat request reached the server");
      const used = exact([system, user(LONG_PROMPT)]);
      assert.match(
        s.err.text,
        new RegExp(
          `The request needs ${used} tokens but the context window of 64 leaves 32 after 32 ` +
            "kept for the reply; it was not sent — shorten the prompt \\(there is no older turn",
        ),
      );
      assert.equal(s.agent.history.length, 1, "the history is unchanged");
      assert.equal(await s.run("hi\n"), 0, s.err.text);
      assert.equal(chats(fake).length, 1, "a short prompt still goes through");
    });
  });

  await t.step("the boundary is exact: 32 tokens go, 33 do not", async () => {
    await withSession({ nCtx: 64 }, async (s, fake) => {
      const fits = "a b c d!"; // 24 tokens of template and system prompt, 8 of prompt
      assert.equal(exact([system, user(fits)]), 32);
      assert.equal(await s.run(`${fits}\n`), 0, s.err.text);
      assert.equal(chats(fake).at(-1)!.max_tokens, 32, "the reply may take the rest");
      await s.run("/clear\n");
      assert.equal(exact([system, user(`${fits}!`)]), 33);
      assert.equal(await s.run(`${fits}!\n`), 1);
      assert.match(s.err.text, /needs 33 tokens/);
      assert.equal(chats(fake).length, 1);
    }, NO_COMPACT);
  });

  await t.step("with auto-compaction off the refusal suggests /summarize", async () => {
    await withSession({ nCtx: 64 }, async (s, fake) => {
      assert.equal(await s.run(`${LONG_PROMPT}\n`), 1);
      assert.match(s.err.text, /it was not sent — \/summarize \(or \/clear\) to make room/);
      assert.equal(chats(fake).length, 0);
    }, NO_COMPACT);
  });
});

Deno.test("at 80 % of the room for the request a warning is printed", async () => {
  await withSession({ nCtx: 64 }, async (s, fake) => {
    assert.equal(await s.run("hi\n"), 0, s.err.text);
    assert.doesNotMatch(s.err.text, /⚠ Context/);
    await s.run("/clear\n");
    const prompt = "a b c";
    const used = exact([system, user(prompt)]);
    assert.ok(used >= 0.8 * 32 && used <= 32);
    assert.equal(await s.run(`${prompt}\n`), 0, s.err.text);
    assert.match(
      s.err.text,
      new RegExp(
        `⚠ Context ${Math.round((used / 32) * 100)}% full: ${used} of 32 tokens ` +
          "\\(window 64, 32 kept for the reply\\) — the oldest turns are summarized when it is full",
      ),
    );
    assert.equal(chats(fake).length, 2, "a warning does not stop the request");
    assert.match(s.err.text, /context \d+%/, "the stats line shows the share of the window");
  });
});

Deno.test("every request carries max_tokens: the reserve, or context.reply_reserve", async (t) => {
  await t.step("a fifth of the window by default", async () => {
    await withSession({ nCtx: 4096 }, async (s, fake) => {
      assert.equal(await s.run("hello\n"), 0, s.err.text);
      assert.equal(chats(fake)[0].max_tokens, 820);
    });
  });
  await t.step("a cut reply says so in one line and is kept", async () => {
    const long = Array.from({ length: 80 }, (_, i) => `w${i}`).join(" ");
    await withSession({ nCtx: 4096, reply: () => long }, async (s, fake) => {
      assert.equal(await s.run("tell me everything\n"), 0, s.err.text);
      assert.equal(chats(fake)[0].max_tokens, 100);
      assert.match(
        s.err.text,
        /✂ The reply was cut at its limit of 100 tokens — say "continue" for the rest, or raise context\.reply_reserve/,
      );
      const kept = s.agent.history.at(-1)!;
      assert.equal(kept.role, "assistant");
      assert.equal(countTokens(kept.content), 100);
    }, "context:\n  reply_reserve: 100\n");
  });
});

Deno.test("with /apply-template a request is counted whole; without it, each text once", async (t) => {
  await t.step("/status shows the exact count of the history", async () => {
    await withSession({ nCtx: 4096 }, async (s) => {
      assert.equal(await s.run("/status\n"), 0, s.err.text);
      assert.match(s.out.text, /History: +1 message, /);
      assert.equal(await s.run("hello there\n/status\n"), 0, s.err.text);
      const used = exact(s.agent.history);
      const percent = Math.round((used / 4096) * 100);
      assert.match(
        s.out.text,
        new RegExp(
          `History: +3 messages, ${used} tokens \\(${percent}% of the 4096-token window\\)`,
        ),
      );
      assert.match(s.out.text, /Context: +4096 tokens \(n_ctx reported by the server\), 820 kept/);
    });
  });
  await t.step("a server without /apply-template: each text is tokenized once", async () => {
    await withSession({ nCtx: 4096, applyTemplate: false }, async (s, fake) => {
      assert.equal(await s.run("first question\nsecond question\nthird question\n"), 0);
      // Every distinct text once: the system prompt, three prompts, and "Sure.".
      assert.deepEqual(tokenized(fake).toSorted(), [
        "Be brief.",
        "Sure.",
        "first question",
        "second question",
        "third question",
      ]);
      // The guessed overhead is used: the refusal's count is the per-message sum.
      await s.run("/clear\n");
      assert.equal(await s.run(`${"x ".repeat(1700)}\n`), 1);
      const used = countTokens(SYSTEM) + countTokens("x ".repeat(1700).trim()) +
        2 * PER_MESSAGE_OVERHEAD;
      assert.match(s.err.text, new RegExp(`needs ${used} tokens`));
    });
  });
});

Deno.test("the window is read from /props once, not before every request", async () => {
  await withSession({ nCtx: 4096 }, async (s, fake) => {
    const props = () => fake.requests.filter((r) => r.path === "/props").length;
    assert.equal(await s.run("first question\n"), 0, s.err.text);
    const after = props();
    assert.equal(await s.run("second question\nthird question\n"), 0, s.err.text);
    assert.equal(props(), after, "no /props request after the window is known");
    assert.equal(chats(fake).length, 3);
  });
});

Deno.test("a request far from full is sent while the server counts it; near the limit the count comes first", async (t) => {
  await t.step("far from full: a prediction now, the exact count on its way", async () => {
    await withSession({ nCtx: 4096 }, async (s, fake) => {
      const client = s.agent.client!;
      const first = [system, user("first question")];
      // Before any exact count there is nothing to predict from: the count comes first.
      const counted = await fitRequest(s.agent, client, first, { err: s.err, deferCount: true });
      assert.equal(counted.counting, undefined);
      assert.equal(counted.used, exact(first));
      const next = [...first, { role: "assistant" as const, content: "Sure." }, user("again")];
      const fitted = await fitRequest(s.agent, client, next, { err: s.err, deferCount: true });
      assert.ok(fitted.counting, "the count is not waited for");
      assert.ok(fitted.used >= exact(next), `the prediction ${fitted.used} is not low`);
      const before = fake.requests.length;
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(fake.requests.length, before, "the count waits until it is started");
      fitted.startCount!(); // sendFitted does at the reply's first token
      assert.equal(await fitted.counting, exact(next), "the count is the server's");
      assert.equal(fitted.maxTokens, 820);
    });
  });
  await t.step("near the limit the request waits for the exact count, and warns", async () => {
    await withSession({ nCtx: 64 }, async (s) => {
      const client = s.agent.client!;
      await fitRequest(s.agent, client, [system, user("hi")], { err: s.err });
      const request = [system, user("a b c")];
      const fitted = await fitRequest(s.agent, client, request, { err: s.err, deferCount: true });
      assert.equal(fitted.counting, undefined);
      assert.equal(fitted.used, exact(request));
      assert.match(s.err.text, /⚠ Context \d+% full/);
    });
  });
});

Deno.test("the estimate counts words, ASCII and other characters as its rule says, in one pass", () => {
  // The rule written with regular expressions, as the oracle.
  // deno-lint-ignore no-control-regex
  const nonAscii = /[^\x00-\x7f]/gu;
  const rule = (text: string) => {
    if (!text) return 0;
    const words = text.split(/\s+/).filter(Boolean).length;
    const others = text.match(nonAscii) ?? [];
    const ascii = text.length - others.join("").length;
    return Math.max(words, Math.ceil(ascii / 3.5 + others.length));
  };
  const pieces = ["a", "bc", " ", "\n", "\t", "日", "\u00a0", "\u3000", "😀", "\ud800", "\udc00"];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let n = 0; n < 5000; n++) {
    const text = Array.from(
      { length: Math.floor(next() * 12) },
      () => pieces[Math.floor(next() * pieces.length)],
    ).join("");
    assert.equal(estimateTextTokens(text), rule(text), JSON.stringify(text));
  }
  assert.equal(estimateTextTokens("hello world"), 4);
  assert.equal(estimateTextTokens("日本語"), 3);
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
  await withSession({ nCtx: 4096 }, async (s, fake) => {
    await s.agent.setClient(
      windowless(new OpenAICompatClient({ baseUrl: fake.url, model: "fake-model", label: "x" })),
    );
    assert.equal(s.agent.contextWindow, undefined);
    assert.equal(await s.run(`${LONG_PROMPT}\n`), 0, s.err.text);
    assert.equal(chats(fake).length, 1);
    assert.equal(chats(fake)[0].max_tokens, undefined, "no reserve is set, none is sent");
    assert.deepEqual(tokenized(fake), []);
    assert.doesNotMatch(s.err.text, /context \d+%|⚠/);
  });
});

/** The fake's reply: a short summary when asked for one, else "Sure.". */
const summarizing = (messages: { content: string }[]) =>
  messages.at(-1)!.content.startsWith(SUMMARIZE_PROMPT) ? "- earlier turns, summarized" : "Sure.";

/** A prompt of about `n` tokens for the fake, unique per `tag`. */
const prompt = (tag: string, n: number) =>
  Array.from({ length: Math.ceil(n / 2) }, (_, j) => `${tag}w${j}`).join(" ");

Deno.test("a conversation that outgrows a 2048-token window compacts itself", async () => {
  await withSession({ nCtx: 2048, reply: summarizing }, async (s, fake) => {
    // 2048 - 410 kept for the reply = 1638 for the request; each turn adds about 400.
    for (let i = 0; i < 3; i++) assert.equal(await s.run(`${prompt(`t${i}`, 400)}\n`), 0);
    assert.doesNotMatch(s.err.text, /⟳/);
    const before = chats(fake).length;
    assert.equal(await s.run(`${prompt("t3", 400)}\n`), 0, s.err.text);
    assert.match(
      s.err.text,
      /⟳ The conversation did not fit the 2048-token window: its oldest 4 messages were summarized by fake-model \(\d+ → \d+ tokens, 1 request\); the last 3 messages are kept as they were\n/,
    );
    const sent = chats(fake).slice(before);
    assert.equal(sent.length, 2, "one summarizing request, then the turn itself");
    for (const body of sent) {
      assert.ok(exact(body.messages) + body.max_tokens! <= 2048, "each request fits the window");
    }
    assert.ok(sent[0].messages.at(-1)!.content.includes(prompt("t0", 400)));
    // The history: system prompt, summary, turn 3 word for word, and this turn.
    assert.deepEqual(s.agent.history.map((m) => m.content), [
      SYSTEM,
      `${SUMMARY_LABEL}\n\n- earlier turns, summarized`,
      prompt("t2", 400),
      "Sure.",
      prompt("t3", 400),
      "Sure.",
    ]);
    assert.deepEqual(sent[1].messages.map((m) => m.content), [
      SYSTEM,
      `${SUMMARY_LABEL}\n\n- earlier turns, summarized`,
      prompt("t2", 400),
      "Sure.",
      prompt("t3", 400),
    ]);
    // The next turn goes on from the compacted history without compacting again.
    assert.equal(await s.run("and now?\n"), 0, s.err.text);
    assert.equal(s.err.text.match(/⟳/g)?.length, 1);
  });
});

Deno.test("with auto-compaction off the history grows until the refusal", async () => {
  await withSession({ nCtx: 2048, reply: summarizing }, async (s, fake) => {
    let turns = 0;
    while (turns < 10 && await s.run(`${prompt(`t${turns}`, 400)}\n`) === 0) turns++;
    assert.equal(turns, 3);
    assert.match(s.err.text, /it was not sent — \/summarize \(or \/clear\)/);
    assert.doesNotMatch(s.err.text, /⟳/);
    assert.equal(chats(fake).length, 3);
  }, NO_COMPACT);
});

Deno.test("/summarize summarizes a conversation larger than the window, in parts", async () => {
  await withSession({ nCtx: 1024, reply: () => "- notes" }, async (s, fake) => {
    for (let i = 0; i < 8; i++) {
      s.agent.history.push(user(prompt(`h${i}`, 300)), { role: "assistant", content: "ok" });
    }
    assert.ok(exact(s.agent.history) > 2 * 1024);
    assert.equal(await s.run("/summarize\n"), 0, s.err.text);
    const sent = chats(fake);
    assert.ok(sent.length >= 3, `summarized in ${sent.length} requests`);
    for (const body of sent) {
      assert.ok(exact(body.messages) + body.max_tokens! <= 1024, "each request fits the window");
      assert.ok(body.messages.at(-1)!.content.startsWith(SUMMARIZE_PROMPT));
    }
    assert.match(sent[1].messages.at(-1)!.content, /before this part:\n\n- notes/);
    const all = sent.map((b) => b.messages.at(-1)!.content).join("\n");
    for (let i = 0; i < 8; i++) assert.ok(all.includes(prompt(`h${i}`, 300)), `message ${i}`);
    assert.match(s.out.text, /✓ 16 messages replaced by the summary \(pinned context kept\)/);
    assert.deepEqual(s.agent.history.map((m) => m.content), [
      SYSTEM,
      `${SUMMARY_LABEL}\n\n- notes`,
    ]);
    assert.equal(await s.run("hi\n"), 0, s.err.text);
  });
});

Deno.test("compaction keeps a tool call with its result, and counts the call", async () => {
  await withSession({ nCtx: 2048, reply: summarizing }, async (s, fake) => {
    const call = { id: "call_1", name: "read_file", arguments: '{"path":"src/app.ts"}' };
    s.agent.history.push(
      user(prompt("a", 500)),
      { role: "assistant", content: "", toolCalls: [call] },
      { role: "tool", content: prompt("file", 300), toolCallId: "call_1", toolName: "read_file" },
      { role: "assistant", content: "Read it." },
      user(prompt("b", 500)),
      { role: "assistant", content: "Fine." },
    );
    const budget = s.agent.budget!;
    const client = s.agent.client!;
    const withCall = await budget.measure(s.agent.history, client);
    const bare = s.agent.history.map((m) => ({ role: m.role, content: m.content }));
    assert.ok(withCall > await budget.measure(bare, client), "the call's JSON is counted");
    const err = new BufferOutput();
    const fitted = await fitRequest(s.agent, client, [...s.agent.history, user(prompt("c", 500))], {
      err,
    });
    assert.ok(fitted.compacted, err.text);
    const summarized = chats(fake)[0].messages.at(-1)!.content;
    assert.match(summarized, /called read_file\(\{"path":"src\/app.ts"\}\)/);
    assert.match(summarized, /### Tool result \(read_file\)\n/);
    assert.ok(summarized.includes(prompt("file", 300)), "the result went with its call");
    assert.deepEqual(fitted.messages.map((m) => m.role), [
      "system",
      "user",
      "user",
      "assistant",
      "user",
    ]);
    assert.ok(fitted.messages.every((m) => m.role !== "tool" && !m.toolCalls));
  });
});

Deno.test("after compaction the reply gets the room that is left when it is less than the reserve", async () => {
  await withSession({ nCtx: 2048, reply: summarizing }, async (s) => {
    s.agent.history.push(user(prompt("old", 600)), { role: "assistant", content: "ok" });
    const err = new BufferOutput();
    const big = user(prompt("now", 1700));
    const fitted = await fitRequest(s.agent, s.agent.client!, [...s.agent.history, big], { err });
    assert.ok(fitted.compacted, err.text);
    assert.equal(fitted.used, exact(fitted.messages));
    assert.equal(fitted.maxTokens, 2048 - fitted.used);
    assert.ok(fitted.maxTokens! < 410 && fitted.maxTokens! >= 64);
    assert.equal(fitted.messages.at(-1), big);
  });
});
