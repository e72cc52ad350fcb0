import assert from "node:assert/strict";
import { type IndexEntry, UnsafeEntryError } from "../mod.ts";
import { checkLinkTarget } from "../lib/safety/link_target.ts";

function link(relpath: string, target: string): IndexEntry {
  return {
    relpath,
    entryType: "symlink",
    offset: 0,
    payloadSize: 0,
    origSize: 0,
    sha256: "0".repeat(64),
    compressed: false,
    linkTarget: target,
  };
}

const ACCEPTED: [string, string, string][] = [
  ["a sibling", "a/l", "b.txt"],
  ["a file below", "l", "a/b/c.txt"],
  ["up and down again", "a/b/l", "../../c.txt"],
  ["dots that stay inside", "a/l", "./x/../y"],
  ["the link's own folder", "a/l", "."],
];

const REFUSED: [string, string, string, RegExp][] = [
  ["an absolute target", "l", "/etc/passwd", /absolute target/],
  ["a drive letter", "l", "C:/Windows", /absolute target/],
  ["a backslash", "l", "..\\x", /absolute target/],
  ["one level too high", "a/l", "../../x", /leaves the output folder/],
  ["from the top", "l", "../x", /leaves the output folder/],
  ["climbing after a dot", "l", "./../x", /leaves the output folder/],
];

for (const [what, relpath, target] of ACCEPTED) {
  Deno.test(`checkLinkTarget accepts ${what}: ${relpath} -> ${target}`, () => {
    checkLinkTarget(link(relpath, target));
  });
}

for (const [what, relpath, target, reason] of REFUSED) {
  Deno.test(`checkLinkTarget refuses ${what}: ${relpath} -> ${target}`, () => {
    assert.throws(() => checkLinkTarget(link(relpath, target)), (error: unknown) => {
      assert.ok(error instanceof UnsafeEntryError);
      assert.match(error.message, reason);
      assert.ok(error.message.includes(`"${relpath}"`), error.message);
      return true;
    });
  });
}

Deno.test("checkLinkTarget refuses climbing out through another link (a chain)", () => {
  // t -> . then s -> t/.. : lexically inside, but t is the folder itself, so s leaves it.
  const links = new Set(["t"]);
  assert.throws(
    () => checkLinkTarget(link("s", "t/.."), (relpath) => links.has(relpath)),
    /climbs out of the link "t"/,
  );
  // Without knowing t is a link, the same target looks harmless.
  checkLinkTarget(link("s", "t/.."), () => false);
  // Through a link, going down only is fine.
  checkLinkTarget(link("s", "t/x"), (relpath) => links.has(relpath));
});
