/**
 * Property and mutation tests of extraction against hostile containers.
 *
 * Every run must end either in success with an output that is exactly what
 * the index says (or what the source held), or in an error of a class that
 * case may rightly produce, with no programming error (`TypeError`,
 * `RangeError`, ...) anywhere in its cause chain; never in a hang, never
 * with a file outside the output folder or a `.ctnr-tmp-` file left behind.
 *
 * Each case runs in a module worker (tests/_fuzz_worker.ts) while a timer on
 * the test's thread watches it: a case with no answer within
 * `CASE_TIMEOUT_MS` fails the test, even when it spins in a synchronous loop.
 *
 * Both tests print their seed; set `CTNR_FUZZ_SEED` to replay one.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
// A full specifier: ctnr runs from a URL, without its deno.json (README "Runtime dependencies").
// deno-lint-ignore no-import-prefix
import fc from "npm:fast-check@4.11.0";
import {
  ContainerFormatError,
  createContainer,
  CtnrError,
  EMPTY_SHA256,
  type ExtractOptions,
  IndexFormatError,
  IntegrityError,
  UnsafeEntryError,
} from "../mod.ts";
import { encodeFooter, encodeTrailerHeader } from "../lib/format/trailer.ts";
import type { ErrorLink, FuzzReply, FuzzRequest } from "./_fuzz_worker.ts";
import {
  concatBytes,
  diffTrees,
  exists,
  fixture,
  listPaths,
  pseudoRandomBytes,
  type TreeSpec,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

const encoder = new TextEncoder();
/** A case with no answer after this long fails the test (generous: slow CI, 500-file cases). */
const CASE_TIMEOUT_MS = 20_000;
/** While fast-check shrinks a hang: a shorter wait for each smaller case, and at most this many. */
const SHRINK_TIMEOUT_MS = 3_000;
const SHRINK_HANGS = 5;
/**
 * Above this many file entries, extraction writes small files in workers
 * (lib/extract/extract_container.ts). A worker started from a worker (here, the write
 * workers from tests/_fuzz_worker.ts) takes about 0.5 s to start and 0.5 s
 * more to answer its first message (Deno 2.9.6; from the main thread:
 * 25 ms), so a case that reaches them costs about a second.
 */
const WRITE_WORKER_FILES = 512;

