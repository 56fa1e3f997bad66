import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { dirname, join } from "node:path";
import { HarveyError } from "../src/errors.ts";
import { chunkText } from "../src/store/chunker.ts";
import { type Embedder, OllamaEmbedder, OpenAIEmbedder } from "../src/store/embedder.ts";
import { directFiles } from "../src/store/ingest_files.ts";
import {
  augmentPrompt,
  formatRagContext,
  migrateRagConfig,
  RAG_CONTEXT_HEADING,
  resolveEmbeddingModel,
} from "../src/store/rag_context.ts";
import { type IngestProgress, RagStore } from "../src/store/rag_store.ts";
import { VectorIndex } from "../src/store/vector_index.ts";
import { Workspace } from "../src/workspace.ts";
import { fakeEmbedding } from "./fixtures/fake_embed.ts";
import { type FakeOllama, startFakeOllama } from "./fixtures/fake_ollama.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";

const MODEL = "nomic-embed-text";

const FILES: Record<string, string> = {
  "docs/sqlite.md": "SQLite write ahead logging: the WAL journal mode lets readers continue " +
    "while a writer appends to the journal. Checkpoints move pages back.",
  "docs/cooking.md": "Pasta with tomato sauce: boil the pasta in salted water, simmer the " +
    "tomato sauce with garlic and basil, then toss together.",
  "src/math.ts": "export function add(a: number, b: number): number {\n  return a + b;\n}\n",
  "notes/empty.txt": "   \n\n  ",
  "image.png": "not really an image but named like one",
  "data.txt": "binary\u0000content",
  ".hidden/secret.md": "hidden pasta tomato",
  "node_modules/pkg/readme.md": "vendored pasta tomato",
};

async function makeWorkspace(files: Record<string, string> = FILES): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "harvey_rag_" });
  for (const [rel, text] of Object.entries(files)) {
    await Deno.mkdir(join(root, dirname(rel)), { recursive: true });
    await Deno.writeTextFile(join(root, rel), text);
  }
  return root;
}

function throwsHarvey(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => isOneLineHarvey(err, pattern));
}

async function rejectsHarvey(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (err: unknown) => isOneLineHarvey(err, pattern));
}

function isOneLineHarvey(err: unknown, pattern: RegExp): boolean {
  assert.ok(err instanceof HarveyError, `expected a HarveyError, got ${err}`);
  assert.match(err.message, pattern);
  assert.ok(!err.message.includes("\n"), "error is one line");
  return true;
}

function embedRequests(fake: FakeOllama): number {
  return fake.requests.filter((r) => r.path === "/api/embed").length;
}

/** Serves one fixed answer on /v1/embeddings (and /api/embed), for the error cases. */
async function serveOnce(status: number, body: unknown) {
  const ready = Promise.withResolvers<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => ready.resolve(a.port) },
    async (req) => {
      await req.body?.cancel();
      return new Response(JSON.stringify(body), {
        status,
        headers: { "content-type": "application/json" },
      });
    },
  );
  const port = await ready.promise;
  return { url: `http://127.0.0.1:${port}`, close: () => server.shutdown() };
}

