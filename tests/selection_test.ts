import assert from "node:assert/strict";
import { Selection, UsageError } from "../mod.ts";

/** [pattern, relpath, is it a folder, selected?] */
const TABLE: [string, string, boolean, boolean][] = [
  // A name without "/": the name of any component, at any depth.
  ["*.tmp", "a.tmp", false, true],
  ["*.tmp", "x/y/a.tmp", false, true],
  ["*.tmp", "a.tmp.txt", false, false],
  ["node_modules", "node_modules", true, true],
  ["node_modules", "app/node_modules/pkg/index.js", false, true],
  ["node_modules", "app/node_modules_old/x.js", false, false],
  ["*.d", "a.d/b/c.txt", false, true], // a folder's name: its subtree
  ["b", "a/b/c", false, true],
  ["b", "ab/c", false, false],
  // A pattern with "/": the relpath from the root.
  ["docs/*.md", "docs/a.md", false, true],
  ["docs/*.md", "x/docs/a.md", false, false],
  ["docs/*.md", "docs/sub/a.md", false, false], // "*" does not cross "/"
  ["docs/*", "docs/sub/a.md", false, true], // ...but docs/sub is a folder it selects
  ["src/lib", "src/lib/x/y.ts", false, true], // a folder: its subtree
  ["src/lib", "src/lib", true, true],
  ["src/lib", "src/library.ts", false, false],
  ["src/lib", "test/src/lib/y.ts", false, false],
  // Anchored: "/" or "./" in front.
  ["/build", "build/out.js", false, true],
  ["/build", "app/build/out.js", false, false],
  ["./build", "build", true, true],
  ["./build", "app/build", true, false],
  ["//build", "build/x", false, true],
  ["/docs/*.md", "docs/a.md", false, true],
  // "**" crosses "/".
  ["**/*.md", "a.md", false, true],
  ["**/*.md", "a/b/c.md", false, true],
  ["a/**/z", "a/z", false, true],
  ["a/**/z", "a/b/c/z", false, true],
  ["a/**/z", "b/a/z", false, false],
  ["a/**", "a/b/c", false, true],
  ["*", "a/b/c", false, true], // the top folder matches: everything
  ["?.txt", "x/a.txt", false, true],
  ["?.txt", "ab.txt", false, false],
  // A trailing "/": folders only.
  ["cache/", "cache", true, true],
  ["cache/", "cache", false, false],
  ["cache/", "x/cache/y.bin", false, true],
  ["cache/", "x/cache", false, false],
  // Dot names match "*" (as tar).
  ["*", ".hidden", false, true],
  ["*.swp", "a/.x.swp", false, true],
  // An exact relpath or name is taken literally, whatever glob characters it holds.
  ["a[1].txt", "a[1].txt", false, true],
  ["a[1].txt", "a1.txt", false, true], // and as a glob too
  ["a[1].txt", "d/a[1].txt", false, true],
  ["d/a[1]", "d/a[1]/x.txt", false, true],
  ["{x}", "{x}", false, true],
  ["a[12].txt", "a2.txt", false, true],
  ["a[!1].txt", "a1.txt", false, false],
  ["a[!1].txt", "a2.txt", false, true],
  ["[[:digit:]].txt", "7.txt", false, true],
  ["*.{tmp,bak}", "a.bak", false, true],
  ["\\*", "*", false, true],
  ["\\*", "a", false, false],
  // No negation, no extglob: "!" and "@(" are characters.
  ["!a", "a", false, false],
  ["!a", "!a", false, true],
  // Case and Unicode as stored.
  ["README", "readme", false, false],
  ["café.txt".normalize("NFC"), "café.txt".normalize("NFC"), false, true],
  ["café.txt".normalize("NFC"), "café.txt".normalize("NFD"), false, false],
  ["caf*.txt", "d/café.txt".normalize("NFD"), false, true],
  ["日本/*", "日本/語.txt", false, true],
  ["?.txt", "語.txt", false, true],
  ["?.txt", "😀.txt", false, true], // one code point, two UTF-16 units
];

for (const [pattern, relpath, isFolder, expected] of TABLE) {
  Deno.test(
    `Selection ${expected ? "selects" : "does not select"} ${
      isFolder ? "folder" : "file"
    } "${relpath}" with "${pattern}"`,
    () => {
      assert.equal(new Selection([pattern]).matches(relpath, isFolder), expected);
    },
  );
}

Deno.test("Selection with several patterns selects what any of them selects", () => {
  const selection = new Selection(["*.md", "/src"]);
  assert.equal(selection.matches("a/b.md"), true);
  assert.equal(selection.matches("src/x.ts"), true);
  assert.equal(selection.matches("lib/x.ts"), false);
});

Deno.test("Selection names the patterns that selected nothing, also a pattern that only selects inside a folder another one selected", () => {
  const selection = new Selection(["docs", "docs/*.md", "*.txt", "missing", "docs/missing"]);
  for (const relpath of ["docs/a.md", "docs/b.png", "notes/n.txt", "x/y"]) {
    selection.matches(relpath);
  }
  assert.deepEqual(selection.unmatched, ["missing", "docs/missing"]);
});

Deno.test("Selection gives the same answers whatever order the relpaths come in (its folder cache)", () => {
  const relpaths = ["a/b/c.txt", "a/b/d.md", "a/x.md", "b/c/d/e.md", "a/b/e.md", "c.md", "a/b"];
  const patterns = ["a/b", "*.md", "/c.md"];
  const fresh = relpaths.map((r) => new Selection(patterns).matches(r));
  const reused = new Selection(patterns);
  for (const order of [relpaths, [...relpaths].reverse()]) {
    const answers = order.map((r) => reused.matches(r));
    assert.deepEqual(
      order === relpaths ? answers : answers.reverse(),
      fresh,
    );
  }
});

Deno.test("Selection refuses a pattern that names no path", () => {
  for (const pattern of ["", "/", "./", ".", "//"]) {
    assert.throws(() => new Selection([pattern]), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.equal(
        error.message,
        `Pattern "${pattern}" names no path (give no pattern to select every entry)`,
      );
      return true;
    });
  }
});

Deno.test("Selection without patterns is empty and selects nothing", () => {
  const selection = new Selection([]);
  assert.equal(selection.empty, true);
  assert.equal(selection.matches("a"), false);
  assert.deepEqual(selection.unmatched, []);
});
