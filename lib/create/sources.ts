/**
 * Loading the walked items of `create`, in walk order and in batches:
 * small files read whole (and hashed, gzipped) by read workers, large ones
 * left to be streamed, items already committed (a resume) checked for
 * changes and skipped, and what is left out said so.
 *
 * @module
 */

import { SourceError } from "../errors.ts";
import { sha256Hex } from "../io/sha256.ts";
import { reservedName } from "../safety/reserved_names.ts";
import { BATCH_BYTES, BATCH_FILES, WORKER_THRESHOLD, WorkerPool } from "../io/worker_pool.ts";
import { type CtnrWarning, warning } from "../warnings.ts";
import type { Settings } from "./options.ts";
import { fingerprint } from "./resume.ts";
import type { SpareBuffers } from "./spare_buffers.ts";
import type { WalkEntry } from "./walk.ts";
import type { PreparedPayload } from "./writer_options.ts";
import {
  type ReadBatch,
  readBatch,
  type ReadBatchResult,
  type SourceRead,
} from "./_source_file.ts";

/** What a walked item becomes: an error, a warning, or an item ready to add. */
export type LoadedItem =
  | { error: SourceError }
  | { leftOut: CtnrWarning }
  | { stale: CtnrWarning; size: number }
  | ReadyItem;

/**
 * A source item ready to append: small files carry their payload (stored, hashed), large ones
 * are streamed. The walk entry is the entry's header (relpath, mode, mtime).
 */
export interface ReadyItem {
  walk: WalkEntry;
  payload?: PreparedPayload;
}

/**
 * One batch of loaded items, and the buffer their small payloads are views into (when files
 * were read): once every item of the batch is added, the caller releases it to the writer
 * (`ContainerWriter.release`), which hands it back to be filled again when its bytes are written.
 */
export interface LoadedBatch {
  items: (LoadedItem | number)[];
  buffer?: ArrayBuffer;
}

/**
 * Load the walk's items in order, in batches; an item already in the index
 * (a resume) comes as a number: its size in bytes on disk (0 for a folder or
 * a link; a number, not an object, so a resume allocates nothing per item). Small files are read in batches by a pool of read workers, up
 * to eight batches a worker in flight, while the main thread walks and
 * writes; the first 512 files are read on the main thread, so small trees
 * do not pay for starting a worker. A batch holds up to 256 files, fewer
 * when the files read so far average more than 4 KiB (about 1 MiB a
 * batch), and reads at most 2 MiB: the files past that are streamed.
 */
export async function* loadSources(
  walk: AsyncIterable<WalkEntry[]>,
  committed: (relpath: string) => number | undefined,
  settings: Settings,
  workers: number,
  spare: SpareBuffers,
): AsyncGenerator<LoadedBatch> {
  let pool: WorkerPool<ReadBatch, ReadBatchResult> | undefined;
  const queue: { loaded: Promise<LoadedBatch>; done: boolean }[] = [];
  let batch: WalkEntry[] = [];
  let values: (number | undefined)[] = []; // each item's committed value, looked up once
  let files = 0;
  const sizes = { files: 0, bytes: 0 }; // of the small files read so far
  let batchFiles = BATCH_FILES;
  const send = () => {
    const items = batch;
    const committedValues = values;
    batch = [];
    values = [];
    if (pool === undefined && workers > 0 && files > WORKER_THRESHOLD) {
      pool = new WorkerPool(new URL("./_create_worker.ts", import.meta.url), workers);
    }
    // The worker hashes this batch's plain payloads when this thread is the one behind (two
    // batches it has read already wait here), else this thread does: the work goes where a core
    // is free (100,000 x 4 KiB on tmpfs, 9 runs alternated: 1.09 -> 1.06 s median; hashing
    // always in the worker made it the one behind, 1.07 -> 1.20 s).
    const ready = queue.reduce((n, queued) => n + (queued.done ? 1 : 0), 0);
    const pending = loadBatch(items, committedValues, settings, pool, sizes, spare, ready >= 2);
    if (sizes.files > 0) {
      const average = Math.max(1, sizes.bytes / sizes.files);
      batchFiles = Math.max(16, Math.min(BATCH_FILES, Math.floor(BATCH_BYTES / average)));
    }
    const queued = { loaded: pending, done: false };
    pending.then(() => queued.done = true, () => {}); // rethrown when its turn comes
    queue.push(queued);
  };
  try {
    for await (const walked of walk) {
      for (const item of walked) {
        const value = committed(item.relpath);
        batch.push(item);
        values.push(value);
        // Committed files are not read: only the others count towards starting the workers.
        if (item.kind === "file" && value === undefined) files++;
        if (batch.length >= batchFiles) send();
      }
      while (queue.length > Math.max(2, 8 * workers)) yield await queue.shift()!.loaded;
    }
    if (batch.length > 0) send();
    while (queue.length > 0) yield await queue.shift()!.loaded;
  } finally {
    pool?.terminate();
  }
}

