/**
 * The command table: name, usage, summary, subcommands, completion and handler, with
 * dispatch and tab completion. Handlers write only to the output they are given.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError, UsageError } from "../errors.ts";
import type { Output } from "../types.ts";
import { nearWords } from "../util/edit_distance.ts";
import type { PathArg } from "./path_completion.ts";
import { splitArgs } from "../util/split_args.ts";
import { lazyImport } from "../util/lazy_import.ts";

/** What a handler gets besides the agent, its arguments and the output. */
export interface CommandContext {
  /** Aborted by Ctrl-C. */
  signal?: AbortSignal;
  /** The raw text after the command name, for commands that take free text. */
  rest: string;
  /** The output is a terminal where a line can be redrawn (progress bars). */
  terminal?: boolean;
}

/** What `/help` and name completion know of a command, without loading its code. */
export interface CommandInfo {
  name: string;
  aliases?: string[];
  /** e.g. `/llamafile add [PATH] [NAME]` — one line per form. */
  usage: string[];
  summary: string;
}

/** What a command's module provides: its handler and how its arguments complete. */
export interface CommandHandler {
  /**
   * The command takes free text (notes, questions): an unpaired quote, as in "don't", is
   * then part of the text instead of an error.
   */
  freeText?: boolean;
  /** First words the command accepts, offered by tab completion. */
  subcommands?: string[];
  /** Completions for the word being typed; `args` holds the words before it. */
  complete?: (agent: Agent, args: string[]) => string[] | Promise<string[]>;
  /**
   * The words that are paths, which tab completion completes as paths (before `complete`):
   * e.g. `[{ rest: true }]` for `/read FILE…`, `[{ after: "start" }]` for `/record start FILE`.
   */
  paths?: PathArg[];
  run: (agent: Agent, args: string[], out: Output, ctx: CommandContext) => Promise<void>;
}

/**
 * One row of the command table: the command's info, and where its handler is. The handler's
 * module is loaded the first time the command runs or completes an argument, so start-up
 * loads none of them.
 */
export interface CommandEntry extends CommandInfo {
  load(): Promise<CommandHandler>;
}

/** A command with its handler at hand (registered as it is, loaded with the registry). */
export type CommandSpec = CommandInfo & CommandHandler;

/** The registered commands. */
export class CommandRegistry {
  #byName = new Map<string, CommandEntry>();
  #entries: CommandEntry[] = [];
  #handlers = new Map<CommandEntry, Promise<CommandHandler>>();

