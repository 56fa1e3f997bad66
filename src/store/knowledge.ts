/**
 * The knowledge base (`agents/knowledge.db`): projects, timestamped observations attached to
 * them, concepts linked to both, and full-text search over observations (FTS5, kept in sync
 * by triggers). It opens knowledge bases written by the original Harvey as they are.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { HarveyError } from "../errors.ts";
import {
  columnNames,
  isUniqueViolation,
  type Migration,
  openDatabase,
  tableNames,
  transaction,
} from "./db.ts";

/** The kinds an observation can have. */
export const OBSERVATION_KINDS = ["note", "finding", "decision", "question", "hypothesis"] as const;
/** One of {@linkcode OBSERVATION_KINDS}. */
export type ObservationKind = typeof OBSERVATION_KINDS[number];

/** The states a project can be in. */
export const PROJECT_STATUSES = ["active", "paused", "concluded"] as const;
/** One of {@linkcode PROJECT_STATUSES}. */
export type ProjectStatus = typeof PROJECT_STATUSES[number];

/** A project row. */
export interface Project {
  id: number;
  name: string;
  description: string;
  status: ProjectStatus;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
}

/** An observation row, with the name of its project. */
export interface Observation {
  id: number;
  projectId: number;
  projectName: string;
  kind: ObservationKind;
  body: string;
  createdAt: Date | undefined;
}

/** A concept row, with the names of the projects it is linked to. */
export interface Concept {
  id: number;
  name: string;
  description: string;
  projects: string[];
}

/** One project in the {@linkcode KnowledgeBase.status} summary. */
export interface ProjectSummary {
  project: Project;
  concepts: string[];
  observationCount: number;
  /** The newest observations, newest first. */
  recent: Observation[];
}

/** What `/kb status` shows. */
export interface KnowledgeStatus {
  current: Project | undefined;
  projects: ProjectSummary[];
  totals: { projects: number; observations: number; concepts: number };
}

/** A full-text search hit. */
export interface SearchHit {
  observation: Observation;
  /** The matching part of the body, matched words in `[` `]`. */
  snippet: string;
}

/** What {@linkcode KnowledgeBase.linkConcept} linked. */
export interface ConceptLink {
  concept: Concept;
  project: Project;
  observation: Observation | undefined;
}

const KIND_LIST = OBSERVATION_KINDS.join(", ");
const STATUS_LIST = PROJECT_STATUSES.join(", ");
const CURRENT_PROJECT_KEY = "current_project";

