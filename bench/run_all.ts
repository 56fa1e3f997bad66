/**
 * Runs every `bench/*_bench.ts` (or those whose file name contains one of the arguments), each
 * in its own `deno run` child so one benchmark's memory and JIT state cannot touch another's,
 * then prints one table and a closing line `bench: N passed, N failed targets`.
 *
 * `deno task bench` · `deno task bench core search` · `deno run -A bench/run_all.ts --one FILE`
 * (the child mode: runs FILE's `run()` and prints its results as one JSON line).
 *
 * A missed target is reported, not fatal: the exit status is 0 unless a benchmark file could
 * not run at all (1) or no file matched the filters (2).
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchResult } from "./result.ts";

/** The prefix of the line a `--one` child prints its results on. */
export const RESULT_MARK = "@@bench-results@@ ";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** One row of the table: a result and the benchmark file it came from. */
export interface BenchRow extends BenchResult {
  bench: string;
}

/** What running one benchmark file gave. */
export interface FileOutcome {
  bench: string;
  results: BenchResult[];
  seconds: number;
  /** Why the file produced no results, when it failed. */
  error?: string;
}

/** The `*_bench.ts` files of `dir` whose name contains one of `filters` (all when none). */
export async function findBenchFiles(dir: string, filters: string[] = []): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith("_bench.ts")) continue;
    if (filters.length && !filters.some((f) => entry.name.includes(f))) continue;
    files.push(join(dir, entry.name));
  }
  return files.sort();
}

/** A number shown with about four significant figures, without exponent noise. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, useGrouping: abs >= 10_000 });
}

/** The results as an aligned text table (name, value, baseline, ratio, target, pass). */
export function formatTable(rows: BenchRow[]): string {
  const header = ["bench", "name", "value", "baseline", "ratio", "target", "pass"];
  const cells = rows.map((r) => [
    r.bench,
    r.name,
    `${formatNumber(r.value)} ${r.unit}`,
    r.baseline === undefined ? "—" : `${formatNumber(r.baseline)} ${r.unit}`,
    r.ratio === undefined ? "—" : `${formatNumber(r.ratio)}×`,
    r.target ?? "—",
    r.pass === undefined ? "—" : r.pass ? "✓" : "✗",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => s.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "─".repeat(w))), ...cells.map(line)].join("\n");
}

/** Counts the results that met their target and those that missed it. */
export function tally(results: BenchResult[]): { passed: number; failed: number } {
  return {
    passed: results.filter((r) => r.pass === true).length,
    failed: results.filter((r) => r.pass === false).length,
  };
}

/** Prints `results` of one benchmark file as a table (for a file run on its own). */
export function printResults(bench: string, results: BenchResult[]): void {
  console.log(formatTable(results.map((r) => ({ ...r, bench }))));
  const { passed, failed } = tally(results);
  console.log(`${bench}: ${passed} passed, ${failed} failed targets`);
}

function isBenchResult(value: unknown): value is BenchResult {
  const r = value as BenchResult;
  return typeof r === "object" && r !== null && typeof r.name === "string" &&
    typeof r.value === "number" && typeof r.unit === "string";
}

/** Runs one file's `run()` in this process and prints its results on one marked line. */
async function runOne(file: string): Promise<void> {
  const mod = await import(pathToFileURL(file).href) as { run?: () => Promise<unknown> };
  if (typeof mod.run !== "function") {
    throw new Error(`${basename(file)} does not export run(): Promise<BenchResult[]>`);
  }
  const results = await mod.run();
  if (!Array.isArray(results) || !results.every(isBenchResult)) {
    throw new Error(`${basename(file)} run() did not return BenchResult[]`);
  }
  console.log(`${RESULT_MARK}${JSON.stringify(results)}`);
}

/**
 * Runs `file` in a child `deno run --allow-all` and collects its results. The child's stderr
 * (progress) goes straight through; stdout lines other than the results line are echoed.
 */
export async function runFile(file: string): Promise<FileOutcome> {
  const bench = basename(file, ".ts");
  const started = performance.now();
  const env = Deno.env.toObject();
  delete env.RUST_BACKTRACE;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", fileURLToPath(import.meta.url), "--one", file],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  let results: BenchResult[] | undefined;
  for (const line of new TextDecoder().decode(output.stdout).split("\n")) {
    if (line.startsWith(RESULT_MARK)) results = JSON.parse(line.slice(RESULT_MARK.length));
    else if (line.trim()) console.log(line);
  }
  if (!output.success || !results) {
    const why = output.success ? "printed no results" : `exited with status ${output.code}`;
    return { bench, results: [], seconds, error: `${bench} ${why}` };
  }
  return { bench, results, seconds };
}

async function main(args: string[]): Promise<number> {
  if (args[0] === "--one") {
    if (!args[1]) throw new Error("--one expects a benchmark file");
    await runOne(args[1]);
    return 0;
  }
  const files = await findBenchFiles(BENCH_DIR, args);
  if (!files.length) {
    console.error(
      `✗ No benchmark in bench/ matches ${args.map((a) => `"${a}"`).join(", ")} ` +
        `(expected part of a *_bench.ts file name, e.g. core)`,
    );
    return 2;
  }
  const outcomes: FileOutcome[] = [];
  for (const file of files) {
    console.error(`▶ ${basename(file)}`);
    const outcome = await runFile(file);
    console.error(
      `  ${outcome.error ? `✗ ${outcome.error}` : "done"} in ${outcome.seconds.toFixed(1)} s`,
    );
    outcomes.push(outcome);
  }
  const rows = outcomes.flatMap((o) => o.results.map((r) => ({ ...r, bench: o.bench })));
  console.log();
  console.log(formatTable(rows));
  const broken = outcomes.filter((o) => o.error);
  for (const o of broken) console.log(`✗ ${o.error}`);
  const { passed, failed } = tally(rows);
  const brokenNote = broken.length ? `, ${broken.length} benchmark file(s) failed to run` : "";
  console.log(`bench: ${passed} passed, ${failed} failed targets${brokenNote}`);
  return broken.length ? 1 : 0;
}

if (import.meta.main) {
  // No top-level await: a benchmark that imports this module (for `printResults`) must not wait
  // on this module's own evaluation while `--one` imports it.
  main(Deno.args).then((code) => Deno.exit(code), (err) => {
    console.error(err);
    Deno.exit(1);
  });
}
