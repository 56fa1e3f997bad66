import assert from "node:assert/strict";
import { join } from "node:path";
import { LazyServerClient } from "../src/llm/lazy_server_client.ts";
import type { RunningServer } from "../src/runtime/server.ts";
import { currentLog } from "../src/session/current.ts";
import { openStartupSession } from "../src/session/startup.ts";
import { cacheName, SLOTS_DIR, type WarmMeta } from "../src/session/warm.ts";
import { type SlotEvent, startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { writeGguf } from "./fixtures/make_fake_llama_cpp.ts";
import { makeFakeLlamaServer } from "./fixtures/make_fake_llamafile.ts";
import { type TestSession, testSession } from "./helpers.ts";

/** A workspace with a GGUF model served by the fake llama-server, which logs its slots. */
async function ggufWorkspace() {
  const bin = await Deno.makeTempDir({ prefix: "harvey_warm_bin_" });
  await makeFakeLlamaServer(bin);
  const root = await Deno.makeTempDir({ prefix: "harvey_warm_" });
  await Deno.mkdir(join(root, "Models"));
  const model = await writeGguf(join(root, "Models", "tiny.gguf"), 64, { nCtxTrain: 4096 });
  const log = join(bin, "slots.log");
  const opened: TestSession[] = [];
  const open = async (): Promise<TestSession> => {
    const s = await testSession({
      root,
      flags: { gguf: model, ollama: "http://127.0.0.1:9", llamafileUrl: "http://127.0.0.1:9" },
      env: { PATH: bin, HARVEY_FAKE_SLOTS: log },
      selectBackend: true,
    });
    opened.push(s);
    return s;
  };
  /** The fake's slot log from line `from` on. */
  const events = async (from = 0): Promise<SlotEvent[]> => {
    const text = await Deno.readTextFile(log).catch(() => "");
    return text.split("\n").filter(Boolean).map((l) => JSON.parse(l)).slice(from);
  };
  return {
    root,
    model,
    open,
    events,
    async cleanup() {
      // A step that failed left its session open: its server is stopped here.
      for (const s of opened) await s.close();
      await Deno.remove(root, { recursive: true });
      await Deno.remove(bin, { recursive: true });
    },
  };
}

Deno.test("warm resume: the slot is saved when a session ends and restored when it is resumed", async (t) => {
  const w = await ggufWorkspace();
  let id = "";
  let meta: WarmMeta | undefined;
  try {
    await t.step(
      "a session's end saves the slot under agents/slots, keyed by session and model",
      async () => {
        const s = await w.open();
        assert.equal(await s.run("hello there\nand a second question\n"), 0, s.err.text);
        id = currentLog(s.agent)!.id;
        await s.close();
        const saves = (await w.events()).filter((e) => e.kind === "slot");
        assert.deepEqual(saves.map((e) => e.kind === "slot" && [e.action, e.status]), [[
          "save",
          200,
        ]]);
        const name = await cacheName(id, w.model);
        assert.ok((await Deno.stat(join(w.root, SLOTS_DIR, name))).isFile);
        meta = JSON.parse(
          await Deno.readTextFile(join(w.root, SLOTS_DIR, name.replace(/\.bin$/, ".json"))),
        );
        assert.equal(meta!.session, id);
        assert.equal(meta!.modelPath, w.model);
        assert.ok(meta!.saved > meta!.prefixTokens - 5, "the slot held the conversation");
      },
    );

    await t.step(
      "resumed, the cache is restored before the first request, which reuses it",
      async () => {
        const from = (await w.events()).length;
        const s = await w.open();
        assert.equal(
          await openStartupSession(s.agent, s.err, { resume: id, interactive: false }),
          true,
        );
        assert.equal(await s.run("third\n"), 0, s.err.text);
        const after = await w.events(from);
        const restore = after.findIndex((e) => e.kind === "slot" && e.action === "restore");
        assert.ok(restore >= 0, JSON.stringify(after));
        assert.equal((after[restore] as { status: number }).status, 200);
        const prompt = after.slice(restore).find((e) => e.kind === "prompt");
        assert.ok(prompt?.kind === "prompt" && prompt.cached >= meta!.prefixTokens - 1);
        assert.ok(prompt.evaluated < 20, `only the new turn is evaluated: ${prompt.evaluated}`);
        await s.close();
      },
    );

    await t.step("a cold start of the same conversation evaluates it all", async () => {
      const from = (await w.events()).length;
      const s = await w.open();
      // The same conversation in a new session: no cache belongs to it.
      await openStartupSession(s.agent, s.err, { resume: id, interactive: false });
      const log = currentLog(s.agent)!;
      await Deno.remove(join(w.root, SLOTS_DIR), { recursive: true });
      assert.equal(await s.run("fourth\n"), 0, s.err.text);
      const prompt = (await w.events(from)).find((e) => e.kind === "prompt");
      assert.ok(prompt?.kind === "prompt" && prompt.cached === 0 && prompt.evaluated > 100);
      assert.equal(log.id, id);
      await s.close();
    });

    await t.step(
      "a changed model file is never restored: nothing is asked of the server",
      async () => {
        const s0 = await w.open();
        await openStartupSession(s0.agent, s0.err, { resume: id, interactive: false });
        assert.equal(await s0.run("fifth\n"), 0, s0.err.text);
        await s0.close(); // saves the cache again
        await Deno.utime(w.model, new Date(), new Date(Date.now() - 60_000));
        const from = (await w.events()).length;
        const s = await w.open();
        await openStartupSession(s.agent, s.err, { resume: id, interactive: false });
        assert.equal(await s.run("sixth\n"), 0, s.err.text);
        const after = await w.events(from);
        assert.equal(after.filter((e) => e.kind === "slot" && e.action === "restore").length, 0);
        assert.equal(s.err.text.includes("✗"), false, s.err.text);
        await s.close();
      },
    );

    await t.step(
      "a conversation that no longer begins as the cache did is not restored",
      async () => {
        const from = (await w.events()).length;
        const s = await w.open();
        await openStartupSession(s.agent, s.err, { resume: id, interactive: false });
        assert.equal(await s.run("/clear\nseventh\n"), 0, s.err.text);
        const after = await w.events(from);
        assert.equal(after.filter((e) => e.kind === "slot" && e.action === "restore").length, 0);
        await s.close();
      },
    );

    await t.step("a cache file the server refuses falls back silently", async () => {
      const s0 = await w.open();
      await openStartupSession(s0.agent, s0.err, { resume: id, interactive: false });
      assert.equal(await s0.run("eighth\n"), 0, s0.err.text);
      await s0.close();
      await Deno.writeTextFile(join(w.root, SLOTS_DIR, await cacheName(id, w.model)), "garbage");
      const from = (await w.events()).length;
      const s = await w.open();
      await openStartupSession(s.agent, s.err, { resume: id, interactive: false });
      assert.equal(await s.run("ninth\n"), 0, s.err.text);
      const after = await w.events(from);
      const restore = after.find((e) => e.kind === "slot" && e.action === "restore");
      assert.equal(restore?.kind === "slot" && restore.status, 400);
      assert.match(s.out.text, /Hello from tiny\./);
      assert.equal(s.err.text.includes("✗"), false, s.err.text);
      await s.close();
    });
  } finally {
    await w.cleanup();
  }
});

/** A client of a server that runs already (an in-process fake), for the slot calls alone. */
function clientOf(url: string, modelPath: string): LazyServerClient {
  const server = {
    backend: "llama-server",
    model: "fake-model",
    modelPath,
    modelIds: ["fake-model"],
    url,
    port: Number(new URL(url).port),
    owned: true,
    adopted: false,
    startedAt: new Date(),
    running: true,
    logs: () => [],
    stop: () => Promise.resolve({ stopped: true, clean: true, killed: false }),
  } satisfies RunningServer;
  return new LazyServerClient({
    model: "fake-model",
    label: "llama-server",
    start: () => Promise.resolve(server),
  });
}

Deno.test("slot calls: the real server's answers, and undefined where it cannot", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "harvey_slots_" });
  const withSlots = await startFakeOpenAI({ slotSavePath: dir });
  const without = await startFakeOpenAI();
  try {
    await t.step(
      "save and restore give the tokens, bytes and time the server reports",
      async () => {
        const c = clientOf(withSlots.url, "/m.gguf");
        await c.prepare();
        await c.chat([{ role: "user", content: "one two three" }], { onToken: () => {} });
        const saved = await c.saveSlot("s.bin");
        assert.ok(saved && saved.tokens > 5 && saved.bytes > 0, JSON.stringify(saved));
        const restored = await c.restoreSlot("s.bin");
        assert.equal(restored?.tokens, saved.tokens);
        assert.equal(await c.restoreSlot("missing.bin"), undefined, "400: no such file");
        assert.equal(await c.saveSlot("../escape.bin"), undefined, "400: Invalid filename");
        const tokens = await c.conversationTokens([{ role: "user", content: "one two three" }]);
        assert.ok(tokens && tokens.every(Number.isInteger));
      },
    );
    await t.step("a server started without --slot-save-path answers 501: undefined", async () => {
      const res = await fetch(`${without.url}/slots/0?action=save`, {
        method: "POST",
        body: JSON.stringify({ filename: "x.bin" }),
      });
      assert.equal(res.status, 501);
      assert.match((await res.json()).error.message, /Start it with `--slot-save-path`/);
      const c = clientOf(without.url, "/m.gguf");
      await c.prepare();
      assert.equal(await c.saveSlot("x.bin"), undefined);
      assert.equal(await c.restoreSlot("x.bin"), undefined);
    });
    await t.step("a slot that is not one, an action that is not one: 400", async () => {
      const post = (path: string) =>
        fetch(`${withSlots.url}${path}`, {
          method: "POST",
          body: JSON.stringify({ filename: "x.bin" }),
        }).then(async (r) => [r.status, (await r.json()).error.message]);
      assert.deepEqual(await post("/slots/7?action=save"), [400, "Invalid slot ID"]);
      assert.deepEqual(await post("/slots/zero?action=save"), [400, "Invalid slot ID"]);
      assert.deepEqual(await post("/slots/0?action=frob"), [400, "Invalid action"]);
    });
  } finally {
    await withSlots.close();
    await without.close();
    await Deno.remove(dir, { recursive: true });
  }
});
