/**
 * The output folder of `extract`, as the extraction may touch it: folders
 * made one component at a time, never through a link; temp names; folder
 * modes and mtimes applied last; folder fsyncs; and the marker that lets a
 * later run sweep the temp files of a killed one.
 *
 * Every rule of extraction, and where it lives:
 *
 * | rule                                                                      | where                          |
 * | ------------------------------------------------------------------------- | ------------------------------ |
 * | a relpath is never absolute, never climbs (`..`), never holds NUL, `\`,   | lib/safety/relpath.ts          |
 * | a drive letter, empty or `.` components; refused, never cleaned           |                                |
 * | no two entries on one path (NFC, and case where the target folds it), no  | lib/safety/path_guard.ts,      |
 * | file or link where a folder is needed; all checked before any write       | lib/extract/plan.ts            |
 * | case folding is probed on the target's own file system                    | lib/safety/case_probe.ts       |
 * | a symlink's target stays inside the output folder, also through links     | lib/safety/link_target.ts      |
 * | nothing is written through a link or file already in the output folder    | here (`ensureDir`)             |
 * | links are made after the files, their targets checked again on disk       | lib/extract/job.ts             |
 * | a payload is verified (SHA-256) before its file appears, on every path    | lib/io/sha256.ts               |
 * | gzip stops one byte past `orig_size`; big payloads are streamed           | lib/io/gunzip.ts               |
 * | every file goes through an O_EXCL temp file in its folder and a rename    | lib/extract/file_writer.ts     |
 * | a failed entry leaves no file and no temp file                            | lib/extract/file_writer.ts     |
 * | a killed run's temp files are removed by the next run                     | here, lib/safety/run_marker.ts |
 * | index lines, numbers and sizes are bounded before use                     | lib/format/                    |
 *
 * @module
 */

import { dirname } from "node:path";
import { UnsafeEntryError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";
import { DENO_FILE_LAYER } from "../io/file_layer.ts";
import { TEMP_NAME, TempNames } from "../io/temp_file.ts";
import { RunMarker } from "./run_marker.ts";

/** The output folder of one extraction run. */
export class OutputTree {
  /** Absolute path of the output folder. */
  readonly root: string;
  #dirs = new Set<string>();
  #temps = new TempNames();
  #marker: RunMarker | undefined;
  #createdRoot = false;
  #startTime: number;
  #swept = 0;

  /**
   * @param root absolute path of the output folder
   * @param startTime when the run started (milliseconds since the epoch): temp files changed
   *   since belong to a run still going, and are never swept
   */
  constructor(root: string, startTime: number) {
    this.root = root;
    this.#startTime = startTime;
  }

  /**
   * Create the output folder (with its parents) and take the run marker in it; in a folder
   * that was there before, sweep the temp files a killed run left.
   */
  async open(): Promise<void> {
    const existed = await Deno.stat(this.root).then((info) => info.isDirectory, () => false);
    if (!existed) {
      await Deno.mkdir(this.root, { recursive: true });
      this.#createdRoot = true;
    }
    this.#marker = await RunMarker.open(this.root);
    if (existed && this.#marker.interruptedBefore) this.#sweep(this.root);
  }

  /** Temp files of a killed run removed so far. */
  get swept(): number {
    return this.#swept;
  }

  /**
   * Absolute path of `relpath` under the output folder.
   *
   * @param relpath a relpath ("" for the output folder)
   * @returns the path
   */
  pathOf(relpath: string): string {
    return relpath === "" ? this.root : `${this.root}/${relpath}`;
  }

  /**
   * A new temp file name in the folder `relDir`.
   *
   * @param relDir the folder's relpath ("" at the top)
   * @returns an absolute path no other temp file of this run has
   */
  tempIn(relDir: string): string {
    return this.#temps.next(this.pathOf(relDir));
  }

  /**
   * Whether `relpath` is a symlink on disk now (for the second check of link targets).
   *
   * @param relpath a relpath
   * @returns `true` when a link stands there
   */
  isLink(relpath: string): boolean {
    try {
      return Deno.lstatSync(this.pathOf(relpath)).isSymlink;
    } catch {
      return false;
    }
  }

  /**
   * Create `relDir` under the output folder, refusing any symlink or non-folder on the way.
   *
   * @param relDir the folder's relpath ("" does nothing)
   * @throws {UnsafeEntryError} when a link or a file stands on the way
   */
  ensureDir(relDir: string): void {
    if (relDir === "" || this.#dirs.has(relDir)) return;
    this.ensureDir(parentOf(relDir));
    const path = this.pathOf(relDir);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const info = Deno.lstatSync(path);
        if (info.isDirectory) {
          if (this.#marker?.interruptedBefore) this.#sweep(path);
          break;
        }
        throw new UnsafeEntryError(
          info.isSymlink
            ? `Cannot extract into "${relDir}": it is a symlink in the output folder; refusing to write through it`
            : `Cannot extract into "${relDir}": a file stands at that path in the output folder`,
        );
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      try {
        Deno.mkdirSync(path);
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
    }
    this.#dirs.add(relDir);
  }

  /**
   * Apply the modes and mtimes of folder entries, deepest first (a parent's mtime is set
   * after its children are done).
   *
   * @param entries the folder entries extracted
   * @param toUtime turns recorded seconds into a time `utime` takes
   */
  async finishFolders(entries: IndexEntry[], toUtime: (seconds: number) => number): Promise<void> {
    entries.sort((a, b) => b.relpath.length - a.relpath.length);
    for (const entry of entries) {
      const path = this.pathOf(entry.relpath);
      if (entry.mode !== undefined) await Deno.chmod(path, entry.mode & 0o777);
      if (entry.mtime !== undefined) {
        await Deno.utime(path, Date.now() / 1000, toUtime(entry.mtime));
      }
    }
  }

  /**
   * Make the names of the files renamed into each folder durable: fsync every folder written
   * into, and the parent of an output folder this run created.
   */
  async syncFolders(): Promise<void> {
    for (const relDir of this.#dirs) await DENO_FILE_LAYER.syncFolder(this.pathOf(relDir));
    await DENO_FILE_LAYER.syncFolder(this.root);
    if (this.#createdRoot) await DENO_FILE_LAYER.syncFolder(dirname(this.root));
  }

  /** Release the run marker (the last run out removes it). */
  async close(): Promise<void> {
    await this.#marker?.close();
  }

  /**
   * Remove the temp files that a killed run left in `folder` (a folder that existed before this
   * run): names of the form `.ctnr-tmp-<tag>-<n>`, made before this run started.
   */
  #sweep(folder: string): void {
    for (const item of Deno.readDirSync(folder)) {
      if (item.isDirectory || !TEMP_NAME.test(item.name)) continue;
      const path = `${folder}/${item.name}`;
      // A temp file made since this run started belongs to a run still going. Made: its birth
      // time where the file system keeps one; else its ctime, which Deno gives cut to the whole
      // second, so a ctime counts as before the start only when a whole second before it.
      const info = Deno.lstatSync(path);
      const made = info.birthtime?.getTime() ?? (info.ctime?.getTime() ?? Infinity) + 1000;
      if (made >= this.#startTime) continue;
      Deno.removeSync(path);
      this.#swept++;
    }
  }
}

/**
 * Relpath of the folder holding `relpath` ("" at the top).
 *
 * @param relpath a relpath
 * @returns its parent's relpath
 */
export function parentOf(relpath: string): string {
  const slash = relpath.lastIndexOf("/");
  return slash < 0 ? "" : relpath.slice(0, slash);
}
