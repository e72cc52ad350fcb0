import assert from "node:assert/strict";
import { FOLDER, PathGuard, pathKey } from "../lib/safety/path_guard.ts";

const FILE = 2;
const LINK = 1;

/** Admitted in order; each row: relpath, value, and the refusal expected (a regex), if any. */
const CASES: [string, [string, number, RegExp?][]][] = [
  ["distinct files and folders", [["a/b.txt", FILE], ["a/c.txt", FILE], ["d", FOLDER], [
    "e",
    LINK,
  ]]],
  ["a duplicate", [["a", FILE], ["a", FILE, /same path/]]],
  ["a duplicate folder", [["d", FOLDER], ["d", FOLDER, /same path/]]],
  ["names equal after NFC", [["caf\u00e9", FILE], ["cafe\u0301", FILE, /NFC/]]],
  ["a file where a folder is needed", [["a/b", FILE], ["a", FILE, /other entries lie below it/]]],
  ["a link where a folder is needed", [["a/b", FILE], ["a", LINK, /other entries lie below it/]]],
  ["a path through a file", [["a", FILE], ["a/b", FILE, /its folder "a" is a file or link/]]],
  ["a path through a link, deeper", [["x/l", LINK], ["x/l/y/z", FILE, /its folder "x\/l"/]]],
  ["a folder entry above files", [["a/b", FILE], ["a", FOLDER]]],
  ["case differs: two names", [["Readme", FILE], ["README", FILE]]],
];

for (const [what, rows] of CASES) {
  Deno.test(`PathGuard.admit: ${what}`, () => {
    const guard = new PathGuard();
    for (const [relpath, value, refused] of rows) {
      const check = guard.check(relpath, value);
      const clash = guard.admit(relpath, value);
      assert.equal(check, clash, `check and admit agree on "${relpath}"`);
      if (refused) assert.match(clash ?? "admitted", refused, relpath);
      else assert.equal(clash, undefined, relpath);
    }
  });
}

Deno.test("PathGuard with foldCase refuses names equal after case folding", () => {
  const guard = new PathGuard(true);
  assert.equal(guard.admit("Readme.txt", FILE), undefined);
  assert.match(guard.admit("README.TXT", FILE)!, /case folding/);
  assert.match(guard.admit("readme.txt/x", FILE)!, /is a file or link/);
});

Deno.test("PathGuard.check records nothing; admit keeps the value get returns", () => {
  const guard = new PathGuard();
  assert.equal(guard.check("a/b", FILE), undefined);
  assert.equal(guard.size, 0);
  assert.equal(guard.admit("a/b", FILE), undefined, "check left no trace");
  assert.equal(guard.admit("a", FILE)?.includes("below it"), true, "admit recorded the folder a");
  assert.equal(guard.get("a/b"), FILE);
  assert.equal(guard.get("missing"), undefined);
  // A refused relpath leaves no trace either.
  assert.ok(guard.admit("a/b/c", FILE));
  assert.equal(guard.admit("a/b2", FILE), undefined);
  assert.equal(guard.size, 2);
});

Deno.test("pathKey is the NFC form, lower-cased only when case is folded", () => {
  assert.equal(pathKey("Cafe\u0301", false), "Caf\u00e9");
  assert.equal(pathKey("Cafe\u0301", true), "caf\u00e9");
  assert.equal(pathKey("plain/ASCII", false), "plain/ASCII");
});
