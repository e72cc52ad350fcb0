/**
 * A writer that knows only the CTNRv1 format (Go's `archive/tar` `Writer`):
 * it takes entry fields and bytes, or a stream, never a path to walk, and
 * alone knows offsets, the write buffer, the fsync cadence and the order
 * that makes a container crash-safe: payloads are fsynced before the index
 * batch that names them is appended, and the index is fsynced after it.
 * The first failed write is kept, and every later call throws it; after
 * `finalize` or `close`, every call throws.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { ConflictError, UsageError } from "../errors.ts";
import { EMPTY_SHA256, encodeEntry, type IndexEntry } from "../format/entry.ts";
import { copyInTurns } from "../io/copy.ts";
import { DENO_FILE_LAYER, type FileLayer, type LayerFile } from "../io/file_layer.ts";
import { gzip } from "../io/gzip.ts";
import { Sha256, sha256Hex } from "../io/sha256.ts";
import { FOLDER, type PathGuard } from "../safety/path_guard.ts";
import { checkRelpath } from "../safety/relpath.ts";
import type { WarningHandler } from "../warnings.ts";
import { appendTrailer } from "./finalize.ts";
import { fingerprint, LINK, readResumeState } from "./resume.ts";

/** Options of {@link ContainerWriter.open}. */
export interface ContainerWriterOptions {
  /** Path of the NDJSON index. @default container + ".idx" */
  index?: string;
  /** Store each payload as one gzip member (RFC 1952). @default false */
  compress?: boolean;
  /** fsync the container after every this many entries. @default 1000 */
  fsyncEvery?: number;
  /** Commit the index every this many entries; at least `fsyncEvery`. @default fsyncEvery */
  indexBatch?: number;
  /** Read what is there and compute every entry, but write no container, index or trailer. @default false */
  dryRun?: boolean;
  /**
   * The caller adds each relpath once and never a file or link where another entry needs a
   * folder (create's walk guarantees it): new relpaths are then checked only against those of
   * a resumed container, and are not held in memory on a new one. @default false
   */
  pathsUnique?: boolean;
  /** File layer for the container and index (tests swap it). @default the real one */
  fileLayer?: FileLayer;
  /** Called for each entry once it is committed to the index. */
  onEntry?: (entry: IndexEntry) => void;
  /** Receives the repairs made when a container is continued (see lib/warnings.ts). */
  onWarning?: WarningHandler;
  /**
   * Receives each buffer whose payloads are all written, to fill again (a read worker's batch
   * buffer); never the buffer of the last payload written, since later payloads may lie in it.
   */
  recycle?: (buffer: ArrayBufferLike) => void;
}

/** The fields of an entry the caller gives; the writer sets offset, sizes and digests. */
export interface EntryHeader {
  /** Path relative to the container's root, `/`-separated (checked by `checkRelpath`). */
  relpath: string;
  /** Permission bits, `st_mode & 0o7777` (not stored for links). */
  mode?: number;
  /** Modification time in seconds since the epoch, millisecond precision. */
  mtime?: number;
}

/** Stored bytes already made: hashed, and gzipped when the writer compresses (read workers do). */
export interface PreparedPayload {
  /** The stored bytes: one gzip member when the writer compresses, else the original bytes. */
  stored: Uint8Array;
  /** Lowercase hex SHA-256 of `stored`. */
  sha256: string;
  /** Size in bytes of the original bytes. */
  origSize: number;
  /** Lowercase hex SHA-256 of the original bytes (compressed payloads). */
  origSha256?: string;
}

/** Reads the next piece into (a start of) `into`; `null` at the end. It may throw to abort. */
export type PieceReader = (into: Uint8Array) => Promise<Uint8Array | null>;

/** Bytes held before a write to the container: many small payloads go in one write. */
const WRITE_BATCH = 4 << 20;
/** Piece size of a stream's gzip output when the source gives none. */

