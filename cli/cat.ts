/**
 * `ctnr cat`: files of a container to standard output, verified: the one an exact relpath
 * names, or each file that patterns select, in index order (as `tar -xOf`).
 *
 * @module
 */

import {
  type ContainerReader,
  type IndexEntry,
  RemoteError,
  Selection,
  UsageError,
} from "../mod.ts";
import { reportUnmatched } from "./extract.ts";
import { isGlob } from "../lib/glob.ts";
import { compareRelpaths, shardFor, type ShardRecord } from "../lib/shard/manifest.ts";
import type { ShardSet } from "../lib/shard/shard_set.ts";
import type { RemoteOptions } from "../lib/remote/remote_container.ts";
import { type CommandSpec, helpText, parseCommand } from "./flags.ts";
import type { CliIo } from "./output.ts";
import {
  CONTAINER_FLAG,
  INDEX_FLAG,
  openReader,
  openShardReader,
  openShardSet,
  printRemoteCost,
  REMOTE_FLAGS,
  REMOTE_VERBOSE_FLAG,
  remoteOptions,
} from "./_reader.ts";

/** The flags of `cat`. */
export const CAT = {
  name: "cat",
  usage: "ctnr cat --container FILE [--index FILE] PATTERN...  (writes each file it selects\n" +
    "to stdout, in index order; an exact RELPATH is that file)",
  flags: [
    CONTAINER_FLAG,
    INDEX_FLAG,
    REMOTE_VERBOSE_FLAG,
    ...REMOTE_FLAGS,
  ],
} as const satisfies CommandSpec;

/**
 * `cat` of a shard set. When every pattern is an exact relpath, the manifest names the one
 * shard that can hold each (`shardFor`: its part, then first/last relpath): only those shards
 * are opened, and when each holds its file, only they are read. Otherwise (a wildcard, or a
 * relpath that is not a file there) every shard is read in manifest order with the patterns.
 *
 * @returns the selection whose unmatched patterns are to be named, if any
 */
async function catShards(
  set: ShardSet,
  patterns: string[],
  io: CliIo,
  remote: RemoteOptions,
): Promise<Selection | undefined> {
  const state = { wrote: false };
  // An exact relpath: no wildcard or escape in any name, no anchor, no trailing `/`.
  const exact = patterns.every((pattern) =>
    !pattern.startsWith("/") && !pattern.startsWith("./") && !pattern.endsWith("/") &&
    !pattern.includes("\\") && pattern.split("/").every((name) => !isGlob(name))
  );
  // A relpath with a `/` selects itself and what lies under it, which sort together from it on:
  // when no shard's first..last range reaches that span, the manifest proves it absent.
  const absent = exact
    ? patterns.filter((pattern) =>
      pattern.includes("/") &&
      !set.manifest.shards.some((shard) => shard.entries > 0 && mayHold(shard, pattern))
    )
    : [];
  if (absent.length === patterns.length) return new Selection(absent); // no shard opened
  const groups = new Map<ShardRecord, string[]>();
  for (const pattern of exact ? patterns.filter((p) => !absent.includes(p)) : []) {
    const shard = shardFor(set.manifest, pattern);
    if (shard === undefined) {
      groups.clear();
      break;
    }
    groups.set(shard, [...groups.get(shard) ?? [], pattern]);
  }
  if (groups.size > 0) {
    const opened: [ContainerReader, string[]][] = [];
    try {
      let found = true;
      for (const shard of set.shards()) {
        const wanted = groups.get(shard);
        if (wanted === undefined) continue;
        const reader = await openShardReader(set, shard, false, io, undefined, remote);
        opened.push([reader, wanted]);
        const files = new Set<string>();
        for await (const batch of reader.recordBatches({ quiet: true })) {
          for (const { entry } of batch) {
            if (entry.entryType === "file" && wanted.includes(entry.relpath)) {
              files.add(entry.relpath);
            }
          }
        }
        if (wanted.some((relpath) => !files.has(relpath))) {
          found = false;
          break;
        }
      }
      if (found) {
        while (opened.length > 0) {
          const [reader, wanted] = opened.shift()!;
          await catSelected(reader, new Selection(wanted), io, state);
        }
        return absent.length > 0 ? new Selection(absent) : undefined;
      }
    } finally {
      for (const [reader] of opened) reader.close();
    }
  }
  const select = new Selection(patterns);
  for (const shard of set.shards()) {
    await catSelected(
      await openShardReader(set, shard, false, io, undefined, remote),
      select,
      io,
      state,
    );
  }
  return select;
}

