import assert from "node:assert/strict";
import { count, size } from "../cli/units.ts";

const SIZES: [number, string][] = [
  [0, "0 B"],
  [1, "1 B"],
  [1023, "1023 B"],
  [1024, "1.0 KiB"],
  [1536, "1.5 KiB"],
  [50019, "48.8 KiB"],
  [1024 * 1024 - 1, "1.0 MiB"], // one decimal would print "1024.0 KiB"
  [1024 * 1024 - 52, "1023.9 KiB"],
  [1024 * 1024, "1.0 MiB"],
  [15.3 * 1024 * 1024, "15.3 MiB"],
  [2 ** 30, "1.0 GiB"],
  [2 ** 40 * 3, "3.0 TiB"],
  [2 ** 50, "1.0 PiB"],
  [2 ** 60 * 2, "2.0 EiB"],
  [2 ** 70, "1024.0 EiB"], // past the last unit: it stays in EiB
];

for (const [bytes, text] of SIZES) {
  Deno.test(`size prints ${bytes} bytes as "${text}"`, () => {
    assert.equal(size(bytes), text);
  });
}

Deno.test("size never prints the original tools' 0.00B style", () => {
  for (let bytes = 0; bytes < 5000; bytes += 7) {
    assert.match(size(bytes), /^(\d+ B|\d+\.\d (KiB|MiB))$/, String(bytes));
  }
});

Deno.test("count is singular for one and plural otherwise", () => {
  assert.equal(count(1, "entry", "entries"), "1 entry");
  assert.equal(count(0, "entry", "entries"), "0 entries");
  assert.equal(count(2, "entry", "entries"), "2 entries");
  assert.equal(count(1, "folder"), "1 folder");
  assert.equal(count(3, "folder"), "3 folders");
});
