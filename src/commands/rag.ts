/**
 * `/rag`: named RAG stores (`agents/rag/NAME.db`, registered under `rag.stores` in
 * `harvey.yaml`), ingest through the workspace sandbox, queries, and the retrieval hook that
 * puts the closest chunks before every prompt while RAG is on. Only the active store is
 * opened, on first use, and it is closed when the session ends.
 *
 * @module
 */
import { posix } from "node:path";
import type { Agent } from "../agent.ts";
import type { RagStoreEntry } from "../config/schema.ts";
import { HarveyError, UsageError } from "../errors.ts";
import { LazyServerClient } from "../llm/lazy_server_client.ts";
import { OllamaClient } from "../llm/ollama.ts";
import { OpenAICompatClient } from "../llm/openai_compat.ts";
import { llamaServerSpec } from "../runtime/llama_server.ts";
import { type Embedder, OllamaEmbedder, OpenAIEmbedder } from "../store/embedder.ts";
import { EMBEDDING_ARGS, ServerEmbedder } from "../store/local_embedder.ts";
import type { IngestFiles } from "../store/ingest_files.ts";
import { formatRagContext, resolveEmbeddingModel } from "../store/rag_context.ts";
import { DEFAULT_MIN_SCORE, RagStore, type RetrievedChunk } from "../store/rag_store.ts";
import type { Output } from "../types.ts";
import { accessPath, formatBytes } from "./files.ts";
import { findLlamaServer } from "./llamacpp.ts";
import { GGUF_KIND, ModelRegistry } from "./model_registry.ts";
import { type CommandHandler, required, subcommand } from "./registry.ts";
import { escapeControls } from "../util/terminal_text.ts";

const SUBCOMMANDS = ["list", "new", "use", "drop", "ingest", "query", "on", "off", "status"];
/** Chunks put before a prompt. */
const TOP_K = 5;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

interface OpenStore {
  key: string;
  store: RagStore;
}

const opened = new WeakMap<Agent, OpenStore>();
const closers = new WeakSet<Agent>();

/** The embedder and where it runs, as chosen for the current backend. */
export interface EmbedderChoice {
  embedder: Embedder;
  /** e.g. `Ollama at http://127.0.0.1:11434`. */
  where: string;
}

/** The backend name of the llama-servers Harvey starts for embeddings (their pid files). */
const EMBED_BACKEND = "llama-embed";

/** The embedding servers of each session, one per GGUF model, started on first use. */
const localEmbedders = new WeakMap<Agent, Map<string, ServerEmbedder>>();

/**
 * The embedder for `model`:
 *
 * - a registered GGUF model (`/llamacpp add`) is served by llama.cpp on this machine: the
 *   current llama-server when it serves that file with `--embeddings` on, else a second
 *   request-scoped `llama-server --embeddings --pooling mean` started on first use;
 * - otherwise OpenAI-compatible `/v1/embeddings` at the backend's URL when it is an
 *   OpenAI-compatible server (with its own key), else Ollama's `/api/embed` at the configured
 *   Ollama URL.
 */
export function embedderFor(agent: Agent, model: string): EmbedderChoice {
  const local = ggufEmbedder(agent, model);
  if (local) return local;
  const client = agent.client;
  if (client instanceof OpenAICompatClient) {
    return {
      embedder: new OpenAIEmbedder({
        baseUrl: client.baseUrl,
        model,
        headers: client.authHeaders(),
      }),
      where: `the server at ${client.baseUrl}`,
    };
  }
  const url = agent.settings.ollamaUrl;
  return { embedder: new OllamaEmbedder({ baseUrl: url, model }), where: `Ollama at ${url}` };
}

