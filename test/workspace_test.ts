import assert from "node:assert/strict";
import { join } from "node:path";
import { SandboxError, Workspace, type WorkspaceOptions } from "../src/workspace.ts";
import { HarveyError } from "../src/errors.ts";
import { startSwapper } from "./swapper.ts";

const SECRET = "TOP SECRET - must never be read or changed";

interface Fixture extends AsyncDisposable {
  base: string;
  root: string;
  outside: string;
  ws: Workspace;
  /** Every file, folder and link outside the root, with contents and times. */
  snapshot(): Promise<string>;
}

/**
 * base/ws is the workspace; base/outside and base/ws-evil (a sibling whose name starts with
 * the root's) hold secrets; ws holds files, symlinks that stay inside and symlinks that leave.
 */
async function fixture(options: WorkspaceOptions = {}): Promise<Fixture> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "harvey_ws_" }));
  const root = join(base, "ws");
  const outside = join(base, "outside");
  const evil = join(base, "ws-evil");
  for (const d of [join(root, "sub/deep"), join(outside, "dir"), evil]) {
    await Deno.mkdir(d, { recursive: true });
  }
  await Deno.writeTextFile(join(outside, "secret.txt"), SECRET);
  await Deno.writeTextFile(join(outside, "dir/inner.txt"), SECRET);
  await Deno.writeTextFile(join(evil, "secret.txt"), SECRET);
  await Deno.writeTextFile(join(root, "notes.txt"), "notes");
  await Deno.writeTextFile(join(root, "sub/a.txt"), "a");
  const links: [string, string][] = [
    ["link_file", join(outside, "secret.txt")],
    ["link_dir", outside],
    ["rel_link", "../outside/secret.txt"],
    ["dangling_out", join(outside, "new.txt")],
    ["dangling_out_dir", join(outside, "newdir")],
    ["sub/deep/out_link", outside],
    ["chain", "link_dir"],
    ["loop_a", "loop_b"],
    ["loop_b", "loop_a"],
    ["inner_link", "notes.txt"],
    ["inner_dir_link", "sub"],
    ["dangling_in", "sub/later.txt"],
  ];
  for (const [link, target] of links) await Deno.symlink(target, join(root, link));
  const ws = await Workspace.open(root, options);
  return {
    base,
    root,
    outside,
    ws,
    snapshot: async () => JSON.stringify([await walk(outside), await walk(evil)]),
    [Symbol.asyncDispose]: () => Deno.remove(base, { recursive: true }),
  };
}

async function walk(dir: string, out: string[] = []): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  for (const name of names.sort()) {
    const p = join(dir, name);
    const info = await Deno.lstat(p);
    const time = `${info.mtime?.getTime()}:${info.birthtime?.getTime()}`;
    if (info.isSymlink) out.push(`L ${p} -> ${await Deno.readLink(p)}`);
    else if (info.isDirectory) (out.push(`D ${p} ${info.mtime?.getTime()}`), await walk(p, out));
    else out.push(`F ${p} ${info.mode} ${time} ${await Deno.readTextFile(p)}`);
  }
  return out;
}

type Op = (ws: Workspace, path: string) => Promise<unknown>;
const READ_OPS: Record<string, Op> = {
  resolve: (ws, p) => ws.resolve(p),
  readFile: (ws, p) => ws.readFile(p),
  readTextFile: (ws, p) => ws.readTextFile(p, { maxBytes: 10 }),
  readDir: (ws, p) => ws.readDir(p),
  stat: (ws, p) => ws.stat(p),
  exists: (ws, p) => ws.exists(p),
};
const ALL_OPS: Record<string, Op> = {
  ...READ_OPS,
  writeFile: (ws, p) => ws.writeFile(p, "pwned"),
  mkdir: (ws, p) => ws.mkdir(p),
  remove: (ws, p) => ws.remove(p),
  removeRecursive: (ws, p) => ws.remove(p, { recursive: true }),
};

/** Asserts that `fn` is refused with a one-line SandboxError. */
async function refused(fn: () => Promise<unknown>, what: string): Promise<SandboxError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SandboxError, `${what}: expected a SandboxError, got ${caught}`);
  assert.ok(!caught.message.includes("\n") && caught.message.length < 400, what);
  assert.ok(caught instanceof HarveyError);
  return caught;
}

