/**
 * Random access to a byte source (an open file; later, a remote object):
 * the one interface the readers of containers and indexes read through.
 *
 * @module
 */

/** Random access to a byte source, such as an open file. */
export interface RandomAccess {
  /** Size in bytes of the source. */
  readonly size: number;
  /**
   * Read exactly `length` bytes at `position`.
   * @throws {ContainerFormatError} when fewer bytes are there
   */
  readAt(position: number, length: number): Promise<Uint8Array>;
  /**
   * Fill `into` with the bytes at `position`, when the source can read into a given buffer
   * (saves allocating one per read on long copies).
   * @throws {ContainerFormatError} when fewer bytes are there
   */
  readInto?(position: number, into: Uint8Array): Promise<void>;
}

/**
 * Read `length` bytes from `start` in blocks, one block in memory at a time.
 *
 * @param source where to read
 * @param start offset in bytes
 * @param length bytes to read
 * @param block size in bytes of each piece (default 8 MiB)
 * @returns the pieces, in order
 */
export async function* readRange(
  source: RandomAccess,
  start: number,
  length: number,
  block = 8 << 20,
): AsyncGenerator<Uint8Array> {
  for (let done = 0; done < length;) {
    const n = Math.min(block, length - done);
    yield await source.readAt(start + done, n);
    done += n;
  }
}

/**
 * Fill `into` with the bytes of `source` from `position` on: through its `readInto` when it
 * has one (no buffer allocated per read), else a `readAt` copied in.
 *
 * @param source where to read
 * @param position offset in bytes
 * @param into where the bytes go; its whole length is read
 * @throws {ContainerFormatError} when the source ends first
 */
export async function readInto(
  source: RandomAccess,
  position: number,
  into: Uint8Array,
): Promise<void> {
  if (source.readInto) return await source.readInto(position, into);
  into.set(await source.readAt(position, into.length));
}

/**
 * The bytes `[start, start + length)` of `source` as a source of their own; a read past its
 * end is refused with a `RangeError`.
 *
 * @param source where they lie; closed by the slice's `close()` (when it has a `close`)
 * @param start offset in bytes
 * @param length size in bytes
 * @returns the slice
 */
export function sliceOf(
  source: Pick<RandomAccess, "readAt"> & { close?(): void },
  start: number,
  length: number,
): RandomAccess & { close(): void } {
  return {
    size: length,
    readAt: (position, n) => {
      if (position + n > length) {
        return Promise.reject(new RangeError(`read past the end of a slice of ${length} bytes`));
      }
      return source.readAt(start + position, n);
    },
    close: () => source.close?.(),
  };
}
