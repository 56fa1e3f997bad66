/**
 * Reading and writing `agents/harvey.yaml`. Loading is linear in the file's size and never
 * hangs or crashes on hostile YAML (an alias bomb gives the defaults); saving edits the text
 * in place (src/config/yaml_edit.ts), so comments, layout, a BOM, CRLF line ends and bytes
 * that are not UTF-8 stay as they were; the settings that need the user's trust
 * (src/config/trust.ts) are used only when the file is trusted.
 *
 * @module
 */
import { relative } from "node:path";
import { type Document, loadYaml, type YamlNode, type YamlPair } from "../deps.ts";
import { HarveyError } from "../errors.ts";
import { atomicWrite, removeStaleTemps } from "../util/atomic_write.ts";
import { decodeLossless, encodeLossless } from "../util/lossless_text.ts";
import { defaultConfig, type HarveyConfig, parseConfig } from "./schema.ts";
import { type Finding, reviewConfig, type TrustStore, withoutFindings } from "./trust.ts";
import type { YamlChange } from "./yaml_edit.ts";
import { lazyImport } from "../util/lazy_import.ts";

/** What loading the file found: the config, and what to tell the user about the file. */
export interface LoadReport {
  /** One line per problem: parse error with line and column, unknown key, wrong type. */
  warnings: string[];
  /** True when the file could not be parsed: defaults are used and the file is never written. */
  broken: boolean;
  /** Settings that need trust and are ignored this session. */
  held: Finding[];
}

/**
 * How the settings that need trust are decided: `all` uses them (a caller that owns the
 * workspace, such as a test); `remembered` uses them only when the trust file says so;
 * `ask` asks (`ask`) when it says nothing, and remembers the answer.
 */
export interface TrustPolicy {
  mode: "all" | "remembered" | "ask";
  /** Where answers are remembered; none: nothing is remembered. */
  store?: TrustStore;
  /** Asks whether to trust the file, given what needs trust. */
  ask?: (findings: Finding[]) => Promise<boolean>;
  /** The workspace root and home folder, for paths in the file. */
  root: string;
  home: string;
  /** How to trust the file, for the warnings (a sentence). */
  howTo?: string;
}

/** Options of {@linkcode ConfigStore.load}. */
export interface LoadOptions {
  /** The workspace root, to show the path relative to it. */
  root?: string;
  /**
   * Reads the file (undefined when it does not exist). Default: read it as it is. The
   * session reads through the workspace, which refuses a symlink that leads outside.
   */
  read?: (path: string) => Promise<Uint8Array | undefined>;
  /** Writes the file atomically. Default: `atomicWrite`; the session writes through the workspace. */
  write?: (path: string, bytes: Uint8Array) => Promise<void>;
  /** Default: every setting is used. */
  trust?: TrustPolicy;
  /** Whether a process id is running, to remove temporary files of killed saves. */
  alive?: (pid: number) => boolean;
}

/** Warnings of one kind shown at start, at most; the rest are counted. */
const MAX_WARNINGS = 20;
/** Aliases expanded when the file is read, at most (`yaml`'s guard against alias bombs). */
const MAX_ALIASES = 100;

