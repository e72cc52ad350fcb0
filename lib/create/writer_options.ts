/**
 * What a `ContainerWriter` is opened with and given: its options, the
 * fields of an entry, payloads made already, and readers of large files.
 *
 * @module
 */

import type { IndexEntry } from "../format/entry.ts";
import type { FileLayer } from "../io/file_layer.ts";
import type { WarningHandler } from "../warnings.ts";

/** Options of `ContainerWriter.open`. */
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
   * Start the container anew: its committed entries and payloads are dropped (container and
   * index cut to zero bytes). Only over a container of ctnr's (empty, ending with a trailer,
   * or with its index beside it) and an index that reads as one: anything else is refused
   * with a `ConflictError`, unchanged. @default false
   */
  fresh?: boolean;
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
   * Receives each buffer given to `ContainerWriter.release` (a read batch's buffer, none of whose
   * payloads are to come), once the payloads held from it are written: to fill again.
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
