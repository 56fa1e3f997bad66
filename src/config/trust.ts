/**
 * Workspace trust: the settings of a workspace's own `agents/harvey.yaml` that could hurt
 * the person who runs Harvey there (a cloned repository can ship one), and the record of
 * which such files that person trusted, kept outside every workspace.
 *
 * What needs trust ({@linkcode reviewConfig}):
 * - `safe_mode: false`, and `allowed_commands` beyond the defaults (the same, a program at a
 *   time);
 * - `permissions` entries that open what the defaults keep closed: a secret, a `.git` folder,
 *   `agents/audit.jsonl`;
 * - a route whose key (its `api_key_env`, or its provider's usual variable) would go to a
 *   host that is not its provider's own (`openai-compatible` has none);
 * - programs and arguments Harvey runs: `llamacpp.server_bin`/`cli_bin` given as a path,
 *   `llamacpp.extra_args`, registered llamafiles (they are executables);
 * - places outside: `llamafile.models_dir` other than `~/Models`, a RAG store's `db_path`
 *   outside the workspace, a non-loopback `llamafile.url` or `ollama.url` (prompts and files
 *   would go there);
 * - `sandbox.network: true` (commands in the sandbox reach the network),
 *   `llamafile.api_key_env` (that variable's key goes to the server at `llamafile.url`), and
 *   `tools.approve` other than `ask` (the model's changes and commands without asking).
 *
 * Trust is remembered per file (its real path) and per setting, by a hash of the setting's
 * value, in `$XDG_CONFIG_HOME/harvey/trust.json` (default `~/.config/harvey/trust.json`):
 * editing other keys or comments does not ask again; a new or changed setting that needs
 * trust does (only about itself).
 *
 * @module
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import { keyEnvOf, routeUrl } from "../routes/clients.ts";
import { isProvider, PROVIDER_DEFAULTS } from "../routes/providers.ts";
import { checkPath, type Perm } from "../security/permissions.ts";
import { atomicWrite } from "../util/atomic_write.ts";
import { DEFAULT_ALLOWED_COMMANDS, type HarveyConfig } from "./schema.ts";
import { expandPath } from "./settings.ts";

/** One setting that needs trust. */
export interface Finding {
  /** The key as the user reads it: `safe_mode`, `routes[gpt]`, `permissions[.env]`. */
  key: string;
  /** The key path in the file; for a list item, the list's path (and `item`). */
  path: string[];
  /** The `name` of the list item, for items of named lists. */
  item?: string;
  /** What it does, in a few words: "turns safe mode off". */
  what: string;
  /** The setting's value as stable text: what trust is remembered by. */
  signature: string;
}

/** What {@linkcode reviewConfig} needs besides the config. */
export interface ReviewContext {
  /** The workspace root (real path). */
  root: string;
  /** The home folder, for `~`. */
  home: string;
}

const isLoopbackHost = (url: string) => {
  try {
    const host = new URL(url).hostname;
    return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
  } catch {
    return false;
  }
};
const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
};
const inside = (path: string, root: string) => path === root || path.startsWith(`${root}/`);

/**
 * The settings of `config` that need trust, in file order.
 *
 * @example
 * ```ts
 * reviewConfig(parseConfig({ safe_mode: false }).config, { root: "/w", home: "/h" });
 * // [{ key: "safe_mode", what: "turns safe mode off", … }]
 * ```
 */
