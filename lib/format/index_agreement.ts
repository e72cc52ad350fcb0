/**
 * Whether an index file and the trailer at the end of its container hold the
 * same index. Both can exist: `create --finalize` keeps the `.idx` beside the
 * container it embeds it in. When they differ, neither can be trusted over the
 * other without the user: a stale, shorter `.idx` read alone restores a subset
 * of the container and exits 0, and resuming or finalizing with it would cut
 * off the trailer and the payloads only the trailer indexes. Readers, `create`
 * and `--finalize-only` all refuse the disagreement with the one error built
 * here (README "What ctnr refuses to do").
 *
 * @module
 */

import { ContainerFormatError } from "../errors.ts";
import type { RandomAccess } from "../io/random_access.ts";
import { findTrailer, type TrailerLocation } from "./trailer.ts";

/** How an index file compares with the trailer at the end of its container. */
export interface IndexAgreement {
  /** The trailer at the end of the container. */
  trailer: TrailerLocation;
  /** Whether the trailer's index holds exactly the bytes of the index file. */
  same: boolean;
}

/** What {@link describeDisagreement} tells about two indexes that differ. */
export interface Disagreement {
  /** Lines (entries) of the index file. */
  indexLines: number;
  /** Lines (entries) of the trailer's index. */
  trailerLines: number;
  /** 1-based line where they first differ. */
  firstDifferentLine: number;
  /** The index file is a shorter copy of the start of the trailer's index (stale). */
  indexIsPrefix: boolean;
  /** The trailer's index is a shorter copy of the start of the index file. */
  trailerIsPrefix: boolean;
}

/** Bytes compared at a time. */
const PIECE = 1 << 20;

/**
 * Compare an index file with the trailer at the end of its container, if one stands there:
 * found through ctnr's footer (one read), as the original tools' trailer of exactly the index
 * file's size (one read), or, with `from`, by a backward scan of the container down to `from`
 * for the original tools' trailer of any size (README "The format": where readers look).
 * A footer that names an index that is not there counts as no trailer.
 *
 * @param container the container
 * @param index the index file beside it
 * @param options `from`: offset in bytes no trailer can start before (the end of the indexed
 *   payloads); without it the original tools' trailers are only found at the index file's size
 * @returns the trailer and whether it holds the same bytes, or `null` when there is no trailer
 */
export async function indexAgreement(
  container: RandomAccess,
  index: RandomAccess,
  options: { from?: number } = {},
): Promise<IndexAgreement | null> {
  const trailer = await trailerAtEnd(container, index.size, options.from);
  if (trailer === null) return null;
  const same = trailer.indexLength === index.size &&
    await sameBytes(container, trailer.indexOffset, index, 0, index.size);
  return { trailer, same };
}

/**
 * How two indexes that are not the same differ: their line counts and the first line where
 * they part (reads both once; for the error message).
 *
 * @param container the container
 * @param trailer its trailer
 * @param index the index file
 * @returns the counts and the relation
 */
export async function describeDisagreement(
  container: RandomAccess,
  trailer: TrailerLocation,
  index: RandomAccess,
): Promise<Disagreement> {
  const common = Math.min(trailer.indexLength, index.size);
  let firstDifference = common;
  let linesBefore = 0;
  for (let at = 0; at < common && firstDifference === common; at += PIECE) {
    const n = Math.min(PIECE, common - at);
    const [a, b] = await Promise.all([
      container.readAt(trailer.indexOffset + at, n),
      index.readAt(at, n),
    ]);
    for (let i = 0; i < n; i++) {
      if (a[i] !== b[i]) {
        firstDifference = at + i;
        break;
      }
      if (a[i] === 0x0a) linesBefore++;
    }
  }
  const indexLines = await countLines(index, 0, index.size);
  const trailerLines = await countLines(container, trailer.indexOffset, trailer.indexLength);
  return {
    indexLines,
    trailerLines,
    firstDifferentLine: linesBefore + 1,
    indexIsPrefix: firstDifference === index.size && index.size < trailer.indexLength,
    trailerIsPrefix: firstDifference === trailer.indexLength && trailer.indexLength < index.size,
  };
}

/**
 * The error for an index file and a trailer that disagree, naming both files: code
 * `INDEX_CONFLICT`, exit 1.
 *
 * @param action what was refused: `read` (readers), `continue` (create's resume), `finalize`
 * @param container the container's path
 * @param indexPath the index file's path
 * @param how what {@link describeDisagreement} found
 * @returns the error
 */
