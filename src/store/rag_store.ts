/**
 * A RAG store (`agents/rag/NAME.db`): text chunks with their source and embedding, bound to
 * one embedding model. Vectors are float32 BLOBs with the format recorded in a `meta` table;
 * stores written by the original Harvey (length-prefixed float64 BLOBs, no `meta`) are read
 * and extended in their own format. Queries run against an in-memory {@linkcode VectorIndex}
 * loaded on first use and kept up to date by ingest.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { HarveyError } from "../errors.ts";
import { estimateTextTokens } from "../llm/tokens.ts";
import {
  chunkByTokens,
  DEFAULT_CHUNK_OVERLAP,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_CHUNK_TOKENS,
} from "./chunker.ts";
import { columnNames, type Migration, openDatabase, tableNames, transaction } from "./db.ts";
import type { Embedder } from "./embedder.ts";
import { hasBinaryExtension, type IngestFiles, looksBinary, walkFiles } from "./ingest_files.ts";
import {
  blobDims,
  decodeVector,
  encodeVector,
  FORMAT_F32,
  FORMAT_LEGACY_F64,
  type VectorFormat,
} from "./vector_blob.ts";
import { VectorIndex } from "./vector_index.ts";

/** A chunk found by a query, with its cosine similarity to the query. */
export interface RetrievedChunk {
  id: number;
  content: string;
  source: string;
  score: number;
}

/** A file recorded in the store. */
export interface SourceInfo {
  path: string;
  /** sha256 of the chunk settings and the file's text. */
  hash: string;
  chunks: number;
  ingestedAt: Date | undefined;
}

/** What `/rag status` shows about a store. */
export interface StoreInfo {
  name: string;
  path: string;
  /** The embedding model, unknown for an original-Harvey store until told or ingested into. */
  model: string | undefined;
  dims: number | undefined;
  format: VectorFormat;
  chunks: number;
  sources: number;
  /** The database file with its WAL, in bytes. */
  sizeBytes: number;
}

/** How one file went during ingest. */
export type IngestStatus = "added" | "updated" | "unchanged" | "skipped";

/** Reported after each file. */
export interface IngestProgress {
  /** The source name (relative path). */
  path: string;
  /** 1-based position among the files. */
  index: number;
  total: number;
  status: IngestStatus;
  /** Chunks written for this file. */
  chunks: number;
  /** Why a file was skipped. */
  reason?: string;
}

/** Options of {@linkcode RagStore.ingest}. */
export interface IngestOptions {
  /** How files are read: Harvey's workspace, or `directFiles(root)`. */
  files: IngestFiles;
  onProgress?: (progress: IngestProgress) => void;
  signal?: AbortSignal;
  /** Characters per chunk; default 500. */
  chunkSize?: number;
  /** Characters of overlap between chunks; default 80. */
  overlap?: number;
  /**
   * The most tokens of one chunk, by the embedding model's tokenizer where the server has one
   * (else an estimate); default 256, under llama-server's default 512-token batch.
   */
  chunkTokens?: number;
  /** Larger files are skipped; default 2 MB. */
  maxFileBytes?: number;
  /** Folder names not walked into; default `node_modules` (hidden entries are always skipped). */
  exclude?: readonly string[];
  /**
   * Absolute files and folders left out, e.g. the workspace's `agents/` folder; the store's
   * own database files are always left out.
   */
  skipPaths?: readonly string[];
}

/** What an ingest did. */
export interface IngestReport {
  files: number;
  added: number;
  updated: number;
  unchanged: number;
  skipped: { path: string; reason: string }[];
  /** Chunks written. */
  chunks: number;
}

/** A chunk with its vector, for {@linkcode RagStore.addChunks}. */
export interface ChunkInput {
  content: string;
  source: string;
  vector: ArrayLike<number>;
}

/** Options of {@linkcode RagStore.open}. */
export interface RagStoreOptions {
  /**
   * The embedding model the registry entry names. A store built with another model is
   * refused; a store that does not record its model yet records this one.
   */
  model?: string;
  /** The store's name in messages; default the file name without `.db`. */
  name?: string;
}

