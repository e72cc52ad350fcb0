import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { ContainerReader } from "../lib/read/container_reader.ts";
import { createContainer } from "../lib/create/create_container.ts";
import { encodeEntry, type IndexEntry } from "../lib/format/entry.ts";
import { encodeFooter, encodeTrailerHeader, FOOTER_MAGIC } from "../lib/format/trailer.ts";
import { ContainerFormatError, IntegrityError } from "../lib/errors.ts";
import { openRandomAccess } from "../lib/io/file_layer.ts";
import { concatBytes, pseudoRandomBytes, withTempDir, writeTree } from "./_helpers.ts";

const encoder = new TextEncoder();

// ---------------------------------------------------------------------------
// Where the index comes from

Deno.test("ContainerReader.open prefers --index over ctnr's footer", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "footer");
    await writeIndex(`${dir}/other.idx`, renamed(built.entries, "ext-"));
    const reader = await ContainerReader.open(`${dir}/c.ctnr`, { index: `${dir}/other.idx` });
    try {
      assert.equal(reader.indexOrigin, "external");
      assert.equal(reader.indexPath, `${dir}/other.idx`);
      assert.deepEqual(await relpaths(reader), ["ext-a.txt", "ext-b/c.bin", "ext-d.txt"]);
      // An external index is used alone: the trailer is not read, the whole file is payload area.
      assert.equal(reader.payloadAreaEnd, reader.size);
      assert.ok(built.payloadEnd < reader.size);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open prefers --index over the original tool's trailer", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "legacy");
    await writeIndex(`${dir}/c.ctnr.idx`, renamed(built.entries, "sib-"));
    await writeIndex(`${dir}/other.idx`, renamed(built.entries, "ext-"));
    const reader = await ContainerReader.open(`${dir}/c.ctnr`, { index: `${dir}/other.idx` });
    try {
      assert.equal(reader.indexOrigin, "external");
      assert.deepEqual(await relpaths(reader), ["ext-a.txt", "ext-b/c.bin", "ext-d.txt"]);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open reads a sibling .idx that holds the trailer's index", async () => {
  for (const layout of ["footer", "legacy"] as const) {
    await withTempDir(async (dir) => {
      const built = await writeContainer(`${dir}/c.ctnr`, FILES, layout);
      await writeIndex(`${dir}/c.ctnr.idx`, built.entries);
      const reader = await ContainerReader.open(`${dir}/c.ctnr`);
      try {
        assert.equal(reader.indexOrigin, "sibling", layout);
        assert.equal(reader.indexPath, `${dir}/c.ctnr.idx`);
        assert.deepEqual(await relpaths(reader), ["a.txt", "b/c.bin", "d.txt"]);
        // The trailer agrees: the payload area ends where it starts.
        assert.equal(reader.payloadAreaEnd, built.payloadEnd, layout);
      } finally {
        reader.close();
      }
    });
  }
});

Deno.test("ContainerReader.open reads ctnr's footer when there is no sibling .idx", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "footer");
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      assert.equal(reader.indexOrigin, "trailer");
      assert.equal(reader.indexPath, `${dir}/c.ctnr`);
      assert.deepEqual(await relpaths(reader), ["a.txt", "b/c.bin", "d.txt"]);
      assert.equal(reader.payloadAreaEnd, built.payloadEnd);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open reads a sibling .idx beside a container without trailer", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "none");
    await writeIndex(`${dir}/c.ctnr.idx`, renamed(built.entries, "sib-"));
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      assert.equal(reader.indexOrigin, "sibling");
      assert.equal(reader.indexPath, `${dir}/c.ctnr.idx`);
      assert.deepEqual(await relpaths(reader), ["sib-a.txt", "sib-b/c.bin", "sib-d.txt"]);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open finds the original tool's trailer by scan without a sibling", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "legacy");
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      assert.equal(reader.indexOrigin, "trailer");
      assert.equal(reader.payloadAreaEnd, built.payloadEnd);
      assert.deepEqual(await relpaths(reader), ["a.txt", "b/c.bin", "d.txt"]);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open reads a container made by createContainer", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "x.txt": "hello", "y/z.txt": "world".repeat(1000) });
    for (const compress of [false, true]) {
      const path = `${dir}/c-${compress}.ctnr`;
      await createContainer(`${dir}/src`, path, {
        finalize: true,
        compress,
        removeIndexOnFinalize: true,
      });
      const reader = await ContainerReader.open(path);
      try {
        assert.equal(reader.indexOrigin, "trailer");
        const entry = await reader.find("y/z.txt");
        assert.ok(entry, "y/z.txt not found");
        assert.equal(entry.compressed, compress);
        assert.equal(decode(await readStream(reader.open(entry))), "world".repeat(1000));
      } finally {
        reader.close();
      }
    }
  });
});

