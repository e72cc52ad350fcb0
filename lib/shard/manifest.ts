/**
 * The manifest of a shard set: one data set stored as many CTNRv1 containers (shards), made by
 * one run (`create --shard-size`/`--shard-entries`) or by N independent runs (`--part K/N`)
 * whose manifests `ctnr manifest merge` joins. The manifest is written last: it is the commit
 * point of the set (a shard it does not name is not part of it).
 *
 * A manifest is one JSON object (UTF-8, a file whose name ends in {@link MANIFEST_SUFFIX}):
 *
 * ```json
 * {
 *   "format": "ctnr-manifest", "version": 1,
 *   "split": { "method": "hash", "parts": 4 }, "shard_size": 1048576, "shard_entries": null,
 *   "parts": [0, 1, 2, 3],
 *   "entries": 1000, "orig_bytes": 4096000,
 *   "shards": [
 *     { "path": "data-p0-of-4-00000.ctnr", "part": 0, "size": 1052000, "entries": 250,
 *       "index_offset": 1024000, "index_length": 27984, "index_sha256": "…", "sha256": "…",
 *       "first": "a/0001.txt", "last": "z/9999.txt" }
 *   ]
 * }
 * ```
 *
 * - `split.method`: `none` (one part), `hash` (an entry belongs to part
 *   {@link partOf}(relpath)), `subtree` (to part {@link partOf}(its first path component)).
 * - `shard_size`, `shard_entries`: the limits the shards were made with (`null`: none), as
 *   `create --shard-size`/`--shard-entries` gave them; optional (absent in older manifests, and in
 *   a merged one whose parts were made with different limits).
 * - `parts`: the parts this manifest holds (a part's own manifest: one; a merged one: all).
 * - each shard: its path relative to the manifest's folder (or URL), its part, its size in
 *   bytes, entries, where its embedded index lies and that index's SHA-256 (so an index fetched
 *   by range is checked against the manifest, and each payload against the index), the SHA-256
 *   of the whole shard file, and its first and last relpath in {@link compareRelpaths} order.
 *   Within a part, shards are listed in that order and their ranges do not overlap: a reader
 *   finds the one shard that can hold a relpath without opening the others.
 *
 * @module
 */

import { ContainerFormatError } from "../errors.ts";
import { compareCodePoints } from "../create/walk.ts";

/** The end of a manifest's file name. */
export const MANIFEST_SUFFIX = ".manifest.json";

/** How a data set is split into parts. */
export type SplitMethod = "none" | "hash" | "subtree";

/** One shard of a set. */
export interface ShardRecord {
  /** Path of the shard relative to the manifest's folder (or URL): `/`-separated, no `..`. */
  path: string;
  /** The part it belongs to, 0 to `parts - 1`. */
  part: number;
  /** Size in bytes of the shard file. */
  size: number;
  /** Entries in its index. */
  entries: number;
  /** Offset in bytes of its embedded index. */
  indexOffset: number;
  /** Length in bytes of its embedded index. */
  indexLength: number;
  /** Lowercase hex SHA-256 of its index bytes. */
  indexSha256: string;
  /** Lowercase hex SHA-256 of the whole shard file. */
  sha256: string;
  /** Its first relpath in {@link compareRelpaths} order (`""` for a shard without entries). */
  first: string;
  /** Its last relpath in {@link compareRelpaths} order (`""` for a shard without entries). */
  last: string;
}

/** A manifest, parsed and checked. */
export interface Manifest {
  /** How the set is split. */
  split: { method: SplitMethod; parts: number };
  /** `--shard-size` the shards were made with (`null`: none); `undefined` when not recorded. */
  shardSize?: number | null;
  /** `--shard-entries` the shards were made with (`null`: none); `undefined` when not recorded. */
  shardEntries?: number | null;
  /** The parts this manifest holds, ascending. */
  parts: number[];
  /** Entries of all shards. */
  entries: number;
  /** Original bytes of all file entries. */
  origBytes: number;
  /** The shards, by part, then in relpath order within a part. */
  shards: ShardRecord[];
}

/**
 * Compare relpaths in the order of the walk that made them: component by component, each by
 * Unicode code point (lib/create/walk.ts). `a/b` sorts before `a-c` (the folder `a` comes
 * before the name `a-c`), which a plain string comparison would not give.
 *
 * @param a a relpath
 * @param b a relpath
 * @returns negative, zero or positive
 */
