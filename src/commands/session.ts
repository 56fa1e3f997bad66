/**
 * `/session`: the saved sessions of this workspace (`agents/sessions/`): list, show, resume
 * (a picker without an ID), fork, rename, delete, export to Markdown, and replay against
 * another model.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError, UsageError } from "../errors.ts";
import {
  currentLog,
  enterSession,
  forkSession,
  pickSession,
  resumedLine,
  sessionStore,
} from "../session/current.ts";
import { sessionMarkdown, showLines, summaryLine } from "../session/export.ts";
import { replaySession } from "../session/replay.ts";
import type { SessionSummary } from "../session/state.ts";
import { forgetWarm } from "../session/warm.ts";
import type { Output } from "../types.ts";
import { accessPath, refuseKeptPath } from "./files.ts";
import { type CommandContext, type CommandHandler, subcommand } from "./registry.ts";

const SUBCOMMANDS = ["list", "show", "resume", "fork", "rename", "delete", "export", "replay"];

/** The longest name `/session rename` takes. */
const NAME_MAX = 80;

async function list(agent: Agent, out: Output): Promise<void> {
  const { sessions, broken } = await sessionStore(agent).list();
  const log = currentLog(agent);
  if (!sessions.length && !broken.length) {
    out.write("No saved sessions yet; this one is saved from its first message.\n");
    return;
  }
  out.write("Sessions, the latest first:\n");
  for (const s of sessions) out.write(`${s.id === log?.id ? "→" : " "} ${summaryLine(s)}\n`);
  for (const b of broken) out.write(`✗ ${b.id}: ${b.error}\n`);
  if (log && !sessions.some((s) => s.id === log.id)) {
    out.write(`This session: ${log.id} (nothing saved yet)\n`);
  }
}

/** The session `ref` names, or the current one. */
async function idOrCurrent(agent: Agent, ref: string | undefined): Promise<string> {
  if (ref !== undefined) return await sessionStore(agent).find(ref);
  const log = currentLog(agent);
  if (!log?.saved) {
    throw new HarveyError("This session has saved nothing yet; name a session (/session list)");
  }
  await log.flush();
  return log.id;
}

async function resume(agent: Agent, ref: string | undefined, out: Output): Promise<void> {
  const id = ref === undefined
    ? await pickSession(agent, "Resume which session?")
    : await sessionStore(agent).find(ref);
  if (id === currentLog(agent)?.id) {
    out.write(`Session ${id} is the one in use.\n`);
    return;
  }
  const loaded = await sessionStore(agent).load(id);
  for (const w of loaded.warnings) out.write(`⚠ ${w}\n`);
  await enterSession(agent, loaded);
  resumedLine(loaded.state, out, agent.client?.model);
}

async function rename(agent: Agent, args: string[], out: Output): Promise<void> {
  if (args.length < 2 || args.length > 3) {
    throw new UsageError("Usage: /session rename [ID] NAME");
  }
  const name = args.at(-1)!.trim();
  if (!name || name.length > NAME_MAX || /\p{Cc}/u.test(name)) {
    throw new UsageError(`A session name is 1 to ${NAME_MAX} characters on one line`);
  }
  const store = sessionStore(agent);
  const log = currentLog(agent);
  const id = args.length === 3 ? await store.find(args[1]) : log?.id;
  if (!id) throw new HarveyError("No session is in use; name one: /session rename ID NAME");
  const { sessions } = await store.list();
  const taken = sessions.find((s) => s.id !== id && (s.name === name || s.id === name));
  if (taken) throw new HarveyError(`"${name}" already names session ${taken.id}; choose another`);
  if (id === log?.id) await log.rename(name);
  else await store.append(id, [{ type: "name", time: new Date().toISOString(), name }]);
  out.write(`✓ Session ${id} is named "${name}"\n`);
}

