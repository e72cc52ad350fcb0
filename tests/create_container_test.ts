import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  ConflictError,
  createContainer,
  type CreateProgress,
  type CtnrWarning,
  DENO_FILE_LAYER,
  EMPTY_SHA256,
  extractContainer,
  type FileLayer,
  finalizeContainer,
  findTrailer,
  UsageError,
} from "../mod.ts";
import {
  diffTrees,
  exists,
  fixture,
  memorySource,
  pseudoRandomBytes,
  runCli,
  runCommand,
  TOOL_TIMEOUT_MS,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

/** One parsed NDJSON index line, wire names. */
type WireEntry = Record<string, unknown>;

Deno.test("createContainer writes byte-identical index and container for the same tree", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, sampleTree());
      const big = pseudoRandomBytes(3 << 20, 7);
      await Deno.writeFile(`${dir}/src/data/big.bin`, big);
      await createContainer(`${dir}/src`, `${dir}/one.ctnr`, { compress });
      await createContainer(`${dir}/src`, `${dir}/two.ctnr`, { compress, concurrency: 1 });
      assert.deepEqual(
        await Deno.readFile(`${dir}/two.ctnr.idx`),
        await Deno.readFile(`${dir}/one.ctnr.idx`),
        `index differs (compress ${compress})`,
      );
      assert.deepEqual(
        await Deno.readFile(`${dir}/two.ctnr`),
        await Deno.readFile(`${dir}/one.ctnr`),
        `container differs (compress ${compress})`,
      );
      const entries = await readIndex(`${dir}/one.ctnr.idx`);
      assert.ok(entries.length >= 8);
      assert.ok(entries.every((e) => e.entry_type !== undefined || e.compressed === compress));
    });
  }
});

Deno.test("createContainer packs over 512 small files identically run after run", async () => {
  await withTempDir(async (dir) => {
    const spec: Record<string, string> = {};
    for (let i = 0; i < 800; i++) {
      spec[`f${Math.floor(i / 100)}/n${String(i).padStart(4, "0")}.txt`] = `file ${i}\n`.repeat(
        i % 13,
      );
    }
    await writeTree(`${dir}/src`, spec);
    for (const compress of [false, true]) {
      await createContainer(`${dir}/src`, `${dir}/a-${compress}.ctnr`, { compress });
      await createContainer(`${dir}/src`, `${dir}/b-${compress}.ctnr`, {
        compress,
        concurrency: 1,
      });
      const index = await Deno.readFile(`${dir}/a-${compress}.ctnr.idx`);
      assert.deepEqual(await Deno.readFile(`${dir}/b-${compress}.ctnr.idx`), index);
      assert.deepEqual(
        await Deno.readFile(`${dir}/b-${compress}.ctnr`),
        await Deno.readFile(`${dir}/a-${compress}.ctnr`),
      );
      const relpaths = (await readIndex(`${dir}/a-${compress}.ctnr.idx`)).map((e) => e.relpath);
      assert.deepEqual(relpaths, Object.keys(spec).sort());
      await extractContainer(`${dir}/a-${compress}.ctnr`, `${dir}/out-${compress}`);
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out-${compress}`), []);
    }
  });
});

Deno.test("createContainer --compress packs 2,000 files of 100 B to 40 KB, with read workers and without: a read batch's buffer is reused only once all its files are added", async () => {
  await withTempDir(async (dir) => {
    // The failing input (review of issue 17): random bytes, so the gzip members are as big as
    // the files and a read batch passes its 2 MiB budget; the files past it were read and
    // gzipped on their own, their payloads held between the batch's. The batch's buffer went
    // back to the read workers while some of its payloads still waited to be written:
    // "TypeError: Cannot perform %TypedArray%.prototype.set on a detached ... ArrayBuffer".
    let seed = 2;
    const size = () => 100 + (seed = (seed * 1103515245 + 12345) >>> 0) % 39_900;
    for (let d = 0; d < 20; d++) {
      await Deno.mkdir(`${dir}/src/d${d}`, { recursive: true });
      for (let f = 0; f < 100; f++) {
        await Deno.writeFile(
          `${dir}/src/d${d}/f${f}.bin`,
          pseudoRandomBytes(size(), d * 100 + f + 1),
        );
      }
    }
    // With read workers the buffer was moved away (the TypeError); read on this thread
    // (`concurrency: 0`) it was filled again under them: create exited 0 with payloads that did
    // not match their SHA-256 (49 of 2,000 in the second review).
    for (const concurrency of [undefined, 0]) {
      const c = `${dir}/c${concurrency ?? ""}.ctnr`;
      const result = await createContainer(`${dir}/src`, c, {
        compress: true,
        ...(concurrency === undefined ? {} : { concurrency }),
      });
      assert.equal(result.added, 2000);
      await extractContainer(c, `${dir}/out${concurrency ?? ""}`);
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out${concurrency ?? ""}`), []);
    }
  });
});

Deno.test("createContainer lays payloads end to end in walk order", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, sampleTree());
    await Deno.writeFile(`${dir}/src/data/big.bin`, pseudoRandomBytes((1 << 20) + 5000, 3));
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const files = (await readIndex(`${dir}/c.ctnr.idx`)).filter((e) => e.entry_type === undefined);
    let end = 0;
    for (const entry of files) {
      assert.equal(entry.offset, end, `offset of ${entry.relpath}`);
      end += entry.payload_size as number;
    }
    assert.equal((await Deno.stat(`${dir}/c.ctnr`)).size, end);
    assert.equal(result.containerSize, end);
    const container = await Deno.readFile(`${dir}/c.ctnr`);
    for (const entry of files) {
      const original = await Deno.readFile(`${dir}/src/${entry.relpath}`);
      const start = entry.offset as number;
      assert.deepEqual(container.subarray(start, start + original.length), original);
      assert.equal(entry.sha256, sha256Hex(original));
    }
  });
});

Deno.test("createContainer walks depth first with names sorted by code point", async () => {
  await withTempDir(async (dir) => {
    // UTF-16 order would put U+1F600 (a surrogate pair) before U+FF21; code point order does not.
    await writeTree(`${dir}/src`, {
      "b.txt": "b",
      "z.txt": "z",
      "a/z.txt": "az",
      "a/b/c.txt": "abc",
      "a-b.txt": "a-b",
      "A.txt": "A",
      "é.txt": "e",
      "\uFF21.txt": "fullwidth A",
      "\u{1F600}.txt": "emoji",
      "m/empty": { dir: true },
      "m.txt": "m",
    });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const relpaths = (await readIndex(`${dir}/c.ctnr.idx`)).map((e) => e.relpath);
    assert.deepEqual(relpaths, [
      "A.txt",
      "a/b/c.txt",
      "a/z.txt",
      "a-b.txt",
      "b.txt",
      "m/empty",
      "m.txt",
      "z.txt",
      "é.txt",
      "\uFF21.txt",
      "\u{1F600}.txt",
    ]);
  });
});

