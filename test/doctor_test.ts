import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runDoctor } from "../src/doctor.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { makeFakeCommand, writeGguf } from "./fixtures/make_fake_llama_cpp.ts";
import { childEnv, testSession } from "./helpers.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

Deno.test("doctor with every runtime on PATH", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_doctor_bin_" });
  const ollama = await startFakeOllama({ version: "0.9.1" });
  const s = await testSession({
    env: { PATH: bin },
    flags: { ollama: ollama.url },
    files: {
      "agents/harvey.yaml":
        "llamacpp:\n  models:\n    - name: gone\n      path: ~/Models/gone.gguf\n",
    },
  });
  try {
    // llama.cpp prints its version on stderr, after the backends it loaded.
    await makeFakeCommand(bin, "llama-server", {
      stderr: "load_backend: loaded CPU backend\nversion: 4589 (1a2b3c4)\nbuilt with cc",
    });
    await makeFakeCommand(bin, "llama-cli", { stderr: "version: 4589 (1a2b3c4)" });
    await makeFakeCommand(bin, "ollama", { stdout: "ollama version is 0.9.1" });
    await makeFakeCommand(bin, "setpriv");
    await Deno.mkdir(join(s.root, "Models"));
    await writeGguf(join(s.root, "Models", "tiny.gguf"), 1_500_000);
    await Deno.writeTextFile(join(s.root, "Models", "notes.txt"), "not a model");

    const out = new BufferOutput();
    assert.equal(await runDoctor(s.agent, out, { os: "linux" }), 0);
    const text = out.text;
    for (const p of ["read", "write", "net", "env", "run"]) {
      assert.match(text, new RegExp(`✓ permission ${p} +granted`));
    }
    assert.match(text, new RegExp(`✓ setpriv +${bin}/setpriv — servers die with Harvey`));
    assert.match(
      text,
      new RegExp(`✓ llama-server +${bin}/llama-server — version: 4589 \\(1a2b3c4\\)\n`),
    );
    assert.match(text, new RegExp(`✓ llama-cli +${bin}/llama-cli — version: 4589`));
    assert.match(text, new RegExp(`✓ ollama +${bin}/ollama — ollama version is 0\\.9\\.1`));
    assert.match(text, new RegExp(`✓ Ollama server +running at ${ollama.url} \\(0\\.9\\.1\\)`));
    assert.match(text, /✓ models folder +~\/Models: 1 model file\n +tiny\.gguf \(1\.5 MB\)\n/);
    assert.match(
      text,
      /✗ registered model +gone \(GGUF\): no file at ~\/Models\/gone\.gguf — \/llamacpp remove gone/,
    );
    assert.doesNotMatch(text, /llama\.cpp \(llama-server, llama-cli\):/);
    assert.match(text, /→ llamafile: download one from https:\/\/docs\.mozilla\.ai\/llamafile/);
  } finally {
    await s.close();
    await ollama.close();
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("doctor on an empty PATH says what is missing and how to get it", async (t) => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_doctor_empty_" });
  const s = await testSession({ env: { PATH: bin }, flags: { ollama: "http://127.0.0.1:9" } });
  try {
    await t.step("Linux without apt or brew", async () => {
      const out = new BufferOutput();
      assert.equal(await runDoctor(s.agent, out, { os: "linux" }), 1);
      assert.match(out.text, /✗ setpriv +not found — a server may outlive Harvey after kill -9/);
      assert.match(
        out.text,
        /✗ llama-server +not found on PATH \(llamacpp\.server_bin: llama-server\)/,
      );
      assert.match(out.text, /✗ llama-cli +not found on PATH/);
      assert.match(out.text, /✗ ollama +not found on PATH/);
      assert.match(out.text, /✗ Ollama server +not running at http:\/\/127\.0\.0\.1:9/);
      assert.match(out.text, /✗ models folder +~\/Models does not exist/);
      assert.match(
        out.text,
        /→ llama\.cpp \(llama-server, llama-cli\): apt install llama\.cpp on Debian 13\+ or Ubuntu 26\.04\+ \(not in this system's apt sources\)/,
      );
      assert.match(out.text, /→ Ollama: https:\/\/ollama\.com\/download\n/);
      assert.match(out.text, /No way to run a model was found yet/);
      assert.doesNotMatch(out.text, /--install runs/);
    });
    await t.step("macOS with Homebrew", async () => {
      await makeFakeCommand(bin, "brew");
      const out = new BufferOutput();
      assert.equal(await runDoctor(s.agent, out, { os: "darwin" }), 1);
      assert.doesNotMatch(out.text, /setpriv/);
      assert.match(out.text, /→ llama\.cpp \(llama-server, llama-cli\): brew install llama\.cpp/);
      assert.match(
        out.text,
        /→ Ollama: https:\/\/ollama\.com\/download \(or brew install ollama\)/,
      );
      assert.match(
        out.text,
        new RegExp(
          `harvey doctor --install runs: ${bin}/brew install llama\\.cpp; ${bin}/brew install ollama`,
        ),
      );
    });
  } finally {
    await s.close();
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("harvey doctor --install runs apt only after a yes", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "harvey_doctor_cli_" });
  const bin = join(dir, "bin");
  await Deno.mkdir(bin);
  await makeFakeCommand(bin, "apt-cache", {
    stdout: "llama.cpp:\n  Installed: (none)\n  Candidate: 8064+dfsg-1",
  });
  await makeFakeCommand(bin, "apt-get", { stdout: "Setting up llama.cpp (8064+dfsg-1) ..." });
  await makeFakeCommand(bin, "setpriv");
  const doctor = async (stdin: string) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-prompt", MAIN, "doctor", "--install"],
      cwd: dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: childEnv({ NO_COLOR: "1", HOME: dir, PATH: bin, OLLAMA_HOST: "127.0.0.1:9" }),
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  const installs = async () => {
    try {
      return (await Deno.readTextFile(join(bin, "apt-get.log"))).trim().split("\n");
    } catch {
      return [];
    }
  };
  try {
    await t.step("declined: nothing runs", async () => {
      const r = await doctor("n\n");
      assert.match(
        r.stdout,
        /→ llama\.cpp \(llama-server, llama-cli\): sudo apt install llama\.cpp/,
      );
      assert.match(
        r.stdout,
        new RegExp(
          `Install llama\\.cpp: run "${bin}/apt-get install -y llama\\.cpp"\\? \\[y/N\\] `,
        ),
      );
      assert.match(r.stdout, /Skipped llama\.cpp\./);
      assert.deepEqual(await installs(), []);
      assert.equal(r.code, 1, r.stderr);
    });
    await t.step("no answer at all: nothing runs", async () => {
      const r = await doctor("");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /No answer to "Install llama\.cpp/);
      assert.deepEqual(await installs(), []);
    });
    await t.step("accepted: the package manager runs, its output shown", async () => {
      const r = await doctor("y\n");
      assert.deepEqual(await installs(), ["install -y llama.cpp"]);
      assert.match(r.stdout, new RegExp(`\\$ ${bin}/apt-get install -y llama\\.cpp\n`));
      assert.match(
        r.stdout,
        /Setting up llama\.cpp \(8064\+dfsg-1\) \.\.\.\n✓ Installed llama\.cpp\n/,
      );
      assert.match(r.stdout, /After installing:\n/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
