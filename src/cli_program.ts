/**
 * The whole command line, read by commander: subcommands (`pull`, `doctor`, `bench`), help,
 * `--version`, and the errors in Harvey's words. Loaded only for a command line that is not
 * plain global flags (`cli_options.ts` reads those without it).
 *
 * @module
 */
import type { PullArgs } from "./commands/pull.ts";
import type { Flags } from "./config/settings.ts";
import { type CommanderError, loadCommander } from "./deps.ts";
import { describeError } from "./errors.ts";
import { type CliFlags, GLOBAL_OPTIONS } from "./cli_options.ts";
import { stderrOutput, stdoutOutput } from "./repl/output.ts";

type Commander = Awaited<ReturnType<typeof loadCommander>>;

/** What the command line asks for. */
export type Parsed =
  | { action: "repl"; flags: CliFlags }
  | { action: "pull"; flags: Flags; args: PullArgs }
  | { action: "doctor"; flags: Flags; install: boolean }
  | { action: "bench"; flags: Flags; args: string[] };

function buildProgram(
  { Command }: Commander,
  version: string,
  result: { parsed?: Parsed },
) {
  const program = new Command()
    .name("harvey")
    .description("A terminal coding agent for local language models")
    .version(version, "--version")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => stdoutOutput.write(s),
      writeErr: (s) => stderrOutput.write(s),
      // Errors are written by `parseCommandLine` in Harvey's own style, with a usage line.
      outputError: () => {},
    });
  for (const [flags, help] of GLOBAL_OPTIONS) program.option(flags, help);
  program.action((opts) => {
    result.parsed = { action: "repl", flags: opts as CliFlags };
  });
  program.command("pull")
    .description("download a GGUF or llamafile from Hugging Face (resumable, verified)")
    .argument("<repo>", "the repository, owner/name")
    .argument("<file>", "the file inside the repository")
    .option("--revision <rev>", "branch, tag or commit", "main")
    .option("--dir <dir>", "where to put it (default: the models folder)")
    .option("--sha256 <hex>", "the expected sha256 (default: the hub's LFS hash)")
    .option("--name <name>", "the name to register it under")
    .action((repo, file, opts) => {
      result.parsed = {
        action: "pull",
        flags: program.opts() as Flags,
        args: { repo, file, ...opts },
      };
    });
  program.command("doctor")
    .description("what runtimes and models are found, and how to get the rest")
    .option("--install", "install what is missing with the package manager (asks first)")
    .action((opts: { install?: boolean }) => {
      result.parsed = {
        action: "doctor",
        flags: program.opts() as Flags,
        install: opts.install === true,
      };
    });
  program.command("bench")
    .description("measure the local models: speed and tool-call success (for /tools mode auto)")
    .argument("[names...]", "the models to measure (default: every local model)")
    .option("--mode <mode>", "native or text only (default: both)")
    .option("--tasks <n>", "how many of the ten tool tasks to run")
    .action((names: string[], opts: { mode?: string; tasks?: string }) => {
      const args = [...names];
      // Harvey's own --mode (rpc) takes the flag wherever it stands; bench's is the same word.
      const mode = opts.mode ?? (program.opts() as CliFlags).mode;
      if (mode !== undefined) args.push("--mode", mode);
      if (opts.tasks !== undefined) args.push("--tasks", opts.tasks);
      result.parsed = { action: "bench", flags: program.opts() as Flags, args };
    });
  return program;
}

/** The usage line of each command of the command line. */
const USAGE: Record<string, string> = {
  harvey:
    "harvey [-w DIR] [-m NAME] [--run FILE | -p PROMPT] [flags] · harvey pull REPO FILE · harvey doctor",
  pull: "harvey pull REPO FILE [--revision REV] [--dir DIR] [--sha256 HEX] [--name NAME]",
  doctor: "harvey doctor [--install]",
  bench: "harvey bench [NAME…] [--mode native|text] [--tasks N]",
};

/**
 * A command-line error in Harvey's words, with the usage line of the command it was for:
 * `✗ Unknown option --frob\nUsage: harvey … (harvey --help lists the flags)`.
 */
export function usageError(err: CommanderError, args: readonly string[]): string {
  const sub = args.find((a) => !a.startsWith("-"));
  const command = sub === "pull" || sub === "doctor" || sub === "bench" ? sub : "harvey";
  const [first, ...more] = err.message.replace(/^error: /, "").split("\n");
  let what = first.replace(/'([^']*)'/g, "$1").replace(/\.$/, "");
  let m: RegExpExecArray | null;
  if (err.code === "commander.missingArgument") {
    m = /argument (\S+)/.exec(what);
    const missing = m?.[1] === "repo" ? "REPO and FILE" : m ? m[1].toUpperCase() : "more";
    what = `harvey ${command} needs ${missing}`;
  } else if (err.code === "commander.optionMissingArgument") {
    m = /option (.+?) <(\w+)> argument missing/.exec(what);
    if (m) what = `${m[1].replace(", ", "/")} needs a value (${m[2].toUpperCase()})`;
  } else if (err.code === "commander.excessArguments") {
    m = /got \d+: (.+)$/.exec(what);
    what = command === "harvey"
      ? `Unknown command ${m?.[1] ?? ""}: expected pull or doctor, or only flags`
      : `harvey ${command} takes ${
        command === "pull" ? "REPO and FILE only" : "no arguments"
      }, found ${m?.[1] ?? "more"}`;
  }
  const hint = more.join(" ").replace(/[()]/g, "").trim();
  // Sentence case, but a command name stays as it is typed.
  if (!what.startsWith("harvey")) what = `${what.charAt(0).toUpperCase()}${what.slice(1)}`;
  const line = `${what}${hint ? ` — ${hint}` : ""}`;
  const help = command === "harvey" ? "harvey --help" : `harvey ${command} --help`;
  return `✗ ${line}\nUsage: ${USAGE[command]} (${help} tells more)\n`;
}

/**
 * Parses `args` with commander: what to run, or the exit status when there is nothing to run
 * (0 after `--help` or `--version`, 2 after a usage error, said on stderr).
 */
export async function parseCommandLine(
  args: readonly string[],
  version: string,
): Promise<Parsed | number> {
  const commander = await loadCommander();
  const result: { parsed?: Parsed } = {};
  try {
    await buildProgram(commander, version, result).parseAsync([...args], { from: "user" });
  } catch (err) {
    if (err instanceof commander.CommanderError) {
      if (err.exitCode === 0 || err.code === "commander.version") return 0;
      stderrOutput.write(usageError(err, args));
      return 2;
    }
    stderrOutput.write(`✗ ${describeError(err)}\n`);
    return 1;
  }
  return result.parsed ?? 0;
}
