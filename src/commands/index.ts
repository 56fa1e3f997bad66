/**
 * Every slash command Harvey has, registered in the order `/help` lists them.
 *
 * @module
 */
import { clearCommand, exitCommand, helpCommand, statusCommand } from "./core.ts";
import { editCommand } from "./edit.ts";
import { modelCommand } from "./model.ts";
import { ollamaCommand } from "./ollama.ts";
import { llamafileCommand } from "./llamafile.ts";
import { llamacppCommand } from "./llamacpp.ts";
import { recordCommand } from "./record.ts";
import { routeCommand } from "./route.ts";
import { auditCommand } from "./audit.ts";
import { permissionsCommand } from "./permissions.ts";
import { runCommandSpec } from "./run.ts";
import { safemodeCommand } from "./safemode.ts";
import { securityCommand } from "./security.ts";
import { filesCommand } from "./files.ts";
import { readCommand } from "./read.ts";
import { writeCommand } from "./write.ts";
import { contextCommand } from "./context.ts";
import { summarizeCommand } from "./summarize.ts";
import { searchCommand } from "./search.ts";
import { gitCommand } from "./git.ts";
import { applyCommand, unapplyCommand } from "./apply.ts";
import { pullCommand } from "./pull.ts";
import { kbCommand } from "./kb.ts";
import { ragCommand } from "./rag.ts";
import { toolsCommand } from "./tools.ts";
import { benchCommand } from "./bench.ts";
import { CommandRegistry } from "./registry.ts";
import { sessionCommand } from "./session.ts";

/** A registry with all of Harvey's commands. */
export function createRegistry(): CommandRegistry {
  const registry = new CommandRegistry();
  registry.register(
    helpCommand,
    statusCommand,
    clearCommand,
    editCommand,
    modelCommand,
    ollamaCommand,
    llamafileCommand,
    llamacppCommand,
    recordCommand,
    sessionCommand,
    filesCommand,
    readCommand,
    writeCommand,
    applyCommand,
    unapplyCommand,
    searchCommand,
    gitCommand,
    contextCommand,
    summarizeCommand,
    routeCommand,
    pullCommand,
    toolsCommand,
    benchCommand,
    runCommandSpec,
    safemodeCommand,
    permissionsCommand,
    auditCommand,
    securityCommand,
    kbCommand,
    ragCommand,
    exitCommand,
  );
  return registry;
}
