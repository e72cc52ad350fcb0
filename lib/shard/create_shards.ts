/**
 * `create --shard-size`/`--shard-entries`/`--part K/N`: one walk of the source packed into
 * numbered shards (complete, finalized CTNRv1 containers), then the manifest, written last by a
 * temp file and a rename (lib/shard/manifest.ts).
 *
 * Names, beside `container` (`data.ctnr`, which itself is not written): `data-00000.ctnr`,
 * `data-00001.ctnr`, ... and `data.manifest.json`; with a part K of N, `data-pK-of-N-00000.ctnr`,
 * ... and `data.part-K-of-N.manifest.json`. Before its first shard a run writes the set's state
 * `data.shards.json` (`data.part-K-of-N.shards.json`): the split and the limits, which a resume
 * must be given again (the manifest records them too).
 *
 * A shard is closed before an entry that would take its payloads past `shardSize` bytes (the
 * entry's stored size; a file streamed in pieces counts its size on disk) or its entries past
 * `shardEntries`; a shard holds at least one entry, so a file larger than `shardSize` is a
 * shard of its own. The embedded index comes on top of `shardSize`.
 *
 * Resume: the shards that end with a trailer are kept (the walk must meet each one's last
 * relpath, else `ConflictError`), the walk goes on after the last one's last relpath, and the
 * first shard without a trailer continues by the rules of a container's resume. The same
 * source and options give the same bytes, killed and resumed or not.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { BusyError, ConflictError, environmentFault, UsageError } from "../errors.ts";
import type { CreateOptions, CreateResult } from "../create/options.ts";
import { runCreate, type ShardHooks } from "../create/create_container.ts";
import type { ContainerWriter } from "../create/container_writer.ts";
import { ContainerReader } from "../read/container_reader.ts";
import type { IndexEntry } from "../format/entry.ts";
import { checkSourceFolder, type WalkEntry } from "../create/walk.ts";
import { fingerprint, valueOf } from "../create/resume.ts";
import { warning } from "../warnings.ts";
import { sha256OfRange } from "../io/sha256.ts";
import { writeAll } from "../io/copy.ts";
import { openRandomAccess } from "../io/file_layer.ts";
import { refuseInside } from "../safety/output_paths.ts";
import {
  compareRelpaths,
  encodeManifest,
  type Manifest,
  MANIFEST_SUFFIX,
  partOf,
  partOfRelpath,
  type ShardRecord,
  type SplitMethod,
} from "./manifest.ts";

/** Options of {@link createShards}: those of `createContainer`, and how to split. */
export interface ShardOptions extends CreateOptions {
  /** Close a shard before its payloads pass this many bytes. */
  shardSize?: number;
  /** Close a shard once it holds this many entries. */
  shardEntries?: number;
  /** Make only part `index` (0-based) of `count`. @default one part */
  part?: { index: number; count: number };
  /** How entries are given to parts (with `part`). @default "hash" */
  split?: "hash" | "subtree";
}

/** What {@link createShards} did: the run's totals over all shards, and the manifest. */
export interface ShardResult extends CreateResult {
  /** Path of the manifest written. */
  manifestPath: string;
  /** The manifest written. */
  manifest: Manifest;
}

/**
 * The file names of a shard set made from `container`.
 *
 * @param container the `--container` path (`data.ctnr`)
 * @param part the part made, when one of several
 * @returns the manifest's path, the state's path (`data.shards.json`) and each shard's path by
 *   number
 */
export function shardNames(
  container: string,
  part?: { index: number; count: number },
): { manifest: string; state: string; shard: (n: number) => string } {
  const base = container.endsWith(".ctnr") ? container.slice(0, -".ctnr".length) : container;
  const p = part === undefined ? "" : `-p${part.index}-of-${part.count}`;
  const set = part === undefined ? base : `${base}.part-${part.index}-of-${part.count}`;
  return {
    manifest: set + MANIFEST_SUFFIX,
    state: set + STATE_SUFFIX,
    shard: (n) => `${base}${p}-${String(n).padStart(5, "0")}.ctnr`,
  };
}

/** The end of a set's state file's name (see the module). */
export const STATE_SUFFIX = ".shards.json";

