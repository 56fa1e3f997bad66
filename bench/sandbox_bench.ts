/**
 * What the OS sandbox costs per command: `true` run through Harvey's runner
 * (`runProgram`, as `!true` and the model's commands run: policy, audit, environment) inside
 * the sandbox against the same without it, in a clone of this repository (so the workspace
 * walk that finds `.git` and secrets has a repository of this size to walk). Alternating runs,
 * one warm-up each, medians.
 *
 * Rows: the unsandboxed command (the baseline), the sandboxed one with the ratio, the ms added
 * (target ≤ 10 ms), the workspace scan alone (first, then cached), and bubblewrap's own floor (a bare
 * `bwrap --ro-bind / / true`) to show how much of the cost is the kernel's namespaces.
 *
 * Linux with bubblewrap only; elsewhere the file reports no rows.
 * Run alone: `deno run --allow-all --no-prompt bench/sandbox_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchResult } from "./result.ts";
import { printResults } from "./run_all.ts";
import { runProgram } from "../src/ops/run.ts";
import { LineAsker } from "../src/repl/asker.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { findOnPath } from "../src/runtime/spawn.ts";
import { RACY_MS } from "../src/security/sandbox_scan.ts";
import { createSession } from "../src/session.ts";

const RUNS = 60;
const TARGET_MS = 10;
const REPO = fileURLToPath(new URL("../", import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const round = (x: number) => Math.round(x * 100) / 100;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Clones this repository into a temporary folder and opens a session there. */
export async function run(): Promise<BenchResult[]> {
  const path = Deno.env.get("PATH") ?? "";
  const bwrap = findOnPath("bwrap", path);
  if (Deno.build.os !== "linux" || !bwrap) {
    console.error("sandbox bench: needs Linux and bubblewrap (apt install bubblewrap); skipped");
    return [];
  }
  const dir = await Deno.makeTempDir({ prefix: "harvey_sandbox_bench_" });
  try {
    const clone = await new Deno.Command("git", {
      args: ["clone", "-q", "--local", "--no-hardlinks", REPO, dir],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!clone.success) throw new Error(new TextDecoder().decode(clone.stderr));
    await Deno.writeTextFile(join(dir, "agents", "harvey.yaml"), "safe_mode: false\n");
    const err = new BufferOutput();
    const agent = await createSession({
      flags: { workdir: dir, color: false },
      env: { PATH: path, HOME: dir },
      cwd: dir,
      asker: new LineAsker(() => Promise.resolve(undefined), err),
      err,
      // The bench wrote the file that turns safe mode off: it trusts it, as its author.
      trust: "all",
    });
    try {
      const status = await agent.sandbox!.status();
      if (!status.available) throw new Error(`no sandbox: ${status.detail}`);
      const first = await time(() => Promise.resolve(agent.sandbox!.scan()));
      // Folders changed within the racy window are listed on every scan; a session's workspace
      // is older than that, so the runs start once the clone is.
      await new Promise((r) => setTimeout(r, RACY_MS + 1_500));
      const scan = agent.sandbox!.scan();
      console.error(
        `sandbox bench: a clone of this repository, ${scan.folders} folders; ${RUNS} runs each`,
      );
      // `!true` with safe mode off runs unsandboxed; the model's `true` always runs inside.
      const plain = () => runProgram(agent, ["true"], { source: "user" });
      const boxed = () => runProgram(agent, ["true"], { source: "model" });
      const trueBin = findOnPath("true", path)!;
      const floor = () =>
        new Deno.Command(bwrap, {
          args: ["--ro-bind", "/", "/", "--", trueBin],
          stdout: "null",
          stderr: "null",
        }).output();
      const bare = () => new Deno.Command(trueBin, { stdout: "null", stderr: "null" }).output();
      for (const fn of [plain, boxed, floor, bare]) await fn();
      const t = { plain: [] as number[], boxed: [] as number[], floor: [] as number[] };
      const b: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        t.plain.push(await time(plain));
        t.boxed.push(await time(boxed));
        t.floor.push(await time(floor));
        b.push(await time(bare));
      }
      const scans: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        scans.push(await time(() => Promise.resolve(agent.sandbox!.scan())));
      }
      const plainMs = median(t.plain);
      const boxedMs = median(t.boxed);
      const added = boxedMs - plainMs;
      console.error(
        `sandbox bench: !true ${round(plainMs)} ms, in the sandbox ${round(boxedMs)} ms ` +
          `(fastest ${round(Math.min(...t.plain))} / ${round(Math.min(...t.boxed))}); ` +
          `bwrap alone ${round(median(t.floor))} ms, true alone ${round(median(b))} ms`,
      );
      return [
        { name: "!true, no sandbox", value: round(plainMs), unit: "ms" },
        {
          name: "!true in the sandbox",
          value: round(boxedMs),
          unit: "ms",
          baseline: round(plainMs),
          ratio: round(boxedMs / plainMs),
        },
        {
          name: "sandbox added per command",
          value: round(added),
          unit: "ms",
          target: `≤ ${TARGET_MS} ms`,
          pass: added <= TARGET_MS,
        },
        { name: "workspace scan, first", value: round(first), unit: "ms" },
        { name: "workspace scan, cached", value: round(median(scans)), unit: "ms" },
        {
          name: "bwrap --ro-bind / / true",
          value: round(median(t.floor)),
          unit: "ms",
          baseline: round(median(b)),
          ratio: round(median(t.floor) / median(b)),
        },
      ];
    } finally {
      await agent.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  printResults("sandbox", await run());
}
