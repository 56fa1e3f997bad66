/**
 * The OS sandbox: its command lines (bubblewrap, and the sandbox-exec profile that cannot run
 * here), the workspace scan and its cache, what a sandboxed command can and cannot do, the
 * commands of the model that only run inside it, and the pid namespace that takes a
 * llamafile launcher's children down with it.
 *
 * On Linux these tests need bubblewrap: a missing bwrap fails them with a message instead of
 * skipping them (CI installs it).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runDoctor } from "../src/doctor.ts";
import { runProgram } from "../src/ops/run.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { findFreePort } from "../src/runtime/probe.ts";
import { findOnPath } from "../src/runtime/spawn.ts";
import { probeSandbox } from "../src/security/sandbox.ts";
import { bwrapArgs, sandboxExecProfile, type SandboxPlan } from "../src/security/sandbox_plan.ts";
import { WorkspaceScan } from "../src/security/sandbox_scan.ts";
import { spawnHarvey } from "./harvey_child.ts";
import { type TestSession, testSession } from "./helpers.ts";

const LINUX = Deno.build.os === "linux";
const PATH = Deno.env.get("PATH") ?? "";

/** On Linux the sandbox must be there: fail with how to get it rather than skip. */
async function requireSandbox(): Promise<void> {
  const status = await probeSandbox({ env: { PATH } });
  if (!status.available) {
    throw new Error(
      `The sandbox tests need bubblewrap on Linux: ${status.detail} (${status.howTo}); CI installs it`,
    );
  }
}

const PLAN: SandboxPlan = {
  root: "/w",
  writable: true,
  network: false,
  cwd: "/w",
  readOnly: ["/w/.git", "/w/sub/.git", "/w/agents"],
  maskFiles: ["/w/.env", "/h/.netrc"],
  maskDirs: ["/h/.ssh"],
  emptyFile: "/tmp/empty",
};

Deno.test("bwrapArgs: read-only root, fresh /dev /proc /tmp /run, the workspace, then the masks", () => {
  const args = bwrapArgs("/usr/bin/bwrap", ["/bin/ls", "-la"], PLAN);
  const at = (...words: string[]) => {
    for (let i = 0; i < args.length; i++) {
      if (words.every((w, j) => args[i + j] === w)) return i;
    }
    return -1;
  };
  assert.equal(args[0], "/usr/bin/bwrap");
  assert.deepEqual(args.slice(-3), ["--", "/bin/ls", "-la"]);
  assert.equal(at("--ro-bind", "/", "/"), 1);
  for (
    const w of [["--dev", "/dev"], ["--proc", "/proc"], ["--tmpfs", "/tmp"], ["--tmpfs", "/run"]]
  ) {
    assert.ok(at(...w) > 0, w.join(" "));
  }
  const workspace = at("--bind", "/w", "/w");
  assert.ok(workspace > at("--tmpfs", "/tmp"), "a workspace under /tmp is bound after the tmpfs");
  assert.ok(at("--ro-bind-try", "/w/.git", "/w/.git") > workspace);
  assert.ok(at("--ro-bind-try", "/w/sub/.git", "/w/sub/.git") > workspace);
  assert.ok(
    at("--ro-bind", "/tmp/empty", "/w/.env") > at("--ro-bind-try", "/w/agents", "/w/agents"),
  );
  assert.ok(at("--tmpfs", "/h/.ssh", "--remount-ro", "/h/.ssh") > workspace);
  for (const w of ["--unshare-pid", "--unshare-net", "--die-with-parent"]) {
    assert.ok(args.includes(w), w);
  }
  // In bwrap's process group (no --new-session), a stop reaches the command during setup too.
  assert.equal(args.includes("--new-session"), false);
  assert.ok(at("--cap-drop", "ALL") > 0);
  assert.ok(at("--chdir", "/w") > 0);

  const open = bwrapArgs("/b", ["x"], { ...PLAN, network: true, writable: false });
  assert.equal(open.includes("--unshare-net"), false);
  assert.ok(open.join(" ").includes("--ro-bind /w /w"), "read-only workspace");
  assert.equal(open.includes("/w/.git"), false, "no need to protect .git in a read-only one");
});

