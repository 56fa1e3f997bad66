/**
 * Pid-file adoption with exactly the permissions of `deno task harvey` (not `-A`): Deno
 * refuses its own reads of `/proc` without `--allow-all`, which once made every live server's
 * pid file look stale.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeFakeLlamafile } from "./fixtures/make_fake_llamafile.ts";
import { harveyTask, spawnHarvey } from "./harvey_child.ts";
import { processAlive, readRecords } from "../src/runtime/pid_file.ts";
import { findFreePort } from "../src/runtime/probe.ts";
import { which } from "../src/util/which.ts";

const decoder = new TextDecoder();

/** Collects a child's stream as text; `until` resolves once `pattern` has appeared. */
function collect(stream: ReadableStream<Uint8Array>) {
  let text = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const done = (async () => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      for (const w of waiters.splice(0)) {
        if (w.re.test(text)) w.resolve();
        else waiters.push(w);
      }
    }
  })();
  return {
    get text() {
      return text;
    },
    done,
    until(re: RegExp, ms: number): Promise<void> {
      if (re.test(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms:\n${text}`)), ms);
        waiters.push({ re, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

Deno.test({
  name: "a second Harvey under the task's flags adopts the server a killed Harvey left running",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "harvey-adopt-" });
    const ws = join(root, "ws");
    const bin = join(root, "bin");
    await Deno.mkdir(ws);
    await Deno.mkdir(bin);
    // The first Harvey finds no setpriv on its PATH, so its server outlives a kill -9 of it
    // (what happens where util-linux is missing); everything else it needs is there.
    const path = Deno.env.get("PATH") ?? "";
    for (const tool of ["cat", "sh", "git"]) {
      const found = await which(tool, path);
      if (found) await Deno.symlink(found, join(bin, tool));
    }
    const llamafile = await makeFakeLlamafile(root, "tiny");
    // A port of its own: whatever else runs on this machine may hold the default 8080.
    const url = ["--llamafile-url", `http://127.0.0.1:${findFreePort()}`];
    const env = { OLLAMA_HOST: "127.0.0.1:9", HOME: root };
    let serverPid: number | undefined;
    try {
      assert.ok(!harveyTask().flags.includes("-A") && !harveyTask().flags.includes("--allow-all"));
      const first = spawnHarvey(["--llamafile", llamafile, ...url], {
        cwd: ws,
        env: { ...env, PATH: bin },
      });
      const firstErr = collect(first.stderr);
      const firstOut = collect(first.stdout);
      await firstErr.until(/Using model|✓/, 60_000).catch(async (err) => {
        first.kill("SIGKILL");
        await first.status;
        throw err;
      });
      const [found] = await readRecords(join(ws, "agents"));
      serverPid = found?.record?.pid;
      assert.ok(serverPid, `a pid file was written:\n${firstErr.text}`);
      first.kill("SIGKILL");
      await first.status;
      await Promise.all([firstErr.done, firstOut.done]).catch(() => {});
      assert.equal(processAlive(serverPid), true, "the server outlives the killed Harvey");

      // The second Harvey: the task's exact flags, the normal PATH.
      const second = spawnHarvey(["--llamafile", llamafile, ...url, "--run", "-"], {
        cwd: ws,
        env,
      });
      const secondErr = collect(second.stderr);
      const secondOut = collect(second.stdout);
      const writer = second.stdin.getWriter();
      await writer.write(new TextEncoder().encode("/llamafile status\n"));
      await writer.close();
      const status = await second.status;
      await Promise.all([secondErr.done, secondOut.done]);
      const all = `${secondOut.text}\n${secondErr.text}`;
      assert.equal(status.code, 0, all);
      assert.doesNotMatch(all, /stale pid file/, "the live server's pid file is not deleted");
      assert.doesNotMatch(all, /Starting llamafile/, "no second server is started");
      assert.match(secondOut.text, new RegExp(`pid ${serverPid}`), all);
      // The second Harvey took the orphan over (its starter is gone) and stopped it at exit.
      for (let i = 0; i < 100 && processAlive(serverPid); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(processAlive(serverPid), false, "the adopted orphan is stopped at exit");
      assert.deepEqual(await readRecords(join(ws, "agents")), []);
    } finally {
      if (serverPid && processAlive(serverPid)) Deno.kill(serverPid, "SIGKILL");
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "under the task's flags the pid-file helpers read /proc: liveness, group, command line",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "harvey-proc-" });
    try {
      const dead = new Deno.Command("true").spawn();
      await dead.status;
      const script = join(dir, "probe.ts");
      const helpers = new URL("../src/runtime/pid_file.ts", import.meta.url).href;
      await Deno.writeTextFile(
        script,
        `import { processAlive, processCmdline, processGroup } from ${JSON.stringify(helpers)};
const me = Deno.pid;
console.log(JSON.stringify({
  alive: processAlive(me), dead: processAlive(${dead.pid}),
  group: processGroup(me), cmdline: processCmdline(me),
}));\n`,
      );
      const task = harveyTask();
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...task.flags, script, "marker-arg"],
        env: task.env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, decoder.decode(out.stderr));
      const seen = JSON.parse(decoder.decode(out.stdout));
      assert.equal(seen.alive, true);
      assert.equal(seen.dead, false);
      assert.ok(Number.isInteger(seen.group) && seen.group > 0, JSON.stringify(seen));
      assert.equal(seen.cmdline.at(-1), "marker-arg");
      assert.ok(seen.cmdline.includes(script));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