/**
 * Whether a shard's first..last range reaches the span of `relpath` and what lies under it
 * (they sort together, from `relpath` on, in {@link compareRelpaths} order).
 */
function mayHold(shard: ShardRecord, relpath: string): boolean {
  if (compareRelpaths(shard.last, relpath) < 0) return false; // it ends before the span
  return compareRelpaths(shard.first, relpath) <= 0 || shard.first.startsWith(relpath + "/");
}

/** Largest file `cat` verifies whole before writing a byte of it. */
const CAT_VERIFY_FIRST = 64 << 20;

/**
 * Run `ctnr cat`.
 *
 * @param args arguments after `cat`
 * @param io where to print
 * @returns the exit code
 */
export async function runCat(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(CAT, args);
  if (values.help) {
    io.stdout(helpText(CAT));
    return 0;
  }
  const rest = [...positionals];
  const container = values.container ?? rest.shift();
  if (rest.length === 0) throw new UsageError("Missing PATTERN (a relpath, or patterns)");
  // Patterns select files only: a folder entry or a link is not matched, so a pattern that
  // names only those is reported as selecting no file.
  const remote = await remoteOptions(values, undefined, container);
  const set = await openShardSet(container, values.index, remote);
  if (set !== undefined) {
    const unmatched = await catShards(set, rest, io, remote);
    printRemoteCost(remote.stats, values.verbose, io);
    return reportUnmatched(unmatched, io, "file") ? 1 : 0;
  }
  // A cached index is trusted without a request: the first payload's request checks the
  // version (If-Match), so a warm cat costs one request. A container replaced since is read
  // again from its new index, when nothing was written yet.
  let select = new Selection(rest);
  const state = { wrote: false };
  try {
    await catSelected(
      await openReader(container, values.index, false, io, undefined, {
        ...remote,
        confirmLazily: true,
      }),
      select,
      io,
      state,
    );
  } catch (error) {
    if (!(error instanceof RemoteError && error.code === "REMOTE_CHANGED") || state.wrote) {
      throw error;
    }
    select = new Selection(rest);
    await catSelected(
      await openReader(container, values.index, false, io, undefined, remote),
      select,
      io,
      state,
    );
  }
  printRemoteCost(remote.stats, values.verbose, io);
  return reportUnmatched(select, io, "file") ? 1 : 0;
}

/**
 * Write the files `select` selects; closes `reader`. A container on a server whose cached
 * index was trusted and found stale before a byte was written has that index dropped.
 *
 * @param state `wrote`: set once the first selected file is begun
 */
async function catSelected(
  reader: ContainerReader,
  select: Selection,
  io: CliIo,
  state: { wrote: boolean },
): Promise<void> {
  try {
    await reader.takeLiterally(select);
    if (reader.remote !== undefined) reader.planReads(reader.payloadRanges(select));
    for await (const entry of reader.records()) {
      if (entry.entry.entryType !== "file" || !select.matches(entry.entry.relpath)) continue;
      // Verified whole before its first byte is written (up to CAT_VERIFY_FIRST).
      await writeFile(reader, entry.entry, io, state);
    }
    // A trusted cached index said what to write, or that nothing matched: confirmed by one
    // request when no payload's request did (empty files, nothing selected).
    await reader.confirmRemote();
  } catch (error) {
    if (
      !state.wrote && error instanceof RemoteError && error.code === "REMOTE_CHANGED" &&
      reader.remote?.confirmedLazily
    ) await reader.dropCachedIndex();
    throw error;
  } finally {
    reader.close();
  }
}

/** Write one file entry to stdout, verified. */
async function writeFile(
  reader: ContainerReader,
  entry: IndexEntry,
  io: CliIo,
  state: { wrote: boolean },
): Promise<void> {
  if (entry.origSize <= CAT_VERIFY_FIRST) {
    // Small enough to hold: verify all of it before writing a byte.
    const held: Uint8Array[] = [];
    for await (const piece of reader.open(entry)) held.push(piece);
    // An empty file sends no request: the trusted cached index is confirmed first.
    await reader.confirmRemote();
    state.wrote = true;
    for (const piece of held) await io.writeBytes(piece);
  } else {
    // Streamed: a fault stops the output midway and exits 1 (see README). Its first request
    // confirms a trusted cached index before a byte is written (If-Match).
    for await (const piece of reader.open(entry)) {
      state.wrote = true;
      await io.writeBytes(piece);
    }
  }
}
