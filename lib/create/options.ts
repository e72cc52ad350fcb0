/**
 * The options of `create`, their defaults and checks, and what a run reports.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { PLAIN_COPY_PIECE } from "../io/copy.ts";
import type { FileLayer } from "../io/file_layer.ts";
import type { StatusFormat } from "../io/status_file.ts";
import type { WarningHandler } from "../warnings.ts";
import type { SourceError } from "../errors.ts";
import type { PrescanTotals } from "./walk.ts";

/** Options of `createContainer`. */
export interface CreateOptions {
  /** Path of the NDJSON index; not the container itself (`UsageError`). @default container + ".idx" */
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
  /**
   * Start the container anew (CLI `--new`): its committed entries and payloads are dropped,
   * and the source packed from scratch. Only over a container of ctnr's (empty, ending with
   * a trailer, or with its index beside it) and an index that reads as one; anything else is
   * refused with a `ConflictError` and left unchanged. @default false
   */
  fresh?: boolean;
  /**
   * Add a source that shares no relpath with the entries committed in an existing container
   * (CLI `--append`). Without it such a run is refused with a `ConflictError` before anything
   * is written: another tree packed into an existing container name would merge into it.
   * @default false
   */
  append?: boolean;
  /** Delete the standalone index after embedding it. @default false */
  removeIndexOnFinalize?: boolean;
  /** Record symlinks as `symlink` entries (`store`) or leave them out with a warning (`skip`). @default "store" */
  symlinks?: "store" | "skip";
  /** Record empty folders as `dir` entries. @default true */
  emptyDirs?: boolean;
  /**
   * Record a `dir` entry for each folder whose permission bits are not 0755 (before its
   * contents), so `extract` restores its mode: a 0700 folder stays private. `false` leaves
   * them out with a warning each (`--compat`: the original extractor reads no folder entries).
   * @default true
   */
  folderModes?: boolean;
  /**
   * Patterns (`--include`): when given, only the source items they select are stored, with the
   * folders on the way to them (a folder's entry, for its mode or as an empty folder, only when
   * it is selected or holds something selected). Rules in lib/selection.ts and the README
   * ("Selecting entries"): a pattern without `/` matches a name at any depth, one with `/` the
   * relpath from the root (a leading `/` or `./` anchors), a match on a folder selects its
   * subtree, `*` stays within a name and `**` crosses `/`, an exact relpath is taken literally.
   * A pattern that selects nothing is listed in {@link CreateResult.unmatched}.
   * @throws {UsageError} (from `createContainer`) for a pattern that names no path (`""`, `/`)
   */
  include?: readonly string[];
  /**
   * Patterns (`--exclude`, `--exclude-from`) of source items to leave out, with the rules of
   * `include`, which they win over: an excluded folder is not entered (its contents are not
   * listed, read or reported, even when unreadable). Not warnings: they are counted in
   * {@link CreateResult.excluded}. A resume keeps the entries already committed, excluded now
   * or not.
   */
  exclude?: readonly string[];
  /** Walk first to count files (`count`) or files and bytes (`sizes`) for progress. */
  prescan?: "count" | "sizes";
  /** Called with what the prescan found, before anything is packed (only with `prescan`). */
  onPrescan?: (totals: PrescanTotals) => void;
  /**
   * Status file to rewrite about once a second (lib/io/status_file.ts: a regular file is
   * replaced atomically, a symlink keeps its link, a FIFO or device is written in turn). It may
   * not be the container or its index, nor lie inside `src`: `UsageError`, nothing written.
   */
  statusFile?: string;
  /** Format of the status file. @default "kv" */
  statusFormat?: StatusFormat;
  /** Read workers (0: read on the main thread). @default 1, or 2 with `compress` */
  concurrency?: number;
  /** File layer for the container and index (tests swap it). @default the real one */
  fileLayer?: FileLayer;
  /** Aborting with reason `"SIGINT"` or `"SIGTERM"` commits the batch and throws `InterruptedError`. */
  signal?: AbortSignal;
  /** Called for each entry once it is committed to the index. */
  onEntry?: (entry: IndexEntry) => void;
  /**
   * Called with running totals: as each phase starts, during `scanning` after each batch the
   * walk lists, during `writing` after each source item and each piece of a file streamed in
   * pieces (see {@link CreateProgress}). Called often (once per item): keep it cheap, and
   * throttle any drawing.
   */
  onProgress?: (progress: CreateProgress) => void;
  /** Called with warnings (skipped specials and links, torn index repaired, ...); see lib/warnings.ts. */
  onWarning?: WarningHandler;
  /** Called for each source file or folder that could not be read; the run goes on. */
  onSourceError?: (error: SourceError) => void;
}

/**
 * What a create run is doing: `scanning` (the walk that counts the source first, with
 * `prescan`), `writing` (items read, hashed and appended), `finalizing` (with `finalize`: the
 * last batch committed and the index embedded as a trailer).
 */
