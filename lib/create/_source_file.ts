/**
 * Reading small source files for `create`, shared by the main thread and
 * the read workers: open, fstat, read whole, close (synchronous calls),
 * SHA-256, and gzip when asked; one file, or a batch packed for a worker
 * ({@link readBatch}).
 *
 * @module
 */

import { closeSync, constants, openSync, readSync } from "node:fs";
import { gzip } from "../io/gzip.ts";
import { sha256Hex } from "../io/sha256.ts";

/** Files up to this size in bytes are read whole; larger ones are streamed. */
export const SMALL_FILE = 256 << 10;

/** Result of {@link loadSourceFile}. */
export type SourceRead =
  | {
    kind: "small";
    /** Permission bits. */
    mode: number;
    /** Seconds since the epoch. */
    mtime: number;
    /** Original size in bytes. */
    size: number;
    /** Stored bytes (gzip member when compressed). */
    payload: Uint8Array;
    /** SHA-256 of the stored bytes. */
    sha256: string;
    /** SHA-256 of the original bytes (compressed only). */
    origSha256?: string;
  }
  | { kind: "large"; mode: number; mtime: number }
  | { kind: "special" }
  | { kind: "own" }
  | { kind: "error"; message: string };

/**
 * Read, hash and optionally gzip one file (see {@link readSourceFile}).
 *
 * Synchronous calls: on tmpfs this is about 13 microseconds a file against
 * about 45 for the same work as async ops (bench/compare.ts).
 *
 * @param path file path
 * @param compress gzip the payload (node:zlib, see {@link gzip})
 * @returns the payload, or `large`/`special`/`error`
 */
export function loadSourceFile(path: string, compress: boolean): SourceRead {
  const read = readSourceFile(path);
  if (read.kind !== "raw") return read;
  const { bytes, mode, mtime } = read;
  if (!compress) {
    return {
      kind: "small",
      mode,
      mtime,
      size: bytes.length,
      payload: bytes,
      sha256: sha256Hex(bytes),
    };
  }
  const payload = gzip(bytes);
  return {
    kind: "small",
    mode,
    mtime,
    size: bytes.length,
    payload,
    sha256: sha256Hex(payload),
    origSha256: sha256Hex(bytes),
  };
}

/**
 * The synchronous part of {@link loadSourceFile}: the original bytes, unhashed.
 * One lstat, then a non-blocking open that follows no link ({@link NONBLOCKING_READ}) and
 * reads into a buffer one byte larger than the size lstat gave: a file whose size changed in
 * between (it grew, or ended early), or that was swapped for a link or a FIFO since, is looked
 * at again, at most three times. The mtime is the one from before the read, so a file rewritten
 * in place during it shows as changed on the next resume. One stat rather than tar's two: the
 * second cost 15% of a small file's read time (bench/compare.ts); large files, read in many
 * calls, still get both (lib/create/stream_source.ts).
 *
 * Why not `Deno.openSync`: it blocks until a writer comes when the path is a FIFO, and a file
 * swapped for one after the walk stalled the read worker for good. `node:fs` can pass
 * `O_NONBLOCK`; its `fstatSync` costs 4-5 µs a file more than `Deno.lstatSync` (20,000 files
 * of 4 KiB on tmpfs: lstat + node open/read 120 ms, node open/fstat/read 200 ms, Deno
 * open/fstat/read 107 ms), hence lstat before the open with `O_NOFOLLOW`, not fstat after it.
 *
 * @param path file path
 * @param limit largest size in bytes read whole; a larger file is `large` (streamed instead)
 * @param allocate gives the buffer of `length` bytes to read into (default: a new one); the
 *   bytes returned are its start
 * @param own device and inode numbers, in pairs, of the files the run writes (the container,
 *   its index): a file with one of them is `own`, never read (a hard link or bind mount of the
 *   container inside the source would otherwise be read while it grows)
 * @returns the bytes with mode and mtime, or `large`/`special`/`own`/`error`
 */
export function readSourceFile(
  path: string,
  limit: number = SMALL_FILE,
  allocate: (length: number) => Uint8Array = (length) => new Uint8Array(length),
  own: readonly number[] = [],
):
  | { kind: "raw"; bytes: Uint8Array; mode: number; mtime: number }
  | Exclude<SourceRead, { kind: "small" }> {
  let why = "it changed while being read (3 tries)";
  for (let attempt = 0; attempt < 3; attempt++) {
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch (error) {
      return { kind: "error", message: (error as Error).message };
    }
    if (!info.isFile) return { kind: "special" };
    if (isOwn(info, own)) return { kind: "own" };
    const mode = (info.mode ?? 0o644) & 0o7777;
    const mtime = (info.mtime?.getTime() ?? 0) / 1000;
    if (info.size > limit) return { kind: "large", mode, mtime };
    let fd: number;
    try {
      fd = openSync(path, NONBLOCKING_READ);
    } catch (error) {
      // Swapped for a link since the lstat (O_NOFOLLOW): look again.
      if ((error as { code?: string }).code === "ELOOP") continue;
      return { kind: "error", message: (error as Error).message };
    }
    try {
      // One byte more than lstat said: a file that grew since shows it in the same read call.
      const buffer = allocate(info.size + 1);
      let filled = 0;
      while (filled <= info.size) {
        const wanted = buffer.length - filled;
        const n = readSync(fd, buffer, filled, wanted, null);
        if (n === 0) break;
        filled += n;
        // A short read once `size` bytes are in is the end of a regular file: no extra call.
        if (n < wanted && filled >= info.size) break;
      }
      if (filled === info.size) {
        return { kind: "raw", bytes: buffer.subarray(0, filled), mode, mtime };
      }
    } catch (error) {
      // A FIFO swapped in since the lstat, with a writer and nothing written yet: look again.
      if ((error as { code?: string }).code !== "EAGAIN") {
        return { kind: "error", message: (error as Error).message };
      }
      why = "it is no longer a regular file";
    } finally {
      closeSync(fd);
    }
  }
  return { kind: "error", message: why };
}