Deno.test("chunker: sized pieces with overlap, code cut before definitions", async (t) => {
  await t.step("prose is cut near the size, overlapping, covering every word", () => {
    const words = Array.from({ length: 400 }, (_, i) => `word${i}`);
    const text = words.join(" ");
    const chunks = chunkText(text, { size: 200, overlap: 40 });
    assert.ok(chunks.length >= 10);
    for (const c of chunks) {
      assert.ok(c.text.length <= 200, `chunk of ${c.text.length} characters`);
      assert.equal(text.slice(c.start, c.end), c.text);
      assert.ok(c.start === 0 || text[c.start - 1] === " ", "no chunk starts inside a word");
    }
    for (let i = 1; i < chunks.length; i++) {
      assert.ok(chunks[i].start < chunks[i - 1].end, "consecutive chunks overlap");
    }
    const covered = new Set(chunks.flatMap((c) => c.text.split(" ")));
    assert.deepEqual(words.filter((w) => !covered.has(w)), []);
  });

  await t.step("code is split before definitions, with their comments", () => {
    const fn = (name: string) =>
      `/** Doc of ${name}. */\nexport function ${name}(x: number): number {\n` +
      `  const y = x * 2;\n  return y + ${"1 + ".repeat(20)}0;\n}\n`;
    const text = ["alpha", "beta", "gamma", "delta", "epsilon"].map(fn).join("");
    const chunks = chunkText(text, { size: 300, path: "src/funcs.ts" });
    assert.ok(chunks.length >= 3);
    for (const c of chunks) assert.match(c.text, /^\/\*\* Doc of \w+\. \*\/\nexport function/);
    assert.equal(chunks[0].line, 1);
    assert.equal(chunks[1].line, text.slice(0, chunks[1].start).split("\n").length);
  });

  await t.step("paragraphs are preferred over line ends; blank text gives nothing", () => {
    const para = (n: number) => `Paragraph ${n} line one.\nParagraph ${n} line two.`;
    const text = [1, 2, 3, 4, 5, 6].map(para).join("\n\n");
    const chunks = chunkText(text, { size: 120, overlap: 0 });
    for (const c of chunks) assert.match(c.text, /^Paragraph \d line one\./);
    assert.deepEqual(chunkText(" \n\n \t\n"), []);
    const long = chunkText("x".repeat(1200), { size: 500 });
    assert.deepEqual(long.map((c) => c.text.length), [500, 500, 200]);
  });
});

Deno.test("vector index: same top-k as brute force, through growth and removals", () => {
  const dims = 37; // not a multiple of the kernel's lanes
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
  const vectors = new Map<number, number[]>();
  const index = new VectorIndex(dims, { capacity: 4 });
  for (let id = 1; id <= 500; id++) {
    const v = Array.from({ length: dims }, random);
    vectors.set(id, v);
    index.add(id, v);
  }
  assert.ok(index.capacity >= 500);
  for (let id = 2; id <= 500; id += 3) {
    assert.equal(index.remove(id), true);
    vectors.delete(id);
  }
  assert.equal(index.remove(2), false);
  index.add(10_000, vectors.get(1)!.map((x) => x * 5)); // same direction as id 1
  vectors.set(10_000, vectors.get(1)!);
  assert.equal(index.size, vectors.size);

  const cosine = (a: number[], b: number[]) => {
    let dot = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    return dot / Math.sqrt(na * nb);
  };
  for (let q = 0; q < 20; q++) {
    const query = Array.from({ length: dims }, random);
    const expected = [...vectors].map(([id, v]) => ({ id, score: cosine(query, v) }))
      .sort((a, b) => b.score - a.score).slice(0, 5);
    const got = index.search(query, 5);
    assert.deepEqual(got.map((h) => h.id).sort(), expected.map((h) => h.id).sort());
    got.forEach((h, i) => assert.ok(Math.abs(h.score - expected[i].score) < 1e-4));
    assert.ok(got.every((h, i) => i === 0 || got[i - 1].score >= h.score));
  }
  const self = index.search(vectors.get(1)!, 2);
  assert.deepEqual(self.map((h) => h.id).sort((a, b) => a - b), [1, 10_000]);
  assert.ok(self[0].score > 0.9999);
  assert.deepEqual(index.search(vectors.get(1)!, 3, { minScore: 0.99 }).length, 2);
  throwsHarvey(() => index.search([1, 2], 5), /Expected a query vector of 37 dimensions, found 2/);
});

