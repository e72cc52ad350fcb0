import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { decodePayload, type FileJob, packJobs, unpackJobs } from "../lib/extract/file_writer.ts";
import { TEMP_NAME } from "../lib/io/temp_file.ts";
import {
  ContainerWriter,
  createContainer,
  DENO_FILE_LAYER,
  type ExtractAction,
  extractContainer,
  type ExtractProgress,
  IndexFormatError,
  IntegrityError,
  UnsafeEntryError,
} from "../mod.ts";
import {
  DENO_CHILD_TIMEOUT_MS,
  diffTrees,
  exists,
  listPaths,
  pseudoRandomBytes,
  runCommand,
  TOOL_TIMEOUT_MS,
  type TreeSpec,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

Deno.test("extractContainer round-trips a generated tree", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, generatedTree());
      const created = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
        compress,
        finalize: true,
      });
      const result = await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
      assert.equal(result.extracted, created.totalEntries);
      assert.equal(result.failed, 0);
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), [], `compress ${compress}`);
      const paths = await listPaths(`${dir}/out`);
      assert.ok(paths.includes(`unicode/nfc/${"café.txt".normalize("NFC")}`));
      assert.ok(paths.includes(`unicode/nfd/${"café.txt".normalize("NFD")}`));
      assert.ok(paths.includes("hollow"));
      assert.ok(!paths.some((p) => p.includes(".ctnr-tmp-")));
    });
  }
});

Deno.test("extractContainer round-trips a tree through an external index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, generatedTree());
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { index: `${dir}/elsewhere.idx` });
    await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
      index: `${dir}/elsewhere.idx`,
      concurrency: 1,
      chunkSize: 1024,
      fsync: true,
    });
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});

Deno.test("extractContainer round-trips a sparse file over 1 GiB", async () => {
  const onShm = await exists("/dev/shm");
  const dir = await Deno.makeTempDir(
    onShm ? { dir: "/dev/shm", prefix: "ctnr-test-big-" } : { prefix: "ctnr-test-big-" },
  );
  try {
    const size = Math.round(1.1 * 2 ** 30);
    await Deno.mkdir(`${dir}/src`);
    const file = await Deno.open(`${dir}/src/huge.bin`, { write: true, create: true });
    try {
      await writeAll(file, new TextEncoder().encode("start of a huge sparse file"));
      await file.truncate(size);
      await file.seek(size - 3, Deno.SeekMode.Start);
      await writeAll(file, new TextEncoder().encode("end"));
    } finally {
      file.close();
    }
    await Deno.writeTextFile(`${dir}/src/small.txt`, "after the big one");
    const expected = await sha256File(`${dir}/src/huge.bin`);
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    const result = await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.equal(result.bytes, size + 17);
    assert.equal((await Deno.stat(`${dir}/out/huge.bin`)).size, size);
    assert.equal(await sha256File(`${dir}/out/huge.bin`), expected);
    assert.equal(await Deno.readTextFile(`${dir}/out/small.txt`), "after the big one");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("extractContainer skipExisting keeps a same-size file", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "AAAA", "b.txt": "BBBB", "c.txt": "CC" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    await writeTree(`${dir}/out`, { "a.txt": "xxxx", "b.txt": "bbbbbbbb" });
    const actions = new Map<string, ExtractAction>();
    const result = await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
      skipExisting: true,
      onEntry: (entry, action) => actions.set(entry.relpath, action),
    });
    assert.equal(await Deno.readTextFile(`${dir}/out/a.txt`), "xxxx", "marker must be kept");
    assert.equal(await Deno.readTextFile(`${dir}/out/b.txt`), "BBBB", "other size: extracted");
    assert.equal(await Deno.readTextFile(`${dir}/out/c.txt`), "CC", "missing: extracted");
    assert.equal(result.skipped, 1);
    assert.equal(result.extracted, 2);
    assert.equal(actions.get("a.txt"), "skipped");
    assert.equal(actions.get("b.txt"), "extracted");
  });
});

Deno.test("extractContainer verifyExisting re-extracts a wrong same-size file and keeps a correct one", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      const big = pseudoRandomBytes((1 << 20) + 777, 4);
      await writeTree(`${dir}/src`, {
        "good.txt": "correct bytes",
        "bad.txt": "correct bytes",
        "big-good.bin": big,
        "big-bad.bin": big,
      });
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { compress, finalize: true });
      const wrongBig = big.slice();
      wrongBig[1000] = wrongBig[1000]! ^ 0xff;
      await writeTree(`${dir}/out`, {
        "good.txt": "correct bytes",
        "bad.txt": "CORRECT BYTES",
        "big-good.bin": big,
        "big-bad.bin": wrongBig,
      });
      const inodes = new Map<string, number | null>();
      for (const name of ["good.txt", "bad.txt", "big-good.bin", "big-bad.bin"]) {
        inodes.set(name, (await Deno.lstat(`${dir}/out/${name}`)).ino);
      }
      const actions = new Map<string, ExtractAction>();
      const result = await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
        verifyExisting: true,
        onEntry: (entry, action) => actions.set(entry.relpath, action),
      });
      const label = `compress ${compress}`;
      assert.equal(await Deno.readTextFile(`${dir}/out/bad.txt`), "correct bytes", label);
      assert.deepEqual(await Deno.readFile(`${dir}/out/big-bad.bin`), big, label);
      assert.equal(actions.get("good.txt"), "skipped", label);
      assert.equal(actions.get("big-good.bin"), "skipped", label);
      assert.equal(actions.get("bad.txt"), "extracted", label);
      assert.equal(actions.get("big-bad.bin"), "extracted", label);
      assert.equal(result.skipped, 2, label);
      assert.equal((await Deno.lstat(`${dir}/out/good.txt`)).ino, inodes.get("good.txt"), label);
      assert.equal(
        (await Deno.lstat(`${dir}/out/big-good.bin`)).ino,
        inodes.get("big-good.bin"),
        label,
      );
    });
  }
});

