/**
 * Streaming a large source file into the writer: opened without blocking,
 * read in pieces up to one byte past the size it had when opened, and
 * fstat'ed again at the end. A file that changed while it was read (size or
 * mtime, or it grew past its size) has its bytes taken back by the writer
 * and is read again, at most three times in all, then refused: the
 * container never holds a payload that disagrees with its entry, and a file
 * that keeps growing (a log) cannot keep the run reading.
 *
 * @module
 */

import { open as openFile } from "node:fs/promises";
import { InterruptedError, SourceError, stoppedBy } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import type { ContainerWriter } from "./container_writer.ts";
import type { Settings } from "./options.ts";
import type { WalkEntry } from "./walk.ts";
import { loadSourceFile, NONBLOCKING_READ, SMALL_FILE } from "./_source_file.ts";

/** What {@link streamSourceFile} needs of an open source file. */
export interface SourceHandle {
  /** fstat: whether it is a regular file, its size in bytes, its mtime in milliseconds. */
  stat(): Promise<{ isFile: boolean; size: number; mtimeMs: number; mode: number }>;
  /** Read into `into` from the current position; the bytes read, 0 at the end. */
  read(into: Uint8Array): Promise<number>;
  /** Close it. */
  close(): Promise<void>;
}

/** Opens a source file for {@link streamSourceFile}. */
export type OpenSource = (path: string) => Promise<SourceHandle>;

/**
 * The real opener: `node:fs/promises` with {@link NONBLOCKING_READ}, as `Deno.open` cannot pass
 * `O_NONBLOCK` (a file swapped for a FIFO after the walk would wait for a writer for ever).
 * Reads as fast as `Deno.FsFile.read` (256 MiB in 4 MiB pieces on tmpfs: 39-40 ms both).
 */
export const openSource: OpenSource = async (path) => {
  const handle = await openFile(path, NONBLOCKING_READ);
  return {
    stat: async () => {
      const info = await handle.stat();
      return { isFile: info.isFile(), size: info.size, mtimeMs: info.mtimeMs, mode: info.mode };
    },
    read: async (into) => (await handle.read(into, 0, into.length, null)).bytesRead,
    close: () => handle.close(),
  };
};

/** How many times a file that changes while being read is read in all. */
export const READ_TRIES = 3;

/** A file changed while being read: read it again. */
class ChangedWhileRead extends Error {}

/**
 * Add a file too large for a read batch: plain files copied in pieces of
 * `copySize` bytes through two buffers, compressed ones read in `chunkSize`
 * pieces and gzipped as a stream. A file that changes while it is read is
 * read again (see the module doc).
 *
 * @param writer where it goes
 * @param walk the walked file (its relpath is the entry's; mode and mtime are taken again at
 *   open)
 * @param settings the run's settings
 * @param options `open`: opens the file (a seam for tests); `signal`: once aborted, the copy
 *   stops before its next piece, its bytes taken back (a file of many GiB must not hold a
 *   SIGTERM for minutes); `onRead`: called after each piece read with the bytes read so far of
 *   this try (progress)
 * @returns its entry
 * @throws {SourceError} when it cannot be read, is no longer a regular file, or changed each of
 *   the {@link READ_TRIES} times it was read
 * @throws {InterruptedError} when `signal` was aborted
 */
export async function streamSourceFile(
  writer: ContainerWriter,
  walk: WalkEntry,
  settings: Settings,
  options: {
    open?: OpenSource;
    signal?: AbortSignal | undefined;
    onRead?: ((read: number) => void) | undefined;
  } = {},
): Promise<IndexEntry> {
  for (let attempt = 1;; attempt++) {
    try {
      return await streamOnce(
        writer,
        walk,
        settings,
        options.open ?? openSource,
        options.signal,
        options.onRead,
      );
    } catch (error) {
      if (!(error instanceof ChangedWhileRead)) throw error;
      if (attempt === READ_TRIES) {
        throw new SourceError(
          `Cannot read "${walk.relpath}": it changed while being read (${READ_TRIES} tries; ` +
            `the last: ${error.message})`,
          { relpath: walk.relpath },
        );
      }
    }
  }
}

