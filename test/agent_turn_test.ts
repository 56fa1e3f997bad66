/**
 * The agent loop through the headless runner, against fake servers that emit tool calls in
 * each native wire format: llama-server's streamed `delta.tool_calls`, Ollama's
 * `message.tool_calls`, Anthropic's `tool_use` blocks. Approvals take their answers from the
 * next script line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startFakeAnthropic } from "./fixtures/fake_anthropic.ts";
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import type { ChatMessage, ScriptedToolCall } from "./fixtures/fixture_common.ts";
import { git as gitIn, type TestSession, testSession, withFakeServer } from "./helpers.ts";

const call = (name: string, args: ScriptedToolCall["arguments"], id?: string) => ({
  name,
  arguments: args,
  ...(id ? { id } : {}),
});

/** The bodies of the chat requests a fake received. */
function chats(
  fake: { requests: { path: string; body: unknown }[] },
  path = "/v1/chat/completions",
) {
  return fake.requests.filter((r) => r.path === path).map((r) =>
    r.body as { messages: Record<string, unknown>[]; tools?: unknown[] }
  );
}

async function withLlama(
  fn: (s: TestSession, fake: FakeOpenAI) => Promise<void>,
  opts: { files?: Record<string, string>; yes?: boolean; reply?: (m: ChatMessage[]) => string } =
    {},
): Promise<void> {
  await withFakeServer(
    { nCtx: 16384, reply: opts.reply ?? (() => "Done.") },
    { files: { "src/a.txt": "alpha\nbeta\ngamma\n", ...opts.files }, flags: { yes: opts.yes } },
    fn,
  );
}

Deno.test("llama-server: split arguments, two calls in one reply, and broken arguments", async () => {
  await withLlama(async (s, fake) => {
    fake.script(
      {
        text: "Let me look.",
        toolCalls: [
          call("read_file", { path: "src/a.txt" }),
          call("list_files", {}),
          call("read_file", '{"path": "src/a.txt"'),
        ],
      },
      { text: "The file has three lines." },
    );
    assert.equal(await s.run("what is in src/a.txt?"), 0, s.err.text);
    assert.match(s.out.text, /Let me look\.\n/);
    assert.match(s.out.text, /● read_file src\/a\.txt — 3 lines\n/);
    assert.match(s.out.text, /● list_files \. — 2 entries\n/);
    assert.match(s.out.text, /○ read_file — invalid arguments\n/);
    assert.match(s.out.text, /The file has three lines\.\n$/);
    assert.match(s.err.text, /· 3 tool calls/);
    const [first, second] = chats(fake);
    assert.equal(first.tools?.length, 7, "the tools go with the request");
    // The second request carries the assistant's calls and one result per call, by id.
    const sent = second.messages.slice(-4);
    const ids = (sent[0].tool_calls as { id: string }[]).map((c) => c.id);
    assert.equal(ids.length, 3);
    assert.deepEqual(
      sent.slice(1).map((m) => [m.role, m.tool_call_id]),
      ids.map((id) => ["tool", id]),
    );
    assert.match(String(sent[1].content), /\[src\/a\.txt: lines 1-3 of 3\]\nalpha\nbeta\ngamma\n/);
    assert.match(String(sent[3].content), /not valid JSON/);
    // The history holds the same valid conversation.
    const roles = s.agent.history.map((m) => m.role);
    assert.deepEqual(roles.slice(-6), ["user", "assistant", "tool", "tool", "tool", "assistant"]);
  });
});

