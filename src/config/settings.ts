/**
 * The settings of one session, resolved once with the same precedence everywhere:
 * command-line flag > environment variable > `harvey.yaml` > default.
 *
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import type { HarveyConfig } from "./schema.ts";

/** The global flags of the command line. */
export interface Flags {
  workdir?: string;
  model?: string;
  ollama?: string;
  llamafile?: string;
  llamafileUrl?: string;
  llamafileDir?: string;
  gguf?: string;
  run?: string;
  print?: string;
  yes?: boolean;
  color?: boolean;
}

/** What a session runs with, after precedence is applied. */
export interface Settings {
  ollamaUrl: string;
  llamafileUrl: string;
  modelsDir: string;
  model?: string;
  hfEndpoint: string;
  hfToken?: string;
  color: boolean;
  yes: boolean;
}

/**
 * Applies flag > environment > file > default to every setting with more than one source.
 *
 * @example
 * ```ts
 * resolveSettings(defaultConfig(), { flags: {}, env: { OLLAMA_HOST: "10.0.0.2" }, home: "/home/me" })
 *   .ollamaUrl; // "http://10.0.0.2:11434"
 * ```
 */
export function resolveSettings(
  config: HarveyConfig,
  opts: { flags: Flags; env: Record<string, string | undefined>; home?: string; root?: string },
): Settings {
  const { flags, env } = opts;
  const home = opts.home ?? env.HOME ?? "";
  const modelsDir = flags.llamafileDir ?? nonEmpty(env.HARVEY_LLAMAFILE_DIR) ??
    config.llamafile.models_dir ?? join(home, "Models");
  return {
    ollamaUrl: normalizeOllamaUrl(flags.ollama ?? nonEmpty(env.OLLAMA_HOST) ?? config.ollama.url),
    llamafileUrl: (flags.llamafileUrl ?? config.llamafile.url).replace(/\/+$/, ""),
    modelsDir: expandPath(modelsDir, { home, root: opts.root }),
    model: flags.model ?? nonEmpty(env.HARVEY_MODEL) ?? config.model,
    hfEndpoint: (nonEmpty(env.HF_ENDPOINT) ?? "https://huggingface.co").replace(/\/+$/, ""),
    hfToken: nonEmpty(env.HF_TOKEN),
    color: flags.color !== false && env.NO_COLOR === undefined,
    yes: flags.yes === true,
  };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v && v.trim() ? v.trim() : undefined;
}

/**
 * Expands a leading `~` to the home folder and resolves a relative path against `root`
 * (the workspace) when given.
 *
 * @example
 * ```ts
 * expandPath("~/Models", { home: "/home/me" }); // "/home/me/Models"
 * ```
 */
export function expandPath(path: string, opts: { home: string; root?: string }): string {
  let p = path;
  if (p === "~") p = opts.home;
  else if (p.startsWith("~/")) p = join(opts.home, p.slice(2));
  if (!isAbsolute(p) && opts.root) p = resolve(opts.root, p);
  return p;
}

/**
 * Makes a URL of what `OLLAMA_HOST` or `--ollama` may hold: `host`, `host:port`,
 * `http://host:port`.
 *
 * @example
 * ```ts
 * normalizeOllamaUrl("0.0.0.0"); // "http://127.0.0.1:11434"
 * ```
 */
export function normalizeOllamaUrl(value: string): string {
  let v = value.trim().replace(/\/+$/, "");
  if (!/^https?:\/\//.test(v)) v = `http://${v}`;
  try {
    const url = new URL(v);
    if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
    if (!url.port && !/^https?:\/\/[^/]+:\d+/.test(v) && url.protocol === "http:") {
      url.port = "11434";
    }
    return url.toString().replace(/\/+$/, "");
  } catch {
    return v;
  }
}
