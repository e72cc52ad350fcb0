/**
 * The rule that a set of relpaths can be laid out as one tree: no two equal
 * (after Unicode NFC normalisation, and case folding where asked), and no
 * file or link where another entry needs a folder. Shared by `extract`'s
 * plan, which refuses an index that breaks it, and `create`, which refuses
 * a source item that would (on resume, the tree may have changed since the
 * committed entries were written). Memory is bounded: 96-bit hashes.
 *
 * Case folding ({@link foldCase}) is full Unicode case folding, made of the
 * engine's own case mappings: NFC, lower case, upper case, lower case, NFC.
 * The upper-case step joins what an upper-case table joins (exFAT, NTFS:
 * `σ`, `ς` and `Σ`; `ı` and `i`; `ſ` and `s`), the full mappings join what
 * Unicode case folding joins (APFS, ext4 and f2fs `casefold`: `ß` and `ss`,
 * `ﬁ` and `fi`), and the first lower-case step brings the singletons that
 * upper-case to themselves in (`ẞ`, the Kelvin sign `K`, the Ohm sign `Ω`).
 * So a pair that any of these file systems stores as one file is refused on
 * every case-insensitive target, even where that one file system would keep
 * both (`ß`/`ss` on exFAT): refusing costs a rename, a silent replace costs
 * a file. NFC first and last: APFS and ext4 `casefold` also ignore the
 * difference between NFC and NFD, and so does every key here, folded or not.
 * The Turkish dotted `İ` folds to `i̇` (not `i`), as Unicode's default
 * folding has it. Locale-independent: `toLowerCase`, not `toLocaleLowerCase`.
 *
 * @module
 */

import { prefixHashes, RelpathSet } from "./relpath_set.ts";

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * The key two relpaths share when they name the same file: NFC form, with case folded
 * ({@link foldCase}) where asked.
 *
 * @param relpath a relpath
 * @param fold whether case is folded
 * @returns the key
 */
export function pathKey(relpath: string, fold: boolean): string {
  // ASCII is its own NFC form: skip normalize(), which allocates a copy per call.
  if (PRINTABLE_ASCII.test(relpath)) return fold ? relpath.toLowerCase() : relpath;
  const nfc = relpath.normalize("NFC");
  return fold ? foldCase(nfc) : nfc;
}

/**
 * Full Unicode case folding of a name in NFC form, such that two names a case-insensitive file
 * system (exFAT, NTFS, APFS, ext4 or f2fs `casefold`) stores as one file get the same result:
 * see the module doc for why lower, upper, lower.
 *
 * @param nfc a name or relpath in NFC form
 * @returns its folded form, in NFC form (`"Σ.txt"`, `"ς.txt"` -> `"σ.txt"`; `"ß"` -> `"ss"`)
 */
export function foldCase(nfc: string): string {
  return nfc.toLowerCase().toUpperCase().toLowerCase().normalize("NFC");
}

/**
 * Where names fold case under an output folder: at its top, and in each file system mounted
 * below it (a case-insensitive USB disk mounted inside a case-sensitive folder, or the other way
 * round).
 */
export interface CaseFolding {
  /** Names fold case in the output folder itself. */
  top: boolean;
  /**
   * Mount points below the output folder: each relpath (as the kernel spells it) and whether
   * names fold case below it. A mount point nested in another is listed too.
   */
  mounts: readonly { relpath: string; foldCase: boolean }[];
}

/**
 * The function that gives each relpath its key (see {@link pathKey}) under `fold`: one switch
 * for the whole tree, or a {@link CaseFolding}, where each component is folded or not by the
 * file system it lies on (a mount point's own name by the one above it).
 *
 * @param fold whether case is folded everywhere, or where
 * @returns the key of a relpath
 */
export function pathKeyer(fold: boolean | CaseFolding): (relpath: string) => string {
  if (typeof fold === "boolean") return (relpath) => pathKey(relpath, fold);
  if (fold.mounts.length === 0) return (relpath) => pathKey(relpath, fold.top);
  const below = new Map<string, boolean>(); // key of a mount point -> whether names fold below
  const keyOf = (relpath: string): string => {
    let folding = fold.top;
    let key = "";
    for (const part of relpath.split("/")) {
      key += (key === "" ? "" : "/") + pathKey(part, folding);
      folding = below.get(key) ?? folding;
    }
    return key;
  };
  // Shallower mount points first: a mount point's own name is keyed by the one above it.
  const mounts = [...fold.mounts].sort((a, b) => depth(a.relpath) - depth(b.relpath));
  for (const mount of mounts) below.set(keyOf(mount.relpath), mount.foldCase);
  return keyOf;
}

function depth(relpath: string): number {
  return relpath.split("/").length;
}

/** The value of a folder entry; any other value marks a file or link (nothing may lie below it). */
export const FOLDER = 0;

/** Admits relpaths one by one, refusing those that clash with the ones admitted before. */
export class PathGuard {
  #seen: RelpathSet; // every key, with the caller's value (FOLDER for dir entries)
  #parents = new RelpathSet(); // every folder some admitted entry needs
  #foldCase: boolean;
  #key: (relpath: string) => string;
  #lastParent = "";

