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
 * The index length ctnr's footer names, when `footer` is one.
 *
 * @param footer the last {@link FOOTER_SIZE} bytes of a file
 * @returns the index length in bytes, or `undefined` when they are no footer
 */
export function footerIndexLength(footer: Uint8Array): number | undefined {
  if (footer.length !== FOOTER_SIZE || !equalBytes(footer.subarray(8), FOOTER_MAGIC)) {
    return undefined;
  }
  return readU64(footer, 0);
}

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
 * file (down to `from`), and a valid JSON index cannot contain the NUL bytes a
 * false match would need in its length field.
 *
 * @param source the container
 * @param options `scan`: also look for the original tools' trailer (default true);
 *   `at`: only accept a trailer that starts at exactly this offset (the end of
 *   the indexed payloads, when an index is known); `from`: scan no lower than this
 *   offset (the end of the indexed payloads: a trailer cannot start before it)
 * @returns the location, or `null` when there is no trailer
 * @throws {ContainerFormatError} when a footer is present but inconsistent (code
 *   `CONTAINER_CUT` when the index it names would start before the file does)
 */
export async function findTrailer(
  source: RandomAccess,
  options: { scan?: boolean; at?: number; from?: number } = {},
): Promise<TrailerLocation | null> {
  const size = source.size;
  if (size < TRAILER_HEADER_SIZE) return null;
  if (options.at !== undefined) return await trailerAt(source, options.at);
  if (size >= TRAILER_HEADER_SIZE + FOOTER_SIZE) {
    const tail = await source.readAt(size - FOOTER_SIZE, FOOTER_SIZE);
    if (equalBytes(tail.subarray(8), FOOTER_MAGIC)) {
      const length = readU64(tail, 0);
      const start = size - FOOTER_SIZE - length - TRAILER_HEADER_SIZE;
      if (start < 0) {
        throw new ContainerFormatError(
          `Cannot read the trailer: cut short at byte ${size} (its footer names an index of ` +
            `${length} bytes: the file must hold at least ${
              length + TRAILER_HEADER_SIZE + FOOTER_SIZE
            })`,
          { code: "CONTAINER_CUT" },
        );
      }
      const found = await trailerAt(source, start);
      if (found === null || !found.hasFooter) {
        throw new ContainerFormatError(
          `Cannot read the trailer: footer names an index of ${length} bytes that is not there`,
        );
      }
      return found;
    }
  }
  if (options.scan === false) return null;
  return (await scanForLegacyTrailer(source, options.from ?? 0, false)).trailer;
}

/**
 * A trailer the file stops inside: what a container cut short after its payloads leaves
 * (spec "Trailer / embedded index format").
 */
export interface CutTrailer {
  /**
   * Where the file stops: in the 16-byte `header` (the index is lost), in the `index` (its
   * lines up to the cut survive), or in ctnr's `footer` (the index is whole).
   */
  kind: "header" | "index" | "footer";
  /** Offset of the trailer magic: the end of the payload area. */
  trailerOffset: number;
  /** Offset of the first index byte (`trailerOffset + 16`). */
  indexOffset: number;
  /** Size in bytes the header gives the index (0 when the header itself is cut). */
  indexLength: number;
  /** Bytes of the index that are in the file (at most `indexLength`). */
  indexBytes: number;
  /**
   * Offset in bytes where the cut part ends: the end of the header (`header`), of the index
   * (`index`), or of ctnr's footer (`footer`). The file is shorter than this.
   */
  expectedEnd: number;
}

/** What {@link searchTrailer} found at the end of a container. */
export interface TrailerSearch {
  /** The whole trailer, or `null`. */
  trailer: TrailerLocation | null;
  /** When there is no whole trailer: one the file stops inside, or `null`. */
  cut: CutTrailer | null;
  /**
   * A footer that names an index that is not there (see {@link findTrailer}), or `null`; no
   * other trailer is looked for then.
   */
  footerFault: ContainerFormatError | null;
}

/**
 * Look for the embedded index as {@link findTrailer} does (a file that ends with ctnr's footer
 * is read through it alone: a footer that names an index that is not there is a fault), and,
 * when there is none, for a trailer the file stops inside: the last 4 to 15 bytes of the file are the start of a trailer
 * header (`header`); or the last `CTNRv1__` in the file has a length `L` below 2^53 that runs
 * past the end and is followed by what starts a JSON index (`index`), or by the start of ctnr's
 * footer for that `L` (`footer`). ctnr writes that magic nowhere after its trailer's (an index
 * line holding it is escaped, the footer's magic differs), so in a container of ctnr's cut
 * after its payloads that last magic is its trailer's.
 *
 * @param source the container
 * @returns the whole trailer, a cut one, or neither, and any footer fault met on the way
 */
export async function searchTrailer(source: RandomAccess): Promise<TrailerSearch> {
  try {
    const trailer = await findTrailer(source, { scan: false });
    if (trailer !== null) return { trailer, cut: null, footerFault: null };
  } catch (error) {
    // The file ends with ctnr's footer, so it was not cut at its end: its footer is wrong.
    if (!(error instanceof ContainerFormatError)) throw error;
    return { trailer: null, cut: null, footerFault: error };
  }
  const header = await cutHeaderAtEnd(source);
  if (header !== null) return { trailer: null, cut: header, footerFault: null };
  const scanned = await scanForLegacyTrailer(source, 0, true);
  return { trailer: scanned.trailer, cut: scanned.cut, footerFault: null };
}

