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
 * | a folder is still the one made or checked (device, inode) before each     | lib/safety/folder_check.ts,    |
 * | batch is written into it, and before its mode is set                      | here, the write workers        |
 * | folders are made 0700; their modes are set after their contents, through  | here (`finishFolders`)         |
 * | a handle opened without following a link                                  |                                |
 * | no rename over a file of this run under another name in a folder it made  | lib/extract/file_writer.ts,    |
 * | where names fold (each folder met is probed; a made one folds as its      | here (`ensureDir`)             |
 * | parent)                                                                   |                                |
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

import * as nodeFs from "node:fs";
import { dirname } from "node:path";
import { UnsafeEntryError } from "../errors.ts";
import { DEFAULT_FOLDER_MODE, type IndexEntry } from "../format/entry.ts";
import { DENO_FILE_LAYER } from "../io/file_layer.ts";
import { TEMP_NAME, TempNames } from "../io/temp_file.ts";
import { checkFolder, type FolderCheck, swapped } from "./folder_check.ts";
import { foldsNames } from "./case_probe.ts";
import { RunMarker } from "./run_marker.ts";

/** Options of {@link OutputTree}. */
export interface OutputTreeOptions {
  /**
   * The permission bits a file or folder recorded with `mode` gets (the umask taken off, or
   * not). @default `mode & 0o777`
   */
  permissions?: (mode: number) => number;
  /**
   * Whether the index has a folder entry for `relDir` (known from the plan, before anything is
   * written): such a folder is made 0700 and given its recorded mode at the end, so it is
   * never open to others while it is filled, wherever its entry stands in the index.
   * @default no folder has one
   */
  hasEntry?: (relDir: string) => boolean;
  /**
   * Names fold case in the output folder (lib/safety/case_probe.ts). A folder the run makes
   * folds as its parent does; a folder that was there before is probed when first met (a
   * mount point, an ext4 `+F` folder). @default false
   */
  foldsAtTop?: boolean;
}

/** The output folder of one extraction run. */
export class OutputTree {
  /** Absolute path of the output folder. */
  readonly root: string;
  #dirs = new Map<string, FolderCheck>();
  #temps = new TempNames();
  #marker: RunMarker | undefined;
  #createdRoot = false;
  #startTime: number;
  #swept = 0;
  #permissions: (mode: number) => number;
  #hasEntry: (relDir: string) => boolean;
  #foldsAtTop: boolean;

