/**
 * Warm resume on llama.cpp: the llama-server Harvey starts for a GGUF model saves its slot's
 * cache (`POST /slots/N?action=save`, into `--slot-save-path` = `agents/slots/`) when a session
 * is left (a switch, the end of Harvey), keyed by the session and the model file; when that
 * session is entered again, the cache is restored (`?action=restore`) before the next request,
 * so its prompt is not evaluated again.
 *
 * A cache is restored only when it still belongs there: the server serves the same model file
 * (path, size and modification time as when it was saved), and the conversation, rendered by
 * the server's chat template and tokenized, begins with the tokens it had when it was saved
 * (same hash of that prefix). Otherwise — or when the server cannot (started without
 * `--slot-save-path`, an adopted server, a refusal) — nothing is said and the prompt is
 * evaluated as usual. The server itself reuses only the cached tokens that match the new
 * request, so a restore never changes a reply, only how soon it comes.
 *
 * The newest {@linkcode KEEP_CACHES} caches are kept; older ones are removed.
 *
 * @module
 */
import { join } from "node:path";
import type { Agent } from "../agent.ts";
import { LazyServerClient } from "../llm/lazy_server_client.ts";

/** Where the caches and their descriptions are, relative to the workspace. */
export const SLOTS_DIR = "agents/slots";

/** How many saved caches are kept (each can be as large as the model's KV cache). */
export const KEEP_CACHES = 4;

/** The folder given to llama-server as `--slot-save-path`. */
export function slotSavePath(agent: Agent): string {
  return join(agent.workspace.root, SLOTS_DIR);
}

/** What is known of a saved cache: `agents/slots/NAME.json` beside `NAME.bin`. */
export interface WarmMeta {
  session: string;
  modelPath: string;
  modelSize: number;
  modelMtime: number;
  /** Tokens the server saved (`n_saved`). */
  saved: number;
  /** Tokens of the conversation when it was saved, and the sha256 of their ids. */
  prefixTokens: number;
  prefixHash: string;
  time: string;
}

/** The cache's file name for `session` on the model file `modelPath` (llama-server's rules). */
export async function cacheName(session: string, modelPath: string): Promise<string> {
  const model = (await sha256Hex(new TextEncoder().encode(modelPath))).slice(0, 12);
  return `${session}-${model}.bin`;
}

/**
 * Saves the cache of the agent's llama-server for `session` (the conversation is the agent's
 * history now). Returns what was saved, or undefined when there is nothing to save or the
 * server cannot.
 */
export async function saveWarm(agent: Agent, session: string): Promise<WarmMeta | undefined> {
  const client = agent.client;
  if (!(client instanceof LazyServerClient)) return undefined;
  const server = client.server;
  if (!server?.modelPath || agent.history.length < 2) return undefined;
  const tokens = await client.conversationTokens(agent.history);
  if (!tokens?.length) return undefined;
  const name = await cacheName(session, server.modelPath);
  const saved = await client.saveSlot(name);
  if (!saved) return undefined;
  const model = await Deno.stat(server.modelPath);
  const meta: WarmMeta = {
    session,
    modelPath: server.modelPath,
    modelSize: model.size,
    modelMtime: model.mtime?.getTime() ?? 0,
    saved: saved.tokens,
    prefixTokens: tokens.length,
    prefixHash: await tokensHash(tokens),
    time: new Date().toISOString(),
  };
  await agent.workspace.writeFile(`${SLOTS_DIR}/${metaName(name)}`, JSON.stringify(meta));
  await prune(agent).catch(() => {});
  return meta;
}

/**
 * Leaves the restore of `session`'s cache to the agent's llama-server client, to run once its
 * server is ready and before the next request; it restores only a cache that belongs there
 * (see the module doc) and is silent either way.
 */
export function restoreWarm(agent: Agent, session: string): void {
  const client = agent.client;
  if (!(client instanceof LazyServerClient)) return;
  client.beforeNextRequest(async () => {
    if (agent.client !== client) return;
    await restoreNow(agent, client, session);
  });
}

/** Restores `session`'s cache now when it belongs there; returns whether it was restored. */
export async function restoreNow(
  agent: Agent,
  client: LazyServerClient,
  session: string,
): Promise<boolean> {
  const server = client.server;
  if (!server?.modelPath) return false;
  const name = await cacheName(session, server.modelPath);
  const meta = await readMeta(agent, name);
  if (!meta || meta.session !== session || meta.modelPath !== server.modelPath) return false;
  const model = await Deno.stat(server.modelPath).catch(() => undefined);
  if (model?.size !== meta.modelSize || (model.mtime?.getTime() ?? 0) !== meta.modelMtime) {
    return false;
  }
  const tokens = await client.conversationTokens(agent.history);
  if (!tokens || tokens.length < meta.prefixTokens) return false;
  if (await tokensHash(tokens.slice(0, meta.prefixTokens)) !== meta.prefixHash) return false;
  const restored = await client.restoreSlot(name);
  return restored !== undefined && restored.tokens === meta.saved;
}

async function readMeta(agent: Agent, name: string): Promise<WarmMeta | undefined> {
  try {
    const value = JSON.parse(
      await agent.workspace.readTextFile(`${SLOTS_DIR}/${metaName(name)}`, { maxBytes: 64_000 }),
    );
    const ok = typeof value === "object" && value !== null &&
      typeof value.session === "string" && typeof value.modelPath === "string" &&
      typeof value.prefixHash === "string" &&
      ["modelSize", "modelMtime", "saved", "prefixTokens"].every((k) =>
        typeof value[k] === "number"
      );
    return ok ? value as WarmMeta : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the caches (and their descriptions) beyond the newest {@linkcode KEEP_CACHES}. */
async function prune(agent: Agent): Promise<void> {
  const ws = agent.workspace;
  const caches: { name: string; mtime: number }[] = [];
  for (const e of await ws.readDir(SLOTS_DIR)) {
    if (!e.isFile || !e.name.endsWith(".bin")) continue;
    const info = await ws.stat(`${SLOTS_DIR}/${e.name}`);
    caches.push({ name: e.name, mtime: info.mtime?.getTime() ?? 0 });
  }
  caches.sort((a, b) => b.mtime - a.mtime);
  for (const old of caches.slice(KEEP_CACHES)) {
    await ws.remove(`${SLOTS_DIR}/${old.name}`).catch(() => {});
    await ws.remove(`${SLOTS_DIR}/${metaName(old.name)}`).catch(() => {});
  }
}

/** Removes every cache saved for `session`. */
export async function forgetWarm(agent: Agent, session: string): Promise<void> {
  const ws = agent.workspace;
  if (!await ws.exists(SLOTS_DIR)) return;
  for (const e of await ws.readDir(SLOTS_DIR)) {
    if (e.name.startsWith(`${session}-`)) await ws.remove(`${SLOTS_DIR}/${e.name}`).catch(() => {});
  }
}

function metaName(cache: string): string {
  return cache.replace(/\.bin$/, ".json");
}

async function tokensHash(tokens: number[]): Promise<string> {
  return await sha256Hex(new Uint8Array(Int32Array.from(tokens).buffer));
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
