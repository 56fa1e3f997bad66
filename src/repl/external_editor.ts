/**
 * Editing a prompt in the user's own editor (`$VISUAL`, else `$EDITOR`, else `vi` or `nano`):
 * the text goes to a temporary file outside the workspace, the editor gets the terminal, and
 * what was saved comes back.
 *
 * @module
 */
import { describeError } from "../errors.ts";
import { childEnv } from "../security/child_env.ts";
import type { Output } from "../types.ts";
import { splitArgs } from "../util/split_args.ts";
import { which } from "../util/which.ts";
import type { Terminal } from "./terminal.ts";

/** The editor command: `$VISUAL`, `$EDITOR`, else `vi` or `nano` when found on PATH. */
export async function editorCommand(env: Record<string, string>): Promise<string[] | undefined> {
  for (const value of [env.VISUAL, env.EDITOR]) {
    if (value?.trim()) return splitArgs(value.trim());
  }
  for (const name of ["vi", "nano"]) {
    const found = await which(name, env.PATH ?? "");
    if (found) return [found];
  }
  return undefined;
}

/**
 * Opens `text` in the user's editor on `terminal` and returns what was saved (one trailing
 * newline dropped); undefined, after saying why on `err`, when there is no editor or it failed.
 */
export async function editInEditor(
  text: string,
  opts: { terminal: Terminal; env: Record<string, string>; err: Output },
): Promise<string | undefined> {
  const command = await editorCommand(opts.env);
  if (!command) {
    opts.err.write("✗ No editor found: set $VISUAL or $EDITOR (e.g. export EDITOR=nano)\n");
    return undefined;
  }
  const file = await Deno.makeTempFile({ prefix: "harvey-prompt-", suffix: ".md" });
  try {
    await Deno.writeTextFile(file, text ? `${text}\n` : "");
    let status: Deno.CommandStatus;
    try {
      status = await opts.terminal.handOver(() =>
        new Deno.Command(command[0], {
          args: [...command.slice(1), file],
          env: childEnv(opts.env),
          clearEnv: true,
          stdin: "inherit",
          stdout: "inherit",
          stderr: "inherit",
        }).spawn().status
      );
    } catch (err) {
      opts.err.write(`✗ Cannot run the editor ${command[0]}: ${describeError(err)}\n`);
      return undefined;
    }
    if (!status.success) {
      opts.err.write(
        `✗ The editor ${command[0]} exited with status ${status.code}; the line is unchanged\n`,
      );
      return undefined;
    }
    return (await Deno.readTextFile(file)).replace(/\r?\n$/, "");
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}
