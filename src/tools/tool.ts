/**
 * What a tool is: the definition the model sees, and the code that runs a call. Tools are the
 * model's face of the same operations the user reaches through slash commands (`src/ops/`,
 * `src/commands/files.ts`), so every path check, permission, safe-mode rule and audit applies.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import type { FileChange } from "../ops/changes.ts";
import type { ToolSpec } from "../types.ts";

/** What a tool does to the workspace: only reads, changes files, or runs a program. */
export type ToolKind = "read" | "edit" | "run";

/** What the user is asked to approve. */
export type ApprovalRequest =
  | { kind: "edit"; tool: string; change: FileChange }
  | { kind: "run"; tool: string; command: string };

/** The user's answer for one call: run it, decline it, or decline it and end the turn. */
export type Approval = "yes" | "no" | "quit";

/** A tool's arguments after {@linkcode parseToolArguments}. */
export type ToolArgs = Record<string, string | number | boolean>;

/** What a call gets besides the agent and its arguments. */
export interface ToolContext {
  /** Aborted by Ctrl-C: a running command's process group is killed. */
  signal?: AbortSignal;
  /** Asks (or, by the policy, does not ask) the user to approve a change or a command. */
  approve(request: ApprovalRequest): Promise<Approval>;
  /** Writes files as one undo entry for the whole turn. */
  write(changes: FileChange[]): Promise<void>;
  /** The most characters the result may have; a tool cuts its own output to fit, saying how to get the rest. */
  maxChars: number;
  /** A running command's output as it arrives (the REPL shows it folded). */
  onOutput?: (text: string) => void;
}

/** How a call ended. */
export interface ToolOutcome {
  /** What goes back to the model. */
  content: string;
  /** The call's result in a few words for the REPL's line: `120 lines`, `exit 0, 43 lines`. */
  summary: string;
  /** The call failed or was refused; `content` says why. */
  error?: boolean;
  /** The user declined it (`quit`: and ended the turn). */
  declined?: "no" | "quit";
  /** Ctrl-C stopped it. */
  interrupted?: boolean;
  /** It was not run (the turn's limit, a quit, a reply cut short). */
  notRun?: boolean;
}

/** One tool. */
export interface Tool {
  /** The definition the model is given. */
  readonly spec: ToolSpec;
  /** A shorter description, for a window under 8k tokens (small-context mode). */
  readonly brief?: string;
  readonly kind: ToolKind;
  /** The call's subject in one short line for the REPL: `src/a.ts`, `deno test`. */
  subject(args: ToolArgs): string;
  /** Runs one call; a failure the model can act on is an outcome with `error`, not a throw. */
  run(agent: Agent, args: ToolArgs, ctx: ToolContext): Promise<ToolOutcome>;
}

/** The outcome of a call that could not run: `content` tells the model why. */
export function failed(content: string, summary = "error"): ToolOutcome {
  return { content, summary, error: true };
}
