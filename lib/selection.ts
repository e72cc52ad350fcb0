/**
 * Which relpaths a list of patterns selects, with the rules users of tar and
 * rsync expect (README "Selecting entries"); `create --include/--exclude`,
 * and the patterns of `extract`, `list`, `verify` and `cat`, all use it.
 *
 * - A pattern without `/` is matched against the name of each component, at
 *   any depth: `*.tmp` and `node_modules` select those names wherever they are.
 * - A pattern with `/` is matched against the relpath from the root
 *   (`docs/*.md` is `docs/a.md`, not `x/docs/a.md`); a leading `/` or `./`
 *   anchors a pattern without any other `/` (`/build` is only the top-level
 *   one) and is trimmed.
 * - A match on a folder selects everything under it (`docs` selects
 *   `docs/a/b.txt`). A trailing `/` selects folders only (`cache/`).
 * - `*`, `?` and `[...]` (with `[!...]` and `[[:alpha:]]`) do not cross `/`;
 *   `**` does (`a/**\/z`); `{x,y}` is either; `\` escapes the next character.
 *   Names starting with `.` match `*` like any other (as tar does).
 * - A pattern equal to a name (without `/`) or a relpath always selects it,
 *   even when it holds glob characters: `a[1].txt`.
 * - A pattern that is exactly a path the run knows is that path, taken
 *   literally ({@link Selection.takeLiterally}): in `extract`, `list`, `verify`
 *   and `cat`, a path in the container (an entry, or a folder holding
 *   entries) is that path alone, from the root (`a.txt` is `a.txt`, not
 *   `sub/a.txt`; `a[1].txt` is not `a1.txt`), as tar takes member names; in
 *   `create`, a path in the source is taken literally but keeps the reach of a
 *   name (`--exclude node_modules` leaves out every one).
 * - Case and Unicode are compared as stored: no case folding, no NFC/NFD
 *   normalisation (a pattern typed in NFC does not select a name stored in
 *   NFD; `ctnr list` shows the names as stored).
 *
 * The glob syntax is that of [picomatch](https://www.npmjs.com/package/picomatch)
 * (`dot`, no negation, no extglobs).
 *
 * @module
 */

// A full specifier: ctnr runs from a URL, without its deno.json.
// @ts-types="npm:@types/picomatch@4.0.3"
// deno-lint-ignore no-import-prefix
import picomatch from "npm:picomatch@4.0.7";
import { UsageError } from "./errors.ts";

/** One pattern, as compiled. */
interface Pattern {
  /** The pattern as given, for messages. */
  text: string;
  /** The pattern with its anchor and trailing `/` trimmed. */
  glob: string;
  /** Matched against the whole relpath (it holds `/`, or was anchored), else against a name. */
  anchored: boolean;
  /** A trailing `/`: it selects folders only. */
  foldersOnly: boolean;
  /** Whether it holds glob characters (and was not taken literally since). */
  globbing: boolean;
  test: (path: string) => boolean;
}

/** Options given to picomatch for every pattern (see the module doc). */
const GLOB_OPTIONS = {
  dot: true,
  nonegate: true,
  noextglob: true,
  windows: false,
  posix: true, // `[!...]` as `[^...]`
  flags: "u", // `?` and `[...]` take a code point, not half of one
} as const;

/**
 * A list of patterns, and which relpaths it selects (see the module doc for the rules). It
 * remembers which patterns selected something, so that a pattern that selected nothing can be
 * named ({@link Selection.unmatched}), as tar names a member not found.
 *
 * @example Select by name, by path and by folder
 * ```ts
 * import { Selection } from "./selection.ts";
 * const selection = new Selection(["*.md", "/src/lib", "a[1].txt", "nothing"]);
 * if (!selection.matches("docs/guide/intro.md")) throw new Error("a name at any depth");
 * if (!selection.matches("src/lib/x/y.ts")) throw new Error("everything under a folder");
 * if (selection.matches("test/src/lib/y.ts")) throw new Error("anchored at the root");
 * if (!selection.matches("a[1].txt")) throw new Error("an exact name, taken literally");
 * if (selection.unmatched.join() !== "nothing") throw new Error("one pattern selected nothing");
 * ```
 */
export class Selection {
  readonly #patterns: Pattern[];
  /** 1 for each pattern that selected something. */
  readonly #used: Uint8Array;
  /** The folder whose result is cached (entries come a folder's at a time). */
  #folder: string | undefined;
  #folderSelected = false;

  /**
   * Compile `patterns`.
   *
   * @param patterns the patterns, as the user typed them
   * @throws {UsageError} naming a pattern that is empty, or `/` or `.` alone (it names no
   *   path: give no pattern to take everything), or that the glob library refuses
   */
  constructor(patterns: readonly string[]) {
    this.#patterns = patterns.map(compile);
    this.#used = new Uint8Array(patterns.length);
  }

