/**
 * Writing one small file for `extract`, shared by the main thread and the
 * write workers: verify the stored bytes, gunzip (bounded by `orig_size`),
 * write a temp file beside the target with synchronous calls (open, write,
 * futimens, close), and rename it over the target.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { gunzipPayload } from "../io/gunzip.ts";
import { checkSha256, Sha256, sha256Hex } from "../io/sha256.ts";
import { pathKey } from "../safety/path_guard.ts";
import {
  ConflictError,
  CtnrError,
  type CtnrErrorCode,
  IntegrityError,
  UnsafeEntryError,
} from "../errors.ts";

/** What the writer needs to know of one file entry. */
export interface FileJob {
  /** Relpath, for messages. */
  relpath: string;
  /** Absolute path of the target. */
  target: string;
  /** Absolute path of the temp file, in the target's folder. */
  tmp: string;
  /** Lowercase hex SHA-256 of the stored bytes. */
  sha256: string;
  /** Whether the stored bytes are one gzip member. */
  compressed: boolean;
  /** Size in bytes of the original file. */
  origSize: number;
  /** Permission bits to apply. */
  mode: number;
  /** Modification time in seconds since the epoch, or `null` to leave it. */
  mtime: number | null;
  /** SHA-256 of the original bytes, when recorded (compressed entries). */
  origSha256: string | null;
  /** The stored bytes were already checked against `sha256` (by the main thread). */
  verified?: boolean;
  /**
   * The run made the target's folder, so nothing stands in it but what the run wrote, and names
   * fold case there: the rename first checks that no file of another name is already at the
   * target (see {@link renameOver}).
   */
  fresh?: boolean;
}

/** {@link FileJob}s in transferable form: see {@link packJobs}. */
export interface PackedJobs {
  /** Per job `relpath`, `target`, `tmp`, `sha256`, `origSha256` (or ""), each followed by NUL. */
  strings: string;
  /** Per job `origSize`, `mode`, `mtime` (NaN for null), flags (1 compressed, 2 verified, 4 fresh). */
  numbers: Float64Array<ArrayBuffer>;
}

/**
 * Pack jobs for a worker: structured cloning one string and one typed array
 * costs a fraction of cloning one object per file.
 *
 * @param jobs the jobs, in order
 * @returns the packed form, read back by {@link unpackJobs}
 */
export function packJobs(jobs: FileJob[]): PackedJobs {
  const numbers = new Float64Array(jobs.length * 4);
  const parts: string[] = [];
  jobs.forEach((job, i) => {
    parts.push(job.relpath, job.target, job.tmp, job.sha256, job.origSha256 ?? "");
    numbers[i * 4] = job.origSize;
    numbers[i * 4 + 1] = job.mode;
    numbers[i * 4 + 2] = job.mtime ?? NaN;
    numbers[i * 4 + 3] = (job.compressed ? 1 : 0) | (job.verified ? 2 : 0) | (job.fresh ? 4 : 0);
  });
  parts.push("");
  return { strings: parts.join("\0"), numbers };
}

/**
 * The jobs of {@link packJobs}, rebuilt.
 *
 * @param packed the packed jobs
 * @returns the jobs, in order
 */
export function unpackJobs(packed: PackedJobs): FileJob[] {
  const strings = packed.strings.split("\0");
  const { numbers } = packed;
  const jobs: FileJob[] = [];
  for (let i = 0; i < numbers.length / 4; i++) {
    const flags = numbers[i * 4 + 3]!;
    const mtime = numbers[i * 4 + 2]!;
    jobs.push({
      relpath: strings[i * 5]!,
      target: strings[i * 5 + 1]!,
      tmp: strings[i * 5 + 2]!,
      sha256: strings[i * 5 + 3]!,
      origSha256: strings[i * 5 + 4] || null,
      origSize: numbers[i * 4]!,
      mode: numbers[i * 4 + 1]!,
      mtime: Number.isNaN(mtime) ? null : mtime,
      compressed: (flags & 1) !== 0,
      verified: (flags & 2) !== 0,
      fresh: (flags & 4) !== 0,
    });
  }
  return jobs;
}

