/**
 * `create`: walk a source folder and append its files to a CTNRv1
 * container, with a rolling NDJSON index, resume after a crash, and an
 * optional trailer (`finalize`).
 *
 * Pipeline: walk (sorted) -> read + hash (+ gzip), several files in flight
 * -> payloads appended in walk order, many small ones per write -> index
 * batch appended only after the container is fsynced -> trailer.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { ConflictError, InterruptedError, SourceError, UsageError } from "./errors.ts";
import { EMPTY_SHA256, encodeEntry, type IndexEntry } from "./format/entry.ts";
import { encodeFooter, encodeTrailerHeader, findTrailer } from "./format/trailer.ts";
import { copyInTurns, PLAIN_COPY_PIECE } from "./io/copy.ts";
import {
  DENO_FILE_LAYER,
  type FileLayer,
  type LayerFile,
  openRandomAccess,
} from "./io/file_layer.ts";
import { readRange } from "./io/random_access.ts";
import { Sha256, sha256Hex, sha256OfRange } from "./io/sha256.ts";
import { IndexReader } from "./format/index_reader.ts";
import { FOLDER, PathGuard } from "./safety/path_guard.ts";
import {
  loadSourceFile,
  type ReadBatch,
  readBatch,
  type ReadBatchResult,
  SMALL_FILE,
  type SourceRead,
} from "./_source_file.ts";
import { WorkerPool } from "./io/worker_pool.ts";
import { StatusFile, type StatusFormat } from "./io/status_file.ts";
import { checkSourceFolder, type WalkEntry, walkTreeBatches } from "./walk.ts";

/** Options of {@link createContainer}. */
export interface CreateOptions {
  /** Path of the NDJSON index. @default container + ".idx" */
  index?: string;
  /** Store each payload as one gzip member. @default false */
  compress?: boolean;
  /** fsync the container after every this many entries. @default 1000 */
  fsyncEvery?: number;
  /** Commit the index every this many entries; at least `fsyncEvery`. @default fsyncEvery */
  indexBatch?: number;
  /**
   * Read size in bytes for files streamed in pieces (minimum 1024). @default 1048576 with
   * `compress`, else 4194304 (lib/io/copy.ts PLAIN_COPY_PIECE)
   */
  chunkSize?: number;
  /** Read, hash and compress, but write no container, index or trailer. @default false */
  dryRun?: boolean;
  /** Embed the index as a trailer when done. @default false */
  finalize?: boolean;
  /** Delete the standalone index after embedding it. @default false */
  removeIndexOnFinalize?: boolean;
  /** Record symlinks as `symlink` entries (`store`) or leave them out with a warning (`skip`). @default "store" */
  symlinks?: "store" | "skip";
  /** Record empty folders as `dir` entries. @default true */
  emptyDirs?: boolean;
  /** Walk first to count files (`count`) or files and bytes (`sizes`) for progress. */
  prescan?: "count" | "sizes";
  /** Status file to rewrite about once a second. */
  statusFile?: string;
  /** Format of the status file. @default "kv" */
  statusFormat?: StatusFormat;
  /** Read workers (0: read on the main thread). @default 1, or 2 with `compress` */
  concurrency?: number;
  /** File layer for the container and index (tests swap it). @default the real one */
  fileLayer?: FileLayer;
  /** Aborting with reason `"SIGINT"` or `"SIGTERM"` commits the batch and throws {@link InterruptedError}. */
  signal?: AbortSignal;
  /** Called for each entry once it is committed to the index. */
  onEntry?: (entry: IndexEntry) => void;
  /** Called after each source item with running totals. */
  onProgress?: (progress: CreateProgress) => void;
  /** Called with warnings (skipped specials and links, torn index repaired, ...). */
  onWarning?: (message: string) => void;
  /** Called for each source file or folder that could not be read; the run goes on. */
  onSourceError?: (error: SourceError) => void;
}

/** Running totals passed to `onProgress`. */
export interface CreateProgress {
  /** Entries handled this run (added or already present). */
  processedFiles: number;
  /** Payload bytes appended this run. */
  bytesWritten: number;
  /** Relpath of the current item. */
  currentFile: string;
  /** Files found by the prescan, when one ran. */
  totalFiles?: number;
  /** Bytes found by the prescan (`sizes`), when one ran. */
  totalBytes?: number;
}

/** Summary of a {@link createContainer} run. */
export interface CreateResult {
  /** Entries added this run. */
  added: number;
  /** Source items already in the index (resume). */
  alreadyPresent: number;
  /** Entries in the index at the end. */
  totalEntries: number;
  /** Payload bytes appended this run (stored size). */
  payloadBytes: number;
  /** Original bytes read this run. */
  origBytes: number;
  /** Special files (FIFO, socket, device) and skipped symlinks left out, with a warning each. */
  leftOut: number;
  /** Source files or folders that could not be read (the container is incomplete). */
  sourceErrors: number;
  /** Files already committed whose size or mtime changed since (the container keeps the old version). */
  staleEntries: number;
  /** Whether the run continued an existing container. */
  resumed: boolean;
  /** Whether the index was embedded as a trailer. */
  finalized: boolean;
  /** Size in bytes of the container at the end (0 in a dry run). */
  containerSize: number;
  /** Path of the index. */
  indexPath: string;
}

const WRITE_BATCH = 4 << 20;

