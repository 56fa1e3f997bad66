/**
 * The coding-workflow commands (/files, /read, /write, /context, /summarize, /search, /git)
 * driven through the headless runner, against the fake OpenAI server where a model is needed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SUMMARIZE_PROMPT, SUMMARY_LABEL } from "../src/commands/summarize.ts";
import type { Message } from "../src/types.ts";
import type { FakeOpenAI } from "./fixtures/fake_openai.ts";
import { git, type TestSession, withFakeServer } from "./helpers.ts";

async function withSession(
  opts: { files?: Record<string, string>; reply?: () => string },
  fn: (s: TestSession, fake: FakeOpenAI) => Promise<void>,
): Promise<void> {
  await withFakeServer({ reply: opts.reply ?? (() => "Sure.") }, { files: opts.files }, fn);
}

const contexts = (s: TestSession) =>
  s.agent.history.filter((m) => m.content.startsWith("[context: ")).map((m) => m.content);

const chatBodies = (fake: FakeOpenAI) =>
  fake.requests.filter((r) => r.path === "/v1/chat/completions").map((r) =>
    r.body as { messages: Message[] }
  );

Deno.test("/files lists folders with a slash, files with sizes, and counts hidden entries", async () => {
  await withSession({
    files: { "src/a.ts": "x".repeat(2048), "src/lib/b.ts": "b\n", "src/.secret": "s" },
  }, async (s) => {
    assert.equal(await s.run("/files src\n"), 0, s.err.text);
    assert.match(s.out.text, /^ {2}a\.ts +2\.0 KB$/m);
    assert.match(s.out.text, /^ {2}lib\/$/m);
    assert.doesNotMatch(s.out.text, /\.secret/);
    assert.match(s.out.text, /\(1 hidden entry not shown\)/);
    assert.equal(await s.run("/files ../\n"), 1);
    assert.match(s.err.text, /outside the workspace/);
  });
});

Deno.test("/read adds each file as context and prints lines and bytes", async () => {
  await withSession({ files: { "a.txt": "one\ntwo\n", "src/b.ts": "let x = 1;\n" } }, async (s) => {
    assert.equal(await s.run("/read a.txt src/b.ts\n"), 0, s.err.text);
    assert.deepEqual(contexts(s), [
      "[context: /read a.txt]\n\n```\none\ntwo\n```",
      "[context: /read src/b.ts]\n\n```\nlet x = 1;\n```",
    ]);
    assert.match(s.out.text, /✓ a\.txt: 2 lines, 8 B/);
    assert.match(s.out.text, /✓ src\/b\.ts: 1 line, 11 B/);
  });
});

Deno.test("/read refuses a binary file and adds nothing", async () => {
  await withSession({ files: { "ok.txt": "fine\n" } }, async (s) => {
    await Deno.writeFile(join(s.root, "blob.bin"), new Uint8Array([80, 75, 3, 4, 0, 0, 1, 2]));
    assert.equal(await s.run("/read ok.txt blob.bin\n"), 1);
    assert.match(s.err.text, /blob\.bin looks binary \(a NUL byte in its first 8 KB\)/);
    assert.deepEqual(contexts(s), [], "a refused file adds nothing, not even the good one");
  });
});

Deno.test("/read cuts a file over 100 KB at a whole line and says so", async () => {
  const line = "0123456789".repeat(9) + "\n"; // 91 bytes
  const big = line.repeat(2000); // 182,000 bytes
  await withSession({ files: { "big.txt": big } }, async (s) => {
    assert.equal(await s.run("/read big.txt\n"), 0, s.err.text);
    assert.match(s.out.text, /cut: the file has 177\.7 KB, \/read keeps the first 100\.0 KB/);
    const [ctx] = contexts(s);
    const body = ctx.slice(ctx.indexOf("```\n") + 4, ctx.lastIndexOf("```"));
    assert.equal(body.length % line.length, 0, "only whole lines");
    assert.ok(body.length <= 100 * 1024 && body.length > 100 * 1024 - line.length);
    assert.match(ctx, /\[cut: only the first 100\.0 KB of 177\.7 KB are shown\]$/);
  });
});

Deno.test("/read and /write go through the permission check", async () => {
  await withSession({ files: { ".env": "TOKEN=secret\n" } }, async (s) => {
    assert.equal(await s.run("/read .env\n"), 1);
    assert.match(s.err.text, /Permission denied: read of "\.env"/);
    assert.deepEqual(contexts(s), []);
    assert.equal(await s.run("hello\n/write .env\n"), 1);
    assert.match(s.err.text, /Permission denied: write of "\.env"/);
    assert.equal(await Deno.readTextFile(join(s.root, ".env")), "TOKEN=secret\n");
  });
});

Deno.test("/write saves the first code block, or the whole reply, and asks before overwriting", async () => {
  const replies = [
    "Try this:\n```js\nconsole.log(1);\n```\nor\n```js\nconsole.log(2);\n```\n",
    "Just some prose.",
    "```js\nconsole.log(3);\n```",
  ];
  let turn = 0;
  await withSession({ reply: () => replies[turn++] }, async (s) => {
    const read = (p: string) => Deno.readTextFile(join(s.root, p));
    assert.equal(await s.run("code please\n/write out/app.js\n"), 0, s.err.text);
    assert.equal(await read("out/app.js"), "console.log(1);\n");
    assert.match(s.out.text, /✓ Wrote the first code block of the last reply to out\/app\.js/);

    assert.equal(await s.run("prose please\n/write notes.md\n"), 0, s.err.text);
    assert.equal(await read("notes.md"), "Just some prose.\n");

    assert.equal(await s.run("again\n/write out/app.js\nn\n"), 0, s.err.text);
    assert.match(s.out.text, /out\/app\.js exists\. Overwrite it\? \[y\/N\] n/);
    assert.equal(await read("out/app.js"), "console.log(1);\n", "n keeps the file");
    assert.equal(await s.run("/write out/app.js\ny\n"), 0, s.err.text);
    assert.equal(await read("out/app.js"), "console.log(3);\n");
  });
});

Deno.test("/context pins text that survives /clear and /summarize", async () => {
  await withSession({ reply: () => "- the user likes tabs" }, async (s, fake) => {
    const script = [
      "/context add Always use tabs for indentation",
      "/context add The project is written in Go",
      "hello",
      "/clear",
      "/context show",
      "how are you",
      "/summarize",
      "and now?",
    ].join("\n");
    assert.equal(await s.run(script), 0, s.err.text);
    const pinned =
      "[pinned context]\n\nAlways use tabs for indentation\nThe project is written in Go";
    const bodies = chatBodies(fake);
    assert.equal(bodies.length, 4);
    // After /clear: the system prompt, the pinned context, the new prompt.
    assert.deepEqual(bodies[1].messages.map((m) => m.content).slice(1), [pinned, "how are you"]);
    assert.ok(bodies[2].messages.at(-1)!.content.startsWith(SUMMARIZE_PROMPT));
    // After /summarize: the system prompt, the pinned context, the summary, the new prompt.
    assert.deepEqual(bodies[3].messages.map((m) => m.content).slice(1), [
      pinned,
      `${SUMMARY_LABEL}\n\n- the user likes tabs`,
      "and now?",
    ]);
    assert.match(s.out.text, /Pinned context \(\d+ characters\):\nAlways use tabs/);

    assert.equal(await s.run("/context clear\n/clear\n"), 0, s.err.text);
    assert.equal(s.agent.history.length, 1, "only the system prompt is left");
  });
});

Deno.test("/summarize needs a conversation and keeps the history when interrupted", async () => {
  await withSession({}, async (s, fake) => {
    assert.equal(await s.run("/summarize\n"), 1);
    assert.match(s.err.text, /Nothing to summarize/);
    assert.equal(await s.run("hi\n"), 0, s.err.text);
    const before = structuredClone(s.agent.history);
    fake.script({ text: "a long summary that never ends", tokenDelayMs: 50 });
    const stop = new AbortController();
    const write = s.out.write.bind(s.out);
    s.out.write = (text) => {
      write(text);
      if (text.includes("long")) stop.abort(); // Ctrl-C once the summary is streaming
    };
    assert.equal(await s.run("/summarize\n", { signal: stop.signal }), 1);
    assert.match(s.err.text, /Interrupted: the summary is incomplete and the history was kept/);
    assert.deepEqual(s.agent.history, before);
  });
});

Deno.test("/context load-dir pins matching files under a size budget, skipping the rest", async () => {
  await withSession({
    files: {
      "pkg/a.go": "package pkg\n",
      "pkg/sub/b.go": "package sub\n",
      "pkg/readme.md": "# not go\n",
      "pkg/.hidden/c.go": "package hidden\n",
      "pkg/node_modules/d.go": "package dep\n",
      "pkg/zbig.go": "// big\n".repeat(30_000),
    },
  }, async (s) => {
    await Deno.writeFile(join(s.root, "pkg/bin.go"), new Uint8Array([0, 1, 2]));
    assert.equal(await s.run("/context load-dir pkg **/*.go\n"), 0, s.err.text);
    assert.match(s.out.text, /✓ Pinned 2 files from pkg/);
    assert.match(s.out.text, /Skipped over the 200\.0 KB budget: pkg\/zbig\.go/);
    assert.match(s.out.text, /Skipped binary: pkg\/bin\.go/);
    const pinned = s.agent.pinned;
    assert.match(pinned, /File: pkg\/a\.go\n```\npackage pkg\n```/);
    assert.match(pinned, /File: pkg\/sub\/b\.go/);
    assert.doesNotMatch(pinned, /readme|hidden|node_modules|zbig/);
    assert.equal(await s.run("/clear\n"), 0);
    assert.ok(s.agent.history[1].content.includes("File: pkg/a.go"), "it survives /clear");

    assert.equal(await s.run("/context load-dir pkg *.rs\n"), 1);
    assert.match(s.err.text, /No files pinned from pkg with "\*\.rs": none matched/);
  });
});

