import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatSize } from "../src/commands/model_registry.ts";
import { OpenAICompatClient } from "../src/llm/openai_compat.ts";
import { processAlive, readRecords } from "../src/runtime/pid_file.ts";
import { findFreePort, isPortFree } from "../src/runtime/probe.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { makeFakeLlamafile } from "./fixtures/make_fake_llamafile.ts";
import { writeGguf } from "./fixtures/make_fake_llama_cpp.ts";
import { childEnv, type TestSession, testSession } from "./helpers.ts";
import { trustWorkspace } from "./trust_helpers.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const QWEN = "Qwen3.5-4B-Q5_K_S";
const APERTUS = "Apertus-8B-Instruct-2509";

/** A session whose llamafile URL is a free loopback port and whose ~/Models holds two files. */
async function llamafileSession(
  yaml = "",
): Promise<{ s: TestSession; port: number; size: string }> {
  const port = findFreePort();
  const s = await testSession({
    files: {
      "agents/harvey.yaml": `# kept comment\nllamafile:\n  url: http://127.0.0.1:${port}\n${yaml}`,
    },
    flags: { ollama: "http://127.0.0.1:9" },
  });
  await Deno.mkdir(join(s.root, "Models"));
  const qwen = await makeFakeLlamafile(join(s.root, "Models"), QWEN);
  const apertus = await makeFakeLlamafile(join(s.root, "Models"), APERTUS);
  // The scripts do not contain their own names: both have one size.
  const size = formatSize((await Deno.stat(qwen)).size);
  assert.equal(size, formatSize((await Deno.stat(apertus)).size));
  return { s, port, size };
}

async function yamlOf(s: TestSession): Promise<string> {
  return await Deno.readTextFile(join(s.root, "agents", "harvey.yaml"));
}

function lines(...l: string[]): string {
  return l.join("\n") + "\n";
}