/**
 * Pack the folder `src` into the container file `container`.
 *
 * When the container or its index exists, the run resumes: a torn last
 * index line is repaired, the last committed batch re-hashed, bytes past
 * the last indexed payload (a crash's leftovers or an old trailer) cut
 * away, and entries already indexed skipped.
 *
 * @param src folder to pack
 * @param container container file to write or continue
 * @param options see {@link CreateOptions}
 * @returns a summary of the run
 * @throws {UsageError} when options are out of range
 * @throws {ConflictError} when the container exists but neither index nor trailer describe it
 * @throws {SourceError} when `src` is not a readable folder
 * @throws {InterruptedError} when `signal` aborts; the work so far is committed
 *
 * @example Pack a folder and read back the index
 * ```ts
 * import { createContainer } from "./creator.ts";
 * const src = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${src}/a.txt`, "hello");
 * const out = await Deno.makeTempDir();
 * const result = await createContainer(src, `${out}/c.ctnr`, { finalize: true });
 * if (result.added !== 1 || !result.finalized) throw new Error("unexpected result");
 * await Deno.remove(src, { recursive: true });
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function createContainer(
  src: string,
  container: string,
  options: CreateOptions = {},
): Promise<CreateResult> {
  const settings = checkOptions(container, options);
  await checkSourceFolder(src); // before any file is opened or created
  for (const [what, path] of [["container", container], ["index", settings.indexPath]] as const) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (info !== undefined && !info.isFile) {
      throw new UsageError(`Cannot write ${what} "${path}": it exists and is not a regular file`);
    }
  }
  const layer = options.fileLayer ?? DENO_FILE_LAYER;
  const status = options.statusFile
    ? new StatusFile(options.statusFile, options.statusFormat ?? "kv")
    : undefined;
  const exclude = await excludedPaths([
    container,
    settings.indexPath,
    ...(status?.paths ?? []),
  ], src);

  let totals: { files: number; bytes: number } | undefined;
  if (options.prescan) totals = await prescan(src, exclude, options.prescan === "sizes");

  const result: CreateResult = {
    added: 0,
    alreadyPresent: 0,
    totalEntries: 0,
    payloadBytes: 0,
    origBytes: 0,
    leftOut: 0,
    sourceErrors: 0,
    staleEntries: 0,
    resumed: false,
    finalized: false,
    containerSize: 0,
    indexPath: settings.indexPath,
  };
  const startTime = new Date();
  await status?.update({
    start_time: startTime.toISOString(),
    total_files: totals?.files ?? "",
    total_bytes: totals?.bytes ?? "",
    processed_files: 0,
    bytes_written: 0,
    current_file: "",
    status: "running",
  }, true);

  let state: ResumeState;
  let containerFile: LayerFile | undefined;
  let indexFile: LayerFile | undefined;
  if (settings.dryRun) {
    state = await readResumeState(container, settings, layer, options, true);
  } else {
    await Deno.mkdir(dirname(resolve(container)), { recursive: true });
    await Deno.mkdir(dirname(resolve(settings.indexPath)), { recursive: true });
    state = await readResumeState(container, settings, layer, options, false);
    containerFile = state.containerFile;
    indexFile = state.indexFile;
  }
  result.resumed = state.entries > 0;
  result.totalEntries = state.entries;

  const spare = new SpareBuffers();
  const writer = new BatchWriter(
    containerFile,
    indexFile,
    state.payloadEnd,
    settings,
    options,
    spare,
  );
  let interrupted: "SIGINT" | "SIGTERM" | undefined;
  try {
    const walk = walkTreeBatches(src, {
      exclude,
      linksLeftOut: settings.symlinks === "skip",
      onError: (error) => {
        result.sourceErrors++;
        options.onSourceError?.(error);
      },
    });
    const loaded = loadSources(
      walk,
      state.committed,
      settings,
      options.concurrency ?? defaultWorkers(settings.compress),
      spare,
    );
    let processed = 0;
    reading: for await (const items of loaded) {
      for (const item of items) {
        if (options.signal?.aborted) {
          interrupted = options.signal.reason === "SIGTERM" ? "SIGTERM" : "SIGINT";
          break reading;
        }
        if (item === null) {
          result.alreadyPresent++;
          processed++;
          continue;
        }
        if ("error" in item) {
          result.sourceErrors++;
          options.onSourceError?.(item.error);
          continue;
        }
        if ("stale" in item) {
          result.alreadyPresent++;
          result.staleEntries++;
          processed++;
          options.onWarning?.(item.stale);
          continue;
        }
        if ("leftOut" in item) {
          result.leftOut++;
          options.onWarning?.(item.leftOut);
          continue;
        }
        // Only a resume can clash: one walk never yields two equal or nested-in-a-file paths.
        const clash = state.entries === 0
          ? undefined
          : state.committed.admit(item.walk.relpath, item.walk.kind === "dir" ? FOLDER : LINK);
        if (clash !== undefined) {
          // On resume the tree can have changed: a folder where a file was committed, an NFC twin.
          result.sourceErrors++;
          options.onSourceError?.(
            new SourceError(
              `Cannot store "${item.walk.relpath}": ${clash} already in the container; ` +
                `rename it, or pack into a new container`,
            ),
          );
          continue;
        }
        let entry: IndexEntry;
        try {
          const added = writer.add(item);
          entry = added instanceof Promise ? await added : added;
        } catch (error) {
          if (!(error instanceof SourceError)) throw error;
          result.sourceErrors++;
          options.onSourceError?.(error);
          continue;
        }
        result.added++;
        result.payloadBytes += entry.payloadSize;
        result.origBytes += entry.origSize;
        processed++;
        const progress: CreateProgress = {
          processedFiles: processed,
          bytesWritten: result.payloadBytes,
          currentFile: entry.relpath,
        };
        if (totals) {
          progress.totalFiles = totals.files;
          progress.totalBytes = totals.bytes;
        }
        options.onProgress?.(progress);
        if (status) {
          const elapsed = (Date.now() - startTime.getTime()) / 1000;
          const speed = elapsed > 0 ? Math.round(result.payloadBytes / elapsed) : 0;
          await status.update({
            processed_files: processed,
            bytes_written: result.payloadBytes,
            current_file: entry.relpath,
            speed_bps: speed,
            eta_seconds: totals && speed > 0
              ? Math.max(0, Math.round((totals.bytes - result.origBytes) / speed))
              : "",
          });
        }
      }
    }
    await writer.commit();
  } finally {
    await writer.close().catch(() => {});
  }
  result.totalEntries += result.added;
  if (interrupted) {
    containerFile?.close();
    indexFile?.close();
    await status?.update({ status: "interrupted", finished_time: new Date().toISOString() }, true);
    throw new InterruptedError(interrupted);
  }
  try {
    if (options.finalize && containerFile && indexFile) {
      await appendTrailer(containerFile, indexFile);
      result.finalized = true;
    }
    result.containerSize = containerFile?.size ?? 0;
  } finally {
    containerFile?.close();
    indexFile?.close();
  }
  if (result.finalized && options.removeIndexOnFinalize) await layer.remove(settings.indexPath);
  await status?.update({
    status: "finished",
    processed_files: result.added + result.alreadyPresent,
    bytes_written: result.payloadBytes,
    current_file: "",
    finished_time: new Date().toISOString(),
  }, true);
  return result;
}

/** Options of {@link finalizeContainer}. */
export interface FinalizeOptions {
  /** Path of the index. @default container + ".idx" */
  index?: string;
  /** Delete the standalone index afterwards. @default false */
  removeIndex?: boolean;
  /** File layer (tests swap it). */
  fileLayer?: FileLayer;
}

