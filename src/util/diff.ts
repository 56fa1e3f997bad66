/**
 * Line diffs: Myers' O(ND) algorithm in linear space (the middle-snake divide and conquer of
 * "An O(ND) Difference Algorithm and Its Variations", 1986), and unified diff output.
 *
 * @module
 */

/** One line of an edit script: kept, removed from the old text, or added by the new one. */
export interface DiffLine {
  kind: "equal" | "delete" | "insert";
  /** The line without its newline. */
  text: string;
  /** Index of the line in the old text (equal, delete) or the new text (insert). */
  index: number;
  /** Index of an equal line in the new text. */
  newIndex?: number;
  /** The last line of its text had no newline. */
  noEol?: boolean;
}

interface Lines {
  text: string[];
  /** True when the last line has no newline. */
  noEol: boolean;
}

function splitLines(text: string): Lines {
  if (text === "") return { text: [], noEol: false };
  const parts = text.split("\n");
  const noEol = parts[parts.length - 1] !== "";
  if (!noEol) parts.pop();
  return { text: parts, noEol };
}

/**
 * The search a diff may spend: steps of Myers' loop. Beyond it, what is left of the two texts
 * is shown as removed and added — a correct diff, only not the shortest — so a model writing a
 * few lines over a large file of look-alike lines cannot freeze the approval for a minute.
 */
export const DIFF_COST_LIMIT = 20_000_000;

/**
 * The shortest edit script turning the lines of `before` into the lines of `after` (within
 * `maxCost` steps of search, see {@linkcode DIFF_COST_LIMIT}).
 *
 * @example
 * ```ts
 * diffLines("a\nb\n", "a\nc\n").map((d) => d.kind); // ["equal", "delete", "insert"]
 * ```
 */
export function diffLines(
  before: string,
  after: string,
  opts: { maxCost?: number } = {},
): DiffLine[] {
  const budget = { left: opts.maxCost ?? DIFF_COST_LIMIT };
  const a = splitLines(before);
  const b = splitLines(after);
  // Lines become small integers; a last line without a newline differs from the same text with one.
  const ids = new Map<string, number>();
  const idOf = (line: string, last: boolean) => {
    const key = last ? `${line}\n` : line; // "\n" never occurs inside a split line
    let id = ids.get(key);
    if (id === undefined) ids.set(key, id = ids.size);
    return id;
  };
  const ai = Int32Array.from(a.text, (l, i) => idOf(l, a.noEol && i === a.text.length - 1));
  const bi = Int32Array.from(b.text, (l, i) => idOf(l, b.noEol && i === b.text.length - 1));
  const ops: DiffLine[] = [];
  const noEolA = (i: number) => a.noEol && i === a.text.length - 1;
  const noEolB = (i: number) => b.noEol && i === b.text.length - 1;
  const equal = (i: number, j: number) =>
    ops.push({ kind: "equal", text: a.text[i], index: i, newIndex: j, noEol: noEolA(i) });
  const del = (i: number) =>
    ops.push({ kind: "delete", text: a.text[i], index: i, noEol: noEolA(i) });
  const ins = (j: number) =>
    ops.push({ kind: "insert", text: b.text[j], index: j, noEol: noEolB(j) });

  const solve = (aLo: number, aHi: number, bLo: number, bHi: number): void => {
    while (aLo < aHi && bLo < bHi && ai[aLo] === bi[bLo]) equal(aLo++, bLo++);
    let suffix = 0;
    while (aHi > aLo && bHi > bLo && ai[aHi - 1] === bi[bHi - 1]) {
      aHi--;
      bHi--;
      suffix++;
    }
    if (aLo === aHi) {
      for (let j = bLo; j < bHi; j++) ins(j);
    } else if (bLo === bHi || disjoint(ai, bi, aLo, aHi, bLo, bHi)) {
      for (let i = aLo; i < aHi; i++) del(i);
      for (let j = bLo; j < bHi; j++) ins(j);
    } else {
      const snake = middleSnake(ai, bi, aLo, aHi, bLo, bHi, budget);
      if (!snake) {
        // Out of search: the rest as a rewrite.
        for (let i = aLo; i < aHi; i++) del(i);
        for (let j = bLo; j < bHi; j++) ins(j);
        for (let k = 0; k < suffix; k++) equal(aHi + k, bHi + k);
        return;
      }
      const [x0, y0, x1, y1] = snake;
      const whole = x0 === aLo && y0 === bLo && x1 === aHi && y1 === bHi;
      if (
        whole || (x0 === aLo && y0 === bLo && x1 === x0) || (x1 === aHi && y1 === bHi && x0 === x1)
      ) {
        // Cannot happen once common ends are trimmed; a safe answer rather than a loop.
        for (let i = aLo; i < aHi; i++) del(i);
        for (let j = bLo; j < bHi; j++) ins(j);
      } else {
        solve(aLo, x0, bLo, y0);
        for (let i = x0, j = y0; i < x1; i++, j++) equal(i, j);
        solve(x1, aHi, y1, bHi);
      }
    }
    for (let k = 0; k < suffix; k++) equal(aHi + k, bHi + k);
  };
  solve(0, ai.length, 0, bi.length);
  return ops;
}

