/**
 * The CTNRv1 format in one place: index entries (their wire form and their
 * validation), relpath rules, and the trailer that embeds the index.
 *
 * Container layout (spec "Trailer / embedded index format"):
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

import { ContainerFormatError, IndexFormatError } from "./errors.ts";
import type { RandomAccess } from "./io/random_access.ts";

/** Magic that opens the trailer (spec: `b'CTNRv1__'`). */
export const TRAILER_MAGIC: Uint8Array = new TextEncoder().encode("CTNRv1__");
/** Magic that closes ctnr's footer; never equal to {@link TRAILER_MAGIC}. */
export const FOOTER_MAGIC: Uint8Array = new TextEncoder().encode("CTNRv1ix");
/** Size in bytes of the trailer header: magic plus u64 length. */
export const TRAILER_HEADER_SIZE = 16;
/** Size in bytes of ctnr's footer: u64 length plus magic. */
export const FOOTER_SIZE = 16;
/** SHA-256 of zero bytes, the `sha256` of every empty payload. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Kinds of entries. The original tools know only `file`. */
export type EntryType = "file" | "dir" | "symlink";

/**
 * One index entry, in TypeScript names. On the wire (NDJSON) the names are
 * snake_case as the spec spells them (`payload_size`, `orig_size`, ...).
 */
export interface IndexEntry {
  /** Path relative to the source folder, `/`-separated, validated by {@link checkRelpath}. */
  relpath: string;
  /** `file` when the wire entry has no `entry_type`. */
  entryType: EntryType;
  /** Byte offset of the payload in the container (0 for dirs and links). */
  offset: number;
  /** Size in bytes of the stored payload (gzip member when compressed). */
  payloadSize: number;
  /** Size in bytes of the original file. */
  origSize: number;
  /** Lowercase hex SHA-256 of the stored payload bytes. */
  sha256: string;
  /** Whether the payload is one gzip member (RFC 1952). */
  compressed: boolean;
  /** Permission bits (`st_mode & 0o7777`), when recorded. */
  mode?: number;
  /** Modification time in seconds since the epoch (fractional, millisecond precision), when recorded. */
  mtime?: number;
  /** Target of a symlink entry, as the link stores it. */
  linkTarget?: string;
  /** Lowercase hex SHA-256 of the original bytes of a compressed file, when recorded. */
  origSha256?: string;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;
const DRIVE = /^[A-Za-z]:/;

/**
 * Check that a relpath is safe to join under an output folder.
 *
 * Refused: empty, `.`, absolute (`/x`, `//server/x`), Windows drive letters
 * (`C:/x`, `C:x`), backslashes, NUL, empty, `.` or `..` components, and
 * strings that are not well-formed Unicode.
 *
 * @param relpath the candidate path
 * @returns a reason it is refused, or `undefined` when it is safe
 */
export function checkRelpath(relpath: string): string | undefined {
  if (relpath.length === 0) return "empty path";
  if (!relpath.isWellFormed()) return "not well-formed Unicode";
  if (relpath.includes("\0")) return "contains NUL";
  if (relpath.includes("\\")) return "contains a backslash";
  if (relpath.startsWith("/")) return "absolute path";
  if (DRIVE.test(relpath)) return "Windows drive letter";
  // Components scanned in place (no split array: this runs twice per entry on extract).
  for (let start = 0;;) {
    const slash = relpath.indexOf("/", start);
    const end = slash < 0 ? relpath.length : slash;
    if (end === start) return "empty path component";
    if (relpath.charCodeAt(start) === DOT) {
      if (end === start + 1) return "'.' path component";
      if (end === start + 2 && relpath.charCodeAt(start + 1) === DOT) return "'..' path component";
    }
    if (slash < 0) return undefined;
    start = slash + 1;
  }
}

const DOT = 0x2e;

/**
 * Validate one parsed JSON value as an index entry.
 *
 * @param value the result of `JSON.parse` of one index line or array element
 * @param where where the value came from, for messages (`"index line 3"`)
 * @returns the entry in TypeScript names
 * @throws {IndexFormatError} when a field is missing, of the wrong type, or out of range
 */
export function parseEntry(value: unknown, where: string): IndexEntry {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new IndexFormatError(`Cannot read ${where}: not a JSON object`);
  }
  const raw = value as Record<string, unknown>;
  const relpath = raw.relpath;
  if (typeof relpath !== "string") {
    throw new IndexFormatError(`Cannot read ${where}: "relpath" is not a string`);
  }
  // No closure per entry (a `fail` helper was one): this runs twice per entry on extract.
  const unsafe = checkRelpath(relpath);
  if (unsafe) invalidEntry(relpath, where, `unsafe relpath: ${unsafe}`);
  const kind = raw.entry_type ?? "file";
  if (kind !== "file" && kind !== "dir" && kind !== "symlink") {
    invalidEntry(relpath, where, `unknown entry_type ${JSON.stringify(kind)}`);
  }
  const entryType = kind as EntryType;
  const isFile = entryType === "file";
  const offset = sizeField(raw, "offset", isFile, relpath, where);
  const payloadSize = sizeField(raw, "payload_size", isFile, relpath, where);
  const origSize = sizeField(raw, "orig_size", isFile, relpath, where);
  const sha = raw.sha256 ?? (isFile ? undefined : EMPTY_SHA256);
  if (typeof sha !== "string" || !HEX64.test(sha)) {
    invalidEntry(relpath, where, `"sha256" is not 64 hex digits`);
  }
  const compressed = raw.compressed ?? false;
  if (typeof compressed !== "boolean") {
    invalidEntry(relpath, where, `"compressed" is not a boolean`);
  }
  if (!isFile && (payloadSize !== 0 || compressed)) {
    invalidEntry(relpath, where, `a ${entryType} entry has a payload`);
  }
  if (isFile && !compressed && payloadSize !== origSize) {
    invalidEntry(
      relpath,
      where,
      `uncompressed payload_size ${payloadSize} differs from orig_size ${origSize}`,
    );
  }
  if (payloadSize > Number.MAX_SAFE_INTEGER - offset) {
    invalidEntry(relpath, where, "offset + payload_size overflows");
  }
  const entry: IndexEntry = {
    relpath,
    entryType,
    offset,
    payloadSize,
    origSize,
    sha256: (sha as string).toLowerCase(),
    compressed: compressed as boolean,
  };
  if (raw.mode !== undefined && raw.mode !== null) {
    const mode = raw.mode;
    if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      invalidEntry(relpath, where, `"mode" is not an integer from 0 to 0o7777`);
    }
    entry.mode = mode as number;
  }
  if (raw.mtime !== undefined && raw.mtime !== null) {
    if (typeof raw.mtime !== "number" || !Number.isFinite(raw.mtime)) {
      invalidEntry(relpath, where, `"mtime" is not a finite number of seconds`);
    }
    entry.mtime = raw.mtime as number;
  }
  if (entryType === "symlink") {
    const target = raw.link_target;
    if (typeof target !== "string" || target === "" || target.includes("\0")) {
      invalidEntry(relpath, where, `"link_target" is not a non-empty string`);
    }
    entry.linkTarget = target as string;
  }
  if (raw.orig_sha256 !== undefined && raw.orig_sha256 !== null) {
    if (typeof raw.orig_sha256 !== "string" || !HEX64.test(raw.orig_sha256)) {
      invalidEntry(relpath, where, `"orig_sha256" is not 64 hex digits`);
    }
    entry.origSha256 = (raw.orig_sha256 as string).toLowerCase();
  }
  return entry;
}

