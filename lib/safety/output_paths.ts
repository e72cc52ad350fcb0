/**
 * The files a run writes are never the files it keeps: a status file is not
 * the container or its index, an index is not its container, and `create`
 * writes no status file into the folder it packs. Two paths are the same
 * file when they are spelled the same (made absolute), when their links lead
 * to the same place (symlinks of the last component followed, the folder
 * resolved), or when they have the same identity (device and inode, when the
 * file exists): a symlink, a hard link or a bind mount of a file is that file.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { UsageError } from "../errors.ts";

/** Where a path leads. */
export interface PathTarget {
  /** The path as given. */
  path: string;
  /** The path made absolute (`resolve`), nothing followed. */
  absolute: string;
  /**
   * Where it leads: each symlink of its last component followed (at most 40), its folder
   * resolved to its real path. The file an atomic write renames onto, so a link is kept.
   */
  final: string;
  /** `dev:ino` of what it leads to (`stat`, links followed), when that exists. */
  identity?: string;
  /** What it leads to: nothing, a regular file, a folder, or anything else (FIFO, device, ...). */
  kind: "missing" | "file" | "folder" | "other";
  /**
   * Whether it leads through `/proc` (`/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`): it stands
   * for a file this process has open, which must be written, never renamed over.
   */
  processFile: boolean;
}

/** Symlinks followed at most, as Linux's `MAXSYMLINKS`. */
const MAX_LINKS = 40;

/**
 * Find where `path` leads.
 *
 * @param path a path, relative to the working folder or absolute
 * @returns the absolute spelling, where its links lead, its identity and kind
 * @throws the error of `stat` other than not-found (permission, a loop of links)
 *
 * @example A symlink leads to its target
 * ```ts
 * import { locate } from "./output_paths.ts";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * try {
 *   await Deno.writeTextFile(`${dir}/a`, "x");
 *   await Deno.symlink("a", `${dir}/link`);
 *   const target = await locate(`${dir}/link`);
 *   if (target.final !== `${dir}/a` || target.kind !== "file") throw new Error("not followed");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function locate(path: string): Promise<PathTarget> {
  const absolute = resolve(path);
  let final = absolute;
  let processFile = false;
  for (let hops = 0; hops <= MAX_LINKS; hops++) {
    const folder = await realFolder(dirname(final));
    if (folder === "/proc" || folder.startsWith("/proc/")) processFile = true;
    final = join(folder, basename(final));
    const info = await Deno.lstat(final).catch(() => undefined);
    if (info === undefined || !info.isSymlink) break;
    final = resolve(folder, await Deno.readLink(final));
  }
  const target: PathTarget = { path, absolute, final, kind: "missing", processFile };
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path); // the kernel follows every link, /proc's too
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return target;
    }
    throw error;
  }
  target.kind = info.isFile ? "file" : info.isDirectory ? "folder" : "other";
  if (info.ino !== null) target.identity = `${info.dev}:${info.ino}`;
  return target;
}

/** The real path of a folder, or its absolute spelling when it does not exist. */
async function realFolder(folder: string): Promise<string> {
  try {
    return await Deno.realPath(folder);
  } catch {
    return folder;
  }
}

/**
 * How `a` and `b` are the same file, or `undefined` when they are not.
 *
 * @param a a located path
 * @param b another
 * @returns `the same path`, `links lead to it`, `the same file` (a hard link or bind mount),
 *   or `undefined`
 */
export function sameFile(a: PathTarget, b: PathTarget): string | undefined {
  if (a.absolute === b.absolute) return "the same path";
  if (a.final === b.final) return "links lead to it";
  if (a.identity !== undefined && a.identity === b.identity) return "the same file";
  return undefined;
}

/** A path a run uses, named for messages. */
export interface RunPath {
  /** What it is, for messages (`the status file`). */
  what: string;
  /** The path as given. */
  path: string;
  /** The library option that sets it (`statusFile`): the CLI shows it as its flag. */
  option?: string;
}

/**
 * Refuse an output that is the same file as one of `kept` (see {@link sameFile}).
 *
 * @param output the file the run will write
 * @param kept files it must never write over
 * @throws {UsageError} naming both paths (and the option that set the output), before
 *   anything is written
 */
export async function refuseSameFile(output: RunPath, kept: RunPath[]): Promise<void> {
  const target = await locate(output.path);
  for (const other of kept) {
    const how = sameFile(target, await locate(other.path));
    if (how === undefined) continue;
    throw new UsageError(
      `Cannot use ${named(output)}: it is ${other.what} "${other.path}" (${how}); ` +
        `refusing to write over it`,
      output.option === undefined ? {} : { options: [output.option] },
    );
  }
}

/**
 * Refuse an output that lies inside `folder` (by path, by where links lead, or through a
 * folder with the folder's identity: a bind mount of it).
 *
 * @param output the file the run will write
 * @param folder a folder the run must not change
 * @throws {UsageError} naming both paths, before anything is written
 */
export async function refuseInside(output: RunPath, folder: RunPath): Promise<void> {
  const target = await locate(output.path);
  const root = await locate(folder.path);
  if (root.kind !== "folder") return;
  const real = await Deno.realPath(folder.path);
  let inside = [target.absolute, target.final].some((path) =>
    [root.absolute, real].some((base) => path.startsWith(base === "/" ? "/" : base + "/"))
  );
  // A bind mount of the folder has its device and inode: look at each folder above the file.
  for (let up = dirname(target.final); !inside && up !== dirname(up); up = dirname(up)) {
    const info = await Deno.stat(up).catch(() => undefined);
    if (info?.ino != null && `${info.dev}:${info.ino}` === root.identity) inside = true;
  }
  if (!inside) return;
  throw new UsageError(
    `Cannot use ${named(output)}: it lies inside ${folder.what} "${folder.path}", which ` +
      `must not change while it is read`,
    output.option === undefined ? {} : { options: [output.option] },
  );
}

/**
 * Refuse an index that is its container: appending index lines to the container, or reading
 * the container as its index, leaves something nothing can read.
 *
 * @param index the index path
 * @param container the container path
 * @throws {UsageError} naming both paths and the option `index`, before anything is written
 */
export async function refuseIndexIsContainer(index: string, container: string): Promise<void> {
  await refuseSameFile({ what: "the index", path: index, option: "index" }, [
    { what: "the container", path: container },
  ]);
}

/**
 * The files of a container that no other output may be: the container, its index, and the
 * index readers look for beside it (`<container>.idx`), which would hide its trailer.
 *
 * @param container the container path
 * @param index the index path in use, when it is not `<container>.idx`
 * @returns the paths, named for messages
 */
export function containerFiles(container: string, index?: string): RunPath[] {
  const files: RunPath[] = [
    { what: "the container", path: container },
    { what: "the index", path: container + ".idx" },
  ];
  if (index !== undefined && index !== container + ".idx") {
    files.push({ what: "the index", path: index });
  }
  return files;
}

function named(output: RunPath): string {
  return `${output.what} "${output.path}"` +
    (output.option === undefined ? "" : ` (\`${output.option}\`)`);
}
