import assert from "node:assert/strict";
import { join } from "node:path";
import type { Agent } from "../src/agent.ts";
import { TerminalAsker } from "../src/repl/asker.ts";
import { runInteractive } from "../src/repl/interactive.ts";
import { KeyDecoder } from "../src/repl/keys.ts";
import { History } from "../src/repl/line_editor.ts";
import { Terminal, type TerminalIO } from "../src/repl/terminal.ts";
import { selectBackend } from "../src/repl/startup.ts";
import { createSession } from "../src/session.ts";
import { findFreePort } from "../src/runtime/probe.ts";
import { processAlive, readRecords } from "../src/runtime/pid_file.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { makeFakeLlamafile } from "./fixtures/make_fake_llamafile.ts";
import { VirtualTerminal } from "./vt.ts";
import { harveyTask, MAIN } from "./harvey_child.ts";
import { trustWorkspace } from "./trust_helpers.ts";
import { childEnv } from "./helpers.ts";

const PASTE = (text: string) => `\x1b[200~${text}\x1b[201~`;
const ENTER = "\r";
const CTRL_C = "\x03";
const CTRL_D = "\x04";
const ESC = "\x1b";

/** A terminal that a test types into and reads back as a person would see it. */
class ScriptedTerminal implements TerminalIO {
  readonly vt = new VirtualTerminal(100, 30);
  #chunks: (Uint8Array | null)[] = [];
  #wake?: () => void;
  reads = 0;