// Each entry: a path (or one built from the fixture) and whether it may only be read (system
// files: the test runs as root, so a broken sandbox must never get to write them).
const ESCAPES: [string | ((f: Fixture) => string), "read"?][] = [
  ["../outside/secret.txt"],
  [".."],
  ["../"],
  ["./.."],
  ["./../outside/secret.txt"],
  ["././../.."],
  ["a/../../outside/secret.txt"],
  ["sub/deep/../../../outside/secret.txt"],
  ["sub/./../../outside/dir/"],
  ["../ws-evil/secret.txt"],
  ["../../../../../../../../etc/passwd", "read"],
  ["/etc/passwd", "read"],
  ["/etc/", "read"],
  ["/", "read"],
  ["/proc/self/root/etc/passwd", "read"],
  [(f) => join(f.outside, "secret.txt")],
  [(f) => `${f.root}/../outside/secret.txt`],
  [(f) => `${f.root}-evil/secret.txt`],
  [(f) => `${f.root}/link_dir/secret.txt`],
  ["~"],
  ["~/.ssh/id_rsa"],
  ["~root/secret"],
  ["link_file"],
  ["link_dir"],
  ["link_dir/"],
  ["link_dir/secret.txt"],
  ["link_dir/dir"],
  ["link_dir/dir/inner.txt"],
  ["rel_link"],
  ["sub/deep/out_link"],
  ["sub/deep/out_link/secret.txt"],
  ["chain/secret.txt"],
  ["inner_dir_link/../link_dir/dir"],
  ["dangling_out"],
  ["dangling_out_dir"],
  ["dangling_out_dir/x.txt"],
  ["loop_a"],
  ["loop_b/x"],
  ["notes.txt\0../../outside/secret.txt"],
  ["\0"],
  [""],
  ["a/".repeat(2100)],
  ["../".repeat(1400) + "etc/passwd", "read"],
  ["x".repeat(300)],
  ["sub/" + "y".repeat(256) + "/../../../outside/secret.txt"],
  ["\u2024\u2024/outside/secret.txt"],
  ["\u2025/outside/secret.txt"],
  ["\uFF0E\uFF0E/outside/secret.txt"],
  ["\uFE52\uFE52/outside/secret.txt"],
  ["..\u2215outside\u2215secret.txt"],
  ["..\uFF0Foutside\uFF0Fsecret.txt"],
  ["..\\outside\\secret.txt"],
  ["sub\\..\\..\\outside"],
  ["\\etc\\passwd", "read"],
];

Deno.test("workspace refuses every escape and touches nothing outside", async (t) => {
  await using f = await fixture();
  const before = await f.snapshot();
  assert.ok(ESCAPES.length >= 30);
  for (const [make, mode] of ESCAPES) {
    const path = typeof make === "string" ? make : make(f);
    await t.step(JSON.stringify(path.slice(0, 60)), async () => {
      for (const [name, op] of Object.entries(mode === "read" ? READ_OPS : ALL_OPS)) {
        await refused(() => op(f.ws, path), `${name}(${JSON.stringify(path.slice(0, 60))})`);
      }
      assert.equal(await f.snapshot(), before, "something outside the root changed");
    });
  }
  assert.equal(await Deno.readTextFile(join(f.outside, "secret.txt")), SECRET);
});

Deno.test("workspace error messages are one clear line", async () => {
  await using f = await fixture();
  const out = await refused(() => f.ws.readFile("../x"), "../x");
  assert.equal(out.message, `Path "../x" is outside the workspace ${f.root}`);
  const link = await refused(() => f.ws.readFile("link_dir/secret.txt"), "link");
  assert.equal(
    link.message,
    `Path "link_dir/secret.txt" is outside the workspace ${f.root} (it resolves to ${
      join(f.outside, "secret.txt")
    })`,
  );
  assert.equal((await refused(() => f.ws.stat("a\0b"), "nul")).message, "Path contains a NUL byte");
  assert.match((await refused(() => f.ws.stat("loop_a"), "loop")).message, /symlink loop/);
  assert.match((await refused(() => f.ws.stat("a\\b"), "bs")).message, /backslash/);
  assert.match((await refused(() => f.ws.stat("a/".repeat(2100)), "long")).message, /limit is/);
  assert.match((await refused(() => f.ws.stat("\u2024\u2024/x"), "dots")).message, /look-alike/);
});

Deno.test("odd names either stay inside the root or are refused", async () => {
  await using f = await fixture();
  const before = await f.snapshot();
  const odd = [
    "\u2024\u2024x",
    "...",
    "....//x.txt",
    "a..b",
    "..\u00A0/x",
    "\u2026/x",
    " ../x",
    "file:///etc/passwd",
    "C:/Windows/x",
    "sub/deep/../../\uFF0Ex",
  ];
  for (const path of odd) {
    try {
      await f.ws.writeFile(path, "inside");
    } catch (err) {
      assert.ok(err instanceof SandboxError, `${path}: ${err}`);
      continue;
    }
    const abs = await f.ws.resolve(path);
    assert.ok(abs.startsWith(f.root + "/"), `${path} resolved to ${abs}`);
    assert.equal(await Deno.readTextFile(abs), "inside");
    assert.equal(await f.ws.readTextFile(path), "inside");
    await f.ws.remove(path);
    assert.equal(await f.ws.exists(path), false);
  }
  assert.equal(await f.snapshot(), before);
});

