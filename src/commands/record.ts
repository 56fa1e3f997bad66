/**
 * `/record`: write the session to a Markdown file.
 *
 * @module
 */
import { dirname } from "node:path";
import { HarveyError } from "../errors.ts";
import { defaultSessionFile, Recorder } from "../repl/recorder.ts";
import { type CommandSpec, subcommand } from "./registry.ts";

/** `/record start [FILE]|stop|status` */
export const recordCommand: CommandSpec = {
  name: "record",
  usage: ["/record start [FILE]", "/record stop", "/record status"],
  paths: [{ after: "start" }],
  summary: "Record the session's turns to a Markdown file",
  subcommands: ["start", "stop", "status"],
  async run(agent, args, out) {
    const sub = subcommand("/record", args, ["start", "stop", "status"], "status");
    if (sub === "status") {
      out.write(
        agent.recorder
          ? `Recording to ${agent.recorder.displayPath} (${agent.recorder.turns} turns)\n`
          : "Not recording.\n",
      );
    } else if (sub === "stop") {
      if (!agent.recorder) throw new HarveyError("Not recording (start with /record start [FILE])");
      const rec = agent.recorder;
      agent.recorder = undefined;
      await rec.close();
      out.write(`Stopped recording; ${rec.turns} turns in ${rec.displayPath}\n`);
    } else {
      if (agent.recorder) {
        throw new HarveyError(
          `Already recording to ${agent.recorder.displayPath} (/record stop first)`,
        );
      }
      const file = args[1] ?? defaultSessionFile();
      const path = await agent.workspace.resolve(file);
      await agent.workspace.mkdir(dirname(path));
      agent.recorder = await Recorder.start(path, {
        displayPath: agent.workspace.relative(path),
        model: agent.client?.name ?? "none",
        workspace: agent.workspace.root,
      });
      out.write(`Recording to ${agent.recorder.displayPath}\n`);
    }
  },
};