  read(buf: Uint8Array): Promise<number | null> {
    this.reads++;
    const take = (): number | null => {
      const chunk = this.#chunks.shift()!;
      if (chunk === null) return null;
      buf.set(chunk.subarray(0, buf.length));
      if (chunk.length > buf.length) this.#chunks.unshift(chunk.subarray(buf.length));
      return Math.min(chunk.length, buf.length);
    };
    if (this.#chunks.length) return Promise.resolve(take());
    return new Promise((resolve) => this.#wake = () => resolve(take()));
  }

  /** Set when the window is closed: writing fails, as on a terminal that is gone. */
  gone = false;

  write(text: string): void {
    if (this.gone) throw new Deno.errors.BrokenPipe("Input/output error (os error 5)");
    this.vt.write(text);
  }

  setRaw(): void {}

  size(): { columns: number; rows: number } {
    return { columns: this.vt.columns, rows: this.vt.rows };
  }

  /** Types `text` as one chunk (a paste, a key, or keys typed fast). */
  type(text: string): void {
    this.#chunks.push(new TextEncoder().encode(text));
    this.#wake?.();
    this.#wake = undefined;
  }

  /** Closes the input. */
  end(): void {
    this.#chunks.push(null);
    this.#wake?.();
    this.#wake = undefined;
  }

  /** Waits until the screen matches `pattern`. */
  async waitFor(pattern: RegExp, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pattern.test(this.vt.text())) {
      if (Date.now() > deadline) {
        assert.fail(`The screen never matched ${pattern}:\n${this.vt.text()}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

interface Repl {
  tty: ScriptedTerminal;
  agent: Agent;
  root: string;
  /** Settles when the REPL ends (Ctrl-D, /exit, end of input). */
  done: Promise<void>;
  close(): Promise<void>;
}

/** Harvey's interactive REPL on a scripted terminal, in a temporary workspace. */
async function repl(
  opts: {
    files?: Record<string, string>;
    url?: string;
    models?: (dir: string) => Promise<void>;
    env?: Record<string, string>;
  } = {},
): Promise<Repl> {
  const root = await Deno.makeTempDir({ prefix: "harvey-term-" });
  for (const [path, text] of Object.entries(opts.files ?? {})) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, path), text);
  }
  await Deno.mkdir(join(root, "Models"));
  await opts.models?.(join(root, "Models"));
  const tty = new ScriptedTerminal();
  const terminal = new Terminal(tty);
  terminal.open();
  const screen = { write: (t: string) => tty.write(t) };
  // Nothing else on this machine (a server on the default port 8080) is ever picked up.
  const url = opts.url ?? `http://127.0.0.1:${findFreePort()}`;
  // The test wrote harvey.yaml by hand: trusted, as after a yes in a terminal.
  const env = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: root,
    XDG_CONFIG_HOME: `${root}.config`,
    ...opts.env,
  };
  await trustWorkspace(root, env);
  const agent = await createSession({
    flags: { workdir: root, color: false, llamafileUrl: url, ollama: "http://127.0.0.1:9" },
    env,
    cwd: root,
    asker: new TerminalAsker(terminal),
    err: screen,
  });
  // Start-up runs as in cli.ts: its questions on the terminal, Ctrl-C cancels a start.
  const ctl = new AbortController();
  const done = terminal.whileBusy(
    () => ctl.abort(),
    () =>
      selectBackend(agent, screen, {
        interactive: true,
        urlGiven: opts.url !== undefined,
        signal: ctl.signal,
      }),
  ).then(() =>
    runInteractive(agent, terminal, {
      out: screen,
      err: screen,
      spinner: true,
      color: false,
      history: new History(),
    })
  );
  return {
    tty,
    agent,
    root,
    done,
    async close() {
      tty.end();
      await done;
      terminal.close();
      await agent.shutdown();
      await Deno.remove(root, { recursive: true });
      await Deno.remove(`${root}.config`, { recursive: true }).catch(() => {});
    },
  };
}

function userPrompts(fake: Awaited<ReturnType<typeof startFakeOpenAI>>): string[] {
  return fake.requests.filter((r) => r.path === "/v1/chat/completions").map((r) => {
    const messages = (r.body as { messages: { role: string; content: string }[] }).messages;
    return messages.at(-1)!.content;
  });
}

Deno.test("keys: a paste is one key with its newlines, split chunks are put back together", () => {
  const d = new KeyDecoder();
  const keys = [
    ...d.push(new TextEncoder().encode("a\x1b[200~one\r\ntwo\rthr")),
    ...d.push(new TextEncoder().encode("ee\x1b[20")),
    ...d.push(new TextEncoder().encode("1~\r\x1b[A\x1b\x7f\x03\x1b")),
  ];
  assert.deepEqual(keys, [
    { kind: "text", text: "a" },
    { kind: "paste", text: "one\ntwo\nthree" },
    { kind: "key", name: "enter" },
    { kind: "key", name: "up" },
    { kind: "key", name: "backspace", meta: true },
    { kind: "key", name: "c", ctrl: true },
    { kind: "key", name: "escape" },
  ]);
  const bytes = new TextEncoder().encode("é");
  assert.deepEqual([...d.push(bytes.subarray(0, 1)), ...d.push(bytes.subarray(1))], [
    { kind: "text", text: "é" },
  ]);
});

Deno.test("a multi-line paste is one prompt with its newlines", async () => {
  const fake = await startFakeOpenAI({ reply: () => "got it" });
  const r = await repl({ url: fake.url });
  try {
    await r.tty.waitFor(/harvey> $/);
    r.tty.type(PASTE("line one\nline two\r\nline three"));
    await r.tty.waitFor(/harvey> line one\n… line two\n… line three$/);
    assert.deepEqual(userPrompts(fake), [], "a paste is not sent before Enter");
    r.tty.type(ENTER);
    await r.tty.waitFor(/got it\n.*tokens.*\nharvey> $/);
    assert.deepEqual(userPrompts(fake), ["line one\nline two\nline three"]);
    // Ctrl-J and Alt-Enter add a line too.
    r.tty.type("a\nb\x1b\rc" + ENTER);
    await r.tty.waitFor(/harvey> a\n… b\n… c\ngot it/);
    assert.deepEqual(userPrompts(fake).at(-1), "a\nb\nc");
  } finally {
    await r.close();
    await fake.close();
  }
});

Deno.test("type-ahead while a reply streams is not drawn, runs after it, and keeps its cursor", async () => {
  const fake = await startFakeOpenAI({ reply: (m) => `echo ${m.at(-1)?.content}` });
  fake.script({ firstTokenDelayMs: 300, tokenDelayMs: 60 });
  const r = await repl({ url: fake.url });
  try {
    await r.tty.waitFor(/harvey> $/);
    r.tty.type("first" + ENTER);
    await r.tty.waitFor(/harvey> first\n/);
    r.tty.type("second" + ENTER);
    r.tty.type(PASTE("pasted\nmeanwhile") + ENTER);
    r.tty.type("partial lin");
    // While the first reply streams, nothing typed is on the screen.
    assert.doesNotMatch(r.tty.vt.text(), /second|pasted|partial/);
    await r.tty.waitFor(/harvey> partial lin$/);
    assert.deepEqual(userPrompts(fake), ["first", "second", "pasted\nmeanwhile"]);
    const text = r.tty.vt.text();
    assert.ok(text.indexOf("echo first") < text.indexOf("harvey> second"), text);
    assert.equal(r.tty.vt.col, "harvey> partial lin".length, "the cursor is after the text");
    r.tty.type("e" + ENTER);
    await r.tty.waitFor(/echo partial line/);
  } finally {
    await r.close();
    await fake.close();
  }
});

Deno.test("Ctrl-C and Escape at a question cancel it and its action; Enter then takes nothing", async () => {
  const fake = await startFakeOpenAI();
  const r = await repl({ url: fake.url });
  try {
    await r.tty.waitFor(/harvey> $/);
    const proposal = "```txt notes.txt\nhello\n```\n";
    r.agent.addMessage("assistant", proposal);
    r.tty.type("/apply" + ENTER);
    await r.tty.waitFor(/Apply this change\? \[Y\/n\] $/);
    r.tty.type(CTRL_C);
    await r.tty.waitFor(/Apply this change\? \[Y\/n\] \^C\n✗ Cancelled\nharvey> $/);
    r.tty.type(ENTER);
    await r.tty.waitFor(/✗ Cancelled\nharvey>\nharvey> $/);
    await assert.rejects(() => Deno.stat(join(r.root, "notes.txt")), Deno.errors.NotFound);

    r.agent.addMessage("assistant", proposal);
    r.tty.type("/apply" + ENTER);
    await r.tty.waitFor(/Apply this change\? \[Y\/n\] $/);
    r.tty.type(ESC);
    await r.tty.waitFor(/Apply this change\? \[Y\/n\]\n✗ Cancelled\nharvey> $/);
    await assert.rejects(() => Deno.stat(join(r.root, "notes.txt")), Deno.errors.NotFound);

    // Answered: the default (Enter) applies.
    r.agent.addMessage("assistant", proposal);
    r.tty.type("/apply" + ENTER);
    await r.tty.waitFor(/Apply this change\? \[Y\/n\] $/);
    r.tty.type(ENTER);
    await r.tty.waitFor(/harvey> $/);
    assert.equal(await Deno.readTextFile(join(r.root, "notes.txt")), "hello\n");
  } finally {
    await r.close();
    await fake.close();
  }
});

Deno.test("Ctrl-D at a question cancels the question, not the session", async () => {
  const r = await repl({
    models: async (dir) => void await makeFakeLlamafile(dir, "alpha"),
    files: {
      "agents/harvey.yaml":
        "llamafile:\n  models:\n    - name: beta\n      path: Models/beta.llamafile\n",
    },
  });
  try {
    await r.tty.waitFor(/harvey> $/);
    r.tty.type("/llamafile add" + ENTER);
    await r.tty.waitFor(/Select \[1-1\] or enter a path: /);
    r.tty.type(ENTER);
    await r.tty.waitFor(/Name \[alpha\]: $/);
    r.tty.type(CTRL_D);
    await r.tty.waitFor(/Name \[alpha\]:\n✗ Cancelled\nharvey> $/);
    r.tty.type("/llamafile list" + ENTER);
    await r.tty.waitFor(/Registered llamafile models:\n  beta /);
    assert.doesNotMatch(r.tty.vt.text(), /alpha  /, "nothing was registered");
  } finally {
    await r.close();
  }
});

Deno.test("the picker: Escape erases it and cancels; a typed number or path is taken", async (t) => {
  const r = await repl({
    models: async (dir) => {
      await makeFakeLlamafile(dir, "alpha");
      await makeFakeLlamafile(dir, "beta");
    },
  });
  try {
    await r.tty.waitFor(/harvey> $/);
    await t.step("Escape", async () => {
      r.tty.type("/llamafile add" + ENTER);
      await r.tty.waitFor(/↑\/↓ move · Enter picks · Esc cancels/);
      assert.match(
        r.tty.vt.text(),
        /Llamafiles found in ~\/Models:\n❯ 1\. alpha\.llamafile \(\d+ B\)\n  2\. beta\.llamafile \(\d+ B\)\nSelect \[1-2\] or enter a path: \n/,
      );
      r.tty.type("\x1b[B");
      await r.tty.waitFor(/❯ 2\. beta/);
      r.tty.type(ESC);
      await r.tty.waitFor(/harvey> \/llamafile add\n✗ Cancelled\nharvey> $/);
      assert.doesNotMatch(
        r.tty.vt.text(),
        /Llamafiles found|Select \[1-2\]/,
        "the picker is erased",
      );
      assert.equal(r.agent.config.config.llamafile.models.length, 0);
    });
    await t.step("a typed path", async () => {
      await Deno.mkdir(join(r.root, "elsewhere"));
      await makeFakeLlamafile(join(r.root, "elsewhere"), "gamma");
      r.tty.type("/llamafile add" + ENTER);
      await r.tty.waitFor(/Select \[1-2\] or enter a path: $/m);
      r.tty.type("elsewhere/gamma.llamafile" + ENTER);
      await r.tty.waitFor(/Llamafiles found in ~\/Models: elsewhere\/gamma\.llamafile\n/);
      await r.tty.waitFor(/✓ Using model: gamma\n/);
      assert.deepEqual(r.agent.config.config.llamafile.models.map((m) => m.name), ["gamma"]);
    });
    await t.step("a typed number moves the highlight and is taken", async () => {
      r.tty.type("/llamafile add" + ENTER);
      await r.tty.waitFor(/Select \[1-2\] or enter a path: $/m);
      r.tty.type("2");
      await r.tty.waitFor(/❯ 2\. beta/);
      r.tty.type(ENTER);
      await r.tty.waitFor(/Name \[beta\]: $/);
      r.tty.type(ENTER);
      await r.tty.waitFor(/Registered beta — use \/llamafile use beta to switch\./);
    });
  } finally {
    await r.close();
  }
});

Deno.test("Ctrl-C clears the line; tab completes; Ctrl-D on an empty line leaves", async () => {
  const r = await repl({ files: { "docs/guide.md": "x", "docs/notes.md": "y" } });
  try {
    await r.tty.waitFor(/harvey> $/);
    r.tty.type("half a thought" + CTRL_C);
    await r.tty.waitFor(/harvey> half a thought\^C\nharvey> $/);
    r.tty.type("/rea\t");
    await r.tty.waitFor(/harvey> \/read $/);
    r.tty.type("do\t");
    await r.tty.waitFor(/harvey> \/read docs\/$/);
    r.tty.type("g\t");
    await r.tty.waitFor(/harvey> \/read docs\/guide\.md $/);
    // Ctrl-U empties the line; the line runs as edited.
    r.tty.type("\x15/help recrd\x1b[D\x1b[Do" + ENTER);
    await r.tty.waitFor(/harvey> \/help record\n.*\n  \/record start \[FILE\]/);
    r.tty.type(CTRL_D);
    await r.done;
  } finally {
    await r.close();
  }
});

Deno.test("Ctrl-X Ctrl-E and /edit open $EDITOR on the line; what is saved comes back", async () => {
  const fake = await startFakeOpenAI({ reply: () => "ok" });
  const bin = await Deno.makeTempDir({ prefix: "harvey-editor-" });
  const editor = join(bin, "editor");
  await Deno.writeTextFile(editor, `#!/bin/sh\nprintf 'edited\\nin an editor\\n' >> "$1"\n`);
  await Deno.chmod(editor, 0o755);
  const failing = join(bin, "failing");
  await Deno.writeTextFile(failing, "#!/bin/sh\nexit 3\n");
  await Deno.chmod(failing, 0o755);
  const r = await repl({ url: fake.url, env: { EDITOR: editor } });
  try {
    await r.tty.waitFor(/harvey> $/);
    r.tty.type("draft\x18\x05");
    await r.tty.waitFor(/harvey> draft\n… edited\n… in an editor$/);
    assert.deepEqual(userPrompts(fake), [], "the edited line waits for Enter");
    r.tty.type(ENTER);
    await r.tty.waitFor(/ok\n.*tokens/);
    assert.deepEqual(userPrompts(fake), ["draft\nedited\nin an editor"]);

    r.tty.type("/edit long prompt" + ENTER);
    await r.tty.waitFor(/harvey> long prompt\n… edited\n… in an editor$/);
    r.tty.type(ENTER);
    await r.tty.waitFor(/ok\n.*tokens.*\n(.*\n)*.*ok\n.*tokens/);
    assert.equal(userPrompts(fake).at(-1), "long prompt\nedited\nin an editor");
  } finally {
    await r.close();
  }
  const f = await repl({ url: fake.url, env: { EDITOR: failing } });
  try {
    await f.tty.waitFor(/harvey> $/);
    f.tty.type("keep me\x18\x05");
    await f.tty.waitFor(/exited with status 3; the line is unchanged\nharvey> keep me$/);
  } finally {
    await f.close();
    await fake.close();
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("start-up at a terminal: declining the saved model hints /llamafile start; Ctrl-C cancels its start", async (t) => {
  const yaml = (port: number) =>
    `llamafile:\n  url: http://127.0.0.1:${port}\n  active: slow\n  models:\n` +
    "    - name: slow\n      path: Models/slow.llamafile\n";
  const models = (dir: string) =>
    makeFakeLlamafile(dir, "slow", { neverReady: true }).then(() => {});
  await t.step("declined", async () => {
    const r = await repl({ files: { "agents/harvey.yaml": yaml(findFreePort()) }, models });
    try {
      await r.tty.waitFor(/Start slow now\? \[Y\/n\] $/);
      r.tty.type("n" + ENTER);
      await r.tty.waitFor(
        /No backend selected — \/llamafile start starts slow, \/model lists the others\.\nharvey> $/,
      );
      assert.equal(r.agent.supervisor.spawnCount, 0);
    } finally {
      await r.close();
    }
  });
  await t.step("Ctrl-C while it starts", async () => {
    const r = await repl({ files: { "agents/harvey.yaml": yaml(findFreePort()) }, models });
    try {
      await r.tty.waitFor(/Start slow now\? \[Y\/n\] $/);
      r.tty.type(ENTER);
      await r.tty.waitFor(/Starting llamafile… \[\d+s\]/);
      const deadline = Date.now() + 15_000;
      let pid: number | undefined;
      while ((pid = r.agent.supervisor.servers[0]?.pid) === undefined) {
        assert.ok(Date.now() < deadline, "the server never started");
        await new Promise((res) => setTimeout(res, 10));
      }
      assert.ok(processAlive(pid), "the server is starting");
      r.tty.type(CTRL_C);
      await r.tty.waitFor(/✗ Cancelled: slow was not started \(its server is stopped\)\n/);
      await r.tty.waitFor(/\/llamafile start starts slow.*\nharvey> $/);
      assert.deepEqual(r.agent.supervisor.servers, []);
      assert.equal(processAlive(pid), false, "its process was stopped");
    } finally {
      await r.close();
    }
  });
});

Deno.test("no backend at a terminal: the guidance names the real models folder", async () => {
  const r = await repl({ env: { HARVEY_LLAMAFILE_DIR: "/srv/models" } });
  try {
    await r.tty.waitFor(
      /Download it to \/srv\/models, then run \/llamafile add to connect\.\nharvey> $/,
    );
  } finally {
    await r.close();
  }
});

Deno.test("a terminal that goes away ends the session cleanly, not with an error", async () => {
  const r = await repl();
  try {
    await r.tty.waitFor(/harvey> $/);
    r.tty.gone = true;
    r.tty.type("x");
    await r.done; // the REPL ends as at the end of input
  } finally {
    r.tty.gone = false;
    await r.close();
  }
});

const TMUX = Deno.build.os !== "windows" &&
  (await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).output()
    .then((o) => o.success, () => false));

/** Harvey in a tmux pane, started with exactly the flags of `deno task harvey`. */
class TmuxHarvey {
  readonly socket = `harvey-test-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;

  async tmux(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-L", this.socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    if (!out.success) throw new Error(`tmux ${args[0]}: ${dec.decode(out.stderr)}`);
    return dec.decode(out.stdout);
  }

  async start(args: string[], opts: { cwd: string; env: Record<string, string> }): Promise<void> {
    const { env, flags } = harveyTask();
    const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const vars = { ...env, ...childEnv({ NO_COLOR: "1", ...opts.env }) };
    const command = [
      "env",
      ...Object.entries(vars).map(([k, v]) => q(`${k}=${v}`)),
      q(Deno.execPath()),
      "run",
      ...flags.map(q),
      q(MAIN),
      ...args.map(q),
    ].join(" ");
    await this.tmux("new-session", "-d", "-x", "100", "-y", "30", "-c", opts.cwd, command);
  }

  async screen(): Promise<string> {
    return await this.tmux("capture-pane", "-p", "-J", "-S", "-200");
  }

  async waitFor(pattern: RegExp, ms = 30_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const text = await this.screen().catch(() => "");
      if (pattern.test(text)) return text;
      if (Date.now() > deadline) assert.fail(`tmux never showed ${pattern}:\n${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  keys(...keys: string[]): Promise<string> {
    return this.tmux("send-keys", ...keys);
  }

  /** Pastes `text` as a terminal does, with bracketed paste when the program asked for it. */
  async paste(text: string): Promise<void> {
    const file = await Deno.makeTempFile();
    await Deno.writeTextFile(file, text);
    await this.tmux("load-buffer", file);
    await this.tmux("paste-buffer", "-p", "-d");
    await Deno.remove(file);
  }

  async kill(): Promise<void> {
    await this.tmux("kill-server").catch(() => "");
  }
}

Deno.test({
  name: "in tmux, as `deno task harvey` runs: a paste, Ctrl-C at a question, Escape at the picker",
  ignore: !TMUX,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "harvey-tmux-" });
    const fake = await startFakeOpenAI({
      reply: (m) =>
        m.at(-1)?.content.includes("\n") ? "```txt notes.txt\nhello\n```" : "plain reply",
    });
    const tmux = new TmuxHarvey();
    try {
      await Deno.mkdir(join(dir, "Models"));
      await makeFakeLlamafile(join(dir, "Models"), "alpha");
      await makeFakeLlamafile(join(dir, "Models"), "beta");
      await tmux.start(["--llamafile-url", fake.url], {
        cwd: dir,
        env: { HOME: dir, OLLAMA_HOST: "127.0.0.1:9" },
      });
      await tmux.waitFor(/✓ Using model: fake-model \(llamafile\)\nharvey> $/m);

      await tmux.paste("first line\nsecond line\nthird line");
      await tmux.waitFor(/harvey> first line\n… second line\n… third line/);
      assert.deepEqual(userPrompts(fake), [], "nothing is sent before Enter");
      await tmux.keys("Enter");
      await tmux.waitFor(/```txt notes\.txt\nhello\n```\n.*tokens/);
      assert.deepEqual(userPrompts(fake), ["first line\nsecond line\nthird line"]);

      await tmux.keys("/apply", "Enter");
      await tmux.waitFor(/Apply this change\? \[Y\/n\] $/m);
      await tmux.keys("C-c");
      await tmux.waitFor(/Apply this change\? \[Y\/n\] \^C\n✗ Cancelled\nharvey> $/m);
      await tmux.keys("Enter");
      await tmux.waitFor(/✗ Cancelled\nharvey>\s*\nharvey> $/m);
      await assert.rejects(() => Deno.stat(join(dir, "notes.txt")), Deno.errors.NotFound);

      await tmux.keys("/llamafile add", "Enter");
      await tmux.waitFor(/Select \[1-2\] or enter a path: $/m);
      await tmux.keys("Down");
      await tmux.waitFor(/❯ 2\. beta\.llamafile/);
      await tmux.keys("Escape");
      const after = await tmux.waitFor(/harvey> \/llamafile add\n✗ Cancelled\nharvey> $/m);
      assert.doesNotMatch(after, /Llamafiles found|Select \[1-2\]|beta\.llamafile/);

      // The first Tab after a command's name loads its handler: the line stays as typed (Deno
      // clears its own progress line on a lazy import unless --quiet, erasing the prompt).
      await tmux.keys("/session ", "Tab");
      await new Promise((r) => setTimeout(r, 1000));
      await tmux.waitFor(/harvey> \/session $/m);
      await tmux.keys("Tab");
      await tmux.waitFor(/list\s+show\s+resume.*\nharvey> \/session $/m);
      await tmux.keys("C-c");

      // Ctrl-D on an empty line ends Harvey, and with it the pane and the tmux server.
      await tmux.keys("C-d");
      const deadline = Date.now() + 20_000;
      while (await tmux.tmux("has-session").then(() => true, () => false)) {
        assert.ok(Date.now() < deadline, "Harvey did not end on Ctrl-D");
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await tmux.kill();
      await fake.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "in tmux: closing the window stops the llamafile Harvey started and removes its pid file",
  ignore: !TMUX,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "harvey-tmux-" });
    const tmux = new TmuxHarvey();
    try {
      await Deno.mkdir(join(dir, "agents"));
      await Deno.mkdir(join(dir, "Models"));
      const tiny = await makeFakeLlamafile(join(dir, "Models"), "tiny");
      await Deno.writeTextFile(
        join(dir, "agents", "harvey.yaml"),
        `llamafile:\n  url: http://127.0.0.1:${findFreePort()}\n  models:\n` +
          `    - name: tiny\n      path: ${tiny}\n`,
      );
      const env = { HOME: dir, XDG_CONFIG_HOME: `${dir}.config`, OLLAMA_HOST: "127.0.0.1:9" };
      await trustWorkspace(dir, env);
      await tmux.start(["-m", "tiny"], { cwd: dir, env });
      await tmux.waitFor(/✓ Using model: tiny\nharvey> $/m);
      const [record] = await readRecords(join(dir, "agents"));
      assert.ok(record?.record, "a pid file while it runs");
      await tmux.kill();
      const deadline = Date.now() + 20_000;
      while ((await readRecords(join(dir, "agents"))).length) {
        assert.ok(Date.now() < deadline, "the pid file outlived the window");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(processAlive(record.record!.pid), false);
    } finally {
      await tmux.kill();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(`${dir}.config`, { recursive: true }).catch(() => {});
    }
  },
});
