/**
 * The streaming path at speed: a fast reply is written in a few writes, whole, in order with
 * the lines around it, its first token at once; a streamed body is read through one reused
 * buffer instead of a 64 KiB buffer per chunk.
 */
import assert from "node:assert/strict";
import { leanBody, leanFetch } from "../src/llm/lean_fetch.ts";
import { ThinkSplitter } from "../src/llm/reasoning.ts";
import { runPrompt } from "../src/repl/turn.ts";
import type { Output } from "../src/types.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { testSession } from "./helpers.ts";

const LONG = Array.from({ length: 1000 }, (_, i) => `w${i} `).join("");

/** Every write to stdout and stderr, in the order they came. */
function writeLog() {
  const log: { to: "out" | "err"; text: string }[] = [];
  const to = (name: "out" | "err"): Output => ({
    write: (text) => void log.push({ to: name, text }),
  });
  return { log, out: to("out"), err: to("err") };
}

Deno.test("a fast reply is written in a few writes, whole and in order, its first token at once", async () => {
  const fake = await startFakeOpenAI({ nCtx: 16384, nCtxTrain: 16384, reply: () => LONG });
  const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
  try {
    const { log, out, err } = writeLog();
    await runPrompt(s.agent, "go", { out, err, spinner: false, color: false });
    const replyWrites = log.filter((w) => w.to === "out");
    assert.equal(replyWrites.map((w) => w.text).join(""), `${LONG}\n`);
    assert.equal(replyWrites[0].text, "w0", "the first token is written the moment it comes");
    // 2,000 tokens streamed without a pause: far fewer writes than tokens.
    assert.ok(replyWrites.length <= 500, `${replyWrites.length} writes for 2,000 tokens`);
    // The stats line comes after the whole reply.
    const stats = log.findIndex((w) => w.to === "err" && / tokens · /.test(w.text));
    assert.ok(stats > log.lastIndexOf(replyWrites.at(-1)!), "stats after the reply");
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("reply text that waits is written before a tool's line, and before the turn ends", async () => {
  const fake = await startFakeOpenAI({ reply: () => "All read." });
  const s = await testSession({
    files: { "a.txt": "alpha\n" },
    flags: { llamafileUrl: fake.url },
    selectBackend: true,
  });
  try {
    fake.script({
      text: "Let me read it now, then answer.",
      toolCalls: [{ name: "read_file", arguments: { path: "a.txt" } }],
    });
    const { log, out, err } = writeLog();
    await runPrompt(s.agent, "read a.txt", { out, err, spinner: false, color: false });
    const shown = log.filter((w) => w.to === "out").map((w) => w.text).join("");
    assert.equal(
      shown,
      "Let me read it now, then answer.\n● read_file a.txt — 1 line\nAll read.\n",
    );
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("a streamed body is read through one buffer: the same bytes, each chunk its own size", async () => {
  const fake = await startFakeOpenAI({ reply: () => LONG });
  try {
    const request = () =>
      new Request(`${fake.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "go" }], stream: true }),
      });
    const text = async (chunks: AsyncIterable<Uint8Array>) => {
      const decoder = new TextDecoder();
      let all = "";
      let count = 0;
      for await (const chunk of chunks) {
        assert.equal(chunk.buffer.byteLength, chunk.byteLength, "no chunk holds a big buffer");
        all += decoder.decode(chunk, { stream: true });
        count++;
      }
      return { all, count };
    };
    const plain = await (await fetch(request())).text();
    const lean = await leanFetch(request());
    assert.equal(lean.headers.get("content-type"), "text/event-stream");
    assert.match(lean.url, /\/v1\/chat\/completions$/);
    const iterated = await text(lean.body!);
    // The SSE of the same reply (the ids and timings of each event differ).
    const events = (sse: string) => sse.replace(/"(id|created|system_fingerprint)":[^,]+,/g, "");
    assert.equal(
      events(iterated.all).replace(/"timings":\{[^}]*\}/g, ""),
      events(plain).replace(/"timings":\{[^}]*\}/g, ""),
    );
    assert.ok(iterated.count > 100, "chunk by chunk, as it came");
    // Read as a stream (a reader), the same.
    const viaReader = leanBody((await fetch(request())).body!).pipeThrough(new TextDecoderStream());
    let streamed = "";
    for await (const piece of viaReader.values()) streamed += piece;
    assert.equal(
      events(streamed).replace(/"timings":\{[^}]*\}/g, ""),
      events(plain).replace(/"timings":\{[^}]*\}/g, ""),
    );
    // Anything else is fetch's own response.
    const models = await leanFetch(`${fake.url}/v1/models`);
    assert.match(models.headers.get("content-type") ?? "", /json/);
    assert.equal(((await models.json()) as { data: unknown[] }).data.length, 1);
  } finally {
    await fake.close();
  }
});

Deno.test("plain reply text skips the <think> splitter; anything it could hold goes through it", () => {
  const s = new ThinkSplitter();
  assert.equal(s.plain("Hello"), true);
  assert.equal(s.plain("a <b"), false, "may start a tag");
  assert.deepEqual(s.push("<thi"), { content: "", reasoning: "" });
  assert.equal(s.plain("x"), false, "a tag is held back");
  assert.deepEqual(s.push("nk>hmm"), { content: "", reasoning: "hmm" });
  assert.equal(s.plain("more"), false, "inside a block");
  assert.deepEqual(s.push("</think>\n\n"), { content: "", reasoning: "" });
  assert.equal(s.plain("42"), false, "the blank lines after a block are still dropped");
  assert.deepEqual(s.push("42"), { content: "42", reasoning: "" });
  assert.equal(s.plain(" is it"), true);
});
