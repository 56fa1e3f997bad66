import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { HarveyError, UsageError } from "../src/errors.ts";
import { fsError } from "../src/hf/part_file.ts";
import { parseRepoFile, pullFile, type PullInterrupted, type PullOptions } from "../src/hf/pull.ts";
import { destinationPath, parseRevision, resolveUrl } from "../src/hf/repo_path.ts";
import { type FakeHf, type FakeHfOptions, startFakeHf } from "./fixtures/fake_hf.ts";

const REPO = "acme/tiny-GGUF";
const FILE = "tiny-Q4_K_M.gguf";
const SIZE = 3 * 2 ** 20 + 12_345;
const FILES: FakeHfOptions["files"] = [
  { repo: REPO, path: FILE, size: SIZE },
  { repo: REPO, path: "quants/tiny-Q8_0.gguf", size: 1_500_000 },
  { repo: REPO, path: "config.json", size: 1000, lfs: false },
  { repo: REPO, path: "big-F16.gguf", size: 130 * 2 ** 20 + 3 },
];

interface Env {
  fake: FakeHf;
  dir: string;
  out: { write(text: string): void; text(): string };
  pull(extra?: Partial<PullOptions>): ReturnType<typeof pullFile>;
}

async function withFake(
  opts: FakeHfOptions,
  fn: (env: Env) => Promise<void>,
): Promise<void> {
  const fake = await startFakeHf({ files: FILES, ...opts });
  const dir = await Deno.makeTempDir({ prefix: "harvey_pull_" });
  let written = "";
  const out = { write: (t: string) => void (written += t), text: () => written };
  const pull = (extra: Partial<PullOptions> = {}) =>
    pullFile({
      repo: REPO,
      file: FILE,
      dir,
      endpoint: fake.url,
      out,
      retries: 0,
      retryDelayMs: 1,
      ...extra,
    });
  try {
    await fn({ fake, dir, out, pull });
  } finally {
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function cdnGets(fake: FakeHf) {
  return fake.requests.filter((r) => r.server === "cdn" && r.method === "GET");
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function assertInstalled(env: Env, file = FILE, name = file): Promise<string> {
  const bytes = await Deno.readFile(join(env.dir, name));
  const want = env.fake.content(REPO, file);
  assert.ok(sameBytes(bytes, want), `${name} has the bytes the server holds`);
  assert.equal(await exists(join(env.dir, `${name}.part`)), false, "no part left");
  assert.equal(await exists(join(env.dir, `${name}.part.json`)), false, "no sidecar left");
  return sha256(bytes);
}

Deno.test("parseRepoFile and friends accept repository paths and refuse escapes", () => {
  assert.deepEqual(parseRepoFile("bartowski/Qwen2.5-7B-Instruct-GGUF", "a/b.gguf"), {
    repo: "bartowski/Qwen2.5-7B-Instruct-GGUF",
    file: "a/b.gguf",
  });
  for (const repo of ["owner", "a/b/c", "../x", "a/..", "/a/b", "a/b c", "", "a/-b"]) {
    assert.throws(() => parseRepoFile(repo, "x.gguf"), UsageError, `repo ${repo}`);
  }
  for (const file of ["../x.gguf", "a/../../x", "/etc/passwd", "a//b", "a\\b", "", "a/", "."]) {
    assert.throws(() => parseRepoFile("o/n", file), UsageError, `file ${file}`);
  }
  assert.throws(() => parseRepoFile("o/n", "../x"), /"\.\." is not allowed/);
  assert.equal(parseRevision("refs/pr/1"), "refs/pr/1");
  for (const rev of ["", "../main", "a b", "/main", "main/", "x\ny"]) {
    assert.throws(() => parseRevision(rev), UsageError, `revision ${JSON.stringify(rev)}`);
  }
  assert.equal(
    resolveUrl(new URL("https://hf.example/mirror/"), "o/n", "refs/pr/1", "a b/c#.gguf").href,
    "https://hf.example/mirror/o/n/resolve/refs%2Fpr%2F1/a%20b/c%23.gguf",
  );
  assert.equal(destinationPath("/models", "deep/folder/x.gguf"), join("/models", "x.gguf"));
});

Deno.test("a clean pull installs the exact bytes, verified against the hub's sha256", async () => {
  await withFake({}, async (env) => {
    const r = await env.pull();
    const got = await assertInstalled(env);
    const want = await env.fake.sha256(REPO, FILE);
    assert.equal(got, want);
    assert.deepEqual(
      { ...r, commit: undefined },
      {
        path: join(env.dir, FILE),
        sha256: want,
        bytes: SIZE,
        skipped: false,
        resumedFrom: 0,
        verified: true,
        commit: undefined,
      },
    );
    assert.match(r.commit ?? "", /^[0-9a-f]{40}$/);
    const gets = cdnGets(env.fake);
    assert.equal(gets.length, 1);
    assert.equal(gets[0].headers.range, undefined);
    assert.equal(gets[0].headers["accept-encoding"], "identity");
    assert.match(
      env.out.text(),
      /Saved .*tiny-Q4_K_M\.gguf \(3\.01 MiB, sha256 [0-9a-f]{64}, verified\)/,
    );
  });
});

Deno.test("a file in a folder keeps its base name; a non-LFS file is hashed but not verified", async () => {
  await withFake({}, async (env) => {
    const r = await env.pull({ file: "quants/tiny-Q8_0.gguf" });
    assert.equal(r.path, join(env.dir, "tiny-Q8_0.gguf"));
    await assertInstalled(env, "quants/tiny-Q8_0.gguf", "tiny-Q8_0.gguf");
    assert.equal(r.verified, true);

    const c = await env.pull({ file: "config.json" });
    const got = await assertInstalled(env, "config.json");
    assert.equal(c.sha256, got);
    assert.equal(c.verified, false);
    assert.match(env.out.text(), /not verified/);
    const right = await env.pull({ file: "config.json", sha256: got.toUpperCase() });
    assert.equal(right.skipped, true);
  });
});

Deno.test("a dropped connection is resumed with a Range request", async (t) => {
  await t.step("automatically, within the same pull", async () => {
    await withFake({}, async (env) => {
      env.fake.behaviour.dropAt = 1_234_567;
      const r = await env.pull({ retries: 2 });
      await assertInstalled(env);
      const gets = cdnGets(env.fake);
      assert.equal(gets.length, 2);
      assert.equal(gets[0].headers.range, undefined);
      const m = /^bytes=(\d+)-$/.exec(gets[1].headers.range ?? "");
      assert.ok(m, `second request asks for a range, got ${gets[1].headers.range}`);
      assert.equal(Number(m[1]), r.resumedFrom);
      assert.ok(r.resumedFrom > 0 && r.resumedFrom <= 1_234_567);
      assert.match(env.out.text(), /broke at .*retrying in/);
      assert.match(env.out.text(), /Resuming tiny-Q4_K_M\.gguf at/);
      assert.equal(r.sha256, await env.fake.sha256(REPO, FILE));
    });
  });

  await t.step("by the next pull, after one that gave up", async () => {
    await withFake({}, async (env) => {
      env.fake.behaviour.dropAt = 2_000_001;
      await assert.rejects(env.pull(), (err: Error) => {
        assert.ok(err instanceof HarveyError);
        assert.match(err.message, /broke at .* run the same pull again to resume/);
        return true;
      });
      const part = join(env.dir, `${FILE}.part`);
      const kept = (await Deno.stat(part)).size;
      assert.ok(kept > 0 && kept <= 2_000_001, `kept ${kept}`);
      const side = JSON.parse(await Deno.readTextFile(`${part}.json`));
      assert.equal(side.size, SIZE);
      assert.equal(side.etag, await env.fake.sha256(REPO, FILE));
      assert.equal(await exists(join(env.dir, FILE)), false, "nothing installed");

      const r = await env.pull();
      assert.equal(r.resumedFrom, kept);
      assert.equal(cdnGets(env.fake).at(-1)?.headers.range, `bytes=${kept}-`);
      await assertInstalled(env);
    });
  });
});

Deno.test("a part without its sidecar is not trusted", async () => {
  await withFake({}, async (env) => {
    env.fake.behaviour.dropAt = 1_000_000;
    await assert.rejects(env.pull(), HarveyError);
    await Deno.remove(join(env.dir, `${FILE}.part.json`));
    const r = await env.pull();
    assert.equal(r.resumedFrom, 0);
    assert.match(env.out.text(), /\.part has no record of where it came from: starting over/);
    assert.equal(cdnGets(env.fake).at(-1)?.headers.range, undefined);
    await assertInstalled(env);
  });
});

Deno.test("a large file resumes intact and says when the last fsync is slow", async () => {
  await withFake({}, async (env) => {
    env.fake.behaviour.dropAt = 100 * 2 ** 20 + 17;
    const r = await env.pull({ file: "big-F16.gguf", retries: 1, syncNoticeMs: 0 });
    assert.match(env.out.text(), /Writing big-F16\.gguf to the disk…\nSaved /);
    assert.ok(r.resumedFrom > 64 * 2 ** 20);
    assert.equal(r.sha256, await env.fake.sha256(REPO, "big-F16.gguf"));
    assert.equal(r.verified, true);
    await assertInstalled(env, "big-F16.gguf");
  });
});

Deno.test("a weak X-Linked-Etag still verifies the download", async () => {
  await withFake({}, async (env) => {
    env.fake.behaviour.weakEtag = true;
    const r = await env.pull();
    assert.equal(r.verified, true);
    assert.equal(r.sha256, await env.fake.sha256(REPO, FILE));
  });
});

Deno.test("a server without Range support restarts cleanly", async () => {
  await withFake({}, async (env) => {
    env.fake.behaviour.noRange = true;
    env.fake.behaviour.dropAt = 1_500_000;
    await assert.rejects(env.pull(), HarveyError);
    assert.ok((await Deno.stat(join(env.dir, `${FILE}.part`))).size > 0);
    const r = await env.pull();
    assert.equal(r.resumedFrom, 0);
    assert.match(cdnGets(env.fake)[1].headers.range ?? "", /^bytes=\d+-$/);
    assert.match(env.out.text(), /does not support resuming: starting over/);
    await assertInstalled(env);
  });
});

Deno.test("a file that changed on the server since the part was started restarts", async () => {
  await withFake({}, async (env) => {
    env.fake.behaviour.dropAt = 1_000_000;
    await assert.rejects(env.pull(), HarveyError);
    const before = await env.fake.sha256(REPO, FILE);
    env.fake.replaceFile(REPO, FILE, { seed: 777 });
    const r = await env.pull();
    assert.equal(r.resumedFrom, 0);
    assert.match(env.out.text(), /changed on the server .*: starting over/);
    const got = await assertInstalled(env);
    assert.equal(got, await env.fake.sha256(REPO, FILE));
    assert.notEqual(got, before);
  });
});

Deno.test("a wrong hash installs nothing and removes the part", async (t) => {
  await t.step("bytes that do not match the hub's sha256", async () => {
    await withFake({}, async (env) => {
      env.fake.behaviour.corrupt = true;
      const want = await env.fake.sha256(REPO, FILE);
      await assert.rejects(env.pull(), (err: Error) => {
        assert.ok(err instanceof HarveyError);
        assert.match(err.message, /^Checksum mismatch for tiny-Q4_K_M\.gguf: expected sha256/);
        assert.ok(err.message.includes(want), "names the expected hash");
        const got = /got ([0-9a-f]{64})/.exec(err.message)?.[1];
        assert.ok(got && got !== want, "names the computed hash");
        return true;
      });
      assert.deepEqual([...Deno.readDirSync(env.dir)], []);
    });
  });

  await t.step("a --sha256 the server contradicts fails before downloading", async () => {
    await withFake({}, async (env) => {
      const wrong = "ab".repeat(32);
      await assert.rejects(env.pull({ sha256: wrong }), /not abab.* as given with --sha256/);
      assert.equal(cdnGets(env.fake).length, 0);
      assert.deepEqual([...Deno.readDirSync(env.dir)], []);
    });
  });

  await t.step("a --sha256 that the bytes do not match", async () => {
    await withFake({}, async (env) => {
      const wrong = "cd".repeat(32);
      await assert.rejects(
        env.pull({ file: "config.json", sha256: wrong }),
        /Checksum mismatch .*expected sha256 cdcd.* \(given with --sha256\), got [0-9a-f]{64}/,
      );
      assert.deepEqual([...Deno.readDirSync(env.dir)], []);
    });
  });

  await t.step("a --sha256 that is not 64 hex digits", async () => {
    await withFake({}, async (env) => {
      await assert.rejects(env.pull({ sha256: "xyz" }), UsageError);
      assert.equal(env.fake.requests.length, 0);
    });
  });
});

Deno.test("an aborted pull keeps a resumable part and the next pull resumes", async () => {
  await withFake({}, async (env) => {
    const stallAt = 2 * 2 ** 20 + 99;
    env.fake.behaviour.stallAt = stallAt;
    const ctrl = new AbortController();
    const seen: number[] = [];
    const pulling = env.pull({
      signal: ctrl.signal,
      progressIntervalMs: 0,
      progress: (p) => {
        seen.push(p.received);
        if (p.received >= stallAt) ctrl.abort();
      },
    });
    await assert.rejects(pulling, (err: Error) => {
      assert.equal(err.name, "PullInterrupted");
      assert.ok(err instanceof HarveyError);
      assert.match((err as PullInterrupted).message, /kept in .*\.part; run the same pull again/);
      return true;
    });
    assert.ok(seen.length > 1 && seen.every((n, i) => i === 0 || n >= seen[i - 1]));
    const part = join(env.dir, `${FILE}.part`);
    assert.equal((await Deno.stat(part)).size, stallAt);
    assert.equal(JSON.parse(await Deno.readTextFile(`${part}.json`)).size, SIZE);
    assert.equal(await exists(join(env.dir, FILE)), false);

    env.fake.behaviour.stallAt = undefined;
    const r = await env.pull();
    assert.equal(r.resumedFrom, stallAt);
    assert.equal(cdnGets(env.fake).at(-1)?.headers.range, `bytes=${stallAt}-`);
    await assertInstalled(env);
  });
});

Deno.test("a pull whose process is killed is resumed by the next one", async () => {
  await withFake({}, async (env) => {
    const stallAt = 1_700_000;
    env.fake.behaviour.stallAt = stallAt;
    const stalled = env.fake.stalled();
    const pullUrl = new URL("../src/hf/pull.ts", import.meta.url).href;
    const code = `import { pullFile } from ${JSON.stringify(pullUrl)};
await pullFile(${
      JSON.stringify({ repo: REPO, file: FILE, dir: env.dir, endpoint: env.fake.url })
    });`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-prompt", code],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const part = join(env.dir, `${FILE}.part`);
    try {
      const exited = child.status.then((s) => {
        throw new Error(`The pulling child exited early with status ${s.code}`);
      });
      await Promise.race([stalled, exited]);
      // The server has sent its bytes; wait until the child has written them all.
      for (let i = 0; i < 1000 && (await Deno.stat(part)).size < stallAt; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    assert.equal((await Deno.stat(part)).size, stallAt);
    env.fake.behaviour.stallAt = undefined;
    const r = await env.pull();
    assert.equal(r.resumedFrom, stallAt);
    assert.equal(cdnGets(env.fake).at(-1)?.headers.range, `bytes=${stallAt}-`);
    await assertInstalled(env);
  });
});

Deno.test("a second pull of the same file while one runs is refused", async () => {
  await withFake({}, async (env) => {
    env.fake.behaviour.stallAt = 0; // nothing arrives: the running pull's part stays empty
    const ctrl = new AbortController();
    const stalled = env.fake.stalled();
    const first = env.pull({ signal: ctrl.signal });
    await stalled;
    await assert.rejects(env.pull(), /Another pull is already downloading/);
    assert.ok(await exists(join(env.dir, `${FILE}.part`)), "the running pull's part stays");
    ctrl.abort();
    await assert.rejects(first, { name: "PullInterrupted" });
  });
});

Deno.test("a connection that goes quiet counts as dropped", async () => {
  await withFake({}, async (env) => {
    env.fake.behaviour.stallAt = 1_000_000;
    await assert.rejects(env.pull({ idleTimeoutMs: 100 }), /No data from localhost:\d+ for 100 ms/);
    env.fake.behaviour.stallAt = undefined;
    const r = await env.pull();
    assert.ok(r.resumedFrom > 0);
    await assertInstalled(env);
  });
});

Deno.test("a part that was complete when the pull was killed is installed without downloading", async () => {
  await withFake({}, async (env) => {
    env.fake.behaviour.dropAt = SIZE - 10;
    await assert.rejects(env.pull(), HarveyError);
    const part = join(env.dir, `${FILE}.part`);
    // The last bytes arrived just before the process died: put them in place by hand.
    await Deno.writeFile(part, env.fake.content(REPO, FILE));
    const r = await env.pull();
    assert.equal(r.resumedFrom, SIZE);
    assert.equal(r.verified, true);
    assert.equal(cdnGets(env.fake).at(-1)?.headers.range, `bytes=${SIZE}-`);
    await assertInstalled(env);
  });
});

Deno.test("the token reaches the hub and never the cdn host", async () => {
  await withFake({ token: "hf_secret" }, async (env) => {
    env.fake.behaviour.dropAt = 1_000_000;
    await env.pull({ token: "hf_secret", retries: 1 });
    await assertInstalled(env);
    const hub = env.fake.requests.filter((r) => r.server === "hub");
    const cdn = env.fake.requests.filter((r) => r.server === "cdn");
    assert.equal(hub.length, 2);
    assert.equal(cdn.length, 2);
    for (const r of hub) {
      assert.equal(r.headers.authorization, "Bearer hf_secret");
      assert.equal(r.headers.host, `127.0.0.1:${env.fake.hubPort}`);
    }
    for (const r of cdn) {
      assert.equal(r.headers.authorization, undefined);
      assert.equal(r.headers.host, `localhost:${env.fake.cdnPort}`);
    }
  });
});

Deno.test("the token is not sent to another port of the same host", async () => {
  await withFake({ cdnHost: "127.0.0.1" }, async (env) => {
    await env.pull({ token: "hf_any" });
    await assertInstalled(env);
    const cdn = env.fake.requests.filter((r) => r.server === "cdn");
    assert.equal(cdn[0].headers.host, `127.0.0.1:${env.fake.cdnPort}`);
    assert.equal(cdn[0].headers.authorization, undefined);
  });
});

Deno.test("an existing verified file means nothing to do", async (t) => {
  await t.step("checked against the hub's hash", async () => {
    await withFake({}, async (env) => {
      await env.pull();
      const before = env.fake.requests.length;
      const r = await env.pull();
      assert.equal(r.skipped, true);
      assert.equal(r.sha256, await env.fake.sha256(REPO, FILE));
      assert.equal(r.bytes, SIZE);
      assert.match(env.out.text(), /already there and its sha256 matches: nothing to do/);
      const probes = env.fake.requests.slice(before);
      assert.deepEqual(probes.map((q) => `${q.server} ${q.method}`), ["hub HEAD"]);
    });
  });

  await t.step("checked against --sha256, without asking the server", async () => {
    await withFake({}, async (env) => {
      await Deno.writeFile(join(env.dir, FILE), env.fake.content(REPO, FILE));
      const r = await env.pull({ sha256: await env.fake.sha256(REPO, FILE) });
      assert.equal(r.skipped, true);
      assert.equal(env.fake.requests.length, 0);
    });
  });

  await t.step("a file the server gives no sha256 for is downloaded again", async () => {
    await withFake({}, async (env) => {
      await env.pull({ file: "config.json" });
      const r = await env.pull({ file: "config.json" });
      assert.equal(r.skipped, false);
      assert.match(env.out.text(), /gives no sha256 to check it against: downloading it again/);
      await assertInstalled(env, "config.json");
    });
  });

  await t.step("a different file of the same name is replaced", async () => {
    await withFake({}, async (env) => {
      await Deno.writeTextFile(join(env.dir, FILE), "an older model");
      const r = await env.pull();
      assert.equal(r.skipped, false);
      assert.match(
        env.out.text(),
        /its sha256 is [0-9a-f]{64}, not [0-9a-f]{64}: downloading it again/,
      );
      await assertInstalled(env);
    });
  });
});

Deno.test("401, 403 and 404 answers are explained", async (t) => {
  const cases: [string, FakeHfOptions, Partial<PullOptions>, RegExp][] = [
    [
      "private repository without a token",
      { token: "hf_right" },
      {},
      /^Repository acme\/tiny-GGUF was not found on 127\.0\.0\.1:\d+, or it is private \(HTTP 401\): check the owner\/name, or set HF_TOKEN/,
    ],
    [
      "a wrong token",
      { token: "hf_right" },
      { token: "hf_wrong" },
      /rejected HF_TOKEN as invalid \(HTTP 401\)/,
    ],
    [
      "unknown repository with a token",
      {},
      { repo: "acme/nothing", token: "hf_x" },
      /^Repository acme\/nothing not found on 127\.0\.0\.1:\d+ \(HTTP 404\): check the owner\/name$/,
    ],
    [
      "unknown revision",
      {},
      { revision: "v9" },
      /^Revision "v9" not found in acme\/tiny-GGUF \(HTTP 404\)/,
    ],
    [
      "unknown file",
      {},
      { file: "nope/missing.gguf" },
      /^File nope\/missing\.gguf not found in acme\/tiny-GGUF at revision main \(HTTP 404\)/,
    ],
    [
      "gated repository with a token",
      { gated: [REPO] },
      { token: "hf_x" },
      /^Repository acme\/tiny-GGUF is gated \(HTTP 403\): accept its terms at http:\/\/127\.0\.0\.1:\d+\/acme\/tiny-GGUF/,
    ],
  ];
  for (const [name, fakeOpts, pullOpts, message] of cases) {
    await t.step(name, async () => {
      await withFake(fakeOpts, async (env) => {
        await assert.rejects(env.pull(pullOpts), (err: Error) => {
          assert.ok(err instanceof HarveyError, `${err}`);
          assert.match(err.message, message);
          assert.ok(!err.message.includes("\n") && !err.message.endsWith("."));
          return true;
        });
        assert.deepEqual([...Deno.readDirSync(env.dir)], [], "nothing written");
        assert.ok(!env.fake.requests.some((r) => r.server === "cdn"));
      });
    });
  }
});

Deno.test("server errors are retried and network failures are explained", async (t) => {
  await t.step("a 500 from the hub is retried", async () => {
    await withFake({}, async (env) => {
      env.fake.behaviour.failCount = 1;
      await env.pull({ retries: 1 });
      assert.match(env.out.text(), /failed with HTTP 500 .*: retrying in/);
      await assertInstalled(env);
    });
  });
  await t.step("an endpoint nobody listens on", async () => {
    const fake = await startFakeHf({ files: FILES });
    const endpoint = fake.url;
    await fake.close();
    const dir = await Deno.makeTempDir();
    try {
      await assert.rejects(
        pullFile({ repo: REPO, file: FILE, dir, endpoint, retries: 0 }),
        /Could not reach 127\.0\.0\.1:\d+: connection refused \(1 attempt\); check your network/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("file system problems are explained", async (t) => {
  await t.step("a destination folder that is a file", async () => {
    await withFake({}, async (env) => {
      const notDir = join(env.dir, "models");
      await Deno.writeTextFile(notDir, "");
      await assert.rejects(env.pull({ dir: notDir }), /it is a file, not a folder/);
      await assert.rejects(
        env.pull({ dir: join(notDir, "sub") }),
        /Cannot create the folder .*a part of the path is a file, not a folder/,
      );
    });
  });
  await t.step("a full disk", () => {
    const full = Object.assign(new Error("No space left on device (os error 28)"), {
      code: "ENOSPC",
    });
    const err = fsError(full, "write", "/m/x.gguf.part", { received: 2 ** 20, total: 3 * 2 ** 20 });
    assert.equal(
      err.message,
      "Disk full while trying to write /m/x.gguf.part; 1.00 MiB of 3.00 MiB kept: free some " +
        "space (about 2.00 MiB more needed) and run the same pull again to resume",
    );
    const denied = fsError(new Deno.errors.PermissionDenied("nope"), "write", "/m/x.part");
    assert.match(denied.message, /permission denied; choose a folder you can write to with --dir/);
  });
});

Deno.test("progress is a redrawn bar on a terminal and plain lines otherwise", async () => {
  await withFake({}, async (env) => {
    const infos: number[] = [];
    await env.pull({ progressIntervalMs: 0, progress: (p) => infos.push(p.received) });
    const plain = env.out.text();
    assert.match(
      plain,
      /^tiny-Q4_K_M\.gguf: [\d.]+ MiB of 3\.01 MiB \(\d+%\), [\d.]+ \w+\/s, about \S+ left$/m,
    );
    assert.ok(!plain.includes("\r"));
    assert.equal(infos.at(-1), SIZE);
    assert.ok(infos.every((n, i) => i === 0 || n >= infos[i - 1]));
  });
  await withFake({}, async (env) => {
    await env.pull({ isTerminal: true, progressIntervalMs: 0 });
    const text = env.out.text().replaceAll("\x1b[K", "<EL>");
    assert.match(text, /\r100% \[#{20}\] 3\.01 MiB \/ 3\.01 MiB {2}[\d.]+ \w+\/s<EL>\n/);
    assert.match(text, /\r +\d+% \[#*-+\] [\d.]+ \w+ \/ 3\.01 MiB .* ETA \S+<EL>/);
  });
});