const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS projects (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'concluded')),
  created_at  DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at  DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS observations (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  kind       TEXT NOT NULL DEFAULT 'note'
             CHECK (kind IN ('note', 'finding', 'decision', 'question', 'hypothesis')),
  body       TEXT NOT NULL,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS observations_by_project ON observations (project_id, created_at);
CREATE TABLE IF NOT EXISTS concepts (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  created_at  DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS project_concepts (
  project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
  concept_id INTEGER REFERENCES concepts(id) ON DELETE CASCADE,
  PRIMARY KEY (project_id, concept_id)
);
CREATE TABLE IF NOT EXISTS observation_concepts (
  observation_id INTEGER REFERENCES observations(id) ON DELETE CASCADE,
  concept_id     INTEGER REFERENCES concepts(id) ON DELETE CASCADE,
  PRIMARY KEY (observation_id, concept_id)
);
CREATE TABLE IF NOT EXISTS settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
DROP VIEW IF EXISTS project_summary;
CREATE VIEW project_summary AS
  SELECT p.id, p.name, p.status, p.description,
         (SELECT group_concat(c.name, ', ' ORDER BY c.name)
            FROM project_concepts pc JOIN concepts c ON c.id = pc.concept_id
           WHERE pc.project_id = p.id) AS concepts,
         (SELECT count(*) FROM observations o WHERE o.project_id = p.id) AS observation_count,
         (SELECT max(o.created_at) FROM observations o WHERE o.project_id = p.id)
           AS last_observed_at
    FROM projects p;
CREATE VIRTUAL TABLE observations_fts USING fts5 (
  body, content = 'observations', content_rowid = 'id', tokenize = 'porter unicode61'
);
CREATE TRIGGER observations_fts_insert AFTER INSERT ON observations BEGIN
  INSERT INTO observations_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER observations_fts_delete AFTER DELETE ON observations BEGIN
  INSERT INTO observations_fts (observations_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER observations_fts_update AFTER UPDATE OF body ON observations BEGIN
  INSERT INTO observations_fts (observations_fts, rowid, body) VALUES ('delete', old.id, old.body);
  INSERT INTO observations_fts (rowid, body) VALUES (new.id, new.body);
END;
INSERT INTO observations_fts (observations_fts) VALUES ('rebuild');
`;

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "projects, observations, concepts, links, summary view and full-text index",
    up: (db) => db.exec(SCHEMA_V1),
  },
];

/** Columns each table must have when an unversioned (original Harvey) database is adopted. */
const REQUIRED_COLUMNS: Record<string, string[]> = {
  projects: ["id", "name", "description", "status", "created_at"],
  observations: ["id", "project_id", "kind", "body", "created_at"],
  concepts: ["id", "name", "description"],
  project_concepts: ["project_id", "concept_id"],
  observation_concepts: ["observation_id", "concept_id"],
};

interface ProjectRow {
  id: number;
  name: string;
  description: string;
  status: string;
  created_at: string | null;
  updated_at: string | null;
}

interface ObservationRow {
  id: number;
  project_id: number;
  project_name: string;
  kind: string;
  body: string;
  created_at: string | null;
}

interface ConceptRow {
  id: number;
  name: string;
  description: string;
  projects: string | null;
}

const CONCEPT_SELECT = `SELECT c.id, c.name, c.description,
  (SELECT group_concat(p.name, char(10) ORDER BY p.name)
     FROM project_concepts pc JOIN projects p ON p.id = pc.project_id
    WHERE pc.concept_id = c.id) AS projects
  FROM concepts c`;

const OBSERVATION_SELECT = `SELECT o.id, o.project_id, p.name AS project_name, o.kind, o.body,
  o.created_at FROM observations o JOIN projects p ON p.id = o.project_id`;

/**
 * The knowledge base of one workspace. Every method is synchronous; writes that touch more
 * than one row run in a transaction.
 *
 * @example
 * ```ts
 * const kb = KnowledgeBase.open("agents/knowledge.db");
 * const p = kb.addProject("harvey", { description: "terminal agent" });
 * kb.useProject(p.id);
 * kb.observe("WAL mode keeps readers off the writer's back", { kind: "finding" });
 * kb.close();
 * ```
 */
export class KnowledgeBase {
  readonly #db: DatabaseSync;
  /** The database file. */
  readonly path: string;

  private constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.path = path;
  }

  /** Opens (creating when missing) the knowledge base at `path` and migrates its schema. */
  static open(path: string): KnowledgeBase {
    const db = openDatabase(path, {
      label: "the knowledge base",
      migrations: MIGRATIONS,
      checkUnversioned: (db) => checkAdoptable(db, path),
    });
    return new KnowledgeBase(db, path);
  }

  /** Closes the connection. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  // ── projects ──────────────────────────────────────────────────────────────

  /** All projects, oldest first. */
  listProjects(): Project[] {
    const rows = this.#db.prepare(
      "SELECT id, name, description, status, created_at, updated_at FROM projects ORDER BY id",
    ).all() as unknown as ProjectRow[];
    return rows.map(toProject);
  }

  /** The project with `id`; an unknown id is an error. */
  getProject(id: number): Project {
    const row = this.#db.prepare(
      "SELECT id, name, description, status, created_at, updated_at FROM projects WHERE id = ?",
    ).get(checkId(id, "project")) as ProjectRow | undefined;
    if (!row) {
      throw new HarveyError(`No project with id ${id}: see the ids with /kb project list`);
    }
    return toProject(row);
  }

  /** Adds a project; a name already taken (ignoring case) is an error. */
  addProject(name: string, opts: { description?: string } = {}): Project {
    const clean = name.trim();
    if (!clean) throw new HarveyError("A project needs a name: /kb project add NAME [DESCRIPTION]");
    const existing = this.#db.prepare("SELECT id, name FROM projects WHERE name = ? COLLATE NOCASE")
      .get(clean) as { id: number; name: string } | undefined;
    if (existing) {
      throw new HarveyError(
        `A project named "${existing.name}" already exists (id ${existing.id}): choose another name`,
      );
    }
    try {
      const res = this.#db.prepare("INSERT INTO projects (name, description) VALUES (?, ?)")
        .run(clean, (opts.description ?? "").trim());
      return this.getProject(Number(res.lastInsertRowid));
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new HarveyError(`A project named "${clean}" already exists: choose another name`);
      }
      throw err;
    }
  }

  /** Makes `id` the current project, the one new observations and links go to. */
  useProject(id: number): Project {
    const project = this.getProject(id);
    this.#db.prepare("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)")
      .run(CURRENT_PROJECT_KEY, String(project.id));
    return project;
  }

  /** The current project, if one was chosen and still exists. */
  currentProject(): Project | undefined {
    const row = this.#db.prepare("SELECT value FROM settings WHERE key = ?")
      .get(CURRENT_PROJECT_KEY) as { value: string } | undefined;
    if (!row) return undefined;
    const found = this.#db.prepare(
      "SELECT id, name, description, status, created_at, updated_at FROM projects WHERE id = ?",
    ).get(Number(row.value)) as ProjectRow | undefined;
    return found ? toProject(found) : undefined;
  }

  /** Sets the status of project `id`; the status must be one of {@linkcode PROJECT_STATUSES}. */
  setProjectStatus(id: number, status: string): Project {
    const value = status.trim().toLowerCase();
    if (!(PROJECT_STATUSES as readonly string[]).includes(value)) {
      throw new HarveyError(`Unknown project status "${status}": expected one of ${STATUS_LIST}`);
    }
    this.getProject(id);
    this.#db.prepare("UPDATE projects SET status = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?")
      .run(value, id);
    return this.getProject(id);
  }

  // ── observations ──────────────────────────────────────────────────────────

  /**
   * Records an observation (kind `note` unless given) on `projectId`, or on the current
   * project, optionally linking it to concepts named in `concepts`, all in one transaction.
   */
  observe(
    text: string,
    opts: { kind?: string; projectId?: number; concepts?: string[] } = {},
  ): Observation {
    const body = text.trim();
    if (!body) throw new HarveyError("An observation needs some text: /kb observe [KIND] TEXT");
    const kind = parseKind(opts.kind ?? "note");
    const project = this.#targetProject(opts.projectId);
    return transaction(this.#db, () => {
      const res = this.#db.prepare(
        "INSERT INTO observations (project_id, kind, body) VALUES (?, ?, ?)",
      ).run(project.id, kind, body);
      const id = Number(res.lastInsertRowid);
      for (const name of opts.concepts ?? []) {
        const concept = this.#findConcept(name);
        this.#db.prepare(
          "INSERT OR IGNORE INTO observation_concepts (observation_id, concept_id) VALUES (?, ?)",
        ).run(id, concept.id);
        this.#db.prepare(
          "INSERT OR IGNORE INTO project_concepts (project_id, concept_id) VALUES (?, ?)",
        ).run(project.id, concept.id);
      }
      return this.getObservations([id])[0];
    });
  }

  /** The observations with these ids, in the order asked; any unknown id is an error. */
  getObservations(ids: number[]): Observation[] {
    const stmt = this.#db.prepare(`${OBSERVATION_SELECT} WHERE o.id = ?`);
    const found: Observation[] = [];
    const missing: number[] = [];
    for (const id of ids) {
      const row = stmt.get(checkId(id, "observation")) as ObservationRow | undefined;
      if (row) found.push(toObservation(row));
      else missing.push(id);
    }
    if (missing.length > 0) {
      const list = missing.join(", ");
      throw new HarveyError(
        `No observation with id ${list}: find ids with /kb search TEXT or /kb status`,
      );
    }
    return found;
  }

  /** The observations of project `id`, newest first (at most `limit`, default all). */
  listObservations(projectId: number, opts: { limit?: number } = {}): Observation[] {
    this.getProject(projectId);
    const rows = this.#db.prepare(
      `${OBSERVATION_SELECT} WHERE o.project_id = ? ORDER BY o.created_at DESC, o.id DESC LIMIT ?`,
    ).all(projectId, opts.limit ?? -1) as unknown as ObservationRow[];
    return rows.map(toObservation);
  }

  /**
   * Full-text search over observation bodies (stemmed, so "migrations" finds "migration").
   * Observations with all the words come first; when none has them all, any word matches.
   */
  search(text: string, opts: { limit?: number; projectId?: number } = {}): SearchHit[] {
    const words = text.match(/[\p{L}\p{N}_]+/gu) ?? [];
    if (words.length === 0) {
      throw new HarveyError("Nothing to search for: give /kb search one or more words");
    }
    const terms = words.map((w) => `"${w}"`);
    const all = this.#match(terms.join(" "), opts);
    if (all.length > 0 || terms.length === 1) return all;
    return this.#match(terms.join(" OR "), opts);
  }

  #match(query: string, opts: { limit?: number; projectId?: number }): SearchHit[] {
    const filter = opts.projectId === undefined ? "" : "AND o.project_id = ?";
    const params: (string | number)[] = [query];
    if (opts.projectId !== undefined) params.push(opts.projectId);
    params.push(opts.limit ?? 20);
    const rows = this.#db.prepare(
      `SELECT o.id, o.project_id, p.name AS project_name, o.kind, o.body, o.created_at,
              snippet(observations_fts, 0, '[', ']', '…', 16) AS snippet
         FROM observations_fts
         JOIN observations o ON o.id = observations_fts.rowid
         JOIN projects p ON p.id = o.project_id
        WHERE observations_fts MATCH ? ${filter}
        ORDER BY bm25(observations_fts), o.id DESC
        LIMIT ?`,
    ).all(...params) as unknown as (ObservationRow & { snippet: string })[];
    return rows.map((r) => ({ observation: toObservation(r), snippet: r.snippet }));
  }

  // ── concepts ──────────────────────────────────────────────────────────────

  /** All concepts by name, each with the projects it is linked to. */
  listConcepts(): Concept[] {
    const rows = this.#db.prepare(`${CONCEPT_SELECT} ORDER BY c.name COLLATE NOCASE`)
      .all() as unknown as ConceptRow[];
    return rows.map(toConcept);
  }

  /** Adds a concept; a name already taken (ignoring case) is an error. */
  addConcept(name: string, opts: { description?: string } = {}): Concept {
    const clean = name.trim();
    if (!clean) throw new HarveyError("A concept needs a name: /kb concept add NAME [DESCRIPTION]");
    const existing = this.#db.prepare("SELECT id, name FROM concepts WHERE name = ? COLLATE NOCASE")
      .get(clean) as { id: number; name: string } | undefined;
    if (existing) {
      throw new HarveyError(
        `A concept named "${existing.name}" already exists (id ${existing.id}): choose another name`,
      );
    }
    try {
      this.#db.prepare("INSERT INTO concepts (name, description) VALUES (?, ?)")
        .run(clean, (opts.description ?? "").trim());
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new HarveyError(`A concept named "${clean}" already exists: choose another name`);
      }
      throw err;
    }
    return this.#findConcept(clean);
  }

  /**
   * Links the concept named `concept` (or with that id) to `projectId` or the current
   * project, and to `observationId` when given, in one transaction. Linking twice is harmless.
   */
  linkConcept(
    concept: string,
    opts: { projectId?: number; observationId?: number } = {},
  ): ConceptLink {
    const found = this.#findConcept(concept);
    const project = this.#targetProject(opts.projectId);
    const observation = opts.observationId === undefined
      ? undefined
      : this.getObservations([opts.observationId])[0];
    transaction(this.#db, () => {
      this.#db.prepare(
        "INSERT OR IGNORE INTO project_concepts (project_id, concept_id) VALUES (?, ?)",
      ).run(project.id, found.id);
      if (observation) {
        this.#db.prepare(
          "INSERT OR IGNORE INTO observation_concepts (observation_id, concept_id) VALUES (?, ?)",
        ).run(observation.id, found.id);
      }
    });
    return { concept: this.#findConcept(found.name), project, observation };
  }

  /** The concepts linked to observation `id`, by name. */
  observationConcepts(id: number): string[] {
    this.getObservations([id]);
    const rows = this.#db.prepare(
      `SELECT c.name FROM observation_concepts oc JOIN concepts c ON c.id = oc.concept_id
        WHERE oc.observation_id = ? ORDER BY c.name COLLATE NOCASE`,
    ).all(id) as { name: string }[];
    return rows.map((r) => r.name);
  }

  // ── summary ───────────────────────────────────────────────────────────────

  /** Every project with its concepts, observation count and `recent` (default 3) newest observations. */
  status(opts: { recent?: number } = {}): KnowledgeStatus {
    const recent = opts.recent ?? 3;
    const rows = this.#db.prepare(
      `SELECT s.id, s.concepts, s.observation_count FROM project_summary s ORDER BY s.id`,
    ).all() as { id: number; concepts: string | null; observation_count: number }[];
    const projects = rows.map((r) => ({
      project: this.getProject(r.id),
      concepts: r.concepts ? r.concepts.split(", ") : [],
      observationCount: r.observation_count,
      recent: recent > 0 ? this.listObservations(r.id, { limit: recent }) : [],
    }));
    const count = (table: string) =>
      (this.#db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return {
      current: this.currentProject(),
      projects,
      totals: {
        projects: count("projects"),
        observations: count("observations"),
        concepts: count("concepts"),
      },
    };
  }

  #targetProject(projectId: number | undefined): Project {
    if (projectId !== undefined) return this.getProject(projectId);
    const current = this.currentProject();
    if (!current) {
      throw new HarveyError(
        "No current project: choose one with /kb project use ID (or add one with /kb project add NAME)",
      );
    }
    return current;
  }

  #findConcept(nameOrId: string): Concept {
    const key = nameOrId.trim();
    let row = this.#db.prepare("SELECT id, name FROM concepts WHERE name = ? COLLATE NOCASE")
      .get(key) as { id: number; name: string } | undefined;
    if (!row && /^\d+$/.test(key)) {
      row = this.#db.prepare("SELECT id, name FROM concepts WHERE id = ?").get(Number(key)) as
        | { id: number; name: string }
        | undefined;
    }
    if (!row) {
      throw new HarveyError(
        `No concept named "${key}": add it with /kb concept add ${
          key.includes(" ") ? `"${key}"` : key
        }`,
      );
    }
    return toConcept(
      this.#db.prepare(`${CONCEPT_SELECT} WHERE c.id = ?`).get(row.id) as unknown as ConceptRow,
    );
  }
}

/**
 * Splits the words of `/kb observe [KIND] TEXT`: the first word is the kind when it is one
 * of {@linkcode OBSERVATION_KINDS} and text follows it; otherwise the whole line is a note.
 *
 * @example
 * ```ts
 * parseObserveArgs("finding WAL is faster"); // { kind: "finding", text: "WAL is faster" }
 * parseObserveArgs("remember the milk");     // { kind: "note", text: "remember the milk" }
 * ```
 */
export function parseObserveArgs(line: string): { kind: ObservationKind; text: string } {
  const trimmed = line.trim();
  const m = /^(\S+)\s+([\s\S]+)$/.exec(trimmed);
  if (m && (OBSERVATION_KINDS as readonly string[]).includes(m[1].toLowerCase())) {
    return { kind: m[1].toLowerCase() as ObservationKind, text: m[2].trim() };
  }
  return { kind: "note", text: trimmed };
}

/**
 * Formats observations as context for the conversation (`/kb inject`): one paragraph per
 * observation headed by its id, kind, project and date.
 */
export function formatObservationContext(observations: Observation[]): string {
  return observations.map((o) => {
    const date = o.createdAt ? ` · ${o.createdAt.toISOString().slice(0, 10)}` : "";
    return `Observation #${o.id} (${o.kind} · project ${o.projectName}${date}):\n${o.body}`;
  }).join("\n\n");
}

