/**
 * The agent's current session: a new one for every start of Harvey, and switching to a saved
 * one (`--continue`, `--resume`, `/session resume|fork`). Leaving a session — a switch, or the
 * end of Harvey — writes what is left and saves the llama-server's cache for it
 * (`src/session/warm.ts`); entering a saved one puts its conversation back and restores that
 * cache before the next request when it still belongs to it.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { secretRedactor } from "../security/redact.ts";
import type { Output } from "../types.ts";
import { summaryLine } from "./export.ts";
import type { SessionEvent } from "./format.ts";
import { SessionLog, type SessionLogInit } from "./log.ts";
import type { SessionState } from "./state.ts";
import { type LoadedSession, newSessionId, SessionStore } from "./store.ts";
import { restoreWarm, saveWarm } from "./warm.ts";

/** Agents whose end already leaves their session. */
const installed = new WeakSet<Agent>();

/** The agent's session log, when it keeps one. */
export function currentLog(agent: Agent): SessionLog | undefined {
  return agent.observer instanceof SessionLog ? agent.observer : undefined;
}

/** The session files of the agent's workspace. */
export function sessionStore(agent: Agent): SessionStore {
  return new SessionStore(agent.workspace);
}

/**
 * Gives the agent a new session, saved from its first message on; at the end of Harvey it is
 * left as a switch would leave it.
 */
export function startSession(agent: Agent, init: Partial<SessionLogInit> = {}): SessionLog {
  const log = new SessionLog(agent, { redact: secretRedactor(agent.env) }, {
    id: init.id ?? newSessionId(),
    ...init,
  });
  agent.observer = log;
  if (!installed.has(agent)) {
    installed.add(agent);
    agent.beforeClose(() => leaveSession(agent));
  }
  return log;
}

/**
 * Leaves the current session: what is left is written, the server's cache is saved for it,
 * and its file is closed. The agent keeps no session until one is started or entered.
 */
export async function leaveSession(agent: Agent): Promise<void> {
  const log = currentLog(agent);
  if (!log) return;
  await log.flush();
  if (log.saved) await saveWarm(agent, log.id).catch(() => {});
  await log.close();
  if (agent.observer === log) agent.observer = undefined;
}

/**
 * Makes the saved session `loaded` the current one: the current session is left, the saved
 * conversation (its system prompt, pinned context and messages) put back, and the
 * llama-server's cache of it restored with the next request when it belongs to it. The next
 * request is fitted into the window like any other (compacted when it does not fit).
 */
export async function enterSession(agent: Agent, loaded: LoadedSession): Promise<SessionLog> {
  const { state } = loaded;
  await leaveSession(agent);
  const log = startSession(agent, {
    id: state.id,
    existing: { conversation: state.conversation, pinned: state.pinned, repair: loaded.repair },
  });
  restoreState(agent, state);
  restoreWarm(agent, state.id);
  return log;
}

/**
 * Copies session `sourceId` (the current one when omitted) to a new session and makes the copy
 * current; the source stays as it was. Returns the copy's log.
 */
export async function forkSession(agent: Agent, sourceId?: string): Promise<SessionLog> {
  const current = currentLog(agent);
  await current?.flush();
  const id = sourceId ?? current?.id;
  if (!id || (id === current?.id && !current.saved)) {
    throw new HarveyError("Nothing to fork: this session has saved nothing yet");
  }
  const { state } = await sessionStore(agent).load(id);
  await leaveSession(agent);
  const events: SessionEvent[] = state.events.filter((e) =>
    e.type !== "session" && e.type !== "name"
  );
  const log = startSession(agent, {
    header: { forkedFrom: id },
    seed: { events, conversation: state.conversation, pinned: state.pinned },
  });
  await log.create();
  restoreState(agent, state);
  // The copy goes on from the source's cache: the server's, or the one saved for it.
  if (id !== current?.id) restoreWarm(agent, id);
  return log;
}

/** Puts a folded session's conversation back into the agent. */
function restoreState(agent: Agent, state: SessionState): void {
  const [system, ...messages] = state.conversation;
  agent.restore({
    systemPrompt: system?.role === "system" ? system.content : agent.systemPrompt,
    pinned: state.pinned,
    messages: system?.role === "system" ? messages : state.conversation,
  });
}

/**
 * Asks which saved session to use (the current one is not offered); throws HarveyError when
 * there is none.
 */
export async function pickSession(agent: Agent, question: string): Promise<string> {
  const current = currentLog(agent)?.id;
  const { sessions } = await sessionStore(agent).list();
  const others = sessions.filter((s) => s.id !== current);
  if (!others.length) throw new HarveyError("No saved session in this workspace yet");
  const picked = await agent.asker.pick(
    question,
    others.map((s) => ({ label: summaryLine(s), value: s.id })),
  );
  if (!("value" in picked)) throw new HarveyError("Pick a session from the list");
  return picked.value;
}

/** Says what was resumed: `✓ Resumed session ID (3 turns, last with qwen)`. */
export function resumedLine(state: SessionState, out: Output, model?: string): void {
  const n = state.turns.length;
  const last = state.turns.at(-1)?.model;
  const name = state.name ? ` "${state.name}"` : "";
  const other = last && model && last !== model ? `; it was last with ${last}` : "";
  out.write(
    `✓ Resumed session ${state.id}${name} (${n} ${n === 1 ? "turn" : "turns"}, ${
      state.conversation.filter((m) => m.role !== "system").length
    } messages${other})\n`,
  );
}
