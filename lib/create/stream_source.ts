/**
 * Streaming a large source file into the writer: opened once, read in
 * pieces, and fstat'ed again at the end, so a file that changed while it
 * was read (size or mtime) is refused, its bytes taken back by the writer.
 *
 * @module
 */

import { SourceError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import type { ContainerWriter } from "./container_writer.ts";
import type { Settings } from "./options.ts";
import type { WalkEntry } from "./walk.ts";
import { loadSourceFile, SMALL_FILE } from "./_source_file.ts";

/**
 * Add a file too large for a read batch: plain files copied in pieces of
 * `copySize` bytes through two buffers, compressed ones read in `chunkSize`
 * pieces and gzipped as a stream.
 *
 * @param writer where it goes
 * @param walk the walked file (its relpath, mode and mtime are the entry's)
 * @param settings the run's settings
 * @returns its entry
 * @throws {SourceError} when it cannot be read, or changed while it was read
 */
export async function streamSourceFile(
  writer: ContainerWriter,
  walk: WalkEntry,
  settings: Settings,
): Promise<IndexEntry> {
  const file = await Deno.open(walk.path, { read: true }).catch((error) => {
    throw new SourceError(`Cannot read "${walk.relpath}": ${(error as Error).message}`, {
      cause: error,
    });
  });
  let closed = false;
  try {
    const before = await file.stat();
    if (settings.compress && before.size <= SMALL_FILE) {
      // A small file left to this path by a read batch's byte budget: gzipped whole, as the
      // read workers do, so that its bytes do not depend on which path read it.
      file.close();
      closed = true;
      return await addSmallCompressed(writer, walk);
    }
    let read = 0;
    const next = async (into: Uint8Array): Promise<Uint8Array | null> => {
      const n = await file.read(into);
      if (n === null) {
        await checkUnchanged(file, walk, before, read);
        return null;
      }
      read += n;
      return into.subarray(0, n);
    };
    if (!settings.compress) {
      // No larger than the file needs (one byte more shows growth in the same call).
      const pieceSize = Math.min(settings.copySize, Math.max(1024, before.size + 1));
      return await writer.addFileFrom(walk, next, pieceSize);
    }
    return await writer.addFileStream(
      walk,
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
    if (!closed) file.close();
  }
}

async function addSmallCompressed(writer: ContainerWriter, walk: WalkEntry): Promise<IndexEntry> {
  const read = loadSourceFile(walk.path, true);
  if (read.kind === "small") {
    return await writer.addPrepared(walk, {
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
  throw new SourceError(`Cannot read "${walk.relpath}": ${why}`);
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
