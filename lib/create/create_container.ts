/**
 * `create`: walk a source folder, load its files (read, hash, gzip, several
 * in flight), and add them to a {@link ContainerWriter} in walk order;
 * resume, durability and the trailer are the writer's.
 *
 * Pipeline: walk (sorted) -> load sources (read workers) -> ContainerWriter
 * (payloads, index batches, trailer).
 *
 * @module
 */

import { ConflictError, InterruptedError, SourceError, stoppedBy } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { progressFields, StatusFile } from "../io/status_file.ts";
import { ContainerWriter } from "./container_writer.ts";
import {
  checkOptions,
  type CreateOptions,
  type CreateProgress,
  type CreateResult,
  defaultWorkers,
  type Settings,
} from "./options.ts";
import { loadSources, type ReadyItem } from "./sources.ts";
import { SpareBuffers } from "./spare_buffers.ts";
import { streamSourceFile } from "./stream_source.ts";
import { checkSourceFolder, excludedPaths, prescan, walkTreeBatches } from "./walk.ts";

/**
 * Pack the folder `src` into the container file `container`.
 *
 * When the container or its index exists, the run resumes: a torn last
 * index line is repaired, the last committed batch re-hashed, bytes past
 * the last indexed payload (a crash's leftovers or an old trailer) cut
 * away, and entries already indexed skipped.
 *
 * @param src folder to pack
 * @param container container file to write or continue
 * @param options see {@link CreateOptions}
 * @returns a summary of the run
 * @throws {UsageError} when options are out of range
 * @throws {ConflictError} when the container exists but neither index nor trailer describe it
 * @throws {SourceError} when `src` is not a readable folder
 * @throws {InterruptedError} when `signal` aborts; the work so far is committed
 *
 * @example Pack a folder and read back the index
 * ```ts
 * import { createContainer } from "./create_container.ts";
 * const src = await Deno.makeTempDir();
 * const out = await Deno.makeTempDir();
 * try {
 *   await Deno.writeTextFile(`${src}/a.txt`, "hello");
 *   const result = await createContainer(src, `${out}/c.ctnr`, { finalize: true });
 *   if (result.added !== 1 || !result.finalized) throw new Error("unexpected result");
 * } finally {
 *   await Deno.remove(src, { recursive: true });
 *   await Deno.remove(out, { recursive: true });
 * }
 * ```
 */
