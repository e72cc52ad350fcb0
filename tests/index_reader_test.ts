import assert from "node:assert/strict";
import {
  IndexReader,
  type IndexReaderOptions,
  type IndexRecord,
} from "../lib/format/index_reader.ts";
import { EMPTY_SHA256, encodeEntry, type IndexEntry } from "../lib/format/entry.ts";
import { IndexFormatError } from "../lib/errors.ts";
import { concatBytes, memorySource } from "./_helpers.ts";

const encoder = new TextEncoder();

// ---------------------------------------------------------------------------
// Formats

Deno.test("IndexReader reads NDJSON as the original tool writes it", async () => {
  const text = originalLine("a.txt", 0, 3) + originalLine("b/c.txt", 3, 4);
  const { records } = await readAll(text);
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a.txt", "b/c.txt"]);
  assert.deepEqual(records.map((r) => r.line), [1, 2]);
  assert.equal(records[1]?.entry.offset, 3);
  assert.equal(records[1]?.entry.payloadSize, 4);
});

Deno.test("IndexReader reads a JSON array index", async () => {
  const entries = [wire("a", 0, 1), wire("b", 1, 2), wire("c", 3, 3)];
  const { records, reader } = await readAll(JSON.stringify(entries));
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a", "b", "c"]);
  assert.deepEqual(records.map((r) => r.line), [1, 2, 3]);
  assert.equal(reader.tornTail, false);
});

Deno.test("IndexReader reads a version/entries object on one line", async () => {
  const text = JSON.stringify({ version: 1, entries: [wire("x", 0, 5), wire("y", 5, 6)] });
  const { records } = await readAll(text);
  assert.deepEqual(records.map((r) => r.entry.relpath), ["x", "y"]);
  assert.equal(records[1]?.entry.origSize, 6);
});

Deno.test("IndexReader reads a version/entries object pretty-printed over many lines", async () => {
  const text = JSON.stringify({ version: 1, entries: [wire("x", 0, 5), wire("y", 5, 6)] }, null, 2);
  assert.ok(text.split("\n").length > 10);
  const { records } = await readAll("\n  " + text + "\n");
  assert.deepEqual(records.map((r) => r.entry.relpath), ["x", "y"]);
});

Deno.test("IndexReader reads a JSON array pretty-printed over many lines", async () => {
  const text = JSON.stringify([wire("x", 0, 5), wire("y", 5, 6)], null, 4);
  const { records } = await readAll(text);
  assert.deepEqual(records.map((r) => r.entry.relpath), ["x", "y"]);
});

Deno.test("IndexReader refuses an invalid entry inside a JSON array, naming its element", async () => {
  const text = JSON.stringify([wire("x", 0, 5), { ...wire("y", 5, 6), offset: -1 }]);
  await assert.rejects(() => readAll(text), (error: unknown) => {
    assert.ok(error instanceof IndexFormatError);
    assert.match(error.message, /element 2/);
    return true;
  });
});

Deno.test("IndexReader refuses a JSON document that is not valid JSON", async () => {
  await assert.rejects(() => readAll('[{"relpath": "a"'), IndexFormatError);
});

Deno.test("IndexReader skips blank lines and reads CRLF line endings", async () => {
  const text = "\r\n" + originalLine("a", 0, 1).replace("\n", "\r\n") + "\n   \n\r\n" +
    originalLine("b", 1, 1).replace("\n", "\r\n") + "\n";
  const { records, reader } = await readAll(text);
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a", "b"]);
  assert.deepEqual(records.map((r) => r.line), [2, 6]);
  const bytes = encoder.encode(text);
  assert.equal(records[1]?.endOffset, bytes.length - 1, "b's line ends before the last blank");
  assert.equal(reader.validLength, bytes.length);
});

Deno.test("IndexReader reads a last line without a newline when it is valid JSON", async () => {
  const text = originalLine("a", 0, 1) + originalLine("b", 1, 1).trimEnd();
  const { records, reader } = await readAll(text);
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a", "b"]);
  assert.equal(reader.tornTail, false);
  assert.equal(reader.validLength, encoder.encode(text).length);
});

// ---------------------------------------------------------------------------
// Torn and malformed lines

