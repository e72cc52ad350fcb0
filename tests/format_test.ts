import assert from "node:assert/strict";
import { checkRelpath } from "../lib/safety/relpath.ts";
import { EMPTY_SHA256, encodeEntry, type IndexEntry, parseEntry } from "../lib/format/entry.ts";
import {
  encodeFooter,
  encodeTrailerHeader,
  findTrailer,
  TRAILER_MAGIC,
} from "../lib/format/trailer.ts";
import { ContainerFormatError, IndexFormatError } from "../lib/errors.ts";
import { concatBytes, memorySource } from "./_helpers.ts";

const SHA = "600e2a79d804343098b6dea54547b1bdb0a7e70ba7f0441d1b2f376e9318464f";
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------
// checkRelpath

const SAFE_RELPATHS: [string, string][] = [
  ["a plain name", "a.txt"],
  ["a nested path", "docs/readme.md"],
  ["a deep path", "deep/a/b/c/d/e/leaf.txt"],
  ["unicode names", "docs/日本語/ファイル.txt"],
  ["accented names", "docs/données/résumé.txt"],
  ["an emoji (astral plane)", "pics/😀.png"],
  ["names with spaces", "space name/file with spaces.txt"],
  ["a dot file", ".hidden"],
  ["a two-character dot file", ".a"],
  ["a name that starts with two dots", "..hidden/x...y"],
  ["a name with dots inside", "a..b/c...d"],
  ["a colon after the first character", "ab:c/d:e"],
];

for (const [what, relpath] of SAFE_RELPATHS) {
  Deno.test(`checkRelpath accepts ${what}: ${JSON.stringify(relpath)}`, () => {
    assert.equal(checkRelpath(relpath), undefined);
  });
}

const UNSAFE_RELPATHS: [string, string][] = [
  ["an empty path", ""],
  ["a lone dot", "."],
  ["an absolute path", "/x"],
  ["an absolute path to /etc (path traversal)", "/etc/passwd"],
  ["a UNC path", "//server/x"],
  ["a drive-letter path", "C:/x"],
  ["a drive-relative path", "C:x"],
  ["a lowercase drive letter", "c:/x"],
  ["a backslash separator", "a\\b"],
  ["a backslash traversal", "..\\evil"],
  ["a NUL byte (truncation attack)", "a\0b"],
  ["an empty component", "a//b"],
  ["a '.' component", "a/./b"],
  ["a '..' component (path traversal)", "a/../b"],
  ["a lone '..' (path traversal)", ".."],
  ["a leading '..' (path traversal)", "../x"],
  ["a trailing '..' (path traversal)", "a/.."],
  ["a trailing slash", "a/"],
  ["a leading './'", "./a"],
  ["a lone high surrogate", "a\uD800b"],
  ["a lone low surrogate", "\uDC00"],
];

for (const [what, relpath] of UNSAFE_RELPATHS) {
  Deno.test(`checkRelpath refuses ${what}: ${JSON.stringify(relpath)}`, () => {
    const reason = checkRelpath(relpath);
    assert.equal(typeof reason, "string", `expected a reason for ${JSON.stringify(relpath)}`);
    assert.ok(reason!.length > 0);
  });
}

// ---------------------------------------------------------------------------
// parseEntry

/** An entry line exactly as the original create_container.py writes it. */
const ORIGINAL_LINE =
  '{"relpath": "hello.txt", "offset": 0, "payload_size": 17, "orig_size": 17, ' +
  `"sha256": "${SHA}", "compressed": false}`;

function wireEntry(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    relpath: "a/b.txt",
    offset: 10,
    payload_size: 5,
    orig_size: 5,
    sha256: SHA,
    compressed: false,
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base;
}

Deno.test("parseEntry reads an entry written by the original tool", () => {
  const entry = parseEntry(JSON.parse(ORIGINAL_LINE), "index line 1");
  assert.deepEqual(entry, {
    relpath: "hello.txt",
    entryType: "file",
    offset: 0,
    payloadSize: 17,
    origSize: 17,
    sha256: SHA,
    compressed: false,
  });
});

Deno.test("parseEntry reads a compressed entry whose payload_size differs from orig_size", () => {
  const entry = parseEntry(wireEntry({ compressed: true, payload_size: 40, orig_size: 9000 }), "x");
  assert.equal(entry.compressed, true);
  assert.equal(entry.payloadSize, 40);
  assert.equal(entry.origSize, 9000);
});

