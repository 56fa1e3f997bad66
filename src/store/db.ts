/**
 * Opening Harvey's SQLite databases: one `node:sqlite` connection per file, WAL mode, and
 * versioned migrations recorded in `PRAGMA user_version`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { basename, dirname } from "node:path";
import { HarveyError } from "../errors.ts";

/** One step of a database's schema history. Versions start at 1 and have no gaps. */
export interface Migration {
  /** The `user_version` the database has once this step has run. */
  version: number;
  /** What the step does, for error messages. */
  description: string;
  /** Applies the step; it runs inside a transaction together with the version bump. */
  up(db: DatabaseSync): void;
}

/** Options for {@linkcode openDatabase}. */
export interface OpenDatabaseOptions {
  /** The schema history, applied in order from the file's current version. */
  migrations: Migration[];
  /** How the database is called in messages, e.g. `knowledge base`; default the file name. */
  label?: string;
  /**
   * Runs before the migrations on a file whose version is 0, so a caller can refuse a
   * database that belongs to something else.
   */
  checkUnversioned?(db: DatabaseSync): void;
}

/**
 * Opens (creating when missing) the SQLite database at `path` with WAL journaling, foreign
 * keys on and a busy timeout, then brings its schema up to date. Keep the returned
 * connection for the life of the store: one connection per database.
 *
 * @example
 * ```ts
 * const db = openDatabase("agents/knowledge.db", { migrations: [
 *   { version: 1, description: "create notes", up: (db) => db.exec("CREATE TABLE notes (body TEXT)") },
 * ] });
 * ```
 */
export function openDatabase(path: string, opts: OpenDatabaseOptions): DatabaseSync {
  const label = opts.label ?? basename(path);
  if (path !== ":memory:") {
    try {
      Deno.mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) {
        throw new HarveyError(
          `Cannot create the folder of ${label} at ${dirname(path)}: ${messageOf(err)}`,
        );
      }
    }
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (err) {
    throw new HarveyError(`Cannot open ${label} at ${path}: ${messageOf(err)}`);
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA foreign_keys = ON");
    const mode = db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string };
    if (path !== ":memory:" && mode.journal_mode !== "wal") {
      throw new HarveyError(
        `Cannot switch ${label} at ${path} to WAL mode (it stays in ${mode.journal_mode} mode): check that its folder is writable`,
      );
    }
    db.exec("PRAGMA synchronous = NORMAL");
    if (schemaVersion(db) === 0) opts.checkUnversioned?.(db);
    migrate(db, opts.migrations, { label });
  } catch (err) {
    db.close();
    if (err instanceof HarveyError) throw err;
    throw new HarveyError(`Cannot open ${label} at ${path}: ${messageOf(err)}`);
  }
  return db;
}

/** The schema version recorded in the database (`PRAGMA user_version`), 0 for a new file. */
export function schemaVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
  return row.user_version;
}

/**
 * Applies the migrations newer than the database's `user_version`, each in its own
 * transaction with its version bump, so a failed step leaves the previous version intact.
 * A database newer than the newest migration is refused.
 */
export function migrate(
  db: DatabaseSync,
  migrations: Migration[],
  opts: { label?: string } = {},
): void {
  const label = opts.label ?? "the database";
  const steps = [...migrations].sort((a, b) => a.version - b.version);
  steps.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`Migrations of ${label} must be numbered 1, 2, 3…; found ${m.version}`);
    }
  });
  const current = schemaVersion(db);
  if (current > steps.length) {
    throw new HarveyError(
      `${
        capitalize(label)
      } has schema version ${current}, newer than this Harvey knows (${steps.length}): upgrade Harvey`,
    );
  }
  for (const step of steps.slice(current)) {
    try {
      transaction(db, () => {
        step.up(db);
        db.exec(`PRAGMA user_version = ${step.version}`);
      });
    } catch (err) {
      if (err instanceof HarveyError) throw err;
      throw new HarveyError(
        `Cannot upgrade ${label} to schema version ${step.version} (${step.description}): ${
          messageOf(err)
        }`,
      );
    }
  }
}

/**
 * Runs `fn` in a transaction (`BEGIN IMMEDIATE`, so a write lock is taken up front):
 * committed when it returns, rolled back when it throws. Nested calls become savepoints.
 *
 * @example
 * ```ts
 * transaction(db, () => {
 *   db.prepare("DELETE FROM chunks WHERE source = ?").run("a.md");
 *   db.prepare("INSERT INTO chunks (content, embedding, source) VALUES (?, ?, ?)").run(text, blob, "a.md");
 * });
 * ```
 */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  if (db.isTransaction) {
    const name = `sp_${crypto.randomUUID().replaceAll("-", "")}`;
    db.exec(`SAVEPOINT ${name}`);
    try {
      const result = fn();
      db.exec(`RELEASE ${name}`);
      return result;
    } catch (err) {
      db.exec(`ROLLBACK TO ${name}`);
      db.exec(`RELEASE ${name}`);
      throw err;
    }
  }
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

/** The names of the tables and views in the database, excluding SQLite's own. */
export function tableNames(db: DatabaseSync): string[] {
  const rows = db.prepare(
    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
  ).all() as { name: string }[];
  return rows.map((r) => r.name);
}

/** The column names of `table`, empty when it does not exist. */
export function columnNames(db: DatabaseSync, table: string): string[] {
  const rows = db.prepare("SELECT name FROM pragma_table_info(?)").all(table) as {
    name: string;
  }[];
  return rows.map((r) => r.name);
}

/** True when `err` is SQLite's unique-constraint failure. */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && (err as { errcode?: number }).errcode === 2067;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
