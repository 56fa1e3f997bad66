import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { childEnv } from "../src/security/child_env.ts";
import { llamafileArgs, llamafileSpec, startLlamafile } from "../src/runtime/llamafile.ts";
import { llamaServerArgs, llamaServerSpec, startLlamaServer } from "../src/runtime/llama_server.ts";
import { LogRing } from "../src/runtime/log_ring.ts";
import { processAlive, readRecords, recordPath, writeRecord } from "../src/runtime/pid_file.ts";
import { findFreePort, isPortFree } from "../src/runtime/probe.ts";
import { PortInUseError, ServerStartError, Supervisor } from "../src/runtime/supervisor.ts";
import { findOnPath } from "../src/runtime/spawn.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { makeFakeLlamafile, makeFakeLlamaServer } from "./fixtures/make_fake_llamafile.ts";

const PARENT = fileURLToPath(new URL("./fixtures/supervisor_parent.ts", import.meta.url));
const LINUX = Deno.build.os === "linux";
const HAS_SETPRIV = LINUX && findOnPath("setpriv", Deno.env.get("PATH") ?? "") !== undefined;

interface Sandbox {
  dir: string;
  state: string;
  out: string[];
  sup(opts?: { startupTimeoutMs?: number; graceMs?: number }): Supervisor;
}

