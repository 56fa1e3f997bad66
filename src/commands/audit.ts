/**
 * `/audit`: the events Harvey recorded — commands run, permissions refused, settings changed.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError, UsageError } from "../errors.ts";
import { formatAuditEvent } from "../security/audit.ts";
import { type CommandHandler, subcommand } from "./registry.ts";

const SUBS = ["show", "status", "clear"];

/** The audit lines shared by `/audit status` and `/security`. */
export function auditLines(agent: Agent): string[] {
  const log = agent.audit;
  if (!log) return ["Audit:     off"];
  const file = log.file ? agent.workspace.relative(log.file) : "none (memory only)";
  return [
    `Audit:     ${log.size} events in memory (it keeps the last ${log.capacity}; ${log.total} this session)`,
    `Log file:  ${file}${log.file ? `, ${log.written} lines appended this session` : ""}${
      log.lastError ? ` — last write failed: ${log.lastError}` : ""
    }`,
  ];
}

/** `/audit show [N]|status|clear` */
export const auditCommand: CommandHandler = {
  subcommands: SUBS,
  run(agent, args, out) {
    const sub = subcommand("/audit", args, SUBS, "show");
    const log = agent.audit;
    if (!log) throw new HarveyError("The audit log is off in this session");
    if (sub === "status") {
      for (const line of auditLines(agent)) out.write(`${line}\n`);
    } else if (sub === "clear") {
      const n = log.size;
      log.clear();
      log.record("audit", `clear (${n} events dropped from memory)`, "success");
      out.write(
        `Cleared ${n} events from memory; ${
          log.file ? `${agent.workspace.relative(log.file)} is kept` : "there is no log file"
        }.\n`,
      );
    } else {
      const n = args[1] === undefined ? 20 : Number(args[1]);
      if (!Number.isInteger(n) || n < 1) {
        throw new UsageError(`/audit show takes a whole number of events, found "${args[1]}"`);
      }
      const events = log.recent(n);
      if (events.length === 0) out.write("No events in memory.\n");
      for (const e of events) out.write(`${formatAuditEvent(e)}\n`);
    }
    return Promise.resolve();
  },
};