/** Run-wide settings of the writer. */
export interface FileSettings {
  skipExisting: boolean;
  verifyExisting: boolean;
  fsync: boolean;
  umask: number;
}

/** Outcome of {@link writeFileJob}. */
export type FileOutcome = "extracted" | "skipped";

/**
 * Verify, decode and write one small file; nothing is left behind on failure.
 *
 * @param job the entry
 * @param payload its stored bytes
 * @param settings run-wide settings
 * @returns whether it was written or skipped (existing target)
 * @throws {IntegrityError} when the payload does not verify
 * @throws {UnsafeEntryError} when a folder stands at the target
 */
export function writeFileJob(
  job: FileJob,
  payload: Uint8Array,
  settings: FileSettings,
): FileOutcome {
  if ((settings.skipExisting || settings.verifyExisting) && existingMatches(job, settings)) {
    return "skipped";
  }
  const bytes = decodePayload(job, payload);
  const file = Deno.openSync(job.tmp, { write: true, createNew: true, mode: job.mode });
  try {
    try {
      for (let w = 0; w < bytes.length;) w += file.writeSync(bytes.subarray(w));
      if ((job.mode & settings.umask) !== 0) Deno.chmodSync(job.tmp, job.mode);
      if (job.mtime !== null) file.utimeSync(Date.now() / 1000, toUtime(job.mtime));
      if (settings.fsync) file.syncSync();
    } finally {
      file.close();
    }
    renameOver(job);
  } catch (error) {
    try {
      Deno.removeSync(job.tmp);
    } catch { /* renamed or never made */ }
    throw error;
  }
  return "extracted";
}

/**
 * Write a large file: its temp file is filled by `fill` (which verifies as it copies), fsynced
 * with `fsync`, given its mode and mtime, and renamed over the target; on any failure the temp
 * file is removed and the error thrown.
 *
 * @param job the entry
 * @param settings run-wide settings
 * @param fill writes the original bytes into the open temp file
 * @returns whether it was written or skipped (existing target)
 * @throws {IntegrityError} from `fill` when the payload does not verify
 * @throws {UnsafeEntryError} when a folder stands at the target
 */
export async function writeLargeFile(
  job: FileJob,
  settings: FileSettings,
  fill: (file: Deno.FsFile) => Promise<void>,
): Promise<FileOutcome> {
  if ((settings.skipExisting || settings.verifyExisting) && existingMatches(job, settings)) {
    return "skipped";
  }
  const file = await Deno.open(job.tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    try {
      await fill(file);
      if (settings.fsync) await file.sync();
      await Deno.chmod(job.tmp, job.mode);
      if (job.mtime !== null) await file.utime(Date.now() / 1000, toUtime(job.mtime));
    } finally {
      file.close();
    }
    renameOver(job);
  } catch (error) {
    await Deno.remove(job.tmp).catch(() => {});
    throw error;
  }
  return "extracted";
}

/**
 * Check the stored bytes against `sha256` and return the original bytes.
 *
 * @param job the entry
 * @param payload stored bytes
 * @returns the original bytes
 * @throws {IntegrityError} on a SHA-256 mismatch, corrupt gzip, or a size other than `orig_size`
 */
export function decodePayload(job: FileJob, payload: Uint8Array): Uint8Array {
  if (!job.verified) verifyStored(job, payload);
  if (!job.compressed) return payload;
  return gunzipPayload(job.relpath, payload, job.origSize);
}

/**
 * Check stored bytes against the entry's `sha256`.
 *
 * @param job the entry
 * @param payload stored bytes
 * @throws {IntegrityError} on a mismatch
 */
export function verifyStored(job: FileJob, payload: Uint8Array): void {
  checkSha256(job.relpath, job.sha256, payload);
}

/**
 * Rename the temp file over the target (never through a link: rename replaces
 * a symlink standing at the target, it does not follow it). In a folder the run made
 * (`fresh`), a file found at the target under another name is one this run wrote under a
 * name the file system folds together with this one (the plan's case folding missed it): it
 * is refused, never replaced.
 *
 * @param job the entry
 * @throws {UnsafeEntryError} when a folder stands at the target
 * @throws {ConflictError} naming both entries, when in a folder the run made the target is
 *   already a file of another name
 */
