import assert from "node:assert/strict";
// A full specifier: ctnr runs from a URL, without its deno.json (README "Runtime dependencies").
// deno-lint-ignore no-import-prefix
import fc from "npm:fast-check@4.11.0";
import { compareCodePoints, listsWhole, walkTree, walkTreeBatches } from "../lib/create/walk.ts";
import { SourceError } from "../mod.ts";
import { runCommand, spyOnListings, TOOL_TIMEOUT_MS, withTempDir, writeTree } from "./_helpers.ts";

Deno.test("compareCodePoints orders like the UTF-8 bytes of the strings", () => {
  const encoder = new TextEncoder();
  const byBytes = (a: string, b: string) => {
    const x = encoder.encode(a);
    const y = encoder.encode(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  };
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
      assert.equal(Math.sign(compareCodePoints(a, b)), Math.sign(byBytes(a, b)));
    }),
    { numRuns: 2000 },
  );
  // The case UTF-16 order gets wrong: U+FF5E (3 bytes) sorts before U+1F600 (4 bytes).
  assert.ok(compareCodePoints("\uff5e", "\u{1f600}") < 0);
  assert.ok("\uff5e" > "\u{1f600}"); // plain JS comparison disagrees
});

Deno.test("walkTree walks depth first in code-point order and yields only empty folders", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "b.txt": "b",
      "a/z.txt": "z",
      "a.txt": "a",
      "empty": { dir: true },
      "full/x.txt": "x",
      "link": { symlink: "a.txt" },
    });
    const seen: string[] = [];
    for await (const item of walkTree(`${dir}/src`)) seen.push(`${item.kind}:${item.relpath}`);
    assert.deepEqual(seen, [
      "file:a/z.txt",
      "file:a.txt",
      "file:b.txt",
      "dir:empty",
      "file:full/x.txt",
      "symlink:link",
    ]);
  });
});

Deno.test("walkTree lists a small folder in one call and a big one in batches, alike", async () => {
  await withTempDir(async (dir) => {
    // Names of 36 bytes: 6,000 of them make a folder of well over 64 KiB on tmpfs (20 bytes a
    // name), ext4, XFS and btrfs, which walk.ts lists through the async iterator.
    const names = Array.from(
      { length: 6000 },
      (_, i) => `name-padded-to-36-bytes-${String(6000 - i).padStart(7, "0")}.txt`,
    );
    for (const folder of ["big", "small"]) {
      await Deno.mkdir(`${dir}/src/${folder}`, { recursive: true });
      for (const name of folder === "big" ? names : names.slice(0, 40)) {
        Deno.writeFileSync(`${dir}/src/${folder}/${name}`, new Uint8Array(0));
      }
    }
    assert.ok(Deno.lstatSync(`${dir}/src/big`).size > 64 << 10, "the big folder is big");
    assert.ok(Deno.lstatSync(`${dir}/src/small`).size <= 64 << 10, "the small folder is small");
    // A source that is a link to the big folder is big too: its link's own size says nothing.
    await Deno.symlink(`${dir}/src/big`, `${dir}/link`);
    const listedWhole: string[] = [];
    const restore = spyOnListings(listedWhole, "readDirSync");
    const seen: string[] = [];
    const viaLink: string[] = [];
    try {
      for await (const item of walkTree(`${dir}/src`)) seen.push(`${item.kind}:${item.relpath}`);
      for await (const item of walkTree(`${dir}/link`)) viaLink.push(item.relpath);
    } finally {
      restore();
    }
    const sorted = [...names].sort(compareCodePoints);
    assert.deepEqual(seen, [
      ...sorted.map((name) => `file:big/${name}`),
      ...sorted.filter((name) => names.slice(0, 40).includes(name)).map((n) => `file:small/${n}`),
    ]);
    assert.deepEqual(viaLink, sorted);
    assert.deepEqual(listedWhole.map((path) => path.slice(dir.length)), ["/src", "/src/small"]);
  });
});

Deno.test("listsWhole trusts a folder's size only where it grows with its names", () => {
  const folder = (size: number, nlink: number | null) => ({ size, nlink }) as Deno.FileInfo;
  assert.equal(listsWhole(folder(20_040, 2)), true); // tmpfs, 1,000 names
  assert.equal(listsWhole(folder(4096, 3)), true); // ext4, one block
  assert.equal(listsWhole(folder(120_040, 2)), false); // tmpfs, 6,000 names: batches
  assert.equal(listsWhole(folder(60, 1)), false); // overlayfs with a lower layer: size says nothing
  assert.equal(listsWhole(folder(12_000, 1)), false); // btrfs: every folder has one link
  assert.equal(listsWhole(folder(0, 2)), false); // no size (some FUSE file systems)
  assert.equal(listsWhole(folder(4096, null)), false); // no link count (Windows)
});

