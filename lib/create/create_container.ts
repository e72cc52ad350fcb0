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
import {
  containerFiles,
  refuseIndexIsContainer,
  refuseInside,
  refuseSameFile,
} from "../safety/output_paths.ts";
import { streamSourceFile } from "./stream_source.ts";
import {
  checkSourceFolder,
  excludedPaths,
  prescan,
  type WalkEntry,
  type WalkOptions,
  type WalkPatterns,
  walkTreeBatches,
} from "./walk.ts";
import { findCommittedIndex, readCommittedIndex } from "./resume.ts";
import { pathKey } from "../safety/path_guard.ts";
import { RelpathSet } from "../safety/relpath_set.ts";
import { warning } from "../warnings.ts";
import { Selection } from "../selection.ts";
import { checkRelpath } from "../safety/relpath.ts";
import { join } from "node:path";

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
 * @throws {InterruptedError} when `signal` aborts; the work so far is committed, and the error's
 *   `result` is the {@link CreateResult} of the run up to the stop
 *
 * @example Pack a folder and read back the index
 * ```ts
 * import { createContainer } from "@ctnr/ctnr";
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
export function createContainer(
  src: string,
  container: string,
  options: CreateOptions = {},
): Promise<CreateResult> {
  return runCreate(src, container, options);
}

/**
 * How a run splits what it packs into shards (lib/shard/create_shards.ts): the run writes the
 * shard `container` names first, and asks these hooks as it goes.
 */
export interface ShardHooks {
  /** Keep a walked item (the part's, past the shards already finalized). It may throw. */
  keep(entry: WalkEntry): boolean;
  /** The walk has ended, after its last item was given to `keep`. It may throw. */
  walked(): void;
  /** Whether `item` goes into a new shard (the current one is full). */
  full(writer: ContainerWriter, item: ReadyItem): boolean;
  /** Finalize `writer` as a shard and open the next one with `open`. */
  next(
    writer: ContainerWriter,
    open: (container: string) => Promise<ContainerWriter>,
  ): Promise<ContainerWriter>;
  /** Finalize the last shard and write the manifest. */
  finish(writer: ContainerWriter): Promise<void>;
  /** Folders of other parts never entered (paths on disk, as `join(src, name)` spells them). */
  pruned: string[];
}

/** {@link createContainer}, or with `shards` a shard set's run. */
export async function runCreate(
  src: string,
  container: string,
  options: CreateOptions,
  shards?: ShardHooks,
): Promise<CreateResult> {
  const settings = checkOptions(container, options);
  // Patterns are checked before anything is opened too.
  const include = new Selection(options.include ?? []);
  const patterns = { include, exclude: new Selection(options.exclude ?? []) };
  await checkSourceFolder(src); // before any file is opened or created
  for (const selection of [include, patterns.exclude]) takeLiterally(selection, src);
  await refuseIndexIsContainer(settings.indexPath, container);
  if (options.statusFile) await checkStatusPath(options.statusFile, src, container, settings);
  const status = options.statusFile
    ? new StatusFile(options.statusFile, options.statusFormat ?? "kv", signalOption(options))
    : undefined;
  try {
    await status?.prepare();
    return await pack(src, container, options, settings, status, patterns, shards);
  } finally {
    status?.close();
  }
}

/** The run of {@link createContainer}, once its paths are checked. */
async function pack(
  src: string,
  container: string,
  options: CreateOptions,
  settings: Settings,
  status: StatusFile | undefined,
  patterns: WalkPatterns & { include: Selection },
  shards?: ShardHooks,
): Promise<CreateResult> {
  const exclude = await excludedPaths([container, settings.indexPath], src);
  for (const path of shards?.pruned ?? []) exclude.add(path);

  // One progress object, updated in place: no allocation per item.
  const progress: CreateProgress = {
    phase: "scanning",
    processedFiles: 0,
    added: 0,
    itemsDone: 0,
    bytesDone: 0,
    bytesWritten: 0,
    currentFile: "",
  };
  const onProgress = options.onProgress;
  let totals: { files: number; bytes: number | undefined } | undefined;
  if (options.prescan) {
    const sizes = options.prescan === "sizes";
    onProgress?.(progress);
    const found = await prescan(
      src,
      exclude,
      sizes,
      patterns,
      onProgress && ((counts) => {
        progress.processedFiles = counts.entries;
        progress.itemsDone = counts.entries + counts.specials;
        progress.bytesDone = counts.bytes;
        onProgress(progress);
      }),
    );
    options.onPrescan?.(found);
    totals = { files: found.entries, bytes: sizes ? found.bytes : undefined };
    progress.totalFiles = found.entries;
    // The run meets the special files too (and leaves them out): they count towards its end.
    progress.totalItems = found.entries + found.specials;
    if (sizes) progress.totalBytes = found.bytes;
  }

  const result: CreateResult = {
    added: 0,
    alreadyPresent: 0,
    totalEntries: 0,
    payloadBytes: 0,
    origBytes: 0,
    leftOut: 0,
    sourceErrors: 0,
    staleEntries: 0,
    missing: 0,
    excluded: 0,
    unmatched: [],
    resumed: false,
    finalized: false,
    containerSize: 0,
    indexPath: settings.indexPath,
  };
  const reportError = (error: SourceError) => {
    result.sourceErrors++;
    options.onSourceError?.(error);
  };
  const walkOptions = { exclude, linksLeftOut: settings.symlinks === "skip", patterns };
  const listed = walkTreeBatches(src, {
    ...walkOptions,
    onError: reportError,
    patterns: { ...patterns, onExcluded: () => result.excluded++ },
  });
  const walk = shards === undefined ? listed : keepOnly(listed, shards);
  // A different tree packed into an existing container by mistake would merge into it: refused
  // before the writer opens (which may cut a trailer), unless `append` or `fresh` say so.
  let walked: WalkEntry[][] = [];
  if (!options.append && !options.fresh) {
    try {
      walked = await refuseUnrelatedSource(walk, src, container, settings.indexPath, walkOptions);
    } catch (error) {
      await walk.return(0);
      throw error;
    }
  }

  const spare = new SpareBuffers();
  const open = (path: string, index = path + ".idx") =>
    ContainerWriter.open(path, {
      index,
      compress: settings.compress,
      fsyncEvery: settings.fsyncEvery,
      indexBatch: settings.indexBatch,
      dryRun: settings.dryRun,
      fresh: options.fresh ?? false,
      pathsUnique: true,
      ...(options.fileLayer ? { fileLayer: options.fileLayer } : {}),
      ...(options.onEntry ? { onEntry: options.onEntry } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
      recycle: (buffer) => spare.put(buffer),
    });
  let writer = await open(container, settings.indexPath);
  result.totalEntries = writer.entries;
  result.resumed = writer.resumed;
  const startTime = Date.now();
  let interrupted: "SIGINT" | "SIGTERM" | "SIGHUP" | undefined;
  try {
    // The container and index by identity: a hard link or bind mount of them in src is skipped.
    settings.own = await identities([container, settings.indexPath]);
    await status?.update({
      start_time: new Date(startTime).toISOString(),
      total_files: totals?.files ?? "",
      total_bytes: totals?.bytes ?? "",
      processed_files: 0,
      bytes_written: 0,
      current_file: "",
      current_file_bytes: 0,
      speed_bps: 0,
      eta_seconds: "",
      status: "running",
    }, true);
    const loaded = loadSources(
      replay(walked, walk),
      (relpath) => writer.meet(relpath),
      settings,
      options.concurrency ?? defaultWorkers(settings.compress),
      spare,
    );
    walked = [];
    let processed = 0;
    progress.phase = "writing";
    progress.processedFiles = 0;
    progress.itemsDone = 0;
    progress.bytesDone = 0;
    onProgress?.(progress);
    // Bytes of the files already present (resume) and of those added, for `bytesDone`.
    let bytesPresent = 0;
    // An item that added no entry: already present, left out or unreadable.
    const step = onProgress && (() => {
      progress.processedFiles = processed;
      progress.itemsDone++;
      progress.bytesDone = bytesPresent + result.origBytes;
      onProgress(progress);
    });
    // A file streamed in pieces reports the bytes read so far of it.
    const onRead = onProgress && ((read: number) => {
      progress.bytesDone = bytesPresent + result.origBytes + read;
      onProgress(progress);
    });
    reading: for await (const { items, buffer } of loaded) {
      for (const item of items) {
        if (options.signal?.aborted) {
          interrupted = stoppedBy(options.signal);
          break reading;
        }
        if (typeof item === "number") {
          result.alreadyPresent++;
          processed++;
          bytesPresent += item;
          step?.();
          continue;
        }
        if ("error" in item) {
          reportError(item.error);
          step?.();
          continue;
        }
        if ("stale" in item) {
          result.alreadyPresent++;
          result.staleEntries++;
          processed++;
          bytesPresent += item.size;
          options.onWarning?.(item.stale);
          step?.();
          continue;
        }
        if ("leftOut" in item) {
          result.leftOut++;
          options.onWarning?.(item.leftOut);
          step?.();
          continue;
        }
        let entry: IndexEntry;
        if (onProgress && item.payload === undefined) progress.currentFile = item.walk.relpath;
        try {
          if (shards?.full(writer, item)) writer = await shards.next(writer, (path) => open(path));
          const added = add(writer, item, settings, options.signal, onRead);
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
              new SourceError(`${error.message}; rename it, or pack into a new container`, {
                relpath: item.walk.relpath,
                nameRefused: true,
              }),
            );
            step?.();
            continue;
          }
          if (!(error instanceof SourceError)) throw error;
          reportError(error);
          step?.();
          continue;
        }
        result.added++;
        result.payloadBytes += entry.payloadSize;
        result.origBytes += entry.origSize;
        processed++;
        if (onProgress) {
          progress.processedFiles = processed;
          progress.added = result.added;
          progress.itemsDone++;
          progress.bytesDone = bytesPresent + result.origBytes;
          progress.bytesWritten = result.payloadBytes;
          progress.currentFile = entry.relpath;
          onProgress(progress);
        }
        if (status) {
          await status.update({
            processed_files: processed,
            bytes_written: result.payloadBytes,
            current_file: entry.relpath,
            current_file_bytes: entry.payloadSize,
            ...progressFields(startTime, result.payloadBytes, result.origBytes, totals?.bytes),
          });
        }
      }
      // Every item of the batch is added: its buffer goes back to the read workers once written.
      if (buffer !== undefined) writer.release(buffer);
    }
    // Before finalize, which may remove the index that names them.
    if (!interrupted && writer.resumed) result.missing = await reportMissing(writer, src, options);
    // A shard set's run is always given `finalize` (lib/shard/create_shards.ts).
    if (interrupted || !options.finalize) await writer.close();
    else {
      progress.phase = "finalizing";
      onProgress?.(progress);
      if (shards !== undefined) {
        await shards.finish(writer);
        result.finalized = true;
      } else {
        await writer.finalize({ removeIndex: options.removeIndexOnFinalize ?? false });
        result.finalized = !settings.dryRun;
      }
    }
  } catch (error) {
    await writer.close().catch(() => {}); // keep what was done: commit the pending batch
    throw error;
  } finally {
    await walk.return(0);
  }
  result.totalEntries = writer.entries;
  result.containerSize = writer.size;
  result.unmatched = patterns.include.unmatched;
  // The last status, stopped or finished: no current file, nothing left to wait for.
  await status?.update({
    status: interrupted ? "interrupted" : "finished",
    processed_files: result.added + result.alreadyPresent,
    bytes_written: result.payloadBytes,
    current_file: "",
    current_file_bytes: 0,
    ...progressFields(startTime, result.payloadBytes, result.origBytes, totals?.bytes),
    eta_seconds: 0,
    finished_time: new Date().toISOString(),
  }, true);
  if (interrupted) throw new InterruptedError(interrupted, { result });
  return result;
}

/** Walk items this many ahead are compared with the committed entries before a fuller look. */
const LOOK_AHEAD = 1024;

/**
 * Refuse a source that shares no relpath with the committed entries of an existing container
 * (another tree, or a container name given by mistake): nothing is opened for writing. The
 * walk's first batches are compared with the index, read until one matches (at once, when
 * the run continues the same tree); only when none of them does are the index and the whole
 * tree compared (a second walk, its errors left to the real one, without the `include`
 * patterns: a tree packed in parts is one tree; with `exclude`, first without what it leaves
 * out, then, when that meets nothing committed, over everything).
 *
 * @returns the batches taken from `walk`, to be handed on before the rest of it
 * @throws {ConflictError} naming the container and the source, and the options `append` and
 *   `fresh`
 */
async function refuseUnrelatedSource(
  walk: AsyncGenerator<WalkEntry[], number>,
  src: string,
  container: string,
  indexPath: string,
  walkOptions: WalkOptions,
): Promise<WalkEntry[][]> {
  const where = await findCommittedIndex(container, indexPath);
  if (where === undefined || where.length === 0) return [];
  const taken: WalkEntry[][] = [];
  const keys = new Set<string>();
  let ended = false;
  while (keys.size < LOOK_AHEAD) {
    const next = await walk.next();
    if (next.done) {
      ended = true;
      break;
    }
    taken.push(next.value);
    for (const item of next.value) keys.add(pathKey(item.relpath, false));
  }
  if (keys.size === 0) return taken; // an empty source adds nothing
  // A walk that ended has met the whole tree, unless patterns left part of it out.
  const patterns = walkOptions.patterns;
  const filtered = patterns?.include?.empty === false || patterns?.exclude?.empty === false;
  const committed = ended && !filtered ? undefined : new RelpathSet();
  let entries = 0;
  for await (const { entry } of readCommittedIndex(where)) {
    const key = pathKey(entry.relpath, false);
    if (keys.has(key)) return taken; // the usual resume: its first items are committed
    committed?.add(key);
    entries++;
  }
  if (entries === 0) return taken;
  if (committed !== undefined) {
    // The source whatever `include` says: packing a tree in parts (`include` one part, then
    // another) is the same tree. First without what `exclude` leaves out (an excluded folder
    // is never entered: 200 excluded folders of 1,000 files took 0.48 s here, 0.06 s without),
    // then, only when that met nothing committed (it was all packed before it was excluded),
    // the whole of it.
    const { patterns, ...whole } = walkOptions;
    const exclude = patterns?.exclude;
    const looks = exclude?.empty === false ? [{ ...whole, patterns: { exclude } }, whole] : [whole];
    for (const look of looks) {
      for await (const batch of walkTreeBatches(src, look)) {
        for (const item of batch) {
          if (committed.has(pathKey(item.relpath, false))) return taken;
        }
      }
    }
  }
  throw new ConflictError(
    `Cannot add "${src}" to "${container}": ${
      entries === 1 ? "the entry" : `none of the ${entries} entries`
    } committed in it is${
      entries === 1 ? " not" : ""
    } in this source, which looks like another tree; give \`append\` to add it to this ` +
      `container, \`fresh\` to start the container anew, or pack into a new container`,
    { options: ["append", "fresh"] },
  );
}

