/**
 * `extract`: plan (validate the whole index), then write each entry into a
 * temp file in its target folder, verify it, apply mode and mtime, and
 * rename it over the target. Nothing is ever written through a symlink.
 *
 * Pipeline: ContainerReader (index) -> plan -> ExtractJob (read window,
 * verify, write dispatch to the write workers, or large files streamed) ->
 * temp file -> rename, in the OutputTree.
 *
 * @module
 */

import { resolve } from "node:path";
import {
  ContainerFormatError,
  type CtnrError,
  EnvironmentError,
  InterruptedError,
  type UnsafeEntryError,
  UsageError,
} from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { StatusFile } from "../io/status_file.ts";
import { WORKER_THRESHOLD, WorkerPool } from "../io/worker_pool.ts";
import {
  ContainerReader,
  type ContainerReaderOptions,
  describeCut,
} from "../read/container_reader.ts";
import { probeCaseFolding } from "../safety/case_probe.ts";
import { containerFiles, refuseSameFile } from "../safety/output_paths.ts";
import { OutputTree } from "../safety/output_tree.ts";
import { RelpathSet } from "../safety/relpath_set.ts";
import { warning } from "../warnings.ts";
import { Selection } from "../selection.ts";
import { currentUmask, ExtractJob } from "./job.ts";
import type { ExtractOptions, ExtractProgress, ExtractResult } from "./options.ts";
import { type ExtractPlan, planExtraction, type PlanOptions } from "./plan.ts";
import type { WriteBatch, WriteBatchResult } from "./_extract_worker.ts";

const WRITE_WORKER = new URL("./_extract_worker.ts", import.meta.url);

/**
 * Extract every entry of `container` under `outdir`.
 *
 * @param container the container file
 * @param outdir output folder (created when missing)
 * @param options see {@link ExtractOptions}
 * @returns a summary
 * @throws {UsageError} on bad options; when the status file is the container or its index
 *   (the same path, a link to it, a hard link), or a folder
 * @throws {ContainerFormatError} when the index cannot be found, or the index and the trailer
 *   disagree (see {@link ContainerReader.open}); when a payload lies past the payload area (code
 *   `CONTAINER_CUT` when the container is cut short; nothing is written, unless `keepGoing`
 *   or `salvage`); with `salvage`, at the end, when entries were left out or index lines lost
 * @throws {IndexFormatError} on a bad index (nothing is written)
 * @throws {UnsafeEntryError} on an unsafe or clashing entry (nothing is written when
 *   found by the plan; a symlink met on disk stops that entry)
 * @throws {IntegrityError} on a payload that does not verify (no file is left for it)
 *
 * @example Round trip a folder
 * ```ts
 * import { createContainer, extractContainer } from "@ctnr/ctnr";
 * const work = await Deno.makeTempDir();
 * try {
 *   await Deno.mkdir(`${work}/src`);
 *   await Deno.writeTextFile(`${work}/src/a.txt`, "hello");
 *   await createContainer(`${work}/src`, `${work}/c.ctnr`, { finalize: true });
 *   const result = await extractContainer(`${work}/c.ctnr`, `${work}/out`);
 *   if (result.extracted !== 1) throw new Error("expected one entry");
 *   if (await Deno.readTextFile(`${work}/out/a.txt`) !== "hello") throw new Error("bad content");
 * } finally {
 *   await Deno.remove(work, { recursive: true });
 * }
 * ```
 */
