/**
 * `ctnr manifest merge`: join the manifests of the parts of one data set (`create --part K/N`)
 * into one, after checking that the parts make one tree: every part once, the same split, and
 * no relpath (or name equal after NFC) in two parts, no file in one part where another has a
 * folder. The shards' indexes are read for that (each shard opened alone, local or at a URL).
 *
 * @module
 */

import { dirname, isAbsolute, relative, resolve } from "node:path";
import { ConflictError, UsageError } from "../errors.ts";
import { ContainerReader } from "../read/container_reader.ts";
import { encodeManifest, type Manifest, MANIFEST_SUFFIX, parseManifest } from "./manifest.ts";
import { writeAtomically } from "./create_shards.ts";

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
 * @throws {UsageError} when `out` does not end in `.manifest.json`, or no part is given
 * @throws {ConflictError} (exit 1), one line naming both manifests (and the relpath): a missing
 *   or repeated part, parts of different N or split, the same relpath or names equal after NFC
 *   in two parts, a file in one part where another has a folder
 * @throws {ContainerFormatError} when a manifest or a shard cannot be read
 */
export async function mergeManifests(out: string, parts: string[]): Promise<Manifest> {
  if (!out.endsWith(MANIFEST_SUFFIX)) {
    throw new UsageError(`Cannot write "${out}": a manifest's name ends in ${MANIFEST_SUFFIX}`);
  }
  if (parts.length === 0) throw new UsageError("Missing the parts' manifests to merge");
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
 * Read every shard's index and refuse a relpath (or NFC twin) in two parts, and a file in one
 * part where another has a folder (an entry under it, or a `dir` entry of that name).
 */
async function checkOneTree(read: PartManifest[]): Promise<void> {
  const entries = new Map<string, Seen>(); // NFC relpath -> the entry
  const folders = new Map<string, Seen>(); // NFC folder on the way to an entry -> that entry
  const clash = (a: Seen, b: Seen, what: string) =>
    new ConflictError(
      `Cannot merge "${a.manifest}" and "${b.manifest}": ${what} ("${a.relpath}" and ` +
        `"${b.relpath}")`,
    );
  for (const { name, manifest } of read) {
    for (const shard of manifest.shards) {
      const reader = await ContainerReader.open(resolve(dirname(name), shard.path));
      try {
        for await (const entry of reader.entries()) {
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
      } finally {
        reader.close();
      }
    }
  }
}