Deno.test("parseEntry keeps mode, mtime and orig_sha256 when present", () => {
  const entry = parseEntry(
    wireEntry({ mode: 0o755, mtime: 981173106.5, orig_sha256: SHA.toUpperCase() }),
    "x",
  );
  assert.equal(entry.mode, 0o755);
  assert.equal(entry.mtime, 981173106.5);
  assert.equal(entry.origSha256, SHA);
});

Deno.test("parseEntry normalises an uppercase sha256 to lowercase", () => {
  const entry = parseEntry(wireEntry({ sha256: SHA.toUpperCase() }), "x");
  assert.equal(entry.sha256, SHA);
  const lastLetter = SHA.search(/[a-f][0-9]*$/);
  const oneUpper = SHA.slice(0, lastLetter) + SHA[lastLetter]!.toUpperCase() +
    SHA.slice(lastLetter + 1);
  assert.notEqual(oneUpper, SHA);
  assert.equal(parseEntry(wireEntry({ sha256: oneUpper }), "x").sha256, SHA);
});

const INTEGER_FIELDS = ["offset", "payload_size", "orig_size"] as const;
const BAD_INTEGERS: [string, unknown][] = [
  ["missing", undefined],
  ["negative", -1],
  ["fractional", 1.5],
  ["a string", "5"],
  ["above 2^53", 2 ** 53 + 2],
  ["null", null],
  ["NaN", NaN],
  ["Infinity", Infinity],
];

for (const field of INTEGER_FIELDS) {
  for (const [what, value] of BAD_INTEGERS) {
    Deno.test(`parseEntry refuses a file entry whose ${field} is ${what}`, () => {
      // compressed: true so that payload_size != orig_size is not what fails.
      const raw = wireEntry({ compressed: true, [field]: value });
      assert.throws(
        () => parseEntry(raw, "index line 7"),
        (error: unknown) => {
          assert.ok(error instanceof IndexFormatError);
          assert.equal(error.code, "INDEX_FORMAT");
          assert.match(error.message, new RegExp(`"${field}"`));
          assert.match(error.message, /a\/b\.txt/);
          assert.match(error.message, /index line 7/);
          return true;
        },
      );
    });
  }
}

const BAD_ENTRIES: [string, unknown, RegExp][] = [
  ["a sha256 of 63 hex digits", wireEntry({ sha256: SHA.slice(1) }), /"sha256"/],
  ["a sha256 with a non-hex digit", wireEntry({ sha256: "g" + SHA.slice(1) }), /"sha256"/],
  ["a missing sha256", wireEntry({ sha256: undefined }), /"sha256"/],
  // Each character just outside a range of hex digits (0-9, A-F, a-f), at the end.
  // "\u0161" is a character whose low byte is "a".
  ...["/", ":", "@", "G", "`", "g", "\u0161"].map((c): [string, unknown, RegExp] => [
    `a sha256 ending in "${c}"`,
    wireEntry({ sha256: SHA.slice(0, 63) + c }),
    /"sha256"/,
  ]),
  ["a sha256 of 65 hex digits", wireEntry({ sha256: SHA + "a" }), /"sha256"/],
  [
    'an orig_sha256 ending in "G"',
    wireEntry({ orig_sha256: SHA.slice(0, 63) + "G" }),
    /"orig_sha256"/,
  ],
  ["a numeric sha256", wireEntry({ sha256: 12 }), /"sha256"/],
  ["compressed as a string", wireEntry({ compressed: "true" }), /"compressed"/],
  ["compressed as a number", wireEntry({ compressed: 1 }), /"compressed"/],
  [
    "an uncompressed entry whose payload_size differs from orig_size",
    wireEntry({ payload_size: 5, orig_size: 6 }),
    /payload_size 5 differs from orig_size 6/,
  ],
  [
    "a symlink entry without link_target",
    { relpath: "l", entry_type: "symlink" },
    /"link_target"/,
  ],
  [
    "a symlink entry with an empty link_target",
    { relpath: "l", entry_type: "symlink", link_target: "" },
    /"link_target"/,
  ],
  ["an unknown entry_type", wireEntry({ entry_type: "fifo" }), /entry_type "fifo"/],
  ["a mode above 0o7777", wireEntry({ mode: 0o10000 }), /"mode"/],
  ["a negative mode", wireEntry({ mode: -1 }), /"mode"/],
  ["a fractional mode", wireEntry({ mode: 420.5 }), /"mode"/],
  ["an mtime of NaN", wireEntry({ mtime: NaN }), /"mtime"/],
  ["an mtime that is a string", wireEntry({ mtime: "2001-02-03" }), /"mtime"/],
  ["an infinite mtime", wireEntry({ mtime: Infinity }), /"mtime"/],
  ["a bad orig_sha256", wireEntry({ orig_sha256: "abc" }), /"orig_sha256"/],
  [
    "a dir entry with a payload",
    { relpath: "d", entry_type: "dir", payload_size: 3, orig_size: 3 },
    /has a payload/,
  ],
  ["an unsafe relpath (path traversal)", wireEntry({ relpath: "../evil" }), /unsafe relpath/],
  ["an absolute relpath", wireEntry({ relpath: "/etc/passwd" }), /unsafe relpath/],
  ["a missing relpath", wireEntry({ relpath: undefined }), /"relpath" is not a string/],
  ["a value that is not an object", [1, 2], /not a JSON object/],
  ["null", null, /not a JSON object/],
];

