/**
 * Index entries of CTNRv1 in one place: their fields, their validation when
 * read (`parseEntry`) and their wire form when written (`encodeEntry`). The
 * six fields of the spec ("Index format") come first, in the original
 * tool's order; `entry_type`, `link_target`, `mode`, `mtime` and
 * `orig_sha256` are ctnr's additions, which the original extractor ignores.
 *
 * @module
 */

import { IndexFormatError } from "../errors.ts";
import { checkRelpath } from "../safety/relpath.ts";

/** SHA-256 of zero bytes, the `sha256` of every empty payload. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * The permission bits of a folder that has no entry: `create` records a `dir` entry only for a
 * folder that is empty or whose permission bits differ, and `extract` gives a folder it makes
 * for the entries below it this mode.
 */
export const DEFAULT_FOLDER_MODE = 0o755;

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

/** Per character code below 256: 1 for a lowercase hex digit, 3 for an uppercase one, else 0. */
const HEX_DIGIT = new Uint8Array(256);
for (const c of "0123456789abcdef") HEX_DIGIT[c.charCodeAt(0)] = 1;
for (const c of "ABCDEF") HEX_DIGIT[c.charCodeAt(0)] = 3;

/**
 * A SHA-256 field in lowercase hex, or `undefined` when it is not 64 hex digits. A table and
 * no branch per character, not `/^[0-9a-fA-F]{64}$/` then `toLowerCase()`: on a 1,000,000-entry
 * index the two took about 0.29 s, this 0.07 s.
 */
function lowercaseSha256(value: string): string | undefined {
  if (value.length !== 64) return undefined;
  let all = 1;
  let any = 0;
  for (let i = 0; i < 64; i++) {
    const c = value.charCodeAt(i);
    const kind = c < 256 ? HEX_DIGIT[c]! : 0;
    all &= kind;
    any |= kind;
  }
  if (all === 0) return undefined;
  return any === 3 ? value.toLowerCase() : value;
}

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
  const sha256 = typeof sha === "string" ? lowercaseSha256(sha) : undefined;
  if (sha256 === undefined) invalidEntry(relpath, where, `"sha256" is not 64 hex digits`);
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
    sha256,
    compressed: compressed as boolean,
  };
  if (raw.mode !== undefined && raw.mode !== null) {
    const fault = fieldFault("mode", raw.mode);
    if (fault !== undefined) invalidEntry(relpath, where, fault);
    entry.mode = raw.mode as number;
  }
  if (raw.mtime !== undefined && raw.mtime !== null) {
    const fault = fieldFault("mtime", raw.mtime);
    if (fault !== undefined) invalidEntry(relpath, where, fault);
    entry.mtime = raw.mtime as number;
  }
  if (entryType === "symlink") {
    const fault = fieldFault("link_target", raw.link_target);
    if (fault !== undefined) invalidEntry(relpath, where, fault);
    entry.linkTarget = raw.link_target as string;
  }
  if (raw.orig_sha256 !== undefined && raw.orig_sha256 !== null) {
    const origSha256 = typeof raw.orig_sha256 === "string"
      ? lowercaseSha256(raw.orig_sha256)
      : undefined;
    if (origSha256 === undefined) {
      invalidEntry(relpath, where, `"orig_sha256" is not 64 hex digits`);
    }
    entry.origSha256 = origSha256;
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
 * What is wrong with the value of an optional field, by the rules {@link parseEntry} reads it
 * with (so a writer that checks with it never writes a line its own reader refuses).
 *
 * @param field `mode` (permission bits, an integer from 0 to 0o7777: `st_mode & 0o7777`),
 *   `mtime` (seconds since the epoch, a finite number) or `link_target` (a non-empty string
 *   without NUL)
 * @param value the value
 * @returns the fault, or `undefined` when the value is fine
 */
export function fieldFault(
  field: "mode" | "mtime" | "link_target",
  value: unknown,
): string | undefined {
  switch (field) {
    case "mode":
      return typeof value === "number" && Number.isInteger(value) && value >= 0 &&
          value <= 0o7777
        ? undefined
        : `"mode" is not an integer from 0 to 0o7777`;
    case "mtime":
      return typeof value === "number" && Number.isFinite(value)
        ? undefined
        : `"mtime" is not a finite number of seconds`;
    case "link_target":
      return typeof value === "string" && value !== "" && !value.includes("\0")
        ? undefined
        : `"link_target" is not a non-empty string without NUL`;
  }
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
 * A string as JSON text, with what JSON.stringify leaves raw but a reader may split on escaped:
 *
 * - U+0085, U+2028 and U+2029: JSON allows them raw, but the original extractor splits its
 *   index with Python's `splitlines()`, which ends a line at each, and would lose the entry;
 * - "CTNRv1__": the original extractor takes the LAST one in the file for the trailer, so a
 *   name holding the magic must not put it in the index's bytes ("\u005f" is "_").
 *
 * Every JSON reader reads the same string.
 */
function jsonString(value: string): string {
  const json = JSON.stringify(value);
  if (!NEEDS_ESCAPE.test(json)) return json;
  return json.replaceAll("CTNRv1__", "CTNRv1\\u005f_").replace(
    LINE_BREAKS,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const NEEDS_ESCAPE = /CTNRv1__|[\u0085\u2028\u2029]/;
const LINE_BREAKS = /[\u0085\u2028\u2029]/g;

/** A number as JSON text (`null` for NaN and infinities, as JSON.stringify writes them). */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : "null";
}