  /** Whether there are no patterns (then {@link Selection.matches} is always `false`). */
  get empty(): boolean {
    return this.#patterns.length === 0;
  }

  /**
   * Whether a pattern selects `relpath`: it matches the relpath itself or one of its folders.
   * Every pattern that matches is marked as used. Fast when consecutive calls share a folder
   * (the folder's result is kept).
   *
   * @param relpath a relpath, `/`-separated, as stored
   * @param isFolder whether `relpath` is a folder (a pattern ending in `/` selects folders only;
   *   the folders above `relpath` are folders anyway)
   * @returns `true` when selected
   */
  matches(relpath: string, isFolder = false): boolean {
    const slash = relpath.lastIndexOf("/");
    const folder = slash < 0 ? "" : relpath.slice(0, slash);
    if (folder !== this.#folder) {
      // Every pattern not used yet is tried on each folder above, once: a pattern that
      // selects only something deeper must not be skipped for a folder already selected.
      const selected = folder !== "" && this.matches(folder, true);
      this.#folder = folder;
      this.#folderSelected = selected;
    }
    let selected = this.#folderSelected;
    const name = slash < 0 ? relpath : relpath.slice(slash + 1);
    for (let i = 0; i < this.#patterns.length; i++) {
      if (selected && this.#used[i] === 1) continue; // known: nothing more to learn from it
      const pattern = this.#patterns[i]!;
      if (pattern.foldersOnly && !isFolder) continue;
      const path = pattern.anchored ? relpath : name;
      if (path === pattern.glob || pattern.test(path)) {
        this.#used[i] = 1;
        selected = true;
      }
    }
    return selected;
  }

  /**
   * The patterns, as they are matched (`/a[1].txt` is `a[1].txt`), that
   * {@link Selection.takeLiterally} would change when they turn out to be a path: those with
   * glob characters and, `fromRoot`, those without `/` too.
   *
   * @param options `fromRoot`: as {@link Selection.takeLiterally} would take them
   * @returns the patterns' paths
   */
  literalCandidates(options: { fromRoot?: boolean } = {}): Set<string> {
    const fromRoot = options.fromRoot ?? false;
    return new Set(
      this.#patterns.filter((p) => p.globbing || (fromRoot && !p.anchored)).map((p) => p.glob),
    );
  }

  /**
   * Take the patterns equal to `path` as that path, since it is one the run knows (an entry's
   * relpath, a folder in the container, a path in the source): no glob any more (`a[1].txt` is
   * then not `a1.txt`) and, with `fromRoot`, matched against the relpath from the root even
   * without a `/` (`a.txt` is then not `sub/a.txt`). Call it before the first
   * {@link Selection.matches}.
   *
   * @param path a path that one of {@link Selection.literalCandidates} equals
   * @param options `fromRoot`: anchor them at the root
   */
  takeLiterally(path: string, options: { fromRoot?: boolean } = {}): void {
    for (const pattern of this.#patterns) {
      if (pattern.glob !== path) continue;
      pattern.globbing = false;
      pattern.test = NEVER;
      if (options.fromRoot) pattern.anchored = true;
    }
  }

  /** The patterns, as given, that have selected nothing so far, in the order given. */
  get unmatched(): string[] {
    return this.#patterns.filter((_, i) => this.#used[i] === 0).map((p) => p.text);
  }
}

/** Parse one pattern (see the module doc). */
function compile(text: string): Pattern {
  let glob = text.replace(/\/{2,}/g, "/");
  let anchored = false;
  for (;;) {
    if (glob.startsWith("/")) glob = glob.slice(1);
    else if (glob.startsWith("./")) glob = glob.slice(2);
    else break;
    anchored = true;
  }
  const foldersOnly = glob.endsWith("/");
  glob = glob.replace(/\/+$/, "");
  if (glob === "" || glob === ".") {
    throw new UsageError(
      `Pattern "${text}" names no path (give no pattern to select every entry)`,
    );
  }
  anchored ||= glob.includes("/");
  let test: (path: string) => boolean;
  try {
    test = picomatch(glob, GLOB_OPTIONS);
  } catch (error) {
    throw new UsageError(`Pattern "${text}" is not a valid glob: ${(error as Error).message}`);
  }
  const globbing = picomatch.scan(glob, GLOB_OPTIONS).isGlob;
  return { text, glob, anchored, foldersOnly, globbing, test };
}

/** The test of a pattern taken literally: only its literal comparison counts. */
const NEVER = () => false;
