/**
 * The check that a folder of the output tree is still the one `extract`
 * made or first met (the same device and inode, not a link), made before
 * each batch of files is written into it: another local process that swaps
 * the folder for a link while the run goes on stops the run. Kept apart
 * from lib/safety/output_tree.ts so the write workers load only this.
 *
 * @module
 */

import { UnsafeEntryError } from "../errors.ts";

/**
 * A folder of the output tree as the run made or first met it: what a batch of files checks
 * before it is written into the folder (see {@link checkFolder}).
 */
export interface FolderCheck {
  /** Relpath of the folder ("" for the output folder), for messages. */
  relpath: string;
  /** Absolute path of the folder. */
  path: string;
  /** Device number of the folder. */
  dev: number;
  /** Inode number of the folder. */
  ino: number;
  /** The run made the folder (so nothing in it was there before the run). */
  made: boolean;
  /** Names that differ in case are one file in this folder (probed, or as its parent). */
  folds: boolean;
}

/**
 * Check that a folder is still the one the run made or met: the same device and inode, and not
 * a link (the output folder itself may be reached through one the caller gave).
 *
 * @param check the folder as the run made or met it
 * @throws {UnsafeEntryError} naming the folder when it was swapped or removed
 */
export function checkFolder(check: FolderCheck): void {
  let info: Deno.FileInfo | undefined;
  try {
    info = check.relpath === "" ? Deno.statSync(check.path) : Deno.lstatSync(check.path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (info?.isDirectory && info.dev === check.dev && (info.ino ?? 0) === check.ino) return;
  throw swapped(check);
}

/**
 * The error of a folder swapped since the run made or met it.
 *
 * @param check the folder as the run made or met it
 * @returns the error naming it
 */
export function swapped(check: FolderCheck): UnsafeEntryError {
  return new UnsafeEntryError(
    `Cannot extract into "${check.relpath || "."}": it is no longer the folder this run made or ` +
      `checked (another process swapped it for a link or another folder while extracting); stopping`,
  );
}
