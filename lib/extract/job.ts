/**
 * One extraction run, entry by entry in index order: folders made, small
 * files read through the read window and written by the write workers (or
 * on this thread), large files streamed, links made after the files, and
 * the run's counts, status file and first error kept.
 *
 * @module
 */

import {
  CtnrError,
  EnvironmentError,
  environmentFault,
  InterruptedError,
  RemoteError,
  stoppedBy,
} from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { PLAIN_COPY_PIECE, writeAll } from "../io/copy.ts";
import { progressFields, type StatusFile } from "../io/status_file.ts";
import { BATCH_FILES, type WorkerPool } from "../io/worker_pool.ts";
import type { ContainerReader } from "../read/container_reader.ts";
import { checkLinkTarget } from "../safety/link_target.ts";
import { type OutputTree, parentOf } from "../safety/output_tree.ts";
import { warning } from "../warnings.ts";
import { Selection } from "../selection.ts";
import {
  decodePayload,
  type FileJob,
  type FileOutcome,
  type FileSettings,
  renameOver,
  toUtime,
  writeFileJob,
  writeLargeFile,
} from "./file_writer.ts";
import type { ExtractAction, ExtractOptions, ExtractProgress, ExtractResult } from "./options.ts";
import type { ExtractPlan } from "./plan.ts";
import { ReadWindow } from "./read_window.ts";
import { WriteDispatch } from "./write_dispatch.ts";
import type { WriteBatch, WriteBatchResult } from "./_extract_worker.ts";

const SMALL_PAYLOAD = 1 << 20;
const SMALL_ORIGINAL = 4 << 20;

/** A payload held whole in memory: both the stored and the original bytes are small. */
function isSmall(entry: IndexEntry): boolean {
  return entry.payloadSize <= SMALL_PAYLOAD && entry.origSize <= SMALL_ORIGINAL;
}

/**
 * The process umask.
 *
 * @returns the umask; 0o022 where there is none (Windows: `Deno.umask` throws there)
 */
export function currentUmask(): number {
  try {
    return Deno.umask();
  } catch {
    return 0o022;
  }
}

/** An extraction run over a planned index. */
export class ExtractJob {
  #reader: ContainerReader;
  #tree: OutputTree;
  #plan: ExtractPlan;
  #chunkSize: number;
  #options: ExtractOptions;
  #settings: FileSettings;
  #window: ReadWindow;
  #dispatch: WriteDispatch | undefined;
  #pool: WorkerPool<WriteBatch, WriteBatchResult> | undefined;
  #umask = currentUmask();
  #status: StatusFile | undefined;
  #result: ExtractResult;
  #firstError: CtnrError | undefined;
  /** A fault that stops the run whatever `keepGoing` says (see {@link ExtractJob.fail}). */
  #fatal: CtnrError | undefined;
  #dirEntries: IndexEntry[] = [];
  /** Folder entries `select` does not select: their folders get their metadata if the run made them. */
  #folderEntriesAside: IndexEntry[] = [];
  #select: Selection | undefined;
  #links: IndexEntry[] = [];
  #refusedLinks: Set<string>;
  #startTime: number;
  #checkedFolder: string | undefined;
  #sinceCheck = 0;
  /**
   * What a callback of the caller threw (`onEntry`, `onEntryError`, `onWarning`: the CLI's
   * "standard output closed"): not a fault of the entry. It stops the run as a signal does
   * (entries in flight finish, no temp file left, the lock released) and is rethrown as it is.
   */
  #callbackError: { error: unknown } | undefined;
  #progress: ExtractProgress;
  #onProgress: ((progress: ExtractProgress) => void) | undefined;
  /** Original bytes of the file entries done (for progress; skipped and failed ones too). */
  #bytesDone = 0;

