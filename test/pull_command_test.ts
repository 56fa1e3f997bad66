import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startFakeHf } from "./fixtures/fake_hf.ts";
import { childEnv, testSession } from "./helpers.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

const REPO = "acme/tiny-GGUF";
const FILE = "tiny-Q4_K_M.gguf";

Deno.test("/pull downloads into the models folder, registers the file and persists it", async () => {
  const hf = await startFakeHf({ files: [{ repo: REPO, path: FILE, size: 200_000 }] });
  const models = await Deno.makeTempDir();
  const s = await testSession({
    flags: { llamafileDir: models },
    env: { HF_ENDPOINT: hf.url, HF_TOKEN: "hf_secret_token" },
  });
  try {
    // Register: yes; switch now (asked when /llamacpp exists): no.
    const answers = s.agent.commands.get("llamacpp") ? "y\nn\n" : "y\n";
    assert.equal(await s.run(`/pull ${REPO} ${FILE} --name tiny\n${answers}`), 0, s.err.text);
    const path = join(models, FILE);
    assert.equal((await Deno.stat(path)).size, 200_000);
    assert.match(s.out.text, /Register it as a GGUF model\? \[Y\/n\] y/);
    assert.deepEqual(s.agent.config.config.llamacpp.models, [{ name: "tiny", path }]);
    const yaml = await Deno.readTextFile(join(s.root, "agents/harvey.yaml"));
    assert.match(yaml, /name: tiny/);
    assert.doesNotMatch(yaml, /hf_secret_token/);
    // The token went to the hub only.
    for (const r of hf.requests) {
      assert.equal(
        r.headers["authorization"],
        r.server === "hub" ? "Bearer hf_secret_token" : undefined,
      );
    }
    // A second pull finds the verified file and downloads nothing.
    const gets = () => hf.requests.filter((r) => r.server === "cdn" && r.method === "GET").length;
    const before = gets();
    assert.equal(await s.run(`/pull ${REPO} ${FILE}`), 0, s.err.text);
    assert.equal(gets(), before, "no bytes downloaded again");
    assert.match(s.out.text, /Already registered as tiny/);
  } finally {
    await s.close();
    await hf.close();
    await Deno.remove(models, { recursive: true });
  }
});

Deno.test("/pull usage errors and a missing file", async () => {
  const hf = await startFakeHf({ files: [{ repo: REPO, path: FILE, size: 1000 }] });
  const models = await Deno.makeTempDir();
  const s = await testSession({ flags: { llamafileDir: models }, env: { HF_ENDPOINT: hf.url } });
  try {
    assert.equal(await s.run("/pull only-one-arg"), 2);
    assert.match(s.err.text, /Usage: \/pull REPO FILE/);
    assert.equal(await s.run(`/pull ${REPO} nothing.gguf`), 1);
    assert.match(s.err.text, /not found/i);
    assert.deepEqual([...Deno.readDirSync(models)], []);
  } finally {
    await s.close();
    await hf.close();
    await Deno.remove(models, { recursive: true });
  }
});

Deno.test("harvey pull on the command line: file path on stdout, registration answered on stdin", async () => {
  const hf = await startFakeHf({ files: [{ repo: REPO, path: FILE, size: 50_000 }] });
  const ws = await Deno.makeTempDir();
  const models = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-prompt", MAIN, "pull", REPO, FILE, "--dir", models, "-w", ws],
      env: childEnv({ HF_ENDPOINT: hf.url, NO_COLOR: "1", HOME: ws }),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("y\ny\n"));
    await w.close();
    const out = await child.output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.ok(stdout.startsWith(`${join(models, FILE)}\n`));
    const yaml = await Deno.readTextFile(join(ws, "agents/harvey.yaml"));
    assert.match(yaml, /active: tiny-Q4_K_M/);
  } finally {
    await hf.close();
    await Deno.remove(ws, { recursive: true });
    await Deno.remove(models, { recursive: true });
  }
});

Deno.test("/pull on a terminal redraws one progress line; in a script it prints none", async () => {
  const hf = await startFakeHf({ files: [{ repo: REPO, path: FILE, size: 3_000_000 }] });
  const s = await testSession({ env: { HF_ENDPOINT: hf.url } });
  try {
    const script = `/pull ${REPO} ${FILE} --dir models\nn\n`;
    assert.equal(await s.run(script, { terminal: true }), 0, s.err.text);
    const bar = s.out.text.split("\r").at(-1) ?? "";
    assert.match(bar, /100%/);
    assert.match(bar, /2\.86 MiB/);
    // A relative --dir is inside the workspace, not the process's folder.
    assert.equal((await Deno.stat(join(s.root, "models", FILE))).size, 3_000_000);
    await Deno.remove(join(s.root, "models"), { recursive: true });
    const before = s.out.text.length;
    assert.equal(await s.run(script), 0, s.err.text);
    assert.doesNotMatch(s.out.text.slice(before), /\r/);
  } finally {
    await s.close();
    await hf.close();
  }
});
