/**
 * Sessions through the headless runner and a real session: what the file holds as the session
 * goes, resuming it (by ID, name, the start of an ID, the picker, the latest), forking,
 * exporting, deleting, replaying against a second model, and what the model may not touch.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { currentLog } from "../src/session/current.ts";
import { parseSessionText } from "../src/session/format.ts";
import { openStartupSession } from "../src/session/startup.ts";
import { SessionStore } from "../src/session/store.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { type TestSession, testSession } from "./helpers.ts";
import type { Message } from "../src/types.ts";
import type { SessionEvent } from "../src/session/format.ts";

const SECRET = "sk-live-abcdefghijklmnop1234";

/** A workspace whose sessions talk to `fake`; `open()` is one start of Harvey in it. */
async function workspace(fake: { url: string }, opts: { files?: Record<string, string> } = {}) {
  const root = await Deno.makeTempDir({ prefix: "harvey_sessions_" });
  for (const [path, text] of Object.entries(opts.files ?? {})) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, path), text);
  }
  const open = (flags: Record<string, unknown> = {}): Promise<TestSession> =>
    testSession({
      root,
      flags: { llamafileUrl: fake.url, ollama: "http://127.0.0.1:9", ...flags },
      env: { OPENAI_API_KEY: SECRET },
      selectBackend: true,
    });
  const events = async (id: string): Promise<SessionEvent[]> =>
    parseSessionText(
      await Deno.readTextFile(join(root, "agents", "sessions", `${id}.jsonl`)),
      id,
    ).events;
  return { root, open, events, cleanup: () => Deno.remove(root, { recursive: true }) };
}

const plain = (h: Message[]) => JSON.parse(JSON.stringify(h));

Deno.test("a session is saved as it goes and a resume rebuilds the same history", async (t) => {
  const fake = await startFakeOpenAI({ reply: (m) => `echo ${m.at(-1)?.content}` });
  const w = await workspace(fake, { files: { "notes.txt": "one\ntwo\n" } });
  try {
    let id = "";
    let history: Message[] = [];
    await t.step(
      "messages, tool calls and results, pins, /clear, turns with model and stats",
      async () => {
        const s = await w.open();
        fake.script(
          {
            text: "Reading.",
            toolCalls: [{ name: "read_file", arguments: { path: "notes.txt" } }],
          },
          { text: "It has two lines." },
        );
        assert.equal(
          await s.run(
            `what is in notes.txt?\n/context add remember ${SECRET}\nsecond\n/clear\nthird\n`,
          ),
          0,
          s.err.text,
        );
        id = currentLog(s.agent)!.id;
        history = plain(s.agent.history);
        const events = await w.events(id);
        const kinds = events.map((e) =>
          e.type === "message" ? `${e.message.role}${e.message.toolCalls ? "+calls" : ""}` : e.type
        );
        assert.deepEqual(kinds, [
          "session",
          "system",
          "user",
          "assistant+calls",
          "tool",
          "assistant",
          "turn",
          "pinned",
          "user",
          "assistant",
          "turn",
          "truncate",
          "user",
          "assistant",
          "turn",
        ]);
        const turn = events.find((e) => e.type === "turn")!;
        assert.ok(turn.type === "turn");
        assert.equal(turn.model, "fake-model");
        assert.equal(turn.backend, "llamafile:fake-model");
        assert.equal(turn.input, "what is in notes.txt?");
        assert.ok(turn.stats && turn.stats.replyTokens > 0);
        const tool = events.find((e) => e.type === "message" && e.message.role === "tool");
        assert.ok(tool?.type === "message" && tool.message.toolName === "read_file");
        const cut = events.find((e) => e.type === "truncate");
        assert.deepEqual(cut?.type === "truncate" && [cut.keep, cut.reason], [1, "clear"]);
        const text = await Deno.readTextFile(join(w.root, "agents", "sessions", `${id}.jsonl`));
        assert.equal(text.includes(SECRET), false, "an API key of the environment is redacted");
        assert.match(text, /remember \[redacted\]/);
        await s.close();
      },
    );

    await t.step(
      "resumed by ID, the history is the same, pin and system prompt included",
      async () => {
        const s = await w.open();
        assert.equal(await s.run(`/session resume ${id}\n`), 0, s.err.text);
        assert.match(s.out.text, new RegExp(`✓ Resumed session ${id} \\(3 turns, 2 messages\\)`));
        const expected = history.map((m) => ({
          ...m,
          content: m.content.replaceAll(SECRET, "[redacted]"),
        }));
        assert.deepEqual(plain(s.agent.history), expected);
        assert.equal(s.agent.pinned, "remember [redacted]");
        fake.requests.length = 0;
        assert.equal(await s.run("fourth\n"), 0, s.err.text);
        const sent = (fake.requests.at(-1)!.body as { messages: { content: string }[] }).messages;
        assert.deepEqual(sent.slice(-3).map((m) => m.content), ["third", "echo third", "fourth"]);
        await s.close();
        const events = await w.events(id);
        assert.equal(
          events.filter((e) => e.type === "session").length,
          1,
          "appended, not rewritten",
        );
        assert.equal(events.filter((e) => e.type === "turn").length, 4);
      },
    );

    await t.step("the start of an ID, a name, and a name that is taken", async () => {
      const s = await w.open();
      assert.equal(await s.run(`/session rename ${id} work\n`), 0, s.err.text);
      assert.equal(await s.run("/session resume work\n"), 0, s.err.text);
      assert.equal(currentLog(s.agent)!.id, id);
      await s.close();
      const t2 = await w.open();
      assert.equal(await t2.run(`/session resume ${id.slice(0, 12)}\n`), 0, t2.err.text);
      assert.equal(currentLog(t2.agent)!.id, id);
      assert.equal(await t2.run("/session resume nothing-like-it\n"), 1);
      assert.match(
        t2.err.text,
        /No session "nothing-like-it" in agents\/sessions — \/session list/,
      );
      await t2.close();
    });
  } finally {
    await w.cleanup();
    await fake.close();
  }
});

