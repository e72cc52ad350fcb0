/**
 * Buffers of payloads already written, handed back to the read workers to
 * be filled again: a fresh megabyte per read batch was zero-filled, and
 * freeing them had V8 run a full collection about every 80 ms (100,000 x
 * 4 KiB: create 1.23 -> 1.17 s, README "Performance").
 *
 * @module
 */

/** Payload buffers whose bytes are written, for the next read batches to fill. */
export class SpareBuffers {
  #free: ArrayBuffer[] = [];

  /**
   * Keep `buffer` for reuse when it is big enough to be worth it (a read batch's size); a buffer
   * kept already is not kept twice (it would be handed to two batches at once).
   */
  put(buffer: ArrayBufferLike): void {
    if (
      buffer instanceof ArrayBuffer && !buffer.detached && buffer.byteLength >= MIN_SPARE &&
      this.#free.length < 16 && !this.#free.includes(buffer)
    ) this.#free.push(buffer);
  }

  /** A buffer to fill, or `undefined`; once taken it is the taker's (transferred, or refilled). */
  take(): ArrayBuffer | undefined {
    return this.#free.pop();
  }
}

/** Smallest buffer kept for reuse: a compressed read batch starts at 64 KiB. */
const MIN_SPARE = 64 << 10;
