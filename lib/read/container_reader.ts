/**
 * Open a container for reading: find its index (external file, ctnr's
 * footer, a sibling `.idx`, or the original tools' trailer), list its
 * entries, and read one entry's bytes as a verified stream.
 *
 * @module
 */

import { ContainerFormatError, CtnrError, IntegrityError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { IndexReader, type IndexRecord } from "../format/index_reader.ts";
import { findTrailer, type TrailerLocation } from "../format/trailer.ts";
import { copyInTurns } from "../io/copy.ts";
import { openRandomAccess } from "../io/file_layer.ts";
import { gunzipStream, stoppedPastOrigSize } from "../io/gunzip.ts";
import { type RandomAccess, readInto } from "../io/random_access.ts";
import { Sha256, Sha256CheckStream, sha256Mismatch, sha256OfRange } from "../io/sha256.ts";
import type { WarningHandler } from "../warnings.ts";

/** Options of {@link ContainerReader.open}. */
export interface ContainerReaderOptions {
  /** External index file; preferred over an embedded one when given. */
  index?: string;
  /** Skip malformed index lines with a warning instead of failing. @default false */
  lenient?: boolean;
  /** Receives warnings (skipped index lines, see lib/warnings.ts). */
  onWarning?: WarningHandler;
}

/** Where the index of an open container came from. */
export type IndexOrigin = "external" | "trailer" | "sibling";

/**
 * An open container.
 *
 * @example List the relpaths of a container
 * ```ts
 * import { ContainerReader } from "./container_reader.ts";
 * import { createContainer } from "../create/create_container.ts";
 * const work = await Deno.makeTempDir();
 * try {
 *   await Deno.mkdir(`${work}/src`);
 *   await Deno.writeTextFile(`${work}/src/a.txt`, "hello");
 *   await createContainer(`${work}/src`, `${work}/c.ctnr`, { finalize: true });
 *   const reader = await ContainerReader.open(`${work}/c.ctnr`);
 *   try {
 *     const names = [];
 *     for await (const entry of reader.entries()) names.push(entry.relpath);
 *     if (names.join() !== "a.txt") throw new Error("unexpected entries");
 *     const text = await new Response(reader.open((await reader.find("a.txt"))!)).text();
 *     if (text !== "hello") throw new Error("unexpected content");
 *   } finally {
 *     reader.close();
 *   }
 * } finally {
 *   await Deno.remove(work, { recursive: true });
 * }
 * ```
 */
export class ContainerReader {
  #file: RandomAccess & { close(): void };
  #indexFile: (RandomAccess & { close(): void }) | undefined;
  #trailer: TrailerLocation | null;
  #options: ContainerReaderOptions;
  /** Path of the container. */
  readonly path: string;
  /** Where the index came from. */
  readonly indexOrigin: IndexOrigin;
  /** Path of the index file, or the container's path for an embedded index. */
  readonly indexPath: string;

  private constructor(
    path: string,
    file: RandomAccess & { close(): void },
    trailer: TrailerLocation | null,
    indexFile: (RandomAccess & { close(): void }) | undefined,
    origin: IndexOrigin,
    indexPath: string,
    options: ContainerReaderOptions,
  ) {
    this.path = path;
    this.#file = file;
    this.#trailer = trailer;
    this.#indexFile = indexFile;
    this.indexOrigin = origin;
    this.indexPath = indexPath;
    this.#options = options;
  }

  /**
   * Open `path` and locate its index.
   *
   * Order: `options.index` when given; else `<path>.idx` when it exists
   * (after a resume it is newer than any trailer); else the embedded index
   * found through ctnr's footer (one read); else the original tools'
   * trailer, by an exact backward scan with no size limit. An external
   * index is used alone: the container's last bytes are then not read.
   *
   * @param path container file
   * @param options external index and strictness
   * @returns the open container; call `close()` when done
   * @throws {ContainerFormatError} when no index is found or the trailer is inconsistent
   */
  static async open(path: string, options: ContainerReaderOptions = {}): Promise<ContainerReader> {
    const file = await openRandomAccess(path).catch((error) => {
      throw new ContainerFormatError(
        `Cannot open container "${path}": ${(error as Error).message}`,
      );
    });
    try {
      let trailer: TrailerLocation | null = null;
      let indexFile: (RandomAccess & { close(): void }) | undefined;
      let origin: IndexOrigin = "trailer";
      let indexPath = path;
      const external = options.index ?? await siblingIndex(path);
      if (external !== undefined) {
        // An external index is used alone: whatever the container's last bytes say is not read.
        indexFile = await openRandomAccess(external).catch((error) => {
          throw new ContainerFormatError(
            `Cannot open index "${external}": ${(error as Error).message}`,
          );
        });
        origin = options.index !== undefined ? "external" : "sibling";
        indexPath = external;
      } else {
        let footerFault: ContainerFormatError | undefined;
        try {
          trailer = await findTrailer(file, { scan: false });
        } catch (error) {
          if (!(error instanceof ContainerFormatError)) throw error;
          footerFault = error;
        }
        trailer ??= await findTrailer(file);
        if (trailer === null) {
          if (footerFault) {
            throw new ContainerFormatError(
              `Cannot open container "${path}": ${footerFault.message}`,
            );
          }
          throw new ContainerFormatError(
            `Cannot find the index of "${path}": no trailer and no "${path}.idx"; pass \`index\``,
            { options: ["index"] },
          );
        }
      }
      return new ContainerReader(path, file, trailer, indexFile, origin, indexPath, options);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** Size in bytes of the index (external file or embedded). */
  get indexLength(): number {
    return this.#indexFile?.size ?? this.#trailer?.indexLength ?? 0;
  }

  /** Size in bytes of the container file. */
  get size(): number {
    return this.#file.size;
  }

  /** End of the payload area: the trailer's offset, or the file size when there is none. */
  get payloadAreaEnd(): number {
    return this.#trailer?.trailerOffset ?? this.#file.size;
  }

  /**
   * Iterate the index records in order, each checked to lie inside the payload area.
   *
   * @param options `quiet`: send no warnings (for a second pass over the index)
   * @returns records with line numbers
   * @throws {IndexFormatError} on a bad index (see {@link IndexReader.records})
   * @throws {ContainerFormatError} when an entry's payload lies past the payload area
   */
  async *records(options: { quiet?: boolean } = {}): AsyncGenerator<IndexRecord> {
    for await (const batch of this.recordBatches(options)) yield* batch;
  }

  /**
   * {@link ContainerReader.records} in batches (see {@link IndexReader.batches}).
   *
   * @param options `quiet`: send no warnings (for a second pass over the index)
   * @returns arrays of records, in index order
   * @throws {IndexFormatError} as {@link ContainerReader.records}
   * @throws {ContainerFormatError} as {@link ContainerReader.records}
   */
  async *recordBatches(options: { quiet?: boolean } = {}): AsyncGenerator<IndexRecord[]> {
    const reader = this.#indexFile
      ? new IndexReader(this.#indexFile, {
        ...this.#readerOptions(`index "${this.indexPath}"`),
        quiet: options.quiet ?? false,
      })
      : new IndexReader(this.#file, {
        ...this.#readerOptions(`embedded index of "${this.path}"`),
        quiet: options.quiet ?? false,
        start: this.#trailer!.indexOffset,
        length: this.#trailer!.indexLength,
      });
    const end = this.payloadAreaEnd;
    for await (const batch of reader.batches()) {
      for (let i = 0; i < batch.length; i++) {
        const { entry } = batch[i]!;
        if (entry.offset + entry.payloadSize > end) {
          if (i > 0) yield batch.slice(0, i);
          throw new ContainerFormatError(
            `Cannot read entry "${entry.relpath}": its payload (offset ${entry.offset}, ` +
              `${entry.payloadSize} bytes) lies past the payload area, which ends at byte ${end}`,
          );
        }
      }
      yield batch;
    }
  }

  /** Iterate the entries in index order; see {@link ContainerReader.records}. */
  async *entries(): AsyncGenerator<IndexEntry> {
    for await (const record of this.records()) yield record.entry;
  }

  /**
   * Find the first entry with this relpath (a scan of the index).
   *
   * @param relpath the relpath to look for
   * @returns the entry, or `undefined`
   */
  async find(relpath: string): Promise<IndexEntry | undefined> {
    for await (const entry of this.entries()) if (entry.relpath === relpath) return entry;
    return undefined;
  }

  /**
   * Read the stored bytes of an entry (compressed bytes for a gzip entry), unverified.
   *
   * @param entry an entry of this container
   * @param from offset within the payload
   * @param length bytes to read
   * @returns the bytes
   */
  readStored(entry: IndexEntry, from = 0, length = entry.payloadSize - from): Promise<Uint8Array> {
    return this.#file.readAt(entry.offset + from, length);
  }

  /**
   * Fill `into` with the container's bytes from an entry's offset on (its stored bytes, and
   * those of the entries after it when `into` is longer), unverified. Reusing one buffer
   * saves an allocation (and its page faults) per read.
   *
   * @param entry an entry of this container
   * @param into where the bytes go; its whole length is read
   * @throws {ContainerFormatError} when the container ends first
   */
  readStoredInto(entry: IndexEntry, into: Uint8Array): Promise<void> {
    return readInto(this.#file, entry.offset, into);
  }

  /**
   * Stream the original bytes of a file entry: read in `chunkSize` pieces,
   * gunzipped when compressed, stopped past `orig_size`, and checked
   * against `sha256` at the end. The stream errors with
   * {@link IntegrityError} on any mismatch, so a consumer that reads to the
   * end has verified the bytes.
   *
   * @param entry a file entry of this container
   * @param options `chunkSize` in bytes (default 1 MiB)
   * @returns the original bytes
   */
  open(entry: IndexEntry, options: { chunkSize?: number } = {}): ReadableStream<Uint8Array> {
    const chunkSize = options.chunkSize ?? 1 << 20;
    let position = 0;
    // The next read is always in flight: it runs on Deno's I/O threads while this thread hashes.
    const readNext = (): Promise<Uint8Array> | undefined => {
      if (position >= entry.payloadSize) return undefined;
      const n = Math.min(chunkSize, entry.payloadSize - position);
      const at = entry.offset + position;
      position += n;
      const pending = this.#file.readAt(at, n);
      pending.catch(() => {}); // surfaced by pull()
      return pending;
    };
    let next = readNext();
    const stored = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (next === undefined) {
          controller.close();
          return;
        }
        const bytes = await next;
        next = readNext();
        controller.enqueue(bytes);
      },
      // No queue here: the check stream holds one piece and the next read is in flight.
    }, { highWaterMark: 0 }).pipeThrough(
      new Sha256CheckStream(entry.relpath, entry.sha256, entry.payloadSize),
    );
    if (!entry.compressed) return stored;
    const inner = gunzipStream(stored, entry.relpath, entry.payloadSize, entry.origSize)
      .getReader();
    const storedSha256 = () => sha256OfRange(this.#file, entry.offset, entry.payloadSize);
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await inner.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          // A bomb stopped at orig_size is refused as it is met: nothing more is read.
          if (stoppedPastOrigSize(error)) {
            controller.error(error);
            return;
          }
          // Name the root cause: stored bytes that fail their SHA-256 are a corrupt container,
          // whatever zlib or the member checks said first.
          const actual = await storedSha256().catch(() => undefined);
          controller.error(
            actual !== undefined && actual !== entry.sha256
              ? sha256Mismatch(entry.relpath, entry.sha256, actual)
              : error instanceof CtnrError
              ? error
              : new IntegrityError(
                `Cannot verify "${entry.relpath}": corrupt gzip payload: ${
                  (error as Error).message
                }`,
                { cause: error },
              ),
          );
        }
      },
      cancel: (reason) => inner.cancel(reason),
    }, { highWaterMark: 0 });
  }

  /**
   * Copy the stored bytes of an uncompressed file entry to `write`, in
   * `chunkSize` pieces, checking them against `sha256` as they pass. Two
   * buffers take turns (the next read runs while a piece is written and
   * hashed), so a piece is only valid until its `write` settles: copy it to
   * keep it. Faster than {@link ContainerReader.open} on big files, which
   * allocates each piece for its consumer.
   *
   * @param entry a file entry of this container, not compressed
   * @param write receives each piece; the next piece waits for it
   * @param chunkSize bytes a piece
   * @throws {IntegrityError} after the last piece, when the bytes fail their SHA-256
   * @throws {RangeError} for a compressed entry
   */
  async copyStored(
    entry: IndexEntry,
    write: (piece: Uint8Array) => Promise<void>,
    chunkSize = 1 << 20,
  ): Promise<void> {
    if (entry.compressed) throw new RangeError(`copyStored: "${entry.relpath}" is compressed`);
    const file = this.#file;
    const hash = new Sha256();
    let position = 0;
    await copyInTurns(
      Math.min(chunkSize, entry.payloadSize),
      async (into) => {
        if (position >= entry.payloadSize) return null;
        const piece = into.subarray(0, Math.min(into.length, entry.payloadSize - position));
        const at = entry.offset + position;
        position += piece.length;
        await readInto(file, at, piece);
        return piece;
      },
      (piece) => {
        const written = write(piece);
        hash.update(piece);
        return written;
      },
    );
    const actual = hash.digest();
    if (actual !== entry.sha256) throw sha256Mismatch(entry.relpath, entry.sha256, actual);
  }

  /** Close the container and index files. */
  close(): void {
    this.#file.close();
    this.#indexFile?.close();
  }

  #readerOptions(name: string) {
    const options: { name: string; lenient?: boolean; onWarning?: WarningHandler } = { name };
    if (this.#options.lenient !== undefined) options.lenient = this.#options.lenient;
    if (this.#options.onWarning !== undefined) options.onWarning = this.#options.onWarning;
    return options;
  }
}

async function siblingIndex(path: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(path + ".idx");
    return info.isFile ? path + ".idx" : undefined;
  } catch {
    return undefined;
  }
}
