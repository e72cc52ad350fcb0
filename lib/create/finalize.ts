/**
 * Finalizing: the trailer that embeds the index in its container, and
 * `--finalize-only` for a container whose index is complete.
 *
 * @module
 */

import { ConflictError, ContainerFormatError, UsageError } from "../errors.ts";
import { IndexReader } from "../format/index_reader.ts";
import { refuseDisagreement } from "../format/index_agreement.ts";
import { encodeFooter, encodeTrailerHeader, findTrailer } from "../format/trailer.ts";
import {
  DENO_FILE_LAYER,
  type FileLayer,
  type LayerFile,
  lockForWriting,
  openRandomAccess,
} from "../io/file_layer.ts";
import { readRange } from "../io/random_access.ts";
import { refuseIndexIsContainer } from "../safety/output_paths.ts";
import { FOLDER, PathGuard } from "../safety/path_guard.ts";

/** Options of {@link finalizeContainer}. */
export interface FinalizeOptions {
  /** Path of the index. @default container + ".idx" */
  index?: string;
  /** Delete the standalone index afterwards. @default false */
  removeIndex?: boolean;
  /** File layer (tests swap it). */
  fileLayer?: FileLayer;
}

/**
 * Embed an existing index into its container as a trailer (`--finalize-only`).
 * Idempotent: a container whose trailer already stands exactly at the end
 * of its indexed payloads is left as it is.
 *
 * @param container the container file
 * @param options index path and whether to remove it
 * @returns `true` when a trailer was written, `false` when one was already there
 * @throws {UsageError} when the index is the container (the same path, a link to it, a hard
 *   link), or the container is not a regular file (a FIFO, a device, a folder)
 * @throws {ContainerFormatError} when the index is not a regular file
 * @throws {ConflictError} when the index or container is missing, or the container
 *   is shorter than its index says
 * @throws {ContainerFormatError} code `INDEX_CONFLICT` when the container ends with a trailer
 *   that holds other entries than the index: nothing is cut or written
 *   (lib/format/index_agreement.ts)
 */
export async function finalizeContainer(
  container: string,
  options: FinalizeOptions = {},
): Promise<boolean> {
  const indexPath = options.index ?? container + ".idx";
  const layer = options.fileLayer ?? DENO_FILE_LAYER;
  await refuseIndexIsContainer(indexPath, container);
  // Looked at before either is opened, as create and the readers do: a FIFO's open would wait
  // for a writer, a folder or device is no container or index. The container is written (a
  // usage error, as for create); the index is read (a data fault, as for the readers).
  const containerInfo = await Deno.stat(container).catch(() => undefined);
  if (containerInfo === undefined) {
    throw new ConflictError(`Cannot finalize "${container}": container not found`);
  }
  if (!containerInfo.isFile) {
    throw new UsageError(
      `Cannot write container "${container}": it exists and is not a regular file`,
    );
  }
  const indexInfo = await Deno.stat(indexPath).catch(() => undefined);
  if (indexInfo !== undefined && !indexInfo.isFile) {
    throw new ContainerFormatError(`Cannot open index "${indexPath}": not a regular file`);
  }
  if (indexInfo === undefined) {
    // Finalized with --remove-index-on-finalize: the trailer is there already.
    const access = await openRandomAccess(container);
    try {
      if (await findTrailer(access) !== null) return false;
    } finally {
      access.close();
    }
    throw new ConflictError(`Cannot finalize "${container}": index "${indexPath}" not found`);
  }
  const containerFile = await layer.open(container);
  let indexFile: LayerFile | undefined;
  let written = false;
  try {
    await lockForWriting(containerFile, container);
    indexFile = await layer.open(indexPath);
    await lockForWriting(indexFile, indexPath);
    const reader = new IndexReader(indexFile, { name: `index "${indexPath}"` });
    let payloadEnd = 0;
    const guard = new PathGuard(false, PathGuard.expectedEntries(indexFile.size));
    for await (const { entry, line } of reader.records()) {
      payloadEnd = Math.max(payloadEnd, entry.offset + entry.payloadSize);
      const clash = guard.admit(entry.relpath, entry.entryType === "dir" ? FOLDER : 1);
      if (clash !== undefined) {
        throw new ConflictError(
          `Cannot finalize "${container}": line ${line} of its index, "${entry.relpath}": ` +
            `${clash}; extract would refuse this index`,
        );
      }
    }
    if (containerFile.size < payloadEnd) {
      throw new ConflictError(
        `Cannot finalize "${container}": it has ${containerFile.size} bytes but its index ` +
          `needs ${payloadEnd}`,
      );
    }
    // A trailer at the end for other entries (this index is stale): cutting back to the end of
    // its payloads would cut off that trailer and the payloads only it indexes.
    await refuseDisagreement(
      "finalize",
      { container, index: indexPath },
      containerFile,
      indexFile,
      { from: payloadEnd },
    );
    const existing = await findTrailer(containerFile, { at: payloadEnd });
    if (existing === null) {
      if (containerFile.size > payloadEnd) await containerFile.truncate(payloadEnd);
      await appendTrailer(containerFile, indexFile);
      written = true;
    }
    if (options.removeIndex) await layer.remove(indexPath); // while the lock is held
  } finally {
    containerFile.close();
    indexFile?.close();
  }
  return written;
}

/**
 * Append the trailer that embeds `index` (header, index bytes, ctnr's footer) to `container`,
 * and fsync it.
 *
 * @param container the container, its payloads ending where the trailer goes
 * @param index the index to embed
 */
export async function appendTrailer(container: LayerFile, index: LayerFile): Promise<void> {
  const length = index.size;
  await container.append(encodeTrailerHeader(length));
  for await (const bytes of readRange(index, 0, length)) await container.append(bytes);
  await container.append(encodeFooter(length));
  await container.sync();
}
