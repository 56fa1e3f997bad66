/**
 * `harvey pull` against curl: a 1 GiB file from the fake Hugging Face on loopback (hub
 * redirect, then the cdn), pulled by Harvey in a child `deno run` process (sha256 computed and
 * verified, fsync, rename) and by `curl -s -L -o FILE URL`, alternately, best of three each.
 * Also Harvey's peak memory (the child's VmHWM) and how fast the fixture serves (curl to
 * /dev/null), to show the fixture is not the bottleneck.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/pull_bench.ts`.
 *
 * @module
 */

import { join } from "node:path";
import { pullFile } from "../src/hf/pull.ts";
import { startFakeHf } from "../test/fixtures/fake_hf.ts";
import type { BenchResult } from "./result.ts";

const REPO = "bench/big-GGUF";
const FILE = "big-Q4_K_M.gguf";
const SIZE = 1 << 30;
const ROUNDS = 3;
const MIB = 1 << 20;

interface ChildReport {
  ms: number;
  bytes: number;
  sha256: string;
  verified: boolean;
  vmHwmKb: number;
}

/** Runs the benchmark and returns its figures. */
export async function run(): Promise<BenchResult[]> {
  const fake = await startFakeHf({ files: [{ repo: REPO, path: FILE, size: SIZE }] });
  const dir = await Deno.makeTempDir({ prefix: "harvey_pull_bench_" });
  try {
    const want = await fake.sha256(REPO, FILE);
    const url = `${fake.url}/${REPO}/resolve/main/${FILE}`;
    const serveMs = await timeCurl(url, "/dev/null");
    let curlBest = Infinity;
    let harveyBest = Infinity;
    let peakKb = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const curlFile = join(dir, `curl-${FILE}`);
      curlBest = Math.min(curlBest, await timeCurl(url, curlFile));
      const size = (await Deno.stat(curlFile)).size;
      if (size !== SIZE) throw new Error(`curl downloaded ${size} bytes, not ${SIZE}`);
      await Deno.remove(curlFile);

      const report = await pullInChild(fake.url, dir);
      if (report.sha256 !== want || report.bytes !== SIZE || !report.verified) {
        throw new Error(`Harvey's pull is wrong: ${JSON.stringify(report)}`);
      }
      harveyBest = Math.min(harveyBest, report.ms);
      peakKb = Math.max(peakKb, report.vmHwmKb);
      await Deno.remove(join(dir, FILE));
    }
    const rate = (ms: number) => SIZE / MIB / (ms / 1000);
    const ratio = rate(harveyBest) / rate(curlBest);
    const peakMb = peakKb / 1024;
    return [
      {
        name: "pull 1 GiB, sha256 verified (Harvey vs curl -L -o)",
        value: round1(rate(harveyBest)),
        unit: "MiB/s",
        baseline: round1(rate(curlBest)),
        ratio: Math.round(ratio * 100) / 100,
        target: "≥ 0.8× curl",
        pass: ratio >= 0.8,
      },
      {
        name: "pull 1 GiB, peak memory (child VmHWM)",
        value: round1(peakMb),
        unit: "MB",
        target: "≤ 100 MB",
        pass: peakMb <= 100,
      },
      {
        name: "fake hub + cdn serving 1 GiB (curl to /dev/null)",
        value: round1(rate(serveMs)),
        unit: "MiB/s",
        target: "faster than both clients",
        pass: serveMs <= Math.min(curlBest, harveyBest),
      },
    ];
  } finally {
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

async function timeCurl(url: string, out: string): Promise<number> {
  const start = performance.now();
  const r = await new Deno.Command("curl", {
    args: ["-s", "-L", "-o", out, url],
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  if (!r.success) {
    throw new Error(`curl failed (${r.code}): ${new TextDecoder().decode(r.stderr).trim()}`);
  }
  return ms;
}

async function pullInChild(endpoint: string, dir: string): Promise<ChildReport> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--no-prompt",
      import.meta.filename ?? "",
      "--child",
      endpoint,
      dir,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { RUST_BACKTRACE: "0" },
  }).output();
  const text = new TextDecoder().decode(r.stdout).trim();
  if (!r.success) {
    throw new Error(`Harvey's pull failed: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
  return JSON.parse(text.split("\n").at(-1) ?? "") as ChildReport;
}

async function child(endpoint: string, dir: string): Promise<void> {
  const start = performance.now();
  const r = await pullFile({ repo: REPO, file: FILE, dir, endpoint, retries: 0 });
  const ms = performance.now() - start;
  const status = await Deno.readTextFile("/proc/self/status");
  const vmHwmKb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
  const report: ChildReport = {
    ms,
    bytes: r.bytes,
    sha256: r.sha256,
    verified: r.verified,
    vmHwmKb,
  };
  console.log(JSON.stringify(report));
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") {
    await child(Deno.args[1], Deno.args[2]);
  } else {
    const results = await run();
    console.table(results);
  }
}
