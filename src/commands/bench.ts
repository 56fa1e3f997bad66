/**
 * `/bench`: measure the local models on this machine — load time, first token, prompt and
 * generation speed, and tool-call success on the built-in tasks in native and text mode — and
 * keep the results for `/tools mode auto`. The work is `src/model_bench/`; `harvey bench` is
 * the same from the command line.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { UsageError } from "../errors.ts";
import { benchResults, formatBenchTable } from "../model_bench/results.ts";
import { benchModels, type BenchOptions, benchTargets } from "../model_bench/run.ts";
import type { ToolMode } from "../tools/mode.ts";
import type { Output } from "../types.ts";
import type { CommandHandler } from "./registry.ts";

/** What `/bench` and `harvey bench` take. */
export interface BenchArgs {
  /** The models to measure; none: every local model. */
  names: string[];
  modes?: ToolMode[];
  tasks?: number;
}

const USAGE = "Usage: /bench [NAME…] [--mode native|text] [--tasks N] · /bench results";

/** Parses `NAME… [--mode native|text] [--tasks N]`. */
export function parseBenchArgs(args: string[]): BenchArgs {
  const out: BenchArgs = { names: [] };
  for (let i = 0; i < args.length; i++) {
    const m = /^--(mode|tasks)(?:=(.*))?$/.exec(args[i]);
    if (!m) {
      if (args[i].startsWith("--")) {
        throw new UsageError(`Unknown option ${args[i]} (expected --mode or --tasks) — ${USAGE}`);
      }
      out.names.push(args[i]);
      continue;
    }
    const value = m[2] ?? args[++i];
    if (m[1] === "mode") {
      if (value !== "native" && value !== "text") {
        throw new UsageError(
          `--mode takes native or text, found ${value ? `"${value}"` : "nothing"} — ${USAGE}`,
        );
      }
      out.modes = [value];
    } else {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 10) {
        throw new UsageError(
          `--tasks takes a number from 1 to 10, found ${value ? `"${value}"` : "nothing"}`,
        );
      }
      out.tasks = n;
    }
  }
  return out;
}

/**
 * Measures the models `args` names (all local ones when none), prints each result as it comes
 * and then the table; returns how many could not be measured.
 */
export async function runBench(
  agent: Agent,
  args: BenchArgs,
  opts: Omit<BenchOptions, "modes" | "tasks"> & { table: Output },
): Promise<number> {
  const targets = await benchTargets(agent, args.names);
  const results = await benchModels(agent, targets, {
    ...opts,
    modes: args.modes,
    tasks: args.tasks,
  });
  opts.table.write(formatBenchTable(results));
  opts.table.write(
    "Kept in the knowledge base (/kb search bench); /tools mode auto picks each model's mode " +
      "from them.\n",
  );
  return results.filter((r) => r.error).length;
}

/** `/bench [NAME…] [--mode native|text] [--tasks N]`, `/bench results` */
export const benchCommand: CommandHandler = {
  subcommands: ["results"],
  complete: async (agent, before) =>
    before.at(-1) === "--mode"
      ? ["native", "text"]
      : (await benchTargets(agent).catch(() => [])).map((t) => t.model),
  async run(agent, args, out, ctx) {
    if (args[0] === "results" && args.length === 1) {
      const results = await benchResults(agent);
      if (!results.length) {
        out.write("No results yet: /bench measures the local models.\n");
        return;
      }
      out.write(formatBenchTable(results));
      return;
    }
    await runBench(agent, parseBenchArgs(args), {
      out,
      table: out,
      signal: ctx.signal,
      terminal: ctx.terminal,
    });
  },
};