export function disagreementError(
  action: "read" | "continue" | "finalize",
  container: string,
  indexPath: string,
  how: Disagreement,
): ContainerFormatError {
  const relation = how.indexIsPrefix
    ? `"${indexPath}" is an older, shorter copy of the trailer's index`
    : how.trailerIsPrefix
    ? `"${indexPath}" has ${entries(how.indexLines - how.trailerLines)} more than the trailer`
    : `they differ from line ${how.firstDifferentLine} on`;
  const advice = action === "read"
    ? `move "${indexPath}" away to read the trailer's index, or pass \`index\` "${indexPath}" ` +
      `to read that one`
    : `${action === "continue" ? "resuming" : "finalizing"} would cut off the trailer and the ` +
      `payloads only it indexes; move "${indexPath}" away (create then takes the index from ` +
      `the trailer), or pack into a new container`;
  return new ContainerFormatError(
    `Cannot ${action} "${container}": its index "${indexPath}" (${entries(how.indexLines)}) and ` +
      `its trailer (${entries(how.trailerLines)}) disagree: ${relation}; ${advice}`,
    { code: "INDEX_CONFLICT", options: action === "read" ? ["index"] : [] },
  );
}

/**
 * Refuse an index file that disagrees with the trailer at the end of its container: the
 * check of {@link indexAgreement} and the error of {@link disagreementError} in one call.
 *
 * @param action what would be refused (see {@link disagreementError})
 * @param paths the container's and the index file's paths, for the message
 * @param container the container
 * @param index the index file
 * @param options `from`: see {@link indexAgreement}
 * @returns the trailer when one stands at the end and agrees, else `null`
 * @throws {ContainerFormatError} code `INDEX_CONFLICT` when they disagree
 */
export async function refuseDisagreement(
  action: "read" | "continue" | "finalize",
  paths: { container: string; index: string },
  container: RandomAccess,
  index: RandomAccess,
  options: { from?: number } = {},
): Promise<TrailerLocation | null> {
  const agreement = await indexAgreement(container, index, options);
  if (agreement === null) return null;
  if (agreement.same) return agreement.trailer;
  const how = await describeDisagreement(container, agreement.trailer, index);
  throw disagreementError(action, paths.container, paths.index, how);
}

async function trailerAtEnd(
  container: RandomAccess,
  indexSize: number,
  from: number | undefined,
): Promise<TrailerLocation | null> {
  try {
    const footer = await findTrailer(container, { scan: false });
    if (footer !== null) return footer;
  } catch {
    return null; // a footer naming an index that is not there: no trailer to compare with
  }
  const exact = container.size - 16 - indexSize;
  if (exact >= 0) {
    const legacy = await findTrailer(container, { at: exact });
    if (legacy !== null && !legacy.hasFooter) return legacy;
  }
  if (from === undefined || from >= container.size) return null;
  return await findTrailer(container, { from });
}

async function sameBytes(
  a: RandomAccess,
  aStart: number,
  b: RandomAccess,
  bStart: number,
  length: number,
): Promise<boolean> {
  for (let at = 0; at < length; at += PIECE) {
    const n = Math.min(PIECE, length - at);
    const [x, y] = await Promise.all([a.readAt(aStart + at, n), b.readAt(bStart + at, n)]);
    if (!equalPieces(x, y)) return false;
  }
  return true;
}

/** Whether two pieces of equal length hold the same bytes (4 bytes a step where aligned). */
function equalPieces(x: Uint8Array, y: Uint8Array): boolean {
  let i = 0;
  if (x.byteOffset % 4 === 0 && y.byteOffset % 4 === 0) {
    const words = x.length >>> 2;
    const p = new Uint32Array(x.buffer, x.byteOffset, words);
    const q = new Uint32Array(y.buffer, y.byteOffset, words);
    for (; i < words; i++) if (p[i] !== q[i]) return false;
    i = words << 2;
  }
  for (; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

async function countLines(source: RandomAccess, start: number, length: number): Promise<number> {
  let lines = 0;
  let last = 0x0a;
  for (let at = 0; at < length; at += PIECE) {
    const bytes = await source.readAt(start + at, Math.min(PIECE, length - at));
    for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) lines++;
    last = bytes[bytes.length - 1]!;
  }
  return last === 0x0a ? lines : lines + 1;
}

/** `1 entry`, `2 entries`. */
function entries(n: number): string {
  return `${n} ${n === 1 ? "entry" : "entries"}`;
}