export async function createContainer(
  src: string,
  container: string,
  options: CreateOptions = {},
): Promise<CreateResult> {
  const settings = checkOptions(container, options);
  await checkSourceFolder(src); // before any file is opened or created
  const status = options.statusFile
    ? new StatusFile(options.statusFile, options.statusFormat ?? "kv")
    : undefined;
  const exclude = await excludedPaths([
    container,
    settings.indexPath,
    ...(status?.paths ?? []),
  ], src);

  let totals: { files: number; bytes: number } | undefined;
  if (options.prescan) totals = await prescan(src, exclude, options.prescan === "sizes");

  const spare = new SpareBuffers();
  const writer = await ContainerWriter.open(container, {
    index: settings.indexPath,
    compress: settings.compress,
    fsyncEvery: settings.fsyncEvery,
    indexBatch: settings.indexBatch,
    dryRun: settings.dryRun,
    pathsUnique: true,
    ...(options.fileLayer ? { fileLayer: options.fileLayer } : {}),
    ...(options.onEntry ? { onEntry: options.onEntry } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    recycle: (buffer) => spare.put(buffer),
  });
  const result: CreateResult = {
    added: 0,
    alreadyPresent: 0,
    totalEntries: writer.entries,
    payloadBytes: 0,
    origBytes: 0,
    leftOut: 0,
    sourceErrors: 0,
    staleEntries: 0,
    resumed: writer.resumed,
    finalized: false,
    containerSize: 0,
    indexPath: settings.indexPath,
  };
  const startTime = Date.now();
  const reportError = (error: SourceError) => {
    result.sourceErrors++;
    options.onSourceError?.(error);
  };
  let interrupted: "SIGINT" | "SIGTERM" | "SIGHUP" | undefined;
  try {
    await status?.update({
      start_time: new Date(startTime).toISOString(),
      total_files: totals?.files ?? "",
      total_bytes: totals?.bytes ?? "",
      processed_files: 0,
      bytes_written: 0,
      current_file: "",
      status: "running",
    }, true);
    const walk = walkTreeBatches(src, {
      exclude,
      linksLeftOut: settings.symlinks === "skip",
      onError: reportError,
    });
    const loaded = loadSources(
      walk,
      (relpath) => writer.find(relpath),
      settings,
      options.concurrency ?? defaultWorkers(settings.compress),
      spare,
    );
    let processed = 0;
    reading: for await (const items of loaded) {
      for (const item of items) {
        if (options.signal?.aborted) {
          interrupted = stoppedBy(options.signal);
          break reading;
        }
        if (item === null) {
          result.alreadyPresent++;
          processed++;
          continue;
        }
        if ("error" in item) {
          reportError(item.error);
          continue;
        }
        if ("stale" in item) {
          result.alreadyPresent++;
          result.staleEntries++;
          processed++;
          options.onWarning?.(item.stale);
          continue;
        }
        if ("leftOut" in item) {
          result.leftOut++;
          options.onWarning?.(item.leftOut);
          continue;
        }
        let entry: IndexEntry;
        try {
          const added = add(writer, item, settings, options.signal);
          entry = added instanceof Promise ? await added : added;
        } catch (error) {
          if (error instanceof InterruptedError) {
            // Stopped inside a streamed file: its bytes were taken back.
            interrupted = stoppedBy(options.signal!);
            break reading;
          }
          if (error instanceof ConflictError) {
            // On resume the tree can have changed: a folder where a file was committed, an NFC twin.
            reportError(
              new SourceError(`${error.message}; rename it, or pack into a new container`),
            );
            continue;
          }
          if (!(error instanceof SourceError)) throw error;
          reportError(error);
          continue;
        }
        result.added++;
        result.payloadBytes += entry.payloadSize;
        result.origBytes += entry.origSize;
        processed++;
        const progress: CreateProgress = {
          processedFiles: processed,
          bytesWritten: result.payloadBytes,
          currentFile: entry.relpath,
        };
        if (totals) {
          progress.totalFiles = totals.files;
          progress.totalBytes = totals.bytes;
        }
        options.onProgress?.(progress);
        if (status) {
          await status.update({
            processed_files: processed,
            bytes_written: result.payloadBytes,
            current_file: entry.relpath,
            ...progressFields(startTime, result.payloadBytes, result.origBytes, totals?.bytes),
          });
        }
      }
    }
    if (interrupted || !options.finalize) await writer.close();
    else {
      await writer.finalize({ removeIndex: options.removeIndexOnFinalize ?? false });
      result.finalized = !settings.dryRun;
    }
  } catch (error) {
    await writer.close().catch(() => {}); // keep what was done: commit the pending batch
    throw error;
  }
  result.totalEntries = writer.entries;
  result.containerSize = writer.size;
  if (interrupted) {
    await status?.update({ status: "interrupted", finished_time: new Date().toISOString() }, true);
    throw new InterruptedError(interrupted);
  }
  await status?.update({
    status: "finished",
    processed_files: result.added + result.alreadyPresent,
    bytes_written: result.payloadBytes,
    current_file: "",
    finished_time: new Date().toISOString(),
  }, true);
  return result;
}

/** Add one loaded item to the writer: at once when its payload is in memory. */
function add(
  writer: ContainerWriter,
  item: ReadyItem,
  settings: Settings,
  signal: AbortSignal | undefined,
): IndexEntry | Promise<IndexEntry> {
  // The walk entry is the header: relpath, mode, mtime (no object made per entry).
  const walk = item.walk;
  if (walk.kind === "dir") return writer.addFolder(walk);
  if (walk.kind === "symlink") return writer.addSymlink(walk, walk.linkTarget!);
  if (item.payload === undefined) return streamSourceFile(writer, walk, settings, { signal });
  return writer.addPrepared(walk, item.payload);
}
