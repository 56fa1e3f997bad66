/**
 * Harvey's global flags: one table that both parsers read. `commander` (in `cli_program.ts`)
 * defines the command line from it: help, subcommands, errors. Loading commander costs a
 * start-up ~22 ms (its `node:fs` and `node:child_process` on Deno), more than a third of it,
 * so the everyday command lines — flags only, each written `--name VALUE`, `--name=VALUE`,
 * `-x VALUE` or as a lone switch — are read by {@linkcode quickFlags} from the same table,
 * and everything else (a subcommand, `--help`, an unknown or combined flag, a missing
 * value) goes to commander. A test holds both to the same result.
 *
 * @module
 */
import type { Flags } from "./config/settings.ts";

/** The flags of the REPL and its program modes, beyond those the settings read. */
export type CliFlags = Flags & {
  /** `-c/--continue` */
  continue?: boolean;
  /** `-r/--resume [ID]`: the ID, or true for the picker. */
  resume?: string | true;
  /** `--output text|json` (with `-p`). */
  output?: string;
  /** `--mode rpc` */
  mode?: string;
};

/** Every global flag as commander spells it, and its help line. */
export const GLOBAL_OPTIONS: readonly (readonly [flags: string, help: string])[] = [
  ["-w, --workdir <dir>", "the workspace folder (default: the current folder)"],
  ["-m, --model <name>", "the model to use"],
  ["--ollama <url>", "the Ollama server (default: $OLLAMA_HOST or harvey.yaml)"],
  ["--llamafile <path>", "run this llamafile for this session only"],
  ["--llamafile-url <url>", "connect to an OpenAI-compatible server already running there"],
  ["--llamafile-dir <dir>", "where to look for model files (default: ~/Models)"],
  ["--gguf <path>", "serve this GGUF file with llama-server for this session only"],
  ["--run <file>", "run a script of lines headless (- for stdin)"],
  ["-p, --print <prompt>", "send one prompt, print the reply, exit"],
  ["-y, --yes", "answer yes to every confirmation"],
  ["--no-color", "plain output without colours"],
  ["-c, --continue", "go on with the latest saved session of this workspace"],
  ["-r, --resume [id]", "go on with a saved session (a picker when ID is omitted)"],
  ["--output <format>", "with -p: text (default) or json, one JSON event per line"],
  ["--mode <mode>", "rpc: JSON commands on stdin, JSON events on stdout"],
];

interface OptionShape {
  key: string;
  value: "none" | "required" | "optional";
  /** `--no-NAME`: sets `key` to false; the flag is true unless given. */
  negate: boolean;
}

let shapes: Map<string, OptionShape> | undefined;

/** Each spelling (`-w`, `--workdir`) and what it sets, read from the table once. */
function optionShapes(): Map<string, OptionShape> {
  if (shapes) return shapes;
  shapes = new Map();
  for (const [flags] of GLOBAL_OPTIONS) {
    const m = /^(?:(-\w), )?--([\w-]+)(?: ([<[])\w+[>\]])?$/.exec(flags)!;
    const negate = m[2].startsWith("no-");
    const name = negate ? m[2].slice(3) : m[2];
    const shape: OptionShape = {
      key: name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()),
      value: m[3] === "<" ? "required" : m[3] === "[" ? "optional" : "none",
      negate,
    };
    shapes.set(`--${m[2]}`, shape);
    if (m[1]) shapes.set(m[1], shape);
  }
  return shapes;
}

/**
 * The flags of a command line that holds global flags only, in the plain spellings, as
 * commander would give them; undefined for anything else (commander then decides).
 *
 * @example
 * ```ts
 * quickFlags(["-w", "proj", "--run", "-"]); // { color: true, workdir: "proj", run: "-" }
 * quickFlags(["pull", "a/b", "f.gguf"]); // undefined
 * ```
 */
export function quickFlags(args: readonly string[]): CliFlags | undefined {
  const known = optionShapes();
  const flags: Record<string, string | boolean> = {};
  for (const shape of known.values()) if (shape.negate) flags[shape.key] = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const shape = known.get(eq > 0 ? arg.slice(0, eq) : arg);
    if (!shape) return undefined;
    if (eq > 0) {
      if (shape.value === "none") return undefined;
      flags[shape.key] = arg.slice(eq + 1);
    } else if (shape.value === "none") flags[shape.key] = !shape.negate;
    else {
      const next = args[i + 1];
      // A value that looks like a flag is commander's to judge.
      const isValue = next !== undefined && (next === "-" || !next.startsWith("-"));
      if (isValue) {
        flags[shape.key] = next;
        i++;
      } else if (shape.value === "optional") flags[shape.key] = true;
      else return undefined;
    }
  }
  return flags as CliFlags;
}