async function streamOnce(
  writer: ContainerWriter,
  walk: WalkEntry,
  settings: Settings,
  open: OpenSource,
  signal: AbortSignal | undefined,
  onRead: ((read: number) => void) | undefined,
): Promise<IndexEntry> {
  const cannotRead = (error: unknown) =>
    new SourceError(
      `Cannot read "${walk.relpath}": ${
        (error as { code?: string }).code === "ELOOP"
          ? "it is no longer a regular file (a link now)"
          : (error as Error).message
      }`,
      { cause: error, relpath: walk.relpath },
    );
  const file = await open(walk.path).catch((error) => {
    throw cannotRead(error);
  });
  let closed = false;
  try {
    const before = await file.stat();
    if (!before.isFile) {
      throw new SourceError(`Cannot read "${walk.relpath}": it is no longer a regular file`, {
        relpath: walk.relpath,
      });
    }
    if (settings.compress && before.size <= SMALL_FILE) {
      // A small file left to this path by a read batch's byte budget: gzipped whole, as the
      // read workers do, so that its bytes do not depend on which path read it.
      await file.close();
      closed = true;
      return await addSmallCompressed(writer, walk);
    }
    // The entry says what was read: the mode and mtime of this open, not of the walk.
    const header = { ...walk, mode: before.mode & 0o7777, mtime: before.mtimeMs / 1000 };
    // Up to one byte past the size at open: enough to see growth, never a chase.
    const limit = before.size + 1;
    let read = 0;
    const next = async (into: Uint8Array): Promise<Uint8Array | null> => {
      if (signal?.aborted) throw new InterruptedError(stoppedBy(signal));
      const room = Math.min(into.length, limit - read);
      const n = room > 0
        ? await file.read(into.subarray(0, room)).catch((error) => {
          throw cannotRead(error);
        })
        : 0;
      if (n === 0) {
        const after = await file.stat();
        if (after.size !== read || before.size !== read || after.mtimeMs !== before.mtimeMs) {
          throw new ChangedWhileRead(
            `size ${before.size} -> ${after.size}, ${read} bytes read` +
              (after.mtimeMs !== before.mtimeMs ? ", mtime changed" : ""),
          );
        }
        return null;
      }
      read += n;
      onRead?.(read);
      return into.subarray(0, n);
    };
    if (!settings.compress) {
      // No larger than the file needs (one byte more shows growth in the same call).
      const pieceSize = Math.min(settings.copySize, Math.max(1024, limit));
      return await writer.addFileFrom(header, next, pieceSize);
    }
    return await writer.addFileStream(
      header,
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          const piece = await next(new Uint8Array(settings.chunkSize));
          if (piece === null) controller.close();
          else controller.enqueue(piece);
        },
        // Two chunks read ahead: the next read runs while this one is gzipped and written.
      }, { highWaterMark: 2 }),
    );
  } finally {
    if (!closed) await file.close();
  }
}

async function addSmallCompressed(writer: ContainerWriter, walk: WalkEntry): Promise<IndexEntry> {
  const read = loadSourceFile(walk.path, true);
  if (read.kind === "small") {
    return await writer.addPrepared({ ...walk, mode: read.mode, mtime: read.mtime }, {
      stored: read.payload,
      sha256: read.sha256,
      origSize: read.size,
      origSha256: read.origSha256!,
    });
  }
  const why = read.kind === "error"
    ? read.message
    : read.kind === "special"
    ? "it is no longer a regular file"
    : "it grew past 256 KiB while being packed";
  throw new SourceError(`Cannot read "${walk.relpath}": ${why}`, { relpath: walk.relpath });
}