function ggufEmbedder(agent: Agent, model: string): EmbedderChoice | undefined {
  const registry = new ModelRegistry(agent, GGUF_KIND);
  const entry = registry.find(model);
  if (!entry) return undefined;
  const cfg = agent.config.config.llamacpp;
  const abs = registry.resolve(entry.path);
  const current = agent.client instanceof LazyServerClient ? agent.client.server : undefined;
  const embeddingsOn = cfg.extra_args.some((a) => a === "--embeddings" || a === "--embedding");
  if (current?.modelPath === abs && embeddingsOn) {
    return {
      embedder: new OpenAIEmbedder({ baseUrl: current.url, model }),
      where: `the llama-server at ${current.url}`,
    };
  }
  let servers = localEmbedders.get(agent);
  if (!servers) localEmbedders.set(agent, servers = new Map());
  let embedder = servers.get(abs);
  if (!embedder) {
    embedder = new ServerEmbedder({
      name: model,
      async start(signal) {
        const path = await registry.checkFile(entry.path);
        const adopted = await agent.supervisor.adopt(EMBED_BACKEND, path);
        if (adopted) return adopted;
        const binary = findLlamaServer(agent);
        if (!binary) {
          throw new HarveyError(
            `The embedding model ${model} is a GGUF file: serving it needs ${cfg.server_bin}, ` +
              "which was not found on PATH (harvey doctor tells how to install llama.cpp)",
          );
        }
        agent.err.write(`Starting llama-server for the embedding model ${model}...\n`);
        const spec = llamaServerSpec(path, {
          binary,
          gpuLayers: cfg.gpu_layers,
          extraArgs: EMBEDDING_ARGS,
        });
        return await agent.supervisor.start({ ...spec, backend: EMBED_BACKEND }, { signal });
      },
    });
    servers.set(abs, embedder);
  }
  const running = embedder.server;
  return {
    embedder,
    where: running
      ? `the llama-server for embeddings at ${running.url}`
      : "a llama-server for embeddings, started on first use",
  };
}

/** The generation model of the current backend, for `model_map`. */
function generationModel(agent: Agent): string | undefined {
  const client = agent.client;
  if (client instanceof OllamaClient || client instanceof OpenAICompatClient) return client.model;
  const model = (client as { model?: unknown } | undefined)?.model;
  return typeof model === "string" ? model : undefined;
}

/** The registry entry of the active store, if one is set and registered. */
export function activeEntry(agent: Agent): RagStoreEntry | undefined {
  const rag = agent.config.config.rag;
  return rag.active ? rag.stores.find((s) => s.name === rag.active) : undefined;
}

function needActive(agent: Agent): RagStoreEntry {
  const entry = activeEntry(agent);
  if (entry) return entry;
  const rag = agent.config.config.rag;
  if (rag.active) {
    throw new HarveyError(
      `The active RAG store "${rag.active}" is not in rag.stores of harvey.yaml: pick one with /rag use NAME`,
    );
  }
  throw new HarveyError(
    rag.stores.length
      ? "No active RAG store: pick one with /rag use NAME"
      : "No RAG store yet: create one with /rag new NAME EMBEDDING_MODEL",
  );
}

/**
 * The active store, opened on first use (any other store the session had open is closed
 * first); the connection is closed when the session ends.
 */
export async function openActiveStore(agent: Agent): Promise<RagStore> {
  const entry = needActive(agent);
  const path = await agent.workspace.resolve(entry.db_path);
  const key = `${entry.name}\n${path}\n${entry.embedding_model}`;
  const current = opened.get(agent);
  if (current?.key === key) return current.store;
  closeStore(agent);
  const store = RagStore.open(path, { model: entry.embedding_model, name: entry.name });
  opened.set(agent, { key, store });
  if (!closers.has(agent)) {
    closers.add(agent);
    agent.onShutdown(() => Promise.resolve(closeStore(agent)));
  }
  return store;
}

function closeStore(agent: Agent): void {
  opened.get(agent)?.store.close();
  opened.delete(agent);
}

/**
 * The active store's chunks closest to `text` (top 5, scoring at least 0.3): what the prompt
 * hook puts before a prompt and what the model's `rag_search` returns. A hung embedding server
 * is given a bounded time ({@linkcode RETRIEVAL_TIMEOUT_MS}); Ctrl-C gets through.
 */