const DEFAULT_K = 5;
/** Chunks scoring under this cosine similarity are not returned by default. */
export const DEFAULT_MIN_SCORE = 0.3;
const DEFAULT_MAX_FILE_BYTES = 2_000_000;

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "chunks, meta and sources tables",
    up: (db) => {
      const adopted = tableNames(db).includes("chunks");
      db.exec(`
        CREATE TABLE IF NOT EXISTS chunks (
          id        INTEGER PRIMARY KEY,
          content   TEXT NOT NULL,
          embedding BLOB NOT NULL,
          source    TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks (source);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE sources (
          path        TEXT PRIMARY KEY,
          hash        TEXT NOT NULL,
          chunks      INTEGER NOT NULL,
          ingested_at DATETIME DEFAULT CURRENT_TIMESTAMP
        );
      `);
      const format = adopted ? FORMAT_LEGACY_F64 : FORMAT_F32;
      const setMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
      setMeta.run("format_version", String(format));
      const first = db.prepare("SELECT embedding FROM chunks LIMIT 1").get() as
        | { embedding: Uint8Array }
        | undefined;
      if (first) setMeta.run("dims", String(blobDims(first.embedding, format)));
    },
  },
];

/**
 * One RAG store, holding one connection to its database.
 *
 * @example
 * ```ts
 * const store = RagStore.open("agents/rag/docs.db", { model: "nomic-embed-text" });
 * await store.ingest(["/work/project/docs"], embedder, { files: directFiles("/work/project") });
 * const hits = await store.query("how do I configure the proxy?", embedder);
 * store.close();
 * ```
 */
export class RagStore {
  /** The store's name, for messages. */
  readonly name: string;
  /** The database file. */
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #format: VectorFormat;
  #model: string | undefined;
  #dims: number | undefined;
  #index: VectorIndex | undefined;
  readonly #insert: StatementSync;
  readonly #getChunk: StatementSync;

  private constructor(db: DatabaseSync, path: string, name: string) {
    this.#db = db;
    this.path = path;
    this.name = name;
    const meta = readMeta(db);
    const format = Number(meta.format_version);
    if (format !== FORMAT_F32 && format !== FORMAT_LEGACY_F64) {
      throw new HarveyError(
        `RAG store "${name}" uses vector format ${meta.format_version}, which this Harvey cannot read: upgrade Harvey`,
      );
    }
    this.#format = format;
    this.#model = meta.model || undefined;
    this.#dims = meta.dims ? Number(meta.dims) : undefined;
    this.#insert = db.prepare("INSERT INTO chunks (content, embedding, source) VALUES (?, ?, ?)");
    this.#getChunk = db.prepare("SELECT content, source FROM chunks WHERE id = ?");
  }

  /** Opens (creating when missing) the store at `path`. */
  static open(path: string, opts: RagStoreOptions = {}): RagStore {
    const name = opts.name ?? basename(path).replace(/\.db$/, "");
    const db = openDatabase(path, {
      label: `RAG store "${name}"`,
      migrations: MIGRATIONS,
      checkUnversioned: (db) => checkAdoptable(db, path),
    });
    let store: RagStore;
    try {
      store = new RagStore(db, path, name);
      if (opts.model) store.#expectModel(opts.model);
    } catch (err) {
      db.close();
      throw err;
    }
    return store;
  }

  /** The embedding model the store is bound to, if known. */
  get model(): string | undefined {
    return this.#model;
  }

  /** The vectors' number of dimensions, once the store holds any. */
  get dims(): number | undefined {
    return this.#dims;
  }

  /** The vector format on disk. */
  get format(): VectorFormat {
    return this.#format;
  }

  /** Counts and settings of the store. */
  info(): StoreInfo {
    const count = (sql: string) => (this.#db.prepare(sql).get() as { n: number }).n;
    let sizeBytes = 0;
    for (const file of [this.path, `${this.path}-wal`]) {
      try {
        sizeBytes += Deno.statSync(file).size;
      } catch {
        // no WAL file at the moment
      }
    }
    return {
      name: this.name,
      path: this.path,
      model: this.#model,
      dims: this.#dims,
      format: this.#format,
      chunks: count("SELECT count(*) AS n FROM chunks"),
      sources: count("SELECT count(*) AS n FROM sources"),
      sizeBytes,
    };
  }

  /** The files recorded in the store, by path. */
  sources(): SourceInfo[] {
    const rows = this.#db.prepare(
      "SELECT path, hash, chunks, ingested_at FROM sources ORDER BY path",
    ).all() as { path: string; hash: string; chunks: number; ingested_at: string | null }[];
    return rows.map((r) => ({
      path: r.path,
      hash: r.hash,
      chunks: r.chunks,
      ingestedAt: r.ingested_at ? new Date(`${r.ingested_at.replace(" ", "T")}Z`) : undefined,
    }));
  }

