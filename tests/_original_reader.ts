/**
 * The original extractor's reading rules (`extract_container_updated.py`), re-stated as a
 * small independent reader (tests/interop_test.ts explains them).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";

const MAGIC = new TextEncoder().encode("CTNRv1__");

/** What the original extractor would write, as relpath -> bytes; throws where it would fail. */
export function originalExtract(
  container: Uint8Array,
  externalIndex?: Uint8Array,
): Map<string, Uint8Array> {
  let index: Uint8Array;
  if (externalIndex) index = externalIndex;
  else {
    const tailStart = Math.max(0, container.length - 128 * 1024 * 1024);
    let pos = -1;
    for (let i = container.length - MAGIC.length; i >= tailStart; i--) {
      if (MAGIC.every((b, k) => container[i + k] === b)) {
        pos = i;
        break;
      }
    }
    if (pos < 0) throw new Error("No index found (embedded)");
    const length = Number(
      new DataView(container.buffer, container.byteOffset + pos + 8, 8).getBigUint64(0, true),
    );
    if (length === 0 || length > container.length) throw new Error("invalid length");
    index = container.subarray(pos + 16, pos + 16 + length);
    if (index.length !== length) throw new Error("short index");
  }
  const out = new Map<string, Uint8Array>();
  // Python's splitlines(): \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, U+2028 and U+2029 end a line.
  const text = new TextDecoder("utf-8", { fatal: true }).decode(index);
  // deno-lint-ignore no-control-regex
  for (const line of text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/)) {
    if (line.trim() === "") continue;
    const entry = JSON.parse(line);
    for (const key of ["relpath", "offset", "payload_size", "sha256"]) {
      if (!(key in entry)) throw new Error(`KeyError: ${key}`);
    }
    const stored = container.subarray(entry.offset, entry.offset + entry.payload_size);
    if (createHash("sha256").update(stored).digest("hex") !== entry.sha256) {
      throw new Error(`sha mismatch for payload of ${entry.relpath}`);
    }
    out.set(entry.relpath, new Uint8Array(entry.compressed ? gunzipSync(stored) : stored));
  }
  return out;
}