Deno.test("createContainer records empty files with payload_size 0", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "empty.bin": "", "after.txt": "after", "d/zero": "" });
    for (const compress of [false, true]) {
      const container = `${dir}/c-${compress}.ctnr`;
      await createContainer(`${dir}/src`, container, { compress });
      const entries = byRelpath(await readIndex(`${container}.idx`));
      const empty = entries.get("empty.bin");
      assert.ok(empty);
      assert.equal(empty.orig_size, 0);
      assert.equal(empty.entry_type, undefined);
      if (compress) {
        // An empty gzip member still has a header and a trailer.
        assert.ok((empty.payload_size as number) > 0);
        assert.equal(empty.orig_sha256, EMPTY_SHA256);
      } else {
        assert.equal(empty.payload_size, 0);
        assert.equal(empty.sha256, EMPTY_SHA256);
      }
      assert.equal(entries.get("d/zero")?.orig_size, 0);
      await extractContainer(container, `${dir}/out-${compress}`);
      assert.deepEqual(await Deno.readFile(`${dir}/out-${compress}/empty.bin`), new Uint8Array());
      assert.equal(await Deno.readTextFile(`${dir}/out-${compress}/after.txt`), "after");
    }
  });
});

Deno.test("createContainer records empty folders as dir entries", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "empty": { dir: true },
      "full/a.txt": "a",
      "outer/inner": { dir: true },
      "mixed/file.txt": "f",
      "mixed/hollow": { dir: true },
    });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const entries = await readIndex(`${dir}/c.ctnr.idx`);
    const dirs = entries.filter((e) => e.entry_type === "dir");
    assert.deepEqual(dirs.map((e) => e.relpath), ["empty", "mixed/hollow", "outer/inner"]);
    for (const entry of dirs) {
      assert.equal(entry.offset, undefined, "a dir entry carries no offset");
      assert.equal(entry.payload_size, undefined);
    }
    const relpaths = entries.map((e) => e.relpath);
    assert.ok(!relpaths.includes("full"), "a folder holding files is not an entry");
    assert.ok(!relpaths.includes("outer"), "a folder holding a recorded folder is not an entry");
    assert.ok(!relpaths.includes("mixed"));

    await createContainer(`${dir}/src`, `${dir}/no-dirs.ctnr`, { emptyDirs: false });
    const plain = await readIndex(`${dir}/no-dirs.ctnr.idx`);
    assert.deepEqual(plain.map((e) => e.relpath), ["full/a.txt", "mixed/file.txt"]);
  });
});

Deno.test("createContainer stores symlinks as symlink entries with link_target", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "a.txt": "target",
      "link": { symlink: "a.txt" },
      "d/dangling": { symlink: "../missing/x" },
      "dirlink": { symlink: "d" },
    });
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const entries = byRelpath(await readIndex(`${dir}/c.ctnr.idx`));
    assert.equal(entries.get("link")?.entry_type, "symlink");
    assert.equal(entries.get("link")?.link_target, "a.txt");
    assert.equal(entries.get("link")?.offset, undefined);
    assert.equal(entries.get("d/dangling")?.link_target, "../missing/x");
    assert.equal(entries.get("dirlink")?.entry_type, "symlink");
    assert.equal(entries.get("dirlink")?.link_target, "d");
    assert.ok(!entries.has("dirlink/dangling"), "a symlinked folder is not followed");
    assert.equal(result.leftOut, 0);
    assert.equal(result.added, 4);
  });
});

Deno.test("createContainer leaves symlinks out with a warning when symlinks is skip", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "target", "link": { symlink: "a.txt" } });
    const warnings: string[] = [];
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      symlinks: "skip",
      onWarning: (message) => warnings.push(message.message),
    });
    const relpaths = (await readIndex(`${dir}/c.ctnr.idx`)).map((e) => e.relpath);
    assert.deepEqual(relpaths, ["a.txt"]);
    assert.equal(result.leftOut, 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /"link"/);
  });
});

Deno.test("createContainer keeps a folder whose only content is a skipped symlink, as an empty folder", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "a.txt": "a",
      "onlylink/l": { symlink: "../a.txt" },
      "nested/deeper/l": { symlink: "x" },
    });
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { symlinks: "skip" });
    const entries = (await readIndex(`${dir}/c.ctnr.idx`)).map((e) =>
      `${e.entry_type ?? "file"}:${e.relpath}`
    );
    assert.deepEqual(entries, ["file:a.txt", "dir:nested/deeper", "dir:onlylink"]);
    assert.equal(result.leftOut, 2);
    await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.ok((await Deno.lstat(`${dir}/out/onlylink`)).isDirectory);
    assert.ok((await Deno.lstat(`${dir}/out/nested/deeper`)).isDirectory);
  });
});

Deno.test("createContainer leaves a FIFO out with a warning and never opens it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a", "z.txt": "z" });
    const made = await runCommand("mkfifo", [`${dir}/src/pipe`], { timeoutMs: TOOL_TIMEOUT_MS });
    assert.equal(made.code, 0, `mkfifo failed: ${made.stderr}`);
    const warnings: string[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), 10_000);
    });
    try {
      const run = createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
        onWarning: (message) => warnings.push(message.message),
      });
      const outcome = await Promise.race([run, timeout]);
      if (outcome === "timeout") {
        // Unblock a reader stuck on the FIFO so the process can end, then fail.
        const writer = await Deno.open(`${dir}/src/pipe`, { write: true });
        writer.close();
        await run.catch(() => {});
        assert.fail("createContainer hung on a FIFO");
      }
      assert.equal(outcome.leftOut, 1);
      assert.equal(outcome.added, 2);
    } finally {
      clearTimeout(timer);
    }
    const relpaths = (await readIndex(`${dir}/c.ctnr.idx`)).map((e) => e.relpath);
    assert.deepEqual(relpaths, ["a.txt", "z.txt"]);
    assert.ok(warnings.some((w) => w.includes('"pipe"')), warnings.join("\n"));
  });
});