/**
 * Writes a CTNRv1 container: payloads back to back, an NDJSON index
 * committed in batches, and on `finalize` the trailer that embeds it.
 *
 * @example Write a container from memory and read it back
 * ```ts
 * import { ContainerWriter } from "./container_writer.ts";
 * import { ContainerReader } from "../read/container_reader.ts";
 * const dir = await Deno.makeTempDir();
 * try {
 *   const writer = await ContainerWriter.open(`${dir}/c.ctnr`, { compress: true });
 *   await writer.addFile({ relpath: "docs/a.txt", mode: 0o644 }, new TextEncoder().encode("hello"));
 *   await writer.addFolder({ relpath: "empty" });
 *   await writer.addSymlink({ relpath: "link" }, "docs/a.txt");
 *   await writer.finalize();
 *   const reader = await ContainerReader.open(`${dir}/c.ctnr`);
 *   try {
 *     const entry = await reader.find("docs/a.txt");
 *     if (await new Response(reader.open(entry!)).text() !== "hello") throw new Error("bad copy");
 *   } finally {
 *     reader.close();
 *   }
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export class ContainerWriter {
  /** Path of the container. */
  readonly container: string;
  /** Path of the index. */
  readonly indexPath: string;
  /** Whether the container held committed entries when it was opened. */
  readonly resumed: boolean;
  #container: LayerFile | undefined; // undefined in a dry run
  #index: LayerFile | undefined;
  #layer: FileLayer;
  #guard: PathGuard;
  #checkNew: boolean;
  #compress: boolean;
  #fsyncEvery: number;
  #indexBatch: number;
  #onEntry: ((entry: IndexEntry) => void) | undefined;
  #recycle: ((buffer: ArrayBufferLike) => void) | undefined;
  /** End of the payloads written or held: where the next one goes. */
  #offset: number;
  #entries: number;
  /** Payloads waiting to be written, adjacent ones merged (a read worker's batch is one). */
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #lines: string[] = [];
  #pending: IndexEntry[] = [];
  #sinceSync = 0;
  /** The buffer of the last payload written: later payloads may still lie in it. */
  #lastBuffer: ArrayBufferLike | undefined;
  /** The first failed write: every later call throws it. */
  #failed: unknown;
  #closed = false;

  private constructor(
    container: string,
    indexPath: string,
    state: Awaited<ReturnType<typeof readResumeState>>,
    settings: { fsyncEvery: number; indexBatch: number },
    options: ContainerWriterOptions,
  ) {
    this.container = container;
    this.indexPath = indexPath;
    this.resumed = state.entries > 0;
    this.#container = state.containerFile;
    this.#index = state.indexFile;
    this.#layer = options.fileLayer ?? DENO_FILE_LAYER;
    this.#guard = state.committed;
    this.#checkNew = !(options.pathsUnique ?? false);
    this.#compress = options.compress ?? false;
    this.#fsyncEvery = settings.fsyncEvery;
    this.#indexBatch = settings.indexBatch;
    this.#onEntry = options.onEntry;
    this.#recycle = options.recycle;
    this.#offset = state.payloadEnd;
    this.#entries = state.entries;
  }

  /**
   * Open a container to write: a new one, or continue an existing one. When
   * the container or its index exists, the resume rules apply (README
   * "Durability and resume"): a torn last index line is repaired, the last
   * committed batch re-hashed, bytes past the last indexed payload (a
   * crash's leftovers or an old trailer) cut away.
   *
   * @param container the container path (its folder is created when missing)
   * @param options see {@link ContainerWriterOptions}
   * @returns the writer; call `finalize` or `close` when done
   * @throws {UsageError} when an option is out of range (naming it), or the container or
   *   index exists and is not a regular file
   * @throws {ConflictError} when the container exists but neither index nor trailer
   *   describe it
   */
  static async open(
    container: string,
    options: ContainerWriterOptions = {},
  ): Promise<ContainerWriter> {
    const settings = checkBatching(options);
    const indexPath = options.index ?? container + ".idx";
    const layer = options.fileLayer ?? DENO_FILE_LAYER;
    const dryRun = options.dryRun ?? false;
    for (const [what, path] of [["container", container], ["index", indexPath]] as const) {
      const info = await Deno.stat(path).catch(() => undefined);
      if (info !== undefined && !info.isFile) {
        throw new UsageError(`Cannot write ${what} "${path}": it exists and is not a regular file`);
      }
    }
    if (!dryRun) {
      await Deno.mkdir(dirname(resolve(container)), { recursive: true });
      await Deno.mkdir(dirname(resolve(indexPath)), { recursive: true });
    }
    const state = await readResumeState(
      container,
      { indexPath, indexBatch: settings.indexBatch },
      layer,
      options.onWarning,
      dryRun,
    );
    return new ContainerWriter(container, indexPath, state, settings, options);
  }

  /** Entries in the index: committed ones and those added since. */
  get entries(): number {
    return this.#entries;
  }

  /** Size in bytes of the container file (0 in a dry run). */
  get size(): number {
    return this.#container?.size ?? 0;
  }

  /**
   * What the writer holds for a relpath (committed before, or added by it when it checks new
   * relpaths): {@link FOLDER} for a folder, {@link LINK} for a link, a file's fingerprint.
   *
   * @param relpath a relpath
   * @returns the value, or `undefined` when the relpath (or one equal to it after NFC
   *   normalisation) is not there
   */
  find(relpath: string): number | undefined {
    return this.#guard.size === 0 ? undefined : this.#guard.get(relpath);
  }

  /**
   * Add a file from its original bytes: hashed, and gzipped when the writer compresses.
   *
   * @param header relpath, mode, mtime
   * @param bytes the original bytes
   * @returns the entry (committed later, in its batch)
   * @throws {ConflictError} when the relpath clashes with an entry already there
   */
  async addFile(header: EntryHeader, bytes: Uint8Array): Promise<IndexEntry> {
    const stored = this.#compress ? gzip(bytes) : bytes;
    const payload: PreparedPayload = { stored, sha256: sha256Hex(stored), origSize: bytes.length };
    if (this.#compress) payload.origSha256 = sha256Hex(bytes);
    return await this.addPrepared(header, payload);
  }

  /**
   * Add a file whose stored bytes are made and hashed already. Returns the
   * entry at once (no promise) unless the buffer had to be written, the
   * container fsynced or the index committed: per small file, an await costs
   * about as much as copying its 4 KiB. `await` the result either way.
   *
   * @param header relpath, mode, mtime
   * @param payload the stored bytes and their digests
   * @returns the entry, or a promise of it
   * @throws {ConflictError} when the relpath clashes with an entry already there
   */
  addPrepared(header: EntryHeader, payload: PreparedPayload): IndexEntry | Promise<IndexEntry> {
    const entry = this.#entry(header, "file");
    entry.payloadSize = payload.stored.length;
    entry.origSize = payload.origSize;
    entry.sha256 = payload.sha256;
    entry.compressed = this.#compress;
    if (payload.origSha256 !== undefined) entry.origSha256 = payload.origSha256;
    return this.#add(entry, payload.stored);
  }

  /**
   * Add an empty folder.
   *
   * @param header relpath, mode, mtime
   * @returns the entry, or a promise of it (see {@link ContainerWriter.addPrepared})
   * @throws {ConflictError} when the relpath clashes with an entry already there
   */
  addFolder(header: EntryHeader): IndexEntry | Promise<IndexEntry> {
    return this.#add(this.#entry(header, "dir"), undefined);
  }

  /**
   * Add a symlink (never followed).
   *
   * @param header relpath and mtime (a link's mode is not stored)
   * @param target the link's target, as the link stores it
   * @returns the entry, or a promise of it (see {@link ContainerWriter.addPrepared})
   * @throws {ConflictError} when the relpath clashes with an entry already there
   */
  addSymlink(header: EntryHeader, target: string): IndexEntry | Promise<IndexEntry> {
    const entry = this.#entry(header, "symlink");
    entry.linkTarget = target;
    return this.#add(entry, undefined);
  }

  /**
   * Add a file from a stream of its original bytes, gzipped through
   * `CompressionStream` when the writer compresses (its bytes then depend on
   * the stream's pieces). A stream that errors leaves nothing: its bytes are
   * taken back from the container and the error is thrown.
   *
   * @param header relpath, mode, mtime
   * @param stream the original bytes
   * @returns the entry
   * @throws {ConflictError} when the relpath clashes with an entry already there
   */
  async addFileStream(
    header: EntryHeader,
    stream: ReadableStream<Uint8Array>,
  ): Promise<IndexEntry> {
    const origHash = this.#compress ? new Sha256() : undefined;
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
    const stored = this.#compress
      ? original.pipeThrough(
        new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
      )
      : original;
    return await this.#addStreamed(header, async (write) => {
      for await (const piece of stored) await write(piece);
      return { origSize, ...(origHash ? { origSha256: origHash.digest() } : {}) };
    });
  }

  /**
   * Add an uncompressed file from a reader that fills a given buffer (an
   * open file): two buffers take turns, so no buffer is allocated per piece.
   * When the writer compresses, the pieces go through
   * {@link ContainerWriter.addFileStream}.
   *
   * @param header relpath, mode, mtime
   * @param read fills a buffer of `pieceSize` bytes with the next piece; `null` at the end;
   *   it may throw (a file that changed) to abort the file, which leaves nothing
   * @param pieceSize bytes a piece
   * @returns the entry
   * @throws {ConflictError} when the relpath clashes with an entry already there
   */
  async addFileFrom(
    header: EntryHeader,
    read: PieceReader,
    pieceSize: number,
  ): Promise<IndexEntry> {
    if (this.#compress) {
      return await this.addFileStream(
        header,
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            const piece = await read(new Uint8Array(pieceSize));
            if (piece === null) controller.close();
            else controller.enqueue(piece);
          },
          // Two pieces read ahead: the next read runs while this one is gzipped and written.
        }, { highWaterMark: 2 }),
      );
    }
    return await this.#addStreamed(header, async (write) => {
      const origSize = await copyInTurns(pieceSize, read, write);
      return { origSize };
    });
  }

  /** Make every payload durable, then append and fsync the pending index lines. */
  async commit(): Promise<void> {
    this.#usable();
    await this.#flush();
    if (this.#lines.length === 0) return;
    if (this.#container && this.#index) {
      const container = this.#container;
      const index = this.#index;
      await this.#guarded(async () => {
        await container.sync();
        this.#sinceSync = 0;
        await index.append(new TextEncoder().encode(this.#lines.join("")));
        await index.sync();
      });
    }
    for (const entry of this.#pending) this.#onEntry?.(entry);
    this.#lines = [];
    this.#pending = [];
  }

  /**
   * Commit, embed the index as the trailer (with ctnr's footer), fsync, and close; with
   * `removeIndex`, the standalone index is removed once the trailer is durable.
   *
   * @param options `removeIndex`: delete the index file after embedding it
   */
  async finalize(options: { removeIndex?: boolean } = {}): Promise<void> {
    await this.commit();
    try {
      if (this.#container && this.#index) {
        const container = this.#container;
        const index = this.#index;
        await this.#guarded(() => appendTrailer(container, index));
        if (options.removeIndex) await this.#guarded(() => this.#layer.remove(this.indexPath));
      }
    } finally {
      this.#close();
    }
  }

  /** Commit what is pending and close the files (the container stays unfinalized). */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#failed === undefined) await this.commit();
    } finally {
      this.#close();
    }
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#container?.close();
    this.#index?.close();
  }

  #usable(): void {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#closed) throw new TypeError(`ContainerWriter of "${this.container}" is closed`);
  }

  /** A blank entry of `kind` for `header`, its relpath checked. */
  #entry(header: EntryHeader, kind: IndexEntry["entryType"]): IndexEntry {
    this.#usable();
    const unsafe = checkRelpath(header.relpath);
    if (unsafe !== undefined) {
      throw new ConflictError(`Cannot add "${header.relpath}": unsafe relpath: ${unsafe}`);
    }
    const entry: IndexEntry = {
      relpath: header.relpath,
      entryType: kind,
      offset: 0,
      payloadSize: 0,
      origSize: 0,
      sha256: EMPTY_SHA256,
      compressed: false,
    };
    if (header.mode !== undefined && kind !== "symlink") entry.mode = header.mode;
    if (header.mtime !== undefined) entry.mtime = header.mtime;
    return entry;
  }

  /** Refuse a relpath that clashes with one there; `record` it when admitted. */
  #admit(entry: IndexEntry, record: boolean): void {
    if (!this.#checkNew && this.#guard.size === 0) return; // a new container, unique paths
    const value = valueOf(entry);
    const clash = record
      ? this.#guard.admit(entry.relpath, value)
      : this.#guard.check(entry.relpath, value);
    if (clash !== undefined) throw new ConflictError(`Cannot add "${entry.relpath}": ${clash}`);
  }

  /**
   * Append one entry: its payload to the write buffer, its line to the pending index batch.
   * Synchronous unless the buffer must be written, the container fsynced or the batch committed.
   */
  #add(entry: IndexEntry, payload: Uint8Array | undefined): IndexEntry | Promise<IndexEntry> {
    this.#admit(entry, true);
    if (
      (payload !== undefined && this.#buffered + payload.length > WRITE_BATCH) ||
      this.#sinceSync + 1 >= this.#fsyncEvery ||
      this.#lines.length + 1 >= this.#indexBatch
    ) return this.#addAsync(entry, payload);
    if (payload !== undefined) {
      entry.offset = this.#offset;
      this.#hold(payload);
    }
    this.#sinceSync++;
    this.#record(entry);
    return entry;
  }

  async #addAsync(entry: IndexEntry, payload: Uint8Array | undefined): Promise<IndexEntry> {
    if (payload !== undefined) {
      if (this.#buffered + payload.length > WRITE_BATCH) await this.#flush();
      entry.offset = this.#offset;
      if (payload.length > WRITE_BATCH) {
        await this.#flush();
        await this.#write(payload);
      } else this.#hold(payload);
    }
    this.#record(entry);
    await this.#cadence();
    return entry;
  }

  /** Write a file's stored bytes straight to the container; take them back if the source fails. */
  async #addStreamed(
    header: EntryHeader,
    copy: (
      write: (piece: Uint8Array) => Promise<void>,
    ) => Promise<{ origSize: number; origSha256?: string }>,
  ): Promise<IndexEntry> {
    const entry = this.#entry(header, "file");
    entry.compressed = this.#compress;
    this.#admit(entry, false);
    await this.#flush();
    entry.offset = this.#offset;
    const hash = new Sha256();
    let payloadSize = 0;
    let original: { origSize: number; origSha256?: string };
    try {
      original = await copy((piece) => {
        // The write runs on Deno's I/O threads while this thread hashes the same bytes.
        const written = this.#write(piece);
        hash.update(piece);
        payloadSize += piece.length;
        return written;
      });
    } catch (error) {
      if (this.#failed !== undefined) throw error;
      // The source failed: take back its bytes, so no payload lacks an entry.
      if (this.#container && this.#container.size > entry.offset) {
        const container = this.#container;
        await this.#guarded(() => container.truncate(entry.offset));
      }
      this.#offset = entry.offset;
      throw error;
    }
    entry.payloadSize = payloadSize;
    entry.origSize = original.origSize;
    entry.sha256 = hash.digest();
    if (original.origSha256 !== undefined) entry.origSha256 = original.origSha256;
    this.#admit(entry, true);
    this.#record(entry);
    await this.#cadence();
    return entry;
  }

  #record(entry: IndexEntry): void {
    this.#lines.push(encodeEntry(entry));
    if (this.#onEntry) this.#pending.push(entry); // held for onEntry until committed
    this.#entries++;
  }

  /** fsync every `fsyncEvery` entries, commit every `indexBatch`. */
  async #cadence(): Promise<void> {
    if (++this.#sinceSync >= this.#fsyncEvery) {
      await this.#flush();
      const container = this.#container;
      if (container) await this.#guarded(() => container.sync());
      this.#sinceSync = 0;
    }
    if (this.#lines.length >= this.#indexBatch) await this.commit();
  }

  /**
   * Keep `bytes` for the next write, without copying: a payload that follows the previous one
   * in the same buffer (as a read worker packs them) extends it (100,000 x 4 KiB: the copy
   * this replaces cost about 0.1 s).
   */
  #hold(bytes: Uint8Array): void {
    this.#offset += bytes.length;
    this.#buffered += bytes.length;
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

  async #flush(): Promise<void> {
    if (this.#buffered === 0) return;
    const chunks = this.#chunks;
    const length = this.#buffered;
    this.#chunks = [];
    this.#buffered = 0;
    if (chunks.length <= 8) {
      for (const chunk of chunks) await this.#append(chunk);
    } else {
      // Many separate payloads (read on this thread): one copy, one write.
      const bytes = new Uint8Array(length);
      let at = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
      await this.#append(bytes);
    }
    this.#recycleWritten(chunks);
  }

  /**
   * Hand the buffers of written payloads back to be filled again. The buffer of the last
   * payload is kept until a later write: the rest of its read batch may not have been added
   * yet, and those payloads are views into it.
   */
  #recycleWritten(chunks: Uint8Array[]): void {
    if (this.#recycle === undefined) return;
    const last = chunks.at(-1)!.buffer;
    const done = new Set<ArrayBufferLike>(chunks.map((chunk) => chunk.buffer));
    if (this.#lastBuffer !== undefined) done.add(this.#lastBuffer);
    done.delete(last);
    for (const buffer of done) this.#recycle(buffer);
    this.#lastBuffer = last;
  }

  /** Write bytes held in the buffer (the offset already counts them). */
  async #append(bytes: Uint8Array): Promise<void> {
    const container = this.#container;
    if (container) await this.#guarded(() => container.append(bytes));
  }

  /** Write bytes past the buffer: the offset moves with them. */
  async #write(bytes: Uint8Array): Promise<void> {
    await this.#append(bytes);
    this.#offset += bytes.length;
  }

  /** Run a write of the container or index; its failure is kept and thrown by every later call. */
  async #guarded<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      this.#failed ??= error;
      throw error;
    }
  }
}

