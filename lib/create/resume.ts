/**
 * Resuming a container: read its index (or the trailer that embeds it),
 * repair what a crash left (a torn last line, entries whose payloads are
 * missing or fail their SHA-256, bytes past the last indexed payload), and
 * give back the committed relpaths and where the next payload goes. The
 * rules are README "Durability and resume"; `ContainerWriter.open` applies
 * them.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { ConflictError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { IndexReader } from "../format/index_reader.ts";
import { findTrailer } from "../format/trailer.ts";
import {
  type FileLayer,
  type LayerFile,
  lockForWriting,
  openRandomAccess,
  pathExists,
} from "../io/file_layer.ts";
import { readRange } from "../io/random_access.ts";
import { sha256OfRange } from "../io/sha256.ts";
import { siblingTemp } from "../io/temp_file.ts";
import { FOLDER, PathGuard } from "../safety/path_guard.ts";
import { warning, type WarningHandler } from "../warnings.ts";

/** Where the index is, and how many entries its last batch may hold. */
export interface ResumeRules {
  /** Path of the index. */
  indexPath: string;
  /** Entries a batch commits at most: the last batch is re-hashed. */
  indexBatch: number;
}

/** What a container holds when a run starts: its committed entries and where payloads end. */
export interface ResumeState {
  /**
   * Every committed relpath, valued with {@link fingerprint}: skipped when met again, checked
   * for changes, and a new item must not clash with them (a file where a folder was, NFC twins).
   */
  committed: PathGuard;
  /** Entries in the index. */
  entries: number;
  /** End of the last indexed payload: where the next payload goes. */
  payloadEnd: number;
  containerFile?: LayerFile;
  indexFile?: LayerFile;
}

/**
 * Read the state of a container and its index, repairing what a crash left (unless `dryRun`):
 * the resume rules of README "Durability and resume".
 *
 * @param container the container path
 * @param rules where the index is and how big its batches are
 * @param layer the file layer
 * @param onWarning receives the repairs made
 * @param dryRun read only: repair and cut nothing, open no file for writing
 * @returns the state, with the open files unless `dryRun`
 * @throws {ConflictError} when a non-empty container has neither index nor trailer, or the
 *   index is a JSON document
 */
export async function readResumeState(
  container: string,
  rules: ResumeRules,
  layer: FileLayer,
  onWarning: WarningHandler | undefined,
  dryRun: boolean,
): Promise<ResumeState> {
  const indexExists = await pathExists(rules.indexPath);
  const containerExists = await pathExists(container);
  if (dryRun && !containerExists && !indexExists) {
    return { committed: new PathGuard(), entries: 0, payloadEnd: 0 };
  }
  if (dryRun) {
    // Read what is there without repairing or cutting anything: the index file, else the trailer.
    const committed = new PathGuard();
    let entries = 0;
    let payloadEnd = 0;
    const access = await openRandomAccess(indexExists ? rules.indexPath : container);
    try {
      const trailer = indexExists ? null : await findTrailer(access);
      if (indexExists || trailer !== null) {
        const reader = new IndexReader(
          access,
          trailer
            ? { start: trailer.indexOffset, length: trailer.indexLength }
            : { allowTornTail: true },
        );
        for await (const { entry, line } of reader.records()) {
          admitCommitted(committed, entry, line, indexExists ? rules.indexPath : container);
          entries++;
          payloadEnd = Math.max(payloadEnd, entry.offset + entry.payloadSize);
        }
      }
    } finally {
      access.close();
    }
    return { committed, entries, payloadEnd };
  }
  const containerFile = await layer.open(container);
  let indexFile: LayerFile | undefined;
  try {
    // One writer at a time: the lock before anything is read or changed.
    await lockForWriting(containerFile, container);
    const emptyIndex = indexExists && (await Deno.stat(rules.indexPath)).size === 0;
    if (!indexExists || emptyIndex) {
      // A missing index must be recovered from the trailer (or the run refused). An empty one
      // is what a crash before the first index commit leaves (the index file is created, and
      // its name fsynced, before any payload is written): without a trailer, start over.
      if (containerFile.size > 0 && !(emptyIndex && await findTrailer(containerFile) === null)) {
        await recoverIndexFromTrailer(containerFile, container, rules, layer);
      }
    }
    indexFile = await layer.open(rules.indexPath);
    await lockForWriting(indexFile, rules.indexPath);
    // New files: make their names durable too (fsync of the folder that holds them).
    if (!containerExists) await layer.syncFolder(dirname(resolve(container)));
    if (!indexExists) await layer.syncFolder(dirname(resolve(rules.indexPath)));
    const state = await scanIndex(indexFile, containerFile, rules, onWarning);
    return { ...state, containerFile, indexFile };
  } catch (error) {
    containerFile.close();
    indexFile?.close();
    throw error;
  }
}