const TORN = originalLine("a", 0, 1) + originalLine("b", 1, 2) + '{"relpath": "c", "offs';

Deno.test("IndexReader refuses a torn last line with code INDEX_TORN by default", async () => {
  await assert.rejects(() => readAll(TORN), (error: unknown) => {
    assert.ok(error instanceof IndexFormatError);
    assert.equal(error.code, "INDEX_TORN");
    assert.match(error.message, /line 3 is torn/);
    return true;
  });
});

Deno.test("IndexReader stops quietly at a torn last line with allowTornTail", async () => {
  const warnings: string[] = [];
  const { records, reader } = await readAll(TORN, {
    allowTornTail: true,
    onWarning: (m) => warnings.push(m.message),
  });
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a", "b"]);
  assert.equal(reader.tornTail, true);
  const complete = encoder.encode(originalLine("a", 0, 1) + originalLine("b", 1, 2)).length;
  assert.equal(reader.validLength, complete);
  assert.equal(records[1]?.endOffset, complete);
  assert.deepEqual(warnings, []);
});

Deno.test("IndexReader skips a torn last line with a warning when lenient", async () => {
  const warnings: string[] = [];
  const { records, reader } = await readAll(TORN, {
    lenient: true,
    onWarning: (m) => warnings.push(m.message),
  });
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a", "b"]);
  assert.equal(reader.tornTail, false);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /torn last line 3/);
});

// A crash can cut a line inside a multi-byte UTF-8 character.
const TORN_IN_CHARACTER = concatBytes([
  encoder.encode(originalLine("a", 0, 1)),
  encoder.encode('{"relpath": "日本語').slice(0, -1),
]);

Deno.test("IndexReader refuses a last line torn inside a UTF-8 character as INDEX_TORN", async () => {
  await assert.rejects(() => readAll(TORN_IN_CHARACTER), (error: unknown) => {
    assert.ok(error instanceof IndexFormatError);
    assert.equal(error.code, "INDEX_TORN");
    assert.match(error.message, /line 2/);
    return true;
  });
});

Deno.test("IndexReader skips a last line torn inside a UTF-8 character when lenient", async () => {
  const warnings: string[] = [];
  const { records } = await readAll(TORN_IN_CHARACTER, {
    lenient: true,
    onWarning: (m) => warnings.push(m.message),
  });
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a"]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /line 2/);
});

Deno.test("IndexReader stops at a last line torn inside a UTF-8 character with allowTornTail", async () => {
  const { records, reader } = await readAll(TORN_IN_CHARACTER, { allowTornTail: true });
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a"]);
  assert.equal(reader.tornTail, true);
  assert.equal(reader.validLength, encoder.encode(originalLine("a", 0, 1)).length);
});

const MALFORMED_MIDDLE = originalLine("a", 0, 1) + "{not json}\n" + originalLine("c", 1, 1);

Deno.test("IndexReader refuses a malformed middle line, naming its line number", async () => {
  await assert.rejects(() => readAll(MALFORMED_MIDDLE), (error: unknown) => {
    assert.ok(error instanceof IndexFormatError);
    assert.equal(error.code, "INDEX_FORMAT");
    assert.match(error.message, /line 2 is not valid JSON/);
    return true;
  });
});

Deno.test("IndexReader skips a malformed middle line with a warning when lenient", async () => {
  const warnings: string[] = [];
  const { records } = await readAll(MALFORMED_MIDDLE, {
    lenient: true,
    onWarning: (m) => warnings.push(m.message),
  });
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a", "c"]);
  assert.deepEqual(records.map((r) => r.line), [1, 3]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /malformed line 2/);
});

Deno.test("IndexReader refuses an entry with a bad field, naming its line", async () => {
  const text = originalLine("a", 0, 1) + originalLine("../escape", 1, 1);
  await assert.rejects(() => readAll(text), (error: unknown) => {
    assert.ok(error instanceof IndexFormatError);
    assert.match(error.message, /index line 2/);
    assert.match(error.message, /unsafe relpath/);
    return true;
  });
});

