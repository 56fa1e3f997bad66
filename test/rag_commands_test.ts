import assert from "node:assert/strict";
import { join } from "node:path";
import { parseDocument } from "npm:yaml@2.9.1";
import { type FakeOllama, startFakeOllama } from "./fixtures/fake_ollama.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { testSession } from "./helpers.ts";

const FILES = {
  "docs/sqlite.md":
    "SQLite in WAL journal mode lets readers keep reading while one writer commits.\n",
  "docs/cooking.md": "Boil the pasta, then add tomato, basil and garlic for a quick sauce.\n",
  "src/main.ts": 'console.log("hello from the main module");\n',
  "secret/.hidden.md": "hidden files are never ingested\n",
};
const MODELS = ["llama3.2:latest", "nomic-embed-text:latest", "bge-m3:latest"];
const CONTEXT = "### Context (from knowledge base)";

function lastChat(fake: FakeOllama): { role: string; content: string }[] {
  const chat = fake.requests.filter((r) => r.path === "/api/chat").at(-1);
  assert.ok(chat, "a chat request reached the server");
  return (chat.body as { messages: { role: string; content: string }[] }).messages;
}

async function readYaml(root: string): Promise<{ rag?: Record<string, unknown> }> {
  return parseDocument(await Deno.readTextFile(join(root, "agents", "harvey.yaml"))).toJS() ?? {};
}

