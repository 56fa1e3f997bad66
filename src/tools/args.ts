/**
 * Tool arguments from a model: the JSON text it wrote, checked against the tool's schema once,
 * at the edge. A model's mistakes (broken JSON, a missing or mistyped argument) become one line
 * the model can act on, never an exception that ends the turn.
 *
 * @module
 */
import type { ToolSpec } from "../types.ts";

/** One argument of a tool: its JSON type and what it means. */
export interface ArgSpec {
  type: "string" | "integer" | "boolean";
  description: string;
}

/** The arguments of a tool, as a JSON Schema `object` whose properties are {@linkcode ArgSpec}s. */
export interface ArgsSchema {
  type: "object";
  properties: Record<string, ArgSpec>;
  required: string[];
}

/** The parsed arguments, or why they cannot be used (addressed to the model). */
export type ParsedArgs =
  | { ok: true; value: Record<string, string | number | boolean> }
  | { ok: false; error: string };

/**
 * Parses `text` (the arguments a model wrote for `spec`) and checks it against the schema:
 * required arguments present, types right. Lenient where a small model is sloppy and the
 * meaning is plain: empty text is `{}`, a whole number written as text (`"20"`) is taken as a
 * number, a number given for a text argument is taken as text. Unknown arguments are dropped.
 *
 * @example
 * ```ts
 * parseToolArguments(readFileSpec, '{"path": "a.ts", "limit": "20"}');
 * // { ok: true, value: { path: "a.ts", limit: 20 } }
 * ```
 */
export function parseToolArguments(spec: ToolSpec, text: string): ParsedArgs {
  const schema = spec.parameters as unknown as ArgsSchema;
  let raw: unknown;
  const trimmed = text.trim();
  if (trimmed === "") raw = {};
  else {
    try {
      raw = JSON.parse(trimmed);
    } catch (err) {
      const why = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
      return {
        ok: false,
        error: `The arguments of ${spec.name} are not valid JSON (${why}); expected ${
          example(schema)
        }`,
      };
    }
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return {
      ok: false,
      error: `The arguments of ${spec.name} must be a JSON object such as ${example(schema)}`,
    };
  }
  const given = raw as Record<string, unknown>;
  const value: Record<string, string | number | boolean> = {};
  for (const [name, arg] of Object.entries(schema.properties)) {
    const v = given[name];
    if (v === undefined || v === null) continue;
    const checked = coerce(v, arg.type);
    if (checked === undefined) {
      return {
        ok: false,
        error: `Argument "${name}" of ${spec.name} must be ${article(arg.type)}, found ${
          describe(v)
        }`,
      };
    }
    value[name] = checked;
  }
  const missing = schema.required.filter((name) => value[name] === undefined);
  if (missing.length) {
    const names = missing.map((n) => `"${n}"`).join(", ");
    return {
      ok: false,
      error: `${spec.name} needs ${names}; expected ${example(schema)}`,
    };
  }
  return { ok: true, value };
}

function coerce(v: unknown, type: ArgSpec["type"]): string | number | boolean | undefined {
  switch (type) {
    case "string":
      if (typeof v === "string") return v;
      return typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;
    case "integer":
      if (typeof v === "number" && Number.isInteger(v)) return v;
      if (typeof v === "string" && /^-?\d+$/.test(v.trim())) return Number(v.trim());
      return undefined;
    case "boolean":
      if (typeof v === "boolean") return v;
      if (v === "true" || v === "false") return v === "true";
      return undefined;
  }
}

function article(type: ArgSpec["type"]): string {
  return type === "integer" ? "a whole number" : type === "boolean" ? "true or false" : "text";
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  return JSON.stringify(v).slice(0, 40);
}

/** A call's arguments as a model should write them, e.g. `{"path": "…", "offset": 1}`. */
function example(schema: ArgsSchema): string {
  const parts = Object.entries(schema.properties).map(([name, arg]) =>
    `"${name}": ${arg.type === "string" ? '"…"' : arg.type === "integer" ? "1" : "true"}`
  );
  return `{${parts.join(", ")}}`;
}

/**
 * A tool's schema from its arguments: `required` lists the ones not marked optional.
 *
 * @example
 * ```ts
 * argsSchema({ path: { type: "string", description: "file" } }, ["path"]);
 * ```
 */
export function argsSchema(
  properties: Record<string, ArgSpec>,
  required: string[],
): Record<string, unknown> {
  return { type: "object", properties, required } satisfies ArgsSchema;
}
