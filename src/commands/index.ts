/**
 * Every slash command Harvey has, registered in the order `/help` lists them.
 *
 * @module
 */
import { clearCommand, exitCommand, helpCommand, statusCommand } from "./core.ts";
import { modelCommand } from "./model.ts";
import { ollamaCommand } from "./ollama.ts";
import { recordCommand } from "./record.ts";
import { CommandRegistry } from "./registry.ts";

/** A registry with all of Harvey's commands. */
export function createRegistry(): CommandRegistry {
  const registry = new CommandRegistry();
  registry.register(
    helpCommand,
    statusCommand,
    clearCommand,
    modelCommand,
    ollamaCommand,
    recordCommand,
    exitCommand,
  );
  return registry;
}