export async function extractContainer(
  container: string,
  outdir: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  const chunkSize = options.chunkSize ?? 1 << 20;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1024) {
    throw new UsageError(`Option \`chunkSize\` must be at least 1024 bytes, got ${chunkSize}`, {
      options: ["chunkSize"],
    });
  }
  const readerOptions: ContainerReaderOptions = {};
  if (options.index !== undefined) readerOptions.index = options.index;
  if (options.lenient !== undefined) readerOptions.lenient = options.lenient;
  if (options.expectIndex !== undefined) readerOptions.expectIndex = options.expectIndex;
  if (options.onWarning !== undefined) readerOptions.onWarning = options.onWarning;
  if (options.statusFile) {
    // Before the container is opened: a status file renamed over it would destroy it.
    await refuseSameFile(
      { what: "the status file", path: options.statusFile, option: "statusFile" },
      containerFiles(container, options.index),
    );
  }
  if (options.salvage) readerOptions.salvage = true;
  if (options.remote !== undefined) {
    readerOptions.remote = options.signal === undefined
      ? options.remote
      : { ...options.remote, signal: options.signal };
  }
  // Prepared before anything is read or written: one that cannot be written is a usage error.
  const status = options.statusFile
    ? new StatusFile(
      options.statusFile,
      options.statusFormat,
      options.signal ? { signal: options.signal } : {},
    )
    : undefined;
  const target = resolve(outdir);
  const existing = await Deno.stat(target).catch(() => undefined);
  if (existing !== undefined && !existing.isDirectory) {
    throw new UsageError(`Cannot extract into "${outdir}": it exists and is not a folder`);
  }
  // Patterns are checked before the container is opened.
  const select = options.select === undefined || options.select instanceof Selection
    ? options.select
    : new Selection(options.select);
  try {
    await status?.prepare();
    return await extractWith(container, target, options, {
      chunkSize,
      readerOptions,
      select,
      status,
    });
  } finally {
    status?.close();
  }
}

/** The run of {@link extractContainer}, once its options and paths are checked. */
async function extractWith(
  container: string,
  target: string,
  options: ExtractOptions,
  checked: {
    chunkSize: number;
    readerOptions: ContainerReaderOptions;
    select: Selection | undefined;
    status: StatusFile | undefined;
  },
): Promise<ExtractResult> {
  const { chunkSize, readerOptions, select, status } = checked;
  const keepGoing = (options.keepGoing ?? false) || (options.salvage ?? false);
  const verb = options.dryRun ? "verify" : "extract";
  const reader = await ContainerReader.open(container, readerOptions);
  let pool: WorkerPool<WriteBatch, WriteBatchResult> | undefined;
  try {
    if (select !== undefined) await reader.takeLiterally(select);
    // With keepGoing, links pointing outside are reported and skipped; the rest is extracted.
    const refusedLinks = new Set<string>();
    // A dry run (and verify) writes nothing, not even the probe's temp file: it assumes the
    // platform's usual rule (names fold on macOS and Windows).
    const folding = options.dryRun
      ? { top: Deno.build.os === "darwin" || Deno.build.os === "windows", mounts: [] }
      : await probeCaseFolding(target);
    const planOptions: PlanOptions = {
      allowUnsafeLinks: options.allowUnsafeLinks ?? false,
      foldCase: folding,
      verb,
    };
    if (!options.dryRun) {
      planOptions.outdir = target;
      // Names Windows would open as a device, strip or refuse (lib/safety/windows_names.ts).
      planOptions.windowsNames = Deno.build.os === "windows";
    }
    if (select !== undefined) planOptions.select = select;
    // One progress object for the whole run, updated in place: no allocation per entry.
    const progress: ExtractProgress = {
      phase: "planning",
      indexBytesRead: 0,
      indexBytes: reader.indexLength,
      entriesDone: 0,
      bytesDone: 0,
      totalEntries: 0,
      totalBytes: 0,
      currentEntry: "",
    };
    const onProgress = options.onProgress;
    if (onProgress) {
      onProgress(progress);
      planOptions.onIndexRead = (bytes) => {
        progress.indexBytesRead = bytes;
        onProgress(progress);
      };
    }
    // Folders with an entry are made 0700 and given their mode last, wherever the entry stands.
    const recordedFolders = new RelpathSet();
    planOptions.onFolder = (entry) => recordedFolders.add(entry.relpath);
    const refused: [IndexEntry, UnsafeEntryError][] = [];
    // With keepGoing, entries past the end of a container cut short are reported as they are
    // met (not kept: a container cut early leaves most of its entries out) and left out.
    let pastEnd = 0;
    let firstPastEnd: CtnrError | undefined;
    if (keepGoing) {
      planOptions.onUnsafeLink = (entry, error) => {
        refusedLinks.add(entry.relpath);
        refused.push([entry, error]);
      };
      planOptions.onPastEnd = (entry, error) => {
        pastEnd++;
        firstPastEnd ??= error;
        options.onEntryError?.(entry, error);
      };
    }
    // Two write workers: file creation and rename do scale on 2 cores, unlike create's reads
    // (bench/compare.ts: 100,000 small files, 2.98 s with one worker, 2.50 s with two). They
    // start before the plan when the index is long enough to need them: their start-up (module
    // loading, ~50 ms) then runs beside the plan's pass over the index instead of after it.
    const workers = options.dryRun ? 0 : options.concurrency ?? 2;
    const startPool = () => new WorkerPool<WriteBatch, WriteBatchResult>(WRITE_WORKER, workers);
    if (workers > 0 && reader.indexLength > WORKER_THRESHOLD * 256) pool = startPool();
    const plan = await planExtraction(reader, planOptions);
    options.onPlan?.(plan);
    if (plan.leftOut === 0 && plan.payloadEnd > reader.payloadAreaEnd && !options.salvage) {
      // Only entries outside the selection lie past the cut (a selected one stops the run or
      // is left out): the selection is whole, and the cut is said.
      options.onWarning?.(warning(
        "CONTAINER_CUT",
        `"${container}" is cut short (its index names payloads up to byte ${plan.payloadEnd}, ` +
          `they end at byte ${reader.payloadAreaEnd}); no selected entry lies past the cut`,
      ));
    }
    if (plan.files <= WORKER_THRESHOLD) {
      pool?.terminate();
      pool = undefined;
    } else if (pool === undefined && workers > 0) pool = startPool();
    const startTime = Date.now();
    // As tar: as root, modes as recorded (`-p` is its default there); else the umask is taken
    // off, unless `samePermissions`.
    const samePermissions = options.samePermissions ?? Deno.uid() === 0;
    const umask = samePermissions ? 0 : currentUmask();
    const tree = new OutputTree(target, startTime, {
      permissions: (mode) => mode & 0o777 & ~umask,
      hasEntry: (relDir) => recordedFolders.has(relDir),
      foldsAtTop: folding.top,
    });
    const job = new ExtractJob(
      reader,
      tree,
      plan,
      chunkSize,
      { ...options, keepGoing, ...(select === undefined ? {} : { select }) },
      refusedLinks,
      pool,
      startTime,
      progress,
      status,
    );
    job.failedBefore(pastEnd, firstPastEnd);
    for (const [entry, error] of refused) job.fail(entry, error);
    if (!options.salvage) return await job.run();
    let result: ExtractResult;
    try {
      result = await job.run();
    } catch (error) {
      if (error instanceof InterruptedError || error instanceof EnvironmentError) throw error;
      if (job.stoppedByCallback) throw error; // the caller's own error, as it threw it
      if (plan.leftOut === 0 && !reader.indexLinesLost) throw error;
      throw salvageError(reader, plan, job.result, verb);
    }
    if (plan.leftOut > 0 || reader.indexLinesLost) {
      throw salvageError(reader, plan, result, verb);
    }
    const cut = describeCut(reader);
    if (cut !== undefined) {
      options.onWarning?.(warning(
        "CONTAINER_CUT",
        `"${container}" is ${cut}; every entry its index names was ${
          verb === "verify" ? "verified" : "extracted"
        }`,
      ));
    }
    return result;
  } finally {
    pool?.terminate();
    reader.close();
  }
}