async function readPlain(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** `agents/harvey.yaml`: the typed config, and how to write the file back exactly. */
export class ConfigStore {
  #config: HarveyConfig;
  #broken: boolean;
  #held: Finding[];
  readonly #read: (path: string) => Promise<Uint8Array | undefined>;
  readonly #write: (path: string, bytes: Uint8Array) => Promise<void>;
  readonly #trust?: TrustPolicy;

  private constructor(
    readonly path: string,
    readonly displayPath: string,
    state: { config: HarveyConfig; broken: boolean; held: Finding[] },
    opts: LoadOptions,
  ) {
    this.#config = state.config;
    this.#broken = state.broken;
    this.#held = state.held;
    this.#read = opts.read ?? readPlain;
    this.#write = opts.write ?? ((path, bytes) => atomicWrite(path, bytes));
    this.#trust = opts.trust;
  }

  /**
   * Loads the file at `path` (a missing file gives the defaults). Problems are returned as
   * warnings, never thrown: Harvey starts with defaults for what it could not read.
   */
  static async load(path: string, opts: LoadOptions = {}): Promise<[ConfigStore, LoadReport]> {
    const display = opts.root ? relative(opts.root, path) : path;
    const defaults = (warnings: string[], broken: boolean): [ConfigStore, LoadReport] => [
      new ConfigStore(path, display, { config: defaultConfig(), broken, held: [] }, opts),
      { warnings, broken, held: [] },
    ];
    if (opts.alive) await removeStaleTemps(dirOf(path), { alive: opts.alive }).catch(() => []);
    let bytes: Uint8Array | undefined;
    try {
      bytes = await (opts.read ?? readPlain)(path);
    } catch (err) {
      const why = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
      return defaults([`${display} is not used (${why}); the defaults apply`], true);
    }
    const file = decodeLossless(bytes ?? new Uint8Array());
    if (!file.text.trim()) return defaults([], false);
    const parsed = await parseText(file.text, display);
    if ("error" in parsed) return defaults([parsed.error], true);
    const { config, unknownKeys, errors } = parseConfig(parsed.value);
    const warnings = [
      ...capped(
        unknownKeys.map((k) => `Unknown key "${k}" in ${display} (ignored, left in the file)`),
      ),
      ...capped(errors.map((e) => `In ${display}: ${e} (using the default)`)),
    ];
    migrateLegacyRag(config);
    const store = new ConfigStore(path, display, { config, broken: false, held: [] }, opts);
    const held = await store.#decideTrust(config, warnings);
    store.#held = held;
    store.#config = held.length ? withoutFindings(config, held, defaultConfig()) : config;
    return [store, { warnings, broken: false, held }];
  }

  /** The current configuration. Change it only through {@link ConfigStore.update}. */
  get config(): HarveyConfig {
    return this.#config;
  }

  /** The settings that need trust and are ignored this session. */
  get held(): readonly Finding[] {
    return this.#held;
  }

  /**
   * Sets the values at the given key paths and saves the file atomically. The file is read
   * again first, so edits made by hand since start are kept, and only the text of what
   * changes is rewritten. A value of `undefined` deletes the key. What the user changes here
   * needs no further trust: settings the session held back stay held back (and in the file).
   *
   * @example
   * ```ts
   * await store.update([[["llamafile", "active"], "qwen-coding"]]);
   * ```
   */
  async update(changes: YamlChange[]): Promise<void> {
    if (this.#broken) {
      throw new HarveyError(
        `${this.displayPath} could not be parsed when Harvey started; fix it and restart, Harvey will not overwrite it`,
      );
    }
    const file = decodeLossless((await this.#read(this.path)) ?? new Uint8Array());
    if (!file.exact) {
      throw new HarveyError(
        `${this.displayPath} mixes bytes that are not UTF-8 with characters U+10FF80–U+10FFFF; Harvey cannot save it without changing it, edit it by hand`,
      );
    }
    const before = await parseText(file.text, this.displayPath);
    if ("error" in before) {
      throw new HarveyError(`${before.error}; fix the file, Harvey will not overwrite it`);
    }
    const known = new Set(parseConfig(before.value).errors);
    const heldItems = (list: string) =>
      new Set(this.#held.filter((f) => f.item && f.path.join(".") === list).map((f) => f.item!));
    const { editYaml } = await lazyImport<typeof import("./yaml_edit.ts")>(
      new URL("./yaml_edit.ts", import.meta.url),
    ); // with the yaml package, when saving
    const text = await editYaml(file.text, changes, { eol: file.eol, keep: heldItems });
    const after = await parseText(text, this.displayPath);
    if ("error" in after) throw new HarveyError(`Not saved: ${after.error}`);
    const parsed = parseConfig(after.value);
    const added = parsed.errors.find((e) => !known.has(e));
    if (added) throw new HarveyError(`Not saved: ${added}`);
    migrateLegacyRag(parsed.config);
    // Held back before and not changed by the user now: still held back.
    const findings = this.#trust ? reviewConfig(parsed.config, this.#trust) : [];
    const was = new Set(this.#held.map((f) => f.signature));
    const held = findings.filter((f) => was.has(f.signature) && !changes.some((c) => covers(c, f)));
    await this.#write(this.path, encodeLossless(text, file));
    this.#held = held;
    this.#config = held.length
      ? withoutFindings(parsed.config, held, defaultConfig())
      : parsed.config;
    // What needs trust and is not held back was trusted before, or set by the user just now.
    if (findings.length && this.#trust?.store) {
      const trusted = findings.filter((f) => !held.includes(f));
      await this.#trust.store.remember(this.path, { trusted, refused: [], current: findings })
        .catch(() => {});
    }
  }

  /** The findings held back: those not trusted before, nor now by the user's answer. */
  async #decideTrust(config: HarveyConfig, warnings: string[]): Promise<Finding[]> {
    const policy = this.#trust;
    if (!policy || policy.mode === "all") return [];
    const findings = reviewConfig(config, policy);
    if (!findings.length) return [];
    const known = await policy.store?.lookup(this.path, findings).catch(() => undefined) ??
      { trusted: [], refused: [], unknown: findings };
    const refused = new Set(known.refused);
    let unknown = known.unknown;
    if (unknown.length && policy.mode === "ask" && policy.ask) {
      const yes = await policy.ask(unknown);
      await policy.store?.remember(this.path, {
        trusted: yes ? unknown : [],
        refused: yes ? [] : unknown,
        current: findings,
      }).catch((err) =>
        warnings.push(`The answer is not remembered (${err instanceof Error ? err.message : err})`)
      );
      if (!yes) { for (const f of unknown) refused.add(f); }
      unknown = [];
    }
    const held = findings.filter((f) => refused.has(f) || unknown.includes(f));
    const lines = held.map((f) => {
      const how = refused.has(f)
        ? "you did not trust it"
        : `not trusted${policy.howTo ? `; ${policy.howTo}` : ""}`;
      return `Ignored ${f.key} in ${this.displayPath}: it ${f.what} (${how})`;
    });
    warnings.push(...capped(lines));
    return held;
  }
}

/** Whether change `c` names the finding's setting (so the user set it just now). */
function covers([path, value]: YamlChange, f: Finding): boolean {
  const p = path.map(String);
  const fp = f.path;
  const prefix = (a: string[], b: string[]) =>
    a.length <= b.length && a.every((x, i) => x === b[i]);
  if (f.item === undefined) return prefix(p, fp) || prefix(fp, p);
  // A list item: set by the user only when the new list holds an item of that name.
  if (prefix(p, fp) && p.length < fp.length) return true;
  if (p.join(".") !== fp.join(".")) return false;
  return Array.isArray(value) &&
    value.some((v) =>
      typeof v === "object" && v !== null && (v as { name?: unknown }).name === f.item
    );
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function capped(lines: string[]): string[] {
  if (lines.length <= MAX_WARNINGS) return lines;
  return [...lines.slice(0, MAX_WARNINGS), `… and ${lines.length - MAX_WARNINGS} more like these`];
}

/**
 * Parses the text of the file: its plain value, or one line saying what is wrong and where.
 * Linear in the size of the text: duplicate keys are found with a set (the `yaml` package's
 * own check compares every key with every other one).
 */
async function parseText(
  text: string,
  display: string,
): Promise<{ value: unknown; doc: Document } | { error: string }> {
  const yaml = await loadYaml();
  const lineCounter = new yaml.LineCounter();
  let doc: Document;
  let value: unknown;
  try {
    doc = yaml.parseDocument(text, { prettyErrors: false, uniqueKeys: false });
    if (doc.errors.length) {
      // Positions cost a quarter of the parse: only a file with a problem pays for them.
      doc = yaml.parseDocument(text, { prettyErrors: true, uniqueKeys: false, lineCounter });
    }
    const first = doc.errors[0];
    if (first) {
      const pos = first.linePos?.[0];
      const where = pos ? ` at line ${pos.line}, column ${pos.col}` : "";
      const why = first.message.split("\n", 1)[0].replace(/ at line \d+, column \d+:?$/, "");
      return { error: `${display} is not valid YAML${where}: ${why}` };
    }
    const dup = duplicateKey(yaml, doc);
    if (dup) {
      const { line, col } = lineOf(text, dup.at);
      return {
        error:
          `${display} is not valid YAML at line ${line}, column ${col}: the key "${dup.key}" appears twice in one mapping`,
      };
    }
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const bomb = /alias/i.test(why);
    return {
      error: bomb
        ? `${display} expands too many YAML aliases (${why.split("\n", 1)[0]}); the defaults apply`
        : `${display} cannot be read as YAML (${why.split("\n", 1)[0]}); the defaults apply`,
    };
  }
  return { value, doc };
}

/** Line and column (1-based) of `offset` in `text`. */
function lineOf(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const start = before.lastIndexOf("\n") + 1;
  return { line: before.split("\n").length, col: offset - start + 1 };
}

/** The first key that appears twice in one mapping, with its offset; one pass over the file. */
function duplicateKey(
  yaml: Awaited<ReturnType<typeof loadYaml>>,
  doc: Document,
): { key: string; at: number } | undefined {
  const stack: unknown[] = [doc.contents];
  while (stack.length) {
    const node = stack.pop();
    if (yaml.isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items as YamlPair[]) {
        const k = pair.key as YamlNode | null;
        if (yaml.isScalar(k)) {
          const key = String(k.value);
          if (seen.has(key)) return { key, at: k.range?.[0] ?? 0 };
          seen.add(key);
        }
        stack.push(pair.value);
      }
    } else if (yaml.isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return undefined;
}

/** The old single-store form (`rag.db_path` + `rag.embedding_model`) becomes a store named `default`. */
function migrateLegacyRag(config: HarveyConfig): void {
  const rag = config.rag;
  if (rag.db_path && rag.embedding_model && !rag.stores.some((s) => s.name === "default")) {
    rag.stores.push({
      name: "default",
      db_path: rag.db_path,
      embedding_model: rag.embedding_model,
      model_map: {},
    });
    rag.active ??= "default";
  }
  delete rag.db_path;
  delete rag.embedding_model;
}