/** A temporary folder with an `agents/` state folder; every supervisor made is stopped. */
async function sandbox(fn: (s: Sandbox) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "harvey_sup_" });
  const made: Supervisor[] = [];
  const out: string[] = [];
  const s: Sandbox = {
    dir,
    state: join(dir, "agents"),
    out,
    sup: (opts = {}) => {
      const sup = new Supervisor({
        stateDir: join(dir, "agents"),
        out: { write: (t) => void out.push(t) },
        ...opts,
      });
      made.push(sup);
      return sup;
    },
  };
  try {
    await fn(s);
  } finally {
    for (const sup of made) await sup.stopAll();
    await Deno.remove(dir, { recursive: true });
  }
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Polls until `pid` is gone (a zombie counts as gone); false after `ms`. */
async function waitGone(pid: number, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (processAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** The pid in the pid file of a server that is still starting (fails if `starting` settles). */
async function loadingPid(state: string, starting: Promise<unknown>): Promise<number> {
  let settled = false;
  starting.then(() => settled = true, () => settled = true);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pid = (await readRecords(state))[0]?.record?.pid;
    if (pid !== undefined) return pid;
    if (settled || Date.now() > deadline) assert.fail("no pid file while the server was starting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

function killIfAlive(pid: number | undefined): void {
  if (pid === undefined || !processAlive(pid)) return;
  try {
    Deno.kill(-pid, "SIGKILL");
  } catch {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

Deno.test("childEnv keeps the allowlist and drops secrets", () => {
  const env = childEnv({
    PATH: "/usr/bin",
    HOME: "/home/u",
    USER: "u",
    SHELL: "/bin/bash",
    TERM: "xterm",
    LANG: "C.UTF-8",
    LC_ALL: "C",
    PWD: "/w",
    TMPDIR: "/tmp",
    OLLAMA_HOST: "http://127.0.0.1:11434",
    HARVEY_LLAMAFILE_DIR: "/models",
    OPENAI_API_KEY: "sk-1",
    ANTHROPIC_API_KEY: "sk-2",
    HF_TOKEN: "hf_1",
    GITHUB_TOKEN: "gh",
    AWS_SECRET_ACCESS_KEY: "aws",
    HARVEY_API_KEY: "h",
    OLLAMA_TOKEN: "o",
    RUST_BACKTRACE: "1",
    EDITOR: "vi",
  });
  assert.deepEqual(env, {
    PATH: "/usr/bin",
    HOME: "/home/u",
    USER: "u",
    SHELL: "/bin/bash",
    TERM: "xterm",
    LANG: "C.UTF-8",
    LC_ALL: "C",
    PWD: "/w",
    TMPDIR: "/tmp",
    OLLAMA_HOST: "http://127.0.0.1:11434",
    HARVEY_LLAMAFILE_DIR: "/models",
  });
});

Deno.test("the log ring keeps the last lines within its caps", async () => {
  const ring = new LogRing({ maxLines: 200, maxChars: 1_000 });
  const source = ReadableStream.from(
    ["one\r\ntw", "o\n", ...Array.from({ length: 300 }, (_, i) => `line ${i}\n`), "last"].map(
      (t) => new TextEncoder().encode(t),
    ),
  );
  await ring.pump(source, "stderr");
  const lines = ring.lines();
  assert.ok(lines.join("").length <= 1_000);
  assert.deepEqual(lines.slice(-2), ["line 299", "last"]);
  ring.push("stdout", "x".repeat(5_000));
  assert.equal(ring.lines().length, 1);
  assert.equal(ring.lines()[0].length, 1_000);
  assert.deepEqual(ring.tail(5, "stderr"), []);

  const small = new LogRing({ maxLines: 2 });
  await small.pump(ReadableStream.from([new TextEncoder().encode("a\r\nb\nc")]), "stdout");
  assert.deepEqual(small.lines(), ["b", "c"]);
});

Deno.test("runtime command lines", () => {
  assert.deepEqual(llamafileArgs(8081, { ctxSize: 4096, gpuLayers: 99, extraArgs: ["-t", "4"] }), [
    "--server",
    "--nobrowser",
    "--host",
    "127.0.0.1",
    "--port",
    "8081",
    "-c",
    "4096",
    "-ngl",
    "99",
    "-t",
    "4",
  ]);
  assert.deepEqual(llamafileArgs(8081), [
    "--server",
    "--nobrowser",
    "--host",
    "127.0.0.1",
    "--port",
    "8081",
  ]);
  assert.deepEqual(
    llamaServerArgs("/m/q.gguf", 9000, { ctxSize: 8192, gpuLayers: 0, extraArgs: ["--jinja"] }),
    [
      "-m",
      "/m/q.gguf",
      "--host",
      "127.0.0.1",
      "--port",
      "9000",
      "-c",
      "8192",
      "-ngl",
      "0",
      "--jinja",
    ],
  );
  const spec = llamafileSpec("/models/Qwen3-4B.llamafile", { port: 8123 });
  assert.equal(spec.model, "Qwen3-4B");
  assert.equal(spec.backend, "llamafile");
  assert.equal(spec.ape, true);
  assert.equal(spec.port, 8123);
  assert.throws(
    () => llamaServerSpec("/m/q.gguf", { binary: "no-such-llama-server", path: "/nonexistent" }),
    /no-such-llama-server was not found on PATH/,
  );
});

Deno.test("start waits through the loading period, reads n_ctx, and stops cleanly", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "tiny", { loadingMs: 600 });
    const sup = s.sup();
    const server = await sup.start(llamafileSpec(path, { ctxSize: 2048, gpuLayers: 0 }));
    // Ready means ready: the loading 503s are over when start resolves.
    assert.equal((await getJson(`${server.url}/health`)).status, 200);
    assert.deepEqual(server.modelIds, ["tiny"]);
    assert.equal(server.nCtx, 2048);
    assert.equal(server.owned, true);
    assert.equal(server.adopted, false);
    assert.equal(server.running, true);
    assert.equal(sup.spawnCount, 1);
    assert.ok(server.logs().some((l) => l.includes("listening")), server.logs().join("\n"));

    const [found] = await readRecords(s.state);
    assert.equal(found.path, recordPath(s.state, { backend: "llamafile", port: server.port }));
    assert.equal(found.record?.pid, server.pid);
    assert.equal(found.record?.model, "tiny");
    assert.equal(found.record?.model_path, path);
    assert.equal(found.record?.model_id, "tiny");
    assert.equal(found.record?.url, server.url);
    assert.equal(found.record?.harvey_pid, Deno.pid);

    const result = await server.stop();
    assert.deepEqual({ ...result, code: undefined, signal: undefined }, {
      stopped: true,
      clean: true,
      killed: false,
      code: undefined,
      signal: undefined,
    });
    assert.equal(server.running, false);
    assert.equal(processAlive(server.pid!), false);
    assert.ok(isPortFree(server.port));
    assert.deepEqual(await readRecords(s.state), []);
    assert.deepEqual(sup.servers, []);
  });
});

Deno.test("once Harvey is ending, no server starts: a dead one is not restarted", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "tiny");
    const sup = s.sup();
    const server = await sup.start(llamafileSpec(path));
    const ending = sup.stopAll();
    // A start that comes while the servers stop (a turn restarting the server it lost).
    await assert.rejects(
      sup.start(llamafileSpec(path)),
      (err: Error) => /^Harvey is ending: llamafile tiny is not started$/.test(err.message),
    );
    await ending;
    assert.equal(processAlive(server.pid!), false);
    assert.equal(sup.spawnCount, 1);
    assert.deepEqual(await readRecords(s.state), [], "no pid file is left");
  });
});

