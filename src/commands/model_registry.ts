/**
 * The model registries of `agents/harvey.yaml` (`llamafile.models`, `llamacpp.models`) and the
 * one picker over `models_dir`, shared by `/llamafile` and `/llamacpp`: list, add, use,
 * remove, rename, and the model sources `/model` and start-up draw registered models from.
 *
 * @module
 */
import { basename, isAbsolute, join } from "node:path";
import type { Agent } from "../agent.ts";
import { expandPath } from "../config/settings.ts";
import type { ModelEntry } from "../config/schema.ts";
import { HarveyError, UsageError } from "../errors.ts";
import type { ModelCandidate, ModelSource } from "../llm/catalog.ts";
import { LazyServerClient } from "../llm/lazy_server_client.ts";
import { OpenAICompatClient } from "../llm/openai_compat.ts";
import type { RunningServer } from "../runtime/server.ts";
import { isExecutable } from "../runtime/spawn.ts";
import type { LLMClient, Output } from "../types.ts";

/** What differs between the llamafile registry and the GGUF registry. */
export interface RegistryKind {
  /** The section of `harvey.yaml`. */
  key: "llamafile" | "llamacpp";
  /** The command family, e.g. `/llamafile`. */
  command: string;
  /** The file extension the picker looks for, e.g. `.llamafile`. */
  ext: string;
  /** `llamafile` or `GGUF`, as in "Registered llamafile models:". */
  noun: string;
  /** `llamafiles` or `GGUF files`, as in "No llamafiles found in ~/Models.". */
  plural: string;
  /** `a llamafile` or `a GGUF file`, as in "Enter a path to a llamafile". */
  article: string;
  /** The source label of its candidates in `/model`, e.g. `llamafile` or `gguf`. */
  label: string;
  /** Throws a HarveyError when the file at `abs` is not of this kind. */
  check?(abs: string, shown: string): Promise<void>;
}

/** The llamafile registry: `llamafile.models`. */
export const LLAMAFILE_KIND: RegistryKind = {
  key: "llamafile",
  command: "/llamafile",
  ext: ".llamafile",
  noun: "llamafile",
  plural: "llamafiles",
  article: "a llamafile",
  label: "llamafile",
  check: checkLlamafile,
};

/** The GGUF registry: `llamacpp.models`, served by llama-server. */
export const GGUF_KIND: RegistryKind = {
  key: "llamacpp",
  command: "/llamacpp",
  ext: ".gguf",
  noun: "GGUF",
  plural: "GGUF files",
  article: "a GGUF file",
  label: "gguf",
  check: checkGguf,
};

/** What the first bytes of a model file say it is. */
type FileKind = "ape" | "script" | "native" | "gguf" | "other";

/** Reads the first bytes of `abs` to tell a llamafile, a program and a GGUF model apart. */
export async function sniffFile(abs: string): Promise<FileKind> {
  const file = await Deno.open(abs, { read: true });
  const head = new Uint8Array(8);
  let n = 0;
  try {
    for (let got = 0; n < head.length; n += got) {
      got = await file.read(head.subarray(n)) ?? 0;
      if (got === 0) break;
    }
  } finally {
    file.close();
  }
  const text = String.fromCharCode(...head.subarray(0, n));
  const word = n >= 4 ? new DataView(head.buffer).getUint32(0) : 0;
  // An Actually Portable Executable starts with a shell-compatible DOS header.
  if (text.startsWith("MZqFpD")) return "ape";
  if (text.startsWith("#!")) return "script";
  if (text.startsWith("GGUF")) return "gguf";
  const machO = [0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe];
  if (text.startsWith("\x7fELF") || machO.includes(word)) return "native";
  return "other";
}

/** Throws unless the file is a llamafile (an APE), a launcher script or a native program. */
async function checkLlamafile(abs: string, shown: string): Promise<void> {
  const kind = await sniffFile(abs);
  if (kind === "ape" || kind === "script") return;
  if (kind === "native") {
    if (isExecutable(abs)) return;
    throw new HarveyError(`${shown} is a program without execute permission: chmod +x it first`);
  }
  if (kind === "gguf") {
    throw new HarveyError(
      `${shown} is a GGUF model, not a llamafile: register it with /llamacpp add ${shown}`,
    );
  }
  throw new HarveyError(
    `${shown} is not a llamafile: it starts with neither the APE header "MZqFpD" nor "#!" ` +
      "(expected a .llamafile, or a program that serves the OpenAI API)",
  );
}