Deno.test("IndexReader refuses invalid UTF-8", async () => {
  const bytes = concatBytes([
    encoder.encode(originalLine("a", 0, 1)),
    encoder.encode('{"relpath": "b'),
    new Uint8Array([0xff, 0xfe]),
    encoder.encode(
      `", "offset": 1, "payload_size": 1, "orig_size": 1, "sha256": "${EMPTY_SHA256}", ` +
        '"compressed": false}\n',
    ),
  ]);
  for (const lenient of [false, true]) {
    await assert.rejects(() => readAll(bytes, { lenient }), (error: unknown) => {
      assert.ok(error instanceof IndexFormatError);
      assert.match(error.message, /not valid UTF-8/);
      return true;
    });
  }
});

// ---------------------------------------------------------------------------
// Long lines

Deno.test("IndexReader fails fast on a 5 MB line without a newline", async () => {
  const bytes = new Uint8Array(5_000_000).fill(0x61);
  const source = memorySource(bytes);
  const started = performance.now();
  await assert.rejects(
    async () => {
      for await (const _ of new IndexReader(source, { maxLineBytes: 4096 }).records()) {
        // nothing
      }
    },
    (error: unknown) => {
      assert.ok(error instanceof IndexFormatError);
      assert.match(error.message, /line 1 is longer than 4096 bytes/);
      return true;
    },
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 1000, `took ${elapsed} ms`);
  assert.ok(source.bytesRead < bytes.length, `read all ${source.bytesRead} bytes`);
});

Deno.test("IndexReader names the right line when an over-long line follows complete ones", async () => {
  const text = originalLine("a", 0, 1) + originalLine("b", 1, 1) + "x".repeat(3_000_000);
  await assert.rejects(() => readAll(text, { maxLineBytes: 4096 }), (error: unknown) => {
    assert.ok(error instanceof IndexFormatError);
    assert.match(error.message, /line 3 is longer than 4096 bytes/);
    return true;
  });
});

Deno.test("IndexReader refuses an over-long line that ends with a newline", async () => {
  const text = originalLine("a", 0, 1) + "y".repeat(10_000) + "\n" + originalLine("c", 1, 1);
  await assert.rejects(() => readAll(text, { maxLineBytes: 4096 }), (error: unknown) => {
    assert.ok(error instanceof IndexFormatError);
    assert.match(error.message, /line 2 is longer than 4096 bytes/);
    return true;
  });
});

Deno.test("IndexReader measures maxLineBytes in bytes for a line of multi-byte characters", async () => {
  // 2000 three-byte characters: 2000 UTF-16 code units, but 6000+ bytes.
  const text = originalLine("a", 0, 1) + originalLine("日".repeat(2000), 1, 1);
  assert.ok(encoder.encode(text).length > 6000);
  await assert.rejects(() => readAll(text, { maxLineBytes: 4096 }), (error: unknown) => {
    assert.ok(error instanceof IndexFormatError);
    assert.match(error.message, /line 2 is longer than 4096 bytes/);
    return true;
  });
});

Deno.test("IndexReader stops reading within 2 MiB of an over-long line", async () => {
  // Reads are 1 MiB; the line is refused at the first 64 KiB piece that takes it past the 1 MiB
  // limit, so at most 2 MiB past its start is read (exactly 2 MiB when it starts a read), after
  // the 256-byte sniff for a JSON document. The rest of the 50 MiB line is never read.
  const MIB = 1 << 20;
  const SNIFF = 256;
  const piece = (name: string) =>
    encodeEntry(entry(name, 0, 1)).trimEnd().padEnd((64 << 10) - 1) + "\n";
  const cases: [string, string[]][] = [
    ["alone", []],
    ["after complete lines", ["a", "b", "c"].map((name) => encodeEntry(entry(name, 0, 1)))],
    // 16 lines of 64 KiB: the long line starts the second 1 MiB read.
    ["starting a read, after 1 MiB of lines", Array.from({ length: 16 }, (_, i) => piece(`p${i}`))],
  ];
  for (const [what, lines] of cases) {
    const head = encoder.encode(lines.join(""));
    if (lines.length === 16) assert.equal(head.length, MIB, what);
    const bytes = new Uint8Array(head.length + 50 * MIB).fill(0x61);
    bytes.set(head);
    bytes.set(encoder.encode(`{"relpath": "`), head.length);
    for (const readInto of [false, true]) {
      const label = `${what}, readInto ${readInto}`;
      const source = memorySource(bytes, { readInto });
      const seen: string[] = [];
      let caught: unknown;
      try {
        for await (const record of new IndexReader(source).records()) {
          seen.push(record.entry.relpath);
        }
      } catch (error) {
        caught = error;
      }
      const past = source.bytesRead - SNIFF - head.length;
      assert.ok(past <= 2 * MIB, `${label}: read ${past} bytes of the line`);
      assert.ok(past > MIB, `${label}: read ${past} bytes of the line, not past the limit`);
      assert.ok(caught instanceof IndexFormatError, `${label}: ${caught}`);
      assert.match(caught.message, new RegExp(`line ${lines.length + 1} is longer than ${MIB} `));
      assert.equal(seen.length, lines.length, label);
    }
  }
});

