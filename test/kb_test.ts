import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { HarveyError } from "../src/errors.ts";
import {
  formatObservationContext,
  KnowledgeBase,
  parseObserveArgs,
} from "../src/store/knowledge.ts";

async function withKb(fn: (kb: KnowledgeBase, path: string) => void | Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "harvey_kb_" });
  const path = join(dir, "agents", "knowledge.db");
  const kb = KnowledgeBase.open(path);
  try {
    await fn(kb, path);
  } finally {
    kb.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function throwsHarvey(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HarveyError, `expected a HarveyError, got ${err}`);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"), "error is one line");
    return true;
  });
}

Deno.test("projects: add, list, use, status and their errors", async () => {
  await withKb((kb, path) => {
    assert.deepEqual(kb.listProjects(), []);
    const a = kb.addProject("harvey", { description: "terminal agent" });
    const b = kb.addProject("  scratch  ");
    assert.equal(a.name, "harvey");
    assert.equal(a.description, "terminal agent");
    assert.equal(a.status, "active");
    assert.ok(a.createdAt instanceof Date);
    assert.equal(b.name, "scratch");
    assert.deepEqual(kb.listProjects().map((p) => p.name), ["harvey", "scratch"]);

    throwsHarvey(() => kb.addProject("Harvey"), /project named "harvey" already exists \(id 1\)/);
    throwsHarvey(() => kb.addProject("  "), /needs a name/);
    throwsHarvey(() => kb.getProject(42), /No project with id 42/);
    throwsHarvey(() => kb.useProject(42), /No project with id 42/);
    throwsHarvey(() => kb.getProject(1.5), /Expected a project id/);

    assert.equal(kb.currentProject(), undefined);
    assert.equal(kb.useProject(b.id).name, "scratch");
    assert.equal(kb.currentProject()?.id, b.id);

    assert.equal(kb.setProjectStatus(a.id, "Paused").status, "paused");
    assert.equal(kb.getProject(a.id).status, "paused");
    throwsHarvey(
      () => kb.setProjectStatus(a.id, "done"),
      /Unknown project status "done": expected one of active, paused, concluded/,
    );
    throwsHarvey(() => kb.setProjectStatus(9, "concluded"), /No project with id 9/);
    assert.equal(kb.getProject(a.id).status, "paused");

    kb.close();
    const again = KnowledgeBase.open(path);
    try {
      assert.equal(again.currentProject()?.name, "scratch", "the current project persists");
      assert.equal(again.listProjects().length, 2);
    } finally {
      again.close();
    }
  });
});

Deno.test("observations: kinds, current project, order and errors", async () => {
  await withKb((kb) => {
    throwsHarvey(() => kb.observe("no project yet"), /No current project: choose one/);
    const p = kb.addProject("harvey");
    const q = kb.addProject("other");
    kb.useProject(p.id);

    const first = kb.observe("plain note");
    assert.equal(first.kind, "note");
    assert.equal(first.projectId, p.id);
    assert.equal(first.projectName, "harvey");
    const second = kb.observe("WAL helps", { kind: "Finding" });
    assert.equal(second.kind, "finding");
    const elsewhere = kb.observe("goes to other", { kind: "question", projectId: q.id });
    assert.equal(elsewhere.projectId, q.id);

    throwsHarvey(
      () => kb.observe("x", { kind: "idea" }),
      /Unknown observation kind "idea": expected one of note, finding, decision, question, hypothesis/,
    );
    throwsHarvey(() => kb.observe("   "), /needs some text/);
    throwsHarvey(() => kb.observe("x", { projectId: 77 }), /No project with id 77/);

    assert.deepEqual(kb.listObservations(p.id).map((o) => o.body), ["WAL helps", "plain note"]);
    assert.deepEqual(kb.listObservations(p.id, { limit: 1 }).map((o) => o.id), [second.id]);

    assert.deepEqual(parseObserveArgs("decision use WAL"), { kind: "decision", text: "use WAL" });
    assert.deepEqual(parseObserveArgs("Hypothesis  it is slow "), {
      kind: "hypothesis",
      text: "it is slow",
    });
    assert.deepEqual(parseObserveArgs("finding"), { kind: "note", text: "finding" });
    assert.deepEqual(parseObserveArgs("notes are here"), { kind: "note", text: "notes are here" });
  });
});