Deno.test("createContainer never packs its own container or index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a", "sub/b.txt": "b" });
    // A status file inside src is refused (tests/output_paths_test.ts).
    const warnings: string[] = [];
    const options = {
      index: `${dir}/src/sub/c.idx`,
      statusFile: `${dir}/status.txt`,
      onWarning: (w: CtnrWarning) => warnings.push(w.message),
    };
    // A trailing slash on src must not defeat the exclusion.
    await createContainer(`${dir}/src/`, `${dir}/src/c.ctnr`, options);
    await Deno.writeTextFile(`${dir}/src/new.txt`, "new");
    const second = await createContainer(`${dir}/src`, `${dir}/src/c.ctnr`, options);
    assert.equal(second.added, 1);
    const relpaths = (await readIndex(`${dir}/src/sub/c.idx`)).map((e) => e.relpath);
    assert.deepEqual(relpaths, ["a.txt", "sub/b.txt", "new.txt"]);
    // By their own names they are skipped silently (by identity only an alias gets a warning).
    assert.deepEqual(warnings, []);
  });
});

Deno.test("createContainer never packs its own container when src ends with several slashes", async () => {
  for (const spelling of ["/src//", "/src/.", "//src", "/./src/"]) {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, { "a.txt": "a" });
      await createContainer(`${dir}${spelling}`, `${dir}/src/c.ctnr`);
      await Deno.writeTextFile(`${dir}/src/b.txt`, "b");
      await createContainer(`${dir}${spelling}`, `${dir}/src/c.ctnr`);
      const relpaths = (await readIndex(`${dir}/src/c.ctnr.idx`)).map((e) => e.relpath);
      assert.deepEqual(relpaths, ["a.txt", "b.txt"], `src spelled "<tmp>${spelling}"`);
    });
  }
});

Deno.test("createContainer refuses out-of-range batching and chunk options", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    const cases = [
      { fsyncEvery: 10, indexBatch: 5 },
      { fsyncEvery: 2, indexBatch: 1 },
      { fsyncEvery: 0 },
      { fsyncEvery: -3 },
      { fsyncEvery: 1, indexBatch: 0 },
      { fsyncEvery: 1, indexBatch: -1 },
      { fsyncEvery: 1.5 },
      { chunkSize: 1023 },
      { chunkSize: 10 },
      { chunkSize: 0 },
      { chunkSize: -1024 },
    ];
    for (const options of cases) {
      await assert.rejects(
        createContainer(`${dir}/src`, `${dir}/c.ctnr`, options),
        UsageError,
        JSON.stringify(options),
      );
      assert.equal(await exists(`${dir}/c.ctnr`), false, JSON.stringify(options));
      assert.equal(await exists(`${dir}/c.ctnr.idx`), false, JSON.stringify(options));
    }
    const ok = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      fsyncEvery: 2,
      indexBatch: 3,
      chunkSize: 1024,
    });
    assert.equal(ok.added, 1);
  });
});

Deno.test("createContainer appends index batches only after the container is synced", async () => {
  for (const [fsyncEvery, indexBatch] of [[1, 1], [2, 2], [2, 4], [3, 7]] as const) {
    await withTempDir(async (dir) => {
      const spec: Record<string, string> = {};
      for (let i = 0; i < 10; i++) spec[`f${i}.txt`] = `file ${i}`;
      await writeTree(`${dir}/src`, spec);
      const events: string[] = [];
      const committed: number[] = [];
      let sinceCommit = 0;
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
        fsyncEvery,
        indexBatch,
        fileLayer: recordingLayer(events),
        onEntry: () => sinceCommit++,
        onProgress: () => {
          if (sinceCommit > 0) committed.push(sinceCommit);
          sinceCommit = 0;
        },
      });
      const label = `fsyncEvery ${fsyncEvery}, indexBatch ${indexBatch}`;
      const indexAppends = events.filter((e) => e === "index:append").length;
      assert.equal(indexAppends, Math.ceil(10 / indexBatch), label);
      let dirty = false;
      for (const event of events) {
        if (event === "container:append") dirty = true;
        if (event === "container:sync") dirty = false;
        if (event === "index:append") assert.equal(dirty, false, `${label}: ${events.join(" ")}`);
      }
      const syncs = events.filter((e) => e === "container:sync").length;
      assert.ok(syncs >= Math.floor(10 / fsyncEvery), `${label}: ${syncs} syncs`);
      const lines = await readIndex(`${dir}/c.ctnr.idx`);
      assert.equal(lines.length, 10, label);
      assert.ok(committed.every((n) => n === indexBatch), `${label}: ${committed}`);
    });
  }
});

Deno.test("createContainer makes the names of a new container and index durable before the first payload", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha", "b.txt": "beta" });
    const layouts = [["box/c.ctnr", "box/c.ctnr.idx"], ["box/c.ctnr", "idx/c.idx"]] as const;
    for (const [container, index] of layouts) {
      const events: string[] = [];
      await createContainer(`${dir}/src`, `${dir}/${container}`, {
        index: `${dir}/${index}`,
        fileLayer: recordingLayer(events),
      });
      const firstPayload = events.indexOf("container:append");
      const created = Math.max(events.indexOf("container:create"), events.indexOf("index:create"));
      assert.ok(firstPayload > 0 && created >= 0, events.join(" "));
      // Both files exist, and an fsync of each one's folder made its name durable, before any
      // payload: a crash never leaves committed entries in a file whose name was lost.
      const synced = events.slice(created, firstPayload).filter((e) => e.startsWith("folder:sync"));
      for (const folder of new Set([dirname(container), dirname(index)])) {
        assert.ok(synced.includes(`folder:sync ${folder}`), `${folder}: ${events.join(" ")}`);
      }
      await Deno.remove(`${dir}/box`, { recursive: true });
      await Deno.remove(`${dir}/idx`, { recursive: true }).catch(() => {});
    }
  });
});

Deno.test("createContainer copies a removed index out of the trailer durably before it cuts the trailer", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      finalize: true,
      removeIndexOnFinalize: true,
    });
    await writeTree(`${dir}/src`, { "b.txt": "beta" });
    const events: string[] = [];
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { fileLayer: recordingLayer(events) });
    // Written to a temp file, fsynced, renamed to the index, the folder fsynced: only then may
    // the trailer, the only other copy of the index, be cut away.
    const order = [
      "tmp:create",
      "tmp:append",
      "tmp:sync",
      "tmp:rename-to-index",
      "folder:sync",
      "container:truncate",
    ];
    let at = -1;
    for (const step of order) {
      const next = events.findIndex((e, i) => i > at && e.startsWith(step));
      assert.ok(next > at, `"${step}" missing or out of order: ${events.join(" ")}`);
      at = next;
    }
    assert.equal(await exists(`${dir}/c.ctnr.idx.ctnr-tmp`), false);
  });
});