Deno.test("/search prints the matches and adds them as context", async () => {
  await withSession({
    files: {
      "src/a.ts": "// TODO: one\nconst x = 1;\n",
      "src/b.ts": "nothing here\n// TODO two\n",
      "docs/c.md": "TODO three\n",
      ".env": "TODO=secret\n",
    },
  }, async (s) => {
    assert.equal(await s.run("/search TODO src\n"), 0, s.err.text);
    assert.match(s.out.text, /src\/a\.ts:1: \/\/ TODO: one\nsrc\/b\.ts:2: \/\/ TODO two\n/);
    assert.match(s.out.text, /2 matches in 2 files/);
    assert.doesNotMatch(s.out.text, /docs\/c\.md/);
    assert.deepEqual(contexts(s), [
      "[context: /search TODO src]\n\n```\nsrc/a.ts:1: // TODO: one\nsrc/b.ts:2: // TODO two\n```",
    ]);
    assert.equal(await s.run("/search nomatch_xyz\n"), 0, s.err.text);
    assert.match(s.out.text, /No matches for \/nomatch_xyz\//);
    assert.equal(contexts(s).length, 1, "no matches add nothing");
    assert.equal(await s.run("/search TODO ../\n"), 1);
    assert.match(s.err.text, /outside the workspace/);
    // Harvey's own files are not searched: the history holds "/search TODO" by now.
    await Deno.writeTextFile(join(s.root, "agents/notes.txt"), "TODO in agents\n");
    s.out.text = "";
    assert.equal(await s.run("/search TODO\n"), 0, s.err.text);
    assert.match(s.out.text, /docs\/c\.md:1: TODO three/);
    assert.doesNotMatch(s.out.text, /agents\//);
  });
});

Deno.test("/git runs read-only commands at the root and adds their output as context", async () => {
  await withSession({ files: { "main.go": "package main\n" } }, async (s) => {
    await git(s.root, "init", "-q");
    await git(s.root, "add", "main.go");
    await git(s.root, "commit", "-qm", "First commit of the test");
    await Deno.writeTextFile(join(s.root, "main.go"), "package main\n\nfunc main() {}\n");
    assert.equal(await s.run("/git log --oneline\n/git diff\n"), 0, s.err.text);
    assert.match(s.out.text, /[0-9a-f]{7,} First commit of the test/);
    assert.match(s.out.text, /\+func main\(\) \{\}/);
    const [log, diff] = contexts(s);
    assert.match(log, /^\[context: \/git log --oneline\]\n\n```\n[0-9a-f]+ First commit/);
    assert.match(diff, /^\[context: \/git diff\]\n\n```\ndiff --git a\/main\.go b\/main\.go/);
  });
});

Deno.test("/git output over 8 KB is cut at a whole line with a note", async () => {
  await withSession({ files: { "big.txt": "" } }, async (s) => {
    await git(s.root, "init", "-q");
    await git(s.root, "add", "big.txt");
    await git(s.root, "commit", "-qm", "empty");
    const lines = Array.from({ length: 3000 }, (_, i) => `line ${i}`).join("\n");
    await Deno.writeTextFile(join(s.root, "big.txt"), `${lines}\n`);
    assert.equal(await s.run("/git diff\n"), 0, s.err.text);
    assert.match(s.out.text, /\[output cut: the first 8\.0 KB are shown; narrow it/);
    const [ctx] = contexts(s);
    const body = ctx.slice(ctx.indexOf("```\n") + 4, ctx.lastIndexOf("```"));
    assert.ok(body.length <= 8192 && body.length > 7000, `${body.length} bytes kept`);
    assert.match(body, /\+line \d+\n$/, "ends with a whole line");
  });
});

Deno.test("/git refuses other subcommands and arguments that write or run things", async () => {
  await withSession({}, async (s) => {
    assert.equal(await s.run("/git push\n"), 2);
    assert.match(
      s.err.text,
      /read-only commands \(status, diff, log, show, blame, [a-z, -]+\); "push" is refused/,
    );
    for (const arg of ["--output=x.txt", "-o", "--exec=sh", "-cfoo=bar", "--ext-diff"]) {
      s.err.text = "";
      assert.equal(await s.run(`/git diff ${arg}\n`), 1, arg);
      assert.match(s.err.text, /Refused \/git argument/, arg);
    }
    s.err.text = "";
    assert.equal(await s.run("/git show HEAD:.env\n"), 1);
    assert.match(s.err.text, /Permission denied: read of "\.env"/);
    assert.equal(await exists(join(s.root, "x.txt")), false);
    assert.deepEqual(contexts(s), []);
  });
});

Deno.test("/git outside a repository at the workspace root fails with git's reason", async () => {
  await withSession({}, async (s) => {
    assert.equal(await s.run("/git status\n"), 1);
    assert.match(s.err.text, /git status failed: fatal: not a git repository/);
  });
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