Deno.test("inject: fetches observations in the order asked; unknown ids are named", async () => {
  await withKb((kb) => {
    const p = kb.addProject("harvey");
    kb.useProject(p.id);
    const a = kb.observe("alpha", { kind: "decision" });
    const b = kb.observe("beta");
    const got = kb.getObservations([b.id, a.id]);
    assert.deepEqual(got.map((o) => o.body), ["beta", "alpha"]);
    throwsHarvey(() => kb.getObservations([a.id, 40, 41]), /No observation with id 40, 41/);
    const text = formatObservationContext(got);
    assert.match(text, new RegExp(`Observation #${b.id} \\(note · project harvey · \\d{4}-`));
    assert.match(text, /\nalpha$/);
  });
});

Deno.test("concepts: add, link to project and observation, errors leave nothing written", async () => {
  await withKb((kb) => {
    const p = kb.addProject("harvey");
    kb.addConcept("sqlite", { description: "embedded database" });
    kb.addConcept("Retrieval");
    throwsHarvey(() => kb.addConcept("SQLite"), /concept named "sqlite" already exists/);
    throwsHarvey(() => kb.linkConcept("sqlite"), /No current project/);
    kb.useProject(p.id);
    const obs = kb.observe("FTS5 is built in", { kind: "finding" });

    const link = kb.linkConcept("SQLITE", { observationId: obs.id });
    assert.equal(link.concept.name, "sqlite");
    assert.equal(link.project.id, p.id);
    assert.equal(link.observation?.id, obs.id);
    kb.linkConcept("sqlite"); // linking twice is harmless
    assert.deepEqual(kb.observationConcepts(obs.id), ["sqlite"]);

    throwsHarvey(() => kb.linkConcept("vectors"), /No concept named "vectors": add it with/);
    throwsHarvey(
      () => kb.linkConcept("Retrieval", { observationId: 99 }),
      /No observation with id 99/,
    );
    assert.deepEqual(
      kb.listConcepts().map((c) => [c.name, c.projects]),
      [["Retrieval", []], ["sqlite", ["harvey"]]],
      "a failed link wrote nothing",
    );

    // An observation with a concept that does not exist is not recorded at all.
    throwsHarvey(
      () => kb.observe("half", { concepts: ["Retrieval", "nope"] }),
      /No concept named "nope"/,
    );
    assert.deepEqual(kb.listObservations(p.id).map((o) => o.body), ["FTS5 is built in"]);
    assert.deepEqual(kb.listConcepts().find((c) => c.name === "Retrieval")?.projects, []);

    const whole = kb.observe("linked at once", { concepts: ["Retrieval"] });
    assert.deepEqual(kb.observationConcepts(whole.id), ["Retrieval"]);
    assert.deepEqual(kb.listConcepts().find((c) => c.name === "Retrieval")?.projects, ["harvey"]);
  });
});

Deno.test("status: projects with concepts, counts and recent observations", async () => {
  await withKb((kb) => {
    const a = kb.addProject("alpha");
    const b = kb.addProject("beta", { description: "second" });
    kb.addConcept("zeta");
    kb.addConcept("eta");
    kb.useProject(a.id);
    for (let i = 1; i <= 5; i++) kb.observe(`alpha ${i}`);
    kb.linkConcept("zeta");
    kb.linkConcept("eta");
    kb.useProject(b.id);

    const s = kb.status({ recent: 2 });
    assert.equal(s.current?.name, "beta");
    assert.deepEqual(s.totals, { projects: 2, observations: 5, concepts: 2 });
    assert.equal(s.projects.length, 2);
    assert.equal(s.projects[0].project.name, "alpha");
    assert.deepEqual(s.projects[0].concepts, ["eta", "zeta"]);
    assert.equal(s.projects[0].observationCount, 5);
    assert.deepEqual(s.projects[0].recent.map((o) => o.body), ["alpha 5", "alpha 4"]);
    assert.deepEqual(s.projects[1].concepts, []);
    assert.equal(s.projects[1].observationCount, 0);
    assert.deepEqual(s.projects[1].recent, []);
  });
});

Deno.test("search: full-text over observations, stemmed, ranked, safe with any text", async () => {
  await withKb((kb) => {
    const p = kb.addProject("harvey");
    const q = kb.addProject("other");
    kb.useProject(p.id);
    const wal = kb.observe("Switching the database to WAL mode made migrations faster", {
      kind: "finding",
    });
    const mig = kb.observe("Write a migration for the chunk table");
    kb.observe("Nothing to see here");
    const far = kb.observe("WAL elsewhere", { projectId: q.id });

    const hits = kb.search("migrations");
    assert.deepEqual(hits.map((h) => h.observation.id).sort(), [wal.id, mig.id].sort());
    assert.match(hits.find((h) => h.observation.id === wal.id)!.snippet, /\[migrations\]/);

    // All words first; when no observation has them all, any of them.
    assert.deepEqual(kb.search("WAL migration").map((h) => h.observation.id), [wal.id]);
    const any = kb.search("chunk elsewhere").map((h) => h.observation.id).sort();
    assert.deepEqual(any, [mig.id, far.id].sort());

    assert.deepEqual(kb.search("wal", { projectId: q.id }).map((h) => h.observation.id), [far.id]);
    assert.deepEqual(kb.search('"unbalanced AND -( NEAR'), []);
    assert.deepEqual(kb.search("absent"), []);
    throwsHarvey(() => kb.search(" ?! "), /Nothing to search for/);

    const later = kb.observe("a brand new migration plan");
    assert.ok(kb.search("plan").some((h) => h.observation.id === later.id), "index stays in sync");
  });
});

