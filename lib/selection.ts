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
 * The glob syntax is lib/glob.ts's (`*`, `?`, `[...]`, `**`, `{x,y}`, `\`; every other
 * character is itself), compiled so that a test costs at most about the relpath's length times
 * the pattern's: no pattern can hang a run. Patterns without a wildcard are looked up in hash
 * tables (a name, a relpath, the folders above it), and the others of one kind are tried as one
 * regular expression, so many patterns cost little more than a few.
 *
 * @module
 */

import { compileGlob, isGlob } from "./glob.ts";
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
  /** Whether it holds a wildcard or braces (and was not taken literally since). */
  globbing: boolean;
  /** The exact strings it matches: its text, and its alternatives without a wildcard. */
  literals: string[];
  /** Of a name pattern, the texts that end (`*.tmp`) or start (`build-*`) what it matches. */
  suffixes: string[];
  prefixes: string[];
  /** The regular-expression source of its other alternatives (lib/glob.ts), if any. */
  source: string | undefined;
}

/**
 * A list of patterns, and which relpaths it selects (see the module doc for the rules). It
 * remembers which patterns selected something, so that a pattern that selected nothing can be
 * named ({@link Selection.unmatched}), as tar names a member not found.
 *
 * @example Select by name, by path and by folder
 * ```ts
 * import { Selection } from "@ctnr/ctnr";
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
  #unused: number;
  /** The lookup tables, built at the first {@link Selection.matches}. */
  #kinds: Kind[] | undefined;
  /** The folder whose result is cached (entries come a folder's at a time). */
  #folder: string | undefined;
  #folderSelected = false;

  /**
   * Compile `patterns`.
   *
   * @param patterns the patterns, as the user typed them
   * @throws {UsageError} naming a pattern that is empty, or `/` or `.` alone (it names no
   *   path: give no pattern to take everything), or that is not a valid glob (see
   *   {@link compileGlob}: too long, too many alternatives, an unknown class or a range out of
   *   order)
   */
  constructor(patterns: readonly string[]) {
    this.#patterns = patterns.map(compile);
    this.#used = new Uint8Array(patterns.length);
    this.#unused = patterns.length;
  }

  /** Whether there are no patterns (then {@link Selection.matches} is always `false`). */
  get empty(): boolean {
    return this.#patterns.length === 0;
  }

  /**
   * Whether a pattern selects `relpath`: it matches the relpath itself or one of its folders.
   * Every pattern that matches is marked as used. Fast when consecutive calls share a folder
   * (the folder's result is kept); a pattern without a wildcard costs a hash lookup, and the
   * others of one kind one regular-expression test together.
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
    if (selected && this.#unused === 0) return true; // nothing more to learn
    const kinds = this.#kinds ??= this.#index();
    const name = slash < 0 ? relpath : relpath.slice(slash + 1);
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[k]!;
      if (kind.foldersOnly && !isFolder) continue;
      if (kind.test(kind.anchored ? relpath : name, selected, this.#mark)) selected = true;
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
   * without a `/` (`a.txt` is then not `sub/a.txt`). A pattern ending in `/` (folders only) is
   * taken so only when `path` is a folder: `data/` stays the folders named `data` when `data`
   * at the top is a file. Call it before the first {@link Selection.matches}.
   *
   * @param path a path that one of {@link Selection.literalCandidates} equals
   * @param options `fromRoot`: anchor them at the root; `folder`: `path` is a folder
   *   (@default false)
   */
  takeLiterally(path: string, options: { fromRoot?: boolean; folder?: boolean } = {}): void {
    for (const pattern of this.#patterns) {
      if (pattern.glob !== path || (pattern.foldersOnly && !options.folder)) continue;
      pattern.globbing = false;
      pattern.literals = [pattern.glob];
      pattern.suffixes = [];
      pattern.prefixes = [];
      pattern.source = undefined;
      if (options.fromRoot) pattern.anchored = true;
    }
  }

  /** The patterns, as given, that have selected nothing so far, in the order given. */
  get unmatched(): string[] {
    return this.#patterns.filter((_, i) => this.#used[i] === 0).map((p) => p.text);
  }

  /** Mark pattern `i` as used. */
  #mark = (i: number): void => {
    if (this.#used[i] === 1) return;
    this.#used[i] = 1;
    this.#unused--;
  };

  /** The patterns sorted into the four kinds: by name or relpath, folders only or not. */
  #index(): Kind[] {
    const kinds: Kind[] = [];
    for (const anchored of [false, true]) {
      for (const foldersOnly of [false, true]) {
        const members = this.#patterns
          .map((pattern, i) => ({ pattern, i }))
          .filter(({ pattern: p }) => p.anchored === anchored && p.foldersOnly === foldersOnly);
        if (members.length > 0) kinds.push(new Kind(anchored, foldersOnly, members, this.#used));
      }
    }
    return kinds;
  }
}

