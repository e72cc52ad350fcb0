/**
 * Handing small files to the write workers of `extract`: verified on this
 * thread, gathered in batches of one folder's files (each folder goes to one
 * worker, so two workers do not contend for one folder in the kernel), sent
 * packed, and bounded in flight by count and by bytes.
 *
 * @module
 */

import type { CtnrError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { BATCH_BYTES, BATCH_FILES, type WorkerPool } from "../io/worker_pool.ts";
import {
  type FileJob,
  type FileOutcome,
  type FileSettings,
  fromFault,
  packJobs,
  verifyStored,
} from "./file_writer.ts";
import type { FolderCheck } from "../safety/folder_check.ts";
import type { WriteBatch, WriteBatchResult } from "./_extract_worker.ts";

/** Most payload bytes in flight to the workers. */
const IN_FLIGHT_BYTES = 8 << 20;

/** What the dispatch reports back (each file done, or failed), and where folders are. */
export interface DispatchReport {
  done: (entry: IndexEntry, outcome: FileOutcome) => void;
  fail: (entry: IndexEntry, error: CtnrError | Error) => void;
  /** The folder of a batch as the run made or met it, which the worker checks first. */
  folder: (relDir: string) => FolderCheck;
}

/** The batches of small files on their way to the write workers. */
export class WriteDispatch {
  #pool: WorkerPool<WriteBatch, WriteBatchResult>;
  #settings: FileSettings;
  #report: DispatchReport;
  #batch: { entries: IndexEntry[]; jobs: FileJob[]; payloads: Uint8Array[] } = {
    entries: [],
    jobs: [],
    payloads: [],
  };
  #batchFolder = "";
  #batchBytes = 0;
  #inFlight = new Set<Promise<void>>();
  #inFlightBytes = 0;
  #lastFolder: string | undefined;
  #folderBatches = 0;
  #worker = 0;

  /**
   * @param pool the write workers
   * @param settings run-wide settings of the writer
   * @param report where outcomes go
   */
  constructor(
    pool: WorkerPool<WriteBatch, WriteBatchResult>,
    settings: FileSettings,
    report: DispatchReport,
  ) {
    this.#pool = pool;
    this.#settings = settings;
    this.#report = report;
  }

  /**
   * Whether a file of `folder` joins the batch without sending it first (the batch is empty,
   * or holds that folder's files).
   *
   * @param folder the file's folder relpath
   * @returns `true` when it can join at once
   */
  accepts(folder: string): boolean {
    return this.#batch.jobs.length === 0 || folder === this.#batchFolder;
  }

  /** Whether the batch is full: send it. */
  get full(): boolean {
    return this.#batch.jobs.length >= BATCH_FILES || this.#batchBytes >= BATCH_BYTES;
  }

  /**
   * Add a small file to the batch, once its SHA-256 checks out (here: this thread would
   * otherwise wait on the workers). Its payload may be a view into the read window: the batch
   * copies it when it is sent.
   *
   * @param entry the entry
   * @param job its write job
   * @param payload its stored bytes
   * @param folder its folder's relpath
   * @throws {IntegrityError} on a SHA-256 mismatch
   */
  add(entry: IndexEntry, job: FileJob, payload: Uint8Array, folder: string): void {
    verifyStored(job, payload);
    job.verified = true;
    this.#batchFolder = folder;
    this.#batch.entries.push(entry);
    this.#batch.jobs.push(job);
    this.#batch.payloads.push(payload);
    this.#batchBytes += payload.length;
  }

  /** Send the pending files to their folder's worker; wait while too much is in flight. */
  async send(): Promise<void> {
    const { entries, jobs, payloads } = this.#batch;
    if (jobs.length === 0) return;
    this.#batch = { entries: [], jobs: [], payloads: [] };
    this.#batchBytes = 0;
    const at = new Float64Array(payloads.length + 1);
    payloads.forEach((p, i) => at[i + 1] = at[i]! + p.length);
    const packed = new Uint8Array(at[payloads.length]!);
    payloads.forEach((p, i) => packed.set(p, at[i]!));
    const request: WriteBatch = {
      jobs: packJobs(jobs),
      at,
      payloads: packed,
      settings: this.#settings,
      folder: this.#report.folder(this.#batchFolder),
    };
    // Up to 16 batches of a folder in a row go to one worker, then the next worker takes over:
    // folders of up to 4,096 files each get one worker; a huge folder is still shared.
    if (this.#batchFolder !== this.#lastFolder || ++this.#folderBatches >= 16) {
      this.#worker = (this.#worker + 1) % this.#pool.size;
      this.#lastFolder = this.#batchFolder;
      this.#folderBatches = 0;
    }
    const task = this.#pool.run(
      request,
      [packed.buffer, at.buffer, request.jobs.numbers.buffer],
      this.#worker,
    ).then(
      ({ codes, faults }) => {
        let fault = 0;
        codes.forEach((code, i) => {
          const entry = entries[i]!;
          if (code === 2) this.#report.fail(entry, fromFault(faults[fault++]!, entry.relpath));
          else this.#report.done(entry, code === 1 ? "skipped" : "extracted");
        });
      },
      (error) => entries.forEach((entry) => this.#report.fail(entry, error)),
    ).finally(() => {
      this.#inFlight.delete(task);
      this.#inFlightBytes -= packed.length;
    });
    this.#inFlight.add(task);
    this.#inFlightBytes += packed.length;
    // Bounded by count and by bytes: small payloads may be up to 1 MiB each.
    while (this.#inFlight.size >= 6 * this.#pool.size || this.#inFlightBytes > IN_FLIGHT_BYTES) {
      await Promise.race(this.#inFlight);
    }
  }

  /** Send what is pending and wait for every batch in flight. */
  async drain(): Promise<void> {
    await this.send();
    await Promise.all(this.#inFlight);
  }
}