Deno.test("continue, the picker, fork, delete and the list", async (t) => {
  const fake = await startFakeOpenAI({ reply: (m) => `echo ${m.at(-1)?.content}` });
  const w = await workspace(fake);
  try {
    let first = "";
    let second = "";
    await t.step("--continue with no session yet is a new session, said so", async () => {
      const s = await w.open();
      assert.equal(
        await openStartupSession(s.agent, s.err, { continue: true, interactive: false }),
        false,
      );
      assert.match(s.err.text, /No saved session in this workspace yet; this one is new/);
      assert.equal(await s.run("alpha\n"), 0);
      first = currentLog(s.agent)!.id;
      await s.close();
      const s2 = await w.open();
      assert.equal(await s2.run("beta\n"), 0);
      second = currentLog(s2.agent)!.id;
      await s2.close();
    });

    await t.step("--continue takes the latest", async () => {
      const s = await w.open();
      assert.equal(
        await openStartupSession(s.agent, s.err, { continue: true, interactive: false }),
        true,
      );
      assert.equal(currentLog(s.agent)!.id, second);
      assert.deepEqual(s.agent.history.slice(1).map((m) => m.content), ["beta", "echo beta"]);
      await s.close();
    });

    await t.step(
      "/session resume without an ID asks with the picker; the answer picks",
      async () => {
        const s = await w.open();
        assert.equal(await s.run("/session resume\n2\n"), 0, s.err.text);
        assert.match(
          s.out.text,
          /Resume which session\?\n {2}\[1\] \S+ · .* · 1 turn · fake-model — beta\n/,
        );
        assert.equal(currentLog(s.agent)!.id, first, "the second row is the older session");
        await s.close();
      },
    );

    await t.step("fork copies the session; the copy goes on, the source stays", async () => {
      const s = await w.open();
      assert.equal(await s.run(`/session fork ${first}\ngamma\n`), 0, s.err.text);
      const copy = currentLog(s.agent)!.id;
      assert.notEqual(copy, first);
      assert.match(s.out.text, new RegExp(`✓ Forked into session ${copy}`));
      await s.close();
      const forked = await w.events(copy);
      assert.equal(forked[0].type === "session" && forked[0].forkedFrom, first);
      const store = new SessionStore(s.agent.workspace);
      assert.equal((await store.load(copy)).state.turns.length, 2);
      assert.equal((await store.load(first)).state.turns.length, 1, "the source is unchanged");
    });

    await t.step("delete asks, and refuses the session in use", async () => {
      const s = await w.open();
      assert.equal(await s.run(`/session resume ${second}\n/session delete ${second}\n`), 1);
      assert.match(s.err.text, /is the one in use; \/session resume another first/);
      assert.equal(await s.run(`/session delete ${first}\nn\n/session delete ${first}\ny\n`), 0);
      assert.match(s.out.text, /Delete session \S+ \(1 turns\)\? \[y\/N\] n\nKept\.\n/);
      assert.match(s.out.text, new RegExp(`✓ Deleted session ${first}`));
      assert.equal(await s.run("/session list\n"), 0);
      assert.doesNotMatch(
        s.out.text.split("Sessions, the latest first:").at(-1)!,
        new RegExp(first),
      );
      await s.close();
    });
  } finally {
    await w.cleanup();
    await fake.close();
  }
});