  /**
   * @param reader the open container
   * @param tree the output folder (not opened yet)
   * @param plan the validated plan
   * @param chunkSize read size of large payloads in bytes
   * @param options the run's options
   * @param refusedLinks links the plan refused (`keepGoing`): skipped
   * @param pool write workers, or none (small files written on this thread)
   * @param startTime when the run started, in milliseconds since the epoch
   * @param progress the run's progress object (`options.onProgress`), updated in place
   * @param status the status file (`statusFile`), prepared; the run closes it
   */
  constructor(
    reader: ContainerReader,
    tree: OutputTree,
    plan: ExtractPlan,
    chunkSize: number,
    options: ExtractOptions,
    refusedLinks: Set<string>,
    pool: WorkerPool<WriteBatch, WriteBatchResult> | undefined,
    startTime: number,
    progress: ExtractProgress,
    status?: StatusFile,
  ) {
    this.#reader = reader;
    this.#tree = tree;
    this.#plan = plan;
    this.#chunkSize = chunkSize;
    this.#options = options;
    this.#refusedLinks = refusedLinks;
    this.#select = options.select instanceof Selection ? options.select : undefined;
    this.#pool = pool;
    this.#startTime = startTime;
    this.#progress = progress;
    this.#onProgress = options.onProgress;
    this.#settings = {
      skipExisting: options.skipExisting ?? false,
      verifyExisting: options.verifyExisting ?? false,
      fsync: options.fsync ?? false,
      umask: this.#umask,
    };
    this.#window = new ReadWindow(reader);
    if (pool !== undefined) {
      this.#dispatch = new WriteDispatch(pool, this.#settings, {
        done: (entry, outcome) => this.#done(entry, outcome),
        fail: (entry, error) => this.fail(entry, error),
        folder: (relDir) => tree.folderCheck(relDir),
      });
    }
    this.#result = { extracted: 0, skipped: 0, failed: 0, bytes: 0, plan, unmatched: [] };
    this.#status = status;
  }

  /**
   * Extract every entry.
   *
   * @returns the summary
   * @throws {InterruptedError} when the signal aborted the run
   * @throws the first entry's error (with `keepGoing`, after all the others)
   */
  async run(): Promise<ExtractResult> {
    try {
      return await this.#run();
    } finally {
      this.#status?.close();
    }
  }

  async #run(): Promise<ExtractResult> {
    const options = this.#options;
    const dispatch = this.#dispatch;
    try {
      const progress = this.#progress;
      progress.phase = "writing";
      progress.totalEntries = this.#plan.entries;
      progress.totalBytes = this.#plan.totalBytes;
      this.#call(this.#onProgress, progress);
      await this.#updateStatus("running", undefined, true);
      if (!options.dryRun) await this.#tree.open();
      // A container on a server: the payloads this run reads are fetched ahead, in ranges.
      if (this.#reader.remote !== undefined) {
        this.#reader.planReads(this.#reader.payloadRanges(this.#select, { onPastEnd: () => {} }));
      }
      // Entries past the payload area were left out by the plan (`onPastEnd`): here too.
      const records = this.#reader.recordBatches({ quiet: true, onPastEnd: () => {} });
      const select = this.#select;
      reading: for await (const batch of records) {
        for (const { entry } of batch) {
          if (select !== undefined && !select.matches(entry.relpath, entry.entryType === "dir")) {
            if (entry.entryType === "dir") this.#folderEntriesAside.push(entry);
            continue;
          }
          if (this.#stopping) break reading;
          try {
            // Most entries of a tree of small files are queued without a single await.
            if (!this.#queueSmall(entry)) await this.#handle(entry);
            else if (dispatch!.full) await dispatch!.send();
          } catch (error) {
            this.fail(entry, error);
          }
          if (this.#status) await this.#updateStatus("running", entry);
        }
      }
      await dispatch?.drain();
      for (const entry of this.#links) {
        if (this.#stopping) break;
        try {
          this.#makeLink(entry);
        } catch (error) {
          this.fail(entry, error);
        }
      }
      if (!options.dryRun) {
        // A folder on the way to a selected entry that the run made (0700, when it has an entry)
        // gets its recorded metadata too; one that was there is left as it is.
        const onTheWay = this.#folderEntriesAside.filter((entry) => this.#tree.made(entry.relpath));
        this.#tree.finishFolders([...this.#dirEntries, ...onTheWay], toUtime);
      }
      if (this.#settings.fsync) await this.#tree.syncFolders();
    } finally {
      this.#pool?.terminate();
      await this.#tree.close();
    }
    if (this.#tree.swept > 0) {
      this.#call(
        options.onWarning,
        warning(
          "TEMP_FILES_REMOVED",
          `Removed ${this.#tree.swept} temp ${
            this.#tree.swept === 1 ? "file" : "files"
          } left in the output folder by an extraction ` +
            `that was killed`,
        ),
      );
    }
    this.#result.unmatched = this.#select?.unmatched ?? [];
    const interrupted = (options.signal?.aborted ?? false) || this.#callbackError !== undefined;
    await this.#updateStatus(
      interrupted ? "interrupted" : this.#result.failed > 0 ? "failed" : "finished",
      undefined,
      true,
    );
    if (this.#callbackError !== undefined) throw this.#callbackError.error;
    if (interrupted) {
      throw new InterruptedError(stoppedBy(options.signal!));
    }
    if (this.#fatal) throw this.#fatal;
    if (this.#firstError) throw this.#firstError;
    return this.#result;
  }

  /**
   * Record a failed entry (reported at once, thrown at the end). An error that is not a
   * `CtnrError` (an OS error) is wrapped, with the original as its cause.
   *
   * @param entry the entry
   * @param error what went wrong
   */
  fail(entry: IndexEntry, error: unknown): void {
    const verb = this.#options.dryRun ? "verify" : "extract";
    error = environmentFault(
      error,
      `Cannot ${verb} "${entry.relpath}"`,
      `fix that and run ${verb} again${
        verb === "extract" ? ": it can skip the files already there" : ""
      }`,
    );
    const wrapped = error instanceof CtnrError ? error : new CtnrError(
      "IO",
      `Cannot ${verb} "${entry.relpath}": ${(error as Error).message}`,
      1,
      { cause: error },
    );
    this.#result.failed++;
    this.#firstError ??= wrapped;
    // A fault of the source or the machine, not of this entry: the entries after it would only
    // fail the same way (a container replaced on its server, a network down past its retries).
    if (wrapped instanceof RemoteError || wrapped instanceof EnvironmentError) {
      this.#fatal ??= wrapped;
    }
    this.#call(this.#options.onEntryError, entry, wrapped);
    this.#reportDone(entry);
  }

  /** Whether the run stops before its next entry: aborted, a callback threw, or a fault. */
  get #stopping(): boolean {
    return (this.#options.signal?.aborted ?? false) || this.#callbackError !== undefined ||
      this.#fatal !== undefined ||
      (this.#firstError !== undefined && !this.#options.keepGoing);
  }

  /**
   * Call a callback of the caller. What it throws is kept to stop the run (never counted as a
   * fault of the entry); once one threw, no callback is called again.
   */
  #call<A extends unknown[]>(callback: ((...args: A) => void) | undefined, ...args: A): void {
    if (callback === undefined || this.#callbackError !== undefined) return;
    try {
      callback(...args);
    } catch (error) {
      this.#callbackError = { error };
    }
  }

  /** Whether a callback of the caller threw and stopped the run (its error was rethrown). */
  get stoppedByCallback(): boolean {
    return this.#callbackError !== undefined;
  }

  /**
   * Count entries that failed before the run, already reported to `onEntryError` (the plan's
   * entries past the payload area).
   *
   * @param count how many
   * @param first the first one's error
   */
  failedBefore(count: number, first: CtnrError | undefined): void {
    this.#result.failed += count;
    this.#firstError ??= first;
  }

  /** The counts so far (also after `run` threw). */
  get result(): ExtractResult {
    return this.#result;
  }

  async #handle(entry: IndexEntry): Promise<void> {
    const dryRun = this.#options.dryRun ?? false;
    const parentRel = parentOf(entry.relpath);
    if (entry.entryType === "dir") {
      if (!dryRun) {
        this.#tree.ensureDir(entry.relpath);
        this.#dirEntries.push(entry);
      }
      return this.#done(entry, dryRun ? "checked" : "extracted");
    }
    if (entry.entryType === "symlink") {
      // Links are made last, after every file: no file is ever written where a link stands.
      if (this.#refusedLinks.has(entry.relpath)) return; // reported by the plan
      if (dryRun) this.#done(entry, "checked");
      else this.#links.push(entry);
      return;
    }
    const small = isSmall(entry);
    if (dryRun) {
      if (small) decodePayload(this.#job(entry, parentRel), await this.#readSmall(entry));
      else {
        const report = this.#pieceReporter(entry);
        for await (const piece of this.#reader.open(entry, { chunkSize: this.#chunkSize })) {
          report?.(piece.length); // verified as it streams
        }
      }
      return this.#done(entry, "checked");
    }
    this.#tree.ensureDir(parentRel);
    const job = this.#job(entry, parentRel);
    if (small) {
      const payload = await this.#readSmall(entry);
      const dispatch = this.#dispatch;
      if (dispatch === undefined) {
        this.#checkBatch(parentRel);
        return this.#done(entry, writeFileJob(job, payload, this.#settings));
      }
      if (!dispatch.accepts(parentRel)) await dispatch.send();
      dispatch.add(entry, job, payload, parentRel);
      if (dispatch.full) await dispatch.send();
      return;
    }
    this.#tree.checkDir(parentRel); // a large file is a batch of its own
    this.#done(entry, await this.#writeLarge(entry, job));
  }

  /**
   * Check the folder of a file or link written on this thread once per batch: when the folder
   * changes, and every {@link BATCH_FILES} entries in one folder (the workers check once per
   * batch they get).
   *
   * @throws {UnsafeEntryError} when the folder was swapped since the run made or met it
   */
  #checkBatch(relDir: string): void {
    if (relDir === this.#checkedFolder && ++this.#sinceCheck < BATCH_FILES) return;
    this.#tree.checkDir(relDir);
    this.#checkedFolder = relDir;
    this.#sinceCheck = 0;
  }

  /**
   * The path of {@link ExtractJob.#handle} that needs no waiting: a small file whose payload
   * is in the read window, joining the current batch of its folder. Verified here.
   *
   * @returns whether the entry was queued; `false` leaves it to `#handle`
   * @throws {IntegrityError} on a SHA-256 mismatch
   * @throws {UnsafeEntryError} when its folder cannot be made
   */
  #queueSmall(entry: IndexEntry): boolean {
    const dispatch = this.#dispatch;
    if (
      dispatch === undefined || entry.entryType !== "file" || !isSmall(entry) ||
      this.#options.dryRun
    ) return false;
    const parentRel = parentOf(entry.relpath);
    if (!dispatch.accepts(parentRel)) return false;
    const payload = this.#window.held(entry);
    if (payload === undefined) return false;
    this.#tree.ensureDir(parentRel);
    dispatch.add(entry, this.#job(entry, parentRel), payload, parentRel);
    return true;
  }

  /** A small payload, through the read window (the pending batch goes out before it is reused). */
  #readSmall(entry: IndexEntry): Promise<Uint8Array> {
    return this.#window.read(entry, () => this.#dispatch?.send() ?? Promise.resolve());
  }

  /** Create a symlink entry through a temp link and a rename, re-checking its target on disk. */
  #makeLink(entry: IndexEntry): void {
    const parentRel = parentOf(entry.relpath);
    if (!this.#options.allowUnsafeLinks) {
      // Links already in the output folder (made by this run or there before) count too.
      checkLinkTarget(entry, (relpath) => this.#tree.isLink(relpath));
    }
    this.#tree.ensureDir(parentRel);
    this.#checkBatch(parentRel);
    const job = this.#job(entry, parentRel);
    Deno.symlinkSync(entry.linkTarget!, job.tmp);
    try {
      renameOver(job);
    } catch (error) {
      Deno.removeSync(job.tmp);
      throw error;
    }
    this.#done(entry, "extracted");
  }

  #done(entry: IndexEntry, action: ExtractAction): void {
    if (action === "skipped") this.#result.skipped++;
    else this.#result.extracted++;
    if (entry.entryType === "file" && action !== "skipped") this.#result.bytes += entry.origSize;
    // Inlined #call: once an entry on the hot path.
    const onEntry = this.#options.onEntry;
    if (onEntry !== undefined && this.#callbackError === undefined) {
      try {
        onEntry(entry, action);
      } catch (error) {
        this.#callbackError = { error };
      }
    }
    this.#reportDone(entry);
  }

  /**
   * Count an entry done (or failed) in the progress, and report it (`onProgress`, once an entry
   * on the hot path: inlined as `onEntry`'s call is).
   */
  #reportDone(entry: IndexEntry): void {
    const onProgress = this.#onProgress;
    if (onProgress === undefined || this.#callbackError !== undefined) return;
    if (entry.entryType === "file") this.#bytesDone += entry.origSize;
    const progress = this.#progress;
    progress.entriesDone++;
    progress.bytesDone = this.#bytesDone;
    progress.currentEntry = entry.relpath;
    try {
      onProgress(progress);
    } catch (error) {
      this.#callbackError = { error };
    }
  }

  /**
   * A reporter of the bytes of `entry`'s payload done so far, while it streams; `undefined`
   * without `onProgress`.
   */
  #pieceReporter(entry: IndexEntry): ((bytes: number) => void) | undefined {
    const onProgress = this.#onProgress;
    if (onProgress === undefined) return undefined;
    const progress = this.#progress;
    progress.currentEntry = entry.relpath;
    let streamed = 0;
    return (bytes) => {
      streamed += bytes;
      progress.bytesDone = this.#bytesDone + streamed;
      this.#call(onProgress, progress);
    };
  }

  #job(entry: IndexEntry, parentRel: string): FileJob {
    return {
      relpath: entry.relpath,
      target: this.#tree.pathOf(entry.relpath),
      tmp: this.#tree.tempIn(parentRel),
      sha256: entry.sha256,
      compressed: entry.compressed,
      origSize: entry.origSize,
      mode: entry.mode !== undefined ? this.#tree.permissions(entry.mode) : 0o666 & ~this.#umask,
      fresh: this.#tree.checksRenames(parentRel),
      mtime: entry.mtime ?? null,
      origSha256: entry.origSha256 ?? null,
    };
  }

  /**
   * Stream a large payload into its temp file (verified as it streams), then rename it. An
   * aborted signal stops it before its next piece, its temp file removed: a file of many GiB
   * must not hold a SIGTERM for minutes.
   */
  #writeLarge(entry: IndexEntry, job: FileJob): Promise<FileOutcome> {
    const signal = this.#options.signal;
    const report = this.#pieceReporter(entry);
    return writeLargeFile(job, this.#settings, async (file) => {
      const write = (piece: Uint8Array) => {
        if (signal?.aborted) throw new InterruptedError(stoppedBy(signal));
        report?.(piece.length);
        return writeAll(file, piece);
      };
      if (entry.compressed) {
        for await (const piece of this.#reader.open(entry, { chunkSize: this.#chunkSize })) {
          await write(piece);
        }
      } else {
        await this.#reader.copyStored(
          entry,
          write,
          this.#options.chunkSize ?? PLAIN_COPY_PIECE,
        );
      }
    });
  }

  /**
   * Rewrite the status file (throttled unless `force`); keys are the original extractor's
   * (README "Status file"), `current_file_bytes` the original size of the entry just done.
   */
  async #updateStatus(
    status: string,
    current: IndexEntry | undefined,
    force = false,
  ): Promise<void> {
    if (!this.#status) return;
    await this.#status.update({
      start_time: new Date(this.#startTime).toISOString(),
      start_ts: this.#startTime / 1000,
      total_files: this.#plan.entries,
      total_bytes: this.#plan.totalBytes,
      processed_files: this.#result.extracted + this.#result.skipped,
      bytes_extracted: this.#result.bytes,
      current_file: current?.relpath ?? "",
      current_file_bytes: current?.origSize ?? 0,
      ...progressFields(
        this.#startTime,
        this.#result.bytes,
        this.#result.bytes,
        this.#plan.totalBytes,
      ),
      // At the end, finished or not, nothing is left to wait for.
      ...(status === "running" ? {} : { eta_seconds: 0 }),
      status,
      ...(status === "running" ? {} : { finished_time: new Date().toISOString() }),
    }, force);
  }
}
