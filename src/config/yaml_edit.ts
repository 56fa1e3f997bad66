/**
 * Edits a YAML text in place: only the text of the nodes a change touches is replaced, so
 * every other byte — comments inside lists and maps, blank lines, alignment, quoting, CRLF
 * line ends — stays as the user wrote it.
 *
 * A change sets or deletes the value at a key path. A block list is edited item by item:
 * items are matched by their `name` (or their value), kept items keep their text and
 * comments, removed ones lose their lines, new ones are added at their place. Flow
 * collections (`[a, b]`, `{k: v}`) are rewritten whole, in flow style.
 *
 * @module
 */
import { type Document, loadYaml, type YamlNode, type YamlPair } from "../deps.ts";
import { HarveyError } from "../errors.ts";

/** One change: the key path, and the new value (`undefined` deletes the key). */
export type YamlChange = [path: (string | number)[], value: unknown];

/** Options of {@linkcode editYaml}. */
export interface EditOptions {
  /** The line end to write new lines with (`\n` or `\r\n`, as the file has them). */
  eol: string;
  /**
   * Names of items of the list at `path` (keys joined with ".") that a new value for that
   * list leaves out but that must stay in the file (settings the session holds back).
   */
  keep?: (path: string) => ReadonlySet<string>;
}

type Yaml = Awaited<ReturnType<typeof loadYaml>>;
type Collection = InstanceType<Yaml["YAMLMap"]> | InstanceType<Yaml["YAMLSeq"]>;
type Range = [number, number, number];
interface Edit {
  start: number;
  end: number;
  text: string;
  /** Order of planning: of two insertions at one place, the one planned first comes first. */
  order?: number;
}
interface Ctx {
  yaml: Yaml;
  text: string;
  eol: string;
  keep: (path: string) => ReadonlySet<string>;
  edits: Edit[];
}

const NO_KEEP: ReadonlySet<string> = new Set();

/**
 * Applies `changes` to the YAML `text`, one after the other, and returns the new text. The
 * text must parse; a structure the editor cannot edit in place (a key path through a list)
 * throws a HarveyError.
 *
 * @example
 * ```ts
 * await editYaml("a: 1 # one\nlist:\n  - x # keep\n", [[["list"], ["x", "y"]]], { eol: "\n" });
 * // "a: 1 # one\nlist:\n  - x # keep\n  - y\n"
 * ```
 */
export async function editYaml(
  text: string,
  changes: YamlChange[],
  opts: EditOptions,
): Promise<string> {
  const yaml = await loadYaml();
  let out = text;
  for (const [path, value] of changes) {
    const doc = yaml.parseDocument(out, { uniqueKeys: false, prettyErrors: false });
    if (doc.errors.length) throw new HarveyError(`Cannot edit the file: ${doc.errors[0].message}`);
    const ctx: Ctx = {
      yaml,
      text: out,
      eol: opts.eol,
      keep: opts.keep ?? (() => NO_KEEP),
      edits: [],
    };
    planChange(ctx, doc, path, value);
    out = applyEdits(out, ctx.edits);
  }
  return out;
}

