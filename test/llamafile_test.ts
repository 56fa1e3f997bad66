import assert from "node:assert/strict";
import { join } from "node:path";
import { formatSize } from "../src/commands/model_registry.ts";
import { processAlive, readRecords } from "../src/runtime/pid_file.ts";
import { findFreePort, isPortFree } from "../src/runtime/probe.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { makeFakeLlamafile } from "./fixtures/make_fake_llamafile.ts";
import { writeGguf } from "./fixtures/make_fake_llama_cpp.ts";
import { type TestSession, testSession } from "./helpers.ts";
import { runHarvey, spawnHarvey } from "./harvey_child.ts";
import { trustWorkspace } from "./trust_helpers.ts";

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

    await t.step("use switches: the new server starts, then the old one stops", async () => {
      s.out.text = "";
      assert.equal(await s.run("/llamafile use apertus\nhello again\n"), 0, s.err.text);
      assert.equal(
        s.out.text,
        lines(
          "Starting apertus...",
          "✓ Using model: apertus",
          `Stopped ${QWEN}.`,
          `Hello from ${APERTUS}.`,
        ),
      );
      assert.equal(first.running, false);
      assert.equal(processAlive(first.pid!), false);
      assert.equal(s.agent.supervisor.spawnCount, 2);
      assert.equal(s.agent.supervisor.servers.length, 1);
      // The old model held the port while the new one loaded: the new one got a free port.
      assert.notEqual(s.agent.supervisor.servers[0].port, port);
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
      const url = s.agent.supervisor.servers[0].url.replaceAll(".", "\\.");
      assert.match(s.out.text, new RegExp(`API URL: +${url}\n`));
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

    await t.step("a file registered already is refused, however its path is written", async () => {
      const before = await yamlOf(s);
      assert.equal(await s.run("/llamafile add ~/elsewhere/tiny.llamafile tiny2\n"), 1);
      assert.match(
        s.err.text,
        /~\/elsewhere\/tiny\.llamafile is already registered as tiny; \/llamafile use tiny switches to it/,
      );
      assert.equal(await yamlOf(s), before, "no second entry");
    });

    await t.step("~ is expanded, and a taken name is refused", async () => {
      await makeFakeLlamafile(join(s.root, "elsewhere"), "other");
      assert.equal(await s.run("/llamafile add ~/elsewhere/other.llamafile tiny\n"), 1);
      assert.match(s.err.text, /A llamafile model named "tiny" is already registered/);
      assert.equal(await s.run("/llamafile add ~/elsewhere/other.llamafile other2\n"), 0);
      assert.match(await yamlOf(s), new RegExp(`name: other2\n +path: ${s.root}/elsewhere/other`));
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
    assert.equal(s.agent.client?.name, "llamafile:qwen");
    assert.equal(s.agent.supervisor.spawnCount, 1);
  } finally {
    await s.close();
    await ollama.close();
  }
});

Deno.test("a switch keeps the old model until the new one is ready, or keeps it", async (t) => {
  const port = findFreePort();
  const s = await testSession({
    files: {
      "agents/harvey.yaml": lines(
        "llamafile:",
        `  url: http://127.0.0.1:${port}`,
        "  models:",
        "    - name: good",
        "      path: Models/good.llamafile",
        "    - name: broken",
        "      path: Models/broken.llamafile",
        "    - name: slow",
        "      path: Models/slow.llamafile",
        "    - name: big",
        "      path: Models/big.llamafile",
      ),
      "notes.txt": "not a model\n",
    },
    flags: { ollama: "http://127.0.0.1:9" },
  });
  try {
    const models = join(s.root, "Models");
    await Deno.mkdir(models);
    await makeFakeLlamafile(models, "good");
    await makeFakeLlamafile(models, "broken", {
      exitImmediately: { code: 3, stderr: "error loading model: out of memory" },
    });
    await makeFakeLlamafile(models, "slow", { neverReady: true });
    await makeFakeLlamafile(models, "big", { loadingMs: 1_200, progress: true });
    assert.equal(await s.run("/llamafile use good\n"), 0, s.err.text);
    const good = s.agent.supervisor.servers[0];

    await t.step("a new model that fails to start leaves the old one in use", async () => {
      assert.equal(await s.run("/llamafile use broken\n"), 1);
      assert.match(
        s.err.text,
        /✗ line 1: llamafile exited during startup with status 3; still using good\n/,
      );
      assert.match(s.err.text, /out of memory/);
      assert.equal(good.running, true, "the old server was not stopped");
      s.out.text = "";
      assert.equal(await s.run("hello\n/status\n"), 0, s.err.text);
      assert.match(s.out.text, /^Hello from good\.\nBackend: +llamafile:good\n/);
    });

    await t.step("Ctrl-C during a start stops the new server; the old one stays", async () => {
      const ctl = new AbortController();
      const ran = s.run("/llamafile use slow\n", { signal: ctl.signal });
      const deadline = Date.now() + 20_000;
      let pid: number | undefined;
      while (pid === undefined) {
        assert.ok(Date.now() < deadline, "slow never started");
        pid = s.agent.supervisor.servers.find((x) => x.model === "slow")?.pid;
        await new Promise((r) => setTimeout(r, 20));
      }
      ctl.abort();
      assert.equal(await ran, 1);
      assert.match(s.err.text, /Cancelled: slow was not started \(its server is stopped\)/);
      assert.equal(processAlive(pid), false, "the child was killed");
      assert.equal(good.running, true);
      assert.equal(s.agent.client?.name, "llamafile:good");
    });

    await t.step(
      "on a terminal the start shows a spinner with the time and load progress",
      async () => {
        s.out.text = "";
        assert.equal(await s.run("/llamafile use big\n", { terminal: true }), 0, s.err.text);
        assert.match(s.out.text, /Starting big… \[\d+s\] · loading \d+%/);
        assert.match(s.out.text, /✓ Using model: big\nStopped good\.\n$/);
        assert.equal(good.running, false, "the old server stopped once the new one was ready");
      },
    );

    await t.step("a file that is not a llamafile is not registered", async () => {
      await writeGguf(join(models, "weights.gguf"));
      const before = await yamlOf(s);
      assert.equal(await s.run("/llamafile add notes.txt\n"), 1);
      assert.match(
        s.err.text,
        /notes\.txt is not a llamafile: it starts with neither the APE header "MZqFpD" nor "#!"/,
      );
      assert.equal(await s.run("/llamafile add ~/Models/weights.gguf\n"), 1);
      assert.match(
        s.err.text,
        /~\/Models\/weights\.gguf is a GGUF model, not a llamafile: register it with \/llamacpp add/,
      );
      assert.equal(await yamlOf(s), before);
    });
  } finally {
    await s.close();
  }
});

Deno.test("a llamafile server that died is started again by the next prompt and by start", async () => {
  const port = findFreePort();
  const s = await testSession({
    files: {
      "agents/harvey.yaml": lines(
        "llamafile:",
        `  url: http://127.0.0.1:${port}`,
        "  models:",
        "    - name: tiny",
        "      path: Models/tiny.llamafile",
      ),
    },
    flags: { ollama: "http://127.0.0.1:9" },
  });
  const kill = async () => {
    const server = s.agent.supervisor.servers[0];
    Deno.kill(server.pid!, "SIGKILL");
    while (server.running) await new Promise((r) => setTimeout(r, 10));
    return server;
  };
  try {
    await Deno.mkdir(join(s.root, "Models"));
    await makeFakeLlamafile(join(s.root, "Models"), "tiny");
    assert.equal(await s.run("/llamafile use tiny\nhello\n"), 0, s.err.text);
    for (let round = 0; round < 3; round++) {
      const dead = await kill();
      s.out.text = "";
      assert.equal(await s.run("hello again\n"), 0, s.err.text);
      assert.equal(s.out.text, "Hello from tiny.\n");
      assert.match(s.err.text, /⚠ The llamafile server of tiny has stopped; starting it again\n/);
      assert.notEqual(s.agent.supervisor.servers[0].pid, dead.pid);
    }
    await kill();
    s.out.text = "";
    assert.equal(await s.run("/llamafile start\nhello\n"), 0, s.err.text);
    assert.equal(s.out.text, "Starting tiny...\n✓ Using model: tiny\nHello from tiny.\n");
    assert.equal(s.agent.supervisor.servers.filter((x) => x.running).length, 1);
    assert.equal(s.agent.supervisor.spawnCount, 5);
  } finally {
    await s.close();
  }
  assert.ok(isPortFree(port));
});

/** Harvey run as `deno task harvey` runs it, on a script file; no Ollama reachable. */
async function harvey(
  args: string[],
  opts: { cwd: string; script?: string; stdin?: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = opts.script === undefined ? [] : ["--run", "script.txt"];
  if (opts.script !== undefined) {
    await Deno.writeTextFile(join(opts.cwd, "script.txt"), opts.script);
  }
  // The test wrote harvey.yaml by hand: trusted, as after a yes in a terminal.
  const env = { HOME: opts.cwd, XDG_CONFIG_HOME: `${opts.cwd}.config` };
  await trustWorkspace(opts.cwd, env);
  return await runHarvey([...args, ...script], {
    cwd: opts.cwd,
    stdin: opts.stdin,
    env: { ...env, OLLAMA_HOST: "127.0.0.1:9" },
  });
}

/** A workspace whose agents/harvey.yaml has `tiny` registered (and active unless told). */
async function activeWorkspace(
  opts: { active?: boolean; port?: number } = {},
): Promise<{ dir: string; port: number; tiny: string; yaml: string }> {
  const dir = await Deno.makeTempDir({ prefix: "harvey_llamafile_cli_" });
  const port = opts.port ?? findFreePort();
  await Deno.mkdir(join(dir, "agents"));
  await Deno.mkdir(join(dir, "Models"));
  const tiny = await makeFakeLlamafile(join(dir, "Models"), "tiny");
  const yaml = lines(
    "llamafile:",
    `  url: http://127.0.0.1:${port}`,
    ...(opts.active === false ? [] : ["  active: tiny"]),
    "  models:",
    "    - name: tiny",
    `      path: ${tiny}`,
  );
  await Deno.writeTextFile(join(dir, "agents", "harvey.yaml"), yaml);
  return { dir, port, tiny, yaml };
}

Deno.test("start-up never reads a script line: the saved active model starts without asking", async (t) => {
  const { dir, port, yaml } = await activeWorkspace();
  try {
    await t.step("a piped prompt is sent, not taken as an answer", async () => {
      const r = await harvey([], { cwd: dir, stdin: "hi\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "Hello from tiny.\n", "the first line is the prompt");
      assert.ok(
        r.stderr.includes(lines(
          `Checking llamafile (tiny) at http://127.0.0.1:${port}...`,
          "✗ Llamafile is not running",
          "Starting tiny, the active llamafile, without asking (no terminal to ask at)...",
          "✓ Using model: tiny",
        )),
        r.stderr,
      );
      assert.doesNotMatch(r.stdout + r.stderr, /\[Y\/n\]/);
      assert.ok(isPortFree(port), "the server stopped with Harvey");
      assert.deepEqual(await readRecords(join(dir, "agents")), []);
    });

    await t.step("--run FILE: the same, and a first line of y is a prompt too", async () => {
      const r = await harvey([], { cwd: dir, script: "y\n/status\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Hello from tiny\.\nBackend: +llamafile:tiny\n/);
    });

    await t.step("-p starts it the same way", async () => {
      const r = await harvey(["-p", "hello"], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "Hello from tiny.\n");
      assert.match(r.stderr, /Starting tiny, the active llamafile, without asking/);
    });

    await t.step("--llamafile PATH runs it this session and never writes harvey.yaml", async () => {
      await makeFakeLlamafile(join(dir, "Models"), "other");
      const r = await harvey(["--llamafile", "Models/other.llamafile"], {
        cwd: dir,
        script: "hello\n/llamafile status\n",
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Starting llamafile...\n✓ Using model: other\n/);
      assert.doesNotMatch(r.stderr, /Checking llamafile \(tiny\)/, "the saved model is not used");
      assert.match(r.stdout, /^Hello from other\.\n/);
      assert.match(r.stdout, /This session: +other \(--llamafile, not saved\)/);
      assert.equal(await Deno.readTextFile(join(dir, "agents", "harvey.yaml")), yaml);
      assert.ok(isPortFree(port));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(`${dir}.config`, { recursive: true }).catch(() => {});
    await Deno.remove(`${dir}.config`, { recursive: true }).catch(() => {});
  }
});

Deno.test("start-up: flags win over the saved model, and what cannot be had is named", async (t) => {
  const { dir, port } = await activeWorkspace();
  const fake = await startFakeOpenAI({ modelId: "served-model", reply: () => "from the URL" });
  try {
    await t.step("--llamafile-url wins over the saved active llamafile", async () => {
      const r = await harvey(["--llamafile-url", fake.url], { cwd: dir, script: "hello\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "from the URL\n");
      assert.doesNotMatch(r.stderr, /Checking llamafile|Starting/);
      assert.ok(isPortFree(port), "the saved llamafile was not started");
    });

    await t.step(
      "a dead --llamafile-url is named, and the first prompt fails with it",
      async () => {
        const dead = `http://127.0.0.1:${findFreePort()}`;
        const r = await harvey(["--llamafile-url", dead], { cwd: dir, script: "/help\nhello\n" });
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`✗ Nothing answers at ${dead} \\(--llamafile-url\\)`));
        assert.match(
          r.stderr,
          new RegExp(
            `✗ line 2: No backend selected \\(nothing answers at ${dead} \\(--llamafile-url\\)\\) — `,
          ),
        );
        assert.match(r.stdout, /Commands:/, "lines that need no backend run");
        assert.ok(isPortFree(port));
      },
    );

    await t.step("a malformed --llamafile-url is a usage error", async () => {
      const r = await harvey(["--llamafile-url", "localhost:8080", "-p", "x"], { cwd: dir });
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /--llamafile-url expects a URL such as http:\/\/127\.0\.0\.1:8080, found "localhost:8080"/,
      );
    });

    await t.step("-m with an unknown name is named; nothing saved is used instead", async () => {
      const r = await harvey(["-m", "nosuchmodel", "-p", "hello"], { cwd: dir });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /✗ No model named "nosuchmodel" \(-m\) is registered or running; known: tiny\n/,
      );
      assert.match(r.stderr, /✗ No backend selected \(no model named "nosuchmodel" \(-m\)/);
      assert.equal(r.stdout, "");
      assert.ok(isPortFree(port), "the saved llamafile was not started");
    });

    await t.step("-m names a registered model: it starts", async () => {
      const r = await harvey(["-m", "tiny", "-p", "hello"], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "Hello from tiny.\n");
    });
  } finally {
    await fake.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(`${dir}.config`, { recursive: true }).catch(() => {});
  }
});

/**
 * Starts a fixture on a port that was free a moment ago, choosing again when a test running
 * beside this one took it in between.
 */
async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let tries = 1;; tries++) {
    try {
      return await start(findFreePort());
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse) || tries === 5) throw err;
    }
  }
}

Deno.test("start-up with the port taken: the expected model is used, a stranger is not", async (t) => {
  await t.step("a stranger on the port: a free port, and the stranger gets no prompt", async () => {
    const stranger = await onFreePort((port) => startFakeOpenAI({ port, modelId: "stranger" }));
    const { port } = stranger;
    const { dir } = await activeWorkspace({ port });
    try {
      const r = await harvey([], { cwd: dir, stdin: "hi\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "Hello from tiny.\n");
      assert.match(
        r.stderr,
        new RegExp(
          `✗ Port ${port} is already in use by an OpenAI-compatible server serving stranger\nUsing port \\d+ instead\\.\n`,
        ),
      );
      assert.equal(stranger.requests.filter((q) => q.path === "/v1/chat/completions").length, 0);
    } finally {
      await stranger.close();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(`${dir}.config`, { recursive: true }).catch(() => {});
    }
  });

  await t.step("the expected model on the port (started elsewhere): it is used", async () => {
    const tinyElsewhere = await onFreePort((port) =>
      startFakeOpenAI({ port, modelId: "tiny", reply: () => "already up" })
    );
    const { port } = tinyElsewhere;
    const { dir } = await activeWorkspace({ port });
    try {
      const r = await harvey([], { cwd: dir, stdin: "hi\n" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "already up\n");
      assert.match(r.stderr, /✓ Llamafile is running\n✓ Using model: tiny\n/);
      assert.doesNotMatch(r.stderr, /Starting/);
    } finally {
      await tinyElsewhere.close();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(`${dir}.config`, { recursive: true }).catch(() => {});
    }
  });
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
      const child = spawnHarvey(["--llamafile", "tiny.llamafile"], {
        cwd: dir,
        env: { OLLAMA_HOST: "127.0.0.1:9" },
      });
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
      await Deno.remove(`${dir}.config`, { recursive: true }).catch(() => {});
    }
  },
});
