/**
 * Deterministic walk of a source tree for `create`: depth first, names of
 * each folder sorted by Unicode code point (the order of their UTF-8 bytes,
 * like `LC_ALL=C sort`), nothing followed through a symlink.
 *
 * @module
 */

import { SourceError } from "./errors.ts";

/** Kinds of things met in a source tree. */
export type WalkEntryKind = "file" | "dir" | "symlink" | "special";

/** One thing met by {@link walkTree}. */
export interface WalkEntry {
  /** Path relative to the root, `/`-separated. */
  relpath: string;
  /** Path on disk. */
  path: string;
  /** `dir` entries are only yielded for folders with nothing recorded beneath them. */
  kind: WalkEntryKind;
  /** Size in bytes from `lstat` (files), else 0. */
  size: number;
  /** Permission bits `st_mode & 0o7777`. */
  mode: number;
  /** Modification time in seconds since the epoch, millisecond precision. */
  mtime: number;
  /** Target of a symlink, as stored in the link. */
  linkTarget?: string;
}

/** Options of {@link walkTree}. */
export interface WalkOptions {
  /** Paths on disk (as `join(root, relpath)` spells them) never to yield or enter. */
  exclude?: ReadonlySet<string>;
  /** Called for a file or folder that cannot be listed or stat'ed; the walk goes on. */
  onError?: (error: SourceError) => void;
}

const STAT_CONCURRENCY = 64;

/**
 * Walk `root` and yield its files, symlinks, special files and empty folders.
 *
 * @param root the folder to walk
 * @param options exclusions and error callback
 * @returns the entries in deterministic order
 * @throws {SourceError} when `root` is not a readable folder
 */
export async function* walkTree(
  root: string,
  options: WalkOptions = {},
): AsyncGenerator<WalkEntry, number> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (error) {
    throw new SourceError(`Cannot read source "${root}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!info.isDirectory) throw new SourceError(`Cannot read source "${root}": not a folder`);
  const top = root.endsWith("/") && root.length > 1 ? root.slice(0, -1) : root;
  return yield* walkFolder(top, "", options);
}

/** Yields a folder's subtree; returns how many entries it recorded (dirs, files, links). */
async function* walkFolder(
  path: string,
  relpath: string,
  options: WalkOptions,
): AsyncGenerator<WalkEntry, number> {
  const names: string[] = [];
  try {
    for await (const item of Deno.readDir(path)) names.push(item.name);
  } catch (error) {
    options.onError?.(
      new SourceError(`Cannot list folder "${relpath || "."}": ${(error as Error).message}`, {
        cause: error,
      }),
    );
    return -1;
  }
  names.sort(compareCodePoints);
  let recorded = 0;
  for (let i = 0; i < names.length; i += STAT_CONCURRENCY) {
    const slice = names.slice(i, i + STAT_CONCURRENCY);
    const stats = await Promise.all(slice.map((name) => statChild(path, relpath, name, options)));
    for (const child of stats) {
      if (child === null) continue;
      if (child.kind === "dir") {
        const below = yield* walkFolder(child.path, child.relpath, options);
        if (below === 0) {
          yield child;
          recorded++;
        } else if (below > 0) recorded += below;
        else recorded++; // an unreadable folder is not "empty": keep the parent unrecorded
      } else {
        yield child;
        if (child.kind !== "special") recorded++;
      }
    }
  }
  return recorded;
}

async function statChild(
  parent: string,
  parentRel: string,
  name: string,
  options: WalkOptions,
): Promise<WalkEntry | null> {
  const path = `${parent}/${name}`;
  const relpath = parentRel === "" ? name : `${parentRel}/${name}`;
  if (options.exclude?.has(path)) return null;
  try {
    const info = await Deno.lstat(path);
    const entry: WalkEntry = {
      relpath,
      path,
      kind: info.isFile
        ? "file"
        : info.isDirectory
        ? "dir"
        : info.isSymlink
        ? "symlink"
        : "special",
      size: info.isFile ? info.size : 0,
      mode: (info.mode ?? 0o644) & 0o7777,
      mtime: (info.mtime?.getTime() ?? 0) / 1000,
    };
    if (entry.kind === "symlink") entry.linkTarget = await Deno.readLink(path);
    return entry;
  } catch (error) {
    const detail = name.includes("\uFFFD") && error instanceof Deno.errors.NotFound
      ? "the name is not valid UTF-8"
      : (error as Error).message;
    options.onError?.(
      new SourceError(`Cannot read "${relpath}": ${detail}`, { cause: error }),
    );
    return null;
  }
}

/**
 * Compare strings by Unicode code point (the order of their UTF-8 bytes).
 *
 * @param a first string
 * @param b second string
 * @returns negative, zero or positive like `Array.prototype.sort` expects
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF: they sort after 0xE000-0xFFFF.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? (y >= 0xe000 ? 1 : x - y) : (x >= 0xe000 ? -1 : x - y);
    return x - y;
  }
  return a.length - b.length;
}
