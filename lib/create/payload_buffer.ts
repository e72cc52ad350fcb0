/**
 * Payloads waiting to be written to the container: held as views, without
 * copying, adjacent ones merged (a read worker packs a batch's payloads back
 * to back in one buffer, so a batch is one write), and the buffers their owner
 * released handed back to be filled again once what is held of them is written.
 *
 * @module
 */

/** Payloads held for the next write to the container. */
export class PayloadBuffer {
  #chunks: Uint8Array[] = [];
  #size = 0;
  /** Chunks being written by {@link PayloadBuffer.flush}. */
  #writing: Uint8Array[] = [];
  #recycle: ((buffer: ArrayBufferLike) => void) | undefined;
  /** Buffers released while some of their bytes are still held or being written. */
  #released = new Set<ArrayBufferLike>();

  /**
   * @param recycle receives each buffer released by {@link PayloadBuffer.release}, once the
   *   bytes held of it are written (see `ContainerWriterOptions.recycle`)
   */
  constructor(recycle?: (buffer: ArrayBufferLike) => void) {
    this.#recycle = recycle;
  }

  /** Bytes held. */
  get size(): number {
    return this.#size;
  }

  /**
   * Keep `bytes` for the next write, without copying: a payload that follows the previous one
   * in the same buffer extends it (100,000 x 4 KiB: the copy this replaces cost about 0.1 s).
   * The bytes must not change until they are written.
   *
   * @param bytes a payload
   */
  hold(bytes: Uint8Array): void {
    this.#size += bytes.length;
    const last = this.#chunks.at(-1);
    if (
      last !== undefined && last.buffer === bytes.buffer &&
      last.byteOffset + last.length === bytes.byteOffset
    ) {
      this.#chunks[this.#chunks.length - 1] = new Uint8Array(
        last.buffer,
        last.byteOffset,
        last.length + bytes.length,
      );
    } else this.#chunks.push(bytes);
  }

  /**
   * Write every payload held, in order: as they are when there are few pieces, else copied into
   * one buffer and written once (many separate payloads, read on the main thread).
   *
   * @param write writes bytes at the end of the container
   */
  async flush(write: (bytes: Uint8Array) => Promise<void>): Promise<void> {
    if (this.#size === 0) return;
    const chunks = this.#chunks;
    const length = this.#size;
    this.#chunks = [];
    this.#size = 0;
    this.#writing = chunks;
    if (chunks.length <= 8) {
      for (const chunk of chunks) await write(chunk);
    } else {
      const bytes = new Uint8Array(length);
      let at = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
      await write(bytes);
    }
    this.#writing = [];
    for (const chunk of chunks) {
      if (this.#released.delete(chunk.buffer)) this.#recycle!(chunk.buffer);
    }
  }

  /**
   * No payload will be held from `buffer` any more (every item of its read batch is added): it
   * goes to `recycle` now, or once the bytes held of it are written. Only the buffer's owner
   * knows this: payloads of one batch can be held between those of others (files of a batch
   * past its byte budget, read and gzipped on their own), and a buffer handed back while one of
   * its payloads still waits would be filled again, or moved to a worker, under it.
   *
   * @param buffer a buffer payloads were held from, or not
   */
  release(buffer: ArrayBufferLike): void {
    if (this.#recycle === undefined) return;
    const inUse = (chunk: Uint8Array) => chunk.buffer === buffer;
    if (this.#chunks.some(inUse) || this.#writing.some(inUse)) this.#released.add(buffer);
    else this.#recycle(buffer);
  }
}
