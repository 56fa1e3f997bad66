/**
 * The interactive REPL on Harvey's own line editor (`line_editor.ts`, on raw stdin: readline
 * cannot keep a paste as one prompt, keep type-ahead or cancel a question): persistent history,
 * tab completion, Ctrl-C that stops a reply or clears the line, Ctrl-D that leaves.
 *
 * @module
 */
import { join } from "node:path";
import type { Agent } from "../agent.ts";
import { describeError } from "../errors.ts";
import { editInEditor } from "./external_editor.ts";
import { handleLine } from "./line.ts";
import { type History, LineEditor } from "./line_editor.ts";
import type { Terminal } from "./terminal.ts";
import type { TurnIO } from "./turn.ts";
import { appendHistory } from "./history.ts";

/** `/edit [TEXT]`: handled here, between lines, because the editor needs the terminal. */
const EDIT = /^\/edit(?:\s+([\s\S]*))?$/;

/** Runs the REPL until `/exit` or Ctrl-D. */
export async function runInteractive(
  agent: Agent,
  terminal: Terminal,
  io: Omit<TurnIO, "signal"> & { history: History },
): Promise<void> {
  const agentsDir = join(agent.workspace.root, "agents");
  const edit = (text: string) => editInEditor(text, { terminal, env: agent.env, err: io.err });
  let prefill: string | undefined;
  while (!agent.exitRequested) {
    const editor = new LineEditor({
      prompt: io.color ? "\x1b[1mharvey>\x1b[0m " : "harvey> ",
      write: (t) => terminal.write(t),
      size: () => terminal.size(),
      history: io.history,
      completer: (before) => agent.commands.complete(agent, before),
      editExternally: edit,
      prefill,
      color: io.color,
    });
    prefill = undefined;
    await terminal.run(editor, { typeAhead: true });
    const result = await editor.done;
    if (result.kind === "eof") break;
    if (result.kind !== "line" || !result.text.trim()) continue;
    const line = result.text;
    await appendHistory(agentsDir, line);
    const asEdit = EDIT.exec(line.trim());
    if (asEdit) {
      // The text comes back to the prompt, to be read over and sent with Enter.
      const text = await edit(asEdit[1] ?? "");
      if (text?.trim()) prefill = text;
      continue;
    }
    const controller = new AbortController();
    try {
      await terminal.whileBusy(
        () => controller.abort(),
        () => handleLine(agent, line, { ...io, signal: controller.signal }),
      );
    } catch (err) {
      io.err.write(`${io.color ? "\x1b[31m✗\x1b[0m" : "✗"} ${describeError(err)}\n`);
    }
  }
}