async function recoverIndexFromTrailer(
  containerFile: LayerFile,
  container: string,
  rules: ResumeRules,
  layer: FileLayer,
): Promise<void> {
  const trailer = await findTrailer(containerFile);
  if (trailer === null) {
    throw new ConflictError(
      `Cannot continue "${container}": it holds ${containerFile.size} bytes but has no index ` +
        `"${rules.indexPath}" and no trailer; refusing to overwrite it (give \`index\`, or a new ` +
        `container path)`,
      { options: ["index"] },
    );
  }
  // Copy the embedded index out, durably (its bytes fsynced before the rename gives it its
  // name), before anything else changes. The caller fsyncs the folder once the index is open.
  const tmp = siblingTemp(rules.indexPath);
  const out = await layer.open(tmp);
  try {
    if (out.size > 0) await out.truncate(0); // left by a crash during an earlier recovery
    for await (const bytes of readRange(containerFile, trailer.indexOffset, trailer.indexLength)) {
      await out.append(bytes);
    }
    await out.sync();
  } finally {
    out.close();
  }
  await layer.rename(tmp, rules.indexPath);
}

async function scanIndex(
  indexFile: LayerFile,
  containerFile: LayerFile,
  rules: ResumeRules,
  onWarning: WarningHandler | undefined,
): Promise<Omit<ResumeState, "containerFile" | "indexFile">> {
  const committed = new PathGuard(false, PathGuard.expectedEntries(indexFile.size));
  if (indexFile.size === 0) {
    if (containerFile.size > 0) {
      // Payloads written, no entry committed: a crash before the first index batch.
      onWarning?.(
        warning("STARTED_OVER", `Cutting ${containerFile.size} unindexed bytes from the container`),
      );
      await containerFile.truncate(0);
    }
    return { committed, entries: 0, payloadEnd: 0 };
  }
  const reader = new IndexReader(indexFile, {
    allowTornTail: true,
    name: `index "${rules.indexPath}"`,
  });
  // Keep the last batch's entries to re-hash them; find the first entry whose payload is missing.
  const recent: { entry: IndexEntry; startOffset: number }[] = [];
  let previousEnd = 0;
  let cutAt: number | undefined;
  let entries = 0;
  let payloadEnd = 0;
  let document = false;
  for await (const record of reader.records()) {
    if (record.endOffset === 0) document = true;
    const { entry } = record;
    const end = entry.offset + entry.payloadSize;
    if (cutAt === undefined && end > containerFile.size) cutAt = previousEnd;
    if (cutAt === undefined) {
      admitCommitted(committed, entry, record.line, rules.indexPath);
      entries++;
      payloadEnd = Math.max(payloadEnd, end);
      recent.push({ entry, startOffset: previousEnd });
      if (recent.length > rules.indexBatch) recent.shift();
    }
    previousEnd = record.endOffset;
  }
  if (document) {
    throw new ConflictError(
      `Cannot continue with index "${rules.indexPath}": it is a JSON array/object, not NDJSON; ` +
        `convert it first`,
    );
  }
  if (reader.tornTail) {
    onWarning?.(warning(
      "INDEX_REPAIRED",
      `Repaired a torn last line of index "${rules.indexPath}" (cut at byte ${reader.validLength})`,
    ));
    await indexFile.truncate(reader.validLength);
  } else if (reader.missingFinalNewline) {
    // A whole last entry that lost only its newline: end the line before appending to it.
    await indexFile.append(new Uint8Array([0x0a]));
    await indexFile.sync();
  }
  // Re-hash the last committed batch; the first entry that fails and all after it are redone.
  let rehashCut: number | undefined;
  for (const { entry, startOffset } of recent) {
    if (entry.entryType !== "file") continue;
    if (!(await payloadMatches(containerFile, entry))) {
      rehashCut = startOffset;
      break;
    }
  }
  const cut = rehashCut !== undefined ? Math.min(rehashCut, cutAt ?? Infinity) : cutAt;
  if (cut !== undefined) {
    onWarning?.(warning(
      "ENTRIES_DROPPED",
      `Dropping index entries from byte ${cut} of "${rules.indexPath}": their payloads ` +
        `are missing or do not verify; they will be written again`,
    ));
    await indexFile.truncate(cut);
    return await scanIndex(indexFile, containerFile, rules, onWarning);
  }
  if (containerFile.size > payloadEnd) {
    const trailer = await findTrailer(containerFile, { at: payloadEnd });
    onWarning?.(warning(
      "BYTES_CUT",
      trailer
        ? `Removing the trailer to append to the finalized container`
        : `Cutting ${containerFile.size - payloadEnd} bytes past the last indexed payload`,
    ));
    await containerFile.truncate(payloadEnd);
  }
  return { committed, entries, payloadEnd };
}