/**
 * What a salvage left out: the entries past the end of the file (named through
 * `onEntryError`), the index lines lost with a cut trailer, the entries that failed.
 */
function salvageError(
  reader: ContainerReader,
  plan: ExtractPlan,
  result: ExtractResult,
  verb: "extract" | "verify",
): ContainerFormatError {
  const cut = describeCut(reader) ??
    (reader.payloadAreaEnd === reader.size
      ? `cut short at byte ${reader.size} (index "${reader.indexPath}" says its payloads run ` +
        `to byte ${plan.payloadEnd})`
      : `its index names payloads past its payload area, which ends at byte ${reader.payloadAreaEnd}`);
  const known = plan.entries + plan.leftOut;
  const failed = result.failed - plan.leftOut;
  const done = verb === "verify" ? "verified" : "extracted and verified";
  const parts = [
    `${result.extracted + result.skipped} of ${known} ${known === 1 ? "entry" : "entries"} ${done}`,
  ];
  if (plan.leftOut > 0) parts.push(`${plan.leftOut} left out`);
  if (failed > 0) parts.push(`${failed} failed`);
  const lost = reader.indexLinesLost
    ? `; entries after the first ${known} are unknown (the rest of the index was cut off)`
    : "";
  return new ContainerFormatError(
    `Cannot salvage all of "${reader.path}": ${cut}; ${parts.join(", ")}${lost}`,
    { code: "CONTAINER_CUT" },
  );
}