/** The walk's items that `shards` keeps. */
async function* keepOnly(
  walk: AsyncGenerator<WalkEntry[], number>,
  shards: ShardHooks,
): AsyncGenerator<WalkEntry[], number> {
  for (;;) {
    const next = await walk.next();
    if (next.done) {
      shards.walked();
      return next.value;
    }
    const kept = next.value.filter((entry) => shards.keep(entry));
    if (kept.length > 0) yield kept;
  }
}

/** The batches taken already, then the rest of the walk. */
async function* replay(
  taken: WalkEntry[][],
  walk: AsyncGenerator<WalkEntry[], number>,
): AsyncGenerator<WalkEntry[]> {
  yield* taken;
  for (;;) {
    const next = await walk.next();
    if (next.done) return;
    yield next.value;
  }
}

/** Committed entries named in a {@link MISSING_FROM_SOURCE} warning at most. */
const MISSING_NAMED = 5;

/**
 * Count the committed entries the walk never met and that are gone from the source (an lstat
 * each: a folder entry that is no longer empty was not met, but is there), and warn naming the
 * first few; the container keeps them.
 *
 * @returns how many are gone
 */
async function reportMissing(
  writer: ContainerWriter,
  src: string,
  options: CreateOptions,
): Promise<number> {
  if (writer.unmetCount === 0) return 0;
  const named: string[] = [];
  let missing = 0;
  // Entries come in walk order, a folder's together: its folder is looked at once, and when it
  // is gone so are they (1,000,000 entries against an empty source: 1,000 lstat calls, not a
  // million; async ones took 40 s).
  let folder: string | undefined;
  let folderThere = true;
  for await (const entry of writer.unmet()) {
    const slash = entry.relpath.lastIndexOf("/");
    const parent = slash < 0 ? "" : entry.relpath.slice(0, slash);
    if (parent !== folder) {
      folder = parent;
      folderThere = parent === "" || exists(join(src, parent));
    }
    // Still there: unreadable, or a folder that is not empty now.
    if (folderThere && exists(join(src, entry.relpath))) continue;
    missing++;
    if (named.length < MISSING_NAMED) named.push(`"${entry.relpath}"`);
  }
  if (missing > 0) {
    options.onWarning?.(warning(
      "MISSING_FROM_SOURCE",
      `${missing} committed ${missing === 1 ? "entry is" : "entries are"} no longer in the ` +
        `source; the container keeps ${missing === 1 ? "it" : "them"}: ` +
        named.join(", ") + (missing > named.length ? `, and ${missing - named.length} more` : ""),
    ));
  }
  return missing;
}

