/**
 * The session file: JSON Lines under `agents/sessions/ID.jsonl`, one event per line, appended
 * as the session goes. The first line is the `session` header; then `message` (a message added
 * to the conversation), `truncate` (the conversation was cut back to its first `keep` messages:
 * `/clear`, `/summarize`, compaction — the messages that follow replace what was cut),
 * `pinned` (the pinned context now), `turn` (a turn ended: what was typed, the model and
 * backend that answered, its stats) and `name` (`/session rename`). Every event has `time`.
 *
 * Parsing is done once, here: a line that is not a valid event is an error naming its line and
 * column, except a last line cut short by a crash (no newline at its end), which is left out.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import type { ChatStats, Message, ToolCall } from "../types.ts";

/** The version of the format this Harvey writes and reads. */
export const SESSION_FORMAT = 1;

/** Where the session files are, relative to the workspace. */
export const SESSIONS_DIR = "agents/sessions";

/** The first line of a session file. */
export interface SessionHeader {
  type: "session";
  /** The format's version ({@linkcode SESSION_FORMAT}). */
  version: number;
  id: string;
  time: string;
  /** The workspace the session ran in. */
  workspace: string;
  /** The session this one was copied from (`/session fork`). */
  forkedFrom?: string;
  /** The session whose turns this one asked again (`/session replay`), and with which model. */
  replayOf?: string;
  replayModel?: string;
}

/** A message added to the conversation (the system prompt is the first one). */
export interface MessageEvent {
  type: "message";
  time: string;
  message: Message;
}

/** The conversation was cut back to its first `keep` messages (then new ones follow). */
export interface TruncateEvent {
  type: "truncate";
  time: string;
  keep: number;
  /** `clear`, `summary` (compaction or `/summarize`), or `edit`. */
  reason: string;
}

/** The pinned context now (`/context`); empty when cleared. */
export interface PinnedEvent {
  type: "pinned";
  time: string;
  text: string;
}

/** A turn ended; its messages were written before it. */
export interface TurnEvent {
  type: "turn";
  time: string;
  /** What the user typed. */
  input: string;
  model: string;
  backend: string;
  outcome: "done" | "interrupted" | "failed";
  stats?: ChatStats;
}

/** The session's name (`/session rename`). */
export interface NameEvent {
  type: "name";
  time: string;
  name: string;
}

/** One line of a session file. */
export type SessionEvent =
  | SessionHeader
  | MessageEvent
  | TruncateEvent
  | PinnedEvent
  | TurnEvent
  | NameEvent;

/** What {@linkcode parseSessionText} found. */
export interface ParsedSession {
  events: SessionEvent[];
  /** Lines left out, each said in one line (a torn last line, an event of a newer Harvey). */
  warnings: string[];
  /** The text of the events kept, each line ending with a newline (what a torn file becomes). */
  complete: string;
  /** The last line had no newline: a write was cut short. */
  torn: boolean;
}

/** One event as its line, newline included. */
export function encodeEvent(event: SessionEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/**
 * Parses the text of a session file (`shown` names it in errors). Throws HarveyError for a
 * line that is not an event, naming the line and column.
 *
 * @example
 * ```ts
 * const { events } = parseSessionText('{"type":"name","time":"…","name":"x"}\n', "a.jsonl");
 * ```
 */
export function parseSessionText(text: string, shown: string): ParsedSession {
  const warnings: string[] = [];
  const events: SessionEvent[] = [];
  const torn = text.length > 0 && !text.endsWith("\n");
  const end = torn ? text.lastIndexOf("\n") + 1 : text.length;
  const lines = text.slice(0, end).split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const event = parseLine(line, `${shown} line ${i + 1}`, warnings);
    if (event) events.push(event);
  });
  let complete = text.slice(0, end);
  if (torn) {
    const tail = text.slice(end);
    const n = lines.length + 1;
    try {
      const event = parseLine(tail, `${shown} line ${n}`, warnings);
      if (event) events.push(event);
      complete = `${text}\n`;
    } catch {
      warnings.push(
        `${shown} line ${n} was cut short (Harvey stopped while writing it); it is left out`,
      );
    }
  }
  return { events, warnings, complete, torn };
}