Deno.test("createContainer makes the trailer durable before it removes the index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha" });
    const events: string[] = [];
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      finalize: true,
      removeIndexOnFinalize: true,
      fileLayer: recordingLayer(events),
    });
    const removed = events.indexOf("index:remove");
    const lastAppend = events.lastIndexOf("container:append");
    assert.ok(removed > lastAppend && lastAppend > 0, events.join(" "));
    assert.ok(events.slice(lastAppend, removed).includes("container:sync"), events.join(" "));
  });
});

Deno.test("createContainer writes no container and no index in a dry run", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, sampleTree());
    for (const compress of [false, true]) {
      const result = await createContainer(`${dir}/src`, `${dir}/out/c.ctnr`, {
        dryRun: true,
        compress,
        finalize: true,
      });
      assert.ok(result.added > 0);
      assert.ok(result.payloadBytes > 0);
      assert.equal(result.containerSize, 0);
      assert.equal(result.finalized, false);
      assert.equal(await exists(`${dir}/out/c.ctnr`), false);
      assert.equal(await exists(`${dir}/out/c.ctnr.idx`), false);
    }
  });
});

Deno.test("createContainer finalize appends a trailer that ends with ctnr's footer", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, sampleTree());
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    assert.equal(result.finalized, true);
    const bytes = await Deno.readFile(`${dir}/c.ctnr`);
    const index = await Deno.readFile(`${dir}/c.ctnr.idx`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const size = bytes.length;
    assert.equal(result.containerSize, size);
    assert.equal(new TextDecoder().decode(bytes.subarray(size - 8)), "CTNRv1ix");
    assert.equal(Number(view.getBigUint64(size - 16, true)), index.length);
    const trailerOffset = size - 16 - index.length - 16;
    assert.equal(
      new TextDecoder().decode(bytes.subarray(trailerOffset, trailerOffset + 8)),
      "CTNRv1__",
    );
    assert.equal(Number(view.getBigUint64(trailerOffset + 8, true)), index.length);
    assert.deepEqual(bytes.subarray(trailerOffset + 16, size - 16), index);

    const files = (await readIndex(`${dir}/c.ctnr.idx`)).filter((e) => e.entry_type === undefined);
    const payloadEnd = Math.max(
      ...files.map((e) => (e.offset as number) + (e.payload_size as number)),
    );
    assert.equal(trailerOffset, payloadEnd);
    const found = await findTrailer(memorySource(bytes));
    assert.deepEqual(found, {
      trailerOffset,
      indexOffset: trailerOffset + 16,
      indexLength: index.length,
      hasFooter: true,
    });
  });
});

Deno.test("finalizeContainer is idempotent", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, sampleTree());
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const plain = await Deno.readFile(`${dir}/c.ctnr`);
    assert.equal(await findTrailer(memorySource(plain)), null);
    assert.equal(await finalizeContainer(`${dir}/c.ctnr`), true);
    const once = await Deno.readFile(`${dir}/c.ctnr`);
    assert.ok(once.length > plain.length);
    assert.deepEqual(once.subarray(0, plain.length), plain);
    assert.notEqual(await findTrailer(memorySource(once)), null);
    assert.equal(await finalizeContainer(`${dir}/c.ctnr`), false);
    assert.deepEqual(await Deno.readFile(`${dir}/c.ctnr`), once);

    await createContainer(`${dir}/src`, `${dir}/f.ctnr`, { finalize: true });
    const finalized = await Deno.readFile(`${dir}/f.ctnr`);
    assert.equal(await finalizeContainer(`${dir}/f.ctnr`), false);
    assert.deepEqual(await Deno.readFile(`${dir}/f.ctnr`), finalized);
  });
});

Deno.test("createContainer removes the index after finalizing when removeIndexOnFinalize is set", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, sampleTree());
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      finalize: true,
      removeIndexOnFinalize: true,
    });
    assert.equal(result.finalized, true);
    assert.equal(await exists(`${dir}/c.ctnr.idx`), false);
    await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);

    // Without finalize the option has nothing to do: the index stays.
    await createContainer(`${dir}/src`, `${dir}/k.ctnr`, { removeIndexOnFinalize: true });
    assert.equal(await exists(`${dir}/k.ctnr.idx`), true);
  });
});

Deno.test("createContainer resumes and adds only the new files", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, sampleTree());
      const first = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { compress });
      assert.equal(first.resumed, false);
      const before = await Deno.readFile(`${dir}/c.ctnr`);
      await writeTree(`${dir}/src`, {
        "new.txt": "new file",
        "0-first.txt": "sorts first",
        "brand/new/deep.txt": "deep",
        "empty/now-full.txt": "was an empty folder",
      });
      const added: string[] = [];
      const second = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
        compress,
        onEntry: (entry) => added.push(entry.relpath),
      });
      assert.equal(second.resumed, true);
      assert.equal(second.added, 4);
      // "empty" now holds a file, so the walk no longer yields it as a folder.
      assert.equal(second.alreadyPresent, first.added - 1);
      assert.equal(second.totalEntries, first.added + 4);
      assert.deepEqual(added.sort(), [
        "0-first.txt",
        "brand/new/deep.txt",
        "empty/now-full.txt",
        "new.txt",
      ]);
      const after = await Deno.readFile(`${dir}/c.ctnr`);
      assert.deepEqual(
        after.subarray(0, before.length),
        before,
        "old payloads are kept as they were",
      );
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);

      const third = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { compress });
      assert.equal(third.added, 0);
      assert.deepEqual(await Deno.readFile(`${dir}/c.ctnr`), after);
    });
  }
});