Deno.test("embedders: Ollama and OpenAI-compatible over HTTP, batched", async (t) => {
  const ollama = await startFakeOllama({ models: [MODEL] });
  const openai = await startFakeOpenAI({ apiKey: "sk-test", embedDims: 32 });
  try {
    await t.step("Ollama /api/embed in batches", async () => {
      const e = new OllamaEmbedder({ baseUrl: `${ollama.url}/`, model: MODEL, batchSize: 2 });
      assert.equal(e.name, MODEL);
      const texts = ["one", "two words", "three", "four", "five"];
      const before = embedRequests(ollama);
      const vectors = await e.embed(texts);
      assert.equal(embedRequests(ollama) - before, 3);
      assert.equal(vectors.length, 5);
      vectors.forEach((v, i) => {
        const want = fakeEmbedding(texts[i]);
        assert.ok(v.every((x, j) => Math.abs(x - want[j]) < 1e-6));
      });
      assert.deepEqual(await e.embed([]), []);
    });

    await t.step("OpenAI /v1/embeddings with a key, base URL with or without /v1", async () => {
      for (const baseUrl of [openai.url, `${openai.url}/v1`]) {
        const e = new OpenAIEmbedder({ baseUrl, model: "embed", apiKey: "sk-test" });
        const [a, b] = await e.embed(["alpha beta", "gamma"]);
        assert.equal(a.length, 32);
        const want = fakeEmbedding("gamma", 32);
        assert.ok(b.every((x, j) => Math.abs(x - want[j]) < 1e-6));
      }
      const last = openai.requests.at(-1)!;
      assert.equal(last.path, "/v1/embeddings");
      assert.equal(last.headers.authorization, "Bearer sk-test");
      assert.deepEqual(last.body, { model: "embed", input: ["alpha beta", "gamma"] });
      const noKey = new OpenAIEmbedder({ baseUrl: openai.url, model: "embed" });
      await rejectsHarvey(noKey.embed(["x"]), /answered 401: .*check the API key\)$/);
    });

    await t.step("unknown Ollama model: says how to pull it", async () => {
      const e = new OllamaEmbedder({ baseUrl: ollama.url, model: "missing-embed" });
      await rejectsHarvey(
        e.embed(["x"]),
        /answered 404: model 'missing-embed' not found \(pull the model with: ollama pull missing-embed\)/,
      );
    });
  } finally {
    await ollama.close();
    await openai.close();
  }

  await t.step("connection refused names the server and how to start it", async () => {
    const e = new OllamaEmbedder({ baseUrl: ollama.url, model: MODEL });
    await rejectsHarvey(
      e.embed(["x"]),
      new RegExp(
        `Cannot reach the embedding server at ${ollama.url}/api/embed: connection refused \\(is Ollama running`,
      ),
    );
    const o = new OpenAIEmbedder({ baseUrl: ollama.url, model: MODEL });
    await rejectsHarvey(o.embed(["x"]), /connection refused .*--embeddings --pooling mean/);
  });

  await t.step("llama-server without pooling (400) and without embeddings (501)", async () => {
    const pooling = await serveOnce(400, {
      error: {
        code: 400,
        message: "Pooling type 'none' is not OAI compatible. Please use a different pooling type",
        type: "invalid_request_error",
      },
    });
    const off = await startFakeOpenAI({ embeddings: false });
    try {
      await rejectsHarvey(
        new OpenAIEmbedder({ baseUrl: pooling.url, model: "m" }).embed(["x"]),
        /answered 400: Pooling type 'none' is not OAI compatible.*started with --embeddings --pooling mean\)$/,
      );
      await rejectsHarvey(
        new OpenAIEmbedder({ baseUrl: off.url, model: "m" }).embed(["x"]),
        /answered 501: .*--embeddings --pooling mean\)$/,
      );
    } finally {
      await pooling.close();
      await off.close();
    }
  });

  await t.step("a wrong number of vectors, and data out of index order", async () => {
    const short = await serveOnce(200, { embeddings: [[1, 0]] });
    const shuffled = await serveOnce(200, {
      data: [{ index: 1, embedding: [0, 1] }, { index: 0, embedding: [1, 0] }],
    });
    try {
      await rejectsHarvey(
        new OllamaEmbedder({ baseUrl: short.url, model: MODEL }).embed(["a", "b"]),
        /returned 1 vectors for 2 texts/,
      );
      const [first, second] = await new OpenAIEmbedder({ baseUrl: shuffled.url, model: "m" })
        .embed(["a", "b"]);
      assert.deepEqual([...first], [1, 0]);
      assert.deepEqual([...second], [0, 1]);
    } finally {
      await short.close();
      await shuffled.close();
    }
  });
});