/**
 * The patterns of one kind (matched against names or relpaths, folders only or not): the
 * exact strings in a hash table, the globs as one regular expression, and one of those not
 * used yet, rebuilt as they get used, so that a subject costs one or two tests however many
 * patterns there are.
 */
class Kind {
  /** Exact string: the patterns it is a literal of. */
  readonly #exact = new Map<string, number[]>();
  /** The texts that end (start) what a pattern matches: the patterns, and the texts' lengths. */
  readonly #suffixes = new Affixes();
  readonly #prefixes = new Affixes();
  /** Pattern number and source of each glob. */
  readonly #globs: { i: number; source: string; regex?: RegExp }[] = [];
  /** Every glob, joined. */
  readonly #any: RegExp | undefined;
  /** The globs not used yet, joined; `undefined` when to be rebuilt. */
  #unused: RegExp | undefined;
  #unusedGlobs: { i: number; source: string; regex?: RegExp }[];

  constructor(
    readonly anchored: boolean,
    readonly foldersOnly: boolean,
    members: { pattern: Pattern; i: number }[],
    readonly used: Uint8Array,
  ) {
    for (const { pattern, i } of members) {
      for (const literal of pattern.literals) add(this.#exact, literal, i);
      for (const suffix of pattern.suffixes) this.#suffixes.add(suffix, i);
      for (const prefix of pattern.prefixes) this.#prefixes.add(prefix, i);
      if (pattern.source !== undefined) this.#globs.push({ i, source: pattern.source });
    }
    this.#any = this.#globs.length === 0 ? undefined : join(this.#globs);
    this.#unusedGlobs = this.#globs;
    this.#unused = this.#any;
  }

  /**
   * Whether a pattern of this kind matches `subject`; each that does and was not used yet is
   * marked with `mark`.
   *
   * @param subject a name or a relpath
   * @param selected already selected (by a folder above): only unused patterns are looked for
   * @param mark called with the number of each pattern newly used
   */
  test(subject: string, selected: boolean, mark: (i: number) => void): boolean {
    let found = false;
    const exact = this.#exact.get(subject);
    if (exact !== undefined) {
      for (const i of exact) mark(i);
      found = true;
    }
    if (this.#suffixes.find(subject, true, mark)) found = true;
    if (this.#prefixes.find(subject, false, mark)) found = true;
    if (this.#any === undefined) return found;
    if (this.#unused === undefined) {
      this.#unusedGlobs = this.#unusedGlobs.filter(({ i }) => this.used[i] === 0);
      this.#unused = this.#unusedGlobs.length === 0 ? NEVER : join(this.#unusedGlobs);
    }
    if (this.#unused.test(subject)) {
      // Which ones: at most once for each pattern over the run (it is then used).
      for (const glob of this.#unusedGlobs) {
        if (this.used[glob.i] === 1) continue;
        glob.regex ??= join([glob]);
        if (glob.regex.test(subject)) mark(glob.i);
      }
      this.#unused = undefined;
      return true;
    }
    return found || selected || this.#any.test(subject);
  }
}

/** Texts that end (or start) what patterns match, looked up by the lengths there are. */
class Affixes {
  readonly #map = new Map<string, number[]>();
  #lengths: number[] = [];

  add(text: string, i: number): void {
    add(this.#map, text, i);
    if (!this.#lengths.includes(text.length)) this.#lengths.push(text.length);
  }

  /** Mark each pattern whose text ends (`atEnd`) or starts `subject`; whether there was one. */
  find(subject: string, atEnd: boolean, mark: (i: number) => void): boolean {
    let found = false;
    for (const length of this.#lengths) {
      if (length > subject.length) continue;
      const part = atEnd ? subject.slice(subject.length - length) : subject.slice(0, length);
      const hits = this.#map.get(part);
      if (hits === undefined) continue;
      for (const i of hits) mark(i);
      found = true;
    }
    return found;
  }
}

/** Add pattern `i` to the list of `key`. */
function add(map: Map<string, number[]>, key: string, i: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [i]);
  else if (list[list.length - 1] !== i) list.push(i);
}

/** One regular expression matching what any of `globs` matches, whole. */
function join(globs: readonly { source: string }[]): RegExp {
  return new RegExp(`^(?:${globs.map((g) => g.source).join("|")})$`, "u");
}

/** A regular expression that matches nothing. */
const NEVER = /(?!)/;

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
  const compiled = compileGlob(glob, { path: anchored });
  // The text itself is a literal too: `a[1].txt` selects the name `a[1].txt`.
  const literals = [...new Set([glob, ...compiled.literals])];
  return {
    text,
    glob,
    anchored,
    foldersOnly,
    globbing: isGlob(glob),
    literals,
    suffixes: compiled.suffixes,
    prefixes: compiled.prefixes,
    source: compiled.source,
  };
}
