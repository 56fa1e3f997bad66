/**
 * Reading and writing `agents/harvey.yaml` with the `yaml` Document API, so a user's
 * comments and key order survive every save Harvey makes.
 *
 * @module
 */
import { relative } from "node:path";
import { type Document, loadYaml } from "../deps.ts";
import { HarveyError } from "../errors.ts";
import { atomicWrite } from "../util/atomic_write.ts";
import { type HarveyConfig, parseConfig } from "./schema.ts";

/** What loading the file found: the config, and what to tell the user about the file. */
export interface LoadReport {
  /** One line per problem: parse error with line and column, unknown key, wrong type. */
  warnings: string[];
  /** True when the file could not be parsed: defaults are used and the file is never written. */
  broken: boolean;
}

/** `agents/harvey.yaml`: the typed config and the document it came from. */
export class ConfigStore {
  #config: HarveyConfig;
  #broken: boolean;

  private constructor(
    readonly path: string,
    readonly displayPath: string,
    config: HarveyConfig,
    broken: boolean,
  ) {
    this.#config = config;
    this.#broken = broken;
  }

  /**
   * Loads the file at `path` (a missing file gives the defaults). Problems are returned as
   * warnings, never thrown: Harvey starts with defaults for what it could not read.
   */
  static async load(
    path: string,
    opts: { root?: string } = {},
  ): Promise<[ConfigStore, LoadReport]> {
    const display = opts.root ? relative(opts.root, path) : path;
    const text = await readOrEmpty(path);
    if (!text.trim()) {
      // Nothing to parse: the defaults, without loading the YAML package at start-up.
      return [new ConfigStore(path, display, parseConfig({}).config, false), {
        warnings: [],
        broken: false,
      }];
    }
    const { doc, error } = await parse(text, display);
    if (error) {
      const store = new ConfigStore(path, display, parseConfig({}).config, true);
      return [store, { warnings: [error], broken: true }];
    }
    const parsed = parseConfig(doc.toJS());
    const warnings = [
      ...parsed.unknownKeys.map((k) =>
        `Unknown key "${k}" in ${display} (ignored, left in the file)`
      ),
      ...parsed.errors.map((e) => `In ${display}: ${e} (using the default)`),
    ];
    migrateLegacyRag(parsed.config);
    return [new ConfigStore(path, display, parsed.config, false), { warnings, broken: false }];
  }

  /** The current configuration. Change it only through {@link ConfigStore.update}. */
  get config(): HarveyConfig {
    return this.#config;
  }

  /**
   * Sets the values at the given key paths and saves the file atomically. The file is read
   * again first, so edits made by hand since start are kept. A value of `undefined` deletes
   * the key.
   *
   * @example
   * ```ts
   * await store.update([[["llamafile", "active"], "qwen-coding"]]);
   * ```
   */
  async update(changes: [path: (string | number)[], value: unknown][]): Promise<void> {
    if (this.#broken) {
      throw new HarveyError(
        `${this.displayPath} could not be parsed when Harvey started; fix it and restart, Harvey will not overwrite it`,
      );
    }
    const { doc, error } = await parse(await readOrEmpty(this.path), this.displayPath);
    if (error) {
      throw new HarveyError(`${error}; fix the file, Harvey will not overwrite it`);
    }
    const yaml = await loadYaml();
    const before = new Set(parseConfig(doc.toJS()).errors);
    if (doc.contents === null) doc.contents = doc.createNode({});
    for (const [keyPath, value] of changes) {
      if (value === undefined) doc.deleteIn(keyPath);
      else {
        // Changing a scalar in place keeps the comment that follows it on the line.
        const node = doc.getIn(keyPath, true);
        if (yaml.isScalar(node) && (value === null || typeof value !== "object")) {
          node.value = value;
        } else doc.setIn(keyPath, doc.createNode(value));
      }
    }
    const parsed = parseConfig(doc.toJS());
    const added = parsed.errors.find((e) => !before.has(e));
    if (added) throw new HarveyError(`Not saved: ${added}`);
    await atomicWrite(this.path, doc.toString());
    migrateLegacyRag(parsed.config);
    this.#config = parsed.config;
  }
}

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "";
    throw err;
  }
}

async function parse(text: string, display: string): Promise<{ doc: Document; error?: string }> {
  const { parseDocument } = await loadYaml();
  const doc = parseDocument(text, { prettyErrors: true, keepSourceTokens: false });
  const first = doc.errors[0];
  if (!first) return { doc };
  const pos = first.linePos?.[0];
  const where = pos ? ` at line ${pos.line}, column ${pos.col}` : "";
  const why = first.message.split("\n", 1)[0].replace(/ at line \d+, column \d+:?$/, "");
  return { doc, error: `${display} is not valid YAML${where}: ${why}` };
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