Deno.test("switching stops one server and starts another on the same port", async () => {
  await sandbox(async (s) => {
    const a = await makeFakeLlamafile(s.dir, "alpha");
    const b = await makeFakeLlamafile(s.dir, "beta");
    const sup = s.sup();
    const port = findFreePort();
    const first = await sup.start(llamafileSpec(a, { port }));
    assert.deepEqual(first.modelIds, ["alpha"]);
    await first.stop();
    const second = await sup.start(llamafileSpec(b, { port }));
    assert.equal(second.port, port);
    const models = await getJson(`${second.url}/v1/models`);
    assert.equal((models.body as { data: { id: string }[] }).data[0].id, "beta");
    assert.notEqual(second.pid, first.pid);
    assert.equal(sup.spawnCount, 2);
    assert.deepEqual(sup.servers, [second]);
  });
});

Deno.test("an early exit is reported with its status and the last lines of stderr", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "broken", {
      exitImmediately: {
        code: 3,
        stderr: "llama_model_load: error loading model\nfailed to allocate 4096 MiB: out of memory",
      },
    });
    const sup = s.sup();
    const err = await sup.start(llamafileSpec(path)).then(
      () => assert.fail("start should have failed"),
      (e) => e,
    );
    assert.ok(err instanceof ServerStartError, String(err));
    const [first, ...rest] = err.message.split("\n");
    assert.equal(first, "llamafile exited during startup with status 3");
    assert.ok(rest.some((l: string) => l.includes("out of memory")), err.message);
    assert.ok(rest.some((l: string) => l.includes("error loading model")), err.message);
    assert.equal(err.status?.code, 3);
    assert.deepEqual(sup.servers, []);
    assert.deepEqual(await readRecords(s.state), []);
  });
});

Deno.test("a server that never becomes ready is stopped at the startup timeout", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "stuck", { neverReady: true });
    const sup = s.sup({ startupTimeoutMs: 1_500 });
    const spec = llamafileSpec(path);
    const started = sup.start(spec);
    // The pid file names the child while it loads.
    const pid = await loadingPid(s.state, started);
    const err = await started.then(() => assert.fail("start should have failed"), (e) => e);
    assert.ok(err instanceof ServerStartError, String(err));
    assert.match(err.message, /^llamafile did not become ready within 1.5 s and was stopped/);
    assert.match(err.message.split("\n")[0], /raise startup_timeout in agents\/harvey\.yaml/);
    assert.equal(processAlive(pid), false);
    assert.ok(isPortFree(spec.port));
    assert.deepEqual(await readRecords(s.state), []);
    assert.deepEqual(sup.servers, []);
  });
});

