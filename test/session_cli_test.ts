/**
 * Sessions and the output for programs end to end: Harvey started as `deno task harvey` starts
 * it (`test/harvey_child.ts`), killed with SIGKILL in the middle of a turn, continued, resumed;
 * `-p --output json` and `--mode rpc` with every line of stdout parsed as an event.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { TerminalAsker } from "../src/repl/asker.ts";
import { type HarveyEvent } from "../src/repl/json_display.ts";
import { Terminal, type TerminalIO } from "../src/repl/terminal.ts";
import { currentLog } from "../src/session/current.ts";
import { parseSessionText } from "../src/session/format.ts";
import { openStartupSession } from "../src/session/startup.ts";
import { createSession } from "../src/session.ts";
import { selectBackend } from "../src/repl/startup.ts";
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { runHarvey, spawnHarvey } from "./harvey_child.ts";
import { VirtualTerminal } from "./vt.ts";

const OFFLINE = { OLLAMA_HOST: "127.0.0.1:9" };

function args(fake: FakeOpenAI, ...more: string[]): string[] {
  return ["--llamafile-url", fake.url, ...more];
}

async function sessionFiles(root: string): Promise<string[]> {
  const dir = join(root, "agents", "sessions");
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(join(dir, e.name));
  } catch {
    return [];
  }
  return names.sort();
}

async function turnsIn(file: string): Promise<number> {
  const text = await Deno.readTextFile(file).catch(() => "");
  return parseSessionText(text, file).events.filter((e) => e.type === "turn").length;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every line of `stdout` parsed as an event; a line that is not JSON fails the test. */
function parseEvents(stdout: string): HarveyEvent[] {
  return stdout.split("\n").filter((l) => l !== "").map((line) => {
    try {
      const event = JSON.parse(line);
      assert.equal(typeof event.type, "string", line);
      return event as HarveyEvent;
    } catch {
      return assert.fail(`stdout holds a line that is not a JSON event: ${JSON.stringify(line)}`);
    }
  });
}