Deno.test("extractContainer writes nothing in a dry run", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, generatedTree());
    for (const compress of [false, true]) {
      await createContainer(`${dir}/src`, `${dir}/c-${compress}.ctnr`, { compress });
      const result = await extractContainer(`${dir}/c-${compress}.ctnr`, `${dir}/out`, {
        dryRun: true,
      });
      assert.ok(result.extracted > 200);
      assert.equal(result.failed, 0);
      assert.equal(await exists(`${dir}/out`), false);
    }
    // An existing output folder stays empty.
    await Deno.mkdir(`${dir}/out2`);
    await extractContainer(`${dir}/c-false.ctnr`, `${dir}/out2`, { dryRun: true });
    assert.deepEqual(await listPaths(`${dir}/out2`), []);
  });
});

Deno.test("extractContainer reports a flipped payload byte as an IntegrityError", async () => {
  for (const compress of [false, true]) {
    for (const victim of ["b.txt", "big.bin"]) {
      await withTempDir(async (dir) => {
        await writeTree(`${dir}/src`, corruptibleTree());
        await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { compress, finalize: true });
        await flipPayloadByte(`${dir}/c.ctnr`, victim);
        const label = `${victim}, compress ${compress}`;
        await assert.rejects(
          extractContainer(`${dir}/c.ctnr`, `${dir}/out`, { chunkSize: 4096 }),
          (error: unknown) => {
            assert.ok(error instanceof IntegrityError, `${label}: ${error}`);
            assert.match(error.message, new RegExp(`"${victim.replace(".", "\\.")}"`), label);
            assert.match(error.message, /SHA-256 mismatch/, label);
            return true;
          },
        );
        assert.equal(await exists(`${dir}/out/${victim}`), false, label);
        assert.deepEqual(await tempFilesUnder(dir), [], label);
        // A dry run finds the same fault.
        await assert.rejects(
          extractContainer(`${dir}/c.ctnr`, `${dir}/dry`, { dryRun: true }),
          IntegrityError,
        );
      });
    }
  }
});

/** How a case damages a copy of the container. */
type Damage = "flip a payload byte" | "raise orig_size by one";

/**
 * The read paths of extract, each with a damage its check must catch: small files batched to
 * the write workers (over 512 files), small files written on the main thread, big plain files
 * copied in pieces, big gzip files streamed, and the dry run's own reads.
 */
const READ_PATHS: [string, boolean, string, Damage, { concurrency?: number; dryRun?: boolean }][] =
  [
    ["small file, write workers", false, "d3/f0300.txt", "flip a payload byte", {}],
    ["small file, main thread", false, "d3/f0300.txt", "flip a payload byte", { concurrency: 0 }],
    ["small gzip file, write workers", true, "d3/f0300.txt", "flip a payload byte", {}],
    ["small gzip file, main thread", true, "d3/f0300.txt", "flip a payload byte", {
      concurrency: 0,
    }],
    [
      "small gzip file short of orig_size, write workers",
      true,
      "d3/f0300.txt",
      "raise orig_size by one",
      {},
    ],
    [
      "small gzip file short of orig_size, main thread",
      true,
      "d3/f0300.txt",
      "raise orig_size by one",
      {
        concurrency: 0,
      },
    ],
    ["big plain file, copied in pieces", false, "big.bin", "flip a payload byte", {}],
    ["big gzip file, streamed", true, "big.bin", "flip a payload byte", {}],
    ["small file, dry run", false, "d3/f0300.txt", "flip a payload byte", { dryRun: true }],
    ["big plain file, dry run", false, "big.bin", "flip a payload byte", { dryRun: true }],
  ];

