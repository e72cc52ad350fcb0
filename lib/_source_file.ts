/**
 * Reading one small source file for `create`, shared by the main thread and
 * the read workers: open, fstat, read whole, close (synchronous calls),
 * SHA-256, and gzip when asked.
 *
 * @module
 */

import { hash } from "node:crypto";
import { gzipSync } from "node:zlib";

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
  | { kind: "error"; message: string };

/**
 * Read, hash and optionally gzip one file (see {@link readSourceFile}).
 *
 * Synchronous calls: on tmpfs this is about 13 microseconds a file against
 * about 45 for the same work as async ops (bench/compare.ts).
 *
 * @param path file path
 * @param compress gzip the payload (node:zlib, see {@link gzip})
 * @param limit largest size in bytes read whole; a larger file is `large` (streamed instead)
 * @returns the payload, or `large`/`special`/`error`
 */
export function loadSourceFile(
  path: string,
  compress: boolean,
  limit: number = SMALL_FILE,
): SourceRead {
  const read = readSourceFile(path, limit);
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
 * One fstat, then reads into a buffer one byte larger than the size it gave:
 * a file whose size changed in between (it grew, or ended early) is read
 * again, at most three times. The mtime is the one from before the read, so
 * a file rewritten in place during it shows as changed on the next resume.
 * One fstat rather than tar's two: the second cost 15% of a small file's
 * read time (bench/compare.ts); large files, read in many calls, still get
 * both (lib/creator.ts).
 *
 * @param path file path
 * @param limit largest size in bytes read whole; a larger file is `large` (streamed instead)
 * @param allocate gives the buffer of `length` bytes to read into (default: a new one); the
 *   bytes returned are its start
 * @returns the bytes with mode and mtime, or `large`/`special`/`error`
 */
export function readSourceFile(
  path: string,
  limit: number = SMALL_FILE,
  allocate: (length: number) => Uint8Array = (length) => new Uint8Array(length),
):
  | { kind: "raw"; bytes: Uint8Array; mode: number; mtime: number }
  | Exclude<SourceRead, { kind: "small" }> {
  let read: { bytes: Uint8Array; mode: number; mtime: number } | undefined;
  try {
    for (let attempt = 0; attempt < 3 && read === undefined; attempt++) {
      const file = Deno.openSync(path, { read: true });
      try {
        const info = file.statSync();
        if (!info.isFile) return { kind: "special" };
        const mode = (info.mode ?? 0o644) & 0o7777;
        const mtime = (info.mtime?.getTime() ?? 0) / 1000;
        if (info.size > limit) return { kind: "large", mode, mtime };
        // One byte more than fstat said: a file that grew since shows it in the same read call.
        const buffer = allocate(info.size + 1);
        let filled = 0;
        while (filled <= info.size) {
          const wanted = buffer.length - filled;
          const n = file.readSync(buffer.subarray(filled));
          if (n === null) break;
          filled += n;
          // A short read once `size` bytes are in is the end of a regular file: no extra call.
          if (n < wanted && filled >= info.size) break;
        }
        if (filled === info.size) read = { bytes: buffer.subarray(0, filled), mode, mtime };
      } finally {
        file.close();
      }
    }
  } catch (error) {
    return { kind: "error", message: (error as Error).message };
  }
  if (read === undefined) {
    return { kind: "error", message: "it changed while being read (3 tries)" };
  }
  return { kind: "raw", ...read };
}

/**
 * Lowercase hex SHA-256 of `bytes`. `node:crypto`'s one-shot `hash()`: 290k+ small buffers/s
 * (8x `crypto.subtle`), and unlike `createHash()` it leaves no native object for the garbage
 * collector, which kept about 110 MiB of RSS alive over a million files.
 */
export function sha256Hex(bytes: Uint8Array): string {
  return hash("sha256", bytes, "hex");
}

/**
 * One gzip member (RFC 1952) of a small file's bytes, level 6, deterministic
 * (header mtime 0). `node:zlib` rather than `CompressionStream`: on 1-16 KiB
 * text files it compresses 287 MB/s against 93 MB/s, since a stream per
 * small file costs more than the deflate itself; `CompressionStream` alone
 * would miss the target of matching `tar | pigz -6` (bench/compare.ts).
 * Large files are streamed through `CompressionStream` (lib/creator.ts).
 */
export function gzip(bytes: Uint8Array): Uint8Array {
  // Output pieces of at most 4 KiB rather than 16 KiB, and no larger than the file needs: each
  // call allocates one, zero-filled, and it is freed only by a later garbage collection (about
  // 25% faster on these files, and less memory held). The bytes out are the same.
  return gzipSync(bytes, { level: 6, chunkSize: Math.min(4096, Math.max(64, bytes.length + 64)) });
}