async function loadBatch(
  items: WalkEntry[],
  committedValues: (number | undefined)[],
  settings: Settings,
  pool: WorkerPool<ReadBatch, ReadBatchResult> | undefined,
  sizes: { files: number; bytes: number },
  spare: SpareBuffers,
  hashThere = false,
): Promise<LoadedBatch> {
  const out: (LoadedItem | number)[] = items.map((item, i) => {
    const value = committedValues[i];
    return value === undefined ? prepare(item, settings) : staleCheck(item, value);
  });
  const files: number[] = [];
  items.forEach((item, i) => {
    // Only files not yet committed, and not left out, are read; committed ones were checked by
    // staleCheck.
    const loaded = out[i];
    if (item.kind === "file" && typeof loaded === "object" && "walk" in loaded) files.push(i);
  });
  if (files.length === 0) return { items: out };
  const paths = files.map((i) => items[i]!.path);
  const request: ReadBatch = {
    paths: paths.join("\0"),
    compress: settings.compress,
    budget: 2 * BATCH_BYTES,
  };
  if (settings.own !== undefined) request.own = settings.own;
  if (hashThere && pool !== undefined) request.hash = true;
  const buffer = spare.take();
  if (buffer !== undefined) request.buffer = buffer;
  const packed = pool ? await pool.run(request, buffer ? [buffer] : []) : readBatch(request);
  const reads = unpackReads(packed, settings.compress);
  for (const read of reads) {
    if (read.kind !== "small") continue;
    sizes.files++;
    sizes.bytes += read.size;
  }
  if (sizes.files > 4096) {
    // Recent files weigh more: a tree whose files grow deeper in gets smaller batches soon.
    sizes.files /= 2;
    sizes.bytes /= 2;
  }
  files.forEach((i, k) => {
    const item = items[i]!;
    const read = reads[k]!;
    if (read.kind === "error") {
      out[i] = {
        error: new SourceError(`Cannot read "${item.relpath}": ${read.message}`, {
          relpath: item.relpath,
        }),
      };
    } else if (read.kind === "special") {
      out[i] = { leftOut: leftOut(item.relpath, "special file", "(FIFO, socket or device)") };
    } else if (read.kind === "own") {
      out[i] = {
        leftOut: warning(
          "OWN_FILE_LEFT_OUT",
          `Left out "${item.relpath}": it is the container or its index itself (a hard link ` +
            `or a bind mount of it)`,
          item.relpath,
        ),
      };
    } else if (read.kind === "large") {
      out[i] = { walk: { ...item, mode: read.mode, mtime: read.mtime } };
    } else {
      const payload: PreparedPayload = {
        stored: read.payload,
        sha256: read.sha256,
        origSize: read.size,
      };
      if (read.origSha256 !== undefined) payload.origSha256 = read.origSha256;
      out[i] = { walk: { ...item, mode: read.mode, mtime: read.mtime }, payload };
    }
  });
  return { items: out, buffer: packed.payloads.buffer };
}

