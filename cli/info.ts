/**
 * `ctnr info`: what a container holds (entries by kind, original and stored
 * bytes), whether it is finalized, and which index was read and which exist.
 *
 * @module
 */

import { type ContainerInfo, containerInfo, UsageError } from "../mod.ts";
import { type CommandSpec, helpText, JSON_SUMMARY, parseCommand } from "./flags.ts";
import { type CliIo, printable } from "./output.ts";
import type { RunSummary } from "./summary.ts";
import {
  CONTAINER_FLAG,
  INDEX_FLAG,
  LENIENT_FLAG,
  openReader,
  openShardReader,
  openShardSet,
  printRemoteCost,
  REMOTE_FLAGS,
  REMOTE_VERBOSE_FLAG,
  remoteOptions,
  remoteReport,
  shownContainer,
} from "./_reader.ts";
import { count, size } from "./units.ts";
import type { ShardSet } from "../lib/shard/shard_set.ts";
import type { RemoteOptions } from "../lib/remote/remote_container.ts";

/** The flags of `info`. */
export const INFO = {
  name: "info",
  usage: "ctnr info --container FILE [--index FILE] [--json] [--lenient]   (or: ctnr info FILE)",
  flags: [
    CONTAINER_FLAG,
    INDEX_FLAG,
    LENIENT_FLAG,
    { ...JSON_SUMMARY, help: "print the facts as one JSON object on stdout (also on failure)" },
    REMOTE_VERBOSE_FLAG,
    ...REMOTE_FLAGS,
  ],
} as const satisfies CommandSpec;

/**
 * Run `ctnr info`.
 *
 * @param args arguments after `info`
 * @param io where to print
 * @param summary the `--json` summary: the facts go in it
 * @returns the exit code
 */
export async function runInfo(args: string[], io: CliIo, summary: RunSummary): Promise<number> {
  const { values, positionals } = parseCommand(INFO, args);
  if (values.help) {
    io.stdout(helpText(INFO));
    return 0;
  }
  summary.json = values.json ?? false;
  // The positionals: CONTAINER, when --container does not give it.
  const rest = [...positionals];
  const container = values.container ?? rest.shift();
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  summary.set({ container: shownContainer(container) });
  const remote = await remoteOptions(values, undefined, container);
  summary.setLive(() => remoteReport(remote.stats)?.fields ?? {});
  const set = await openShardSet(container, values.index, remote);
  if (set !== undefined) {
    const totals = await setInfo(set, values.lenient, io, summary, remote);
    summary.set(setFields(set, totals));
    printRemoteCost(remote.stats, values.verbose, io);
    if (!summary.json) { for (const line of setLines(set, totals)) io.stdout(line); }
    return 0;
  }
  const reader = await openReader(container, values.index, values.lenient, io, summary, remote);
  let info: ContainerInfo;
  try {
    info = await containerInfo(reader);
  } finally {
    reader.close();
  }
  summary.set(infoFields(info));
  printRemoteCost(remote.stats, values.verbose, io);
  if (!summary.json) { for (const line of infoLines(info)) io.stdout(line); }
  return 0;
}

/** `stored / original`, to three decimals (as `xz --list`); `null` when nothing is stored. */
function ratio(info: ContainerInfo): number | null {
  return info.origBytes === 0 ? null : Math.round(info.storedBytes / info.origBytes * 1000) / 1000;
}

/** The `--json` fields (README "Output for scripts"); sizes in bytes. */
function infoFields(info: ContainerInfo): Record<string, unknown> {
  const trailer = info.trailer;
  return {
    container_bytes: info.containerBytes,
    entries: info.entries,
    files: info.files,
    folders: info.folders,
    links: info.links,
    compressed_files: info.compressedFiles,
    orig_bytes: info.origBytes,
    stored_bytes: info.storedBytes,
    compression_ratio: ratio(info),
    payload_end: info.payloadEnd,
    finalized: trailer !== null,
    trailer: trailer === null ? null : {
      offset: trailer.trailerOffset,
      index_offset: trailer.indexOffset,
      index_bytes: trailer.indexLength,
      footer: trailer.hasFooter,
    },
    index_used: info.index.origin,
    index_path: info.index.path,
    index_bytes: info.index.bytes,
    sibling_index: info.siblingIndex,
  };
}