/**
 * Embed an existing index into its container as a trailer (`--finalize-only`).
 * Idempotent: a container whose trailer already stands exactly at the end
 * of its indexed payloads is left as it is.
 *
 * @param container the container file
 * @param options index path and whether to remove it
 * @returns `true` when a trailer was written, `false` when one was already there
 * @throws {ConflictError} when the index or container is missing, or the container
 *   is shorter than its index says
 */
export async function finalizeContainer(
  container: string,
  options: FinalizeOptions = {},
): Promise<boolean> {
  const indexPath = options.index ?? container + ".idx";
  const layer = options.fileLayer ?? DENO_FILE_LAYER;
  if (!(await exists(container))) {
    throw new ConflictError(`Cannot finalize "${container}": container not found`);
  }
  if (!(await exists(indexPath))) {
    // Finalized with --remove-index-on-finalize: the trailer is there already.
    const access = await openRandomAccess(container);
    try {
      if (await findTrailer(access) !== null) return false;
    } finally {
      access.close();
    }
    throw new ConflictError(`Cannot finalize "${container}": index "${indexPath}" not found`);
  }
  const indexFile = await layer.open(indexPath);
  const containerFile = await layer.open(container);
  let written = false;
  try {
    const reader = new IndexReader(indexFile, { name: `index "${indexPath}"` });
    let payloadEnd = 0;
    for await (const { entry } of reader.records()) {
      payloadEnd = Math.max(payloadEnd, entry.offset + entry.payloadSize);
    }
    if (containerFile.size < payloadEnd) {
      throw new ConflictError(
        `Cannot finalize "${container}": it has ${containerFile.size} bytes but its index ` +
          `needs ${payloadEnd}`,
      );
    }
    const existing = await findTrailer(containerFile, { at: payloadEnd });
    if (existing === null) {
      if (containerFile.size > payloadEnd) await containerFile.truncate(payloadEnd);
      await appendTrailer(containerFile, indexFile);
      written = true;
    }
  } finally {
    containerFile.close();
    indexFile.close();
  }
  if (options.removeIndex) await layer.remove(indexPath);
  return written;
}

// ---------------------------------------------------------------------------

interface Settings {
  indexPath: string;
  compress: boolean;
  fsyncEvery: number;
  indexBatch: number;
  chunkSize: number;
  /** Piece size of uncompressed large files: `chunkSize` when given, else {@link PLAIN_COPY_PIECE}. */
  copySize: number;
  dryRun: boolean;
  symlinks: "store" | "skip";
  emptyDirs: boolean;
}

function checkOptions(container: string, options: CreateOptions): Settings {
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new UsageError(`Option ${name} must be a positive integer, got ${value}`, {
        options: [name],
      });
    }
    return v;
  };
  const fsyncEvery = positive("fsyncEvery", options.fsyncEvery, 1000);
  const indexBatch = positive("indexBatch", options.indexBatch, fsyncEvery);
  if (indexBatch < fsyncEvery) {
    throw new UsageError(
      `Option indexBatch (${indexBatch}) must not be smaller than fsyncEvery ` +
        `(${fsyncEvery}): index entries would be committed before their payloads are durable`,
      { options: ["indexBatch", "fsyncEvery"] },
    );
  }
  const chunkSize = positive("chunkSize", options.chunkSize, 1 << 20);
  if (chunkSize < 1024) {
    throw new UsageError(`Option chunkSize must be at least 1024 bytes, got ${chunkSize}`, {
      options: ["chunkSize"],
    });
  }
  return {
    indexPath: options.index ?? container + ".idx",
    compress: options.compress ?? false,
    fsyncEvery,
    indexBatch,
    chunkSize,
    copySize: options.chunkSize ?? PLAIN_COPY_PIECE,
    dryRun: options.dryRun ?? false,
    symlinks: options.symlinks ?? "store",
    emptyDirs: options.emptyDirs ?? true,
  };
}

