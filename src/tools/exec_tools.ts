/**
 * `run_command {command}` and `git {args}`: the model's faces of `/run` and `/git`, through the
 * same runner (`src/ops/run.ts`, `src/ops/git.ts`). A command of the model always runs inside
 * the OS sandbox (no network unless `sandbox.network`), after safe mode and the permissions
 * had their say and the user approved it; git is the read-only, hardened subset.
 *
 * @module
 */
import { describeError } from "../errors.ts";
import { runGit } from "../ops/git.ts";
import { DeclinedError, quoteArg, runProgram } from "../ops/run.ts";
import { splitArgs } from "../util/split_args.ts";
import { headOf, tailOf } from "../util/text_cut.ts";
import { argsSchema } from "./args.ts";
import { failed, type Tool } from "./tool.ts";

/** Vertical white space: a command on several lines could show one thing and run another. */
const LINE_BREAK = /[\n\r\v\f\u0085\u2028\u2029]/;

/** Shell syntax `run_command` does not have: it runs one program, without a shell. */
const SHELL_SYNTAX = /(^|\s)(\||\|\||&&|;|>|>>|<|2>&1|&)(\s|$)|\$\(|`/;

/**
 * Keeps a command's output for the model within `max` characters: all of it when it fits,
 * else its start and its end (a failure's summary is usually at the end).
 */
class Folded {
  #head = "";
  #tail = "";
  #total = 0;
  #lines = 0;
  constructor(readonly max: number) {}

  push(text: string): void {
    this.#total += text.length;
    this.#lines += (text.match(/\n/g) ?? []).length;
    const half = Math.floor(this.max / 2);
    if (this.#head.length < half) {
      const room = half - this.#head.length;
      const part = headOf(text, room);
      this.#head += part;
      text = text.slice(part.length);
    }
    this.#tail = tailOf(this.#tail + text, half);
  }

  /** Lines of output in all. */
  get lines(): number {
    return this.#lines;
  }

  /** The output, with a note where the middle was left out. */
  get text(): string {
    const left = this.#total - this.#head.length - this.#tail.length;
    return left > 0
      ? `${this.#head}\n[… ${left} characters not shown …]\n${this.#tail}`
      : this.#head + this.#tail;
  }
}

const lineCount = (text: string) =>
  text ? text.split("\n").length - (text.endsWith("\n") ? 1 : 0) : 0;

/** `run_command {command}` */
export const runCommandTool: Tool = {
  spec: {
    name: "run_command",
    description: "Run one program in the workspace, without a shell (no pipes or &&).",
    parameters: argsSchema({
      command: { type: "string", description: "program and arguments, e.g. deno test" },
    }, ["command"]),
  },
  brief: "Run one program, no shell.",
  kind: "run",
  subject: (args) => String(args.command),
  async run(agent, args, ctx) {
    const command = String(args.command).trim();
    if (LINE_BREAK.test(command)) {
      return failed(
        "run_command takes one command line; this one has a line break: run one command per call",
        "refused",
      );
    }
    if (SHELL_SYNTAX.test(command)) {
      return failed(
        "run_command runs one program without a shell: pipes, redirections, ; and && are not " +
          "available; run the commands one at a time",
        "refused",
      );
    }
    let argv: string[];
    try {
      argv = splitArgs(command);
    } catch (err) {
      return failed(describeError(err), "refused");
    }
    if (!argv.length) return failed("command is empty; give a program and its arguments");
    const output = new Folded(Math.max(400, ctx.maxChars - 200));
    let declined: "no" | "quit" | undefined;
    let result;
    try {
      result = await runProgram(agent, argv, {
        source: "model",
        signal: ctx.signal,
        captureBytes: 0,
        onOutput(text) {
          output.push(text);
          ctx.onOutput?.(text);
        },
        async confirm() {
          // What is shown is what runs: the words as they will be passed, quoted.
          const shown = argv.map(quoteArg).join(" ");
          const answer = await ctx.approve({ kind: "run", tool: "run_command", command: shown });
          if (answer !== "yes") declined = answer;
          return answer === "yes";
        },
      });
    } catch (err) {
      if (err instanceof DeclinedError && declined) {
        return {
          content: `declined by the user: ${command} was not run`,
          summary: "declined",
          declined,
        };
      }
      return failed(describeError(err), "refused");
    }
    const text = output.text;
    const summaryLines = output.lines || lineCount(text);
    if (result.interrupted) {
      return {
        content: `[interrupted]\n${text}`,
        summary: "interrupted",
        interrupted: true,
      };
    }
    const status = result.timedOut ? result.ending : `exit ${result.code}`;
    return {
      content: `[${result.ending}${result.sandboxed ? ", in the sandbox" : ""}]\n${text}`,
      summary: `${status}, ${summaryLines} ${summaryLines === 1 ? "line" : "lines"}`,
      error: result.code !== 0 || result.timedOut,
    };
  },
};

/** `git {args}` */
export const gitTool: Tool = {
  spec: {
    name: "git",
    description: "Run a read-only git command: status, diff, log, show, blame, grep…",
    parameters: argsSchema({
      args: { type: "string", description: "e.g. log -n 5 --oneline" },
    }, ["args"]),
  },
  kind: "read",
  subject: (args) => `${args.args}`,
  async run(agent, args, ctx) {
    let argv: string[];
    try {
      argv = splitArgs(String(args.args).replace(/^\s*git\s+/, ""));
    } catch (err) {
      return failed(describeError(err), "refused");
    }
    if (!argv.length) return failed('args is empty; give a git command such as "status"');
    try {
      const { text, cut } = await runGit(agent, argv, {
        signal: ctx.signal,
        label: "the git tool",
      });
      const body = text.length > ctx.maxChars - 120
        ? `${headOf(text, ctx.maxChars - 120)}\n[cut: narrow it with a path or -n N]`
        : text;
      const note = cut ? "\n[output cut: narrow it with a path or -n N]" : "";
      return {
        content: (body || "(no output)") + note,
        summary: `${lineCount(text)} ${lineCount(text) === 1 ? "line" : "lines"}`,
      };
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      return failed(describeError(err), "refused");
    }
  },
};
