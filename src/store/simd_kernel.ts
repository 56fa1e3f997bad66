/**
 * A WebAssembly SIMD kernel that scores every row of a float32 matrix against a query (dot
 * products, four lanes at a time). It is assembled here from its opcodes, so there is no
 * binary blob in the repository; in text form it is:
 *
 * ```wat
 * (module
 *   (import "env" "memory" (memory 1))
 *   (func (export "scores") (param $m i32) (param $q i32) (param $rows i32)
 *                           (param $stride i32) (param $out i32)
 *     ;; $stride is in floats and a multiple of 16; rows are padded with zeros to it
 *     (local $j i32) (local $bytes i32) (local $a v128) (local $b v128) (local $c v128)
 *     (local $d v128) (local $sum f32)
 *     (local.set $bytes (i32.shl (local.get $stride) (i32.const 2)))
 *     (block $done
 *       (br_if $done (i32.eqz (local.get $rows)))
 *       (loop $row
 *         ;; $a $b $c $d := 0; $j := 0
 *         (loop $col   ;; 16 floats per turn, in four independent accumulators
 *           (local.set $a (f32x4.add (local.get $a)
 *             (f32x4.mul (v128.load offset=0 (i32.add $m $j)) (v128.load offset=0 (i32.add $q $j)))))
 *           ;; … the same for $b, $c, $d at offsets 16, 32, 48
 *           (br_if $col (i32.lt_u (local.tee $j (i32.add $j (i32.const 64))) (local.get $bytes))))
 *         ;; f32.store $out (sum of the lanes of $a+$b+$c+$d)
 *         ;; $out += 4; $m += $bytes; $rows -= 1
 *         (br_if $row (local.tee $rows (i32.sub (local.get $rows) (i32.const 1)))))))
 * ```
 *
 * @module
 */

import { F32, I32, oneFunctionModule, op, uleb, V128 } from "../util/wasm.ts";

/** Writes `rows` dot products of the matrix at byte `matrix` with the query at byte `query`. */
export type ScoresKernel = (
  matrix: number,
  query: number,
  rows: number,
  stride: number,
  out: number,
) => void;

/** Rows and the query must be padded to a multiple of this many floats. */
export const KERNEL_LANES = 16;

let compiled: WebAssembly.Module | undefined;

/**
 * Instantiates the kernel over `memory`, which the caller owns and may grow (the kernel
 * reads the memory's current buffer on every call).
 */
export function createScoresKernel(memory: WebAssembly.Memory): ScoresKernel {
  compiled ??= new WebAssembly.Module(assemble());
  const instance = new WebAssembly.Instance(compiled, { env: { memory } });
  return instance.exports.scores as ScoresKernel;
}

function assemble(): Uint8Array<ArrayBuffer> {
  const { get, set, tee, i32, simd } = op;
  const v128Load = (offset: number) => simd(0x00, 4, ...uleb(offset));
  const v128Zero = simd(0x0c, ...new Array(16).fill(0));
  const f32x4Add = simd(0xe4);
  const f32x4Mul = simd(0xe6);
  const lane = (l: number) => simd(0x1f, l);
  const I32_ADD = 0x6a, I32_SUB = 0x6b, I32_SHL = 0x74, I32_LT_U = 0x49, I32_EQZ = 0x45;
  const F32_ADD = 0x92, F32_STORE = 0x38;
  const BLOCK = 0x02, LOOP = 0x03, END = 0x0b, BR_IF = 0x0d, VOID = 0x40;
  // params: 0 m, 1 q, 2 rows, 3 stride, 4 out; locals: 5 j, 6 bytes, 7-10 a-d, 11 sum
  const accumulate = (acc: number, offset: number) =>
    [
      [...get(acc)],
      [...get(0), ...get(5), I32_ADD, ...v128Load(offset)],
      [...get(1), ...get(5), I32_ADD, ...v128Load(offset)],
      [...f32x4Mul, ...f32x4Add, ...set(acc)],
    ].flat();
  const code = [
    [...get(3), ...i32(2), I32_SHL, ...set(6)], // bytes = stride << 2
    [BLOCK, VOID, ...get(2), I32_EQZ, BR_IF, 0], // no rows: done
    [LOOP, VOID],
    [7, 8, 9, 10].flatMap((acc) => [...v128Zero, ...set(acc)]),
    [...i32(0), ...set(5)], // j = 0
    [LOOP, VOID],
    accumulate(7, 0),
    accumulate(8, 16),
    accumulate(9, 32),
    accumulate(10, 48),
    [...get(5), ...i32(64), I32_ADD, ...tee(5), ...get(6), I32_LT_U, BR_IF, 0, END],
    [...get(7), ...get(8), ...f32x4Add, ...get(9), ...get(10), ...f32x4Add, ...f32x4Add],
    [...tee(7), ...lane(0), ...get(7), ...lane(1), F32_ADD],
    [...get(7), ...lane(2), ...get(7), ...lane(3), F32_ADD, F32_ADD, ...set(11)],
    [...get(4), ...get(11), F32_STORE, 2, 0], // *out = sum
    [...get(4), ...i32(4), I32_ADD, ...set(4)], // out += 4
    [...get(0), ...get(6), I32_ADD, ...set(0)], // m += bytes
    [...get(2), ...i32(1), I32_SUB, ...tee(2), BR_IF, 0], // next row while rows > 0
    [END, END, END],
  ].flat();
  return oneFunctionModule({
    exportName: "scores",
    params: [I32, I32, I32, I32, I32],
    results: [],
    locals: [[2, I32], [4, V128], [1, F32]],
    code,
  });
}