export async function retrieve(
  agent: Agent,
  text: string,
  opts: { signal?: AbortSignal } = {},
): Promise<{ store: string; chunks: RetrievedChunk[] }> {
  const store = await openActiveStore(agent);
  const entry = needActive(agent);
  const { embedder } = embedderFor(agent, resolveEmbeddingModel(entry, generationModel(agent)));
  const limit = AbortSignal.timeout(RETRIEVAL_TIMEOUT_MS);
  const chunks = await store.query(text, embedder, {
    k: TOP_K,
    minScore: DEFAULT_MIN_SCORE,
    signal: opts.signal ? AbortSignal.any([opts.signal, limit]) : limit,
  });
  return { store: store.name, chunks };
}

/** Why retrieval failed, in one line. */
export function retrievalFailure(e: unknown): string {
  return e instanceof Error && e.name === "TimeoutError"
    ? `the embedding server did not answer within ${RETRIEVAL_TIMEOUT_MS / 1000} s`
    : e instanceof Error
    ? e.message.split("\n", 1)[0]
    : String(e);
}

/**
 * The `agent.augmentPrompt` hook: while RAG is on, puts the active store's closest chunks
 * before the prompt and says on `err` how many were added. Any failure (embedding server
 * down, model mismatch) is one line on `err` and the prompt goes out unchanged.
 */
export function ragAugmentHook(
  agent: Agent,
): (prompt: string, err: Output, signal?: AbortSignal) => Promise<string> {
  return async (prompt, err, signal) => {
    const rag = agent.config.config.rag;
    if (!rag.enabled || !rag.active) return prompt;
    const dim = (text: string) =>
      err.write(agent.settings.color ? `\x1b[2m${text}\x1b[0m\n` : `${text}\n`);
    try {
      const { store, chunks } = await retrieve(agent, prompt, { signal });
      if (chunks.length === 0) return prompt;
      dim(`RAG: ${plural(chunks.length, "chunk")} from store ${store} added to the prompt`);
      return formatRagContext(prompt, chunks);
    } catch (e) {
      if (signal?.aborted) throw e;
      err.write(
        `⚠ RAG retrieval skipped, the prompt goes without context: ${retrievalFailure(e)}\n`,
      );
      return prompt;
    }
  };
}

/** How long retrieval may take before the prompt goes without context. */
export const RETRIEVAL_TIMEOUT_MS = 30_000;

/** `/rag …` */
export const ragCommand: CommandHandler = {
  freeText: true,
  paths: [{ after: "ingest", rest: true }],
  subcommands: SUBCOMMANDS,
  complete(agent, args) {
    if (args.length === 0) return SUBCOMMANDS;
    if (args.length === 1 && (args[0] === "use" || args[0] === "drop")) {
      return agent.config.config.rag.stores.map((s) => s.name);
    }
    return [];
  },
  async run(agent, args, out, ctx) {
    const sub = subcommand("/rag", args, SUBCOMMANDS, "status");
    switch (sub) {
      case "list":
        return list(agent, out);
      case "new":
        return await create(agent, args, out);
      case "use":
        return await use(agent, args, out);
      case "drop":
        return await drop(agent, args, out);
      case "ingest":
        return await ingest(agent, args.slice(1), out, ctx.signal);
      case "query":
        return await query(agent, args.slice(1).join(" "), out, ctx.signal);
      case "on":
      case "off":
        return await toggle(agent, sub === "on", out);
      case "status":
        return await status(agent, out);
    }
  },
};

function list(agent: Agent, out: Output): void {
  const rag = agent.config.config.rag;
  if (rag.stores.length === 0) {
    out.write("No RAG stores (create one with /rag new NAME EMBEDDING_MODEL)\n");
    return;
  }
  for (const s of rag.stores) {
    const mark = s.name === rag.active ? "*" : " ";
    const map = Object.entries(s.model_map ?? {}).map(([g, e]) => `${g} → ${e}`);
    const mapped = map.length ? ` (model_map: ${map.join(", ")})` : "";
    out.write(`${mark} ${s.name}  ${s.embedding_model}  ${s.db_path}${mapped}\n`);
  }
  out.write(`RAG is ${rag.enabled ? "on" : "off"}\n`);
}