/** True when a[aLo, aHi) and b[bLo, bHi) have no line in common (a rewrite: no search needed). */
function disjoint(
  a: Int32Array,
  b: Int32Array,
  aLo: number,
  aHi: number,
  bLo: number,
  bHi: number,
): boolean {
  const seen = new Set<number>();
  for (let i = aLo; i < aHi; i++) seen.add(a[i]);
  for (let j = bLo; j < bHi; j++) if (seen.has(b[j])) return false;
  return true;
}

/**
 * The middle snake of a[aLo, aHi) against b[bLo, bHi): its start and end, absolute; undefined
 * when the search would spend more than `budget.left` steps.
 */
function middleSnake(
  a: Int32Array,
  b: Int32Array,
  aLo: number,
  aHi: number,
  bLo: number,
  bHi: number,
  budget: { left: number },
): [number, number, number, number] | undefined {
  const n = aHi - aLo;
  const m = bHi - bLo;
  const delta = n - m;
  const odd = (delta & 1) !== 0;
  const max = Math.ceil((n + m) / 2);
  const off = max + 1;
  const vf = new Int32Array(2 * max + 3);
  const vb = new Int32Array(2 * max + 3);
  for (let d = 0; d <= max; d++) {
    budget.left -= 2 * d + 2;
    if (budget.left < 0) return undefined;
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && vf[off + k - 1] < vf[off + k + 1])
        ? vf[off + k + 1]
        : vf[off + k - 1] + 1;
      let y = x - k;
      const x0 = x;
      const y0 = y;
      while (x < n && y < m && a[aLo + x] === b[bLo + y]) {
        x++;
        y++;
      }
      vf[off + k] = x;
      const kr = delta - k;
      if (odd && kr >= -(d - 1) && kr <= d - 1 && x + vb[off + kr] >= n) {
        return [aLo + x0, bLo + y0, aLo + x, bLo + y];
      }
    }
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && vb[off + k - 1] < vb[off + k + 1])
        ? vb[off + k + 1]
        : vb[off + k - 1] + 1;
      let y = x - k;
      const x0 = x;
      const y0 = y;
      while (x < n && y < m && a[aHi - 1 - x] === b[bHi - 1 - y]) {
        x++;
        y++;
      }
      vb[off + k] = x;
      const kf = delta - k;
      if (!odd && kf >= -d && kf <= d && x + vf[off + kf] >= n) {
        return [aHi - x, bHi - y, aHi - x0, bHi - y0];
      }
    }
  }
  throw new Error("diffLines: no middle snake found"); // unreachable for valid input
}

/** How many lines a diff adds and removes. */
export function diffStats(diff: DiffLine[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const d of diff) {
    if (d.kind === "insert") added++;
    else if (d.kind === "delete") removed++;
  }
  return { added, removed };
}

/**
 * A unified diff of two texts (`--- from`, `+++ to`, `@@` hunks with `context` lines around
 * each change); an empty string when they are equal.
 *
 * @example
 * ```ts
 * unifiedDiff("a\nb\n", "a\nc\n", { from: "a/x.txt", to: "b/x.txt" });
 * // "--- a/x.txt\n+++ b/x.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
 * ```
 */
export function unifiedDiff(
  before: string,
  after: string,
  opts: { from: string; to: string; context?: number },
): string {
  const context = opts.context ?? 3;
  const diff = diffLines(before, after);
  const changed = diff.map((d) => d.kind !== "equal");
  if (!changed.includes(true)) return "";
  let out = `--- ${opts.from}\n+++ ${opts.to}\n`;
  // Old and new line numbers before each entry of the script.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  for (let i = 0, o = 0, n = 0; i < diff.length; i++) {
    oldAt.push(o);
    newAt.push(n);
    if (diff[i].kind !== "insert") o++;
    if (diff[i].kind !== "delete") n++;
  }
  let i = 0;
  while (i < diff.length) {
    while (i < diff.length && !changed[i]) i++;
    if (i >= diff.length) break;
    const start = Math.max(0, i - context);
    // Extend the hunk while the next change is within 2 × context equal lines.
    let end = i;
    for (let j = i; j < diff.length; j++) {
      if (changed[j]) end = j;
      else if (j - end > 2 * context) break;
    }
    const stop = Math.min(diff.length, end + context + 1);
    let oldCount = 0;
    let newCount = 0;
    let body = "";
    for (let j = start; j < stop; j++) {
      const d = diff[j];
      const mark = d.kind === "equal" ? " " : d.kind === "delete" ? "-" : "+";
      if (d.kind !== "insert") oldCount++;
      if (d.kind !== "delete") newCount++;
      body += `${mark}${d.text}\n${d.noEol ? "\\ No newline at end of file\n" : ""}`;
    }
    const oldStart = oldCount ? oldAt[start] + 1 : oldAt[start];
    const newStart = newCount ? newAt[start] + 1 : newAt[start];
    out += `@@ -${oldStart},${oldCount} +${newStart},${newCount} @@\n${body}`;
    i = stop;
  }
  return out;
}
