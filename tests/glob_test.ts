import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix
import fc from "npm:fast-check@4.11.0";
import { compileGlob, isGlob, MAX_ALTERNATIVES } from "../lib/glob.ts";
import { UsageError } from "../mod.ts";

/** Whether `glob` matches `subject` whole, as lib/selection.ts tests it. */
function matches(glob: string, subject: string, path = glob.includes("/")): boolean {
  const compiled = compileGlob(glob, { path });
  if (compiled.literals.includes(subject)) return true;
  if (compiled.suffixes.some((suffix) => subject.endsWith(suffix))) return true;
  if (compiled.prefixes.some((prefix) => subject.startsWith(prefix))) return true;
  return compiled.source !== undefined &&
    new RegExp(`^(?:${compiled.source})$`, "u").test(subject);
}

/**
 * A plain backtracking matcher of the same rules, for small patterns made of `a`, `b`, `*`,
 * `?`, `[ab]`, `[!a]`, `/` and `**`: exponential, and obviously right.
 */
function reference(glob: string, subject: string, path: boolean): boolean {
  const tokens = (component: string): string[] => component.match(/\[!?[ab]+\]|./gu) ?? [];
  const one = (token: string, char: string): boolean => {
    if (token === "?") return true;
    if (token.startsWith("[!")) return !token.slice(2, -1).includes(char);
    if (token.startsWith("[")) return token.slice(1, -1).includes(char);
    return token === char;
  };
  const component = (t: string[], s: string[]): boolean => {
    if (t.length === 0) return s.length === 0;
    if (t[0] === "*") return [...s.keys(), s.length].some((n) => component(t.slice(1), s.slice(n)));
    return s.length > 0 && one(t[0]!, s[0]!) && component(t.slice(1), s.slice(1));
  };
  const components = (p: string[], s: string[]): boolean => {
    if (p.length === 0) return s.length === 0;
    if (/^\*{2,}$/.test(p[0]!)) {
      return [...s.keys(), s.length].some((n) => components(p.slice(1), s.slice(n)));
    }
    return s.length > 0 && component(tokens(p[0]!), [...s[0]!]) &&
      components(p.slice(1), s.slice(1));
  };
  if (!path) return component(tokens(glob), [...subject]);
  return components(glob.split("/"), subject.split("/"));
}

Deno.test("compileGlob matches as a plain backtracking matcher does (property)", () => {
  const token = fc.constantFrom("a", "b", "*", "?", "[ab]", "[!a]", "/", "**");
  const pattern = fc.array(token, { minLength: 1, maxLength: 7 }).map((t) => t.join(""))
    .filter((p) => !p.startsWith("/") && !p.endsWith("/") && !p.includes("//"));
  const name = fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 4 })
    .map((c) => c.join(""));
  const relpath = fc.array(name, { minLength: 1, maxLength: 4 }).map((n) => n.join("/"));
  fc.assert(
    fc.property(pattern, relpath, (glob, subject) => {
      const path = glob.includes("/");
      const s = path ? subject : subject.replaceAll("/", "");
      assert.equal(matches(glob, s, path), reference(glob, s, path), `${glob} on ${s}`);
    }),
    { numRuns: 3000 },
  );
});

/**
 * Patterns that took seconds to forever with picomatch's expressions: [glob, a subject it does
 * not match, one it matches].
 */
const PATHOLOGICAL: [string, string, string][] = [
  ["*a*a*a*a*a*a*a*a*a*ab", "a".repeat(255), `${"a".repeat(254)}b`],
  ["*a*a*a*a*a*a*a*ab", "a".repeat(60), `${"a".repeat(60)}b`],
  ["*_*_*_*_*.csv", "x_".repeat(122), `${"x_".repeat(122)}.csv`],
  [`*${"a*".repeat(1000)}b`, "a".repeat(30_000), `${"a".repeat(30_000)}b`],
  ["**/a/**/a/**/a/**/a/**/a/**/a/**/a/b", Array(60).fill("a").join("/"), "a/".repeat(60) + "b"],
  [`${"**/a/".repeat(50)}b`, Array(500).fill("a").join("/"), "a/".repeat(500) + "b"],
  [
    "**/*a*a*a*a*a*b/**/*a*a*a*a*a*b",
    Array(50).fill("a".repeat(40)).join("/"),
    Array(50).fill("a".repeat(40)).join("/") + "b/ab/aaaaab",
  ],
];

