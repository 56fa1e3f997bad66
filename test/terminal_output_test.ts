/**
 * Text from a model, a file or a stored record reaches the terminal and recordings as data:
 * control characters are shown (␛, ␇), never interpreted; recordings keep no secrets.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { testSession } from "./helpers.ts";

// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;
/** OSC 52: "write this (base64) to the clipboard", ended by BEL. */
const OSC52 = "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07";

Deno.test("an OSC 52 sequence in a streamed reply is shown, not sent to the terminal", async () => {
  const fake = await startFakeOpenAI({ reply: () => `Sure.${OSC52} Done.\x1b[2J` });
  const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
  try {
    assert.equal(await s.run("hello"), 0, s.err.text);
    assert.match(s.out.text, /Sure\.␛\]52;c;Y3VybCBldmlsIHwgc2g=␇ Done\.␛\[2J/);
    assert.doesNotMatch(s.out.text, RAW_CONTROL);
    // The conversation keeps what the model really said.
    assert.equal(s.agent.history.at(-1)?.content, `Sure.${OSC52} Done.\x1b[2J`);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("/search lines and /files names show a file's control characters", async () => {
  const s = await testSession({
    files: {
      "src/a.txt": `needle here\x1b[2K\x1b[1Ghidden\n`,
      "src/evil\x1b]0;pwned\x07.txt": "x\n",
    },
  });
  try {
    assert.equal(await s.run("/search needle"), 0, s.err.text);
    assert.match(s.out.text, /src\/a\.txt:1: needle here␛\[2K␛\[1Ghidden/);
    assert.equal(await s.run("/files src"), 0, s.err.text);
    assert.match(s.out.text, /evil␛\]0;pwned␇\.txt/);
    assert.doesNotMatch(s.out.text, RAW_CONTROL);
    // The match goes to the model as the file has it.
    assert.ok(s.agent.history.some((m) => m.content.includes("needle here\x1b[2K")));
  } finally {
    await s.close();
  }
});

Deno.test("/kb shows stored text with its control characters made visible", async () => {
  const s = await testSession();
  try {
    const script = "/kb project add demo\n/kb project use 1\n" +
      "/kb observe note watch\x1b]52;c;eA==\x07 this\n/kb search watch\n/kb status\n";
    assert.equal(await s.run(script), 0, s.err.text);
    assert.match(s.out.text, /watch␛\]52;c;eA==␇ this/);
    assert.doesNotMatch(s.out.text, RAW_CONTROL);
  } finally {
    await s.close();
  }
});

Deno.test("a recording keeps no typed secret, no URL password and no raw control character", async () => {
  const key = "sk-live-0123456789abcdefghij";
  const fake = await startFakeOpenAI({ reply: () => `Connected.\x1b]52;c;eA==\x07 ok` });
  const s = await testSession({
    flags: { llamafileUrl: fake.url },
    env: { OPENAI_API_KEY: key },
    selectBackend: true,
  });
  try {
    const script = "/record start notes/rec.md\n" +
      `my key is ${key} and the db is postgres://app:hunter2secret@db.local/prod\n` +
      "/record status\n/record stop\n";
    assert.equal(await s.run(script), 0, s.err.text);
    assert.match(s.out.text, /Recording to notes\/rec\.md \(1 turn\)/);
    assert.match(s.out.text, /Stopped recording; 1 turn in notes\/rec\.md/);
    const text = await Deno.readTextFile(join(s.root, "notes/rec.md"));
    assert.ok(!text.includes(key), text);
    assert.ok(!text.includes("hunter2secret"), text);
    assert.match(text, /postgres:\/\/app:\[redacted\]@db\.local\/prod/);
    assert.match(text, /Connected\.␛\]52;c;eA==␇ ok/);
    assert.doesNotMatch(text, RAW_CONTROL);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("/record start refuses Harvey's own files, .git, secrets and paths outside", async () => {
  const s = await testSession({
    files: { ".git/hooks/pre-commit": "#!/bin/sh\n", ".env": "A=1\n" },
  });
  try {
    for (
      const [path, why] of [
        [".git/hooks/pre-commit", /Permission denied: write of "\.git\/hooks\/pre-commit"/],
        ["sub/.git/hooks/post-checkout", /Permission denied: write of "sub\/\.git/],
        [".env", /Permission denied: write of "\.env" \(a secret file/],
        ["agents/audit.jsonl", /Permission denied: write of "agents\/audit\.jsonl"/],
        ["agents/notes.md", /inside agents\/, where Harvey keeps its own files/],
        ["../outside.md", /outside the workspace/],
      ] as const
    ) {
      assert.equal(await s.run(`/record start ${path}`), 1, path);
      assert.match(s.err.text.trimEnd().split("\n").at(-1)!, why);
    }
    assert.equal(await Deno.readTextFile(join(s.root, ".git/hooks/pre-commit")), "#!/bin/sh\n");
    assert.equal(await Deno.readTextFile(join(s.root, ".env")), "A=1\n");
    assert.equal(s.agent.recorder, undefined);
  } finally {
    await s.close();
  }
});

Deno.test("/record start does not follow a symlink that leads outside the workspace", async () => {
  const outside = await Deno.makeTempDir({ prefix: "harvey-outside-" });
  const s = await testSession();
  try {
    await Deno.writeTextFile(join(outside, "target.md"), "precious\n");
    await Deno.symlink(join(outside, "target.md"), join(s.root, "rec.md"));
    assert.equal(await s.run("/record start rec.md"), 1);
    assert.match(s.err.text, /outside the workspace/);
    assert.equal(await Deno.readTextFile(join(outside, "target.md")), "precious\n");
  } finally {
    await s.close();
    await Deno.remove(outside, { recursive: true });
  }
});