async function remove(agent: Agent, ref: string | undefined, out: Output): Promise<void> {
  if (!ref) throw new UsageError("Usage: /session delete ID");
  const store = sessionStore(agent);
  const id = await store.find(ref);
  if (id === currentLog(agent)?.id) {
    throw new HarveyError(`Session ${id} is the one in use; /session resume another first`);
  }
  const { state } = await store.load(id).catch(() => ({ state: undefined }));
  const what = state ? ` (${state.turns.length} turns)` : "";
  if (!await agent.asker.confirm(`Delete session ${id}${what}?`, false)) {
    out.write("Kept.\n");
    return;
  }
  await store.remove(id);
  await forgetWarm(agent, id);
  out.write(`✓ Deleted session ${id}\n`);
}

async function exportTo(agent: Agent, args: string[], out: Output): Promise<void> {
  const [file, ref] = [args[1], args[2]];
  if (!file || args.length > 3) throw new UsageError("Usage: /session export FILE.md [ID]");
  const id = await idOrCurrent(agent, ref);
  const { state } = await sessionStore(agent).load(id);
  // Through the sandbox and the permissions, like every write; never Harvey's own files.
  const rel = await accessPath(agent, file, "write");
  refuseKeptPath(rel, "The export");
  if (
    await agent.workspace.exists(rel) &&
    !await agent.asker.confirm(`${rel} exists; replace it?`, false)
  ) {
    out.write("Not exported.\n");
    return;
  }
  const text = sessionMarkdown(state);
  await agent.workspace.writeFile(rel, text);
  out.write(`✓ Exported session ${id} (${state.turns.length} turns) to ${rel}\n`);
}

async function replay(
  agent: Agent,
  args: string[],
  out: Output,
  ctx: CommandContext,
): Promise<void> {
  const rest = args.slice(1);
  let model: string | undefined;
  const at = rest.indexOf("--model");
  if (at >= 0) {
    model = rest[at + 1];
    if (!model) throw new UsageError("--model needs a NAME: /session replay ID --model NAME");
    rest.splice(at, 2);
  }
  if (rest.length !== 1) throw new UsageError("Usage: /session replay ID [--model NAME]");
  const id = await sessionStore(agent).find(rest[0]);
  const { state } = await sessionStore(agent).load(id);
  const result = await replaySession(agent, state, {
    model,
    io: {
      out,
      err: agent.err,
      signal: ctx.signal,
      spinner: ctx.terminal ?? false,
      color: agent.settings.color,
    },
  });
  const stopped = result.turns < result.of ? ` (stopped after ${result.turns})` : "";
  out.write(
    `✓ Replayed ${result.of} ${
      result.of === 1 ? "turn" : "turns"
    } of ${id} with ${result.model}${stopped}: ` +
      `session ${result.id} (/session show ${result.id})\n`,
  );
}

/** Completion: subcommands, then session IDs and names. */
async function complete(agent: Agent, args: string[]): Promise<string[]> {
  if (args.length === 0) return SUBCOMMANDS;
  if (args.length > 1 || ["list", "export"].includes(args[0])) return [];
  const { sessions } = await sessionStore(agent).list().catch(() => ({
    sessions: [] as SessionSummary[],
  }));
  return sessions.flatMap((s) => s.name && !/\s/.test(s.name) ? [s.id, s.name] : [s.id]);
}

/** `/session list|show|resume|fork|rename|delete|export|replay` */
export const sessionCommand: CommandHandler = {
  subcommands: SUBCOMMANDS,
  complete,
  paths: [{ after: "export" }],
  async run(agent, args, out, ctx) {
    const sub = subcommand("/session", args, SUBCOMMANDS, "list");
    if (sub === "list") await list(agent, out);
    else if (sub === "show") {
      const { state } = await sessionStore(agent).load(await idOrCurrent(agent, args[1]));
      for (const line of showLines(state)) out.write(`${line}\n`);
    } else if (sub === "resume") await resume(agent, args[1], out);
    else if (sub === "fork") {
      const log = await forkSession(agent, args[1] && await sessionStore(agent).find(args[1]));
      out.write(`✓ Forked into session ${log.id}; you are in the copy now\n`);
    } else if (sub === "rename") await rename(agent, args, out);
    else if (sub === "delete") await remove(agent, args[1], out);
    else if (sub === "export") await exportTo(agent, args, out);
    else await replay(agent, args, out, ctx);
  },
};
