/**
 * `extract`: plan (validate the whole index), then write each entry into a
 * temp file in its target folder, verify it, apply mode and mtime, and
 * rename it over the target. Nothing is ever written through a symlink.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { resolve } from "node:path";
import {
  CtnrError,
  IntegrityError,
  InterruptedError,
  UnsafeEntryError,
  UsageError,
} from "./errors.ts";
import { ContainerReader, shaMismatch } from "./container_reader.ts";
import type { IndexEntry } from "./format.ts";
import { type ExtractPlan, planExtraction } from "./extract_plan.ts";
import { StatusFile, type StatusFormat } from "./status_file.ts";

/** Options of {@link extractContainer}. */
export interface ExtractOptions {
  /** External index file; preferred over the embedded one. */
  index?: string;
  /** Read size in bytes for large payloads (minimum 1024). @default 1048576 */
  chunkSize?: number;
  /** Skip a target that exists as a regular file of size `orig_size`. @default false */
  skipExisting?: boolean;
  /** Skip an existing target only when its SHA-256 matches; implies `skipExisting`. @default false */
  verifyExisting?: boolean;
  /** Read and verify every payload, write nothing. @default false */
  dryRun?: boolean;
  /** Go on with the other entries after an entry fails; the run still fails at the end. @default false */
  keepGoing?: boolean;
  /** Skip malformed index lines with a warning. @default false */
  lenient?: boolean;
  /** Accept symlinks that point outside the output folder. @default false */
  allowUnsafeLinks?: boolean;
  /** fsync each extracted file before its rename. @default false */
  fsync?: boolean;
  /** Files written at once. @default 16 */
  concurrency?: number;
  /** Status file to rewrite about once a second. */
  statusFile?: string;
  /** Format of the status file. @default "kv" */
  statusFormat?: StatusFormat;
  /** Aborting stops after the entries in flight; {@link extractContainer} then throws. */
  signal?: AbortSignal;
  /** Called once the plan is validated, before anything is written. */
  onPlan?: (plan: ExtractPlan) => void;
  /** Called for each entry done. */
  onEntry?: (entry: IndexEntry, action: ExtractAction) => void;
  /** Called for each entry that failed (with `keepGoing`, the run goes on). */
  onEntryError?: (entry: IndexEntry, error: CtnrError) => void;
  /** Called with warnings. */
  onWarning?: (message: string) => void;
}

/** What happened to an entry. */
export type ExtractAction = "extracted" | "skipped" | "verified" | "checked";

/** Summary of an {@link extractContainer} run. */
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
}

const SMALL_PAYLOAD = 1 << 20;
const READ_WINDOW = 4 << 20;

/**
 * Extract every entry of `container` under `outdir`.
 *
 * @param container the container file
 * @param outdir output folder (created when missing)
 * @param options see {@link ExtractOptions}
 * @returns a summary
 * @throws {UsageError} on bad options
 * @throws {ContainerFormatError} when the index cannot be found
 * @throws {IndexFormatError} on a bad index (nothing is written)
 * @throws {UnsafeEntryError} on an unsafe or clashing entry (nothing is written when
 *   found by the plan; a symlink met on disk stops that entry)
 * @throws {IntegrityError} on a payload that does not verify (no file is left for it)
 *
 * @example Round trip a folder
 * ```ts
 * import { createContainer } from "./creator.ts";
 * import { extractContainer } from "./extractor.ts";
 * const src = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${src}/a.txt`, "hello");
 * const work = await Deno.makeTempDir();
 * await createContainer(src, `${work}/c.ctnr`, { finalize: true });
 * const result = await extractContainer(`${work}/c.ctnr`, `${work}/out`);
 * if (result.extracted !== 1) throw new Error("expected one entry");
 * if (await Deno.readTextFile(`${work}/out/a.txt`) !== "hello") throw new Error("bad content");
 * ```
 */
