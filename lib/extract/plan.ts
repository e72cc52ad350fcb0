/**
 * The planning pass of `extract`: read the whole index once, streaming,
 * and refuse it before anything is written when two entries would land on
 * the same path, when a file would sit where a folder must be, or when a
 * symlink would point outside the output folder. Memory stays bounded:
 * relpaths are kept as 96-bit hashes, not strings.
 *
 * @module
 */

import { ContainerFormatError, UnsafeEntryError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import type { ContainerReader, IndexOrigin } from "../read/container_reader.ts";
import { RelpathSet } from "../safety/relpath_set.ts";
import { checkLinkTarget } from "../safety/link_target.ts";
import { overlap, PayloadOrder, PayloadRanges } from "../safety/payload_ranges.ts";
import { pathLength, pathLimits, pathTooLong } from "../safety/path_limits.ts";
import { reservedName } from "../safety/reserved_names.ts";
import { windowsNameFault } from "../safety/windows_names.ts";
import { type CaseFolding, FOLDER, PathGuard, pathKeyer } from "../safety/path_guard.ts";
import type { Selection } from "../selection.ts";

/** Options of {@link planExtraction}. */
export interface PlanOptions {
  /** Accept symlinks whose target is absolute or leaves the output folder. @default false */
  allowUnsafeLinks?: boolean;
  /**
   * Treat names that differ only in case as the same (case-insensitive targets): everywhere, or
   * where a {@link CaseFolding} says (its top, the file systems mounted below it). @default false
   */
  foldCase?: boolean | CaseFolding;
  /**
   * The absolute path of the output folder: an entry whose path under it would be longer than
   * the platform allows is refused (lib/safety/path_limits.ts). Unchecked when not given.
   */
  outdir?: string;
  /**
   * Called for each symlink whose target leaves the output folder; the plan
   * then goes on (the caller skips those links). Without it, the plan reads
   * the whole index and throws one {@link UnsafeEntryError} naming them.
   */
  onUnsafeLink?: (entry: IndexEntry, error: UnsafeEntryError) => void;
  /**
   * Called for each entry whose payload runs past the payload area (a container cut short,
   * or an index naming bytes the container does not hold); the entry is then left out of
   * the plan (and of the run: the caller reads with the same `onPastEnd` rule) and the plan
   * goes on. The error's code is `CONTAINER_CUT` when the file ends before the payload.
   * Without it, the first such entry fails the plan.
   */
  onPastEnd?: (entry: IndexEntry, error: ContainerFormatError) => void;
  /**
   * Refuse entries Windows cannot write as named: device names (`CON`, `nul.txt`, ...), a name
   * ending in a dot or a space, `<>:"|?*` and control characters (lib/safety/windows_names.ts).
   * `extractContainer` sets it on Windows. @default false
   */
  windowsNames?: boolean;
  /** The word the messages use for what failed: `Cannot verify ...`. @default "extract" */
  verb?: "extract" | "verify";
  /**
   * Called for each folder entry once it is admitted (extract notes which folders have one);
   * with `select`, for the folder entries it does not select too (a folder on the way to a
   * selected entry is still made, private when its entry says so).
   */
  onFolder?: (entry: IndexEntry) => void;
  /**
   * Only the entries it selects are planned (checked, counted); the others are only read
   * (every index line is still parsed and checked, and the payloads' ranges are). An entry
   * past the payload area that it does not select is no fault. Symlinks it does not select
   * still count as links for the target checks of those it selects.
   */
  select?: Selection;
  /**
   * Called after each batch of index lines is checked, with the bytes of the index read so far
   * (the end offset of the batch's last line), for progress.
   */
  onIndexRead?: (bytes: number) => void;
}

/** What the index holds, known before anything is written (with `select`, what it selects). */
export interface ExtractPlan {
  /** Entries in the index (with `select`: those it selects). */
  entries: number;
  /** Entries in the index, selected or not (those past the payload area included). */
  indexEntries: number;
  /**
   * The relpaths of the first and last entries of the index, in index order (`""` for an empty
   * index): what a shard set's manifest says of each shard (lib/shard/manifest.ts).
   */
  indexRange: { first: string; last: string };
  /** File entries. */
  files: number;
  /** Folder entries. */
  dirs: number;
  /** Symlink entries. */
  symlinks: number;
  /** Sum of `orig_size` of the files, in bytes. */
  totalBytes: number;
  /** Sum of `payload_size`, in bytes. */
  payloadBytes: number;
  /** Symlinks refused for their target (only with `onUnsafeLink`). */
  unsafeLinks: number;
  /**
   * Entries left out because their payload runs past the payload area (only with `onPastEnd`);
   * not in the counts above. They are files: only files have payloads.
   */
  leftOut: number;
  /** Sum of `orig_size` of the entries left out, in bytes. */
  leftOutBytes: number;
  /** Sum of `payload_size` of the entries left out, in bytes. */
  leftOutPayloadBytes: number;
  /**
   * Where the index says the payloads end: the largest `offset + payload_size`, in bytes,
   * counting the entries left out.
   */
  payloadEnd: number;
  /** Where the index was read from (see {@link ContainerReader.indexOrigin}). */
  indexOrigin: IndexOrigin;
  /** Path of the index file, or of the container for an embedded index. */
  indexPath: string;
}

/**
 * Validate every entry of the container's index and total it up.
 *
 * @param reader the open container
 * @param options link and case rules
 * @returns the totals
 * @throws {UnsafeEntryError} on a duplicate relpath, a file/folder clash, or an unsafe link
 * @throws {IndexFormatError} on a bad index
 * @throws {ContainerFormatError} when a payload lies past the payload area
 */
export async function planExtraction(
  reader: ContainerReader,
  options: PlanOptions = {},
): Promise<ExtractPlan> {
  const verb = options.verb ?? "extract";
  const plan: ExtractPlan = {
    unsafeLinks: 0,
    leftOut: 0,
    leftOutBytes: 0,
    leftOutPayloadBytes: 0,
    payloadEnd: 0,
    entries: 0,
    indexEntries: 0,
    indexRange: { first: "", last: "" },
    files: 0,
    dirs: 0,
    symlinks: 0,
    totalBytes: 0,
    payloadBytes: 0,
    indexOrigin: reader.indexOrigin,
    indexPath: reader.indexPath,
  };
  // Its tables (32 MiB at a million entries) are given back when the plan ends: the write
  // phase that follows has its own peak.
  using guard = new PathGuard(
    options.foldCase ?? false,
    PathGuard.expectedEntries(reader.indexLength),
  );
  const key = pathKeyer(options.foldCase ?? false);
  const links: IndexEntry[] = [];
  const linkKeys = new RelpathSet();
  const order = new PayloadOrder(verb);
  const limits = pathLimits(Deno.build.os);
  const rootLength = options.outdir === undefined ? undefined : pathLength(options.outdir, limits);
  const onPastEnd = options.onPastEnd;
  const select = options.select;
  const selected = (entry: IndexEntry) =>
    select === undefined || select.matches(entry.relpath, entry.entryType === "dir");
  // An entry past the end of the payloads matters only when it is selected: then it is left
  // out (`onPastEnd`) or stops the run; without patterns the reader's own error says where the
  // container is cut and how many entries lie past it.
  const recordOptions = onPastEnd === undefined && select === undefined ? {} : {
    onPastEnd: (entry: IndexEntry, detail: string, cut: boolean) => {
      plan.payloadEnd = Math.max(plan.payloadEnd, entry.offset + entry.payloadSize);
      plan.indexEntries++;
      if (!selected(entry)) return;
      const error = new ContainerFormatError(`Cannot ${verb} "${entry.relpath}": ${detail}`, {
        code: cut ? "CONTAINER_CUT" : "CONTAINER_FORMAT",
      });
      if (onPastEnd === undefined) throw error;
      plan.leftOut++;
      plan.leftOutBytes += entry.origSize;
      plan.leftOutPayloadBytes += entry.payloadSize;
      onPastEnd(entry, error);
    },
  };
  for await (const batch of reader.recordBatches(recordOptions)) {
    if (batch.length > 0) {
      if (plan.indexEntries === 0) plan.indexRange.first = batch[0]!.entry.relpath;
      plan.indexRange.last = batch[batch.length - 1]!.entry.relpath;
    }
    plan.indexEntries += batch.length;
    for (const { entry } of batch) {
      plan.payloadEnd = Math.max(plan.payloadEnd, entry.offset + entry.payloadSize);
      order.add(entry);
      if (!selected(entry)) {
        if (entry.entryType === "dir") options.onFolder?.(entry);
        else if (entry.entryType === "symlink" && !options.allowUnsafeLinks) {
          linkKeys.add(key(entry.relpath));
        }
        continue;
      }
      plan.entries++;
      if (rootLength !== undefined) {
        const tooLong = pathTooLong(rootLength, entry.relpath, limits);
        if (tooLong) throw new UnsafeEntryError(`Cannot ${verb} "${entry.relpath}": ${tooLong}`);
      }
      const reserved = reservedName(entry.relpath);
      if (reserved) throw new UnsafeEntryError(`Cannot extract "${entry.relpath}": ${reserved}`);
      const windows = options.windowsNames ? windowsNameFault(entry.relpath) : undefined;
      if (windows) throw new UnsafeEntryError(`Cannot ${verb} "${entry.relpath}": ${windows}`);
      const clash = guard.admit(entry.relpath, entry.entryType === "dir" ? FOLDER : 1);
      if (clash !== undefined) {
        throw new UnsafeEntryError(`Cannot ${verb} "${entry.relpath}": ${clash}`);
      }
      if (entry.entryType === "file") {
        plan.files++;
        plan.totalBytes += entry.origSize;
        plan.payloadBytes += entry.payloadSize;
      } else if (entry.entryType === "dir") {
        plan.dirs++;
        options.onFolder?.(entry);
      } else {
        plan.symlinks++;
        if (!options.allowUnsafeLinks) {
          links.push(entry);
          linkKeys.add(key(entry.relpath));
        }
      }
    }
    const last = batch[batch.length - 1];
    if (last !== undefined) options.onIndexRead?.(last.endOffset);
  }
  if (!order.ordered) await checkOverlaps(reader, verb);
  // Link targets are checked once every link is known (a chain can run through a later one).
  const unsafe: [IndexEntry, UnsafeEntryError][] = [];
  for (const link of links) {
    try {
      checkLinkTarget(link, (relpath) => linkKeys.has(key(relpath)), verb);
    } catch (error) {
      if (!(error instanceof UnsafeEntryError)) throw error;
      plan.unsafeLinks++;
      if (options.onUnsafeLink) options.onUnsafeLink(link, error);
      else unsafe.push([link, error]);
    }
  }
  if (unsafe.length === 1) throw unsafe[0]![1];
  if (unsafe.length > 1) {
    // One line, as every error: the first ten links by name and target (each one's reason is
    // named by `keepGoing`, which reports them one by one).
    const shown = unsafe.slice(0, 10).map(([link]) => `"${link.relpath}" -> "${link.linkTarget}"`)
      .join(", ");
    throw new UnsafeEntryError(
      `Cannot ${verb}: ${unsafe.length} symlinks point outside the output folder ` +
        `(pass \`allowUnsafeLinks\` to keep them, or \`keepGoing\` to ${verb} the rest without ` +
        `them): ${shown}${unsafe.length > 10 ? ` and ${unsafe.length - 10} more` : ""}`,
      { options: ["allowUnsafeLinks", "keepGoing"] },
    );
  }
  return plan;
}

/**
 * An index out of offset order: a second pass gathers every payload range and sorts them; a
 * third names the two entries of an overlap.
 *
 * @throws {UnsafeEntryError} when two payloads overlap
 */
async function checkOverlaps(reader: ContainerReader, verb: string): Promise<void> {
  // The entries left out by the first pass are left out here too, quietly.
  const quietly = { quiet: true, onPastEnd: () => {} };
  const ranges = new PayloadRanges();
  for await (const batch of reader.recordBatches(quietly)) {
    for (const { entry } of batch) ranges.add(entry);
  }
  const found = ranges.findOverlap();
  if (found === undefined) return;
  const names: string[] = [];
  let position = 0;
  for await (const batch of reader.recordBatches(quietly)) {
    for (const { entry } of batch) {
      if (entry.entryType !== "file" || entry.payloadSize === 0) continue;
      if (position === found[0] || position === found[1]) names.push(entry.relpath);
      position++;
    }
  }
  throw overlap(names[1]!, names[0]!, verb);
}
