/**
 * Open a container for reading: find its index (external file, a sibling
 * `.idx` that agrees with any trailer, ctnr's footer, or the original tools'
 * trailer; with `salvage`, what survives of a trailer cut short), list its
 * entries, and read one entry's bytes as a verified stream.
 *
 * @module
 */

import { ContainerFormatError, CtnrError, IntegrityError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { refuseDisagreement } from "../format/index_agreement.ts";
import { IndexReader, type IndexRecord } from "../format/index_reader.ts";
import {
  type CutTrailer,
  findTrailer,
  searchTrailer,
  type TrailerLocation,
  type TrailerSearch,
} from "../format/trailer.ts";
import { copyInTurns } from "../io/copy.ts";
import { openRandomAccess } from "../io/file_layer.ts";
import { gunzipStream, stoppedPastOrigSize } from "../io/gunzip.ts";
import { type RandomAccess, readInto } from "../io/random_access.ts";
import { Sha256, Sha256CheckStream, sha256Mismatch, sha256OfRange } from "../io/sha256.ts";
import type { WarningHandler } from "../warnings.ts";
import { cutShort, noIndexError } from "./no_index.ts";
import type { Selection } from "../selection.ts";
import { HttpSource, isRemote, type RemoteStats } from "../remote/http_source.ts";
import {
  openRemoteContainer,
  openRemoteIndex,
  type RemoteContainer,
  type RemoteOptions,
  remoteTarget,
} from "../remote/remote_container.ts";

/** Options of {@link ContainerReader.open}. */
export interface ContainerReaderOptions {
  /** External index file; used alone, whatever the container holds, when given. */
  index?: string;
  /** Skip malformed index lines with a warning instead of failing. @default false */
  lenient?: boolean;
  /** Receives warnings (skipped index lines, see lib/warnings.ts). */
  onWarning?: WarningHandler;
  /**
   * Read what survives of a container cut short: without an index file, a trailer the file
   * stops inside its index is read up to its last whole line (the payload area ends at the
   * trailer's magic); see {@link ContainerReader.cutTrailer}. @default false
   */
  salvage?: boolean;
  /**
   * How a container (or index) given as an `http://`, `https://` or `s3://` URL is read:
   * connections, ranges, retries, the index cache (lib/remote/).
   */
  remote?: RemoteOptions;
  /**
   * Where the embedded index must lie and its SHA-256, and the file's size in bytes when given
   * (a shard of a set, checked against its manifest, lib/shard/): a container whose size,
   * trailer or index bytes differ is refused at open.
   */
  expectIndex?: { offset: number; length: number; sha256: string; size?: number };
}

/** Options of {@link ContainerReader.recordBatches}. */
export interface RecordOptions {
  /** Send no warnings (for a second pass over the index). @default false */
  quiet?: boolean;
  /**
   * Receives each entry whose payload runs past the payload area, which is then left out of
   * the records instead of failing the pass; `detail` says where it lies (for a message
   * `Cannot extract "<relpath>": <detail>`), `cut` whether the container is cut short there.
   */
  onPastEnd?: (entry: IndexEntry, detail: string, cut: boolean) => void;
}

/** Where the index of an open container came from. */
export type IndexOrigin = "external" | "trailer" | "sibling";

/**
 * An open container.
 *
 * @example List the relpaths of a container
 * ```ts
 * import { ContainerReader, createContainer } from "@ctnr/ctnr";
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
  #cut: CutTrailer | undefined;
  #options: ContainerReaderOptions;
  #linesLost = false;
  #siblingChecked = false;
  #indexedEnd: number | undefined;
  /** A local copy of the embedded index of a remote container (the index cache). */
  #indexCopy: (RandomAccess & { close(): void }) | undefined;
  #remote: RemoteContainer | undefined;
  /** Path of the container (a URL without its query). */
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
    cut: CutTrailer | undefined,
    remote?: {
      container?: RemoteContainer;
      indexCopy?: (RandomAccess & { close(): void }) | undefined;
    },
  ) {
    this.#remote = remote?.container;
    this.#indexCopy = remote?.indexCopy;
    this.path = path;
    this.#file = file;
    this.#trailer = trailer;
    this.#cut = cut;
    this.#indexFile = indexFile;
    this.indexOrigin = origin;
    this.indexPath = indexPath;
    this.#options = options;
  }

  /**
   * Open `path` and locate its index.
   *
   * Order: `options.index` when given, used alone; else `<path>.idx` when it exists, which
   * must hold the same bytes as the trailer at the end of the container when there is one
   * (found through ctnr's footer, or the original tools' trailer of the `.idx`'s size; one of
   * another size is found by the first full pass of {@link ContainerReader.records}); else the
   * embedded index found through ctnr's footer (one read); else the original tools' trailer,
   * by an exact backward scan with no size limit; else, with `salvage`, the whole lines of a
   * trailer the file stops inside.
   *
   * @param path container file
   * @param options external index, strictness, `salvage`
   * @returns the open container; call `close()` when done
   * @throws {ContainerFormatError} when no index is found: code `NOT_A_CONTAINER` (no trailer
   *   and no index), `CONTAINER_CUT` (a trailer cut short, without `salvage`), `INDEX_MISSING`
   *   (a trailer cut in its header, or nothing of its index left; `salvage` without any index),
   *   `CONTAINER_FORMAT` (an inconsistent footer); code `INDEX_CONFLICT` when `<path>.idx` and
   *   the trailer disagree
   */
  static async open(path: string, options: ContainerReaderOptions = {}): Promise<ContainerReader> {
    const reader = await ContainerReader.#open(path, options);
    if (options.expectIndex === undefined) return reader;
    try {
      await reader.#checkIndex(options.expectIndex);
    } catch (error) {
      reader.close();
      throw error;
    }
    return reader;
  }

  /**
   * Refuse a container whose embedded index is not at `expected`'s place or not its bytes.
   *
   * @throws {IntegrityError} (code `INTEGRITY`) naming the container and both digests
   */
  async #checkIndex(
    expected: { offset: number; length: number; sha256: string; size?: number },
  ): Promise<void> {
    if (expected.size !== undefined && this.#file.size !== expected.size) {
      throw new IntegrityError(
        `Cannot read "${this.path}": it is ${this.#file.size} bytes, the manifest says ` +
          `${expected.size} ("size")`,
      );
    }
    const trailer = this.#trailer;
    if (
      trailer === null || trailer.indexOffset !== expected.offset ||
      trailer.indexLength !== expected.length
    ) {
      throw new IntegrityError(
        `Cannot read "${this.path}": its embedded index ${
          trailer === null
            ? "is missing"
            : `lies at offset ${trailer.indexOffset}, ${trailer.indexLength} bytes`
        }, the manifest says offset ${expected.offset}, ${expected.length} bytes`,
      );
    }
    const actual = await sha256OfRange(
      this.#indexCopy ?? this.#file,
      this.#indexCopy ? 0 : trailer.indexOffset,
      trailer.indexLength,
    );
    if (actual !== expected.sha256) {
      throw new IntegrityError(
        `Cannot read "${this.path}": its embedded index has SHA-256 ${actual.slice(0, 12)}…, ` +
          `the manifest says ${expected.sha256.slice(0, 12)}…`,
      );
    }
  }

  static async #open(path: string, options: ContainerReaderOptions): Promise<ContainerReader> {
    if (isRemote(path)) return await ContainerReader.#openRemote(path, options);
    if (options.index !== undefined && isRemote(options.index)) {
      throw new ContainerFormatError(
        `Cannot read "${path}" with the index "${options.index}": an index URL goes with a ` +
          `container URL`,
      );
    }
    const file = await openRandomAccess(path).catch((error) => {
      throw new ContainerFormatError(
        `Cannot open container "${path}": ${(error as Error).message}`,
      );
    });
    let indexFile: (RandomAccess & { close(): void }) | undefined;
    try {
      let trailer: TrailerLocation | null = null;
      let cut: CutTrailer | undefined;
      let origin: IndexOrigin = "trailer";
      let indexPath = path;
      const external = options.index ?? await siblingIndex(path);
      if (external !== undefined) {
        indexFile = await openRandomAccess(external).catch((error) => {
          throw new ContainerFormatError(
            `Cannot open index "${external}": ${(error as Error).message}`,
          );
        });
        origin = options.index !== undefined ? "external" : "sibling";
        indexPath = external;
        // An explicit index is used alone. A sibling must agree with the trailer, if any.
        if (origin === "sibling") {
          trailer = await refuseDisagreement(
            "read",
            { container: path, index: external },
            file,
            indexFile,
          );
        }
      } else {
        const search = await searchTrailer(file);
        trailer = search.trailer;
        if (trailer === null) cut = await salvageCut(path, file, search, options);
      }
      return new ContainerReader(
        path,
        file,
        trailer,
        indexFile,
        origin,
        indexPath,
        options,
        cut,
      );
    } catch (error) {
      file.close();
      indexFile?.close();
      throw error;
    }
  }

  /**
   * {@link ContainerReader.open} for a URL: the source of the payloads by ranges, the index
   * from the cache, fetched into it, or read through the tail held since the first request.
   */
  static async #openRemote(
    path: string,
    options: ContainerReaderOptions,
  ): Promise<ContainerReader> {
    const remoteOptions: RemoteOptions = { ...options.remote };
    if (options.onWarning !== undefined && remoteOptions.onWarning === undefined) {
      remoteOptions.onWarning = options.onWarning;
    }
    if (options.index !== undefined) {
      const index = isRemote(options.index)
        ? await openRemoteIndex(options.index, remoteOptions)
        : {
          index: await openRandomAccess(options.index).catch((error) => {
            throw new ContainerFormatError(
              `Cannot open index "${options.index}": ${(error as Error).message}`,
            );
          }),
          name: options.index,
        };
      try {
        const target = await remoteTarget(path, remoteOptions);
        const source = await HttpSource.open(target.url, target.options);
        return new ContainerReader(
          target.name,
          source,
          null,
          index.index,
          "external",
          index.name,
          options,
          undefined,
        );
      } catch (error) {
        index.index.close();
        throw error;
      }
    }
    const opened = await openRemoteContainer(path, remoteOptions);
    try {
      let trailer = opened.trailer ?? null;
      let cut: CutTrailer | undefined;
      let indexCopy = opened.indexCopy;
      if (opened.trailer === undefined) {
        // A footer names its trailer wherever it lies; only the scan for the original tools'
        // trailer is held to the last REMOTE_SCAN_LIMIT bytes.
        const footer = await opened.planTrailer();
        const search = await searchTrailer(
          footer ? opened.source : scanLimited(opened.source, opened.name),
        );
        trailer = search.trailer;
        if (trailer === null) cut = await salvageCut(opened.name, opened.source, search, options);
        else indexCopy = await opened.copyIndex(trailer);
      }
      return new ContainerReader(
        opened.name,
        opened.source,
        trailer,
        undefined,
        "trailer",
        opened.name,
        options,
        cut,
        { container: opened, indexCopy },
      );
    } catch (error) {
      opened.source.close();
      opened.closeCache();
      throw error;
    }
  }

  /**
   * What reading a container on a server has cost so far (requests, bytes received, retries),
   * and whether its cached index was trusted without a request of its own
   * (`remote.confirmLazily`); `undefined` for a local file.
   */
  get remote(): { stats: RemoteStats; confirmedLazily: boolean } | undefined {
    const file = this.#file;
    if (!(file instanceof HttpSource)) return undefined;
    return { stats: file.stats, confirmedLazily: this.#remote?.confirmedLazily ?? false };
  }

  /**
   * Announce the payload reads to come, in the order they will come, for a container on a
   * server: they are fetched ahead, joined into ranges (see {@link HttpSource.plan}). Does
   * nothing for a local file.
   *
   * @param ranges byte ranges `[start, end)` of the container, pulled as the reads advance
   */
  planReads(
    ranges: AsyncIterable<readonly [number, number]> | Iterable<readonly [number, number]>,
  ): void {
    if (this.#file instanceof HttpSource) this.#file.plan(ranges);
  }

  /**
   * The byte ranges `[start, end)` of the payloads of the files `select` selects (every file
   * without it), in index order, empty files left out: a quiet pass of its own over the index,
   * for {@link ContainerReader.planReads}.
   *
   * @param options as {@link ContainerReader.recordBatches} (always quiet)
   */
  async *payloadRanges(
    select: Selection | undefined,
    options: RecordOptions = {},
  ): AsyncGenerator<readonly [number, number]> {
    for await (const batch of this.recordBatches({ ...options, quiet: true })) {
      for (const { entry } of batch) {
        if (entry.entryType !== "file" || entry.payloadSize === 0) continue;
        if (select !== undefined && !select.matches(entry.relpath)) continue;
        yield [entry.offset, entry.offset + entry.payloadSize];
      }
    }
  }

  /**
   * For a container on a server whose cached index was trusted without a request
   * (`remote.confirmLazily`): confirm with one request, when none has been made yet, that the
   * object is still the one the index was cached for. Nothing for a local file.
   *
   * @throws {RemoteError} `REMOTE_CHANGED` when it is not
   */
  async confirmRemote(): Promise<void> {
    if (this.#file instanceof HttpSource) await this.#file.confirm();
  }

  /** Drop the cached index of a container on a server (found stale); nothing for a local file. */
  async dropCachedIndex(): Promise<void> {
    await this.#remote?.dropCachedIndex();
  }

  /** Size in bytes of the index (external file, embedded, or what is left of a cut one). */
  get indexLength(): number {
    return this.#indexFile?.size ?? this.#trailer?.indexLength ?? this.#cut?.indexBytes ?? 0;
  }

  /**
   * The trailer the file stops inside, when the index is read from what is left of it
   * (`salvage`); `undefined` otherwise.
   */
  get cutTrailer(): CutTrailer | undefined {
    return this.#cut;
  }

  /**
   * Whether index lines were lost with the end of a cut trailer: known once a pass of
   * {@link ContainerReader.records} has ended; `false` for a whole index.
   */
  get indexLinesLost(): boolean {
    return this.#linesLost;
  }

  /**
   * The whole trailer (the embedded index) found when the container was opened: `null` when
   * there is none, when it was not looked for (an index file given as `index` is used alone),
   * or when only a trailer cut short is left (see {@link ContainerReader.cutTrailer}).
   */
  get trailer(): TrailerLocation | null {
    return this.#trailer;
  }

  /**
   * The whole trailer at the end of the container: the one found when it was opened, else
   * looked for now (ctnr's footer, one read; then the original tools' trailer, by a backward
   * scan down to the end of the indexed payloads once a full pass of
   * {@link ContainerReader.records} has ended, else down to the start of the file).
   *
   * @returns where the trailer lies, or `null` when there is none (a footer that names an
   *   index that is not there counts as none; so does a trailer cut short)
   */
  async findTrailer(): Promise<TrailerLocation | null> {
    if (this.#trailer !== null || this.#cut !== undefined) return this.#trailer;
    try {
      return await findTrailer(this.#file, { from: this.#indexedEnd ?? 0 });
    } catch (error) {
      if (error instanceof ContainerFormatError) return null;
      throw error;
    }
  }

  /**
   * Where the index says the payloads end (the largest `offset + payload_size`, in bytes),
   * known once a full pass of {@link ContainerReader.records} has ended; `undefined` before.
   */
  get indexedEnd(): number | undefined {
    return this.#indexedEnd;
  }

  /** Size in bytes of the container file. */
  get size(): number {
    return this.#file.size;
  }

  /**
   * End of the payload area in bytes: the trailer's offset (a whole or a cut one), or the
   * file size when there is none.
   */
  get payloadAreaEnd(): number {
    return this.#trailer?.trailerOffset ?? this.#cut?.trailerOffset ?? this.#file.size;
  }

  /**
   * Iterate the index records in order, each checked to lie inside the payload area.
   *
   * @param options `quiet`: send no warnings (for a second pass over the index); `onPastEnd`:
   *   leave out entries past the payload area instead of failing
   * @returns records with line numbers
   * @throws {IndexFormatError} on a bad index (see {@link IndexReader.records})
   * @throws {ContainerFormatError} when an entry's payload lies past the payload area (code
   *   `CONTAINER_CUT` when the file ends before it: the message says where the index says the
   *   payloads end), or, at the end of a full pass over a sibling index, code
   *   `INDEX_CONFLICT` when an original tools' trailer after the indexed payloads disagrees
   */
  async *records(options: RecordOptions = {}): AsyncGenerator<IndexRecord> {
    for await (const batch of this.recordBatches(options)) yield* batch;
  }

  /**
   * {@link ContainerReader.records} in batches (see {@link IndexReader.batches}).
   *
   * @param options as {@link ContainerReader.records}
   * @returns arrays of records, in index order
   * @throws {IndexFormatError} as {@link ContainerReader.records}
   * @throws {ContainerFormatError} as {@link ContainerReader.records}
   */
  async *recordBatches(options: RecordOptions = {}): AsyncGenerator<IndexRecord[]> {
    const cut = this.#cut;
    const reader = this.#indexFile
      ? new IndexReader(this.#indexFile, {
        ...this.#readerOptions(`index "${this.indexPath}"`),
        quiet: options.quiet ?? false,
      })
      : new IndexReader(this.#indexCopy ?? this.#file, {
        ...this.#readerOptions(
          cut ? `index of "${this.path}" (cut short)` : `embedded index of "${this.path}"`,
        ),
        quiet: options.quiet ?? false,
        start: this.#indexCopy ? 0 : this.#trailer?.indexOffset ?? cut!.indexOffset,
        length: this.#trailer?.indexLength ?? cut!.indexBytes,
        // Of an index cut short, only the whole lines are read.
        allowTornTail: cut?.kind === "index",
      });
    const end = this.payloadAreaEnd;
    let maxEnd = 0;
    let pastEnd: IndexEntry | undefined;
    let pastEndCount = 0;
    try {
      for await (const batch of reader.batches()) {
        if (pastEnd !== undefined) {
          for (const { entry } of batch) {
            const stop = entry.offset + entry.payloadSize;
            if (stop > maxEnd) maxEnd = stop;
            if (stop > end) pastEndCount++;
          }
          continue;
        }
        let kept: IndexRecord[] | undefined;
        for (let i = 0; i < batch.length; i++) {
          const record = batch[i]!;
          const stop = record.entry.offset + record.entry.payloadSize;
          if (stop > maxEnd) maxEnd = stop;
          if (stop <= end) {
            kept?.push(record);
            continue;
          }
          if (options.onPastEnd !== undefined) {
            const detail = this.#pastEndDetail(record.entry);
            options.onPastEnd(record.entry, detail, this.#endsAtFileEnd);
            kept ??= batch.slice(0, i);
            continue;
          }
          if (!this.#endsAtFileEnd) {
            if (i > 0) yield batch.slice(0, i);
            throw this.#pastAreaError(record.entry);
          }
          // The file ends before this payload: read on to say where the index says they end.
          pastEnd = record.entry;
          for (const { entry } of batch.slice(i)) {
            const stop = entry.offset + entry.payloadSize;
            if (stop > maxEnd) maxEnd = stop;
            if (stop > end) pastEndCount++;
          }
          kept = batch.slice(0, i);
          break;
        }
        const out = kept ?? batch;
        if (out.length > 0) yield out;
      }
    } catch (error) {
      if (pastEnd === undefined) throw error; // else: a fault further on; the end so far is said
    }
    if (pastEnd !== undefined) {
      const others = pastEndCount - 1;
      const which = others === 0
        ? `the payload of "${pastEnd.relpath}" lies`
        : `the payloads of "${pastEnd.relpath}" and ${others} more ${
          others === 1 ? "entry" : "entries"
        } lie`;
      throw new ContainerFormatError(
        `Cannot read "${this.path}": cut short at byte ${this.#file.size} (index ` +
          `"${this.indexPath}" says its payloads run to byte ${maxEnd}): ${which} past the cut; ` +
          `\`salvage\` extracts the entries before it`,
        { code: "CONTAINER_CUT", options: ["salvage"] },
      );
    }
    this.#indexedEnd = maxEnd;
    if (cut?.kind === "index") {
      // Every line is known only when the file lost no more than the last newline.
      this.#linesLost = !(cut.indexBytes === cut.indexLength - 1 && reader.missingFinalNewline);
    }
    if (this.indexOrigin === "sibling" && this.#trailer === null && !this.#siblingChecked) {
      // An original tools' trailer of another size than the sibling, after the indexed
      // payloads: found by scanning only the bytes no entry accounts for.
      this.#siblingChecked = true;
      if (maxEnd < this.#file.size) {
        await refuseDisagreement(
          "read",
          { container: this.path, index: this.indexPath },
          this.#file,
          this.#indexFile!,
          { from: maxEnd },
        );
      }
    }
  }

  /** Whether the payload area ends where the file does (an external index, no trailer). */
  get #endsAtFileEnd(): boolean {
    return this.#trailer === null && this.#cut === undefined;
  }

  #pastEndDetail(entry: IndexEntry): string {
    const where = `its payload (offset ${entry.offset}, ${entry.payloadSize} bytes)`;
    return this.#endsAtFileEnd
      ? `${where} runs past the end of "${this.path}", which is cut short at byte ${this.#file.size}`
      : `${where} lies past the payload area, which ends at byte ${this.payloadAreaEnd}`;
  }

  #pastAreaError(entry: IndexEntry): ContainerFormatError {
    return new ContainerFormatError(
      `Cannot read entry "${entry.relpath}": ${this.#pastEndDetail(entry)}`,
    );
  }

  /**
   * Iterate the entries in index order; see {@link ContainerReader.records}.
   *
   * @param options `select`: only the entries it selects (a folder entry is matched as a
   *   folder); give it to {@link ContainerReader.takeLiterally} first
   * @returns the entries
   */
  async *entries(options: { select?: Selection } = {}): AsyncGenerator<IndexEntry> {
    const select = options.select;
    for await (const record of this.records()) {
      const entry = record.entry;
      if (select === undefined || select.matches(entry.relpath, entry.entryType === "dir")) {
        yield entry;
      }
    }
  }

  /**
   * Take each pattern of `selection` that is a path in this container (an entry's relpath, or
   * a folder holding entries) as that path: literally and from the root (`a.txt` then selects
   * `a.txt`, not `sub/a.txt`; `a[1].txt` not `a1.txt`), as tar takes member names; a pattern
   * ending in `/` only when the path is a folder; see {@link Selection.takeLiterally}. One pass over the index, only when a pattern holds glob
   * characters or no `/`.
   *
   * @param selection the patterns
   * @throws {IndexFormatError} on a bad index, as {@link ContainerReader.records}
   */
  async takeLiterally(selection: Selection): Promise<void> {
    const candidates = selection.literalCandidates({ fromRoot: true });
    if (candidates.size === 0) return;
    let folder = "";
    for await (const batch of this.recordBatches({ quiet: true, onPastEnd: () => {} })) {
      for (const { entry } of batch) {
        const relpath = entry.relpath;
        if (candidates.has(relpath)) {
          selection.takeLiterally(relpath, { fromRoot: true, folder: entry.entryType === "dir" });
        }
        // The folders above it, each once per run of entries in one folder.
        const slash = relpath.lastIndexOf("/");
        if (slash < 0 || relpath.slice(0, slash) === folder) continue;
        folder = relpath.slice(0, slash);
        for (let at = relpath.indexOf("/"); at >= 0; at = relpath.indexOf("/", at + 1)) {
          const above = relpath.slice(0, at);
          if (candidates.has(above)) {
            selection.takeLiterally(above, { fromRoot: true, folder: true });
          }
        }
      }
    }
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
   * @param from offset within the payload, in bytes (default 0)
   * @param length bytes to read (default: the rest of the payload after `from`)
   * @returns the bytes
   */
  readStored(entry: IndexEntry, from?: number, length?: number): Promise<Uint8Array> {
    const start = from ?? 0;
    return this.#file.readAt(entry.offset + start, length ?? entry.payloadSize - start);
  }

  /**
   * The stored bytes of a file entry, unverified, inside the longer stretch of the container
   * that holds them when the source has one in memory (a container on a server: the request
   * that fetched them, lib/remote/http_source.ts), else exactly them.
   *
   * @param entry a file entry of this container
   * @returns `bytes`, which hold `[entry.offset, entry.offset + entry.payloadSize)`, and
   *   `start`, the container offset of `bytes[0]`
   * @throws {ContainerFormatError} when the container ends first
   */
  async readStoredSpan(entry: IndexEntry): Promise<{ start: number; bytes: Uint8Array }> {
    const file = this.#file;
    if (file instanceof HttpSource) return await file.readSpan(entry.offset, entry.payloadSize);
    return { start: entry.offset, bytes: await this.readStored(entry) };
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
    this.#indexCopy?.close();
    this.#remote?.closeCache();
  }

  #readerOptions(name: string) {
    const options: { name: string; lenient?: boolean; onWarning?: WarningHandler } = { name };
    if (this.#options.lenient !== undefined) options.lenient = this.#options.lenient;
    if (this.#options.onWarning !== undefined) options.onWarning = this.#options.onWarning;
    return options;
  }
}

/**
 * For a container whose trailer `search` did not find: the cut trailer to read what is left
 * through, with `salvage` and when a whole entry is left (see {@link ContainerReader.cutTrailer}).
 *
 * @throws {ContainerFormatError} why there is no index (lib/read/no_index.ts), otherwise
 */
async function salvageCut(
  name: string,
  file: RandomAccess,
  search: TrailerSearch,
  options: ContainerReaderOptions,
): Promise<CutTrailer> {
  if (options.salvage && search.cut !== null && await linesSurvive(file, search.cut)) {
    return search.cut;
  }
  throw await noIndexError(name, file, search, options.salvage ?? false);
}

/**
 * Whether a whole entry is left of a trailer the file stops inside: a newline in what is left,
 * or what is left is one whole JSON line that lost only its newline (as IndexReader reads a
 * last line). Lines are at most 1 MiB (IndexReaderOptions.maxLineBytes), so the first 1 MiB
 * and a byte tell.
 */
async function linesSurvive(file: RandomAccess, cut: CutTrailer): Promise<boolean> {
  if (cut.kind !== "index") return cut.kind === "footer";
  const head = await file.readAt(cut.indexOffset, Math.min(cut.indexBytes, (1 << 20) + 1));
  if (head.includes(0x0a)) return true;
  if (head.length < cut.indexBytes) return false;
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(head));
    return true;
  } catch {
    return false;
  }
}

