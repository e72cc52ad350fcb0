import assert from "node:assert/strict";
import { pathLength, pathLimits, pathTooLong } from "../lib/safety/path_limits.ts";

const LINUX = pathLimits("linux");

Deno.test("pathLimits knows Linux, macOS and Windows", () => {
  assert.deepEqual(LINUX, { path: 4095, name: 255, unit: "utf8" });
  assert.equal(pathLimits("darwin").path, 1023);
  assert.deepEqual(pathLimits("windows"), { path: 32_767, name: 255, unit: "utf16" });
});

Deno.test("pathTooLong counts names in UTF-8 bytes on Linux", () => {
  assert.equal(pathTooLong(10, "a".repeat(255), LINUX), undefined);
  assert.match(pathTooLong(10, "a".repeat(256), LINUX)!, /256 bytes long, over the 255/);
  assert.equal(pathTooLong(10, "é".repeat(127), LINUX), undefined, "254 bytes");
  assert.match(pathTooLong(10, "é".repeat(128), LINUX)!, /256 bytes/);
  assert.match(pathTooLong(10, `ok/${"😀".repeat(64)}/x`, LINUX)!, /256 bytes/, "4 bytes an emoji");
  assert.equal(
    pathTooLong(10, "é".repeat(128), pathLimits("windows")),
    undefined,
    "128 UTF-16 units",
  );
});

Deno.test("pathTooLong counts the whole path, with room for a temp name beside the file", () => {
  const root = "/" + "r".repeat(99); // 100 bytes
  const deep = Array.from({ length: 20 }, () => "d".repeat(190)).join("/"); // 3,819 bytes
  assert.equal(pathTooLong(pathLength(root, LINUX), `${deep}/f`, LINUX), undefined);
  // 100 + 1 + 3,819 + 1 + 32 (a temp name) = 3,953: fine; a root 200 bytes longer is not.
  const longRoot = pathLength(root, LINUX) + 200;
  assert.match(pathTooLong(longRoot, `${deep}/f`, LINUX)!, /over 4095 bytes/);
  assert.match(pathTooLong(0, "a/".repeat(2100) + "x", LINUX)!, /over 4095 bytes/);
});