/** Whether something stands at `path` (an lstat; any error but "not there" counts as there). */
function exists(path: string): boolean {
  return standing(path) !== undefined;
}

/**
 * What stands at `path`: `folder` or `other`, or `undefined` when nothing does (an lstat; any
 * error but "not there" counts as something there).
 */
function standing(path: string): "folder" | "other" | undefined {
  try {
    return Deno.lstatSync(path).isDirectory ? "folder" : "other";
  } catch (error) {
    const missing = error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotADirectory;
    return missing ? undefined : "other";
  }
}

/**
 * Take literally each pattern with glob characters that is the relpath of something in `src`
 * (`a[1].txt` is then that file, not `a1.txt`; a name still at any depth; one ending in `/`
 * only when it is a folder): one lstat each.
 */
function takeLiterally(selection: Selection, src: string): void {
  for (const glob of selection.literalCandidates()) {
    if (checkRelpath(glob) !== undefined) continue;
    const found = standing(join(src, glob));
    if (found !== undefined) selection.takeLiterally(glob, { folder: found === "folder" });
  }
}

/** Device and inode numbers, in pairs, of the files that exist among `paths`. */
async function identities(paths: string[]): Promise<number[]> {
  const own: number[] = [];
  for (const path of paths) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (info?.ino != null) own.push(info.dev, info.ino);
  }
  return own;
}

