/**
 * The keys `agents/harvey.yaml` may hold, their types and defaults, and the parser that turns
 * the file's plain values into a typed {@link HarveyConfig}. Unknown keys are reported, values
 * of the wrong type are errors that name the key.
 *
 * @module
 */

/** A model file registered under a short name (llamafile or GGUF). */
export interface ModelEntry {
  name: string;
  path: string;
}

/** A named RAG store. */
export interface RagStoreEntry {
  name: string;
  db_path: string;
  embedding_model: string;
  model_map: Record<string, string>;
}

/** A named remote endpoint reached with `@name`. */
export interface RouteEntry {
  name: string;
  provider: string;
  url: string;
  model: string;
  api_key_env: string;
  enabled: boolean;
  /** The route's context window in tokens, when its server does not tell (0 = ask the server). */
  context?: number;
}

/** How every request is fitted into the window (`context:` in harvey.yaml). */
export interface ContextConfig {
  /**
   * Tokens kept free for each reply and sent as `max_tokens`; 0 = automatic (a fifth of the
   * window, 256 to 8192, at most half of it).
   */
  reply_reserve: number;
  /** Summarize the oldest turns with the same model when a request would not fit. */
  auto_compact: boolean;
  /** Turns kept word for word when compacting (the current one included). */
  keep_turns: number;
  /** Show a reasoning model's reasoning, dimmed, as it streams. */
  show_reasoning: boolean;
}

/** Everything `agents/harvey.yaml` configures, with defaults filled in. */
export interface HarveyConfig {
  model?: string;
  ollama: {
    url: string;
    /** The context Harvey asks Ollama for (`num_ctx`), capped by the model's; 0 = the model's own. */
    num_ctx: number;
  };
  /** Timeout of one request to a local server in ms; 0 means none (slow hardware is real). */
  request_timeout: number;
  /** Timeout of one request to a cloud route in ms. */
  remote_timeout: number;
  run_timeout: number;
  startup_timeout: number;
  /** How long one `/search` may run, in ms (a regular expression can backtrack for minutes); 0 = no limit. */
  search_timeout: number;
  safe_mode: boolean;
  allowed_commands: string[];
  permissions: Record<string, string[]>;
  /** The OS sandbox of the commands Harvey runs (src/security/sandbox.ts). */
  sandbox: {
    /** Whether sandboxed commands may use the network (default false: no network at all). */
    network: boolean;
  };
  llamafile: {
    models_dir?: string;
    active?: string;
    url: string;
    /** The variable holding the key of the server at `url` (default `LLAMA_API_KEY`). */
    api_key_env?: string;
    ctx_size?: number;
    gpu_layers?: number;
    models: ModelEntry[];
  };
  llamacpp: {
    server_bin: string;
    cli_bin: string;
    active?: string;
    ctx_size?: number;
    gpu_layers?: number;
    extra_args: string[];
    models: ModelEntry[];
  };
  rag: {
    enabled: boolean;
    active?: string;
    stores: RagStoreEntry[];
    /** Legacy single-store form, migrated to a store named `default` on load. */
    db_path?: string;
    embedding_model?: string;
  };
  routes: RouteEntry[];
  context: ContextConfig;
  /** The agent loop: the model's tools. */
  tools: {
    /** Whether the model is offered tools at all (`/tools on|off`). */
    enabled: boolean;
    /** What runs without asking: nothing, file changes, or everything (`/tools approve`). */
    approve: "ask" | "edits" | "all";
    /** The most tool calls one turn may make. */
    max_calls: number;
    /**
     * How each model (by name) is given the tools (`/tools mode`): its backend's native tool
     * calling, stated in the prompt as text, not at all, or `auto` (the default).
     */
    modes: Record<string, "native" | "text" | "off" | "auto">;
  };
}

/** The commands safe mode allows by default. */
export const DEFAULT_ALLOWED_COMMANDS = [
  "ls",
  "cat",
  "grep",
  "head",
  "tail",
  "wc",
  "find",
  "stat",
  "git",
  "rg",
];