async function create(agent: Agent, args: string[], out: Output): Promise<void> {
  const usage = "/rag new NAME EMBEDDING_MODEL";
  const name = required(args[1], usage);
  const model = required(args[2], usage);
  if (args.length > 3) throw new UsageError(`Usage: ${usage}`);
  if (!NAME_RE.test(name)) {
    throw new UsageError(
      `Expected a store name of letters, digits, "_", "-" or "." (up to 64), found "${name}"`,
    );
  }
  const rag = agent.config.config.rag;
  if (rag.stores.some((s) => s.name === name)) {
    throw new HarveyError(`A RAG store named "${name}" already exists: choose another name`);
  }
  const entry: RagStoreEntry = {
    name,
    db_path: posix.join("agents", "rag", `${name}.db`),
    embedding_model: model,
    model_map: {},
  };
  // Creating the file now checks the path and the model of a database already there.
  const created = RagStore.open(await agent.workspace.resolve(entry.db_path), { model, name });
  created.close();
  await agent.config.update([
    [["rag", "stores"], [...rag.stores, entry]],
    [["rag", "active"], name],
  ]);
  out.write(
    `Created RAG store ${name} (${model}) at ${entry.db_path}; it is the active store — add files with /rag ingest PATH...\n`,
  );
}

function findStore(agent: Agent, name: string): RagStoreEntry {
  const stores = agent.config.config.rag.stores;
  const entry = stores.find((s) => s.name === name);
  if (entry) return entry;
  const known = stores.length ? `: known stores are ${stores.map((s) => s.name).join(", ")}` : "";
  throw new HarveyError(`No RAG store named "${name}"${known || " (see /rag list)"}`);
}

async function use(agent: Agent, args: string[], out: Output): Promise<void> {
  const entry = findStore(agent, required(args[1], "/rag use NAME"));
  closeStore(agent);
  await agent.config.update([[["rag", "active"], entry.name]]);
  out.write(`Active RAG store: ${entry.name} (${entry.embedding_model})\n`);
}

async function drop(agent: Agent, args: string[], out: Output): Promise<void> {
  const entry = findStore(agent, required(args[1], "/rag drop NAME"));
  const ok = await agent.asker.confirm(
    `Delete RAG store ${entry.name} and its file ${entry.db_path}?`,
    false,
  );
  if (!ok) {
    out.write(`Kept RAG store ${entry.name}\n`);
    return;
  }
  const path = await agent.workspace.resolve(entry.db_path);
  if (opened.get(agent)?.key.split("\n")[1] === path) closeStore(agent);
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (await agent.workspace.exists(file)) await agent.workspace.remove(file);
  }
  const rag = agent.config.config.rag;
  const changes: [string[], unknown][] = [
    [["rag", "stores"], rag.stores.filter((s) => s.name !== entry.name)],
  ];
  if (rag.active === entry.name) changes.push([["rag", "active"], undefined]);
  await agent.config.update(changes);
  out.write(`Dropped RAG store ${entry.name} and deleted ${entry.db_path}\n`);
}

/** Ingest reads through the workspace sandbox and the permission hook. */
function workspaceFiles(agent: Agent): IngestFiles {
  const ws = agent.workspace;
  return {
    readTextFile: (path) => {
      agent.checkPath?.(ws.relative(path), "read");
      return ws.readTextFile(path);
    },
    readDir: (path) => ws.readDir(path),
    stat: (path) => ws.stat(path),
    relative: (path) => ws.relative(path),
  };
}

