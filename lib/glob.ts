/**
 * Glob patterns compiled to regular expressions whose matching time is bounded: at most about
 * the subject's length times the pattern's length for each of its alternatives, whatever the
 * pattern and the subject, so no pattern can hang a run (lib/selection.ts uses it; the rules
 * users see are in README "Selecting entries").
 *
 * The syntax: `*` (any characters but `/`), `?` (one character, a code point, not `/`),
 * `[abc]`, `[a-z]`, `[!a]` or `[^a]`, `[[:alpha:]]` (the POSIX classes of the C locale), `**`
 * as a whole component (any number of components, `/` included), `{x,y}` (either, nested, `/`
 * allowed inside; `{x}` without a comma is literal), `\` (the next character literally). Every
 * other character is itself: `(`, `)`, `|`, `+`, `@`, `!`, `#`, `~`, spaces and any Unicode.
 * An unclosed `[` or `{` is literal.
 *
 * Why not a glob library's regular expression: picomatch and minimatch compile `*` to the lazy
 * `[^/]*?`, and a backtracking engine (V8's) tries every split of the subject between the
 * stars: `*a*a*a*a*a*a*a*a*a*ab` ran for minutes on a name of 60 `a`s, and
 * `**\/a/**\/a/...` likewise across components. Here every star but the last of a component is
 * an atomic group (a lookahead captured, then consumed by its back-reference) that takes the
 * leftmost occurrence of the text up to the next star, which is always right for a glob (an
 * earlier end leaves more for the star after it); each `**` but the last takes the leftmost
 * run of components the same way. Braces are expanded into alternatives first (so that the
 * text between two stars has one length), at most {@link MAX_ALTERNATIVES} of them. Without
 * backtracking into earlier choices, a test costs about the subject's length times the
 * pattern's. picomatch also read `(x)` as a regular-expression group (`Copy (2).txt` was not
 * matched by `Copy (2)*`), `\t` as a tab, and gave a never-matching expression for a pattern
 * whose expression did not compile: none of that here.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** The most alternatives a pattern's braces may expand to (`{a,b}{c,d}` is four). */
export const MAX_ALTERNATIVES = 1024;

/** The longest pattern, in UTF-16 code units: the longest relpath ctnr stores. */
export const MAX_PATTERN_LENGTH = 32_767;

/** A glob, compiled by {@link compileGlob}. */
export interface CompiledGlob {
  /**
   * The alternatives without a wildcard, as the exact strings they match, unescaped (`{a,b}`
   * gives `a` and `b`, `\*` gives `*`).
   */
  literals: string[];
  /**
   * Of a glob matched against names, the alternatives that are a star and then text (`*.tmp`):
   * their text, which ends the names they match (looked up, not tested, by lib/selection.ts).
   */
  suffixes: string[];
  /** Likewise the alternatives that are text and then a star (`build-*`): their text. */
  prefixes: string[];
  /**
   * The other alternatives as one regular expression's source, without anchors, for the flag
   * `u` (its groups are named uniquely in the process, so that sources can be joined with `|`);
   * `undefined` when every alternative is literal.
   */
  source: string | undefined;
}

/** Options of {@link compileGlob}. */
export interface GlobOptions {
  /**
   * Matched against a whole relpath, `/`-separated (`**` then crosses `/`), rather than a
   * single name (where `**` is `*`). @default false
   */
  path?: boolean;
}

/**
 * Compile a glob (see the module doc for the syntax).
 *
 * @param glob the pattern, without a leading or trailing `/`
 * @param options `path`: matched against relpaths rather than names
 * @returns its literal alternatives and the regular-expression source of the others
 * @throws {UsageError} when it is longer than {@link MAX_PATTERN_LENGTH}, its braces expand to
 *   more than {@link MAX_ALTERNATIVES} alternatives, it names an unknown `[[:class:]]` or a
 *   range out of order (`[z-a]`)
 *
 * @example A literal, a suffix and a wildcard alternative
 * ```ts
 * import { compileGlob } from "./glob.ts";
 * const glob = compileGlob("{README,*.md,v[0-9]*}");
 * if (glob.literals.join() !== "README") throw new Error("one literal");
 * if (glob.suffixes.join() !== ".md") throw new Error("one suffix");
 * if (!new RegExp(`^(?:${glob.source})$`, "u").test("v2.txt")) throw new Error("a match");
 * ```
 */