function applyEdits(text: string, edits: Edit[]): string {
  // Disjoint ranges, applied from the end so that earlier offsets stay valid; at one place a
  // removal goes first, then the insertions, the last planned first (so it ends up last).
  edits.forEach((e, i) => e.order = i);
  const sorted = [...edits].sort((a, b) =>
    b.start - a.start || b.end - a.end || b.order! - a.order!
  );
  let out = text;
  for (const e of sorted) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

function planChange(ctx: Ctx, doc: Document, path: (string | number)[], value: unknown): void {
  const { yaml } = ctx;
  const root = doc.contents as YamlNode | null;
  const names = path.map(String);
  if (root === null || (yaml.isScalar(root) && root.value === null)) {
    if (value === undefined) return;
    // An empty file, or one with only comments: the new keys go at the end.
    const at = ctx.text.length;
    const lead = at > 0 && !ctx.text.endsWith("\n") ? ctx.eol : "";
    insert(ctx, at, lead + block(ctx, nest(names, value), 0));
    return;
  }
  if (!yaml.isMap(root)) throw new HarveyError("The file's top level is not a mapping of keys");
  let node: YamlNode = root;
  for (let i = 0; i < path.length; i++) {
    const rest = path.slice(i);
    if ((node as Collection).flow) {
      // Inside a flow collection (`{…}`, `[…]`) the whole collection is written again.
      replaceFlow(ctx, node, setIn(node.toJSON(), rest, value));
      return;
    }
    const last = i === path.length - 1;
    const here = pathKey(names.slice(0, i + 1));
    if (yaml.isSeq(node)) {
      const items = (node as InstanceType<Yaml["YAMLSeq"]>).items as YamlNode[];
      const index = Number(path[i]);
      const item = Number.isInteger(index) ? items[index] : undefined;
      const dash = item ? dashOf(ctx.text, item) : undefined;
      if (item === undefined || dash === undefined) {
        throw new HarveyError(`Cannot edit ${pathKey(names)}: there is no list item ${path[i]}`);
      }
      if (last && value === undefined) {
        const end = lineEndAfter(ctx.text, rangeOf(item)![2]);
        ctx.edits.push({ start: lineStart(ctx.text, dash), end, text: "" });
        return;
      }
      if (!last && yaml.isMap(item)) {
        node = item;
        continue;
      }
      const col = column(ctx.text, dash) + 2;
      setValue(ctx, item, last ? value : nest(names.slice(i + 1), value), here, { col });
      return;
    }
    if (!yaml.isMap(node)) throw new HarveyError(`Cannot edit ${pathKey(names)}: not a mapping`);
    const map = node as InstanceType<Yaml["YAMLMap"]>;
    const pair = findPair(ctx, map, names[i]);
    if (!pair) {
      if (value !== undefined) insertPair(ctx, map, names[i], nest(names.slice(i + 1), value));
      return;
    }
    const child = pair.value as YamlNode | null;
    if (last) {
      if (value === undefined) deletePair(ctx, map, pair);
      else setValue(ctx, child, value, here, placeOf(ctx, pair));
      return;
    }
    if (!yaml.isCollection(child)) {
      if (value === undefined) return; // nothing there to delete
      setValue(ctx, child, nest(names.slice(i + 1), value), here, placeOf(ctx, pair));
      return;
    }
    node = child;
  }
}

/** A copy of the plain value `base` with `value` set (or deleted) at `path`. */
function setIn(base: unknown, path: (string | number)[], value: unknown): unknown {
  if (!path.length) return value;
  const [k, ...rest] = path;
  if (Array.isArray(base)) {
    const out = [...base];
    const i = Number(k);
    if (value === undefined && !rest.length) out.splice(i, 1);
    else out[i] = setIn(out[i], rest, value);
    return out;
  }
  const out: Record<string, unknown> = isPlainObject(base) ? { ...base } : {};
  if (value === undefined && !rest.length) delete out[String(k)];
  else out[String(k)] = setIn(out[String(k)], rest, value);
  return out;
}

/** `{a: {b: value}}` for the path `[a, b]`. */
function nest(path: string[], value: unknown): unknown {
  return path.reduceRight<unknown>((v, k) => ({ [k]: v }), value);
}

const pathKey = (path: string[]) => path.join(".");

function findPair(ctx: Ctx, map: InstanceType<Yaml["YAMLMap"]>, key: string): YamlPair | undefined {
  let found: YamlPair | undefined;
  for (const pair of map.items as YamlPair[]) {
    if (keyText(ctx, pair) === key) found = pair; // the last one wins, as in the parsed value
  }
  return found;
}

function keyText(ctx: Ctx, pair: YamlPair): string | undefined {
  const k = pair.key as YamlNode | null;
  if (k === null) return undefined;
  return ctx.yaml.isScalar(k) ? String(k.value) : undefined;
}

function rangeOf(node: YamlNode | null | undefined): Range | undefined {
  return (node as { range?: Range } | null | undefined)?.range ?? undefined;
}

/** Column of the pair's key (its indentation). */
function keyColumn(ctx: Ctx, pair: YamlPair): number {
  return column(ctx.text, rangeOf(pair.key as YamlNode)![0]);
}

/** Where a value sits: the column of its owner, and the end of its key when it has one. */
interface Place {
  col: number;
  keyEnd?: number;
}

function placeOf(ctx: Ctx, pair: YamlPair): Place {
  return { col: keyColumn(ctx, pair), keyEnd: rangeOf(pair.key as YamlNode)![1] };
}

// --- positions --------------------------------------------------------------------------

function column(text: string, pos: number): number {
  return pos - (text.lastIndexOf("\n", pos - 1) + 1);
}

function lineStart(text: string, pos: number): number {
  return text.lastIndexOf("\n", pos - 1) + 1;
}

/** The position just after the line end at or after `pos` (`pos` itself right after one). */
function lineEndAfter(text: string, pos: number): number {
  if (pos > 0 && text[pos - 1] === "\n") return pos;
  const i = text.indexOf("\n", pos);
  return i < 0 ? text.length : i + 1;
}

/** True when only spaces stand between the line start and `pos`. */
function firstOnLine(text: string, pos: number): boolean {
  return /^ *$/.test(text.slice(lineStart(text, pos), pos));
}

// --- rendering ----------------------------------------------------------------------------

function isCollectionValue(v: unknown): boolean {
  return (Array.isArray(v) && v.length > 0) ||
    (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length > 0);
}

/** `value` as block YAML whose every line is indented by `indent`, ending with a line end. */
function block(ctx: Ctx, value: unknown, indent: number): string {
  const text = ctx.yaml.stringify(value, { lineWidth: 0, flowCollectionPadding: false });
  const pad = " ".repeat(indent);
  return text.replace(/\n$/, "").split("\n").map((l) => (l ? pad + l : l)).join(ctx.eol) +
    ctx.eol;
}

/** `value` on one line: a scalar, or a flow collection. */
function inline(ctx: Ctx, value: unknown, padding = false): string {
  return ctx.yaml.stringify(value, {
    lineWidth: 0,
    blockQuote: false,
    collectionStyle: "flow",
    flowCollectionPadding: padding,
  }).replace(/\n$/, "");
}

/** `value` as block YAML starting where a node starts (its first line not indented). */
function blockAt(ctx: Ctx, value: unknown, col: number): string {
  return block(ctx, value, col).slice(col);
}

function insert(ctx: Ctx, at: number, text: string): void {
  ctx.edits.push({ start: at, end: at, text });
}

// --- maps ---------------------------------------------------------------------------------

function insertPair(
  ctx: Ctx,
  map: InstanceType<Yaml["YAMLMap"]>,
  key: string,
  value: unknown,
): void {
  const range = rangeOf(map as unknown as YamlNode)!;
  if (map.flow) {
    replaceFlow(ctx, map as unknown as YamlNode, { ...(map.toJSON() as object), [key]: value });
    return;
  }
  const first = (map.items as YamlPair[])[0];
  const col = first ? keyColumn(ctx, first) : column(ctx.text, range[0]);
  const at = lineEndAfter(ctx.text, range[1]);
  const lead = at === ctx.text.length && at > 0 && !ctx.text.endsWith("\n") ? ctx.eol : "";
  insert(ctx, at, lead + block(ctx, { [key]: value }, col));
}

function deletePair(ctx: Ctx, map: InstanceType<Yaml["YAMLMap"]>, pair: YamlPair): void {
  if (map.flow) {
    const rest = { ...(map.toJSON() as Record<string, unknown>) };
    delete rest[keyText(ctx, pair)!];
    replaceFlow(ctx, map as unknown as YamlNode, rest);
    return;
  }
  const keyStart = rangeOf(pair.key as YamlNode)![0];
  const valueRange = rangeOf(pair.value as YamlNode);
  const end = lineEndAfter(
    ctx.text,
    valueRange ? valueRange[2] : rangeOf(pair.key as YamlNode)![2],
  );
  // The first key of a map inside a list item shares its line with "- ": keep the dash.
  const start = firstOnLine(ctx.text, keyStart) ? lineStart(ctx.text, keyStart) : keyStart;
  ctx.edits.push({ start, end, text: start === keyStart ? ctx.eol : "" });
}

function editMap(
  ctx: Ctx,
  map: InstanceType<Yaml["YAMLMap"]>,
  value: Record<string, unknown>,
  path: string,
): void {
  if (map.flow) {
    replaceFlow(ctx, map as unknown as YamlNode, value);
    return;
  }
  const seen = new Set<string>();
  const added: Record<string, unknown> = {};
  for (const pair of map.items as YamlPair[]) {
    const k = keyText(ctx, pair);
    if (k === undefined) continue;
    seen.add(k);
    if (!(k in value) || value[k] === undefined) deletePair(ctx, map, pair);
    else setValue(ctx, pair.value as YamlNode | null, value[k], `${path}.${k}`, placeOf(ctx, pair));
  }
  for (const [k, v] of Object.entries(value)) {
    if (seen.has(k) || v === undefined) continue;
    // An empty map the file never had adds nothing but noise (`model_map: {}`).
    if (typeof v === "object" && v !== null && !Array.isArray(v) && !Object.keys(v).length) {
      continue;
    }
    added[k] = v;
  }
  if (Object.keys(added).length) {
    const range = rangeOf(map as unknown as YamlNode)!;
    const col = column(ctx.text, range[0]);
    const at = lineEndAfter(ctx.text, range[1]);
    const lead = at === ctx.text.length && !ctx.text.endsWith("\n") ? ctx.eol : "";
    insert(ctx, at, lead + block(ctx, added, col));
  }
}

// --- values -------------------------------------------------------------------------------

/** Sets the value of a node (a pair's value or a list item) at `place`. */
function setValue(
  ctx: Ctx,
  node: YamlNode | null,
  value: unknown,
  path: string,
  place: Place,
): void {
  const { yaml } = ctx;
  if (node !== null && sameValue(node.toJSON(), value)) return;
  if (yaml.isMap(node) && isPlainObject(value) && !node.flow) {
    editMap(ctx, node as InstanceType<Yaml["YAMLMap"]>, value, path);
  } else if (yaml.isSeq(node) && Array.isArray(value) && value.length > 0 && !node.flow) {
    editSeq(ctx, node as InstanceType<Yaml["YAMLSeq"]>, value, path);
  } else if (yaml.isCollection(node) && (node as Collection).flow) {
    replaceFlow(ctx, node, value);
  } else {
    replaceNode(ctx, node, value, place);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => sameValue(a[k], b[k]));
  }
  return false;
}

