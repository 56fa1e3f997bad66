/**
 * `/git`: a read-only git command at the workspace root (`src/ops/git.ts`: the policy, the
 * hardening, the sandbox); the output is printed and goes into the conversation as context.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { GIT_OUTPUT_CAP, runGit } from "../ops/git.ts";
import { GIT_READ_ONLY } from "../security/git_policy.ts";
import { escapeControls } from "../util/terminal_text.ts";
import { accessPath, addContext, formatBytes } from "./files.ts";
import type { CommandHandler } from "./registry.ts";

/** `/git SUBCOMMAND [ARGS…]` */
export const gitCommand: CommandHandler = {
  subcommands: [...GIT_READ_ONLY],
  async run(agent, args, out, ctx) {
    if (!args[0]) throw new UsageError(`/git needs one of: ${GIT_READ_ONLY.join(", ")}`);
    await accessPath(agent, ".", "read");
    const { text, cut } = await runGit(agent, args, { signal: ctx.signal, label: "/git" });
    const body = text || "(no output)\n";
    const note = cut
      ? `[output cut: the first ${
        formatBytes(GIT_OUTPUT_CAP)
      } are shown; narrow it with a path or -n N]`
      : undefined;
    const shown = escapeControls(body);
    out.write(shown.endsWith("\n") ? shown : `${shown}\n`);
    if (note) out.write(`${note}\n`);
    addContext(agent, ["/git", ...args].join(" "), body, { note });
  },
};
