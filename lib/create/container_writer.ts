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
import { ConflictError, environmentFault, UsageError } from "../errors.ts";
import { EMPTY_SHA256, encodeEntry, fieldFault, type IndexEntry } from "../format/entry.ts";
import { DENO_FILE_LAYER, type FileLayer, type LayerFile } from "../io/file_layer.ts";
import { gzip } from "../io/gzip.ts";
import { sha256Hex } from "../io/sha256.ts";
import type { PathGuard } from "../safety/path_guard.ts";
import { refuseIndexIsContainer } from "../safety/output_paths.ts";
import { checkRelpath } from "../safety/relpath.ts";
import { appendTrailer } from "./finalize.ts";
import { checkBatching } from "./options.ts";
import type {
  ContainerWriterOptions,
  EntryHeader,
  PieceReader,
  PreparedPayload,
} from "./writer_options.ts";
import { PayloadBuffer } from "./payload_buffer.ts";
import { type CommittedIndex, readCommittedIndex, readResumeState, valueOf } from "./resume.ts";
import { type StoredPayload, storeFrom, storeStream } from "./store_payload.ts";

/** Bytes held before a write to the container: many small payloads go in one write. */
const WRITE_BATCH = 4 << 20;

/**
 * Writes a CTNRv1 container: payloads back to back, an NDJSON index
 * committed in batches, and on `finalize` the trailer that embeds it.
 *
 * @example Write a container from memory and read it back
 * ```ts
 * import { ContainerReader, ContainerWriter } from "@ctnr/ctnr";
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
  /** End of the payloads written or held: where the next one goes. */
  #offset: number;
  #entries: number;
  #buffer: PayloadBuffer;
  #lines: string[] = [];
  #pending: IndexEntry[] = [];
  #sinceSync = 0;
  /** The first failed write: every later call throws it. */
  #failed: unknown;
  #closed = false;
  /** A call is still running (its promise not settled): the next one is refused. */
  #busy = false;
  /** Entries committed before this writer opened, and where their index lines are. */
  #committedAtOpen: number;
  #committedIndex: CommittedIndex | undefined;

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
    this.#buffer = new PayloadBuffer(options.recycle);
    this.#offset = state.payloadEnd;
    this.#entries = state.entries;
    this.#committedAtOpen = state.entries;
    this.#committedIndex = state.committedIndex;
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
   * @throws {UsageError} when an option is out of range (naming it), the index is the
   *   container (the same path, a link to it, a hard link), or the container or index exists
   *   and is not a regular file
   * @throws {ConflictError} when the container exists but neither index nor trailer
   *   describe it; when the index holds entries but the container does not exist; with
   *   `fresh`, when the container or index is not one of ctnr's
   */
  static async open(
    container: string,
    options: ContainerWriterOptions = {},
  ): Promise<ContainerWriter> {
    const settings = checkBatching(options);
    const indexPath = options.index ?? container + ".idx";
    const layer = options.fileLayer ?? DENO_FILE_LAYER;
    const dryRun = options.dryRun ?? false;
    await refuseIndexIsContainer(indexPath, container);
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
      { indexPath, indexBatch: settings.indexBatch, fresh: options.fresh ?? false },
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

  /**
   * End in bytes of the payloads written or held: where the next one goes (the container's
   * size once they are flushed).
   */
  get payloadEnd(): number {
    return this.#offset;
  }

  /**
   * No payload given from now on lies in `buffer` (its read batch is all added): it goes to
   * `options.recycle` once the payloads held from it are written (at once when none is). Release
   * a buffer once per filling: each release hands it to `recycle` again.
   *
   * @param buffer the buffer the batch's payloads are views into
   */
  release(buffer: ArrayBufferLike): void {
    this.#buffer.release(buffer);
  }

  /** Size in bytes of the container file (0 in a dry run). */
  get size(): number {
    return this.#container?.size ?? 0;
  }

  /**
   * What the writer holds for a relpath (committed before, or added by it when it checks new
   * relpaths): `FOLDER` (0) for a folder, `LINK` (1) for a link, a file's fingerprint (2 and
   * up: its size and mtime, lib/create/resume.ts).
   *
   * @param relpath a relpath
   * @returns the value, or `undefined` when the relpath (or one equal to it after NFC
   *   normalisation) is not there
   */
  find(relpath: string): number | undefined {
    return this.#guard.size === 0 ? undefined : this.#guard.get(relpath);
  }

  /**
   * {@link ContainerWriter.find}, and count a committed relpath as met (create's walk met it
   * in the source): the committed entries never met are {@link ContainerWriter.unmet}.
   *
   * @param relpath a relpath
   * @returns as {@link ContainerWriter.find}
   */
  meet(relpath: string): number | undefined {
    return this.#guard.size === 0 ? undefined : this.#guard.getAndMark(relpath);
  }

  /** Entries committed before the writer opened whose relpath `meet` was not given (at most). */
  get unmetCount(): number {
    return Math.max(0, this.#committedAtOpen - this.#guard.marked);
  }

  /**
   * The entries committed before the writer opened whose relpath was never given to
   * {@link ContainerWriter.meet}, read again from the index (or the trailer, in a dry run).
   * Call it before `finalize` (which may remove the index).
   *
   * @returns the entries, in index order
   */
  async *unmet(): AsyncGenerator<IndexEntry> {
    if (this.#committedIndex === undefined || this.unmetCount === 0) return;
    for await (const { entry } of readCommittedIndex(this.#committedIndex)) {
      if (!this.#guard.isMarked(entry.relpath)) yield entry;
    }
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
    // A copy: the caller may reuse its buffer at once, while the payload waits to be written.
    const stored = this.#compress ? gzip(bytes) : bytes.slice();
    const payload: PreparedPayload = { stored, sha256: sha256Hex(stored), origSize: bytes.length };
    if (this.#compress) payload.origSha256 = sha256Hex(bytes);
    return await this.addPrepared(header, payload);
  }

  /**
   * Add a file whose stored bytes are made and hashed already. Returns the
   * entry at once (no promise) unless the buffer had to be written, the
   * container fsynced or the index committed: per small file, an await costs
   * about as much as copying its 4 KiB. `await` the result either way. The
   * stored bytes are held, not copied, until they are written (by the next
   * `commit` at the latest): they must not change until then.
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
    const fault = fieldFault("link_target", target);
    if (fault !== undefined) {
      throw new UsageError(
        `Cannot add link "${header.relpath}": ${fault} (${JSON.stringify(target)})`,
      );
    }
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
    return await this.#addStreamed(header, (write) => storeStream(stream, this.#compress, write));
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
    return await this.#addStreamed(
      header,
      (write) => storeFrom(read, pieceSize, this.#compress, write),
    );
  }

  /**
   * Make every payload durable, then append and fsync the pending index lines.
   *
   * @throws {UsageError} when called while another call is still running
   */
  commit(): Promise<void> {
    return this.#exclusive(() => this.#commit());
  }

  async #commit(): Promise<void> {
    this.#usable();
    await this.#flush();
    if (this.#lines.length === 0) return;
    if (this.#container && this.#index) {
      const container = this.#container;
      const index = this.#index;
      await this.#guarded(() => container.sync());
      this.#sinceSync = 0;
      await this.#guarded(async () => {
        await index.append(new TextEncoder().encode(this.#lines.join("")));
        await index.sync();
      }, this.indexPath);
    }
    // The batch is committed: forget it before telling anyone, so that a callback that throws
    // (a full stdout under --print-each) cannot have the same lines appended again.
    const committed = this.#pending;
    this.#lines = [];
    this.#pending = [];
    for (const entry of committed) this.#onEntry?.(entry);
  }

  /**
   * Commit, embed the index as the trailer (with ctnr's footer), fsync, and close; with
   * `removeIndex`, the standalone index is removed once the trailer is durable.
   *
   * @param options `removeIndex`: delete the index file after embedding it
   */
  async finalize(options: { removeIndex?: boolean } = {}): Promise<void> {
    await this.#exclusive(async () => {
      try {
        await this.#commit();
        if (this.#container && this.#index) {
          const container = this.#container;
          const index = this.#index;
          await this.#guarded(() => appendTrailer(container, index));
          if (options.removeIndex) {
            await this.#guarded(() => this.#layer.remove(this.indexPath), this.indexPath);
          }
        }
      } finally {
        this.#close();
      }
    });
  }

  /** Commit what is pending and close the files (the container stays unfinalized). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#idle();
    try {
      if (this.#failed === undefined) await this.#commit();
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

  /** Refuse a call made while another is still running (offsets would be given twice). */
  #idle(): void {
    if (this.#busy) {
      throw new UsageError(
        `ContainerWriter of "${this.container}": a call was made while the previous one was ` +
          `still running; await each call before the next`,
      );
    }
  }

  /** Run `work` as the one call in flight. */
  async #exclusive<T>(work: () => Promise<T>): Promise<T> {
    this.#idle();
    this.#busy = true;
    try {
      return await work();
    } finally {
      this.#busy = false;
    }
  }

  /** A blank entry of `kind` for `header`, its relpath checked. */
  #entry(header: EntryHeader, kind: IndexEntry["entryType"]): IndexEntry {
    this.#idle();
    this.#usable();
    const unsafe = checkRelpath(header.relpath);
    if (unsafe !== undefined) {
      throw new ConflictError(`Cannot add "${header.relpath}": unsafe relpath: ${unsafe}`);
    }
    // What the index's readers would refuse is refused here, naming the field.
    for (const field of ["mode", "mtime"] as const) {
      if (header[field] === undefined) continue;
      const fault = fieldFault(field, header[field]);
      if (fault !== undefined) {
        throw new UsageError(`Cannot add "${header.relpath}": ${fault} (${header[field]})`);
      }
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
      (payload !== undefined && this.#buffer.size + payload.length > WRITE_BATCH) ||
      this.#sinceSync + 1 >= this.#fsyncEvery ||
      this.#lines.length + 1 >= this.#indexBatch
    ) return this.#exclusive(() => this.#addAsync(entry, payload));
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
      if (this.#buffer.size + payload.length > WRITE_BATCH) await this.#flush();
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
    store: (write: (piece: Uint8Array) => Promise<void>) => Promise<StoredPayload>,
  ): Promise<IndexEntry> {
    const entry = this.#entry(header, "file");
    entry.compressed = this.#compress;
    this.#admit(entry, false);
    return await this.#exclusive(() => this.#storeStreamed(entry, store));
  }

  async #storeStreamed(
    entry: IndexEntry,
    store: (write: (piece: Uint8Array) => Promise<void>) => Promise<StoredPayload>,
  ): Promise<IndexEntry> {
    await this.#flush();
    entry.offset = this.#offset;
    let stored: StoredPayload;
    try {
      stored = await store((piece) => this.#write(piece));
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
    entry.payloadSize = stored.payloadSize;
    entry.origSize = stored.origSize;
    entry.sha256 = stored.sha256;
    if (stored.origSha256 !== undefined) entry.origSha256 = stored.origSha256;
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
    if (this.#lines.length >= this.#indexBatch) await this.#commit();
  }

  /** Keep a payload for the next write (the offset moves past it now). */
  #hold(bytes: Uint8Array): void {
    this.#offset += bytes.length;
    this.#buffer.hold(bytes);
  }

  /** Write every payload held. */
  async #flush(): Promise<void> {
    await this.#buffer.flush((bytes) => this.#append(bytes));
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

  /**
   * Run a write of the container or index; its failure is kept and thrown by every later call.
   * A full disk or an I/O error, from whatever file layer, becomes an `EnvironmentError`
   * naming `path`.
   */
  async #guarded<T>(write: () => Promise<T>, path: string = this.container): Promise<T> {
    try {
      return await write();
    } catch (raw) {
      const error = environmentFault(
        raw,
        `Cannot write "${path}"`,
        "what was committed is kept: fix that and run create again, it resumes",
      );
      this.#failed ??= error;
      throw error;
    }
  }
}