/**
 * Mount an overlay file system at `dir/merged` over `dir/lower` (which must exist), with
 * `dir/upper` and `dir/work` made here.
 *
 * @returns whether it is mounted (root on Linux with overlayfs only)
 */
async function mountOverlay(dir: string): Promise<boolean> {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return false;
  for (const part of ["upper", "work", "merged"]) await Deno.mkdir(`${dir}/${part}`);
  const options = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work`;
  const run = await runCommand(
    "mount",
    ["-t", "overlay", "overlay", "-o", options, `${dir}/merged`],
    { timeoutMs: TOOL_TIMEOUT_MS },
  );
  return run.code === 0;
}

Deno.test("walkTree lists a big overlayfs folder in batches, though its size says it is small", async (t) => {
  await withTempDir(async (dir) => {
    // The failing input: a folder of an image's lower layer that got one file at run time
    // reports its upper folder's size (60 bytes on tmpfs, 4096 on ext4) whatever the lower one
    // holds: here 6,000 names of 36 bytes, well over 64 KiB.
    await Deno.mkdir(`${dir}/lower/big`, { recursive: true });
    for (let i = 0; i < 6000; i++) {
      const name = `name-padded-to-36-bytes-${String(i).padStart(7, "0")}.txt`;
      Deno.writeFileSync(`${dir}/lower/big/${name}`, new Uint8Array(0));
    }
    assert.ok(Deno.statSync(`${dir}/lower/big`).size > 64 << 10);
    if (!await mountOverlay(dir)) {
      await t.step({ name: "needs root and overlayfs", ignore: true, fn: () => {} });
      return;
    }
    const merged = `${dir}/merged`;
    try {
      Deno.writeFileSync(`${merged}/big/added`, new Uint8Array(0));
      const info = Deno.statSync(`${merged}/big`);
      assert.ok(info.size <= 4096 && info.nlink === 1, `size ${info.size}, nlink ${info.nlink}`);
      const listedWhole: string[] = [];
      const restore = spyOnListings(listedWhole, "readDirSync");
      let files = 0;
      try {
        for await (const item of walkTree(merged)) if (item.kind === "file") files++;
      } finally {
        restore();
      }
      assert.equal(files, 6001);
      assert.deepEqual(listedWhole, []); // the merged top folder has one link too
    } finally {
      await runCommand("umount", [merged], { timeoutMs: TOOL_TIMEOUT_MS });
    }
  });
});

Deno.test("walkTree reports unlistable sources and unportable names, then goes on", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(async () => {
      for await (const _ of walkTree(`${dir}/missing`)) { /* nothing */ }
    }, SourceError);
    await writeTree(`${dir}/src`, { "ok.txt": "ok", "back\\slash": "x" });
    const errors: string[] = [];
    const seen: string[] = [];
    for await (const item of walkTree(`${dir}/src`, { onError: (e) => errors.push(e.message) })) {
      seen.push(item.relpath);
    }
    assert.deepEqual(seen, ["ok.txt"]);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /back\\slash.*backslash/);
  });
});

Deno.test("walkTreeBatches yields walkTree's entries in arrays of at most batchSize", async () => {
  await withTempDir(async (dir) => {
    const tree: Record<string, string> = {};
    for (let d = 0; d < 5; d++) for (let f = 0; f < 300; f++) tree[`d${d}/f${f}`] = "x";
    tree["empty"] = "";
    await writeTree(`${dir}/src`, { ...tree, "e": { dir: true } });
    const flat: string[] = [];
    for await (const item of walkTree(`${dir}/src`)) flat.push(`${item.kind}:${item.relpath}`);
    const sizes: number[] = [];
    const batched: string[] = [];
    const walk = walkTreeBatches(`${dir}/src`, {}, 100);
    for (;;) {
      const next = await walk.next();
      if (next.done) {
        assert.equal(next.value, 1502); // files, the empty file and the empty folder
        break;
      }
      sizes.push(next.value.length);
      batched.push(...next.value.map((item) => `${item.kind}:${item.relpath}`));
    }
    assert.deepEqual(batched, flat);
    assert.equal(flat.length, 1502);
    assert.ok(sizes.every((n) => n > 0 && n <= 100), `batch sizes ${sizes}`);
  });
});

Deno.test("walkTree stopped early leaves nothing running (the test sanitizers check)", async () => {
  await withTempDir(async (dir) => {
    const tree: Record<string, string> = {};
    for (let d = 0; d < 3; d++) for (let f = 0; f < 1200; f++) tree[`d${d}/f${f}`] = "";
    await writeTree(`${dir}/src`, tree);
    let n = 0;
    for await (const _ of walkTree(`${dir}/src`)) if (++n === 1500) break;
    assert.equal(n, 1500);
  });
});
