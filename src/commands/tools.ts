/**
 * `/tools`: the model's tools — which there are, whether the backend takes them and why not,
 * what they cost in tokens, and the approval policy.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { APPROVAL_POLICIES, type ApprovalPolicy } from "../agent/approval.ts";
import { HarveyError } from "../errors.ts";
import { toolSupportOf, workspaceTools } from "../tools/index.ts";
import { type CommandHandler, subcommand } from "./registry.ts";

const SUBS = ["list", "on", "off", "approve"];

/** What the tools' definitions cost for the current backend, when it can count. */
async function definitionsCost(agent: Agent, specs: unknown[]): Promise<string> {
  const client = agent.client;
  if (!client || !agent.budget) return "";
  const n = await agent.budget.text(JSON.stringify(specs), client).catch(() => undefined);
  return n === undefined ? "" : ` (${n} tokens for ${client.model})`;
}

/** `/tools [list]`, `/tools on|off`, `/tools approve ask|edits|all` */
export const toolsCommand: CommandHandler = {
  subcommands: SUBS,
  complete: (_agent, before) =>
    before.length === 0
      ? SUBS
      : before[0] === "approve" && before.length === 1
      ? [...APPROVAL_POLICIES]
      : [],
  async run(agent, args, out) {
    const sub = subcommand("/tools", args, SUBS, "list");
    const config = agent.config;
    if (sub === "on" || sub === "off") {
      await config.update([[["tools", "enabled"], sub === "on"]]);
      agent.audit?.record("tools", sub, "success");
      out.write(
        sub === "on"
          ? "Tools are on: the model may read, search, edit and run through them.\n"
          : "Tools are off: the model gets none (/tools on turns them on).\n",
      );
      return;
    }
    if (sub === "approve") {
      const policy = args[1] as ApprovalPolicy | undefined;
      if (!policy || !APPROVAL_POLICIES.includes(policy)) {
        throw new HarveyError(
          `Usage: /tools approve ask|edits|all (found ${policy ? `"${policy}"` : "nothing"})`,
        );
      }
      await config.update([[["tools", "approve"], policy]]);
      agent.audit?.record("tools", `approve ${policy}`, "success");
      out.write(`Approval: ${describePolicy(policy)}.\n`);
      return;
    }
    const settings = config.config.tools;
    const tools = await workspaceTools(agent);
    const width = Math.max(...tools.map((t) => t.spec.name.length)) + 2;
    const cost = await definitionsCost(agent, tools.map((t) => t.spec));
    out.write(`Tools${cost}:\n`);
    for (const t of tools) {
      const kind = t.kind === "read" ? "reads" : t.kind === "edit" ? "edits" : "runs";
      out.write(`  ${t.spec.name.padEnd(width)}${kind.padEnd(7)}${t.spec.description}\n`);
    }
    out.write(`State:     ${settings.enabled ? "on" : "off (/tools on)"}\n`);
    out.write(
      `Approval:  ${describePolicy(settings.approve)}${
        agent.settings.yes ? " (--yes: everything this session)" : ""
      }\n`,
    );
    out.write(`Limit:     ${settings.max_calls} calls per turn (tools.max_calls)\n`);
    const client = agent.client;
    if (!client) {
      out.write("Backend:   none — /model, /ollama start or /llamafile add\n");
      return;
    }
    const support = await toolSupportOf(client);
    out.write(
      `Backend:   ${client.name} ${
        support.native ? "takes tools" : "gets no tools"
      }: ${support.reason}\n`,
    );
  },
};

function describePolicy(policy: ApprovalPolicy): string {
  switch (policy) {
    case "ask":
      return "ask before every change and every command";
    case "edits":
      return "file changes without asking, ask before every command";
    case "all":
      return "everything without asking (safe mode and permissions still refuse what they refuse)";
  }
}