/** The value a relpath is held with (see {@link fingerprint}). */
function valueOf(entry: IndexEntry): number {
  return entry.entryType === "dir"
    ? FOLDER
    : entry.entryType === "symlink"
    ? LINK
    : fingerprint(entry);
}

/**
 * Check `fsyncEvery` and `indexBatch` and apply their defaults.
 *
 * @throws {UsageError} naming the option when one is out of range
 */
export function checkBatching(
  options: { fsyncEvery?: number; indexBatch?: number },
): { fsyncEvery: number; indexBatch: number } {
  const fsyncEvery = positive("fsyncEvery", options.fsyncEvery, 1000);
  const indexBatch = positive("indexBatch", options.indexBatch, fsyncEvery);
  if (indexBatch < fsyncEvery) {
    throw new UsageError(
      `Option indexBatch (${indexBatch}) must not be smaller than fsyncEvery ` +
        `(${fsyncEvery}): index entries would be committed before their payloads are durable`,
      { options: ["indexBatch", "fsyncEvery"] },
    );
  }
  return { fsyncEvery, indexBatch };
}

/**
 * A positive integer option, or its default.
 *
 * @throws {UsageError} naming the option when it is not a positive safe integer
 */
export function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new UsageError(`Option ${name} must be a positive integer, got ${value}`, {
      options: [name],
    });
  }
  return v;
}