// ---------------------------------------------------------------------------
// Offsets and ranges

Deno.test("IndexReader reports endOffset just past each line with multi-byte relpaths", async () => {
  const names = ["a.txt", "docs/日本語/ファイル.txt", "pics/😀.png", "é", "z"];
  const lines = names.map((name, i) => encodeEntry(entry(name, i, 1)));
  const { records, reader } = await readAll(lines.join(""));
  let end = 0;
  const expected = lines.map((line) => end += encoder.encode(line).length);
  assert.deepEqual(records.map((r) => r.endOffset), expected);
  assert.deepEqual(records.map((r) => r.entry.relpath), names);
  assert.equal(reader.validLength, end);
});

Deno.test("IndexReader reports endOffset across 1 MiB blocks with multi-byte relpaths", async () => {
  const lines: string[] = [];
  for (let i = 0; i < 15_000; i++) {
    const name = i % 3 === 0 ? `ascii/${i}` : i % 3 === 1 ? `données/${i}` : `日本語/😀${i}`;
    lines.push(encodeEntry(entry(name, i, 1)));
  }
  const bytes = encoder.encode(lines.join(""));
  assert.ok(bytes.length > 2 * (1 << 20), `index is ${bytes.length} bytes`);
  const { records, reader } = await readAll(bytes);
  assert.equal(records.length, lines.length);
  let end = 0;
  for (const [i, line] of lines.entries()) {
    end += encoder.encode(line).length;
    if (records[i]?.endOffset !== end) {
      assert.fail(`line ${i + 1}: endOffset ${records[i]?.endOffset}, expected ${end}`);
    }
  }
  assert.equal(reader.validLength, bytes.length);
});

Deno.test("IndexReader reads a start/length range inside a bigger buffer", async () => {
  const index = encoder.encode(originalLine("a", 0, 1) + originalLine("ü", 1, 2));
  const before = encoder.encode("payload bytes {not an index}\n");
  const after = encoder.encode("\n{garbage after the index");
  const source = memorySource(concatBytes([before, index, after]));
  const reader = new IndexReader(source, { start: before.length, length: index.length });
  const records: IndexRecord[] = [];
  for await (const record of reader.records()) records.push(record);
  assert.deepEqual(records.map((r) => r.entry.relpath), ["a", "ü"]);
  assert.equal(records[1]?.endOffset, index.length);
  assert.equal(reader.validLength, index.length);
});

Deno.test("IndexReader reads a JSON array in a start/length range", async () => {
  const index = encoder.encode(JSON.stringify([wire("a", 0, 1)]));
  const source = memorySource(concatBytes([encoder.encode("xyz"), index, encoder.encode("]]]")]));
  const reader = new IndexReader(source, { start: 3, length: index.length });
  const names: string[] = [];
  for await (const record of reader.records()) names.push(record.entry.relpath);
  assert.deepEqual(names, ["a"]);
});

Deno.test("IndexReader refuses a range outside its source", () => {
  const source = memorySource(new Uint8Array(10));
  assert.throws(() => new IndexReader(source, { start: 5, length: 6 }), RangeError);
  assert.throws(() => new IndexReader(source, { start: -1 }), RangeError);
  assert.throws(() => new IndexReader(source, { start: 11 }), RangeError);
});

