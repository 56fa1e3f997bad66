import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigStore } from "../src/config/store.ts";
import { editYaml, type YamlChange } from "../src/config/yaml_edit.ts";
import { defaultConfig, parseConfig, parseDuration } from "../src/config/schema.ts";
import { normalizeOllamaUrl, resolveSettings } from "../src/config/settings.ts";
import { expandDynamicSections, loadSystemPrompt } from "../src/config/harvey_md.ts";
import { Workspace } from "../src/workspace.ts";
import { appendHistory, loadHistory } from "../src/repl/history.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { testSession } from "./helpers.ts";

Deno.test("precedence: flag > environment > harvey.yaml > default, for every multi-source setting", async (t) => {
  const config = parseConfig({
    ollama: { url: "http://yaml-host:1" },
    model: "yaml-model",
    llamafile: { models_dir: "/yaml/models", url: "http://yaml-lf:2" },
  }).config;
  const env = {
    OLLAMA_HOST: "env-host:3",
    HARVEY_MODEL: "env-model",
    HARVEY_LLAMAFILE_DIR: "/env/models",
    HOME: "/home/me",
  };
  const flags = {
    ollama: "http://flag-host:4",
    model: "flag-model",
    llamafileDir: "/flag/models",
    llamafileUrl: "http://flag-lf:5",
  };
  await t.step("flags win", () => {
    const s = resolveSettings(config, { flags, env });
    assert.equal(s.ollamaUrl, "http://flag-host:4");
    assert.equal(s.model, "flag-model");
    assert.equal(s.modelsDir, "/flag/models");
    assert.equal(s.llamafileUrl, "http://flag-lf:5");
  });
  await t.step("environment beats the file", () => {
    const s = resolveSettings(config, { flags: {}, env });
    assert.equal(s.ollamaUrl, "http://env-host:3");
    assert.equal(s.model, "env-model");
    assert.equal(s.modelsDir, "/env/models");
  });
  await t.step("the file beats the defaults", () => {
    const s = resolveSettings(config, { flags: {}, env: { HOME: "/home/me" } });
    assert.equal(s.ollamaUrl, "http://yaml-host:1");
    assert.equal(s.model, "yaml-model");
    assert.equal(s.modelsDir, "/yaml/models");
    assert.equal(s.llamafileUrl, "http://yaml-lf:2");
  });
  await t.step("defaults", () => {
    const s = resolveSettings(defaultConfig(), { flags: {}, env: { HOME: "/home/me" } });
    assert.equal(s.ollamaUrl, "http://localhost:11434");
    assert.equal(s.model, undefined);
    assert.equal(s.modelsDir, "/home/me/Models");
    assert.equal(s.llamafileUrl, "http://localhost:8080");
    assert.equal(s.hfEndpoint, "https://huggingface.co");
  });
  await t.step("empty environment values do not count", () => {
    const s = resolveSettings(config, { flags: {}, env: { OLLAMA_HOST: " ", HOME: "/h" } });
    assert.equal(s.ollamaUrl, "http://yaml-host:1");
  });
  await t.step("~ and workspace-relative models_dir", () => {
    const tilde = parseConfig({ llamafile: { models_dir: "~/M" } }).config;
    assert.equal(resolveSettings(tilde, { flags: {}, env: { HOME: "/h" } }).modelsDir, "/h/M");
    const rel = parseConfig({ llamafile: { models_dir: "models" } }).config;
    assert.equal(
      resolveSettings(rel, { flags: {}, env: { HOME: "/h" }, root: "/ws" }).modelsDir,
      "/ws/models",
    );
  });
  await t.step("--no-color and NO_COLOR", () => {
    assert.equal(resolveSettings(config, { flags: { color: false }, env: {} }).color, false);
    assert.equal(resolveSettings(config, { flags: {}, env: { NO_COLOR: "1" } }).color, false);
    assert.equal(resolveSettings(config, { flags: {}, env: {} }).color, true);
  });
});

Deno.test("OLLAMA_HOST forms are normalised", () => {
  assert.equal(normalizeOllamaUrl("0.0.0.0"), "http://127.0.0.1:11434");
  assert.equal(normalizeOllamaUrl("10.0.0.2:9999"), "http://10.0.0.2:9999");
  assert.equal(normalizeOllamaUrl("https://ollama.example.com"), "https://ollama.example.com");
  assert.equal(normalizeOllamaUrl("http://h:80/"), "http://h");
});

Deno.test("durations", () => {
  assert.equal(parseDuration("5m"), 300_000);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration(300), 300_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("soon"), undefined);
  assert.equal(parseDuration("5m junk"), undefined);
});

