/**
 * The stored form of a file that arrives in pieces: its original bytes
 * hashed as they pass and, when compressing, gzipped through
 * `CompressionStream` (one member; its bytes depend on the pieces it is
 * given), then the stored pieces hashed as they go out to be written.
 *
 * @module
 */

import { copyInTurns } from "../io/copy.ts";
import { Sha256 } from "../io/sha256.ts";
import type { PieceReader } from "./writer_options.ts";

/** What the stored bytes of a file came to. */
export interface StoredPayload {
  /** Size in bytes of the stored bytes. */
  payloadSize: number;
  /** SHA-256 of the stored bytes. */
  sha256: string;
  /** Size in bytes of the original bytes. */
  origSize: number;
  /** SHA-256 of the original bytes (compressed only). */
  origSha256?: string;
}

/**
 * Store a stream of original bytes.
 *
 * @param stream the original bytes
 * @param compress gzip them
 * @param write writes a stored piece (at the end of the container)
 * @returns sizes and digests
 */
export async function storeStream(
  stream: ReadableStream<Uint8Array>,
  compress: boolean,
  write: (piece: Uint8Array) => Promise<void>,
): Promise<StoredPayload> {
  const origHash = compress ? new Sha256() : undefined;
  let origSize = 0;
  const original = stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        origSize += chunk.length;
        origHash?.update(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
  const stored = compress
    ? original.pipeThrough(
      new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    )
    : original;
  const hash = new Sha256();
  let payloadSize = 0;
  for await (const piece of stored) {
    // The write runs on Deno's I/O threads while this thread hashes the same bytes.
    const written = write(piece);
    hash.update(piece);
    payloadSize += piece.length;
    await written;
  }
  const result: StoredPayload = { payloadSize, sha256: hash.digest(), origSize };
  if (origHash) result.origSha256 = origHash.digest();
  return result;
}

/**
 * Store the bytes of a reader that fills a given buffer (an open file). Uncompressed, two
 * buffers take turns, so no buffer is allocated per piece; compressed, the pieces go through
 * {@link storeStream}, two read ahead.
 *
 * @param read fills a buffer with the next piece; `null` at the end
 * @param pieceSize bytes a piece
 * @param compress gzip them
 * @param write writes a stored piece
 * @returns sizes and digests
 */
export async function storeFrom(
  read: PieceReader,
  pieceSize: number,
  compress: boolean,
  write: (piece: Uint8Array) => Promise<void>,
): Promise<StoredPayload> {
  if (compress) {
    return await storeStream(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          const piece = await read(new Uint8Array(pieceSize));
          if (piece === null) controller.close();
          else controller.enqueue(piece);
        },
      }, { highWaterMark: 2 }),
      true,
      write,
    );
  }
  const hash = new Sha256();
  const size = await copyInTurns(pieceSize, read, (piece) => {
    const written = write(piece); // on Deno's I/O threads while this thread hashes
    hash.update(piece);
    return written;
  });
  return { payloadSize: size, sha256: hash.digest(), origSize: size };
}