Deno.test("IndexReader reads an empty index as no entries", async () => {
  const { records, reader } = await readAll("");
  assert.deepEqual(records, []);
  assert.equal(reader.tornTail, false);
});

// ---------------------------------------------------------------------------
// Helpers

/** One line exactly as Python's `json.dumps` in the original tool writes it. */
function originalLine(relpath: string, offset: number, size: number): string {
  return `{"relpath": ${JSON.stringify(relpath)}, "offset": ${offset}, "payload_size": ${size}, ` +
    `"orig_size": ${size}, "sha256": "${EMPTY_SHA256}", "compressed": false}\n`;
}

function wire(relpath: string, offset: number, size: number): Record<string, unknown> {
  return {
    relpath,
    offset,
    payload_size: size,
    orig_size: size,
    sha256: EMPTY_SHA256,
    compressed: false,
  };
}

function entry(relpath: string, offset: number, size: number): IndexEntry {
  return {
    relpath,
    entryType: "file",
    offset,
    payloadSize: size,
    origSize: size,
    sha256: EMPTY_SHA256,
    compressed: false,
  };
}

async function readAll(
  text: string | Uint8Array,
  options: IndexReaderOptions = {},
): Promise<{ records: IndexRecord[]; reader: IndexReader }> {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  const reader = new IndexReader(memorySource(bytes), options);
  const records: IndexRecord[] = [];
  for await (const record of reader.records()) records.push(record);
  return { records, reader };
}

// ---------------------------------------------------------------------------
// Batches

Deno.test("IndexReader.batches yields the records of records(), in order, one array per 64 KiB block", async () => {
  let text = "";
  for (let i = 0; i < 3000; i++) text += originalLine(`dir/file-${i}.txt`, i, 1);
  const { records } = await readAll(text);
  const batches: IndexRecord[][] = [];
  for await (const batch of new IndexReader(memorySource(encoder.encode(text))).batches()) {
    batches.push(batch);
  }
  assert.ok(batches.length >= 3, `${batches.length} batches for ${text.length} bytes`);
  assert.ok(batches.every((b) => b.length > 0));
  assert.deepEqual(batches.flat(), records);
  assert.equal(records.length, 3000);
});

Deno.test("IndexReader.batches yields the records before a bad line, then throws naming it", async () => {
  const text = originalLine("a", 0, 1) + originalLine("b", 1, 1) + originalLine("../c", 2, 1);
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const batch of new IndexReader(memorySource(encoder.encode(text))).batches()) {
      seen.push(...batch.map((r) => r.entry.relpath));
    }
  }, /index line 3.*unsafe relpath/);
  assert.deepEqual(seen, ["a", "b"]);
});

Deno.test("IndexReader.batches yields a JSON array's elements before a bad one", async () => {
  const entries = [wire("a", 0, 1), wire("b", 1, 1), { relpath: "c" }];
  const seen: string[] = [];
  await assert.rejects(async () => {
    const bytes = encoder.encode(JSON.stringify(entries));
    for await (const batch of new IndexReader(memorySource(bytes)).batches()) {
      seen.push(...batch.map((r) => r.entry.relpath));
    }
  }, /element 3/);
  assert.deepEqual(seen, ["a", "b"]);
});

Deno.test("IndexReader reads the same records into a reused buffer as into fresh ones", async () => {
  // Over 2 MiB of lines with multi-byte names, and one line of 1.2 MiB that spans the 1 MiB
  // boundary between two reads: the bytes held over from one read must survive the next.
  const lines: string[] = [];
  for (let i = 0; i < 9000; i++) {
    lines.push(encodeEntry(entry(i % 2 === 0 ? `données/${i}` : `日本語/😀${i}`, i, 1)));
  }
  const long = JSON.stringify({
    ...JSON.parse(lines[0]!),
    relpath: "long",
    note: "x".repeat(1_200_000),
  });
  lines.splice(4000, 0, long + "\n");
  const bytes = encoder.encode(lines.join(""));
  assert.ok(bytes.length > 2 * (1 << 20), `index is ${bytes.length} bytes`);
  const read = async (readInto: boolean) => {
    const records: IndexRecord[] = [];
    const reader = new IndexReader(memorySource(bytes, { readInto }), { maxLineBytes: 2 << 20 });
    for await (const record of reader.records()) records.push(record);
    return records;
  };
  const fresh = await read(false);
  const reused = await read(true);
  assert.equal(fresh.length, 9001);
  assert.equal(reused.length, fresh.length);
  reused.forEach((record, i) => {
    if (
      record.entry.relpath !== fresh[i]!.entry.relpath || record.endOffset !== fresh[i]!.endOffset
    ) {
      assert.fail(
        `record ${i}: ${record.entry.relpath} at ${record.endOffset}, expected ${
          fresh[i]!.entry.relpath
        }`,
      );
    }
  });
  assert.equal(reused[4000]!.entry.relpath, "long");
  assert.ok(fresh[3999]!.endOffset < 1 << 20 && fresh[4000]!.endOffset > 1 << 20);
});

