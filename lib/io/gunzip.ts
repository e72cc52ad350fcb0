/**
 * Bounded gunzip of payloads. A stored payload must be exactly one gzip
 * member (RFC 1952): a header, one deflate stream, its CRC-32 and size, and
 * nothing after it. A second member or trailing bytes are refused, so every
 * reader gets the same bytes (the original extractor's `zlib` reads only the
 * first member; `node:zlib`'s gunzip would read them all). The member must
 * inflate to exactly `orig_size` bytes, and inflating stops one byte past
 * it, so a gzip bomb costs at most `orig_size` + 1 bytes of output whatever
 * it would inflate to. Small payloads are inflated whole, big ones as a
 * stream that hands out 64 KiB at a time and waits for its reader.
 *
 * The header is parsed here and the deflate stream inflated raw
 * (`node:zlib` `inflateRaw`, which reports how many bytes the deflate
 * stream took), so the member's end is known exactly.
 *
 * @module
 */

import { pipeline, Readable } from "node:stream";
import { crc32, createInflateRaw, inflateRawSync } from "node:zlib";
import { IntegrityError } from "../errors.ts";

/** Size in bytes of a member's trailer: CRC-32 and ISIZE, both u32le. */
const TRAILER = 8;
/** Longest header accepted (a hostile FNAME or FEXTRA without end costs no more). */
const MAX_HEADER = 64 << 10;

/**
 * Inflate a gzip payload held whole.
 *
 * @param relpath the entry's relpath, for messages
 * @param payload the stored bytes (already checked against their SHA-256)
 * @param origSize the entry's `orig_size` in bytes
 * @returns the original bytes, exactly `origSize` of them
 * @throws {IntegrityError} when the payload is not exactly one valid gzip member, or
 *   inflates to another size (stopped one byte past `origSize`)
 */