Deno.test("a loading server's progress is reported as it changes", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "big", { loadingMs: 1_500, progress: true });
    const seen: string[] = [];
    const server = await s.sup().start(llamafileSpec(path), { onProgress: (t) => seen.push(t) });
    assert.equal(server.running, true);
    const percents = seen.map((t) => /^loading (\d+)%$/.exec(t)?.[1]).filter(Boolean).map(Number);
    assert.ok(percents.length >= 2, `several percentages: ${seen.join(" | ")}`);
    assert.deepEqual(percents, [...percents].sort((a, b) => a - b), "the percentage only grows");
    assert.equal(new Set(seen).size, seen.length, "a change is reported once");
  });
});

Deno.test("a server that died is never handed back: adopt forgets it, start runs a new one", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "tiny");
    const sup = s.sup();
    const first = await sup.start(llamafileSpec(path));
    assert.equal(await sup.adopt("llamafile", path), first, "alive: the same server");
    Deno.kill(first.pid!, "SIGKILL");
    assert.ok(await waitGone(first.pid!), "the server did not die");
    while (first.running) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await sup.adopt("llamafile", path), undefined);
    assert.deepEqual(sup.servers, [], "the dead server is forgotten");
    assert.deepEqual(await readRecords(s.state), [], "and its pid file removed");
    const second = await sup.start(llamafileSpec(path));
    assert.notEqual(second.pid, first.pid);
    assert.equal((await getJson(`${second.url}/health`)).status, 200);
  });
});

Deno.test("aborting a start stops the server that is loading", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "slow", { neverReady: true });
    const sup = s.sup();
    const spec = llamafileSpec(path);
    const ctl = new AbortController();
    const started = sup.start(spec, { signal: ctl.signal });
    const pid = await loadingPid(s.state, started);
    ctl.abort();
    await assert.rejects(started, { name: "AbortError" });
    assert.equal(processAlive(pid), false);
    assert.ok(isPortFree(spec.port));
    assert.deepEqual(sup.servers, []);
  });
});

Deno.test("a server that ignores SIGTERM is killed after the grace period", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "stubborn", { ignoreSigterm: true });
    const sup = s.sup({ graceMs: 500 });
    const server = await sup.start(llamafileSpec(path));
    const result = await server.stop();
    assert.equal(result.killed, true);
    assert.equal(result.clean, false);
    assert.equal(result.signal, "SIGKILL");
    assert.equal(processAlive(server.pid!), false);
    assert.ok(s.out.some((l) => l.includes("sent SIGKILL")), s.out.join(""));
  });
});

Deno.test("exit status 134 after SIGTERM counts as a clean stop", async () => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "aborts", { sigtermExitCode: 134 });
    const server = await s.sup().start(llamafileSpec(path));
    const result = await server.stop();
    assert.equal(result.code, 134);
    assert.equal(result.clean, true);
    assert.equal(result.killed, false);
  });
});

Deno.test("a second supervisor adopts the same model, never restarts or kills it", async (t) => {
  await sandbox(async (s) => {
    const tiny = await makeFakeLlamafile(s.dir, "tiny");
    const other = await makeFakeLlamafile(s.dir, "other");
    const first = s.sup();
    const server = await first.start(llamafileSpec(tiny, { ctxSize: 3072 }));
    const second = s.sup();

    await t.step("a different model is not adopted", async () => {
      assert.equal(await second.adopt("llamafile", other), undefined);
      assert.equal(await second.adopt("llama-server"), undefined);
    });

    await t.step("the same model is adopted, not started again", async () => {
      const adopted = await startLlamafile(second, tiny, { ctxSize: 3072 });
      assert.equal(adopted.pid, server.pid);
      assert.equal(adopted.url, server.url);
      assert.equal(adopted.adopted, true);
      assert.equal(adopted.owned, false, "its Harvey is alive: it is not ours to stop");
      assert.equal(adopted.nCtx, 3072);
      assert.deepEqual(adopted.modelIds, ["tiny"]);
      assert.equal(second.spawnCount, 0);
      assert.equal((await second.adopt("llamafile"))?.pid, server.pid);
    });

    await t.step("stopping the adopter leaves the server running", async () => {
      const [adopted] = second.servers;
      assert.deepEqual(await adopted.stop(), { stopped: false, clean: true, killed: false });
      await second.stopAll();
      assert.equal((await getJson(`${server.url}/health`)).status, 200);
      assert.equal(processAlive(server.pid!), true);
      assert.equal((await readRecords(s.state)).length, 1);
    });

    await t.step("the user can still ask to stop it", async () => {
      const adopted = await second.adopt("llamafile", tiny);
      const result = await adopted!.stop({ force: true });
      assert.equal(result.stopped, true);
      assert.ok(await waitGone(server.pid!));
      assert.deepEqual(await readRecords(s.state), []);
      await first.stopAll();
      assert.deepEqual(first.servers, []);
    });
  });
});

