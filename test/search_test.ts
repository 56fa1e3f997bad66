/**
 * The search engine behind `/search` (src/search/): matches, order, cap, what is skipped,
 * symlinks, the start path and its sandbox check, and patterns the prefilters must not miss.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { HarveyError } from "../src/errors.ts";
import { createPairFinder } from "../src/search/byte_kernel.ts";
import { searchFiles, type SearchMatch, SearchTimeoutError } from "../src/search/mod.ts";
import { runHarvey } from "./harvey_child.ts";
import { testSession } from "./helpers.ts";
import { startSwapper } from "./swapper.ts";

type Files = Record<string, string | Uint8Array>;

/** A temporary folder with `files` in it, removed afterwards. */
async function withTree(files: Files, fn: (root: string) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "harvey_search_" });
  try {
    const root = join(base, "ws");
    await Deno.mkdir(root);
    for (const [path, body] of Object.entries(files)) {
      const abs = join(root, path);
      await Deno.mkdir(dirname(abs), { recursive: true });
      if (typeof body === "string") await Deno.writeTextFile(abs, body);
      else await Deno.writeFile(abs, body);
    }
    await fn(await Deno.realPath(root));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

const where = (ms: SearchMatch[]) => ms.map((m) => `${m.path}:${m.line}`);

/** A sandbox-like check: relative to root, and refused when it leaves the root. */
function sandbox(root: string): (path: string) => Promise<string> {
  return (path) => {
    const abs = resolve(root, path);
    if (abs !== root && !abs.startsWith(`${root}/`)) {
      return Promise.reject(new HarveyError(`Path "${path}" is outside the workspace`));
    }
    return Promise.resolve(abs);
  };
}

Deno.test("searchFiles finds matching lines with their paths, numbers and text", async () => {
  await withTree({
    "src/b.ts": "const a = 1;\n  fetchData(url);\nreturn fetchData;\n",
    "src/a.ts": "// no match here\nawait fetchData(x)\r\n",
    "src-x/c.ts": "fetchData\n",
    "README.md": "Call fetchData() first.",
    "empty.txt": "",
  }, async (root) => {
    const r = await searchFiles("fetchData", { root });
    assert.deepEqual(r.matches, [
      { path: "README.md", line: 1, text: "Call fetchData() first." },
      { path: "src/a.ts", line: 2, text: "await fetchData(x)" },
      { path: "src/b.ts", line: 2, text: "  fetchData(url);" },
      { path: "src/b.ts", line: 3, text: "return fetchData;" },
      { path: "src-x/c.ts", line: 1, text: "fetchData" },
    ]);
    assert.equal(r.truncated, false);
    assert.equal(r.filesSearched, 5);
    // A regular expression, anchored at line starts; one entry per line however many hits.
    const re = await searchFiles("^\\s*fetch\\w+\\(", { root });
    assert.deepEqual(where(re.matches), ["src/b.ts:2"]);
    const twice = await searchFiles("a", { root, start: join(root, "src/b.ts") });
    assert.deepEqual(where(twice.matches), ["src/b.ts:1", "src/b.ts:2", "src/b.ts:3"]);
  });
});

Deno.test("searchFiles reports no match as an empty result", async () => {
  await withTree({ "a.txt": "alpha\n", "b/c.txt": "beta\n" }, async (root) => {
    assert.deepEqual(await searchFiles("gamma", { root }), {
      matches: [],
      truncated: false,
      filesSearched: 2,
    });
    assert.deepEqual((await searchFiles("gam+a|delta", { root })).matches, []);
  });
});

Deno.test("searchFiles stops at the cap and says so, always keeping the first matches", async () => {
  const files: Files = {};
  // 3 folders × 5 files × 12 matching lines = 180 matches.
  for (let d = 0; d < 3; d++) {
    for (let f = 0; f < 5; f++) {
      files[`d${d}/f${f}.txt`] = Array.from({ length: 12 }, (_, i) => `hit ${i}\nmiss\n`).join("");
    }
  }
  await withTree(files, async (root) => {
    const all = await searchFiles("hit", { root, maxMatches: 1000 });
    assert.equal(all.matches.length, 180);
    assert.equal(all.truncated, false);
    const capped = await searchFiles("hit", { root });
    assert.equal(capped.matches.length, 100, "100 by default");
    assert.equal(capped.truncated, true);
    assert.deepEqual(capped.matches, all.matches.slice(0, 100), "the first 100 in path order");
    const five = await searchFiles("hit \\d+", { root, maxMatches: 5 });
    assert.deepEqual(where(five.matches), [
      "d0/f0.txt:1",
      "d0/f0.txt:3",
      "d0/f0.txt:5",
      "d0/f0.txt:7",
      "d0/f0.txt:9",
    ]);
    assert.equal(five.truncated, true);
    const exact = await searchFiles("hit", { root, maxMatches: 180 });
    assert.equal(exact.matches.length, 180);
    assert.equal(exact.truncated, false, "exactly the cap is not truncated");
    await assert.rejects(searchFiles("hit", { root, maxMatches: 0 }), HarveyError);
  });
});

Deno.test("searchFiles skips binary files: a NUL byte in the first 8 KB", async () => {
  const enc = new TextEncoder();
  const binary = new Uint8Array([...enc.encode("PNG"), 0, ...enc.encode("\nneedle\n")]);
  const late = new Uint8Array(9000 + 10);
  late.fill(0x61); // "a"
  late.set(enc.encode("\nneedle\n"), 0);
  late[9005] = 0; // NUL only after the first 8 KB: text
  await withTree({ "img.png": binary, "late.txt": late, "text.txt": "needle\n" }, async (root) => {
    const r = await searchFiles("needle", { root });
    assert.deepEqual(where(r.matches), ["late.txt:2", "text.txt:1"]);
    assert.equal(r.filesSearched, 2, "the binary file is not counted");
  });
});

Deno.test("searchFiles skips .git, node_modules and hidden files and folders", async () => {
  await withTree({
    ".git/config": "needle\n",
    "node_modules/pkg/index.js": "needle\n",
    "src/node_modules/x.js": "needle\n",
    ".env": "needle\n",
    ".github/workflows/ci.yml": "needle\n",
    "src/.cache": "needle\n",
    "src/main.ts": "needle\n",
    "src/app.env.ts": "needle\n",
  }, async (root) => {
    const r = await searchFiles("needle", { root });
    assert.deepEqual(where(r.matches), ["src/app.env.ts:1", "src/main.ts:1"]);
    assert.equal(r.filesSearched, 2);
  });
});

Deno.test("searchFiles never follows a symlink out of the root, nor a symlinked folder", async () => {
  const base = await Deno.makeTempDir({ prefix: "harvey_search_out_" });
  try {
    await Deno.writeTextFile(join(base, "secret.txt"), "needle outside\n");
    await Deno.mkdir(join(base, "outdir"));
    await Deno.writeTextFile(join(base, "outdir/x.txt"), "needle in outside folder\n");
    await withTree({ "in/real.txt": "needle inside\n", "a.txt": "needle\n" }, async (root) => {
      await Deno.symlink(join(base, "secret.txt"), join(root, "secret_link.txt"));
      await Deno.symlink(join(base, "outdir"), join(root, "outdir_link"));
      await Deno.symlink(join(root, "in"), join(root, "in_link")); // inside, but a folder
      await Deno.symlink(join(root, "in/real.txt"), join(root, "z_link.txt")); // inside, a file
      await Deno.symlink(join(root, "missing.txt"), join(root, "broken_link.txt"));
      const r = await searchFiles("needle", { root });
      assert.deepEqual(r.matches, [
        { path: "a.txt", line: 1, text: "needle" },
        { path: "in/real.txt", line: 1, text: "needle inside" },
        { path: "z_link.txt", line: 1, text: "needle inside" },
      ]);
      // A start path that is a link out of the root is refused too.
      await assert.rejects(
        searchFiles("needle", { root, start: join(root, "outdir_link") }),
        (err: unknown) => err instanceof HarveyError && /outside the workspace/.test(err.message),
      );
    });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("searchFiles rejects an invalid pattern with one line", async () => {
  await withTree({ "a.txt": "(\n" }, async (root) => {
    for (
      const [pattern, message] of [
        ["(", 'Invalid pattern "(": Unterminated group'],
        ["a[", 'Invalid pattern "a[": Unterminated character class'],
        ["*x", 'Invalid pattern "*x": Nothing to repeat'],
      ]
    ) {
      await assert.rejects(searchFiles(pattern, { root }), (err: unknown) => {
        assert.ok(err instanceof HarveyError);
        assert.equal(err.message, message);
        return true;
      });
    }
  });
});

Deno.test("searchFiles restricts the search to PATH and refuses a PATH outside the root", async (t) => {
  await withTree({
    "src/a.ts": "needle\n",
    "src/deep/b.ts": "needle\n",
    "test/a_test.ts": "needle\n",
  }, async (root) => {
    const resolve = sandbox(root);
    await t.step("a folder", async () => {
      const r = await searchFiles("needle", { root, start: "src", resolve });
      assert.deepEqual(where(r.matches), ["src/a.ts:1", "src/deep/b.ts:1"]);
      assert.equal(r.filesSearched, 2);
      const abs = await searchFiles("needle", { root, start: join(root, "src/deep") });
      assert.deepEqual(where(abs.matches), ["src/deep/b.ts:1"]);
    });
    await t.step("a file", async () => {
      const r = await searchFiles("needle", { root, start: "test/a_test.ts", resolve });
      assert.deepEqual(where(r.matches), ["test/a_test.ts:1"]);
    });
    await t.step("outside: the sandbox's refusal is passed on", async () => {
      await assert.rejects(
        searchFiles("needle", { root, start: "../", resolve }),
        /Path "\.\.\/" is outside the workspace/,
      );
    });
    await t.step("outside: refused even without a sandbox check", async () => {
      await assert.rejects(
        searchFiles("needle", { root, start: dirname(root) }),
        (err: unknown) =>
          err instanceof HarveyError && /is outside the workspace/.test(err.message),
      );
    });
    await t.step("missing", async () => {
      await assert.rejects(
        searchFiles("needle", { root, start: "nope", resolve }),
        /Nothing to search at "nope"/,
      );
    });
  });
});

Deno.test("searchFiles finds what a line-by-line RegExp test finds, for tricky patterns", async () => {
  const lines = [
    "color colour colr",
    "only color",
    "only bar",
    "abbbc abc ac",
    "foo bar",
    "x = a{2}",
    "price: $5.00 (approx)",
    "  indented",
    "tail   ",
    "ünïcödé ✓ 😀 text",
    "path/to/file.ts",
    "fooBar foo_bar",
    "",
    "a\\b backslash",
    "the end",
  ];
  const text = lines.join("\r\n") + "\n";
  const patterns = [
    "colou?r",
    "ab+c",
    "a[bc]+c",
    "ab{0}c",
    "foo|bar",
    "(foo|bar) bar",
    "^\\s+\\w+",
    "\\s$",
    "^$",
    "\\$\\d\\.\\d+",
    "\\(approx\\)",
    "😀",
    "✓ 😀?",
    "✓ 😀+ t",
    "ünï",
    "c.d.",
    "file\\.ts$",
    "(?<=foo)Bar",
    "foo(?!Bar)",
    "(?i:FOOBAR)",
    "end(?![^])",
    "(?<![^])\\s+\\w",
    "\\bend\\b",
    "a\\\\b",
    "x = a\\{2\\}",
    "e\\s+e",
    "end\\nthe",
    "\\x61\\u0062c",
    "a{2}",
    "\\d+",
    ".",
  ];
  // All the lines in one CRLF file, and each line in a file of its own (where a prefilter
  // on the whole file matters).
  const files: Files = { "all.txt": text };
  lines.forEach((l, i) => files[`one/${String(i).padStart(2, "0")}.txt`] = `${l}\n`);
  await withTree(files, async (root) => {
    for (const pattern of patterns) {
      const line = new RegExp(pattern, "mu");
      const expected = [
        ...text.split("\n").slice(0, -1).flatMap((l, i) =>
          line.test(l) ? [`all.txt:${i + 1}`] : []
        ),
        ...lines.flatMap((l, i) => line.test(l) ? [`one/${String(i).padStart(2, "0")}.txt:1`] : []),
      ];
      const r = await searchFiles(pattern, { root, maxMatches: 1000 });
      assert.deepEqual(where(r.matches), expected, `pattern ${pattern}`);
    }
  });
});

Deno.test("searchFiles handles files larger than its read buffer, and very long lines", async () => {
  // ~1.2 MB: several buffer refills; matches near the start, the middle and the end.
  const body: string[] = [];
  for (let i = 1; i <= 40_000; i++) {
    body.push(i % 13_333 === 0 ? `line ${i} needle` : `line ${i} hay`);
  }
  const long = `${"x".repeat(600_000)} needle ${"y".repeat(1000)}`;
  await withTree({
    "big.txt": body.join("\n") + "\nneedle at the end",
    "long.txt": `first\n${long}\nlast needle\n`,
  }, async (root) => {
    const r = await searchFiles("needle", { root });
    assert.deepEqual(where(r.matches), [
      "big.txt:13333",
      "big.txt:26666",
      "big.txt:39999",
      "big.txt:40001",
      "long.txt:2",
      "long.txt:3",
    ]);
    const cut = r.matches[4].text;
    assert.ok(cut.length <= 302, `clipped to about 300 characters, got ${cut.length}`);
    assert.match(cut, /^…x+ needle y+…$/);
  });
});

Deno.test("searchFiles stops when its signal is aborted", async () => {
  await withTree({ "a.txt": "needle\n" }, async (root) => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      searchFiles("needle", { root, signal: controller.signal }),
      (err: unknown) => err instanceof DOMException && err.name === "AbortError",
    );
  });
});

Deno.test("the byte-pair kernel finds what a plain loop finds, in place and in other buffers", () => {
  const finder = createPairFinder(1);
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const naive = (v: Uint8Array, from: number, to: number, a: number, b: number, gap: number) => {
    for (let p = from; p + gap < Math.min(to, v.length); p++) {
      if (v[p] === a && v[p + gap] === b) return p;
    }
    return -1;
  };
  for (let round = 0; round < 3000; round++) {
    const len = rnd(200);
    const offset = rnd(100); // views that do not start at the buffer's start
    const alphabet = 2 + rnd(6); // few byte values: many candidates, many near misses
    const inPlace = finder.buffer.subarray(offset, offset + len);
    const other = new Uint8Array(len);
    for (let i = 0; i < len; i++) inPlace[i] = other[i] = rnd(alphabet);
    const a = rnd(alphabet);
    const b = rnd(alphabet);
    const gap = rnd(20);
    const from = rnd(len + 1);
    const to = rnd(len + 20);
    const expected = naive(inPlace, from, to, a, b, gap);
    assert.equal(finder.find(inPlace, from, to, a, b, gap), expected, `round ${round}`);
    assert.equal(finder.find(other, from, to, a, b, gap), expected, `round ${round}, js`);
  }
});

Deno.test("a symlink swapped in during a search never leaks an outside file (racing swapper)", async () => {
  const base = await Deno.makeTempDir({ prefix: "harvey_search_race_" });
  try {
    await Deno.writeTextFile(join(base, "secret.txt"), "needle SECRET outside\n");
    await Deno.mkdir(join(base, "outdir"));
    for (let i = 0; i < 20; i++) {
      await Deno.writeTextFile(join(base, "outdir", `f${i}.txt`), "needle SECRET folder\n");
    }
    const files: Files = { "sub/keep.txt": "x\n" };
    for (let i = 0; i < 20; i++) files[`sub/f${i}.txt`] = "needle inside\n";
    for (let i = 0; i < 40; i++) files[`pad/p${i}.txt`] = "needle padding\n";
    files["a/target.txt"] = "needle inside\n";
    await withTree(files, async (root) => {
      const TRIES = 100;
      let leaks = 0;
      let inside = 0;
      for (
        const [mode, path, outside] of [
          ["file", join(root, "a/target.txt"), join(base, "secret.txt")],
          ["folder", join(root, "sub"), join(base, "outdir")],
        ] as const
      ) {
        const swapper = await startSwapper(mode, path, outside);
        try {
          for (let i = 0; i < TRIES; i++) {
            const r = await searchFiles("needle", { root, maxMatches: 1000 });
            leaks += r.matches.filter((m) => m.text.includes("SECRET")).length;
            inside += r.matches.length;
          }
        } finally {
          await swapper.stop();
        }
      }
      assert.equal(leaks, 0, `${leaks} outside lines in ${2 * TRIES} searches`);
      assert.ok(inside > 0);
    });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

/** A line on which /(a+)+$/ backtracks exponentially: it would run for minutes. */
const REDOS_LINE = `${"a".repeat(40)}b\n`;

Deno.test("a pattern that backtracks for minutes is stopped at the time limit", async () => {
  await withTree({ "src/slow.txt": REDOS_LINE }, async (root) => {
    await assert.rejects(
      searchFiles("(a+)+$", { root, timeoutMs: 300 }),
      (err: unknown) =>
        err instanceof SearchTimeoutError &&
        /stopped after 0\.3 s: \/\(a\+\)\+\$\/ takes too long/.test(err.message),
    );
    // The next search runs as usual.
    assert.equal((await searchFiles("aab", { root })).matches.length, 1);
  });
});

Deno.test("Ctrl-C stops a search that is stuck in its regular expression", async () => {
  await withTree({ "src/slow.txt": REDOS_LINE }, async (root) => {
    const controller = new AbortController();
    const stop = setTimeout(() => controller.abort(new Error("stopped by the test")), 200);
    try {
      await assert.rejects(
        searchFiles("(a+)+$", { root, timeoutMs: 0, signal: controller.signal }),
        /stopped by the test/,
      );
    } finally {
      clearTimeout(stop);
    }
  });
});

Deno.test("/search says in one line that its time limit stopped it, or that Ctrl-C did", async () => {
  const s = await testSession({
    files: { "agents/harvey.yaml": "search_timeout: 300ms\n", "src/slow.txt": REDOS_LINE },
  });
  try {
    assert.equal(await s.run("/search '(a+)+$'"), 1);
    assert.match(
      s.err.text,
      /✗ line 1: The search was stopped after 0\.3 s: .* simplify the pattern, or raise search_timeout in agents\/harvey\.yaml\n$/,
    );
    await s.agent.config.update([[["search_timeout"], "0"]]);
    const controller = new AbortController();
    const stop = setTimeout(() => controller.abort(), 200);
    s.err.text = "";
    assert.equal(await s.run("/search '(a+)+$'", { signal: controller.signal }), 1);
    clearTimeout(stop);
    assert.match(s.err.text, /Search interrupted; nothing was added to the conversation/);
    assert.ok(!s.agent.history.some((m) => m.content.includes("/search")));
  } finally {
    await s.close();
  }
});

Deno.test("/search runs under exactly the task's flags (its worker has the same permissions)", async () => {
  await withTree({ "src/a.ts": "const needle = 1;\n" }, async (root) => {
    const r = await runHarvey(["--llamafile-url", "http://127.0.0.1:9", "--run", "-"], {
      cwd: root,
      env: { OLLAMA_HOST: "127.0.0.1:9" },
      stdin: "/search needle\n",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /src\/a\.ts:1: const needle = 1;/);
  });
});