Deno.test("kill -9 in the middle of a turn loses only that turn; -c goes on from the rest", async () => {
  const root = await Deno.makeTempDir({ prefix: "harvey_kill_" });
  const fake = await startFakeOpenAI({ reply: (m) => `echo ${m.at(-1)?.content}` });
  try {
    const child = spawnHarvey(args(fake), { cwd: root, env: OFFLINE });
    const writer = child.stdin.getWriter();
    const type = (line: string) => writer.write(new TextEncoder().encode(`${line}\n`));
    await type("first prompt");
    const file = await until("the session file", async () => (await sessionFiles(root))[0]);
    await until("the first turn", async () => await turnsIn(file) === 1 ? true : undefined);
    fake.script({ text: "never finished", firstTokenDelayMs: 60_000 });
    await type("second prompt");
    const chats = () => fake.requests.filter((r) => r.path === "/v1/chat/completions").length;
    await until("the second request", () => Promise.resolve(chats() === 2 ? true : undefined));
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL");
    await writer.close().catch(() => {});
    await child.stdout.cancel();
    await child.stderr.cancel();
    const parsed = parseSessionText(await Deno.readTextFile(file), file);
    assert.equal(parsed.torn, false);
    assert.deepEqual(
      parsed.events.flatMap((e) => e.type === "message" ? [e.message.content] : []).slice(1),
      ["first prompt", "echo first prompt"],
    );
    const r = await runHarvey(args(fake, "-c", "-p", "third prompt"), { cwd: root, env: OFFLINE });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "echo third prompt\n");
    assert.match(r.stderr, /✓ Resumed session \S+ \(1 turn, 2 messages\)/);
    const sent = (fake.requests.at(-1)!.body as { messages: { content: string }[] }).messages;
    assert.deepEqual(sent.slice(1).map((m) => m.content), [
      "first prompt",
      "echo first prompt",
      "third prompt",
    ]);
    assert.equal(await turnsIn(file), 2, "the same file goes on");
  } finally {
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--resume ID on the command line, and the usage errors of the new flags", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "harvey_resume_" });
  const fake = await startFakeOpenAI({ reply: (m) => `echo ${m.at(-1)?.content}` });
  try {
    await t.step("two sessions; --resume ID takes the one named", async () => {
      assert.equal(
        (await runHarvey(args(fake, "-p", "in A"), { cwd: root, env: OFFLINE })).code,
        0,
      );
      const [a] = await sessionFiles(root);
      assert.equal(
        (await runHarvey(args(fake, "-p", "in B"), { cwd: root, env: OFFLINE })).code,
        0,
      );
      const id = a.split("/").at(-1)!.replace(".jsonl", "");
      const r = await runHarvey(args(fake, "--resume", id, "-p", "again"), {
        cwd: root,
        env: OFFLINE,
      });
      assert.equal(r.code, 0, r.stderr);
      const sent = (fake.requests.at(-1)!.body as { messages: { content: string }[] }).messages;
      assert.deepEqual(sent.slice(1).map((m) => m.content), ["in A", "echo in A", "again"]);
      const missing = await runHarvey(args(fake, "--resume", "nope", "-p", "x"), {
        cwd: root,
        env: OFFLINE,
      });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /✗ No session "nope" in agents\/sessions/);
    });
    await t.step("usage errors: 2, one line", async () => {
      const cases: [string[], RegExp][] = [
        [
          ["--resume", "--run", "-"],
          /--resume without an ID asks with a picker, which needs a terminal/,
        ],
        [["-c", "--resume", "x", "-p", "x"], /--continue and --resume take one session/],
        [["--output", "json"], /--output json goes with -p PROMPT/],
        [["--output", "xml", "-p", "x"], /--output expects text or json, found "xml"/],
        [["--mode", "rpc", "-p", "x"], /--mode rpc reads its commands from stdin/],
        [["--mode", "grpc"], /--mode expects rpc, found "grpc"/],
      ];
      for (const [argv, message] of cases) {
        const r = await runHarvey(args(fake, ...argv), { cwd: root, env: OFFLINE });
        assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr + r.stdout, message);
      }
    });
  } finally {
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("-p --output json: only JSON on stdout, every event of a turn with a tool call", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "harvey_json_" });
  await Deno.writeTextFile(join(root, "a.txt"), "alpha\nbeta\n");
  const fake = await startFakeOpenAI({
    reasoning: () => "thinking it over",
    respond: (messages) =>
      messages.at(-1)?.role === "user"
        ? { text: "Let me read.", toolCalls: [{ name: "read_file", arguments: { path: "a.txt" } }] }
        : { text: "It has two lines." },
  });
  try {
    await t.step("session, reasoning, text, tool_call, tool_result, stats, end", async () => {
      const r = await runHarvey(args(fake, "-p", "what is in a.txt?", "--output", "json"), {
        cwd: root,
        env: OFFLINE,
      });
      assert.equal(r.code, 0, r.stderr);
      const events = parseEvents(r.stdout);
      const first = events[0];
      assert.ok(
        first.type === "session" && first.resumed === false && first.model === "fake-model",
      );
      assert.match(first.id, /^\d{8}-\d{6}-[0-9a-f]{4}$/);
      const types = [...new Set(events.map((e) => e.type))];
      assert.deepEqual(types, [
        "session",
        "reasoning",
        "text",
        "tool_call",
        "tool_result",
        "stats",
        "end",
      ]);
      const text = events.flatMap((e) => e.type === "text" ? [e.delta] : []).join("");
      assert.equal(text, "Let me read.It has two lines.");
      const call = events.find((e) => e.type === "tool_call");
      assert.ok(
        call?.type === "tool_call" && call.name === "read_file" && call.subject === "a.txt",
      );
      assert.deepEqual(JSON.parse(call.arguments), { path: "a.txt" });
      const result = events.find((e) => e.type === "tool_result");
      assert.ok(result?.type === "tool_result" && result.id === call.id && !result.error);
      assert.match(result.content, /alpha\nbeta/);
      const stats = events.find((e) => e.type === "stats");
      assert.ok(stats?.type === "stats" && stats.replyTokens > 0 && /tokens/.test(stats.line));
      assert.deepEqual(events.at(-1), { type: "end", status: 0 });
      const files = await sessionFiles(root);
      assert.equal(files.length, 1);
      assert.ok(files[0].endsWith(`${first.id}.jsonl`), "the session event names the file");
    });
    await t.step("a failure is an error event and end with status 1", async () => {
      const r = await runHarvey(
        ["--llamafile-url", "http://127.0.0.1:9", "-p", "x", "--output", "json"],
        { cwd: root, env: OFFLINE },
      );
      assert.equal(r.code, 1);
      const events = parseEvents(r.stdout);
      const error = events.find((e) => e.type === "error");
      assert.ok(error?.type === "error" && /No backend selected/.test(error.message));
      assert.deepEqual(events.at(-1), { type: "end", status: 1 });
    });
    await t.step("-c with --output json says it resumed", async () => {
      const r = await runHarvey(args(fake, "-c", "-p", "and?", "--output", "json"), {
        cwd: root,
        env: OFFLINE,
      });
      assert.equal(r.code, 0, r.stderr);
      const first = parseEvents(r.stdout)[0];
      assert.ok(first.type === "session" && first.resumed === true);
    });
  } finally {
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});

