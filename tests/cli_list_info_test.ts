/** `ctnr list` (plain, `-l`) and `ctnr info`, their lines and JSON. */

import assert from "node:assert/strict";
import { ContainerWriter } from "../mod.ts";
import { size as sizeText } from "../cli/units.ts";
import { CLI, PROJECT } from "./_crash.ts";
import { runCli, runCommand, withTempDir, writeTree } from "./_helpers.ts";

/** 2001-02-03T04:05:06Z, in seconds since the epoch. */
const MTIME = Date.UTC(2001, 1, 3, 4, 5, 6) / 1000;

async function knownContainer(dir: string, ...flags: string[]): Promise<string> {
  await writeTree(`${dir}/src`, {
    "a.txt": { content: "alpha\n", mode: 0o640, mtime: MTIME },
    "data/noise.bin": { content: "0123456789".repeat(5000), mode: 0o644, mtime: MTIME + 0.5 },
    "empty": { dir: true },
    "link": { symlink: "a.txt" },
  });
  await Deno.utime(`${dir}/src/empty`, MTIME, MTIME);
  const c = `${dir}/c.ctnr`;
  const run = await runCli("create", `${dir}/src`, c, ...flags);
  assert.equal(run.code, 0, run.stderr);
  return c;
}

Deno.test("main list prints relpaths alone, folders with a slash, as tar -t", async () => {
  await withTempDir(async (dir) => {
    const c = await knownContainer(dir, "--finalize");
    const run = await runCli("list", c);
    assert.equal(run.code, 0);
    assert.equal(run.stdout, "a.txt\ndata/noise.bin\nempty/\nlink\n");
  });
});

Deno.test("main list -l prints mode, size, stored size, UTC mtime and relpath, then totals", async () => {
  await withTempDir(async (dir) => {
    const c = await knownContainer(dir, "--compress", "--finalize");
    const entries = (await runCli("list", "--json", c)).stdout.trimEnd().split("\n")
      .map((line) => JSON.parse(line));
    const stored = (relpath: string) =>
      String(entries.find((e) => e.relpath === relpath).payload_size).padStart(10);
    const linkMtime = new Date(
      Math.floor(entries.find((e) => e.relpath === "link").mtime) * 1000,
    ).toISOString().slice(0, 19) + "Z";
    const total = entries.reduce((n, e) => n + (e.payload_size ?? 0), 0);
    for (const flag of ["-l", "--long"]) {
      const run = await runCli("list", flag, c);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(
        run.stdout,
        [
          `0640          6 ${stored("a.txt")} 2001-02-03T04:05:06Z a.txt`,
          `0644      50000 ${stored("data/noise.bin")} 2001-02-03T04:05:06Z data/noise.bin`,
          `0755          0          0 2001-02-03T04:05:06Z empty/`,
          `   -          0          0 ${linkMtime} link -> a.txt`,
          `total: 4 entries (2 files, 1 folder, 1 link), 48.8 KiB, ${sizeText(total)} stored`,
          "",
        ].join("\n"),
      );
    }
    const both = await runCli("list", "-l", "--json", c);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--long and --json do not go together/);
  });
});

Deno.test("main list -l widens its size columns for a size of 11 digits and more, the lines after aligned", async () => {
  await withTempDir(async (dir) => {
    // A compressed entry may claim any original size: 123,456,789,012 bytes from 10 stored.
    const c = `${dir}/c.ctnr`;
    await Deno.writeFile(c, new Uint8Array(15));
    const line = (relpath: string, offset: number, stored: number, orig: number) =>
      JSON.stringify({
        relpath,
        offset,
        payload_size: stored,
        orig_size: orig,
        sha256: "0".repeat(64),
        compressed: stored !== orig,
        mode: 420,
        mtime: 981173106,
      }) + "\n";
    await Deno.writeTextFile(
      `${c}.idx`,
      line("a.txt", 0, 5, 5) + line("big", 5, 10, 123456789012) + line("z.txt", 15, 0, 0),
    );
    const run = await runCli("list", "-l", c);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      [
        "0644          5          5 2001-02-03T04:05:06Z a.txt",
        "0644 123456789012           10 2001-02-03T04:05:06Z big",
        "0644            0            0 2001-02-03T04:05:06Z z.txt",
        "total: 3 entries (3 files, 0 folders, 0 links), 115.0 GiB, 15 B stored",
        "",
      ].join("\n"),
    );
  });
});

Deno.test("main list -l escapes control characters in names and link targets", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    await writer.addFile({ relpath: "a\u001b[31mb", mode: 0o600, mtime: 0 }, new Uint8Array(3));
    await writer.addSymlink({ relpath: "l\u202e" }, "t\u0007");
    await writer.addFolder({ relpath: "d", mode: 0o700, mtime: 253402300800 }); // year 10000
    await writer.finalize();
    const run = await runCli("list", "-l", `${dir}/c.ctnr`);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split("\n");
    assert.equal(lines[0], "0600          3          3 1970-01-01T00:00:00Z a\\x1b[31mb");
    assert.match(lines[1]!, / +- l\\u202e -> t\\x07$/);
    assert.equal(lines[2], "0700          0          0         253402300800 d/");
    const plain = await runCli("list", `${dir}/c.ctnr`);
    assert.equal(plain.stdout, "a\\x1b[31mb\nl\\u202e\nd/\n");
  });
});

