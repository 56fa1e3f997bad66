/**
 * RAG store speed: a top-5 query over 100,000 chunks of 768 dimensions against the original
 * Harvey's approach (decode every float64 BLOB from SQLite and compute cosine per query),
 * measured in the same run; ingest throughput with an in-process fake embedder; the size of
 * a store on disk per 100,000 chunks.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/rag_bench.ts`
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { dirname, join } from "node:path";
import type { BenchResult } from "./result.ts";
import type { Embedder } from "../src/store/embedder.ts";
import { directFiles } from "../src/store/ingest_files.ts";
import { RagStore } from "../src/store/rag_store.ts";
import { encodeVector, FORMAT_LEGACY_F64 } from "../src/store/vector_blob.ts";
import { fakeEmbedding } from "../test/fixtures/fake_embed.ts";

const ROWS = 100_000;
const DIMS = 768;
const QUERY_RUNS = 21;
const BASELINE_RUNS = 3;
const TARGET_MS = 40;
const MODEL = "bench-embed";

/** Runs the RAG benchmarks and returns their figures. */
export async function run(): Promise<BenchResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "harvey_rag_bench_" });
  try {
    return [...(await queryBench(dir)), await ingestBench(dir)];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function queryBench(dir: string): Promise<BenchResult[]> {
  const random = xorshift(42);
  let t = performance.now();
  const vectors = new Float32Array(ROWS * DIMS);
  for (let i = 0; i < vectors.length; i++) vectors[i] = random() - 0.5;
  const filler = "lorem ipsum dolor sit amet consectetur adipiscing elit ".repeat(9);
  const content = (i: number) => `chunk ${i}: ${filler}`.slice(0, 500);
  const row = (i: number) => vectors.subarray(i * DIMS, (i + 1) * DIMS);
  const generateMs = performance.now() - t;

  // Harvey's store: one transaction, one prepared statement.
  const path = join(dir, "rag", "bench.db");
  let store = RagStore.open(path);
  t = performance.now();
  const chunks = Array.from({ length: ROWS }, (_, i) => ({
    content: content(i),
    source: `src/file_${Math.floor(i / 20)}.ts`,
    vector: row(i),
  }));
  store.addChunks(chunks, { model: MODEL });
  const insertMs = performance.now() - t;
  store.close(); // checkpoints the WAL into the file
  const sizeBytes = (await Deno.stat(path)).size;

  // The original Harvey's layout: length-prefixed float64 BLOBs.
  const legacyPath = join(dir, "rag", "legacy.db");
  t = performance.now();
  writeLegacyStore(legacyPath, (i) => content(i), row);
  const legacyInsertMs = performance.now() - t;
  const legacySizeBytes = (await Deno.stat(legacyPath)).size;

  const queries = Array.from({ length: QUERY_RUNS }, () => {
    const q = new Float32Array(DIMS);
    for (let i = 0; i < DIMS; i++) q[i] = random() - 0.5;
    return q;
  });

  store = RagStore.open(path, { model: MODEL });
  t = performance.now();
  const first = store.search(queries[0], { k: 5, minScore: -1 });
  const loadMs = performance.now() - t;
  const times: number[] = [];
  for (const q of queries) {
    const start = performance.now();
    store.search(q, { k: 5, minScore: -1 });
    times.push(performance.now() - start);
  }
  const oursMs = median(times);
  store.close();

  const legacy = new DatabaseSync(legacyPath, { readOnly: true });
  const baselineTimes: number[] = [];
  let agree = true;
  for (let r = 0; r < BASELINE_RUNS; r++) {
    const start = performance.now();
    const top = originalQuery(legacy, queries[0], 5);
    baselineTimes.push(performance.now() - start);
    agree &&= top.map((h) => h.id).join() === first.map((h) => h.id).join();
  }
  legacy.close();
  const baselineMs = median(baselineTimes);

  return [
    {
      name: `query top-5 of ${
        ROWS / 1000
      }k×${DIMS} (median of ${QUERY_RUNS}; same top-5 as original: ${agree ? "yes" : "NO"})`,
      value: round(oursMs, 2),
      unit: "ms",
      baseline: round(baselineMs, 1),
      ratio: round(oursMs / baselineMs, 4),
      target: `≤ ${TARGET_MS} ms`,
      pass: agree && oursMs <= TARGET_MS,
    },
    { name: "index load on first query (100k×768 from SQLite)", value: round(loadMs), unit: "ms" },
    {
      name: "bulk insert 100k chunks (one transaction); baseline: original float64 layout",
      value: round(insertMs),
      unit: "ms",
      baseline: round(legacyInsertMs),
      ratio: round(insertMs / legacyInsertMs, 2),
    },
    {
      name: "store size on disk per 100k chunks (768 dims, 500-char chunks)",
      value: round(sizeBytes / 2 ** 20, 1),
      unit: "MiB",
      baseline: round(legacySizeBytes / 2 ** 20, 1),
      ratio: round(sizeBytes / legacySizeBytes, 2),
    },
    { name: "generate 100k×768 random vectors", value: round(generateMs), unit: "ms" },
  ];
}

/** The original Harvey's query: every row decoded from float64, cosine, full sort. */
function originalQuery(db: DatabaseSync, query: Float32Array, k: number) {
  const q = Array.from(query);
  const scored: { id: number; content: string; source: string; score: number }[] = [];
  const rows = db.prepare("SELECT id, content, embedding, source FROM chunks").iterate();
  for (
    const r of rows as Iterable<
      { id: number; content: string; embedding: Uint8Array; source: string }
    >
  ) {
    const view = new DataView(r.embedding.buffer, r.embedding.byteOffset, r.embedding.byteLength);
    const n = view.getInt32(0, true);
    const v = new Array<number>(n);
    for (let i = 0; i < n; i++) v[i] = view.getFloat64(4 + i * 8, true);
    let dot = 0, nq = 0, nv = 0;
    for (let i = 0; i < n; i++) {
      dot += q[i] * v[i];
      nq += q[i] * q[i];
      nv += v[i] * v[i];
    }
    const score = nq === 0 || nv === 0 ? 0 : dot / (Math.sqrt(nq) * Math.sqrt(nv));
    scored.push({ id: r.id, content: r.content, source: r.source, score });
  }
  scored.sort((a, b) => b.score - a.score);
  return scored.slice(0, k);
}

function writeLegacyStore(
  path: string,
  content: (i: number) => string,
  row: (i: number) => Float32Array,
): void {
  Deno.mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`CREATE TABLE chunks (id INTEGER PRIMARY KEY, content TEXT NOT NULL,
      embedding BLOB NOT NULL, source TEXT NOT NULL DEFAULT '')`);
    const insert = db.prepare("INSERT INTO chunks (content, embedding, source) VALUES (?, ?, ?)");
    db.exec("BEGIN");
    for (let i = 0; i < ROWS; i++) {
      insert.run(
        content(i),
        encodeVector(row(i), FORMAT_LEGACY_F64),
        `src/file_${Math.floor(i / 20)}.ts`,
      );
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

async function ingestBench(dir: string): Promise<BenchResult> {
  const root = join(dir, "workspace");
  const words = Array.from({ length: 2000 }, (_, i) => `w${i.toString(36)}`);
  const random = xorshift(7);
  for (let f = 0; f < 200; f++) {
    const paragraphs = Array.from(
      { length: 12 },
      () => Array.from({ length: 60 }, () => words[Math.floor(random() * words.length)]).join(" "),
    );
    await Deno.mkdir(join(root, `dir_${f % 10}`), { recursive: true });
    await Deno.writeTextFile(join(root, `dir_${f % 10}`, `doc_${f}.md`), paragraphs.join("\n\n"));
  }
  const embedder: Embedder = {
    name: MODEL,
    embed: (texts) => Promise.resolve(texts.map((t) => Float32Array.from(fakeEmbedding(t, DIMS)))),
  };
  const store = RagStore.open(join(dir, "rag", "ingest.db"));
  try {
    const start = performance.now();
    const report = await store.ingest([root], embedder, { files: directFiles(root) });
    const seconds = (performance.now() - start) / 1000;
    return {
      name:
        `ingest ${report.files} files, ${report.chunks} chunks (in-process fake embedder, 768 dims)`,
      value: round(report.chunks / seconds),
      unit: "chunks/s",
    };
  } finally {
    store.close();
  }
}

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

if (import.meta.main) {
  const started = performance.now();
  const results = await run();
  console.table(results.map((r) => ({
    name: r.name,
    value: `${r.value} ${r.unit}`,
    baseline: r.baseline === undefined ? "" : `${r.baseline} ${r.unit}`,
    ratio: r.ratio ?? "",
    target: r.target ?? "",
    pass: r.pass ?? "",
  })));
  console.log(`rag_bench took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