Deno.test("createContainer recovers the index of a finalized container from its trailer", async () => {
  const variants = [
    { removeIndex: true, finalizeAgain: false },
    { removeIndex: true, finalizeAgain: true },
    { removeIndex: false, finalizeAgain: false },
  ];
  for (const { removeIndex, finalizeAgain } of variants) {
    const label = `removeIndex ${removeIndex}, finalizeAgain ${finalizeAgain}`;
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, sampleTree());
      const first = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
        finalize: true,
        removeIndexOnFinalize: removeIndex,
      });
      assert.equal(await exists(`${dir}/c.ctnr.idx`), !removeIndex);
      const firstSize = (await Deno.stat(`${dir}/c.ctnr`)).size;
      await writeTree(`${dir}/src`, { "later/one.txt": "one", "later/two.txt": "two" });
      const second = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
        finalize: finalizeAgain,
      });
      assert.equal(second.resumed, true, label);
      assert.equal(second.alreadyPresent, first.added, label);
      assert.equal(second.added, 2, label);
      const size = (await Deno.stat(`${dir}/c.ctnr`)).size;
      assert.ok(size > 0, `${label}: the container was truncated to zero`);
      if (!finalizeAgain) {
        assert.ok(size < firstSize, `${label}: the old trailer should be cut away`);
      }
      const relpaths = (await readIndex(`${dir}/c.ctnr.idx`)).map((e) => e.relpath);
      assert.equal(relpaths.length, first.added + 2, label);
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), [], label);
    });
  }
});

Deno.test("createContainer refuses a non-empty container that has no index and no trailer", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    const precious = pseudoRandomBytes(70_000, 11);
    await Deno.writeFile(`${dir}/c.ctnr`, precious);
    await assert.rejects(
      createContainer(`${dir}/src`, `${dir}/c.ctnr`),
      (error: unknown) => {
        assert.ok(error instanceof ConflictError, String(error));
        assert.match(error.message, /c\.ctnr/);
        return true;
      },
    );
    assert.deepEqual(await Deno.readFile(`${dir}/c.ctnr`), precious);
    assert.equal(await exists(`${dir}/c.ctnr.idx`), false);
  });
});

Deno.test("createContainer refuses to resume over a JSON array index and appends nothing to it", async () => {
  await withTempDir(async (dir) => {
    // An older tool's index: the entries of external.ctnr as one JSON array.
    await Deno.copyFile(fixture("peer/external.ctnr"), `${dir}/c.ctnr`);
    await Deno.copyFile(fixture("peer/array-index.json"), `${dir}/old.json`);
    await Deno.mkdir(`${dir}/src`);
    await Deno.copyFile(fixture("peer/src/hello.txt"), `${dir}/src/hello.txt`);
    await Deno.writeTextFile(`${dir}/src/new.txt`, "a file the index does not hold yet");
    const index = await Deno.readFile(`${dir}/old.json`);
    const container = await Deno.readFile(`${dir}/c.ctnr`);
    await assert.rejects(
      createContainer(`${dir}/src`, `${dir}/c.ctnr`, { index: `${dir}/old.json` }),
      (error: unknown) => {
        assert.ok(error instanceof ConflictError, String(error));
        assert.match(error.message, /old\.json": it is a JSON array\/object, not NDJSON/);
        return true;
      },
    );
    assert.deepEqual(await Deno.readFile(`${dir}/old.json`), index);
    assert.deepEqual(await Deno.readFile(`${dir}/c.ctnr`), container);
  });
});

Deno.test("create --finalize-only refuses a container shorter than its index says and leaves it as it is", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha", "big.bin": pseudoRandomBytes(100_000, 21) });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    // A copy cut short: the last payload lacks its last 1000 bytes.
    const full = await Deno.readFile(`${dir}/c.ctnr`);
    const short = full.subarray(0, full.length - 1000);
    await Deno.writeFile(`${dir}/c.ctnr`, short);
    const index = await Deno.readFile(`${dir}/c.ctnr.idx`);
    const run = await runCli("create", "--container", `${dir}/c.ctnr`, "--finalize-only");
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`it has ${short.length} bytes but its index needs ${full.length}`),
    );
    assert.deepEqual(await Deno.readFile(`${dir}/c.ctnr`), short, "no trailer written");
    assert.deepEqual(await Deno.readFile(`${dir}/c.ctnr.idx`), index);
    await assert.rejects(finalizeContainer(`${dir}/c.ctnr`), ConflictError);
    assert.deepEqual(await Deno.readFile(`${dir}/c.ctnr`), short);
  });
});

Deno.test("createContainer starts over when the index is empty: a crash before the first commit", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha" });
    // What a crash before the first index commit leaves: payload bytes and an empty index file.
    await Deno.writeFile(`${dir}/c.ctnr`, new TextEncoder().encode("half-written payloads"));
    await Deno.writeFile(`${dir}/c.ctnr.idx`, new Uint8Array());
    const warnings: string[] = [];
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      onWarning: (m) => warnings.push(m.message),
    });
    assert.equal(result.added, 1);
    assert.ok(warnings.some((w) => /unindexed bytes/.test(w)), warnings.join("\n"));
    assert.equal(await Deno.readTextFile(`${dir}/c.ctnr`), "alpha");
  });
});

Deno.test("createContainer writes a finished status file in kv and json form", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, sampleTree());
    const kv = await createContainer(`${dir}/src`, `${dir}/kv.ctnr`, {
      statusFile: `${dir}/status.kv`,
      prescan: "sizes",
    });
    const fields = Object.fromEntries(
      (await Deno.readTextFile(`${dir}/status.kv`)).trimEnd().split("\n").map((line) => {
        const eq = line.indexOf("=");
        return [line.slice(0, eq), line.slice(eq + 1)];
      }),
    );
    assert.equal(fields.status, "finished");
    assert.equal(fields.processed_files, String(kv.added));
    assert.equal(fields.bytes_written, String(kv.payloadBytes));
    assert.equal(fields.total_files, String(kv.added));
    assert.ok(fields.finished_time && !Number.isNaN(Date.parse(fields.finished_time)));
    assert.equal(await exists(`${dir}/status.kv.ctnr-tmp`), false);

    const json = await createContainer(`${dir}/src`, `${dir}/json.ctnr`, {
      statusFile: `${dir}/status.json`,
      statusFormat: "json",
      compress: true,
    });
    const status = JSON.parse(await Deno.readTextFile(`${dir}/status.json`));
    assert.equal(status.status, "finished");
    assert.equal(status.processed_files, json.added);
    assert.equal(status.bytes_written, json.payloadBytes);
    assert.equal(status.current_file, "");
  });
});

