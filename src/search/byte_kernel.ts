/**
 * A WebAssembly SIMD kernel that finds the first place where a byte `a` is followed, `gap`
 * bytes later, by a byte `b`, sixteen positions at a time. `/search` uses it on raw file
 * bytes for its binary check (NUL, NUL, gap 0) and for the two rarest bytes of the literal
 * every match must contain: about ten times faster than `Uint8Array.prototype.indexOf`.
 * Files are read straight into the kernel's memory, so nothing is copied.
 *
 * It is assembled here from its opcodes, so there is no binary blob in the repository; in
 * text form it is:
 *
 * ```wat
 * (module
 *   (import "env" "memory" (memory 1))
 *   (func (export "find") (param $p i32) (param $end i32) (param $a i32) (param $b i32)
 *                         (param $gap i32) (result i32)
 *     (local $va v128) (local $vb v128) (local $mask i32)
 *     (local.set $va (i8x16.splat (local.get $a)))
 *     (local.set $vb (i8x16.splat (local.get $b)))
 *     (block $tail (loop $vector   ;; 16 positions per turn while both loads fit before $end
 *       (br_if $tail (i32.gt_u (i32.add (i32.add $p $gap) (i32.const 16)) (local.get $end)))
 *       (local.tee $mask (i8x16.bitmask (v128.and
 *         (i8x16.eq (v128.load (local.get $p)) (local.get $va))
 *         (i8x16.eq (v128.load (i32.add $p $gap)) (local.get $vb)))))
 *       (if (then (return (i32.add $p (i32.ctz (local.get $mask))))))
 *       (local.set $p (i32.add $p (i32.const 16)))
 *       (br $vector)))
 *     (block $done (loop $scalar   ;; the last positions one at a time
 *       (br_if $done (i32.ge_u (i32.add $p $gap) (local.get $end)))
 *       (if (i32.eq (i32.load8_u $p) $a) (then
 *         (if (i32.eq (i32.load8_u (i32.add $p $gap)) $b) (then (return $p)))))
 *       (local.set $p (i32.add $p (i32.const 1)))
 *       (br $scalar)))
 *     (i32.const -1)))
 * ```
 *
 * @module
 */

import { I32, oneFunctionModule, op, V128 } from "../util/wasm.ts";

/** Searches byte pairs in its own buffer (in place, SIMD) or in any other Uint8Array. */
export interface PairFinder {
  /** A buffer searched in place; read files into it. */
  readonly buffer: Uint8Array;
  /**
   * The first `p` in `[from, to - gap)` with `view[p] === a` and `view[p + gap] === b`, or -1.
   * `view` is a part of `buffer` or any other Uint8Array (searched with plain JavaScript).
   */
  find(view: Uint8Array, from: number, to: number, a: number, b: number, gap: number): number;
}

type Kernel = (p: number, end: number, a: number, b: number, gap: number) => number;

const PAGE = 65536;
let compiled: WebAssembly.Module | null | undefined;

/** A finder whose buffer holds `pages` × 64 KiB. */
export function createPairFinder(pages = 4): PairFinder {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(assemble());
    } catch {
      compiled = null; // no WebAssembly SIMD here (e.g. --jitless): plain JavaScript
    }
  }
  if (compiled === null) {
    const buffer = new Uint8Array(pages * PAGE);
    return { buffer, find: findJs };
  }
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const kernel = new WebAssembly.Instance(compiled, { env: { memory } }).exports.find as Kernel;
  const buffer = new Uint8Array(memory.buffer);
  return {
    buffer,
    find(view, from, to, a, b, gap) {
      if (view.buffer !== memory.buffer) return findJs(view, from, to, a, b, gap);
      const base = view.byteOffset;
      const p = kernel(base + from, base + Math.min(to, view.length), a, b, gap);
      return p < 0 ? -1 : p - base;
    },
  };
}

function findJs(
  view: Uint8Array,
  from: number,
  to: number,
  a: number,
  b: number,
  gap: number,
): number {
  const last = Math.min(to, view.length) - gap; // p < last
  for (let p = from; p < last; p++) {
    p = view.indexOf(a, p);
    if (p < 0 || p >= last) return -1;
    if (view[p + gap] === b) return p;
  }
  return -1;
}

function assemble(): Uint8Array<ArrayBuffer> {
  const { get, set, tee, i32, simd } = op;
  const v128Load = simd(0x00, 0, 0);
  const splat = simd(0x0f), eq = simd(0x23), and = simd(0x4e), bitmask = simd(0x64);
  const I32_ADD = 0x6a, I32_EQ = 0x46, I32_GT_U = 0x4b, I32_GE_U = 0x4f, I32_CTZ = 0x68;
  const LOAD8_U = [0x2d, 0, 0];
  const BLOCK = 0x02, LOOP = 0x03, IF = 0x04, END = 0x0b, BR = 0x0c, BR_IF = 0x0d;
  const RETURN = 0x0f, VOID = 0x40;
  // params: 0 p, 1 end, 2 a, 3 b, 4 gap; locals: 5 va, 6 vb, 7 mask
  const pGap = [...get(0), ...get(4), I32_ADD];
  const code = [
    [...get(2), ...splat, ...set(5), ...get(3), ...splat, ...set(6)],
    [BLOCK, VOID, LOOP, VOID],
    [...pGap, ...i32(16), I32_ADD, ...get(1), I32_GT_U, BR_IF, 1],
    [...get(0), ...v128Load, ...get(5), ...eq, ...pGap, ...v128Load, ...get(6), ...eq],
    [...and, ...bitmask, ...tee(7)],
    [IF, VOID, ...get(0), ...get(7), I32_CTZ, I32_ADD, RETURN, END],
    [...get(0), ...i32(16), I32_ADD, ...set(0), BR, 0, END, END],
    [BLOCK, VOID, LOOP, VOID],
    [...pGap, ...get(1), I32_GE_U, BR_IF, 1],
    [...get(0), ...LOAD8_U, ...get(2), I32_EQ, IF, VOID],
    [...pGap, ...LOAD8_U, ...get(3), I32_EQ, IF, VOID, ...get(0), RETURN, END, END],
    [...get(0), ...i32(1), I32_ADD, ...set(0), BR, 0, END, END],
    [...i32(-1), END],
  ].flat();
  return oneFunctionModule({
    exportName: "find",
    params: [I32, I32, I32, I32, I32],
    results: [I32],
    locals: [[2, V128], [1, I32]],
    code,
  });
}
