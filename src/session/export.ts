/**
 * A saved session for people: the lines of `/session list` and `/session show`, and the
 * Markdown transcript of `/session export` (every message as it was added, compaction and
 * `/clear` marked where they happened). Control characters are shown, not obeyed.
 *
 * @module
 */
import type { Message } from "../types.ts";
import { formatStats } from "../llm/stats.ts";
import { escapeControls } from "../util/terminal_text.ts";
import type { SessionState, SessionSummary } from "./state.ts";

/** `2025-03-01 14:25` in local time. */
export function shortTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${
    p(d.getMinutes())
  }`;
}

/** One line of `/session list` (and of the resume picker). */
export function summaryLine(s: SessionSummary): string {
  const name = s.name ? ` "${oneLine(s.name, 30)}"` : "";
  const turns = `${s.turns} ${s.turns === 1 ? "turn" : "turns"}`;
  const model = s.model ? ` · ${s.model}` : "";
  const first = s.first ? ` — ${oneLine(s.first, 50)}` : "";
  return `${s.id}${name} · ${shortTime(s.updated)} · ${turns}${model}${first}`;
}

/** `/session show`: what the session is, then its conversation now, briefly. */
export function showLines(state: SessionState): string[] {
  const models = [...new Set(state.turns.map((t) => t.model))];
  const lines = [
    `Session ${state.id}${state.name ? ` "${oneLine(state.name, 60)}"` : ""}`,
    `  Started:  ${shortTime(state.created)} · last ${shortTime(state.updated)}`,
    `  Turns:    ${state.turns.length}${models.length ? ` (${models.join(", ")})` : ""}`,
  ];
  if (state.header.forkedFrom) lines.push(`  Forked from ${state.header.forkedFrom}`);
  if (state.header.replayOf) {
    lines.push(
      `  Replay of ${state.header.replayOf}${
        state.header.replayModel ? ` with ${state.header.replayModel}` : ""
      }`,
    );
  }
  lines.push(`  Pinned:   ${state.pinned ? `${state.pinned.length} characters` : "none"}`);
  const shown = state.conversation.filter((m) => m.role !== "system");
  lines.push(`  Messages: ${shown.length} in the conversation now`, "");
  for (const m of shown) lines.push(...messageLines(m));
  return lines;
}

function messageLines(m: Message): string[] {
  if (m.role === "tool") {
    return [`  ← ${m.toolName ?? "tool"}: ${oneLine(m.content, 70)}`];
  }
  const who = m.role === "user" ? "you" : "model";
  const out = m.content.trim() ? [`${who}: ${oneLine(m.content, 160)}`] : [];
  for (const c of m.toolCalls ?? []) out.push(`  ● ${c.name} ${oneLine(c.arguments, 70)}`);
  return out;
}

/**
 * The whole session as Markdown: a header, then every message in the order it was added
 * (turns cut by compaction or `/clear` too, with a line where that happened), each turn's stats.
 */
export function sessionMarkdown(state: SessionState): string {
  const h = state.header;
  const parts = [
    `# Harvey session ${state.id}${state.name ? ` — ${state.name}` : ""}\n`,
    [
      `- Started: ${h.time}`,
      `- Workspace: ${h.workspace}`,
      h.forkedFrom ? `- Forked from: ${h.forkedFrom}` : "",
      h.replayOf
        ? `- Replay of: ${h.replayOf}${h.replayModel ? ` with ${h.replayModel}` : ""}`
        : "",
      `- Turns: ${state.turns.length}`,
    ].filter(Boolean).join("\n") + "\n",
  ];
  let turn = 0;
  let pinned = "";
  for (const e of state.events) {
    if (e.type === "message") {
      const m = e.message;
      if (m.role === "system") parts.push(`## System prompt\n\n${fence(m.content)}`);
      else if (m.role === "user") parts.push(`### Turn ${++turn}\n\n**User:**\n\n${m.content}\n`);
      else if (m.role === "assistant") {
        const calls = (m.toolCalls ?? []).map((c) => `- \`${c.name}\` ${fence(c.arguments)}`);
        parts.push(
          `**Model:**\n\n${m.content.trim() ? `${m.content}\n` : ""}${
            calls.length ? `\n${calls.join("\n")}` : ""
          }`,
        );
      } else parts.push(`**${m.toolName ?? "tool"} result:**\n\n${fence(m.content)}`);
    } else if (e.type === "truncate") {
      parts.push(
        `> ${
          e.reason === "clear"
            ? "The conversation was cleared here (/clear)."
            : e.reason === "summary"
            ? "The older turns were summarized here; the summary follows."
            : "The conversation was cut back here."
        }\n`,
      );
    } else if (e.type === "pinned" && e.text !== pinned) {
      pinned = e.text;
      parts.push(
        pinned ? `**Pinned context:**\n\n${fence(pinned)}` : "> The pinned context was cleared.\n",
      );
    } else if (e.type === "turn") {
      const how = e.outcome === "done" ? "" : ` (${e.outcome})`;
      parts.push(`_${e.model}${how}${e.stats ? ` · ${formatStats(e.stats)}` : ""}_\n`);
    }
  }
  return escapeControls(parts.join("\n"));
}

function fence(text: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const f = "`".repeat(longest + 1);
  return `${f}\n${text}\n${f}\n`;
}

function oneLine(text: string, max: number): string {
  const flat = escapeControls(text.replace(/\s+/g, " ").trim());
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
