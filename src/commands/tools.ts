/**
 * `/tools`: the model's tools — which are offered to the current model and how (native, the
 * text protocol, none), why, what they cost in tokens, the approval policy; `/tools mode`
 * chooses the mode per model.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { APPROVAL_POLICIES, type ApprovalPolicy } from "../agent/approval.ts";
import { HarveyError } from "../errors.ts";
import { offeredTools, type ToolOffer, toolSupportOf, workspaceTools } from "../tools/index.ts";
import { TOOL_MODES, type ToolModeSetting } from "../tools/mode.ts";
import type { Tool } from "../tools/tool.ts";
import type { LLMClient } from "../types.ts";
import { type CommandHandler, subcommand } from "./registry.ts";

const SUBS = ["list", "on", "off", "approve", "mode"];

/** What the offered tools cost for `client`: definitions, or the text protocol's section. */
async function offerCost(agent: Agent, client: LLMClient, offer: ToolOffer): Promise<string> {
  if (!agent.budget || !offer.tools.length) return "";
  const text = offer.mode === "text"
    ? offer.section ?? ""
    : JSON.stringify(offer.tools.map((t) => t.spec));
  const n = await agent.budget.text(text, client).catch(() => undefined);
  if (n === undefined) return "";
  return offer.mode === "text"
    ? `${n} tokens of the system prompt${offer.grammar ? "; calls constrained by a grammar" : ""}`
    : `${n} tokens of definitions with every request`;
}

/** What a mode means, in a few words. */
function describeMode(mode: string, grammar: boolean): string {
  switch (mode) {
    case "native":
      return "the backend's own tool calling";
    case "text":
      return `the tools stated in the system prompt, calls read from the reply${
        grammar ? " (constrained by a grammar)" : ""
      }`;
    default:
      return "no tools";
  }
}

/** `/tools [list]`, `/tools on|off`, `/tools approve ask|edits|all`, `/tools mode MODE` */
export const toolsCommand: CommandHandler = {
  subcommands: SUBS,
  complete: (_agent, before) =>
    before.length === 0
      ? SUBS
      : before[0] === "approve" && before.length === 1
      ? [...APPROVAL_POLICIES]
      : before[0] === "mode" && before.length === 1
      ? [...TOOL_MODES]
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
    if (sub === "mode") {
      await setMode(agent, args[1], out);
      return;
    }
    await list(agent, out);
  },
};

/** `/tools mode MODE`: remembered for the current model, by its name. */
async function setMode(agent: Agent, value: string | undefined, out: { write(t: string): void }) {
  const mode = value as ToolModeSetting | undefined;
  if (!mode || !TOOL_MODES.includes(mode)) {
    throw new HarveyError(
      `Usage: /tools mode native|text|off|auto (found ${mode ? `"${mode}"` : "nothing"})`,
    );
  }
  const client = agent.client;
  if (!client) {
    throw new HarveyError(
      "No model in use: the mode is set per model — /model picks one, then /tools mode " + mode,
    );
  }
  await agent.config.update([[
    ["tools", "modes", client.model],
    mode === "auto" ? undefined : mode,
  ]]);
  agent.audit?.record("tools", `mode ${mode} for ${client.model}`, "success");
  const offer = await offeredTools(agent, client);
  const now = mode === "auto" ? ` (now ${offer.mode}: ${offer.why.replace(/^auto: /, "")})` : "";
  out.write(
    `Tool mode for ${client.model}: ${mode}${now} — ${
      describeMode(offer.mode, Boolean(offer.grammar))
    }.\n`,
  );
}

/** `/tools list`: what the current model is offered, and the settings. */
async function list(agent: Agent, out: { write(t: string): void }) {
  const settings = agent.config.config.tools;
  const client = agent.client;
  const offer = client ? await offeredTools(agent, client) : undefined;
  const shown: Tool[] = offer?.tools.length ? offer.tools : await workspaceTools(agent);
  const width = Math.max(...shown.map((t) => t.spec.name.length)) + 2;
  const heading = !client
    ? "Tools (no model in use):"
    : offer?.tools.length
    ? `Tools offered to ${client.model}${
      offer.small
        ? ` (small-context set: ${offer.tools.length} of ${
          (await workspaceTools(agent)).length
        }, brief, for its ${offer.window}-token window)`
        : ""
    }:`
    : `Tools (none offered to ${client.model}):`;
  out.write(`${heading}\n`);
  for (const t of shown) {
    const kind = t.kind === "read" ? "reads" : t.kind === "edit" ? "edits" : "runs";
    out.write(`  ${t.spec.name.padEnd(width)}${kind.padEnd(7)}${t.spec.description}\n`);
  }
  if (client && offer) {
    out.write(
      `Mode:      ${offer.mode} — ${
        describeMode(offer.mode, Boolean(offer.grammar))
      }; ${offer.why}` +
        ` (/tools mode native|text|off|auto)\n`,
    );
    const cost = await offerCost(agent, client, offer);
    if (cost) out.write(`Cost:      ${cost}\n`);
  }
  out.write(`State:     ${settings.enabled ? "on" : "off (/tools on)"}\n`);
  out.write(
    `Approval:  ${describePolicy(settings.approve)}${
      agent.settings.yes ? " (--yes: everything this session)" : ""
    }\n`,
  );
  out.write(`Limit:     ${settings.max_calls} calls per turn (tools.max_calls)\n`);
  if (!client) {
    out.write("Backend:   none — /model, /ollama start or /llamafile add\n");
    return;
  }
  const support = await toolSupportOf(client);
  out.write(
    `Backend:   ${client.name} ${
      support.native ? "takes tools natively" : "takes no native tools"
    }: ${support.reason}\n`,
  );
}

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