Deno.test("extractContainer verifies every payload on every read path", async (t) => {
  await withTempDir(async (dir) => {
    const spec: TreeSpec = { "big.bin": pseudoRandomBytes((2 << 20) + 123, 9) };
    for (let i = 0; i < 600; i++) {
      spec[`d${Math.floor(i / 100)}/f${String(i).padStart(4, "0")}.txt`] = `file ${i} `.repeat(8);
    }
    await writeTree(`${dir}/src`, spec);
    for (const compress of [false, true]) {
      await createContainer(`${dir}/src`, `${dir}/made-${compress}.ctnr`, { compress });
    }
    for (const [path, compress, victim, damage, options] of READ_PATHS) {
      await t.step(path, async () => {
        const work = `${dir}/case`;
        await Deno.mkdir(work);
        const container = `${work}/c.ctnr`;
        await Deno.copyFile(`${dir}/made-${compress}.ctnr`, container);
        await Deno.copyFile(`${dir}/made-${compress}.ctnr.idx`, `${container}.idx`);
        if (damage === "flip a payload byte") await flipPayloadByte(container, victim);
        else await raiseOrigSize(container, victim);
        await assert.rejects(
          extractContainer(container, `${work}/out`, { ...options, chunkSize: 65536 }),
          (error: unknown) => {
            assert.ok(error instanceof IntegrityError, `${path}: ${error}`);
            assert.ok(error.message.includes(`"${victim}"`), `${path}: ${error.message}`);
            assert.match(
              error.message,
              damage === "flip a payload byte" ? /SHA-256 mismatch/ : /inflates to \d+ bytes/,
            );
            return true;
          },
        );
        assert.equal(await exists(`${work}/out/${victim}`), false, `${path}: the damaged file`);
        assert.deepEqual(await tempFilesUnder(work), [], path);
        await Deno.remove(work, { recursive: true });
      });
    }
  });
});

/** Raise the orig_size of `relpath` in the sibling index by one byte (its payload unchanged). */
async function raiseOrigSize(container: string, relpath: string): Promise<void> {
  const lines = (await Deno.readTextFile(`${container}.idx`)).split("\n").filter(Boolean);
  const changed = lines.map((line) => {
    const entry = JSON.parse(line);
    if (entry.relpath === relpath) entry.orig_size += 1;
    return JSON.stringify(entry);
  });
  await Deno.writeTextFile(`${container}.idx`, changed.join("\n") + "\n");
}

Deno.test("extractContainer keepGoing extracts the other entries and still throws", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, corruptibleTree());
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { compress, finalize: true });
      await flipPayloadByte(`${dir}/c.ctnr`, "b.txt");
      await flipPayloadByte(`${dir}/c.ctnr`, "big.bin");
      const failed: string[] = [];
      await assert.rejects(
        extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
          keepGoing: true,
          onEntryError: (entry, error) => {
            assert.ok(error instanceof IntegrityError);
            failed.push(entry.relpath);
          },
        }),
        IntegrityError,
      );
      assert.deepEqual(failed.sort(), ["b.txt", "big.bin"]);
      assert.deepEqual(await listPaths(`${dir}/out`), ["a.txt", "c.txt", "sub", "sub/z.txt"]);
      assert.equal(await Deno.readTextFile(`${dir}/out/c.txt`), "ccccc");
      assert.deepEqual(await tempFilesUnder(dir), []);
    });
  }
});

Deno.test("extractContainer refuses path traversal in relpaths before writing (zip slip)", async () => {
  await withTempDir(async (dir) => {
    const box = `${dir}/box`;
    await Deno.mkdir(`${box}/sentinel`, { recursive: true });
    const cases = [
      "../evil",
      "../sentinel/evil",
      "a/../../evil",
      "/abs",
      `${box}/sentinel/abs`,
      "./x",
      "a//b",
      "C:/evil",
      "a\\..\\..\\evil",
      "",
      ".",
      "a/./b",
      "a\u0000b",
    ];
    for (const relpath of cases) {
      await writeRawContainer(`${box}/c.ctnr`, [
        { relpath: "good.txt", bytes: "good" },
        { relpath, bytes: "evil" },
        { relpath: "last.txt", bytes: "last" },
      ]);
      await assert.rejects(
        extractContainer(`${box}/c.ctnr`, `${box}/out`),
        (error: unknown) => {
          assert.ok(error instanceof IndexFormatError, `${relpath}: ${error}`);
          assert.ok(error.message.includes(`"${relpath}"`), error.message);
          return true;
        },
      );
      // Lenient mode skips lines that are not JSON, never unsafe entries.
      await assert.rejects(
        extractContainer(`${box}/c.ctnr`, `${box}/out`, { lenient: true }),
        IndexFormatError,
        relpath,
      );
      assert.equal(await exists(`${box}/out`), false, relpath);
      assert.deepEqual(await listPaths(`${box}/sentinel`), [], relpath);
      assert.equal(await exists(`${box}/evil`), false, relpath);
      assert.equal(await exists(`${dir}/evil`), false, relpath);
      assert.equal(await exists("/abs"), false, relpath);
    }
  });
});