Deno.test("a symlink made after resolve is refused by the operation itself", async () => {
  await using f = await fixture();
  const before = await f.snapshot();
  const abs = await f.ws.resolve("later.txt");
  assert.equal(abs, join(f.root, "later.txt"));
  await Deno.symlink(join(f.outside, "secret.txt"), abs);
  await refused(() => f.ws.readTextFile("later.txt"), "read");
  await refused(() => f.ws.writeFile("later.txt", "pwned"), "write");
  await refused(() => f.ws.remove("later.txt"), "remove");
  assert.equal(await f.snapshot(), before);
});

Deno.test("the moment-of-use check refuses a swap between the check and the use", async (t) => {
  // The hook runs after the path check and before the file system is touched: it swaps the
  // folder "swap" (or the file "f.txt") for a symlink that points outside.
  let swap: "dir" | "file" | null = null;
  let root = "";
  let outside = "";
  await using f = await fixture({
    beforeUse: async () => {
      if (swap === "dir") {
        await Deno.rename(join(root, "swap"), join(root, "swap_old"));
        await Deno.symlink(join(outside, "dir"), join(root, "swap"));
      } else if (swap === "file") {
        await Deno.rename(join(root, "f.txt"), join(root, "f_old.txt"));
        await Deno.symlink(join(outside, "secret.txt"), join(root, "f.txt"));
      }
      swap = null;
    },
  });
  root = f.root;
  outside = f.outside;
  await Deno.writeTextFile(join(outside, "dir/file.txt"), SECRET);
  const before = await f.snapshot();
  const reset = async () => {
    for (const p of ["swap", "swap_old", "f.txt", "f_old.txt"]) {
      await Deno.remove(join(root, p), { recursive: true }).catch(() => {});
    }
    await Deno.mkdir(join(root, "swap"));
    await Deno.writeTextFile(join(root, "swap/file.txt"), "inside");
    await Deno.writeTextFile(join(root, "f.txt"), "inside");
  };
  const cases: [string, "dir" | "file", (ws: Workspace) => Promise<unknown>][] = [
    ["readFile swap/file.txt", "dir", (ws) => ws.readFile("swap/file.txt")],
    ["readFile f.txt", "file", (ws) => ws.readFile("f.txt")],
    ["readDir swap", "dir", (ws) => ws.readDir("swap")],
    ["stat swap/file.txt", "dir", (ws) => ws.stat("swap/file.txt")],
    ["stat f.txt", "file", (ws) => ws.stat("f.txt")],
    ["writeFile swap/file.txt", "dir", (ws) => ws.writeFile("swap/file.txt", "pwned")],
    ["writeFile swap/new/x.txt", "dir", (ws) => ws.writeFile("swap/new/x.txt", "pwned")],
    ["mkdir swap/newdir", "dir", (ws) => ws.mkdir("swap/newdir")],
    ["remove swap/file.txt", "dir", (ws) => ws.remove("swap/file.txt")],
    ["remove swap", "dir", (ws) => ws.remove("swap/", { recursive: true })],
  ];
  for (const [name, kind, op] of cases) {
    await t.step(name, async () => {
      await reset();
      swap = kind;
      await refused(() => op(f.ws), name);
      assert.equal(swap, null, "the hook did not run");
      assert.equal(await f.snapshot(), before);
    });
  }
  await t.step(
    "writing over a file swapped for a link replaces the link, not the target",
    async () => {
      await reset();
      swap = "file";
      await f.ws.writeFile("f.txt", "new");
      assert.equal(swap, null);
      assert.ok((await Deno.lstat(join(root, "f.txt"))).isFile);
      assert.equal(await Deno.readTextFile(join(root, "f.txt")), "new");
      assert.equal(await f.snapshot(), before);
    },
  );
});