function replaceFlow(ctx: Ctx, node: YamlNode, value: unknown): void {
  const r = rangeOf(node)!;
  const padded = /^[[{] /.test(ctx.text.slice(r[0], r[1]));
  ctx.edits.push({ start: r[0], end: r[1], text: inline(ctx, value, padded) });
}

/** Replaces a scalar, an alias, an empty value or a whole block collection. */
function replaceNode(ctx: Ctx, node: YamlNode | null, value: unknown, place: Place): void {
  const { yaml, text } = ctx;
  const { col, keyEnd } = place;
  const r = rangeOf(node);
  if (!r) throw new HarveyError("Cannot edit a value the file does not spell out");
  const [start, end] = r;
  if (start === end) {
    // `key:` with nothing after it: a scalar goes after the colon, a collection below.
    if (isCollectionValue(value)) {
      insert(ctx, lineEndAfter(text, start), block(ctx, value, col + 2));
    } else {
      insert(ctx, start, `${text[start - 1] === " " ? "" : " "}${inline(ctx, value)}`);
    }
    return;
  }
  if (yaml.isScalar(node) || yaml.isAlias(node)) {
    let rendered = inline(ctx, value);
    // Keep the quotes the user chose for a string that needs none.
    const type = yaml.isScalar(node) ? node.type : undefined;
    if (typeof value === "string" && rendered === value) {
      if (type === "QUOTE_SINGLE" && !value.includes("'")) rendered = `'${value}'`;
      if (type === "QUOTE_DOUBLE") rendered = JSON.stringify(value);
    }
    ctx.edits.push({ start, end, text: rendered });
    return;
  }
  // A block collection: what replaces it starts where it started, or after the key when
  // nothing (no comment) stands between them and the new value fits on one line.
  const nodeCol = column(text, start);
  const endsLine = text[end - 1] === "\n";
  if (
    !isCollectionValue(value) && keyEnd !== undefined &&
    /^[ \t]*:[ \t]*\r?\n[ ]*$/.test(text.slice(keyEnd, start))
  ) {
    ctx.edits.push({
      start: keyEnd,
      end,
      text: `: ${inline(ctx, value)}${endsLine ? ctx.eol : ""}`,
    });
    return;
  }
  const rendered = isCollectionValue(value)
    ? blockAt(ctx, value, nodeCol)
    : inline(ctx, value) + (endsLine ? ctx.eol : "");
  ctx.edits.push({ start, end, text: endsLine ? rendered : rendered.replace(/\r?\n$/, "") });
}

// --- lists --------------------------------------------------------------------------------

/** What identifies a list item across a change: its `name`, else its value. */
function identity(v: unknown): string {
  if (isPlainObject(v) && typeof v.name === "string") return `name:${v.name}`;
  return `value:${JSON.stringify(v)}`;
}

/** Where the "- " of a block list item is, or undefined when the item is not laid out plainly. */
function dashOf(text: string, item: YamlNode): number | undefined {
  const r = rangeOf(item);
  if (!r) return undefined;
  let j = r[0] - 1;
  while (j >= 0 && text[j] === " ") j--;
  return text[j] === "-" && firstOnLine(text, j) ? j : undefined;
}

function editSeq(
  ctx: Ctx,
  seq: InstanceType<Yaml["YAMLSeq"]>,
  value: unknown[],
  path: string,
): void {
  const { text } = ctx;
  const items = seq.items as YamlNode[];
  const dashes = items.map((item) => dashOf(text, item));
  if (!items.length || dashes.some((d) => d === undefined)) {
    const start = rangeOf(seq as unknown as YamlNode)![0];
    replaceNode(ctx, seq as unknown as YamlNode, value, { col: column(text, start) });
    return;
  }
  const col = column(text, dashes[0]!);
  const old = items.map((item) => item.toJSON());
  const queues = new Map<string, number[]>();
  old.forEach((v, i) => {
    const id = identity(v);
    queues.set(id, [...(queues.get(id) ?? []), i]);
  });
  const keep = ctx.keep(path);
  const matched = new Array<boolean>(items.length).fill(false);
  // New items that have no old one go after the old item before them (-1: before the first).
  const inserts = new Map<number, unknown[]>();
  let next = 0;
  let anchor = -1;
  for (const v of value) {
    const queue = queues.get(identity(v)) ?? [];
    while (queue.length && queue[0] < next) queue.shift();
    const i = queue.shift();
    if (i === undefined) {
      inserts.set(anchor, [...(inserts.get(anchor) ?? []), v]);
      continue;
    }
    matched[i] = true;
    setValue(ctx, items[i], v, path, { col: col + 2 });
    next = i + 1;
    anchor = i;
  }
  items.forEach((item, i) => {
    if (matched[i]) return;
    const name = isPlainObject(old[i]) ? (old[i] as Record<string, unknown>).name : undefined;
    if (typeof name === "string" && keep.has(name)) return;
    const end = lineEndAfter(text, rangeOf(item)![2]);
    ctx.edits.push({ start: lineStart(text, dashes[i]!), end, text: "" });
  });
  for (const [after, values] of inserts) {
    const at = after < 0
      ? lineStart(text, dashes[0]!)
      : lineEndAfter(text, rangeOf(items[after])![2]);
    const lead = at === text.length && !text.endsWith("\n") ? ctx.eol : "";
    insert(ctx, at, lead + block(ctx, values, col));
  }
}
