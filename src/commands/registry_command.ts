/**
 * The command table shared by `/llamafile` and `/llamacpp`: list, add, use, remove and rename
 * are the registry's; start, stop, status and how a model is connected are the runtime's.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import type { ModelEntry } from "../config/schema.ts";
import type { Output } from "../types.ts";
import { type ConnectOptions, ModelRegistry, type RegistryKind } from "./model_registry.ts";
import { type CommandHandler, required, subcommand } from "./registry.ts";

const SUBCOMMANDS = ["list", "add", "use", "start", "stop", "status", "remove", "rename"];

/** What a runtime brings to its registry command. */
export interface RegistryCommandOptions {
  kind: RegistryKind;
  /** Makes `entry` the backend; `firstAdd` when it is the model just registered first. */
  use(
    agent: Agent,
    entry: ModelEntry,
    opts: ConnectOptions & { out: Output; firstAdd: boolean },
  ): Promise<void>;
  /** Starts the server of `name` (default: the active model). */
  start(
    agent: Agent,
    registry: ModelRegistry,
    opts: ConnectOptions & { out: Output; name?: string },
  ): Promise<void>;
  stop(agent: Agent, registry: ModelRegistry, out: Output): Promise<void>;
  status(agent: Agent, registry: ModelRegistry, out: Output): Promise<void> | void;
}

/** The handler of `/KIND list|add|use|start|stop|status|remove|rename` for one registry. */
export function registryCommand(opts: RegistryCommandOptions): CommandHandler {
  const { kind } = opts;
  const cmd = kind.command;
  return {
    subcommands: SUBCOMMANDS,
    // Model files of the models folder, or a path anywhere (models live outside the workspace).
    paths: [{ after: "add", kind: "models", ext: kind.ext }],
    complete(agent, args) {
      if (args.length === 0) return SUBCOMMANDS;
      if (args.length === 1 && ["use", "start", "remove", "rename"].includes(args[0])) {
        return new ModelRegistry(agent, kind).names();
      }
      return [];
    },
    async run(agent, args, out, ctx) {
      const registry = new ModelRegistry(agent, kind);
      // Ctrl-C cancels a start; a terminal shows its spinner.
      const connect = { ask: true, signal: ctx.signal, terminal: ctx.terminal, out };
      switch (subcommand(cmd, args, SUBCOMMANDS, "list")) {
        case "list":
          return await registry.list(out);
        case "add": {
          const { entry, first } = await registry.register(out, { path: args[1], name: args[2] });
          if (!first) {
            out.write(`Registered ${entry.name} — use ${cmd} use ${entry.name} to switch.\n`);
            return;
          }
          await opts.use(agent, entry, { ...connect, firstAdd: true });
          await registry.setActive(entry.name);
          out.write(
            `Saved to ${agent.config.displayPath} — Harvey will connect automatically on next start.\n`,
          );
          return;
        }
        case "use": {
          const entry = registry.get(required(args[1], `${cmd} use NAME`));
          await opts.use(agent, entry, { ...connect, firstAdd: false });
          await registry.setActive(entry.name);
          return;
        }
        case "start":
          return await opts.start(agent, registry, { ...connect, name: args[1] });
        case "stop":
          return await opts.stop(agent, registry, out);
        case "status":
          return await opts.status(agent, registry, out);
        case "remove":
          return await registry.remove(required(args[1], `${cmd} remove NAME`), out);
        case "rename":
          return await registry.rename(
            required(args[1], `${cmd} rename OLD NEW`),
            required(args[2], `${cmd} rename OLD NEW`),
            out,
          );
      }
    },
  };
}