export function compileGlob(glob: string, options: GlobOptions = {}): CompiledGlob {
  if (glob.length > MAX_PATTERN_LENGTH) {
    throw new UsageError(
      `Pattern "${glob.slice(0, 40)}..." is longer than ${MAX_PATTERN_LENGTH} characters`,
    );
  }
  const parser = new Parser([...glob], glob);
  const sequence = parser.parse(0, parser.chars.length);
  const count = countAlternatives(sequence);
  if (count > MAX_ALTERNATIVES) {
    throw new UsageError(
      `Pattern "${glob}" expands to more than ${MAX_ALTERNATIVES} alternatives (its braces)`,
    );
  }
  const literals: string[] = [];
  const suffixes: string[] = [];
  const prefixes: string[] = [];
  const sources: string[] = [];
  const text = (atoms: Atom[]) => atoms.map((atom) => atom.kind === "char" ? atom.value : "/");
  const plain = (atoms: Atom[]) => atoms.every((a) => a.kind === "char" || a.kind === "slash");
  for (const atoms of expand(sequence)) {
    const last = atoms.length - 1;
    if (plain(atoms)) {
      literals.push(text(atoms).join(""));
    } else if (!options.path && atoms[0]!.kind === "star" && plain(atoms.slice(1))) {
      suffixes.push(text(atoms.slice(1)).join(""));
    } else if (!options.path && atoms[last]!.kind === "star" && plain(atoms.slice(0, last))) {
      prefixes.push(text(atoms.slice(0, last)).join(""));
    } else {
      sources.push(options.path ? pathSource(atoms) : segmentSource(atoms));
    }
  }
  const source = sources.length === 0 ? undefined : sources.join("|");
  if (source !== undefined) {
    try {
      new RegExp(source, "u");
    } catch (error) {
      throw new UsageError(`Pattern "${glob}" is not a valid glob: ${(error as Error).message}`);
    }
  }
  return { literals, suffixes, prefixes, source };
}

/**
 * Whether a glob holds a wildcard or braces, i.e. is not just its own text unescaped.
 *
 * @param glob the pattern
 * @returns `true` when `*`, `?`, a closed `[...]` or a `{...}` with a comma is in it, unescaped
 */
export function isGlob(glob: string): boolean {
  const parser = new Parser([...glob], glob);
  return parser.parse(0, parser.chars.length).some((atom) => atom.kind !== "char");
}

interface Char {
  kind: "char";
  value: string;
}
type Atom =
  | Char
  | { kind: "any" } // ?
  | { kind: "class"; source: string } // [...]
  | { kind: "star"; count: number } // a run of *
  | { kind: "slash" }
  | { kind: "braces"; alternatives: Atom[][] };

/** The POSIX classes, in the C locale, as regular-expression class contents. */
const POSIX_CLASSES: Record<string, string> = {
  __proto__: null as unknown as string,
  alnum: "a-zA-Z0-9",
  alpha: "a-zA-Z",
  ascii: "\\x00-\\x7F",
  blank: " \\t",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "\\x21-\\x7E",
  lower: "a-z",
  print: "\\x20-\\x7E",
  punct: "!-\\/:-@\\[-`{-~",
  space: " \\t\\n\\r\\v\\f",
  upper: "A-Z",
  word: "a-zA-Z0-9_",
  xdigit: "0-9A-Fa-f",
};

/** A recursive-descent reader of a glob's code points into atoms. */
class Parser {
  constructor(readonly chars: string[], readonly text: string) {}