Deno.test("sandboxExecProfile: writes only to the workspace, .git kept, masks unreadable, no network", () => {
  const profile = sandboxExecProfile({ ...PLAN, tmpDir: "/private/tmp/h" });
  const lines = profile.trim().split("\n");
  assert.deepEqual(lines.slice(0, 3), ["(version 1)", "(allow default)", "(deny file-write*)"]);
  const allow = lines.findIndex((l) => l.startsWith("(allow file-write*"));
  assert.match(lines[allow], /\(subpath "\/w"\) \(subpath "\/private\/tmp\/h"\)/);
  assert.match(lines[allow], /\(literal "\/dev\/null"\)/);
  const readOnly = lines.findIndex((l) => l.includes('(subpath "/w/.git")'));
  assert.ok(readOnly > allow, "the narrower rule comes last (the last match wins)");
  assert.match(lines[readOnly], /^\(deny file-write\* .*\(subpath "\/w\/sub\/\.git"\)/);
  assert.ok(
    lines.some((l) =>
      l === '(deny file-read* (literal "/w/.env") (literal "/h/.netrc") (subpath "/h/.ssh"))'
    ),
  );
  assert.equal(lines.at(-1), "(deny network*)");
  const open = sandboxExecProfile({
    ...PLAN,
    network: true,
    writable: false,
    maskFiles: [],
    maskDirs: [],
  });
  assert.doesNotMatch(open, /network/);
  assert.doesNotMatch(open, /subpath "\/w"/);
  const odd = sandboxExecProfile({ ...PLAN, root: '/w/a "b"\\c' });
  assert.match(odd, /\(subpath "\/w\/a \\"b\\"\\\\c"\)/, "quotes and backslashes escaped");
});

Deno.test("probeSandbox says why there is none and how to get it", async () => {
  const empty = await Deno.makeTempDir({ prefix: "harvey-nobin-" });
  try {
    const none = await probeSandbox({ env: { PATH: empty }, os: "linux" });
    assert.equal(none.available, false);
    assert.match(none.detail, /bubblewrap \(bwrap\) was not found on PATH/);
    assert.match(none.howTo!, /apt install bubblewrap/);
    const windows = await probeSandbox({ env: { PATH: empty }, os: "windows" });
    assert.equal(windows.available, false);
    assert.match(windows.howTo!, /WSL 2/);
    await Deno.writeTextFile(join(empty, "sandbox-exec"), "#!/bin/sh\n");
    await Deno.chmod(join(empty, "sandbox-exec"), 0o755);
    const mac = await probeSandbox({ env: { PATH: empty }, os: "darwin" });
    assert.equal(mac.available, true);
    assert.equal(mac.kind, "sandbox-exec");
    // A bwrap that cannot start a sandbox (user namespaces disabled) is not a sandbox.
    await Deno.writeTextFile(
      join(empty, "bwrap"),
      "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n",
    );
    await Deno.chmod(join(empty, "bwrap"), 0o755);
    const broken = await probeSandbox({ env: { PATH: `${empty}:${PATH}` }, os: "linux" });
    assert.equal(broken.available, false);
    assert.match(broken.detail, /cannot start a sandbox here \(bwrap: setting up uid map/);
    assert.match(broken.howTo!, /unprivileged user namespaces/);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("the workspace scan finds every .git and secret, and lists only folders that changed", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "harvey-scan-" }));
  try {
    for (const d of [".git", "src/lib", "vendor/dep/.git", "keys.pem", "node_modules/x"]) {
      await Deno.mkdir(join(root, d), { recursive: true });
    }
    await Deno.writeTextFile(join(root, "wt.git.txt"), "");
    await Deno.writeTextFile(join(root, "src/.git"), "gitdir: /elsewhere\n");
    await Deno.writeTextFile(join(root, "src/lib/.env.local"), "K=v\n");
    await Deno.writeTextFile(join(root, "node_modules/x/server.key"), "k\n");
    await Deno.writeTextFile(join(root, "src/lib/a.ts"), "");
    await Deno.symlink(join(root, "src/lib/.env.local"), join(root, "config.txt"));
    await Deno.symlink("src/lib/.env.local", join(root, "id_rsa"));
    const rules = {
      key: "k",
      hidden: (rel: string) => /(^|\/)(\.env|id_rsa)|\.(pem|key)$/.test(rel),
      readOnly: (rel: string) => rel === "src/lib/a.ts",
      hasRulesBelow: () => false,
    };
    // Trusting fresh listings (a negative racy window) lets the test see the cache work.
    const scan = new WorkspaceScan(root, { racyMs: -10_000 });
    const first = scan.scan(rules);
    const rel = (paths: string[]) => paths.map((p) => p.slice(root.length + 1)).sort();
    assert.deepEqual(rel(first.gits), [".git", "src/.git", "vendor/dep/.git"]);
    assert.deepEqual(rel(first.maskFiles), [
      "node_modules/x/server.key",
      "src/lib/.env.local",
      "src/lib/.env.local",
    ]);
    assert.deepEqual(rel(first.maskDirs), ["keys.pem"]);
    assert.deepEqual(rel(first.readOnly), ["src/lib/a.ts"]);
    assert.equal(first.listed, first.folders);

    const again = scan.scan(rules);
    assert.equal(again.listed, 0, "nothing changed: no folder listed again");
    assert.deepEqual(rel(again.maskFiles), rel(first.maskFiles));

    await Deno.writeTextFile(join(root, "src/.env"), "K=v\n");
    await Deno.mkdir(join(root, "vendor/other/.git"), { recursive: true });
    const changed = scan.scan(rules);
    assert.ok(changed.listed >= 2 && changed.listed < changed.folders, `${changed.listed} listed`);
    assert.ok(rel(changed.maskFiles).includes("src/.env"));
    assert.ok(rel(changed.gits).includes("vendor/other/.git"));

    const other = scan.scan({ ...rules, key: "k2", hidden: () => false });
    // New rules reuse the listings: only keys.pem, masked until now, is walked into.
    assert.equal(other.listed, 1);
    assert.deepEqual(other.maskFiles, []);

    // With the real racy window, a folder changed a moment ago is listed every time.
    const fresh = new WorkspaceScan(root);
    fresh.scan(rules);
    assert.ok(fresh.scan(rules).listed > 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "/security and harvey doctor say what the sandbox covers",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    const s = await testSession({ files: { "agents/harvey.yaml": "sandbox:\n  network: true\n" } });
    try {
      assert.equal(await s.run("/security"), 0);
      assert.match(
        s.out.text,
        /Sandbox: +bubblewrap \(\/\S+\/bwrap\): the system read-only; the workspace writable except every \.git, agents\/ and read-only paths; secrets and \$HOME credentials masked; a private \/tmp; its own pids and \/proc; network on \(sandbox\.network\)\n +used by: safe-mode ! and \/run, every git Harvey runs, all commands of the model\n/,
      );
      assert.match(
        s.out.text,
        /Safe mode: on — \/run and ! run only allowed commands, held to reading, in the OS sandbox/,
      );
      const doctor = new BufferOutput();
      await runDoctor(s.agent, doctor, { os: "linux" });
      assert.match(doctor.text, /✓ sandbox +bubblewrap \(\/\S+\/bwrap\): the system read-only/);
      assert.doesNotMatch(doctor.text, /→ sandbox:/);
    } finally {
      await s.close();
    }
  },
});

/** A session whose commands from the model run sandboxed (safe mode off: any program). */
async function modelSession(opts: { config?: string; env?: Record<string, string> } = {}) {
  const s = await testSession({
    files: {
      "agents/harvey.yaml": opts.config ?? "safe_mode: false\n",
      ".env": "SECRET=dotenv-sandbox-secret\n",
      ".env.d/prod": "SECRET=dir-secret\n",
      "src/a.ts": "export const a = 1;\n",
      "agents/harvey_history": "typed-secret-in-history\n",
    },
    env: opts.env,
  });
  const git = (args: string[], cwd = s.root) =>
    new Deno.Command("git", { args, cwd, env: { GIT_CONFIG_GLOBAL: "/dev/null" } }).output();
  assert.ok((await git(["init", "-q"])).success);
  assert.ok((await git(["init", "-q", "sub"])).success);
  await Deno.mkdir(join(s.root, "wt"));
  await Deno.writeTextFile(join(s.root, "wt/.git"), "gitdir: /nowhere\n");
  return s;
}

/** Runs `sh -c SCRIPT` as the model would; returns the status and the output. */
async function asModel(s: TestSession, script: string): Promise<{ code: number; text: string }> {
  const r = await runProgram(s.agent, ["sh", "-c", script], { source: "model" });
  return { code: r.code, text: r.captured };
}

Deno.test({
  name: "inside the sandbox: the workspace is writable, .git, agents/, the rest read-only",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    const outside = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "harvey-ro-" });
    const s = await modelSession();
    try {
      const made = await asModel(s, "echo made > made.txt && cat made.txt");
      assert.equal(made.code, 0, made.text);
      assert.equal(await Deno.readTextFile(join(s.root, "made.txt")), "made\n");
      for (
        const target of [
          ".git/config",
          "sub/.git/config",
          "wt/.git",
          "agents/harvey.yaml",
          "agents/new",
          `${outside}/x`,
          "/usr/harvey-x",
        ]
      ) {
        const r = await asModel(s, `echo pwn >> ${target}`);
        assert.notEqual(r.code, 0, `${target} was writable`);
        assert.match(r.text, /Read-only file system|Permission denied/, target);
      }
      assert.deepEqual([...Deno.readDirSync(outside)], []);
      assert.match(await Deno.readTextFile(join(s.root, "wt/.git")), /^gitdir: \/nowhere\n$/);
      const log = await Deno.readTextFile(join(s.root, "agents/audit.jsonl"));
      assert.match(log, /"details":"sh -c 'echo made > made\.txt && cat made\.txt' \(sandboxed\)"/);
    } finally {
      await s.close();
      await Deno.remove(outside, { recursive: true });
    }
  },
});

