/**
 * Where `/pull --dir` and `harvey pull --dir` may write: the models folder, or a folder inside
 * the workspace the permissions let Harvey write, never `agents/` or a `.git` folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startFakeHf } from "./fixtures/fake_hf.ts";
import { runHarvey } from "./harvey_child.ts";
import { testSession } from "./helpers.ts";

const REPO = "acme/tiny-GGUF";
const FILE = "tiny-Q4_K_M.gguf";

async function tree(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string, prefix: string) => {
    for await (const e of Deno.readDir(d)) {
      found.push(prefix + e.name);
      if (e.isDirectory) await walk(join(d, e.name), `${prefix}${e.name}/`);
    }
  };
  await walk(dir, "");
  return found.sort();
}

Deno.test("/pull --dir refuses folders outside, Harvey's own, .git and secret names", async () => {
  const hf = await startFakeHf({
    files: [
      { repo: REPO, path: FILE, size: 2_000 },
      { repo: REPO, path: "harvey.yaml", size: 100 },
      { repo: REPO, path: "pre-commit", size: 100 },
      { repo: REPO, path: ".env", size: 100 },
    ],
  });
  const base = await Deno.makeTempDir({ prefix: "harvey-pull-" });
  const models = join(base, "Models");
  const outside = join(base, "outside");
  await Deno.mkdir(models);
  await Deno.mkdir(outside);
  const s = await testSession({
    flags: { llamafileDir: models },
    env: { HF_ENDPOINT: hf.url },
    files: {
      "agents/harvey.yaml": "model: mine\n",
      ".git/hooks/.keep": "",
      "docs/readme.md": "x\n",
    },
  });
  try {
    await Deno.symlink(outside, join(s.root, "out-link"));
    const before = await tree(s.root);
    const refused: [string, RegExp][] = [
      [`${FILE} --dir ../outside`, /neither a folder inside the workspace nor the models folder/],
      [`${FILE} --dir ${outside}`, /neither a folder inside the workspace nor the models folder/],
      [`${FILE} --dir out-link`, /neither a folder inside the workspace nor the models folder/],
      ["harvey.yaml --dir agents", /inside agents\/, where Harvey keeps its own files/],
      [`${FILE} --dir agents/rag`, /inside agents\//],
      ["pre-commit --dir .git/hooks", /Permission denied: write of "\.git\/hooks"/],
      [`${FILE} --dir sub/.git/hooks`, /Permission denied: write of "sub\/\.git\/hooks"/],
      [".env --dir docs", /Permission denied: write of "docs\/\.env" \(a secret file/],
    ];
    for (const [args, why] of refused) {
      assert.equal(await s.run(`/pull ${REPO} ${args}`), 1, args);
      assert.match(s.err.text.trimEnd().split("\n").at(-1)!, why, args);
    }
    const now = (await tree(s.root)).filter((p) => p !== "agents/audit.jsonl");
    assert.deepEqual(now, before, "nothing was written in the workspace (the audit log aside)");
    assert.deepEqual(await tree(outside), []);
    assert.equal(await Deno.readTextFile(join(s.root, "agents/harvey.yaml")), "model: mine\n");
    assert.equal(hf.requests.length, 0, "nothing was downloaded");

    // Allowed: a folder inside the workspace, and a folder inside the models folder.
    assert.equal(await s.run(`/pull ${REPO} ${FILE} --dir downloads\nn\n`), 0, s.err.text);
    assert.equal((await Deno.stat(join(s.root, "downloads", FILE))).size, 2_000);
    assert.equal(await s.run(`/pull ${REPO} ${FILE} --dir ${models}/sub\nn\n`), 0, s.err.text);
    assert.equal((await Deno.stat(join(models, "sub", FILE))).size, 2_000);
    // A permissions entry that closes a folder closes it to downloads too.
    await s.run("/permissions set vendor read");
    assert.equal(await s.run(`/pull ${REPO} ${FILE} --dir vendor`), 1);
    assert.match(s.err.text, /Permission denied: write of "vendor"/);
  } finally {
    await s.close();
    await hf.close();
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("harvey pull follows the same rule inside the workspace, and may write anywhere outside", async () => {
  const hf = await startFakeHf({
    files: [{ repo: REPO, path: FILE, size: 1_000 }, { repo: REPO, path: "harvey.yaml", size: 10 }],
  });
  const base = await Deno.makeTempDir({ prefix: "harvey-pull-cli-" });
  const ws = join(base, "ws");
  const elsewhere = join(base, "elsewhere");
  await Deno.mkdir(join(ws, "agents"), { recursive: true });
  await Deno.writeTextFile(join(ws, "agents/harvey.yaml"), "model: mine\n");
  try {
    const env = { HF_ENDPOINT: hf.url, OLLAMA_HOST: "127.0.0.1:9" };
    const refused = await runHarvey(["pull", REPO, "harvey.yaml", "--dir", "agents"], {
      cwd: ws,
      env,
    });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /inside agents\/, where Harvey keeps its own files/);
    assert.equal(await Deno.readTextFile(join(ws, "agents/harvey.yaml")), "model: mine\n");
    const ok = await runHarvey(["pull", REPO, FILE, "--dir", elsewhere], {
      cwd: ws,
      env,
      stdin: "n\n",
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await Deno.stat(join(elsewhere, FILE))).size, 1_000);
  } finally {
    await hf.close();
    await Deno.remove(base, { recursive: true });
  }
});
