/**
 * Tool calls a model prints as text instead of calling natively are run, through the
 * headless runner against fake servers that print each form (and malformed ones): the call
 * is approved and run like a native one, the assistant message keeps what the model wrote,
 * and the result goes back as a user message in the form the model used.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { FakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import type { ChatMessage } from "./fixtures/fixture_common.ts";
import {
  MALFORMED_CALLS,
  PRINTED_FORMS,
  printedCall,
  RESULT_OPENERS,
} from "./fixtures/text_call_forms.ts";
import { type TestSession, testSession, withFakeServer } from "./helpers.ts";

type Body = { messages: { role: string; content: string | null }[]; tools?: unknown[] };

function chats(fake: { requests: { path: string; body: unknown }[] }, path: string): Body[] {
  return fake.requests.filter((r) => r.path === path).map((r) => r.body as Body);
}

async function withLlama(
  fn: (s: TestSession, fake: FakeOpenAI) => Promise<void>,
  opts: { yes?: boolean; reply?: (m: ChatMessage[]) => string } = {},
): Promise<void> {
  await withFakeServer(
    { nCtx: 16384, reply: opts.reply ?? (() => "Three lines.") },
    { files: { "src/a.txt": "alpha\nbeta\ngamma\n" }, flags: { yes: opts.yes } },
    fn,
  );
}

Deno.test("a call printed in any common form is run and answered in that form", async (t) => {
  for (const form of PRINTED_FORMS) {
    await t.step(form, async () => {
      await withLlama(async (s, fake) => {
        const printed = printedCall(form, "read_file", { path: "src/a.txt" });
        fake.script({ text: printed });
        assert.equal(await s.run("what is in src/a.txt?"), 0, s.err.text);
        assert.match(s.out.text, /● read_file src\/a\.txt — 3 lines\n/);
        assert.match(s.out.text, /Three lines\.\n$/);
        assert.match(s.err.text, /· 1 tool call/);
        const [, second] = chats(fake, "/v1/chat/completions");
        const [assistant, result] = second.messages.slice(-2);
        assert.deepEqual(assistant, { role: "assistant", content: printed });
        assert.equal(result.role, "user");
        assert.match(String(result.content), RESULT_OPENERS[form]);
        assert.match(String(result.content), /alpha\\nbeta\\ngamma|alpha\nbeta\ngamma/);
        // The history is the same valid conversation: no tool message without its call.
        assert.deepEqual(s.agent.history.slice(-4).map((m) => m.role), [
          "user",
          "assistant",
          "user",
          "assistant",
        ]);
        assert.equal(s.agent.history.some((m) => m.role === "tool"), false);
      });
    });
  }
});

Deno.test("a malformed printed call, or a code block in an answer, is the answer: nothing runs", async () => {
  const answers = [
    ...MALFORMED_CALLS,
    'Save this as tools.json:\n```json\n{"name": "read_file", "arguments": {"path": "src/a.txt"}}\n```\nThen run it.',
  ];
  await withLlama(async (s, fake) => {
    fake.script(...answers.map((text) => ({ text })));
    for (const [i, text] of answers.entries()) {
      assert.equal(await s.run(`question ${i}`), 0, s.err.text);
      assert.equal(s.agent.history.at(-1)?.content, text);
    }
    assert.doesNotMatch(s.out.text, /● read_file|○/);
    assert.equal(chats(fake, "/v1/chat/completions").length, answers.length, "one request each");
  });
});

Deno.test("printed calls go through the same approvals: a declined edit is not written", async () => {
  await withLlama(async (s, fake) => {
    fake.script(
      {
        text: printedCall("hermes", "edit_file", {
          path: "src/a.txt",
          old_text: "beta",
          new_text: "BETA",
        }),
      },
      { text: "I did not change it." },
      {
        text: printedCall("hermes", "edit_file", {
          path: "src/a.txt",
          old_text: "beta",
          new_text: "BETA",
        }),
      },
      { text: "Changed." },
    );
    assert.equal(await s.run("capitalize beta\nn\n"), 0, s.err.text);
    assert.equal(await Deno.readTextFile(join(s.root, "src/a.txt")), "alpha\nbeta\ngamma\n");
    assert.match(String(s.agent.history.at(-2)?.content), /declined by the user/);
    assert.equal(await s.run("capitalize beta\ny\n"), 0, s.err.text);
    assert.equal(await Deno.readTextFile(join(s.root, "src/a.txt")), "alpha\nBETA\ngamma\n");
    assert.match(s.out.text, /Apply this change\? \[y\]es/);
  });
});

Deno.test("two printed calls in one reply are both run and answered in one message", async () => {
  await withLlama(async (s, fake) => {
    const two = `${printedCall("hermes", "read_file", { path: "src/a.txt" })}\n${
      printedCall("hermes", "list_files", {})
    }`;
    fake.script({ text: two });
    assert.equal(await s.run("look around"), 0, s.err.text);
    assert.match(
      s.out.text,
      /● read_file src\/a\.txt — 3 lines\n● list_files \. — \d+ entr(y|ies)\n/,
    );
    const result = chats(fake, "/v1/chat/completions")[1].messages.at(-1)!;
    assert.equal(result.role, "user");
    assert.equal(String(result.content).match(/<tool_response>/g)?.length, 2);
  });
});

Deno.test("Ollama: a Qwen with native tools that prints <tool_call> instead still gets its call run", async () => {
  const fake = await startFakeOllama({
    models: ["qwen2.5-coder:7b"],
    reply: () => "It says alpha.",
  });
  const s = await testSession({
    files: { "a.txt": "alpha\n" },
    flags: { ollama: fake.url, model: "qwen2.5-coder:7b" },
    selectBackend: true,
  });
  try {
    fake.script({ text: printedCall("hermes", "read_file", { path: "a.txt" }) });
    assert.equal(await s.run("read a.txt"), 0, s.err.text);
    assert.match(s.out.text, /● read_file a\.txt — 1 line\n/);
    assert.match(s.out.text, /It says alpha\.\n$/);
    const bodies = chats(fake, "/api/chat");
    assert.ok(bodies[0].tools?.length, "the tools went natively");
    const last = bodies[1].messages.at(-1)!;
    assert.equal(last.role, "user");
    assert.match(String(last.content), /^<tool_response>\n\{"name":"read_file","content":/);
  } finally {
    await s.close();
    await fake.close();
  }
});