async function ingest(
  agent: Agent,
  paths: string[],
  out: Output,
  signal?: AbortSignal,
): Promise<void> {
  if (paths.length === 0) throw new UsageError("Usage: /rag ingest PATH... (files or folders)");
  const store = await openActiveStore(agent);
  const entry = needActive(agent);
  const abs: string[] = [];
  for (const p of paths) {
    abs.push(await agent.workspace.resolve(await accessPath(agent, p, "read")));
  }
  const { embedder, where } = embedderFor(agent, entry.embedding_model);
  out.write(`Ingesting into ${store.name} with ${embedder.name} (${where})\n`);
  const report = await store.ingest(abs, embedder, {
    files: workspaceFiles(agent),
    signal,
    skipPaths: [await agent.workspace.resolve("agents")],
    onProgress(p) {
      const what = p.status === "skipped"
        ? `skipped (${p.reason})`
        : p.status === "unchanged"
        ? "unchanged"
        : `${p.status}, ${plural(p.chunks, "chunk")}`;
      out.write(`  [${p.index}/${p.total}] ${p.path}: ${what}\n`);
    },
  });
  if (report.files === 0) {
    out.write("No files found to ingest (hidden files and agents/ are left out)\n");
    return;
  }
  out.write(
    `Ingested ${
      plural(report.files, "file")
    }: ${report.added} added, ${report.updated} updated, ${report.unchanged} unchanged, ${report.skipped.length} skipped; ${
      plural(report.chunks, "chunk")
    } written\n`,
  );
}

async function query(
  agent: Agent,
  text: string,
  out: Output,
  signal?: AbortSignal,
): Promise<void> {
  if (!text.trim()) throw new UsageError("Usage: /rag query TEXT");
  const store = await openActiveStore(agent);
  const entry = needActive(agent);
  const { embedder } = embedderFor(agent, resolveEmbeddingModel(entry, generationModel(agent)));
  const hits = await store.query(text, embedder, { k: TOP_K, minScore: 0, signal });
  if (hits.length === 0) {
    out.write(`No chunks in ${store.name} resemble "${text}"\n`);
    return;
  }
  for (const [i, h] of hits.entries()) {
    const low = h.score < DEFAULT_MIN_SCORE ? ` (under ${DEFAULT_MIN_SCORE}, not used)` : "";
    // Stored text and its source name are data: control characters are shown, not obeyed.
    const body = escapeControls(h.content.replace(/\s+/g, " ").trim());
    const source = escapeControls(h.source || "(unknown source)");
    out.write(`[${i + 1}] ${source} · score ${h.score.toFixed(2)}${low}\n`);
    out.write(`    ${body.length > 160 ? `${body.slice(0, 159)}…` : body}\n`);
  }
}

async function toggle(agent: Agent, on: boolean, out: Output): Promise<void> {
  if (on) needActive(agent);
  await agent.config.update([[["rag", "enabled"], on]]);
  out.write(
    on ? `RAG is on: prompts get context from ${agent.config.config.rag.active}\n` : "RAG is off\n",
  );
}

async function status(agent: Agent, out: Output): Promise<void> {
  const rag = agent.config.config.rag;
  out.write(`RAG is ${rag.enabled ? "on" : "off"}\n`);
  const entry = activeEntry(agent);
  if (!entry) {
    out.write(
      rag.stores.length
        ? "No active store (pick one with /rag use NAME)\n"
        : "No stores (create one with /rag new NAME EMBEDDING_MODEL)\n",
    );
    return;
  }
  const model = resolveEmbeddingModel(entry, generationModel(agent));
  const { where } = embedderFor(agent, model);
  const mapped = model === entry.embedding_model
    ? ""
    : ` (model_map for ${generationModel(agent)})`;
  out.write(`Active store: ${entry.name} at ${entry.db_path}\n`);
  out.write(`Embedding model: ${model}${mapped}, served by ${where}\n`);
  const info = (await openActiveStore(agent)).info();
  out.write(
    `${plural(info.chunks, "chunk")} from ${plural(info.sources, "file")}${
      info.dims ? `, ${info.dims} dimensions` : ""
    }, ${formatBytes(info.sizeBytes)} on disk\n`,
  );
}

function plural(n: number, one: string): string {
  return `${n} ${n === 1 ? one : `${one}s`}`;
}
