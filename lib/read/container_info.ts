/**
 * What a container holds and where its index is, for `ctnr info`: entries by
 * kind, original and stored bytes, whether it is finalized (has a trailer),
 * which index was read and which others exist.
 *
 * @module
 */

import type { TrailerLocation } from "../format/trailer.ts";
import type { ContainerReader, IndexOrigin } from "./container_reader.ts";

/** An index file and its size. */
export interface IndexFileInfo {
  /** Path of the index file. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
}

/** What {@link containerInfo} tells about a container. */
export interface ContainerInfo {
  /** Path of the container. */
  path: string;
  /** Size in bytes of the container file. */
  containerBytes: number;
  /** Entries in the index. */
  entries: number;
  /** File entries. */
  files: number;
  /** Folder entries (`entry_type` `dir`). */
  folders: number;
  /** Symlink entries. */
  links: number;
  /** File entries stored as gzip members. */
  compressedFiles: number;
  /** Sum of `orig_size` over the files: their original size in bytes. */
  origBytes: number;
  /** Sum of `payload_size` over the files: their stored size in bytes. */
  storedBytes: number;
  /** Where the index says the payloads end: the largest `offset + payload_size`, in bytes. */
  payloadEnd: number;
  /**
   * The embedded index (the trailer): there when the container is finalized, else `null`.
   * Looked for even when `index` is an external file.
   */
  trailer: TrailerLocation | null;
  /** The index that was read: from the trailer, the sibling `.idx`, or an `index` given. */
  index: { origin: IndexOrigin } & IndexFileInfo;
  /** `<container>.idx` when it exists as a file, read or not; `null` otherwise. */
  siblingIndex: IndexFileInfo | null;
}

/**
 * Read the whole index of an open container (every entry validated, as `list` does) and tell
 * what it holds and where its index is.
 *
 * @param reader the open container; read to its end, not closed
 * @returns the totals and the index locations
 * @throws {IndexFormatError} on a bad index (see {@link ContainerReader.records})
 * @throws {ContainerFormatError} as {@link ContainerReader.records}
 *
 * @example Totals of a finalized container
 * ```ts
 * import { ContainerReader, createContainer } from "@ctnr/ctnr";
 * const work = await Deno.makeTempDir();
 * try {
 *   await Deno.mkdir(`${work}/src`);
 *   await Deno.writeTextFile(`${work}/src/a.txt`, "hello");
 *   await createContainer(`${work}/src`, `${work}/c.ctnr`, { finalize: true });
 *   const reader = await ContainerReader.open(`${work}/c.ctnr`);
 *   try {
 *     const info = await containerInfo(reader);
 *     if (info.files !== 1 || info.origBytes !== 5 || info.trailer === null) {
 *       throw new Error("unexpected info");
 *     }
 *   } finally {
 *     reader.close();
 *   }
 * } finally {
 *   await Deno.remove(work, { recursive: true });
 * }
 * ```
 */
export async function containerInfo(reader: ContainerReader): Promise<ContainerInfo> {
  const info: ContainerInfo = {
    path: reader.path,
    containerBytes: reader.size,
    entries: 0,
    files: 0,
    folders: 0,
    links: 0,
    compressedFiles: 0,
    origBytes: 0,
    storedBytes: 0,
    payloadEnd: 0,
    trailer: null,
    index: { origin: reader.indexOrigin, path: reader.indexPath, bytes: reader.indexLength },
    siblingIndex: null,
  };
  for await (const batch of reader.recordBatches()) {
    for (const { entry } of batch) {
      info.entries++;
      if (entry.entryType === "dir") info.folders++;
      else if (entry.entryType === "symlink") info.links++;
      else {
        info.files++;
        if (entry.compressed) info.compressedFiles++;
      }
      info.origBytes += entry.origSize;
      info.storedBytes += entry.payloadSize;
    }
  }
  info.payloadEnd = reader.indexedEnd ?? 0;
  info.trailer = await reader.findTrailer();
  const sibling = `${reader.path}.idx`;
  const stat = await Deno.stat(sibling).catch(() => undefined);
  if (stat?.isFile) info.siblingIndex = { path: sibling, bytes: stat.size };
  return info;
}
