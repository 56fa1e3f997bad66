import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigStore } from "../src/config/store.ts";
import { AuditLog } from "../src/security/audit.ts";
import { commandEnv } from "../src/security/child_env.ts";
import { checkPath, parsePerms, permissionKey } from "../src/security/permissions.ts";
import { secretRedactor } from "../src/security/redact.ts";
import { checkSafeMode } from "../src/security/safe_mode.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { testSession } from "./helpers.ts";

interface Event {
  time: string;
  action: string;
  details: string;
  outcome: string;
}

async function auditFile(root: string): Promise<Event[]> {
  const text = await Deno.readTextFile(join(root, "agents", "audit.jsonl"));
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

function lastLine(text: string): string {
  return text.trimEnd().split("\n").at(-1) ?? "";
}

async function reload(root: string): Promise<ConfigStore> {
  const [store, report] = await ConfigStore.load(join(root, "agents", "harvey.yaml"));
  assert.deepEqual(report.warnings, []);
  return store;
}

Deno.test("checkPath: the longest matching prefix wins, by whole path components", () => {
  const permissions = {
    ".": ["read"],
    "src": ["read", "write"],
    "src/gen": [],
    "docs/": ["read", "write", "delete"],
  };
  const allowed = (path: string, perm: "read" | "write" | "exec" | "delete") =>
    checkPath(path, perm, { permissions }).allowed;
  assert.equal(allowed("README.md", "read"), true);
  assert.equal(allowed("README.md", "write"), false);
  assert.equal(allowed("src/main.ts", "write"), true);
  assert.equal(allowed("src", "write"), true);
  assert.equal(allowed("./src//lib/../main.ts", "write"), true);
  assert.equal(allowed("srcx/main.ts", "write"), false, "srcx is not under src");
  assert.equal(allowed("src/gen/out.ts", "read"), false, "src/gen (none) beats src");
  assert.equal(allowed("src/generated.ts", "read"), true);
  assert.equal(allowed("docs/a.md", "delete"), true, "a trailing slash in a key is ignored");
  assert.equal(allowed("src/main.ts", "exec"), false);
  assert.equal(checkPath("src/gen/x", "read", { permissions }).rule, "src/gen");
  assert.equal(allowed("../outside", "read"), false);
  assert.equal(allowed("/etc/passwd", "read"), false);
});

Deno.test("checkPath: no entry allows everything except secrets, which need an exact entry", () => {
  const none = { permissions: {} };
  for (const perm of ["read", "write", "exec", "delete"] as const) {
    assert.equal(checkPath("src/main.ts", perm, none).allowed, true);
  }
  for (
    const secret of [
      ".env",
      ".env.local",
      "config/.env.production",
      "certs/server.pem",
      "tls/site.key",
      "id_rsa",
      "home/id_rsa.pub",
      "agents/harvey.yaml",
    ]
  ) {
    assert.equal(checkPath(secret, "read", none).allowed, false, `${secret} readable`);
    assert.equal(checkPath(secret, "write", none).allowed, false, `${secret} writable`);
    assert.equal(
      checkPath(secret, "read", { permissions: { ".": ["read", "write"] } }).allowed,
      false,
      `a broad entry opens ${secret}`,
    );
  }
  const exact = { permissions: { ".env": ["read"] } };
  assert.equal(checkPath(".env", "read", exact).allowed, true);
  assert.equal(checkPath(".env", "write", exact).allowed, false);
  assert.equal(checkPath(".env.local", "read", exact).allowed, false);
  assert.equal(checkPath("agents/audit.jsonl", "read", none).allowed, true);
  assert.equal(checkPath("agents/audit.jsonl", "write", none).allowed, false);
  assert.equal(checkPath("agents/audit.jsonl", "delete", none).allowed, false);
  assert.equal(checkPath(".environment.md", "read", none).allowed, false, ".env* covers it");
  assert.equal(checkPath("src/env.ts", "read", none).allowed, true);
});

Deno.test("checkPath: .git is read-only by default; only an entry under .git opens it", () => {
  const none = { permissions: {} };
  for (const path of [".git", ".git/config", ".git/hooks/pre-commit"]) {
    assert.equal(checkPath(path, "read", none).allowed, true, `${path} readable`);
    for (const perm of ["write", "exec", "delete"] as const) {
      const d = checkPath(path, perm, none);
      assert.equal(d.allowed, false, `${path} ${perm}`);
      assert.match(d.reason, /read-only by default .*\/permissions set \.git read,/);
    }
  }
  const broad = { permissions: { ".": ["read", "write", "exec", "delete"] } };
  assert.equal(checkPath(".git/config", "write", broad).allowed, false, "a broad entry opens .git");
  const opened = { permissions: { ".git": ["read", "write"] } };
  assert.equal(checkPath(".git/config", "write", opened).allowed, true);
  assert.equal(checkPath(".git/config", "delete", opened).allowed, false);
  assert.equal(checkPath(".github/workflows/ci.yml", "write", none).allowed, true);
  assert.equal(checkPath("src/.git-notes", "write", none).allowed, true);
});

Deno.test("/write into .git is refused and nothing is written", async () => {
  const fake = await startFakeOpenAI({ reply: () => "[core]\n\tfsmonitor = evil" });
  const s = await testSession({
    files: { ".git/config": "[core]\n" },
    flags: { llamafileUrl: fake.url },
    selectBackend: true,
  });
  try {
    assert.equal(await s.run("write a config\n/write .git/config\ny\n"), 1);
    assert.match(s.err.text, /read-only by default/);
    assert.equal(await Deno.readTextFile(join(s.root, ".git/config")), "[core]\n");
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("permission syntax: comma-separated names, all, none", () => {
  assert.deepEqual(parsePerms("write,read"), ["read", "write"]);
  assert.deepEqual(parsePerms("all"), ["read", "write", "exec", "delete"]);
  assert.deepEqual(parsePerms("none"), []);
  assert.throws(() => parsePerms("rw"), /names from read, write, exec, delete/);
  assert.throws(() => parsePerms("read,run"), /found "read,run"/);
  assert.equal(permissionKey("./src/", "/w"), "src");
  assert.equal(permissionKey("/w/src/a", "/w"), "src/a");
  assert.equal(permissionKey("/w", "/w"), ".");
  assert.throws(() => permissionKey("../x", "/w"), /outside the workspace/);
});

Deno.test("safe mode: allowlist by name, bare names only, risky arguments refused", () => {
  const allowed = ["ls", "git", "find", "rg"];
  const root = "/nonexistent-workspace";
  assert.equal(checkSafeMode(["ls", "-la"], { allowed, root }).allowed, true);
  assert.equal(checkSafeMode(["git", "status"], { allowed, root }).allowed, true);
  const no = (argv: string[]) => checkSafeMode(argv, { allowed, root });
  assert.equal(no(["git", "config", "--get", "user.name"]).allowed, false, "config is refused");
  assert.match(no(["rm", "-rf", "x"]).reason!, /allowed commands: ls, git, find, rg/);
  assert.equal(no(["./ls"]).allowed, false, "a workspace file named ls is not ls");
  assert.equal(no(["find", ".", "-exec", "rm", "{}", ";"]).allowed, false);
  assert.equal(no(["find", ".", "-delete"]).allowed, false);
  assert.equal(no(["rg", "--pre=sh", "x"]).allowed, false);
  assert.equal(no(["git", "-c", "core.pager=sh", "log"]).allowed, false);
  assert.equal(no(["git", "config", "core.fsmonitor", "sh"]).allowed, false);
  assert.equal(no(["git", "submodule", "foreach", "rm"]).allowed, false);
});

Deno.test("commandEnv and the redactor keep secrets out", () => {
  assert.deepEqual(
    commandEnv({
      PATH: "/bin",
      TMPDIR: "/tmp",
      HARVEY_API_KEY: "k",
      HARVEY_KEY: "k",
      OLLAMA_TOKEN: "t",
      OLLAMA_HOST: "h",
      PWD: "/old",
    }, { cwd: "/w" }),
    { PATH: "/bin", OLLAMA_HOST: "h", PWD: "/w" },
  );
  const redact = secretRedactor({ MY_SERVICE_TOKEN: "s3cr3t-value-xyz", HOME: "/home/someone" });
  assert.equal(redact("curl -H s3cr3t-value-xyz"), "curl -H [redacted]");
  assert.equal(redact("API_KEY=abc123 ls /home/someone"), "API_KEY=[redacted] ls /home/someone");
  assert.equal(redact("echo hf_abcdefghijklmnopqrstuv"), "echo [redacted]");
});

Deno.test("AuditLog: a ring buffer of the last events, and every event appended to the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "audit.jsonl");
    await Deno.writeTextFile(
      file,
      '{"time":"old","action":"x","details":"","outcome":"success"}\n',
    );
    const log = new AuditLog({ file, capacity: 3 });
    for (let i = 1; i <= 5; i++) log.record("run", `cmd ${i}`, i % 2 ? "success" : "error");
    assert.deepEqual(log.recent().map((e) => e.details), ["cmd 3", "cmd 4", "cmd 5"]);
    assert.deepEqual(log.recent(2).map((e) => e.details), ["cmd 4", "cmd 5"]);
    log.clear();
    assert.equal(log.size, 0);
    log.record("run", "cmd 6", "denied");
    assert.deepEqual(log.recent().map((e) => e.details), ["cmd 6"]);
    const lines = (await Deno.readTextFile(file)).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 7, "the file keeps what was there and every event since");
    assert.deepEqual(
      lines.slice(1).map((e) => e.details),
      [1, 2, 3, 4, 5, 6].map((i) => `cmd ${i}`),
    );
    for (const e of lines.slice(1)) {
      assert.deepEqual(Object.keys(e), ["time", "action", "details", "outcome"]);
      assert.equal(new Date(e.time).toISOString(), e.time);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/read of .env is refused and nothing is read; an exact entry opens it", async () => {
  const s = await testSession({
    files: { ".env": "OPENAI_API_KEY=sk-in-dotenv-file\n", "notes.md": "fine\n" },
  });
  try {
    assert.equal(await s.run("/read .env"), 1);
    assert.match(s.err.text, /Permission denied: read of "\.env" \(a secret file/);
    assert.equal(await s.run("/read notes.md .env"), 1, "a refused file adds nothing");
    const history = s.agent.history.map((m) => m.content).join("\n");
    assert.equal(history.includes("sk-in-dotenv-file"), false);
    assert.equal(history.includes("fine"), false);
    assert.equal(s.out.text.includes("sk-in-dotenv-file"), false);

    await Deno.symlink(".env", join(s.root, "innocent.txt"));
    assert.equal(await s.run("/read innocent.txt"), 1, "a symlink does not rename a secret");
    assert.match(lastLine(s.err.text), /Permission denied: read of "\.env"/);

    const events = await auditFile(s.root);
    const denials = events.filter((e) => e.action === "permission");
    assert.ok(denials.length >= 3);
    assert.ok(denials.every((e) => e.outcome === "denied" && e.details.startsWith("read ")));

    assert.equal(await s.run("/permissions set .env read\n/read .env"), 0);
    assert.ok(s.agent.history.some((m) => m.content.includes("sk-in-dotenv-file")));
  } finally {
    await s.close();
  }
});

Deno.test("a write under a prefix set to read is refused and nothing is written", async () => {
  const fake = await startFakeOpenAI({ reply: () => "```md docs/guide.md\nnew text\n```\n" });
  const s = await testSession({
    files: { "docs/guide.md": "old text\n" },
    flags: { llamafileUrl: fake.url, yes: true },
    selectBackend: true,
  });
  try {
    assert.equal(await s.run("/permissions set docs read\nwrite the guide"), 0);
    assert.equal(await s.run("/write docs/guide.md"), 1);
    assert.match(s.err.text, /Permission denied: write of "docs\/guide\.md"/);
    assert.equal(await s.run("/write docs/new.md"), 1);
    assert.equal(await s.run("/apply"), 1);
    assert.match(lastLine(s.err.text), /Permission denied: write of "docs\/guide\.md"/);
    assert.equal(await Deno.readTextFile(join(s.root, "docs/guide.md")), "old text\n");
    assert.deepEqual([...Deno.readDirSync(join(s.root, "docs"))].map((e) => e.name), ["guide.md"]);

    // The most specific entry wins: docs/guide.md itself may be written.
    assert.equal(await s.run("/permissions set docs/guide.md read,write\n/write docs/guide.md"), 0);
    assert.equal(await Deno.readTextFile(join(s.root, "docs/guide.md")), "new text\n");
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("/safemode changes persist to harvey.yaml and survive a reload", async () => {
  const s = await testSession({ files: { "agents/harvey.yaml": "# my settings\nmodel: qwen\n" } });
  try {
    assert.equal(await s.run("/safemode allow env tree\n/safemode deny rg"), 0);
    assert.equal(await s.run("/safemode off\nn"), 0);
    assert.match(s.out.text, /Safe mode stays on/);
    assert.equal((await reload(s.root)).config.safe_mode, true);
    assert.equal(await s.run("/safemode off\ny"), 0);
    const text = await Deno.readTextFile(join(s.root, "agents", "harvey.yaml"));
    assert.match(text, /^# my settings\nmodel: qwen\n/, "comments and keys are kept");
    let config = (await reload(s.root)).config;
    assert.equal(config.safe_mode, false);
    assert.deepEqual(config.allowed_commands, [
      ...["ls", "cat", "grep", "head", "tail", "wc", "find", "stat", "git"],
      ...["env", "tree"],
    ]);
    assert.equal(await s.run("/safemode status"), 0);
    assert.match(s.out.text, /Safe mode: off/);
    assert.equal(await s.run("/safemode deny rg"), 1);
    assert.match(s.err.text, /Not on the allowlist: rg/);
    assert.equal(await s.run("/safemode allow /bin/rm"), 2);

    assert.equal(await s.run("/safemode reset"), 0);
    config = (await reload(s.root)).config;
    assert.equal(config.safe_mode, true);
    assert.ok(config.allowed_commands.includes("rg"));
    assert.equal(config.allowed_commands.includes("env"), false);

    const changes = (await auditFile(s.root)).filter((e) => e.action === "safemode");
    assert.deepEqual(changes.map((e) => [e.details.split(":")[0], e.outcome]), [
      ["allow env tree", "success"],
      ["deny rg", "success"],
      ["off (declined at the prompt)", "denied"],
      ["off", "success"],
      ["reset", "success"],
    ]);
  } finally {
    await s.close();
  }
});

Deno.test("/permissions set, list and reset persist to harvey.yaml", async () => {
  const s = await testSession();
  try {
    assert.equal(await s.run("/permissions set ./src/ read\n/permissions set src/gen none"), 0);
    assert.equal(await s.run(`/permissions set ${s.agent.workspace.root}/docs all`), 0);
    assert.deepEqual((await reload(s.root)).config.permissions, {
      src: ["read"],
      "src/gen": [],
      docs: ["read", "write", "exec", "delete"],
    });
    assert.equal(await s.run("/permissions set src read,write"), 0);
    assert.deepEqual((await reload(s.root)).config.permissions.src, ["read", "write"]);
    s.out.text = "";
    assert.equal(await s.run("/permissions list"), 0);
    assert.match(
      s.out.text,
      /docs\s+read,write,exec,delete\n\s+src\s+read,write\n\s+src\/gen\s+none/,
    );
    assert.equal(await s.run("/permissions set src rw"), 2);
    assert.equal(await s.run("/permissions set ../up read"), 1);

    assert.equal(await s.run("/permissions reset src/gen"), 0);
    assert.deepEqual(Object.keys((await reload(s.root)).config.permissions).sort(), [
      "docs",
      "src",
    ]);
    assert.equal(await s.run("/permissions reset\nn"), 0);
    assert.equal(Object.keys((await reload(s.root)).config.permissions).length, 2);
    assert.equal(await s.run("/permissions reset\ny"), 0);
    assert.deepEqual((await reload(s.root)).config.permissions, {});

    const changes = (await auditFile(s.root)).filter((e) => e.action === "permissions");
    assert.deepEqual(changes.map((e) => e.details), [
      "set src read",
      "set src/gen none",
      "set docs read,write,exec,delete",
      "set src read,write",
      "reset src/gen",
      "reset all (2 entries removed)",
    ]);
  } finally {
    await s.close();
  }
});

Deno.test("audit.jsonl records runs, refusals and changes, with secrets redacted", async () => {
  const key = "sk-live-abcdefghijklmnopqrstuvwxyz";
  const s = await testSession({ env: { OPENAI_API_KEY: key } });
  try {
    assert.equal(await s.run("!ls"), 0);
    assert.equal(await s.run("!rm -rf src"), 1);
    assert.equal(await s.run(`/safemode allow echo\n!echo ${key}`), 0);
    assert.ok(s.out.text.includes(key), "the command itself got its argument");
    const events = await auditFile(s.root);
    assert.deepEqual(events.map((e) => [e.action, e.outcome]), [
      ["run", "allowed"],
      ["run", "success"],
      ["run", "denied"],
      ["safemode", "success"],
      ["run", "allowed"],
      ["run", "success"],
    ]);
    for (const e of events) {
      assert.equal(new Date(e.time).toISOString(), e.time);
      assert.equal(e.details.includes(key), false);
    }
    assert.match(events[4].details, /^echo \[redacted\]( \(sandboxed\))?$/);
    assert.equal(events[1].details, "ls: exited with status 0");

    s.out.text = "";
    assert.equal(await s.run("/audit show 2"), 0);
    assert.deepEqual(s.out.text.trim().split("\n").map((l) => l.split(/\s+/).slice(1, 3)), [
      ["allowed", "run"],
      ["success", "run"],
    ]);
    assert.equal(await s.run("/audit clear"), 0);
    assert.match(s.out.text, /Cleared 6 events from memory; agents\/audit\.jsonl is kept/);
    assert.equal(s.agent.audit!.size, 1, "only the clear itself");
    assert.equal((await auditFile(s.root)).length, 7);
    assert.equal(await s.run("/audit show x"), 2);
  } finally {
    await s.close();
  }
});

Deno.test("/security shows safe mode, the allowlist, permissions and the audit log together", async () => {
  const s = await testSession({
    files: { "agents/harvey.yaml": "run_timeout: 90s\npermissions:\n  src: [read]\n" },
  });
  try {
    assert.equal(await s.run("!ls\n/security"), 0);
    const out = s.out.text;
    assert.match(out, /Safe mode: on/);
    assert.match(out, /Allowed:\s+ls cat grep head tail wc find stat git rg/);
    assert.match(out, /Timeout:\s+1m30s/);
    assert.match(out, /Audit:\s+2 events in memory/);
    assert.match(out, /agents\/audit\.jsonl, 2 lines appended/);
    assert.match(out, /src\s+read/);
    assert.match(
      out,
      /secrets \(\.env\*, \*\.pem, \*\.key, .*id_rsa\*, .*id_ed25519\*, .*agents\/harvey\.yaml, agents\/harvey_history\)/,
    );
  } finally {
    await s.close();
  }
});
