/**
 * Deterministic walk of a source tree for `create`: depth first, names of
 * each folder sorted by Unicode code point (the order of their UTF-8 bytes,
 * like `LC_ALL=C sort`), nothing followed through a symlink. Files are
 * classified by the folder listing alone (no `lstat` per file): the reader
 * stats the open file, which is both cheaper and race-free. Folders are
 * stat'ed (one `lstat` each): a folder whose permission bits are not
 * {@link DEFAULT_FOLDER_MODE} is yielded as a `dir` entry before its
 * contents, so `extract` restores its mode (a 0700 folder stays private);
 * a tree of 0755 folders gets no folder entries, and stays readable by the
 * original extractor.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { SourceError } from "../errors.ts";
import { checkRelpath } from "../safety/relpath.ts";
import { DEFAULT_FOLDER_MODE } from "../format/entry.ts";
import type { Selection } from "../selection.ts";

/** Kinds of things met in a source tree. */
export type WalkEntryKind = "file" | "dir" | "symlink" | "special";

/** One thing met by {@link walkTree}. */
export interface WalkEntry {
  /** Path relative to the root, `/`-separated. */
  relpath: string;
  /** Path on disk. */
  path: string;
  /**
   * `dir` entries are only yielded for folders with nothing recorded beneath them, and (before
   * their contents, with `keepsMode`) for folders whose permission bits are not 0755.
   */
  kind: WalkEntryKind;
  /** A `dir` entry yielded for its mode (not 0755), before the folder's contents. */
  keepsMode?: boolean;
  /** Permission bits `st_mode & 0o7777` (folders and links; files get theirs when read). */
  mode?: number;
  /** Modification time in seconds since the epoch, millisecond precision (folders and links). */
  mtime?: number;
  /** Target of a symlink, as stored in the link. */
  linkTarget?: string;
}

/** Options of {@link walkTree}. */
export interface WalkOptions {
  /** Paths on disk (as `join(root, relpath)` spells them) never to yield or enter. */
  exclude?: ReadonlySet<string>;
  /** Called for a file or folder that cannot be listed or stat'ed; the walk goes on. */
  onError?: (error: SourceError) => void;
  /**
   * Symlinks will be left out: they are still yielded, but a folder holding nothing else
   * counts as empty and is yielded as a `dir` entry, so it is not lost. @default false
   */
  linksLeftOut?: boolean;
  /** Patterns that choose what is walked and yielded (`create --include/--exclude`). */
  patterns?: WalkPatterns;
}

/**
 * What `create --include` and `--exclude` choose, as {@link Selection}s (lib/selection.ts
 * gives the rules: a name at any depth, a path from the root, a folder's subtree).
 */
export interface WalkPatterns {
  /**
   * When it holds patterns, only the items it selects are yielded, with the folders on the way
   * to them: a folder's `dir` entry (for its mode, or empty) only when it has something
   * selected beneath it or is itself selected. Folders are still entered to look.
   */
  include?: Selection;
  /**
   * Items it selects are neither yielded nor reported (a name `create` could not store,
   * unreadable), and a folder it selects is not entered. It wins over `include`.
   */
  exclude?: Selection;
  /**
   * Called for each item the patterns leave out: each one `exclude` selects (a folder once,
   * its contents unseen) and, with `include`, each file, link or special file it does not.
   */
  onExcluded?: (relpath: string) => void;
}

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
  const batches = walkTreeBatches(root, options);
  try {
    for (;;) {
      const next = await batches.next();
      if (next.done) return next.value;
      yield* next.value;
    }
  } finally {
    await batches.return(0); // stopped early: end the walk too
  }
}

/**
 * {@link walkTree} in batches: the same entries in the same order, yielded as
 * arrays of at most `batchSize` entries. One generator step per batch rather
 * than per entry: over 100,000 files this walk takes about 0.1 s where the
 * entry-by-entry one took 0.6 s (async generator steps cost microseconds).
 *
 * @param root the folder to walk
 * @param options exclusions and error callback
 * @param batchSize most entries in one yielded array
 * @returns the entries in deterministic order; returns the number recorded
 * @throws {SourceError} when `root` is not a readable folder
 */
export async function* walkTreeBatches(
  root: string,
  options: WalkOptions = {},
  batchSize = 256,
): AsyncGenerator<WalkEntry[], number> {
  await checkSourceFolder(root);
  const top = root.replace(/\/+$/, "") || "/";
  const out = new Batcher(batchSize);
  const recorded = yield* walkFolder(top, "", options, out, []);
  if (out.items.length > 0) yield out.take();
  return recorded;
}

