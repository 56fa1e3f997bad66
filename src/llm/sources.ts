/**
 * The model sources of a plain session: Ollama, and an OpenAI-compatible server that is
 * already running (llamafile or llama-server at `--llamafile-url`).
 *
 * @module
 */
import type { ModelSource } from "./catalog.ts";
import { listOllamaModels, OllamaClient } from "./ollama.ts";
import { OpenAICompatClient } from "./openai_compat.ts";

/** Models of the Ollama server at `url`. */
export function ollamaSource(
  url: string,
  opts: { timeoutMs: number; numCtx: number },
): ModelSource {
  return {
    name: `Ollama at ${url}`,
    async list(signal) {
      const models = await listOllamaModels(url, { signal });
      return models.map((model) => ({
        label: `${model} (ollama)`,
        model,
        source: "ollama",
        connect: () => Promise.resolve(new OllamaClient(url, model, opts)),
      }));
    },
  };
}

/** Models of an OpenAI-compatible server already running at `url` (no key, ever). */
export function openaiServerSource(
  url: string,
  opts: { label: string; timeoutMs: number },
): ModelSource {
  return {
    name: `${opts.label} at ${url}`,
    async list(signal) {
      let res: Response;
      try {
        res = await fetch(`${url}/v1/models`, { signal });
      } catch {
        throw new Error(signal.aborted ? "no answer" : "not running");
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`answered ${res.status}`);
      }
      const body = await res.json() as { data?: { id?: string }[] };
      const ids = (body.data ?? []).map((m) => m.id ?? "").filter(Boolean);
      return ids.map((model) => ({
        label: `${model} (${opts.label})`,
        model,
        source: opts.label,
        connect: () =>
          Promise.resolve(
            new OpenAICompatClient({
              baseUrl: url,
              model,
              label: opts.label,
              timeoutMs: opts.timeoutMs,
            }),
          ),
      }));
    },
  };
}
