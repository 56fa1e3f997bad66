/**
 * The tool modes (`/tools mode native|text|off|auto`, per model in harvey.yaml), the text
 * protocol with its grammar on llama.cpp backends, a server that refuses `tools`, and
 * small-context mode — through the headless runner against the fake servers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type FakeOpenAIOptions, startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import type { ChatMessage } from "./fixtures/fixture_common.ts";
import { accepts } from "./fixtures/gbnf.ts";
import { makeFakeLlamaCli } from "./fixtures/make_fake_llama_cpp.ts";
import { writeGguf } from "./fixtures/make_fake_llama_cpp.ts";
import { printedCall } from "./fixtures/text_call_forms.ts";
import { type TestSession, testSession } from "./helpers.ts";
import { SUMMARY_LABEL } from "../src/llm/compact.ts";

interface Body {
  messages: { role: string; content: string | null }[];
  tools?: { function: { name: string; description: string; parameters: unknown } }[];
  grammar?: string;
}

function chats(
  fake: { requests: { path: string; body: unknown }[] },
  path = "/v1/chat/completions",
) {
  return fake.requests.filter((r) => r.path === path).map((r) => r.body as Body);
}

const READ = printedCall("hermes", "read_file", { path: "src/a.txt" });

/** A reply that calls read_file once (in text: there are no definitions), then answers. */
function readThenAnswer(messages: ChatMessage[]): string {
  return messages.at(-1)?.content.startsWith("<tool_response>") ? "Three lines." : READ;
}

async function withFake(
  fn: (s: TestSession, fake: Awaited<ReturnType<typeof startFakeOpenAI>>) => Promise<void>,
  opts: FakeOpenAIOptions & { files?: Record<string, string>; root?: string } = {},
): Promise<void> {
  const fake = await startFakeOpenAI({ nCtx: 16384, ...opts });
  const s = await testSession({
    files: { "src/a.txt": "alpha\nbeta\ngamma\n", ...opts.files },
    flags: { llamafileUrl: fake.url },
    selectBackend: true,
    root: opts.root,
  });
  try {
    await fn(s, fake);
  } finally {
    await s.close();
    await fake.close();
  }
}

