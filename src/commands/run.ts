/**
 * `/run COMMAND [ARGS…]` and `!COMMAND`: run a program in the workspace without a shell
 * (`src/ops/run.ts` decides how: safe mode, sandbox, environment) and add its output to the
 * conversation.
 *
 * @module
 */
import { HarveyError, UsageError } from "../errors.ts";
import { formatMs, quoteArg, runProgram } from "../ops/run.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { addContext } from "./files.ts";
import type { CommandHandler } from "./registry.ts";

/** Bytes of a command's output that go into the conversation. */
export const RUN_CONTEXT_BYTES = 8192;

/** `/run COMMAND [ARGS…]` */
export const runCommandSpec: CommandHandler = {
  complete: (agent, before) =>
    before.length === 0 && agent.config.config.safe_mode
      ? agent.config.config.allowed_commands
      : [],
  async run(agent, args, out, ctx) {
    if (args.length === 0) throw new UsageError("Usage: /run COMMAND [ARGS…] (or !COMMAND)");
    const config = agent.config.config;
    const print = terminalWriter((text) => out.write(text));
    const result = await runProgram(agent, args, {
      source: "user",
      signal: ctx.signal,
      onOutput: print.write,
      captureBytes: RUN_CONTEXT_BYTES,
    });
    print.end();

    const cutNote = result.truncated
      ? `[output cut at ${
        RUN_CONTEXT_BYTES / 1024
      } KB for the conversation; ${result.totalBytes} bytes in all]`
      : "";
    addContext(agent, `/run ${ctx.rest.trim() || args.map(quoteArg).join(" ")}`, result.captured, {
      note: [cutNote, `[${result.ending}]`].filter(Boolean).join("\n"),
    });
    if (cutNote) out.write(`${cutNote}\n`);
    const ok = result.code === 0 && !result.timedOut && !result.interrupted;
    if (ok) out.write(`[${result.ending}]\n`);
    if (result.timedOut) {
      throw new HarveyError(
        `${args[0]} ran longer than run_timeout (${
          formatMs(config.run_timeout)
        }) and was killed with its process group; raise run_timeout in agents/harvey.yaml if it needs longer`,
      );
    }
    if (result.interrupted) throw new HarveyError(`Interrupted: ${args[0]} was stopped`);
    if (result.code !== 0) throw new HarveyError(`${args[0]} ${result.ending}`);
  },
};

/**
 * Writes command output with its control characters made visible; a CR at the end of a chunk
 * waits for the next one, so a CR LF split between two chunks stays a line end. `end()`
 * writes what is left and ends the last line.
 */
function terminalWriter(write: (text: string) => void): {
  write: (text: string) => void;
  end: () => void;
} {
  let held = "";
  let last = "\n";
  return {
    write(text) {
      const all = held + text;
      held = all.endsWith("\r") ? "\r" : "";
      const now = held ? all.slice(0, -1) : all;
      if (now) {
        write(escapeControls(now));
        last = now;
      }
    },
    end() {
      if (held) {
        write(escapeControls(held));
        last = held;
      }
      if (!last.endsWith("\n")) write("\n");
    },
  };
}