/**
 * Check that `root` is a folder that can be walked.
 *
 * @param root the source folder
 * @throws {SourceError} when it is missing or not a folder
 */
export async function checkSourceFolder(root: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (error) {
    throw new SourceError(`Cannot read source "${root}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!info.isDirectory) throw new SourceError(`Cannot read source "${root}": not a folder`);
}

/** Collects entries until a batch is full; gives the event loop a turn now and then. */
class Batcher {
  items: WalkEntry[] = [];
  /** Names walked since the event loop last had a turn. */
  walked = 0;

  constructor(readonly size: number) {}

  take(): WalkEntry[] {
    const items = this.items;
    this.items = [];
    return items;
  }

  /**
   * One turn of the event loop, taken once every `TURN_EVERY` names walked (a message through a
   * fresh channel: about 30 us, where `setTimeout(0)` takes 2 ms here; a channel kept open would
   * keep the process alive). Without it, a walk listed synchronously over a tree whose files are
   * all skipped (a resume) never lets V8 run its garbage-collection tasks: at a million
   * entries peak RSS rose from 211 to 260 MiB (bench/rss_1m.ts). Counted by names walked, not
   * folders: one folder of a million files is walked in one frame.
   */
  async turn(): Promise<void> {
    this.walked = 0;
    await new Promise<void>((resolve) => {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = () => {
        port1.close();
        resolve();
      };
      port2.postMessage(0);
      port2.close();
    });
  }
}

const TURN_EVERY = 1000;

/**
 * Largest folder size (`st_size`, in bytes) listed by `Deno.readDirSync`. A folder's size grows
 * with its names on the common file systems: tmpfs 20 bytes a name, ext4 a 4 KiB block per about
 * 100-200 names, XFS the names' bytes and a little more. 64 KiB is a few thousand names at most
 * (`Deno.readDirSync` holds about 0.6 KiB a name until the listing ends).
 */
const SYNC_LISTING_BYTES = 64 << 10;

/**
 * Whether a folder is listed in one `Deno.readDirSync` call (fast: the async iterator costs about
 * 2.4 us a name on the main thread, the one call 1 us) rather than in batches through the async
 * iterator (bounded memory): only when its size says it holds a few thousand names at most. Its
 * size counts only where it grows with the names: not a size of 0 (Windows, some FUSE file
 * systems), and not a link count below 2, which marks the folders whose size says nothing of
 * their names: an overlayfs folder with a lower layer (Docker images) has the link count 1 and
 * the size of its upper folder alone (60 bytes for 300,000 names), and btrfs gives every folder
 * the link count 1.
 *
 * @param info the folder's `stat` (following a link: the source may be a link to a folder)
 * @returns `true` to list it in one call
 */
export function listsWhole(info: Deno.FileInfo): boolean {
  return info.size > 0 && info.size <= SYNC_LISTING_BYTES && (info.nlink ?? 0) >= 2;
}

/**
 * Yields a folder's subtree in batches; returns how many entries it recorded (dirs, files,
 * links). `pending` holds the `dir` entries of folders on the way down that `include` does not
 * select: each goes out just before the first item recorded beneath it, or never.
 */
async function* walkFolder(
  path: string,
  relpath: string,
  options: WalkOptions,
  out: Batcher,
  pending: WalkEntry[],
): AsyncGenerator<WalkEntry[], number> {
  // A big folder is listed through the async iterator, which reads it in batches
  // (`Deno.readDirSync` makes every DirEntry of the folder at once: a folder of a million files
  // peaked at 590 MiB listed that way), a small one in one call ({@link listsWhole}); every folder
  // into one UTF-8 buffer rather than a string per name (a million names: 89 MiB peak, against
  // 173 MiB as strings).
  const listing = new FolderListing();
  const add = (item: Deno.DirEntry) =>
    listing.add(
      item.name,
      item.isFile ? FILE : item.isDirectory ? DIR : item.isSymlink ? LINK : SPECIAL,
    );
  try {
    // The async iterator costs the thread that feeds the read worker about 2.4 us a name (100,000
    // names in 100 folders: 270 ms, against 72 ms in one call each). Create of 100,000 x 4 KiB on
    // tmpfs, 5 runs alternated: 1.28 s -> 1.07 s (medians) once small folders took one call.
    // stat, not lstat: the source folder itself may be a link to a big folder.
    if (listsWhole(Deno.statSync(path))) {
      for (const item of Deno.readDirSync(path)) add(item);
    } else {
      for await (const item of Deno.readDir(path)) add(item);
    }
  } catch (error) {
    options.onError?.(
      new SourceError(`Cannot list folder "${relpath || "."}": ${(error as Error).message}`, {
        cause: error,
        relpath: relpath || ".",
      }),
    );
    return -1;
  }
  const order = listing.sortedOrder();
  const refusal = new NameRefusal(listing, order);
  const patterns = options.patterns;
  const include = patterns?.include?.empty === false ? patterns.include : undefined;
  const exclude = patterns?.exclude?.empty === false ? patterns.exclude : undefined;
  /** Record an entry, after the folders on the way that wait for one. */
  const record = (entry: WalkEntry) => {
    if (pending.length > 0) {
      out.items.push(...pending);
      pending.length = 0;
    }
    out.items.push(entry);
  };
  let recorded = 0;
  for (let k = 0; k < order.length; k++) {
    // A folder of a million names is walked in one frame: the event loop gets its turns here.
    if (++out.walked >= TURN_EVERY) await out.turn();
    const name = listing.name(order[k]!);
    const kind = listing.kinds[order[k]!]!;
    const why = refusal.of(k, name); // before the patterns: it learns every name in order
    if (patterns !== undefined) {
      const rel = relpath === "" ? name : `${relpath}/${name}`;
      // An excluded folder is not entered: nothing in it is read, listed or reported.
      if (exclude?.matches(rel, kind === DIR)) {
        patterns.onExcluded?.(rel);
        continue;
      }
      if (include && kind !== DIR && !include.matches(rel)) {
        patterns.onExcluded?.(rel);
        continue;
      }
    }
    if (why !== undefined) {
      const rel = relpath === "" ? name : `${relpath}/${name}`;
      if (!options.exclude?.has(`${path}/${name}`)) {
        options.onError?.(
          new SourceError(`Cannot store "${rel}": ${why}; rename it`, {
            relpath: rel,
            nameRefused: true,
          }),
        );
      }
      continue;
    }
    const child = describeChild(path, relpath, name, kind, options);
    if (child === null) continue;
    if (child.kind === "dir") {
      const stat = statOf(child, options);
      if (stat === null) continue;
      // With include, a folder it does not select is recorded only for what lies beneath it.
      const selected = include === undefined || include.matches(child.relpath, true);
      // A folder of another mode than 0755 is an entry before its contents (extract then
      // knows it is private before it writes into it); an empty one is an entry after them.
      const keepsMode = ((stat.mode ?? DEFAULT_FOLDER_MODE) & 0o777) !== DEFAULT_FOLDER_MODE;
      if (keepsMode && selected) {
        record({ ...stat, keepsMode });
        recorded++;
        if (out.items.length >= out.size) yield out.take();
      } else if (keepsMode) pending.push({ ...stat, keepsMode });
      const waiting = pending.length;
      const below = yield* walkFolder(child.path, child.relpath, options, out, pending);
      if (keepsMode && !selected) {
        // Still waiting: nothing beneath it was recorded, and neither is it.
        if (pending.length >= waiting) pending.length = waiting - 1;
        else recorded++;
        continue;
      }
      if (keepsMode) continue;
      if (below === 0) {
        if (!selected) continue;
        record(stat);
        recorded++;
      } else if (below > 0) recorded += below;
      else recorded++; // an unreadable folder is not "empty": keep the parent unrecorded
    } else {
      if (child.kind === "symlink") {
        const stat = statOf(child, options);
        if (stat === null) continue;
        record(stat);
      } else record(child);
      if (child.kind === "file" || (child.kind === "symlink" && !options.linksLeftOut)) recorded++;
    }
    if (out.items.length >= out.size) yield out.take();
  }
  return recorded;
}

const FILE = 0;
const DIR = 1;
const LINK = 2;
const SPECIAL = 3;
const KIND_NAMES: WalkEntryKind[] = ["file", "dir", "symlink", "special"];

function describeChild(
  parent: string,
  parentRel: string,
  name: string,
  kindCode: number,
  options: WalkOptions,
): WalkEntry | null {
  const path = `${parent}/${name}`;
  if (options.exclude?.has(path)) return null;
  const relpath = parentRel === "" ? name : `${parentRel}/${name}`;
  if (name.includes("\uFFFD") && !existsExactly(path)) {
    options.onError?.(
      new SourceError(`Cannot store "${relpath}": the name is not valid UTF-8; rename it`, {
        relpath,
        nameRefused: true,
      }),
    );
    return null;
  }
  // Files are not stat'ed here: the reader takes size, mode and mtime from the open file.
  return { relpath, path, kind: KIND_NAMES[kindCode]! };
}

function statOf(entry: WalkEntry, options: WalkOptions): WalkEntry | null {
  try {
    const info = Deno.lstatSync(entry.path);
    const full: WalkEntry = {
      ...entry,
      mode: (info.mode ?? 0o755) & 0o7777,
      mtime: (info.mtime?.getTime() ?? 0) / 1000,
    };
    if (entry.kind === "symlink") full.linkTarget = Deno.readLinkSync(entry.path);
    return full;
  } catch (error) {
    options.onError?.(
      new SourceError(`Cannot read "${entry.relpath}": ${(error as Error).message}`, {
        cause: error,
        relpath: entry.relpath,
      }),
    );
    return null;
  }
}

/**
 * The names of one folder, kept as UTF-8 bytes in one growing buffer with their kinds: a
 * million names cost about 16 MiB, where a million strings cost several times that (and keep
 * the old generation growing while the folder is listed). Names come from Deno as well-formed
 * UTF-16 (a name that is not valid UTF-8 reads with U+FFFD), so they decode back unchanged,
 * and the order of their bytes is their code-point order.
 */
export class FolderListing {
  #bytes = new Uint8Array(4096);
  #used = 0;
  /** End of each name's bytes in the buffer. */
  #ends = new Uint32Array(64);
  /** Kind code of each name, in listing order. */
  kinds = new Uint8Array(64);
  /** Number of names. */
  count = 0;
  #decoder = new TextDecoder();
  #encoder = new TextEncoder();

  /**
   * Add a name.
   *
   * @param name a name as listed
   * @param kind its kind code
   */
  add(name: string, kind: number): void {
    if (this.#used + name.length * 3 > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#used + name.length * 3));
      grown.set(this.#bytes.subarray(0, this.#used));
      this.#bytes = grown;
    }
    if (this.count === this.#ends.length) {
      const ends = new Uint32Array(this.count * 2);
      ends.set(this.#ends);
      this.#ends = ends;
      const kinds = new Uint8Array(this.count * 2);
      kinds.set(this.kinds);
      this.kinds = kinds;
    }
    const bytes = this.#bytes;
    const at = this.#used;
    let written = 0;
    for (; written < name.length; written++) {
      const c = name.charCodeAt(written);
      if (c >= 0x80) {
        written = this.#encoder.encodeInto(name, bytes.subarray(at)).written;
        break;
      }
      bytes[at + written] = c;
    }
    this.#used += written;
    this.#ends[this.count] = this.#used;
    this.kinds[this.count++] = kind;
  }

  /** The `i`th name listed. */
  name(i: number): string {
    const start = i === 0 ? 0 : this.#ends[i - 1]!;
    const bytes = this.#bytes.subarray(start, this.#ends[i]!);
    for (let j = 0; j < bytes.length; j++) {
      if (bytes[j]! >= 0x80) return this.#decoder.decode(bytes);
    }
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }

  /** Compare the `a`th and `b`th names by their bytes (code-point order). */
  compare(a: number, b: number): number {
    const bytes = this.#bytes;
    let i = a === 0 ? 0 : this.#ends[a - 1]!;
    let j = b === 0 ? 0 : this.#ends[b - 1]!;
    const endA = this.#ends[a]!;
    const endB = this.#ends[b]!;
    for (; i < endA && j < endB; i++, j++) {
      const d = bytes[i]! - bytes[j]!;
      if (d !== 0) return d;
    }
    return (endA - i) - (endB - j);
  }

  /** The indexes of the names in code-point order. */
  sortedOrder(): Uint32Array {
    const order = new Uint32Array(this.count);
    for (let i = 0; i < order.length; i++) order[i] = i;
    return order.sort((a, b) => this.compare(a, b));
  }
}

/**
 * Which names of one folder `extract` would refuse, and why, asked name by name in code-point
 * order: names `checkRelpath` refuses (a backslash); names that read the same (a name that is
 * not valid UTF-8 reads with U+FFFD and may equal another); and names equal after Unicode NFC
 * normalisation, where the one already in NFC form is kept (else the first in code-point order).
 */
class NameRefusal {
  /** First name met of each NFC form, only for names not in NFC form: rare. */
  #firstOfKey = new Map<string, string>();

  /**
   * @param listing the folder's names
   * @param order their indexes in code-point order
   */
  constructor(readonly listing: FolderListing, readonly order: Uint32Array) {}

  /**
   * Why the `k`th name in code-point order is refused; ask for every `k` in order.
   *
   * @param k its place in code-point order
   * @param name the name
   * @returns the reason, or `undefined` when it can be stored
   */
  of(k: number, name: string): string | undefined {
    const unsafe = checkRelpath(name);
    if (unsafe) return `the name is not portable (${unsafe})`;
    const { listing, order } = this;
    if (
      (k > 0 && listing.compare(order[k - 1]!, order[k]!) === 0) ||
      (k + 1 < order.length && listing.compare(order[k]!, order[k + 1]!) === 0)
    ) {
      return "two names in its folder read the same (one is not valid UTF-8)";
    }
    if (ASCII.test(name)) return undefined;
    const key = name.normalize("NFC");
    if (key === name) return undefined; // NFC form: kept
    const first = this.#has(key) ? key : this.#firstOfKey.get(key);
    if (first === undefined) {
      this.#firstOfKey.set(key, name);
      return undefined;
    }
    return `it equals "${first}" after Unicode NFC normalisation ` +
      `(${codePoints(name)} vs ${codePoints(first)})`;
  }

  /** Whether the folder holds `name` (a binary search of the sorted names). */
  #has(name: string): boolean {
    let lo = 0;
    let hi = this.order.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareCodePoints(this.listing.name(this.order[mid]!), name);
      if (c === 0) return true;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}

// deno-lint-ignore no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/** The non-ASCII characters of a name as code points, to tell apart names that look alike. */
function codePoints(name: string): string {
  return [...name].filter((c) => c.codePointAt(0)! > 0x7f)
    .map((c) => "U+" + c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")).join(" ");
}

function existsExactly(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
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

/**
 * Absolute spellings, as the walk builds them, of files that must never be packed (the
 * container, its index, the status file), when they lie inside `src`.
 *
 * @param paths the files
 * @param src the source folder
 * @returns the paths to exclude from the walk
 */
export async function excludedPaths(paths: string[], src: string): Promise<Set<string>> {
  const set = new Set<string>();
  const root = resolve(src);
  let realRoot = root;
  try {
    realRoot = await Deno.realPath(root);
  } catch { /* reported by the walk */ }
  for (const path of paths) {
    const absolute = resolve(path);
    let real = absolute;
    try {
      real = `${await Deno.realPath(dirname(absolute))}/${absolute.split("/").pop()}`;
    } catch { /* parent missing: cannot be inside src */ }
    for (const candidate of [absolute, real]) {
      for (const base of [realRoot, root]) {
        if (candidate.startsWith(base + "/")) {
          set.add(`${src.replace(/\/+$/, "") || ""}/${candidate.slice(base.length + 1)}`);
        }
      }
    }
  }
  return set;
}

/** What a walk before the run found ({@link prescan}): the run's totals for progress. */
export interface PrescanTotals {
  /** Items the run will take: files, folders and links (special files are not counted). */
  entries: number;
  /** Regular files among them. */
  files: number;
  /** Folders among them (those the walk yields: empty ones, and those of a mode not 0755). */
  folders: number;
  /** Symlinks among them. */
  links: number;
  /** Special files found (FIFO, socket, device): the run leaves them out, each with a warning. */
  specials: number;
  /** Sum of the files' sizes in bytes (only when `sizes` was asked for, else 0). */
  bytes: number;
}

/**
 * Walk first to count the items (and with `sizes`, the files' bytes) for progress totals.
 *
 * @param src the source folder
 * @param exclude paths never walked
 * @param sizes also sum the sizes (an lstat per file)
 * @param patterns `include` and `exclude` patterns, as the walk that packs applies them
 * @param onBatch called after each batch the walk lists, with the totals so far (the same
 *   object each time)
 * @returns the counts and bytes
 */
export async function prescan(
  src: string,
  exclude: Set<string>,
  sizes: boolean,
  patterns: WalkPatterns = {},
  onBatch?: (totals: PrescanTotals) => void,
): Promise<PrescanTotals> {
  const totals: PrescanTotals = {
    entries: 0,
    files: 0,
    folders: 0,
    links: 0,
    specials: 0,
    bytes: 0,
  };
  const { onExcluded: _, ...quiet } = patterns; // counted by the walk that packs
  for await (const batch of walkTreeBatches(src, { exclude, patterns: quiet })) {
    for (const item of batch) {
      if (item.kind === "special") {
        totals.specials++;
        continue;
      }
      totals.entries++;
      if (item.kind === "dir") totals.folders++;
      else if (item.kind === "symlink") totals.links++;
      else {
        totals.files++;
        if (sizes) {
          try {
            totals.bytes += Deno.lstatSync(item.path).size;
          } catch { /* reported when it is read */ }
        }
      }
    }
    onBatch?.(totals);
  }
  return totals;
}
