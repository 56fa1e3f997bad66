/**
 * RAG without Ollama: a registered GGUF embedding model is served by a request-scoped
 * `llama-server --embeddings --pooling mean`, and chunks are sized in the embedding model's
 * tokens, so dense text (CJK) cannot overflow the server's batch.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { chunkByTokens, chunkText } from "../src/store/chunker.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { countTokens } from "./fixtures/fixture_common.ts";
import { makeFakeRolesServer, writeGguf } from "./fixtures/make_fake_llama_cpp.ts";
import { testSession } from "./helpers.ts";

const DOCS = {
  "docs/sqlite.md":
    "SQLite in WAL journal mode lets readers keep reading while one writer commits.\n",
  "docs/cooking.md": "Boil the pasta, then add tomato, basil and garlic for a quick sauce.\n",
};

async function runs(log: string): Promise<{ mode: string; argv: string[] }[]> {
  const text = await Deno.readTextFile(log).catch(() => "");
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

Deno.test("a GGUF embedding model is served by its own request-scoped llama-server", async () => {
  const bin = await Deno.makeTempDir({ prefix: "harvey_bin_" });
  await makeFakeRolesServer(bin);
  const log = join(bin, "runs.log");
  const root = await Deno.makeTempDir({ prefix: "harvey-rag-local-" });
  await Deno.mkdir(join(root, "Models"));
  const chat = await writeGguf(join(root, "Models", "chat.gguf"));
  await writeGguf(join(root, "Models", "nomic.gguf"), 64, { pooling: "mean" });
  const s = await testSession({
    root,
    files: {
      ...DOCS,
      "agents/harvey.yaml":
        "llamacpp:\n  models:\n    - name: nomic\n      path: ~/Models/nomic.gguf\n",
    },
    env: { PATH: bin, HARVEY_FAKE_LOG: log },
    flags: { ollama: "http://127.0.0.1:9", gguf: chat },
    selectBackend: true,
  });
  try {
    assert.equal(await s.run("/rag new docs nomic\n/rag ingest docs\n/rag on\n"), 0, s.err.text);
    assert.match(
      s.out.text,
      /Ingesting into docs with nomic \(a llama-server for embeddings, started on first use\)/,
    );
    assert.match(s.out.text, /Ingested 2 files: 2 added/);
    assert.match(s.err.text, /Starting llama-server for the embedding model nomic/);
    assert.equal(await s.run("How do readers work in WAL journal mode?\n"), 0, s.err.text);
    assert.match(s.out.text, /### Context \(from knowledge base\)/);
    assert.match(s.out.text, /WAL journal mode lets readers/);
    const servers = (await runs(log)).filter((r) => r.mode === "server");
    const embedding = servers.filter((r) => r.argv.includes("--embeddings"));
    assert.equal(embedding.length, 1, "one embedding server for ingest and retrieval");
    const argv = embedding[0].argv;
    assert.equal(argv[argv.indexOf("-m") + 1], join(root, "Models", "nomic.gguf"));
    assert.equal(argv[argv.indexOf("--pooling") + 1], "mean");
    assert.equal(servers.length, 2, "and one for the chat model");
    assert.doesNotMatch(s.err.text, /Ollama/);
  } finally {
    await s.close();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(bin, { recursive: true });
  }
});

const CJK = "数据库在日志模式下允许读者继续读取。".repeat(120); // 2,160 characters, one token each

Deno.test("chunks are sized in tokens: 500 CJK characters no longer overflow the batch", async (t) => {
  await t.step(
    "chunkByTokens splits what is too many tokens, not too many characters",
    async () => {
      const byChars = chunkText(CJK);
      assert.ok(countTokens(byChars[0].text) > 300, "500 characters are ~500 tokens");
      const chunks = await chunkByTokens(CJK, {
        maxTokens: 256,
        count: (text) => Promise.resolve(countTokens(text)),
      });
      assert.ok(chunks.every((c) => countTokens(c.text) <= 256));
      assert.equal(chunks.map((c) => c.text).join(""), CJK.trimEnd());
      const english = "SQLite in WAL mode. ".repeat(20);
      assert.equal(
        (await chunkByTokens(english, { count: (x) => Promise.resolve(countTokens(x)) })).length,
        1,
      );
    },
  );

  await t.step("ingest against a server with a 300-token batch succeeds", async () => {
    const server = await startFakeOpenAI({ embedBatch: 300 });
    const s = await testSession({
      files: { "docs/cjk.md": CJK },
      flags: { llamafileUrl: server.url },
      selectBackend: true,
    });
    try {
      assert.equal(await s.run("/rag new docs m\n/rag ingest docs\n"), 0, s.err.text);
      const inputs = server.requests.filter((r) => r.path === "/v1/embeddings")
        .flatMap((r) => (r.body as { input: string[] }).input);
      assert.ok(inputs.length >= 9);
      assert.ok(inputs.every((text) => countTokens(text) <= 256));
      assert.ok(server.requests.some((r) => r.path === "/tokenize"), "counted by the server");
    } finally {
      await s.close();
      await server.close();
    }
  });

  await t.step("a batch smaller than a chunk: the hint says what to change", async () => {
    const server = await startFakeOpenAI({ embedBatch: 64 });
    const s = await testSession({
      files: { "docs/cjk.md": CJK },
      flags: { llamafileUrl: server.url },
      selectBackend: true,
    });
    try {
      assert.equal(await s.run("/rag new docs m\n/rag ingest docs\n"), 1);
      assert.match(
        s.err.text,
        /is too large to process.*\(one chunk has more tokens than the server embeds at once \(its --ubatch-size, 512 by default\): start llama-server with a larger -ub/,
      );
    } finally {
      await s.close();
      await server.close();
    }
  });
});