Deno.test("open resolves the root, creates agents/ and refuses a bad root", async () => {
  await using f = await fixture();
  assert.equal(f.ws.root, join(f.base, "ws"));
  assert.ok((await Deno.stat(join(f.root, "agents"))).isDirectory);
  await Deno.symlink(f.root, join(f.base, "alias"));
  const alias = await Workspace.open(join(f.base, "alias"));
  assert.equal(alias.root, f.root);
  assert.equal(await alias.readTextFile(join(f.base, "alias/notes.txt")), "notes");
  assert.match(
    (await refused(() => Workspace.open(join(f.base, "none")), "none")).message,
    /does not exist/,
  );
  await refused(() => Workspace.open(join(f.outside, "secret.txt")), "file");
  const other = join(f.base, "other");
  await Deno.mkdir(other);
  await Deno.symlink(f.outside, join(other, "agents"));
  await refused(() => Workspace.open(other), "agents links outside");
  assert.equal(await Deno.readTextFile(join(f.outside, "secret.txt")), SECRET);
});

Deno.test("workspace reads, writes, lists and removes inside the root", async (t) => {
  await using f = await fixture();
  const ws = f.ws;
  await t.step("nested write creates parents", async () => {
    assert.equal(await ws.exists("new/deep/file.txt"), false);
    assert.equal(await ws.resolve("new/deep/file.txt"), join(f.root, "new/deep/file.txt"));
    await ws.writeFile("new/deep/file.txt", "hello wörld");
    assert.equal(await ws.readTextFile("new/deep/file.txt"), "hello wörld");
    assert.equal(await Deno.readTextFile(join(f.root, "new/deep/file.txt")), "hello wörld");
    await ws.writeFile("new/deep/file.txt", new Uint8Array([1, 2, 3]));
    assert.deepEqual(await ws.readFile("new/deep/file.txt"), new Uint8Array([1, 2, 3]));
    assert.equal(await ws.exists("new/deep/file.txt"), true);
    assert.equal((await ws.stat("new/deep")).isDirectory, true);
  });
  await t.step("maxBytes reads a prefix", async () => {
    await ws.writeFile("big.bin", new Uint8Array(200_000).fill(7));
    assert.equal((await ws.readFile("big.bin")).length, 200_000);
    assert.deepEqual(await ws.readFile("big.bin", { maxBytes: 3 }), new Uint8Array([7, 7, 7]));
    assert.equal((await ws.readFile("big.bin", { maxBytes: 70_000 })).length, 70_000);
    assert.equal(await ws.readTextFile("notes.txt", { maxBytes: 0 }), "");
  });
  await t.step("paths with . and .. that stay inside, absolute paths inside", async () => {
    assert.equal(await ws.readTextFile("sub/../notes.txt"), "notes");
    assert.equal(await ws.readTextFile("./sub/./a.txt"), "a");
    assert.equal(await ws.readTextFile(join(f.root, "sub/a.txt")), "a");
    assert.equal(await ws.resolve("."), f.root);
    assert.equal(await ws.resolve("./"), f.root);
    assert.equal(await ws.resolve("sub/"), join(f.root, "sub"));
  });
  await t.step("symlinks that stay inside are followed", async () => {
    assert.equal(await ws.readTextFile("inner_link"), "notes");
    assert.equal(await ws.resolve("inner_link"), join(f.root, "notes.txt"));
    assert.equal(await ws.readTextFile("inner_dir_link/a.txt"), "a");
    await ws.writeFile("inner_link", "edited");
    assert.ok((await Deno.lstat(join(f.root, "inner_link"))).isSymlink);
    assert.equal(await Deno.readTextFile(join(f.root, "notes.txt")), "edited");
    await ws.writeFile("dangling_in", "created");
    assert.equal(await Deno.readTextFile(join(f.root, "sub/later.txt")), "created");
  });
  await t.step("readDir is sorted and typed", async () => {
    const names = (await ws.readDir("inner_dir_link")).map((e) => e.name);
    assert.deepEqual(names, ["a.txt", "deep", "later.txt"]);
    const top = await ws.readDir(".");
    assert.deepEqual(top.map((e) => e.name), [...top.map((e) => e.name)].sort());
    const link = top.find((e) => e.name === "link_dir");
    assert.deepEqual(link, {
      name: "link_dir",
      isFile: false,
      isDirectory: false,
      isSymlink: true,
    });
    assert.equal(top.find((e) => e.name === "sub")?.isDirectory, true);
    assert.equal(top.find((e) => e.name === "notes.txt")?.isFile, true);
  });
  await t.step("relative", () => {
    assert.equal(ws.relative(f.root), ".");
    assert.equal(ws.relative(join(f.root, "sub/deep")), "sub/deep");
    assert.throws(() => ws.relative(f.outside), SandboxError);
    assert.throws(() => ws.relative(`${f.root}-evil/x`), SandboxError);
  });
  await t.step("mkdir, remove, and what cannot be done to the root", async () => {
    await ws.mkdir("m/n/o");
    assert.ok((await Deno.stat(join(f.root, "m/n/o"))).isDirectory);
    await ws.mkdir("m/n/o");
    await assert.rejects(() => ws.remove("m"));
    await ws.remove("m", { recursive: true });
    assert.equal(await ws.exists("m"), false);
    await ws.remove("inner_link");
    assert.equal(await ws.exists("inner_link"), false);
    assert.equal(await Deno.readTextFile(join(f.root, "notes.txt")), "edited");
    await refused(() => ws.remove(".", { recursive: true }), "remove .");
    await refused(() => ws.remove("sub/.."), "remove sub/..");
    await refused(() => ws.writeFile(".", "x"), "write .");
    await refused(() => ws.writeFile("sub/", "x"), "write sub/");
    await assert.rejects(() => ws.writeFile("sub", "x"), HarveyError);
    await assert.rejects(() => ws.readFile("sub"), HarveyError);
    await assert.rejects(() => ws.readDir("notes.txt"), HarveyError);
    await assert.rejects(() => ws.writeFile("notes.txt/x", "x"), HarveyError);
    await assert.rejects(() => ws.readFile("missing.txt"), Deno.errors.NotFound);
    assert.ok((await Deno.stat(f.root)).isDirectory);
  });
  await t.step("a recursive remove deletes links to outside, not their targets", async () => {
    const before = await f.snapshot();
    await ws.mkdir("trash");
    await Deno.symlink(f.outside, join(f.root, "trash/out"));
    await Deno.symlink(join(f.outside, "secret.txt"), join(f.root, "trash/secret"));
    await ws.remove("trash", { recursive: true });
    assert.equal(await ws.exists("trash"), false);
    assert.equal(await f.snapshot(), before);
  });
});