/** What makes a set's shards: a resume must be given the same (see {@link ShardState}). */
interface ShardState {
  split: { method: SplitMethod; parts: number };
  shardSize: number | null;
  shardEntries: number | null;
}

/** The state file's text: `{"format":"ctnr-shards","version":1,split,shard_size,shard_entries}`. */
function encodeState(state: ShardState): string {
  return JSON.stringify({
    format: "ctnr-shards",
    version: 1,
    split: state.split,
    shard_size: state.shardSize,
    shard_entries: state.shardEntries,
  }) + "\n";
}

/**
 * Take the set's lock and check that this run may continue its shards. The state file is the
 * lock (an exclusive `flock`, held until the run ends, never renamed while held). With no shard
 * yet it is (re)written in place and synced before the first shard exists; with shards it must
 * record the same split and limits.
 *
 * @returns the state file, locked: close it when the run ends
 * @throws {BusyError} (exit 4) when another run holds the lock
 * @throws {ConflictError} naming the state file (or the first shard) and the option that differs
 */
async function lockSet(
  names: ReturnType<typeof shardNames>,
  state: ShardState,
  fresh: boolean,
): Promise<Deno.FsFile> {
  await Deno.mkdir(dirname(names.state), { recursive: true });
  const file = await Deno.open(names.state, { read: true, write: true, create: true });
  try {
    if (!await file.tryLock(true)) {
      throw new BusyError(
        `Cannot write the shards of "${names.manifest}": another ctnr run is writing them (it ` +
          `holds the lock of "${names.state}"); wait for that run to end, or stop it`,
      );
    }
    if (fresh) await removeSet(names);
    if ((await shardsPresent(names)).length === 0) {
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await writeAll(file, new TextEncoder().encode(encodeState(state)));
      await file.sync();
      return file;
    }
    checkState(names, state, await Deno.readTextFile(names.state));
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Check a state file's text against this run's split and limits.
 *
 * @throws {ConflictError} naming the state file (or the first shard) and the option that differs
 */
function checkState(names: ReturnType<typeof shardNames>, state: ShardState, text: string): void {
  if (text === "") {
    throw new ConflictError(
      `Cannot continue the shards of "${names.manifest}": "${names.shard(0)}" is there but ` +
        `"${names.state}", the record of the options that made it, is not (or is empty); give ` +
        `\`fresh\` to start the set anew`,
      { options: ["fresh"] },
    );
  }
  let raw: Record<string, unknown> = {};
  try {
    raw = JSON.parse(text);
  } catch { /* refused below */ }
  const split = (raw.split ?? {}) as Record<string, unknown>;
  const recorded: [string, string, unknown, unknown][] = [
    ["split", "`split`", split.method, state.split.method],
    ["part", "N of `part` K/N", split.parts, state.split.parts],
    ["shardSize", "`shardSize`", raw.shard_size, state.shardSize],
    ["shardEntries", "`shardEntries`", raw.shard_entries, state.shardEntries],
  ];
  for (const [option, label, was, now] of recorded) {
    if (was === now) continue;
    const shown = (value: unknown) => value === null ? "none" : String(value);
    throw new ConflictError(
      `Cannot continue the shards of "${names.manifest}": "${names.state}" records ${label} ` +
        `${shown(was)}, this run gives ${shown(now)}; give the same options, or \`fresh\` to ` +
        `start the set anew`,
      { options: [option, "fresh"] },
    );
  }
}

/**
 * Pack `src` into shards beside `container`, then write their manifest (see the module).
 *
 * @param src folder to pack
 * @param container names the set: `data.ctnr` gives `data-00000.ctnr`... and `data.manifest.json`
 * @param options see {@link ShardOptions}; `index`, `append` and `dryRun` are refused
 * @returns the totals and the manifest
 * @throws {UsageError} for options out of range, or shards inside `src`
 * @throws {ConflictError} when a finalized shard's last relpath is not in the source (resume)
 * @throws {InterruptedError} as `createContainer` (the shards so far stay; no manifest)
 */
export async function createShards(
  src: string,
  container: string,
  options: ShardOptions = {},
): Promise<ShardResult> {
  for (const name of ["index", "append", "dryRun"] as const) {
    if (options[name] !== undefined && options[name] !== false) {
      throw new UsageError(`Option \`${name}\` does not work with shards`, { options: [name] });
    }
  }
  for (const name of ["shardSize", "shardEntries"] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new UsageError(`Option \`${name}\` must be a positive integer, got ${value}`, {
        options: [name],
      });
    }
  }
  const part = options.part;
  if (
    part !== undefined &&
    (!Number.isSafeInteger(part.count) || part.count < 1 || !Number.isSafeInteger(part.index) ||
      part.index < 0 || part.index >= part.count)
  ) {
    throw new UsageError(
      `Option \`part\` must be K of N with 0 <= K < N, got ${part.index} of ${part.count}`,
      { options: ["part"] },
    );
  }
  const split: { method: SplitMethod; parts: number } = part === undefined
    ? { method: "none", parts: 1 }
    : { method: options.split ?? "hash", parts: part.count };
  const names = shardNames(container, part);
  await refuseInside({ what: "the shard set", path: names.manifest }, {
    what: "the source folder",
    path: src,
  });
  await checkSourceFolder(src); // before the set's folder and state are made
  const state: ShardState = {
    split,
    shardSize: options.shardSize ?? null,
    shardEntries: options.shardEntries ?? null,
  };
  const lock = await lockSet(names, state, options.fresh ?? false);
  try {
    return await packShards(src, names, options, part?.index ?? 0, state);
  } finally {
    lock.close();
  }
}

/** The run of {@link createShards}, the set's lock held: part `partIndex` of `state`'s split. */
async function packShards(
  src: string,
  names: ReturnType<typeof shardNames>,
  options: ShardOptions,
  partIndex: number,
  state: ShardState,
): Promise<ShardResult> {
  const { split } = state;
  const maxBytes = state.shardSize ?? Infinity;
  const maxEntries = state.shardEntries ?? Infinity;
  // The shards a killed run finalized: kept; the first one without a trailer continues.
  const kept: ShardFound[] = [];
  const committed = new Map<string, number>(); // the kept shards' entries, as a resume's
  for (let n = 0;; n++) {
    const path = names.shard(n);
    if (!await isFile(path)) break;
    const record = await finalizedShard(
      path,
      partIndex,
      (entry) => committed.set(entry.relpath, valueOf(entry)),
    );
    if (record === undefined) break;
    kept.push(record);
    await Deno.remove(path + ".idx").catch(() => {}); // a run killed before removing it
  }
  // A shard after the one this run continues (a gap in the numbers: a shard removed by hand,
  // or by a --new run killed midway): the run would cut and append to finalized shards.
  const after = (await shardsPresent(names)).filter((n) => n > kept.length);
  if (after.length > 0) {
    throw new ConflictError(
      `Cannot continue the shards of "${names.manifest}": "${names.shard(kept.length)}" is ` +
        `missing or unfinished, but "${names.shard(after[0]!)}" comes after it (the set is ` +
        `damaged); give \`fresh\` to start the set anew`,
      { options: ["fresh"] },
    );
  }
  const records = [...kept];
  const lasts = kept.filter((shard) => shard.entries > 0).map((shard) => shard.last);
  const boundary = lasts.at(-1);
  let met = 0;
  const unmet = (last: string) =>
    new ConflictError(
      `Cannot continue the shards of "${names.manifest}": "${last}", the last entry of a ` +
        `finalized shard, is not in "${src}" (the source changed since); give \`fresh\` to ` +
        `start the set anew`,
      { options: ["fresh"] },
    );

  const pruned: string[] = [];
  if (split.method === "subtree" && split.parts > 1) {
    for await (const item of Deno.readDir(src)) {
      // Spelled as the walk spells the paths it looks at (lib/create/walk.ts excludedPaths).
      const path = `${src.replace(/\/+$/, "")}/${item.name}`;
      if (partOf(item.name, split.parts) !== partIndex) pruned.push(path);
    }
  }
  // An item that sorts into a kept shard cannot be added: one that is new or changed since is
  // reported (CHANGED_SINCE_COMMIT) and counted as a changed file (exit 3), as a container's
  // resume reports a file changed after its commit.
  let changed = 0;
  let present = 0;
  const checkKept = (entry: WalkEntry) => {
    const value = committed.get(entry.relpath);
    let why: string | undefined;
    // Files only: folders and links may be left out by the options, special files always are.
    if (value === undefined) {
      why = entry.kind === "file" ? "is in the source but not in the finalized shard" : undefined;
    } else if (entry.kind === "file" && value >= 2) {
      present++;
      let info: Deno.FileInfo | undefined;
      try {
        info = Deno.lstatSync(entry.path);
      } catch { /* gone since the walk listed it: nothing to compare */ }
      const now = { origSize: info?.size ?? 0 } as { origSize: number; mtime?: number };
      if ((value & 1) === 1) now.mtime = (info?.mtime?.getTime() ?? 0) / 1000;
      if (info !== undefined && fingerprint(now) !== value) {
        why = "changed (size or mtime differ) since it was committed in the finalized shard";
      }
    } else present++;
    if (why === undefined) return;
    changed++;
    options.onWarning?.(warning(
      "CHANGED_SINCE_COMMIT",
      `"${entry.relpath}" ${why} it sorts into; the set does not hold this version (a run ` +
        `with --new packs the source anew)`,
      entry.relpath,
    ));
  };
  const finish = async (writer: ContainerWriter) => {
    if (writer.entries === 0 && records.length > 0) {
      // Nothing after the kept shards (a finished set run again): no empty shard is added.
      await writer.close();
      await Deno.remove(writer.container).catch(() => {});
      await Deno.remove(writer.indexPath).catch(() => {});
      return;
    }
    await writer.finalize({ removeIndex: true });
    records.push((await finalizedShard(writer.container, partIndex))!);
  };
  const hooks: ShardHooks = {
    pruned,
    keep(entry) {
      if (partOfRelpath(entry.relpath, split) !== partIndex) return false;
      if (boundary === undefined) return true;
      if (met < lasts.length && compareRelpaths(entry.relpath, lasts[met]!) > 0) {
        throw unmet(lasts[met]!);
      }
      if (met < lasts.length && entry.relpath === lasts[met]) met++;
      if (compareRelpaths(entry.relpath, boundary) > 0) return true;
      checkKept(entry);
      return false;
    },
    walked() {
      if (met < lasts.length) throw unmet(lasts[met]!);
    },
    full(writer, item) {
      if (writer.entries === 0) return false;
      if (writer.entries >= maxEntries) return true;
      if (maxBytes === Infinity) return false;
      let bytes = item.payload?.stored.length ?? 0;
      if (item.payload === undefined && item.walk.kind === "file") {
        try {
          bytes = Deno.statSync(item.walk.path).size;
        } catch { /* reported when it is read */ }
      }
      return writer.payloadEnd + bytes > maxBytes;
    },
    async next(writer, open) {
      await finish(writer);
      return await open(names.shard(records.length));
    },
    finish,
  };
  const result = await runCreate(src, names.shard(kept.length), {
    ...options,
    fresh: false,
    finalize: true, // the hooks finalize each shard, its index removed
  }, hooks);
  const manifest: Manifest = {
    split,
    shardSize: state.shardSize,
    shardEntries: state.shardEntries,
    parts: [partIndex],
    entries: records.reduce((sum, shard) => sum + shard.entries, 0),
    origBytes: records.reduce((sum, shard) => sum + shard.origBytes, 0),
    shards: records.map(({ origBytes: _, ...shard }) => ({ ...shard, path: basename(shard.path) })),
  };
  await writeAtomically(names.manifest, encodeManifest(manifest));
  return {
    ...result,
    resumed: result.resumed || kept.length > 0,
    alreadyPresent: result.alreadyPresent + present,
    staleEntries: result.staleEntries + changed,
    totalEntries: manifest.entries,
    containerSize: records.reduce((sum, shard) => sum + shard.size, 0),
    indexPath: "",
    manifestPath: names.manifest,
    manifest,
  };
}

/** A shard's record, and the original bytes of its files. */
export type ShardFound = ShardRecord & { origBytes: number };

/**
 * The record of a shard that ends with ctnr's trailer, read back from it: its index (entries,
 * first and last relpath, SHA-256 of its bytes) and the SHA-256 of the whole file.
 *
 * @param onEntry when given, called with each entry of its index, in order
 * @returns the record (its path as given) and the original bytes of its files, or `undefined`
 *   when it has no whole trailer
 */
export async function finalizedShard(
  path: string,
  part: number,
  onEntry?: (entry: IndexEntry) => void,
): Promise<ShardFound | undefined> {
  let reader: ContainerReader;
  try {
    reader = await ContainerReader.open(path);
  } catch {
    return undefined; // no index yet: the writer's resume decides
  }
  try {
    const trailer = await reader.findTrailer();
    if (trailer === null || !trailer.hasFooter) return undefined;
    let entries = 0;
    let first = "";
    let last = "";
    let orig = 0;
    for await (const entry of reader.entries()) {
      if (entries === 0) first = entry.relpath;
      last = entry.relpath;
      entries++;
      if (entry.entryType === "file") orig += entry.origSize;
      onEntry?.(entry);
    }
    const file = await openRandomAccess(path);
    try {
      return {
        origBytes: orig,
        path,
        part,
        size: file.size,
        entries,
        indexOffset: trailer.indexOffset,
        indexLength: trailer.indexLength,
        indexSha256: await sha256OfRange(file, trailer.indexOffset, trailer.indexLength),
        sha256: await sha256OfRange(file, 0, file.size),
        first,
        last,
      };
    } finally {
      file.close();
    }
  } finally {
    reader.close();
  }
}

async function isFile(path: string): Promise<boolean> {
  const info = await Deno.lstat(path).catch(() => undefined);
  return info?.isFile ?? false;
}

/**
 * Remove a set's manifest and every one of its shards, gaps in the numbers or not (`fresh`; the
 * state is rewritten).
 */
async function removeSet(names: ReturnType<typeof shardNames>): Promise<void> {
  await Deno.remove(names.manifest).catch(() => {});
  for (const n of await shardsPresent(names, { withIndexes: true })) {
    const path = names.shard(n);
    await Deno.remove(path).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    await Deno.remove(path + ".idx").catch(() => {});
  }
}

/**
 * The numbers of the shards of a set in its folder (files named as {@link shardNames} names
 * them), ascending; with `withIndexes`, also those of which only a `.idx` is left.
 */
async function shardsPresent(
  names: ReturnType<typeof shardNames>,
  options: { withIndexes?: boolean } = {},
): Promise<number[]> {
  const first = basename(names.shard(0));
  const prefix = first.slice(0, -"00000.ctnr".length);
  const found = new Set<number>();
  let items: Deno.DirEntry[];
  try {
    items = await Array.fromAsync(Deno.readDir(dirname(names.shard(0))));
  } catch {
    return [];
  }
  for (const item of items) {
    if (!item.name.startsWith(prefix)) continue;
    const match = /^(\d{5,})\.ctnr(\.idx)?$/.exec(item.name.slice(prefix.length));
    if (match === null || (match[2] !== undefined && !options.withIndexes)) continue;
    const n = Number(match[1]);
    // Only the spelling shardNames gives (no leading zeros beyond five digits).
    if (Number.isSafeInteger(n) && basename(names.shard(n)) === prefix + match[1] + ".ctnr") {
      found.add(n);
    }
  }
  return [...found].sort((a, b) => a - b);
}

/**
 * Write `text` to `path` by a temp file beside it, fsynced, then renamed over it: a reader sees
 * the old file or the whole new one.
 *
 * @throws {EnvironmentError} naming `path` on a full disk or an I/O error (nothing left behind)
 */
export async function writeAtomically(path: string, text: string): Promise<void> {
  // The process's id in the name: two runs at once never rename each other's temp file.
  const temp = join(dirname(path), `.${basename(path)}.${Deno.pid}.ctnr-tmp`);
  try {
    const file = await Deno.open(temp, { write: true, create: true, truncate: true });
    try {
      await writeAll(file, new TextEncoder().encode(text));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    // A full disk names the manifest (cli.ts's last resort named no file: "ctnr: ctnr: ...").
    throw environmentFault(error, `Cannot write "${path}"`, "free space and run the command again");
  }
}
