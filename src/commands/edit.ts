/**
 * `/edit [TEXT]`: write a long prompt in `$VISUAL` or `$EDITOR`. The interactive REPL runs it
 * between lines, when nothing else reads the terminal (`src/repl/interactive.ts`), and puts
 * what was saved back at the prompt; Ctrl-X Ctrl-E does the same for the line being typed.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { CommandHandler } from "./registry.ts";

/** `/edit [TEXT]` — only a terminal has an editor to open; anywhere else it says so. */
export const editCommand: CommandHandler = {
  freeText: true,
  run() {
    return Promise.reject(
      new HarveyError(
        "/edit opens $VISUAL or $EDITOR on a terminal; in a script, write the prompt on one line",
      ),
    );
  },
};
