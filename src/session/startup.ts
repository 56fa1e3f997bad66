/**
 * The session a start of Harvey goes on with: a new one, the latest (`--continue`), or a saved
 * one (`--resume ID`; `--resume` alone asks with the picker, which only a terminal has).
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError, UsageError } from "../errors.ts";
import type { Output } from "../types.ts";
import { enterSession, pickSession, resumedLine, sessionStore } from "./current.ts";

/** Which session to go on with, from the command line. */
export interface StartupSession {
  /** `--continue`: the latest session of this workspace. */
  continue?: boolean;
  /** `--resume ID`, or `true` for `--resume` without one (the picker). */
  resume?: string | true;
  /** A person at a terminal (only they get the picker). */
  interactive: boolean;
}

/** Throws a usage error for flags that cannot go together or cannot be had here. */
export function checkSessionFlags(opts: StartupSession): void {
  if (opts.continue && opts.resume !== undefined) {
    throw new UsageError("--continue and --resume take one session; give one of them");
  }
  if (opts.resume === true && !opts.interactive) {
    throw new UsageError(
      "--resume without an ID asks with a picker, which needs a terminal; give the ID (harvey --resume ID; /session list shows them)",
    );
  }
}

/**
 * Enters the session the flags ask for, after the backend is selected (so its cache can be
 * restored); returns whether one was resumed. A `--resume ID` that names no session throws;
 * `--continue` with no session yet, and a cancelled picker, go on with a new one.
 */
export async function openStartupSession(
  agent: Agent,
  out: Output,
  opts: StartupSession,
): Promise<boolean> {
  const store = sessionStore(agent);
  let id: string | undefined;
  if (opts.continue) {
    id = (await store.latest())?.id;
    if (!id) out.write("No saved session in this workspace yet; this one is new\n");
  } else if (typeof opts.resume === "string") {
    id = await store.find(opts.resume);
  } else if (opts.resume === true) {
    try {
      id = await pickSession(agent, "Resume which session?");
    } catch (err) {
      // Cancelled, or nothing to pick: Harvey starts anyway, with a new session.
      if (!(err instanceof HarveyError)) throw err;
      out.write(`✗ ${err.message}; this session is new\n`);
    }
  }
  if (!id) return false;
  const loaded = await store.load(id);
  for (const w of loaded.warnings) out.write(`⚠ ${w}\n`);
  await enterSession(agent, loaded);
  resumedLine(loaded.state, out, agent.client?.model);
  return true;
}