/** Harvey in `--mode rpc`: commands in, events out, every line parsed. */
function rpcHarvey(fake: FakeOpenAI, root: string, extra: string[] = []) {
  const child = spawnHarvey(args(fake, "--mode", "rpc", ...extra), { cwd: root, env: OFFLINE });
  const writer = child.stdin.getWriter();
  const seen: HarveyEvent[] = [];
  let buffer = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let read = 0;
  const fill = async () => {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Harvey ended; events so far: ${JSON.stringify(seen)}`);
    buffer += value;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      seen.push(...parseEvents(buffer.slice(0, nl)));
      buffer = buffer.slice(nl + 1);
    }
  };
  return {
    seen,
    send: (command: unknown) =>
      writer.write(new TextEncoder().encode(`${JSON.stringify(command)}\n`)),
    sendRaw: (line: string) => writer.write(new TextEncoder().encode(`${line}\n`)),
    /** The next event matching `pred` after those already taken. */
    async next(pred: (e: HarveyEvent) => boolean): Promise<HarveyEvent> {
      for (;;) {
        const i = seen.slice(read).findIndex(pred);
        if (i >= 0) {
          read += i + 1;
          return seen[read - 1];
        }
        await fill();
      }
    },
    async end(): Promise<Deno.CommandStatus> {
      await writer.close();
      for (;;) {
        try {
          await fill();
        } catch {
          break;
        }
      }
      await child.stderr.cancel();
      return await child.status;
    },
  };
}

Deno.test("--mode rpc: prompts, commands, a question answered, abort, bad lines, end", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "harvey_rpc_" });
  const fake = await startFakeOpenAI({
    respond: (messages) => {
      const last = messages.at(-1)!;
      if (last.role === "user" && last.content === "write it") {
        return {
          text: "",
          toolCalls: [{ name: "write_file", arguments: { path: "out.txt", content: "hi\n" } }],
        };
      }
      if (last.role === "tool") return { text: "Written." };
      return { text: `echo ${last.content}` };
    },
  });
  const h = rpcHarvey(fake, root);
  try {
    await t.step("the session event comes first", async () => {
      const e = await h.next(() => true);
      assert.ok(
        e.type === "session" && e.resumed === false && e.backend === "llamafile:fake-model",
      );
    });
    await t.step("a prompt streams its text and ends with its result", async () => {
      await h.send({ type: "prompt", text: "hello", id: "p1" });
      const text = await h.next((e) => e.type === "text");
      assert.ok(text.type === "text");
      assert.ok((await h.next((e) => e.type === "stats")).type === "stats");
      assert.deepEqual(await h.next((e) => e.type === "result"), {
        type: "result",
        id: "p1",
        ok: true,
      });
    });
    await t.step("a command's output, and a failing command's result", async () => {
      await h.send({ type: "command", line: "/session list", id: 2 });
      const out = await h.next((e) => e.type === "output");
      assert.ok(out.type === "output" && /Sessions, the latest first/.test(out.text));
      assert.deepEqual(await h.next((e) => e.type === "result"), {
        type: "result",
        id: 2,
        ok: true,
      });
      await h.send({ type: "command", line: "/frob", id: 3 });
      const failed = await h.next((e) => e.type === "result");
      assert.ok(
        failed.type === "result" && failed.ok === false &&
          /Unknown command \/frob/.test(failed.error!),
      );
    });
    await t.step("an approval is a question event; the answer command answers it", async () => {
      await h.send({ type: "prompt", text: "write it", id: 4 });
      const q = await h.next((e) => e.type === "question");
      assert.ok(
        q.type === "question" && q.kind === "input" && /Apply this change\?/.test(q.question),
      );
      await h.send({ type: "answer", id: q.id, value: 7 });
      const bad = await h.next((e) => e.type === "error");
      assert.ok(bad.type === "error" && /expects text as its "value", found 7/.test(bad.message));
      await h.send({ type: "answer", id: q.id, value: "y" });
      const result = await h.next((e) => e.type === "tool_result");
      assert.ok(result.type === "tool_result" && result.name === "write_file" && !result.error);
      assert.deepEqual(await h.next((e) => e.type === "result"), {
        type: "result",
        id: 4,
        ok: true,
      });
      assert.equal(await Deno.readTextFile(join(root, "out.txt")), "hi\n");
    });
    await t.step("abort stops the turn in progress", async () => {
      fake.script({ text: "a b c d e f g h i j k l m n o p", tokenDelayMs: 200 });
      await h.send({ type: "prompt", text: "slow", id: 5 });
      await h.next((e) => e.type === "text");
      await h.send({ type: "abort" });
      const note = await h.next((e) => e.type === "notice");
      assert.ok(note.type === "notice" && /Interrupted/.test(note.text));
      assert.deepEqual(await h.next((e) => e.type === "result"), {
        type: "result",
        id: 5,
        ok: true,
      });
    });
    await t.step("a line that is not a command is an error event; the rest go on", async () => {
      await h.sendRaw("not json");
      const e = await h.next((e) => e.type === "error");
      assert.ok(e.type === "error" && /stdin line \d+: expected a JSON command/.test(e.message));
      await h.send({ type: "frob" });
      const f = await h.next((e) => e.type === "error");
      assert.ok(f.type === "error" && /unknown command type "frob"/.test(f.message));
    });
    await t.step("the input ends: end, status 0", async () => {
      const status = await h.end();
      assert.equal(status.code, 0);
      assert.deepEqual(h.seen.at(-1), { type: "end", status: 0 });
    });
  } finally {
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});

/** A terminal for the picker: keys typed by the test, the screen read back. */
class KeysTerminal implements TerminalIO {
  readonly vt = new VirtualTerminal(100, 30);
  #chunks: Uint8Array[] = [];
  #wake?: () => void;
  read(buf: Uint8Array): Promise<number | null> {
    const take = () => {
      const chunk = this.#chunks.shift()!;
      buf.set(chunk);
      return chunk.length;
    };
    if (this.#chunks.length) return Promise.resolve(take());
    return new Promise((resolve) => this.#wake = () => resolve(take()));
  }
  write(text: string): void {
    this.vt.write(text);
  }
  setRaw(): void {}
  size() {
    return { columns: 100, rows: 30 };
  }
  type(text: string): void {
    this.#chunks.push(new TextEncoder().encode(text));
    this.#wake?.();
    this.#wake = undefined;
  }
}

Deno.test("--resume without an ID at a terminal: the picker chooses the session", async () => {
  const root = await Deno.makeTempDir({ prefix: "harvey_picker_" });
  const fake = await startFakeOpenAI({ reply: (m) => `echo ${m.at(-1)?.content}` });
  try {
    for (const p of ["older one", "newer one"]) {
      assert.equal((await runHarvey(args(fake, "-p", p), { cwd: root, env: OFFLINE })).code, 0);
    }
    const tty = new KeysTerminal();
    const terminal = new Terminal(tty);
    terminal.open();
    const screen = { write: (t: string) => tty.write(t) };
    const agent = await createSession({
      flags: { workdir: root, llamafileUrl: fake.url, ollama: "http://127.0.0.1:9", color: false },
      env: { PATH: Deno.env.get("PATH") ?? "", HOME: root },
      cwd: root,
      asker: new TerminalAsker(terminal),
      err: screen,
      trust: "all",
    });
    try {
      await selectBackend(agent, screen, { interactive: true, urlGiven: true });
      const picked = openStartupSession(agent, screen, { resume: true, interactive: true });
      await until(
        "the picker",
        () => Promise.resolve(/Resume which session\?/.test(tty.vt.text()) ? true : undefined),
      );
      assert.match(tty.vt.text(), /newer one[\s\S]*older one/);
      tty.type("\x1b[B\r"); // down to the older one, Enter
      assert.equal(await picked, true);
      assert.deepEqual(agent.history.slice(1).map((m) => m.content), [
        "older one",
        "echo older one",
      ]);
      assert.ok(currentLog(agent)?.saved);
    } finally {
      terminal.close();
      await agent.shutdown();
    }
  } finally {
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});
