import assert from "node:assert/strict";
import { join } from "node:path";
import { startFakeOllama } from "./fixtures/fake_ollama.ts";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { testSession } from "./helpers.ts";

Deno.test("/help, /status and /clear", async () => {
  const s = await testSession();
  try {
    assert.equal(await s.run("/help\n/help record\n/status\n"), 0);
    assert.match(s.out.text, /\/record +Record the session's turns/);
    assert.match(s.out.text, /  \/record start \[FILE\]\n/);
    assert.match(s.out.text, /Backend: +none/);
    assert.match(s.out.text, new RegExp(`Workspace: ${s.agent.workspace.root}`));
    s.agent.setPinned("always remember X");
    s.agent.addMessage("user", "q");
    assert.equal(await s.run("/clear"), 0);
    assert.deepEqual(s.agent.history.map((m) => m.role), ["system", "user"]);
    assert.match(s.agent.history[1].content, /always remember X/);
    assert.equal(await s.run("/help nothing"), 2);
    assert.equal(await s.run("/edit some text"), 1);
    assert.match(s.err.text, /\/edit opens \$VISUAL or \$EDITOR on a terminal; in a script/);
  } finally {
    await s.close();
  }
});

Deno.test("an unknown command suggests the commands within a typo of it", async () => {
  const s = await testSession();
  try {
    assert.equal(await s.run("/lamafile list"), 2);
    assert.match(s.err.text, /Unknown command \/lamafile — did you mean \/llamafile\?/);
    assert.equal(await s.run("/mdoel"), 2);
    assert.match(s.err.text, /Unknown command \/mdoel — did you mean \/model\?/);
    assert.equal(await s.run("/ll"), 2);
    assert.match(s.err.text, /Unknown command \/ll — did you mean \/llamacpp, \/llamafile\?/);
    assert.equal(await s.run("/zzzzzz"), 2);
    assert.match(s.err.text, /Unknown command \/zzzzzz \(type \/help for the list\)\n$/);
  } finally {
    await s.close();
  }
});

Deno.test("/kb: the first project added is the current one", async () => {
  const s = await testSession();
  try {
    assert.equal(
      await s.run("/kb project add notes\n/kb observe straight in\n/kb project add other\n"),
      0,
      s.err.text,
    );
    assert.match(s.out.text, /Added project #1 notes; it is the current project\n/);
    assert.match(s.out.text, /Recorded note #1 in project notes\n/);
    assert.match(s.out.text, /Added project #2 other \(make it current with \/kb project use 2\)/);
    s.out.text = "";
    assert.equal(await s.run("/kb project list\n"), 0);
    assert.equal(s.out.text, "* #1 notes [active] (current)\n  #2 other [active]\n");
  } finally {
    await s.close();
  }
});

Deno.test("tab completion of commands and subcommands", async () => {
  const s = await testSession();
  try {
    assert.deepEqual(await s.agent.commands.complete(s.agent, "/rec"), [["/record "], "/rec"]);
    assert.deepEqual(await s.agent.commands.complete(s.agent, "/record st"), [[
      "start",
      "stop",
      "status",
    ], "st"]);
    assert.deepEqual(
      (await s.agent.commands.complete(s.agent, "/ollama "))[0].includes("use"),
      true,
    );
    assert.deepEqual(await s.agent.commands.complete(s.agent, "plain text"), [[], "plain text"]);
  } finally {
    await s.close();
  }
});

Deno.test("tab completion of paths, declared in the command table, never outside the sandbox", async () => {
  const s = await testSession({
    files: {
      "docs/guide.md": "x",
      "docs/notes.md": "y",
      "dot/.hidden": "h",
      ".env": "SECRET=1",
      "Models/qwen.llamafile": "#!/bin/sh\n",
      "Models/tiny.gguf": "GGUF",
    },
  });
  const complete = (line: string) => s.agent.commands.complete(s.agent, line);
  try {
    await Deno.symlink("/etc", join(s.root, "docs", "etc-link"));
    assert.deepEqual(await complete("/read do"), [["docs/", "dot/"], "do"]);
    assert.deepEqual(await complete("/read docs/g"), [["docs/guide.md "], "docs/g"]);
    assert.deepEqual(await complete("/read docs/guide.md docs/n"), [["docs/notes.md "], "docs/n"]);
    assert.deepEqual((await complete("/read docs/"))[0], ["docs/guide.md", "docs/notes.md"]);
    assert.deepEqual(await complete("/read ../"), [[], "../"], "not outside the workspace");
    assert.deepEqual(await complete("/read /etc/pa"), [[], "/etc/pa"]);
    assert.deepEqual(await complete("/read dot/"), [[], "dot/"], "hidden files only when asked");
    assert.deepEqual(await complete("/read dot/."), [["dot/.hidden "], "dot/."]);
    assert.deepEqual(await complete("/read .e"), [[], ".e"], "secrets are closed");
    for (const line of ["/write do", "/files do", "/search TODO do", "/record start do"]) {
      assert.deepEqual((await complete(line))[0], ["docs/", "dot/"], line);
    }
    assert.deepEqual((await complete("/context load-dir d"))[0], ["docs/", "dot/"]);
    assert.deepEqual((await complete("/rag ingest docs/guide.md d"))[0], ["docs/", "dot/"]);
    assert.deepEqual((await complete("/search do"))[0], [], "the pattern is not a path");
    // Model files come from the models folder, and any absolute path is offered.
    assert.deepEqual(await complete("/llamafile add "), [["~/Models/qwen.llamafile "], ""]);
    assert.deepEqual(await complete("/llamacpp add t"), [["~/Models/tiny.gguf "], "t"]);
    assert.deepEqual((await complete(`/llamacpp add ${s.root}/Mo`))[0], [`${s.root}/Models/`]);
    assert.deepEqual((await complete("/llamafile add ~/Models/"))[0], ["~/Models/qwen.llamafile "]);
    assert.deepEqual((await complete("/llamafile a"))[0], ["add "], "subcommands still complete");
  } finally {
    await s.close();
  }
});

Deno.test("/record writes a header and ### Turn sections", async () => {
  const fake = await startFakeOpenAI({ reply: () => "recorded reply" });
  const s = await testSession({ flags: { llamafileUrl: fake.url }, selectBackend: true });
  try {
    assert.equal(
      await s.run("/record start notes/session.md\nfirst\nsecond\n/record status\n/record stop\n"),
      0,
    );
    const text = await Deno.readTextFile(join(s.root, "notes/session.md"));
    assert.match(text, /^# Harvey session\n\n- Started: \d{4}-\d\d-\d\dT/);
    assert.match(text, /- Model: llamafile:fake-model\n- Workspace: /);
    assert.match(text, /### Turn 1\n\n\*\*User:\*\*\n\nfirst\n\n\*\*Harvey:\*\*\n\nrecorded reply/);
    assert.match(text, /### Turn 2\n/);
    assert.match(s.out.text, /Recording to notes\/session\.md \(2 turns\)/);
    assert.equal(await s.run("/record start ../outside.md"), 1);
    assert.match(s.err.text, /outside the workspace/);
  } finally {
    await s.close();
    await fake.close();
  }
});

Deno.test("/model lists every source and switches; the choice is saved", async () => {
  const ollama = await startFakeOllama({ models: ["llama3.2:latest", "qwen3:4b"] });
  const s = await testSession({ flags: { ollama: ollama.url }, selectBackend: true });
  try {
    // Two models and no preference: headless start-up takes the first without asking.
    assert.equal(s.agent.client?.name, "ollama:llama3.2:latest");
    assert.equal(await s.run("/model\n/model use qwen3\n"), 0);
    assert.match(s.out.text, /→ llama3\.2:latest \(ollama\)\n  qwen3:4b \(ollama\)/);
    assert.equal(s.agent.client?.name, "ollama:qwen3:4b");
    assert.equal(s.agent.config.config.model, "qwen3:4b");
    assert.match(await Deno.readTextFile(join(s.root, "agents/harvey.yaml")), /model: qwen3:4b/);
    assert.equal(await s.run("/model nope"), 1);
    assert.match(s.err.text, /No model named "nope" — available: llama3\.2:latest, qwen3:4b/);
  } finally {
    await s.close();
    await ollama.close();
  }
});

Deno.test("start-up: -m preselects, the saved model is preferred", async () => {
  const ollama = await startFakeOllama({ models: ["a:latest", "b:latest"] });
  try {
    const s = await testSession({ flags: { ollama: ollama.url, model: "b" }, selectBackend: true });
    assert.equal(s.agent.client?.name, "ollama:b:latest");
    await s.close();
    const t = await testSession({
      flags: { ollama: ollama.url },
      files: { "agents/harvey.yaml": "model: b:latest\n" },
      selectBackend: true,
    });
    assert.equal(t.agent.client?.name, "ollama:b:latest");
    await t.close();
  } finally {
    await ollama.close();
  }
});

Deno.test("/ollama status, list, use; start without ollama installed says how to get it", async () => {
  const ollama = await startFakeOllama({ models: ["llama3.2:latest"] });
  const s = await testSession({ flags: { ollama: ollama.url }, env: { PATH: "/nonexistent" } });
  try {
    assert.equal(await s.run("/ollama status\n/ollama list\n/ollama use llama3.2\n"), 0);
    assert.match(s.out.text, /Running: yes \(version/);
    assert.match(s.out.text, /  llama3\.2:latest\n/);
    assert.equal(s.agent.client?.name, "ollama:llama3.2:latest");
    assert.equal(await s.run("/ollama use nothing"), 1);
    assert.match(s.err.text, /Ollama has no model "nothing"/);
    await ollama.close();
    s.out.text = "";
    assert.equal(await s.run("/ollama start"), 0);
    assert.match(
      s.out.text,
      /Ollama is not installed — get it from https:\/\/ollama\.com\/download/,
    );
  } finally {
    await s.close();
    await ollama.close();
  }
});
