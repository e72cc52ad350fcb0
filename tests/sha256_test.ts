import assert from "node:assert/strict";
import { hash } from "node:crypto";
import { sha256Hex } from "../lib/io/sha256.ts";
import { sha256HexSmall, SMALL_MAX } from "../lib/io/sha256_small.ts";

Deno.test("sha256Hex agrees with node:crypto at every length on both sides of the JavaScript path", () => {
  for (let length = 0; length <= 300; length++) {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = (i * 131 + length * 7) & 0xff;
    assert.equal(sha256Hex(bytes), hash("sha256", bytes, "hex"), `length ${length}`);
    // A view into a larger buffer hashes only its own bytes.
    const view = new Uint8Array(length + 8).fill(0xaa).subarray(4, 4 + length);
    view.set(bytes);
    assert.equal(sha256Hex(view), hash("sha256", bytes, "hex"), `view of length ${length}`);
  }
  assert.equal(
    sha256HexSmall(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", // FIPS 180-4 example
  );
});

Deno.test("sha256HexSmall refuses more than SMALL_MAX bytes", () => {
  assert.throws(() => sha256HexSmall(new Uint8Array(SMALL_MAX + 1)), RangeError);
});
