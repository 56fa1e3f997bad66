/**
 * Every model Harvey can use right now, gathered from all sources in parallel: Ollama, an
 * OpenAI-compatible server already running, registered llamafiles and GGUF files.
 *
 * @module
 */
import type { LLMClient } from "../types.ts";

/** One model the user can pick. */
export interface ModelCandidate {
  /** What the picker shows, e.g. `llama3.2:latest (ollama)`. */
  label: string;
  /** The model name `-m` and `/model use` match against. */
  model: string;
  /** Which source offers it: `ollama`, `llamafile`, `llama-server`, `openai`… */
  source: string;
  /** Connects (and starts a server when one is needed; `signal` cancels that start). */
  connect(opts?: { signal?: AbortSignal; terminal?: boolean }): Promise<LLMClient>;
}

/** A place models come from. `list` must answer quickly, also when the source is down. */
export interface ModelSource {
  readonly name: string;
  list(signal: AbortSignal): Promise<ModelCandidate[]>;
}

/** What a probe of all sources found. */
export interface Discovery {
  candidates: ModelCandidate[];
  /** Sources that did not answer, with the reason. */
  down: { source: string; reason: string }[];
}

/** Asks every source in parallel, each bounded by `timeoutMs`. */
export async function discoverModels(
  sources: ModelSource[],
  opts: { timeoutMs: number },
): Promise<Discovery> {
  const results = await Promise.all(sources.map(async (s) => {
    try {
      return { source: s.name, list: await s.list(AbortSignal.timeout(opts.timeoutMs)) };
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      const reason = err instanceof Error && err.name === "TimeoutError"
        ? "no answer"
        : /refused|not running/i.test(text)
        ? "not running"
        : text;
      return { source: s.name, error: reason };
    }
  }));
  const discovery: Discovery = { candidates: [], down: [] };
  for (const r of results) {
    if ("list" in r && r.list) discovery.candidates.push(...r.list);
    else discovery.down.push({ source: r.source, reason: r.error ?? "unknown" });
  }
  return discovery;
}

/**
 * Finds the candidate a name means: an exact model name, the model without its `:tag`, or a
 * label; undefined when nothing or more than one matches loosely.
 */
export function findCandidate(
  candidates: ModelCandidate[],
  name: string,
): ModelCandidate | undefined {
  const exact = candidates.find((c) => c.model === name || c.label === name);
  if (exact) return exact;
  const loose = candidates.filter((c) =>
    c.model.split(":")[0] === name || c.model.toLowerCase().startsWith(name.toLowerCase())
  );
  return loose.length === 1 ? loose[0] : undefined;
}
