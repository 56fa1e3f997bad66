/**
 * Using a RAG store in a turn: the context block put before a prompt, the embedding model a
 * generation model should use (`model_map`), and the migration of the original Harvey's
 * single-store `rag:` configuration.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { Embedder } from "./embedder.ts";
import { DEFAULT_MIN_SCORE, type RagStore, type RetrievedChunk, sameModel } from "./rag_store.ts";

/** The heading of the block {@linkcode formatRagContext} puts before a prompt. */
export const RAG_CONTEXT_HEADING = "### Context (from knowledge base)";

/** One entry of the `rag.stores` registry in `harvey.yaml`. */
export interface RagStoreEntry {
  name: string;
  db_path: string;
  embedding_model: string;
  /** Generation model → embedding model to use with it. */
  model_map: Record<string, string>;
}

/**
 * Puts the chunks scoring at least `minScore` (default 0.3) before `prompt` under a
 * `### Context (from knowledge base)` heading, each with its source; returns `prompt`
 * unchanged when none qualifies.
 *
 * @example
 * ```ts
 * formatRagContext("How is WAL set?", [{ id: 1, content: "PRAGMA journal_mode = WAL", source: "src/db.ts", score: 0.8 }]);
 * // "### Context (from knowledge base)\n\n[1] src/db.ts (score 0.80)\nPRAGMA journal_mode = WAL\n\n---\n\nHow is WAL set?"
 * ```
 */
export function formatRagContext(
  prompt: string,
  chunks: RetrievedChunk[],
  opts: { minScore?: number } = {},
): string {
  const minScore = opts.minScore ?? DEFAULT_MIN_SCORE;
  const kept = chunks.filter((c) => c.score >= minScore);
  if (kept.length === 0) return prompt;
  const blocks = kept.map((c, i) =>
    `[${i + 1}] ${c.source || "(unknown source)"} (score ${
      c.score.toFixed(2)
    })\n${c.content.trim()}`
  );
  return `${RAG_CONTEXT_HEADING}\n\n${blocks.join("\n\n")}\n\n---\n\n${prompt}`;
}

/**
 * Retrieves the chunks of `opts.store` closest to `prompt` and puts them before it (see
 * {@linkcode formatRagContext}); returns `prompt` unchanged when nothing qualifies.
 */
export async function augmentPrompt(
  prompt: string,
  opts: {
    store: RagStore;
    embedder: Embedder;
    k?: number;
    minScore?: number;
    signal?: AbortSignal;
  },
): Promise<string> {
  const chunks = await opts.store.query(prompt, opts.embedder, {
    k: opts.k,
    minScore: opts.minScore,
    signal: opts.signal,
  });
  return formatRagContext(prompt, chunks, { minScore: opts.minScore });
}

/**
 * The embedding model to use for a store while `generationModel` answers: its `model_map`
 * entry when there is one (`name` and `name:latest` match each other), else the store's
 * `embedding_model`.
 *
 * @example
 * ```ts
 * resolveEmbeddingModel({ embedding_model: "nomic-embed-text", model_map: { "qwen3:8b": "bge-m3" } }, "qwen3:8b"); // "bge-m3"
 * ```
 */
export function resolveEmbeddingModel(
  entry: Pick<RagStoreEntry, "embedding_model" | "model_map">,
  generationModel: string | undefined,
): string {
  if (generationModel) {
    const map = entry.model_map ?? {};
    if (Object.hasOwn(map, generationModel)) return map[generationModel];
    const key = Object.keys(map).find((k) => sameModel(k, generationModel));
    if (key !== undefined) return map[key];
  }
  return entry.embedding_model;
}

/**
 * Migrates the original Harvey's single-store form of the `rag:` section
 * (`{db_path, embedding_model}` at its top) into the registry form: a store named `default`
 * in `stores`, made `active` when nothing else is. Other keys are kept as they are. Returns
 * the section unchanged (`migrated: false`) when it has no old keys.
 *
 * @example
 * ```ts
 * migrateRagConfig({ enabled: true, db_path: "agents/rag.db", embedding_model: "nomic-embed-text" });
 * // { migrated: true, rag: { enabled: true, active: "default", stores: [
 * //   { name: "default", db_path: "agents/rag.db", embedding_model: "nomic-embed-text", model_map: {} } ] } }
 * ```
 */
export function migrateRagConfig(
  rag: Record<string, unknown>,
): { rag: Record<string, unknown>; migrated: boolean } {
  if (!("db_path" in rag) && !("embedding_model" in rag)) return { rag, migrated: false };
  const { db_path, embedding_model, model_map, ...rest } = rag;
  const text = (key: string, value: unknown): string => {
    if (value === undefined || value === null) return "";
    if (typeof value !== "string") {
      throw new HarveyError(`Expected rag.${key} in harvey.yaml to be text, found ${typeof value}`);
    }
    return value;
  };
  const path = text("db_path", db_path);
  if (!path) {
    throw new HarveyError(
      "Expected rag.db_path in harvey.yaml next to rag.embedding_model, found none: add db_path or remove embedding_model",
    );
  }
  const map: Record<string, string> = {};
  if (model_map !== undefined && model_map !== null) {
    if (typeof model_map !== "object" || Array.isArray(model_map)) {
      throw new HarveyError("Expected rag.model_map in harvey.yaml to be a mapping of model names");
    }
    for (const [k, v] of Object.entries(model_map)) map[k] = text(`model_map.${k}`, v);
  }
  const entry: RagStoreEntry = {
    name: "default",
    db_path: path,
    embedding_model: text("embedding_model", embedding_model),
    model_map: map,
  };
  const stores = rest.stores === undefined || rest.stores === null ? [] : rest.stores;
  if (!Array.isArray(stores)) {
    throw new HarveyError("Expected rag.stores in harvey.yaml to be a list of stores");
  }
  const clash = stores.find((s) => (s as { name?: unknown })?.name === "default") as
    | { db_path?: unknown }
    | undefined;
  if (clash && clash.db_path !== path) {
    throw new HarveyError(
      `harvey.yaml has both rag.db_path (${path}) and a store named default with another path: remove rag.db_path and rag.embedding_model`,
    );
  }
  return {
    migrated: true,
    rag: {
      ...rest,
      active: rest.active ?? "default",
      stores: clash ? stores : [...stores, entry],
    },
  };
}