async function payloadMatches(file: LayerFile, entry: IndexEntry): Promise<boolean> {
  return await sha256OfRange(file, entry.offset, entry.payloadSize) === entry.sha256;
}

/** The value of a committed link (folders are {@link FOLDER}, files 2 and up). */
export const LINK = 1;

/**
 * The value a committed entry is kept with in {@link ResumeState.committed}: {@link FOLDER} for a folder,
 * {@link LINK} for a link, and for a file a 32-bit fingerprint of its size
 * and mtime with bit 1 set (bit 0 says whether the mtime is part of it).
 */
export function fingerprint(
  entry: { entryType?: string; origSize: number; mtime?: number },
): number {
  if (entry.entryType === "dir") return FOLDER;
  if (entry.entryType === "symlink") return LINK;
  const split = (n: number) => (n % 0x100000000) ^ Math.floor(n / 0x100000000);
  let h = Math.imul(split(entry.origSize) ^ 0x5bd1e995, 0x9e3779b1);
  if (entry.mtime !== undefined) {
    h = Math.imul(h ^ split(Math.round(entry.mtime * 1000)), 0x85ebca6b);
  }
  h ^= h >>> 15;
  return ((h << 2) | 2 | (entry.mtime !== undefined ? 1 : 0)) >>> 0;
}

/**
 * The value an entry's relpath is held with in the committed set: {@link FOLDER}, {@link LINK},
 * or a file's {@link fingerprint}.
 *
 * @param entry an entry
 * @returns its value
 */
export function valueOf(entry: IndexEntry): number {
  return entry.entryType === "dir"
    ? FOLDER
    : entry.entryType === "symlink"
    ? LINK
    : fingerprint(entry);
}

/**
 * Admit a committed entry, refusing an index that its own extraction would refuse: two lines
 * for one relpath (two runs that wrote it at once leave that), or a file where a folder is.
 *
 * @throws {ConflictError} naming the entry and its line
 */
function admitCommitted(
  committed: PathGuard,
  entry: IndexEntry,
  line: number,
  index: string,
): void {
  const clash = committed.admit(entry.relpath, fingerprint(entry));
  if (clash === undefined) return;
  throw new ConflictError(
    `Cannot continue with index "${index}": line ${line}, "${entry.relpath}": ${clash}; ` +
      `extract would refuse this index (two runs writing one container at once leave this); ` +
      `pack into a new container`,
  );
}