Deno.test("RAG store: ingest and query round trip over a fake Ollama", async (t) => {
  const root = await makeWorkspace();
  const fake = await startFakeOllama({ models: [MODEL] });
  const embedder = new OllamaEmbedder({ baseUrl: fake.url, model: MODEL });
  const dbPath = join(root, "agents", "rag", "docs.db"); // inside the workspace: never ingested
  let store = RagStore.open(dbPath);
  try {
    await t.step(
      "first ingest walks, skips binary and hidden files, reports progress",
      async () => {
        const events: IngestProgress[] = [];
        const report = await store.ingest([root], embedder, {
          files: directFiles(root),
          onProgress: (p) => events.push(p),
        });
        assert.deepEqual(events.map((e) => [e.path, e.status]), [
          ["data.txt", "skipped"],
          ["docs/cooking.md", "added"],
          ["docs/sqlite.md", "added"],
          ["image.png", "skipped"],
          ["notes/empty.txt", "added"],
          ["src/math.ts", "added"],
        ]);
        assert.ok(events.every((e, i) => e.index === i + 1 && e.total === 6));
        assert.equal(report.added, 4);
        assert.deepEqual(report.skipped.map((s) => s.reason), ["binary file", "binary file"]);
        assert.equal(report.chunks, 3);
        assert.equal(store.model, MODEL);
        assert.equal(store.dims, 64);
        assert.deepEqual(store.sources().map((s) => [s.path, s.chunks]), [
          ["docs/cooking.md", 1],
          ["docs/sqlite.md", 1],
          ["notes/empty.txt", 0],
          ["src/math.ts", 1],
        ]);
      },
    );

    await t.step("a query ranks the chunk sharing its words first, with its source", async () => {
      const hits = await store.query("how long to boil pasta with tomato sauce", embedder);
      assert.equal(hits[0].source, "docs/cooking.md");
      assert.match(hits[0].content, /^Pasta with tomato sauce/);
      assert.ok(hits.every((h) => h.score >= 0.3));
      const wal = await store.query("WAL journal mode readers", embedder, { k: 1 });
      assert.deepEqual(wal.map((h) => h.source), ["docs/sqlite.md"]);
      assert.deepEqual(await store.query("zebra quantum", embedder), []);
      const all = await store.query("zebra quantum", embedder, { minScore: -1, k: 10 });
      assert.equal(all.length, 3);
    });

    await t.step("re-ingest skips unchanged files without embedding them", async () => {
      const before = embedRequests(fake);
      const report = await store.ingest([root], embedder, { files: directFiles(root) });
      assert.equal(report.unchanged, 4);
      assert.equal(report.added + report.updated, 0);
      assert.equal(embedRequests(fake), before);
      const some = await store.ingest([root], embedder, {
        files: directFiles(root),
        skipPaths: [join(root, "docs"), join(root, "image.png")],
      });
      assert.equal(some.files, 3, "data.txt, notes/empty.txt and src/math.ts");
    });

    await t.step("a changed file's chunks are replaced, in memory and on disk", async () => {
      await Deno.writeTextFile(
        join(root, "docs/cooking.md"),
        "Risotto: toast the rice, add stock slowly, stir in parmesan.",
      );
      const report = await store.ingest([join(root, "docs")], embedder, {
        files: directFiles(root),
      });
      assert.deepEqual([report.updated, report.unchanged], [1, 1]);
      const pasta = await store.query("pasta tomato sauce basil", embedder, { minScore: 0.3 });
      assert.ok(pasta.every((h) => h.source !== "docs/cooking.md"), "old chunks are gone");
      const risotto = await store.query("risotto rice stock parmesan", embedder);
      assert.equal(risotto[0].source, "docs/cooking.md");
      assert.equal(store.info().chunks, 3);

      store.close();
      store = RagStore.open(dbPath, { model: `${MODEL}:latest` });
      const again = await store.query("risotto rice stock parmesan", embedder);
      assert.deepEqual(again.map((h) => h.id), risotto.map((h) => h.id));
    });

    await t.step("another embedding model is refused, naming both", async () => {
      const other = new OllamaEmbedder({ baseUrl: fake.url, model: "all-minilm" });
      await rejectsHarvey(
        store.ingest([root], other, { files: directFiles(root) }),
        /RAG store "docs" holds embeddings of nomic-embed-text, not all-minilm/,
      );
      await rejectsHarvey(store.query("pasta", other), /nomic-embed-text, not all-minilm/);
      throwsHarvey(
        () => RagStore.open(dbPath, { model: "all-minilm" }),
        /RAG store "docs" was built with nomic-embed-text, but its registry entry says all-minilm/,
      );
    });

    await t.step("augmentPrompt puts the context block before the prompt", async () => {
      const prompt = "Which journal mode lets readers continue?";
      const out = await augmentPrompt(prompt, { store, embedder });
      assert.ok(out.startsWith(`${RAG_CONTEXT_HEADING}\n\n[1] docs/sqlite.md (score `));
      assert.ok(out.endsWith(`\n\n---\n\n${prompt}`));
      assert.equal(await augmentPrompt("zebra quantum", { store, embedder }), "zebra quantum");
    });
  } finally {
    store.close();
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("RAG store: an interrupted ingest leaves whole files only, and resumes", async () => {
  const root = await makeWorkspace({
    "a.md": "apple orchard harvest",
    "b.md": "bicycle chain gears",
    "c.md": "canyon river rafting",
  });
  let fake = await startFakeOllama({ models: [MODEL] });
  let closing: Promise<void> | undefined;
  const inner = new OllamaEmbedder({ baseUrl: fake.url, model: MODEL });
  // The server goes away after the second file, so embedding the third one fails for real.
  const failing: Embedder = {
    name: MODEL,
    embed: async (texts, opts) => {
      await closing;
      return inner.embed(texts, opts);
    },
  };
  const dbPath = join(`${root}_db`, "interrupted.db");
  const store = RagStore.open(dbPath);
  try {
    await rejectsHarvey(
      store.ingest([root], failing, {
        files: directFiles(root),
        onProgress: (p) => {
          if (p.index === 2) closing = fake.close();
        },
      }),
      /Ingest into RAG store "interrupted" stopped at c\.md: Cannot reach the embedding server .*connection refused.*\(2 of 3 files are stored; run the ingest again to continue\)$/,
    );
    assert.deepEqual(store.sources().map((s) => s.path), ["a.md", "b.md"]);
    const raw = new DatabaseSync(dbPath);
    try {
      const sources = raw.prepare("SELECT DISTINCT source FROM chunks ORDER BY source").all();
      assert.deepEqual(sources.map((r) => r.source), ["a.md", "b.md"]);
    } finally {
      raw.close();
    }

    fake = await startFakeOllama({ models: [MODEL] });
    const embedder = new OllamaEmbedder({ baseUrl: fake.url, model: MODEL });
    const report = await store.ingest([root], embedder, { files: directFiles(root) });
    assert.deepEqual([report.unchanged, report.added], [2, 1]);
    const hits = await store.query("river rafting in the canyon", embedder);
    assert.equal(hits[0].source, "c.md");

    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(
      store.ingest([root], embedder, { files: directFiles(root), signal: aborted.signal }),
      (err: unknown) => err instanceof Error && err.name === "AbortError",
    );
  } finally {
    store.close();
    await closing;
    await fake.close();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(`${root}_db`, { recursive: true });
  }
});

Deno.test("RAG store: reads and extends a store written by the original Harvey", async () => {
  const root = await makeWorkspace({ "new.md": "volcano lava eruption magma" });
  const fake = await startFakeOpenAI({ embedDims: 64 });
  const embedder = new OpenAIEmbedder({ baseUrl: fake.url, model: MODEL });
  const dbPath = join(root, "agents", "rag", "golang.db");
  const float64Blob = (v: number[]) => {
    const bytes = new Uint8Array(4 + v.length * 8);
    const view = new DataView(bytes.buffer);
    view.setInt32(0, v.length, true);
    v.forEach((x, i) => view.setFloat64(4 + i * 8, x, true));
    return bytes;
  };
  await Deno.mkdir(dirname(dbPath), { recursive: true });
  const raw = new DatabaseSync(dbPath);
  raw.exec(`CREATE TABLE chunks (id INTEGER PRIMARY KEY, content TEXT NOT NULL,
    embedding BLOB NOT NULL, source TEXT NOT NULL DEFAULT '')`);
  const insert = raw.prepare("INSERT INTO chunks (content, embedding, source) VALUES (?, ?, ?)");
  const legacy = [
    ["goroutines and channels for concurrency", "go/concurrency.md"],
    ["interfaces are satisfied implicitly", "go/interfaces.md"],
  ];
  for (const [content, source] of legacy) {
    insert.run(content, float64Blob(fakeEmbedding(content).map((x) => x * 3)), source);
  }
  raw.close();

  let store = RagStore.open(dbPath);
  try {
    assert.equal(store.model, undefined, "the original Harvey did not record the model");
    assert.equal(store.dims, 64);
    assert.equal(store.format, 1);
    const hits = await store.query("channels and goroutines", embedder);
    assert.equal(hits[0].source, "go/concurrency.md");
    assert.equal(hits[0].content, "goroutines and channels for concurrency");
    store.close();

    store = RagStore.open(dbPath, { model: MODEL });
    assert.equal(store.model, MODEL, "the registry entry's model is recorded");
    const workspace = await Workspace.open(root); // the sandbox Harvey reads through
    const report = await store.ingest([join(workspace.root, "new.md")], embedder, {
      files: workspace,
    });
    assert.equal(report.added, 1);
    assert.equal((await store.query("lava from the volcano", embedder))[0].source, "new.md");
    assert.equal(
      (await store.query("implicit interfaces", embedder))[0].source,
      "go/interfaces.md",
    );
    store.close();

    // New chunks keep the original format, so the original Harvey can still read the store.
    const check = new DatabaseSync(dbPath);
    try {
      const row = check.prepare("SELECT embedding FROM chunks WHERE source = 'new.md'").get() as {
        embedding: Uint8Array;
      };
      const view = new DataView(row.embedding.buffer, row.embedding.byteOffset);
      assert.equal(row.embedding.byteLength, 4 + 64 * 8);
      assert.equal(view.getInt32(0, true), 64);
    } finally {
      check.close();
    }
    store = RagStore.open(dbPath);
    assert.equal(store.info().chunks, 3);
  } finally {
    store.close();
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("RAG store: new stores use float32 and refuse what does not fit", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "harvey_rag_fmt_" });
  try {
    await t.step("float32 blobs, model and dims in meta, WAL", () => {
      const path = join(dir, "f32.db");
      const store = RagStore.open(path);
      try {
        assert.equal(store.format, 2);
        store.addChunks([
          { content: "x", source: "s", vector: [3, 4, 0] },
          { content: "y", source: "s", vector: [0, 0, 1] },
        ], { model: "m" });
        throwsHarvey(
          () => store.addChunks([{ content: "z", source: "s", vector: [1, 2] }], { model: "m" }),
          /returned 2-dimensional vectors but RAG store "f32" holds 3-dimensional ones/,
        );
        throwsHarvey(
          () => store.addChunks([{ content: "z", source: "s", vector: [1, 2, 3] }], { model: "o" }),
          /holds embeddings of m, not o/,
        );
        throwsHarvey(() => store.search([1, 0]), /query vector has 2 dimensions .* \(m\)$/);
        const hits = store.search([0.6, 0.8, 0], { k: 5 });
        assert.deepEqual(hits.map((h) => h.content), ["x"]);
        assert.ok(Math.abs(hits[0].score - 1) < 1e-6);
        assert.equal(store.removeSource("s"), 2);
        assert.deepEqual(store.search([0.6, 0.8, 0]), []);
      } finally {
        store.close();
      }
      const raw = new DatabaseSync(path);
      try {
        const meta = Object.fromEntries(
          raw.prepare("SELECT key, value FROM meta").all().map((r) => [r.key, r.value]),
        );
        assert.deepEqual(meta, { format_version: "2", model: "m", dims: "3" });
        assert.deepEqual({ ...raw.prepare("PRAGMA journal_mode").get() }, { journal_mode: "wal" });
      } finally {
        raw.close();
      }
    });

    await t.step("a database that is not a store is refused", () => {
      const path = join(dir, "knowledge.db");
      const raw = new DatabaseSync(path);
      raw.exec("CREATE TABLE projects (id INTEGER PRIMARY KEY)");
      raw.close();
      throwsHarvey(() => RagStore.open(path), /not a RAG store \(it has tables projects\)/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RAG config helpers: context block, model_map, old single-store form", () => {
  const chunks = [
    { id: 1, content: "  first  ", source: "a.md", score: 0.91 },
    { id: 2, content: "second", source: "", score: 0.31 },
    { id: 3, content: "third", source: "c.md", score: 0.1 },
  ];
  assert.equal(
    formatRagContext("Q?", chunks),
    `${RAG_CONTEXT_HEADING}\n\n[1] a.md (score 0.91)\nfirst\n\n` +
      `[2] (unknown source) (score 0.31)\nsecond\n\n---\n\nQ?`,
  );
  assert.equal(formatRagContext("Q?", chunks, { minScore: 0.95 }), "Q?");
  assert.equal(formatRagContext("Q?", []), "Q?");

  const entry = { embedding_model: "nomic-embed-text", model_map: { "qwen3:latest": "bge-m3" } };
  assert.equal(resolveEmbeddingModel(entry, "qwen3"), "bge-m3");
  assert.equal(resolveEmbeddingModel(entry, "qwen3:latest"), "bge-m3");
  assert.equal(resolveEmbeddingModel(entry, "llama3.2"), "nomic-embed-text");
  assert.equal(resolveEmbeddingModel(entry, undefined), "nomic-embed-text");

  assert.deepEqual(
    migrateRagConfig({ enabled: true, db_path: "agents/rag.db", embedding_model: "nomic" }),
    {
      migrated: true,
      rag: {
        enabled: true,
        active: "default",
        stores: [{
          name: "default",
          db_path: "agents/rag.db",
          embedding_model: "nomic",
          model_map: {},
        }],
      },
    },
  );
  const current = { enabled: false, active: "go", stores: [{ name: "go" }] };
  assert.deepEqual(migrateRagConfig(current), { migrated: false, rag: current });
  const both = migrateRagConfig({ active: "go", stores: [{ name: "go" }], db_path: "x.db" });
  assert.deepEqual(both.rag, {
    active: "go",
    stores: [{ name: "go" }, {
      name: "default",
      db_path: "x.db",
      embedding_model: "",
      model_map: {},
    }],
  });
  throwsHarvey(
    () => migrateRagConfig({ db_path: "x.db", stores: [{ name: "default", db_path: "y.db" }] }),
    /both rag\.db_path \(x\.db\) and a store named default/,
  );
  throwsHarvey(() => migrateRagConfig({ db_path: 3 }), /Expected rag\.db_path .* to be text/);
  throwsHarvey(() => migrateRagConfig({ embedding_model: "m" }), /Expected rag\.db_path/);
});
