/**
 * The model sources of a plain session: Ollama, and an OpenAI-compatible server that is
 * already running (llamafile or llama-server at `--llamafile-url`).
 *
 * @module
 */
import type { ModelSource } from "./catalog.ts";
import { listOllamaModels, OllamaClient } from "./ollama.ts";
import { OpenAICompatClient } from "./openai_compat.ts";
import { refusedHere } from "../util/refused.ts";

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

/** How to reach an OpenAI-compatible server that is already running. */
export interface OpenAIServerSourceOptions {
  label: string;
  timeoutMs: number;
  /**
   * The server's own key (llama-server `--api-key`), sent to this URL only; `/v1/models` is
   * public on llama-server, so it is asked without the key first.
   */
  apiKey?: string;
  /** The variable the key is (or would be) read from, named when the server wants one. */
  keyEnv?: string;
}

/** Models of an OpenAI-compatible server already running at `url`; its key goes to it alone. */
export function openaiServerSource(url: string, opts: OpenAIServerSourceOptions): ModelSource {
  const get = async (signal: AbortSignal, key?: string) => {
    if (await refusedHere(url)) throw new Error("not running");
    try {
      return await fetch(`${url}/v1/models`, {
        signal,
        headers: key ? { authorization: `Bearer ${key}` } : {},
      });
    } catch {
      throw new Error(signal.aborted ? "no answer" : "not running");
    }
  };
  return {
    name: `${opts.label} at ${url}`,
    async list(signal) {
      let res = await get(signal);
      if ((res.status === 401 || res.status === 403) && opts.apiKey) {
        await res.body?.cancel();
        res = await get(signal, opts.apiKey);
      }
      if (!res.ok) {
        await res.body?.cancel();
        const want = (res.status === 401 || res.status === 403) && opts.keyEnv
          ? opts.apiKey ? ` (it refused the key in ${opts.keyEnv})` : ` (set ${opts.keyEnv})`
          : "";
        throw new Error(`answered ${res.status}${want}`);
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
              apiKey: opts.apiKey,
              keyEnv: opts.keyEnv,
            }),
          ),
      }));
    },
  };
}