/** Throws unless the file starts with the GGUF magic bytes. */
async function checkGguf(abs: string, shown: string): Promise<void> {
  const kind = await sniffFile(abs);
  if (kind === "gguf") return;
  if (kind === "ape") {
    throw new HarveyError(
      `${shown} is a llamafile, not a GGUF file: register it with /llamafile add ${shown}`,
    );
  }
  throw new HarveyError(
    `${shown} is not a GGUF file (it does not start with "GGUF"); give the path of a .gguf model`,
  );
}

/**
 * A size in decimal units, as the picker and `list` show it.
 *
 * @example
 * ```ts
 * formatSize(4_100_000_000); // "4.1 GB"
 * ```
 */
export function formatSize(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} KB`;
  return `${bytes} B`;
}

/**
 * The name a model file is registered under by default: its file name without the extension.
 *
 * @example
 * ```ts
 * deriveName("/m/Qwen3.5-4B-Q5_K_S.llamafile", ".llamafile"); // "Qwen3.5-4B-Q5_K_S"
 * ```
 */
export function deriveName(path: string, ext: string): string {
  const base = basename(path);
  return base.toLowerCase().endsWith(ext) ? base.slice(0, -ext.length) : base;
}

/** A file of `models_dir` the picker offers. */
export interface FoundModel {
  path: string;
  file: string;
  size: number;
}

/** One registry of `harvey.yaml`, with the questions and messages its commands share. */
export class ModelRegistry {
  constructor(readonly agent: Agent, readonly kind: RegistryKind) {}

  /** The registered models, in file order. */
  get entries(): ModelEntry[] {
    return this.agent.config.config[this.kind.key].models;
  }

  /** The name of the active model, when one is set. */
  get active(): string | undefined {
    return this.agent.config.config[this.kind.key].active;
  }

  /** The entry called `name`, or undefined. */
  find(name: string): ModelEntry | undefined {
    return this.entries.find((e) => e.name === name);
  }

  /** The entry called `name`; throws a HarveyError that lists the registered names. */
  get(name: string): ModelEntry {
    const entry = this.find(name);
    if (entry) return entry;
    const names = this.entries.map((e) => e.name).join(", ");
    throw new HarveyError(
      `No ${this.kind.noun} model named "${name}" is registered — ${
        names ? `registered: ${names}` : `none yet; ${this.kind.command} add registers one`
      }`,
    );
  }

  /** The absolute path of a stored path: `~` expanded, relative paths from the workspace. */
  resolve(path: string): string {
    return expandPath(path, { home: this.agent.env.HOME ?? "", root: this.agent.workspace.root });
  }

  /** A path as shown to the user: under the home folder as `~/…`. */
  shown(path: string): string {
    const home = this.agent.env.HOME;
    const abs = isAbsolute(path) || path.startsWith("~") ? this.resolve(path) : path;
    if (home && abs === home) return "~";
    if (home && abs.startsWith(`${home.replace(/\/+$/, "")}/`)) {
      return `~/${abs.slice(home.replace(/\/+$/, "").length + 1)}`;
    }
    return abs;
  }

  /** The entry whose file is `abs`, when one is registered. */
  findByPath(abs: string): ModelEntry | undefined {
    return this.entries.find((e) => this.resolve(e.path) === abs);
  }

  /** Checks that `path` names an existing file of this kind; returns its absolute path. */
  async checkFile(path: string): Promise<string> {
    const abs = this.resolve(path);
    const shown = this.shown(path);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(abs);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new HarveyError(
          `No file at ${shown}: expected the path of ${this.kind.article} (absolute, relative to the workspace, or ~/…)`,
        );
      }
      throw err;
    }
    if (!info.isFile) {
      throw new HarveyError(`${shown} is a folder: expected the path of ${this.kind.article}`);
    }
    await this.kind.check?.(abs, shown);
    return abs;
  }

  /** `Registered llamafile models:` with name, path, size and an arrow on the active one. */
  async list(out: Output, current?: string): Promise<void> {
    const entries = this.entries;
    if (!entries.length) {
      out.write(
        `No ${this.kind.noun} models registered — ${this.kind.command} add registers one.\n`,
      );
      return;
    }
    const active = current ?? this.active;
    const width = Math.max(...entries.map((e) => e.name.length));
    out.write(`Registered ${this.kind.noun} models:\n`);
    for (const e of entries) {
      let size: string;
      try {
        size = formatSize((await Deno.stat(this.resolve(e.path))).size);
      } catch {
        size = "missing";
      }
      const mark = e.name === active ? "→" : " ";
      out.write(`${mark} ${e.name.padEnd(width)}  ${this.shown(e.path)} (${size})\n`);
    }
  }

  /** The files of `models_dir` with this kind's extension, by name; none when it is missing. */
  async scan(): Promise<FoundModel[]> {
    const dir = this.agent.settings.modelsDir;
    const found: FoundModel[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.name.toLowerCase().endsWith(this.kind.ext)) continue;
        const path = join(dir, e.name);
        try {
          const info = await Deno.stat(path);
          if (info.isFile) found.push({ path, file: e.name, size: info.size });
        } catch {
          // a dangling link: not offered
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) {
        throw err;
      }
    }
    return found.sort((a, b) => a.file.localeCompare(b.file));
  }

  /**
   * The numbered picker over `models_dir` (registered files marked), or a path asked for when
   * the folder has none.
   */
  async choosePath(out: Output): Promise<string> {
    const dir = this.shown(this.agent.settings.modelsDir);
    const found = await this.scan();
    const Plural = this.kind.plural[0].toUpperCase() + this.kind.plural.slice(1);
    if (!found.length) {
      out.write(`No ${this.kind.plural} found in ${dir}.\n`);
      const path = (await this.agent.asker.input(`Enter a path to ${this.kind.article}`)).trim();
      if (!path) throw new HarveyError("Nothing registered: no path was entered");
      return path;
    }
    const choices = found.map((f) => {
      const known = this.findByPath(f.path);
      const mark = known ? ` (registered as ${known.name})` : "";
      return { label: `${f.file} (${formatSize(f.size)})${mark}`, value: f.path };
    });
    const picked = await this.agent.asker.pick(`${Plural} found in ${dir}:`, choices, {
      other: "enter a path",
    });
    return "value" in picked ? picked.value : picked.other.trim();
  }

  /**
   * Registers a model: the picker when `path` is omitted, the name derived from the file name
   * (asked for when models are already registered and no name is given). Returns the new
   * entry and whether it is the first one.
   */
  async register(
    out: Output,
    opts: { path?: string; name?: string } = {},
  ): Promise<{ entry: ModelEntry; first: boolean }> {
    const given = opts.path ?? await this.choosePath(out);
    const abs = await this.checkFile(given);
    const known = this.findByPath(abs);
    if (known) {
      throw new HarveyError(
        `${this.shown(given)} is already registered as ${known.name}; ` +
          `${this.kind.command} use ${known.name} switches to it`,
      );
    }
    const first = this.entries.length === 0;
    const derived = deriveName(abs, this.kind.ext);
    let name = opts.name;
    if (name === undefined) {
      name = first ? derived : (await this.agent.asker.input("Name", derived)).trim();
    }
    this.checkName(name);
    // Relative paths stay relative to the workspace; `~` and the picker's are stored absolute.
    const stored = isAbsolute(given) || given.startsWith("~") ? abs : given;
    const entry = { name, path: stored };
    await this.save([...this.entries.map(plain), entry]);
    return { entry, first };
  }

  /** Throws unless `name` is a usable name that is not taken. */
  checkName(name: string): void {
    if (!name) throw new UsageError("A model name cannot be empty");
    if (/\s/.test(name)) {
      throw new UsageError(`A model name cannot contain spaces, found "${name}"`);
    }
    const taken = this.find(name);
    if (taken) {
      throw new HarveyError(
        `A ${this.kind.noun} model named "${name}" is already registered (${
          this.shown(taken.path)
        }); choose another name or ${this.kind.command} remove ${name}`,
      );
    }
  }

  /**
   * Makes `name` the model Harvey starts with. The other registry's active model is cleared,
   * so the next start is not ambiguous.
   */
  async setActive(name: string | undefined): Promise<void> {
    const other = this.kind.key === "llamafile" ? "llamacpp" : "llamafile";
    const changes: [string[], unknown][] = [];
    if (this.active !== name) changes.push([[this.kind.key, "active"], name]);
    if (name !== undefined && this.agent.config.config[other].active !== undefined) {
      changes.push([[other, "active"], undefined]);
    }
    if (changes.length) await this.agent.config.update(changes);
  }

  /** Removes `name` from the registry (the file stays); clears it as the active model. */
  async remove(name: string, out: Output): Promise<void> {
    const entry = this.get(name);
    const changes: [string[], unknown][] = [
      [[this.kind.key, "models"], this.entries.filter((e) => e !== entry).map(plain)],
    ];
    if (this.active === name) changes.push([[this.kind.key, "active"], undefined]);
    await this.agent.config.update(changes);
    out.write(`Removed ${name} from the registry (the file ${this.shown(entry.path)} is kept).\n`);
  }

  /** Renames an entry, and the active model with it. */
  async rename(oldName: string, newName: string, out: Output): Promise<void> {
    const entry = this.get(oldName);
    if (oldName === newName) {
      out.write(`${oldName} is already called ${newName}.\n`);
      return;
    }
    this.checkName(newName);
    const changes: [string[], unknown][] = [[
      [this.kind.key, "models"],
      this.entries.map((e) => e === entry ? { name: newName, path: e.path } : plain(e)),
    ]];
    if (this.active === oldName) changes.push([[this.kind.key, "active"], newName]);
    await this.agent.config.update(changes);
    out.write(`Renamed ${oldName} to ${newName}.\n`);
  }

  async save(models: ModelEntry[]): Promise<void> {
    await this.agent.config.update([[[this.kind.key, "models"], models]]);
  }

  /** Names for tab completion. */
  names(): string[] {
    return this.entries.map((e) => e.name);
  }
}

function plain(e: ModelEntry): ModelEntry {
  return { name: e.name, path: e.path };
}

/** How a model is brought up from a command or at start-up. */
export interface ConnectOptions {
  /** Questions may be asked (a free port instead of a taken one); false: take the default. */
  ask: boolean;
  /** Said instead of `Starting NAME` when a server starts. */
  announce?: string;
  /** Ctrl-C: cancels a start in progress (the server is stopped). */
  signal?: AbortSignal;
  /** The output is a terminal: a start shows a spinner with the time and the load progress. */
  terminal?: boolean;
}

/** How a registry's models are brought up: a llamafile server, or llama-server / llama-cli. */
export interface LocalBackend {
  /**
   * Connects to `entry`: starts or adopts its server, or prepares one that starts with the
   * first message. Progress goes to `out`. The current model keeps running meanwhile.
   */
  connect(entry: ModelEntry, out: Output, opts: ConnectOptions): Promise<LLMClient>;
}

/**
 * A registry as a source of `/model` candidates: every registered model, running or not
 * (connecting starts it), and the model given on the command line for this session only.
 */
export class LocalModelSource implements ModelSource {
  readonly name: string;

  constructor(
    readonly registry: ModelRegistry,
    readonly backend: LocalBackend,
    /** The model of `--llamafile PATH` / `--gguf PATH`: used this session, never saved. */
    readonly session?: ModelEntry,
  ) {
    this.name = `registered ${registry.kind.noun} models`;
  }

  list(): Promise<ModelCandidate[]> {
    const { kind } = this.registry;
    const entries = [...(this.session ? [this.session] : []), ...this.registry.entries];
    return Promise.resolve(entries.map((entry) => ({
      label: `${entry.name} (${kind.label}${entry === this.session ? ", this session" : ""})`,
      model: entry.name,
      source: kind.label,
      connect: (opts) =>
        this.backend.connect(entry, this.registry.agent.err, { ask: true, ...opts }),
    })));
  }
}

/** The local registry sources among `sources`. */
export function localSources(sources: ModelSource[]): LocalModelSource[] {
  return sources.filter((s): s is LocalModelSource => s instanceof LocalModelSource);
}

/** The registry entry for a `--llamafile PATH` / `--gguf PATH` given on the command line. */
export function sessionEntry(path: string, ext: string): ModelEntry {
  return { name: deriveName(path, ext), path };
}

/** The local server the agent's current backend talks to, when this session knows it. */
export function currentServer(agent: Agent): RunningServer | undefined {
  const client = agent.client;
  if (client instanceof LazyServerClient) return client.server;
  if (client instanceof OpenAICompatClient) {
    return agent.supervisor.servers.find((s) => s.url === client.baseUrl && s.running);
  }
  return undefined;
}

/**
 * Makes `client` the backend in place of the current one, whose server (when Harvey owns it)
 * stops only now that the new model is ready; says both.
 */
export async function switchTo(
  agent: Agent,
  client: LLMClient,
  opts: { out: Output; name: string; note?: string },
): Promise<void> {
  const before = agent.client === client ? undefined : currentServer(agent);
  const old = agent.client?.model;
  await agent.setClient(client);
  opts.out.write(`✓ Using model: ${opts.name}${opts.note ? ` (${opts.note})` : ""}\n`);
  if (before?.owned && !before.running && old) opts.out.write(`Stopped ${old}.\n`);
}

/**
 * A failed switch keeps the model in use: `err` with "; still using NAME" on its first line,
 * when a model is in use.
 */
export function keptModel(agent: Agent, err: unknown): unknown {
  const model = agent.client?.model;
  if (!model || !(err instanceof HarveyError)) return err;
  const [first, ...rest] = err.message.split("\n");
  const kept = new HarveyError([`${first}; still using ${model}`, ...rest].join("\n"));
  kept.name = err.name;
  return kept;
}
