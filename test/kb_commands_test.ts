import assert from "node:assert/strict";
import { join } from "node:path";
import { testSession } from "./helpers.ts";

Deno.test("/kb: projects, observations, search and inject through the headless runner", async (t) => {
  const s = await testSession();
  try {
    await t.step("the database is created on first use, not before", async () => {
      await assert.rejects(() => Deno.stat(join(s.root, "agents", "knowledge.db")));
      assert.equal(await s.run("/kb status"), 0);
      assert.match(s.out.text, /0 projects, 0 observations, 0 concepts/);
      assert.ok((await Deno.stat(join(s.root, "agents", "knowledge.db"))).isFile);
    });

    await t.step("observe without a current project is refused", async () => {
      assert.equal(await s.run("/kb observe a note with nowhere to go"), 1);
      assert.match(s.err.text, /No current project: choose one with \/kb project use ID/);
    });

    await t.step("project add, duplicate name refused, list", async () => {
      s.out.text = "";
      assert.equal(
        await s.run('/kb project add harvey "terminal coding agent"\n/kb project add storage'),
        0,
      );
      assert.match(s.out.text, /Added project #1 harvey/);
      assert.match(s.out.text, /Added project #2 storage/);
      s.err.text = "";
      assert.equal(await s.run("/kb project add Harvey"), 1);
      assert.match(s.err.text, /A project named "harvey" already exists \(id 1\)/);
      s.out.text = "";
      assert.equal(await s.run("/kb project list"), 0);
      assert.match(s.out.text, /#1 harvey \[active\] — terminal coding agent/);
      assert.match(s.out.text, /#2 storage \[active\]/);
    });

    await t.step("unknown and malformed ids are errors", async () => {
      s.err.text = "";
      assert.equal(await s.run("/kb project use 9"), 1);
      assert.match(s.err.text, /No project with id 9/);
      s.err.text = "";
      assert.equal(await s.run("/kb project use first"), 2);
      assert.match(s.err.text, /Expected a project id .* found "first"/);
    });

    await t.step("use, observe with and without a kind", async () => {
      s.out.text = "";
      const script = [
        "/kb project use 2",
        "/kb observe finding WAL mode lets readers work while the writer commits",
        "/kb observe remember to vacuum the database monthly",
        "/kb observe decision migrations run inside one transaction each",
      ].join("\n");
      assert.equal(await s.run(script), 0);
      assert.match(s.out.text, /Current project: #2 storage/);
      assert.match(s.out.text, /Recorded finding #1 in project storage/);
      assert.match(s.out.text, /Recorded note #2 in project storage/);
      assert.match(s.out.text, /Recorded decision #3 in project storage/);
    });

    await t.step("project status changes and bad statuses are refused", async () => {
      s.out.text = "";
      assert.equal(await s.run("/kb project status 1 paused"), 0);
      assert.match(s.out.text, /Project #1 harvey is now paused/);
      s.err.text = "";
      assert.equal(await s.run("/kb project status 1 sleeping"), 1);
      assert.match(s.err.text, /Unknown project status "sleeping"/);
    });

    await t.step("concepts: add, duplicate, link to the current project", async () => {
      s.out.text = "";
      assert.equal(await s.run('/kb concept add sqlite "the embedded database"'), 0);
      assert.equal(await s.run("/kb concept link sqlite\n/kb concept list"), 0);
      assert.match(s.out.text, /Linked concept sqlite to project storage/);
      assert.match(s.out.text, /#1 sqlite — the embedded database \(projects: storage\)/);
      s.err.text = "";
      assert.equal(await s.run("/kb concept add SQLite"), 1);
      assert.match(s.err.text, /A concept named "sqlite" already exists/);
      assert.equal(await s.run("/kb concept link nosuch"), 1);
      assert.match(s.err.text, /No concept named "nosuch"/);
    });

    await t.step("search finds observations by stemmed words", async () => {
      s.out.text = "";
      assert.equal(await s.run("/kb search readers writer"), 0);
      assert.match(s.out.text, /#1 finding · storage: .*\[readers\]/);
      assert.doesNotMatch(s.out.text, /#2 note/);
      s.out.text = "";
      assert.equal(await s.run("/kb search migration"), 0);
      assert.match(s.out.text, /#3 decision · storage/);
      s.out.text = "";
      assert.equal(await s.run("/kb search zeppelin"), 0);
      assert.match(s.out.text, /No observations match "zeppelin"/);
    });

    await t.step("status shows the current project, counts and recent observations", async () => {
      s.out.text = "";
      assert.equal(await s.run("/kb status"), 0);
      assert.match(s.out.text, /2 projects, 3 observations, 1 concept/);
      assert.match(s.out.text, /Current project: #2 storage/);
      assert.match(s.out.text, /\* #2 storage \[active\] · 3 observations · concepts: sqlite/);
      assert.match(s.out.text, /#1 harvey \[paused\] · 0 observations/);
    });

    await t.step("inject adds the observations as one context message", async () => {
      const before = s.agent.history.length;
      s.out.text = "";
      assert.equal(await s.run("/kb inject 1 #3"), 0);
      assert.match(s.out.text, /Added 2 observations to the conversation/);
      assert.equal(s.agent.history.length, before + 1);
      const msg = s.agent.history.at(-1)!;
      assert.equal(msg.role, "user");
      assert.ok(msg.content.startsWith("[context: /kb inject 1 3]"));
      assert.match(msg.content, /Observation #1 \(finding · project storage/);
      assert.match(msg.content, /WAL mode lets readers work/);
      assert.match(msg.content, /migrations run inside one transaction/);
      assert.doesNotMatch(msg.content, /vacuum/);
    });

    await t.step("inject of an unknown id adds nothing", async () => {
      const before = s.agent.history.length;
      s.err.text = "";
      assert.equal(await s.run("/kb inject 1 42"), 1);
      assert.match(s.err.text, /No observation with id 42/);
      assert.equal(s.agent.history.length, before);
    });
  } finally {
    await s.close();
  }
});

Deno.test("/kb: the current project is session state, the data persists", async () => {
  const root = await Deno.makeTempDir({ prefix: "harvey-kb-" });
  try {
    const first = await testSession({ root });
    try {
      assert.equal(
        await first.run("/kb project add notes\n/kb project use 1\n/kb observe kept across runs"),
        0,
      );
    } finally {
      await first.close();
    }
    const second = await testSession({ root });
    try {
      assert.equal(await second.run("/kb status"), 0);
      assert.match(second.out.text, /1 project, 1 observation/);
      assert.match(second.out.text, /No current project/);
      assert.equal(await second.run("/kb observe needs a project again"), 1);
      assert.equal(await second.run("/kb project use 1\n/kb observe now it works"), 0);
      assert.match(second.out.text, /Recorded note #2 in project notes/);
    } finally {
      await second.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("free text with an unpaired quote is kept as typed; /run still refuses it", async () => {
  const s = await testSession();
  try {
    assert.equal(
      await s.run(
        "/kb project add notes\n/kb project use 1\n/kb observe decision don't cache the index\n",
      ),
      0,
      s.err.text,
    );
    assert.equal(await s.run("/kb search cache"), 0, s.err.text);
    assert.match(s.out.text, /decision · notes: don't \[cache\] the index/);
    assert.equal(await s.run("/context add it's pinned"), 0, s.err.text);
    assert.match(s.agent.pinned, /it's pinned/);
    assert.equal(await s.run("/run echo 'unclosed"), 1);
    assert.match(s.err.text, /Unclosed single quote/);
  } finally {
    await s.close();
  }
});