/** Whether an open file is one of `own` (device, inode pairs): the same file, whatever its name. */
function isOwn(info: Deno.FileInfo, own: readonly number[]): boolean {
  for (let i = 0; i < own.length; i += 2) {
    if (info.dev === own[i] && info.ino === own[i + 1]) return true;
  }
  return false;
}

/**
 * Flags of every source open: read only, never block (a FIFO or device swapped in after the
 * walk answers at once instead of waiting for a writer), never follow a link (the walk saw a
 * regular file at this path, not a link).
 */
export const NONBLOCKING_READ = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

/**
 * A batch of files to read: their paths joined by NUL (one string clones faster than many).
 * Once `budget` bytes are read, a file that would go past it is answered `large` (the caller
 * streams it), so a batch of big files stays bounded in memory.
 */
export interface ReadBatch {
  paths: string;
  compress: boolean;
  budget: number;
  /** A buffer to pack the payloads into, handed back by the writer (its bytes are stale). */
  buffer?: ArrayBuffer;
  /** Device and inode numbers, in pairs, of the run's own files: never read (`own`). */
  own?: number[];
  /** Hash plain payloads too (compressed ones always are). @default false */
  hash?: boolean;
}

/**
 * Per file, in `numbers` (5 a file): kind (0 small, 1 large, 2 special, 3 error, 4 own), mode, mtime,
 * original size, stored size; `sha256` holds, for compressed batches, 128 hex digits a small file
 * (stored, then original), for plain batches 64 when the batch asked for `hash`, else none (the
 * caller hashes); `payloads` the stored
 * bytes back to back from its start (it may be longer); `errors` the messages of kind 3.
 */
export interface ReadBatchResult {
  numbers: Float64Array<ArrayBuffer>;
  sha256: string;
  payloads: Uint8Array<ArrayBuffer>;
  errors: string[];
}

/**
 * Read a batch of small files (the work of a read worker; also run on the main thread for the
 * first files of a tree). Hashes compressed payloads, and plain ones when `hash` asks.
 *
 * @param batch the paths, whether to gzip, and the byte budget
 * @returns numbers, digests and payloads packed as {@link ReadBatchResult} describes
 */
export function readBatch(
  { paths, compress, budget, buffer, own, hash }: ReadBatch,
): ReadBatchResult {
  const list = paths.split("\0");
  const numbers = new Float64Array(list.length * 5);
  const digests: string[] = [];
  const errors: string[] = [];
  // Payloads back to back in one buffer: plain files are read straight into it (no copy).
  // Gzip members are often far smaller than the files: start small, grow by doubling.
  const wanted = compress ? 64 << 10 : Math.min(budget, 1 << 20) + 1;
  // A reused buffer needs no zero-filling: only the bytes written here are read back.
  let packed = buffer !== undefined && buffer.byteLength >= wanted
    ? new Uint8Array(buffer)
    : new Uint8Array(wanted);
  let total = 0;
  let original = 0; // bytes read
  const room = (length: number): Uint8Array => {
    if (total + length > packed.length) {
      const grown = new Uint8Array(Math.max(packed.length * 2, total + length));
      grown.set(packed.subarray(0, total));
      packed = grown;
    }
    return packed.subarray(total, total + length);
  };
  for (let i = 0; i < list.length; i++) {
    const limit = Math.min(SMALL_FILE, Math.max(0, budget - original));
    // Compressed: read into the scratch buffer; only the gzip member goes into `packed`.
    const read = readSourceFile(list[i]!, limit, compress ? scratch : room, own);
    const at = i * 5;
    if (read.kind === "raw") {
      numbers[at] = 0;
      numbers[at + 1] = read.mode;
      numbers[at + 2] = read.mtime;
      numbers[at + 3] = read.bytes.length;
      original += read.bytes.length;
      if (compress) {
        const payload = gzip(read.bytes);
        digests.push(sha256Hex(payload), sha256Hex(read.bytes));
        room(payload.length).set(payload);
        numbers[at + 4] = payload.length;
        total += payload.length;
      } else {
        if (hash) digests.push(sha256Hex(read.bytes));
        numbers[at + 4] = read.bytes.length;
        total += read.bytes.length;
      }
    } else {
      numbers[at] = KIND_CODE[read.kind];
      if (read.kind === "large") {
        numbers[at + 1] = read.mode;
        numbers[at + 2] = read.mtime;
      } else if (read.kind === "error") errors.push(read.message);
    }
  }
  return { numbers, sha256: digests.join(""), payloads: packed, errors };
}

let scratchBuffer = new Uint8Array(0);

/**
 * A reused buffer of at least `length` bytes, for bytes consumed before the next call (a file's
 * original bytes on their way to gzip): a fresh zero-filled buffer per file was ~200 MiB of
 * garbage on 20,000 text files (bench/compare.ts gzip case).
 */
function scratch(length: number): Uint8Array {
  if (scratchBuffer.length < length) scratchBuffer = new Uint8Array(Math.max(length, 64 << 10));
  return scratchBuffer.subarray(0, length);
}

const KIND_CODE: Record<Exclude<SourceRead["kind"], "small">, number> = {
  large: 1,
  special: 2,
  error: 3,
  own: 4,
};