for (const [glob, other, subject] of PATHOLOGICAL) {
  Deno.test(`compileGlob bounds the cost of "${glob.slice(0, 40)}" (no exponential backtracking)`, () => {
    const start = performance.now();
    assert.equal(matches(glob, other), false);
    assert.equal(matches(glob, subject), true);
    // Minutes or more with picomatch; a few milliseconds here. The bound leaves room for a
    // slow machine.
    assert.ok(performance.now() - start < 2000, `${performance.now() - start} ms`);
  });
}

Deno.test("compileGlob takes every character but * ? [ { \\ as itself (picomatch read some as regular-expression syntax)", () => {
  for (
    const [glob, subject] of [
      ["Copy (2)*", "Copy (2).txt"],
      ["(x)", "(x)"],
      ["a|b*", "a|b.txt"],
      ["c++*", "c++.h"],
      ["+(a)", "+(a)"],
      ["$RECYCLE*", "$RECYCLE.BIN"],
      ["x^y*", "x^y"],
      ["\\t*", "tab"],
      ["a\\", "a\\"],
      ["{a,b", "{a,b"],
      ["a}*", "a}"],
      ["{x}", "{x}"],
    ]
  ) {
    assert.equal(matches(glob!, subject!), true, `${glob} on ${subject}`);
  }
  assert.equal(matches("(x)", "x"), false);
  assert.equal(matches("\\t*", "\tab"), false);
  assert.equal(matches("{x}", "x"), false);
});

Deno.test("compileGlob gives a name pattern that is a star and text (or text and a star) as that text, to be looked up", () => {
  assert.deepEqual(compileGlob("*.{tmp,bak}").suffixes, [".tmp", ".bak"]);
  assert.deepEqual(compileGlob("{build,tmp}-*").prefixes, ["build-", "tmp-"]);
  assert.equal(compileGlob("*.tmp").source, undefined);
  assert.deepEqual(compileGlob("*.tmp", { path: true }).suffixes, []); // a relpath: a regex
});

Deno.test("compileGlob expands braces, nested and across /, into literals and globs", () => {
  assert.deepEqual(compileGlob("{a,b{c,d}}").literals, ["a", "bc", "bd"]);
  assert.equal(compileGlob("{a,b{c,d}}").source, undefined);
  const glob = compileGlob("{x/*.md,y}", { path: true });
  assert.deepEqual(glob.literals, ["y"]);
  assert.equal(matches("{x/*.md,y}", "x/a.md", true), true);
  assert.equal(matches("{x/*.md,y}", "z/a.md", true), false);
  assert.equal(matches("*{abc,b}*c", "abc"), true); // the shorter alternative leaves the c
});

Deno.test("compileGlob refuses a pattern whose braces expand too far, an unknown class, a range out of order", () => {
  assert.throws(() => compileGlob("{a,b}".repeat(11)), UsageError); // 2,048 alternatives
  assert.equal(compileGlob("{a,b}".repeat(10)).literals.length, MAX_ALTERNATIVES);
  assert.throws(() => compileGlob("[[:nope:]]"), /unknown class "\[:nope:\]"/);
  assert.throws(() => compileGlob("[z-a]"), /range "z-a" out of order/);
  assert.throws(() => compileGlob("a".repeat(40_000)), /longer than 32767 characters/);
});

Deno.test("compileGlob takes ? and a class as one code point, and never matches / but with **", () => {
  assert.equal(matches("?.txt", "😀.txt"), true);
  assert.equal(matches("[😀x].txt", "😀.txt"), true);
  assert.equal(matches("[!x].txt", "😀.txt"), true);
  assert.equal(matches("a?b", "a/b", true), false);
  assert.equal(matches("a[/]b", "a/b", true), false);
  assert.equal(matches("a[!x]b", "a/b", true), false);
  assert.equal(matches("a*b", "a/b", true), false);
  assert.equal(matches("a/**/b", "a/x/y/b"), true);
  assert.equal(matches("a/**", "a"), true);
  assert.equal(matches("**/b", "b"), true);
});

Deno.test("isGlob is true only with an unescaped wildcard or braces with a comma", () => {
  for (const glob of ["*", "a?", "[ab]", "{a,b}", "**/x"]) assert.equal(isGlob(glob), true, glob);
  for (const glob of ["a", "\\*", "{x}", "a[", "(x)", "a b"]) {
    assert.equal(isGlob(glob), false, glob);
  }
});
