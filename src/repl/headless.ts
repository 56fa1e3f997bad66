/**
 * Headless mode: run a script of lines (a file, or stdin that is not a terminal). Each line
 * is a command, `!command`, `@route prompt` or a prompt; a question reads its answer from the
 * next line. Exit status: 0 when every line succeeded, 1 at the first failure, 2 for a usage
 * error.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { describeError, UsageError } from "../errors.ts";
import { handleLine } from "./line.ts";
import type { TurnIO } from "./turn.ts";

/** Lines to run, read one at a time so questions can take the next one as their answer. */
export interface LineSource {
  next(): Promise<string | undefined>;
}

/** A source over a whole text (a script file). */
export function linesFromText(text: string): LineSource {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  let i = 0;
  return { next: () => Promise.resolve(i < lines.length ? lines[i++] : undefined) };
}

/** A source over a stream (stdin), read as lines arrive. */
export function linesFromStream(stream: ReadableStream<Uint8Array>): LineSource {
  const it = rawLines(stream);
  return {
    async next() {
      const r = await it.next();
      return r.done ? undefined : r.value;
    },
  };
}

async function* rawLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer) yield buffer;
}

/** True for lines a script skips: blank, or starting with `#`. */
export function isSkipped(line: string): boolean {
  const t = line.trim();
  return t === "" || t.startsWith("#");
}

/** Runs every line of `source`; returns the exit status. */
export async function runScript(agent: Agent, source: LineSource, io: TurnIO): Promise<number> {
  let n = 0;
  for (let line = await source.next(); line !== undefined; line = await source.next()) {
    n++;
    if (isSkipped(line)) continue;
    try {
      await handleLine(agent, line, io);
    } catch (err) {
      io.err.write(`✗ line ${n}: ${describeError(err)}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    if (agent.exitRequested) break;
  }
  return 0;
}