  /** The atoms of `chars[from, to)`. */
  parse(from: number, to: number): Atom[] {
    const atoms: Atom[] = [];
    const chars = this.chars;
    for (let i = from; i < to;) {
      const c = chars[i]!;
      if (c === "\\") {
        // A trailing `\` is itself.
        atoms.push({ kind: "char", value: i + 1 < to ? chars[i + 1]! : "\\" });
        i += 2;
      } else if (c === "*") {
        let end = i;
        while (end < to && chars[end] === "*") end++;
        atoms.push({ kind: "star", count: end - i });
        i = end;
      } else if (c === "?") {
        atoms.push({ kind: "any" });
        i++;
      } else if (c === "/") {
        atoms.push({ kind: "slash" });
        i++;
      } else if (c === "[") {
        const bracket = this.bracket(i, to);
        if (bracket === undefined) {
          atoms.push({ kind: "char", value: c });
          i++;
        } else {
          atoms.push({ kind: "class", source: bracket.source });
          i = bracket.end;
        }
      } else if (c === "{") {
        const commas = this.braces(i, to);
        if (commas === undefined) {
          atoms.push({ kind: "char", value: c });
          i++;
        } else {
          const alternatives: Atom[][] = [];
          for (let k = 0; k + 1 < commas.length; k++) {
            alternatives.push(this.parse(commas[k]! + 1, commas[k + 1]!));
          }
          atoms.push({ kind: "braces", alternatives });
          i = commas[commas.length - 1]! + 1;
        }
      } else {
        atoms.push({ kind: "char", value: c });
        i++;
      }
    }
    return atoms;
  }

  /**
   * The bracket expression opening at `at`: its class source and the index after its `]`, or
   * `undefined` when it is not closed before `to` (the `[` is then itself).
   */
  bracket(at: number, to: number): { source: string; end: number } | undefined {
    const chars = this.chars;
    let i = at + 1;
    const negated = chars[i] === "!" || chars[i] === "^";
    if (negated) i++;
    let items = "";
    for (let first = true; i < to; first = false) {
      let c = chars[i]!;
      if (c === "]" && !first) {
        // Never `/`: a negated class excludes it, a class listing it cannot match it.
        return { source: negated ? `[^/${items}]` : `(?!\\/)[${items}]`, end: i + 1 };
      }
      if (c === "[" && chars[i + 1] === ":") {
        const close = chars.indexOf(":", i + 2);
        if (close > 0 && close + 1 < to && chars[close + 1] === "]") {
          const name = chars.slice(i + 2, close).join("");
          const members = POSIX_CLASSES[name];
          if (members === undefined) {
            throw new UsageError(
              `Pattern "${this.text}" is not a valid glob: unknown class "[:${name}:]"`,
            );
          }
          items += members;
          i = close + 2;
          continue;
        }
      }
      if (c === "\\" && i + 1 < to) c = chars[++i]!;
      i++;
      if (chars[i] === "-" && i + 1 < to && chars[i + 1] !== "]") {
        let last = chars[i + 1]!;
        i += 2;
        if (last === "\\" && i < to) last = chars[i++]!;
        if (last.codePointAt(0)! < c.codePointAt(0)!) {
          throw new UsageError(
            `Pattern "${this.text}" is not a valid glob: range "${c}-${last}" out of order`,
          );
        }
        items += `${escapeInClass(c)}-${escapeInClass(last)}`;
      } else {
        items += escapeInClass(c);
      }
    }
    return undefined;
  }

  /**
   * The braces opening at `at`: the indexes of the `{`, of each top-level `,` and of the `}`,
   * or `undefined` when they do not close before `to` or hold no top-level comma (then the
   * `{` is itself, as in bash).
   */
  braces(at: number, to: number): number[] | undefined {
    const chars = this.chars;
    const marks = [at];
    let depth = 0;
    for (let i = at + 1; i < to; i++) {
      const c = chars[i];
      if (c === "\\") i++;
      else if (c === "[") {
        const bracket = this.bracket(i, to);
        if (bracket !== undefined) i = bracket.end - 1;
      } else if (c === "{") depth++;
      else if (c === "," && depth === 0) marks.push(i);
      else if (c === "}") {
        if (depth > 0) depth--;
        else {
          marks.push(i);
          return marks.length > 2 ? marks : undefined;
        }
      }
    }
    return undefined;
  }
}

