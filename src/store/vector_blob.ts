/**
 * How vectors are stored in a RAG store's `embedding` column.
 *
 * - format 2 (Harvey's own): little-endian float32 values, nothing else;
 * - format 1 (the original Harvey): a little-endian int32 count, then that many
 *   little-endian float64 values.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";

/** The format of stores Harvey creates. */
export const FORMAT_F32 = 2;
/** The format of stores written by the original (Go) Harvey. */
export const FORMAT_LEGACY_F64 = 1;

/** A vector storage format. */
export type VectorFormat = typeof FORMAT_F32 | typeof FORMAT_LEGACY_F64;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Encodes `vector` as a BLOB in `format`. */
export function encodeVector(vector: ArrayLike<number>, format: VectorFormat): Uint8Array {
  if (format === FORMAT_F32) {
    if (LITTLE_ENDIAN_HOST) {
      const copy = Float32Array.from(vector);
      return new Uint8Array(copy.buffer);
    }
    const bytes = new Uint8Array(vector.length * 4);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i], true);
    return bytes;
  }
  const bytes = new Uint8Array(4 + vector.length * 8);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, vector.length, true);
  for (let i = 0; i < vector.length; i++) view.setFloat64(4 + i * 8, vector[i], true);
  return bytes;
}

/** Decodes a BLOB written in `format`; a BLOB of the wrong size is an error naming `where`. */
export function decodeVector(
  blob: Uint8Array,
  format: VectorFormat,
  where = "a chunk",
): Float32Array {
  if (format === FORMAT_F32) {
    if (blob.byteLength % 4 !== 0) {
      throw new HarveyError(
        `Expected a float32 vector in ${where}, found ${blob.byteLength} bytes (not a multiple of 4): the store is damaged, ingest into a new store`,
      );
    }
    const n = blob.byteLength / 4;
    if (LITTLE_ENDIAN_HOST) {
      if (blob.byteOffset % 4 === 0) {
        return new Float32Array(blob.buffer, blob.byteOffset, n).slice();
      }
      return new Float32Array(blob.slice().buffer);
    }
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const n = blob.byteLength >= 4 ? view.getInt32(0, true) : -1;
  if (n < 0 || blob.byteLength !== 4 + n * 8) {
    throw new HarveyError(
      `Expected a length-prefixed float64 vector in ${where}, found ${blob.byteLength} bytes that do not match its length: the store is damaged, ingest into a new store`,
    );
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getFloat64(4 + i * 8, true);
  return out;
}

/** The number of dimensions of a BLOB in `format`, without decoding it. */
export function blobDims(blob: Uint8Array, format: VectorFormat): number {
  if (format === FORMAT_F32) return Math.floor(blob.byteLength / 4);
  if (blob.byteLength < 4) return 0;
  return new DataView(blob.buffer, blob.byteOffset, 4).getInt32(0, true);
}
