/**
 * Test helper: a shard set made from a tree without `create --shard-size` (the read side is
 * tested on its own). The tree is packed into one container (`whole.ctnr`, kept as the
 * reference), whose entries, in index order, are split into parts by `partOfRelpath` and into
 * shards of `perShard` entries, each written with ContainerWriter and finalized; the manifest
 * is written last with `encodeManifest`.
 *
 * @module
 */

import { ContainerReader, ContainerWriter, createContainer, type IndexEntry } from "../mod.ts";
import type { EntryHeader } from "../lib/create/writer_options.ts";
import { sha256OfRange } from "../lib/io/sha256.ts";
import { openRandomAccess } from "../lib/io/file_layer.ts";
import {
  encodeManifest,
  type Manifest,
  partOfRelpath,
  type ShardRecord,
  type SplitMethod,
} from "../lib/shard/manifest.ts";
import { type CliRun, runCli, type TreeSpec, writeTree } from "./_helpers.ts";

/** What {@link makeShardSet} made. */
export interface ShardSetFiles {
  /** `dir/whole.ctnr`: one container of the same tree. */
  whole: string;
  /** `dir/data.manifest.json`. */
  manifest: string;
  /** The manifest written. */
  set: Manifest;
  /** The source tree, `dir/src`. */
  src: string;
}

/**
 * Write `tree` to `dir/src`, one container of it, and a shard set of the same entries.
 *
 * @param dir an empty temp folder
 * @param tree the source tree
 * @param options `parts` (default 1), `split` (default `hash` when parts > 1, else `none`),
 *   `perShard`: entries per shard (default all of a part in one shard)
 * @returns the paths and the manifest
 */
export async function makeShardSet(
  dir: string,
  tree: TreeSpec,
  options: { parts?: number; split?: SplitMethod; perShard?: number } = {},
): Promise<ShardSetFiles> {
  const parts = options.parts ?? 1;
  const split = { method: options.split ?? (parts > 1 ? "hash" : "none"), parts };
  const src = `${dir}/src`;
  await writeTree(src, tree);
  const whole = `${dir}/whole.ctnr`;
  await createContainer(src, whole, { finalize: true, removeIndexOnFinalize: true });
  const reader = await ContainerReader.open(whole);
  const byPart: IndexEntry[][] = Array.from({ length: parts }, () => []);
  const bytes = new Map<string, Uint8Array>();
  try {
    for await (const entry of reader.entries()) {
      byPart[partOfRelpath(entry.relpath, split)]!.push(entry);
      if (entry.entryType === "file") {
        bytes.set(entry.relpath, await new Response(reader.open(entry)).bytes());
      }
    }
  } finally {
    reader.close();
  }
  const shards: ShardRecord[] = [];
  let origBytes = 0;
  for (let part = 0; part < parts; part++) {
    const entries = byPart[part]!;
    const per = options.perShard ?? Math.max(entries.length, 1);
    for (let i = 0, n = 0; i < entries.length || (i === 0 && n === 0); i += per, n++) {
      const name = `data-${parts > 1 ? `p${part}-` : ""}${String(n).padStart(5, "0")}.ctnr`;
      const path = `${dir}/${name}`;
      const chunk = entries.slice(i, i + per);
      const writer = await ContainerWriter.open(path);
      for (const entry of chunk) {
        const header: EntryHeader = { relpath: entry.relpath };
        if (entry.mode !== undefined) header.mode = entry.mode;
        if (entry.mtime !== undefined) header.mtime = entry.mtime;
        if (entry.entryType === "dir") await writer.addFolder(header);
        else if (entry.entryType === "symlink") {
          await writer.addSymlink(header, entry.linkTarget!);
        } else {
          await writer.addFile(header, bytes.get(entry.relpath)!);
          origBytes += entry.origSize;
        }
      }
      await writer.finalize({ removeIndex: true });
      shards.push(await shardRecord(path, name, part, chunk));
      if (entries.length === 0) break;
    }
  }
  const set: Manifest = {
    split,
    parts: Array.from({ length: parts }, (_, i) => i),
    entries: shards.reduce((sum, shard) => sum + shard.entries, 0),
    origBytes,
    shards,
  };
  const manifest = `${dir}/data.manifest.json`;
  await Deno.writeTextFile(manifest, encodeManifest(set));
  return { whole, manifest, set, src };
}

/** The manifest's record of a finalized shard. */
async function shardRecord(
  path: string,
  name: string,
  part: number,
  entries: IndexEntry[],
): Promise<ShardRecord> {
  const reader = await ContainerReader.open(path);
  const trailer = reader.trailer!;
  reader.close();
  const file = await openRandomAccess(path);
  try {
    return {
      path: name,
      part,
      size: file.size,
      entries: entries.length,
      indexOffset: trailer.indexOffset,
      indexLength: trailer.indexLength,
      indexSha256: await sha256OfRange(file, trailer.indexOffset, trailer.indexLength),
      sha256: await sha256OfRange(file, 0, file.size),
      first: entries[0]?.relpath ?? "",
      last: entries.at(-1)?.relpath ?? "",
    };
  } finally {
    file.close();
  }
}

/** Rewrite the manifest at `path` through `change`. */
export async function editManifest(
  path: string,
  change: (raw: { shards: Record<string, unknown>[] } & Record<string, unknown>) => void,
): Promise<void> {
  const raw = JSON.parse(await Deno.readTextFile(path));
  change(raw);
  await Deno.writeTextFile(path, JSON.stringify(raw));
}

/**
 * `ctnr manifest merge --out OUT PART...`, run as the CLI.
 *
 * @param out the merged manifest's path
 * @param parts the part manifests' paths
 * @returns the run
 */
export function runMerge(out: string, ...parts: string[]): Promise<CliRun> {
  return runCli("manifest", "merge", "--out", out, ...parts);
}
