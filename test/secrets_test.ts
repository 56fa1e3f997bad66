import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog } from "../src/security/audit.ts";
import { checkPath, isSecretPath } from "../src/security/permissions.ts";
import { secretRedactor } from "../src/security/redact.ts";
import { testSession } from "./helpers.ts";

const SECRETS = [
  ".ENV",
  ".Env.Local",
  "config/.envrc",
  "server.PEM",
  "tls/site.KEY",
  "ID_RSA",
  "home/id_ed25519",
  "home/id_ed25519.pub",
  "id_ecdsa",
  "id_ecdsa_sk",
  "id_dsa",
  "certs/client.p12",
  "certs/CLIENT.PFX",
  "android/release.jks",
  "app.keystore",
  "vault.kdbx",
  "putty.ppk",
  ".netrc",
  "_netrc",
  ".npmrc",
  ".pypirc",
  ".pgpass",
  ".git-credentials",
  "site/.htpasswd",
  ".ssh/config",
  "home/.aws/credentials",
  ".gnupg/pubring.kbx",
  "AGENTS/HARVEY.YAML",
];

const NOT_SECRETS = [
  "src/env.ts",
  "docs/environment.md",
  "keys.ts",
  "src/keyboard.key.ts",
  "agents/harvey.yaml.md",
  "ssh/config",
];

Deno.test("secret names are matched without regard to case, with the common key files", () => {
  for (const path of SECRETS) assert.equal(isSecretPath(path), true, path);
  for (const path of NOT_SECRETS) assert.equal(isSecretPath(path), false, path);
  const none = { permissions: {} };
  for (const path of SECRETS) {
    assert.equal(checkPath(path, "read", none).allowed, false, `${path} readable`);
    const broad = { permissions: { ".": ["read", "write"] } };
    assert.equal(checkPath(path, "read", broad).allowed, false, `a broad entry opens ${path}`);
  }
  // Only an entry for exactly the path opens one.
  assert.equal(checkPath(".ENV", "read", { permissions: { ".ENV": ["read"] } }).allowed, true);
});

Deno.test("every .git folder is read-only by default, nested ones and any case too", () => {
  const none = { permissions: {} };
  for (const path of ["sub/.git/config", "a/b/.git/hooks/pre-commit", ".GIT/config", "x/.Git"]) {
    assert.equal(checkPath(path, "read", none).allowed, true, `${path} readable`);
    for (const perm of ["write", "exec", "delete"] as const) {
      const d = checkPath(path, perm, none);
      assert.equal(d.allowed, false, `${path} ${perm}`);
      assert.match(d.reason, /read-only by default/);
    }
  }
  const broad = { permissions: { sub: ["read", "write"] } };
  assert.equal(checkPath("sub/.git/config", "write", broad).allowed, false);
  const opened = { permissions: { "sub/.git": ["read", "write"] } };
  assert.equal(checkPath("sub/.git/config", "write", opened).allowed, true);
  assert.equal(checkPath("sub/.gitignore", "write", none).allowed, true);
});

Deno.test("secrets in any case are refused to /read and left out of /search", async () => {
  const s = await testSession({
    files: {
      ".ENV": "API_TOKEN=needle-env\n",
      "server.PEM": "needle-pem\n",
      "keys/ID_ED25519": "needle-key\n",
      "src/a.ts": "const needle = 1;\n",
    },
  });
  try {
    for (const path of [".ENV", "server.PEM", "keys/ID_ED25519"]) {
      assert.equal(await s.run(`/read ${path}`), 1, path);
      assert.match(
        s.err.text,
        new RegExp(`Permission denied: read of "${path.replace(".", "\\.")}"`),
      );
    }
    assert.equal(await s.run("/search needle"), 0, s.err.text);
    assert.match(s.out.text, /src\/a\.ts:1: const needle = 1;/);
    assert.doesNotMatch(s.out.text, /needle-(env|pem|key)/);
    assert.match(s.out.text, /2 files left out by the permissions/);
    const sent = s.agent.history.map((m) => m.content).join("\n");
    assert.doesNotMatch(sent, /needle-(env|pem|key)/);
  } finally {
    await s.close();
  }
});

Deno.test("URL credentials are redacted in the audit log", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "audit.jsonl");
    const log = new AuditLog({ file, redact: secretRedactor({}) });
    log.record("run", "psql postgres://u:PASS-w0rd@h/db", "success");
    log.record("run", "git clone https://user:tok3n-value@git.example/r.git", "success");
    log.record("run", "git clone https://ghp0123456789abcdefghijKLM@github.com/r.git", "success");
    log.record("run", "ssh://git@github.com/o/r and https://example.com/a@b", "success");
    const text = await Deno.readTextFile(file);
    for (const secret of ["PASS-w0rd", "tok3n-value", "ghp0123456789abcdefghijKLM"]) {
      assert.ok(!text.includes(secret), `${secret} in ${text}`);
    }
    assert.match(text, /postgres:\/\/u:\[redacted\]@h\/db/);
    assert.match(text, /https:\/\/user:\[redacted\]@git\.example/);
    assert.match(text, /ssh:\/\/git@github\.com\/o\/r and https:\/\/example\.com\/a@b/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