/** Fewest bytes of a trailer header at the end of a file taken as a header cut short. */
const CUT_HEADER_MIN = 4;
/** Bytes both magics start with (`CTNRv1`). */
const MAGICS_COMMON = 6;

/** Whether the footer's magic starts at `at`: its length before it names a trailer that is there. */
async function footerCutAt(source: RandomAccess, at: number): Promise<boolean> {
  if (at < TRAILER_HEADER_SIZE + 8) return false;
  const length = readU64(await source.readAt(at - 8, 8), 0);
  const start = at - 8 - length - TRAILER_HEADER_SIZE;
  if (start < 0) return false;
  const head = await source.readAt(start, TRAILER_HEADER_SIZE);
  return equalBytes(head.subarray(0, 8), TRAILER_MAGIC) && readU64(head, 8) === length;
}

async function cutHeaderAtEnd(source: RandomAccess): Promise<CutTrailer | null> {
  const size = source.size;
  const tailLength = Math.min(size, TRAILER_HEADER_SIZE - 1);
  if (tailLength < CUT_HEADER_MIN) return null;
  const tail = await source.readAt(size - tailLength, tailLength);
  for (let k = tailLength; k >= CUT_HEADER_MIN; k--) {
    const magic = Math.min(k, TRAILER_MAGIC.length);
    if (
      !equalBytes(
        tail.subarray(tailLength - k, tailLength - k + magic),
        TRAILER_MAGIC.subarray(0, magic),
      )
    ) {
      continue;
    }
    const at = size - k;
    // "CTNRv1" also starts the footer's magic: the end of a footer cut short is no header.
    if (k <= MAGICS_COMMON && await footerCutAt(source, at)) return null;
    return {
      kind: "header",
      trailerOffset: at,
      indexOffset: at + TRAILER_HEADER_SIZE,
      indexLength: 0,
      indexBytes: 0,
      expectedEnd: at + TRAILER_HEADER_SIZE,
    };
  }
  return null;
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

async function scanForLegacyTrailer(
  source: RandomAccess,
  from: number,
  findCut: boolean,
): Promise<{ trailer: TrailerLocation | null; cut: CutTrailer | null }> {
  const size = source.size;
  // Windows overlap by 15 bytes so that a header split across two reads is seen whole.
  let end = size;
  while (end > from) {
    const start = Math.max(from, end - SCAN_BLOCK);
    const readEnd = Math.min(size, end + TRAILER_HEADER_SIZE - 1);
    const block = await source.readAt(start, readEnd - start);
    for (let i = end - start - 1; i >= 0; i--) {
      if (block[i] !== 0x43 /* C */ || i + TRAILER_HEADER_SIZE > block.length) continue;
      if (!equalBytes(block.subarray(i, i + 8), TRAILER_MAGIC)) continue;
      const length = readU64(block, i + 8);
      if (start + i + TRAILER_HEADER_SIZE + length === size) {
        return {
          trailer: {
            trailerOffset: start + i,
            indexOffset: start + i + TRAILER_HEADER_SIZE,
            indexLength: length,
            hasFooter: false,
          },
          cut: null,
        };
      }
      if (findCut) {
        // The last magic that can start a trailer is the one the file was cut after.
        const cut = await cutTrailerAt(source, start + i, length);
        if (cut !== null) return { trailer: null, cut };
      }
    }
    end = start;
  }
  return { trailer: null, cut: null };
}

/** The trailer cut short whose magic stands at `at` with length `length`, if it can be one. */
async function cutTrailerAt(
  source: RandomAccess,
  at: number,
  length: number,
): Promise<CutTrailer | null> {
  const size = source.size;
  if (length >= Number.MAX_SAFE_INTEGER) return null; // 8 bytes of text or noise, not a length
  const indexOffset = at + TRAILER_HEADER_SIZE;
  const indexEnd = indexOffset + length;
  const cut = { trailerOffset: at, indexOffset, indexLength: length };
  if (indexEnd > size) {
    // The index runs past the end: what is left of it must start like a JSON index.
    if (indexOffset < size) {
      const first = (await source.readAt(indexOffset, 1))[0]!;
      if (!INDEX_START.includes(first)) return null;
    }
    return { ...cut, kind: "index", indexBytes: size - indexOffset, expectedEnd: indexEnd };
  }
  // The index is whole: what follows it must be the start of ctnr's footer.
  const left = size - indexEnd;
  if (left >= FOOTER_SIZE) return null;
  const tail = await source.readAt(indexEnd, left);
  if (!equalBytes(tail, encodeFooter(length).subarray(0, left))) return null;
  return { ...cut, kind: "footer", indexBytes: length, expectedEnd: indexEnd + FOOTER_SIZE };
}

/** Bytes an index starts with: `{` or `[` (NDJSON or a JSON document), or white space. */
const INDEX_START = [0x7b, 0x5b, 0x20, 0x09, 0x0a, 0x0d];

function readU64(bytes: Uint8Array, at: number): number {
  const value = new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigUint64(0, true);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