Deno.test("IndexReader keeps a line that starts exactly on a 64 KiB piece across reads", async () => {
  // The first line fills the first 15 pieces of 64 KiB exactly, so the long line after it
  // starts the last piece of the first 1 MiB read with nothing held over, and runs on into the
  // next read (which refills a reused buffer).
  const base = JSON.parse(encodeEntry(entry("first", 0, 1)));
  const pad = (json: string, total: number) =>
    JSON.stringify({ ...JSON.parse(json), note: "p".repeat(total - json.length - 11) }) + "\n";
  const first = pad(JSON.stringify(base), 15 * (64 << 10));
  assert.equal(encoder.encode(first).length, 15 * (64 << 10));
  const long = JSON.stringify({ ...base, relpath: "long", note: "x".repeat(200_000) }) + "\n";
  // Lines after it, so that the second read fills the whole reused buffer.
  let last = "";
  for (let i = 0; i < 8000; i++) last += encodeEntry(entry(`after/${i}`, 2, 1));
  const bytes = encoder.encode(first + long + last);
  assert.ok(bytes.length > 2 << 20);
  for (const readInto of [false, true]) {
    const records: IndexRecord[] = [];
    const reader = new IndexReader(memorySource(bytes, { readInto }), { maxLineBytes: 2 << 20 });
    for await (const record of reader.records()) records.push(record);
    assert.deepEqual(
      records.slice(0, 3).map((r) => r.entry.relpath),
      ["first", "long", "after/0"],
      `${readInto}`,
    );
    assert.equal(records.length, 8002);
    assert.equal(records[1]!.endOffset, 15 * (64 << 10) + long.length);
  }
});

Deno.test("IndexReader refuses a byte order mark on a line wherever the line lies", async () => {
  // A BOM is not JSON (the original tool's json.loads refuses it too). TextDecoder drops one at
  // the start of each decode call unless told not to: it was accepted on a line that began a
  // 64 KiB piece (line 1 here, or the line at 64 KiB) and refused on the others.
  const bom = "\ufeff";
  const line = (name: string) => encodeEntry(entry(name, 0, 1));
  const cases: [string, string, number][] = [
    ["at the start of the index", bom + line("x") + line("y"), 1],
    ["on a later line", line("x") + bom + line("y"), 2],
  ];
  for (const [what, index, badLine] of cases) {
    await assert.rejects(
      () => readAll(index),
      (error: unknown) =>
        error instanceof IndexFormatError &&
        error.message.includes(`line ${badLine} is not valid JSON`),
      what,
    );
    const lenient = await readAll(index, { lenient: true });
    assert.equal(lenient.records.length, 1, what);
  }
  // A line that begins exactly at the second 64 KiB piece.
  let head = "";
  for (let i = 0; encoder.encode(head).length < (64 << 10) - 1000; i++) head += line(`a/${i}`);
  const base = line("pad");
  const room = (64 << 10) - encoder.encode(head).length;
  const atPiece = head +
    JSON.stringify({ ...JSON.parse(base), note: "p".repeat(room - base.length - 10) }) + "\n";
  assert.equal(encoder.encode(atPiece).length, 64 << 10);
  await assert.rejects(
    () => readAll(atPiece + bom + line("z")),
    (error: unknown) =>
      error instanceof IndexFormatError && /is not valid JSON/.test(error.message),
  );
});
