import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import {
  ConflictError,
  ContainerReader,
  ContainerWriter,
  DENO_FILE_LAYER,
  type FileLayer,
  type IndexEntry,
  type LayerFile,
  UsageError,
} from "../mod.ts";
import { exists, pseudoRandomBytes, withTempDir } from "./_helpers.ts";

const encoder = new TextEncoder();

/** Every entry of a container, each read back through its verified stream. */
async function readBack(
  container: string,
): Promise<Map<string, IndexEntry & { bytes?: Uint8Array }>> {
  const reader = await ContainerReader.open(container);
  try {
    const out = new Map<string, IndexEntry & { bytes?: Uint8Array }>();
    for await (const entry of reader.entries()) {
      const bytes = entry.entryType === "file"
        ? new Uint8Array(await new Response(reader.open(entry)).arrayBuffer())
        : undefined;
      out.set(entry.relpath, bytes === undefined ? entry : { ...entry, bytes });
    }
    return out;
  } finally {
    reader.close();
  }
}

Deno.test("ContainerWriter writes from memory a container that ContainerReader reads back", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      const container = `${dir}/c.ctnr`;
      const big = pseudoRandomBytes(300_000, 4);
      const writer = await ContainerWriter.open(container, { compress });
      assert.equal(writer.resumed, false);
      await writer.addFile(
        { relpath: "a.txt", mode: 0o640, mtime: 1_600_000_000.5 },
        encoder.encode("alpha"),
      );
      await writer.addFile({ relpath: "docs/empty.bin" }, new Uint8Array(0));
      await writer.addFileStream(
        { relpath: "docs/big.bin" },
        new Blob([big as Uint8Array<ArrayBuffer>]).stream(),
      );
      await writer.addFolder({ relpath: "hollow", mode: 0o700 });
      await writer.addSymlink({ relpath: "link" }, "a.txt");
      assert.equal(writer.entries, 5);
      await writer.finalize();
      assert.equal(await exists(`${container}.idx`), true);
      const entries = await readBack(container);
      assert.deepEqual([...entries.keys()], [
        "a.txt",
        "docs/empty.bin",
        "docs/big.bin",
        "hollow",
        "link",
      ]);
      assert.equal(new TextDecoder().decode(entries.get("a.txt")!.bytes), "alpha");
      assert.equal(entries.get("a.txt")!.mode, 0o640);
      assert.equal(entries.get("a.txt")!.mtime, 1_600_000_000.5);
      assert.equal(entries.get("a.txt")!.compressed, compress);
      assert.deepEqual(entries.get("docs/big.bin")!.bytes, big);
      assert.equal(entries.get("docs/empty.bin")!.bytes!.length, 0);
      assert.equal(entries.get("hollow")!.entryType, "dir");
      assert.equal(entries.get("link")!.linkTarget, "a.txt");
      // Payloads lie back to back in the order they were added.
      const a = entries.get("a.txt")!;
      assert.equal(a.offset, 0);
      assert.equal(entries.get("docs/empty.bin")!.offset, a.payloadSize);
      if (compress) {
        assert.equal(new TextDecoder().decode(gunzipSync(await storedOf(container, a))), "alpha");
      }
    });
  }
});

async function storedOf(container: string, entry: IndexEntry): Promise<Uint8Array> {
  const bytes = await Deno.readFile(container);
  return bytes.subarray(entry.offset, entry.offset + entry.payloadSize);
}

/** A file layer over the real one that logs `container:append`, `index:sync`, ... in order. */
function loggingLayer(events: string[], fail?: (event: string) => Error | undefined): FileLayer {
  const nameOf = (path: string) => (path.endsWith(".idx") ? "index" : "container");
  return {
    async open(path) {
      const file = await DENO_FILE_LAYER.open(path);
      const name = nameOf(path);
      const step = async (op: string, run: () => Promise<void>) => {
        const event = `${name}:${op}`;
        events.push(event);
        const error = fail?.(event);
        if (error) throw error;
        await run();
      };
      const logged: LayerFile = {
        get size() {
          return file.size;
        },
        readAt: (position, length) => file.readAt(position, length),
        append: (bytes) => step("append", () => file.append(bytes)),
        sync: () => step("sync", () => file.sync()),
        truncate: (size) => step("truncate", () => file.truncate(size)),
        tryLock: () => file.tryLock(),
        close: () => file.close(),
      };
      return logged;
    },
    syncFolder: async (folder) => {
      events.push("folder:sync");
      await DENO_FILE_LAYER.syncFolder(folder);
    },
    rename: (from, to) => DENO_FILE_LAYER.rename(from, to),
    remove: async (path) => {
      events.push(`${nameOf(path)}:remove`);
      await DENO_FILE_LAYER.remove(path);
    },
  };
}

