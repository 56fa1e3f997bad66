/**
 * Writing a small WebAssembly module by hand: the two SIMD kernels (vector scores, byte search)
 * are built from their opcodes at load time, so no binary file is kept in the repository.
 *
 * @module
 */

/** Value types. */
export const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** `local.get i`, `local.set i`, `local.tee i`, `i32.const v`, and a SIMD (0xfd) instruction. */
export const op = {
  get: (i: number) => [0x20, i],
  set: (i: number) => [0x21, i],
  tee: (i: number) => [0x22, i],
  i32: (v: number) => [0x41, ...sleb(v)],
  simd: (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm],
};

const name = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

/**
 * A module that imports `env.memory` and exports one function `exportName` with `params` and
 * `results` (value types), `locals` (groups of `[count, type]`) and the instructions `code`
 * (ending with the function's `end`).
 */
export function oneFunctionModule(opts: {
  exportName: string;
  params: number[];
  results: number[];
  locals: [count: number, type: number][];
  code: number[];
}): Uint8Array<ArrayBuffer> {
  const body = [...uleb(opts.locals.length), ...opts.locals.flat(), ...opts.code];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, [
      1,
      0x60,
      ...uleb(opts.params.length),
      ...opts.params,
      ...uleb(opts.results.length),
      ...opts.results,
    ]),
    ...section(2, [1, ...name("env"), ...name("memory"), 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name(opts.exportName), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}
