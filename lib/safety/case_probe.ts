/**
 * Whether an output folder is on a case-insensitive file system (exFAT,
 * APFS and NTFS by default, a case-folding ext4 folder): probed with a temp
 * file in the nearest existing folder, looked up again under its upper-case
 * name, and removed at once. `extract` then compares relpaths with case
 * folded, so `A.txt` and `a.txt` cannot both be written to one file.
 *
 * @module
 */

/** The file-system calls the probe makes; tests pass a fake. */
export interface CaseProbeFs {
  /** Whether `path` is an existing folder (`false` when missing). */
  isFolder(path: string): Promise<boolean>;
  /** Create an empty file at `path`, failing when anything stands there. */
  createNew(path: string): Promise<void>;
  /** Whether anything stands at `path` (not following a final link). */
  exists(path: string): Promise<boolean>;
  /** Remove the file `path`. */
  remove(path: string): Promise<void>;
}

/** The probe's calls on the real file system. */
export const DENO_CASE_PROBE_FS: CaseProbeFs = {
  isFolder: (path) => Deno.stat(path).then((info) => info.isDirectory, () => false),
  createNew: (path) => Deno.writeFile(path, new Uint8Array(0), { createNew: true }),
  exists: (path) => Deno.lstat(path).then(() => true, () => false),
  remove: (path) => Deno.remove(path),
};

/** Prefix of the probe's temp file; its random rest is lower-case letters and digits. */
export const CASE_PROBE_PREFIX = ".ctnr-case-probe-";

/**
 * Probe whether names that differ only in case name the same file where
 * `outdir` is, or will be once created.
 *
 * @param outdir absolute path of the output folder (it may not exist yet)
 * @param fs the calls to make (default: the real file system)
 * @returns `true` when the probe file is found under its upper-case name; `false` on a
 *   case-sensitive folder, and when no probe file can be made there (an unwritable folder
 *   counts as case-sensitive)
 */
export async function isCaseInsensitive(
  outdir: string,
  fs: CaseProbeFs = DENO_CASE_PROBE_FS,
): Promise<boolean> {
  let dir = outdir;
  while (!(await fs.isFolder(dir))) {
    const parent = dir.slice(0, dir.lastIndexOf("/")) || "/";
    if (parent === dir) return false;
    dir = parent;
  }
  const base = dir === "/" ? "" : dir;
  const name = CASE_PROBE_PREFIX + Math.random().toString(36).slice(2, 10);
  const probe = `${base}/${name}`;
  try {
    await fs.createNew(probe);
  } catch {
    return false;
  }
  try {
    return await fs.exists(`${base}/${name.toUpperCase()}`);
  } finally {
    await fs.remove(probe).catch(() => {});
  }
}