Deno.test("main list writes every line of a long listing through a pipe (none lost at exit)", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      await writer.addFile({ relpath: `folder/file-${i}.txt`, mtime: MTIME }, new Uint8Array(1));
    }
    await writer.finalize({ removeIndex: true });
    for (const [flag, lines] of [["-l", n + 1], ["--json", n], ["--container", n]] as const) {
      const run = await runCommand("bash", [
        "-c",
        `'${Deno.execPath()}' run -A '${CLI}' list ${flag} '${dir}/c.ctnr' | wc -l`,
      ], { timeoutMs: 60_000, cwd: PROJECT });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(Number(run.stdout.trim()), lines, flag);
    }
  });
});

Deno.test("main info tells entries by kind, sizes, the trailer and which index was read", async () => {
  await withTempDir(async (dir) => {
    const c = await knownContainer(dir, "--compress", "--finalize");
    const size = (await Deno.stat(c)).size;
    const idx = (await Deno.stat(`${c}.idx`)).size;
    const json = await runCli("info", c, "--json");
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout);
    const trailerAt = s.payload_end;
    assert.deepEqual({ ...s, duration_s: 0, stored_bytes: 0, compression_ratio: 0 }, {
      command: "info",
      ok: true,
      exit_code: 0,
      error: null,
      container: c,
      container_bytes: size,
      entries: 4,
      files: 2,
      folders: 1,
      links: 1,
      compressed_files: 2,
      orig_bytes: 50006,
      stored_bytes: 0,
      compression_ratio: 0,
      payload_end: trailerAt,
      finalized: true,
      trailer: { offset: trailerAt, index_offset: trailerAt + 16, index_bytes: idx, footer: true },
      index_used: "sibling",
      index_path: `${c}.idx`,
      index_bytes: idx,
      sibling_index: { path: `${c}.idx`, bytes: idx },
      duration_s: 0,
      faults: 0,
      fault_list: [],
      warnings: 0,
      warning_codes: {},
    });
    assert.equal(s.stored_bytes, trailerAt, "the payloads fill the area before the trailer");
    assert.equal(s.compression_ratio, Math.round(s.stored_bytes / 50006 * 1000) / 1000);
    assert.ok(s.compression_ratio > 0 && s.compression_ratio < 0.1);

    const text = await runCli("info", c);
    assert.equal(text.code, 0);
    const bytes = (n: number) => n < 1024 ? `${n} B` : `${sizeText(n)} (${n} bytes)`;
    assert.equal(
      text.stdout,
      [
        `Container:    ${c}, ${bytes(size)}`,
        "Entries:      4 (2 files, 1 folder, 1 link)",
        "Original:     48.8 KiB (50006 bytes)",
        `Stored:       ${bytes(s.stored_bytes)}, ratio ${
          s.compression_ratio.toFixed(3)
        } (stored / original), 2 of 2 files compressed`,
        `Finalized:    yes: trailer at byte ${trailerAt}, index of ${idx} bytes, ctnr footer`,
        `Index read:   ${c}.idx (sibling), ${bytes(idx)}`,
        `Sibling .idx: ${c}.idx, ${bytes(idx)}`,
        "",
      ].join("\n"),
    );
  });
});

Deno.test("main info tells a container not finalized, one read through --index, one of the original tools", async () => {
  await withTempDir(async (dir) => {
    const c = await knownContainer(dir);
    const open = JSON.parse((await runCli("info", c, "--json")).stdout);
    assert.equal(open.finalized, false);
    assert.equal(open.trailer, null);
    assert.equal(open.index_used, "sibling");
    assert.match((await runCli("info", c)).stdout, /^Finalized: +no \(no trailer/m);

    // Finalized and its .idx moved away: the trailer is read; given back as --index, it is
    // read alone, and the trailer is still found.
    assert.equal((await runCli("create", "--container", c, "--finalize-only")).code, 0);
    await Deno.rename(`${c}.idx`, `${dir}/moved.idx`);
    const trailer = JSON.parse((await runCli("info", c, "--json")).stdout);
    assert.equal(trailer.index_used, "trailer");
    assert.equal(trailer.index_path, c);
    assert.equal(trailer.sibling_index, null);
    assert.match((await runCli("info", c)).stdout, /^Index read: +the trailer, /m);
    assert.match((await runCli("info", c)).stdout, /^Sibling \.idx: none$/m);
    const external = await runCli("info", c, "--index", `${dir}/moved.idx`, "--json");
    const e = JSON.parse(external.stdout);
    assert.equal(e.index_used, "external");
    assert.equal(e.index_path, `${dir}/moved.idx`);
    assert.equal(e.finalized, true);
    assert.deepEqual(e.trailer, trailer.trailer);
    assert.match(
      (await runCli("info", c, "--index", `${dir}/moved.idx`)).stdout,
      /^Index read: +.*moved\.idx \(--index\), /m,
    );

    // Without ctnr's footer (as the original tools write it), found by the backward scan.
    const bytes = await Deno.readFile(c);
    await Deno.writeFile(c, bytes.subarray(0, bytes.length - 16));
    for (const args of [[c, "--json"], [c, "--index", `${dir}/moved.idx`, "--json"]]) {
      const legacy = JSON.parse((await runCli("info", ...args)).stdout);
      assert.equal(legacy.finalized, true, args.join(" "));
      assert.equal(legacy.trailer.footer, false);
      assert.equal(legacy.container_bytes, bytes.length - 16);
    }
    assert.match((await runCli("info", c)).stdout, /no footer \(the original tools'\)$/m);
  });
});
