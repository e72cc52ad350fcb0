/**
 * `ctnr manifest merge`: join the manifests of the parts of one data set (`create --part K/N`)
 * into one, after checking that the parts make one tree: every part once, the same split, and
 * no relpath (or name equal after NFC) in two parts, no file in one part where another has a
 * folder. Each shard file is read whole for that: what its part manifest says of it (size,
 * entries, index, SHA-256s, first and last relpath, the part's original bytes) must be true.
 *
 * @module
 */

import { dirname, isAbsolute, relative, resolve } from "node:path";
import { ConflictError, UsageError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import {
  encodeManifest,
  type Manifest,
  MANIFEST_SUFFIX,
  parseManifest,
  partOfRelpath,
  type ShardRecord,
} from "./manifest.ts";
import { finalizedShard, type ShardFound, writeAtomically } from "./create_shards.ts";

/** A part's manifest, read. */
interface PartManifest {
  name: string;
  manifest: Manifest;
}

/**
 * Merge part manifests into `out` (written by a temp file and a rename).
 *
 * @param out path of the merged manifest (ends in `.manifest.json`)
 * @param parts paths of the parts' manifests
 * @returns the merged manifest
 * @throws {UsageError} when `out` does not end in `.manifest.json`, is one of `parts` (by path, or
 *   by device and inode), or no part is given
 * @throws {ConflictError} (exit 1), one line: a part manifest that disagrees with a shard (naming
 *   the shard and the field), or naming both manifests (and the relpath): a missing
 *   or repeated part, parts of different N or split, the same relpath or names equal after NFC
 *   in two parts, a file in one part where another has a folder
 * @throws {ContainerFormatError} when a manifest or a shard cannot be read
 */
export async function mergeManifests(out: string, parts: string[]): Promise<Manifest> {
  if (!out.endsWith(MANIFEST_SUFFIX)) {
    throw new UsageError(`Cannot write "${out}": a manifest's name ends in ${MANIFEST_SUFFIX}`);
  }
  if (parts.length === 0) throw new UsageError("Missing the parts' manifests to merge");
  await refuseOutIsPart(out, parts);
  const read: PartManifest[] = [];
  for (const name of parts) {
    let text: string;
    try {
      text = await Deno.readTextFile(name);
    } catch (error) {
      throw new ConflictError(`Cannot read manifest "${name}": ${(error as Error).message}`);
    }
    read.push({ name, manifest: parseManifest(text, name) });
  }
  const first = read[0]!;
  const split = first.manifest.split;
  const owner = new Map<number, string>();
  for (const { name, manifest } of read) {
    if (manifest.split.method !== split.method || manifest.split.parts !== split.parts) {
      throw new ConflictError(
        `Cannot merge "${first.name}" (split ${split.method}, ${split.parts} parts) and ` +
          `"${name}" (split ${manifest.split.method}, ${manifest.split.parts} parts): not parts ` +
          `of one set`,
      );
    }
    for (const part of manifest.parts) {
      const before = owner.get(part);
      if (before !== undefined) {
        throw new ConflictError(`Cannot merge "${before}" and "${name}": both hold part ${part}`);
      }
      owner.set(part, name);
    }
  }
  for (let part = 0; part < split.parts; part++) {
    if (!owner.has(part)) {
      throw new ConflictError(
        `Cannot merge "${parts.join('", "')}": part ${part} of ${split.parts} is missing`,
      );
    }
  }
  await checkOneTree(read);
  const folder = dirname(resolve(out));
  // The limits, when every part records the same (README "Shards and parts").
  const same = <T>(values: T[]): T | undefined =>
    values.every((value) => value === values[0]) ? values[0] : undefined;
  const shardSize = same(read.map(({ manifest }) => manifest.shardSize));
  const shardEntries = same(read.map(({ manifest }) => manifest.shardEntries));
  const merged: Manifest = {
    split,
    ...(shardSize === undefined ? {} : { shardSize }),
    ...(shardEntries === undefined ? {} : { shardEntries }),
    parts: [...owner.keys()].sort((a, b) => a - b),
    entries: 0,
    origBytes: 0,
    shards: [],
  };
  for (const { name, manifest } of read) {
    merged.entries += manifest.entries;
    merged.origBytes += manifest.origBytes;
    for (const shard of manifest.shards) {
      const path = relative(folder, resolve(dirname(name), shard.path)).split("\\").join("/");
      if (path.startsWith("..") || isAbsolute(path)) {
        throw new UsageError(
          `Cannot write "${out}": shard "${shard.path}" of "${name}" is not in its folder or ` +
            `below (write the merged manifest beside the parts')`,
        );
      }
      merged.shards.push({ ...shard, path });
    }
  }
  merged.shards.sort((a, b) => a.part - b.part); // stable: each part's own order stays
  await writeAtomically(out, encodeManifest(merged));
  return merged;
}

/** What a relpath is in the parts read so far. */
interface Seen {
  relpath: string;
  folder: boolean;
  manifest: string;
}

/**
 * Read every shard once (its facts checked by {@link checkFacts}, its entries kept for the
 * tree) and refuse a relpath (or NFC twin) in two parts, and a file in one part where another
 * has a folder (an entry under it, or a `dir` entry of that name).
 */
async function checkOneTree(read: PartManifest[]): Promise<void> {
  const entries = new Map<string, Seen>(); // NFC relpath -> the entry
  const folders = new Map<string, Seen>(); // NFC folder on the way to an entry -> that entry
  const clash = (a: Seen, b: Seen, what: string) =>
    new ConflictError(
      `Cannot merge "${a.manifest}" and "${b.manifest}": ${what} ("${a.relpath}" and ` +
        `"${b.relpath}")`,
    );
  // An entry in a part its hash does not give: thrown once the tree is checked (a clash between
  // parts names both manifests, which says more).
  let misplaced: ConflictError | undefined;
  for (const { name, manifest } of read) {
    let origBytes = 0;
    for (const shard of manifest.shards) {
      const path = resolve(dirname(name), shard.path);
      const shardEntries: IndexEntry[] = [];
      origBytes += await checkFacts(name, shard, path, shardEntries);
      for (const entry of shardEntries) {
        const belongs = partOfRelpath(entry.relpath, manifest.split);
        if (belongs !== shard.part && misplaced === undefined) {
          misplaced = new ConflictError(
            `Cannot merge "${name}": shard "${shard.path}" holds "${entry.relpath}", which ` +
              `belongs to part ${belongs}, not ${shard.part}`,
          );
        }
        const key = entry.relpath.normalize("NFC");
        const seen: Seen = {
          relpath: entry.relpath,
          folder: entry.entryType === "dir",
          manifest: name,
        };
        const before = entries.get(key);
        if (before !== undefined) {
          throw clash(
            before,
            seen,
            before.relpath === seen.relpath
              ? "the same relpath in two parts"
              : "names equal after NFC in two parts",
          );
        }
        entries.set(key, seen);
        if (!seen.folder) {
          const under = folders.get(key);
          if (under !== undefined) throw clash(seen, under, "a file where a folder is");
        }
        for (let slash = key.indexOf("/"); slash >= 0; slash = key.indexOf("/", slash + 1)) {
          const up = key.slice(0, slash);
          const there = entries.get(up);
          if (there !== undefined && !there.folder) {
            throw clash(there, seen, "a file where a folder is");
          }
          if (!folders.has(up)) folders.set(up, seen);
        }
      }
    }
    if (origBytes !== manifest.origBytes) {
      throw new ConflictError(
        `Cannot merge "${name}": its "orig_bytes" is ${manifest.origBytes}, its shards hold ` +
          `${origBytes}`,
      );
    }
  }
  if (misplaced !== undefined) throw misplaced;
}

/**
 * Check what a part manifest says of a shard against the shard file (read whole: its size,
 * entries, first and last relpath, where its index lies and that index's SHA-256, the SHA-256
 * of the file).
 *
 * @param entries gets the entries of the shard's index, in order
 * @returns the original bytes of its files
 * @throws {ConflictError} naming the manifest, the shard and the field that differs
 */
async function checkFacts(
  name: string,
  shard: ShardRecord,
  path: string,
  entries: IndexEntry[],
): Promise<number> {
  let found: ShardFound | undefined;
  try {
    found = await finalizedShard(path, shard.part, (entry) => entries.push(entry));
  } catch (error) {
    throw new ConflictError(
      `Cannot merge "${name}": cannot read shard "${shard.path}": ${(error as Error).message}`,
    );
  }
  if (found === undefined) {
    throw new ConflictError(
      `Cannot merge "${name}": shard "${shard.path}" is missing, or not a finalized container`,
    );
  }
  const fields: [string, unknown, unknown][] = [
    ["size", shard.size, found.size],
    ["entries", shard.entries, found.entries],
    ["index_offset", shard.indexOffset, found.indexOffset],
    ["index_length", shard.indexLength, found.indexLength],
    ["index_sha256", shard.indexSha256, found.indexSha256],
    ["sha256", shard.sha256, found.sha256],
    ["first", shard.first, found.first],
    ["last", shard.last, found.last],
  ];
  for (const [field, says, is] of fields) {
    if (says !== is) {
      throw new ConflictError(
        `Cannot merge "${name}": shard "${shard.path}" has ${field} ${JSON.stringify(is)}, ` +
          `the manifest says ${JSON.stringify(says)}`,
      );
    }
  }
  return found.origBytes;
}

/** Refuse an `out` that is one of the parts' manifests: merging would replace that part's. */
async function refuseOutIsPart(out: string, parts: string[]): Promise<void> {
  const identity = async (path: string) => {
    const info = await Deno.stat(path).catch(() => undefined);
    return info === undefined || info.ino === null ? undefined : `${info.dev}:${info.ino}`;
  };
  const outId = await identity(out);
  for (const part of parts) {
    if (resolve(part) === resolve(out) || (outId !== undefined && await identity(part) === outId)) {
      throw new UsageError(
        `Cannot write "${out}": it is the part manifest "${part}", which the merge reads ` +
          `(write the merged manifest to NAME.manifest.json)`,
      );
    }
  }
}
