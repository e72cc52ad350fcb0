import assert from "node:assert/strict";
import { FOLDER, PathGuard, pathKey, pathKeyer } from "../lib/safety/path_guard.ts";

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

/** Pairs a case-insensitive file system stores as one file, and which file systems do. */
const CASE_TWINS: [string, string, string][] = [
  ["\u03c3.txt", "\u03c2.txt", "sigma and final sigma (exFAT, NTFS: one upper case)"],
  ["\u03a3.txt", "\u03c2.txt", "capital sigma and final sigma"],
  ["stra\u00dfe", "STRASSE", "sharp s and ss (ext4 casefold, full folding)"],
  ["\u1e9e", "ss", "capital sharp s and ss"],
  ["\u017f.txt", "S.TXT", "long s and s"],
  ["\u212a.txt", "k.txt", "Kelvin sign and k"],
  ["\u2126", "\u03c9", "Ohm sign and omega"],
  ["\u0131d", "ID", "dotless i and I (exFAT, NTFS upper-case tables)"],
  ["\ufb01le", "FILE", "the fi ligature and fi"],
  ["\u1f88", "\u1f00\u03b9", "a Greek capital with prosgegrammeni and its folding"],
  ["Cafe\u0301/\u00c9T\u00c9", "caf\u00e9/e\u0301t\u00e9", "NFD and NFC, case differs"],
  ["\u00c5ngstr\u00f6m", "\u212bngstro\u0308m", "Angstrom sign, NFD"],
];

for (const [a, b, what] of CASE_TWINS) {
  Deno.test(`pathKey folds case fully (case-insensitive twins refused): ${what}`, () => {
    assert.equal(pathKey(a, true), pathKey(b, true));
    const guard = new PathGuard(true);
    assert.equal(guard.admit(a, FILE), undefined);
    assert.match(guard.admit(b, FILE)!, /case folding/);
  });
}

Deno.test("pathKey keeps apart what no file system folds together", () => {
  for (const [a, b] of [["a.txt", "b.txt"], ["\u0130", "i"], ["\u00e9", "e"], ["\u03c3", "s"]]) {
    assert.notEqual(pathKey(a!, true), pathKey(b!, true), `${a} vs ${b}`);
  }
  assert.notEqual(pathKey("\u03c3.txt", false), pathKey("\u03c2.txt", false));
});

Deno.test("PathGuard with a CaseFolding folds names only below a case-insensitive mount point", () => {
  const guard = new PathGuard({
    top: false,
    mounts: [{ relpath: "usb", foldCase: true }, { relpath: "usb/Inner", foldCase: false }],
  });
  assert.equal(guard.admit("Readme.txt", FILE), undefined);
  assert.equal(guard.admit("README.TXT", FILE), undefined, "the top is case-sensitive");
  assert.equal(guard.admit("usb/\u03c3.txt", FILE), undefined);
  assert.match(guard.admit("usb/\u03c2.txt", FILE)!, /case folding/, "below the mount");
  // Case-sensitive again below a mount point inside it, reached by a name the disk folds.
  assert.equal(guard.admit("usb/inner/a", FILE), undefined);
  assert.equal(guard.admit("usb/inner/A", FILE), undefined);
  assert.match(guard.admit("usb/INNER/a", FILE)!, /case folding/, "INNER is inner on the disk");
  // The mount point's own name is compared by the file system above it.
  assert.equal(guard.admit("Usb/x", FILE), undefined, "Usb is another folder than usb");
  const key = pathKeyer({ top: true, mounts: [] });
  assert.equal(key("A/\u03a3"), pathKey("a/\u03c3", true));
});
