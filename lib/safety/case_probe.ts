/**
 * Whether an output folder is on a case-insensitive file system (exFAT,
 * APFS and NTFS by default, a case-folding ext4 folder): probed with a temp
 * file in the nearest existing folder, looked up again under its upper-case
 * name, and removed at once. Every file system mounted below the output
 * folder (Linux: /proc/self/mountinfo) is probed the same way, so a
 * case-insensitive USB disk mounted inside a case-sensitive output folder is
 * seen. `extract` then compares relpaths with case folded where names fold
 * (lib/safety/path_guard.ts), so `A.txt` and `a.txt`, or `σ.txt` and
 * `ς.txt`, cannot both be written to one file.
 *
 * Not probed: a single folder that folds case on a file system that does not
 * (ext4 or f2fs `chattr +F`) below the output folder; such a folder that
 * the run did not create is only guarded by the writer's own check
 * (lib/extract/file_writer.ts: never a rename over a file of this run).
 *
 * @module
 */

import type { CaseFolding } from "./path_guard.ts";

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
  /** The absolute path of the existing `path` with every link resolved. */
  realPath(path: string): Promise<string>;
  /** Absolute paths of the mount points this process sees (none where the system lists none). */
  mountPoints(): Promise<string[]>;
}

/** The probe's calls on the real file system. */
export const DENO_CASE_PROBE_FS: CaseProbeFs = {
  isFolder: (path) => Deno.stat(path).then((info) => info.isDirectory, () => false),
  createNew: (path) => Deno.writeFile(path, new Uint8Array(0), { createNew: true }),
  exists: (path) => Deno.lstat(path).then(() => true, () => false),
  remove: (path) => Deno.remove(path),
  realPath: (path) => Deno.realPath(path),
  async mountPoints() {
    if (Deno.build.os !== "linux") return [];
    try {
      return parseMountInfo(await Deno.readTextFile("/proc/self/mountinfo"));
    } catch {
      return []; // no /proc (a container without it): the top is still probed
    }
  },
};

/**
 * The mount points listed in Linux's `/proc/<pid>/mountinfo` (its fifth field, with the
 * kernel's octal escapes `\040` for a space, `\011` tab, `\012` newline, `\134` backslash
 * undone), in the order listed.
 *
 * @param text the file's content
 * @returns absolute paths
 */
export function parseMountInfo(text: string): string[] {
  const points: string[] = [];
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field === undefined || !field.startsWith("/")) continue;
    points.push(
      field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8))),
    );
  }
  return points;
}

/**
 * Whether names that differ only in case name the same file in the existing folder `folder`,
 * probed at once with synchronous calls (as {@link isCaseInsensitive}: a temp file, looked up
 * under its upper-case name, removed).
 *
 * @param folder absolute path of an existing folder
 * @returns `false` also when no probe file can be made there
 */
export function foldsNames(folder: string): boolean {
  const name = CASE_PROBE_PREFIX + Math.random().toString(36).slice(2, 10);
  try {
    Deno.writeFileSync(`${folder}/${name}`, new Uint8Array(0), { createNew: true });
  } catch {
    return false;
  }
  try {
    Deno.lstatSync(`${folder}/${name.toUpperCase()}`);
    return true;
  } catch {
    return false;
  } finally {
    try {
      Deno.removeSync(`${folder}/${name}`);
    } catch { /* removed already */ }
  }
}

/**
 * Probe where names fold case under `outdir`: in the output folder itself, and in every file
 * system mounted below it.
 *
 * @param outdir absolute path of the output folder (it may not exist yet: then nothing is
 *   mounted below it)
 * @param fs the calls to make (default: the real file system)
 * @returns the top's answer of {@link isCaseInsensitive}, and each mount point below `outdir`
 *   (relative to it) with its own answer
 */
export async function probeCaseFolding(
  outdir: string,
  fs: CaseProbeFs = DENO_CASE_PROBE_FS,
): Promise<CaseFolding> {
  const top = await isCaseInsensitive(outdir, fs);
  if (!(await fs.isFolder(outdir))) return { top, mounts: [] };
  const real = await fs.realPath(outdir);
  const prefix = real === "/" ? "/" : `${real}/`;
  const mounts: { relpath: string; foldCase: boolean }[] = [];
  const seen = new Set<string>();
  for (const point of await fs.mountPoints()) {
    if (!point.startsWith(prefix) || point.length === prefix.length) continue;
    const relpath = point.slice(prefix.length).replace(/\/+$/, "");
    if (seen.has(relpath)) continue; // listed twice (mounted over): one probe reaches the top one
    seen.add(relpath);
    mounts.push({ relpath, foldCase: await isCaseInsensitive(point, fs) });
  }
  return { top, mounts };
}

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
