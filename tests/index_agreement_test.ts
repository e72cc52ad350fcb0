/**
 * An index file beside a container that also has a trailer: the two must hold the same index.
 * A stale, shorter `.idx` read alone restores a subset and exits 0; resuming or finalizing
 * with it cuts the container back to its end, destroying the trailer and the payloads only
 * the trailer indexes. Readers, `create` and `--finalize-only` refuse it; `--index` still wins
 * for readers (lib/format/index_agreement.ts).
 */

import assert from "node:assert/strict";
import { ContainerReader } from "../lib/read/container_reader.ts";
import { describeDisagreement, indexAgreement } from "../lib/format/index_agreement.ts";
import { encodeFooter, encodeTrailerHeader } from "../lib/format/trailer.ts";
import { ContainerFormatError } from "../lib/errors.ts";
import {
  concatBytes,
  exists,
  memorySource,
  runCli,
  runCliProcess,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

const encoder = new TextEncoder();

/**
 * In `dir`: `c.ctnr` finalized with a, b, c (its trailer holds three entries) and, as
 * `c.ctnr.idx`, the index of the first run, which holds a and b only.
 */
async function staleIndexBesideFinalized(dir: string): Promise<{ container: string; idx: string }> {
  await writeTree(`${dir}/src`, { "a.txt": "alpha\n", "b.txt": "bravo\n" });
  const container = `${dir}/c.ctnr`;
  const idx = `${container}.idx`;
  assert.equal((await runCli("create", `${dir}/src`, container)).code, 0);
  const stale = await Deno.readFile(idx);
  await writeTree(`${dir}/src`, { "c.txt": "charlie\n" });
  assert.equal((await runCli("create", `${dir}/src`, container, "--finalize")).code, 0);
  await Deno.writeFile(idx, stale);
  return { container, idx };
}

/** The same container with the original tools' trailer: ctnr's 16-byte footer cut off. */
async function withoutFooter(container: string): Promise<void> {
  const bytes = await Deno.readFile(container);
  await Deno.writeFile(container, bytes.subarray(0, bytes.length - 16));
}

const STALE =
  /its index ".*c\.ctnr\.idx" \(2 entries\) and its trailer \(3 entries\) disagree: ".*c\.ctnr\.idx" is an older, shorter copy of the trailer's index/;

// ---------------------------------------------------------------------------
// The comparison

Deno.test("indexAgreement tells the trailer's own index from a stale, a longer and a same-size one", async () => {
  const line = (name: string) => `{"relpath":"${name}","offset":0,"payload_size":0}\n`;
  const index = encoder.encode(line("a") + line("b") + line("c"));
  const payload = new Uint8Array(10);
  for (const footer of [true, false]) {
    const container = memorySource(concatBytes([
      payload,
      encodeTrailerHeader(index.length),
      index,
      ...(footer ? [encodeFooter(index.length)] : []),
    ]));
    const layout = footer ? "ctnr's footer" : "the original tools' trailer";
    const same = await indexAgreement(container, memorySource(index));
    assert.deepEqual(same?.same, true, layout);
    assert.equal(same?.trailer.trailerOffset, payload.length, layout);

    const stale = memorySource(encoder.encode(line("a") + line("b")));
    const longer = memorySource(encoder.encode(line("a") + line("b") + line("c") + line("d")));
    // Same size, other entries: decided on the bytes, never on the sizes.
    const renamed = memorySource(encoder.encode(line("a") + line("x") + line("c")));
    if (footer) {
      for (const [what, other] of [["stale", stale], ["longer", longer], ["renamed", renamed]]) {
        const found = await indexAgreement(container, other as typeof stale);
        assert.equal(found?.same, false, `${what}, ${layout}`);
      }
      const how = await describeDisagreement(container, same!.trailer, stale);
      assert.deepEqual(
        [how.indexLines, how.trailerLines, how.indexIsPrefix, how.trailerIsPrefix],
        [2, 3, true, false],
      );
      const more = await describeDisagreement(container, same!.trailer, longer);
      assert.deepEqual([more.indexIsPrefix, more.trailerIsPrefix], [false, true]);
      const other = await describeDisagreement(container, same!.trailer, renamed);
      assert.deepEqual(
        [other.indexIsPrefix, other.trailerIsPrefix, other.firstDifferentLine],
        [false, false, 2],
      );
    } else {
      // Without a footer, a trailer of the index file's size is found with one read; one of
      // another size only by a scan, down to where the indexed payloads end.
      assert.equal((await indexAgreement(container, renamed))?.same, false);
      assert.equal(await indexAgreement(container, stale), null);
      assert.equal(await indexAgreement(container, longer), null);
      assert.equal((await indexAgreement(container, stale, { from: 10 }))?.same, false);
    }
  }
  assert.equal(await indexAgreement(memorySource(payload), memorySource(index)), null);
});

// ---------------------------------------------------------------------------
// Readers

Deno.test("readers refuse a stale .idx beside a finalized container (it would restore a subset)", async () => {
  await withTempDir(async (dir) => {
    const { container, idx } = await staleIndexBesideFinalized(dir);
    for (
      const args of [
        ["extract", container, `${dir}/out`],
        ["verify", container],
        ["list", container],
        ["cat", container, "a.txt"],
      ]
    ) {
      const run = await runCli(...args);
      assert.equal(run.code, 1, `${args[0]}: ${run.stderr}`);
      assert.match(run.stderr, STALE, args[0]);
      assert.match(run.stderr, /move ".*c\.ctnr\.idx" away .* or pass --index ".*c\.ctnr\.idx"/);
      assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      assert.equal(run.stdout, "", args[0]);
    }
    assert.equal(await exists(`${dir}/out`), false, "extract wrote nothing");
    await assert.rejects(
      () => ContainerReader.open(container),
      (error: unknown) => error instanceof ContainerFormatError && error.code === "INDEX_CONFLICT",
    );
    // An explicit --index still wins; moved away, the trailer is read.
    const chosen = await runCli("list", container, "--index", idx);
    assert.equal(chosen.code, 0, chosen.stderr);
    assert.deepEqual(chosen.stdout.trim().split("\n").map((l) => l.split(" ")[0]), [
      "a.txt",
      "b.txt",
    ]);
    await Deno.rename(idx, `${dir}/stale.idx`);
    const trailer = await runCli("extract", container, `${dir}/out`);
    assert.equal(trailer.code, 0, trailer.stderr);
    assert.deepEqual([...Deno.readDirSync(`${dir}/out`)].map((e) => e.name).sort(), [
      "a.txt",
      "b.txt",
      "c.txt",
    ]);
  });
});

Deno.test("readers refuse a stale .idx beside the original tools' container before writing anything", async () => {
  await withTempDir(async (dir) => {
    const { container } = await staleIndexBesideFinalized(dir);
    await withoutFooter(container);
    // Not found at open (the trailer is of another size): found by the plan's pass, which
    // scans only the bytes after the payloads the .idx names.
    const run = await runCli("extract", container, `${dir}/out`);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, STALE);
    assert.equal(await exists(`${dir}/out`), false);
    const verify = await runCli("verify", container);
    assert.equal(verify.code, 1);
    assert.match(verify.stderr, STALE);
  });
});