Deno.test("approvals: yes, no, all this turn and quit turn, answered on the next lines", async () => {
  await withLlama(async (s, fake) => {
    fake.script(
      { text: "", toolCalls: [call("write_file", { path: "one.txt", content: "1\n" })] },
      { text: "", toolCalls: [call("write_file", { path: "two.txt", content: "2\n" })] },
      {
        text: "",
        toolCalls: [
          call("write_file", { path: "three.txt", content: "3\n" }),
          call("edit_file", { path: "src/a.txt", old_text: "beta", new_text: "BETA" }),
        ],
      },
      { text: "Three of them." },
      {
        text: "",
        toolCalls: [
          call("write_file", { path: "four.txt", content: "4\n" }),
          call("write_file", { path: "five.txt", content: "5\n" }),
        ],
      },
    );
    // One turn: yes, no, then all (which holds for the rest of the turn: no more questions).
    assert.equal(await s.run("make files\ny\nn\na\n"), 0, s.err.text);
    const exists = (p: string) => Deno.stat(join(s.root, p)).then(() => true, () => false);
    assert.ok(await exists("one.txt"), "yes writes");
    assert.equal(await exists("two.txt"), false, "no declines");
    assert.ok(await exists("three.txt"), "all writes this one…");
    assert.equal(await Deno.readTextFile(join(s.root, "src/a.txt")), "alpha\nBETA\ngamma\n");
    assert.match(s.out.text, /\+\+\+ b\/one\.txt/);
    assert.match(
      s.out.text,
      /Apply this change\? \[y\]es \/ \[n\]o \/ \[a\]ll this turn \/ \[q\]uit turn: y\n/,
    );
    assert.match(s.out.text, /approved \(all changes this turn\)/);
    // The next turn asks again; quit ends it.
    assert.equal(await s.run("more\nq\n"), 0, s.err.text);
    assert.equal(await exists("four.txt"), false, "quit declines");
    assert.equal(await exists("five.txt"), false, "and nothing after it runs");
    const results = s.agent.history.filter((m) => m.role === "tool").map((m) => m.content);
    assert.deepEqual(results, [
      "Created one.txt (1 line)",
      "declined by the user: two.txt was not changed",
      "Created three.txt (1 line)",
      "Edited src/a.txt: at line 2, 1 line replaced by 1",
      "declined by the user: four.txt was not changed",
      "[not run: the user ended the turn]",
    ]);
    assert.match(s.err.text, /The turn was ended at your request/);
    assert.equal(chats(fake).length, 5, "no request after quit");
  });
});