Deno.test("ContainerWriter fsyncs the payloads before the index batch that names them, then the index", async () => {
  for (const [fsyncEvery, indexBatch] of [[1, 1], [2, 3], [3, 3], [4, 10]] as const) {
    await withTempDir(async (dir) => {
      const events: string[] = [];
      const committed: string[] = [];
      const writer = await ContainerWriter.open(`${dir}/c.ctnr`, {
        fsyncEvery,
        indexBatch,
        fileLayer: loggingLayer(events),
        onEntry: (entry) => committed.push(entry.relpath),
      });
      for (let i = 0; i < 10; i++) {
        await writer.addFile({ relpath: `f${i}` }, encoder.encode(`file ${i}`));
        // onEntry reports an entry only once its index line is fsynced.
        const lastIndexSync = events.lastIndexOf("index:sync");
        assert.equal(committed.length > 0, lastIndexSync >= 0, events.join(" "));
      }
      await writer.close();
      const label = `fsyncEvery ${fsyncEvery}, indexBatch ${indexBatch}: ${events.join(" ")}`;
      let unsynced = false;
      for (const [i, event] of events.entries()) {
        if (event === "container:append") unsynced = true;
        if (event === "container:sync") unsynced = false;
        if (event === "index:append") {
          assert.equal(
            unsynced,
            false,
            `index appended before its payloads were fsynced: ${label}`,
          );
          assert.equal(events[i + 1], "index:sync", `index not fsynced right after: ${label}`);
        }
      }
      assert.equal(
        events.filter((e) => e === "index:append").length,
        Math.ceil(10 / indexBatch),
        label,
      );
      assert.equal(committed.length, 10);
    });
  }
});

Deno.test("ContainerWriter takes back the bytes of a stream that fails, and goes on", async () => {
  await withTempDir(async (dir) => {
    const container = `${dir}/c.ctnr`;
    const writer = await ContainerWriter.open(container);
    await writer.addFile({ relpath: "first" }, encoder.encode("first"));
    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(pseudoRandomBytes(200_000, 7));
      },
      pull(controller) {
        controller.error(new Error("the source changed"));
      },
    });
    await assert.rejects(
      writer.addFileStream({ relpath: "broken" }, failing),
      /the source changed/,
    );
    assert.equal(writer.size, 5, "its bytes were taken back");
    // The relpath was not taken: it can be added again.
    await writer.addFile({ relpath: "broken" }, encoder.encode("whole now"));
    await writer.finalize();
    const entries = await readBack(container);
    assert.deepEqual([...entries.keys()], ["first", "broken"]);
    assert.equal(entries.get("broken")!.offset, 5);
    assert.equal(new TextDecoder().decode(entries.get("broken")!.bytes), "whole now");
  });
});

Deno.test("ContainerWriter refuses relpaths that clash or are unsafe, and goes on", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    await writer.addFile({ relpath: "a/b.txt" }, encoder.encode("b"));
    await writer.addFile({ relpath: "caf\u00e9" }, encoder.encode("nfc"));
    const refused: [string, () => unknown, RegExp][] = [
      [
        "a duplicate",
        () => writer.addFile({ relpath: "a/b.txt" }, encoder.encode("x")),
        /same path/,
      ],
      ["an NFC twin", () => writer.addFile({ relpath: "cafe\u0301" }, encoder.encode("x")), /NFC/],
      [
        "a file where a folder is",
        () => writer.addFile({ relpath: "a" }, encoder.encode("x")),
        /below it/,
      ],
      [
        "a path through a file",
        () => writer.addFolder({ relpath: "a/b.txt/c" }),
        /file or link entry/,
      ],
      ["a climbing path", () => writer.addSymlink({ relpath: "../x" }, "y"), /unsafe relpath/],
      [
        "an absolute path",
        () => writer.addFile({ relpath: "/etc/x" }, encoder.encode("x")),
        /unsafe/,
      ],
    ];
    for (const [what, add, message] of refused) {
      await assert.rejects(async () => await add(), (error: unknown) => {
        assert.ok(error instanceof ConflictError, `${what}: ${error}`);
        assert.match(error.message, message, what);
        return true;
      });
    }
    await writer.addFile({ relpath: "a/c.txt" }, encoder.encode("c"));
    await writer.finalize();
    assert.deepEqual([...(await readBack(`${dir}/c.ctnr`)).keys()], [
      "a/b.txt",
      "caf\u00e9",
      "a/c.txt",
    ]);
  });
});

