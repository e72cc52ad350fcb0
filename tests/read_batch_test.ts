/**
 * The read worker's batch (lib/create/_source_file.ts `readBatch`): plain payloads are hashed
 * there only when the batch asks (create's main thread asks when it is the one behind), and the
 * digests are those of the bytes it hands back.
 *
 * @module
 */

import assert from "node:assert/strict";
import { readBatch } from "../lib/create/_source_file.ts";
import { unpackReads } from "../lib/create/sources.ts";
import { sha256Hex } from "../lib/io/sha256.ts";
import { pseudoRandomBytes, withTempDir } from "./_helpers.ts";

Deno.test("readBatch hashes plain payloads when asked, and only then", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/in`);
    const sizes = [0, 1, 100, 129, 4096, 70_000];
    const paths = sizes.map((size, i) => {
      const path = `${dir}/in/f${i}`;
      Deno.writeFileSync(path, pseudoRandomBytes(size, i + 1));
      return path;
    });
    const request = { paths: paths.join("\0"), compress: false, budget: 1 << 21 };
    const plain = readBatch(request);
    assert.equal(plain.sha256, "", "not asked: the caller hashes");
    const hashed = readBatch({ ...request, hash: true });
    let at = 0;
    const expected = sizes.map((size, i) => {
      const bytes = hashed.payloads.subarray(at, at + size);
      at += size;
      assert.deepEqual(bytes, Deno.readFileSync(paths[i]!));
      return sha256Hex(Deno.readFileSync(paths[i]!));
    });
    assert.equal(hashed.sha256, expected.join(""));
    assert.deepEqual(hashed.numbers, plain.numbers);
  });
});

Deno.test("unpackReads gives each small file its own digest, whichever thread hashed", async () => {
  await withTempDir(async (dir) => {
    // A file past the small-file limit in the middle: it has no digest in the batch.
    await Deno.mkdir(`${dir}/in`);
    const sizes = [10, 300 << 10, 4096, 0];
    const paths = sizes.map((size, i) => {
      const path = `${dir}/in/f${i}`;
      Deno.writeFileSync(path, pseudoRandomBytes(size, i + 7));
      return path;
    });
    const request = { paths: paths.join("\0"), compress: false, budget: 1 << 21 };
    for (const hash of [false, true]) {
      const reads = unpackReads(readBatch({ ...request, hash }), false);
      assert.deepEqual(reads.map((read) => read.kind), ["small", "large", "small", "small"]);
      reads.forEach((read, i) => {
        if (read.kind !== "small") return;
        assert.equal(read.sha256, sha256Hex(Deno.readFileSync(paths[i]!)), `hash ${hash}, f${i}`);
      });
    }
  });
});
