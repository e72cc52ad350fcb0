/**
 * Containers ctnr writes must stay readable by the original extractor
 * (`extract_container_updated.py`). Its reading rules, from the spec
 * (../shared/spec/container-tools.md) and the fixtures' README, are
 * re-stated here as a small independent reader: find the LAST `CTNRv1__`
 * in the file's tail (128 MiB lookback), read exactly `L` bytes after it,
 * parse NDJSON, and for each entry seek to `offset`, read `payload_size`
 * bytes, check their SHA-256, and gunzip them in zlib's gzip mode when
 * `compressed`. Extra keys are ignored; a missing key is a failure.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createContainer } from "../mod.ts";
import { originalExtract } from "./_original_reader.ts";
import { withTempDir, writeTree } from "./_helpers.ts";

const TREE = {
  "hello.txt": "hello world\n",
  "empty.bin": "",
  "docs/données/résumé.txt": "unicode names\n",
  "docs/readme.md": "# readme\n".repeat(500),
  "big/blob.bin": new Uint8Array(700_000).map((_, i) => (i * 7919) & 0xff),
};

for (const compress of [false, true]) {
  for (const finalize of [false, true]) {
    Deno.test(
      `createContainer output is read by the original extractor's rules (compress ${compress}, finalize ${finalize})`,
      async () => {
        await withTempDir(async (dir) => {
          await writeTree(`${dir}/src`, TREE);
          await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { compress, finalize });
          const container = await Deno.readFile(`${dir}/c.ctnr`);
          const files = originalExtract(
            container,
            finalize ? undefined : await Deno.readFile(`${dir}/c.ctnr.idx`),
          );
          assert.deepEqual([...files.keys()].sort(), Object.keys(TREE).sort());
          for (const [relpath, content] of Object.entries(TREE)) {
            const expected = typeof content === "string"
              ? new TextEncoder().encode(content)
              : content;
            assert.deepEqual(files.get(relpath), expected, relpath);
          }
        });
      },
    );
  }
}

Deno.test("createContainer output keeps the original extractor's trailer search right past its footer", async () => {
  await withTempDir(async (dir) => {
    // A payload holding the magic must not fool a last-magic search: the trailer comes after it.
    await writeTree(`${dir}/src`, { "a.bin": "xxCTNRv1__yy", "b.txt": "b" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    const files = originalExtract(await Deno.readFile(`${dir}/c.ctnr`));
    assert.equal(new TextDecoder().decode(files.get("a.bin")), "xxCTNRv1__yy");
  });
});

Deno.test("createContainer with symlinks: entries the original cannot read have no offset, so it stops", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "a.txt": "a",
      "link": { symlink: "a.txt" },
      "e": { dir: true },
    });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    assert.throws(() => originalExtract(Deno.readFileSync(`${dir}/c.ctnr`)), /KeyError: offset/);
    await createContainer(`${dir}/src`, `${dir}/compat.ctnr`, {
      finalize: true,
      symlinks: "skip",
      emptyDirs: false,
      onWarning: () => {},
    });
    const files = originalExtract(await Deno.readFile(`${dir}/compat.ctnr`));
    assert.deepEqual([...files.keys()], ["a.txt"]);
  });
});

Deno.test("encodeEntry keeps the trailer magic out of the index when a name holds it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "CTNRv1__": "a file named like the magic", "b.txt": "b" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    const index = await Deno.readTextFile(`${dir}/c.ctnr.idx`);
    assert.ok(!index.includes("CTNRv1__"), index);
    const files = originalExtract(await Deno.readFile(`${dir}/c.ctnr`));
    assert.equal(new TextDecoder().decode(files.get("CTNRv1__")), "a file named like the magic");
  });
});

Deno.test("encodeEntry escapes every line break of Python's splitlines(), so no entry is lost", async () => {
  await withTempDir(async (dir) => {
    const names = ["a\u2028b", "c\u2029d", "e\u0085f", "g\vh", "i\fj", "k\x1cl", "m\rn"];
    await writeTree(`${dir}/src`, Object.fromEntries(names.map((n) => [n, n])));
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    const index = await Deno.readTextFile(`${dir}/c.ctnr.idx`);
    assert.equal(index.split("\n").length, names.length + 1, "one line an entry");
    assert.doesNotMatch(
      index,
      // deno-lint-ignore no-control-regex
      /[\r\v\f\x1c-\x1e\x85\u2028\u2029]/,
      "no raw line break of any kind",
    );
    const files = originalExtract(await Deno.readFile(`${dir}/c.ctnr`));
    assert.deepEqual([...files.keys()].sort(), [...names].sort());
  });
});

Deno.test("createContainer keeps a tree of 0755 folders readable by the original extractor; a private folder's entry needs folderModes false (--compat)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "pub/a.txt": "a", "priv/b.txt": "b" });
    await Deno.chmod(`${dir}/src/pub`, 0o755);
    await createContainer(`${dir}/src`, `${dir}/open.ctnr`, { finalize: true });
    assert.deepEqual(
      [...originalExtract(await Deno.readFile(`${dir}/open.ctnr`)).keys()].sort(),
      ["priv/b.txt", "pub/a.txt"],
      "0755 folders get no entries",
    );
    await Deno.chmod(`${dir}/src/priv`, 0o700);
    await createContainer(`${dir}/src`, `${dir}/private.ctnr`, { finalize: true });
    assert.throws(
      () => originalExtract(Deno.readFileSync(`${dir}/private.ctnr`)),
      /KeyError: offset/,
      "the folder entry has no offset: the original extractor stops, writes no file as it",
    );
    const warnings: string[] = [];
    await createContainer(`${dir}/src`, `${dir}/compat.ctnr`, {
      finalize: true,
      folderModes: false,
      onWarning: (w) => warnings.push(`${w.code} ${w.message}`),
    });
    assert.deepEqual(warnings, ['LEFT_OUT Left out folder entry "priv" (mode 0700: not kept)']);
    assert.deepEqual(
      [...originalExtract(await Deno.readFile(`${dir}/compat.ctnr`)).keys()].sort(),
      ["priv/b.txt", "pub/a.txt"],
    );
  });
});