Deno.test({
  name: "inside the sandbox: secrets, Harvey's history and $HOME's credentials are masked",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    // Outside /tmp, which the sandbox replaces anyway.
    const home = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "harvey-home-" });
    await Deno.mkdir(join(home, ".ssh"));
    await Deno.writeTextFile(join(home, ".ssh/id_ed25519"), "home-ssh-key\n");
    await Deno.writeTextFile(join(home, ".netrc"), "machine x password home-netrc\n");
    await Deno.mkdir(join(home, ".config/gh"), { recursive: true });
    await Deno.writeTextFile(join(home, ".config/gh/hosts.yml"), "oauth_token: home-gh\n");
    const s = await modelSession({ env: { HOME: home } });
    try {
      const r = await asModel(
        s,
        // One stream (2>&1), so "end" comes last whatever order the two pipes are read in.
        `exec 2>&1; cat .env .env.d/prod agents/harvey_history ${home}/.netrc; ls -A .env.d ${home}/.ssh ${home}/.config/gh; cat ${home}/.ssh/id_ed25519; echo end`,
      );
      for (
        const secret of ["dotenv-sandbox", "dir-secret", "typed-secret", "home-ssh", "home-netrc"]
          .concat(["home-gh"])
      ) {
        assert.equal(r.text.includes(secret), false, `${secret} was readable: ${r.text}`);
      }
      assert.match(r.text, /end\n$/);
      assert.equal(
        await Deno.readTextFile(join(s.root, ".env")),
        "SECRET=dotenv-sandbox-secret\n",
        "the mask changes nothing on disk",
      );
      // A secret the user opened with an exact permissions entry is not masked.
      assert.equal(await s.run("/permissions set .env read"), 0, s.err.text);
      assert.match((await asModel(s, "cat .env")).text, /dotenv-sandbox-secret/);
    } finally {
      await s.close();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "inside the sandbox: a private /tmp, its own pids, no capabilities, no network",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    const visible = await Deno.makeTempFile({ prefix: "harvey-host-tmp-" });
    let connections = 0;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      connections++;
      return new Response("hi");
    });
    const port = server.addr.port;
    const s = await modelSession();
    try {
      const r = await asModel(
        s,
        `test -e ${visible} && echo host-tmp-visible; test -e /proc/${Deno.pid}/environ && echo harvey-visible; ls /proc | grep -c '^[0-9]'; grep CapEff /proc/self/status`,
      );
      assert.doesNotMatch(r.text, /host-tmp-visible|harvey-visible/);
      const pids = Number(r.text.split("\n")[0]);
      assert.ok(pids > 0 && pids < 10, `${pids} processes visible`);
      assert.match(r.text, /CapEff:\s+0+\n/);
      const bash = findOnPath("bash", PATH);
      if (bash) {
        const probe =
          `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3 && cat <&3'`;
        const closed = await asModel(s, probe);
        assert.notEqual(closed.code, 0);
        assert.equal(connections, 0, "the sandbox reached the network");
        await s.close();
        const open = await modelSession({
          config: "safe_mode: false\nsandbox:\n  network: true\n",
        });
        try {
          const reached = await asModel(open, probe);
          assert.match(reached.text, /hi/, "sandbox.network: true allows the network");
          assert.equal(connections, 1);
        } finally {
          await open.close();
        }
      }
    } finally {
      await s.close();
      await server.shutdown();
      await Deno.remove(visible);
    }
  },
});

