/**
 * The trailer that embeds the index in a container (spec "Trailer /
 * embedded index format"), and ctnr's footer:
 *
 * ```text
 * payload 0 | payload 1 | ... | "CTNRv1__" | u64le L | index (L bytes) [| u64le L | "CTNRv1ix"]
 * ```
 *
 * The 16-byte footer in brackets is ctnr's addition: it repeats `L` so that
 * the index is found with one read of the last 16 bytes, whatever its size.
 * The original extractor reads exactly `L` bytes after the magic and never
 * sees it. Containers without the footer (written by the original tools)
 * are found by an exact backward scan; see {@link findTrailer}.
 *
 * @module
 */

import { ContainerFormatError } from "../errors.ts";
import type { RandomAccess } from "../io/random_access.ts";

/** Magic that opens the trailer (spec: `b'CTNRv1__'`). */
export const TRAILER_MAGIC: Uint8Array = new TextEncoder().encode("CTNRv1__");
/** Magic that closes ctnr's footer; never equal to {@link TRAILER_MAGIC}. */
export const FOOTER_MAGIC: Uint8Array = new TextEncoder().encode("CTNRv1ix");
/** Size in bytes of the trailer header: magic plus u64 length. */
export const TRAILER_HEADER_SIZE = 16;
/** Size in bytes of ctnr's footer: u64 length plus magic. */
export const FOOTER_SIZE = 16;
/**
 * Build the trailer header that precedes an embedded index: magic and u64le length.
 *
 * @param indexLength size in bytes of the index that follows
 * @returns 16 bytes
 */
export function encodeTrailerHeader(indexLength: number): Uint8Array {
  const bytes = new Uint8Array(TRAILER_HEADER_SIZE);
  bytes.set(TRAILER_MAGIC, 0);
  new DataView(bytes.buffer).setBigUint64(8, BigInt(indexLength), true);
  return bytes;
}

/**
 * Build ctnr's footer that follows an embedded index: u64le length and magic.
 *
 * @param indexLength size in bytes of the index before it
 * @returns 16 bytes
 */
export function encodeFooter(indexLength: number): Uint8Array {
  const bytes = new Uint8Array(FOOTER_SIZE);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(indexLength), true);
  bytes.set(FOOTER_MAGIC, 8);
  return bytes;
}

/** Where an embedded index sits in a container. */
export interface TrailerLocation {
  /** Offset of the trailer magic: the end of the payload area. */
  trailerOffset: number;
  /** Offset of the first index byte. */
  indexOffset: number;
  /** Size in bytes of the index. */
  indexLength: number;
  /** Whether ctnr's footer follows the index (false for the original tools' containers). */
  hasFooter: boolean;
}

/**
 * Find the embedded index of a container, exactly.
 *
 * First the footer: the last 16 bytes name `L`, and the trailer header must
 * stand `L + 32` bytes before the end with the same `L` (one read each).
 * Then, when `scan` is set, the original tools' layout: scanning backwards
 * from the end for a magic whose `L` makes the index end exactly at the end
 * of the file. There is no lookback window; the scan reads at most the whole
 * file, and a valid JSON index cannot contain the NUL bytes a false match
 * would need in its length field.
 *
 * @param source the container
 * @param options `scan`: also look for the original tools' trailer (default true);
 *   `at`: only accept a trailer that starts at exactly this offset (the end of
 *   the indexed payloads, when an index is known)
 * @returns the location, or `null` when there is no trailer
 * @throws {ContainerFormatError} when a footer is present but inconsistent
 */
export async function findTrailer(
  source: RandomAccess,
  options: { scan?: boolean; at?: number } = {},
): Promise<TrailerLocation | null> {
  const size = source.size;
  if (size < TRAILER_HEADER_SIZE) return null;
  if (options.at !== undefined) return await trailerAt(source, options.at);
  if (size >= TRAILER_HEADER_SIZE + FOOTER_SIZE) {
    const tail = await source.readAt(size - FOOTER_SIZE, FOOTER_SIZE);
    if (equalBytes(tail.subarray(8), FOOTER_MAGIC)) {
      const length = readU64(tail, 0);
      const start = size - FOOTER_SIZE - length - TRAILER_HEADER_SIZE;
      const found = start >= 0 ? await trailerAt(source, start) : null;
      if (found === null || !found.hasFooter) {
        throw new ContainerFormatError(
          `Cannot read the trailer: footer names an index of ${length} bytes that is not there`,
        );
      }
      return found;
    }
  }
  if (options.scan === false) return null;
  return await scanForLegacyTrailer(source);
}

async function trailerAt(source: RandomAccess, start: number): Promise<TrailerLocation | null> {
  const size = source.size;
  if (start < 0 || start + TRAILER_HEADER_SIZE > size) return null;
  const head = await source.readAt(start, TRAILER_HEADER_SIZE);
  if (!equalBytes(head.subarray(0, 8), TRAILER_MAGIC)) return null;
  const length = readU64(head, 8);
  const indexOffset = start + TRAILER_HEADER_SIZE;
  if (indexOffset + length === size) {
    return { trailerOffset: start, indexOffset, indexLength: length, hasFooter: false };
  }
  if (indexOffset + length + FOOTER_SIZE === size) {
    const foot = await source.readAt(size - FOOTER_SIZE, FOOTER_SIZE);
    if (equalBytes(foot.subarray(8), FOOTER_MAGIC) && readU64(foot, 0) === length) {
      return { trailerOffset: start, indexOffset, indexLength: length, hasFooter: true };
    }
  }
  return null;
}

const SCAN_BLOCK = 1 << 20;

async function scanForLegacyTrailer(source: RandomAccess): Promise<TrailerLocation | null> {
  const size = source.size;
  // Windows overlap by 15 bytes so that a header split across two reads is seen whole.
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - SCAN_BLOCK);
    const readEnd = Math.min(size, end + TRAILER_HEADER_SIZE - 1);
    const block = await source.readAt(start, readEnd - start);
    for (let i = end - start - 1; i >= 0; i--) {
      if (block[i] !== 0x43 /* C */ || i + TRAILER_HEADER_SIZE > block.length) continue;
      if (!equalBytes(block.subarray(i, i + 8), TRAILER_MAGIC)) continue;
      const length = readU64(block, i + 8);
      if (start + i + TRAILER_HEADER_SIZE + length === size) {
        return {
          trailerOffset: start + i,
          indexOffset: start + i + TRAILER_HEADER_SIZE,
          indexLength: length,
          hasFooter: false,
        };
      }
    }
    end = start;
  }
  return null;
}

function readU64(bytes: Uint8Array, at: number): number {
  const value = new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigUint64(0, true);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