/** The lines for people. */
function infoLines(info: ContainerInfo): string[] {
  const bytes = (n: number) => n < 1024 ? size(n) : `${size(n)} (${n} bytes)`;
  const trailer = info.trailer;
  const r = ratio(info);
  const used = info.index.origin === "trailer"
    ? "the trailer"
    : `${printable(info.index.path)} (${info.index.origin === "sibling" ? "sibling" : "--index"})`;
  return [
    `Container:    ${printable(info.path)}, ${bytes(info.containerBytes)}`,
    `Entries:      ${info.entries} (${count(info.files, "file")}, ${
      count(info.folders, "folder")
    }, ${count(info.links, "link")})`,
    `Original:     ${bytes(info.origBytes)}`,
    `Stored:       ${bytes(info.storedBytes)}` +
    (r === null ? "" : `, ratio ${r.toFixed(3)} (stored / original)`) +
    `, ${info.compressedFiles} of ${count(info.files, "file")} compressed`,
    trailer === null
      ? `Finalized:    no (no trailer: the index is only in a separate file)`
      : `Finalized:    yes: trailer at byte ${trailer.trailerOffset}, index of ${trailer.indexLength} bytes${
        trailer.hasFooter ? ", ctnr footer" : ", no footer (the original tools')"
      }`,
    `Index read:   ${used}, ${bytes(info.index.bytes)}`,
    `Sibling .idx: ${
      info.siblingIndex === null
        ? "none"
        : `${printable(info.siblingIndex.path)}, ${bytes(info.siblingIndex.bytes)}`
    }`,
  ];
}

/** The counts of {@link ContainerInfo} that `info` adds up over the shards of a set. */
const SET_TOTALS = [
  "containerBytes",
  "entries",
  "files",
  "folders",
  "links",
  "compressedFiles",
  "origBytes",
  "storedBytes",
] as const;

/** The sums over the shards of a set that `info` shows. */
type SetTotals = Pick<ContainerInfo, typeof SET_TOTALS[number]>;

/** Read every shard's index (checked against the manifest) and add up what it holds. */
async function setInfo(
  set: ShardSet,
  lenient: boolean | undefined,
  io: CliIo,
  summary: RunSummary,
  remote: RemoteOptions,
): Promise<SetTotals> {
  const totals = Object.fromEntries(SET_TOTALS.map((key) => [key, 0])) as SetTotals;
  for (const shard of set.shards()) {
    const reader = await openShardReader(set, shard, lenient, io, summary, remote);
    try {
      const info = await containerInfo(reader);
      for (const key of SET_TOTALS) totals[key] += info[key];
    } finally {
      reader.close();
    }
  }
  return totals;
}

/** The `--json` fields of a shard set (README "Reading a shard set"); sizes in bytes. */
function setFields(set: ShardSet, totals: SetTotals): Record<string, unknown> {
  const manifest = set.manifest;
  return {
    manifest: set.path,
    shards: manifest.shards.length,
    split: manifest.split.method,
    parts: manifest.split.parts,
    parts_held: manifest.parts,
    container_bytes: totals.containerBytes,
    entries: totals.entries,
    files: totals.files,
    folders: totals.folders,
    links: totals.links,
    compressed_files: totals.compressedFiles,
    orig_bytes: totals.origBytes,
    stored_bytes: totals.storedBytes,
    compression_ratio: totals.origBytes === 0
      ? null
      : Math.round(totals.storedBytes / totals.origBytes * 1000) / 1000,
  };
}

/** The lines for people about a shard set. */
function setLines(set: ShardSet, totals: SetTotals): string[] {
  const bytes = (n: number) => n < 1024 ? size(n) : `${size(n)} (${n} bytes)`;
  const manifest = set.manifest;
  const parts = manifest.split.parts;
  const held = manifest.parts.length === parts
    ? `all ${count(parts, "part")}`
    : `part${manifest.parts.length === 1 ? "" : "s"} ${manifest.parts.join(", ")} of ${parts}`;
  return [
    `Manifest:     ${printable(set.path)}`,
    `Shards:       ${manifest.shards.length}, ${bytes(totals.containerBytes)}`,
    `Parts:        ${held}${parts > 1 ? ` (split by ${manifest.split.method})` : ""}`,
    `Entries:      ${totals.entries} (${count(totals.files, "file")}, ${
      count(totals.folders, "folder")
    }, ${count(totals.links, "link")})`,
    `Original:     ${bytes(totals.origBytes)}`,
    `Stored:       ${bytes(totals.storedBytes)}, ${totals.compressedFiles} of ${
      count(totals.files, "file")
    } compressed`,
  ];
}
