/**
 * `/search` against ripgrep on the same tree, in the same run.
 *
 * Generates (deterministic content, into a temporary folder removed at the end) a tree of
 * 20,500 source-like files of 2–8 KB in nested folders, plus 300 binary files, a `.git` folder
 * and a `node_modules` folder (listed in `.gitignore`, so ripgrep skips it too) whose text files
 * also contain the needles, so a search that failed to skip them would be caught. Then, for
 * each pattern, one warm-up run of each tool and five timed runs (three for the last), alternating
 * Harvey (`searchFiles` in this process) and `rg` (a child process, output read through a
 * pipe), and reports the medians and their ratio:
 *
 * - rare literal `harveyNeedle` (~21 matches, every file searched): **the typical case** —
 *   looking up an identifier — and the one the target (≤ 3× ripgrep) applies to;
 * - rare regex `harveyNeedle_\d+\(`: same tree, through the regex path;
 * - regex without a literal to prefilter on, `\d{4}[xyz]`: every file is decoded;
 * - common regex `return \w+`, capped at 100 matches: Harvey stops at the cap; `rg` output is
 *   read until its 101st line and the pipe is then closed (what `rg … | head -101` does);
 * - common regex `return \w+` with no cap: every match of the tree (~258,000 lines).
 *
 * `rg` runs as `rg -n [--max-count 101] PATTERN DIR` with its default threads (all cores);
 * Harvey's search runs on one thread, in a Worker of its own so that a pattern that backtracks
 * can be stopped (a time limit, Ctrl-C): starting it costs ~20 ms, which the capped common row
 * shows. Every file with matches is checked against its path before its lines are kept (a few
 * resolutions and look-ups, src/search/scan.ts), which the uncapped row pays 20,500 times;
 * `/search` itself always caps at 100 matches. For the
 * rare patterns the two tools' matches (path and line) are compared and must agree.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/search_bench.ts`
 *
 * @module
 */
import { join } from "node:path";
import type { BenchResult } from "./result.ts";
import { printResults } from "./run_all.ts";
import { searchFiles } from "../src/search/mod.ts";

const RG_PATHS = ["/usr/bin/rg", "rg"];
const RUNS = 5;
const TARGET_RATIO = 3;
const CAP = 100;

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ("user value index count result buffer config handler stream token model path " +
  "request response cache session server client error message options state items entry " +
  "node parent child record store query").split(" ");

/** Counts of what {@linkcode generateTree} wrote. */
interface Tree {
  dir: string;
  sourceFiles: number;
  bytes: number;
}