Deno.test("readers refuse a .idx with an entry more than the trailer", async () => {
  await withTempDir(async (dir) => {
    const { container, idx } = await staleIndexBesideFinalized(dir);
    await Deno.remove(idx);
    assert.equal((await runCli("list", container, "--json")).code, 0);
    const lines = (await runCli("list", container, "--json")).stdout;
    await Deno.writeTextFile(idx, lines + lines.split("\n")[0]!.replace("a.txt", "z.txt") + "\n");
    const run = await runCli("list", container);
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /\(4 entries\) and its trailer \(3 entries\) disagree: .* has 1 entry more than the trailer/,
    );
  });
});

// ---------------------------------------------------------------------------
// create and --finalize-only

Deno.test("create refuses to resume with a stale .idx beside a finalized container (it would cut the trailer)", async () => {
  await withTempDir(async (dir) => {
    const { container, idx } = await staleIndexBesideFinalized(dir);
    for (const strip of [false, true]) {
      if (strip) await withoutFooter(container);
      const before = await Deno.readFile(container);
      const beforeIndex = await Deno.readFile(idx);
      const layout = strip ? "the original tools' trailer" : "ctnr's footer";
      for (const extra of [[], ["--dry-run"], ["--finalize"]]) {
        const run = await runCliProcess("create", `${dir}/src`, container, ...extra);
        assert.equal(run.code, 1, `${layout} ${extra}: ${run.stderr}`);
        assert.match(run.stderr, /^ctnr: Cannot continue ".*c\.ctnr": /, run.stderr);
        assert.match(run.stderr, STALE);
        assert.match(run.stderr, /resuming would cut off the trailer/);
        assert.deepEqual(await Deno.readFile(container), before, `${layout}: container unchanged`);
        assert.deepEqual(await Deno.readFile(idx), beforeIndex, `${layout}: index unchanged`);
      }
    }
  });
});

Deno.test("create --finalize-only refuses a stale .idx beside a finalized container (it would cut the trailer)", async () => {
  await withTempDir(async (dir) => {
    const { container, idx } = await staleIndexBesideFinalized(dir);
    for (const strip of [false, true]) {
      if (strip) await withoutFooter(container);
      const before = await Deno.readFile(container);
      const run = await runCliProcess("create", "--container", container, "--finalize-only");
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^ctnr: Cannot finalize ".*c\.ctnr": /);
      assert.match(run.stderr, STALE);
      assert.deepEqual(await Deno.readFile(container), before, "container unchanged");
    }
    // Moved away, the index is the trailer's: finalize-only has nothing to do, create resumes.
    await Deno.rename(idx, `${dir}/stale.idx`);
    assert.equal((await runCli("create", "--container", container, "--finalize-only")).code, 0);
    await writeTree(`${dir}/src`, { "d.txt": "delta\n" });
    const resumed = await runCli("create", `${dir}/src`, container, "--finalize");
    assert.equal(resumed.code, 0, resumed.stderr);
    const out = await runCli("extract", container, `${dir}/out`);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual([...Deno.readDirSync(`${dir}/out`)].map((e) => e.name).sort(), [
      "a.txt",
      "b.txt",
      "c.txt",
      "d.txt",
    ]);
  });
});

Deno.test("create resumes a finalized container whose .idx holds the trailer's index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha\n" });
    const container = `${dir}/c.ctnr`;
    assert.equal((await runCli("create", `${dir}/src`, container, "--finalize")).code, 0);
    await writeTree(`${dir}/src`, { "b.txt": "bravo\n" });
    const resumed = await runCli("create", `${dir}/src`, container, "--finalize");
    assert.equal(resumed.code, 0, resumed.stderr);
    const list = await runCli("list", container);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split("\n").map((l) => l.split(" ")[0]), [
      "a.txt",
      "b.txt",
    ]);
  });
});
