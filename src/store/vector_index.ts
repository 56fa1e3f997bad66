/**
 * The in-memory vector index of a RAG store: every vector normalised to unit length, kept
 * in one float32 matrix (rows × dims, each row padded to a multiple of 16 floats) inside a
 * growable WebAssembly memory, so a query is one pass of SIMD dot products followed by a
 * top-k selection that never sorts all the scores.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";
import { createScoresKernel, KERNEL_LANES, type ScoresKernel } from "./simd_kernel.ts";

/** A row id with its cosine similarity to the query. */
export interface ScoredId {
  id: number;
  score: number;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the limit of 32-bit WebAssembly memory

/**
 * Unit-length vectors addressed by integer ids, searched by cosine similarity.
 *
 * @example
 * ```ts
 * const index = new VectorIndex(3);
 * index.add(1, [1, 0, 0]);
 * index.add(2, [0, 1, 0]);
 * index.search([0.9, 0.1, 0], 1); // [{ id: 1, score: 0.99… }]
 * ```
 */
export class VectorIndex {
  /** The number of dimensions of every vector. */
  readonly dims: number;
  readonly #stride: number;
  readonly #memory: WebAssembly.Memory;
  readonly #kernel: ScoresKernel;
  #capacity = 0;
  #size = 0;
  #ids = new Float64Array(0);
  readonly #rows = new Map<number, number>();
  /** All of the memory as floats; replaced when the memory grows. */
  #heap: Float32Array<ArrayBufferLike> = new Float32Array(0);

  /** An empty index of `dims`-dimensional vectors, with room for `capacity` before growing. */
  constructor(dims: number, opts: { capacity?: number } = {}) {
    if (!Number.isSafeInteger(dims) || dims < 1) {
      throw new Error(`Expected a positive whole number of dimensions, found ${dims}`);
    }
    this.dims = dims;
    this.#stride = Math.ceil(dims / KERNEL_LANES) * KERNEL_LANES;
    this.#memory = new WebAssembly.Memory({ initial: 1 });
    this.#kernel = createScoresKernel(this.#memory);
    this.#reserve(Math.max(opts.capacity ?? 0, 64));
  }

  /** How many vectors the index holds. */
  get size(): number {
    return this.#size;
  }

  /** How many vectors fit before the memory grows. */
  get capacity(): number {
    return this.#capacity;
  }

  /** True when a vector with `id` is in the index. */
  has(id: number): boolean {
    return this.#rows.has(id);
  }

  /** Adds (or replaces) the vector of `id`, normalised to unit length. */
  add(id: number, vector: ArrayLike<number>): void {
    if (vector.length !== this.dims) {
      throw new HarveyError(
        `Expected a vector of ${this.dims} dimensions, found ${vector.length}`,
      );
    }
    let row = this.#rows.get(id);
    if (row === undefined) {
      if (this.#size === this.#capacity) this.#reserve(this.#capacity * 2);
      row = this.#size++;
      this.#rows.set(id, row);
      this.#ids[row] = id;
    }
    writeNormalised(this.#heap, (1 + row) * this.#stride, this.#stride, vector);
  }

  /** Removes the vector of `id`; the last row moves into its place. */
  remove(id: number): boolean {
    const row = this.#rows.get(id);
    if (row === undefined) return false;
    const last = this.#size - 1;
    if (row !== last) {
      const movedId = this.#ids[last];
      const s = this.#stride;
      this.#heap.copyWithin((1 + row) * s, (1 + last) * s, (2 + last) * s);
      this.#ids[row] = movedId;
      this.#rows.set(movedId, row);
    }
    this.#rows.delete(id);
    this.#size = last;
    return true;
  }

  /**
   * The `k` vectors most similar to `query` (cosine similarity), best first, leaving out
   * those scoring under `minScore`.
   */
  search(query: ArrayLike<number>, k: number, opts: { minScore?: number } = {}): ScoredId[] {
    if (query.length !== this.dims) {
      throw new HarveyError(
        `Expected a query vector of ${this.dims} dimensions, found ${query.length}`,
      );
    }
    const n = this.#size;
    if (n === 0 || k <= 0) return [];
    writeNormalised(this.#heap, 0, this.#stride, query);
    const scoresAt = (1 + this.#capacity) * this.#stride;
    this.#kernel(this.#stride * 4, 0, n, this.#stride, scoresAt * 4);
    return topK(this.#heap.subarray(scoresAt, scoresAt + n), this.#ids, k, opts.minScore);
  }

  /** Layout: [query: stride][matrix: capacity × stride][scores: capacity], in floats. */
  #reserve(capacity: number): void {
    if (capacity <= this.#capacity) return;
    const bytes = (1 + capacity) * this.#stride * 4 + capacity * 4;
    const pages = Math.ceil(bytes / PAGE);
    const have = this.#memory.buffer.byteLength / PAGE;
    if (pages > have) {
      if (pages > MAX_PAGES) {
        throw new HarveyError(
          `The vector index needs ${
            Math.ceil(bytes / 2 ** 20)
          } MB, more than the 4096 MB WebAssembly allows: split the store`,
        );
      }
      this.#memory.grow(pages - have);
    }
    if (this.#heap.buffer !== this.#memory.buffer) {
      this.#heap = new Float32Array(this.#memory.buffer);
    }
    const ids = new Float64Array(capacity);
    ids.set(this.#ids.subarray(0, this.#size));
    this.#ids = ids;
    this.#capacity = capacity;
  }
}

/** Writes `vector / |vector|` into `width` floats of `heap` at `at` (zeros past its length). */
function writeNormalised(
  heap: Float32Array,
  at: number,
  width: number,
  vector: ArrayLike<number>,
): void {
  const v = vector instanceof Float32Array ? vector : new Float32Array(vector);
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  if (!Number.isFinite(sum)) {
    const at = v.findIndex((x) => !Number.isFinite(x));
    throw new HarveyError(
      `Expected finite numbers in a vector, found ${at >= 0 ? v[at] : "an overflow"} at position ${
        Math.max(at, 0)
      }`,
    );
  }
  const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  for (let i = 0; i < v.length; i++) heap[at + i] = v[i] * scale;
  heap.fill(0, at + v.length, at + width);
}

/** The best `k` of `scores` (at least `minScore`), best first, ties kept in row order. */
function topK(scores: Float32Array, ids: Float64Array, k: number, minScore = -Infinity) {
  const bestScore: number[] = [];
  const bestRow: number[] = [];
  let floor = minScore;
  for (let row = 0; row < scores.length; row++) {
    const s = scores[row];
    if (!(s > floor) && !(s === floor && bestScore.length < k)) continue;
    let at = bestScore.length;
    while (at > 0 && bestScore[at - 1] < s) at--;
    if (at >= k) continue;
    bestScore.splice(at, 0, s);
    bestRow.splice(at, 0, row);
    if (bestScore.length > k) {
      bestScore.pop();
      bestRow.pop();
    }
    if (bestScore.length === k) floor = bestScore[k - 1];
  }
  return bestRow.map((row, i) => ({
    id: ids[row],
    score: Math.max(-1, Math.min(1, bestScore[i])),
  }));
}
