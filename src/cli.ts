/**
 * The command line: global flags, the REPL, headless scripts, `-p`, and subcommands.
 *
 * @module
 */
import type { Flags } from "./config/settings.ts";
import { describeError, UsageError } from "./errors.ts";
import type { Agent } from "./agent.ts";
import { createSession } from "./session.ts";
import { LineAsker, TerminalAsker } from "./repl/asker.ts";
import { linesFromStream, linesFromText, type LineSource, runScript } from "./repl/headless.ts";
import type { History } from "./repl/line_editor.ts";
import type { Terminal } from "./repl/terminal.ts";
import { stderrOutput, stdoutOutput } from "./repl/output.ts";
import { selectBackend } from "./repl/startup.ts";
import { EventWriter, JsonTurnDisplay } from "./repl/json_display.ts";
import type { EventAsker } from "./repl/rpc.ts";
import { checkSessionFlags, openStartupSession } from "./session/startup.ts";
import { join } from "node:path";
import { installExitHooks } from "./runtime/exit_hooks.ts";
// What only a prompt, the REPL, `pull` or `doctor` need is loaded by them (start-up stays small).
import type { PullArgs } from "./commands/pull.ts";
import { type CliFlags, quickFlags } from "./cli_options.ts";
import { lazyImport } from "./util/lazy_import.ts";

/** Harvey's version. */
export const VERSION = "0.1.0";

/** Parses `args` and runs Harvey; returns the exit status. */
export async function run(args: string[]): Promise<number> {
  const flags = quickFlags(args);
  if (flags) return await runRepl(flags);
  // Anything but plain global flags: commander reads it (and loads only then).
  const { parseCommandLine } = await lazyImport<typeof import("./cli_program.ts")>(
    new URL("./cli_program.ts", import.meta.url),
  );
  const parsed = await parseCommandLine(args, VERSION);
  if (typeof parsed === "number") return parsed;
  if (parsed.action === "doctor") return await runDoctorCommand(parsed.flags, parsed.install);
  if (parsed.action === "pull") return await runPullCommand(parsed.flags, parsed.args);
  if (parsed.action === "bench") return await runBenchCommand(parsed.flags, parsed.args);
  return await runRepl(parsed.flags);
}

/** Throws a usage error unless `--llamafile-url` (when given) is an http(s) URL. */
function checkUrlFlag(url: string | undefined): void {
  if (url === undefined) return;
  let ok = false;
  try {
    ok = ["http:", "https:"].includes(new URL(url).protocol);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new UsageError(
      `--llamafile-url expects a URL such as http://127.0.0.1:8080, found "${url}"`,
    );
  }
}

/** Throws a usage error for `--output` and `--mode` values, or flags they do not go with. */
function checkProgramFlags(flags: CliFlags): void {
  if (flags.output !== undefined && !["text", "json"].includes(flags.output)) {
    throw new UsageError(`--output expects text or json, found "${flags.output}"`);
  }
  if (flags.mode !== undefined && flags.mode !== "rpc") {
    throw new UsageError(`--mode expects rpc, found "${flags.mode}"`);
  }
  if (flags.output === "json" && flags.print === undefined) {
    throw new UsageError(
      "--output json goes with -p PROMPT; --mode rpc is the conversation for programs",
    );
  }
  if (flags.mode === "rpc" && (flags.print !== undefined || flags.run)) {
    throw new UsageError("--mode rpc reads its commands from stdin; it takes no -p or --run");
  }
}

