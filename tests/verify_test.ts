/**
 * `ctnr verify` checks every entry and names every fault, one line each, then a summary (as
 * `sha256sum -c` does), exit 1 when there is one; its messages say verify, never extract.
 * `extract` still stops at the first fault unless `--keep-going`.
 */

import assert from "node:assert/strict";
import { exists, runCli, runCliProcess, withTempDir, writeTree } from "./_helpers.ts";

const TREE = {
  "a.txt": "alpha\n".repeat(100),
  "b.txt": "bravo\n".repeat(100),
  "c/d.txt": "delta\n".repeat(100),
  "c/e.txt": "echo\n".repeat(100),
  "f.txt": "foxtrot\n".repeat(100),
  "g.txt": "golf\n".repeat(100),
};

/** Pack TREE into `dir/c.ctnr` (finalized, .idx kept) and change one byte of each payload named. */
async function damaged(dir: string, names: string[], compress = false): Promise<string> {
  await writeTree(`${dir}/src`, TREE);
  const container = `${dir}/c.ctnr`;
  const created = await runCli(
    "create",
    `${dir}/src`,
    container,
    "--finalize",
    ...(compress ? ["--compress"] : []),
  );
  assert.equal(created.code, 0, created.stderr);
  const bytes = await Deno.readFile(container);
  const entries = (await Deno.readTextFile(`${container}.idx`)).split("\n").filter(Boolean)
    .map((line) => JSON.parse(line));
  for (const name of names) {
    const entry = entries.find((e) => e.relpath === name);
    const at = entry.offset + Math.floor(entry.payload_size / 2);
    bytes[at] = bytes[at]! ^ 0x01;
  }
  await Deno.writeFile(container, bytes);
  return container;
}

/** The lines of stderr that name a fault. */
function faults(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("ctnr: error: "));
}

Deno.test("verify lists every bad entry in one run, then a summary, and exits 1", async () => {
  await withTempDir(async (dir) => {
    const container = await damaged(dir, ["b.txt", "c/e.txt", "g.txt"]);
    const run = await runCliProcess("verify", container);
    assert.equal(run.code, 1, run.stderr);
    const lines = faults(run.stderr);
    assert.equal(lines.length, 3, run.stderr);
    for (const [i, name] of ["b.txt", "c/e.txt", "g.txt"].entries()) {
      assert.match(
        lines[i]!,
        new RegExp(`^ctnr: error: Cannot verify "${name}": payload SHA-256 mismatch \\(expected `),
      );
    }
    assert.match(
      run.stderr,
      /\nctnr: verify: 3 of 6 entries failed \(named above\); 3 verified\n$/,
    );
    assert.doesNotMatch(run.stderr, /extract/i);
  });
});

Deno.test("verify lists every bad entry of a gzip container", async () => {
  await withTempDir(async (dir) => {
    const container = await damaged(dir, ["a.txt", "f.txt"], true);
    const run = await runCli("verify", container);
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(
      faults(run.stderr).map((line) => /Cannot verify "([^"]+)"/.exec(line)?.[1]),
      ["a.txt", "f.txt"],
    );
    assert.match(run.stderr, /verify: 2 of 6 entries failed \(named above\); 4 verified\n$/);
    assert.doesNotMatch(run.stderr, /extract/i);
  });
});

Deno.test("verify names each entry past the end of a container cut short", async () => {
  await withTempDir(async (dir) => {
    const container = await damaged(dir, []);
    const entries = (await Deno.readTextFile(`${container}.idx`)).split("\n").filter(Boolean)
      .map((line) => JSON.parse(line));
    const f = entries.find((e) => e.relpath === "f.txt");
    const bytes = await Deno.readFile(container);
    await Deno.writeFile(container, bytes.subarray(0, f.offset + 10));
    const run = await runCli("verify", container);
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(faults(run.stderr), [
      `ctnr: error: Cannot verify "f.txt": its payload (offset ${f.offset}, ${f.payload_size} ` +
      `bytes) runs past the end of "${container}", which is cut short at byte ${f.offset + 10}`,
      `ctnr: error: Cannot verify "g.txt": its payload (offset ${f.offset + f.payload_size}, ` +
      `${entries.at(-1).payload_size} bytes) runs past the end of "${container}", which is cut ` +
      `short at byte ${f.offset + 10}`,
    ]);
    assert.match(run.stderr, /verify: 2 of 6 entries failed \(named above\); 4 verified\n$/);
  });
});

Deno.test("verify says verify, never extract, for faults of the index too", async () => {
  await withTempDir(async (dir) => {
    const container = await damaged(dir, []);
    const index = await Deno.readTextFile(`${container}.idx`);
    const lines = index.split("\n").filter(Boolean);
    await Deno.remove(`${container}.idx`);
    const cases: [string, string, RegExp][] = [
      [
        "a relpath twice",
        index + lines[0] + "\n",
        /^ctnr: Cannot verify "a\.txt": another entry has the same path/,
      ],
      [
        "an unsafe symlink",
        index + '{"relpath":"evil","entry_type":"symlink","link_target":"/etc/passwd"}\n',
        /^ctnr: error: Cannot verify symlink "evil" -> "\/etc\/passwd": absolute target/,
      ],
      [
        "two payloads that overlap",
        index + lines[1]!.replace('"b.txt"', '"z.txt"') + "\n",
        /^ctnr: Cannot verify "z\.txt": its payload overlaps the payload of "b\.txt"/,
      ],
    ];
    for (const [what, text, message] of cases) {
      await Deno.writeTextFile(`${dir}/i.idx`, text);
      const run = await runCli("verify", container, "--index", `${dir}/i.idx`);
      assert.equal(run.code, 1, `${what}: ${run.stderr}`);
      assert.match(run.stderr, message, what);
      assert.doesNotMatch(run.stderr, /extract/i, what);
    }
  });
});

Deno.test("extract stops at the first bad entry, and goes on with --keep-going", async () => {
  await withTempDir(async (dir) => {
    const container = await damaged(dir, ["b.txt", "c/e.txt", "g.txt"]);
    const run = await runCli("extract", container, `${dir}/out`, "--concurrency", "0");
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, /^ctnr: Cannot verify "b\.txt": payload SHA-256 mismatch/);
    assert.equal(await exists(`${dir}/out/g.txt`), false, "stopped before the last entry");
    const going = await runCli("extract", container, `${dir}/all`, "--keep-going");
    assert.equal(going.code, 1, going.stderr);
    assert.equal(faults(going.stderr).length, 3, going.stderr);
    assert.match(going.stderr, /extraction incomplete: 3 entries failed \(named above\)/);
    for (const name of ["a.txt", "c/d.txt", "f.txt"]) {
      assert.equal(await Deno.readTextFile(`${dir}/all/${name}`), TREE[name as keyof typeof TREE]);
    }
    for (const name of ["b.txt", "c/e.txt", "g.txt"]) {
      assert.equal(await exists(`${dir}/all/${name}`), false, name);
    }
  });
});