export function gunzipPayload(relpath: string, payload: Uint8Array, origSize: number): Uint8Array {
  const header = headerLength(relpath, payload);
  if (header === undefined) throw corrupt(relpath, "the gzip header is cut short");
  let bytes: Uint8Array;
  let consumed: number;
  try {
    // maxOutputLength stops a gzip bomb at orig_size (+1 tells "exactly" from "more").
    // An output piece sized to the file (default 16 KiB each): each call allocates one, freed
    // only by a later garbage collection; 100,000 tiny files held about 100 MiB more.
    const result = inflateRawSync(payload.subarray(header), {
      maxOutputLength: origSize + 1,
      chunkSize: Math.min(64 << 10, Math.max(64, origSize + 1)),
      info: true,
    }) as unknown as { buffer: Uint8Array; engine: { bytesWritten: number } };
    bytes = result.buffer;
    consumed = result.engine.bytesWritten;
  } catch (error) {
    throw new IntegrityError(
      `Cannot verify "${relpath}": corrupt gzip payload, or it inflates past orig_size ` +
        `${origSize}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (bytes.length !== origSize) throw inflatedSize(relpath, bytes.length, origSize);
  checkTrailer(relpath, payload.length, header + consumed, payload.subarray(-TRAILER), {
    crc: crc32(bytes),
    size: bytes.length,
  });
  return bytes;
}

/**
 * Inflate a stream of the stored bytes of one gzip member, bounded by
 * `orig_size`: the stream errors with {@link IntegrityError} when the bytes
 * run past `orig_size` or stop short of it, when the member is not valid, or
 * when anything follows it. Errors of zlib itself come out as they are.
 *
 * @param stored the stored bytes
 * @param relpath the entry's relpath, for messages
 * @param payloadSize the stored size in bytes
 * @param origSize the entry's `orig_size` in bytes
 * @returns the inflated bytes
 */
export function gunzipStream(
  stored: ReadableStream<Uint8Array>,
  relpath: string,
  payloadSize: number,
  origSize: number,
): ReadableStream<Uint8Array> {
  let head: Uint8Array = new Uint8Array(0); // bytes until the header is whole
  let header: number | undefined;
  let tail: Uint8Array = new Uint8Array(0); // the last TRAILER bytes seen
  const reader = stored.getReader();
  // The deflate stream after the header, pulled from `stored` one piece at a time as zlib asks
  // for more (no queue of its own, so the stored bytes are read no further ahead than before).
  const body = new Readable({
    async read() {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            if (header === undefined) throw corrupt(relpath, "the gzip header is cut short");
            this.push(null);
            return;
          }
          tail = lastBytes(tail, value, TRAILER);
          if (header !== undefined) {
            this.push(value);
            return;
          }
          head = concat(head, value);
          header = headerLength(relpath, head);
          if (header === undefined) {
            if (head.length > MAX_HEADER) throw corrupt(relpath, "its gzip header is too long");
            continue;
          }
          const rest = head.subarray(header);
          head = new Uint8Array(0);
          if (rest.length > 0) {
            this.push(rest);
            return;
          }
        }
      } catch (error) {
        this.destroy(error as Error);
      }
    },
    destroy(error, callback) {
      reader.cancel(error ?? undefined).catch(() => {});
      callback(error);
    },
  });
  const inflate = createInflateRaw({ chunkSize: 64 << 10 });
  pipeline(body, inflate, () => {});
  let size = 0;
  let crc = 0;
  return webStream(inflate).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.length;
        if (size > origSize) {
          const error = new IntegrityError(
            `Cannot verify "${relpath}": gzip payload inflates past orig_size ${origSize}`,
          );
          STOPPED.add(error);
          controller.error(error);
          return;
        }
        crc = crc32(chunk, crc);
        controller.enqueue(chunk);
      },
      flush(controller) {
        try {
          if (size !== origSize) throw inflatedSize(relpath, size, origSize);
          checkTrailer(relpath, payloadSize, header! + inflate.bytesWritten, tail, { crc, size });
        } catch (error) {
          controller.error(error);
        }
      },
    }),
  );
}

/**
 * A web stream of a Node readable's pieces, pulled as the consumer asks. Not `Readable.toWeb`:
 * Deno's adapter enqueues pieces the readable emits after the consumer cancelled (a reader that
 * stops early, a write that failed), which throws an uncaught TypeError and ends the process.
 * Pieces are views on the readable's buffers, as plain `Uint8Array`s.
 */
function webStream(readable: Readable): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      readable.pause();
      readable.on("data", (chunk: Uint8Array) => {
        if (done) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) readable.pause();
      });
      readable.on("end", () => {
        if (done) return;
        done = true;
        controller.close();
      });
      readable.on("error", (error) => {
        if (done) return;
        done = true;
        controller.error(error);
      });
    },
    pull() {
      readable.resume();
    },
    cancel(reason) {
      done = true;
      readable.destroy(reason instanceof Error ? reason : undefined);
    },
  });
}

/**
 * Length in bytes of the gzip header at the start of `bytes` (RFC 1952 section 2.3), or
 * `undefined` when `bytes` ends inside it.
 *
 * @throws {IntegrityError} when it is not a gzip header of the deflate method
 */
function headerLength(relpath: string, bytes: Uint8Array): number | undefined {
  if (bytes.length < 10) {
    if (bytes.length >= 1 && bytes[0] !== 0x1f) throw corrupt(relpath, "not a gzip member");
    if (bytes.length >= 2 && bytes[1] !== 0x8b) throw corrupt(relpath, "not a gzip member");
    return undefined;
  }
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) throw corrupt(relpath, "not a gzip member");
  if (bytes[2] !== 8) throw corrupt(relpath, `unknown gzip method ${bytes[2]}`);
  const flags = bytes[3]!;
  if ((flags & 0xe0) !== 0) throw corrupt(relpath, "reserved gzip header flags set");
  let at = 10;
  if (flags & 0x04) { // FEXTRA: u16le length, then that many bytes
    if (bytes.length < at + 2) return undefined;
    at += 2 + (bytes[at]! | (bytes[at + 1]! << 8));
  }
  for (const flag of [0x08, 0x10]) { // FNAME, FCOMMENT: zero-terminated
    if ((flags & flag) === 0) continue;
    const end = bytes.indexOf(0, at);
    if (end < 0) return undefined;
    at = end + 1;
  }
  if (flags & 0x02) at += 2; // FHCRC
  return at <= bytes.length ? at : undefined;
}

/**
 * The member must end exactly where the payload does, its trailer naming the CRC-32 and the
 * size (mod 2^32) of what it inflated to.
 */
function checkTrailer(
  relpath: string,
  payloadSize: number,
  bodyEnd: number,
  trailer: Uint8Array,
  inflated: { crc: number; size: number },
): void {
  if (bodyEnd + TRAILER > payloadSize) throw corrupt(relpath, "the gzip member is cut short");
  if (bodyEnd + TRAILER < payloadSize) {
    throw corrupt(
      relpath,
      `${payloadSize - bodyEnd - TRAILER} bytes follow its gzip member (one member a payload)`,
    );
  }
  const view = new DataView(trailer.buffer, trailer.byteOffset, TRAILER);
  if (view.getUint32(0, true) !== inflated.crc >>> 0) {
    throw corrupt(relpath, "the CRC-32 in its gzip trailer does not match");
  }
  if (view.getUint32(4, true) !== inflated.size % 0x1_0000_0000) {
    throw corrupt(relpath, "the size in its gzip trailer does not match");
  }
}

/** Errors of streams stopped past `orig_size` (a gzip bomb): nothing more was read. */
const STOPPED = new WeakSet<object>();

/**
 * Whether a stream of {@link gunzipStream} stopped because it inflated past `orig_size`: the
 * stored bytes were not all read, and need not be (a gzip bomb is refused as it is met).
 *
 * @param error an error of the stream
 * @returns `true` for that error
 */
export function stoppedPastOrigSize(error: unknown): boolean {
  return typeof error === "object" && error !== null && STOPPED.has(error);
}

function corrupt(relpath: string, why: string): IntegrityError {
  return new IntegrityError(`Cannot verify "${relpath}": corrupt gzip payload: ${why}`);
}

function inflatedSize(relpath: string, size: number, origSize: number): IntegrityError {
  return new IntegrityError(
    `Cannot verify "${relpath}": gzip payload inflates to ${size} bytes, orig_size is ${origSize}`,
  );
}

/** The last `n` bytes of `previous` followed by `chunk`. */
function lastBytes(previous: Uint8Array, chunk: Uint8Array, n: number): Uint8Array {
  if (chunk.length >= n) return chunk.slice(chunk.length - n);
  return concat(previous, chunk).slice(-n);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