Deno.test("export writes Markdown through the workspace, never into agents/", async () => {
  const fake = await startFakeOpenAI({ reply: () => "Use \x1b[31mred\x1b[0m." });
  const w = await workspace(fake);
  try {
    const s = await w.open();
    assert.equal(await s.run("colour?\n/session export notes/session.md\n"), 0, s.err.text);
    const md = await Deno.readTextFile(join(w.root, "notes", "session.md"));
    assert.match(md, /^# Harvey session \S+\n/);
    assert.match(md, /### Turn 1\n\n\*\*User:\*\*\n\ncolour\?\n/);
    assert.match(md, /\*\*Model:\*\*\n\nUse ␛\[31mred␛\[0m\.\n/);
    assert.match(md, /_fake-model · \d+ tokens/);
    assert.equal(await s.run("/session export agents/x.md\n"), 1);
    assert.match(s.err.text, /inside agents\/, where Harvey keeps its own files/);
    assert.equal(await s.run("/session export notes/session.md\nn\n"), 0);
    assert.match(
      s.out.text,
      /notes\/session\.md exists; replace it\? \[y\/N\] n\nNot exported\.\n/,
    );
    await s.close();
  } finally {
    await w.cleanup();
    await fake.close();
  }
});

Deno.test("replay asks the turns again against a second model and saves a new session", async () => {
  const ollama = await startFakeOllama({ models: ["alpha", "beta"] });
  const root = await Deno.makeTempDir({ prefix: "harvey_replay_" });
  try {
    const s = await testSession({
      root,
      flags: { ollama: ollama.url, model: "alpha" },
      selectBackend: true,
    });
    assert.equal(
      await s.run("first question\n/context add be brief\nsecond question\n"),
      0,
      s.err.text,
    );
    const original = currentLog(s.agent)!.id;
    const before = plain(s.agent.history);
    s.out.text = "";
    assert.equal(await s.run(`/session replay ${original} --model beta\n`), 0, s.err.text);
    assert.match(s.out.text, /\[replay 1\/2 · beta:latest\]\nHello from beta:latest\.\n/);
    const m = /✓ Replayed 2 turns of \S+ with beta:latest: session (\S+) /.exec(s.out.text);
    assert.ok(m, s.out.text);
    assert.deepEqual(plain(s.agent.history), before, "the session in use is put back");
    assert.equal(currentLog(s.agent)!.id, original);
    assert.equal(s.agent.client?.model, "alpha:latest", "the backend is not switched");
    const { state } = await new SessionStore(s.agent.workspace).load(m[1]);
    assert.equal(state.header.replayOf, original);
    assert.deepEqual(state.turns.map((t) => [t.input, t.model]), [
      ["first question", "beta:latest"],
      ["second question", "beta:latest"],
    ]);
    assert.equal(state.pinned, "be brief", "the pin comes where it came");
    assert.equal(await s.run(`/session replay ${original} --model gamma\n`), 1);
    assert.match(s.err.text, /No model named "gamma" to replay with — available: .*alpha/);
    await s.close();
  } finally {
    await Deno.remove(root, { recursive: true });
    await ollama.close();
  }
});

Deno.test("a resumed session that does not fit the window is compacted by the next request", async () => {
  const big = await startFakeOpenAI({ nCtx: 8192, reply: () => "word ".repeat(150) });
  const w = await workspace(big);
  try {
    const s = await w.open();
    assert.equal(await s.run("one\ntwo\nthree\nfour\n"), 0, s.err.text);
    const id = currentLog(s.agent)!.id;
    await s.close();
    const small = await startFakeOpenAI({ nCtx: 1024, reply: () => "short" });
    try {
      const t2 = await testSession({
        root: w.root,
        flags: { llamafileUrl: small.url, ollama: "http://127.0.0.1:9" },
        selectBackend: true,
      });
      assert.equal(
        await openStartupSession(t2.agent, t2.err, { resume: id, interactive: false }),
        true,
      );
      assert.equal(await t2.run("five\n"), 0, t2.err.text);
      assert.match(t2.err.text, /⟳ The conversation did not fit the 1024-token window/);
      const compacted = plain(t2.agent.history);
      await t2.close();
      const cut = (await w.events(id)).find((e) => e.type === "truncate");
      assert.equal(cut?.type === "truncate" && cut.reason, "summary");
      const t3 = await testSession({
        root: w.root,
        flags: { llamafileUrl: small.url, ollama: "http://127.0.0.1:9" },
        selectBackend: true,
      });
      await openStartupSession(t3.agent, t3.err, { resume: id, interactive: false });
      assert.deepEqual(plain(t3.agent.history), compacted, "resumed as compacted");
      await t3.close();
    } finally {
      await small.close();
    }
  } finally {
    await w.cleanup();
    await big.close();
  }
});

Deno.test("a torn last line is left out and repaired; a broken line is named", async () => {
  const fake = await startFakeOpenAI();
  const w = await workspace(fake);
  try {
    const s = await w.open();
    assert.equal(await s.run("hello\n"), 0);
    const id = currentLog(s.agent)!.id;
    await s.close();
    const file = join(w.root, "agents", "sessions", `${id}.jsonl`);
    const good = await Deno.readTextFile(file);
    await Deno.writeTextFile(file, `${good}{"type":"message","time":"x","mess`);
    const t2 = await w.open();
    assert.equal(await t2.run(`/session resume ${id}\nagain\n`), 0, t2.err.text);
    assert.match(
      t2.out.text,
      /line \d+ was cut short \(Harvey stopped while writing it\); it is left out/,
    );
    await t2.close();
    const repaired = parseSessionText(await Deno.readTextFile(file), id);
    assert.equal(repaired.torn, false);
    assert.equal(repaired.events.filter((e) => e.type === "turn").length, 2);
    await Deno.writeTextFile(file, good.replace(/\n/, "\n{oops\n"));
    const t3 = await w.open();
    assert.equal(await t3.run(`/session resume ${id}\n`), 1);
    assert.match(
      t3.err.text,
      /agents\/sessions\/\S+\.jsonl line 2, column 2: expected a JSON object/,
    );
    assert.equal(await Deno.readTextFile(file), good.replace(/\n/, "\n{oops\n"), "never rewritten");
    await t3.close();
  } finally {
    await w.cleanup();
    await fake.close();
  }
});

Deno.test("the model's tools cannot read or write the saved sessions", async () => {
  const fake = await startFakeOpenAI({
    respond: (messages) => {
      const last = messages.at(-1)!;
      if (last.role !== "user" || !last.content.startsWith("peek")) return undefined;
      const id = last.content.split(" ")[1];
      return {
        text: "",
        toolCalls: [
          { name: "read_file", arguments: { path: `agents/sessions/${id}.jsonl` } },
          { name: "write_file", arguments: { path: `agents/sessions/${id}.jsonl`, content: "x" } },
        ],
      };
    },
  });
  const w = await workspace(fake);
  try {
    const s = await w.open({ yes: true });
    assert.equal(await s.run("hello session\n"), 0, s.err.text);
    const id = currentLog(s.agent)!.id;
    assert.equal(await s.run(`peek ${id}\n/search "hello session"\n`), 0, s.err.text);
    assert.match(s.out.text, /○ read_file agents\/sessions\/\S+ — .*/);
    assert.match(s.out.text, /○ write_file agents\/sessions\/\S+ — .*/);
    assert.doesNotMatch(s.out.text, /agents\/sessions\/\S+:\d+:/, "/search skips agents/");
    const plan = await s.agent.sandbox!.plan({ writable: true, network: false });
    assert.ok(
      plan.maskDirs.includes(join(s.agent.workspace.root, "agents", "sessions")),
      "the sandbox masks the sessions",
    );
    await s.close();
    const events = await w.events(id);
    const results = events.filter((e) => e.type === "message" && e.message.role === "tool");
    assert.ok(
      results.every((e) => e.type === "message" && /secret file/.test(e.message.content)),
      JSON.stringify(results),
    );
  } finally {
    await w.cleanup();
    await fake?.close();
  }
});