export async function extractContainer(
  container: string,
  outdir: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  const chunkSize = options.chunkSize ?? 1 << 20;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1024) {
    throw new UsageError(`Option --chunk-size must be at least 1024 bytes, got ${chunkSize}`);
  }
  const readerOptions: Parameters<typeof ContainerReader.open>[1] = {};
  if (options.index !== undefined) readerOptions.index = options.index;
  if (options.lenient !== undefined) readerOptions.lenient = options.lenient;
  if (options.onWarning !== undefined) readerOptions.onWarning = options.onWarning;
  const reader = await ContainerReader.open(container, readerOptions);
  try {
    const plan = await planExtraction(reader, {
      allowUnsafeLinks: options.allowUnsafeLinks ?? false,
    });
    options.onPlan?.(plan);
    const job = new ExtractJob(reader, resolve(outdir), plan, chunkSize, options);
    return await job.run();
  } finally {
    reader.close();
  }
}

class ExtractJob {
  #reader: ContainerReader;
  #outdir: string;
  #plan: ExtractPlan;
  #chunkSize: number;
  #options: ExtractOptions;
  #dirs = new Map<string, Promise<void>>();
  #window: { start: number; bytes: Uint8Array } = { start: 0, bytes: new Uint8Array(0) };
  #tmpCounter = 0;
  #umask = Deno.umask();
  #status: StatusFile | undefined;
  #result: ExtractResult;
  #firstError: CtnrError | undefined;
  #dirEntries: IndexEntry[] = [];
  #startTime = Date.now();

  constructor(
    reader: ContainerReader,
    outdir: string,
    plan: ExtractPlan,
    chunkSize: number,
    options: ExtractOptions,
  ) {
    this.#reader = reader;
    this.#outdir = outdir;
    this.#plan = plan;
    this.#chunkSize = chunkSize;
    this.#options = options;
    this.#result = { extracted: 0, skipped: 0, failed: 0, bytes: 0, plan };
    if (options.statusFile) this.#status = new StatusFile(options.statusFile, options.statusFormat);
  }

