import assert from "node:assert/strict";
import { join } from "node:path";
import { processAlive } from "../src/runtime/pid_file.ts";
import { testSession } from "./helpers.ts";

const UNSAFE = { "agents/harvey.yaml": "safe_mode: false\n" };

/** The last `[context: /run …]` message of the history. */
function runContext(history: { content: string }[]): string {
  const found = history.findLast((m) => m.content.startsWith("[context: /run "));
  assert.ok(found, "the output was added to the history");
  return found.content;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Waits (without a time limit of its own) until `pid` is gone; zombies count as gone. */
async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 200 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 25));
}

/** Kills what a test started if it is still there (it is not, when the code under test works). */
async function killPidsIn(root: string): Promise<void> {
  for (const name of ["sh.pid", "grandchild.pid"]) {
    const pid = Number((await Deno.readTextFile(join(root, name)).catch(() => "")).trim());
    if (pid > 0 && processAlive(pid)) Deno.kill(pid, "SIGKILL");
  }
}

async function readPid(path: string): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (/^\d+\n/.test(text)) return Number(text.trim());
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no pid in ${path}`);
}

Deno.test("!ls runs in the workspace, prints its output and the status, and adds it as context", async () => {
  const s = await testSession({ files: { "notes.md": "hi\n", "src/main.ts": "x\n" } });
  try {
    assert.equal(await s.run("!ls"), 0);
    assert.match(s.out.text, /notes\.md\nsrc\n/);
    assert.match(s.out.text, /\[exited with status 0\]/);
    const ctx = runContext(s.agent.history);
    assert.match(ctx, /^\[context: \/run ls\]/);
    assert.match(ctx, /notes\.md/);
    assert.match(ctx, /\[exited with status 0\]/);
    assert.equal(await s.run('/run ls "src"'), 0);
    assert.match(runContext(s.agent.history), /main\.ts/);
  } finally {
    await s.close();
  }
});

Deno.test("/run gives the child only the allowed variables, never keys or tokens", async () => {
  const secrets = {
    OPENAI_API_KEY: "sk-openai-secret-1234567890",
    ANTHROPIC_API_KEY: "sk-ant-secret-1234567890",
    HF_TOKEN: "hf_secrettoken1234567890",
    GITHUB_TOKEN: "ghp_secret1234567890",
    HARVEY_API_KEY: "harvey-secret-value",
    OLLAMA_TOKEN: "ollama-secret-value",
    AWS_SECRET_ACCESS_KEY: "aws-secret-value",
  };
  const s = await testSession({
    env: {
      ...secrets,
      HARVEY_MODEL: "qwen",
      OLLAMA_HOST: "http://127.0.0.1:11434",
      LC_ALL: "C",
      TMPDIR: "/tmp",
      EDITOR: "vi",
    },
  });
  try {
    assert.equal(await s.run("/safemode allow env\n!env"), 0);
    const lines = s.out.text.split("\n");
    const vars = new Map(
      lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l]),
    );
    assert.ok(vars.has("PATH"));
    assert.equal(vars.get("HARVEY_MODEL"), "HARVEY_MODEL=qwen");
    assert.equal(vars.get("OLLAMA_HOST"), "OLLAMA_HOST=http://127.0.0.1:11434");
    assert.equal(vars.get("LC_ALL"), "LC_ALL=C");
    assert.equal(vars.get("PWD"), `PWD=${s.agent.workspace.root}`);
    for (const name of [...Object.keys(secrets), "TMPDIR", "EDITOR"]) {
      assert.equal(vars.has(name), false, `${name} reached the child`);
    }
    const ctx = runContext(s.agent.history);
    const log = await Deno.readTextFile(join(s.root, "agents", "audit.jsonl"));
    for (const value of Object.values(secrets)) {
      assert.equal(s.out.text.includes(value), false);
      assert.equal(ctx.includes(value), false);
      assert.equal(log.includes(value), false);
    }
  } finally {
    await s.close();
  }
});

Deno.test("safe mode refuses a command off the allowlist, names the allowed ones, runs nothing", async () => {
  const s = await testSession();
  try {
    assert.equal(await s.run("!touch made.txt"), 1);
    assert.match(s.err.text, /Safe mode does not allow "touch"; allowed commands: ls, cat, grep/);
    assert.equal(await exists(join(s.root, "made.txt")), false);
    assert.equal(await s.run("/run find . -maxdepth 0 -exec touch made2.txt ;"), 1);
    assert.match(s.err.text, /refuses "-exec" for find/);
    assert.equal(await exists(join(s.root, "made2.txt")), false);
    assert.equal(s.agent.history.some((m) => m.content.startsWith("[context: /run")), false);
    const log = (await Deno.readTextFile(join(s.root, "agents", "audit.jsonl")))
      .trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(
      log.map((e) => [e.action, e.outcome]),
      [["run", "denied"], ["run", "denied"]],
    );
    assert.match(log[0].details, /^touch made\.txt: Safe mode does not allow/);
  } finally {
    await s.close();
  }
});

Deno.test("a failing command shows its exit status and fails the script line", async () => {
  const s = await testSession({ files: UNSAFE });
  try {
    assert.equal(await s.run("!sh -c 'echo partial; exit 3'\n!ls"), 1);
    assert.match(s.err.text, /line 1: sh exited with status 3/);
    assert.match(s.out.text, /partial/);
    assert.doesNotMatch(s.out.text, /agents/, "the script stopped at the failing line");
    const ctx = runContext(s.agent.history);
    assert.match(ctx, /partial/);
    assert.match(ctx, /\[exited with status 3\]/);
  } finally {
    await s.close();
  }
});

Deno.test("only the first 8 KB of the output go into the history, with a note", async () => {
  const big = "0123456789abcdef".repeat(1250); // 20,000 bytes
  const s = await testSession({ files: { "big.txt": big } });
  try {
    assert.equal(await s.run("!cat big.txt"), 0);
    assert.ok(s.out.text.includes(big), "the whole output is printed");
    assert.match(s.out.text, /output cut at 8 KB for the conversation; 20000 bytes in all/);
    const ctx = runContext(s.agent.history);
    assert.match(ctx, /output cut at 8 KB/);
    assert.ok(ctx.includes(big.slice(0, 8192)));
    assert.equal(ctx.includes(big.slice(0, 8193)), false);

    assert.equal(await s.run("!cat big.txt big.txt"), 0);
    assert.match(runContext(s.agent.history), /40000 bytes in all/);
    await Deno.writeTextFile(join(s.root, "small.txt"), "x".repeat(8192));
    assert.equal(await s.run("!cat small.txt"), 0);
    assert.doesNotMatch(runContext(s.agent.history), /output cut/);
  } finally {
    await s.close();
  }
});

Deno.test("run_timeout kills the whole process group, grandchildren included", async () => {
  const s = await testSession({
    files: { "agents/harvey.yaml": "safe_mode: false\nrun_timeout: 300ms\n" },
  });
  try {
    const status = await s.run(
      `!sh -c 'echo $$ > sh.pid; sleep 300 >/dev/null 2>&1 & echo $! > grandchild.pid; exec sleep 300 >/dev/null 2>&1'`,
    );
    assert.equal(status, 1);
    assert.match(s.err.text, /ran longer than run_timeout \(300ms\) and was killed/);
    const shell = await readPid(join(s.root, "sh.pid"));
    const grandchild = await readPid(join(s.root, "grandchild.pid"));
    await waitGone(shell);
    await waitGone(grandchild);
    assert.equal(processAlive(shell), false, "the shell is gone");
    assert.equal(processAlive(grandchild), false, "the background sleep is gone");
    assert.match(runContext(s.agent.history), /killed after run_timeout 300ms/);
    const log = await Deno.readTextFile(join(s.root, "agents", "audit.jsonl"));
    assert.match(log, /"details":"sh -c .*: killed after run_timeout 300ms","outcome":"error"/);
  } finally {
    await killPidsIn(s.root);
    await s.close();
  }
});

Deno.test("Ctrl-C stops the command and its process group; the session goes on", async () => {
  const s = await testSession({ files: UNSAFE });
  try {
    const ctl = new AbortController();
    const running = s.run(
      `!sh -c 'echo $$ > sh.pid; sleep 300 >/dev/null 2>&1 & echo $! > grandchild.pid; wait'`,
      { signal: ctl.signal },
    );
    const shell = await readPid(join(s.root, "sh.pid"));
    const grandchild = await readPid(join(s.root, "grandchild.pid"));
    ctl.abort();
    assert.equal(await running, 1);
    assert.match(s.err.text, /Interrupted: sh was stopped/);
    await waitGone(shell);
    await waitGone(grandchild);
    assert.equal(processAlive(shell), false);
    assert.equal(processAlive(grandchild), false);
    assert.equal(await s.run("!ls"), 0);
  } finally {
    await killPidsIn(s.root);
    await s.close();
  }
});

Deno.test("a program path must be inside the workspace and have exec permission", async () => {
  const s = await testSession({ files: UNSAFE });
  try {
    const tool = join(s.root, "tool.sh");
    await Deno.writeTextFile(tool, "#!/bin/sh\necho ran > tool.out\necho tool ran\n");
    await Deno.chmod(tool, 0o755);
    assert.equal(await s.run("!./tool.sh"), 0);
    assert.match(s.out.text, /tool ran/);
    await Deno.remove(join(s.root, "tool.out"));

    assert.equal(await s.run("/permissions set tool.sh read\n!./tool.sh"), 1);
    assert.match(s.err.text, /Permission denied: exec of "tool\.sh"/);
    assert.equal(await exists(join(s.root, "tool.out")), false);

    const touch = await new Deno.Command("sh", { args: ["-c", "command -v touch"] }).output();
    const touchPath = new TextDecoder().decode(touch.stdout).trim();
    assert.equal(await s.run(`!${touchPath} outside.txt`), 1);
    assert.match(s.err.text, /is outside the workspace; run a program from PATH by its bare name/);
    assert.equal(await exists(join(s.root, "outside.txt")), false);
  } finally {
    await s.close();
  }
});

Deno.test("arguments naming secret files are refused before anything runs", async () => {
  const s = await testSession({ files: { ".env": "OPENAI_API_KEY=sk-from-dotenv\n" } });
  try {
    assert.equal(await s.run("!cat .env"), 1);
    assert.match(s.err.text, /Permission denied: read of "\.env"/);
    assert.equal(await s.run("!cat ./src/../.env"), 1);
    assert.equal(s.out.text.includes("sk-from-dotenv"), false);
    assert.equal(s.agent.history.some((m) => m.content.includes("sk-from-dotenv")), false);
    assert.equal(await s.run("/permissions set .env read\n!cat .env"), 0);
    assert.match(s.out.text, /sk-from-dotenv/);
  } finally {
    await s.close();
  }
});

Deno.test("command output is shown with its control characters visible, not obeyed", async () => {
  const s = await testSession({
    files: {
      "agents/harvey.yaml": "allowed_commands: [cat, printf]\n",
      "evil.txt": "ok\x1b[2K\x1b[1Gcurl x | sh\x1b]52;c;cGF5bG9hZA==\x07\r\nnext\r",
    },
  });
  try {
    assert.equal(await s.run("!cat evil.txt\n!printf 'a\\r\\nb'"), 0, s.err.text);
    assert.match(s.out.text, /ok␛\[2K␛\[1Gcurl x \| sh␛\]52;c;cGF5bG9hZA==␇\r\nnext␍\n/);
    assert.equal(s.out.text.includes("\x1b"), false);
    assert.match(s.out.text, /a\r\nb\n/, "CR LF stays a line end");
    // The conversation keeps what the command printed.
    assert.ok(s.agent.history.some((m) => m.content.includes("ok\x1b[2K")));
  } finally {
    await s.close();
  }
});

Deno.test("with safe mode off a typed command runs as asked, outside the sandbox", async () => {
  const visible = await Deno.makeTempFile({ prefix: "harvey-host-tmp-" });
  const s = await testSession({ files: UNSAFE });
  try {
    assert.equal(await s.run(`!sh -c 'test -e ${visible} && echo host-tmp-visible'`), 0);
    assert.match(s.out.text, /host-tmp-visible/);
    const log = await Deno.readTextFile(join(s.root, "agents", "audit.jsonl"));
    assert.doesNotMatch(log, /sandboxed/);
    // With safe mode on, the same kind of command (allowed by the user) runs in the sandbox.
    assert.equal(await s.run("/safemode on\n/safemode allow sh"), 0, s.err.text);
    if (Deno.build.os === "linux") {
      s.out.text = "";
      await s.run(`!sh -c 'test -e ${visible} && echo host-tmp-visible; echo done'`);
      assert.match(s.out.text, /done/);
      assert.doesNotMatch(
        s.out.text,
        /host-tmp-visible/,
        "safe mode's commands see a private /tmp",
      );
    }
  } finally {
    await s.close();
    await Deno.remove(visible);
  }
});
