/**
 * Bounded gunzip of payloads: a stored gzip member (RFC 1952) must inflate
 * to exactly `orig_size` bytes, and inflating stops one byte past it, so a
 * gzip bomb costs at most `orig_size` + 1 bytes of output whatever it
 * would inflate to. Small payloads are inflated whole (`node:zlib`
 * `gunzipSync` with `maxOutputLength`), big ones as a stream that hands out
 * 64 KiB at a time and waits for its reader.
 *
 * @module
 */

import { pipeline, Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { createGunzip, gunzipSync } from "node:zlib";
import { IntegrityError } from "../errors.ts";

/**
 * Inflate a gzip payload held whole.
 *
 * @param relpath the entry's relpath, for messages
 * @param payload the stored bytes (already checked against their SHA-256)
 * @param origSize the entry's `orig_size` in bytes
 * @returns the original bytes, exactly `origSize` of them
 * @throws {IntegrityError} when the payload is not one valid gzip member or inflates to
 *   another size (stopped one byte past `origSize`)
 */
export function gunzipPayload(relpath: string, payload: Uint8Array, origSize: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    // maxOutputLength stops a gzip bomb at orig_size (+1 tells "exactly" from "more").
    // An output piece sized to the file (default 16 KiB each): each call allocates one, freed
    // only by a later garbage collection; 100,000 tiny files held about 100 MiB more.
    bytes = gunzipSync(payload, {
      maxOutputLength: origSize + 1,
      chunkSize: Math.min(64 << 10, Math.max(64, origSize + 1)),
    });
  } catch (error) {
    throw new IntegrityError(
      `Cannot verify "${relpath}": corrupt gzip payload, or it inflates past orig_size ` +
        `${origSize}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (bytes.length !== origSize) throw inflatedSize(relpath, bytes.length, origSize);
  return bytes;
}

/**
 * Inflate a stream of stored gzip bytes. `node:zlib`'s streaming gunzip
 * hands out at most 64 KiB at a time and waits for the reader, so memory
 * stays bounded whatever the ratio (`DecompressionStream` can hand out a
 * whole gigabyte for one megabyte of zeros). Errors of zlib come out as
 * they are; {@link OrigSizeStream} bounds the size.
 *
 * @param stored the stored bytes
 * @returns the inflated bytes
 */
export function gunzipStream(stored: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const gunzip = createGunzip({ chunkSize: 64 << 10 });
  pipeline(Readable.fromWeb(stored as NodeReadableStream<Uint8Array>), gunzip, () => {});
  return Readable.toWeb(gunzip) as unknown as ReadableStream<Uint8Array>;
}

/** Passes inflated bytes through, failing when they run past `orig_size` or stop short of it. */
export class OrigSizeStream extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * @param relpath the entry's relpath, for messages
   * @param origSize the entry's `orig_size` in bytes
   */
  constructor(relpath: string, origSize: number) {
    let seen = 0;
    super({
      transform(chunk, controller) {
        seen += chunk.length;
        if (seen > origSize) {
          controller.error(
            new IntegrityError(
              `Cannot verify "${relpath}": gzip payload inflates past orig_size ${origSize}`,
            ),
          );
          return;
        }
        controller.enqueue(chunk);
      },
      flush(controller) {
        if (seen !== origSize) controller.error(inflatedSize(relpath, seen, origSize));
      },
    });
  }
}

function inflatedSize(relpath: string, size: number, origSize: number): IntegrityError {
  return new IntegrityError(
    `Cannot verify "${relpath}": gzip payload inflates to ${size} bytes, orig_size is ${origSize}`,
  );
}
