/**
 * Containers written by the original Python tool (tests/fixtures/peer/) must
 * extract to exactly the files of MANIFEST.json, through the library and the
 * CLI. The fixtures are copied to a temp folder first: nothing is ever
 * written beside them.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type ExtractAction, extractContainer } from "../mod.ts";
import { IndexFormatError } from "../lib/errors.ts";
import { fixture, runCli, withTempDir } from "./_helpers.ts";

interface Manifest {
  files: Record<string, { size: number; sha256: string }>;
  dirs: string[];
}

const MANIFEST: Manifest = JSON.parse(await Deno.readTextFile(fixture("peer/MANIFEST.json")));
const ALL_FILES = Object.keys(MANIFEST.files).sort();

/** One way to read a fixture: the container and, when needed, an external index. */
interface Case {
  name: string;
  container: string;
  /** Fixture files copied beside the container (sibling indexes). */
  alsoCopy: string[];
  /** External index passed as --index. */
  index?: string;
}

const CASES: Case[] = [
  {
    name: "plain.ctnr (trailer and sibling .idx)",
    container: "plain.ctnr",
    alsoCopy: ["plain.ctnr.idx"],
  },
  { name: "plain.ctnr (trailer only)", container: "plain.ctnr", alsoCopy: [] },
  { name: "gzip.ctnr (trailer only, gzip payloads)", container: "gzip.ctnr", alsoCopy: [] },
  {
    name: "external.ctnr (sibling .idx, no trailer)",
    container: "external.ctnr",
    alsoCopy: ["external.ctnr.idx"],
  },
  {
    name: "external.ctnr with --index external.ctnr.idx",
    container: "external.ctnr",
    alsoCopy: [],
    index: "external.ctnr.idx",
  },
  {
    name: "external.ctnr with --index object-index.json",
    container: "external.ctnr",
    alsoCopy: [],
    index: "object-index.json",
  },
  {
    name: "external.ctnr with --index array-index.json",
    container: "external.ctnr",
    alsoCopy: [],
    index: "array-index.json",
  },
];

Deno.test("MANIFEST.json lists the 60 files the peer containers hold", () => {
  assert.equal(ALL_FILES.length, 60);
  assert.ok(ALL_FILES.includes("docs/日本語/ファイル.txt"));
  assert.equal(MANIFEST.files["empty.bin"]?.size, 0);
});

for (const c of CASES) {
  Deno.test(`extractContainer extracts the original tool's ${c.name}`, async () => {
    await withTempDir(async (dir) => {
      const container = await copyFixtures(dir, c);
      const options = c.index !== undefined ? { index: `${dir}/${c.index}` } : {};
      const result = await extractContainer(container, `${dir}/out`, options);
      assert.equal(result.extracted, ALL_FILES.length);
      assert.equal(result.failed, 0);
      assert.equal(result.plan.files, ALL_FILES.length);
      await assertExtracted(`${dir}/out`, ALL_FILES);
    });
  });

  Deno.test(`ctnr extract, verify and list read the original tool's ${c.name}`, async () => {
    await withTempDir(async (dir) => {
      const container = await copyFixtures(dir, c);
      const index = c.index !== undefined ? ["--index", `${dir}/${c.index}`] : [];

      const extract = await runCli(
        "extract",
        "--container",
        container,
        "--outdir",
        `${dir}/out`,
        ...index,
      );
      assert.equal(extract.code, 0, extract.stderr);
      await assertExtracted(`${dir}/out`, ALL_FILES);

      const verify = await runCli("verify", "--container", container, ...index);
      assert.equal(verify.code, 0, verify.stderr);
      assert.match(verify.stdout, /all payloads match/);

      const list = await runCli("list", "-l", "--container", container, ...index);
      assert.equal(list.code, 0, list.stderr);
      const listed = list.stdout.trimEnd().split("\n");
      assert.equal(listed.length, ALL_FILES.length + 1, "a line an entry, then the totals");
      assert.match(listed.at(-1)!, new RegExp(`^total: ${ALL_FILES.length} entries `));
      for (const relpath of ALL_FILES) {
        const size = MANIFEST.files[relpath]!.size;
        // The original tools record no mode or mtime: "-" stands for each.
        assert.ok(
          listed.some((line) => new RegExp(`^ +- +${size} +\\d+ +- ${relpath}$`).test(line)),
          `list -l does not show ${relpath} with ${size} bytes:\n${list.stdout}`,
        );
      }
      // Nothing was written beside the container by any of the three commands.
      const beside = [];
      for await (const item of Deno.readDir(dir)) beside.push(item.name);
      assert.deepEqual(
        beside.sort(),
        [c.container, ...c.alsoCopy, ...(c.index ? [c.index] : []), "out"].sort(),
      );
    });
  });
}

// ---------------------------------------------------------------------------
// crashed.ctnr: a torn 31st index line

/** Relpaths of the 30 complete lines of crashed.ctnr.idx. */
async function crashedRelpaths(): Promise<string[]> {
  const text = await Deno.readTextFile(fixture("peer/crashed.ctnr.idx"));
  const lines = text.split("\n");
  assert.equal(lines.length, 31, "30 complete lines and a torn one");
  assert.throws(() => JSON.parse(lines[30]!), SyntaxError);
  return lines.slice(0, 30).map((line) => JSON.parse(line).relpath as string).sort();
}

const CRASHED: Case = {
  name: "crashed.ctnr",
  container: "crashed.ctnr",
  alsoCopy: ["crashed.ctnr.idx"],
};