  /**
   * @param root absolute path of the output folder
   * @param startTime when the run started (milliseconds since the epoch): temp files changed
   *   since belong to a run still going, and are never swept
   * @param options how recorded modes become permission bits, and which folders have entries
   */
  constructor(root: string, startTime: number, options: OutputTreeOptions = {}) {
    this.root = root;
    this.#startTime = startTime;
    this.#permissions = options.permissions ?? ((mode) => mode & 0o777);
    this.#hasEntry = options.hasEntry ?? (() => false);
    this.#foldsAtTop = options.foldsAtTop ?? false;
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
    // The output folder may be reached through a link the caller gave: it is followed here.
    const info = await Deno.stat(this.root);
    this.#dirs.set("", {
      relpath: "",
      path: this.root,
      dev: info.dev,
      ino: info.ino ?? 0,
      made: this.#createdRoot,
      folds: this.#foldsAtTop,
    });
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
   * Create `relDir` under the output folder, refusing any symlink or non-folder on the way. A
   * folder this run makes gets {@link DEFAULT_FOLDER_MODE} at once when the index has no entry
   * for it; one with an entry is made 0700 (no one else may look in while it is filled, nor
   * after a killed run) and gets its recorded mode from {@link OutputTree.finishFolders} at the
   * end. Its parent is checked ({@link OutputTree.checkDir}) just before.
   *
   * @param relDir the folder's relpath ("" does nothing)
   * @throws {UnsafeEntryError} when a link or a file stands on the way, or a folder on the way
   *   was swapped since the run made or checked it
   */
  ensureDir(relDir: string): void {
    if (relDir === "" || this.#dirs.has(relDir)) return;
    const parent = parentOf(relDir);
    this.ensureDir(parent);
    const path = this.pathOf(relDir);
    const mode = this.#hasEntry(relDir) ? 0o700 : this.#permissions(DEFAULT_FOLDER_MODE);
    let made = false;
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
        this.checkDir(parent);
        Deno.mkdirSync(path, { mode });
        made = true;
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
    }
    const info = Deno.lstatSync(path);
    const folds = made ? this.folderCheck(parent).folds : foldsNames(path);
    const check = { relpath: relDir, path, dev: info.dev, ino: info.ino ?? 0, made, folds };
    if (!info.isDirectory) throw swapped(check);
    // A umask that takes more off than the recorded mode does (as root, 077): set it exactly.
    if (made && ((info.mode ?? mode) & 0o777) !== mode) setFolderMeta(check, mode, undefined);
    this.#dirs.set(relDir, check);
  }

  /**
   * The permission bits a file or folder recorded with `mode` gets (the umask taken off, or
   * not: see the constructor).
   *
   * @param mode recorded mode (`st_mode & 0o7777`)
   * @returns permission bits to apply
   */
  permissions(mode: number): number {
    return this.#permissions(mode);
  }

  /**
   * Whether a rename into `relDir` first checks that no file of another name stands at its
   * target: the run made the folder (nothing in it was there before) and names fold case there.
   *
   * @param relDir a folder's relpath
   * @returns `false` also for a folder not made or met yet
   */
  checksRenames(relDir: string): boolean {
    const check = this.#dirs.get(relDir);
    return check !== undefined && check.made && check.folds;
  }

  /**
   * Whether this run made `relDir` (it was not there before).
   *
   * @param relDir a folder's relpath
   * @returns `false` also for a folder not made or met yet
   */
  made(relDir: string): boolean {
    return this.#dirs.get(relDir)?.made === true;
  }

  /**
   * What a batch written into `relDir` checks first: the folder as the run made or met it.
   *
   * @param relDir a folder's relpath, already made by {@link OutputTree.ensureDir}
   * @returns its check
   */
  folderCheck(relDir: string): FolderCheck {
    const check = this.#dirs.get(relDir);
    if (check === undefined) throw new Error(`Folder "${relDir}" was not made by this run`);
    return check;
  }

  /**
   * Check that `relDir` is still the folder the run made or met: the same device and inode,
   * not a link (one `lstat`). Called before each batch of files is written into it, so a folder
   * swapped for a link by another process while the run goes on stops the run.
   *
   * @param relDir a folder's relpath, already made by {@link OutputTree.ensureDir}
   * @throws {UnsafeEntryError} naming the folder when it was swapped
   */
  checkDir(relDir: string): void {
    checkFolder(this.folderCheck(relDir));
  }

  /**
   * Give each folder entry its recorded mode (through `permissions`: the umask taken off, or
   * not; {@link DEFAULT_FOLDER_MODE} when it has none) and mtime once everything is in it,
   * deepest first (a parent's mtime is set after its children are done). Each folder is
   * changed through a handle opened without following a link, once its device and inode are
   * checked against those the run made or met.
   *
   * @param entries the folder entries extracted
   * @param toUtime turns recorded seconds into a time `utime` takes
   * @throws {UnsafeEntryError} naming a folder that was swapped since the run made or met it
   */
  finishFolders(entries: IndexEntry[], toUtime: (seconds: number) => number): void {
    entries.sort((a, b) => b.relpath.length - a.relpath.length);
    for (const entry of entries) {
      const check = this.#dirs.get(entry.relpath);
      if (check === undefined) continue; // its folder could not be made: reported already
      const mode = this.#permissions(entry.mode ?? DEFAULT_FOLDER_MODE);
      setFolderMeta(check, mode, entry.mtime === undefined ? undefined : toUtime(entry.mtime));
    }
  }

  /**
   * Make the names of the files renamed into each folder durable: fsync every folder written
   * into, and the parent of an output folder this run created.
   */
  async syncFolders(): Promise<void> {
    for (const relDir of this.#dirs.keys()) {
      if (relDir !== "") await DENO_FILE_LAYER.syncFolder(this.pathOf(relDir));
    }
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
 * Set a folder's mode and mtime through a handle opened without following a link, after
 * checking the handle's device and inode (so a folder swapped for a link at the last moment
 * is refused, never changed through it). Where the system has no such handle (Windows), by
 * path.
 */
function setFolderMeta(check: FolderCheck, mode: number, mtime: number | undefined): void {
  if (Deno.build.os === "windows") {
    Deno.chmodSync(check.path, mode);
    if (mtime !== undefined) Deno.utimeSync(check.path, Date.now() / 1000, mtime);
    return;
  }
  let fd: number;
  try {
    // A handle that does not follow a final link (Linux and macOS).
    const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = nodeFs.constants;
    fd = nodeFs.openSync(check.path, O_RDONLY | (O_DIRECTORY ?? 0) | (O_NOFOLLOW ?? 0));
  } catch (error) {
    // ELOOP or ENOTDIR: a link or a file stands there now; ENOENT: gone.
    const code = (error as { code?: string }).code;
    if (code === "ELOOP" || code === "ENOTDIR" || code === "ENOENT") throw swapped(check);
    throw error;
  }
  try {
    const info = nodeFs.fstatSync(fd);
    if (info.dev !== check.dev || info.ino !== check.ino) throw swapped(check);
    nodeFs.fchmodSync(fd, mode);
    // node's futimes truncates the seconds' fraction to nanoseconds: 1796096985.929 (a double a
    // little below) landed at .928999900, one millisecond early (the demo's check failed one
    // run in two). Half a microsecond more keeps the recorded millisecond.
    if (mtime !== undefined) nodeFs.futimesSync(fd, Date.now() / 1000, mtime + 5e-7);
  } finally {
    nodeFs.closeSync(fd);
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