Deno.test("extractContainer refuses clashing entries before writing", async () => {
  const cases: { name: string; entries: RawEntry[] }[] = [
    {
      name: "duplicate",
      entries: [{ relpath: "a.txt", bytes: "1" }, { relpath: "a.txt", bytes: "2" }],
    },
    {
      name: "file then below",
      entries: [{ relpath: "x", bytes: "1" }, { relpath: "x/y", bytes: "2" }],
    },
    {
      name: "below then file",
      entries: [{ relpath: "x/y", bytes: "1" }, { relpath: "x", bytes: "2" }],
    },
    {
      name: "deep below a file",
      entries: [{ relpath: "p/q", bytes: "1" }, { relpath: "r", bytes: "" }, {
        relpath: "p/q/r/s",
        bytes: "2",
      }],
    },
    {
      name: "NFC and NFD spellings",
      entries: [{ relpath: "caf\u00e9", bytes: "1" }, { relpath: "cafe\u0301", bytes: "2" }],
    },
    {
      name: "file below a symlink entry",
      entries: [{ relpath: "l", link: "sub" }, { relpath: "l/f", bytes: "through the link" }],
    },
    { name: "dir and file", entries: [{ relpath: "d", dir: true }, { relpath: "d", bytes: "" }] },
  ];
  for (const { name, entries } of cases) {
    await withTempDir(async (dir) => {
      await writeRawContainer(`${dir}/c.ctnr`, [
        { relpath: "first.txt", bytes: "1st" },
        ...entries,
      ]);
      await Deno.mkdir(`${dir}/out`);
      await assert.rejects(
        extractContainer(`${dir}/c.ctnr`, `${dir}/out`),
        UnsafeEntryError,
        name,
      );
      assert.deepEqual(await listPaths(`${dir}/out`), [], name);
    });
  }
});

Deno.test("extractContainer refuses symlinks that point outside unless allowUnsafeLinks", async () => {
  for (const target of ["../../etc", "/etc", "sub/../../x", "../out-sibling"]) {
    await withTempDir(async (dir) => {
      await writeRawContainer(`${dir}/c.ctnr`, [
        { relpath: "a.txt", bytes: "a" },
        { relpath: "sub/ok", link: "../a.txt" },
        { relpath: "escape", link: target },
      ]);
      await assert.rejects(
        extractContainer(`${dir}/c.ctnr`, `${dir}/out`),
        (error: unknown) => {
          assert.ok(error instanceof UnsafeEntryError, `${target}: ${error}`);
          assert.match(error.message, /"escape"/);
          return true;
        },
      );
      assert.equal(await exists(`${dir}/out`), false, target);

      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, { allowUnsafeLinks: true });
      assert.equal(await Deno.readLink(`${dir}/out/escape`), target);
      assert.equal(await Deno.readLink(`${dir}/out/sub/ok`), "../a.txt");
      assert.equal(await Deno.readTextFile(`${dir}/out/sub/ok`), "a");
    });
  }
});

Deno.test("extractContainer refuses a symlink chain that leaves the output folder", async () => {
  // "t" -> "." stays inside; "s" -> "t/.." looks inside lexically but resolves to out/..
  await withTempDir(async (dir) => {
    await writeRawContainer(`${dir}/c.ctnr`, [
      { relpath: "t", link: "." },
      { relpath: "s", link: "t/.." },
    ]);
    await Deno.mkdir(`${dir}/out`);
    let error: unknown;
    try {
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    } catch (e) {
      error = e;
    }
    if (error === undefined) {
      // Whatever was written must still stay inside the output folder.
      const real = await Deno.realPath(`${dir}/out/s`);
      const outReal = await Deno.realPath(`${dir}/out`);
      assert.ok(
        real === outReal || real.startsWith(outReal + "/"),
        `symlink "s" resolves to ${real}, outside ${outReal}`,
      );
    } else {
      assert.ok(error instanceof UnsafeEntryError, String(error));
    }
  });
});

Deno.test("extractContainer never writes through a symlinked folder in the output folder", async () => {
  for (const relpath of ["d/file.txt", "d/deeper/file.txt", "real/d/file.txt"]) {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, { [relpath]: "payload" });
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
      await Deno.mkdir(`${dir}/outside`);
      const linkAt = relpath.startsWith("real/") ? `${dir}/out/real/d` : `${dir}/out/d`;
      await Deno.mkdir(linkAt.slice(0, linkAt.lastIndexOf("/")), { recursive: true });
      await Deno.symlink(`${dir}/outside`, linkAt);
      await assert.rejects(
        extractContainer(`${dir}/c.ctnr`, `${dir}/out`),
        (error: unknown) => {
          assert.ok(error instanceof UnsafeEntryError, `${relpath}: ${error}`);
          assert.match(error.message, /symlink/);
          return true;
        },
      );
      assert.deepEqual(await listPaths(`${dir}/outside`), [], relpath);
      assert.equal((await Deno.lstat(linkAt)).isSymlink, true);
    });
  }
  // An empty-folder entry at the link's path is refused the same way.
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "d": { dir: true } });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    await Deno.mkdir(`${dir}/outside`, { mode: 0o700 });
    await Deno.mkdir(`${dir}/out`);
    await Deno.symlink(`${dir}/outside`, `${dir}/out/d`);
    await assert.rejects(extractContainer(`${dir}/c.ctnr`, `${dir}/out`), UnsafeEntryError);
    assert.equal((await Deno.stat(`${dir}/outside`)).mode! & 0o777, 0o700);
  });
});