Deno.test("--yes approves without asking; /unapply restores exactly what the turn changed", async () => {
  await withLlama(async (s, fake) => {
    fake.script(
      {
        toolCalls: [
          call("edit_file", { path: "src/a.txt", old_text: "alpha", new_text: "ALPHA" }),
          call("write_file", { path: "new/dir/b.txt", content: "b\n" }),
        ],
      },
      {
        toolCalls: [call("edit_file", { path: "src/a.txt", old_text: "gamma", new_text: "GAMMA" })],
      },
      { text: "Edited." },
    );
    assert.equal(await s.run("edit them"), 0, s.err.text);
    assert.equal(await Deno.readTextFile(join(s.root, "src/a.txt")), "ALPHA\nbeta\nGAMMA\n");
    assert.match(s.out.text, /approved \(--yes\)/);
    assert.doesNotMatch(s.out.text, /Apply this change\?/);
    assert.equal(await s.run("/unapply\ny"), 0, s.err.text);
    assert.match(s.out.text, /Undo the model's edits of the last turn \(2 files\)\? \[Y\/n\] y/);
    assert.equal(await Deno.readTextFile(join(s.root, "src/a.txt")), "alpha\nbeta\ngamma\n");
    assert.equal(await Deno.stat(join(s.root, "new")).then(() => true, () => false), false);
  }, { yes: true });
});

Deno.test("a path escape or a secret is refused without leaking its content", async () => {
  const outside = await Deno.makeTempFile({ prefix: "harvey-outside-" });
  await Deno.writeTextFile(outside, "TOP-SECRET-OUTSIDE");
  try {
    await withLlama(async (s, fake) => {
      fake.script({
        toolCalls: [
          call("read_file", { path: outside }),
          call("read_file", { path: "../../../../../../../../" + outside }),
          call("read_file", { path: ".env" }),
          call("search", { pattern: "SECRET" }),
          call("write_file", { path: ".git/hooks/pre-commit", content: "touch /tmp/pwn" }),
        ],
      });
      assert.equal(await s.run("read everything"), 0, s.err.text);
      const results = s.agent.history.filter((m) => m.role === "tool").map((m) => m.content);
      assert.match(results[0], /outside the workspace/);
      assert.match(results[1], /outside the workspace/);
      assert.match(results[2], /secret file/);
      assert.match(results[3], /No matches/);
      assert.match(results[4], /kept by git or Harvey|read-only|\.git/);
      const all = JSON.stringify(chats(fake)) + s.out.text + s.err.text;
      assert.doesNotMatch(all, /TOP-SECRET|sk-live/);
      assert.equal(await Deno.stat(join(s.root, ".git")).then(() => true, () => false), false);
    }, { files: { ".env": "API_KEY=sk-live-SECRET\n" }, yes: true });
  } finally {
    await Deno.remove(outside);
  }
});

Deno.test("the per-turn limit ends the loop with every call answered; a flood of calls is cut", async () => {
  await withLlama(async (s, fake) => {
    const many = (n: number) => Array.from({ length: n }, () => call("list_files", {}));
    fake.script({ text: "", toolCalls: many(4) }, { text: "", toolCalls: many(1000) });
    await Deno.writeTextFile(join(s.root, "agents/harvey.yaml"), "tools:\n  max_calls: 5\n");
    const { ConfigStore } = await import("../src/config/store.ts");
    const [config] = await ConfigStore.load(join(s.root, "agents/harvey.yaml"));
    Object.assign(s.agent, { config });
    assert.equal(await s.run("list a lot"), 0, s.err.text);
    const results = s.agent.history.filter((m) => m.role === "tool");
    // 4 in the first reply; of the 1000 of the second, the one the turn had left.
    assert.equal(results.length, 5);
    const second = s.agent.history.findLast((m) => m.role === "assistant" && m.toolCalls);
    assert.equal(second?.toolCalls?.length, 1, "the dropped calls are not kept");
    assert.match(s.err.text, /asked for 1000 tool calls in one reply; the first 1 are taken/);
    assert.match(s.err.text, /The turn stopped after 5 tool calls \(tools\.max_calls/);
    assert.equal(s.out.text.split("\n").filter((l) => /list_files/.test(l)).length, 5);
    assert.equal(chats(fake).length, 2);
  });
});

Deno.test("Ollama: tools and message.tool_calls with object arguments", async () => {
  const fake = await startFakeOllama({ models: ["qwen3:latest"], reply: () => "It says alpha." });
  const s = await testSession({
    files: { "a.txt": "alpha\n" },
    flags: { ollama: fake.url, model: "qwen3:latest" },
    selectBackend: true,
  });
  try {
    fake.script({ toolCalls: [call("read_file", { path: "a.txt" })] });
    assert.equal(await s.run("read a.txt"), 0, s.err.text);
    assert.match(s.out.text, /● read_file a\.txt — 1 line\n/);
    assert.match(s.out.text, /It says alpha\.\n$/);
    const bodies = chats(fake, "/api/chat");
    assert.equal(bodies.length, 2);
    const [assistant, tool] = bodies[1].messages.slice(-2);
    assert.deepEqual(assistant.tool_calls, [
      { function: { name: "read_file", arguments: { path: "a.txt" } } },
    ]);
    assert.equal(tool.role, "tool");
    assert.equal(tool.tool_name, "read_file");
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("Anthropic route: tool_use blocks, answered with tool_result blocks", async () => {
  const claude = await startFakeAnthropic({
    apiKey: "sk-ant-test-key-123",
    reply: () => "Two lines.",
  });
  const s = await testSession({
    files: { "a.txt": "one\ntwo\n" },
    env: { ANTHROPIC_API_KEY: "sk-ant-test-key-123" },
  });
  try {
    assert.equal(
      await s.run(`/route add claude anthropic claude-fake-1 --url ${claude.url}/v1`),
      0,
      s.err.text,
    );
    claude.script({ text: "", toolCalls: [call("read_file", { path: "a.txt" }, "toolu_1")] });
    assert.equal(await s.run("@claude how long is a.txt?"), 0, s.err.text);
    assert.match(s.out.text, /● read_file a\.txt — 2 lines\n/);
    assert.match(s.out.text, /Two lines\.\n$/);
    const bodies = chats(claude, "/v1/messages");
    assert.equal(bodies.length, 2);
    const turns = bodies[1].messages;
    assert.deepEqual(turns.at(-2)?.content, [
      { type: "tool_use", id: "toolu_1", name: "read_file", input: { path: "a.txt" } },
    ]);
    const result = (turns.at(-1)?.content as { type: string; tool_use_id: string }[])[0];
    assert.equal(result.type, "tool_result");
    assert.equal(result.tool_use_id, "toolu_1");
  } finally {
    await s.close();
    await claude.close();
  }
});

Deno.test("a backend whose template takes no tools gets no native ones, and /tools says why", async () => {
  const fake = await startFakeOpenAI({ toolTemplate: false, nCtx: 16384, reply: () => "plain" });
  const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
  try {
    assert.equal(await s.run("hello\n/tools"), 0, s.err.text);
    assert.equal(chats(fake)[0].tools, undefined);
    assert.match(
      s.out.text,
      /takes no native tools: the chat template of fake-model does not support tools/,
    );
    assert.match(s.out.text, /read_file\s+reads\s+Read a text file/);
    assert.equal(await s.run("/tools off\n/tools approve edits\n/tools"), 0, s.err.text);
    assert.match(s.out.text, /State:\s+off/);
    assert.match(s.out.text, /Approval:\s+file changes without asking/);
    assert.equal(await s.run("/tools approve never"), 1);
    assert.match(s.err.text, /Usage: \/tools approve ask\|edits\|all \(found "never"\)/);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("run_command: approved, it runs in the sandbox; safe mode still refuses an approved rm", async () => {
  await withLlama(async (s, fake) => {
    fake.script(
      {
        text: "",
        toolCalls: [
          call("run_command", { command: "ls src" }),
          call("run_command", { command: "rm -rf src" }),
          call("run_command", { command: "cat src/a.txt | wc -l" }),
        ],
      },
      { text: "Listed." },
    );
    assert.equal(await s.run("look around"), 0, s.err.text);
    assert.match(s.out.text, /\$ ls src\n/);
    assert.match(s.out.text, /approved \(--yes\)/);
    assert.match(s.out.text, /● run_command ls src — exit 0, 1 line\n/);
    assert.match(s.out.text, /○ run_command rm -rf src — refused\n/);
    const results = s.agent.history.filter((m) => m.role === "tool").map((m) => m.content);
    assert.match(results[0], /^\[exited with status 0, in the sandbox\]\na\.txt\n$/);
    assert.match(results[1], /Safe mode does not allow "rm"/);
    assert.match(results[2], /without a shell: pipes/);
    assert.equal(await Deno.readTextFile(join(s.root, "src/a.txt")), "alpha\nbeta\ngamma\n");
    const audit = s.agent.audit!.recent().map((e) => `${e.outcome} ${e.action} ${e.details}`);
    assert.ok(audit.some((l) => /^denied run rm -rf src: Safe mode/.test(l)), audit.join("\n"));
  }, { yes: true });
});

Deno.test("run_command asks first; a declined command does not run and the loop goes on", async () => {
  await withLlama(async (s, fake) => {
    fake.script(
      { text: "", toolCalls: [call("run_command", { command: "ls" })] },
      { text: "Fine, I will not." },
    );
    assert.equal(await s.run("list\nn\n"), 0, s.err.text);
    assert.match(
      s.out.text,
      /Run this command\? \[y\]es \/ \[n\]o \/ \[a\]ll this turn \/ \[q\]uit turn: n\n/,
    );
    assert.match(s.out.text, /○ run_command ls — declined\n/);
    assert.match(s.out.text, /Fine, I will not\.\n$/);
    const results = s.agent.history.filter((m) => m.role === "tool").map((m) => m.content);
    assert.deepEqual(results, ["declined by the user: ls was not run"]);
  });
});

Deno.test("Ctrl-C during run_command kills it, answers the call [interrupted] and ends the turn", async () => {
  await withLlama(async (s, fake) => {
    // A marker of its own, so another test's sleep is not mistaken for this one.
    const marker = `${30 + Math.floor(Math.random() * 1000) / 10000}`;
    fake.script({ text: "", toolCalls: [call("run_command", { command: `sleep ${marker}` })] });
    const ctl = new AbortController();
    const started = performance.now();
    const run = s.run("wait", { signal: ctl.signal });
    // Stop once the command runs: its start is audited.
    const running = () =>
      s.agent.audit!.recent().some((e) => e.details === `sleep ${marker} (sandboxed)`);
    for (let i = 0; i < 500 && !running(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(running(), "the command started");
    ctl.abort();
    assert.equal(await run, 0, s.err.text);
    assert.ok(performance.now() - started < 20_000, "sleep was killed");
    assert.match(s.out.text, new RegExp(`○ run_command sleep ${marker} — interrupted\n`));
    assert.match(s.err.text, /⏹ Interrupted — the tool call was stopped/);
    const last = s.agent.history.at(-1)!;
    assert.equal(last.role, "tool");
    assert.match(last.content, /^\[interrupted\]/);
    assert.equal(chats(fake).length, 1, "no request after Ctrl-C");
    const left = async () => {
      const ps = await new Deno.Command("pgrep", {
        args: ["-f", `sleep ${marker}`],
        stdout: "piped",
      })
        .output();
      return new TextDecoder().decode(ps.stdout).trim();
    };
    for (let i = 0; i < 100 && await left(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await left(), "", "no sleep is left running");
  }, { yes: true, files: { "agents/harvey.yaml": "safe_mode: false\n" } });
});

Deno.test("the git tool runs read-only, hardened git; a writing subcommand is refused", async () => {
  await withLlama(async (s, fake) => {
    const git = (...args: string[]) => gitIn(s.root, ...args);
    await git("init", "-q");
    await git("add", "src/a.txt");
    await git("commit", "-q", "-m", "first commit");
    fake.script(
      {
        text: "",
        toolCalls: [call("git", { args: "log --oneline" }), call("git", { args: "commit -am x" })],
      },
      { text: "One commit." },
    );
    assert.equal(await s.run("what is the history?"), 0, s.err.text);
    const results = s.agent.history.filter((m) => m.role === "tool").map((m) => m.content);
    assert.match(results[0], /^[0-9a-f]{7,} first commit\n$/);
    assert.match(results[1], /runs only read-only commands .*"commit" is refused/);
    assert.match(s.out.text, /● git log --oneline — 1 line\n/);
  });
});

Deno.test("kb_search and rag_search are offered when the workspace has them", async () => {
  const fake = await startFakeOllama({
    models: ["llama3.2:latest", "nomic-embed-text:latest"],
    embedDims: 512,
    reply: () => "Found it.",
  });
  const s = await testSession({
    files: {
      "docs/wal.md": "SQLite in WAL journal mode lets readers read while one writer commits.\n",
    },
    flags: { ollama: fake.url, model: "llama3.2:latest" },
    selectBackend: true,
  });
  try {
    assert.equal(await s.run("/tools"), 0, s.err.text);
    assert.doesNotMatch(s.out.text, /kb_search|rag_search/);
    const setup = [
      "/kb project add harvey",
      "/kb observe finding the journal runs in WAL mode",
      "/rag new docs nomic-embed-text",
      "/rag ingest docs docs",
    ];
    assert.equal(await s.run(setup.join("\n")), 0, s.err.text);
    fake.script({
      text: "",
      toolCalls: [
        call("kb_search", { query: "journal" }),
        call("rag_search", { query: "readers and writers in SQLite" }),
      ],
    });
    assert.equal(await s.run("what do we know about the journal?"), 0, s.err.text);
    const results = s.agent.history.filter((m) => m.role === "tool").map((m) => m.content);
    assert.match(results[0], /^\[finding #1, project harvey\] the journal runs in WAL mode\n/);
    assert.match(results[1], /^\[docs\/wal\.md, score [\d.]+\]\nSQLite in WAL journal mode/);
    const tools = chats(fake, "/api/chat").at(-2)?.tools as { function: { name: string } }[];
    assert.deepEqual(tools.map((t) => t.function.name).slice(-2), ["kb_search", "rag_search"]);
  } finally {
    await s.close();
    await fake.close();
  }
});