/**
 * Rebuild the per-file results of a read worker from its packed form: each small file's
 * SHA-256 from the batch's digests when the worker hashed (always for compressed batches), else
 * computed here.
 *
 * @param packed the worker's result
 * @param compressed whether the batch was gzipped
 * @returns one result per path of the batch, in order
 */
export function unpackReads(packed: ReadBatchResult, compressed: boolean): SourceRead[] {
  const { numbers, sha256, payloads, errors } = packed;
  const reads: SourceRead[] = [];
  let digest = 0;
  let offset = 0;
  let error = 0;
  for (let at = 0; at < numbers.length; at += 5) {
    const kind = numbers[at];
    const mode = numbers[at + 1]!;
    const mtime = numbers[at + 2]!;
    if (kind === 0) {
      const size = numbers[at + 3]!;
      const storedLength = numbers[at + 4]!;
      const read: SourceRead = {
        kind: "small",
        mode,
        mtime,
        size,
        payload: payloads.subarray(offset, offset + storedLength),
        sha256: "",
      };
      offset += storedLength;
      if (compressed) {
        read.sha256 = sha256.slice(digest, digest + 64);
        read.origSha256 = sha256.slice(digest + 64, digest + 128);
        digest += 128;
      } else if (sha256.length > 0) {
        read.sha256 = sha256.slice(digest, digest + 64);
        digest += 64;
      } else read.sha256 = sha256Hex(read.payload);
      reads.push(read);
    } else if (kind === 1) reads.push({ kind: "large", mode, mtime });
    else if (kind === 2) reads.push({ kind: "special" });
    else if (kind === 4) reads.push({ kind: "own" });
    else reads.push({ kind: "error", message: errors[error++] ?? "unreadable" });
  }
  return reads;
}

/**
 * An already-committed item: its size on disk when it is unchanged (0 for a folder or a link),
 * else a report that it changed.
 */
function staleCheck(item: WalkEntry, committed: number): LoadedItem | number {
  if (item.kind !== "file" || committed < 2) return 0; // committed as a folder or link
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(item.path);
  } catch {
    return 0; // gone since the walk listed it: nothing to compare
  }
  const now = { origSize: info.size } as { origSize: number; mtime?: number };
  if ((committed & 1) === 1) now.mtime = (info.mtime?.getTime() ?? 0) / 1000;
  if (fingerprint(now) === committed) return info.size;
  return {
    size: info.size,
    stale: warning(
      "CHANGED_SINCE_COMMIT",
      `"${item.relpath}" changed since it was committed (size or mtime differ); ` +
        `the container keeps its older version`,
      item.relpath,
    ),
  };
}

/** What a non-file item becomes (files are a placeholder until read). */
function prepare(item: WalkEntry, settings: Settings): LoadedItem {
  const reserved = reservedName(item.relpath);
  if (reserved !== undefined) {
    return {
      leftOut: warning(
        "LEFT_OUT",
        `Left out "${item.relpath}": ${reserved} (extract would refuse it)`,
        item.relpath,
      ),
    };
  }
  if (item.kind === "special") {
    return { leftOut: leftOut(item.relpath, "special file", "(FIFO, socket or device)") };
  }
  if (item.kind === "symlink" && settings.symlinks === "skip") {
    return { leftOut: leftOut(item.relpath, "symlink", `-> "${item.linkTarget}"`) };
  }
  if (item.kind === "dir" && item.keepsMode && !settings.folderModes) {
    const mode = (item.mode ?? 0).toString(8).padStart(4, "0");
    return { leftOut: leftOut(item.relpath, "folder entry", `(mode ${mode}: not kept)`) };
  }
  if (item.kind === "dir" && !item.keepsMode && !settings.emptyDirs) {
    return { leftOut: leftOut(item.relpath, "empty folder", "") };
  }
  return { walk: item };
}

function leftOut(relpath: string, kind: string, detail: string): CtnrWarning {
  return warning("LEFT_OUT", `Left out ${kind} "${relpath}"${detail ? ` ${detail}` : ""}`, relpath);
}