Deno.test("ContainerReader.open refuses a container without any index, naming the index option", async () => {
  await withTempDir(async (dir) => {
    await writeContainer(`${dir}/c.ctnr`, FILES, "none");
    await assert.rejects(() => ContainerReader.open(`${dir}/c.ctnr`), (error: unknown) => {
      assert.ok(error instanceof ContainerFormatError, `got ${error}`);
      // The library names its option; the CLI shows the flag (tests/cli_test.ts).
      assert.match(error.message, /pass `index`/);
      assert.deepEqual(error.options, ["index"]);
      assert.match(error.message, /c\.ctnr/);
      return true;
    });
  });
});

Deno.test("ContainerReader.open refuses a missing container or index file", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(() => ContainerReader.open(`${dir}/nope.ctnr`), ContainerFormatError);
    await writeContainer(`${dir}/c.ctnr`, FILES, "none");
    await assert.rejects(
      () => ContainerReader.open(`${dir}/c.ctnr`, { index: `${dir}/nope.idx` }),
      (error: unknown) => {
        assert.ok(error instanceof ContainerFormatError);
        assert.match(error.message, /nope\.idx/);
        return true;
      },
    );
  });
});

Deno.test("ContainerReader.open with --index reads a container whose last payload is a ctnr container", async () => {
  // An unfinalized container whose last file is itself a finalized ctnr
  // container: its bytes end with a valid footer, but --index names the index.
  await withTempDir(async (dir) => {
    const inner = await writeContainer(`${dir}/inner.ctnr`, FILES, "footer");
    const outer = [
      { relpath: "first.txt", bytes: encoder.encode("first payload") },
      { relpath: "inner.ctnr", bytes: inner.bytes },
    ];
    const built = await writeContainer(`${dir}/outer.ctnr`, outer, "none");
    await writeIndex(`${dir}/outer.idx`, built.entries);
    const reader = await ContainerReader.open(`${dir}/outer.ctnr`, { index: `${dir}/outer.idx` });
    try {
      assert.deepEqual(await relpaths(reader), ["first.txt", "inner.ctnr"]);
      const entry = await reader.find("inner.ctnr");
      assert.ok(entry);
      assert.deepEqual(await readStream(reader.open(entry)), inner.bytes);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open with --index reads a container whose last payload ends with the footer magic", async () => {
  await withTempDir(async (dir) => {
    const tail = concatBytes([
      encoder.encode("some text ".repeat(10)),
      new Uint8Array(8).fill(0x20),
    ]);
    const files = [{ relpath: "odd.bin", bytes: concatBytes([tail, FOOTER_MAGIC]) }];
    const built = await writeContainer(`${dir}/c.ctnr`, files, "none");
    await writeIndex(`${dir}/c.idx`, built.entries);
    const reader = await ContainerReader.open(`${dir}/c.ctnr`, { index: `${dir}/c.idx` });
    try {
      const entry = await reader.find("odd.bin");
      assert.ok(entry);
      assert.deepEqual(await readStream(reader.open(entry)), files[0]!.bytes);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open falls back to the sibling .idx when the payloads end with the footer magic", async () => {
  // No real trailer: the last 8 payload bytes merely spell "CTNRv1ix".
  await withTempDir(async (dir) => {
    const last = concatBytes([encoder.encode("x".repeat(100)), FOOTER_MAGIC]);
    const built = await writeContainer(
      `${dir}/c.ctnr`,
      [{ relpath: "odd.bin", bytes: last }],
      "none",
    );
    await writeIndex(`${dir}/c.ctnr.idx`, built.entries);
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      assert.equal(reader.indexOrigin, "sibling");
      assert.deepEqual(await relpaths(reader), ["odd.bin"]);
    } finally {
      reader.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Reading entries

Deno.test("ContainerReader.open(entry) streams the original bytes", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "footer");
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      for (const file of FILES) {
        const entry = await reader.find(file.relpath);
        assert.ok(entry, `${file.relpath} not found`);
        assert.deepEqual(entry, built.entries.find((e) => e.relpath === file.relpath));
        for (const chunkSize of [undefined, 1000]) {
          const options = chunkSize === undefined ? {} : { chunkSize };
          assert.deepEqual(await readStream(reader.open(entry, options)), file.bytes);
        }
      }
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open(entry) streams an empty file", async () => {
  await withTempDir(async (dir) => {
    const files = [{ relpath: "empty", bytes: new Uint8Array(0) }, {
      relpath: "empty.gz",
      bytes: new Uint8Array(0),
      gzip: true,
    }];
    await writeContainer(`${dir}/c.ctnr`, files, "footer");
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      const streamed: string[] = [];
      for await (const entry of reader.entries()) {
        assert.equal((await readStream(reader.open(entry))).length, 0, entry.relpath);
        streamed.push(entry.relpath);
      }
      // The loop's assertion holds for no entries at all: both must have been streamed.
      assert.deepEqual(streamed, ["empty", "empty.gz"]);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open(entry) errors with IntegrityError on a corrupted payload byte", async () => {
  for (const gzip of [false, true]) {
    await withTempDir(async (dir) => {
      const bytes = encoder.encode("the quick brown fox ".repeat(500));
      const built = await writeContainer(
        `${dir}/c.ctnr`,
        [{ relpath: "dir/fox.txt", bytes, gzip }],
        "footer",
      );
      const entry = built.entries[0]!;
      await flipByte(`${dir}/c.ctnr`, entry.offset + Math.floor(entry.payloadSize / 2));
      const reader = await ContainerReader.open(`${dir}/c.ctnr`);
      try {
        await assert.rejects(
          () => readStream(reader.open(entry, { chunkSize: 1024 })),
          (error: unknown) => {
            assert.ok(error instanceof IntegrityError, `got ${error}`);
            assert.equal(error.code, "INTEGRITY");
            assert.match(error.message, /"dir\/fox\.txt"/);
            if (!gzip) assert.match(error.message, /SHA-256 mismatch/);
            return true;
          },
        );
      } finally {
        reader.close();
      }
    });
  }
});

Deno.test("ContainerReader.open(entry) stops a gzip bomb past orig_size with IntegrityError", async () => {
  await withTempDir(async (dir) => {
    const bomb = new Uint8Array(gzipSync(new Uint8Array(1 << 20)));
    assert.ok(bomb.length < 10_000);
    const entry = await writeRaw(`${dir}/c.ctnr`, "bomb.bin", bomb, {
      compressed: true,
      origSize: 10,
    });
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      await assert.rejects(() => readStream(reader.open(entry)), (error: unknown) => {
        assert.ok(error instanceof IntegrityError, `got ${error}`);
        assert.match(error.message, /"bomb\.bin"/);
        assert.match(error.message, /inflates past orig_size 10/);
        return true;
      });
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.open(entry) errors with IntegrityError when gzip inflates short of orig_size", async () => {
  await withTempDir(async (dir) => {
    const stored = new Uint8Array(gzipSync(encoder.encode("short")));
    const entry = await writeRaw(`${dir}/c.ctnr`, "short.txt", stored, {
      compressed: true,
      origSize: 100,
    });
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      await assert.rejects(() => readStream(reader.open(entry)), (error: unknown) => {
        assert.ok(error instanceof IntegrityError, `got ${error}`);
        assert.match(error.message, /"short\.txt"/);
        assert.match(error.message, /orig_size is 100/);
        return true;
      });
    } finally {
      reader.close();
    }
  });
});

const CORRUPT_GZIPS: [string, (gz: Uint8Array) => Uint8Array][] = [
  ["a bad gzip magic", (gz) => {
    const out = gz.slice();
    out[0] = 0x00;
    return out;
  }],
  ["a bad CRC-32", (gz) => {
    const out = gz.slice();
    out[out.length - 8] = out[out.length - 8]! ^ 0xff;
    return out;
  }],
  ["a bad deflate block", (gz) => {
    const out = gz.slice();
    out[10] = 0xff;
    out[11] = 0xff;
    return out;
  }],
  ["a truncated member", (gz) => gz.slice(0, gz.length - 12)],
  ["no gzip at all", () => encoder.encode("plain text, not gzip")],
];

for (const [what, corrupt] of CORRUPT_GZIPS) {
  Deno.test(`ContainerReader.open(entry) errors with IntegrityError on ${what}`, async () => {
    await withTempDir(async (dir) => {
      const original = encoder.encode("gzip me ".repeat(200));
      // The sha256 matches the stored (corrupt) bytes: only the gzip layer can catch it.
      const stored = corrupt(new Uint8Array(gzipSync(original)));
      const entry = await writeRaw(`${dir}/c.ctnr`, "z/file.txt", stored, {
        compressed: true,
        origSize: original.length,
      });
      const reader = await ContainerReader.open(`${dir}/c.ctnr`);
      try {
        await assert.rejects(() => readStream(reader.open(entry)), (error: unknown) => {
          assert.ok(error instanceof IntegrityError, `got ${error}`);
          assert.match(error.message, /"z\/file\.txt"/);
          return true;
        });
      } finally {
        reader.close();
      }
    });
  });
}

Deno.test("ContainerReader.records refuses an entry whose payload passes the end of the payload area", async () => {
  for (const layout of ["footer", "legacy"] as const) {
    await withTempDir(async (dir) => {
      const payload = encoder.encode("0123456789");
      const good = entryFor("good", 0, payload.subarray(0, 4));
      // Ends 1 byte into the trailer header.
      const bad: IndexEntry = { ...entryFor("bad", 4, payload.subarray(4)), payloadSize: 7 };
      bad.origSize = 7;
      const index = encoder.encode(encodeEntry(good) + encodeEntry(bad));
      const parts = [payload, encodeTrailerHeader(index.length), index];
      if (layout === "footer") parts.push(encodeFooter(index.length));
      await Deno.writeFile(`${dir}/c.ctnr`, concatBytes(parts));
      const reader = await ContainerReader.open(`${dir}/c.ctnr`);
      try {
        assert.equal(reader.payloadAreaEnd, payload.length);
        const seen: string[] = [];
        await assert.rejects(
          async () => {
            for await (const record of reader.records()) seen.push(record.entry.relpath);
          },
          (error: unknown) => {
            assert.ok(error instanceof ContainerFormatError, `got ${error}`);
            assert.match(error.message, /"bad"/);
            assert.match(error.message, /payload area/);
            return true;
          },
        );
        assert.deepEqual(seen, ["good"], layout);
      } finally {
        reader.close();
      }
    });
  }
});

Deno.test("ContainerReader.records refuses an entry past the end of a container without trailer", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "none");
    const last = built.entries[built.entries.length - 1]!;
    const beyond = { ...last, relpath: "beyond", offset: last.offset + 1 };
    const further = { ...last, relpath: "further", offset: last.offset + 1000 };
    await writeIndex(`${dir}/c.ctnr.idx`, [...built.entries, beyond, further]);
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      const seen: string[] = [];
      await assert.rejects(
        async () => {
          for await (const entry of reader.entries()) seen.push(entry.relpath);
        },
        (error: unknown) =>
          error instanceof ContainerFormatError && error.code === "CONTAINER_CUT" &&
          error.message ===
            `Cannot read "${dir}/c.ctnr": cut short at byte ${built.bytes.length} ` +
              `(index "${dir}/c.ctnr.idx" says its payloads run to byte ${
                further.offset + further.payloadSize
              }): the payloads of "beyond" and 1 more entry lie past the cut; \`salvage\` extracts the entries before it`,
      );
      assert.deepEqual(seen, ["a.txt", "b/c.bin", "d.txt"]);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.records leaves out entries past the end with onPastEnd", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "none");
    const last = built.entries[built.entries.length - 1]!;
    const beyond = { ...last, relpath: "beyond", offset: last.offset + 1 };
    await writeIndex(`${dir}/c.ctnr.idx`, [built.entries[0]!, beyond, ...built.entries.slice(1)]);
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      const seen: string[] = [];
      const left: [string, string, boolean][] = [];
      const onPastEnd = (entry: IndexEntry, detail: string, cut: boolean) =>
        left.push([entry.relpath, detail, cut]);
      for await (const { entry } of reader.records({ onPastEnd })) seen.push(entry.relpath);
      assert.deepEqual(seen, ["a.txt", "b/c.bin", "d.txt"]);
      assert.deepEqual(left, [[
        "beyond",
        `its payload (offset ${beyond.offset}, ${beyond.payloadSize} bytes) runs past the end of ` +
        `"${dir}/c.ctnr", which is cut short at byte ${built.bytes.length}`,
        true,
      ]]);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.find returns the first entry with a relpath, or undefined", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "footer");
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      assert.deepEqual(await reader.find("b/c.bin"), built.entries[1]);
      assert.equal(await reader.find("b"), undefined);
      assert.equal(await reader.find("missing.txt"), undefined);
      assert.equal(reader.size, built.bytes.length);
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.readStored returns the stored bytes of a compressed entry", async () => {
  await withTempDir(async (dir) => {
    const built = await writeContainer(`${dir}/c.ctnr`, FILES, "footer");
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      const entry = (await reader.find("b/c.bin"))!;
      const stored = await reader.readStored(entry);
      assert.equal(stored.length, entry.payloadSize);
      assert.equal(sha256(stored), entry.sha256);
      assert.deepEqual(
        stored,
        built.bytes.subarray(entry.offset, entry.offset + entry.payloadSize),
      );
    } finally {
      reader.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Helpers

interface FileSpec {
  relpath: string;
  bytes: Uint8Array;
  gzip?: boolean;
}

const FILES: FileSpec[] = [
  { relpath: "a.txt", bytes: encoder.encode("hello, world\n") },
  { relpath: "b/c.bin", bytes: pseudoRandomBytes(50_000, 7).map((b) => b & 0x0f), gzip: true },
  { relpath: "d.txt", bytes: pseudoRandomBytes(3000, 3) },
];

/**
 * Write a container by hand: payloads, then per `layout` no trailer, the
 * original tool's trailer, or the trailer with ctnr's footer.
 */
async function writeContainer(
  path: string,
  files: FileSpec[],
  layout: "none" | "legacy" | "footer",
): Promise<{ bytes: Uint8Array; entries: IndexEntry[]; payloadEnd: number }> {
  const parts: Uint8Array[] = [];
  const entries: IndexEntry[] = [];
  let offset = 0;
  for (const file of files) {
    const stored = file.gzip ? new Uint8Array(gzipSync(file.bytes)) : file.bytes;
    entries.push({
      relpath: file.relpath,
      entryType: "file",
      offset,
      payloadSize: stored.length,
      origSize: file.bytes.length,
      sha256: sha256(stored),
      compressed: file.gzip ?? false,
    });
    parts.push(stored);
    offset += stored.length;
  }
  if (layout !== "none") {
    const index = encoder.encode(entries.map(encodeEntry).join(""));
    parts.push(encodeTrailerHeader(index.length), index);
    if (layout === "footer") parts.push(encodeFooter(index.length));
  }
  const bytes = concatBytes(parts);
  await Deno.writeFile(path, bytes);
  return { bytes, entries, payloadEnd: offset };
}

/** Write a container holding one payload as given, with its footer trailer; returns its entry. */
async function writeRaw(
  path: string,
  relpath: string,
  stored: Uint8Array,
  fields: { compressed: boolean; origSize: number },
): Promise<IndexEntry> {
  const entry: IndexEntry = {
    relpath,
    entryType: "file",
    offset: 0,
    payloadSize: stored.length,
    origSize: fields.origSize,
    sha256: sha256(stored),
    compressed: fields.compressed,
  };
  const index = encoder.encode(encodeEntry(entry));
  await Deno.writeFile(
    path,
    concatBytes([stored, encodeTrailerHeader(index.length), index, encodeFooter(index.length)]),
  );
  return entry;
}

function entryFor(relpath: string, offset: number, bytes: Uint8Array): IndexEntry {
  return {
    relpath,
    entryType: "file",
    offset,
    payloadSize: bytes.length,
    origSize: bytes.length,
    sha256: sha256(bytes),
    compressed: false,
  };
}

async function writeIndex(path: string, entries: IndexEntry[]): Promise<void> {
  await Deno.writeTextFile(path, entries.map(encodeEntry).join(""));
}

function renamed(entries: IndexEntry[], prefix: string): IndexEntry[] {
  return entries.map((e) => ({ ...e, relpath: prefix + e.relpath }));
}

async function relpaths(reader: ContainerReader): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of reader.entries()) out.push(entry.relpath);
  return out;
}

async function readStream(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concatBytes(parts);
}

async function flipByte(path: string, at: number): Promise<void> {
  const bytes = await Deno.readFile(path);
  bytes[at] = bytes[at]! ^ 0x01;
  await Deno.writeFile(path, bytes);
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

// ---------------------------------------------------------------------------
// copyStored

Deno.test("ContainerReader.copyStored hands over every piece in order and checks the SHA-256", async () => {
  await withTempDir(async (dir) => {
    const big = pseudoRandomBytes(10_000, 7);
    await writeTree(`${dir}/src`, { "big.bin": big, "empty": "" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      const entries = await Array.fromAsync(reader.entries());
      for (const entry of entries) {
        const copies: Uint8Array[] = [];
        // 1,024-byte pieces through two buffers: a piece must be copied before its write settles.
        await reader.copyStored(entry, (piece) => {
          copies.push(piece.slice());
          return Promise.resolve();
        }, 1024);
        const expected = entry.relpath === "big.bin" ? big : new Uint8Array(0);
        assert.deepEqual(concatBytes(copies), expected, entry.relpath);
        if (entry.relpath === "big.bin") assert.equal(copies.length, 10);
      }
      const big0 = entries.find((e) => e.relpath === "big.bin")!;
      await assert.rejects(
        () => reader.copyStored({ ...big0, sha256: "0".repeat(64) }, () => Promise.resolve(), 1024),
        (error: unknown) => error instanceof IntegrityError && /big\.bin/.test(error.message),
      );
      await assert.rejects(
        () => reader.copyStored({ ...big0, compressed: true }, () => Promise.resolve()),
        RangeError,
      );
    } finally {
      reader.close();
    }
  });
});

Deno.test("openRandomAccess answers reads issued together, each with its own bytes", async () => {
  await withTempDir(async (dir) => {
    const bytes = pseudoRandomBytes(50_000, 11);
    await Deno.writeFile(`${dir}/f.bin`, bytes);
    const file = await openRandomAccess(`${dir}/f.bin`);
    try {
      // Sequential and random positions, interleaved, none awaited before the next starts:
      // a read starts at once when none runs, the others queue behind it (one file position).
      const positions = [0, 1000, 2000, 40_000, 3000, 3000, 49_990, 10];
      const into = positions.map(() => new Uint8Array(10));
      const pending = positions.map((at, i) =>
        i % 2 === 0 ? file.readInto!(at, into[i]!).then(() => into[i]!) : file.readAt(at, 10)
      );
      const results = await Promise.all(pending);
      results.forEach((got, i) => {
        assert.deepEqual(got, bytes.subarray(positions[i]!, positions[i]! + 10), `read ${i}`);
      });
      // A read past the end fails, and the next read still works.
      await assert.rejects(() => file.readAt(49_995, 10), ContainerFormatError);
      assert.deepEqual(await file.readAt(5, 3), bytes.subarray(5, 8));
    } finally {
      file.close();
    }
  });
});

Deno.test("a reader that stops early (cancel) ends a compressed entry's stream quietly", async () => {
  await withTempDir(async (dir) => {
    // 8 MiB that compress well: the inflater holds many pieces when the reader stops.
    const bytes = new Uint8Array(8 << 20).map((_, i) => (i * 7) & 0x3f);
    await writeTree(`${dir}/src`, { "big.bin": bytes });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { compress: true, finalize: true });
    // A piece enqueued on a cancelled stream throws from an event handler: catch it here, so
    // the test fails by name instead of the whole file dying.
    const uncaught: string[] = [];
    const onError = (event: ErrorEvent) => {
      uncaught.push(String(event.error));
      event.preventDefault();
    };
    globalThis.addEventListener("error", onError);
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      const [entry] = await Array.fromAsync(reader.entries());
      for (const stopAfter of [1, 2, 5]) {
        let pieces = 0;
        for await (const _ of reader.open(entry!, { chunkSize: 4096 })) {
          if (++pieces === stopAfter) break;
        }
        assert.equal(pieces, stopAfter);
      }
      // Let any late piece of the inflater arrive: none may land on a closed stream.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(uncaught, []);
      const whole = await new Response(reader.open(entry!)).bytes();
      assert.equal(whole.length, bytes.length);
    } finally {
      reader.close();
      globalThis.removeEventListener("error", onError);
    }
  });
});