for (const [what, raw, pattern] of BAD_ENTRIES) {
  Deno.test(`parseEntry refuses ${what}`, () => {
    assert.throws(
      () => parseEntry(raw, "index line 2"),
      (error: unknown) => {
        assert.ok(error instanceof IndexFormatError, `got ${error}`);
        assert.match(error.message, pattern);
        assert.match(error.message, /index line 2/);
        return true;
      },
    );
  });
}

Deno.test("parseEntry accepts a dir entry without offset, sizes or sha256", () => {
  const entry = parseEntry({ relpath: "emptydir/inner", entry_type: "dir", mode: 0o700 }, "x");
  assert.deepEqual(entry, {
    relpath: "emptydir/inner",
    entryType: "dir",
    offset: 0,
    payloadSize: 0,
    origSize: 0,
    sha256: EMPTY_SHA256,
    compressed: false,
    mode: 0o700,
  });
});

Deno.test("parseEntry accepts a symlink entry without offset", () => {
  const entry = parseEntry({ relpath: "link", entry_type: "symlink", link_target: "a.txt" }, "x");
  assert.equal(entry.entryType, "symlink");
  assert.equal(entry.linkTarget, "a.txt");
  assert.equal(entry.offset, 0);
  assert.equal(entry.payloadSize, 0);
});

// ---------------------------------------------------------------------------
// encodeEntry

const FILE_ENTRY: IndexEntry = {
  relpath: "docs/日本語/ファイル.txt",
  entryType: "file",
  offset: 123,
  payloadSize: 20,
  origSize: 25,
  sha256: SHA,
  compressed: true,
  mode: 0o644,
  mtime: 981173106.123,
  origSha256: EMPTY_SHA256,
};

Deno.test("encodeEntry writes file entries with the original key order, then the extras", () => {
  const line = encodeEntry(FILE_ENTRY);
  assert.ok(line.endsWith("\n"));
  assert.equal(line.indexOf("\n"), line.length - 1, "exactly one line");
  assert.deepEqual(Object.keys(JSON.parse(line)), [
    "relpath",
    "offset",
    "payload_size",
    "orig_size",
    "sha256",
    "compressed",
    "mode",
    "mtime",
    "orig_sha256",
  ]);
});

Deno.test("encodeEntry writes only the six original keys for a plain file entry", () => {
  const entry = parseEntry(JSON.parse(ORIGINAL_LINE), "x");
  assert.deepEqual(JSON.parse(encodeEntry(entry)), JSON.parse(ORIGINAL_LINE));
  assert.deepEqual(Object.keys(JSON.parse(encodeEntry(entry))), [
    "relpath",
    "offset",
    "payload_size",
    "orig_size",
    "sha256",
    "compressed",
  ]);
});

Deno.test("encodeEntry writes dir and symlink entries without an offset", () => {
  const dir = JSON.parse(encodeEntry(parseEntry({ relpath: "d", entry_type: "dir" }, "x")));
  const link = JSON.parse(
    encodeEntry(parseEntry({ relpath: "l", entry_type: "symlink", link_target: "d" }, "x")),
  );
  assert.deepEqual(dir, { relpath: "d", entry_type: "dir" });
  assert.deepEqual(link, { relpath: "l", entry_type: "symlink", link_target: "d" });
  assert.equal("offset" in dir, false);
  assert.equal("offset" in link, false);
});