/** A fresh configuration with every default. */
export function defaultConfig(): HarveyConfig {
  return {
    ollama: { url: "http://localhost:11434", num_ctx: 8192 },
    request_timeout: 0,
    remote_timeout: 120_000,
    run_timeout: 300_000,
    startup_timeout: 120_000,
    search_timeout: 30_000,
    safe_mode: true,
    allowed_commands: [...DEFAULT_ALLOWED_COMMANDS],
    permissions: {},
    sandbox: { network: false },
    llamafile: { url: "http://localhost:8080", models: [] },
    llamacpp: {
      server_bin: "llama-server",
      cli_bin: "llama-cli",
      extra_args: [],
      models: [],
    },
    rag: { enabled: false, stores: [] },
    routes: [],
    context: { reply_reserve: 0, auto_compact: true, keep_turns: 2, show_reasoning: true },
    tools: { enabled: true, approve: "ask", max_calls: 25, modes: {} },
  };
}

type Field =
  | { kind: "string" | "boolean" | "duration" | "strings" | "url" }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "int"; min: number }
  | { kind: "object"; fields: Record<string, Field>; required?: string[] }
  | { kind: "list"; item: Field }
  | { kind: "map"; value: Field };

const str: Field = { kind: "string" };
const modelList: Field = {
  kind: "list",
  item: { kind: "object", fields: { name: str, path: str }, required: ["name", "path"] },
};

const SCHEMA: Field = {
  kind: "object",
  fields: {
    model: str,
    ollama: { kind: "object", fields: { url: { kind: "url" }, num_ctx: { kind: "int", min: 0 } } },
    request_timeout: { kind: "duration" },
    remote_timeout: { kind: "duration" },
    run_timeout: { kind: "duration" },
    startup_timeout: { kind: "duration" },
    search_timeout: { kind: "duration" },
    safe_mode: { kind: "boolean" },
    allowed_commands: { kind: "strings" },
    permissions: { kind: "map", value: { kind: "strings" } },
    sandbox: { kind: "object", fields: { network: { kind: "boolean" } } },
    llamafile: {
      kind: "object",
      fields: {
        models_dir: str,
        active: str,
        url: { kind: "url" },
        api_key_env: str,
        ctx_size: { kind: "int", min: 0 },
        gpu_layers: { kind: "int", min: -1 },
        models: modelList,
      },
    },
    llamacpp: {
      kind: "object",
      fields: {
        server_bin: str,
        cli_bin: str,
        active: str,
        ctx_size: { kind: "int", min: 0 },
        gpu_layers: { kind: "int", min: -1 },
        extra_args: { kind: "strings" },
        models: modelList,
      },
    },
    rag: {
      kind: "object",
      fields: {
        enabled: { kind: "boolean" },
        active: str,
        db_path: str,
        embedding_model: str,
        stores: {
          kind: "list",
          item: {
            kind: "object",
            fields: {
              name: str,
              db_path: str,
              embedding_model: str,
              model_map: { kind: "map", value: str },
            },
            required: ["name", "db_path", "embedding_model"],
          },
        },
      },
    },
    tools: {
      kind: "object",
      fields: {
        enabled: { kind: "boolean" },
        approve: { kind: "enum", values: ["ask", "edits", "all"] },
        max_calls: { kind: "int", min: 1 },
        modes: { kind: "map", value: { kind: "enum", values: ["native", "text", "off", "auto"] } },
      },
    },
    routes: {
      kind: "list",
      item: {
        kind: "object",
        fields: {
          name: str,
          provider: str,
          url: { kind: "url" },
          model: str,
          api_key_env: str,
          enabled: { kind: "boolean" },
          context: { kind: "int", min: 0 },
        },
        required: ["name", "provider"],
      },
    },
    context: {
      kind: "object",
      fields: {
        reply_reserve: { kind: "int", min: 0 },
        auto_compact: { kind: "boolean" },
        keep_turns: { kind: "int", min: 1 },
        show_reasoning: { kind: "boolean" },
      },
    },
  },
};

/** The result of checking a file's values against the schema. */
export interface ParsedConfig {
  config: HarveyConfig;
  /** Keys the schema does not know, as dotted paths. */
  unknownKeys: string[];
  /** Values of the wrong type: one line each, naming the key. They fall back to defaults. */
  errors: string[];
}