Deno.test("schema: unknown keys and wrong types are reported, defaults kept", () => {
  const { config, unknownKeys, errors } = parseConfig({
    colour: "red",
    llamafile: { ctx_size: "big", speed: 1 },
    safe_mode: "yes",
    run_timeout: "2m",
  });
  assert.deepEqual(unknownKeys.sort(), ["colour", "llamafile.speed"]);
  assert.equal(errors.length, 2);
  assert.match(errors.join("\n"), /llamafile\.ctx_size must be a whole number/);
  assert.match(errors.join("\n"), /safe_mode must be true or false, found "yes"/);
  assert.equal(config.safe_mode, true);
  assert.equal(config.run_timeout, 120_000);
});

Deno.test("saving keeps the user's comments and key order, atomically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "harvey.yaml");
    const original = "# My settings\nsafe_mode: true # keep this on\n\nllamafile:\n" +
      "  # where my models live\n  models_dir: ~/Models\n  url: http://localhost:8080\n";
    await Deno.writeTextFile(path, original);
    const [store, report] = await ConfigStore.load(path);
    assert.deepEqual(report.warnings, []);
    await store.update([
      [["llamafile", "active"], "qwen"],
      [["llamafile", "models"], [{ name: "qwen", path: "/m/q.llamafile" }]],
    ]);
    const text = await Deno.readTextFile(path);
    assert.ok(text.startsWith("# My settings\nsafe_mode: true # keep this on\n"));
    assert.match(
      text,
      /  # where my models live\n  models_dir: ~\/Models\n  url: http:\/\/localhost:8080\n  active: qwen\n/,
    );
    assert.equal(store.config.llamafile.active, "qwen");
    assert.deepEqual(store.config.llamafile.models, [{ name: "qwen", path: "/m/q.llamafile" }]);
    // No temporary file is left beside it.
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["harvey.yaml"]);
    // A hand edit made after start is kept by the next save.
    await Deno.writeTextFile(path, (await Deno.readTextFile(path)) + "model: hand-edited\n");
    await store.update([[["safe_mode"], false]]);
    const again = await Deno.readTextFile(path);
    assert.match(again, /model: hand-edited/);
    assert.match(again, /safe_mode: false # keep this on/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a malformed harvey.yaml is reported with line and column and never overwritten", async () => {
  const bad = "safe_mode: true\nllamafile:\n  models: [a,\n  url: x\n";
  const s = await testSession({ files: { "agents/harvey.yaml": bad } });
  try {
    assert.match(s.err.text, /agents\/harvey\.yaml is not valid YAML at line \d+, column \d+/);
    assert.equal(s.agent.config.config.safe_mode, true);
    await assert.rejects(
      () => s.agent.config.update([[["model"], "x"]]),
      /could not be parsed when Harvey started; fix it and restart, Harvey will not overwrite it/,
    );
    assert.equal(await Deno.readTextFile(join(s.root, "agents/harvey.yaml")), bad);
  } finally {
    await s.close();
  }
});

Deno.test("an unknown key gets one warning naming it", async () => {
  const s = await testSession({ files: { "agents/harvey.yaml": "modle: qwen\n" } });
  try {
    assert.equal(
      s.err.text.trim(),
      '⚠ Unknown key "modle" in agents/harvey.yaml (ignored, left in the file)',
    );
  } finally {
    await s.close();
  }
});