export function reviewConfig(config: HarveyConfig, ctx: ReviewContext): Finding[] {
  const found: Finding[] = [];
  const add = (f: Omit<Finding, "signature">, value: unknown) =>
    found.push({ ...f, signature: `${f.key}=${JSON.stringify(value)}` });
  if (config.safe_mode === false) {
    add({ key: "safe_mode", path: ["safe_mode"], what: "turns safe mode off" }, false);
  }
  const extra = config.allowed_commands.filter((c) => !DEFAULT_ALLOWED_COMMANDS.includes(c));
  if (extra.length) {
    add({
      key: "allowed_commands",
      path: ["allowed_commands"],
      what: `lets safe mode run ${extra.join(", ")}`,
    }, [...extra].sort());
  }
  for (const [key, perms] of Object.entries(config.permissions)) {
    // An entry needs trust when it allows on its own path what the defaults refuse there.
    const opened = perms.filter((p) =>
      !checkPath(key, p as Perm, { permissions: {} }).allowed &&
      checkPath(key, p as Perm, { permissions: { [key]: perms } }).allowed
    );
    if (opened.length) {
      add({
        key: `permissions[${key}]`,
        path: ["permissions", key],
        what: `opens ${key} for ${opened.join(",")}`,
      }, perms);
    }
  }
  for (const route of config.routes) {
    const variable = keyEnvOf(route);
    const url = routeUrl(route);
    if (!variable || !url) continue;
    const own = isProvider(route.provider) ? PROVIDER_DEFAULTS[route.provider].host : undefined;
    let host: string;
    try {
      host = new URL(url).hostname;
    } catch {
      continue;
    }
    if (own !== undefined && host === own) continue;
    add({
      key: `routes[${route.name}]`,
      path: ["routes"],
      item: route.name,
      what: `sends $${variable} to ${hostOf(url)}`,
    }, { provider: route.provider, url, key: variable });
  }
  const lc = config.llamacpp;
  for (const k of ["server_bin", "cli_bin"] as const) {
    if (lc[k].includes("/")) {
      add({ key: `llamacpp.${k}`, path: ["llamacpp", k], what: `runs ${lc[k]}` }, lc[k]);
    }
  }
  if (lc.extra_args.length) {
    add({
      key: "llamacpp.extra_args",
      path: ["llamacpp", "extra_args"],
      what: `passes ${lc.extra_args.join(" ")} to llama-server`,
    }, lc.extra_args);
  }
  for (const m of config.llamafile.models) {
    add({
      key: `llamafile.models[${m.name}]`,
      path: ["llamafile", "models"],
      item: m.name,
      what: `runs ${m.path}`,
    }, m.path);
  }
  const dir = config.llamafile.models_dir;
  if (dir !== undefined) {
    const abs = expandPath(dir, { home: ctx.home, root: ctx.root });
    if (abs !== join(ctx.home, "Models")) {
      add({
        key: "llamafile.models_dir",
        path: ["llamafile", "models_dir"],
        what: `looks for models to run in ${dir}`,
      }, abs);
    }
  }
  for (const store of config.rag.stores) {
    const abs = isAbsolute(store.db_path)
      ? resolve(store.db_path)
      : resolve(ctx.root, store.db_path);
    if (!inside(abs, ctx.root)) {
      add({
        key: `rag.stores[${store.name}]`,
        path: ["rag", "stores"],
        item: store.name,
        what: `keeps a database at ${store.db_path}, outside the workspace`,
      }, abs);
    }
  }
  if (config.tools.approve !== "ask") {
    add({
      key: "tools.approve",
      path: ["tools", "approve"],
      what: config.tools.approve === "all"
        ? "lets the model change files and run commands without asking"
        : "lets the model change files without asking",
    }, config.tools.approve);
  }
  if (config.sandbox.network) {
    add({
      key: "sandbox.network",
      path: ["sandbox", "network"],
      what: "lets the commands in the sandbox reach the network",
    }, true);
  }
  const keyEnv = config.llamafile.api_key_env;
  if (keyEnv) {
    add({
      key: "llamafile.api_key_env",
      path: ["llamafile", "api_key_env"],
      what: `sends $${keyEnv} to the server at ${hostOf(config.llamafile.url)}`,
    }, { keyEnv, url: config.llamafile.url });
  }
  for (
    const [section, url] of [["llamafile", config.llamafile.url], ["ollama", config.ollama.url]]
  ) {
    if (!isLoopbackHost(url)) {
      add({
        key: `${section}.url`,
        path: [section, "url"],
        what: `sends your prompts and files to ${hostOf(url)}`,
      }, url);
    }
  }
  return found;
}

/**
 * `config` with the `held` settings ignored: reset to their defaults (`defaults`), or the
 * list items dropped. A dropped llamafile that was the active one is no longer active.
 */
export function withoutFindings(
  config: HarveyConfig,
  held: Finding[],
  defaults: HarveyConfig,
): HarveyConfig {
  if (!held.length) return config;
  const out = structuredClone(config);
  const items = (path: string) =>
    new Set(
      held.filter((f) => f.item !== undefined && f.path.join(".") === path).map((f) => f.item!),
    );
  for (const f of held) {
    if (f.item !== undefined) continue;
    const [a, b] = f.path;
    if (a === "safe_mode") out.safe_mode = defaults.safe_mode;
    else if (a === "allowed_commands") {
      out.allowed_commands = out.allowed_commands.filter((c) =>
        DEFAULT_ALLOWED_COMMANDS.includes(c)
      );
    } else if (a === "permissions") delete out.permissions[b];
    else if (a === "llamacpp" && (b === "server_bin" || b === "cli_bin")) {
      out.llamacpp[b] = defaults.llamacpp[b];
    } else if (a === "llamacpp" && b === "extra_args") out.llamacpp.extra_args = [];
    else if (a === "llamafile" && b === "models_dir") delete out.llamafile.models_dir;
    else if (a === "llamafile" && b === "api_key_env") delete out.llamafile.api_key_env;
    else if (a === "sandbox" && b === "network") out.sandbox.network = false;
    else if (a === "tools" && b === "approve") out.tools.approve = defaults.tools.approve;
    else if (a === "llamafile" && b === "url") out.llamafile.url = defaults.llamafile.url;
    else if (a === "ollama" && b === "url") out.ollama.url = defaults.ollama.url;
  }
  const routes = items("routes");
  out.routes = out.routes.filter((r) => !routes.has(r.name));
  const llamafiles = items("llamafile.models");
  out.llamafile.models = out.llamafile.models.filter((m) => !llamafiles.has(m.name));
  if (out.llamafile.active !== undefined && llamafiles.has(out.llamafile.active)) {
    delete out.llamafile.active;
  }
  const stores = items("rag.stores");
  out.rag.stores = out.rag.stores.filter((s) => !stores.has(s.name));
  if (out.rag.active !== undefined && stores.has(out.rag.active)) delete out.rag.active;
  return out;
}