/**
 * Checks the plain value of a YAML file against the schema and fills in defaults.
 *
 * @example
 * ```ts
 * const { config, unknownKeys } = parseConfig({ safe_mode: false, colour: "red" });
 * // config.safe_mode === false, unknownKeys = ["colour"]
 * ```
 */
export function parseConfig(value: unknown): ParsedConfig {
  const unknownKeys: string[] = [];
  const errors: string[] = [];
  const parsed = value === null || value === undefined
    ? {}
    : check(SCHEMA, value, "", { unknownKeys, errors });
  const config = merge(defaultConfig(), (parsed ?? {}) as Record<string, unknown>);
  for (const store of config.rag.stores) store.model_map ??= {};
  for (const route of config.routes) {
    route.url ??= "";
    route.model ??= "";
    route.api_key_env ??= "";
    route.enabled ??= true;
  }
  return { config, unknownKeys, errors };
}

interface Sink {
  unknownKeys: string[];
  errors: string[];
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `"${value}"`;
  return String(value);
}

function check(field: Field, value: unknown, key: string, sink: Sink): unknown {
  const fail = (expected: string) => {
    sink.errors.push(`${key || "the file"} must be ${expected}, found ${describe(value)}`);
    return undefined;
  };
  switch (field.kind) {
    case "string":
      if (typeof value === "number") return String(value);
      return typeof value === "string" ? value : fail("text");
    case "url":
      if (typeof value !== "string" || !URL.canParse(value)) return fail("a URL");
      return value.replace(/\/+$/, "");
    case "boolean":
      return typeof value === "boolean" ? value : fail("true or false");
    case "enum":
      return typeof value === "string" && field.values.includes(value)
        ? value
        : fail(`one of ${field.values.join(", ")}`);
    case "int":
      return Number.isInteger(value) && (value as number) >= field.min
        ? value
        : fail(`a whole number of at least ${field.min}`);
    case "duration": {
      const ms = parseDuration(value);
      return ms === undefined ? fail('a duration such as "90s", "5m" or 300') : ms;
    }
    case "strings":
      return Array.isArray(value) && value.every((v) => typeof v === "string")
        ? value
        : fail("a list of text values");
    case "map": {
      if (!isPlainObject(value)) return fail("a mapping");
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const parsed = check(field.value, v, `${key}.${k}`, sink);
        if (parsed !== undefined) out[k] = parsed;
      }
      return out;
    }
    case "list": {
      if (!Array.isArray(value)) return fail("a list");
      return value.map((v, i) => check(field.item, v, `${key}[${i}]`, sink))
        .filter((v) => v !== undefined);
    }
    case "object": {
      if (!isPlainObject(value)) return fail("a mapping");
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const sub = field.fields[k];
        const path = key ? `${key}.${k}` : k;
        if (!sub) {
          sink.unknownKeys.push(path);
          continue;
        }
        if (v === null || v === undefined) continue;
        const parsed = check(sub, v, path, sink);
        if (parsed !== undefined) out[k] = parsed;
      }
      for (const r of field.required ?? []) {
        if (!(r in out)) {
          sink.errors.push(`${key} needs "${r}"`);
          return undefined;
        }
      }
      return out;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function merge<T>(base: T, over: Record<string, unknown>): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) && !Array.isArray(b) ? merge(b, v) : v;
  }
  return out as T;
}

/**
 * Parses a duration: a number of seconds, or text like `"90s"`, `"5m"`, `"1m30s"`, `"250ms"`,
 * `"2h"`. Returns milliseconds, or undefined when it is not a duration.
 *
 * @example
 * ```ts
 * parseDuration("1m30s"); // 90000
 * ```
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return value >= 0 ? value * 1000 : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  for (const m of text.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === "ms"
      ? n
      : m[2] === "s"
      ? n * 1000
      : m[2] === "m"
      ? n * 60_000
      : n * 3_600_000;
    matched += m[0].length;
  }
  return matched === text.length && matched > 0 ? total : undefined;
}