export function compareRelpaths(a: string, b: string): number {
  const x = a.split("/");
  const y = b.split("/");
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const c = compareCodePoints(x[i]!, y[i]!);
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

/**
 * The part of `key` among `parts`: FNV-1a (32 bits) of the UTF-8 bytes of the key in Unicode
 * NFC, modulo `parts`. The same on every machine and runtime; names equal after NFC land in the
 * same part.
 *
 * @param key a relpath (`hash` split) or its first component (`subtree` split)
 * @param parts how many parts, at least 1
 * @returns 0 to `parts - 1`
 */
export function partOf(key: string, parts: number): number {
  if (parts <= 1) return 0;
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(key.normalize("NFC"))) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % parts;
}

/**
 * The part an entry belongs to under a split.
 *
 * @param relpath the entry's relpath
 * @param split the manifest's split
 * @returns its part
 */
export function partOfRelpath(
  relpath: string,
  split: { method: SplitMethod; parts: number },
): number {
  if (split.method === "none" || split.parts <= 1) return 0;
  const slash = relpath.indexOf("/");
  return partOf(
    split.method === "subtree" && slash >= 0 ? relpath.slice(0, slash) : relpath,
    split.parts,
  );
}

/**
 * The manifest as JSON text (keys as in the module's description), ending with a newline.
 *
 * @param manifest the manifest
 * @returns the text
 */
export function encodeManifest(manifest: Manifest): string {
  return JSON.stringify(
    {
      format: "ctnr-manifest",
      version: 1,
      split: manifest.split,
      shard_size: manifest.shardSize,
      shard_entries: manifest.shardEntries,
      parts: manifest.parts,
      entries: manifest.entries,
      orig_bytes: manifest.origBytes,
      shards: manifest.shards.map((shard) => ({
        path: shard.path,
        part: shard.part,
        size: shard.size,
        entries: shard.entries,
        index_offset: shard.indexOffset,
        index_length: shard.indexLength,
        index_sha256: shard.indexSha256,
        sha256: shard.sha256,
        first: shard.first,
        last: shard.last,
      })),
    },
    null,
    1,
  ) + "\n";
}

/** Largest manifest read, in bytes (about 2 million shards). */
export const MAX_MANIFEST_BYTES = 512 << 20;

/**
 * Parse and check a manifest. Everything a hostile manifest could use is checked: shard paths
 * (relative, `/`-separated, no `.`/`..` component, no backslash or NUL), whole numbers within
 * 2^53, an index inside its shard, SHA-256 as 64 lowercase hex digits, parts within the split,
 * shards of one part in order and not overlapping.
 *
 * @param text the manifest's JSON
 * @param name the manifest's path or URL, for messages
 * @returns the manifest
 * @throws {ContainerFormatError} (code `CONTAINER_FORMAT`) naming the manifest and the field
 */