Deno.test("ContainerWriter keeps its first write error and refuses every call after finalize", async () => {
  await withTempDir(async (dir) => {
    const full = new Error("No space left on device (os error 28)");
    let failed = false;
    const events: string[] = [];
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`, {
      fsyncEvery: 1,
      fileLayer: loggingLayer(events, (event) => {
        if (event !== "container:append" || failed) return undefined;
        failed = true;
        return full;
      }),
    });
    await assert.rejects(writer.addFile({ relpath: "a" }, encoder.encode("a")), (e) => e === full);
    await assert.rejects(writer.addFile({ relpath: "b" }, encoder.encode("b")), (e) => e === full);
    await assert.rejects(writer.commit(), (e) => e === full);
    await writer.close(); // closes the files; what failed is not committed
    assert.equal((await Deno.readFile(`${dir}/c.ctnr.idx`)).length, 0);

    const done = await ContainerWriter.open(`${dir}/d.ctnr`);
    await done.finalize();
    await assert.rejects(async () => await done.addFolder({ relpath: "x" }), TypeError);
  });
});

Deno.test("ContainerWriter continues a container: committed relpaths are found, new ones appended", async () => {
  await withTempDir(async (dir) => {
    const container = `${dir}/c.ctnr`;
    const first = await ContainerWriter.open(container);
    await first.addFile({ relpath: "a", mtime: 1000 }, encoder.encode("alpha"));
    await first.addFolder({ relpath: "d" });
    await first.finalize();
    const second = await ContainerWriter.open(container);
    assert.equal(second.resumed, true);
    assert.equal(second.entries, 2);
    assert.ok(second.find("a")! >= 2, "a file's fingerprint");
    assert.equal(second.find("d"), 0, "a folder");
    assert.equal(second.find("missing"), undefined);
    await assert.rejects(
      async () => await second.addFile({ relpath: "d" }, encoder.encode("x")),
      ConflictError,
    );
    await second.addFile({ relpath: "b" }, encoder.encode("beta"));
    await second.finalize();
    const entries = await readBack(container);
    assert.deepEqual([...entries.keys()], ["a", "d", "b"]);
    assert.equal(entries.get("b")!.offset, 5, "after the old payloads, the old trailer cut away");
  });
});

Deno.test("ContainerWriter in a dry run writes nothing", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/sub/c.ctnr`, { dryRun: true });
    const entry = await writer.addFile({ relpath: "a" }, encoder.encode("alpha"));
    assert.equal(entry.payloadSize, 5);
    await writer.finalize();
    assert.equal(await exists(`${dir}/sub`), false);
  });
});

Deno.test("ContainerWriter addFileFrom copies a reader's pieces, plain and gzip", async () => {
  for (const compress of [false, true]) {
    await withTempDir(async (dir) => {
      const bytes = pseudoRandomBytes(70_000, 3);
      let at = 0;
      const read = (into: Uint8Array) => {
        if (at >= bytes.length) return Promise.resolve(null);
        const n = Math.min(into.length, bytes.length - at);
        into.set(bytes.subarray(at, at + n));
        at += n;
        return Promise.resolve(into.subarray(0, n));
      };
      const writer = await ContainerWriter.open(`${dir}/c.ctnr`, { compress });
      const entry = await writer.addFileFrom({ relpath: "f" }, read, 4096);
      assert.equal(entry.origSize, bytes.length);
      assert.equal(entry.compressed, compress);
      await writer.finalize();
      assert.deepEqual((await readBack(`${dir}/c.ctnr`)).get("f")!.bytes, bytes);
    });
  }
});

Deno.test("ContainerWriter.addFile keeps its own copy: the caller may reuse its buffer at once", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    const buffer = new Uint8Array(16);
    for (let i = 0; i < 3; i++) {
      buffer.fill(0x61 + i);
      await writer.addFile({ relpath: `f${i}` }, buffer);
    }
    await writer.finalize();
    const entries = await readBack(`${dir}/c.ctnr`);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(entries.get(`f${i}`)!.bytes, new Uint8Array(16).fill(0x61 + i));
    }
  });
});