Deno.test("the /llamafile transcripts of the design: add, add a second, use, list, status", async (t) => {
  const { s, port, size } = await llamafileSession();
  try {
    await t.step("the first add: picker, start, use, save", async () => {
      assert.equal(await s.run("/llamafile add\n2\n"), 0, s.err.text);
      assert.ok(
        s.out.text.includes(lines(
          "Llamafiles found in ~/Models:",
          `  [1] ${APERTUS}.llamafile (${size})`,
          `  [2] ${QWEN}.llamafile (${size})`,
          "Select [1-2] or enter a path: 2",
          "Starting llamafile...",
          `✓ Using model: ${QWEN}`,
          "Saved to agents/harvey.yaml — Harvey will connect automatically on next start.",
        )),
        s.out.text,
      );
      const yaml = await yamlOf(s);
      assert.match(yaml, /^# kept comment\n/);
      assert.match(
        yaml,
        new RegExp(`- name: ${QWEN}\n +path: ${s.root}/Models/${QWEN}\\.llamafile`),
      );
      assert.match(yaml, new RegExp(`active: ${QWEN}`));
      const server = s.agent.supervisor.servers[0];
      assert.equal(server.port, port, "started on the port of llamafile.url");
      assert.deepEqual(server.modelIds, [QWEN]);
      s.out.text = "";
      assert.equal(await s.run("hello\n"), 0, s.err.text);
      assert.equal(s.out.text, `Hello from ${QWEN}.\n`);
    });

    const first = s.agent.supervisor.servers[0];
    await t.step("a second add marks what is registered and asks for a name", async () => {
      s.out.text = "";
      assert.equal(await s.run("/llamafile add\n1\napertus\n"), 0, s.err.text);
      assert.equal(
        s.out.text,
        lines(
          "Llamafiles found in ~/Models:",
          `  [1] ${APERTUS}.llamafile (${size})`,
          `  [2] ${QWEN}.llamafile (${size}) (registered as ${QWEN})`,
          "Select [1-2] or enter a path: 1",
          `Name [${APERTUS}]: apertus`,
          "Registered apertus — use /llamafile use apertus to switch.",
        ),
      );
      assert.equal(s.agent.supervisor.spawnCount, 1, "registering does not start it");
      assert.match(await yamlOf(s), new RegExp(`active: ${QWEN}`));
    });

    await t.step("use switches: the old server stops, the new one starts", async () => {
      s.out.text = "";
      assert.equal(await s.run("/llamafile use apertus\nhello again\n"), 0, s.err.text);
      assert.equal(
        s.out.text,
        lines(
          `Stopping ${QWEN}...`,
          "Starting apertus...",
          "✓ Using model: apertus",
          `Hello from ${APERTUS}.`,
        ),
      );
      assert.equal(first.running, false);
      assert.equal(processAlive(first.pid!), false);
      assert.equal(s.agent.supervisor.spawnCount, 2);
      assert.equal(s.agent.supervisor.servers.length, 1);
      assert.equal(s.agent.supervisor.servers[0].port, port);
      assert.match(await yamlOf(s), /active: apertus/);
    });

    await t.step("list and status", async () => {
      s.out.text = "";
      assert.equal(await s.run("/llamafile list\n/llamafile status\n"), 0, s.err.text);
      assert.ok(
        s.out.text.startsWith(lines(
          "Registered llamafile models:",
          `  ${QWEN}  ~/Models/${QWEN}.llamafile (${size})`,
          `→ apertus${" ".repeat(QWEN.length - 7)}  ~/Models/${APERTUS}.llamafile (${size})`,
        )),
        s.out.text,
      );
      assert.match(s.out.text, /Active model: +apertus\n/);
      assert.match(s.out.text, new RegExp(`API URL: +http://127\\.0\\.0\\.1:${port}\n`));
      assert.match(
        s.out.text,
        /Reachable: +yes \(Apertus-8B-Instruct-2509, pid \d+, started by Harvey/,
      );
      assert.match(s.out.text, /Models dir: +~\/Models\n/);
      assert.match(s.out.text, /Registered: +2 models\n/);
    });

    await t.step("rename and remove keep harvey.yaml in step", async () => {
      s.out.text = "";
      assert.equal(await s.run(`/llamafile rename apertus ap\n/llamafile remove ${QWEN}\n`), 0);
      assert.match(s.out.text, /Renamed apertus to ap\./);
      assert.match(s.out.text, new RegExp(`Removed ${QWEN} from the registry \\(the file`));
      const yaml = await yamlOf(s);
      assert.match(yaml, /active: ap\n/);
      assert.doesNotMatch(yaml, new RegExp(`name: ${QWEN}`));
      assert.equal(await s.run("/llamafile rename ap ap2 extra\n/llamafile use nothing\n"), 1);
      assert.match(
        s.err.text,
        /No llamafile model named "nothing" is registered — registered: ap2/,
      );
    });

    await t.step("stop stops the server and deselects it", async () => {
      const server = s.agent.supervisor.servers[0];
      s.out.text = "";
      assert.equal(await s.run("/llamafile stop\n"), 0);
      assert.equal(s.out.text, "Stopping ap2...\nStopped ap2.\n");
      assert.equal(server.running, false);
      assert.equal(s.agent.client, undefined);
      assert.ok(isPortFree(port));
    });
  } finally {
    await s.close();
  }
  assert.ok(isPortFree(port), "no server outlives the session");
});

Deno.test("/llamafile add without files in ~/Models asks for a path", async (t) => {
  const port = findFreePort();
  const s = await testSession({
    files: {
      "agents/harvey.yaml": `llamafile:\n  url: http://127.0.0.1:${port}\n  ctx_size: 2048\n`,
    },
    flags: { ollama: "http://127.0.0.1:9" },
  });
  try {
    await Deno.mkdir(join(s.root, "elsewhere"));
    const file = await makeFakeLlamafile(join(s.root, "elsewhere"), "tiny");

    await t.step("a missing file is a clear error, nothing is saved", async () => {
      assert.equal(await s.run("/llamafile add\nelsewhere/none.llamafile\n"), 1);
      assert.match(
        s.out.text,
        /^No llamafiles found in ~\/Models\.\nEnter a path to a llamafile: /,
      );
      assert.match(
        s.err.text,
        /No file at elsewhere\/none\.llamafile: expected the path of a llamafile \(absolute, relative to the workspace, or ~\/…\)/,
      );
      assert.equal(s.agent.config.config.llamafile.models.length, 0);
    });

    await t.step("a workspace-relative path is kept relative; -c is passed", async () => {
      s.out.text = "";
      assert.equal(
        await s.run("/llamafile add\nelsewhere/tiny.llamafile\n/status\n"),
        0,
        s.err.text,
      );
      assert.match(s.out.text, /Starting llamafile...\n✓ Using model: tiny\n/);
      assert.match(await yamlOf(s), /path: elsewhere\/tiny\.llamafile/);
      assert.equal(s.agent.supervisor.servers[0].modelPath, file);
      assert.equal(s.agent.contextWindow, 2048, "n_ctx read back from the server");
      assert.match(s.out.text, /Context: +2048 tokens \(n_ctx reported by the server\)/);
    });

    await t.step("~ is expanded, and a taken name is refused", async () => {
      assert.equal(await s.run("/llamafile add ~/elsewhere/tiny.llamafile tiny\n"), 1);
      assert.match(s.err.text, /A llamafile model named "tiny" is already registered/);
      assert.equal(await s.run("/llamafile add ~/elsewhere/tiny.llamafile tiny2\n"), 0);
      assert.match(await yamlOf(s), new RegExp(`name: tiny2\n +path: ${s.root}/elsewhere/tiny`));
    });
  } finally {
    await s.close();
  }
});

Deno.test("a taken port is named and a free one offered", async (t) => {
  const port = findFreePort();
  const squatter = await startFakeOpenAI({ port, modelId: "squatter" });
  const s = await testSession({
    files: {
      "agents/harvey.yaml": lines(
        "llamafile:",
        `  url: http://localhost:${port}`,
        "  models:",
        "    - name: tiny",
        "      path: Models/tiny.llamafile",
      ),
    },
    flags: { ollama: "http://127.0.0.1:9" },
  });
  try {
    await Deno.mkdir(join(s.root, "Models"));
    await makeFakeLlamafile(join(s.root, "Models"), "tiny");
    await t.step("declined: nothing starts", async () => {
      assert.equal(await s.run("/llamafile use tiny\nn\n"), 1);
      assert.match(
        s.out.text,
        new RegExp(
          `✗ Port ${port} is already in use by an OpenAI-compatible server serving squatter\n` +
            `Start tiny on port (\\d+) instead\\? \\[Y/n\\] n\n`,
        ),
      );
      assert.match(s.err.text, /Port \d+ is already in use by an OpenAI-compatible server/);
      assert.equal(s.agent.supervisor.spawnCount, 0);
    });
    await t.step("accepted: it starts on the free port", async () => {
      s.out.text = "";
      assert.equal(await s.run("/llamafile use tiny\ny\nhi\n"), 0, s.err.text);
      const free = Number(/on port (\d+) instead/.exec(s.out.text)![1]);
      assert.equal(s.agent.supervisor.servers[0].port, free);
      assert.match(s.out.text, /Starting tiny...\n✓ Using model: tiny\nHello from tiny\.\n/);
      assert.equal(squatter.requests.filter((r) => r.path === "/v1/chat/completions").length, 0);
    });
  } finally {
    await s.close();
    await squatter.close();
  }
});

Deno.test("/model lists Ollama models, registered llamafiles and GGUF models, and switches", async () => {
  const ollama = await startFakeOllama({ models: ["llama3.2:latest"] });
  const port = findFreePort();
  const s = await testSession({
    files: {
      "agents/harvey.yaml": lines(
        "llamafile:",
        `  url: http://127.0.0.1:${port}`,
        "  models:",
        "    - name: qwen",
        "      path: Models/qwen.llamafile",
        "llamacpp:",
        "  models:",
        "    - name: tiny-gguf",
        "      path: Models/tiny.gguf",
      ),
    },
    flags: { ollama: ollama.url },
  });
  try {
    await Deno.mkdir(join(s.root, "Models"));
    await makeFakeLlamafile(join(s.root, "Models"), "qwen");
    await writeGguf(join(s.root, "Models", "tiny.gguf"));
    assert.equal(await s.run("/model\n"), 0, s.err.text);
    assert.match(s.out.text, /  llama3\.2:latest \(ollama\)\n/);
    assert.match(s.out.text, /  qwen \(llamafile\)\n/);
    assert.match(s.out.text, /  tiny-gguf \(gguf\)\n/);
    assert.equal(s.agent.supervisor.spawnCount, 0, "listing starts nothing");
    s.out.text = "";
    assert.equal(await s.run("/model use qwen\nhello\n/model\n"), 0, s.err.text);
    assert.match(s.out.text, /✓ Using model: qwen \(llamafile\)\nHello from qwen\.\n/);
    assert.match(s.out.text, /→ qwen \(llamafile\)\n/);
    const listing = s.out.text.slice(s.out.text.lastIndexOf("Models:"));
    assert.equal(listing.match(/\(llamafile\)/g)?.length, 1, `listed once:\n${listing}`);
    assert.ok(s.agent.client instanceof OpenAICompatClient);
    assert.equal(s.agent.supervisor.spawnCount, 1);
  } finally {
    await s.close();
    await ollama.close();
  }
});

async function harvey(
  args: string[],
  opts: { cwd: string; script: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  await Deno.writeTextFile(join(opts.cwd, "script.txt"), opts.script);
  // The test wrote harvey.yaml by hand: trusted, as after a yes in a terminal.
  const env = { NO_COLOR: "1", HOME: opts.cwd, XDG_CONFIG_HOME: `${opts.cwd}.config` };
  await trustWorkspace(opts.cwd, env);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", MAIN, ...args, "--run", "script.txt"],
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: childEnv({ ...env, OLLAMA_HOST: "127.0.0.1:9" }),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("start-up with an active llamafile, and --llamafile for one session", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "harvey_llamafile_cli_" });
  const port = findFreePort();
  try {
    await Deno.mkdir(join(dir, "agents"));
    await Deno.mkdir(join(dir, "Models"));
    const tiny = await makeFakeLlamafile(join(dir, "Models"), "tiny");
    const yaml = lines(
      "llamafile:",
      `  url: http://127.0.0.1:${port}`,
      "  active: tiny",
      "  models:",
      "    - name: tiny",
      `      path: ${tiny}`,
    );
    await Deno.writeTextFile(join(dir, "agents", "harvey.yaml"), yaml);

    await t.step("not running: Start tiny now? answered y", async () => {
      const r = await harvey([], { cwd: dir, script: "y\nhello\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        r.stderr.includes(lines(
          `Checking llamafile (tiny) at http://127.0.0.1:${port}...`,
          "✗ Llamafile is not running",
        )),
        r.stderr,
      );
      assert.ok(r.stderr.includes("Starting llamafile...\n✓ Using model: tiny\n"), r.stderr);
      assert.equal(r.stdout, "Start tiny now? [Y/n] y\nHello from tiny.\n");
      assert.ok(isPortFree(port), "the server stopped with Harvey");
      assert.deepEqual(await readRecords(join(dir, "agents")), []);
    });

    await t.step("answered n: falls through to Ollama and the usual guidance", async () => {
      const r = await harvey([], { cwd: dir, script: "n\n/status\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Start tiny now\? \[Y\/n\] n\nBackend: +none/);
      assert.match(
        r.stderr,
        /✗ Ollama is not running at http:\/\/127\.0\.0\.1:9\nNo backend selected\./,
      );
      assert.doesNotMatch(r.stderr, /Starting llamafile/);
    });

    await t.step("--llamafile PATH runs it this session and never writes harvey.yaml", async () => {
      const other = await makeFakeLlamafile(join(dir, "Models"), "other");
      const r = await harvey(["--llamafile", "Models/other.llamafile"], {
        cwd: dir,
        script: "hello\n/llamafile status\n",
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Starting llamafile...\n✓ Using model: other\n/);
      assert.match(r.stdout, /^Hello from other\.\n/);
      assert.match(r.stdout, /This session: +other \(--llamafile, not saved\)/);
      assert.equal(await Deno.readTextFile(join(dir, "agents", "harvey.yaml")), yaml);
      assert.ok(other.endsWith("other.llamafile"));
      assert.ok(isPortFree(port));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(`${dir}.config`, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name: "SIGTERM to Harvey stops the llamafile it started (one exit mechanism)",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "harvey_llamafile_sig_" });
    const port = findFreePort();
    try {
      await Deno.mkdir(join(dir, "agents"));
      await Deno.writeTextFile(
        join(dir, "agents", "harvey.yaml"),
        `llamafile:\n  url: http://127.0.0.1:${port}\n`,
      );
      await makeFakeLlamafile(dir, "tiny");
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-prompt", MAIN, "--llamafile", "tiny.llamafile"],
        cwd: dir,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        env: childEnv({ NO_COLOR: "1", HOME: dir, OLLAMA_HOST: "127.0.0.1:9" }),
      }).spawn();
      const errText = new Response(child.stderr).text();
      const outText = new Response(child.stdout).text();
      const writer = child.stdin.getWriter();
      try {
        // The script reads stdin line by line: wait for the reply, then signal.
        await writer.write(new TextEncoder().encode("hello\n"));
        const deadline = Date.now() + 30_000;
        while (isPortFree(port)) {
          assert.ok(Date.now() < deadline, "the llamafile never started");
          await new Promise((r) => setTimeout(r, 50));
        }
        Deno.kill(child.pid, "SIGTERM");
        const status = await child.status;
        assert.equal(status.code, 143, await errText);
        assert.ok(isPortFree(port), "the server outlived Harvey");
        // Stopped by Harvey (not only by the kernel's parent-death signal): no pid file left.
        assert.deepEqual(await readRecords(join(dir, "agents")), []);
      } finally {
        await writer.close().catch(() => {});
        await errText;
        await outText;
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