export type CreatePhase = "scanning" | "writing" | "finalizing";

/**
 * Running totals passed to `onProgress`. One object is passed each time, updated in place (no
 * allocation per item): copy what you keep.
 */
export interface CreateProgress {
  /** The phase the run is in; the first call of a phase comes as it starts. */
  phase: CreatePhase;
  /**
   * Writing: entries handled this run, added or already present. Scanning: entries found so
   * far (files, folders, links).
   */
  processedFiles: number;
  /** Writing: entries added this run (it grows by one as each is added). */
  added: number;
  /**
   * Source items met this run: the entries handled and the items left out (special files, ...)
   * or unreadable, to compare with `totalItems`. Scanning: items found so far.
   */
  itemsDone: number;
  /**
   * Source bytes handled, in bytes, to compare with `totalBytes`. Writing: the original size of
   * the files added this run (and the bytes read so far of a file streamed in pieces), plus, on
   * a resume, the size on disk of the files already present. Scanning (`sizes`): bytes of the
   * files found so far.
   */
  bytesDone: number;
  /** Payload bytes appended this run, in bytes (the stored size: gzipped with `compress`). */
  bytesWritten: number;
  /** Relpath of the last item added, or of the file being streamed ("" before any). */
  currentFile: string;
  /** Entries the prescan found (files, folders, links), once it ran. */
  totalFiles?: number;
  /** Items the prescan found, special files too: what `itemsDone` reaches, once it ran. */
  totalItems?: number;
  /** Bytes of the source files the prescan found (`sizes`), once it ran. */
  totalBytes?: number;
}

/** Summary of a `createContainer` run. */
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
  /**
   * Items left out, with a warning each: special files (FIFO, socket, device), skipped
   * symlinks and empty folders, names that are the container or its index (a hard link).
   */
  leftOut: number;
  /**
   * Source items the patterns left out: each one an `exclude` pattern selected (a folder counts
   * once, its contents unseen) and, with `include`, each file, link or special file that no
   * `include` pattern selects.
   */
  excluded: number;
  /**
   * The `include` patterns, as given, that selected nothing in the source (the CLI names each
   * and exits 1); empty when every one selected something.
   */
  unmatched: string[];
  /**
   * Entries committed before this run that are no longer in the source (resume); the container
   * keeps them, and a `MISSING_FROM_SOURCE` warning names the first few.
   */
  missing: number;
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

/** Options checked, with their defaults applied. */
export interface Settings {
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
  /** Device and inode numbers, in pairs, of the container and index: never read as sources. */
  own?: number[];
  folderModes: boolean;
}

/**
 * Check the options of a create run and apply their defaults.
 *
 * @param container the container path (the index defaults to it plus `.idx`)
 * @param options the options
 * @returns the settings
 * @throws {UsageError} naming the option (`fsyncEvery`) when one is out of range
 */
export function checkOptions(container: string, options: CreateOptions): Settings {
  const { fsyncEvery, indexBatch } = checkBatching(options);
  const chunkSize = positive("chunkSize", options.chunkSize, 1 << 20);
  if (chunkSize < 1024) {
    throw new UsageError(`Option \`chunkSize\` must be at least 1024 bytes, got ${chunkSize}`, {
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
    folderModes: options.folderModes ?? true,
  };
}

/**
 * One read worker by default: on this project's 2-core machine a second one
 * gains nothing measurable for plain payloads (the kernel's open/read path
 * does not scale there) and costs about 40 MiB of RSS (bench/compare.ts,
 * bench/rss_1m.ts). With `compress`, the work is deflate, which does scale:
 * two workers.
 */
export function defaultWorkers(compress: boolean): number {
  return compress ? 2 : 1;
}

/**
 * Check `fsyncEvery` and `indexBatch` and apply their defaults.
 *
 * @throws {UsageError} naming the option when one is out of range
 */
export function checkBatching(
  options: { fsyncEvery?: number; indexBatch?: number },
): { fsyncEvery: number; indexBatch: number } {
  const fsyncEvery = positive("fsyncEvery", options.fsyncEvery, 1000);
  const indexBatch = positive("indexBatch", options.indexBatch, fsyncEvery);
  if (indexBatch < fsyncEvery) {
    throw new UsageError(
      `Option \`indexBatch\` (${indexBatch}) must not be smaller than \`fsyncEvery\` ` +
        `(${fsyncEvery}): index entries would be committed before their payloads are durable`,
      { options: ["indexBatch", "fsyncEvery"] },
    );
  }
  return { fsyncEvery, indexBatch };
}

/**
 * A positive integer option, or its default.
 *
 * @throws {UsageError} naming the option when it is not a positive safe integer
 */
export function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new UsageError(`Option \`${name}\` must be a positive integer, got ${value}`, {
      options: [name],
    });
  }
  return v;
}