  /** Adds commands; a name or alias registered twice is a programming error. */
  register(...commands: (CommandEntry | CommandSpec)[]): void {
    for (const command of commands) {
      const entry = "load" in command
        ? command
        : { ...command, load: () => Promise.resolve(command) };
      for (const n of [entry.name, ...(entry.aliases ?? [])]) {
        if (this.#byName.has(n)) throw new Error(`Command /${n} is registered twice`);
        this.#byName.set(n, entry);
      }
      this.#entries.push(entry);
    }
  }

  /** The command called `name` (or aliased so), without the slash. */
  get(name: string): CommandInfo | undefined {
    return this.#byName.get(name.replace(/^\//, ""));
  }

  /** Every command, in registration order. */
  list(): readonly CommandInfo[] {
    return this.#entries;
  }

  /** The handler of `name` (its module loaded once), or undefined for an unknown command. */
  async handler(name: string): Promise<CommandHandler | undefined> {
    const entry = this.#byName.get(name.replace(/^\//, ""));
    if (!entry) return undefined;
    let loading = this.#handlers.get(entry);
    if (!loading) {
      loading = entry.load();
      this.#handlers.set(entry, loading);
    }
    try {
      return await loading;
    } catch (err) {
      this.#handlers.delete(entry); // a later use tries again
      const why = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
      throw new HarveyError(
        `The code of /${entry.name} could not be loaded (${why}): check Harvey's files, or reinstall it`,
      );
    }
  }

  /** Runs a `/command args…` line. Unknown commands are a usage error. */
  async dispatch(
    agent: Agent,
    line: string,
    out: Output,
    ctx: { signal?: AbortSignal; terminal?: boolean } = {},
  ): Promise<void> {
    const trimmed = line.trim();
    const m = /^\/(\S+)\s*(.*)$/s.exec(trimmed);
    if (!m) throw new UsageError(`Not a command: ${trimmed}`);
    const handler = await this.handler(m[1]);
    if (!handler) {
      const near = nearWords(m[1], this.#entries.map((s) => s.name));
      const hint = near.length ? ` — did you mean ${near.map((n) => `/${n}`).join(", ")}?` : "";
      throw new UsageError(`Unknown command /${m[1]}${hint} (type /help for the list)`);
    }
    await handler.run(agent, handler.freeText ? splitText(m[2]) : splitArgs(m[2]), out, {
      ...ctx,
      rest: m[2],
    });
  }

  /**
   * Tab completion for a whole input line: returns the candidates for the last word and the
   * word itself, in the shape `node:readline` expects. Command names come from the table; an
   * argument loads that command's handler.
   */
  async complete(agent: Agent, line: string): Promise<[string[], string]> {
    if (line.startsWith("@")) {
      if (/\s/.test(line)) return [[], line];
      const routes = agent.config.config.routes.filter((r) => r.enabled).map((r) => `@${r.name}`);
      return [withSpace(routes.filter((n) => n.startsWith(line)).sort()), line];
    }
    if (!line.startsWith("/")) return [[], line];
    const words = line.split(/\s+/);
    if (words.length === 1) {
      const names = [...this.#byName.keys()].map((n) => `/${n}`).filter((n) => n.startsWith(line));
      return [withSpace(names.sort()), line];
    }
    const spec = await this.handler(words[0]).catch(() => undefined);
    if (!spec) return [[], line];
    const current = words[words.length - 1];
    const before = words.slice(1, -1);
    const { completePath, pathArgAt } = await lazyImport<typeof import("./path_completion.ts")>(
      new URL("./path_completion.ts", import.meta.url),
    );
    const pathArg = pathArgAt(spec.paths, before);
    if (pathArg) {
      const paths = await completePath(agent, current, pathArg);
      // A single file is complete (a space follows); a folder goes on.
      return [paths.length === 1 && !paths[0].endsWith("/") ? [`${paths[0]} `] : paths, current];
    }
    let options: string[] = [];
    if (spec.complete) options = await spec.complete(agent, before);
    else if (before.length === 0) options = spec.subcommands ?? [];
    return [withSpace(options.filter((o) => o.startsWith(current))), current];
  }
}

/** Quote-aware words, or plain words when the quotes do not pair up (free text). */
function splitText(text: string): string[] {
  try {
    return splitArgs(text);
  } catch {
    return text.split(/\s+/).filter(Boolean);
  }
}

/** A single completion gets a trailing space, so the next word can be typed at once. */
function withSpace(options: string[]): string[] {
  return options.length === 1 ? [`${options[0]} `] : options;
}

/**
 * Reads the subcommand of `args` and checks it is one of `allowed`.
 *
 * @example
 * ```ts
 * const sub = subcommand("/record", ["start", "x.md"], ["start", "stop", "status"], "status");
 * ```
 */
export function subcommand(
  command: string,
  args: string[],
  allowed: string[],
  fallback?: string,
): string {
  const sub = args[0] ?? fallback;
  if (!sub) throw new UsageError(`${command} needs one of: ${allowed.join(", ")}`);
  if (!allowed.includes(sub)) {
    throw new UsageError(
      `${command} does not know "${sub}"; expected one of: ${allowed.join(", ")}`,
    );
  }
  return sub;
}

/** Throws a usage error unless `value` is present. */
export function required(value: string | undefined, usage: string): string {
  if (value === undefined || value === "") throw new UsageError(`Usage: ${usage}`);
  return value;
}

/** Why start-up selected no backend, per session. */
const noBackendReasons = new WeakMap<Agent, string>();

/** Keeps why no backend could be had, for the first line that needs one to say. */
export function noteNoBackend(agent: Agent, reason: string): void {
  noBackendReasons.set(agent, reason);
}

/** Throws when the agent has no backend, saying why when start-up knew; else returns it. */
export function needClient(agent: Agent): NonNullable<Agent["client"]> {
  if (!agent.client) {
    const reason = noBackendReasons.get(agent);
    throw new HarveyError(
      `No backend selected${
        reason ? ` (${reason})` : ""
      } — connect one with /model, /ollama start or /llamafile add`,
    );
  }
  return agent.client;
}