function invalidEntry(relpath: string, where: string, detail: string): never {
  throw new IndexFormatError(`Cannot read entry "${relpath}" (${where}): ${detail}`);
}

/** A non-negative safe integer field; required for files, 0 when absent for dirs and links. */
function sizeField(
  raw: Record<string, unknown>,
  name: string,
  required: boolean,
  relpath: string,
  where: string,
): number {
  const v = raw[name] ?? (required ? undefined : 0);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    invalidEntry(
      relpath,
      where,
      `"${name}" is not a non-negative safe integer (${JSON.stringify(v)})`,
    );
  }
  return v as number;
}

/**
 * Encode an entry as one NDJSON line (with its `\n`).
 *
 * File entries carry the six fields of the spec first, in the original
 * tool's order, so the original extractor reads them; `mode`, `mtime` and
 * `orig_sha256` follow as extra keys, which it ignores. Dir and symlink
 * entries carry no `offset`, so the original extractor stops on them
 * instead of writing them as files.
 *
 * @param entry the entry to encode
 * @returns the JSON text of the entry followed by `\n`
 */
export function encodeEntry(entry: IndexEntry): string {
  // Built as text, not as an object for JSON.stringify: the same bytes, written once per entry
  // on create (100,000 entries: ~60 -> ~25 ms). Numbers print as JSON.stringify prints them.
  let line = `{"relpath":${jsonString(entry.relpath)}`;
  if (entry.entryType === "file") {
    line +=
      `,"offset":${entry.offset},"payload_size":${entry.payloadSize},"orig_size":${entry.origSize},"sha256":${
        jsonString(entry.sha256)
      },"compressed":${entry.compressed}`;
  } else {
    line += `,"entry_type":"${entry.entryType}"`;
  }
  if (entry.linkTarget !== undefined) line += `,"link_target":${jsonString(entry.linkTarget)}`;
  if (entry.mode !== undefined) line += `,"mode":${jsonNumber(entry.mode)}`;
  if (entry.mtime !== undefined) line += `,"mtime":${jsonNumber(entry.mtime)}`;
  if (entry.origSha256 !== undefined) line += `,"orig_sha256":${jsonString(entry.origSha256)}`;
  return line + "}\n";
}

/**
 * A string as JSON text. The original extractor takes the LAST "CTNRv1__" in the file for the
 * trailer: a name holding the magic must not put it in the index's bytes. "\u005f" is "_" to
 * every JSON reader.
 */
function jsonString(value: string): string {
  const json = JSON.stringify(value);
  return json.includes("CTNRv1__") ? json.replaceAll("CTNRv1__", "CTNRv1\\u005f_") : json;
}

/** A number as JSON text (`null` for NaN and infinities, as JSON.stringify writes them). */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : "null";
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