  /**
   * Create an empty guard.
   *
   * @param foldCase treat names that differ only in case as equal: everywhere (`true`), or
   *   where a {@link CaseFolding} says
   * @param expected relpaths expected: sizes the table once instead of growing it (each growth
   *   holds the old and the new table at once)
   */
  constructor(foldCase: boolean | CaseFolding = false, expected = 1024) {
    this.#foldCase = typeof foldCase === "boolean"
      ? foldCase
      : foldCase.top || foldCase.mounts.some((mount) => mount.foldCase);
    this.#key = pathKeyer(foldCase);
    this.#seen = new RelpathSet(expected);
  }

  /**
   * About how many relpaths an NDJSON index of `bytes` bytes holds: entry lines of both tools
   * take about 190 to 220 bytes; an index of shorter lines only makes the table grow once.
   * Capped so a huge file does not reserve a table for more than 4 million entries up front.
   *
   * @param bytes size of the index in bytes
   * @returns the expected number of entries
   */
  static expectedEntries(bytes: number): number {
    return Math.min(4_000_000, Math.ceil(bytes / 190));
  }

  /** Number of relpaths admitted. */
  get size(): number {
    return this.#seen.size;
  }

  /**
   * The value an admitted relpath (or one equal to it after normalisation) was admitted with.
   *
   * @param relpath a relpath
   * @returns its value, or `undefined` when no such relpath was admitted
   */
  get(relpath: string): number | undefined {
    return this.#seen.get(this.#key(relpath));
  }

  /**
   * {@link PathGuard.get}, and mark the relpath found: the caller met it again (create's walk
   * meeting a committed entry). See {@link PathGuard.isMarked}, {@link PathGuard.marked}.
   *
   * @param relpath a relpath
   * @returns its value, or `undefined` when no such relpath was admitted
   */
  getAndMark(relpath: string): number | undefined {
    return this.#seen.getAndMark(this.#key(relpath));
  }

  /** Whether `relpath` (or one equal to it after normalisation) is admitted and marked. */
  isMarked(relpath: string): boolean {
    return this.#seen.isMarked(this.#key(relpath));
  }

  /** Number of admitted relpaths marked by {@link PathGuard.getAndMark}. */
  get marked(): number {
    return this.#seen.marked;
  }

  /**
   * Give the tables' memory back now (see {@link RelpathSet.dispose}); the guard is empty
   * after it. At a million entries the table of relpaths holds 32 MiB.
   */
  dispose(): void {
    this.#seen.dispose();
    this.#parents.dispose();
    this.#lastParent = "";
  }

  /** {@link PathGuard.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Admit `relpath` unless it clashes with an admitted one.
   *
   * @param relpath a relpath already checked by `checkRelpath`
   * @param value {@link FOLDER} for a folder entry; any other value (kept, see `get`) for a
   *   file or link, below which nothing may lie
   * @returns `undefined` when admitted, else why it is refused
   */
  admit(relpath: string, value: number): string | undefined {
    return this.#judge(relpath, value, true);
  }

  /**
   * Why `relpath` would be refused, without admitting it.
   *
   * @param relpath a relpath already checked by `checkRelpath`
   * @param value as for {@link PathGuard.admit}
   * @returns `undefined` when it would be admitted, else why it would be refused
   */
  check(relpath: string, value: number): string | undefined {
    return this.#judge(relpath, value, false);
  }

  #judge(relpath: string, value: number, record: boolean): string | undefined {
    const isLeaf = value !== FOLDER;
    const k = this.#key(relpath);
    // One pass over the key hashes it and every folder above it: linear in its length, however
    // deep (checking each ancestor as a string of its own was quadratic: 93 s for one line of
    // 100,000 components).
    const hashes = prefixHashes(k);
    const self = hashes.length / 3 - 1; // the whole key; 0 .. self - 1 are its folders
    if (this.#seen.getHash(hashes, self) !== undefined) {
      return "another entry has the same path, or one equal to it after Unicode NFC normalisation" +
        (this.#foldCase ? " or case folding" : "");
    }
    if (isLeaf && this.#parents.getHash(hashes, self) !== undefined) {
      return "it is a file or link but other entries lie below it";
    }
    const slash = k.lastIndexOf("/");
    const parent = slash < 0 ? "" : k.slice(0, slash);
    if (parent !== this.#lastParent) {
      // Check every new ancestor first, nearest first, then record them: a refused relpath
      // leaves no trace. An ancestor already recorded had its own ancestors checked.
      let known = self; // ancestors from `known` on are new
      for (let at = self - 1; at >= 0; at--) {
        const above = this.#seen.getHash(hashes, at);
        if (above !== undefined && above !== FOLDER) {
          return `its folder "${k.slice(0, folderEnd(k, at))}" is a file or link entry`;
        }
        if (this.#parents.getHash(hashes, at) !== undefined) break;
        known = at;
      }
      if (!record) return undefined;
      for (let at = known; at < self; at++) this.#parents.addHash(hashes, at);
      this.#lastParent = parent;
    }
    if (record) this.#seen.addHash(hashes, self, value);
    return undefined;
  }
}

/** Where the folder prefix number `at` (0 = the top folder) of `key` ends. */
function folderEnd(key: string, at: number): number {
  let end = -1;
  for (let i = 0; i <= at; i++) end = key.indexOf("/", end + 1);
  return end;
}