Deno.test({
  name: "a git of the model is hardened too: the repository's fsmonitor does not run",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    const s = await modelSession();
    try {
      const config = join(s.root, ".git/config");
      await Deno.writeTextFile(config, '[core]\n\tfsmonitor = "echo FSMONITOR-RAN >&2; echo"\n', {
        append: true,
      });
      const r = await runProgram(s.agent, ["git", "status", "--short"], { source: "model" });
      assert.equal(r.code, 0, r.captured);
      assert.match(r.captured, /\?\? src\//);
      assert.doesNotMatch(r.captured, /FSMONITOR-RAN/);
    } finally {
      await s.close();
    }
  },
});

/** The pids whose command line holds `marker` (zombies and this process left out). */
function pidsWith(marker: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(marker)) {
        pids.push(Number(e.name));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Polls until no process holds `marker` (bounded; no time is asserted). */
async function waitNone(marker: string): Promise<number[]> {
  for (let i = 0; i < 400 && pidsWith(marker).length; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  return pidsWith(marker);
}

Deno.test({
  name: "Ctrl-C while the sandbox is still being set up stops the command all the same",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    const s = await modelSession();
    const marker = "12.0405";
    try {
      // A stop that lands before --die-with-parent holds must still reach the command.
      for (const delay of [0, 2, 4, 6, 8, 10, 15, 20, 30]) {
        const ctl = new AbortController();
        setTimeout(() => ctl.abort(), delay);
        const r = await runProgram(s.agent, ["sleep", marker], {
          source: "model",
          signal: ctl.signal,
        });
        assert.equal(r.interrupted, true);
        assert.deepEqual(await waitNone(marker), [], `a sleep outlived a stop after ${delay} ms`);
      }
    } finally {
      for (const pid of pidsWith(marker)) Deno.kill(pid, "SIGKILL");
      await s.close();
    }
  },
});

Deno.test({
  name: "run_timeout kills a sandboxed command and everything it started",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    const s = await modelSession({ config: "safe_mode: false\nrun_timeout: 300ms\n" });
    const marker = "301.0203";
    try {
      const r = await runProgram(s.agent, ["sh", "-c", `sleep ${marker} & sleep ${marker}`], {
        source: "model",
      });
      assert.equal(r.timedOut, true);
      assert.deepEqual(await waitNone(marker), [], "a sleep outlived the sandbox");
    } finally {
      for (const pid of pidsWith(marker)) Deno.kill(pid, "SIGKILL");
      await s.close();
    }
  },
});