/** Absolute spellings, as the walk builds them, of files that must never be packed. */
async function excludedPaths(paths: string[], src: string): Promise<Set<string>> {
  const set = new Set<string>();
  const root = resolve(src);
  let realRoot = root;
  try {
    realRoot = await Deno.realPath(root);
  } catch { /* reported by the walk */ }
  for (const path of paths) {
    const absolute = resolve(path);
    let real = absolute;
    try {
      real = `${await Deno.realPath(dirname(absolute))}/${absolute.split("/").pop()}`;
    } catch { /* parent missing: cannot be inside src */ }
    for (const candidate of [absolute, real]) {
      for (const base of [realRoot, root]) {
        if (candidate.startsWith(base + "/")) {
          set.add(`${src.replace(/\/+$/, "") || ""}/${candidate.slice(base.length + 1)}`);
        }
      }
    }
  }
  return set;
}

async function prescan(
  src: string,
  exclude: Set<string>,
  sizes: boolean,
): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for await (const batch of walkTreeBatches(src, { exclude })) {
    for (const item of batch) {
      if (item.kind === "special") continue;
      files++;
      if (sizes && item.kind === "file") {
        try {
          bytes += Deno.lstatSync(item.path).size;
        } catch { /* reported when it is read */ }
      }
    }
  }
  return { files, bytes };
}

// ---------------------------------------------------------------------------
// Resume

