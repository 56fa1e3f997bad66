/**
 * Harvey as a user runs it: a child `deno run` with exactly the permission flags of
 * `deno task harvey`, read from `deno.json` so the tests cannot drift from the task.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { harveyTaskFlags } from "../scripts/install.ts";
import { childEnv } from "./helpers.ts";

/** `main.ts`, as a path. */
export const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

/**
 * The environment assignments and the `deno run` flags of the `harvey` task in `deno.json`,
 * e.g. `{ env: { DENO_NO_UPDATE_CHECK: "1" }, flags: ["--no-prompt", "--allow-read", …] }` — read
 * the way the installed launcher reads them.
 */
export function harveyTask(): { env: Record<string, string>; flags: string[] } {
  return harveyTaskFlags();
}

/** What a finished Harvey child printed. */
export interface HarveyRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runHarvey}. */
export interface HarveyChildOptions {
  cwd: string;
  /** Written to stdin, which is then closed. */
  stdin?: string;
  /** Variables on top of the task's own and `DENO_DIR`; `HOME` defaults to `cwd`. */
  env?: Record<string, string>;
  /** Replaces the task's flags (to test a refused permission); default: exactly the task's. */
  flags?: string[];
  /** Kills the child when aborted. */
  signal?: AbortSignal;
}

/** Starts Harvey with `args` as `deno task harvey` would, with piped stdio. */
export function spawnHarvey(args: string[], opts: HarveyChildOptions): Deno.ChildProcess {
  const task = harveyTask();
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...(opts.flags ?? task.flags), MAIN, ...args],
    cwd: opts.cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: childEnv({ ...task.env, NO_COLOR: "1", HOME: opts.cwd, ...opts.env }),
    signal: opts.signal,
  }).spawn();
}

/** Runs Harvey with `args` to the end, as `deno task harvey` would; returns what it printed. */
export async function runHarvey(args: string[], opts: HarveyChildOptions): Promise<HarveyRun> {
  const child = spawnHarvey(args, opts);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(opts.stdin ?? "")).catch(() => {});
  await writer.close().catch(() => {});
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