Deno.test("the legacy single RAG store becomes a store named default", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "harvey.yaml");
    await Deno.writeTextFile(
      path,
      "rag:\n  enabled: true\n  db_path: agents/rag.db\n  embedding_model: nomic\n",
    );
    const [store] = await ConfigStore.load(path);
    assert.deepEqual(store.config.rag.stores, [
      { name: "default", db_path: "agents/rag.db", embedding_model: "nomic", model_map: {} },
    ]);
    assert.equal(store.config.rag.active, "default");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HARVEY.md: dynamic sections are expanded; no file gives the built-in prompt", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.match(await loadSystemPrompt(await Workspace.open(dir)), /You are Harvey/);
    await Deno.mkdir(join(dir, "src"));
    await Deno.mkdir(join(dir, ".hidden"));
    await Deno.writeTextFile(join(dir, "src/a.ts"), "");
    await Deno.writeTextFile(join(dir, ".hidden/secret"), "");
    const text = await expandDynamicSections(
      "Date: <!-- @date -->\n<!-- @files -->\nGit: <!-- @git-status -->",
      dir,
      { now: new Date("2026-03-04T10:00:00Z") },
    );
    assert.match(text, /^Date: 2026-03-04\n/);
    assert.match(text, /src\/\n  a\.ts/);
    assert.doesNotMatch(text, /hidden/);
    assert.match(text, /Git: \(not a git repository\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the sample agents/harvey.example.yaml documents only keys Harvey knows, with valid values", async () => {
  const text = await Deno.readTextFile(new URL("../agents/harvey.example.yaml", import.meta.url));
  // Uncomment the documented settings (comment lines that hold a key or a list item).
  const uncommented = text.split("\n")
    .filter((l) => /^# ( *)([a-z_]+:|- |\.?[a-z]+:)/.test(l))
    .map((l) => l.slice(2))
    .join("\n");
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "harvey.yaml");
    await Deno.writeTextFile(path, uncommented);
    const [store, report] = await ConfigStore.load(path);
    assert.deepEqual(report.warnings, []);
    assert.equal(store.config.llamafile.models[0].name, "qwen-coding");
    assert.equal(store.config.routes[0].api_key_env, "OPENAI_API_KEY");
    assert.equal(store.config.run_timeout, 300_000);
    assert.deepEqual(store.config.permissions[".env"], ["read"]);
    assert.deepEqual(store.config.sandbox, { network: false });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saves keep comments inside lists and maps, and touch no other byte", async (t) => {
  const original = [
    "# My settings",
    "safe_mode: true        # aligned comment",
    "allowed_commands:",
    "  - ls                 # listing",
    "  # git is fine too",
    "  - git",
    "permissions:           # path → perms",
    "  src:   [read]        # read only",
    "  # the docs folder",
    "  docs:",
    "    - read",
    "    - write            # for now",
    "",
    "model: 'qwen'   # quoted on purpose",
    "",
  ].join("\n");
  const s = await testSession({ files: { "agents/harvey.yaml": original } });
  const file = join(s.root, "agents/harvey.yaml");
  try {
    await t.step("/safemode allow adds one line to the list", async () => {
      assert.equal(await s.run("/safemode allow make"), 0, s.err.text);
      assert.equal(
        await Deno.readTextFile(file),
        original.replace("  - git\n", "  - git\n  - make\n"),
      );
      assert.deepEqual(s.agent.config.config.allowed_commands, ["ls", "git", "make"]);
    });
    await t.step("/safemode deny removes only that item's line", async () => {
      assert.equal(await s.run("/safemode deny ls"), 0, s.err.text);
      assert.equal(
        await Deno.readTextFile(file),
        original.replace("  - ls                 # listing\n", "").replace(
          "  - git\n",
          "  - git\n  - make\n",
        ),
      );
    });
    await t.step("/permissions set edits the list in place", async () => {
      assert.equal(await s.run("/permissions set docs read"), 0, s.err.text);
      const text = await Deno.readTextFile(file);
      assert.match(
        text,
        /permissions: {11}# path → perms\n {2}src: {3}\[read\] {8}# read only\n {2}# the docs folder\n {2}docs:\n {4}- read\n\nmodel: 'qwen' {3}# quoted on purpose\n/,
      );
      assert.equal(await s.run("/permissions set tests read,write"), 0, s.err.text);
      assert.match(
        await Deno.readTextFile(file),
        /    - read\n  tests:\n    - read\n    - write\n\nmodel:/,
      );
      assert.equal(await s.run("/permissions reset src"), 0, s.err.text);
      assert.doesNotMatch(await Deno.readTextFile(file), /src:/);
      assert.match(
        await Deno.readTextFile(file),
        /permissions: {11}# path → perms\n {2}# the docs folder\n/,
      );
    });
    await t.step("a scalar keeps its quotes and its comment", async () => {
      await s.agent.config.update([[["model"], "llama"]]);
      assert.match(await Deno.readTextFile(file), /\nmodel: 'llama' {3}# quoted on purpose\n$/);
      assert.match(
        await Deno.readTextFile(file),
        /^# My settings\nsafe_mode: true {8}# aligned comment\n/,
      );
    });
  } finally {
    await s.close();
  }
});

Deno.test("saves keep a BOM, CRLF line ends and bytes that are not UTF-8", async () => {
  const enc = new TextEncoder();
  const head = enc.encode("\ufeff# caf");
  const bad = new Uint8Array([0xe9, 0xff, 0x80]); // Latin-1 é and two stray bytes
  const tail = enc.encode(" settings\r\nsafe_mode: true # on\r\nallowed_commands:\r\n  - ls\r\n");
  const bytes = new Uint8Array([...head, ...bad, ...tail]);
  const s = await testSession();
  const file = join(s.root, "agents/harvey.yaml");
  try {
    await Deno.writeFile(file, bytes);
    const [store, report] = await ConfigStore.load(file);
    assert.deepEqual(report.warnings, []);
    await store.update([[["allowed_commands"], ["ls", "git"]], [["model"], "qwen"]]);
    const after = await Deno.readFile(file);
    const expected = new Uint8Array([
      ...head,
      ...bad,
      ...enc.encode(
        " settings\r\nsafe_mode: true # on\r\nallowed_commands:\r\n  - ls\r\n  - git\r\nmodel: qwen\r\n",
      ),
    ]);
    assert.deepEqual(after, expected);
    assert.deepEqual(store.config.allowed_commands, ["ls", "git"]);
  } finally {
    await s.close();
  }
});

Deno.test("a save killed halfway leaves a temporary file that the next start removes", async () => {
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  const stale = `.harvey.yaml.${dead.pid}-0123abcd.tmp`;
  const live = `.harvey.yaml.${sleeper.pid}-4567cdef.tmp`;
  const s = await testSession({
    files: { [`agents/${stale}`]: "safe_mode: fa", [`agents/${live}`]: "model: x\n" },
  });
  try {
    const names = [...Deno.readDirSync(join(s.root, "agents"))].map((e) => e.name);
    assert.ok(!names.includes(stale), "the temporary file of a dead process is removed");
    assert.ok(names.includes(live), "one of a running process (a save under way) is kept");
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await s.close();
  }
});

Deno.test("a YAML alias bomb gives the defaults with one line, never a hang or a crash", async () => {
  const rows = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
  for (const [i, name] of ["b", "c", "d", "e", "f", "g", "h", "i"].entries()) {
    const prev = "abcdefgh"[i];
    rows.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(", ")}]`);
  }
  const bomb = `safe_mode: false\n${rows.join("\n")}\n`;
  const s = await testSession({ files: { "agents/harvey.yaml": bomb } });
  try {
    assert.equal(s.err.text.trim().split("\n").length, 1, s.err.text);
    assert.match(
      s.err.text,
      /agents\/harvey\.yaml expands too many YAML aliases .*; the defaults apply/,
    );
    assert.equal(s.agent.config.config.safe_mode, true);
    await assert.rejects(() => s.agent.config.update([[["model"], "x"]]), /will not overwrite it/);
    assert.equal(await Deno.readTextFile(join(s.root, "agents/harvey.yaml")), bomb);
  } finally {
    await s.close();
  }
});

Deno.test("a key twice in one mapping is an error with its line, found without comparing all pairs", async () => {
  const s = await testSession({
    files: { "agents/harvey.yaml": "model: a\npermissions:\n  src: [read]\n  src: [write]\n" },
  });
  try {
    assert.match(
      s.err.text,
      /agents\/harvey\.yaml is not valid YAML at line 4, column 3: the key "src" appears twice/,
    );
    assert.deepEqual(s.agent.config.config.permissions, {});
  } finally {
    await s.close();
  }
});

Deno.test("loading grows linearly with the number of permission keys", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = async (n: number) => {
      const path = join(dir, `h${n}.yaml`);
      const lines = ["permissions:"];
      for (let i = 0; i < n; i++) lines.push(`  src/mod${i}/file.ts: [read, write]`);
      await Deno.writeTextFile(path, lines.join("\n") + "\n");
      return path;
    };
    const small = await write(4_000);
    const large = await write(16_000);
    const time = async (path: string) => {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const [store] = await ConfigStore.load(path);
        best = Math.min(best, performance.now() - t0);
        assert.ok(Object.keys(store.config.permissions).length >= 4_000);
      }
      return best;
    };
    await time(small); // warm up the parser
    const ratio = (await time(large)) / (await time(small));
    // Four times the keys: about four times the work when linear, sixteen when quadratic
    // (the yaml package's own duplicate-key check compared every key with every other).
    assert.ok(ratio < 9, `4× the keys took ${ratio.toFixed(1)}× the time`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agents/harvey.yaml, HARVEY.md and the history are not used through a symlink leading outside", async () => {
  const outside = await Deno.makeTempDir({ prefix: "harvey-outside-" });
  const root = await Deno.makeTempDir({ prefix: "harvey-links-" });
  try {
    await Deno.writeTextFile(join(outside, "evil.yaml"), "safe_mode: false\n");
    await Deno.writeTextFile(join(outside, "prompt.md"), "You are evil.\n");
    await Deno.writeTextFile(join(outside, "history"), "precious\n");
    await Deno.mkdir(join(root, "agents"));
    await Deno.symlink(join(outside, "evil.yaml"), join(root, "agents/harvey.yaml"));
    await Deno.symlink(join(outside, "prompt.md"), join(root, "HARVEY.md"));
    await Deno.symlink(join(outside, "history"), join(root, "agents/harvey_history"));
    const s = await testSession({ root });
    try {
      assert.equal(s.agent.config.config.safe_mode, true);
      assert.match(
        s.err.text,
        /⚠ agents\/harvey\.yaml is not used \(.*outside the workspace.*\); the defaults apply/,
      );
      assert.match(
        s.err.text,
        /⚠ HARVEY\.md is not used \(.*outside the workspace.*\); the built-in system prompt applies/,
      );
      assert.doesNotMatch(s.agent.systemPrompt, /evil/);
      await assert.rejects(
        () => s.agent.config.update([[["model"], "x"]]),
        /will not overwrite it/,
      );
    } finally {
      await s.close();
    }
    const warn = new BufferOutput();
    assert.deepEqual(await loadHistory(join(root, "agents"), { warn }), []);
    assert.match(warn.text, /⚠ The line history is not used \(.*outside the workspace/);
    await appendHistory(join(root, "agents"), "typed line");
    assert.equal(await Deno.readTextFile(join(outside, "history")), "precious\n");
    assert.equal(await Deno.readTextFile(join(outside, "evil.yaml")), "safe_mode: false\n");
    // A link that stays inside the workspace is fine.
    await Deno.remove(join(root, "HARVEY.md"));
    await Deno.writeTextFile(join(root, "PROMPT.md"), "You are kind.\n");
    await Deno.symlink(join(root, "PROMPT.md"), join(root, "HARVEY.md"));
    await Deno.remove(join(root, "agents/harvey_history"));
    await appendHistory(join(root, "agents"), "first");
    assert.deepEqual(await loadHistory(join(root, "agents")), ["first"]);
    const again = await testSession({ root });
    try {
      assert.equal(again.agent.systemPrompt, "You are kind.\n");
    } finally {
      await again.close();
    }
  } finally {
    await Deno.remove(outside, { recursive: true });
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("editYaml: list items by name, kept items, indexes, flow collections, empty values", async (t) => {
  const edit = (text: string, changes: YamlChange[], keep: string[] = []) =>
    editYaml(text, changes, { eol: "\n", keep: (p) => new Set(p === "routes" ? keep : []) });
  await t.step("a list of named items: matched in place, removed, added, one kept", async () => {
    const text = "routes:\n  # theirs\n  - name: held\n    url: https://x\n" +
      "  - name: a # mine\n    provider: openai\n  - name: gone\n    provider: openai\n";
    const out = await edit(text, [[["routes"], [
      { name: "a", provider: "anthropic" },
      { name: "new", provider: "openai" },
    ]]], ["held"]);
    assert.equal(
      out,
      "routes:\n  # theirs\n  - name: held\n    url: https://x\n" +
        "  - name: a # mine\n    provider: anthropic\n  - name: new\n    provider: openai\n",
    );
  });
  await t.step("a key path through a list by index", async () => {
    const text = "rag:\n  stores:\n    - name: docs # d\n      db_path: a.db\n";
    assert.equal(
      await edit(text, [[["rag", "stores", 0, "model_map"], { m: "e" }]]),
      "rag:\n  stores:\n    - name: docs # d\n      db_path: a.db\n      model_map:\n        m: e\n",
    );
    assert.equal(await edit(text, [[["rag", "stores", 0], undefined]]), "rag:\n  stores:\n");
  });
  await t.step("flow collections are rewritten in flow style", async () => {
    assert.equal(
      await edit("permissions: {src: [read], docs: [read]} # p\n", [[
        ["permissions", "docs"],
        undefined,
      ]]),
      "permissions: {src: [read]} # p\n",
    );
    assert.equal(
      await edit("allowed_commands: [ ls, git ]\n", [[["allowed_commands"], ["ls"]]]),
      "allowed_commands: [ ls ]\n",
    );
  });
  await t.step("an empty value, an emptied list, a file without a final newline", async () => {
    assert.equal(
      await edit("models: # none yet\n", [[["models"], [{ name: "a", path: "/a" }]]]),
      "models: # none yet\n  - name: a\n    path: /a\n",
    );
    assert.equal(await edit("x:\n  - a\n  - b\ny: 1\n", [[["x"], []]]), "x: []\ny: 1\n");
    assert.equal(await edit("a: 1", [[["b"], "two words"]]), "a: 1\nb: two words\n");
  });
});