interface ResumeState {
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

async function readResumeState(
  container: string,
  settings: Settings,
  layer: FileLayer,
  options: CreateOptions,
  dryRun: boolean,
): Promise<ResumeState> {
  const indexExists = await exists(settings.indexPath);
  const containerExists = await exists(container);
  if (dryRun && !containerExists && !indexExists) {
    return { committed: new PathGuard(), entries: 0, payloadEnd: 0 };
  }
  if (dryRun) {
    // Read what is there without repairing or cutting anything: the index file, else the trailer.
    const committed = new PathGuard();
    let entries = 0;
    let payloadEnd = 0;
    const access = await openRandomAccess(indexExists ? settings.indexPath : container);
    try {
      const trailer = indexExists ? null : await findTrailer(access);
      if (indexExists || trailer !== null) {
        const reader = new IndexReader(
          access,
          trailer
            ? { start: trailer.indexOffset, length: trailer.indexLength }
            : { allowTornTail: true },
        );
        for await (const { entry } of reader.records()) {
          committed.admit(entry.relpath, fingerprint(entry));
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
    const emptyIndex = indexExists && (await Deno.stat(settings.indexPath)).size === 0;
    if (!indexExists || emptyIndex) {
      // A missing index must be recovered from the trailer (or the run refused). An empty one
      // is what a crash before the first index commit leaves (the index file is created, and
      // its name fsynced, before any payload is written): without a trailer, start over.
      if (containerFile.size > 0 && !(emptyIndex && await findTrailer(containerFile) === null)) {
        await recoverIndexFromTrailer(containerFile, container, settings, layer);
      }
    }
    indexFile = await layer.open(settings.indexPath);
    // New files: make their names durable too (fsync of the folder that holds them).
    if (!containerExists) await layer.syncFolder(dirname(resolve(container)));
    if (!indexExists) await layer.syncFolder(dirname(resolve(settings.indexPath)));
    const state = await scanIndex(indexFile, containerFile, settings, options);
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
  settings: Settings,
  layer: FileLayer,
): Promise<void> {
  const trailer = await findTrailer(containerFile);
  if (trailer === null) {
    throw new ConflictError(
      `Cannot continue "${container}": it holds ${containerFile.size} bytes but has no index ` +
        `"${settings.indexPath}" and no trailer; refusing to overwrite it (give --index, or a new container path)`,
    );
  }
  // Copy the embedded index out, durably (its bytes fsynced before the rename gives it its
  // name), before anything else changes. The caller fsyncs the folder once the index is open.
  const tmp = `${settings.indexPath}.ctnr-tmp`;
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
  await layer.rename(tmp, settings.indexPath);
}

async function scanIndex(
  indexFile: LayerFile,
  containerFile: LayerFile,
  settings: Settings,
  options: CreateOptions,
): Promise<Omit<ResumeState, "containerFile" | "indexFile">> {
  const committed = new PathGuard(false, PathGuard.expectedEntries(indexFile.size));
  if (indexFile.size === 0) {
    if (containerFile.size > 0) {
      // Payloads written, no entry committed: a crash before the first index batch.
      options.onWarning?.(`Cutting ${containerFile.size} unindexed bytes from the container`);
      await containerFile.truncate(0);
    }
    return { committed, entries: 0, payloadEnd: 0 };
  }
  const reader = new IndexReader(indexFile, {
    allowTornTail: true,
    name: `index "${settings.indexPath}"`,
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
      committed.admit(entry.relpath, fingerprint(entry));
      entries++;
      payloadEnd = Math.max(payloadEnd, end);
      recent.push({ entry, startOffset: previousEnd });
      if (recent.length > settings.indexBatch) recent.shift();
    }
    previousEnd = record.endOffset;
  }
  if (document) {
    throw new ConflictError(
      `Cannot continue with index "${settings.indexPath}": it is a JSON array/object, not NDJSON; ` +
        `convert it first`,
    );
  }
  if (reader.tornTail) {
    options.onWarning?.(
      `Repaired a torn last line of index "${settings.indexPath}" (cut at byte ${reader.validLength})`,
    );
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
    options.onWarning?.(
      `Dropping index entries from byte ${cut} of "${settings.indexPath}": their payloads ` +
        `are missing or do not verify; they will be written again`,
    );
    await indexFile.truncate(cut);
    return await scanIndex(indexFile, containerFile, settings, options);
  }
  if (containerFile.size > payloadEnd) {
    const trailer = await findTrailer(containerFile, { at: payloadEnd });
    options.onWarning?.(
      trailer
        ? `Removing the trailer to append to the finalized container`
        : `Cutting ${containerFile.size - payloadEnd} bytes past the last indexed payload`,
    );
    await containerFile.truncate(payloadEnd);
  }
  return { committed, entries, payloadEnd };
}

async function payloadMatches(file: LayerFile, entry: IndexEntry): Promise<boolean> {
  return await sha256OfRange(file, entry.offset, entry.payloadSize) === entry.sha256;
}

// ---------------------------------------------------------------------------
// Reading sources

type LoadedItem =
  | { error: SourceError }
  | { leftOut: string }
  | { stale: string }
  | ReadyItem;

/** A source item ready to append: small files carry their payload, large ones are streamed. */
interface ReadyItem {
  walk: WalkEntry;
  /** Size in bytes of the original file (from fstat of the open file). */
  size?: number;
  payload?: Uint8Array;
  sha256?: string;
  origSha256?: string;
}

/** Most files in a read batch: 256 (100,000 x 4 KiB: 1.41 s, against 1.61 s with 64). */
const BATCH_FILES = 256;
/** Bytes a read batch aims at; it reads at most twice this, the rest is streamed. */
const BATCH_BYTES = 1 << 20;
const WORKER_THRESHOLD = 512;

/**
 * Load the walk's items in order, in batches, `null` for those already in
 * the index. Small files are read in batches by a pool of read workers, up
 * to eight batches a worker in flight, while the main thread walks and
 * writes; the first 512 files are read on the main thread, so small trees
 * do not pay for starting a worker. A batch holds up to 256 files, fewer
 * when the files read so far average more than 4 KiB (about 1 MiB a
 * batch), and reads at most 2 MiB: the files past that are streamed.
 */
async function* loadSources(
  walk: AsyncIterable<WalkEntry[]>,
  committed: PathGuard,
  settings: Settings,
  workers: number,
  spare: SpareBuffers,
): AsyncGenerator<(LoadedItem | null)[]> {
  let pool: WorkerPool<ReadBatch, ReadBatchResult> | undefined;
  const queue: Promise<(LoadedItem | null)[]>[] = [];
  let batch: WalkEntry[] = [];
  let values: (number | undefined)[] = []; // each item's committed value, looked up once
  let files = 0;
  const sizes = { files: 0, bytes: 0 }; // of the small files read so far
  let batchFiles = BATCH_FILES;
  const send = () => {
    const items = batch;
    const committedValues = values;
    batch = [];
    values = [];
    if (pool === undefined && workers > 0 && files > WORKER_THRESHOLD) {
      pool = new WorkerPool(new URL("./_create_worker.ts", import.meta.url), workers);
    }
    const pending = loadBatch(items, committedValues, settings, pool, sizes, spare);
    if (sizes.files > 0) {
      const average = Math.max(1, sizes.bytes / sizes.files);
      batchFiles = Math.max(16, Math.min(BATCH_FILES, Math.floor(BATCH_BYTES / average)));
    }
    pending.catch(() => {}); // rethrown when its turn comes
    queue.push(pending);
  };
  try {
    for await (const walked of walk) {
      for (const item of walked) {
        const value = committed.size === 0 ? undefined : committed.get(item.relpath);
        batch.push(item);
        values.push(value);
        // Committed files are not read: only the others count towards starting the workers.
        if (item.kind === "file" && value === undefined) files++;
        if (batch.length >= batchFiles) send();
      }
      while (queue.length > Math.max(2, 8 * workers)) yield await queue.shift()!;
    }
    if (batch.length > 0) send();
    while (queue.length > 0) yield await queue.shift()!;
  } finally {
    pool?.terminate();
  }
}

/**
 * One read worker by default: on this project's 2-core machine a second one
 * gains nothing measurable for plain payloads (the kernel's open/read path
 * does not scale there) and costs about 40 MiB of RSS (bench/compare.ts,
 * bench/rss_1m.ts). With `compress`, the work is deflate, which does scale:
 * two workers.
 */
function defaultWorkers(compress: boolean): number {
  return compress ? 2 : 1;
}

async function loadBatch(
  items: WalkEntry[],
  committedValues: (number | undefined)[],
  settings: Settings,
  pool: WorkerPool<ReadBatch, ReadBatchResult> | undefined,
  sizes: { files: number; bytes: number },
  spare: SpareBuffers,
): Promise<(LoadedItem | null)[]> {
  const out: (LoadedItem | null)[] = items.map((item, i) => {
    const value = committedValues[i];
    return value === undefined ? prepare(item, settings) : staleCheck(item, value);
  });
  const files: number[] = [];
  items.forEach((item, i) => {
    // Only files not yet committed are read; committed ones were checked by staleCheck.
    if (item.kind === "file" && out[i] !== null && !("stale" in out[i]!)) files.push(i);
  });
  if (files.length === 0) return out;
  const paths = files.map((i) => items[i]!.path);
  const request: ReadBatch = {
    paths: paths.join("\0"),
    compress: settings.compress,
    budget: 2 * BATCH_BYTES,
  };
  const buffer = spare.take();
  if (buffer !== undefined) request.buffer = buffer;
  const reads = unpackReads(
    pool ? await pool.run(request, buffer ? [buffer] : []) : readBatch(request),
    settings.compress,
  );
  for (const read of reads) {
    if (read.kind !== "small") continue;
    sizes.files++;
    sizes.bytes += read.size;
  }
  if (sizes.files > 4096) {
    // Recent files weigh more: a tree whose files grow deeper in gets smaller batches soon.
    sizes.files /= 2;
    sizes.bytes /= 2;
  }
  files.forEach((i, k) => {
    const item = items[i]!;
    const read = reads[k]!;
    if (read.kind === "error") {
      out[i] = { error: new SourceError(`Cannot read "${item.relpath}": ${read.message}`) };
    } else if (read.kind === "special") {
      out[i] = { leftOut: `Left out special file "${item.relpath}" (FIFO, socket or device)` };
    } else if (read.kind === "large") {
      out[i] = { walk: { ...item, mode: read.mode, mtime: read.mtime } };
    } else {
      const ready: ReadyItem = {
        walk: { ...item, mode: read.mode, mtime: read.mtime },
        size: read.size,
        payload: read.payload,
        sha256: read.sha256,
      };
      if (read.origSha256 !== undefined) ready.origSha256 = read.origSha256;
      out[i] = ready;
    }
  });
  return out;
}

/** Rebuild the per-file results of a read worker from its packed form. */
function unpackReads(packed: ReadBatchResult, compressed: boolean): SourceRead[] {
  const { numbers, sha256, payloads, errors } = packed;
  const reads: SourceRead[] = [];
  let digest = 0;
  let offset = 0;
  let error = 0;
  for (let at = 0; at < numbers.length; at += 5) {
    const kind = numbers[at];
    const mode = numbers[at + 1]!;
    const mtime = numbers[at + 2]!;
    if (kind === 0) {
      const size = numbers[at + 3]!;
      const storedLength = numbers[at + 4]!;
      const read: SourceRead = {
        kind: "small",
        mode,
        mtime,
        size,
        payload: payloads.subarray(offset, offset + storedLength),
        sha256: "",
      };
      offset += storedLength;
      if (compressed) {
        read.sha256 = sha256.slice(digest, digest + 64);
        read.origSha256 = sha256.slice(digest + 64, digest + 128);
        digest += 128;
      } else read.sha256 = sha256Hex(read.payload);
      reads.push(read);
    } else if (kind === 1) reads.push({ kind: "large", mode, mtime });
    else if (kind === 2) reads.push({ kind: "special" });
    else reads.push({ kind: "error", message: errors[error++] ?? "unreadable" });
  }
  return reads;
}

/** The value of a committed link (folders are {@link FOLDER}, files 2 and up). */
const LINK = 1;

/**
 * The value a committed entry is kept with: {@link FOLDER} for a folder,
 * {@link LINK} for a link, and for a file a 32-bit fingerprint of its size
 * and mtime with bit 1 set (bit 0 says whether the mtime is part of it).
 */
function fingerprint(entry: { entryType?: string; origSize: number; mtime?: number }): number {
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

/** `null` when an already-committed file is unchanged on disk, else a report that it changed. */
function staleCheck(item: WalkEntry, committed: number): LoadedItem | null {
  if (item.kind !== "file" || committed < 2) return null; // committed as a folder or link
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(item.path);
  } catch {
    return null; // gone since the walk listed it: nothing to compare
  }
  const now = { origSize: info.size } as { origSize: number; mtime?: number };
  if ((committed & 1) === 1) now.mtime = (info.mtime?.getTime() ?? 0) / 1000;
  if (fingerprint(now) === committed) return null;
  return {
    stale: `"${item.relpath}" changed since it was committed (size or mtime differ); ` +
      `the container keeps its older version`,
  };
}

/** What a non-file item becomes (files are a placeholder until read). */
function prepare(item: WalkEntry, settings: Settings): LoadedItem {
  if (item.kind === "special") {
    return { leftOut: `Left out special file "${item.relpath}" (FIFO, socket or device)` };
  }
  if (item.kind === "symlink" && settings.symlinks === "skip") {
    return { leftOut: `Left out symlink "${item.relpath}" -> "${item.linkTarget}"` };
  }
  if (item.kind === "dir" && !settings.emptyDirs) {
    return { leftOut: `Left out empty folder "${item.relpath}"` };
  }
  return { walk: item };
}

// ---------------------------------------------------------------------------
// Writing

/** Payload buffers whose bytes are written, for the next read batches to fill. */
class SpareBuffers {
  #free: ArrayBuffer[] = [];

  /** Keep `buffer` for reuse when it is big enough to be worth it (a read batch's size). */
  put(buffer: ArrayBufferLike): void {
    if (
      buffer instanceof ArrayBuffer && !buffer.detached && buffer.byteLength >= MIN_SPARE &&
      this.#free.length < 16
    ) this.#free.push(buffer);
  }

  /** A buffer to fill, or `undefined`; once taken it is the taker's (transferred, or refilled). */
  take(): ArrayBuffer | undefined {
    return this.#free.pop();
  }
}

/** Smallest buffer kept for reuse: a compressed read batch starts at 64 KiB. */
const MIN_SPARE = 64 << 10;

class BatchWriter {
  #container: LayerFile | undefined;
  #index: LayerFile | undefined;
  #offset: number;
  #settings: Settings;
  #options: CreateOptions;
  /** Payloads waiting to be written, adjacent ones merged (a read worker's batch is one). */
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #lines: string[] = [];
  #entries: IndexEntry[] = [];
  #sinceSync = 0;
  #spare: SpareBuffers;
  /** The buffer of the last payload written: later payloads may still lie in it. */
  #lastBuffer: ArrayBufferLike | undefined;

  constructor(
    container: LayerFile | undefined,
    index: LayerFile | undefined,
    offset: number,
    settings: Settings,
    options: CreateOptions,
    spare: SpareBuffers,
  ) {
    this.#spare = spare;
    this.#container = container;
    this.#index = index;
    this.#offset = offset;
    this.#settings = settings;
    this.#options = options;
  }

  /**
   * Append one item: its payload to the write buffer, its line to the pending index batch.
   * Synchronous (no promise to await) unless the buffer must be written, the container
   * fsynced, the index batch committed or a large file streamed: per file, an await costs
   * about as much as copying its 4 KiB.
   */
  add(item: ReadyItem): IndexEntry | Promise<IndexEntry> {
    const payload = item.payload;
    if (
      (item.walk.kind === "file" &&
        (payload === undefined || this.#buffered + payload.length > WRITE_BATCH)) ||
      this.#sinceSync + 1 >= this.#settings.fsyncEvery ||
      this.#lines.length + 1 >= this.#settings.indexBatch
    ) return this.#addAsync(item);
    const entry = this.#entryOf(item);
    if (payload !== undefined) this.#hold(payload);
    this.#sinceSync++;
    this.#lines.push(encodeEntry(entry));
    if (this.#options.onEntry) this.#entries.push(entry); // held for onEntry until committed
    return entry;
  }

  /** The index entry of an item, its file payload placed at the end of the write buffer. */
  #entryOf(item: ReadyItem): IndexEntry {
    const walk = item.walk;
    const entry: IndexEntry = {
      relpath: walk.relpath,
      entryType: walk.kind === "symlink" ? "symlink" : walk.kind === "dir" ? "dir" : "file",
      offset: 0,
      payloadSize: 0,
      origSize: 0,
      sha256: EMPTY_SHA256,
      compressed: false,
    };
    if (walk.kind === "file") {
      entry.offset = this.#offset + this.#buffered;
      entry.compressed = this.#settings.compress;
      if (item.payload) {
        entry.payloadSize = item.payload.length;
        entry.origSize = item.size!;
        entry.sha256 = item.sha256!;
        if (item.origSha256) entry.origSha256 = item.origSha256;
      }
    } else if (walk.kind === "symlink") {
      entry.linkTarget = walk.linkTarget!;
    }
    if (walk.mode !== undefined && walk.kind !== "symlink") entry.mode = walk.mode;
    if (walk.mtime !== undefined) entry.mtime = walk.mtime;
    return entry;
  }

  async #addAsync(item: ReadyItem): Promise<IndexEntry> {
    const walk = item.walk;
    if (walk.kind === "file") {
      if (item.payload) {
        if (this.#buffered + item.payload.length > WRITE_BATCH) await this.#flush();
      } else await this.#flush();
    }
    const entry = this.#entryOf(item);
    if (walk.kind === "file") {
      if (item.payload) {
        await this.#put(item.payload);
      } else {
        try {
          Object.assign(entry, await this.#stream(walk));
        } catch (error) {
          // Take back the bytes of the file that failed, so no payload lacks an entry.
          if (this.#container && this.#container.size > entry.offset) {
            await this.#container.truncate(entry.offset);
          }
          this.#offset = entry.offset;
          throw error;
        }
      }
    }
    this.#lines.push(encodeEntry(entry));
    if (this.#options.onEntry) this.#entries.push(entry); // held for onEntry until committed
    if (++this.#sinceSync >= this.#settings.fsyncEvery) {
      await this.#flush();
      await this.#container?.sync();
      this.#sinceSync = 0;
    }
    if (this.#lines.length >= this.#settings.indexBatch) await this.commit();
    return entry;
  }

  /** Make every payload durable, then append and fsync the pending index lines. */
  async commit(): Promise<void> {
    await this.#flush();
    if (this.#lines.length === 0) return;
    if (this.#container && this.#index) {
      await this.#container.sync();
      this.#sinceSync = 0;
      await this.#index.append(new TextEncoder().encode(this.#lines.join("")));
      await this.#index.sync();
    }
    for (const entry of this.#entries) this.#options.onEntry?.(entry);
    this.#lines = [];
    this.#entries = [];
  }

  async close(): Promise<void> {
    await this.commit();
  }

  async #put(bytes: Uint8Array): Promise<void> {
    if (this.#buffered + bytes.length > WRITE_BATCH) await this.#flush();
    if (bytes.length > WRITE_BATCH) {
      await this.#write(bytes);
      return;
    }
    this.#hold(bytes);
  }

  /**
   * Keep `bytes` for the next write, without copying: a payload that follows the previous one
   * in the same buffer (as a read worker packs them) extends it (100,000 x 4 KiB: the copy
   * this replaces cost about 0.1 s).
   */
  #hold(bytes: Uint8Array): void {
    this.#buffered += bytes.length;
    const last = this.#chunks.at(-1);
    if (
      last !== undefined && last.buffer === bytes.buffer &&
      last.byteOffset + last.length === bytes.byteOffset
    ) {
      this.#chunks[this.#chunks.length - 1] = new Uint8Array(
        last.buffer,
        last.byteOffset,
        last.length + bytes.length,
      );
    } else this.#chunks.push(bytes);
  }

  async #flush(): Promise<void> {
    if (this.#buffered === 0) return;
    const chunks = this.#chunks;
    const length = this.#buffered;
    this.#chunks = [];
    this.#buffered = 0;
    if (chunks.length <= 8) {
      for (const chunk of chunks) await this.#write(chunk);
    } else {
      // Many separate payloads (read on this thread): one copy, one write.
      const bytes = new Uint8Array(length);
      let at = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
      await this.#write(bytes);
    }
    this.#recycle(chunks);
  }

  /**
   * Hand the buffers of written payloads back to the read workers, to be filled again: a fresh
   * megabyte per read batch was zero-filled, and the garbage collector ran a full collection
   * about every 80 ms to free them (100,000 x 4 KiB). The buffer of the last payload is kept
   * until a later write: the rest of its read batch may not have been added yet, and those
   * payloads are views into it.
   */
  #recycle(chunks: Uint8Array[]): void {
    const last = chunks.at(-1)!.buffer;
    const done = new Set<ArrayBufferLike>(chunks.map((chunk) => chunk.buffer));
    if (this.#lastBuffer !== undefined) done.add(this.#lastBuffer);
    done.delete(last);
    for (const buffer of done) this.#spare.put(buffer);
    this.#lastBuffer = last;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    if (this.#container) await this.#container.append(bytes);
    this.#offset += bytes.length;
  }

  /** Stream a large file in `chunkSize` pieces, hashing (and gzipping) as it goes. */
  async #stream(walk: WalkEntry): Promise<Partial<IndexEntry>> {
    const hash = new Sha256();
    const compress = this.#settings.compress;
    const origHash = compress ? new Sha256() : undefined;
    let origSize = 0;
    let payloadSize = 0;
    const file = await Deno.open(walk.path, { read: true }).catch((error) => {
      throw new SourceError(`Cannot read "${walk.relpath}": ${(error as Error).message}`, {
        cause: error,
      });
    });
    const chunkSize = this.#settings.chunkSize;
    const before = await file.stat();
    if (compress && before.size <= SMALL_FILE) {
      // A small file left to this path by a read batch's byte budget: gzipped whole, as the
      // read workers do, so that its bytes do not depend on which path read it.
      file.close();
      const read = loadSourceFile(walk.path, true);
      if (read.kind === "small") {
        await this.#write(read.payload);
        return {
          payloadSize: read.payload.length,
          origSize: read.size,
          sha256: read.sha256,
          origSha256: read.origSha256!,
        };
      }
      const why = read.kind === "error"
        ? read.message
        : read.kind === "special"
        ? "it is no longer a regular file"
        : "it grew past 256 KiB while being packed";
      throw new SourceError(`Cannot read "${walk.relpath}": ${why}`);
    }
    if (!compress) {
      try {
        // No larger than the file needs (one byte more shows growth in the same call).
        const pieceSize = Math.min(this.#settings.copySize, Math.max(1024, before.size + 1));
        ({ origSize, payloadSize } = await this.#copyPlain(file, pieceSize, hash));
        await checkUnchanged(file, walk, before, origSize);
      } finally {
        file.close();
      }
      return { payloadSize, origSize, sha256: hash.digest() };
    }
    const source = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const buffer = new Uint8Array(chunkSize);
        const n = await file.read(buffer);
        if (n === null) {
          controller.close();
          return;
        }
        const bytes = buffer.subarray(0, n);
        origSize += n;
        origHash?.update(bytes);
        controller.enqueue(bytes);
      },
      cancel() {},
      // Two chunks read ahead: the next read runs while this one is hashed and written.
    }, { highWaterMark: 2 });
    try {
      const stored = this.#settings.compress
        ? source.pipeThrough(
          new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
        )
        : source;
      for await (const piece of stored) {
        // The write runs on Deno's I/O threads while this thread hashes the same bytes.
        const written = this.#write(piece);
        hash.update(piece);
        payloadSize += piece.length;
        await written;
      }
      await checkUnchanged(file, walk, before, origSize);
    } finally {
      file.close();
    }
    const result: Partial<IndexEntry> = { payloadSize, origSize, sha256: hash.digest() };
    if (origHash) result.origSha256 = origHash.digest();
    return result;
  }

  /** Copy a file's bytes to the container as they are, hashing them as they pass. */
  async #copyPlain(
    file: Deno.FsFile,
    chunkSize: number,
    hash: Sha256,
  ): Promise<{ origSize: number; payloadSize: number }> {
    const size = await copyInTurns(
      chunkSize,
      async (into) => {
        const n = await file.read(into);
        return n === null ? null : into.subarray(0, n);
      },
      (piece) => {
        const written = this.#write(piece); // on Deno's I/O threads while this thread hashes
        hash.update(piece);
        return written;
      },
    );
    return { origSize: size, payloadSize: size };
  }
}

/** Fail when a file changed while it was streamed (size or mtime differ from before). */
async function checkUnchanged(
  file: Deno.FsFile,
  walk: WalkEntry,
  before: Deno.FileInfo,
  read: number,
): Promise<void> {
  const after = await file.stat();
  if (
    after.size !== read || before.size !== read ||
    after.mtime?.getTime() !== before.mtime?.getTime()
  ) {
    throw new SourceError(
      `Cannot read "${walk.relpath}": it changed while being read (size ${before.size} -> ` +
        `${after.size}, ${read} bytes read)`,
    );
  }
}

async function appendTrailer(container: LayerFile, index: LayerFile): Promise<void> {
  const length = index.size;
  await container.append(encodeTrailerHeader(length));
  for await (const bytes of readRange(index, 0, length)) await container.append(bytes);
  await container.append(encodeFooter(length));
  await container.sync();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
