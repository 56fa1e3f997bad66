/**
 * `/session replay ID [--model NAME]`: the user turns of a saved session asked again, in order,
 * against another model (or the current one), from the session's own system prompt, with its
 * pins and `/clear`s where they were; the result is saved as a new session (`replayOf` in its
 * header), for comparing models side by side. Tools run again, with the usual approvals. The
 * session the user was in is put back as it was afterwards.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { needClient } from "../commands/registry.ts";
import { describeError, HarveyError } from "../errors.ts";
import { discoverModels, findCandidate } from "../llm/catalog.ts";
import { runPrompt, type TurnIO } from "../repl/turn.ts";
import { secretRedactor } from "../security/redact.ts";
import type { LLMClient } from "../types.ts";
import { conversationOf, SessionLog } from "./log.ts";
import { newSessionId } from "./store.ts";
import type { SessionState } from "./state.ts";

/** How long the model sources are asked for `--model NAME`. */
const PROBE_MS = 1500;

/** What a replay did. */
export interface ReplayResult {
  id: string;
  model: string;
  /** Turns asked again (all of them unless one failed or Ctrl-C stopped it). */
  turns: number;
  of: number;
}

/**
 * Asks the turns of `state` again against `opts.model` (a model any source offers; the current
 * backend when omitted), saving them as a new session; the current conversation and session
 * are put back afterwards. A turn that fails ends the replay with its error (what was asked
 * before is saved).
 */
export async function replaySession(
  agent: Agent,
  state: SessionState,
  opts: { model?: string; io: TurnIO },
): Promise<ReplayResult> {
  const { io } = opts;
  if (!state.turns.length) throw new HarveyError(`Session ${state.id} has no turns to replay`);
  const client = opts.model ? await connectModel(agent, opts.model, io.signal) : needClient(agent);
  const owned = client !== agent.client;
  const observer = agent.observer;
  const kept = conversationOf(agent);
  const back = {
    systemPrompt: agent.systemPrompt,
    pinned: agent.pinned,
    messages: kept[0]?.role === "system" ? kept.slice(1) : kept,
  };
  await (observer instanceof SessionLog ? observer.flush() : Promise.resolve());
  const log = new SessionLog(agent, { redact: secretRedactor(agent.env) }, {
    id: newSessionId(),
    header: { replayOf: state.id, replayModel: client.model },
  });
  // The system prompt the session began with.
  const first = state.events.find((e) => e.type === "message" && e.message.role === "system");
  let turns = 0;
  let failed: unknown;
  try {
    agent.observer = log;
    agent.restore({
      systemPrompt: first?.type === "message" ? first.message.content : agent.systemPrompt,
      pinned: "",
      messages: [],
    });
    for (const e of state.events) {
      if (io.signal?.aborted) break;
      if (e.type === "pinned") agent.setPinned(e.text);
      else if (e.type === "truncate" && e.reason === "clear") agent.clearHistory();
      else if (e.type === "turn") {
        const label = `[replay ${turns + 1}/${state.turns.length} · ${client.model}]`;
        await runPrompt(agent, e.input, io, { client, label });
        turns++;
      }
    }
  } catch (err) {
    failed = err;
  } finally {
    await log.close();
    agent.observer = undefined;
    agent.restore(back);
    agent.observer = observer;
    if (owned) await client.close().catch(() => {});
  }
  if (failed !== undefined) {
    throw new HarveyError(
      `${describeError(failed)} — the replay stopped after ${turns} of ${state.turns.length} turns${
        log.saved ? `; what it did is saved as session ${log.id}` : ""
      }`,
    );
  }
  return { id: log.id, model: client.model, turns, of: state.turns.length };
}

/** A client for the model `name` of any source, without making it the session's backend. */
async function connectModel(agent: Agent, name: string, signal?: AbortSignal): Promise<LLMClient> {
  if (agent.client?.model === name) return agent.client;
  const { candidates } = await discoverModels(agent.sources, { timeoutMs: PROBE_MS });
  const found = findCandidate(candidates, name);
  if (!found) {
    const known = candidates.map((c) => c.model).join(", ") || "none";
    throw new HarveyError(`No model named "${name}" to replay with — available: ${known}`);
  }
  return await found.connect({ signal });
}