Deno.test("ContainerWriter appends a batch once, even when onEntry throws after its commit", async () => {
  await withTempDir(async (dir) => {
    let calls = 0;
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`, {
      fsyncEvery: 2,
      onEntry: () => {
        if (++calls === 1) throw new Error("stdout is full");
      },
    });
    await writer.addFile({ relpath: "a" }, encoder.encode("a"));
    await assert.rejects(
      async () => await writer.addFile({ relpath: "b" }, encoder.encode("b")),
      /stdout is full/,
    );
    await writer.close();
    const lines = (await Deno.readTextFile(`${dir}/c.ctnr.idx`)).trim().split("\n");
    assert.deepEqual(lines.map((l) => JSON.parse(l).relpath), ["a", "b"]);
  });
});

Deno.test("ContainerWriter refuses a call made while another is still running: offsets are never given twice", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    const big = pseudoRandomBytes(3 << 20, 5);
    const streamed = writer.addFileStream({ relpath: "s.bin" }, new Blob([big.slice()]).stream());
    const overlapping = [
      writer.addFile({ relpath: "a.txt" }, encoder.encode("hello")),
      writer.commit(),
      writer.close(),
    ];
    for (const call of overlapping) {
      await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof UsageError, String(error));
        assert.match(error.message, /still running; await each call before the next/);
        return true;
      });
    }
    await streamed;
    await writer.addFile({ relpath: "a.txt" }, encoder.encode("hello"));
    await writer.finalize();
    const back = await readBack(`${dir}/c.ctnr`);
    assert.deepEqual([...back.keys()], ["s.bin", "a.txt"]);
    assert.deepEqual(back.get("s.bin")!.bytes, big);
    assert.deepEqual(back.get("a.txt")!.bytes, encoder.encode("hello"));
  });
});

Deno.test("ContainerWriter refuses a mode, mtime or link target its readers would refuse, naming it", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    const bad: [string, () => unknown, RegExp][] = [
      [
        "st_mode with its file type bits",
        () => writer.addFile({ relpath: "m", mode: 0o100755 }, new Uint8Array()),
        /"mode" is not an integer from 0 to 0o7777 \(33261\)/,
      ],
      ["a negative mode", () => writer.addFolder({ relpath: "d", mode: -1 }), /"mode"/],
      [
        "NaN as mtime",
        () => writer.addFile({ relpath: "t", mtime: NaN }, new Uint8Array()),
        /"mtime" is not a finite number of seconds/,
      ],
      ["an empty link target", () => writer.addSymlink({ relpath: "l" }, ""), /"link_target"/],
      [
        "a link target with NUL",
        () => writer.addSymlink({ relpath: "l" }, "a\0b"),
        /"link_target"/,
      ],
    ];
    for (const [what, call, message] of bad) {
      await assert.rejects(async () => await call(), (error: unknown) => {
        assert.ok(error instanceof UsageError, `${what}: ${error}`);
        assert.match(error.message, message, what);
        return true;
      });
    }
    await writer.addFile({ relpath: "ok", mode: 0o4755 & 0o7777, mtime: 1.5 }, new Uint8Array());
    await writer.finalize();
    const back = await readBack(`${dir}/c.ctnr`);
    assert.deepEqual([...back.keys()], ["ok"], "nothing refused was written");
  });
});

Deno.test("ContainerWriter.finalize closes its files even when the last commit fails", async () => {
  await withTempDir(async (dir) => {
    let closed = 0;
    let failSync = false;
    const layer: FileLayer = {
      ...DENO_FILE_LAYER,
      async open(path) {
        const file = await DENO_FILE_LAYER.open(path);
        return {
          get size() {
            return file.size;
          },
          readAt: (position, length) => file.readAt(position, length),
          append: (bytes) => file.append(bytes),
          sync: () => failSync ? Promise.reject(new Error("EIO in sync")) : file.sync(),
          truncate: (size) => file.truncate(size),
          tryLock: () => file.tryLock(),
          close: () => {
            closed++;
            file.close();
          },
        } satisfies LayerFile;
      },
    };
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`, { fileLayer: layer });
    await writer.addFile({ relpath: "a" }, encoder.encode("a"));
    failSync = true;
    await assert.rejects(writer.finalize(), /EIO in sync/);
    assert.equal(closed, 2, "the container and the index were closed");
  });
});
