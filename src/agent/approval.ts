/**
 * Approving what the model does: every change shows its diff and every command is shown before
 * the user answers `[y]es / [n]o / [a]ll this turn / [q]uit turn` through the one `Asker` (so a
 * headless script answers on its next line). `--yes` or the policy (`/tools approve
 * ask|edits|all`) approves without asking; safe mode and the path permissions refuse what they
 * refuse before anything is asked, whatever the policy.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { CancelledError } from "../errors.ts";
import { showChange } from "../ops/changes.ts";
import type { Output } from "../types.ts";
import { escapeControls } from "../util/terminal_text.ts";
import type { Approval, ApprovalRequest } from "../tools/tool.ts";

/** Which calls are approved without asking: none, file changes, or everything. */
export type ApprovalPolicy = "ask" | "edits" | "all";

/** The approval policies, as `/tools approve` takes them. */
export const APPROVAL_POLICIES: readonly ApprovalPolicy[] = ["ask", "edits", "all"];

const CHOICES = "[y]es / [n]o / [a]ll this turn / [q]uit turn";
/** With a diff cut short: the rest of it can be seen before answering. */
const CHOICES_VIEW = "[y]es / [n]o / [a]ll this turn / [q]uit turn / [v]iew all";

/**
 * Reads an answer: `y`/`yes` or nothing (Enter), `n`/`no`, `a`/`all`, `q`/`quit`; undefined
 * for anything else.
 */
export function parseApproval(
  answer: string,
  opts: { enterMeansYes?: boolean } = { enterMeansYes: true },
): "yes" | "no" | "all" | "quit" | "view" | undefined {
  const a = answer.trim().toLowerCase();
  if ((a === "" && opts.enterMeansYes) || a === "y" || a === "yes") return "yes";
  if (a === "n" || a === "no") return "no";
  if (a === "a" || a === "all") return "all";
  if (a === "q" || a === "quit") return "quit";
  if (a === "v" || a === "view") return "view";
  return undefined;
}

/**
 * The approvals of one turn: "all this turn" lasts until the turn ends, for the kind of call it
 * was given to — all changes, or all commands: a yes to every edit is no yes to a command.
 */
export class TurnApprover {
  readonly #all = new Set<ApprovalRequest["kind"]>();
  /** Why an approval got no usable answer (a script ended, or answered something else). */
  unanswered?: string;

  constructor(
    readonly agent: Agent,
    readonly opts: {
      policy: ApprovalPolicy;
      yes: boolean;
      out: Output;
      color: boolean;
      /** Runs the question with whatever is drawn on the terminal out of its way. */
      hold?: <R>(ask: () => Promise<R>) => Promise<R>;
      /**
       * A person at a terminal: Enter means yes and a wrong answer is asked again. In a script
       * an approval has no default (a blank or a comment line is no answer) and a wrong answer
       * ends the turn.
       */
      interactive?: boolean;
    },
  ) {}

  /**
   * Shows what `request` would do and returns the answer. A question that is cancelled (Ctrl-C,
   * Escape, Ctrl-D, or a script whose input ended) ends the turn: `quit`. At a terminal an answer
   * that is none of the choices is asked again (up to three times, then it is a no); in a
   * script it ends the turn, and {@linkcode unanswered} says why.
   */
  async approve(request: ApprovalRequest): Promise<Approval> {
    const { out, color } = this.opts;
    const left = request.kind === "edit" ? showChange(request.change, out, color) : 0;
    if (request.kind === "run") out.write(`  $ ${escapeControls(request.command)}\n`);
    const auto = this.#automatic(request);
    if (auto) {
      out.write(`  approved (${auto})\n`);
      return "yes";
    }
    const question = request.kind === "edit" ? "Apply this change?" : "Run this command?";
    const choices = left ? CHOICES_VIEW : CHOICES;
    const interactive = this.opts.interactive ?? false;
    for (let tries = 0; tries < (interactive ? 3 : 1); tries++) {
      let answer: string;
      try {
        const ask = () => this.agent.asker.input(`${question} ${choices}`);
        answer = await (this.opts.hold ? this.opts.hold(ask) : ask());
      } catch (err) {
        if (!(err instanceof CancelledError)) throw err;
        // A script that ended, or -p, cannot answer: say how to approve without asking.
        if (/input ended/.test(err.message)) {
          this.unanswered = `${question} had no answer (the input ended): answer it on the ` +
            "line after the prompt, or approve ahead with --yes or /tools approve";
          out.write(`✗ No answer: the turn ends here\n`);
        } else out.write("✗ Cancelled: the turn ends here\n");
        return "quit";
      }
      const parsed = parseApproval(answer, { enterMeansYes: interactive });
      if (parsed === "view" && request.kind === "edit") {
        showChange(request.change, out, color, { all: true });
        tries--;
        continue;
      }
      if (parsed === "all") {
        this.#all.add(request.kind);
        return "yes";
      }
      if (parsed && parsed !== "view") return parsed;
      const expected = `Expected y, n, a${left ? ", q or v" : " or q"}, found "${answer.trim()}"`;
      if (!interactive) {
        this.unanswered = `${expected} as the answer to "${question}"; the turn was ended`;
        out.write(`✗ ${expected}: the turn ends here\n`);
        return "quit";
      }
      out.write(`${expected}\n`);
    }
    return "no";
  }

  #automatic(request: ApprovalRequest): string | undefined {
    if (this.opts.yes) return "--yes";
    // A script or a hook is a command to come: a blanket yes to edits does not cover it.
    const runnable = request.kind === "edit" && request.change.executable;
    if (runnable && this.opts.policy !== "all") return undefined;
    if (this.#all.has(request.kind)) {
      return request.kind === "edit" ? "all changes this turn" : "all commands this turn";
    }
    const policy = this.opts.policy;
    if (policy === "all") return "policy all";
    if (policy === "edits" && request.kind === "edit") return "policy edits";
    return undefined;
  }
}