Deno.test("extractContainer replaces a symlink at a file's path and leaves its target alone", async () => {
  const variants = [{}, { skipExisting: true }, { verifyExisting: true }];
  for (const options of variants) {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, { "f.txt": "new content", "sub/g.txt": "other" });
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
      // Same size as f.txt, so skipExisting would keep it if it followed the link.
      await writeTree(`${dir}/outside`, { "secret.txt": "old content", "g.txt": "gg" });
      await Deno.mkdir(`${dir}/out/sub`, { recursive: true });
      await Deno.symlink(`${dir}/outside/secret.txt`, `${dir}/out/f.txt`);
      await Deno.symlink(`${dir}/outside/g.txt`, `${dir}/out/sub/g.txt`);
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, options);
      const label = JSON.stringify(options);
      const info = await Deno.lstat(`${dir}/out/f.txt`);
      assert.equal(info.isFile, true, label);
      assert.equal(await Deno.readTextFile(`${dir}/out/f.txt`), "new content", label);
      assert.equal(await Deno.readTextFile(`${dir}/out/sub/g.txt`), "other", label);
      assert.equal(await Deno.readTextFile(`${dir}/outside/secret.txt`), "old content", label);
      assert.equal(await Deno.readTextFile(`${dir}/outside/g.txt`), "gg", label);
    });
  }
});

// ---------------------------------------------------------------------------

/** A tree with the awkward cases: Unicode, spaces, empties, depth, many files, modes, mtimes. */
function generatedTree(): TreeSpec {
  const mtime = 1_600_000_000;
  const spec: TreeSpec = {
    [`unicode/nfc/${"café.txt".normalize("NFC")}`]: "nfc",
    [`unicode/nfd/${"café.txt".normalize("NFD")}`]: "nfd",
    "unicode/ファイル.txt": "japanese",
    "unicode/emoji \u{1F600}.txt": "emoji",
    "unicode/\u05E2\u05D1\u05E8\u05D9\u05EA.txt": "hebrew",
    "names with spaces/a file with spaces.txt": "spaces",
    "names with spaces/ leading": "leading",
    "names with spaces/trailing ": "trailing",
    "names with spaces/quote\"and'apostrophe": "quotes",
    "empties/zero.bin": "",
    "empties/also-zero": { content: "", mtime },
    "hollow": { dir: true },
    "nested/hollow/inner": { dir: true },
    "modes/run.sh": { content: "#!/bin/sh\necho hi\n", mode: 0o755, mtime },
    "modes/private": { content: "private", mode: 0o600, mtime: mtime + 1.25 },
    "modes/readonly.txt": { content: "read only", mode: 0o444, mtime: mtime + 2 },
    "links/to-run": { symlink: "../modes/run.sh" },
    "medium.bin": { content: pseudoRandomBytes(200_000, 2), mtime: mtime + 3 },
  };
  const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join("/");
  spec[`${deep}/leaf.txt`] = { content: "deep leaf", mtime };
  for (let i = 0; i < 200; i++) {
    spec[`many/f${String(i).padStart(3, "0")}.txt`] = {
      content: `file number ${i}\n`.repeat(i % 7),
      mtime: mtime + i * 0.001,
    };
  }
  return spec;
}

function corruptibleTree(): TreeSpec {
  return {
    "a.txt": "aaaaa",
    "b.txt": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "big.bin": pseudoRandomBytes((2 << 20) + 123, 8),
    "c.txt": "ccccc",
    "sub/z.txt": "z",
  };
}

/** Flip one byte in the middle of the stored payload of `relpath`. */
async function flipPayloadByte(container: string, relpath: string): Promise<void> {
  const bytes = await Deno.readFile(container);
  const lines = (await Deno.readTextFile(`${container}.idx`)).split("\n").filter(Boolean);
  const entry = lines.map((line) => JSON.parse(line)).find((e) => e.relpath === relpath);
  assert.ok(entry, `no entry ${relpath}`);
  const at = entry.offset + Math.floor(entry.payload_size / 2);
  bytes[at] = bytes[at]! ^ 0x01;
  await Deno.writeFile(container, bytes);
}

interface RawEntry {
  relpath: string;
  bytes?: string;
  link?: string;
  dir?: true;
}

/** Write a container and its `.idx` by hand, so the index may hold anything. */
async function writeRawContainer(path: string, entries: RawEntry[]): Promise<void> {
  const encoder = new TextEncoder();
  const payloads: Uint8Array[] = [];
  const lines: string[] = [];
  let offset = 0;
  for (const entry of entries) {
    if (entry.link !== undefined) {
      lines.push(JSON.stringify({
        relpath: entry.relpath,
        entry_type: "symlink",
        link_target: entry.link,
      }));
    } else if (entry.dir) {
      lines.push(JSON.stringify({ relpath: entry.relpath, entry_type: "dir" }));
    } else {
      const bytes = encoder.encode(entry.bytes ?? "");
      lines.push(JSON.stringify({
        relpath: entry.relpath,
        offset,
        payload_size: bytes.length,
        orig_size: bytes.length,
        sha256: sha256Hex(bytes),
        compressed: false,
      }));
      payloads.push(bytes);
      offset += bytes.length;
    }
  }
  const all = new Uint8Array(offset);
  let at = 0;
  for (const p of payloads) {
    all.set(p, at);
    at += p.length;
  }
  await Deno.writeFile(path, all);
  await Deno.writeTextFile(`${path}.idx`, lines.map((l) => l + "\n").join(""));
}