Deno.test("a server attached by URL is used but never stopped", async () => {
  await sandbox(async (s) => {
    const fake = await startFakeOpenAI({ modelId: "external", nCtx: 1536 });
    try {
      const sup = s.sup();
      const server = await sup.attach("llamafile", `${fake.url}/v1/`);
      assert.equal(server.url, fake.url);
      assert.equal(server.port, fake.port);
      assert.equal(server.owned, false);
      assert.equal(server.model, "external");
      assert.equal(server.nCtx, 1536);
      await assert.rejects(server.stop({ force: true }), /its process id is unknown/);
      await sup.stopAll();
      assert.deepEqual(sup.servers, []);
      assert.equal((await getJson(`${fake.url}/health`)).status, 200);
      await assert.rejects(
        sup.attach("llamafile", `http://127.0.0.1:${findFreePort()}`),
        /^HarveyError: Nothing answers at http:\/\/127\.0\.0\.1:\d+: expected an OpenAI-compatible server/,
      );
      await assert.rejects(sup.attach("llamafile", "not a url"), /Expected a URL/);
    } finally {
      await fake.close();
    }
  });
});

Deno.test("stale and unreadable pid files are removed", async () => {
  await sandbox(async (s) => {
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    const base = {
      backend: "llamafile",
      model: "gone",
      model_path: join(s.dir, "gone.llamafile"),
      url: "http://127.0.0.1:1",
      started_at: new Date().toISOString(),
      harvey_pid: dead.pid,
    };
    writeRecord(s.state, { ...base, pid: dead.pid, port: 1 });
    // A live process that is not the server (its command line lacks the model path).
    writeRecord(s.state, { ...base, pid: Deno.pid, port: 2 });
    await Deno.writeTextFile(join(s.state, "server-llamafile-3.pid.json"), "{not json");
    await Deno.writeTextFile(join(s.state, "harvey.yaml"), "model: x\n");
    const sup = s.sup();
    assert.equal(await sup.adopt("llamafile"), undefined);
    const left = [];
    for await (const e of Deno.readDir(s.state)) left.push(e.name);
    assert.deepEqual(left, ["harvey.yaml"]);
    assert.ok(s.out.some((l) => l.includes("stale pid file")), s.out.join(""));
  });
});