const ROUND_TRIP: [string, IndexEntry][] = [
  ["a file entry with extras", FILE_ENTRY],
  ["an empty file entry", {
    relpath: "empty.bin",
    entryType: "file",
    offset: 0,
    payloadSize: 0,
    origSize: 0,
    sha256: EMPTY_SHA256,
    compressed: false,
  }],
  ["a dir entry", {
    relpath: "a/b",
    entryType: "dir",
    offset: 0,
    payloadSize: 0,
    origSize: 0,
    sha256: EMPTY_SHA256,
    compressed: false,
    mode: 0o755,
    mtime: 1000,
  }],
  ["a symlink entry", {
    relpath: "a/link",
    entryType: "symlink",
    offset: 0,
    payloadSize: 0,
    origSize: 0,
    sha256: EMPTY_SHA256,
    compressed: false,
    linkTarget: "../x y/é",
  }],
  ["an entry at a large offset", {
    relpath: "big",
    entryType: "file",
    offset: 2 ** 52,
    payloadSize: 2 ** 40,
    origSize: 2 ** 40,
    sha256: SHA,
    compressed: false,
  }],
];

for (const [what, entry] of ROUND_TRIP) {
  Deno.test(`encodeEntry round-trips ${what} through parseEntry`, () => {
    assert.deepEqual(parseEntry(JSON.parse(encodeEntry(entry)), "x"), entry);
  });
}

// ---------------------------------------------------------------------------
// findTrailer

function ndjson(count: number, padding = ""): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(encodeEntry({
      relpath: `dir/file-${i}${padding}`,
      entryType: "file",
      offset: 0,
      payloadSize: 0,
      origSize: 0,
      sha256: EMPTY_SHA256,
      compressed: false,
    }));
  }
  return encoder.encode(lines.join(""));
}

/** Payloads, trailer header, index and (for ctnr) the footer. */
function container(payload: Uint8Array, index: Uint8Array, footer: boolean): Uint8Array {
  const parts = [payload, encodeTrailerHeader(index.length), index];
  if (footer) parts.push(encodeFooter(index.length));
  return concatBytes(parts);
}

Deno.test("findTrailer finds ctnr's footer with two small reads", async () => {
  const payload = new Uint8Array(3 << 20).fill(7);
  const index = ndjson(3);
  const source = memorySource(container(payload, index, true));
  const found = await findTrailer(source);
  assert.deepEqual(found, {
    trailerOffset: payload.length,
    indexOffset: payload.length + 16,
    indexLength: index.length,
    hasFooter: true,
  });
  assert.ok(source.bytesRead <= 64, `read ${source.bytesRead} bytes`);
});

Deno.test("findTrailer finds the original tool's trailer without a footer by scan", async () => {
  const payload = encoder.encode("hello world, some payload bytes");
  const index = ndjson(5);
  const found = await findTrailer(memorySource(container(payload, index, false)));
  assert.deepEqual(found, {
    trailerOffset: payload.length,
    indexOffset: payload.length + 16,
    indexLength: index.length,
    hasFooter: false,
  });
});

Deno.test("findTrailer finds the original tool's trailer before an index over 5 MiB", async () => {
  const index = ndjson(60_000, "-" + "p".repeat(40));
  assert.ok(index.length > 5 * 1024 * 1024, `index is ${index.length} bytes`);
  const payload = new Uint8Array(1000).fill(1);
  const found = await findTrailer(memorySource(container(payload, index, false)));
  assert.ok(found !== null, "trailer not found");
  assert.equal(found.trailerOffset, payload.length);
  assert.equal(found.indexLength, index.length);
  assert.equal(found.hasFooter, false);
});

Deno.test("findTrailer finds the original trailer when the index is the whole file tail", async () => {
  // No payload at all: the trailer starts at byte 0.
  const index = ndjson(2);
  const found = await findTrailer(memorySource(container(new Uint8Array(0), index, false)));
  assert.equal(found?.trailerOffset, 0);
  assert.equal(found?.indexLength, index.length);
});