Deno.test("schema: versioned, WAL, refuses foreign and newer databases", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "harvey_kb_schema_" });
  try {
    await t.step("a new knowledge base is at version 1 in WAL mode", () => {
      const path = join(dir, "new.db");
      KnowledgeBase.open(path).close();
      const raw = new DatabaseSync(path);
      try {
        assert.deepEqual({ ...raw.prepare("PRAGMA user_version").get() }, { user_version: 1 });
        assert.deepEqual({ ...raw.prepare("PRAGMA journal_mode").get() }, { journal_mode: "wal" });
        const view = raw.prepare("SELECT name FROM sqlite_master WHERE name = 'project_summary'")
          .get();
        assert.ok(view, "project_summary view exists");
      } finally {
        raw.close();
      }
      KnowledgeBase.open(path).close(); // reopening runs no migration twice
    });

    await t.step("a database from a newer Harvey is refused", () => {
      const path = join(dir, "newer.db");
      KnowledgeBase.open(path).close();
      const raw = new DatabaseSync(path);
      raw.exec("PRAGMA user_version = 7");
      raw.close();
      throwsHarvey(() => KnowledgeBase.open(path), /schema version 7, newer than .*upgrade Harvey/);
    });

    await t.step("a database of something else is refused and left alone", () => {
      const path = join(dir, "foreign.db");
      const raw = new DatabaseSync(path);
      raw.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY)");
      raw.close();
      throwsHarvey(
        () => KnowledgeBase.open(path),
        /not a knowledge base \(it has tables invoices\)/,
      );
      const check = new DatabaseSync(path);
      try {
        const tables = check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
        assert.deepEqual(tables.map((r) => r.name), ["invoices"]);
      } finally {
        check.close();
      }
    });

    await t.step("a file that is not SQLite gives one clear line", async () => {
      const path = join(dir, "text.db");
      await Deno.writeTextFile(path, "this is not a database, just text ".repeat(50));
      throwsHarvey(() => KnowledgeBase.open(path), /Cannot open the knowledge base at .*text\.db/);
    });

    await t.step("a knowledge base of the original Harvey is adopted with its data", () => {
      const path = join(dir, "original.db");
      const raw = new DatabaseSync(path);
      raw.exec(`
        CREATE TABLE projects (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
          description TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'active',
          created_at DATETIME DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME DEFAULT CURRENT_TIMESTAMP);
        CREATE TABLE observations (id INTEGER PRIMARY KEY AUTOINCREMENT,
          project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
          kind TEXT NOT NULL DEFAULT 'note', body TEXT NOT NULL,
          created_at DATETIME DEFAULT CURRENT_TIMESTAMP, source_doi TEXT NOT NULL DEFAULT '');
        CREATE TABLE concepts (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
          description TEXT NOT NULL DEFAULT '', created_at DATETIME DEFAULT CURRENT_TIMESTAMP);
        CREATE TABLE project_concepts (project_id INTEGER, concept_id INTEGER,
          PRIMARY KEY (project_id, concept_id));
        CREATE TABLE observation_concepts (observation_id INTEGER, concept_id INTEGER,
          PRIMARY KEY (observation_id, concept_id));
        CREATE VIEW project_summary AS SELECT p.id, p.name FROM projects p;
        INSERT INTO projects (name, description) VALUES ('legacy', 'from Go');
        INSERT INTO observations (project_id, kind, body) VALUES (1, 'decision', 'Keep goroutines few');
      `);
      raw.close();
      const kb = KnowledgeBase.open(path);
      try {
        assert.equal(kb.getProject(1).name, "legacy");
        assert.deepEqual(kb.search("goroutine").map((h) => h.observation.body), [
          "Keep goroutines few",
        ]);
        assert.equal(kb.status().projects[0].observationCount, 1);
      } finally {
        kb.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