Deno.test("a taken port is identified and a free one offered", async (t) => {
  await sandbox(async (s) => {
    const path = await makeFakeLlamafile(s.dir, "tiny");
    const sup = s.sup();
    const expectTaken = async (port: number) => {
      const err = await sup.start(llamafileSpec(path, { port })).then(
        () => assert.fail("start should have failed"),
        (e) => e,
      );
      assert.ok(err instanceof PortInUseError, String(err));
      assert.equal(err.use.port, port);
      assert.notEqual(err.freePort, port);
      assert.ok(isPortFree(err.freePort));
      assert.equal(err.message.includes("\n"), false);
      return err;
    };

    await t.step("an OpenAI-compatible server", async () => {
      const fake = await startFakeOpenAI({ modelId: "squatter" });
      try {
        const err = await expectTaken(fake.port);
        assert.deepEqual(err.use.occupant, { kind: "openai", models: ["squatter"] });
        assert.match(
          err.message,
          /^Port \d+ is already in use by an OpenAI-compatible server serving squatter; use another port \(\d+ is free\)/,
        );
      } finally {
        await fake.close();
      }
    });

    await t.step("Ollama", async () => {
      const fake = await startFakeOllama();
      try {
        const err = await expectTaken(fake.port);
        assert.equal(err.use.occupant.kind, "ollama");
        assert.match(err.message, /in use by Ollama /);
      } finally {
        await fake.close();
      }
    });

    await t.step("something else", async () => {
      const ctl = new AbortController();
      const other = Deno.serve(
        { hostname: "127.0.0.1", port: 0, signal: ctl.signal, onListen: () => {} },
        () => new Response("hello", { status: 200 }),
      );
      try {
        const err = await expectTaken(other.addr.port);
        assert.deepEqual(err.use.occupant, { kind: "other" });
        assert.match(err.message, /something that is not an OpenAI-compatible server/);
      } finally {
        ctl.abort();
        await other.finished;
      }
    });

    await t.step({
      name: "a server bound with SO_REUSEPORT, as llama-server does",
      ignore: !LINUX,
      fn: async () => {
        // Deno needs --unstable-net for SO_REUSEPORT, so the squatter is a child process.
        const code = `Deno.serve({ hostname: "127.0.0.1", port: 0, reusePort: true,
          onListen: (a) => console.log(a.port) },
          () => Response.json({ object: "list", data: [{ id: "shared", object: "model" }] }));`;
        const squatter = new Deno.Command(Deno.execPath(), {
          args: ["eval", "--unstable-net", code],
          stdin: "null",
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = squatter.stdout.pipeThrough(new TextDecoderStream()).getReader();
        try {
          const port = Number((await reader.read()).value);
          const err = await expectTaken(port);
          assert.deepEqual(err.use.occupant, { kind: "openai", models: ["shared"] });
        } finally {
          squatter.kill("SIGKILL");
          await squatter.status;
          await reader.cancel();
        }
      },
    });

    await t.step("a server of Harvey's own is named from its pid file", async () => {
      const running = await sup.start(llamafileSpec(path));
      const err = await expectTaken(running.port);
      assert.match(
        err.message,
        new RegExp(`in use by llamafile tiny \\(started by Harvey, pid ${running.pid}\\)`),
      );
      await running.stop();
    });

    assert.equal(sup.spawnCount, 1);
  });
});

Deno.test("a llamafile the kernel refuses to execute runs through sh", async (t) => {
  await sandbox(async (s) => {
    await t.step("no execute permission", async () => {
      const path = await makeFakeLlamafile(s.dir, "noexec", { form: "no-exec-bit" });
      const server = await s.sup().start(llamafileSpec(path));
      assert.deepEqual(server.modelIds, ["noexec"]);
      assert.ok(s.out.some((l) => l.includes("running it with sh")), s.out.join(""));
      await server.stop();
    });
    await t.step("an APE-style shell header without #!", async () => {
      const path = await makeFakeLlamafile(s.dir, "ape", { form: "ape-header" });
      const server = await s.sup().start(llamafileSpec(path));
      assert.deepEqual(server.modelIds, ["ape"]);
      await server.stop();
    });
  });
});

Deno.test("llama-server serves a GGUF file and is adopted by its -m path", async () => {
  await sandbox(async (s) => {
    const binary = await makeFakeLlamaServer(s.dir);
    const gguf = join(s.dir, "qwen-tiny-Q4_K_M.gguf");
    await Deno.writeTextFile(gguf, "GGUF");
    const sup = s.sup();
    const server = await startLlamaServer(sup, gguf, { binary, ctxSize: 1024, gpuLayers: 0 });
    assert.equal(server.backend, "llama-server");
    assert.equal(server.model, "qwen-tiny-Q4_K_M");
    assert.deepEqual(server.modelIds, ["qwen-tiny-Q4_K_M"]);
    assert.equal(server.nCtx, 1024);
    const adopted = await s.sup().adopt("llama-server", gguf);
    assert.equal(adopted?.pid, server.pid);
    assert.equal(await s.sup().adopt("llamafile", gguf), undefined);
  });
});

/** Starts supervisor_parent.ts and reads the line it prints once its server is ready. */
async function startParent(state: string, llamafile: string, flags: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-prompt",
      "--quiet",
      PARENT,
      "--state",
      state,
      "--llamafile",
      llamafile,
      ...flags,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  while (!buffered.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
  }
  const rest = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const line = buffered.split("\n")[0];
  const finish = async () => {
    const status = await child.status;
    await rest;
    return { status, stderr: await errText };
  };
  if (!line) {
    const { status, stderr } = await finish();
    throw new Error(`supervisor_parent.ts exited with ${status.code}: ${stderr}`);
  }
  const info = JSON.parse(line) as { pid: number; url: string; port: number };
  return { child, info, finish };
}

Deno.test({
  name: "kill -9 of Harvey leaves no server behind (setpriv --pdeathsig)",
  ignore: !HAS_SETPRIV,
  fn: async () => {
    await sandbox(async (s) => {
      const path = await makeFakeLlamafile(s.dir, "tiny");
      const { child, info, finish } = await startParent(s.state, path, []);
      try {
        assert.equal((await getJson(`${info.url}/health`)).status, 200);
        Deno.kill(child.pid, "SIGKILL");
        const { status } = await finish();
        assert.equal(status.signal, "SIGKILL");
        assert.ok(await waitGone(info.pid), `server ${info.pid} outlived its Harvey`);
      } finally {
        killIfAlive(info.pid);
      }
    });
  },
});

Deno.test({
  name: "a server orphaned by kill -9 (no pdeathsig) is adopted as owned and stopped",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await sandbox(async (s) => {
      const path = await makeFakeLlamafile(s.dir, "orphan");
      const { child, info, finish } = await startParent(s.state, path, ["--no-pdeathsig"]);
      try {
        Deno.kill(child.pid, "SIGKILL");
        await finish();
        assert.equal(processAlive(info.pid), true);
        const sup = s.sup();
        const adopted = await startLlamafile(sup, path);
        assert.equal(adopted.pid, info.pid);
        assert.equal(adopted.owned, true, "the Harvey that started it is gone");
        assert.equal(sup.spawnCount, 0);
        assert.equal((await readRecords(s.state))[0].record?.harvey_pid, Deno.pid);
        const result = await adopted.stop();
        assert.equal(result.stopped, true);
        assert.ok(await waitGone(info.pid));
        assert.deepEqual(await readRecords(s.state), []);
      } finally {
        killIfAlive(info.pid);
      }
    });
  },
});

Deno.test({
  name: "SIGTERM to Harvey stops its servers through the exit hooks",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await sandbox(async (s) => {
      const path = await makeFakeLlamafile(s.dir, "tiny");
      const { child, info, finish } = await startParent(s.state, path, [
        "--no-pdeathsig",
        "--hooks",
      ]);
      try {
        Deno.kill(child.pid, "SIGTERM");
        const { status } = await finish();
        assert.equal(status.code, 143);
        assert.equal(processAlive(info.pid), false);
        assert.deepEqual(await readRecords(s.state), []);
      } finally {
        killIfAlive(info.pid);
      }
    });
  },
});

Deno.test({
  name: "Deno.exit stops the servers through the unload hook",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await sandbox(async (s) => {
      const path = await makeFakeLlamafile(s.dir, "tiny");
      const { info, finish } = await startParent(s.state, path, [
        "--no-pdeathsig",
        "--exit-after-start",
      ]);
      try {
        const { status } = await finish();
        assert.equal(status.code, 0);
        assert.ok(await waitGone(info.pid), `server ${info.pid} outlived Deno.exit`);
      } finally {
        killIfAlive(info.pid);
      }
    });
  },
});