function parseLine(line: string, where: string, warnings: string[]): SessionEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    const m = /position (\d+)/.exec(err instanceof Error ? err.message : "");
    const column = m ? `, column ${Number(m[1]) + 1}` : "";
    throw new HarveyError(
      `${where}${column}: expected a JSON object, found ${preview(line)}; fix or delete that line`,
    );
  }
  if (!isRecord(value) || typeof value.type !== "string") {
    throw new HarveyError(`${where}: expected an event with a "type", found ${preview(line)}`);
  }
  const bad = (what: string) =>
    new HarveyError(`${where}: a "${value.type}" event ${what}; fix or delete that line`);
  if (typeof value.time !== "string") throw bad('needs "time" as text');
  switch (value.type) {
    case "session": {
      if (typeof value.id !== "string" || !Number.isInteger(value.version)) {
        throw bad('needs "id" as text and "version" as a whole number');
      }
      if ((value.version as number) > SESSION_FORMAT) {
        throw new HarveyError(
          `${where}: the session was written by a newer Harvey (format ${value.version}, this one reads ${SESSION_FORMAT}); update Harvey to read it`,
        );
      }
      return {
        type: "session",
        version: value.version as number,
        id: value.id,
        time: value.time,
        workspace: typeof value.workspace === "string" ? value.workspace : "",
        ...optionalText(value, ["forkedFrom", "replayOf", "replayModel"]),
      };
    }
    case "message": {
      const message = parseMessage(value.message);
      if (!message) throw bad("needs a message with a role and text content");
      return { type: "message", time: value.time, message };
    }
    case "truncate":
      if (!Number.isInteger(value.keep) || (value.keep as number) < 0) {
        throw bad('needs "keep" as a whole number');
      }
      return {
        type: "truncate",
        time: value.time,
        keep: value.keep as number,
        reason: typeof value.reason === "string" ? value.reason : "edit",
      };
    case "pinned":
      if (typeof value.text !== "string") throw bad('needs "text"');
      return { type: "pinned", time: value.time, text: value.text };
    case "name":
      if (typeof value.name !== "string") throw bad('needs "name"');
      return { type: "name", time: value.time, name: value.name };
    case "turn": {
      const outcome = value.outcome;
      if (
        typeof value.input !== "string" || typeof value.model !== "string" ||
        typeof value.backend !== "string" ||
        (outcome !== "done" && outcome !== "interrupted" && outcome !== "failed")
      ) {
        throw bad('needs "input", "model", "backend" and "outcome"');
      }
      return {
        type: "turn",
        time: value.time,
        input: value.input,
        model: value.model,
        backend: value.backend,
        outcome,
        ...(isRecord(value.stats) ? { stats: parseStats(value.stats) } : {}),
      };
    }
    default:
      warnings.push(
        `${where}: an event of type "${value.type}" this Harvey does not know; left out`,
      );
      return undefined;
  }
}

const ROLES = new Set(["system", "user", "assistant", "tool"]);

/** A message as saved, checked field by field; undefined when it is not one. */
export function parseMessage(value: unknown): Message | undefined {
  if (!isRecord(value) || typeof value.role !== "string" || !ROLES.has(value.role)) return;
  if (typeof value.content !== "string") return;
  const message: Message = { role: value.role as Message["role"], content: value.content };
  if (value.toolCalls !== undefined) {
    if (!Array.isArray(value.toolCalls)) return;
    const calls: ToolCall[] = [];
    for (const c of value.toolCalls) {
      if (
        !isRecord(c) || typeof c.id !== "string" || typeof c.name !== "string" ||
        typeof c.arguments !== "string"
      ) return;
      calls.push({ id: c.id, name: c.name, arguments: c.arguments });
    }
    message.toolCalls = calls;
  }
  if (typeof value.toolCallId === "string") message.toolCallId = value.toolCallId;
  if (typeof value.toolName === "string") message.toolName = value.toolName;
  return message;
}

/** Only the fields a {@linkcode Message} has, in one order: what is saved and compared. */
export function plainMessage(m: Message): Message {
  const out: Message = { role: m.role, content: m.content };
  if (m.toolCalls?.length) {
    out.toolCalls = m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }));
  }
  if (m.toolCallId !== undefined) out.toolCallId = m.toolCallId;
  if (m.toolName !== undefined) out.toolName = m.toolName;
  return out;
}

function parseStats(value: Record<string, unknown>): ChatStats {
  const n = (k: string) => typeof value[k] === "number" ? value[k] as number : 0;
  return {
    promptTokens: n("promptTokens"),
    replyTokens: n("replyTokens"),
    elapsedMs: n("elapsedMs"),
    tokensPerSec: n("tokensPerSec"),
    ...(typeof value.reasoningTokens === "number"
      ? { reasoningTokens: value.reasoningTokens }
      : {}),
  };
}

function optionalText(value: Record<string, unknown>, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (typeof value[k] === "string") out[k] = value[k] as string;
  return out;
}

function preview(line: string): string {
  const flat = line.replace(/\s+/g, " ").trim();
  return JSON.stringify(flat.length > 40 ? `${flat.slice(0, 39)}…` : flat);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
