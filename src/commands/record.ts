/**
 * `/record`: write the session to a Markdown file.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import { defaultSessionFile, Recorder } from "../repl/recorder.ts";
import { secretRedactor } from "../security/redact.ts";
import { accessPath, refuseKeptPath } from "./files.ts";
import { type CommandHandler, subcommand } from "./registry.ts";

const turns = (n: number) => `${n} ${n === 1 ? "turn" : "turns"}`;

/** `/record start [FILE]|stop|status` */
export const recordCommand: CommandHandler = {
  paths: [{ after: "start" }],
  subcommands: ["start", "stop", "status"],
  async run(agent, args, out) {
    const sub = subcommand("/record", args, ["start", "stop", "status"], "status");
    if (sub === "status") {
      out.write(
        agent.recorder
          ? `Recording to ${agent.recorder.displayPath} (${turns(agent.recorder.turns)})\n`
          : "Not recording.\n",
      );
    } else if (sub === "stop") {
      if (!agent.recorder) throw new HarveyError("Not recording (start with /record start [FILE])");
      const rec = agent.recorder;
      agent.recorder = undefined;
      await rec.close();
      out.write(`Stopped recording; ${turns(rec.turns)} in ${rec.displayPath}\n`);
    } else {
      if (agent.recorder) {
        throw new HarveyError(
          `Already recording to ${agent.recorder.displayPath} (/record stop first)`,
        );
      }
      if (args.length > 2) throw new HarveyError("Usage: /record start [FILE] (one file)");
      // Through the sandbox and the permissions, like every write; never Harvey's own files.
      const rel = await accessPath(agent, args[1] ?? defaultSessionFile(), "write");
      refuseKeptPath(rel, "The recording");
      const file = await agent.workspace.openAppend(rel);
      agent.recorder = await Recorder.start(await agent.workspace.resolve(rel), file, {
        displayPath: rel,
        model: agent.client?.name ?? "none",
        workspace: agent.workspace.root,
        redact: secretRedactor(agent.env),
      });
      out.write(`Recording to ${agent.recorder.displayPath}\n`);
    }
  },
};