export function parseManifest(text: string, name: string): Manifest {
  const fail = (detail: string): never => {
    throw new ContainerFormatError(`Cannot read manifest "${name}": ${detail}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return fail(`not JSON (${(error as Error).message})`);
  }
  const object = (value: unknown, what: string): Record<string, unknown> =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : fail(`${what} is not an object`);
  const top = object(raw, "the manifest");
  if (top.format !== "ctnr-manifest") return fail(`"format" is not "ctnr-manifest"`);
  if (top.version !== 1) return fail(`version ${JSON.stringify(top.version)} is not supported`);
  const whole = (value: unknown, what: string, min = 0): number =>
    typeof value === "number" && Number.isSafeInteger(value) && value >= min
      ? value
      : fail(`${what} is not a whole number of at least ${min}`);
  const hex = (value: unknown, what: string): string =>
    typeof value === "string" && /^[0-9a-f]{64}$/.test(value)
      ? value
      : fail(`${what} is not a SHA-256 (64 lowercase hex digits)`);
  const split = object(top.split, `"split"`);
  const method = split.method;
  if (method !== "none" && method !== "hash" && method !== "subtree") {
    return fail(`"split.method" is not none, hash or subtree`);
  }
  const parts = whole(split.parts, `"split.parts"`, 1);
  if (method === "none" && parts !== 1) return fail(`"split.parts" is not 1 for method none`);
  if (!Array.isArray(top.parts) || top.parts.length === 0) return fail(`"parts" is not a list`);
  const held = top.parts.map((part, i) => whole(part, `"parts[${i}]"`));
  for (let i = 0; i < held.length; i++) {
    if (held[i]! >= parts) fail(`part ${held[i]} is not below ${parts}`);
    if (i > 0 && held[i]! <= held[i - 1]!) fail(`"parts" is not ascending without repeats`);
  }
  if (!Array.isArray(top.shards)) return fail(`"shards" is not a list`);
  const shards: ShardRecord[] = [];
  let entries = 0;
  for (let i = 0; i < top.shards.length; i++) {
    const what = `shard ${i}`;
    const s = object(top.shards[i], what);
    const path = typeof s.path === "string" ? s.path : fail(`${what}: "path" is not a string`);
    const fault = shardPathFault(path);
    if (fault !== undefined) fail(`${what}: path "${path}" ${fault}`);
    const shard: ShardRecord = {
      path,
      part: whole(s.part, `${what}: "part"`),
      size: whole(s.size, `${what}: "size"`),
      entries: whole(s.entries, `${what}: "entries"`),
      indexOffset: whole(s.index_offset, `${what}: "index_offset"`),
      indexLength: whole(s.index_length, `${what}: "index_length"`),
      indexSha256: hex(s.index_sha256, `${what}: "index_sha256"`),
      sha256: hex(s.sha256, `${what}: "sha256"`),
      first: typeof s.first === "string" ? s.first : fail(`${what}: "first" is not a string`),
      last: typeof s.last === "string" ? s.last : fail(`${what}: "last" is not a string`),
    };
    if (!held.includes(shard.part)) fail(`${what}: part ${shard.part} is not in "parts"`);
    if (shard.indexOffset + shard.indexLength > shard.size) {
      fail(
        `${what}: its index (offset ${shard.indexOffset}, ${shard.indexLength} bytes) ` +
          `runs past its size (${shard.size} bytes)`,
      );
    }
    if ((shard.entries === 0) !== (shard.first === "" && shard.last === "")) {
      fail(`${what}: "first" and "last" disagree with its ${shard.entries} entries`);
    }
    if (shard.entries > 0 && compareRelpaths(shard.first, shard.last) > 0) {
      fail(`${what}: "first" sorts after "last"`);
    }
    const before = shards.at(-1);
    if (before !== undefined) {
      if (shard.part < before.part) fail(`${what}: shards are not ordered by part`);
      if (
        shard.part === before.part && shard.entries > 0 && before.entries > 0 &&
        compareRelpaths(before.last, shard.first) >= 0
      ) {
        fail(`${what}: its relpaths overlap those of the shard before it in part ${shard.part}`);
      }
    }
    entries += shard.entries;
    shards.push(shard);
  }
  const paths = new Set<string>();
  for (const shard of shards) {
    if (paths.has(shard.path)) fail(`shard "${shard.path}" is listed twice`);
    paths.add(shard.path);
  }
  if (top.entries !== undefined && whole(top.entries, `"entries"`) !== entries) {
    fail(`"entries" is ${top.entries}, its shards hold ${entries}`);
  }
  const limit = (key: string): number | null | undefined =>
    top[key] === undefined || top[key] === null ? top[key] as null | undefined : whole(
      top[key],
      `"${key}"`,
      1,
    );
  const shardSize = limit("shard_size");
  const shardEntries = limit("shard_entries");
  return {
    split: { method, parts },
    ...(shardSize === undefined ? {} : { shardSize }),
    ...(shardEntries === undefined ? {} : { shardEntries }),
    parts: held,
    entries,
    origBytes: top.orig_bytes === undefined ? 0 : whole(top.orig_bytes, `"orig_bytes"`),
    shards,
  };
}

/** Why a shard path is refused, or `undefined` when it is a plain relative path. */
function shardPathFault(path: string): string | undefined {
  if (path === "") return "is empty";
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return "is absolute";
  if (/[\\\0]/.test(path)) return "holds a backslash or NUL";
  if (/[?#]/.test(path)) return "holds ? or # (it would change a URL's query)";
  if (path.split("/").some((part) => part === "" || part === "." || part === "..")) {
    return "has an empty, . or .. component";
  }
  return undefined;
}

/**
 * The shard of a set that can hold `relpath`: in the part the split gives, the one whose first
 * and last relpaths enclose it (a binary search). Only that shard's index needs reading.
 *
 * @param manifest the set
 * @param relpath the relpath looked for
 * @returns the shard, or `undefined` when no shard can hold it
 */
export function shardFor(manifest: Manifest, relpath: string): ShardRecord | undefined {
  const part = partOfRelpath(relpath, manifest.split);
  const shards = manifest.shards.filter((shard) => shard.part === part && shard.entries > 0);
  let low = 0;
  let high = shards.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const shard = shards[mid]!;
    if (compareRelpaths(relpath, shard.first) < 0) high = mid - 1;
    else if (compareRelpaths(relpath, shard.last) > 0) low = mid + 1;
    else return shard;
  }
  return undefined;
}
