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
import { refuseDisagreement } from "../format/index_agreement.ts";
import { IndexReader, type IndexRecord } from "../format/index_reader.ts";
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
import { locate } from "../safety/output_paths.ts";
import { FOLDER, PathGuard } from "../safety/path_guard.ts";
import { warning, type WarningHandler } from "../warnings.ts";

/** Where the index is, and how many entries its last batch may hold. */
export interface ResumeRules {
  /** Path of the index. */
  indexPath: string;
  /** Entries a batch commits at most: the last batch is re-hashed. */
  indexBatch: number;
  /**
   * Start anew: drop every committed entry and payload (container and index cut to zero),
   * but only when the container is one of ours (a trailer, an index beside it, or empty).
   */
  fresh?: boolean;
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
  /**
   * Where the committed index lines are (a file, and a range of it), to read them again
   * (`ContainerWriter.unmet`); `undefined` when nothing was committed.
   */
  committedIndex?: CommittedIndex;
  containerFile?: LayerFile;
  indexFile?: LayerFile;
}

/** The committed index lines of a container: a range of its index file or of its trailer. */
export interface CommittedIndex {
  /** The file that holds them. */
  path: string;
  /** Offset in bytes of the first line. */
  start: number;
  /** Size in bytes of the lines. */
  length: number;
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
 * @throws {ContainerFormatError} code `INDEX_CONFLICT` when the index and the trailer at the
 *   end of the container hold different entries: resuming would cut off the trailer and the
 *   payloads only it indexes (lib/format/index_agreement.ts); nothing is changed
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
  // Refused before anything is opened for writing (a file created is a change too).
  if (!rules.fresh && !containerExists && indexExists) await refuseOrphanIndex(container, rules);
  if (rules.fresh) await refuseForeign(containerExists, container, rules.indexPath, indexExists);
  if (dryRun && ((!containerExists && !indexExists) || rules.fresh)) {
    return { committed: new PathGuard(), entries: 0, payloadEnd: 0 };
  }
  if (dryRun) {
    // Read what is there without repairing or cutting anything: the index file, else the trailer.
    const committed = new PathGuard();
    let entries = 0;
    let payloadEnd = 0;
    const where = await findCommittedIndex(container, rules.indexPath);
    if (where !== undefined) {
      for await (const { entry, line } of readCommittedIndex(where)) {
        admitCommitted(committed, entry, line, where.path);
        entries++;
        payloadEnd = Math.max(payloadEnd, entry.offset + entry.payloadSize);
      }
      // The same refusal as a real run's (scanIndex), so that a dry run tells it first.
      if (where.path === rules.indexPath && containerExists) {
        await refuseIndexDisagreeing(container, rules.indexPath, payloadEnd);
      }
    }
    const state: ResumeState = { committed, entries, payloadEnd };
    if (where !== undefined) state.committedIndex = where;
    return state;
  }
  const containerFile = await layer.open(container);
  let indexFile: LayerFile | undefined;
  try {
    // One writer at a time: the lock before anything is read or changed.
    await lockForWriting(containerFile, container);
    const emptyIndex = indexExists && (await Deno.stat(rules.indexPath)).size === 0;
    if (!rules.fresh && (!indexExists || emptyIndex)) {
      // A missing index must be recovered from the trailer (or the run refused). An empty one
      // is what a crash before the first index commit leaves (the index file is created, and
      // its name fsynced, before any payload is written): without a trailer, start over.
      if (containerFile.size > 0 && !(emptyIndex && await findTrailer(containerFile) === null)) {
        await recoverIndexFromTrailer(containerFile, container, rules, layer);
      }
    }
    indexFile = await layer.open(rules.indexPath);
    await lockForWriting(indexFile, rules.indexPath);
    if (rules.fresh) {
      // The container first: cut before its index, a crash leaves entries whose payloads are
      // gone, which the next resume drops.
      if (containerFile.size > 0) await containerFile.truncate(0);
      if (indexFile.size > 0) await indexFile.truncate(0);
    }
    // New files: make their names durable too (fsync of the folder that holds them).
    if (!containerExists) await layer.syncFolder(dirname(resolve(container)));
    if (!indexExists) await layer.syncFolder(dirname(resolve(rules.indexPath)));
    const state: ResumeState = {
      ...await scanIndex(indexFile, containerFile, rules, onWarning, container),
      containerFile,
      indexFile,
    };
    if (state.entries > 0) {
      state.committedIndex = { path: rules.indexPath, start: 0, length: indexFile.size };
    }
    return state;
  } catch (error) {
    containerFile.close();
    indexFile?.close();
    throw error;
  }
}