Deno.test("findTrailer is not confused by a payload that holds the trailer magic", async () => {
  const index = ndjson(4);
  // A decoy trailer inside the payload: magic followed by a length that would
  // make its "index" end exactly at the end of the file.
  const before = encoder.encode("payload before the decoy ");
  const after = encoder.encode(" payload after the decoy");
  const decoyAt = before.length;
  const total = before.length + 16 + after.length + 16 + index.length;
  const decoy = encodeTrailerHeader(total - decoyAt - 16);
  const payload = concatBytes([before, decoy, after, TRAILER_MAGIC]);
  // A second decoy, bare magic, right before the real trailer.
  const bytes = container(payload, index, false);
  assert.equal(bytes.length, total + TRAILER_MAGIC.length);
  const found = await findTrailer(memorySource(bytes));
  assert.equal(found?.trailerOffset, payload.length);
  assert.equal(found?.indexLength, index.length);
});

Deno.test("findTrailer finds a trailer whose header straddles a 1 MiB scan block", async () => {
  const index = encoder.encode("x".repeat((1 << 20) - 8));
  const payload = new Uint8Array(100);
  const found = await findTrailer(memorySource(container(payload, index, false)));
  assert.equal(found?.trailerOffset, 100);
  assert.equal(found?.indexLength, index.length);
});

Deno.test("findTrailer returns null when there is no trailer", async () => {
  for (const bytes of [new Uint8Array(0), new Uint8Array(10), new Uint8Array(100_000).fill(0x43)]) {
    assert.equal(await findTrailer(memorySource(bytes)), null);
  }
  // Magic present but its length does not end at the end of the file: longer, and shorter.
  const wrong = concatBytes([encodeTrailerHeader(999), ndjson(1)]);
  assert.equal(await findTrailer(memorySource(wrong)), null);
  const short = concatBytes([encoder.encode("payload"), encodeTrailerHeader(10), ndjson(1)]);
  assert.equal(await findTrailer(memorySource(short)), null);
});

Deno.test("findTrailer with scan false ignores the original tool's trailer", async () => {
  const bytes = container(encoder.encode("abc"), ndjson(2), false);
  assert.equal(await findTrailer(memorySource(bytes), { scan: false }), null);
  assert.notEqual(await findTrailer(memorySource(bytes)), null);
});

const BAD_FOOTERS: [string, (index: Uint8Array) => Uint8Array][] = [
  ["a footer length larger than the file", (index) =>
    concatBytes([
      encoder.encode("abc"),
      encodeTrailerHeader(index.length),
      index,
      encodeFooter(10_000_000),
    ])],
  ["a footer length that differs from the header's", (index) =>
    concatBytes([
      encoder.encode("abcdef"),
      encodeTrailerHeader(index.length),
      index,
      encodeFooter(index.length - 3),
    ])],
  ["a header length that differs from the footer's", (index) =>
    concatBytes([
      encoder.encode("abc"),
      encodeTrailerHeader(index.length + 1),
      index,
      encodeFooter(index.length),
    ])],
  [
    "a footer without a trailer header",
    (index) => concatBytes([new Uint8Array(16), index, encodeFooter(index.length)]),
  ],
];

for (const [what, build] of BAD_FOOTERS) {
  Deno.test(`findTrailer refuses ${what}`, async () => {
    await assert.rejects(
      () => findTrailer(memorySource(build(ndjson(2)))),
      (error: unknown) => {
        assert.ok(error instanceof ContainerFormatError, `got ${error}`);
        assert.match(error.message, /footer/);
        return true;
      },
    );
  });
}

Deno.test("findTrailer with at accepts only a trailer at that offset", async () => {
  const payload = encoder.encode("0123456789");
  const index = ndjson(2);
  for (const footer of [false, true]) {
    const source = memorySource(container(payload, index, footer));
    assert.deepEqual(await findTrailer(source, { at: payload.length }), {
      trailerOffset: payload.length,
      indexOffset: payload.length + 16,
      indexLength: index.length,
      hasFooter: footer,
    });
    assert.equal(await findTrailer(source, { at: payload.length - 1 }), null);
    assert.equal(await findTrailer(source, { at: 0 }), null);
    assert.equal(await findTrailer(source, { at: source.size + 5 }), null);
  }
});

Deno.test("findTrailer with at refuses a footer whose length differs from the header's", async () => {
  const payload = encoder.encode("payload");
  const index = ndjson(2);
  const bytes = concatBytes([
    payload,
    encodeTrailerHeader(index.length),
    index,
    encodeFooter(index.length + 1),
  ]);
  assert.equal(await findTrailer(memorySource(bytes), { at: payload.length }), null);
});

