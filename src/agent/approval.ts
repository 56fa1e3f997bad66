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

/**
 * Reads an answer: `y`/`yes` or nothing (Enter), `n`/`no`, `a`/`all`, `q`/`quit`; undefined
 * for anything else.
 */
export function parseApproval(answer: string): "yes" | "no" | "all" | "quit" | undefined {
  const a = answer.trim().toLowerCase();
  if (a === "" || a === "y" || a === "yes") return "yes";
  if (a === "n" || a === "no") return "no";
  if (a === "a" || a === "all") return "all";
  if (a === "q" || a === "quit") return "quit";
  return undefined;
}

/** The approvals of one turn: "all this turn" lasts until the turn ends. */
export class TurnApprover {
  #all = false;

  constructor(
    readonly agent: Agent,
    readonly opts: {
      policy: ApprovalPolicy;
      yes: boolean;
      out: Output;
      color: boolean;
      /** Runs the question with whatever is drawn on the terminal out of its way. */
      hold?: <R>(ask: () => Promise<R>) => Promise<R>;
    },
  ) {}

  /**
   * Shows what `request` would do and returns the answer. A question that is cancelled (Ctrl-C,
   * Escape, Ctrl-D, or a script whose input ended) ends the turn: `quit`. An answer that is none of the choices is asked again
   * (up to three times, then it is a no).
   */
  async approve(request: ApprovalRequest): Promise<Approval> {
    const { out, color } = this.opts;
    if (request.kind === "edit") showChange(request.change, out, color);
    else out.write(`  $ ${escapeControls(request.command)}\n`);
    const auto = this.#automatic(request);
    if (auto) {
      out.write(`  approved (${auto})\n`);
      return "yes";
    }
    const question = request.kind === "edit" ? "Apply this change?" : "Run this command?";
    for (let tries = 0; tries < 3; tries++) {
      let answer: string;
      try {
        const ask = () => this.agent.asker.input(`${question} ${CHOICES}`);
        answer = await (this.opts.hold ? this.opts.hold(ask) : ask());
      } catch (err) {
        if (!(err instanceof CancelledError)) throw err;
        // A script that ended, or -p, cannot answer: say how to approve without asking.
        if (/input ended/.test(err.message)) {
          out.write(
            "✗ No answer (the input ended): the turn ends here — answer on the next line, " +
              "or approve ahead with --yes or /tools approve\n",
          );
        } else out.write("✗ Cancelled: the turn ends here\n");
        return "quit";
      }
      const parsed = parseApproval(answer);
      if (parsed === "all") {
        this.#all = true;
        return "yes";
      }
      if (parsed) return parsed;
      out.write(`Expected y, n, a or q, found "${answer.trim()}"\n`);
    }
    return "no";
  }

  #automatic(request: ApprovalRequest): string | undefined {
    if (this.opts.yes) return "--yes";
    if (this.#all) return "all this turn";
    const policy = this.opts.policy;
    if (policy === "all") return "policy all";
    if (policy === "edits" && request.kind === "edit") return "policy edits";
    return undefined;
  }
}
