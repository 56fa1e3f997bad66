import assert from "node:assert/strict";
import { join } from "node:path";
import { startFakeHf } from "./fixtures/fake_hf.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { LineAsker } from "../src/repl/asker.ts";
import { CancelledError } from "../src/errors.ts";
import { findFreePort } from "../src/runtime/probe.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { linesFromText } from "../src/repl/headless.ts";
import { testSession } from "./helpers.ts";
import { harveyTask, runHarvey, spawnHarvey } from "./harvey_child.ts";
import { quickFlags } from "../src/cli_options.ts";
import { VERSION } from "../src/cli.ts";

/** Harvey with the flags of `deno task harvey`, no Ollama reachable. */
function harvey(args: string[], opts: { cwd: string; stdin?: string; flags?: string[] }) {
  return runHarvey(args, { ...opts, env: { OLLAMA_HOST: "127.0.0.1:9" } });
}

Deno.test("command line: version, usage errors and exit statuses", async (t) => {
  const dir = await Deno.makeTempDir();
  const fake = await startFakeOpenAI({ reply: (m) => `echo: ${m.at(-1)?.content}` });
  try {
    await t.step("--version", async () => {
      const r = await harvey(["--version"], { cwd: dir });
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    });
    await t.step("a usage error is one line in Harvey's words and a usage line (2)", async () => {
      const r = await harvey(["--frob"], { cwd: dir });
      assert.equal(r.code, 2);
      assert.equal(
        r.stderr,
        "✗ Unknown option --frob\n" +
          "Usage: harvey [-w DIR] [-m NAME] [--run FILE | -p PROMPT] [flags] · harvey pull REPO FILE · harvey doctor (harvey --help tells more)\n",
      );
      const typo = await harvey(["--yess"], { cwd: dir });
      assert.match(typo.stderr, /^✗ Unknown option --yess — Did you mean --yes\?\n/);
      const pull = await harvey(["pull"], { cwd: dir });
      assert.equal(pull.code, 2);
      assert.equal(
        pull.stderr,
        "✗ harvey pull needs REPO and FILE\n" +
          "Usage: harvey pull REPO FILE [--revision REV] [--dir DIR] [--sha256 HEX] [--name NAME] (harvey pull --help tells more)\n",
      );
      const value = await harvey(["-m"], { cwd: dir });
      assert.match(value.stderr, /^✗ -m\/--model needs a value \(NAME\)\nUsage: harvey /);
      const extra = await harvey(["frob"], { cwd: dir });
      assert.match(
        extra.stderr,
        /^✗ Unknown command frob: expected pull or doctor, or only flags\n/,
      );
    });
    await t.step("a missing script is a usage error (2)", async () => {
      const r = await harvey(["--run", "nope.txt"], { cwd: dir });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /Script nope\.txt not found/);
      const dirRun = await harvey(["--run", "."], { cwd: dir });
      assert.equal(dirRun.code, 2);
      assert.match(dirRun.stderr, /Script \. is a folder; --run takes a file of lines/);
    });
    await t.step("a script runs every line; replies on stdout, diagnostics on stderr", async () => {
      await Deno.writeTextFile(join(dir, "ok.txt"), "# comment\n\nhello\n/clear\nworld\n");
      const r = await harvey(["--llamafile-url", fake.url, "--run", "ok.txt"], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "echo: hello\nHistory cleared.\necho: world\n");
      assert.match(r.stderr, /✓ Using model: fake-model/);
    });
    await t.step(
      "the first failing line stops the script with 1; later lines do not run",
      async () => {
        await Deno.writeTextFile(join(dir, "fail.txt"), "hello\n/record stop\nnever sent\n");
        const before = fake.requests.length;
        const r = await harvey(["--llamafile-url", fake.url, "--run", "fail.txt"], { cwd: dir });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /✗ line 2: Not recording/);
        assert.doesNotMatch(r.stdout, /never sent/);
        const chats = fake.requests.slice(before).filter((q) => q.path === "/v1/chat/completions");
        assert.equal(chats.length, 1);
      },
    );
    await t.step("an unknown command in a script is a usage error (2)", async () => {
      const r = await harvey(["--llamafile-url", fake.url, "--run", "-"], {
        cwd: dir,
        stdin: "/help\n/frobnicate\n/status\n",
      });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /Unknown command \/frobnicate/);
      assert.doesNotMatch(r.stdout, /Backend:/);
    });
    await t.step("stdin that is not a terminal is a script", async () => {
      const r = await harvey(["--llamafile-url", fake.url], { cwd: dir, stdin: "piped prompt\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "echo: piped prompt\n");
    });
    await t.step("-p prints one reply and exits", async () => {
      const r = await harvey(["--llamafile-url", fake.url, "-p", "just this"], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "echo: just this\n");
    });
    await t.step("no backend: one line names why, and the prompt fails with it", async () => {
      const r = await harvey(["--llamafile-url", "http://127.0.0.1:9", "-p", "x"], { cwd: dir });
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        "✗ Nothing answers at http://127.0.0.1:9 (--llamafile-url): start the server there or check the URL\n" +
          "✗ No backend selected (nothing answers at http://127.0.0.1:9 (--llamafile-url)) — " +
          "connect one with /model, /ollama start or /llamafile add\n",
      );
      // A workspace whose llamafile URL is a dead port: no server on this machine is picked up.
      const empty = await Deno.makeTempDir({ dir });
      await Deno.mkdir(join(empty, "agents"));
      await Deno.writeTextFile(
        join(empty, "agents", "harvey.yaml"),
        `llamafile:\n  url: http://127.0.0.1:${findFreePort()}\n`,
      );
      const none = await harvey(["-p", "x"], { cwd: empty });
      assert.equal(none.code, 1);
      assert.match(
        none.stderr,
        /✗ No backend selected \(Ollama is not running at http:\/\/127\.0\.0\.1:9 and no model is registered\)/,
      );
      assert.doesNotMatch(none.stderr, /Download it to/, "the guidance is for a person");
    });
    await t.step("a refused permission names what was refused", async () => {
      const flags = harveyTask().flags.filter((p) => p !== "--allow-write").concat(
        `--allow-write=${join(dir, "agents")}`,
      );
      const r = await harvey(["--llamafile-url", fake.url, "--run", "-"], {
        cwd: dir,
        stdin: "/record start notes.md\n",
        flags,
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Permission refused: write access to .*notes\.md.*--allow-write/);
    });
  } finally {
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("harvey pull that fails leaves no folder of --dir behind", async () => {
  const dir = await Deno.makeTempDir();
  const hf = await startFakeHf({ files: [] });
  try {
    const r = await runHarvey(["pull", "owner/repo", "missing.gguf", "--dir", "models/deep/er"], {
      cwd: dir,
      env: { HF_ENDPOINT: hf.url },
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^✗ /);
    await assert.rejects(() => Deno.stat(join(dir, "models")), Deno.errors.NotFound);
  } finally {
    await hf.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("line asker: answers come from the next line; --yes confirms without reading", async () => {
  const out = new BufferOutput();
  const src = linesFromText("n\n\nmaybe\n2\n/some/path\n7\nmy-name\n");
  const read = (p: string) => {
    out.write(p);
    return src.next();
  };
  const asker = new LineAsker(read, out, { echo: true });
  assert.equal(await asker.confirm("Start Ollama now?"), false);
  assert.equal(await asker.confirm("Overwrite?"), true);
  await assert.rejects(() => asker.confirm("Sure?"), /Expected y or n, found "maybe"/);
  const choices = [{ label: "a", value: 1 }, { label: "b", value: 2 }];
  assert.deepEqual(await asker.pick("Pick", choices, { other: "enter a path" }), { value: 2 });
  assert.deepEqual(await asker.pick("Pick", choices, { other: "enter a path" }), {
    other: "/some/path",
  });
  await assert.rejects(
    () => asker.pick("Pick", choices),
    /Expected a number from 1 to 2, found "7"/,
  );
  assert.equal(await asker.input("Name", "default"), "my-name");
  const ended = await asker.input("Name", "default").catch((e) => e);
  assert.ok(ended instanceof CancelledError, "the input ending cancels, it is not a no");
  assert.equal(ended.message, 'No answer to "Name": the input ended');
  assert.match(out.text, /Start Ollama now\? \[Y\/n\] n\n/);
  assert.match(out.text, /  \[1\] a\n  \[2\] b\nSelect \[1-2\] or enter a path: 2\n/);
  const yes = new LineAsker(() => Promise.resolve(undefined), out, { yes: true });
  assert.equal(await yes.confirm("Apply 2 files?"), true);
  assert.match(out.text, /Apply 2 files\? \[Y\/n\] y \(--yes\)/);
});

Deno.test("a missing file is named plainly", async () => {
  const { describeError } = await import("../src/errors.ts");
  const err = await Deno.realPath("/nonexistent/harvey-x").catch((e) => e);
  assert.equal(describeError(err), "No such file or folder: /nonexistent/harvey-x");
  const s = await testSession();
  try {
    assert.equal(await s.run("/read nope.txt"), 1);
    assert.match(s.err.text, /✗ line 1: No such file or folder: .*\/nope\.txt\n$/);
  } finally {
    await s.close();
  }
});

Deno.test("plain global flags are read without commander, exactly as commander reads them", async () => {
  const { parseCommandLine } = await import("../src/cli_program.ts");
  const agree = async (args: string[]) => {
    const quick = quickFlags(args);
    if (quick === undefined) return false;
    assert.deepEqual(
      await parseCommandLine(args, VERSION),
      { action: "repl", flags: quick },
      args.join(" "),
    );
    return true;
  };
  // What people and scripts type: all of it goes without commander.
  for (
    const args of [
      [],
      ["--run", "-"],
      ["-w", "proj", "--gguf", "m.gguf"],
      ["--workdir=proj", "-y", "--no-color"],
      ["-p", "hello there", "--output", "json"],
      ["-c"],
      ["-r"],
      ["-r", "abc123", "-y"],
      ["--resume", "-y"],
      ["--mode", "rpc", "--llamafile-url", "http://127.0.0.1:8080"],
      ["-m", "a", "-m", "b"],
      ["--print="],
    ]
  ) assert.ok(await agree(args), `${args.join(" ")} is read without commander`);
  // The rest is commander's: subcommands, help, unknown, combined or missing values.
  for (
    const args of [
      ["pull", "a/b", "f.gguf"],
      ["doctor"],
      ["--help"],
      ["-h"],
      ["--version"],
      ["--frob"],
      ["-yc"],
      ["-wproj"],
      ["--run"],
      ["-w", "--yes"],
      ["--yes=1"],
      ["--", "-y"],
      ["--color"],
    ]
  ) assert.equal(quickFlags(args), undefined, args.join(" "));
  // And every mix of the pieces either goes to commander or reads the same.
  const pieces = [
    "-w",
    "dir",
    "--workdir=x",
    "--run",
    "-",
    "-y",
    "-c",
    "-r",
    "abc",
    "--resume",
    "--no-color",
    "-p",
    "hi there",
    "--print=",
    "--output",
    "json",
    "--mode",
    "rpc",
    "--gguf",
    "a.gguf",
    "-yc",
  ];
  let seed = 11;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let quick = 0;
  for (let n = 0; n < 400; n++) {
    const args = Array.from(
      { length: Math.floor(next() * 6) },
      () => pieces[Math.floor(next() * pieces.length)],
    );
    if (await agree(args)) quick++;
  }
  assert.ok(quick > 100, `${quick} of 400 mixes were plain flags`);
});

Deno.test("harvey -p into a pipe that closes early ends quietly, as a program killed by SIGPIPE", async () => {
  const dir = await Deno.makeTempDir();
  const long = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(" ");
  const fake = await startFakeOpenAI({ reply: () => long, tokenDelayMs: 1 });
  try {
    const child = spawnHarvey(["--llamafile-url", fake.url, "-p", "talk"], {
      cwd: dir,
      env: { OLLAMA_HOST: "127.0.0.1:9" },
    });
    await child.stdin.close();
    const reader = child.stdout.getReader();
    const first = await reader.read(); // the reply has begun
    assert.ok(first.value?.length);
    await reader.cancel(); // `| head -c N` has what it wanted
    const stderr = new TextDecoder().decode(
      await new Response(child.stderr).arrayBuffer().then((b) => new Uint8Array(b)),
    );
    const status = await child.status;
    assert.equal(status.code, 141, stderr);
    assert.doesNotMatch(stderr, /Uncaught|BrokenPipe|at /);
  } finally {
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});