Deno.test("createContainer passes prescan totals to onProgress", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "aaaa", "b/c.txt": "cc", "d/e.bin": "123456789" });
    for (const prescan of ["count", "sizes"] as const) {
      const seen: CreateProgress[] = [];
      await createContainer(`${dir}/src`, `${dir}/${prescan}.ctnr`, {
        prescan,
        onProgress: (p) => seen.push({ ...p }),
      });
      const writing = seen.filter((p) => p.phase === "writing");
      assert.equal(writing.length, 4, prescan); // the phase's start, then each item
      assert.deepEqual(writing.map((p) => p.processedFiles), [0, 1, 2, 3]);
      assert.deepEqual(writing.map((p) => p.currentFile), ["", "a.txt", "b/c.txt", "d/e.bin"]);
      assert.deepEqual(writing.map((p) => p.bytesDone), [0, 4, 6, 15]);
      assert.ok(writing.every((p) => p.totalFiles === 3), prescan);
      if (prescan === "sizes") assert.ok(writing.every((p) => p.totalBytes === 15));
      else assert.ok(writing.every((p) => p.totalBytes === undefined));
      assert.equal(writing.at(-1)?.bytesWritten, 15);
      // The scan came first, counting as it went: its last call has the totals.
      const scanning = seen.filter((p) => p.phase === "scanning");
      assert.equal(seen.indexOf(scanning.at(-1)!), scanning.length - 1, "scanning comes first");
      assert.equal(scanning[0]?.processedFiles, 0);
      assert.equal(scanning.at(-1)?.processedFiles, 3);
      assert.equal(scanning.at(-1)?.bytesDone, prescan === "sizes" ? 15 : 0);
    }
    const none: CreateProgress[] = [];
    await createContainer(`${dir}/src`, `${dir}/none.ctnr`, { onProgress: (p) => none.push(p) });
    assert.equal(none.length, 4);
    assert.ok(none.every((p) => p.phase === "writing"), "no scan without prescan");
    assert.equal(new Set(none).size, 1, "one object, updated in place");
    assert.ok(none.every((p) => p.totalFiles === undefined && p.totalBytes === undefined));
  });
});

Deno.test("createContainer reports its phases and the bytes of a resume to onProgress", async () => {
  await withTempDir(async (dir) => {
    const big = pseudoRandomBytes(3 << 20, 7); // streamed in pieces (over the batch budget)
    await writeTree(`${dir}/src`, { "a.txt": "aaaa", "big.bin": big });
    const first: CreateProgress[] = [];
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      prescan: "sizes",
      finalize: true,
      chunkSize: 1 << 20,
      onProgress: (p) => first.push({ ...p }),
    });
    const phases = first.map((p) => p.phase).filter((p, i, all) => p !== all[i - 1]);
    assert.deepEqual(phases, ["scanning", "writing", "finalizing"]);
    // Pieces of the streamed file are reported as they are read, before its entry is added.
    const partial = first.filter((p) =>
      p.phase === "writing" && p.currentFile === "big.bin" && p.bytesDone > 4 &&
      p.bytesDone < 4 + big.length
    );
    assert.ok(partial.length >= 2, `pieces of big.bin reported: ${partial.length}`);
    assert.equal(first.at(-1)?.bytesDone, 4 + big.length);
    // A resume counts the files already present, at their size on disk.
    await Deno.writeTextFile(`${dir}/src/new.txt`, "12345");
    const second: CreateProgress[] = [];
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      prescan: "sizes",
      onProgress: (p) => second.push({ ...p }),
    });
    const last = second.at(-1)!;
    assert.equal(last.phase, "writing");
    assert.equal(last.processedFiles, 3);
    assert.equal(last.totalBytes, 4 + big.length + 5);
    assert.equal(last.bytesDone, last.totalBytes, "all of the source is accounted for");
    assert.equal(last.bytesWritten, 5, "only the new file was appended");
  });
});

Deno.test("createContainer records mode and mtime of file entries", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "exec.sh": { content: "#!/bin/sh\n", mode: 0o755, mtime: 1_000_000_000 },
      "secret": { content: "s", mode: 0o600, mtime: 1_234_567_890.5 },
      "ro.txt": { content: "r", mode: 0o444 },
      "plain.txt": "p",
    });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const entries = await readIndex(`${dir}/c.ctnr.idx`);
    assert.equal(entries.length, 4);
    for (const entry of entries) {
      const info = await Deno.lstat(`${dir}/src/${entry.relpath}`);
      assert.equal(entry.mode, (info.mode ?? 0) & 0o7777, `mode of ${entry.relpath}`);
      assert.equal(entry.mtime, info.mtime!.getTime() / 1000, `mtime of ${entry.relpath}`);
    }
    const map = byRelpath(entries);
    assert.equal(map.get("exec.sh")?.mode, 0o755);
    assert.equal(map.get("exec.sh")?.mtime, 1_000_000_000);
    assert.equal(map.get("secret")?.mode, 0o600);
    assert.equal(map.get("secret")?.mtime, 1_234_567_890.5);
    assert.equal(map.get("ro.txt")?.mode, 0o444);
  });
});

Deno.test("createContainer records a folder of another mode than 0755 as an entry before its contents, a 0755 one not at all", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "open/a.txt": "a",
      "private/secret.txt": "s",
      "private/deeper/x.txt": "x",
      "shared/g.txt": "g",
    });
    await Deno.chmod(`${dir}/src/open`, 0o755);
    await Deno.chmod(`${dir}/src/private/deeper`, 0o755);
    await Deno.chmod(`${dir}/src/private`, 0o700);
    await Deno.chmod(`${dir}/src/shared`, 0o2775);
    await Deno.utime(`${dir}/src/private`, 1_500_000_000, 1_500_000_000.25);
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const entries = await readIndex(`${dir}/c.ctnr.idx`);
    assert.deepEqual(entries.map((e) => `${e.entry_type ?? "file"}:${e.relpath}`), [
      "file:open/a.txt",
      "dir:private",
      "file:private/deeper/x.txt",
      "file:private/secret.txt",
      "dir:shared",
      "file:shared/g.txt",
    ]);
    const map = byRelpath(entries);
    assert.equal(map.get("private")?.mode, 0o700);
    assert.equal(map.get("private")?.mtime, 1_500_000_000.25);
    assert.equal(map.get("shared")?.mode, 0o2775, "setgid recorded, as for files");
  });
});