Deno.test("findTrailer with at refuses a header without the magic", async () => {
  const payload = encoder.encode("payload");
  const index = ndjson(2);
  const header = encodeTrailerHeader(index.length);
  header.set(encoder.encode("NOTMAGIC"), 0); // the length still fits the file exactly
  for (const footer of [false, true]) {
    const parts = [payload, header, index];
    if (footer) parts.push(encodeFooter(index.length));
    assert.equal(await findTrailer(memorySource(concatBytes(parts)), { at: payload.length }), null);
  }
});

Deno.test("findTrailer with at ignores a decoy footer before that offset", async () => {
  // An unfinalized container whose payloads end with a ctnr container: with
  // `at` at the end of the indexed payloads, no trailer is reported.
  const inner = container(encoder.encode("inner payload"), ndjson(1), true);
  const outer = concatBytes([encoder.encode("first payload"), inner]);
  assert.equal(await findTrailer(memorySource(outer), { at: outer.length }), null);
});

/** The payload fields of a folder or link entry. */
const NO_PAYLOAD = {
  offset: 0,
  payloadSize: 0,
  origSize: 0,
  sha256: EMPTY_SHA256,
  compressed: false,
};

Deno.test("encodeEntry writes the bytes JSON.stringify of the wire object writes", () => {
  // The reference: the object the spec describes, through JSON.stringify, with the trailer
  // magic and the line breaks Python's splitlines() knows beyond JSON's escaped.
  const reference = (entry: IndexEntry): string => {
    const wire: Record<string, unknown> = { relpath: entry.relpath };
    if (entry.entryType === "file") {
      Object.assign(wire, {
        offset: entry.offset,
        payload_size: entry.payloadSize,
        orig_size: entry.origSize,
        sha256: entry.sha256,
        compressed: entry.compressed,
      });
    } else wire.entry_type = entry.entryType;
    if (entry.linkTarget !== undefined) wire.link_target = entry.linkTarget;
    if (entry.mode !== undefined) wire.mode = entry.mode;
    if (entry.mtime !== undefined) wire.mtime = entry.mtime;
    if (entry.origSha256 !== undefined) wire.orig_sha256 = entry.origSha256;
    return JSON.stringify(wire).replaceAll("CTNRv1__", "CTNRv1\\u005f_")
      .replaceAll("\u0085", "\\u0085").replaceAll("\u2028", "\\u2028")
      .replaceAll("\u2029", "\\u2029") + "\n";
  };
  const names = [
    "a.txt",
    'quote"back\\slash',
    "tab\tnew\nline\u0001",
    "ünï/cødé/名前",
    "emoji 😀",
    "xCTNRv1__y",
    "CTNRv1__",
    "\u2028\u2029",
    "next\u0085line",
  ];
  const mtimes = [undefined, 0, 1.5, 1795993322.081, -4.8e-33, 1e21, -0];
  let checked = 0;
  names.forEach((relpath, i) => {
    for (const mtime of mtimes) {
      const entries: IndexEntry[] = [
        {
          relpath,
          entryType: "file",
          offset: i * 4096,
          payloadSize: 10 + i,
          origSize: 20 + i,
          sha256: EMPTY_SHA256,
          compressed: i % 2 === 0,
          mode: 0o644,
          origSha256: EMPTY_SHA256,
        },
        { relpath, entryType: "dir", ...NO_PAYLOAD },
        { relpath, entryType: "symlink", ...NO_PAYLOAD, linkTarget: `../${relpath}`, mode: 0o777 },
      ];
      for (const entry of entries) {
        if (mtime !== undefined) entry.mtime = mtime;
        assert.equal(
          encodeEntry(entry),
          reference(entry),
          `${relpath} ${entry.entryType} ${mtime}`,
        );
        checked++;
      }
    }
  });
  assert.equal(checked, names.length * mtimes.length * 3);
});

Deno.test("checkRelpath refuses a relpath longer than 32,767 characters, before any other work", () => {
  assert.equal(checkRelpath("a/".repeat(16_383) + "x"), undefined, "32,767 characters");
  const long = "a/".repeat(100_000) + "x";
  const started = performance.now();
  assert.match(checkRelpath(long) ?? "", /longer than 32767 characters/);
  assert.ok(performance.now() - started < 50);
});