async function runRepl(flags: CliFlags): Promise<number> {
  const env = Deno.env.toObject();
  const rpc = flags.mode === "rpc";
  // Programs get JSON events on stdout and nothing else.
  const events = rpc || flags.output === "json" ? new EventWriter(stdoutOutput) : undefined;
  const interactive = !flags.run && flags.print === undefined && !rpc &&
    Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const color = flags.color !== false && env.NO_COLOR === undefined && Deno.stdout.isTerminal();
  // Colours are for terminals: a pipe or a file gets plain text.
  if (!color) flags = { ...flags, color: false };
  let source: LineSource | undefined;
  let terminal: Terminal | undefined;
  let agent: Agent | undefined;
  const signals = installSignalHandlers(() => agent, !interactive);
  let code: number;
  try {
    code = await (async (): Promise<number> => {
      checkUrlFlag(flags.llamafileUrl);
      checkProgramFlags(flags);
      const sessionFlags = { continue: flags.continue, resume: flags.resume, interactive };
      checkSessionFlags(sessionFlags);
      if (flags.run && flags.run !== "-") {
        try {
          source = linesFromText(await Deno.readTextFile(flags.run));
        } catch (err) {
          if (err instanceof Deno.errors.NotFound) {
            throw new UsageError(`Script ${flags.run} not found`);
          }
          if (err instanceof Deno.errors.IsADirectory) {
            throw new UsageError(
              `Script ${flags.run} is a folder; --run takes a file of lines, or - for stdin`,
            );
          }
          throw err;
        }
      } else if (!interactive && flags.print === undefined) {
        source = linesFromStream(Deno.stdin.readable);
      }
      const err = interactive ? stdoutOutput : stderrOutput;
      let asker;
      let history: History | undefined;
      if (events) {
        // A program answers in RPC mode; -p has no input, so its questions are cancelled.
        const { EventAsker } = await lazyImport<typeof import("./repl/rpc.ts")>(
          new URL("./repl/rpc.ts", import.meta.url),
        );
        asker = new EventAsker(events, { yes: flags.yes, closed: !rpc });
      } else if (interactive) {
        // The terminal's modules load only for the REPL: a script's start-up goes without them.
        const [{ loadHistory }, { History }, { processTerminalIO, Terminal }] = await Promise.all(
          [
            lazyImport<typeof import("./repl/history.ts")>(
              new URL("./repl/history.ts", import.meta.url),
            ),
            lazyImport<typeof import("./repl/line_editor.ts")>(
              new URL("./repl/line_editor.ts", import.meta.url),
            ),
            lazyImport<typeof import("./repl/terminal.ts")>(
              new URL("./repl/terminal.ts", import.meta.url),
            ),
          ],
        );
        history = new History(
          await loadHistory(join(flags.workdir ?? Deno.cwd(), "agents")).catch(() => []),
        );
        terminal = new Terminal(processTerminalIO());
        terminal.open();
        asker = new TerminalAsker(terminal, { yes: flags.yes, color });
      } else {
        const read = (prompt: string) => {
          stdoutOutput.write(prompt);
          return source ? source.next() : Promise.resolve(undefined);
        };
        asker = new LineAsker(read, stdoutOutput, { yes: flags.yes, echo: true });
      }
      agent = await createSession({
        flags,
        env,
        cwd: Deno.cwd(),
        asker,
        err,
        trust: interactive ? "ask" : "remembered",
      });
      if (interactive) {
        stdoutOutput.write(
          `Harvey ${VERSION} · workspace ${agent.workspace.root} · /help for commands\n`,
        );
      }
      // Start-up never reads a script's lines: only a person at a terminal is asked.
      const startup = (signal?: AbortSignal) =>
        selectBackend(agent!, err, {
          interactive,
          urlGiven: flags.llamafileUrl !== undefined,
          signal,
        });
      if (terminal) {
        // Ctrl-C cancels a model that is starting.
        const ctl = new AbortController();
        await terminal.whileBusy(() => ctl.abort(), () => startup(ctl.signal));
      } else await startup();
      if (agent.client) {
        // A prompt comes soon: load what it needs (the turn, the client's SDK) meanwhile.
        lazyImport<typeof import("./repl/turn.ts")>(new URL("./repl/turn.ts", import.meta.url))
          .catch(() => {});
        agent.client.warm?.().catch(() => {});
      }
      const resumed = await openStartupSession(agent, err, sessionFlags);
      if (events && asker) {
        if (rpc) {
          const { runRpc } = await lazyImport<typeof import("./repl/rpc.ts")>(
            new URL("./repl/rpc.ts", import.meta.url),
          );
          return await runRpc(agent, {
            lines: source!,
            events,
            asker: asker as EventAsker,
            resumed,
          });
        }
        return await printJson(agent, flags.print!, events, resumed);
      }
      const io = { out: stdoutOutput, err, spinner: interactive, color };
      if (flags.print !== undefined) {
        const controller = new AbortController();
        const { runPrompt } = await lazyImport<typeof import("./repl/turn.ts")>(
          new URL("./repl/turn.ts", import.meta.url),
        );
        await runPrompt(agent, flags.print, { ...io, signal: controller.signal });
        return 0;
      }
      if (terminal) {
        const { runInteractive } = await lazyImport<typeof import("./repl/interactive.ts")>(
          new URL("./repl/interactive.ts", import.meta.url),
        );
        await runInteractive(agent, terminal, { ...io, history: history! });
        return 0;
      }
      return await runScript(agent, source!, io);
    })();
  } catch (err) {
    code = err instanceof UsageError ? 2 : 1;
    if (events) {
      events.emit({ type: "error", message: describeError(err) });
      events.emit({ type: "end", status: code });
    } else stderrOutput.write(`✗ ${describeError(err)}\n`);
  } finally {
    terminal?.close();
    await agent?.shutdown();
    signals.remove();
  }
  // A signal that arrived while the session ran decides the exit status (143 for SIGTERM).
  return signals.code() ?? code;
}

/**
 * `-p PROMPT --output json`: the session event, the turn's events, then `end` with the exit
 * status (an `error` event before it when the turn failed).
 */