  /**
   * Chunks, embeds and stores the files under `paths` (absolute files and folders), read
   * through `opts.files`. A file whose text (and chunk settings) did not change since the
   * last ingest is skipped; a changed file's chunks are replaced. Each file is written in one
   * transaction, so an interrupted ingest leaves every file either fully old or fully new.
   */
  async ingest(paths: string[], embedder: Embedder, opts: IngestOptions): Promise<IngestReport> {
    this.#checkEmbedder(embedder);
    const size = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const overlap = opts.overlap ?? DEFAULT_CHUNK_OVERLAP;
    const maxTokens = opts.chunkTokens ?? DEFAULT_CHUNK_TOKENS;
    // A chunk whose estimate is well under the limit is not sent to the tokenizer.
    const count = async (text: string) => {
      const guess = estimateTextTokens(text);
      if (guess <= maxTokens / 2 || !embedder.countTokens) return guess;
      return await embedder.countTokens(text, { signal: opts.signal }) ?? guess;
    };
    const maxBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    const own = [this.path, `${this.path}-wal`, `${this.path}-shm`, `${this.path}-journal`];
    const found = await walkFiles(paths, opts.files, {
      exclude: opts.exclude,
      skipPaths: [...own, ...(opts.skipPaths ?? [])],
    });
    const report: IngestReport = {
      files: found.length,
      added: 0,
      updated: 0,
      unchanged: 0,
      skipped: [],
      chunks: 0,
    };
    const knownHash = this.#db.prepare("SELECT hash FROM sources WHERE path = ?");
    for (const [i, file] of found.entries()) {
      opts.signal?.throwIfAborted();
      const source = opts.files.relative(file.path);
      const progress = (status: IngestStatus, chunks = 0, reason?: string) => {
        opts.onProgress?.({
          path: source,
          index: i + 1,
          total: found.length,
          status,
          chunks,
          reason,
        });
      };
      const skip = (reason: string) => {
        report.skipped.push({ path: source, reason });
        progress("skipped", 0, reason);
      };
      if (hasBinaryExtension(file.path)) {
        skip("binary file");
        continue;
      }
      if (file.size !== undefined && file.size > maxBytes) {
        skip(`larger than ${formatBytes(maxBytes)}`);
        continue;
      }
      let text: string;
      try {
        text = await opts.files.readTextFile(file.path);
      } catch (err) {
        skip(err instanceof Error ? err.message.split("\n", 1)[0] : String(err));
        continue;
      }
      if (looksBinary(text)) {
        skip("binary file");
        continue;
      }
      const hash = createHash("sha256").update(`chunks ${size}/${overlap}/${maxTokens}t\n`)
        .update(text).digest("hex");
      const previous = knownHash.get(source) as { hash: string } | undefined;
      if (previous?.hash === hash) {
        report.unchanged++;
        progress("unchanged");
        continue;
      }
      let existed: boolean;
      let pieces: { text: string }[] = [];
      try {
        pieces = await chunkByTokens(text, { size, overlap, path: source, maxTokens, count });
        const vectors = pieces.length > 0
          ? await embedder.embed(pieces.map((p) => p.text), { signal: opts.signal })
          : [];
        if (vectors.length !== pieces.length) {
          throw new HarveyError(
            `the embedder returned ${vectors.length} vectors for ${pieces.length} chunks`,
          );
        }
        existed = this.#writeSource(
          source,
          hash,
          pieces.map((p, j) => ({ content: p.text, source, vector: vectors[j] })),
          embedder.name,
        );
      } catch (err) {
        if (opts.signal?.aborted || (err instanceof Error && err.name === "AbortError")) throw err;
        const cause = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
        const done = report.added + report.updated + report.unchanged;
        throw new HarveyError(
          `Ingest into RAG store "${this.name}" stopped at ${source}: ${cause} (${done} of ${found.length} files are stored; run the ingest again to continue)`,
        );
      }
      if (existed) report.updated++;
      else report.added++;
      report.chunks += pieces.length;
      progress(existed ? "updated" : "added", pieces.length);
    }
    return report;
  }

  /**
   * Appends chunks that already have vectors from `opts.model`, in one transaction (bulk
   * import). Sources are not recorded as ingested files. Returns the number added.
   */
  addChunks(chunks: ChunkInput[], opts: { model: string }): number {
    this.#checkModel(opts.model);
    if (chunks.length === 0) return 0;
    const { blobs, dims } = this.#encodeAll(chunks, opts.model);
    const ids = transaction(this.#db, () => {
      this.#adoptInTransaction(opts.model, dims);
      return chunks.map((c, i) =>
        Number(this.#insert.run(c.content, blobs[i], c.source).lastInsertRowid)
      );
    });
    this.#adopted(opts.model, dims);
    if (this.#index) ids.forEach((id, i) => this.#index!.add(id, chunks[i].vector));
    return ids.length;
  }

  /** Removes a source's chunks and its record; returns the number of chunks removed. */
  removeSource(source: string): number {
    const ids = transaction(this.#db, () => {
      const old = this.#db.prepare("SELECT id FROM chunks WHERE source = ?").all(source) as {
        id: number;
      }[];
      this.#db.prepare("DELETE FROM chunks WHERE source = ?").run(source);
      this.#db.prepare("DELETE FROM sources WHERE path = ?").run(source);
      return old.map((r) => r.id);
    });
    for (const id of ids) this.#index?.remove(id);
    return ids.length;
  }

  /**
   * The `k` (default 5) chunks most similar to `text`, best first, leaving out those scoring
   * under `minScore` (default 0.3). The embedder must use the store's model.
   */
  async query(
    text: string,
    embedder: Embedder,
    opts: { k?: number; minScore?: number; signal?: AbortSignal } = {},
  ): Promise<RetrievedChunk[]> {
    this.#checkEmbedder(embedder);
    if (this.#dims === undefined) return [];
    const [vector] = await embedder.embed([text], { signal: opts.signal });
    if (!vector) {
      throw new HarveyError(
        `The embedding model ${embedder.name} returned no vector for the query`,
      );
    }
    return this.search(vector, opts);
  }

  /** Like {@linkcode RagStore.query} with a vector already computed by the store's model. */
  search(
    vector: ArrayLike<number>,
    opts: { k?: number; minScore?: number } = {},
  ): RetrievedChunk[] {
    if (this.#dims === undefined) return [];
    if (vector.length !== this.#dims) {
      throw new HarveyError(
        `The query vector has ${vector.length} dimensions but RAG store "${this.name}" holds ${this.#dims}-dimensional vectors: query with the model the store was built with${
          this.#model ? ` (${this.#model})` : ""
        }`,
      );
    }
    const index = this.#loadIndex();
    const hits = index.search(vector, opts.k ?? DEFAULT_K, {
      minScore: opts.minScore ?? DEFAULT_MIN_SCORE,
    });
    return hits.flatMap((hit) => {
      const row = this.#getChunk.get(hit.id) as { content: string; source: string } | undefined;
      return row
        ? [{ id: hit.id, content: row.content, source: row.source, score: hit.score }]
        : [];
    });
  }

  /** Closes the connection and drops the in-memory index. */
  close(): void {
    this.#index = undefined;
    if (this.#db.isOpen) this.#db.close();
  }

  /** Replaces `source`'s chunks in one transaction; true when the source had chunks before. */
  #writeSource(source: string, hash: string, chunks: ChunkInput[], model: string): boolean {
    const { blobs, dims } = this.#encodeAll(chunks, model);
    const { oldIds, newIds, existed } = transaction(this.#db, () => {
      if (chunks.length > 0) this.#adoptInTransaction(model, dims);
      const old = this.#db.prepare("SELECT id FROM chunks WHERE source = ?").all(source) as {
        id: number;
      }[];
      const known = this.#db.prepare("SELECT 1 AS x FROM sources WHERE path = ?").get(source);
      this.#db.prepare("DELETE FROM chunks WHERE source = ?").run(source);
      const ids = chunks.map((c, i) =>
        Number(this.#insert.run(c.content, blobs[i], source).lastInsertRowid)
      );
      this.#db.prepare(
        `INSERT INTO sources (path, hash, chunks, ingested_at) VALUES (?, ?, ?, CURRENT_TIMESTAMP)
         ON CONFLICT (path) DO UPDATE SET hash = excluded.hash, chunks = excluded.chunks,
           ingested_at = excluded.ingested_at`,
      ).run(source, hash, chunks.length);
      return { oldIds: old.map((r) => r.id), newIds: ids, existed: old.length > 0 || !!known };
    });
    if (chunks.length > 0) this.#adopted(model, dims);
    if (this.#index) {
      for (const id of oldIds) this.#index.remove(id);
      newIds.forEach((id, i) => this.#index!.add(id, chunks[i].vector));
    }
    return existed;
  }

  /** Records the model and dimensions on the first write, inside the caller's transaction. */
  #adoptInTransaction(model: string, dims: number): void {
    const set = this.#db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    if (!this.#model) set.run("model", model);
    if (this.#dims === undefined) set.run("dims", String(dims));
  }

  /** Remembers what {@linkcode #adoptInTransaction} wrote, once its transaction committed. */
  #adopted(model: string, dims: number): void {
    this.#model ??= model;
    this.#dims ??= dims;
  }

  /** Encodes every vector, checking they all have the store's (or the first one's) size. */
  #encodeAll(chunks: ChunkInput[], model: string): { blobs: Uint8Array[]; dims: number } {
    const dims = this.#dims ?? chunks[0]?.vector.length ?? 0;
    const blobs = chunks.map(({ vector }) => {
      if (vector.length !== dims) {
        throw new HarveyError(
          `The embedding model ${model} returned ${vector.length}-dimensional vectors but RAG store "${this.name}" holds ${dims}-dimensional ones: use the model the store was built with`,
        );
      }
      const v = vector instanceof Float32Array ? vector : new Float32Array(vector);
      let sum = 0;
      for (let i = 0; i < v.length; i++) sum += v[i];
      if (!Number.isFinite(sum)) {
        const bad = v.find((x) => !Number.isFinite(x)) ?? "an overflow";
        throw new HarveyError(
          `The embedding model ${model} returned a vector with ${bad} in it: check the embedding server`,
        );
      }
      return encodeVector(v, this.#format);
    });
    return { blobs, dims };
  }

  #checkEmbedder(embedder: Embedder): void {
    this.#checkModel(embedder.name);
  }

  #checkModel(model: string): void {
    if (this.#model && !sameModel(this.#model, model)) {
      throw new HarveyError(
        `RAG store "${this.name}" holds embeddings of ${this.#model}, not ${model}: embed with ${this.#model} or use another store for ${model}`,
      );
    }
  }

  #expectModel(model: string): void {
    if (this.#model) {
      if (!sameModel(this.#model, model)) {
        throw new HarveyError(
          `RAG store "${this.name}" was built with ${this.#model}, but its registry entry says ${model}: set embedding_model back to ${this.#model} or use another store`,
        );
      }
      return;
    }
    this.#db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('model', ?)").run(model);
    this.#model = model;
  }

  #loadIndex(): VectorIndex {
    if (this.#index) return this.#index;
    const dims = this.#dims!;
    const { n } = this.#db.prepare("SELECT count(*) AS n FROM chunks").get() as { n: number };
    const index = new VectorIndex(dims, { capacity: n });
    const rows = this.#db.prepare("SELECT id, embedding FROM chunks");
    for (const row of rows.iterate() as Iterable<{ id: number; embedding: Uint8Array }>) {
      const vector = decodeVector(row.embedding, this.#format, `chunk ${row.id}`);
      if (vector.length !== dims) {
        throw new HarveyError(
          `Chunk ${row.id} of RAG store "${this.name}" has ${vector.length} dimensions, not ${dims}: the store mixes embedding models, ingest into a new store`,
        );
      }
      index.add(row.id, vector);
    }
    this.#index = index;
    return index;
  }
}

/** True when two model names mean the same model (`name` and `name:latest` are the same). */
export function sameModel(a: string, b: string): boolean {
  const norm = (m: string) => m.trim().replace(/:latest$/, "");
  return norm(a) === norm(b);
}

function readMeta(db: DatabaseSync): Record<string, string> {
  const rows = db.prepare("SELECT key, value FROM meta").all() as { key: string; value: string }[];
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

function checkAdoptable(db: DatabaseSync, path: string): void {
  const tables = tableNames(db);
  if (tables.length === 0) return;
  if (!tables.includes("chunks")) {
    throw new HarveyError(
      `${path} is a SQLite database but not a RAG store (it has tables ${
        tables.join(", ")
      }): choose another path for the store`,
    );
  }
  const have = columnNames(db, "chunks");
  const missing = ["id", "content", "embedding", "source"].filter((c) => !have.includes(c));
  if (missing.length > 0) {
    throw new HarveyError(
      `${path} has a chunks table without the column ${
        missing.join(", ")
      } a RAG store needs: choose another path for the store`,
    );
  }
}

function formatBytes(n: number): string {
  if (n >= 1_000_000) return `${Math.round(n / 100_000) / 10} MB`;
  if (n >= 1_000) return `${Math.round(n / 100) / 10} kB`;
  return `${n} bytes`;
}
