/**
 * Reading small payloads for `extract`: in container order, one 4 MiB read
 * covers the next payloads too, into one reused buffer; a payload out of
 * order is read alone.
 *
 * @module
 */

import type { IndexEntry } from "../format/entry.ts";
import type { ContainerReader } from "../read/container_reader.ts";

/** Bytes read at a time for payloads in container order. */
const READ_WINDOW = 4 << 20;

/** The last stretch of the container read, and the payloads in it. */
export class ReadWindow {
  #reader: ContainerReader;
  #window: { start: number; bytes: Uint8Array } = { start: 0, bytes: new Uint8Array(0) };
  #buffer = new Uint8Array(0);

  /** @param reader the open container */
  constructor(reader: ContainerReader) {
    this.#reader = reader;
  }

  /**
   * The stored bytes of `entry` when the window holds them: a view, valid until the next
   * window is read.
   *
   * @param entry a file entry
   * @returns the bytes, or `undefined`
   */
  held(entry: IndexEntry): Uint8Array | undefined {
    const w = this.#window;
    const end = entry.offset + entry.payloadSize;
    if (entry.offset >= w.start && end <= w.start + w.bytes.length) {
      return w.bytes.subarray(entry.offset - w.start, end - w.start);
    }
    return undefined;
  }

  /**
   * The stored bytes of a small payload: from the window, else with one 4 MiB read that covers
   * the next ones too, else (after a jump) alone.
   *
   * @param entry a file entry
   * @param beforeReuse called before the window's buffer is filled again: views into it must
   *   be used (or copied) by then
   * @returns the bytes, a view into the window (valid until the next read)
   * @throws {ContainerFormatError} when the container ends first
   */
  async read(entry: IndexEntry, beforeReuse: () => Promise<void>): Promise<Uint8Array> {
    const held = this.held(entry);
    if (held !== undefined) return held;
    if (this.#reader.remote !== undefined) {
      // On a server: the reads ahead are the source's (ContainerReader.planReads), of what the run
      // reads and no more. The window is the request that holds this payload (a view: requests'
      // buffers are never reused), so the next payloads in it come from held() without a call:
      // not an allocation, a copy and a chain of awaits per payload (remote verify of 100,000 x
      // 4 KiB on loopback nginx, medians of 5: 1.63 s with those, 1.32 s with a view per
      // payload; 1.84 s -> 1.36 s from a view per payload to this window, another run).
      this.#window = { start: entry.offset, bytes: new Uint8Array(0) }; // empty while it is read
      const window = await this.#reader.readStoredSpan(entry);
      this.#window = window;
      const from = entry.offset - window.start;
      return window.bytes.subarray(from, from + entry.payloadSize);
    }
    let bytes: Uint8Array;
    if (entry.offset === this.#window.start + this.#window.bytes.length) {
      // Payloads in container order: the next 4 MiB. One window buffer, reused: the batch holds
      // views into it, so it goes out first (a batch copies its payloads when it is sent). A
      // fresh 4 MiB per window cost zero-filling and page faults on 400 MB for 100,000 files.
      const length = Math.min(
        Math.max(READ_WINDOW, entry.payloadSize),
        this.#reader.payloadAreaEnd - entry.offset,
      );
      await beforeReuse();
      if (this.#buffer.length < length) this.#buffer = new Uint8Array(length);
      bytes = this.#buffer.subarray(0, length);
    } else {
      // A jump (an index not in offset order, or past a streamed file): this payload alone, in
      // a buffer of its own. A 4 MiB window at every jump read 4 MiB a file of a reversed index
      // (5,000 x 4 KiB: 4.3 s, against 0.26 s in order).
      bytes = new Uint8Array(entry.payloadSize);
    }
    this.#window = { start: entry.offset, bytes: new Uint8Array(0) }; // empty while it is read
    await this.#reader.readStoredInto(entry, bytes);
    this.#window = { start: entry.offset, bytes };
    return bytes.subarray(0, entry.payloadSize);
  }
}