  async run(): Promise<ExtractResult> {
    const options = this.#options;
    await this.#updateStatus("running", "", true);
    if (!options.dryRun) await Deno.mkdir(this.#outdir, { recursive: true });
    const inFlight = new Set<Promise<void>>();
    const limit = options.concurrency ?? 16;
    for await (const { entry } of this.#reader.records({ quiet: true })) {
      if (options.signal?.aborted || (this.#firstError && !options.keepGoing)) break;
      // Reads happen here, in index order, so small payloads come from one large read.
      const payload = entry.entryType === "file" && entry.payloadSize <= SMALL_PAYLOAD
        ? await this.#readSmall(entry)
        : undefined;
      const task = this.#handle(entry, payload).then(
        (action) => {
          if (action === "skipped") this.#result.skipped++;
          else this.#result.extracted++;
          if (entry.entryType === "file" && action !== "skipped") {
            this.#result.bytes += entry.origSize;
          }
          options.onEntry?.(entry, action);
        },
        (error) => this.#fail(entry, error),
      ).finally(() => inFlight.delete(task));
      inFlight.add(task);
      if (inFlight.size >= limit) await Promise.race(inFlight);
      await this.#updateStatus("running", entry.relpath);
    }
    await Promise.all(inFlight);
    if (!options.dryRun) await this.#finishDirs();
    const interrupted = options.signal?.aborted ?? false;
    await this.#updateStatus(
      interrupted ? "interrupted" : this.#result.failed > 0 ? "failed" : "finished",
      "",
      true,
    );
    if (interrupted) {
      throw new InterruptedError(options.signal?.reason === "SIGTERM" ? "SIGTERM" : "SIGINT");
    }
    if (this.#firstError) throw this.#firstError;
    return this.#result;
  }

  #fail(entry: IndexEntry, error: unknown): void {
    const wrapped = error instanceof CtnrError ? error : new IntegrityError(
      `Cannot extract "${entry.relpath}": ${(error as Error).message}`,
      { cause: error },
    );
    this.#result.failed++;
    this.#firstError ??= wrapped;
    this.#options.onEntryError?.(entry, wrapped);
  }

  async #handle(entry: IndexEntry, payload: Uint8Array | undefined): Promise<ExtractAction> {
    const target = `${this.#outdir}/${entry.relpath}`;
    const slash = entry.relpath.lastIndexOf("/");
    const parentRel = slash < 0 ? "" : entry.relpath.slice(0, slash);
    if (entry.entryType === "dir") {
      if (!this.#options.dryRun) {
        await this.#ensureDir(entry.relpath);
        this.#dirEntries.push(entry);
      }
      return this.#options.dryRun ? "checked" : "extracted";
    }
    if (entry.entryType === "symlink") {
      if (this.#options.dryRun) return "checked";
      await this.#ensureDir(parentRel);
      const tmp = this.#tmpPath(parentRel);
      await Deno.symlink(entry.linkTarget!, tmp);
      this.#rename(tmp, target, entry);
      return "extracted";
    }
    if (this.#options.dryRun) {
      await this.#verifyOnly(entry, payload);
      return "checked";
    }
    await this.#ensureDir(parentRel);
    if (this.#options.skipExisting || this.#options.verifyExisting) {
      const kept = await this.#existing(entry, target);
      if (kept) return kept;
    }
    const tmp = this.#tmpPath(parentRel);
    try {
      if (payload !== undefined) {
        this.#writeSmall(entry, tmp, this.#decode(entry, payload));
      } else {
        await this.#streamTo(entry, tmp);
        await this.#applyMetadata(entry, tmp);
      }
      this.#rename(tmp, target, entry);
    } catch (error) {
      await Deno.remove(tmp).catch(() => {});
      throw error;
    }
    return "extracted";
  }

  /** Verify the stored bytes and return the original bytes of a small payload. */
  #decode(entry: IndexEntry, payload: Uint8Array): Uint8Array {
    const actual = createHash("sha256").update(payload).digest("hex");
    if (actual !== entry.sha256) throw shaMismatch(entry, actual);
    if (!entry.compressed) return payload;
    let bytes: Uint8Array;
    try {
      // maxOutputLength stops a gzip bomb at orig_size (+1 to tell "exactly" from "more").
      bytes = gunzipSync(payload, { maxOutputLength: entry.origSize + 1 });
    } catch (error) {
      throw new IntegrityError(
        `Cannot extract "${entry.relpath}": corrupt gzip payload or inflates past orig_size ` +
          `${entry.origSize}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (bytes.length !== entry.origSize) {
      throw new IntegrityError(
        `Cannot extract "${entry.relpath}": gzip payload inflates to ${bytes.length} bytes, ` +
          `orig_size is ${entry.origSize}`,
      );
    }
    return bytes;
  }

  async #verifyOnly(entry: IndexEntry, payload: Uint8Array | undefined): Promise<void> {
    if (payload !== undefined) {
      this.#decode(entry, payload);
      return;
    }
    for await (const _ of this.#reader.open(entry, { chunkSize: this.#chunkSize })) { /* verify */ }
  }

  async #streamTo(entry: IndexEntry, tmp: string): Promise<void> {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      for await (const piece of this.#reader.open(entry, { chunkSize: this.#chunkSize })) {
        for (let w = 0; w < piece.length;) w += await file.write(piece.subarray(w));
      }
      if (this.#options.fsync) await file.sync();
    } finally {
      file.close();
    }
  }

  /**
   * Write a small file with synchronous calls (open, write, futimens, close):
   * about 14 microseconds a file on tmpfs against about 35 for
   * `Deno.writeFile` plus async `utime` (bench/compare.ts measures the whole extract).
   */
  #writeSmall(entry: IndexEntry, tmp: string, bytes: Uint8Array): void {
    const mode = this.#modeOf(entry);
    const file = Deno.openSync(tmp, { write: true, createNew: true, mode });
    try {
      for (let w = 0; w < bytes.length;) w += file.writeSync(bytes.subarray(w));
      if ((mode & this.#umask) !== 0) Deno.chmodSync(tmp, mode);
      if (entry.mtime !== undefined) file.utimeSync(Date.now() / 1000, entry.mtime);
      if (this.#options.fsync) file.syncSync();
    } finally {
      file.close();
    }
  }

  async #applyMetadata(entry: IndexEntry, path: string): Promise<void> {
    await Deno.chmod(path, this.#modeOf(entry));
    if (entry.mtime !== undefined) await Deno.utime(path, Date.now() / 1000, entry.mtime);
  }

  /** Permission bits to give a file: the recorded ones (no setuid/setgid/sticky), else 0o666 less umask. */
  #modeOf(entry: IndexEntry): number {
    return entry.mode !== undefined ? entry.mode & 0o777 : 0o666 & ~this.#umask;
  }

  #rename(tmp: string, target: string, entry: IndexEntry): void {
    try {
      Deno.renameSync(tmp, target);
    } catch (error) {
      try {
        Deno.removeSync(tmp);
      } catch { /* already gone */ }
      if (error instanceof Deno.errors.IsADirectory || error instanceof Deno.errors.AlreadyExists) {
        throw new UnsafeEntryError(
          `Cannot extract "${entry.relpath}": a folder stands at its path in the output folder`,
        );
      }
      throw error;
    }
  }

  async #existing(entry: IndexEntry, target: string): Promise<ExtractAction | undefined> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(target);
    } catch {
      return undefined;
    }
    if (!info.isFile || info.size !== entry.origSize) return undefined;
    if (!this.#options.verifyExisting) return "skipped";
    const expected = entry.compressed ? entry.origSha256 : entry.sha256;
    if (expected === undefined) return undefined; // nothing to compare with: extract again
    const hash = createHash("sha256");
    const file = await Deno.open(target, { read: true });
    try {
      for await (const piece of file.readable) hash.update(piece);
    } catch {
      return undefined;
    }
    return hash.digest("hex") === expected ? "skipped" : undefined;
  }

  /** Create `relDir` under the output folder, refusing any symlink or non-folder on the way. */
  #ensureDir(relDir: string): Promise<void> {
    if (relDir === "") return Promise.resolve();
    let pending = this.#dirs.get(relDir);
    if (pending === undefined) {
      const slash = relDir.lastIndexOf("/");
      const parent = slash < 0 ? "" : relDir.slice(0, slash);
      pending = this.#ensureDir(parent).then(() => this.#makeDir(relDir));
      this.#dirs.set(relDir, pending);
    }
    return pending;
  }

  #makeDir(relDir: string): void {
    const path = `${this.#outdir}/${relDir}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const info = Deno.lstatSync(path);
        if (info.isDirectory) return;
        throw new UnsafeEntryError(
          info.isSymlink
            ? `Cannot extract into "${relDir}": it is a symlink in the output folder; refusing to write through it`
            : `Cannot extract into "${relDir}": a file stands at that path in the output folder`,
        );
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      try {
        Deno.mkdirSync(path);
        return;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
    }
  }

  async #finishDirs(): Promise<void> {
    // Deepest first, so setting a parent's mtime comes after its children are done.
    this.#dirEntries.sort((a, b) => b.relpath.length - a.relpath.length);
    for (const entry of this.#dirEntries) {
      const path = `${this.#outdir}/${entry.relpath}`;
      if (entry.mode !== undefined) await Deno.chmod(path, entry.mode & 0o777);
      if (entry.mtime !== undefined) await Deno.utime(path, Date.now() / 1000, entry.mtime);
    }
  }

  #tmpPath(parentRel: string): string {
    const random = Math.random().toString(36).slice(2, 10);
    const dir = parentRel === "" ? this.#outdir : `${this.#outdir}/${parentRel}`;
    return `${dir}/.ctnr-tmp-${++this.#tmpCounter}-${random}`;
  }

  /** Read a small payload, from one large read that covers the next ones too. */
  async #readSmall(entry: IndexEntry): Promise<Uint8Array> {
    const w = this.#window;
    const end = entry.offset + entry.payloadSize;
    if (entry.offset >= w.start && end <= w.start + w.bytes.length) {
      return w.bytes.subarray(entry.offset - w.start, end - w.start);
    }
    const length = Math.min(
      Math.max(READ_WINDOW, entry.payloadSize),
      this.#reader.payloadAreaEnd - entry.offset,
    );
    this.#window = { start: entry.offset, bytes: await this.#reader.readStored(entry, 0, length) };
    return this.#window.bytes.subarray(0, entry.payloadSize);
  }

  async #updateStatus(status: string, current: string, force = false): Promise<void> {
    if (!this.#status) return;
    const elapsed = (Date.now() - this.#startTime) / 1000;
    const speed = elapsed > 0 ? Math.round(this.#result.bytes / elapsed) : 0;
    await this.#status.update({
      status,
      total_files: this.#plan.entries,
      total_bytes: this.#plan.totalBytes,
      processed_files: this.#result.extracted + this.#result.skipped,
      bytes_extracted: this.#result.bytes,
      current_file: current,
      speed_bps: speed,
      eta_seconds: speed > 0
        ? Math.round((this.#plan.totalBytes - this.#result.bytes) / speed)
        : "",
      ...(status === "running" ? {} : { finished_time: new Date().toISOString() }),
    }, force);
  }
}