Deno.test("a racing swapper never gets a read, a write or a temporary file across", async (t) => {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "harvey_ws_race_" }));
  const root = join(base, "ws");
  const outside = join(base, "outside");
  await Deno.mkdir(join(root, "sub"), { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "file.txt"), SECRET);
  await Deno.writeTextFile(join(outside, "secret.txt"), SECRET);
  await Deno.writeTextFile(join(root, "sub/file.txt"), "inside");
  await Deno.writeTextFile(join(root, "f.txt"), "inside");
  const ws = await Workspace.open(root);
  const TRIES = 200;
  const outsideNames = async () =>
    (await Array.fromAsync(Deno.readDir(outside))).map((e) => e.name);
  try {
    for (
      const [mode, path, target] of [
        ["folder", join(root, "sub"), outside],
        ["file", join(root, "f.txt"), join(outside, "secret.txt")],
      ] as const
    ) {
      const rel = mode === "folder" ? "sub/file.txt" : "f.txt";
      await t.step(`${mode} swapped: reads`, async () => {
        const swapper = await startSwapper(mode, path, target);
        try {
          for (let i = 0; i < TRIES; i++) {
            try {
              const text = await ws.readTextFile(rel);
              assert.notEqual(text, SECRET, "an outside file was read");
            } catch (err) {
              if (!(err instanceof HarveyError) && !(err instanceof Deno.errors.NotFound)) {
                throw err;
              }
            }
          }
        } finally {
          await swapper.stop();
        }
      });
      await t.step(`${mode} swapped: writes`, async () => {
        const swapper = await startSwapper(mode, path, target);
        try {
          for (let i = 0; i < TRIES; i++) {
            const name = mode === "folder" ? `sub/w${i}.txt` : "f.txt";
            try {
              await ws.writeFile(name, `write ${i}`);
            } catch (err) {
              if (!(err instanceof HarveyError) && !(err instanceof Deno.errors.NotFound)) {
                throw err;
              }
            }
          }
        } finally {
          await swapper.stop();
        }
        // Nothing landed outside: the two files there are untouched, no new name, no temp.
        assert.deepEqual((await outsideNames()).sort(), ["file.txt", "secret.txt"]);
        assert.equal(await Deno.readTextFile(join(outside, "file.txt")), SECRET);
        assert.equal(await Deno.readTextFile(join(outside, "secret.txt")), SECRET);
        // And no temporary file was left inside (one whose folder the swapper held away is
        // removed by the next write).
        await ws.writeFile(mode === "folder" ? "sub/last.txt" : "last.txt", "done");
        const folder = mode === "folder" ? join(root, "sub") : root;
        const temps = (await Array.fromAsync(Deno.readDir(folder)))
          .filter((e) => e.name.endsWith(".tmp"));
        assert.deepEqual(temps, []);
      });
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