/**
 * Bytes at the end of a remote file the search for a trailer reads at most: the original tools'
 * trailer has no footer, and is found by scanning back from the end (lib/format/trailer.ts); a
 * file that is no container would otherwise be downloaded whole.
 */
export const REMOTE_SCAN_LIMIT = 64 << 20;

/** `source` for the trailer search: a read below its last {@link REMOTE_SCAN_LIMIT} bytes stops it. */
function scanLimited(source: RandomAccess, name: string): RandomAccess {
  const floor = source.size - REMOTE_SCAN_LIMIT;
  return {
    size: source.size,
    readAt: (position, length) => {
      if (position < floor) {
        return Promise.reject(
          new ContainerFormatError(
            `Cannot read "${name}": no ctnr footer, and no trailer of the original tools in its ` +
              `last ${REMOTE_SCAN_LIMIT >> 20} MiB; ctnr reads no more of a remote file to look ` +
              `for one (pass --index, or read a local copy)`,
            { code: "NOT_A_CONTAINER" },
          ),
        );
      }
      return source.readAt(position, length);
    },
  };
}

/** `cut short at byte N (...)` for a reader's cut trailer; see lib/read/no_index.ts. */
export function describeCut(reader: ContainerReader): string | undefined {
  return reader.cutTrailer ? cutShort(reader.size, reader.cutTrailer) : undefined;
}

async function siblingIndex(path: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(path + ".idx");
    return info.isFile ? path + ".idx" : undefined;
  } catch {
    return undefined;
  }
}