Deno.test("/rag: stores, ingest, query and retrieval before prompts", async (t) => {
  const fake = await startFakeOllama({ models: MODELS, embedDims: 512 });
  const s = await testSession({
    files: FILES,
    flags: { ollama: fake.url, model: "llama3.2:latest" },
    selectBackend: true,
  });
  try {
    await t.step("status and ingest before any store say what to do", async () => {
      assert.equal(await s.run("/rag status"), 0);
      assert.match(s.out.text, /RAG is off/);
      assert.match(s.out.text, /No stores \(create one with \/rag new NAME EMBEDDING_MODEL\)/);
      assert.equal(await s.run("/rag ingest docs"), 1);
      assert.match(s.err.text, /No RAG store yet: create one with \/rag new/);
      assert.equal(await s.run("/rag on"), 1);
    });

    await t.step("new creates the file, registers and activates the store", async () => {
      s.out.text = "";
      assert.equal(await s.run("/rag new docs nomic-embed-text"), 0);
      assert.match(
        s.out.text,
        /Created RAG store docs \(nomic-embed-text\) at agents\/rag\/docs\.db/,
      );
      assert.ok((await Deno.stat(join(s.root, "agents", "rag", "docs.db"))).isFile);
      const yaml = await readYaml(s.root);
      assert.equal(yaml.rag?.active, "docs");
      assert.deepEqual(yaml.rag?.stores, [
        {
          name: "docs",
          db_path: "agents/rag/docs.db",
          embedding_model: "nomic-embed-text",
          model_map: {},
        },
      ]);
      s.err.text = "";
      assert.equal(await s.run("/rag new docs bge-m3"), 1);
      assert.match(s.err.text, /A RAG store named "docs" already exists/);
      assert.equal(await s.run("/rag new ../evil bge-m3"), 2);
    });

    await t.step("ingest walks folders through the sandbox with progress lines", async () => {
      s.out.text = "";
      assert.equal(await s.run("/rag ingest docs src/main.ts secret"), 0);
      assert.match(s.out.text, /Ingesting into docs with nomic-embed-text \(Ollama at /);
      assert.match(s.out.text, /\[1\/3\] docs\/cooking\.md: added, 1 chunk/);
      assert.match(s.out.text, /\[2\/3\] docs\/sqlite\.md: added, 1 chunk/);
      assert.match(s.out.text, /\[3\/3\] src\/main\.ts: added, 1 chunk/);
      assert.match(s.out.text, /Ingested 3 files: 3 added, 0 updated, 0 unchanged, 0 skipped/);
      assert.doesNotMatch(s.out.text, /hidden/);
      const embeds = fake.requests.filter((r) => r.path === "/api/embed");
      assert.ok(embeds.length > 0);
      assert.equal((embeds[0].body as { model: string }).model, "nomic-embed-text");
      s.out.text = "";
      assert.equal(await s.run("/rag ingest docs"), 0);
      assert.match(s.out.text, /docs\/sqlite\.md: unchanged/);
      s.err.text = "";
      assert.equal(await s.run("/rag ingest ../outside"), 1);
      assert.match(s.err.text, /outside the workspace/);
    });

    await t.step("query ranks the chunk that shares the words first", async () => {
      s.out.text = "";
      assert.equal(await s.run("/rag query how do readers work in WAL journal mode"), 0);
      const lines = s.out.text.split("\n");
      assert.match(lines[0], /^\[1\] docs\/sqlite\.md · score 0\.\d\d$/);
      assert.match(lines[1], /SQLite in WAL journal mode/);
    });

    await t.step("status shows the active store and its contents", async () => {
      s.out.text = "";
      assert.equal(await s.run("/rag status"), 0);
      assert.match(s.out.text, /Active store: docs at agents\/rag\/docs\.db/);
      assert.match(s.out.text, /Embedding model: nomic-embed-text, served by Ollama at /);
      assert.match(s.out.text, /3 chunks from 3 files, 512 dimensions/);
    });

    await t.step("with RAG on a prompt carries the context block to the chat server", async () => {
      assert.equal(await s.run("/rag on"), 0);
      assert.equal((await readYaml(s.root)).rag?.enabled, true);
      s.err.text = "";
      const prompt = "How do readers work while the writer commits in WAL journal mode?";
      assert.equal(await s.run(prompt), 0);
      const sent = lastChat(fake).at(-1)!;
      assert.equal(sent.role, "user");
      assert.ok(sent.content.startsWith(CONTEXT), sent.content);
      assert.match(sent.content, /\[1\] docs\/sqlite\.md \(score 0\.\d\d\)\nSQLite in WAL/);
      assert.doesNotMatch(sent.content, /pasta/);
      assert.ok(sent.content.endsWith(`---\n\n${prompt}`));
      assert.match(s.err.text, /RAG: 1 chunk from store docs added to the prompt/);
    });

    await t.step("a prompt that matches nothing goes out unchanged", async () => {
      s.err.text = "";
      assert.equal(await s.run("zebra xylophone quartz"), 0);
      assert.equal(lastChat(fake).at(-1)!.content, "zebra xylophone quartz");
      assert.doesNotMatch(s.err.text, /RAG/);
    });

    await t.step("an embedder of another model is refused; the turn still runs", async () => {
      await s.agent.config.update([[["rag", "stores", 0, "model_map"], {
        "llama3.2:latest": "bge-m3",
      }]]);
      s.err.text = "";
      assert.equal(await s.run("/rag query WAL journal mode"), 1);
      assert.match(
        s.err.text,
        /RAG store "docs" holds embeddings of nomic-embed-text, not bge-m3/,
      );
      s.err.text = "";
      const prompt = "How do readers work in WAL journal mode?";
      assert.equal(await s.run(prompt), 0);
      assert.match(s.err.text, /RAG retrieval skipped, the prompt goes without context: .*bge-m3/);
      assert.equal(lastChat(fake).at(-1)!.content, prompt);
      await s.agent.config.update([[["rag", "stores", 0, "model_map"], {}]]);
    });

    await t.step("a store whose registry names another model is refused on open", async () => {
      assert.equal(await s.run("/rag new other bge-m3"), 0);
      await s.agent.config.update([[["rag", "stores", 1, "db_path"], "agents/rag/docs.db"]]);
      s.err.text = "";
      assert.equal(await s.run("/rag status"), 1);
      assert.match(
        s.err.text,
        /was built with nomic-embed-text, but its registry entry says bge-m3/,
      );
      await s.agent.config.update([[["rag", "stores", 1, "db_path"], "agents/rag/other.db"]]);
    });

    await t.step("off persists, and a prompt is then sent as typed", async () => {
      assert.equal(await s.run("/rag use docs\n/rag off"), 0);
      assert.equal((await readYaml(s.root)).rag?.enabled, false);
      assert.equal(await s.run("How do readers work in WAL journal mode?"), 0);
      assert.equal(lastChat(fake).at(-1)!.content, "How do readers work in WAL journal mode?");
    });

    await t.step("drop asks first; no keeps the store, yes deletes it", async () => {
      s.out.text = "";
      assert.equal(await s.run("/rag drop docs\nn"), 0);
      assert.match(s.out.text, /Kept RAG store docs/);
      assert.ok((await Deno.stat(join(s.root, "agents", "rag", "docs.db"))).isFile);
      s.out.text = "";
      assert.equal(await s.run("/rag drop docs\ny"), 0);
      assert.match(s.out.text, /Dropped RAG store docs and deleted agents\/rag\/docs\.db/);
      await assert.rejects(() => Deno.stat(join(s.root, "agents", "rag", "docs.db")));
      const yaml = await readYaml(s.root);
      assert.equal(yaml.rag?.active, undefined);
      assert.deepEqual((yaml.rag?.stores as { name: string }[]).map((x) => x.name), ["other"]);
      s.err.text = "";
      assert.equal(await s.run("/rag use docs"), 1);
      assert.match(s.err.text, /No RAG store named "docs": known stores are other/);
    });
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("/rag: the registry and the on switch survive a restart", async () => {
  const fake = await startFakeOllama({ models: MODELS, embedDims: 512 });
  const root = await Deno.makeTempDir({ prefix: "harvey-rag-" });
  const flags = { ollama: fake.url, model: "llama3.2:latest" };
  try {
    const first = await testSession({ root, files: FILES, flags, selectBackend: true });
    try {
      assert.equal(await first.run("/rag new docs nomic-embed-text\n/rag ingest docs\n/rag on"), 0);
    } finally {
      await first.close();
    }
    const second = await testSession({ root, flags, selectBackend: true });
    try {
      assert.equal(await second.run("/rag list"), 0);
      assert.match(second.out.text, /\* docs {2}nomic-embed-text {2}agents\/rag\/docs\.db/);
      assert.match(second.out.text, /RAG is on/);
      assert.equal(await second.run("Boil pasta with tomato and basil?"), 0);
      assert.match(lastChat(fake).at(-1)!.content, /docs\/cooking\.md/);
    } finally {
      await second.close();
    }
  } finally {
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("/rag: an OpenAI-compatible backend embeds at its URL; a failing embedder leaves the prompt as typed", async () => {
  const serving = await startFakeOpenAI({ embedDims: 512 });
  const root = await Deno.makeTempDir({ prefix: "harvey-rag-" });
  try {
    const first = await testSession({
      root,
      files: FILES,
      flags: { llamafileUrl: serving.url },
      selectBackend: true,
    });
    try {
      assert.equal(await first.run("/rag new docs embed-model\n/rag ingest docs\n/rag on"), 0);
      assert.match(first.out.text, /with embed-model \(the server at http:\/\/127\.0\.0\.1:/);
      assert.ok(serving.requests.some((r) => r.path === "/v1/embeddings"));
    } finally {
      await first.close();
    }
    const broken = await startFakeOpenAI({ embeddings: false });
    const second = await testSession({
      root,
      flags: { llamafileUrl: broken.url },
      selectBackend: true,
    });
    try {
      const prompt = "How do readers work in WAL journal mode?";
      assert.equal(await second.run(prompt), 0);
      assert.match(
        second.err.text,
        /RAG retrieval skipped, the prompt goes without context: .*501/,
      );
      const chat = broken.requests.filter((r) => r.path === "/v1/chat/completions").at(-1);
      const messages = (chat?.body as { messages: { content: string }[] }).messages;
      assert.equal(messages.at(-1)!.content, prompt);
    } finally {
      await second.close();
      await broken.close();
    }
  } finally {
    await serving.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("/rag: Ctrl-C during a hung retrieval stops the turn before anything is sent", async () => {
  const serving = await startFakeOpenAI({ embedDims: 512 });
  const root = await Deno.makeTempDir({ prefix: "harvey-rag-" });
  // A server whose embeddings endpoint never answers; everything else is the fake's.
  const hung = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/v1/embeddings") {
      await new Promise((resolve) => req.signal.addEventListener("abort", resolve));
      return new Response(null, { status: 499 });
    }
    return fetch(`${serving.url}${url.pathname}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
    });
  });
  try {
    const first = await testSession({
      root,
      files: FILES,
      flags: { llamafileUrl: serving.url },
      selectBackend: true,
    });
    assert.equal(await first.run("/rag new docs embed-model\n/rag ingest docs\n/rag on"), 0);
    await first.close();
    const s = await testSession({
      root,
      flags: { llamafileUrl: `http://127.0.0.1:${hung.addr.port}` },
      selectBackend: true,
    });
    try {
      const before = serving.requests.filter((r) => r.path === "/v1/chat/completions").length;
      const historyBefore = s.agent.history.length;
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      assert.equal(await s.run("What about WAL?", { signal: controller.signal }), 0);
      assert.match(s.err.text, /Interrupted before the prompt was sent/);
      assert.equal(
        serving.requests.filter((r) => r.path === "/v1/chat/completions").length,
        before,
      );
      assert.equal(s.agent.history.length, historyBefore);
    } finally {
      await s.close();
    }
  } finally {
    await hung.shutdown();
    await serving.close();
    await Deno.remove(root, { recursive: true });
  }
});