Deno.test("without a sandbox: the model's commands are refused, the user's are run after one notice", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey-nobwrap-" });
  for (const name of ["ls", "sh"]) {
    const real = findOnPath(name, PATH);
    if (real) await Deno.symlink(real, join(bin, name));
  }
  const s = await testSession({ env: { PATH: bin }, files: { "a.txt": "a\n" } });
  try {
    await assert.rejects(
      runProgram(s.agent, ["ls"], { source: "model" }),
      /commands from the model run only inside the OS sandbox, and there is none: bubblewrap \(bwrap\) was not found on PATH \(apt install bubblewrap/,
    );
    if (Deno.build.os === "linux") {
      assert.equal(await s.run("!ls\n!ls"), 0, s.err.text);
      const notices = s.err.text.split("\n").filter((l) => l.startsWith("Commands run without"));
      assert.equal(notices.length, 1, s.err.text);
      assert.match(notices[0], /without the OS sandbox: bubblewrap \(bwrap\) was not found/);
      assert.match(s.out.text, /a\.txt/);
    }
    const log = await Deno.readTextFile(join(s.root, "agents/audit.jsonl"));
    assert.match(log, /"action":"run","details":"ls: Refused: commands from the model/);

    s.out.text = "";
    assert.equal(await s.run("/security"), 0);
    assert.match(
      s.out.text,
      /Sandbox: +none — bubblewrap \(bwrap\) was not found on PATH; apt install bubblewrap/,
    );
    assert.match(s.out.text, /safe-mode commands run without it; the model's commands are refused/);
    const doctor = new BufferOutput();
    await runDoctor(s.agent, doctor, { os: "linux" });
    assert.match(
      doctor.text,
      /✗ sandbox +bubblewrap \(bwrap\) was not found on PATH — the model's commands are refused/,
    );
    assert.match(doctor.text, /→ sandbox: apt install bubblewrap, dnf install bubblewrap/);
  } finally {
    await s.close();
    await Deno.remove(bin, { recursive: true });
  }
});

/** A llamafile launcher that starts the real server as its child and waits: no `exec`. */
async function writeForkingLauncher(dir: string): Promise<string> {
  const path = join(dir, "forking.llamafile");
  const fake = new URL("./fixtures/fake_llamafile.ts", import.meta.url).pathname;
  const denoDir = Deno.env.get("DENO_DIR");
  await Deno.writeTextFile(
    path,
    [
      "#!/bin/sh",
      ...(denoDir ? [`export DENO_DIR='${denoDir}'`] : []),
      `'${Deno.execPath()}' run --quiet --no-config --no-prompt --allow-net --allow-env --allow-read '${fake}' --fake-self "$0" "$@" &`,
      "wait",
      "",
    ].join("\n"),
  );
  await Deno.chmod(path, 0o755);
  return path;
}

Deno.test({
  name: "kill -9 of Harvey takes down the real server of a launcher that does not exec",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    const root = await Deno.makeTempDir({ prefix: "harvey-orphan-" });
    const launcher = await writeForkingLauncher(root);
    await Deno.mkdir(join(root, "agents"));
    await Deno.writeTextFile(
      join(root, "agents/harvey.yaml"),
      `llamafile:\n  url: http://127.0.0.1:${findFreePort()}\n`,
    );
    const child = spawnHarvey(["--llamafile", launcher, "--run", "-"], {
      cwd: root,
      env: { PATH },
    });
    try {
      // Wait until Harvey uses the model: the server is up.
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!/Using model/.test(seen)) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      assert.match(seen, /Using model/, seen);
      const servers = pidsWith(launcher).filter((p) =>
        Deno.readTextFileSync(`/proc/${p}/cmdline`).includes("fake_llamafile.ts")
      );
      assert.equal(servers.length, 1, `one real server runs: ${servers}`);
      Deno.kill(child.pid, "SIGKILL");
      await child.status;
      reader.releaseLock();
      assert.deepEqual(await waitNone(launcher), [], "the real server outlived Harvey");
    } finally {
      for (const pid of pidsWith(launcher)) Deno.kill(pid, "SIGKILL");
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.stdin.close().catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "the one-shot llama.cpp program and its tokenizer run in the sandbox, the prompt readable",
  ignore: !LINUX,
  fn: async () => {
    await requireSandbox();
    const s = await modelSession();
    const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "harvey-oneshot-" });
    try {
      // A stand-in for llama-completion: says which pid it has and what prompt it got.
      const program = join(dir, "llama-completion");
      await Deno.writeTextFile(
        program,
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in -p) p="$2"; shift;; -f) p=$(cat "$2"); shift;; esac; shift; done\n' +
          'echo "pid $$ prompt-bytes ${#p}"\n',
      );
      await Deno.chmod(program, 0o755);
      const { LlamaCliClient } = await import("../src/llm/llama_cli.ts");
      const client = new LlamaCliClient({
        program: { path: program, name: "llama-completion" },
        modelPath: join(dir, "m.gguf"),
        model: "m",
        ctxSize: 512,
        env: s.agent.env,
        sandbox: s.agent.sandbox,
      });
      let text = "";
      const long = "x".repeat(150_000); // over the argument limit: the prompt goes in a file
      for (const content of ["hi", long]) {
        text = "";
        await client.chat([{ role: "user", content }], { onToken: (t) => text += t });
        assert.match(text, /^pid 2 prompt-bytes \d+/, text);
        assert.ok(Number(/prompt-bytes (\d+)/.exec(text)![1]) > content.length, text);
      }
    } finally {
      await s.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