async function printJson(
  agent: Agent,
  prompt: string,
  events: EventWriter,
  resumed: boolean,
): Promise<number> {
  events.session(agent, resumed);
  let status = 0;
  try {
    const { runPrompt } = await lazyImport<typeof import("./repl/turn.ts")>(
      new URL("./repl/turn.ts", import.meta.url),
    );
    await runPrompt(agent, prompt, {
      out: events.output("output"),
      err: events.output("notice"),
      spinner: false,
      color: false,
      signal: new AbortController().signal,
      display: () => new JsonTurnDisplay(events),
    });
  } catch (err) {
    status = 1;
    events.emit({ type: "error", message: describeError(err) });
  }
  events.emit({ type: "end", status });
  return status;
}

/**
 * Runs a one-shot subcommand (`pull`, `doctor`) on a session without a REPL: questions are
 * read from stdin, Ctrl-C aborts `fn`'s signal (exit 130), errors are one line.
 */
async function runSubcommand(
  flags: Flags,
  fn: (agent: Agent, asker: LineAsker, signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const source = linesFromStream(Deno.stdin.readable);
  const read = (prompt: string) => {
    stdoutOutput.write(prompt);
    return source.next();
  };
  const asker = new LineAsker(read, stdoutOutput, { yes: flags.yes });
  const controller = new AbortController();
  const onInt = () => controller.abort();
  Deno.addSignalListener("SIGINT", onInt);
  let agent: Agent | undefined;
  try {
    agent = await createSession({
      flags,
      env: Deno.env.toObject(),
      cwd: Deno.cwd(),
      asker,
      err: stderrOutput,
    });
    return await fn(agent, asker, controller.signal);
  } catch (err) {
    stderrOutput.write(`✗ ${describeError(err)}\n`);
    return controller.signal.aborted ? 130 : err instanceof UsageError ? 2 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    await agent?.shutdown();
  }
}

/** `harvey pull`: download, then offer to register; answers come from stdin. */
function runPullCommand(flags: Flags, args: PullArgs): Promise<number> {
  return runSubcommand(flags, async (agent, asker, signal) => {
    const { offerRegistration, runPull } = await lazyImport<typeof import("./commands/pull.ts")>(
      new URL("./commands/pull.ts", import.meta.url),
    );
    const result = await runPull(agent, args, stderrOutput, {
      signal,
      isTerminal: Deno.stderr.isTerminal(),
      commandLine: true,
    });
    stdoutOutput.write(`${result.path}\n`);
    const registered = await offerRegistration(result, {
      config: agent.config,
      asker,
      out: stdoutOutput,
      name: args.name,
    });
    if (registered && await asker.confirm(`Make ${registered.name} the active model?`)) {
      await agent.config.update([[[registered.registry, "active"], registered.name]]);
      stdoutOutput.write(`${registered.name} is active — Harvey uses it on next start.\n`);
    }
    return 0;
  });
}

/** `harvey doctor [--install]`: the report on stdout; install questions read stdin. */
function runDoctorCommand(flags: Flags, install: boolean): Promise<number> {
  return runSubcommand(
    flags,
    async (agent) =>
      (await lazyImport<typeof import("./doctor.ts")>(new URL("./doctor.ts", import.meta.url)))
        .runDoctor(agent, stdoutOutput, { install }),
  );
}

/** `harvey bench`: progress on stderr, the table on stdout; 1 when a model could not be measured. */
function runBenchCommand(flags: Flags, args: string[]): Promise<number> {
  return runSubcommand(flags, async (agent, _asker, signal) => {
    const { parseBenchArgs, runBench } = await lazyImport<typeof import("./commands/bench.ts")>(
      new URL("./commands/bench.ts", import.meta.url),
    );
    const failed = await runBench(agent, parseBenchArgs(args), {
      out: stderrOutput,
      table: stdoutOutput,
      signal,
      terminal: Deno.stderr.isTerminal(),
    });
    return failed ? 1 : 0;
  });
}

/**
 * SIGTERM and SIGHUP (and SIGINT when there is no line editor to catch Ctrl-C) end the
 * session cleanly through the supervisor's exit hooks: the session is shut down (its
 * servers stopped) before Harvey exits, and `Deno.exit` anywhere still stops them.
 */
function installSignalHandlers(
  agent: () => Agent | undefined,
  withSigint: boolean,
): { remove: () => void; code: () => number | undefined } {
  let signalled: number | undefined;
  const session = {
    stopAll: () => agent()?.shutdown() ?? Promise.resolve(),
    terminateAllNow: () => agent()?.supervisor.terminateAllNow(),
  };
  const exit = (code: number) => {
    signalled = code;
    Deno.exit(code);
  };
  const removers = [
    installExitHooks(session, { exit, onSignal: (code) => signalled = code }),
  ];
  if (withSigint) {
    removers.push(
      installExitHooks(session, {
        signals: ["SIGINT"],
        exit: () => exit(130),
        onSignal: () => signalled = 130,
      }),
    );
  }
  return { remove: () => removers.forEach((remove) => remove()), code: () => signalled };
}