/** Writes the benchmark tree into `dir` (same content every time). */
export function generateTree(dir: string): Tree {
  const rnd = prng(42);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const w = () => pick(WORDS);
  const cap = (s: string) => s[0].toUpperCase() + s.slice(1);
  const templates = [
    () => `const ${w()}${cap(w())} = ${w()}.${w()}(${w()}, ${Math.floor(rnd() * 1000)});`,
    () => `  if (${w()} === undefined) return ${w()}${cap(w())};`,
    () => `export function ${w()}${cap(w())}(${w()}: string, ${w()}: number): ${cap(w())} {`,
    () => `  // ${w()} the ${w()} before the ${w()} is ${w()}ed`,
    () => `  for (const ${w()} of ${w()}s) total += ${w()}.${w()};`,
    () => `}`,
    () => ``,
    () => `import { ${cap(w())}, ${w()}${cap(w())} } from "./${w()}_${w()}.ts";`,
    () => `    await this.${w()}.${w()}(${JSON.stringify(`${w()} ${w()}`)});`,
  ];
  const pool = Array.from({ length: 4000 }, () => pick(templates)());
  const enc = new TextEncoder();
  const body = (size: number, needle: string | null) => {
    const lines: string[] = [];
    for (let len = 0; len < size;) {
      const line = pick(pool);
      lines.push(line);
      len += line.length + 1;
    }
    if (needle) lines.splice(Math.floor(rnd() * lines.length), 0, needle);
    return lines.join("\n") + "\n";
  };
  const exts = [".ts", ".ts", ".ts", ".js", ".py", ".go", ".md"];
  let n = 0;
  let bytes = 0;
  for (let a = 0; a < 20; a++) {
    for (let b = 0; b < 25; b++) {
      const mod = join(dir, `pkg${a}`, `mod${b}`);
      Deno.mkdirSync(join(mod, "internal"), { recursive: true });
      for (let c = 0; c < 41; c++) {
        const needle = n % 997 === 0 ? `  const found = harveyNeedle_${n}(input);` : null;
        const data = enc.encode(body(2048 + Math.floor(rnd() * 6144), needle));
        const name = `${c < 28 ? "" : "internal/"}file_${c}${exts[c % exts.length]}`;
        Deno.writeFileSync(join(mod, name), data);
        bytes += data.length;
        n++;
      }
    }
  }
  // Binary files: a NUL near the start, the needle after it.
  for (let i = 0; i < 300; i++) {
    const folder = join(dir, `pkg${i % 20}`, "assets");
    Deno.mkdirSync(folder, { recursive: true });
    const data = new Uint8Array(4096);
    for (let k = 0; k < data.length; k++) data[k] = Math.floor(rnd() * 256);
    data.set(enc.encode("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), 0);
    data.set(enc.encode(`\nharveyNeedle_${i}(x)\n`), 2000);
    Deno.writeFileSync(join(folder, `image_${i}.png`), data);
  }
  // Folders both tools must skip, full of text that matches.
  for (let i = 0; i < 300; i++) {
    const folder = join(dir, ".git", "objects", String(i % 16));
    Deno.mkdirSync(folder, { recursive: true });
    Deno.writeTextFileSync(join(folder, `obj_${i}`), body(3000, `harveyNeedle_${i}(git)`));
  }
  for (let i = 0; i < 500; i++) {
    const folder = join(dir, "node_modules", `dep${i % 25}`, "lib");
    Deno.mkdirSync(folder, { recursive: true });
    Deno.writeTextFileSync(join(folder, `index_${i}.js`), body(3000, `harveyNeedle_${i}(dep)`));
  }
  Deno.writeTextFileSync(join(dir, ".gitignore"), "node_modules/\n");
  return { dir, sourceFiles: n, bytes };
}

/** Runs rg and reads its output; with `limit`, closes the pipe after that many lines. */
async function runRg(rg: string, args: string[], limit = Infinity): Promise<string[]> {
  const child = new Deno.Command(rg, { args, stdout: "piped", stderr: "null" }).spawn();
  const decoder = new TextDecoder();
  const lines: string[] = [];
  let rest = "";
  for await (const chunk of child.stdout) {
    const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = parts.pop()!;
    lines.push(...parts);
    if (lines.length >= limit) break; // leaving the loop cancels the stream: rg gets EPIPE
  }
  await child.status;
  return lines.slice(0, limit);
}

/** The ripgrep executable to use, or null when there is none. */
async function findRg(): Promise<string | null> {
  for (const rg of RG_PATHS) {
    try {
      const out = await new Deno.Command(rg, { args: ["--version"], stdout: "null" }).output();
      if (out.success) return rg;
    } catch {
      // not there: try the next
    }
  }
  return null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const round = (x: number) => Math.round(x * 10) / 10;

interface Case {
  name: string;
  pattern: string;
  /** Harvey's cap; rg's output is read up to cap + 1 lines. */
  cap: number;
  /** Compare the two tools' matches. */
  verify: boolean;
  typical?: boolean;
  /** Timed runs of each tool (default RUNS). */
  runs?: number;
}

const CASES: Case[] = [
  {
    name: "rare literal (typical)",
    pattern: "harveyNeedle",
    cap: CAP,
    verify: true,
    typical: true,
  },
  { name: "rare regex", pattern: "harveyNeedle_\\d+\\(", cap: CAP, verify: true },
  { name: "regex, no literal", pattern: "\\d{4}[xyz]", cap: CAP, verify: true },
  { name: "common regex, cap 100", pattern: "return \\w+", cap: CAP, verify: false },
  { name: "common regex, no cap", pattern: "return \\w+", cap: 10_000_000, verify: false, runs: 3 },
];

/** Generates the tree, times Harvey and ripgrep on it, removes it. */
export async function run(): Promise<BenchResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "harvey_search_bench_" });
  try {
    const t0 = performance.now();
    const tree = generateTree(dir);
    console.error(
      `search bench: ${tree.sourceFiles} source files (${(tree.bytes / 1e6).toFixed(0)} MB), ` +
        `300 binary, 800 in .git and node_modules, written in ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
    );
    const rg = await findRg();
    if (!rg) {
      console.error(
        "search bench: ripgrep (rg) not found; install it with `apt-get install ripgrep` " +
          "to compare. Harvey's times are reported without a baseline.",
      );
    }
    const results: BenchResult[] = [];
    for (const c of CASES) results.push(await measure(c, dir, rg));
    return results;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function measure(c: Case, dir: string, rg: string | null): Promise<BenchResult> {
  const harvey = () => searchFiles(c.pattern, { root: dir, maxMatches: c.cap });
  const rgArgs = ["-n", ...(c.cap < 1e6 ? ["--max-count", String(c.cap + 1)] : []), c.pattern, dir];
  const ripgrep = () => runRg(rg!, rgArgs, c.cap + 1);
  // Warm-up (page cache, JIT), and the check that both tools find the same lines.
  const first = await harvey();
  if (rg) {
    const theirs = await ripgrep();
    if (c.verify) {
      const ours = first.matches.map((m) => `${m.path}:${m.line}`).sort();
      const prefix = `${dir}/`;
      const rgs = theirs.map((l) => /^(.*?:\d+):/.exec(l.slice(prefix.length))![1]).sort();
      if (JSON.stringify(ours) !== JSON.stringify(rgs)) {
        throw new Error(
          `${c.name}: Harvey found ${ours.length} matches, ripgrep ${rgs.length}; they must agree`,
        );
      }
    }
  }
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < (c.runs ?? RUNS); i++) {
    let t = performance.now();
    await harvey();
    ours.push(performance.now() - t);
    if (rg) {
      t = performance.now();
      await ripgrep();
      theirs.push(performance.now() - t);
    }
  }
  const value = round(median(ours));
  console.error(
    `search bench: ${c.name} /${c.pattern}/: ${first.matches.length} matches` +
      `${first.truncated ? " (capped)" : ""}, ${first.filesSearched} files; Harvey ${
        ours.map(round).join(" ")
      } ms${rg ? `; rg ${theirs.map(round).join(" ")} ms` : ""}`,
  );
  const result: BenchResult = { name: `search ${c.name}`, value, unit: "ms" };
  if (c.typical) result.target = `≤ ${TARGET_RATIO}× ripgrep`;
  if (!rg) return result;
  const baseline = round(median(theirs));
  const ratio = Math.round((median(ours) / median(theirs)) * 100) / 100;
  return {
    ...result,
    baseline,
    ratio,
    ...(c.typical ? { pass: ratio <= TARGET_RATIO } : {}),
  };
}

if (import.meta.main) {
  printResults("search", await run());
}