export function renameOver(
  job: { tmp: string; target: string; relpath: string; fresh?: boolean },
): void {
  if (job.fresh) refuseOwnFile(job);
  try {
    Deno.renameSync(job.tmp, job.target);
  } catch (error) {
    if (error instanceof Deno.errors.IsADirectory || error instanceof Deno.errors.AlreadyExists) {
      throw new UnsafeEntryError(
        `Cannot extract "${job.relpath}": a folder stands at its path in the output folder`,
      );
    }
    throw error;
  }
}

/**
 * In a folder the run made, refuse a target that is already a file of another name: the file
 * system stores two of the run's names as one file. One `stat` (the target is missing, as it
 * should be); the folder is listed only when something stands there.
 *
 * @throws {ConflictError} naming both entries
 */
function refuseOwnFile(job: { target: string; relpath: string }): void {
  // existsSync does not throw when nothing is there: a thrown NotFound costs about 12 us a file
  // (the error and its stack), 2.4 us without (100,000 files: 1 s of CPU against 0.2 s).
  if (!existsSync(job.target)) return;
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(job.target);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  const slash = job.target.lastIndexOf("/");
  const folder = job.target.slice(0, slash);
  const name = job.target.slice(slash + 1);
  // Which name it is: the one with the same inode, or (a FUSE file system numbers each name it
  // is asked for on its own) the one equal after case folding.
  const folded = pathKey(name, true);
  let other: string | undefined;
  let similar: string | undefined;
  for (const item of Deno.readDirSync(folder)) {
    if (item.name === name) return; // the same name (another run into the same folder)
    try {
      const found = Deno.lstatSync(`${folder}/${item.name}`);
      if (found.ino === info.ino && found.dev === info.dev) other ??= item.name;
    } catch { /* gone since listed */ }
    if (pathKey(item.name, true) === folded) similar ??= item.name;
  }
  other ??= similar;
  const relSlash = job.relpath.lastIndexOf("/");
  const otherRel = other === undefined
    ? "another name in its folder"
    : `"${job.relpath.slice(0, relSlash + 1)}${other}"`;
  throw new ConflictError(
    `Cannot extract "${job.relpath}": the file system stores it as the same file as ${otherRel}, ` +
      `which this run wrote (it folds the two names together); refusing to replace it`,
  );
}

/**
 * An mtime fit for `utime`: rounded to the millisecond ctnr records, so a
 * denormal value near zero (`-4.8e-33`) does not fail with EINVAL.
 *
 * @param seconds seconds since the epoch
 * @returns the same time, rounded to milliseconds
 */
export function toUtime(seconds: number): number {
  return Math.round(seconds * 1000) / 1000 || 0;
}

/**
 * Whether an existing target may be kept (`--skip-existing` / `--verify-existing`): a regular
 * file of size `orig_size` and, with `verifyExisting`, whose SHA-256 matches (`sha256` of an
 * uncompressed entry, `orig_sha256` of a compressed one; an entry with neither is extracted
 * again). Only `orig_size` bytes are read, into one buffer this thread reuses (a fresh 1 MiB
 * buffer a file made 20,000 x 4 KiB take 2.5-3.2 s and 660-900 MB, against 0.7 s for extracting
 * them again).
 *
 * @param job the entry
 * @param settings run-wide settings
 * @returns `true` when the target may be kept
 */
export function existingMatches(job: FileJob, settings: FileSettings): boolean {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(job.target);
  } catch {
    return false;
  }
  if (!info.isFile || info.size !== job.origSize) return false;
  if (!settings.verifyExisting) return true;
  const expected = job.compressed ? job.origSha256 : job.sha256;
  if (expected === null) return false; // nothing to compare with: extract again
  return sha256OfExisting(job.target, job.origSize) === expected;
}

/** Largest existing file hashed in one read; a larger one is hashed in pieces of this size. */
const EXISTING_PIECE = 1 << 20;

/** The read buffer of {@link sha256OfExisting}, reused by every call on this thread. */
let existingBuffer = new Uint8Array(0);