function checkAdoptable(db: DatabaseSync, path: string): void {
  const tables = tableNames(db);
  if (tables.length === 0) return;
  const ours = Object.keys(REQUIRED_COLUMNS).filter((t) => tables.includes(t));
  if (!ours.includes("projects") || !ours.includes("observations")) {
    throw new HarveyError(
      `${path} is a SQLite database but not a knowledge base (it has tables ${
        tables.join(", ")
      }): move it aside or point Harvey at another file`,
    );
  }
  for (const table of ours) {
    const have = columnNames(db, table);
    const missing = REQUIRED_COLUMNS[table].filter((c) => !have.includes(c));
    if (missing.length > 0) {
      throw new HarveyError(
        `${path} has a table ${table} without the column ${
          missing.join(", ")
        } a knowledge base needs: move the file aside and Harvey will create a new one`,
      );
    }
  }
}

function parseKind(kind: string): ObservationKind {
  const value = kind.trim().toLowerCase();
  if (!(OBSERVATION_KINDS as readonly string[]).includes(value)) {
    throw new HarveyError(`Unknown observation kind "${kind}": expected one of ${KIND_LIST}`);
  }
  return value as ObservationKind;
}

function checkId(id: number, what: string): number {
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new HarveyError(`Expected a ${what} id (a whole number from 1), found "${id}"`);
  }
  return id;
}

function toDate(ts: string | null): Date | undefined {
  if (!ts) return undefined;
  const d = new Date(/Z|[+-]\d\d:?\d\d$/.test(ts) ? ts : `${ts.replace(" ", "T")}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function toProject(r: ProjectRow): Project {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    status:
      ((PROJECT_STATUSES as readonly string[]).includes(r.status)
        ? r.status
        : "active") as ProjectStatus,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}

function toConcept(r: ConceptRow): Concept {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    projects: r.projects ? r.projects.split("\n") : [],
  };
}

function toObservation(r: ObservationRow): Observation {
  return {
    id: r.id,
    projectId: r.project_id,
    projectName: r.project_name,
    kind:
      ((OBSERVATION_KINDS as readonly string[]).includes(r.kind)
        ? r.kind
        : "note") as ObservationKind,
    body: r.body,
    createdAt: toDate(r.created_at),
  };
}