async function tempFilesUnder(root: string): Promise<string[]> {
  return (await listPaths(root)).filter((p) => p.includes(".ctnr-tmp"));
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(8 << 20);
  try {
    for (;;) {
      const n = await file.read(buffer);
      if (n === null) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    file.close();
  }
  return hash.digest("hex");
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let w = 0; w < bytes.length;) w += await file.write(bytes.subarray(w));
}

Deno.test("extractContainer keeps a private folder private at every moment: made 0700, its mode set after its contents", async () => {
  await withTempDir(async (dir) => {
    // The folder entry comes after the files (as another writer may put it): the plan knows.
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    const text = new TextEncoder();
    await writer.addFile({ relpath: "priv/a.txt", mode: 0o644 }, text.encode("a"));
    await writer.addFile({ relpath: "priv/sub/b.txt", mode: 0o644 }, text.encode("b"));
    await writer.addFile({ relpath: "pub/c.txt", mode: 0o644 }, text.encode("c"));
    await writer.addFolder({ relpath: "priv", mode: 0o500, mtime: 1_400_000_000 });
    await writer.finalize();
    const seen: string[] = [];
    const modeOf = (relpath: string) => (Deno.statSync(`${dir}/out/${relpath}`).mode ?? 0) & 0o777;
    for (const concurrency of [0, 2]) {
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
        concurrency,
        onEntry: (entry) => {
          if (entry.relpath.startsWith("priv/")) seen.push(modeOf("priv").toString(8));
        },
      });
      assert.equal(modeOf("priv"), 0o500, "its mode, once its files are in");
      assert.equal(modeOf("priv/sub"), 0o755, "a folder without entry is 0755");
      assert.equal(modeOf("pub"), 0o755);
      assert.equal(await Deno.readTextFile(`${dir}/out/priv/sub/b.txt`), "b");
      assert.equal((await Deno.stat(`${dir}/out/priv`)).mtime?.getTime(), 1_400_000_000_000);
      await Deno.chmod(`${dir}/out/priv`, 0o755);
      await Deno.remove(`${dir}/out`, { recursive: true });
    }
    assert.deepEqual(seen, ["700", "700", "700", "700"], "never open to others while filled");
  });
});

Deno.test("extractContainer takes the umask off recorded modes unless samePermissions (tar -p)", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "group/file.txt": { content: "f", mode: 0o666 },
      "implied/x.txt": { content: "x", mode: 0o644 },
    });
    await Deno.chmod(`${dir}/src/group`, 0o775);
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const modes = async (out: string) =>
      await Promise.all(
        ["group", "group/file.txt", "implied", "implied/x.txt"].map(async (p) =>
          ((await Deno.stat(`${out}/${p}`)).mode! & 0o777).toString(8)
        ),
      );
    const before = Deno.umask(0o027);
    try {
      await extractContainer(`${dir}/c.ctnr`, `${dir}/masked`, { samePermissions: false });
      await extractContainer(`${dir}/c.ctnr`, `${dir}/exact`, { samePermissions: true });
    } finally {
      Deno.umask(before);
    }
    assert.deepEqual(await modes(`${dir}/masked`), ["750", "640", "750", "640"]);
    assert.deepEqual(await modes(`${dir}/exact`), ["775", "666", "755", "644"]);
  });
});

Deno.test("packJobs and unpackJobs carry every field of a write job to a worker", () => {
  const jobs: FileJob[] = [
    {
      relpath: "a/ü b.txt",
      target: "/out/a/ü b.txt",
      tmp: "/out/a/.ctnr-tmp-x-1",
      sha256: "ab".repeat(32),
      compressed: true,
      origSize: 12,
      mode: 0o640,
      mtime: 1700000000.123,
      origSha256: "cd".repeat(32),
      verified: true,
      fresh: true,
    },
    {
      relpath: "b",
      target: "/out/b",
      tmp: "/out/.ctnr-tmp-x-2",
      sha256: "ef".repeat(32),
      compressed: false,
      origSize: 0,
      mode: 0o600,
      mtime: null,
      origSha256: null,
      verified: false,
      fresh: false,
    },
  ];
  assert.deepEqual(unpackJobs(packJobs(jobs)), jobs);
  assert.deepEqual(unpackJobs(packJobs([])), []);
});