Deno.test("createContainer records orig_sha256 of compressed entries", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "text.txt": "hello hello hello hello hello\n".repeat(100),
      "random.bin": pseudoRandomBytes(50_000, 5),
    });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { compress: true });
    const container = await Deno.readFile(`${dir}/c.ctnr`);
    const compressed = await readIndex(`${dir}/c.ctnr.idx`);
    // The loops' assertions hold for an empty index: check that both files are in each.
    assert.deepEqual(compressed.map((e) => e.relpath), ["random.bin", "text.txt"]);
    for (const entry of compressed) {
      const original = await Deno.readFile(`${dir}/src/${entry.relpath}`);
      const start = entry.offset as number;
      const payload = container.subarray(start, start + (entry.payload_size as number));
      assert.equal(entry.compressed, true);
      assert.equal(entry.orig_size, original.length);
      assert.equal(entry.orig_sha256, sha256Hex(original));
      assert.equal(entry.sha256, sha256Hex(payload));
      assert.notEqual(entry.sha256, entry.orig_sha256);
      assert.deepEqual(new Uint8Array(gunzipSync(payload)), original);
    }
    const uncompressed = `${dir}/u.ctnr`;
    await createContainer(`${dir}/src`, uncompressed);
    const plain = await readIndex(`${uncompressed}.idx`);
    assert.deepEqual(plain.map((e) => e.relpath), ["random.bin", "text.txt"]);
    for (const entry of plain) {
      assert.equal(entry.compressed, false);
      assert.equal(entry.orig_sha256, undefined);
    }
  });
});

Deno.test("createContainer streams files over 1 MiB in chunkSize pieces", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      const big = new Uint8Array(3 << 20);
      big.set(pseudoRandomBytes(1 << 20, 9), 0); // 1 MiB noise, then 2 MiB of a pattern
      for (let i = 1 << 20; i < big.length; i++) big[i] = i % 251;
      await writeTree(`${dir}/src`, { "big.bin": big, "small-after.txt": "after" });
      const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
        compress,
        chunkSize: 1024,
      });
      assert.equal(result.origBytes, big.length + 5);
      const entries = byRelpath(await readIndex(`${dir}/c.ctnr.idx`));
      const entry = entries.get("big.bin");
      assert.ok(entry);
      const container = await Deno.readFile(`${dir}/c.ctnr`);
      const start = entry.offset as number;
      const payload = container.subarray(start, start + (entry.payload_size as number));
      assert.equal(entry.orig_size, big.length);
      assert.equal(entry.sha256, sha256Hex(payload));
      if (compress) {
        assert.ok((entry.payload_size as number) < big.length);
        assert.equal(entry.orig_sha256, sha256Hex(big));
        assert.deepEqual(new Uint8Array(gunzipSync(payload)), big);
      } else {
        assert.equal(entry.payload_size, big.length);
        assert.equal(entry.sha256, sha256Hex(big));
      }
      const after = entries.get("small-after.txt");
      assert.equal(after?.offset, start + (entry.payload_size as number));
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, { chunkSize: 1024 });
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
    });
  }
});

Deno.test("createContainer: plain containers are the same bytes whatever the piece size", async () => {
  await withTempDir(async (dir) => {
    // 4 MiB pieces by default for plain copies (PLAIN_COPY_PIECE): a file of 2.5 pieces, one
    // just past the small-file limit, and small ones around them.
    const big = pseudoRandomBytes(10 << 20 | 12345, 3);
    await writeTree(`${dir}/src`, {
      "a.txt": "before",
      "big.bin": big,
      "mid.bin": pseudoRandomBytes((256 << 10) + 1, 4),
      "z.txt": "after",
    });
    const digests: string[] = [];
    for (const chunkSize of [undefined, 1024, 1 << 20]) {
      const name = `${dir}/c${chunkSize ?? "default"}.ctnr`;
      await createContainer(`${dir}/src`, name, chunkSize === undefined ? {} : { chunkSize });
      digests.push(sha256Hex(await Deno.readFile(name)));
    }
    assert.deepEqual(digests, [digests[0], digests[0], digests[0]]);
    await extractContainer(`${dir}/cdefault.ctnr`, `${dir}/out`);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});

Deno.test("createContainer: payload buffers reused across read batches keep every payload intact", async () => {
  await withTempDir(async (dir) => {
    // Enough read batches (3,000 files of 1-12 KiB) for the writer's 4 MiB writes to hand
    // buffers back to the read workers many times, with streamed files (300 KiB) and folders
    // between them, so that a write happens in the middle of a read batch.
    const spec: Record<string, Uint8Array> = {};
    for (let i = 0; i < 3000; i++) {
      const folder = `d${Math.floor(i / 500)}`;
      spec[`${folder}/f${String(i).padStart(4, "0")}`] = pseudoRandomBytes(
        1024 + (i * 997) % 11264,
        i,
      );
      if (i % 700 === 0) spec[`${folder}/g-big-${i}`] = pseudoRandomBytes(300 << 10, i + 7);
    }
    await writeTree(`${dir}/src`, spec);
    await Deno.mkdir(`${dir}/src/d2/empty`);
    for (const compress of [false, true]) {
      const digests: string[] = [];
      for (const concurrency of [0, 2]) {
        const name = `${dir}/c-${compress}-${concurrency}.ctnr`;
        await createContainer(`${dir}/src`, name, { concurrency, compress });
        digests.push(sha256Hex(await Deno.readFile(name)));
      }
      assert.equal(digests[1], digests[0], `compress ${compress}`);
      const out = `${dir}/out-${compress}`;
      await extractContainer(`${dir}/c-${compress}-2.ctnr`, out);
      assert.deepEqual(await diffTrees(`${dir}/src`, out), []);
    }
  });
});

// ---------------------------------------------------------------------------

function sampleTree() {
  return {
    "a.txt": "alpha",
    "empty.bin": "",
    "data/numbers.txt": "1 2 3 4 5\n".repeat(200),
    "data/noise.bin": pseudoRandomBytes(20_000, 1),
    "deep/x/y/z/leaf.txt": "leaf",
    "empty": { dir: true },
    "link": { symlink: "a.txt" },
    "mode.sh": { content: "#!/bin/sh\n", mode: 0o755, mtime: 1_500_000_000 },
    "docs/résumé.txt": "unicode name",
  } as const;
}

async function readIndex(path: string): Promise<WireEntry[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

function byRelpath(entries: WireEntry[]): Map<string, WireEntry> {
  return new Map(entries.map((e) => [e.relpath as string, e]));
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * The real file layer, logging `container:append`, `index:sync`, `index:create`,
 * `folder:sync`, `index:remove`, ... in order.
 */
function recordingLayer(events: string[]): FileLayer {
  const nameOf = (path: string) =>
    path.endsWith(".ctnr-tmp") ? "tmp" : path.endsWith(".idx") ? "index" : "container";
  return {
    async open(path) {
      const created = !(await exists(path));
      const file = await DENO_FILE_LAYER.open(path);
      const name = nameOf(path);
      if (created) events.push(`${name}:create`);
      return {
        get size() {
          return file.size;
        },
        readAt: (position, length) => file.readAt(position, length),
        append: async (bytes) => {
          events.push(`${name}:append`);
          await file.append(bytes);
        },
        sync: async () => {
          events.push(`${name}:sync`);
          await file.sync();
        },
        truncate: async (size) => {
          events.push(`${name}:truncate`);
          await file.truncate(size);
        },
        tryLock: () => file.tryLock(),
        close: () => file.close(),
      };
    },
    async syncFolder(folder) {
      events.push(`folder:sync ${folder.slice(folder.lastIndexOf("/") + 1)}`);
      await DENO_FILE_LAYER.syncFolder(folder);
    },
    async rename(from, to) {
      events.push(`${nameOf(from)}:rename-to-${nameOf(to)}`);
      await DENO_FILE_LAYER.rename(from, to);
    },
    async remove(path) {
      events.push(`${nameOf(path)}:remove`);
      await DENO_FILE_LAYER.remove(path);
    },
  };
}

Deno.test("createContainer refuses names extract would refuse, naming each, and stores the rest", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "back\\slash.txt": "x",
      "caf\u00e9.txt": "nfc",
      "cafe\u0301.txt": "nfd",
      "ok.txt": "ok",
    });
    const errors: string[] = [];
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      onSourceError: (e) => errors.push(e.message),
    });
    assert.equal(result.sourceErrors, 2);
    assert.ok(
      errors.some((m) => m.includes("back\\slash.txt") && /backslash/.test(m)),
      errors.join("\n"),
    );
    assert.ok(errors.some((m) => /NFC/.test(m)), errors.join("\n"));
    const index = await Deno.readTextFile(`${dir}/c.ctnr.idx`);
    const relpaths = index.trimEnd().split("\n").map((l) => JSON.parse(l).relpath).sort();
    // Of NFC twins, the name already in NFC form is kept.
    assert.deepEqual(relpaths, ["caf\u00e9.txt", "ok.txt"]);
    const out = await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.equal(out.extracted, 2);
  });
});

