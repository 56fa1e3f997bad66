import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigStore } from "../src/config/store.ts";
import { defaultConfig, parseConfig, parseDuration } from "../src/config/schema.ts";
import { normalizeOllamaUrl, resolveSettings } from "../src/config/settings.ts";
import { expandDynamicSections, loadSystemPrompt } from "../src/config/harvey_md.ts";
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
    assert.match(await loadSystemPrompt(dir), /You are Harvey/);
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
