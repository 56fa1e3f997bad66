/**
 * `/safemode`: turn the command allowlist of `/run` and `!` on or off, and edit it.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { DEFAULT_ALLOWED_COMMANDS } from "../config/schema.ts";
import { HarveyError, UsageError } from "../errors.ts";
import { commandName } from "../security/safe_mode.ts";
import type { Output } from "../types.ts";
import { type CommandHandler, subcommand } from "./registry.ts";

const SUBS = ["status", "on", "off", "allow", "deny", "reset"];

/** The safe mode lines shared by `/safemode status` and `/security`. */
export function safeModeLines(agent: Agent): string[] {
  const c = agent.config.config;
  return [
    `Safe mode: ${
      c.safe_mode
        ? "on — /run and ! run only allowed commands, held to reading, in the OS sandbox"
        : "off — /run and ! run what you type, outside the sandbox (the model's commands stay in it)"
    }`,
    `Allowed:   ${c.allowed_commands.length ? c.allowed_commands.join(" ") : "none"}`,
  ];
}

/** `/safemode on|off|status|allow CMD…|deny CMD…|reset` */
export const safemodeCommand: CommandHandler = {
  subcommands: SUBS,
  complete: (agent, before) =>
    before[0] === "deny" ? agent.config.config.allowed_commands : before.length ? [] : SUBS,
  async run(agent, args, out) {
    const sub = subcommand("/safemode", args, SUBS, "status");
    const config = agent.config;
    if (sub === "status") {
      for (const line of safeModeLines(agent)) out.write(`${line}\n`);
      return;
    }
    if (sub === "on") {
      await config.update([[["safe_mode"], true]]);
      agent.audit?.record("safemode", "on", "success");
      out.write("Safe mode is on (saved to agents/harvey.yaml).\n");
      return;
    }
    if (sub === "off") {
      if (!config.config.safe_mode) {
        out.write("Safe mode is already off.\n");
        return;
      }
      const yes = await agent.asker.confirm(
        "Turn safe mode off? /run and ! will then run any program, with your rights",
        false,
      );
      if (!yes) {
        agent.audit?.record("safemode", "off (declined at the prompt)", "denied");
        out.write("Safe mode stays on.\n");
        return;
      }
      await config.update([[["safe_mode"], false]]);
      agent.audit?.record("safemode", "off", "success");
      out.write("Safe mode is off (saved to agents/harvey.yaml); /safemode on turns it back on.\n");
      return;
    }
    if (sub === "reset") {
      await config.update([[["safe_mode"], undefined], [["allowed_commands"], undefined]]);
      agent.audit?.record(
        "safemode",
        `reset: on, allowed ${DEFAULT_ALLOWED_COMMANDS.join(" ")}`,
        "success",
      );
      out.write("Safe mode is on with the default allowlist (saved to agents/harvey.yaml).\n");
      for (const line of safeModeLines(agent)) out.write(`${line}\n`);
      return;
    }
    await editAllowlist(agent, sub as "allow" | "deny", args.slice(1), out);
  },
};

async function editAllowlist(
  agent: Agent,
  sub: "allow" | "deny",
  names: string[],
  out: Output,
): Promise<void> {
  if (names.length === 0) throw new UsageError(`Usage: /safemode ${sub} CMD…`);
  for (const n of names) {
    if (n !== commandName(n) || !/^[\w.+-]+$/.test(n)) {
      throw new UsageError(
        `"${n}" is not a program name; give the bare name the command is typed with (such as git)`,
      );
    }
  }
  const current = agent.config.config.allowed_commands;
  let next: string[];
  if (sub === "allow") {
    next = [...current, ...names.filter((n) => !current.includes(n))];
  } else {
    const missing = names.filter((n) => !current.includes(n));
    if (missing.length) {
      throw new HarveyError(
        `Not on the allowlist: ${missing.join(", ")} (allowed: ${current.join(" ") || "none"})`,
      );
    }
    next = current.filter((n) => !names.includes(n));
  }
  await agent.config.update([[["allowed_commands"], next]]);
  agent.audit?.record("safemode", `${sub} ${names.join(" ")}`, "success");
  out.write(
    `${sub === "allow" ? "Allowed" : "Removed"}: ${
      names.join(" ")
    } (saved to agents/harvey.yaml)\n`,
  );
  out.write(`Allowed:   ${next.length ? next.join(" ") : "none"}\n`);
  if (!agent.config.config.safe_mode) {
    out.write("Safe mode is off: the allowlist applies once it is on.\n");
  }
}