Deno.test("extractContainer on random indexes and trailers succeeds exactly as the index says or throws an expected error", async () => {
  const seed = seedFor("property");
  const outcomes = new Map<string, number>();
  const count = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  const runner = new CaseRunner();
  const bulkRunner = new CaseRunner();
  // The bulk cases run beside fast-check's, on a worker of their own: most of the second each
  // costs is spent waiting for the write workers to start (see WRITE_WORKER_FILES).
  const bulk = (async () => {
    for (const [n, [specs, trailer, options]] of bulkCases(seed).entries()) {
      const name = `seed ${seed} bulk case ${n}: ${fc.stringify(specs)}\n`;
      await withTempDir(async (dir) =>
        count(
          await runRandomCase(bulkRunner, dir, specs, trailer, options, CASE_TIMEOUT_MS, name),
        )
      );
    }
  })();
  let hangs = 0;
  const property = fc.assert(
    fc.asyncProperty(CASE, async ([specs, trailer, options]) => {
      // After a hang, fast-check shrinks it: smaller cases get a shorter wait, and once
      // SHRINK_HANGS of them hung too, the rest pass unrun so the smallest hang is reported.
      if (hangs > SHRINK_HANGS) return;
      const timeout = hangs === 0 ? CASE_TIMEOUT_MS : SHRINK_TIMEOUT_MS;
      await withTempDir(async (dir) => {
        try {
          count(await runRandomCase(runner, dir, specs, trailer, options, timeout));
        } catch (error) {
          if (error instanceof CaseHung && hangs++ > 0) {
            error.message += `\n(the wait while fast-check shrinks a case that hung for ` +
              `${CASE_TIMEOUT_MS} ms)`;
          }
          throw error;
        }
      });
    }),
    { seed, numRuns: 1000 },
  );
  try {
    await allOrFirstFailure(property, bulk);
  } finally {
    runner.close();
    bulkRunner.close();
  }
  console.log(`  outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  assert.ok((outcomes.get("success") ?? 0) > 10, "too few runs got past validation");
  assert.ok(
    [...outcomes.keys()].some((key) => key.endsWith(WORKERS_USED)),
    "no case reached the write workers",
  );
});

Deno.test("extractContainer on mutated real containers succeeds with the source's files or throws an expected error", async () => {
  const seed = seedFor("mutation");
  const random = mulberry32(seed);
  const runner = new CaseRunner();
  const bulkRunner = new CaseRunner();
  try {
    await withTempDir(async (work) => {
      const outcomes = new Map<string, number>();
      const runCase = (on: CaseRunner, name: string, source: Source, mutation: Mutation) =>
        withTempDir(async (dir) => {
          const label = `seed ${seed} ${name}: ${source.name}, ${mutation.description}`;
          const outcome = await runMutationCase(on, dir, source, mutation, label);
          const key = `${outcome}${mutation.indexTouched ? " (index touched)" : ""}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        });
      // Two cases for the write workers, beside the others on a worker of their own: most of
      // the second each costs is spent waiting for the write workers to start (see
      // WRITE_WORKER_FILES). Their mutations leave the index as it is, so the plan passes and
      // the workers get files. They draw from a generator of their own, so the seed alone
      // decides every case.
      const bulkCases = (async () => {
        const bulkRandom = mulberry32(seed ^ 0x5bd1e995);
        const bulk = (await madeSources(`${work}/bulk`, "bulk ", BULK_TREE, [[true, false]]))[0]!;
        for (let n = 0; n < 2; n++) {
          await runCase(bulkRunner, `bulk case ${n}`, bulk, mutate(bulk, bulkRandom, true));
        }
      })();
      const cases = (async () => {
        const sources = await prepareSources(work);
        for (let n = 0; n < 320; n++) {
          const source = sources[n % sources.length]!;
          await runCase(runner, `case ${n}`, source, mutate(source, random));
        }
      })();
      await allOrFirstFailure(cases, bulkCases);
      console.log(`  outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
      assert.ok((outcomes.get("success") ?? 0) > 0, "no mutation left a container intact");
      assert.ok(
        [...outcomes.keys()].some((key) => key.includes(WORKERS_USED)),
        "no case reached the write workers",
      );
    });
  } finally {
    runner.close();
    bulkRunner.close();
  }
});

// ---------------------------------------------------------------------------
// Property test: random entries, fields, relpaths and trailers

/** One generated index line. */
type EntrySpec =
  | {
    kind: "file";
    relpath: string;
    content: Uint8Array;
    compress: boolean;
    mode: number | undefined;
    mtime: number | undefined;
    wild: Wild[];
  }
  | { kind: "dir"; relpath: string; mode: number | undefined; wild: Wild[] }
  | { kind: "symlink"; relpath: string; target: string; wild: Wild[] }
  | { kind: "raw"; text: string }
  | Bulk;

/**
 * Enough tiny files for the write workers: `count` files over `spread`
 * folders under `folder`; the one at `flawAt` (modulo `count`) gets `flaw`.
 */
interface Bulk {
  kind: "bulk";
  folder: string;
  count: number;
  spread: number;
  compress: boolean;
  flawAt: number;
  flaw: Wild[];
}

/** A field set to a random value (`undefined`: dropped). */
interface Wild {
  field: string;
  value: unknown;
}

interface TrailerSpec {
  layout: "sibling" | "external" | "footer" | "legacy" | "none";
  /** Added to the length in the trailer header. */
  headerDelta: number;
  /** Added to the length in the footer. */
  footerDelta: number;
  /** Bytes between the last payload and the trailer header. */
  between: Uint8Array;
  /** Bytes after everything. */
  garbage: Uint8Array;
  /** Whether the index ends with a newline. */
  finalNewline: boolean;
}

const SEGMENT = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.constantFrom("a", "b", "c", "A", "x.txt", "d d", "\u00e9", "e\u0301"),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "..",
      ".",
      "",
      "C:",
      "c:x",
      "x\\y",
      "x\u0000y",
      "\ud800",
      "\u212a",
      "K",
      "n".repeat(300),
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 4 }) },
);

const RELPATH = fc.tuple(
  fc.constantFrom("", "", "", "", "", "", "/", "//", "C:/"),
  fc.array(SEGMENT, { minLength: 1, maxLength: 3 }),
).map(([prefix, parts]) => prefix + parts.join("/"));

const LINK_TARGET = fc.tuple(
  fc.constantFrom("", "", "", "/", "../", "C:/"),
  fc.array(fc.constantFrom("a", "b", "c", "..", ".", "", "x.txt"), { minLength: 1, maxLength: 4 }),
).map(([prefix, parts]) => prefix + parts.join("/"));

const WILD_VALUE = fc.oneof(
  fc.jsonValue({ maxDepth: 1 }),
  fc.constantFrom(
    -1,
    0,
    1,
    1.5,
    2 ** 53,
    2 ** 53 - 1,
    1e300,
    -1e300,
    "0",
    "",
    null,
    true,
    false,
    "symlink",
    "dir",
    "file",
    EMPTY_SHA256,
    EMPTY_SHA256.toUpperCase(),
    "g".repeat(64),
    "..",
  ),
  fc.integer({ min: -10, max: 5000 }),
);

const WILD = fc.record({
  field: fc.constantFrom(
    "relpath",
    "entry_type",
    "offset",
    "payload_size",
    "orig_size",
    "sha256",
    "compressed",
    "mode",
    "mtime",
    "link_target",
    "orig_sha256",
    "extra",
  ),
  value: fc.option(WILD_VALUE, { nil: undefined, freq: 6 }),
});

const WILDS = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Wild[]>([]) },
  { weight: 1, arbitrary: fc.array(WILD, { minLength: 1, maxLength: 2 }) },
);

const MODE = fc.option(fc.integer({ min: 0, max: 0o7777 }), { nil: undefined });

const ENTRY: fc.Arbitrary<EntrySpec> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("file" as const),
      relpath: RELPATH,
      content: fc.uint8Array({ maxLength: 48 }),
      compress: fc.boolean(),
      mode: MODE,
      mtime: fc.option(fc.double({ min: -1e10, max: 1e10, noNaN: true }), { nil: undefined }),
      wild: WILDS,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("dir" as const),
      relpath: RELPATH,
      mode: MODE,
      wild: WILDS,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("symlink" as const),
      relpath: RELPATH,
      target: LINK_TARGET,
      wild: WILDS,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("raw" as const),
      text: fc.oneof(
        fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
        fc.string({ unit: "binary", maxLength: 24 }).map((s) => s.replaceAll("\n", " ")),
      ),
    }),
  },
);

const BULK: fc.Arbitrary<Bulk> = fc.record({
  kind: fc.constant("bulk" as const),
  folder: fc.constantFrom("bulk", "b/u l k", "\u00e9"),
  count: fc.integer({ min: WRITE_WORKER_FILES + 1, max: WRITE_WORKER_FILES + 40 }),
  // 3: every file in another folder than the one before, so each batch holds one file.
  spread: fc.constantFrom(1, 1, 3),
  compress: fc.boolean(),
  flawAt: fc.nat(),
  flaw: fc.oneof(
    { weight: 2, arbitrary: fc.constant<Wild[]>([]) },
    { weight: 1, arbitrary: fc.array(WILD, { minLength: 1, maxLength: 2 }) },
  ),
});

const SOME_BYTES = fc.oneof(
  { weight: 6, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }) },
);
const DELTA = fc.oneof(
  { weight: 8, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.integer({ min: -20, max: 20 }) },
);

const TRAILER: fc.Arbitrary<TrailerSpec> = fc.record({
  layout: fc.constantFrom("sibling", "external", "footer", "footer", "legacy", "none"),
  headerDelta: DELTA,
  footerDelta: DELTA,
  between: SOME_BYTES,
  garbage: SOME_BYTES,
  finalNewline: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, fc.constant(false)),
});

/** A trailer by which the index is found. */
const FOUND_TRAILER: fc.Arbitrary<TrailerSpec> = fc.record({
  layout: fc.constantFrom("sibling", "external", "footer", "legacy"),
  headerDelta: fc.constant(0),
  footerDelta: fc.constant(0),
  between: SOME_BYTES,
  garbage: fc.constant(new Uint8Array(0)),
  finalNewline: fc.boolean(),
});

interface CaseOptions {
  lenient: boolean;
  allowUnsafeLinks: boolean;
  chunkSize: number;
}

const OPTIONS: fc.Arbitrary<CaseOptions> = fc.record({
  lenient: fc.boolean(),
  allowUnsafeLinks: fc.boolean(),
  chunkSize: fc.constantFrom(1024, 1 << 20),
});

/** A case: the index's entries, the trailer, the options of the extraction. */
type Case = [EntrySpec[], TrailerSpec, CaseOptions];

const CASE: fc.Arbitrary<Case> = fc.tuple(fc.array(ENTRY, { maxLength: 8 }), TRAILER, OPTIONS);

/**
 * A bulk of files for the write workers, alone behind a trailer that is
 * found, so that its index gets past the plan (unless its flaw stops it).
 * Such a case costs about a second (see WRITE_WORKER_FILES), so CASE does
 * not make them (fast-check's bias makes a rare branch of `oneof` come up 0
 * to 5 times in 1000 runs): see {@link bulkCases}.
 */
const BULK_CASE: fc.Arbitrary<Case> = fc.tuple(BULK.map((bulk) => [bulk]), FOUND_TRAILER, OPTIONS);

const BULK_EXAMPLE: Case = [
  [{
    kind: "bulk",
    folder: "bulk",
    count: WRITE_WORKER_FILES + 8,
    spread: 1,
    compress: true,
    flawAt: 0,
    flaw: [],
  }],
  {
    layout: "footer",
    headerDelta: 0,
    footerDelta: 0,
    between: new Uint8Array(0),
    garbage: new Uint8Array(0),
    finalNewline: true,
  },
  { lenient: false, allowUnsafeLinks: false, chunkSize: 1 << 20 },
];

/** The bulk cases of a run: BULK_EXAMPLE, which reaches the workers, and one drawn from `seed`. */
function bulkCases(seed: number): Case[] {
  return [BULK_EXAMPLE, ...fc.sample(BULK_CASE, { seed, numRuns: 1 })];
}

/**
 * Build the container, extract it in the worker, and check the outcome;
 * returns its name, with WORKERS_USED when the write workers had files.
 * `name` starts the label of a case fast-check does not report itself.
 *
 * @throws {CaseHung} when the worker gives no answer within `timeoutMs`
 */
async function runRandomCase(
  runner: CaseRunner,
  dir: string,
  specs: EntrySpec[],
  trailer: TrailerSpec,
  options: CaseOptions,
  timeoutMs: number,
  name = "",
): Promise<string> {
  const built = buildContainer(specs, trailer);
  const container = `${dir}/c.ctnr`;
  const out = `${dir}/out`;
  await Deno.mkdir(`${dir}/sentinel`);
  await Deno.writeFile(container, built.container);
  const extractOptions: ExtractOptions = { ...options };
  if (trailer.layout === "sibling") await Deno.writeFile(`${container}.idx`, built.index);
  if (trailer.layout === "external") {
    await Deno.writeFile(`${dir}/elsewhere.idx`, built.index);
    extractOptions.index = `${dir}/elsewhere.idx`;
  }
  const index = trailer.layout === "sibling" || trailer.layout === "external"
    ? built.index
    : locateIndex(built.container);
  const indexText = new TextDecoder().decode(built.index);
  const label = `${name}layout ${trailer.layout}, options ${JSON.stringify(options)}\n` +
    `index: ${
      JSON.stringify(
        indexText.length <= 4000
          ? indexText
          : `${indexText.slice(0, 3000)} ... ${indexText.slice(-1000)}`,
      )
    }`;

  const before = await snapshotOutside(dir);
  const reply = await runner.run(container, out, extractOptions, timeoutMs, label);
  await assertNeverList(dir, before, label);
  const workers = reply.planFiles > WRITE_WORKER_FILES ? WORKERS_USED : "";
  if (reply.errors === null) {
    assert.ok(index !== null, `${label}\nsucceeded though the model finds no index`);
    await assertMatchesIndex(out, built.container, index, options, label);
    return `success${workers}`;
  }
  // Without an index only ContainerFormatError. With one, the index may be malformed
  // (IndexFormatError), point past the payload area (ContainerFormatError), hold unsafe or
  // clashing entries (UnsafeEntryError) or payloads that fail their entries (IntegrityError).
  // SEGMENT's 300-byte name is longer than a file name may be (NAME_MAX, 255 bytes): the
  // extractor does not refuse it, the OS does, and that comes as a CtnrError IO over an
  // ENAMETOOLONG.
  const longName = /[^/"]{256,}/.test(indexText);
  assertExpectedErrors(reply, {
    classes: index === null ? [ContainerFormatError.name] : [
      ContainerFormatError.name,
      IndexFormatError.name,
      UnsafeEntryError.name,
      IntegrityError.name,
      ...(longName ? [CtnrError.name] : []),
    ],
    osErrors: index !== null && longName ? ["ENAMETOOLONG"] : [],
  }, label);
  const error = reply.errors[0]!;
  if (error.name === IndexFormatError.name || error.name === ContainerFormatError.name) {
    assert.equal(
      await exists(out),
      false,
      `${label}\n${error.name} after writing: ${error.message}`,
    );
  }
  return `${error.name}${workers}`;
}

function buildContainer(
  specs: EntrySpec[],
  trailer: TrailerSpec,
): { container: Uint8Array; index: Uint8Array } {
  const payloads: Uint8Array[] = [];
  const lines: string[] = [];
  let offset = 0;
  for (const spec of specs.flatMap(expandBulk)) {
    if (spec.kind === "bulk") continue; // expanded
    if (spec.kind === "raw") {
      lines.push(spec.text);
      continue;
    }
    const wire: Record<string, unknown> = { relpath: spec.relpath };
    if (spec.kind === "file") {
      const stored = spec.compress ? new Uint8Array(gzipSync(spec.content)) : spec.content;
      Object.assign(wire, {
        offset,
        payload_size: stored.length,
        orig_size: spec.content.length,
        sha256: sha256Hex(stored),
        compressed: spec.compress,
      });
      if (spec.compress) wire.orig_sha256 = sha256Hex(spec.content);
      if (spec.mtime !== undefined) wire.mtime = spec.mtime;
      payloads.push(stored);
      offset += stored.length;
    } else if (spec.kind === "dir") wire.entry_type = "dir";
    else Object.assign(wire, { entry_type: "symlink", link_target: spec.target });
    if (spec.kind !== "symlink" && spec.mode !== undefined) wire.mode = spec.mode;
    for (const { field, value } of spec.wild) {
      if (value === undefined) delete wire[field];
      else wire[field] = value;
    }
    lines.push(JSON.stringify(wire));
  }
  const index = encoder.encode(lines.join("\n") + (trailer.finalNewline ? "\n" : ""));
  const parts = [...payloads, trailer.between];
  const length = index.length;
  if (trailer.layout === "footer" || trailer.layout === "legacy") {
    parts.push(encodeTrailerHeader(Math.max(0, length + trailer.headerDelta)), index);
    if (trailer.layout === "footer") {
      parts.push(encodeFooter(Math.max(0, length + trailer.footerDelta)));
    }
  }
  parts.push(trailer.garbage);
  return { container: concatBytes(parts), index };
}

/** The file entries of a {@link Bulk}; other entries as they are. */
function expandBulk(spec: EntrySpec): EntrySpec[] {
  if (spec.kind !== "bulk") return [spec];
  return Array.from({ length: spec.count }, (_, i): EntrySpec => ({
    kind: "file",
    relpath: `${spec.folder}/${i % spec.spread}/f${i}`,
    content: encoder.encode(`${i}\n`),
    compress: spec.compress,
    mode: undefined,
    mtime: undefined,
    wild: i === spec.flawAt % spec.count ? spec.flaw : [],
  }));
}

/**
 * Where the embedded index is, by the format's rules, written again here
 * (independently of lib/format/trailer.ts): the footer when the file ends with its
 * magic, else a trailer header whose length ends exactly at the end.
 */
function locateIndex(bytes: Uint8Array): Uint8Array | null {
  const size = bytes.length;
  const u64 = (at: number) =>
    Number(new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigUint64(0, true));
  const isMagic = (at: number, magic: string) =>
    at >= 0 && at + 8 <= size && [...encoder.encode(magic)].every((b, i) => bytes[at + i] === b);
  if (size >= 32 && isMagic(size - 8, "CTNRv1ix")) {
    const length = u64(size - 16);
    const start = size - 32 - length;
    if (start < 0 || !isMagic(start, "CTNRv1__") || u64(start + 8) !== length) return null;
    return bytes.subarray(start + 16, start + 16 + length);
  }
  for (let at = size - 16; at >= 0; at--) {
    if (isMagic(at, "CTNRv1__") && at + 16 + u64(at + 8) === size) {
      return bytes.subarray(at + 16);
    }
  }
  return null;
}

/** The index's entries, read the way the format says (independently of lib/format/index_reader.ts). */
function modelEntries(index: Uint8Array, lenient: boolean): Record<string, unknown>[] {
  const head = new TextDecoder().decode(index.subarray(0, 256));
  if (/^\s*(\[|\{\s*"(version|entries)")/.test(head)) {
    const document = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(index));
    return Array.isArray(document) ? document : document.entries;
  }
  const entries: Record<string, unknown>[] = [];
  // Line by line: with `lenient`, a line that is not UTF-8 is skipped like one that is not JSON
  // (seed 621514047: a lone 0x80 after the last line failed the model, not ctnr).
  const strict = new TextDecoder("utf-8", { fatal: true });
  let start = 0;
  while (start <= index.length) {
    let end = index.indexOf(0x0a, start);
    if (end < 0) end = index.length;
    const bytes = index.subarray(start, end);
    start = end + 1;
    try {
      const line = strict.decode(bytes);
      if (line.trim() === "") continue;
      entries.push(JSON.parse(line));
    } catch (error) {
      if (!lenient) throw error;
    }
  }
  return entries;
}

/** Check the output folder against what the index says, entry by entry. */
async function assertMatchesIndex(
  out: string,
  container: Uint8Array,
  index: Uint8Array,
  options: { lenient: boolean; allowUnsafeLinks: boolean },
  label: string,
): Promise<void> {
  const entries = modelEntries(index, options.lenient);
  const expected = new Set<string>();
  for (const entry of entries) {
    const parts = String(entry.relpath).split("/");
    for (let i = 1; i <= parts.length; i++) expected.add(parts.slice(0, i).join("/"));
  }
  const actual = entries.length === 0 && !(await exists(out)) ? [] : await listPaths(out);
  assert.deepEqual(actual, [...expected].sort(), `${label}\npaths differ from the index`);
  for (const entry of entries) {
    const relpath = String(entry.relpath);
    const path = `${out}/${relpath}`;
    const info = await Deno.lstat(path);
    const type = entry.entry_type ?? "file";
    const where = `${label}\nentry ${JSON.stringify(entry)}`;
    if (type === "symlink") {
      assert.ok(info.isSymlink, `${where}: not a symlink`);
      assert.equal(await Deno.readLink(path), entry.link_target, where);
      if (!options.allowUnsafeLinks) {
        assert.ok(await resolvesInside(out, relpath), `${where}: the link resolves outside`);
      }
      continue;
    }
    if (typeof entry.mode === "number") {
      assert.equal((info.mode ?? 0) & 0o777, entry.mode & 0o777, `${where}: mode`);
    }
    if (type === "dir") {
      assert.ok(info.isDirectory, `${where}: not a folder`);
      continue;
    }
    assert.ok(info.isFile, `${where}: not a regular file`);
    const offset = entry.offset as number;
    const stored = container.subarray(offset, offset + (entry.payload_size as number));
    assert.equal(sha256Hex(stored), String(entry.sha256).toLowerCase(), `${where}: sha256`);
    const original = entry.compressed ? new Uint8Array(gunzipSync(stored)) : stored;
    assert.equal(original.length, entry.orig_size, `${where}: orig_size`);
    assert.deepEqual(await Deno.readFile(path), original, `${where}: content`);
  }
}

/**
 * Whether the link at `relpath` stays inside `out` when the kernel follows it:
 * components are walked one by one, links met on the way expanded.
 */
async function resolvesInside(out: string, relpath: string): Promise<boolean> {
  let hops = 0;
  const walk = async (start: string[], target: string): Promise<string[] | null> => {
    if (target.startsWith("/")) return null;
    let stack = start;
    for (const part of target.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (stack.length === 0) return null;
        stack = stack.slice(0, -1);
        continue;
      }
      stack = [...stack, part];
      const info = await Deno.lstat(`${out}/${stack.join("/")}`).catch(() => null);
      if (info?.isSymlink) {
        if (++hops > 40) return stack; // the kernel gives up (ELOOP): nothing is reached
        const inner = await walk(
          stack.slice(0, -1),
          await Deno.readLink(`${out}/${stack.join("/")}`),
        );
        if (inner === null) return null;
        stack = inner;
      }
    }
    return stack;
  };
  return await walk(relpath.split("/").slice(0, -1), await Deno.readLink(`${out}/${relpath}`)) !==
    null;
}

// ---------------------------------------------------------------------------
// Mutation test: real containers with bytes flipped, inserted and deleted

interface Source {
  name: string;
  /** Files of the case: the container is `c.ctnr`; `c.ctnr.idx` when the index is a sibling. */
  container: Uint8Array;
  sibling?: Uint8Array;
  /** End of the payload area in `container`. */
  areaEnd: number;
  /** What an intact extraction gives: a source folder, or the peer MANIFEST. */
  tree?: string;
  manifest?: Manifest;
  /** SHA-256 of every source file. */
  digests: Set<string>;
}

interface Manifest {
  files: Record<string, { size: number; sha256: string }>;
}

const MUTATION_TREE: TreeSpec = {
  "a.txt": { content: "alpha\n", mode: 0o640, mtime: 1_600_000_000 },
  "b/c.txt": { content: "see ".repeat(300), mtime: 1_600_000_001.5 },
  "b/empty.bin": "",
  "b/d/e/deep.txt": "deep",
  "caf\u00e9/r\u00e9sum\u00e9.txt": "unicode",
  "hollow": { dir: true },
  "link": { symlink: "a.txt" },
  "b/uplink": { symlink: "../a.txt" },
  "noise.bin": pseudoRandomBytes(40_000, 13),
  "zeros.bin": new Uint8Array(20_000),
};

/** Enough tiny files for the write workers, in two folders. */
const BULK_TREE: TreeSpec = Object.fromEntries(
  Array.from({ length: WRITE_WORKER_FILES + 8 }, (_, i) => [`d${i % 2}/f${i}`, `${i}\n`]),
);

async function prepareSources(work: string): Promise<Source[]> {
  const sources: Source[] = [];
  const manifest: Manifest = JSON.parse(await Deno.readTextFile(fixture("peer/MANIFEST.json")));
  const peerDigests = new Set(Object.values(manifest.files).map((f) => f.sha256));
  const peer = async (name: string, container: string, sibling?: string) => {
    const bytes = await Deno.readFile(fixture(`peer/${container}`));
    const source: Source = {
      name,
      container: bytes,
      areaEnd: payloadAreaEnd(bytes),
      manifest,
      digests: peerDigests,
    };
    if (sibling !== undefined) source.sibling = await Deno.readFile(fixture(`peer/${sibling}`));
    sources.push(source);
  };
  await peer("peer plain.ctnr with its .idx", "plain.ctnr", "plain.ctnr.idx");
  await peer("peer plain.ctnr (trailer only)", "plain.ctnr");
  await peer("peer gzip.ctnr (trailer only)", "gzip.ctnr");
  await peer("peer external.ctnr with its .idx", "external.ctnr", "external.ctnr.idx");
  const variants: [compress: boolean, finalize: boolean][] = [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ];
  sources.push(...await madeSources(`${work}/tree`, "", MUTATION_TREE, variants));
  return sources;
}

/**
 * Sources made by createContainer from `tree`, written under `work`, one per
 * `[compress, finalize]`; `name` starts their names.
 */
async function madeSources(
  work: string,
  name: string,
  tree: TreeSpec,
  variants: [compress: boolean, finalize: boolean][],
): Promise<Source[]> {
  const src = `${work}/src`;
  await writeTree(src, tree);
  const digests = new Set<string>();
  for (const relpath of await listPaths(src)) {
    const info = await Deno.lstat(`${src}/${relpath}`);
    if (info.isFile) digests.add(sha256Hex(await Deno.readFile(`${src}/${relpath}`)));
  }
  const sources: Source[] = [];
  for (const [compress, finalize] of variants) {
    const path = `${work}/made-${compress}-${finalize}.ctnr`;
    await createContainer(src, path, { compress, finalize });
    const bytes = await Deno.readFile(path);
    const source: Source = {
      name: `createContainer ${name}${compress ? "gzip" : "plain"}, ${
        finalize ? "trailer only" : "sibling .idx"
      }`,
      container: bytes,
      areaEnd: payloadAreaEnd(bytes),
      tree: src,
      digests,
    };
    if (!finalize) source.sibling = await Deno.readFile(`${path}.idx`);
    sources.push(source);
  }
  return sources;
}

interface Mutation {
  container: Uint8Array;
  sibling: Uint8Array | undefined;
  description: string;
  /** Whether the bytes of the index that will be read may have changed. */
  indexTouched: boolean;
}

/**
 * Change 1 to 3 bytes or runs of bytes of the container or its sibling index.
 * `inPlace`: only bytes of the container are changed, none inserted, deleted
 * or cut, so that the index still passes the plan.
 */
function mutate(source: Source, random: () => number, inPlace = false): Mutation {
  const int = (n: number) => Math.floor(random() * n);
  const inIndex = !inPlace && source.sibling !== undefined && random() < 0.3;
  let bytes: Uint8Array = (inIndex ? source.sibling! : source.container).slice();
  let areaEnd = inIndex ? 0 : source.areaEnd;
  // Without a sibling index, the trailer (area end onwards) holds the index that is read.
  const trailerRead = !inIndex && source.sibling === undefined;
  let indexTouched = inIndex;
  const steps: string[] = [];
  const ops = 1 + int(3);
  for (let i = 0; i < ops && bytes.length > 0; i++) {
    const tail = bytes.length - areaEnd;
    const at = !inIndex && tail > 0 && random() < 0.5 ? areaEnd + int(tail) : int(bytes.length);
    const kind = inPlace ? ["flip", "set", "retype"][int(3)]! : [
      "flip",
      "set",
      "insert",
      "delete",
      "retype",
      "retype",
      "cut",
    ][int(13) < 12 ? int(6) : 6]!;
    if (kind === "retype") {
      // A digit for a digit or a letter for a letter: the JSON stays valid, its meaning changes.
      const digits = "0123456789";
      const letters = "abcdefghijklmnopqrstuvwxyz";
      for (let tries = 0; tries < 200; tries++) {
        const pos = inIndex
          ? int(bytes.length)
          : tail > 0
          ? areaEnd + int(tail)
          : int(bytes.length);
        const char = String.fromCharCode(bytes[pos]!);
        const set = digits.includes(char) ? digits : letters.includes(char) ? letters : "";
        if (set === "") continue;
        bytes[pos] = set.charCodeAt(int(set.length));
        if (pos >= areaEnd) indexTouched ||= trailerRead;
        steps.push(
          `retype byte ${pos} ${JSON.stringify(char)} -> ${
            JSON.stringify(String.fromCharCode(bytes[pos]!))
          }`,
        );
        break;
      }
    } else if (kind === "flip" || kind === "set") {
      bytes[at] = kind === "flip" ? bytes[at]! ^ (1 + int(255)) : int(256);
      if (at >= areaEnd) indexTouched ||= trailerRead;
      steps.push(`${kind} byte ${at}`);
    } else if (kind === "insert") {
      const extra = pseudoRandomBytes(1 + int(8), 1 + int(1 << 30));
      bytes = concatBytes([bytes.subarray(0, at), extra, bytes.subarray(at)]);
      if (at < areaEnd) areaEnd += extra.length;
      else indexTouched ||= trailerRead;
      steps.push(`insert ${extra.length} bytes at ${at}`);
    } else if (kind === "delete") {
      const n = Math.min(1 + int(16), bytes.length - at);
      bytes = concatBytes([bytes.subarray(0, at), bytes.subarray(at + n)]);
      if (at + n > areaEnd) indexTouched ||= trailerRead;
      if (at < areaEnd) areaEnd -= Math.min(n, areaEnd - at);
      steps.push(`delete ${n} bytes at ${at}`);
    } else {
      bytes = bytes.slice(0, at);
      indexTouched ||= trailerRead; // the trailer's end is gone, or all of it
      areaEnd = Math.min(areaEnd, at);
      steps.push(`cut at ${at}`);
    }
  }
  return {
    container: inIndex ? source.container : bytes,
    sibling: inIndex ? bytes : source.sibling,
    description: `${inIndex ? "index" : "container"}: ${steps.join(", ")}`,
    indexTouched,
  };
}

/**
 * Extract the mutated container in the worker and check the outcome; returns
 * its name, with WORKERS_USED when the write workers had files.
 *
 * @throws {CaseHung} when the worker gives no answer within CASE_TIMEOUT_MS
 */
async function runMutationCase(
  runner: CaseRunner,
  dir: string,
  source: Source,
  mutation: Mutation,
  label: string,
): Promise<string> {
  const container = `${dir}/c.ctnr`;
  const out = `${dir}/out`;
  await Deno.mkdir(`${dir}/sentinel`);
  await Deno.writeFile(container, mutation.container);
  if (mutation.sibling) await Deno.writeFile(`${container}.idx`, mutation.sibling);
  const before = await snapshotOutside(dir);
  const reply = await runner.run(container, out, {}, CASE_TIMEOUT_MS, label);
  await assertNeverList(dir, before, label);
  const workers = reply.planFiles > WRITE_WORKER_FILES ? WORKERS_USED : "";
  if (reply.errors !== null) {
    // The source's index, intact: its payloads fail their entries (IntegrityError), or lie
    // past a container cut short or past the payload area (ContainerFormatError). A changed
    // index may also be malformed (IndexFormatError) or name unsafe or clashing entries
    // (UnsafeEntryError), or its trailer may be gone (ContainerFormatError).
    assertExpectedErrors(reply, {
      classes: mutation.indexTouched
        ? [
          IntegrityError.name,
          ContainerFormatError.name,
          IndexFormatError.name,
          UnsafeEntryError.name,
        ]
        : [IntegrityError.name, ContainerFormatError.name],
      osErrors: [],
    }, label);
    return `${reply.errors[0]!.name}${workers}`;
  }
  if (!mutation.indexTouched) {
    // The index is the source's: the output must be the source exactly.
    if (source.tree !== undefined) {
      assert.deepEqual(await diffTrees(source.tree, out), [], label);
    } else {
      const files: Record<string, string> = {};
      for (const relpath of await listPaths(out)) {
        const info = await Deno.lstat(`${out}/${relpath}`);
        if (info.isFile) files[relpath] = sha256Hex(await Deno.readFile(`${out}/${relpath}`));
      }
      const expected = Object.fromEntries(
        Object.entries(source.manifest!.files).map(([relpath, f]) => [relpath, f.sha256]),
      );
      assert.deepEqual(files, expected, label);
    }
    return `success${workers}`;
  }
  // The index may say other names, modes or times; contents are still verified payloads.
  for (const relpath of await listPaths(out)) {
    const path = `${out}/${relpath}`;
    const info = await Deno.lstat(path);
    if (info.isFile) {
      const digest = sha256Hex(await Deno.readFile(path));
      assert.ok(source.digests.has(digest), `${label}\n"${relpath}" holds bytes of no source file`);
    } else if (info.isSymlink) {
      assert.ok(await resolvesInside(out, relpath), `${label}\nlink "${relpath}" leads outside`);
    }
  }
  return `success${workers}`;
}

/** End of the payload area: where the trailer starts, or the end of a container without one. */
function payloadAreaEnd(bytes: Uint8Array): number {
  const index = locateIndex(bytes);
  return index === null ? bytes.length : index.byteOffset - bytes.byteOffset - 16;
}

// ---------------------------------------------------------------------------
// The never-list

/** Everything in `dir` outside `out/`, with kind, mode, size, digest and mtime. */
async function snapshotOutside(dir: string): Promise<Record<string, string>> {
  const snapshot: Record<string, string> = {};
  for (const relpath of await listPaths(dir)) {
    if (relpath === "out" || relpath.startsWith("out/")) continue;
    const path = `${dir}/${relpath}`;
    const info = await Deno.lstat(path);
    const mode = ((info.mode ?? 0) & 0o7777).toString(8);
    snapshot[relpath] = info.isSymlink
      ? `symlink -> ${await Deno.readLink(path)}`
      : info.isDirectory
      ? `dir ${mode} ${info.mtime?.getTime()}`
      : `file ${mode} ${info.size} ${sha256Hex(await Deno.readFile(path))}`;
  }
  return snapshot;
}

async function assertNeverList(
  dir: string,
  before: Record<string, string>,
  label: string,
): Promise<void> {
  assert.deepEqual(await listPaths(`${dir}/sentinel`), [], `${label}\nthe sentinel is not empty`);
  assert.deepEqual(await snapshotOutside(dir), before, `${label}\nsomething outside changed`);
  const temps = (await listPaths(dir)).filter((p) => /(^|\/)\.ctnr-(tmp|case-probe)-/.test(p));
  assert.deepEqual(temps, [], `${label}\ntemp files left`);
}

// ---------------------------------------------------------------------------
// The worker and its watchdog; what an error may be

/** Suffix of an outcome whose plan had enough files for the write workers. */
const WORKERS_USED = " (write workers)";
const FUZZ_WORKER = new URL("./_fuzz_worker.ts", import.meta.url);

/** A case gave no answer in time; its worker was terminated. */
class CaseHung extends Error {
  override name = "CaseHung";
}

/**
 * Runs cases one at a time in one module worker, started at the first case
 * and again after a hang. The watchdog is a timer on this thread, which only
 * waits while the worker runs: it fires even when the extractor spins in a
 * synchronous loop, and terminating the worker stops that loop and the write
 * workers it started.
 */
class CaseRunner {
  #worker: Worker | undefined;
  #nextId = 0;

  /**
   * Extract `container` into `outdir` in the worker.
   *
   * @param label names the case in the error of a hang
   * @returns the worker's answer: the plan's file count and the error chain, if any
   * @throws {CaseHung} when there is no answer within `timeoutMs` milliseconds
   */
  run(
    container: string,
    outdir: string,
    options: ExtractOptions,
    timeoutMs: number,
    label: string,
  ): Promise<FuzzReply> {
    const worker = this.#worker ??= new Worker(FUZZ_WORKER, { type: "module" });
    const request: FuzzRequest = { id: this.#nextId++, container, outdir, options };
    return new Promise<FuzzReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        reject(new CaseHung(`${label}\nhung: no answer after ${timeoutMs} ms; worker terminated`));
      }, timeoutMs);
      worker.onmessage = (event: MessageEvent<FuzzReply>) => {
        if (event.data.id !== request.id) return;
        clearTimeout(timer);
        resolve(event.data);
      };
      // An error nothing caught in the worker (an unhandled rejection, say) fails the case.
      worker.onerror = (event) => {
        event.preventDefault();
        clearTimeout(timer);
        this.close();
        reject(new Error(`${label}\nthe worker failed: ${event.message}`));
      };
      worker.postMessage(request);
    });
  }

  /** Terminate the worker; the next case starts another. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
  }
}

/** The errors a case may rightly end in. */
interface ExpectedErrors {
  /** Classes the error may be of. */
  classes: string[];
  /** OS error codes a plain `CtnrError` (code IO) may carry as its cause. */
  osErrors: string[];
}

/** Errors that only a bug throws; a `CtnrError` may wrap one, so the whole chain is looked at. */
const PROGRAMMING_ERRORS = new Set([
  "TypeError",
  "RangeError",
  "ReferenceError",
  "SyntaxError",
  "EvalError",
  "URIError",
]);

/**
 * Assert that the error thrown, and the error of every entry that failed
 * (one from a write worker may lose the race to be thrown), are errors the
 * case may rightly produce: see {@link assertExpectedError}.
 */
function assertExpectedErrors(reply: FuzzReply, expected: ExpectedErrors, label: string): void {
  assertExpectedError(reply.errors!, expected, label);
  for (const errors of reply.entryErrors) assertExpectedError(errors, expected, label);
}

/**
 * Assert that an error chain (the error, then each cause) is one the case may
 * rightly produce: the error is of a class in `expected.classes`, and no
 * error in the chain is a programming error or a plain `CtnrError` other
 * than code IO over one of `expected.osErrors`. (The extractor wraps any
 * exception in a `CtnrError` IO; a write worker's come back through
 * `fromFault` with the original name as the cause.) No `SyntaxError` of
 * `JSON.parse` can be in a chain: `IndexFormatError` takes no cause.
 */
function assertExpectedError(errors: ErrorLink[], expected: ExpectedErrors, label: string): void {
  const fault = (why: string) =>
    assert.fail(`${label}\nunexpected error: ${why}\n${describeChain(errors)}`);
  const top = errors[0]!;
  if (!expected.classes.includes(top.name)) {
    fault(`a ${top.name}; this case may end in ${expected.classes.join(", ")}`);
  }
  errors.forEach((link, i) => {
    const outer = errors[i - 1];
    // gunzipSync stops a gzip bomb at maxOutputLength with a RangeError; decodePayload in
    // lib/io/gunzip.ts reports it as the entry's IntegrityError.
    const gzipBomb = link.name === "RangeError" && link.code === "ERR_BUFFER_TOO_LARGE" &&
      outer?.name === IntegrityError.name;
    if (PROGRAMMING_ERRORS.has(link.name) && !gzipBomb) fault(`a ${link.name} in the chain`);
    if (link.name === CtnrError.name) {
      const cause = errors[i + 1];
      if (link.code !== "IO" || cause === undefined || !expected.osErrors.includes(cause.code!)) {
        fault(
          `a CtnrError ${link.code} over ${
            cause === undefined ? "nothing" : `${cause.name} ${cause.code ?? "(no code)"}`
          }; expected only code IO over an OS error ${expected.osErrors.join(", ") || "(none)"}`,
        );
      }
    }
  });
}

/** An error chain, each with its stack where it has one. */
function describeChain(errors: ErrorLink[]): string {
  return errors.map((link) =>
    `${link.code === undefined ? "" : `[${link.code}] `}${
      link.stack ?? `${link.name}: ${link.message}`
    }`
  ).join("\ncaused by ");
}

// ---------------------------------------------------------------------------
// Small helpers

/** Wait for every promise; then throw the failure of the first that failed, if any. */
async function allOrFirstFailure(...promises: Promise<unknown>[]): Promise<void> {
  for (const result of await Promise.allSettled(promises)) {
    if (result.status === "rejected") throw result.reason;
  }
}

function seedFor(what: string): number {
  const fixed = Deno.env.get("CTNR_FUZZ_SEED");
  const seed = fixed !== undefined ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
  console.log(`  ${what} seed ${seed} (replay with CTNR_FUZZ_SEED=${seed})`);
  return seed;
}

/** Seeded PRNG (mulberry32): floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