Deno.test("extractContainer refuses crashed.ctnr's torn index and writes nothing", async () => {
  await withTempDir(async (dir) => {
    const container = await copyFixtures(dir, CRASHED);
    await assert.rejects(
      () => extractContainer(container, `${dir}/out`),
      (error: unknown) => {
        assert.ok(error instanceof IndexFormatError);
        assert.equal(error.code, "INDEX_TORN");
        assert.match(error.message, /line 31 is torn/);
        return true;
      },
    );
    assert.deepEqual(await listOrNothing(`${dir}/out`), []);
  });
});

Deno.test("ctnr extract exits 1 on crashed.ctnr's torn index and writes nothing", async () => {
  await withTempDir(async (dir) => {
    const container = await copyFixtures(dir, CRASHED);
    await Deno.mkdir(`${dir}/out`);
    const run = await runCli("extract", "--container", container, "--outdir", `${dir}/out`);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /line 31 is torn/);
    assert.match(run.stderr, /--lenient/);
    assert.deepEqual(await listOrNothing(`${dir}/out`), []);

    const verify = await runCli("verify", "--container", container);
    assert.equal(verify.code, 1);
    assert.match(verify.stderr, /torn/);
  });
});

Deno.test("extractContainer extracts crashed.ctnr's 30 complete entries when lenient", async () => {
  await withTempDir(async (dir) => {
    const container = await copyFixtures(dir, CRASHED);
    const warnings: string[] = [];
    const result = await extractContainer(container, `${dir}/out`, {
      lenient: true,
      onWarning: (message) => warnings.push(message.message),
    });
    assert.equal(result.extracted, 30);
    assert.ok(warnings.length > 0, "no warning about the torn line");
    for (const warning of warnings) assert.match(warning, /torn last line 31/);
    await assertExtracted(`${dir}/out`, await crashedRelpaths());
  });
});

Deno.test("ctnr extract --lenient extracts crashed.ctnr's 30 complete entries, warning once", async () => {
  await withTempDir(async (dir) => {
    const container = await copyFixtures(dir, CRASHED);
    const run = await runCli(
      "extract",
      "--container",
      container,
      "--outdir",
      `${dir}/out`,
      "--lenient",
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /warning: Skipped torn last line 31/);
    // One torn line, one warning (not one per pass over the index).
    const warnings = run.stderr.split("\n").filter((line) => line.includes("warning"));
    assert.equal(warnings.length, 1, run.stderr);
    await assertExtracted(`${dir}/out`, await crashedRelpaths());
  });
});

// ---------------------------------------------------------------------------
// gzip.ctnr: compressed entries without orig_sha256

Deno.test("extractContainer verifyExisting re-extracts gzip.ctnr's entries, which have no orig_sha256, instead of keeping a damaged file", async () => {
  await withTempDir(async (dir) => {
    const container = await copyFixtures(dir, {
      name: "gzip.ctnr",
      container: "gzip.ctnr",
      alsoCopy: [],
    });
    await extractContainer(container, `${dir}/out`);
    // Damaged in place at the same size: a small file and a large (streamed) one.
    for (const relpath of ["hello.txt", "data/blob-1m.bin"]) {
      const bytes = await Deno.readFile(`${dir}/out/${relpath}`);
      bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
      await Deno.writeFile(`${dir}/out/${relpath}`, bytes);
    }
    const actions = new Map<string, ExtractAction>();
    await extractContainer(container, `${dir}/out`, {
      verifyExisting: true,
      onEntry: (entry, action) => actions.set(entry.relpath, action),
    });
    // Nothing to verify an existing file against: every one is extracted again.
    assert.deepEqual([...actions.keys()].sort(), ALL_FILES);
    assert.deepEqual([...actions.values()].filter((action) => action !== "extracted"), []);
    await assertExtracted(`${dir}/out`, ALL_FILES);
  });
});

// ---------------------------------------------------------------------------
// Helpers

/** Copy the fixtures of `c` into `dir`; returns the container's new path. */
async function copyFixtures(dir: string, c: Case): Promise<string> {
  for (const name of [c.container, ...c.alsoCopy, ...(c.index ? [c.index] : [])]) {
    await Deno.copyFile(fixture(`peer/${name}`), `${dir}/${name}`);
  }
  return `${dir}/${c.container}`;
}

/**
 * Assert that `outdir` holds exactly the files `relpaths` (plus folders),
 * each with the size and SHA-256 of MANIFEST.json.
 */
async function assertExtracted(outdir: string, relpaths: string[]): Promise<void> {
  const files: string[] = [];
  const others: string[] = [];
  await walk(outdir, "", files, others);
  assert.deepEqual(others, [], "only regular files and folders");
  assert.deepEqual(files.sort(), [...relpaths].sort());
  for (const relpath of relpaths) {
    const expected = MANIFEST.files[relpath];
    assert.ok(expected, `${relpath} is not in MANIFEST.json`);
    const bytes = await Deno.readFile(`${outdir}/${relpath}`);
    assert.equal(bytes.length, expected.size, `size of ${relpath}`);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), expected.sha256, relpath);
  }
}

async function walk(root: string, rel: string, files: string[], others: string[]): Promise<void> {
  for await (const item of Deno.readDir(rel ? `${root}/${rel}` : root)) {
    const path = rel ? `${rel}/${item.name}` : item.name;
    if (item.isDirectory) {
      assert.ok(MANIFEST.dirs.includes(path), `unexpected folder ${path}`);
      await walk(root, path, files, others);
    } else if (item.isFile) files.push(path);
    else others.push(path);
  }
}

/** Every path below `dir`, or nothing when `dir` does not exist. */
async function listOrNothing(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const item of Deno.readDir(dir)) out.push(item.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out;
}