/**
 * The hash a setting's trust is remembered by: SHA-256 of its signature, in hex (Web Crypto,
 * so start-up does not load `node:crypto`).
 */
export async function findingHash(finding: Finding): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(finding.signature));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function hashAll(findings: Finding[]): Promise<string[]> {
  return Promise.all(findings.map(findingHash));
}

/**
 * Where trust is remembered: `$XDG_CONFIG_HOME/harvey/trust.json`, else
 * `~/.config/harvey/trust.json`; undefined without either variable.
 */
export function trustFile(env: Record<string, string | undefined>): string | undefined {
  const base = env.XDG_CONFIG_HOME?.trim() || (env.HOME ? join(env.HOME, ".config") : "");
  return base && isAbsolute(base) ? join(base, "harvey", "trust.json") : undefined;
}

interface TrustRecord {
  /** Hashes of the settings the user trusted. */
  trusted: string[];
  /** Hashes of the settings the user did not trust (not asked about again). */
  refused: string[];
  at: string;
}

/** What the trust file says about some settings of one file. */
export interface TrustAnswer {
  trusted: Finding[];
  refused: Finding[];
  /** Never answered. */
  unknown: Finding[];
}

/**
 * The trust file: for each `harvey.yaml` (by real path), which of its settings that need
 * trust were trusted or refused, each remembered by the hash of its value.
 */
export class TrustStore {
  constructor(readonly file: string) {}

  /** What was answered about these settings of `configPath`. */
  async lookup(configPath: string, findings: Finding[]): Promise<TrustAnswer> {
    const rec = (await this.#read())[configPath];
    const yes = new Set(rec?.trusted ?? []);
    const no = new Set(rec?.refused ?? []);
    const answer: TrustAnswer = { trusted: [], refused: [], unknown: [] };
    const hashes = await hashAll(findings);
    findings.forEach((f, i) => {
      const h = hashes[i];
      (yes.has(h) ? answer.trusted : no.has(h) ? answer.refused : answer.unknown).push(f);
    });
    return answer;
  }

  /**
   * Remembers the answers for `configPath`: `trusted` and `refused` settings are added; the
   * file keeps only answers about settings it still has (`current`).
   */
  async remember(
    configPath: string,
    answers: { trusted: Finding[]; refused: Finding[]; current: Finding[] },
  ): Promise<void> {
    const files = await this.#read();
    const [current, yes, no] = await Promise.all(
      [answers.current, answers.trusted, answers.refused].map(hashAll),
    );
    const now = new Set(current);
    const old = files[configPath] ?? { trusted: [], refused: [], at: "" };
    const trusted = new Set([...old.trusted, ...yes]);
    const refused = new Set([...old.refused, ...no]);
    for (const h of yes) refused.delete(h);
    files[configPath] = {
      trusted: [...trusted].filter((h) => now.has(h)).sort(),
      refused: [...refused].filter((h) => now.has(h) && !trusted.has(h)).sort(),
      at: new Date().toISOString(),
    };
    await Deno.mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    await atomicWrite(this.file, `${JSON.stringify({ version: 1, files }, null, 2)}\n`, {
      mode: 0o600,
    });
  }

  async #read(): Promise<Record<string, TrustRecord>> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.file);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return {};
      throw err;
    }
    const strings = (v: unknown) =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
    try {
      const files = JSON.parse(text)?.files;
      if (typeof files !== "object" || files === null) return {};
      const out: Record<string, TrustRecord> = {};
      for (const [path, rec] of Object.entries(files as Record<string, Partial<TrustRecord>>)) {
        out[path] = {
          trusted: strings(rec?.trusted),
          refused: strings(rec?.refused),
          at: String(rec?.at ?? ""),
        };
      }
      return out;
    } catch {
      return {}; // unreadable: as if nothing were trusted (it is rewritten on the next answer)
    }
  }
}
