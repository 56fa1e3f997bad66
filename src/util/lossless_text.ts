/**
 * Text files Harvey edits and writes back byte for byte where it changed nothing: a BOM is
 * kept, the line end in use is found, and bytes that are not valid UTF-8 survive a round
 * trip (each is carried as a private-use character, U+10FF80–U+10FFFF, and written back as
 * the byte it was).
 *
 * @module
 */

const ESCAPE_BASE = 0x10ff00;
const BOM = [0xef, 0xbb, 0xbf];
const ESCAPED = /[\u{10FF80}-\u{10FFFF}]/u;
const ESCAPED_ALL = /[\u{10FF80}-\u{10FFFF}]/gu;

/** A file's text and what writing it back needs. */
export interface LosslessText {
  text: string;
  /** The file started with a UTF-8 byte order mark (not part of `text`). */
  bom: boolean;
  /** `\r\n` when most line ends are CR LF, else `\n`. */
  eol: "\n" | "\r\n";
  /** Some bytes were not UTF-8: they are carried in `text` as private-use characters. */
  escaped: boolean;
  /**
   * False when the file had both invalid bytes and real characters of the private-use range
   * used to carry them: such a file cannot be written back exactly.
   */
  exact: boolean;
}

/**
 * Decodes a file's bytes without losing any.
 *
 * @example
 * ```ts
 * const t = decodeLossless(new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0xff, 0x0d, 0x0a]));
 * // t.bom === true, t.eol === "\r\n", t.escaped === true
 * encodeLossless(t.text, t); // the same seven bytes
 * ```
 */
export function decodeLossless(bytes: Uint8Array): LosslessText {
  const bom = bytes.length >= 3 && BOM.every((b, i) => bytes[i] === b);
  const body = bom ? bytes.subarray(3) : bytes;
  let text: string;
  let escaped = false;
  let exact = true;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    escaped = true;
    text = decodeEscaping(body);
    // A real character of the carrier range would come back as a byte: not exact.
    exact = !ESCAPED.test(new TextDecoder().decode(body));
  }
  const crlf = text.split("\r\n").length - 1;
  const lf = text.split("\n").length - 1 - crlf;
  return { text, bom, eol: crlf > lf ? "\r\n" : "\n", escaped, exact };
}

/** The bytes of `text`, with the BOM and the escaped bytes of the file it came from. */
export function encodeLossless(
  text: string,
  from: Pick<LosslessText, "bom" | "escaped">,
): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = from.bom ? [new Uint8Array(BOM)] : [];
  if (!from.escaped) parts.push(enc.encode(text));
  else {
    let last = 0;
    for (const m of text.matchAll(ESCAPED_ALL)) {
      parts.push(enc.encode(text.slice(last, m.index)));
      parts.push(new Uint8Array([m[0].codePointAt(0)! - ESCAPE_BASE]));
      last = m.index + m[0].length;
    }
    parts.push(enc.encode(text.slice(last)));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** UTF-8 decoding where each byte of an invalid sequence becomes U+10FF00 + the byte. */
function decodeEscaping(bytes: Uint8Array): string {
  const cps: number[] = [];
  let out = "";
  const flush = () => {
    out += String.fromCodePoint(...cps);
    cps.length = 0;
  };
  const cont = (i: number, lo = 0x80, hi = 0xbf) =>
    i < bytes.length && bytes[i] >= lo && bytes[i] <= hi;
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    let n = 0;
    let cp = 0;
    if (b < 0x80) [n, cp] = [1, b];
    else if (b >= 0xc2 && b <= 0xdf && cont(i + 1)) {
      [n, cp] = [2, ((b & 0x1f) << 6) | (bytes[i + 1] & 0x3f)];
    } else if (b >= 0xe0 && b <= 0xef) {
      const lo = b === 0xe0 ? 0xa0 : 0x80;
      const hi = b === 0xed ? 0x9f : 0xbf;
      if (cont(i + 1, lo, hi) && cont(i + 2)) {
        [n, cp] = [3, ((b & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f)];
      }
    } else if (b >= 0xf0 && b <= 0xf4) {
      const lo = b === 0xf0 ? 0x90 : 0x80;
      const hi = b === 0xf4 ? 0x8f : 0xbf;
      if (cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3)) {
        n = 4;
        cp = ((b & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) |
          (bytes[i + 3] & 0x3f);
      }
    }
    if (n === 0) [n, cp] = [1, ESCAPE_BASE + b];
    cps.push(cp);
    if (cps.length >= 4096) flush();
    i += n;
  }
  flush();
  return out;
}
