/**
 * `harvey pull` against curl: a 1 GiB file from the fake Hugging Face on loopback (hub
 * redirect, then the cdn), pulled by Harvey in a child `deno run` process (sha256 computed and
 * verified, fsync, rename) and by `curl -s -L -o FILE URL`, alternately, best of three each.
 * Also Harvey's peak memory (the child's VmHWM), how fast the fixture serves (curl to
 * /dev/null, to show the fixture is not the bottleneck), and two floors measured the same way
 * in a child: a bare Deno `fetch` into a file (no hash, no fsync), and the same loop doing the
 * work the issue requires and nothing else (sha256 on every chunk, fsync at the end). Harvey
 * against the second floor is the cost of everything else: resumability, sidecar, progress.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/pull_bench.ts`.
 *
 * @module
 */

import { createHash } from "node:crypto";
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
    let rawBest = Infinity;
    let floorBest = Infinity;
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

      const raw = await pullInChild(fake.url, dir, "--raw");
      if (raw.bytes !== SIZE) throw new Error(`The bare fetch got ${raw.bytes} bytes`);
      rawBest = Math.min(rawBest, raw.ms);
      await Deno.remove(join(dir, `raw-${FILE}`));

      const floor = await pullInChild(fake.url, dir, "--raw-hash-fsync");
      if (floor.sha256 !== want) throw new Error(`The floor's sha256 is ${floor.sha256}`);
      floorBest = Math.min(floorBest, floor.ms);
      await Deno.remove(join(dir, `raw-${FILE}`));
    }
    const rate = (ms: number) => SIZE / MIB / (ms / 1000);
    /** A throughput row: `ms` against `baselineMs` for the same GiB. */
    const versus = (name: string, ms: number, baselineMs: number): BenchResult => ({
      name,
      value: round1(rate(ms)),
      unit: "MiB/s",
      baseline: round1(rate(baselineMs)),
      ratio: Math.round((rate(ms) / rate(baselineMs)) * 100) / 100,
    });
    const ratio = rate(harveyBest) / rate(curlBest);
    const peakMb = peakKb / 1024;
    return [
      {
        ...versus("pull 1 GiB, sha256 verified (Harvey vs curl -L -o)", harveyBest, curlBest),
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
      versus("bare Deno fetch into a file, no hash (runtime floor, vs curl)", rawBest, curlBest),
      versus(
        "bare fetch + sha256 + fsync: the required work, nothing else (vs curl)",
        floorBest,
        curlBest,
      ),
      versus(
        "Harvey vs that floor (the cost of resuming, sidecar, progress)",
        harveyBest,
        floorBest,
      ),
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

async function pullInChild(
  endpoint: string,
  dir: string,
  mode = "--child",
): Promise<ChildReport> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--no-prompt",
      import.meta.filename ?? "",
      mode,
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

/**
 * The floors: fetch (redirect followed) into a file with the same buffers and nothing else, or,
 * with `required`, also a sha256 of every chunk on this thread and an fsync at the end.
 */
async function rawChild(endpoint: string, dir: string, required: boolean): Promise<void> {
  const start = performance.now();
  const res = await fetch(`${endpoint}/${REPO}/resolve/main/${FILE}`, {
    headers: { "accept-encoding": "identity" },
  });
  if (!res.body) throw new Error(`No body: HTTP ${res.status}`);
  using file = await Deno.open(join(dir, `raw-${FILE}`), { write: true, createNew: true });
  const reader = res.body.getReader({ mode: "byob" });
  const buffers = [new ArrayBuffer(MIB), new ArrayBuffer(MIB)];
  let which = 0;
  let bytes = 0;
  let pending: Promise<void> = Promise.resolve();
  const hash = required ? createHash("sha256") : undefined;
  for (;;) {
    const r = await reader.read(new Uint8Array(buffers[which]));
    await pending;
    if (r.done) break;
    const view = r.value;
    bytes += view.byteLength;
    pending = (async () => {
      let done = 0;
      while (done < view.byteLength) done += await file.write(view.subarray(done));
    })();
    hash?.update(view);
    buffers[which] = view.buffer as ArrayBuffer;
    which ^= 1;
  }
  if (required) await file.syncData();
  const ms = performance.now() - start;
  const sha256 = hash?.digest("hex") ?? "";
  console.log(JSON.stringify({ ms, bytes, sha256, verified: false, vmHwmKb: 0 }));
}

if (import.meta.main) {
  if (Deno.args[0] === "--raw" || Deno.args[0] === "--raw-hash-fsync") {
    await rawChild(Deno.args[1], Deno.args[2], Deno.args[0] === "--raw-hash-fsync");
  } else if (Deno.args[0] === "--child") {
    await child(Deno.args[1], Deno.args[2]);
  } else {
    const results = await run();
    console.table(results);
  }
}