Deno.test("createContainer refuses on resume an item that clashes with a committed entry", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    await writeTree(src, { "f1": "1", "f2": "2", "dd/y": "y", "caf\u00e9": "nfc" });
    await createContainer(src, `${dir}/c.ctnr`);
    // The tree changes: a file becomes a folder, a folder becomes a file, an NFD twin appears.
    await Deno.remove(`${src}/f2`);
    await writeTree(src, { "f2/x": "x" });
    await Deno.remove(`${src}/dd`, { recursive: true });
    await writeTree(src, { "dd": "now a file", "cafe\u0301": "nfd twin" });
    const errors: string[] = [];
    const result = await createContainer(src, `${dir}/c.ctnr`, {
      finalize: true,
      onSourceError: (e) => errors.push(e.message),
    });
    assert.equal(result.sourceErrors, 3, errors.join("\n"));
    assert.ok(
      errors.some((m) => m.includes('"f2/x"') && /its folder "f2"/.test(m)),
      errors.join("\n"),
    );
    assert.ok(errors.some((m) => m.includes('"dd"') && /lie below it/.test(m)), errors.join("\n"));
    assert.ok(errors.some((m) => m.includes("cafe\u0301") && /NFC/.test(m)), errors.join("\n"));
    // The container stays extractable: the plan of extract accepts it.
    const out = await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.equal(out.extracted, 4);
  });
});

Deno.test("finalizeContainer on a finalized container whose index was removed reports it done", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      finalize: true,
      removeIndexOnFinalize: true,
    });
    const before = await Deno.readFile(`${dir}/c.ctnr`);
    assert.equal(await finalizeContainer(`${dir}/c.ctnr`), false);
    assert.deepEqual(await Deno.readFile(`${dir}/c.ctnr`), before);
  });
});

Deno.test("createContainer reads at most 2 MiB a batch and streams the rest: same container as one file at a time", async () => {
  await withTempDir(async (dir) => {
    // 600 tiny files start the read worker; then 40 files of 100 KiB share batches whose budget
    // they exceed, on the main thread (first batches) and in the worker (later ones).
    const spec: Record<string, Uint8Array> = {};
    for (let i = 0; i < 40; i++) spec[`a/big-${i}`] = pseudoRandomBytes(100 << 10, i + 1);
    for (let i = 0; i < 600; i++) {
      spec[`b/tiny-${String(i).padStart(3, "0")}`] = pseudoRandomBytes(16, i);
    }
    for (let i = 0; i < 40; i++) spec[`c/big-${i}`] = pseudoRandomBytes(100 << 10, i + 100);
    await writeTree(`${dir}/src`, spec);
    // With --compress too: a small file past the budget is gzipped whole on the streaming path
    // (it once went through CompressionStream, whose bytes differ: output depended on timing).
    for (const compress of [false, true]) {
      const name = compress ? "gz-" : "";
      await createContainer(`${dir}/src`, `${dir}/${name}pooled.ctnr`, {
        concurrency: 2,
        compress,
      });
      await createContainer(`${dir}/src`, `${dir}/${name}single.ctnr`, {
        concurrency: 0,
        compress,
      });
      assert.deepEqual(
        await Deno.readFile(`${dir}/${name}pooled.ctnr.idx`),
        await Deno.readFile(`${dir}/${name}single.ctnr.idx`),
      );
      const container = await Deno.readFile(`${dir}/${name}pooled.ctnr`);
      assert.deepEqual(await Deno.readFile(`${dir}/${name}single.ctnr`), container);
      if (!compress) continue;
      // Every file up to 256 KiB is one node:zlib gzip member, whichever path read it.
      for (const entry of await readIndex(`${dir}/gz-pooled.ctnr.idx`)) {
        const stored = container.subarray(
          entry.offset as number,
          (entry.offset as number) + (entry.payload_size as number),
        );
        const expected = gzipSync(spec[entry.relpath as string]!, { level: 6 });
        // Compared by digest: a failing deepEqual on 100 KiB arrays builds a diff that eats GiBs.
        assert.equal(sha256Hex(stored), sha256Hex(expected), `${entry.relpath}`);
      }
    }
    const entries = await readIndex(`${dir}/pooled.ctnr.idx`);
    assert.equal(entries.length, 680);
    for (const entry of entries) {
      const bytes = spec[entry.relpath as string]!;
      assert.equal(entry.orig_size, bytes.length);
      assert.equal(entry.sha256, createHash("sha256").update(bytes).digest("hex"));
    }
    await extractContainer(`${dir}/pooled.ctnr`, `${dir}/out`);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});