/** {@link refuseDisagreement} for a dry run, which has no file open: both opened read only. */
async function refuseIndexDisagreeing(
  container: string,
  indexPath: string,
  payloadEnd: number,
): Promise<void> {
  const containerAccess = await openRandomAccess(container);
  try {
    const indexAccess = await openRandomAccess(indexPath);
    try {
      await refuseDisagreement(
        "continue",
        { container, index: indexPath },
        containerAccess,
        indexAccess,
        { from: Math.min(payloadEnd, containerAccess.size) },
      );
    } finally {
      indexAccess.close();
    }
  } finally {
    containerAccess.close();
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
  // An index path that is a symlink (to an empty index) keeps its link: its target is renamed.
  const isLink = await Deno.lstat(rules.indexPath).then((info) => info.isSymlink, () => false);
  const target = isLink ? (await locate(rules.indexPath)).final : rules.indexPath;
  const tmp = siblingTemp(target);
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
  await layer.rename(tmp, target);
}

/**
 * Read the index, repair it, and cut the container back to its last good payload.
 *
 * @param container the container's path, on the first call: the index is then first compared
 *   with the trailer at the end of the container, before anything is changed
 */
async function scanIndex(
  indexFile: LayerFile,
  containerFile: LayerFile,
  rules: ResumeRules,
  onWarning: WarningHandler | undefined,
  container?: string,
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
  if (container !== undefined) {
    // A trailer at the end that holds other entries than this index (a stale, shorter .idx
    // beside a finalized container): every repair below would cut it off.
    await refuseDisagreement(
      "continue",
      { container, index: rules.indexPath },
      containerFile,
      indexFile,
      { from: payloadEnd },
    );
  }
  if (reader.tornTail && entries === 0 && cutAt === undefined) {
    await refuseForeignLine(indexFile, reader.validLength, rules.indexPath);
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

/** How every ctnr index line starts, and the original tool's too. */
const ENTRY_START = '{"relpath"';

/**
 * Whether a line's first bytes are those of an entry, or a prefix of them, or zeros: what a
 * crash leaves of a line being appended (a file system may expose unwritten blocks as zeros).
 */
function startsAsEntry(head: string): boolean {
  return ENTRY_START.startsWith(head) || head.startsWith(ENTRY_START) || /^\0+$/.test(head);
}

/**
 * Refuse to cut a torn last line that is the first line of the index and does not start as an
 * entry does: a crash leaves a prefix of an entry, and anything else is a file that is not an
 * index (`--index notes.txt`), which must not lose its only line.
 */
async function refuseForeignLine(file: LayerFile, at: number, indexPath: string): Promise<void> {
  const head = new TextDecoder().decode(
    await file.readAt(at, Math.min(ENTRY_START.length, file.size - at)),
  );
  if (startsAsEntry(head)) return;
  throw new ConflictError(
    `Cannot continue with index "${indexPath}": it is not a ctnr index (its only line is not ` +
      `an entry); refusing to change it (give \`index\` the right file)`,
    { options: ["index"] },
  );
}

/**
 * Refuse an index whose container does not exist: its entries name payloads that are nowhere,
 * and resuming would drop them all. Either the container was moved or removed, or the index
 * belongs to another container.
 */
async function refuseOrphanIndex(container: string, rules: ResumeRules): Promise<void> {
  const info = await Deno.stat(rules.indexPath).catch(() => undefined);
  if (info === undefined || info.size === 0) return;
  throw new ConflictError(
    `Cannot continue with index "${rules.indexPath}": it holds ${info.size} bytes but its ` +
      `container "${container}" does not exist; refusing to change it (give the container ` +
      `it belongs to, or \`fresh\` to start anew)`,
    { options: ["fresh"] },
  );
}

/**
 * Refuse to start anew over a file that is not a container of ours: one is empty, ends with a
 * trailer, or has an index beside it; and an index there must read as one (its first line an
 * entry), or be empty.
 *
 * @throws {ConflictError} naming the file
 */
async function refuseForeign(
  containerExists: boolean,
  container: string,
  indexPath: string,
  indexExists: boolean,
): Promise<void> {
  if (indexExists) await refuseForeignIndex(indexPath);
  if (!containerExists || indexExists) return;
  const access = await openRandomAccess(container);
  try {
    if (access.size === 0) return;
    const trailer = await findTrailer(access).catch(() => null);
    if (trailer !== null) return;
    throw new ConflictError(
      `Cannot start "${container}" anew: it holds ${access.size} bytes and is not a ctnr ` +
        `container (no trailer, no index "${indexPath}"); refusing to overwrite it`,
      { options: ["fresh"] },
    );
  } finally {
    access.close();
  }
}

/** Refuse an index that does not read as one: its first line must be an entry. */
async function refuseForeignIndex(indexPath: string): Promise<void> {
  const access = await openRandomAccess(indexPath);
  try {
    if (access.size === 0) return;
    const reader = new IndexReader(access, { allowTornTail: true, name: `index "${indexPath}"` });
    let why: string | undefined;
    try {
      for await (const _ of reader.records()) return; // one entry: it is an index
      if (!reader.tornTail) return; // empty JSON document
      const first = new TextDecoder().decode(
        await access.readAt(0, Math.min(ENTRY_START.length, access.size)),
      );
      if (startsAsEntry(first)) return;
      why = "its only line is not an entry";
    } catch (error) {
      why = (error as Error).message;
    }
    throw new ConflictError(
      `Cannot start over index "${indexPath}": it is not a ctnr index (${why}); refusing to ` +
        `overwrite it`,
      { options: ["index"] },
    );
  } finally {
    access.close();
  }
}

/**
 * Where a container's committed index is, read only: the index file when it exists, else the
 * container's trailer; `undefined` when neither is there.
 *
 * @param container the container path
 * @param indexPath the index path
 * @returns the file and range of the index lines
 */
export async function findCommittedIndex(
  container: string,
  indexPath: string,
): Promise<CommittedIndex | undefined> {
  // Anything but regular files is refused when the writer opens them.
  const index = await Deno.stat(indexPath).catch(() => undefined);
  if (index !== undefined) {
    return index.isFile ? { path: indexPath, start: 0, length: index.size } : undefined;
  }
  if (!(await Deno.stat(container).then((info) => info.isFile, () => false))) return undefined;
  const access = await openRandomAccess(container);
  try {
    const trailer = await findTrailer(access);
    if (trailer === null) return undefined;
    return { path: container, start: trailer.indexOffset, length: trailer.indexLength };
  } finally {
    access.close();
  }
}

/**
 * Read committed index lines, read only; a torn last line (a crash's) ends them quietly.
 *
 * @param where the file and range, from {@link findCommittedIndex}
 * @returns the records in index order
 * @throws {IndexFormatError} on a line that is not an entry
 */
export async function* readCommittedIndex(where: CommittedIndex): AsyncGenerator<IndexRecord> {
  const access = await openRandomAccess(where.path);
  try {
    const reader = new IndexReader(access, {
      start: where.start,
      length: Math.min(where.length, access.size - where.start),
      allowTornTail: true,
      name: `index "${where.path}"`,
    });
    yield* reader.records();
  } finally {
    access.close();
  }
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