Deno.test("auto: native definitions where the template takes tools, the text protocol where not", async (t) => {
  await t.step("native", async () => {
    await withFake(async (s, fake) => {
      assert.equal(await s.run("hello"), 0, s.err.text);
      const [body] = chats(fake);
      assert.equal(body.tools?.length, 7);
      assert.equal(body.grammar, undefined);
      assert.doesNotMatch(String(body.messages[0].content), /## Tools/);
    });
  });
  await t.step("text, with a grammar the reply must match", async () => {
    await withFake(async (s, fake) => {
      const system = s.agent.history[0].content;
      assert.equal(await s.run("what is in src/a.txt?"), 0, s.err.text);
      assert.match(s.out.text, /● read_file src\/a\.txt — 3 lines\n/);
      assert.match(s.out.text, /Three lines\.\n$/);
      const [first, second] = chats(fake);
      assert.equal(first.tools, undefined, "no definitions go natively");
      const sent = String(first.messages[0].content);
      assert.ok(sent.startsWith(system), "the system prompt, then the section");
      assert.match(sent, /## Tools\n.*exactly one call:\n<tool_call>\{"name": "read_file"/s);
      assert.match(sent, /^- read_file\(path, offset\?: integer, limit\?: integer\): Read/m);
      assert.match(sent, /^- edit_file\(path, old_text, new_text\): Replace/m);
      // The grammar went with both requests; the fake llama-server held the replies to it.
      assert.equal(fake.grammars.length, 2);
      assert.ok(first.grammar && accepts(first.grammar, READ));
      assert.ok(accepts(first.grammar, "Three lines."));
      assert.equal(second.messages.at(-1)?.role, "user");
      assert.match(String(second.messages.at(-1)?.content), /^<tool_response>/);
      // The history keeps its own system message: the section is only in what was sent.
      assert.equal(s.agent.history[0].content, system);
      assert.equal(await s.run("/tools"), 0, s.err.text);
      assert.match(
        s.out.text,
        /Mode:\s+text — the tools stated in the system prompt, calls read from the reply \(constrained by a grammar\); auto: the chat template of fake-model does not support tools/,
      );
      assert.match(s.out.text, /Cost:\s+\d+ tokens of the system prompt; calls constrained/);
    }, { toolTemplate: false, reply: readThenAnswer });
  });
  await t.step("Ollama without the tools capability: text, and no grammar", async () => {
    const fake = await startFakeOllama({
      models: ["tinyllama:latest"],
      toolModels: [],
      reply: readThenAnswer,
    });
    const s = await testSession({
      files: { "src/a.txt": "alpha\nbeta\ngamma\n" },
      flags: { ollama: fake.url, model: "tinyllama:latest" },
      selectBackend: true,
    });
    try {
      assert.equal(await s.run("what is in src/a.txt?"), 0, s.err.text);
      assert.match(s.out.text, /● read_file src\/a\.txt — 3 lines\n/);
      const [body] = chats(fake, "/api/chat");
      assert.equal(body.tools, undefined);
      assert.equal((body as { grammar?: unknown }).grammar, undefined);
      assert.match(String(body.messages[0].content), /## Tools/);
    } finally {
      await s.close();
      await fake.close();
    }
  });
});

Deno.test("/tools mode is remembered per model in harvey.yaml and each mode does what it says", async () => {
  const root = await Deno.makeTempDir({ prefix: "harvey-modes-" });
  try {
    await withFake(async (s, fake) => {
      assert.equal(await s.run("/tools mode text\nhello"), 0, s.err.text);
      assert.match(
        s.out.text,
        /Tool mode for fake-model: text — the tools stated in the system prompt/,
      );
      const yaml = await Deno.readTextFile(join(root, "agents/harvey.yaml"));
      assert.match(yaml, /tools:\n\s+modes:\n\s+fake-model: text\n/);
      assert.equal(chats(fake)[0].tools, undefined);
      assert.ok(chats(fake)[0].grammar);
    }, { root });
    // A new session (a restart) reads the mode back.
    await withFake(async (s, fake) => {
      assert.equal(await s.run("hello"), 0, s.err.text);
      assert.equal(chats(fake)[0].tools, undefined, "text mode after the restart");
      assert.equal(await s.run("/tools mode off\nhello again"), 0, s.err.text);
      const off = chats(fake)[1];
      assert.equal(off.tools, undefined);
      assert.equal(off.grammar, undefined);
      assert.doesNotMatch(String(off.messages[0].content), /## Tools/);
      assert.equal(await s.run("/tools mode auto\nonce more"), 0, s.err.text);
      assert.match(s.out.text, /Tool mode for fake-model: auto \(now native: its chat template/);
      assert.equal(chats(fake)[2].tools?.length, 7);
      assert.doesNotMatch(await Deno.readTextFile(join(root, "agents/harvey.yaml")), /fake-model/);
      assert.equal(await s.run("/tools mode sometimes"), 1);
      assert.match(s.err.text, /Usage: \/tools mode native\|text\|off\|auto \(found "sometimes"\)/);
    }, { root });
    // native, asked for on a template without tools: the definitions are sent anyway.
    await withFake(async (s, fake) => {
      assert.equal(await s.run("/tools mode native\nhello"), 0, s.err.text);
      assert.equal(chats(fake)[0].tools?.length, 7);
      assert.equal(await s.run("/tools"), 0);
      assert.match(
        s.out.text,
        /Mode:\s+native — .*set with \/tools mode native for fake-model; the backend: the chat template/,
      );
    }, { root, toolTemplate: false });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("/tools mode needs a model, and says so", async () => {
  const s = await testSession();
  try {
    assert.equal(await s.run("/tools mode text"), 1);
    assert.match(s.err.text, /No model in use: the mode is set per model — \/model picks one/);
  } finally {
    await s.close();
  }
});

Deno.test("a server that refuses tools (500, no --jinja) gets them as text, said once", async () => {
  await withFake(async (s, fake) => {
    // The fake started like llama-server --no-jinja: /props says no tools, so auto is text.
    assert.equal(await s.run("/tools mode native\nwhat is in src/a.txt?"), 0, s.err.text);
    assert.match(
      s.err.text,
      /answered 500: tools param requires --jinja flag — the tools are stated in the prompt instead \(\/tools mode text keeps it so for fake-model\)/,
    );
    assert.match(s.out.text, /● read_file src\/a\.txt — 3 lines\n/);
    const bodies = chats(fake);
    assert.equal(bodies.length, 3, "refused, then the same request as text, then the answer");
    assert.ok(bodies[0].tools?.length);
    assert.equal(bodies[1].tools, undefined);
    assert.match(String(bodies[1].messages[0].content), /## Tools/);
    assert.equal(bodies[2].tools, undefined, "the rest of the turn goes as text");
    // auto remembers the refusal for the session.
    assert.equal(await s.run("/tools mode auto\n/tools"), 0, s.err.text);
    assert.match(s.out.text, /auto: the server refused the tool definitions this session/);
  }, { rejectTools: true, reply: readThenAnswer });
});

Deno.test("small-context mode: under 8k, six brief tools, smaller results, and /tools says so", async () => {
  const big = Array.from({ length: 400 }, (_, i) => `line ${i + 1} of a long file`).join("\n");
  await withFake(async (s, fake) => {
    fake.script(
      { text: "", toolCalls: [{ name: "read_file", arguments: { path: "big.txt" } }] },
      { text: "Long." },
    );
    assert.equal(await s.run("read big.txt"), 0, s.err.text);
    const [first, second] = chats(fake);
    assert.deepEqual(first.tools?.map((t) => t.function.name), [
      "read_file",
      "list_files",
      "search",
      "edit_file",
      "write_file",
      "run_command",
    ]);
    const read = first.tools![0].function;
    assert.equal(read.description, "Read a file; offset: first line, limit: lines.");
    assert.deepEqual(read.parameters, {
      type: "object",
      properties: {
        path: { type: "string" },
        offset: { type: "integer" },
        limit: { type: "integer" },
      },
      required: ["path"],
    });
    // A result gets at most a quarter of the 4096-token window (about 3,000 characters).
    const result = String(second.messages.at(-1)?.content);
    assert.ok(result.length <= 1024 * 3, `${result.length} characters`);
    assert.match(result, /\[more: read_file with offset \d+ to read on\]/);
    assert.equal(await s.run("/tools"), 0, s.err.text);
    assert.match(
      s.out.text,
      /Tools offered to fake-model \(small-context set: 6 of 7, brief, for its 4096-token window\):/,
    );
    assert.match(s.out.text, /Cost:\s+\d+ tokens of definitions with every request/);
  }, { nCtx: 4096, files: { "big.txt": `${big}\n` } });
  // 16k: the whole set, as written.
  await withFake(async (s, fake) => {
    assert.equal(await s.run("hello"), 0, s.err.text);
    const tools = chats(fake)[0].tools!;
    assert.equal(tools.length, 7);
    assert.match(tools[0].function.description, /Read a text file of the workspace/);
  });
});

Deno.test("text mode keeps the history's system message when the window fills and compacts", async () => {
  await withFake(async (s, fake) => {
    const system = s.agent.history[0].content;
    const long = "words ".repeat(180);
    for (let i = 0; i < 6; i++) {
      assert.equal(await s.run(`turn ${i}: ${long}`), 0, s.err.text);
    }
    assert.match(s.err.text, /did not fit the \d+-token window/);
    assert.equal(s.agent.history[0].content, system, "no tool section in the history");
    // The history was compacted along with the request (not only what was sent).
    assert.ok(s.agent.history.some((m) => m.content.startsWith(SUMMARY_LABEL)));
    assert.ok(s.agent.history.length < 1 + 2 * 6, `${s.agent.history.length} messages`);
    assert.equal(s.agent.history.filter((m) => m.content.includes("## Tools")).length, 0);
    const last = chats(fake).at(-1)!;
    assert.match(String(last.messages[0].content), /## Tools/, "but every request has it");
  }, { nCtx: 2048, toolTemplate: false, reply: () => "Noted." });
});

Deno.test("the one-shot llama-completion gets the grammar as --grammar-file", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  await makeFakeLlamaCli(bin, { name: "llama-completion" });
  const log = join(bin, "runs.log");
  const s = await testSession({
    env: { PATH: bin, HARVEY_FAKE_LOG: log },
    flags: { ollama: "http://127.0.0.1:9" },
  });
  try {
    await Deno.mkdir(join(s.root, "Models"));
    await writeGguf(join(s.root, "Models", "tiny.gguf"));
    assert.equal(await s.run("/llamacpp add Models/tiny.gguf\nhello there"), 0, s.err.text);
    assert.match(s.out.text, /echo\(2\): hello there/);
    const [run] = (await Deno.readTextFile(log)).trim().split("\n").map((l) => JSON.parse(l));
    const at = run.argv.indexOf("--grammar-file");
    assert.ok(at > 0, run.argv.join(" "));
    assert.match(run.grammar, /^root ::= prose call\?\n/);
    assert.ok(accepts(run.grammar, READ));
    assert.match(run.argv[run.argv.indexOf("-p") + 1], /## Tools\n/, "the protocol in the prompt");
    // The grammar file is gone after the run.
    await assert.rejects(Deno.stat(run.argv[at + 1]), Deno.errors.NotFound);
  } finally {
    await s.close();
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("text mode offers no tools when stating them would take half the window", async () => {
  await withFake(async (s, fake) => {
    assert.equal(await s.run("hello\n/tools"), 0, s.err.text);
    const [body] = chats(fake);
    assert.equal(body.tools, undefined);
    assert.equal(body.grammar, undefined);
    assert.doesNotMatch(String(body.messages[0].content), /## Tools/);
    assert.match(
      s.out.text,
      /Mode:\s+text — .*but stating the tools takes \d+ tokens, more than half of the \d+ left for the request in the 512-token window/,
    );
  }, { nCtx: 512, toolTemplate: false, reply: () => "Hi." });
});