/**
 * SHA-256 of the first `size` bytes of the file at `path`, or `undefined` when it holds fewer
 * (it shrank since its lstat). Read through {@link existingBuffer}: whole and hashed in one
 * call up to {@link EXISTING_PIECE}, else in pieces of that size.
 */
function sha256OfExisting(path: string, size: number): string | undefined {
  const file = Deno.openSync(path, { read: true });
  try {
    if (size <= EXISTING_PIECE) {
      const bytes = readExactly(file, size);
      return bytes === undefined ? undefined : sha256Hex(bytes);
    }
    const hash = new Sha256();
    for (let done = 0; done < size;) {
      const bytes = readExactly(file, Math.min(EXISTING_PIECE, size - done));
      if (bytes === undefined) return undefined;
      hash.update(bytes);
      done += bytes.length;
    }
    return hash.digest();
  } finally {
    file.close();
  }
}

/** The next `length` bytes of `file`, a view into {@link existingBuffer}; `undefined` at its end. */
function readExactly(file: Deno.FsFile, length: number): Uint8Array | undefined {
  if (existingBuffer.length < length) existingBuffer = new Uint8Array(length);
  const bytes = existingBuffer.subarray(0, length);
  for (let got = 0; got < length;) {
    const n = file.readSync(bytes.subarray(got));
    if (n === null) return undefined;
    got += n;
  }
  return bytes;
}

/** A failure as it crosses a worker boundary. */
export interface FaultRecord {
  code: CtnrErrorCode | "OTHER";
  message: string;
  /**
   * What lies under it, outermost first: for "OTHER" the error itself (so a `TypeError` stays
   * one by name), then each `cause` in turn. `code` is an OS error's ("ENOENT") or a zlib
   * error's ("Z_DATA_ERROR") when it has one.
   */
  causes: { name: string; message: string; code?: string; stack?: string }[];
}

/** Turn any error into a {@link FaultRecord}: its class and causes travel by name. */
export function toFault(error: unknown): FaultRecord {
  const causes: FaultRecord["causes"] = [];
  // At most 8 links: a cause chain may loop back on itself.
  for (
    let link = error instanceof CtnrError ? error.cause : error;
    link !== undefined && causes.length < 8;
    link = link instanceof Error ? link.cause : undefined
  ) {
    const cause: FaultRecord["causes"][number] = link instanceof Error
      ? { name: link.name, message: link.message }
      : { name: "Error", message: String(link) };
    const code = (link as { code?: unknown } | null)?.code;
    if (typeof code === "string") cause.code = code;
    if (link instanceof Error && link.stack !== undefined) cause.stack = link.stack;
    causes.push(cause);
  }
  if (error instanceof CtnrError) return { code: error.code, message: error.message, causes };
  return { code: "OTHER", message: (error as Error)?.message ?? String(error), causes };
}

/**
 * Turn a {@link FaultRecord} back into an error of the right class, with the same message; its
 * causes come back as `Error`s that carry the original names, messages, codes and stacks.
 */
export function fromFault(fault: FaultRecord, relpath: string): CtnrError {
  const error = fault.code === "UNSAFE_ENTRY"
    ? new UnsafeEntryError(fault.message)
    : fault.code === "CONFLICT"
    ? new ConflictError(fault.message)
    : fault.code === "INTEGRITY"
    ? new IntegrityError(fault.message)
    : fault.code !== "OTHER"
    ? new CtnrError(fault.code, fault.message)
    : new CtnrError("IO", `Cannot extract "${relpath}": ${fault.message}`);
  // Innermost first, each the cause of the one before; set as `new Error(m, { cause })` would
  // (not every class here takes options).
  const cause = fault.causes.reduceRight<Error | undefined>((inner, link) => {
    const rebuilt = new Error(link.message, inner === undefined ? undefined : { cause: inner });
    rebuilt.name = link.name;
    if (link.code !== undefined) Object.assign(rebuilt, { code: link.code });
    if (link.stack !== undefined) rebuilt.stack = link.stack;
    return rebuilt;
  }, undefined);
  if (cause !== undefined) {
    Object.defineProperty(error, "cause", { value: cause, writable: true, configurable: true });
  }
  return error;
}
