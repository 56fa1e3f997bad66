/**
 * A session as its events leave it: the conversation (the system prompt first), the pinned
 * context, the turns, the name — what a resume puts back and what `/session list` shows.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { Message } from "../types.ts";
import type { SessionEvent, SessionHeader, TurnEvent } from "./format.ts";

/** One session, folded from its events. */
export interface SessionState {
  id: string;
  header: SessionHeader;
  name?: string;
  /** The conversation now: the system prompt, then every message after the pinned context. */
  conversation: Message[];
  pinned: string;
  /** Every turn, in order (those cut by `/clear` or compaction too). */
  turns: TurnEvent[];
  /** Every event, in order (for `/session export` and `/session replay`). */
  events: SessionEvent[];
  created: string;
  /** The time of the last turn, message or cut (the header's when there is none). */
  updated: string;
}

/**
 * Folds the events of a session file (`shown` names it in errors). The first event must be the
 * `session` header; a `truncate` that keeps more messages than there are is an error.
 */
export function foldSession(events: SessionEvent[], shown: string): SessionState {
  const header = events[0];
  if (header?.type !== "session") {
    throw new HarveyError(
      `${shown} does not start with a "session" line; it is not a Harvey session file`,
    );
  }
  const state: SessionState = {
    id: header.id,
    header,
    conversation: [],
    pinned: "",
    turns: [],
    events,
    created: header.time,
    updated: header.time,
  };
  for (const [i, e] of events.entries()) {
    switch (e.type) {
      case "session":
        if (i > 0) {
          throw new HarveyError(`${shown}: a second "session" line (event ${i + 1}); delete it`);
        }
        break;
      case "message":
        state.conversation.push(e.message);
        state.updated = e.time;
        break;
      case "truncate":
        if (e.keep > state.conversation.length) {
          throw new HarveyError(
            `${shown}: event ${
              i + 1
            } keeps ${e.keep} messages of ${state.conversation.length}; the file was edited`,
          );
        }
        state.conversation.length = e.keep;
        state.updated = e.time;
        break;
      case "pinned":
        state.pinned = e.text;
        break;
      case "turn":
        state.turns.push(e);
        state.updated = e.time;
        break;
      case "name":
        state.name = e.name || undefined;
        break;
    }
  }
  return state;
}

/** What `/session list` shows of a session. */
export interface SessionSummary {
  id: string;
  name?: string;
  created: string;
  updated: string;
  turns: number;
  /** The model of the last turn. */
  model?: string;
  /** The first thing typed, for recognizing it. */
  first?: string;
}

/** The summary of a folded session. */
export function summarize(state: SessionState): SessionSummary {
  return {
    id: state.id,
    name: state.name,
    created: state.created,
    updated: state.updated,
    turns: state.turns.length,
    model: state.turns.at(-1)?.model,
    first: state.turns[0]?.input,
  };
}