/** How many alternatives `atoms` expands to (capped just past the limit). */
function countAlternatives(atoms: Atom[]): number {
  let count = 1;
  for (const atom of atoms) {
    if (atom.kind !== "braces") continue;
    let sum = 0;
    for (const alternative of atom.alternatives) sum += countAlternatives(alternative);
    count = Math.min(count * sum, MAX_ALTERNATIVES + 1);
  }
  return count;
}

/** The brace-free sequences `atoms` stands for, in order. */
function expand(atoms: Atom[]): Atom[][] {
  let results: Atom[][] = [[]];
  for (const atom of atoms) {
    if (atom.kind !== "braces") {
      for (const result of results) result.push(atom);
      continue;
    }
    const next: Atom[][] = [];
    for (const alternative of atom.alternatives) {
      for (const tail of expand(alternative)) {
        for (const result of results) next.push([...result, ...tail]);
      }
    }
    results = next;
  }
  return results;
}

/** A unique group name in the process: sources of several globs can be joined. */
let groups = 0;

/**
 * The source of one component's atoms (no `slash`, no `braces`): every star but the last an
 * atomic group taking the leftmost occurrence of the text after it.
 *
 * @param atoms the component
 */
function segmentSource(atoms: Atom[]): string {
  // The runs of text between stars.
  const runs: Atom[][] = [[]];
  for (const atom of atoms) {
    if (atom.kind === "star") runs.push([]);
    else runs[runs.length - 1]!.push(atom);
  }
  let source = runSource(runs[0]!);
  for (let k = 1; k < runs.length; k++) {
    const run = runSource(runs[k]!);
    if (k === runs.length - 1) source += `[^/]*${run}`; // the last: its end is the component's
    else if (run !== "") {
      const name = `g${groups++}`;
      source += `(?=(?<${name}>[^/]*?${run}))\\k<${name}>`;
    }
  }
  return source;
}

/** The source of star-free atoms: each matches one code point. */
function runSource(atoms: Atom[]): string {
  let source = "";
  for (const atom of atoms) {
    if (atom.kind === "char") source += escape(atom.value);
    else if (atom.kind === "any") source += "[^/]";
    else if (atom.kind === "class") source += atom.source;
  }
  return source;
}

/**
 * The source of a brace-free alternative matched against a whole relpath: its components
 * joined by `/`, each `**` (a component that is only stars, two or more) any number of whole
 * components. Of `R0 ** R1 ** ... ** Rk` (each Ri components), R0 is matched from the start, Rk
 * up to the end, and each Ri between two `**` at its leftmost place, atomically (an earlier end leaves more to
 * the `**` after it, so it is always right).
 */
function pathSource(atoms: Atom[]): string {
  const components: Atom[][] = [[]];
  for (const atom of atoms) {
    if (atom.kind === "slash") components.push([]);
    else components[components.length - 1]!.push(atom);
  }
  const isGlobstar = (c: Atom[]) => c.length === 1 && c[0]!.kind === "star" && c[0]!.count >= 2;
  const runs: string[][] = [[]];
  for (const component of components) {
    if (isGlobstar(component)) runs.push([]);
    else runs[runs.length - 1]!.push(segmentSource(component));
  }
  const last = runs.length - 1;
  let source = runs[0]!.join("/");
  let started = runs[0]!.length > 0; // a component is matched: the next one needs a `/`
  for (let k = 1; k <= last; k++) {
    const run = runs[k]!.join("/");
    const slash = started ? "/" : "";
    if (k < last) {
      if (run === "") continue; // `**/**` is one `**`
      const name = `g${groups++}`;
      source += `${slash}(?=(?<${name}>(?:[^]*?/)??${run}(?=/|$)))\\k<${name}>`;
    } else if (run === "") {
      source += started ? "(?:/[^]*)?" : "[^]*"; // a trailing `**`: anything, or nothing
    } else {
      source += `${slash}(?:[^]*/)?${run}`;
    }
    started = true;
  }
  return source;
}

/** A literal code point in a regular expression with the flag `u`. */
function escape(char: string): string {
  return /[\^$\\.*+?()[\]{}|/]/.test(char) ? `\\${char}` : char;
}

/** A literal code point inside a character class with the flag `u`. */
function escapeInClass(char: string): string {
  return `\\u{${char.codePointAt(0)!.toString(16)}}`;
}