Deno.test("extractContainer with fsync fsyncs each folder after the renames into it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "top.txt": "top",
      "a/one.txt": "one",
      "a/b/two.txt": "two",
      "hollow": { dir: true },
    });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const synced: string[] = [];
    const real = DENO_FILE_LAYER.syncFolder;
    DENO_FILE_LAYER.syncFolder = async (folder) => {
      synced.push(folder);
      await real(folder);
    };
    try {
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, { fsync: true });
      const folders = new Set(synced.map((f) => f.slice(dir.length + 1)));
      // Every folder a file was renamed into, the empty folder made, and the parent of the
      // output folder this run created (its own name).
      for (const folder of ["out", "out/a", "out/a/b", "out/hollow", ""]) {
        assert.ok(folders.has(folder), `"${folder}" not fsynced: ${[...folders].join(", ")}`);
      }
      synced.length = 0;
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out2`);
      assert.deepEqual(synced, [], "without fsync no folder is fsynced");
    } finally {
      DENO_FILE_LAYER.syncFolder = real;
    }
  });
});

/** Whether strace can trace a child here: installed, and ptrace allowed. */
const STRACE = Deno.build.os === "linux" && await runCommand(
  "strace",
  ["-f", "-qq", "-e", "trace=fsync", "-o", "/dev/null", "true"],
  { timeoutMs: TOOL_TIMEOUT_MS },
).then((run) => run.code === 0, () => false);
if (!STRACE) {
  console.log("the strace test of extract --fsync is ignored: strace missing or refused");
}

Deno.test({
  name:
    "main extract --fsync fsyncs each file's temp file before its rename, small and large files",
  ignore: !STRACE,
  fn: async () => {
    await withTempDir(async (dir) => {
      const spec: TreeSpec = { "top.txt": "top", "sub/large.bin": pseudoRandomBytes(5 << 20, 12) };
      for (let i = 0; i < 8; i++) spec[`sub/small-${i}.txt`] = `small file ${i}\n`;
      await writeTree(`${dir}/src`, spec);
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
      const trace = `${dir}/trace.txt`;
      // -y prints the path of each fsync'ed descriptor; -f follows the write workers' threads.
      const run = await runCommand("strace", [
        "-f",
        "-qq",
        "-y",
        "-e",
        "trace=fsync,fdatasync,rename,renameat,renameat2",
        "-o",
        trace,
        Deno.execPath(),
        "run",
        "--allow-all",
        CLI,
        "extract",
        "--container",
        `${dir}/c.ctnr`,
        "--outdir",
        `${dir}/out`,
        "--fsync",
      ], { timeoutMs: DENO_CHILD_TIMEOUT_MS });
      assert.equal(run.code, 0, run.stderr);
      // Per target: whether its temp file had been fsynced when it was renamed over it.
      const synced = new Set<string>();
      const renamed = new Map<string, boolean>();
      for (const line of (await Deno.readTextFile(trace)).split("\n")) {
        const fsync = line.match(/\b(?:fsync|fdatasync)\(\d+<([^>]*)>/);
        if (fsync) synced.add(fsync[1]!);
        const rename = line.match(
          /\brename(?:at2?)?\((?:[^,"]*, )?"([^"]*)", (?:[^,"]*, )?"([^"]*)"/,
        );
        const [tmp, target] = [rename?.[1], rename?.[2]];
        if (tmp === undefined || target === undefined) continue;
        if (TEMP_NAME.test(tmp.slice(tmp.lastIndexOf("/") + 1))) {
          renamed.set(target.slice(`${dir}/out/`.length), synced.has(tmp));
        }
      }
      assert.deepEqual(
        [...renamed].sort(),
        Object.keys(spec).sort().map((relpath) => [relpath, true]),
        "each file renamed once, from a temp file fsynced before",
      );
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
    });
  },
});

Deno.test("extractContainer skipExisting keeps only regular files: a link or FIFO of the entry's size is replaced", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "f.txt": "twelve bytes", "empty": "" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    await writeTree(dir, { "other.txt": "not the entry's bytes" });
    await Deno.mkdir(`${dir}/out`);
    // A link's own size is the length of its target: 12, f.txt's orig_size.
    await Deno.symlink("../other.txt", `${dir}/out/f.txt`);
    assert.equal((await Deno.lstat(`${dir}/out/f.txt`)).size, 12);
    const fifo = Deno.build.os === "linux";
    if (fifo) {
      const made = await runCommand("mkfifo", [`${dir}/out/empty`], { timeoutMs: TOOL_TIMEOUT_MS });
      assert.equal(made.code, 0, made.stderr);
    }
    const actions = new Map<string, ExtractAction>();
    await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
      skipExisting: true,
      onEntry: (entry, action) => actions.set(entry.relpath, action),
    });
    assert.equal(actions.get("f.txt"), "extracted");
    assert.equal(actions.get("empty"), "extracted");
    assert.equal((await Deno.lstat(`${dir}/out/f.txt`)).isFile, true, "the link is replaced");
    assert.equal(await Deno.readTextFile(`${dir}/out/f.txt`), "twelve bytes");
    assert.equal((await Deno.lstat(`${dir}/out/empty`)).isFile, true, "the FIFO is replaced");
    assert.equal(await Deno.readTextFile(`${dir}/other.txt`), "not the entry's bytes");
  });
});

Deno.test("extractContainer leaves no temp link behind when a link cannot be renamed over a folder", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a", "link": { symlink: "a.txt" } });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    await writeTree(`${dir}/out`, { "link/inside.txt": "a folder stands where the link goes" });
    await assert.rejects(extractContainer(`${dir}/c.ctnr`, `${dir}/out`), (error: unknown) => {
      assert.ok(error instanceof UnsafeEntryError);
      assert.match(error.message, /"link": a folder stands at its path/);
      return true;
    });
    assert.deepEqual(await listPaths(`${dir}/out`), ["a.txt", "link", "link/inside.txt"]);
  });
});

Deno.test("extractContainer without keepGoing stops at a failed entry: the entries after it are not extracted", async () => {
  await withTempDir(async (dir) => {
    // In index order: the large file that fails (streamed on this thread), then everything else.
    const spec: TreeSpec = { "a-large.bin": pseudoRandomBytes((2 << 20) + 5, 13), "c.txt": "c" };
    for (let i = 0; i < 20; i++) spec[`b/f${i}.txt`] = `file ${i}`;
    await writeTree(`${dir}/src`, spec);
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    await flipPayloadByte(`${dir}/c.ctnr`, "a-large.bin");
    const extracted: string[] = [];
    await assert.rejects(
      extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
        onEntry: (entry) => extracted.push(entry.relpath),
      }),
      (error: unknown) => {
        assert.ok(error instanceof IntegrityError);
        assert.match(error.message, /"a-large\.bin"/);
        return true;
      },
    );
    assert.deepEqual(extracted, []);
    assert.deepEqual(await listPaths(`${dir}/out`), []);
  });
});

Deno.test("decodePayload stops inflating a gzip payload one byte past orig_size", () => {
  const bomb = new Uint8Array(gzipSync(new Uint8Array(8 << 20), { level: 9 }));
  const job: FileJob = {
    relpath: "bomb.bin",
    target: "/nonexistent/bomb.bin",
    tmp: "/nonexistent/.ctnr-tmp-x-1",
    sha256: sha256Hex(bomb),
    compressed: true,
    origSize: 10,
    mode: 0o644,
    mtime: null,
    origSha256: null,
  };
  assert.throws(() => decodePayload(job, bomb), (error: unknown) => {
    assert.ok(error instanceof IntegrityError, String(error));
    // Stopped by maxOutputLength (orig_size + 1), not measured after inflating all 8 MiB.
    assert.match(
      error.message,
      /"bomb\.bin": corrupt gzip payload, or it inflates past orig_size 10/,
    );
    return true;
  });
});

Deno.test("extractContainer in a dry run writes nothing, not even the case probe's temp file", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    await Deno.mkdir(`${dir}/watched`);
    const watcher = Deno.watchFs(`${dir}/watched`);
    const events: string[] = [];
    const watching = (async () => {
      for await (const event of watcher) events.push(`${event.kind} ${event.paths.join(",")}`);
    })();
    try {
      await extractContainer(`${dir}/c.ctnr`, `${dir}/watched/out`, { dryRun: true });
      await extractContainer(`${dir}/c.ctnr`, `${dir}/watched`, { dryRun: true });
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      watcher.close();
      await watching;
    }
    assert.deepEqual(events, []);
    assert.deepEqual(await listPaths(`${dir}/watched`), []);
  });
});

Deno.test("extractContainer reports planning and writing to onProgress", async () => {
  await withTempDir(async (dir) => {
    const big = pseudoRandomBytes(5 << 20, 3); // over 4 MiB: streamed in pieces
    const files: Record<string, string | Uint8Array> = { "big.bin": big };
    for (let i = 0; i < 600; i++) files[`d/f${i}.txt`] = `file ${i}`; // write workers start
    await writeTree(`${dir}/src`, files);
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    const totalBytes = Object.values(files).reduce((n, f) => n + f.length, 0);
    for (const dryRun of [false, true]) {
      const seen: ExtractProgress[] = [];
      const objects = new Set<ExtractProgress>();
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out${dryRun}`, {
        dryRun,
        chunkSize: 1 << 20,
        onProgress: (p) => {
          objects.add(p);
          seen.push({ ...p });
        },
      });
      const label = `dryRun ${dryRun}`;
      assert.equal(objects.size, 1, `${label}: one object, updated in place`);
      const planning = seen.filter((p) => p.phase === "planning");
      const writing = seen.filter((p) => p.phase === "writing");
      assert.equal(seen.indexOf(writing[0]!), planning.length, `${label}: planning first`);
      assert.ok(planning[0]!.indexBytes > 0 && planning[0]!.indexBytesRead === 0, label);
      assert.equal(planning.at(-1)!.indexBytesRead, planning[0]!.indexBytes, label);
      assert.deepEqual(
        [writing[0]!.entriesDone, writing[0]!.totalEntries, writing[0]!.totalBytes],
        [0, 601, totalBytes],
        label,
      );
      const last = writing.at(-1)!;
      assert.deepEqual([last.entriesDone, last.bytesDone], [601, totalBytes], label);
      const pieces = writing.filter((p) => p.currentEntry === "big.bin");
      assert.ok(pieces.length >= 5, `${label}: big.bin reported piece by piece (${pieces.length})`);
      assert.ok(
        writing.every((p, i) => i === 0 || p.bytesDone >= writing[i - 1]!.bytesDone),
        `${label}: bytes only grow`,
      );
    }
  });
});

Deno.test("extractContainer gives a folder the recorded millisecond of its mtime (node's futimes truncates)", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    // 1796096985.929 as a double lies a little below .929: truncated to nanoseconds it was .928999900.
    for (const ms of [1796096985929, 1600000000001, 1700000000999]) {
      await writer.addFolder({ relpath: `d${ms}`, mode: 0o750, mtime: ms / 1000 });
    }
    await writer.finalize();
    await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    for (const ms of [1796096985929, 1600000000001, 1700000000999]) {
      assert.equal(Deno.statSync(`${dir}/out/d${ms}`).mtime?.getTime(), ms);
    }
  });
});
