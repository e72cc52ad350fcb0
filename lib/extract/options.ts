/**
 * The options of `extract` and what a run reports.
 *
 * @module
 */

import type { CtnrError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import type { StatusFormat } from "../io/status_file.ts";
import type { WarningHandler } from "../warnings.ts";
import type { ExtractPlan } from "./plan.ts";
import type { Selection } from "../selection.ts";
import type { RemoteOptions } from "../remote/remote_container.ts";

/** Options of `extractContainer`. */
export interface ExtractOptions {
  /**
   * Extract only the entries these patterns select (CLI: the patterns after the container and
   * output folder). Rules in lib/selection.ts and the README ("Selecting entries"): a pattern
   * without `/` matches a name at any depth, one with `/` the relpath from the root, a match on
   * a folder selects its subtree, `*` stays within a name and `**` crosses `/`; a pattern that
   * is an entry's relpath is taken literally. The folders on the way to a selected entry are
   * made (a private one private). Patterns that select nothing are listed in
   * {@link ExtractResult.unmatched}. A {@link Selection} given here can be read afterwards,
   * also when the run throws.
   * @default every entry
   */
  select?: readonly string[] | Selection;
  /** External index file (or URL); preferred over the embedded one. */
  index?: string;
  /**
   * How a container given as an `http://`, `https://` or `s3://` URL is read (see
   * `ContainerReaderOptions.remote`).
   */
  remote?: RemoteOptions;
  /**
   * Where the embedded index must lie and its SHA-256, checked before anything is read (see
   * `ContainerReaderOptions.expectIndex`: a shard checked against its manifest).
   */
  expectIndex?: { offset: number; length: number; sha256: string; size?: number };
  /**
   * Read size in bytes for large payloads (minimum 1024). @default 1048576 for compressed ones,
   * 4194304 for the others (lib/io/copy.ts PLAIN_COPY_PIECE)
   */
  chunkSize?: number;
  /** Skip a target that exists as a regular file of size `orig_size`. @default false */
  skipExisting?: boolean;
  /** Skip an existing target only when its SHA-256 matches; implies `skipExisting`. @default false */
  verifyExisting?: boolean;
  /** Read and verify every payload, write nothing. @default false */
  dryRun?: boolean;
  /**
   * Go on with the other entries after an entry fails (its payload does not verify, or lies
   * past the end of a container cut short); the run still fails at the end. @default false
   */
  keepGoing?: boolean;
  /**
   * Extract what survives of a container cut short (README "What ctnr refuses to do"): every
   * entry whose payload lies wholly inside the file, each verified as usual; the others go to
   * `onEntryError` (code `CONTAINER_CUT`). Without an index file, the whole lines of a
   * trailer cut inside its index are read. Implies `keepGoing`. The run then throws a
   * `ContainerFormatError` (code `CONTAINER_CUT`) that counts what was left out, when
   * an entry was left out or index lines were lost; when nothing was, it returns, with a
   * `CONTAINER_CUT` warning if the file was cut (in ctnr's footer). @default false
   */
  salvage?: boolean;
  /** Skip malformed index lines with a warning. @default false */
  lenient?: boolean;
  /** Accept symlinks that point outside the output folder. @default false */
  allowUnsafeLinks?: boolean;
  /**
   * Give files and folders their recorded permission bits exactly (`tar -p`); otherwise the
   * process umask is taken off them, as tar does for a user other than root.
   * @default true when running as root (user id 0), else false
   */
  samePermissions?: boolean;
  /** fsync each extracted file before its rename, and each folder written into at the end. @default false */
  fsync?: boolean;
  /** Write workers (0: write on the main thread). @default 2 */
  concurrency?: number;
  /**
   * Status file to rewrite about once a second (lib/io/status_file.ts: a regular file is
   * replaced atomically, a symlink keeps its link, a FIFO or device is written in turn). It may
   * not be the container or its index (`UsageError`, nothing written).
   */
  statusFile?: string;
  /** Format of the status file. @default "kv" */
  statusFormat?: StatusFormat;
  /** Aborting stops after the entries in flight; `extractContainer` then throws. */
  signal?: AbortSignal;
  /** Called once the plan is validated, before anything is written. */
  onPlan?: (plan: ExtractPlan) => void;
  /**
   * Called with running totals: as each phase starts, during `planning` after each block of
   * the index read, during `writing` after each entry done (or failed) and each piece of a
   * payload streamed in pieces (see {@link ExtractProgress}). Called often (once per entry):
   * keep it cheap, and throttle any drawing. An error it throws stops the run as `onEntry`'s
   * does.
   */
  onProgress?: (progress: ExtractProgress) => void;
  /**
   * Called for each entry done. An error it throws is not a fault of the entry: the run stops
   * as an aborted one does (the entries in flight finish, no temp file is left, the output
   * folder's lock is released) and `extractContainer` throws that error as it is; so do
   * `onEntryError` and `onWarning`.
   */
  onEntry?: (entry: IndexEntry, action: ExtractAction) => void;
  /** Called for each entry that failed (with `keepGoing`, the run goes on). */
  onEntryError?: (entry: IndexEntry, error: CtnrError) => void;
  /** Called with warnings (see lib/warnings.ts). */
  onWarning?: WarningHandler;
}

/**
 * What an extract run is doing: `planning` (the whole index read and checked, before anything
 * is written), `writing` (the entries extracted, or in a dry run read and verified).
 */
export type ExtractPhase = "planning" | "writing";

/**
 * Running totals passed to `onProgress`. One object is passed each time, updated in place (no
 * allocation per entry): copy what you keep.
 */
export interface ExtractProgress {
  /** The phase the run is in; the first call of a phase comes as it starts. */
  phase: ExtractPhase;
  /** Bytes of the index read so far by the plan, in bytes. */
  indexBytesRead: number;
  /** Size of the index in bytes (of the index file, or of the index in the trailer). */
  indexBytes: number;
  /** Writing: entries done this run (extracted, skipped, verified, or failed). */
  entriesDone: number;
  /**
   * Writing: original bytes of the file entries done, in bytes (with the bytes written so far of
   * a payload streamed in pieces), to compare with `totalBytes`.
   */
  bytesDone: number;
  /** Entries to do: the plan's `entries` (0 while planning). */
  totalEntries: number;
  /** Original bytes of the files to do, in bytes: the plan's `totalBytes` (0 while planning). */
  totalBytes: number;
  /** Relpath of the last entry done, or of the payload being streamed ("" before any). */
  currentEntry: string;
}

/** What happened to an entry. */
export type ExtractAction = "extracted" | "skipped" | "verified" | "checked";

/** Summary of an `extractContainer` run. */
export interface ExtractResult {
  /** Entries written (files, folders, links). */
  extracted: number;
  /** Entries skipped because the target existed (`skipExisting`/`verifyExisting`). */
  skipped: number;
  /** Entries that failed (only non-zero with `keepGoing`). */
  failed: number;
  /** Original bytes of the files written or, in a dry run, verified. */
  bytes: number;
  /** The validated plan. */
  plan: ExtractPlan;
  /** The `select` patterns, as given, that selected no entry (the CLI names each, exit 1). */
  unmatched: string[];
}