/**
 * Refuse a status file that is the container or its index (a link to them, a hard link), or
 * that lies inside the source folder (it would replace a file being packed): before anything
 * is written.
 *
 * @throws {UsageError} naming both paths
 */
async function checkStatusPath(
  statusFile: string,
  src: string,
  container: string,
  settings: Settings,
): Promise<void> {
  const status = { what: "the status file", path: statusFile, option: "statusFile" };
  await refuseSameFile(status, containerFiles(container, settings.indexPath));
  await refuseInside(status, { what: "the source folder", path: src });
}

function signalOption(options: CreateOptions): { signal?: AbortSignal } {
  return options.signal === undefined ? {} : { signal: options.signal };
}

/**
 * Add one loaded item to the writer: at once when its payload is in memory. `onRead` hears the
 * bytes read so far of a file streamed in pieces.
 */
function add(
  writer: ContainerWriter,
  item: ReadyItem,
  settings: Settings,
  signal: AbortSignal | undefined,
  onRead: ((read: number) => void) | undefined,
): IndexEntry | Promise<IndexEntry> {
  // The walk entry is the header: relpath, mode, mtime (no object made per entry).
  const walk = item.walk;
  if (walk.kind === "dir") return writer.addFolder(walk);
  if (walk.kind === "symlink") return writer.addSymlink(walk, walk.linkTarget!);
  if (item.payload === undefined) {
    return streamSourceFile(writer, walk, settings, { signal, onRead });
  }
  return writer.addPrepared(walk, item.payload);
}
