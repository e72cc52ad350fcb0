/**
 * A container cut short, a container whose index is missing, and a file that is no container
 * at all, told apart in one line each (exit 1); and `extract --salvage`, which restores every
 * entry whose payload survives a cut, verified, and lists the others (lib/read/no_index.ts,
 * lib/format/trailer.ts searchTrailer, README "What ctnr refuses to do").
 */

import assert from "node:assert/strict";
import { ContainerReader } from "../lib/read/container_reader.ts";
import { encodeFooter, encodeTrailerHeader } from "../lib/format/trailer.ts";
import { ContainerFormatError } from "../lib/errors.ts";
import {
  exists,
  listPaths,
  pseudoRandomBytes,
  runCli,
  runCliProcess,
  runCommand,
  TOOL_TIMEOUT_MS,
  type TreeSpec,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

const encoder = new TextEncoder();

/** What `ctnr` says, as a ContainerFormatError code, for the container at `path`. */
async function openCode(path: string, salvage = false): Promise<string> {
  try {
    (await ContainerReader.open(path, { salvage })).close();
    return "opened";
  } catch (error) {
    assert.ok(error instanceof ContainerFormatError, String(error));
    return error.code;
  }
}

interface Made {
  /** The finalized container's bytes. */
  bytes: Uint8Array;
  /** Its index (also its sibling .idx). */
  index: Uint8Array;
  /** Where its payload area ends: the trailer's offset. */
  area: number;
  /** Its index entries, in order. */
  entries: { relpath: string; entry_type?: string; offset?: number; payload_size?: number }[];
}

/** Pack `tree` (under `dir/src`) into `dir/<name>`, finalized, and read back its parts. */
async function make(dir: string, name: string, tree: TreeSpec, compress = false): Promise<Made> {
  await writeTree(`${dir}/src`, tree);
  // Fixed mtimes for folders and links too: the same tree gives the same container bytes.
  const touch = await runCommand("find", [
    `${dir}/src`,
    "-exec",
    "touch",
    "-h",
    "-d",
    "@1000000000",
    "{}",
    "+",
  ], { timeoutMs: TOOL_TIMEOUT_MS });
  assert.equal(touch.code, 0, touch.stderr);
  const path = `${dir}/${name}`;
  const created = await runCli(
    "create",
    `${dir}/src`,
    path,
    "--finalize",
    ...(compress ? ["--compress"] : []),
  );
  assert.equal(created.code, 0, created.stderr);
  const bytes = await Deno.readFile(path);
  const index = await Deno.readFile(`${path}.idx`);
  const entries = new TextDecoder().decode(index).split("\n").filter(Boolean).map((line) =>
    JSON.parse(line)
  );
  return { bytes, index, area: bytes.length - 32 - index.length, entries };
}

const SMALL: TreeSpec = {
  "a.txt": "alpha\n".repeat(40),
  "b/c.txt": "charlie\n".repeat(30),
  "b/d.txt": "delta\n".repeat(50),
};

// ---------------------------------------------------------------------------
// Telling them apart

Deno.test("readers say a file is not a CTNRv1 container: empty, tar, text, binary", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/empty`, new Uint8Array(0));
    await writeTree(`${dir}/src`, SMALL);
    const tar = await runCommand("tar", ["-cf", `${dir}/t.tar`, "-C", `${dir}/src`, "."], {
      timeoutMs: TOOL_TIMEOUT_MS,
    });
    assert.equal(tar.code, 0, tar.stderr);
    await Deno.writeTextFile(`${dir}/text`, "root:x:0:0:root:/root:/bin/bash\n".repeat(20));
    await Deno.writeFile(`${dir}/noise`, pseudoRandomBytes(5000, 7));
    const cases: [string, RegExp][] = [
      ["empty", /not a CTNRv1 container \(it is empty\): no trailer and no index/],
      ["t.tar", /not a CTNRv1 container \(it looks like a tar archive\): no trailer and no index/],
      ["text", /not a CTNRv1 container: no trailer and no index ".*text\.idx"/],
      ["noise", /not a CTNRv1 container: no trailer and no index ".*noise\.idx"/],
    ];
    for (const [name, message] of cases) {
      const path = `${dir}/${name}`;
      assert.equal(await openCode(path), "NOT_A_CONTAINER", name);
      for (
        const args of [
          ["extract", path, `${dir}/out`],
          ["verify", path],
          ["list", path],
          ["cat", path, "a.txt"],
        ]
      ) {
        const run = await runCli(...args);
        assert.equal(run.code, 1, `${name} ${args[0]}: ${run.stderr}`);
        assert.match(run.stderr, message, `${name} ${args[0]}`);
        assert.match(run.stderr, /a container never finalized needs its index: pass --index/);
        assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      }
      // With --salvage, which only asks for what an index names: index missing.
      const salvage = await runCli("extract", path, `${dir}/out`, "--salvage");
      assert.equal(salvage.code, 1);
      assert.match(salvage.stderr, /index missing: it has no trailer and there is no ".*\.idx"/);
      assert.equal(await openCode(path, true), "INDEX_MISSING", name);
    }
    assert.equal(await exists(`${dir}/out`), false);
    // The same in a real process: one line, exit 1.
    const real = await runCliProcess("extract", `${dir}/t.tar`, `${dir}/out`);
    assert.equal(real.code, 1, real.stderr);
    assert.match(real.stderr, /^ctnr: Cannot read ".*t\.tar": not a CTNRv1 container/);
    assert.equal(real.stderr.trim().split("\n").length, 1);
  });
});

Deno.test("readers say where a container is cut short and what its index or trailer says", async () => {
  await withTempDir(async (dir) => {
    const made = await make(dir, "made.ctnr", SMALL);
    const size = made.bytes.length;
    const L = made.index.length;
    const p = made.area;
    const c = `${dir}/c.ctnr`;
    const write = (bytes: Uint8Array) => Deno.writeFile(c, bytes);
    const expectations: [string, Uint8Array, string, RegExp][] = [
      [
        "cut inside its trailer's index",
        made.bytes.subarray(0, p + 16 + 10),
        "CONTAINER_CUT",
        new RegExp(
          `^ctnr: Cannot read ".*c\\.ctnr": cut short at byte ${p + 26} \\(its trailer's index ` +
            `runs to byte ${p + 16 + L}\\); --salvage extracts`,
        ),
      ],
      [
        "cut inside ctnr's footer",
        made.bytes.subarray(0, size - 5),
        "CONTAINER_CUT",
        new RegExp(`cut short at byte ${size - 5} \\(its footer ends at byte ${size}\\)`),
      ],
      [
        "cut inside its trailer header",
        made.bytes.subarray(0, p + 6),
        "INDEX_MISSING",
        new RegExp(
          `index missing: the file is cut short at byte ${p + 6}, inside the header of its ` +
            `trailer \\(at byte ${p}\\); the index is lost: pass --index`,
        ),
      ],
      [
        "a footer naming more bytes than the file holds",
        new Uint8Array([...made.bytes.subarray(0, 40), ...encodeFooter(1000)]),
        "CONTAINER_CUT",
        /cut short at byte 56 \(its footer names an index of 1000 bytes: the file must hold at least 1032\)/,
      ],
    ];
    for (const [what, bytes, code, message] of expectations) {
      await write(bytes);
      assert.equal(await openCode(c), code, what);
      for (const command of [["list", c], ["verify", c], ["extract", c, `${dir}/out`]]) {
        const run = await runCli(...command);
        assert.equal(run.code, 1, `${what}: ${run.stderr}`);
        assert.match(run.stderr, message, what);
        assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      }
      assert.equal(await exists(`${dir}/out`), false, `${what}: extract wrote nothing`);
    }
    // The index beside it: the payloads the index names run past the end.
    await write(made.bytes.subarray(0, 300));
    await Deno.writeFile(`${c}.idx`, made.index);
    const cut = await runCli("extract", c, `${dir}/out`);
    assert.equal(cut.code, 1);
    assert.match(
      cut.stderr,
      new RegExp(
        `^ctnr: Cannot read ".*c\\.ctnr": cut short at byte 300 \\(index ".*c\\.ctnr\\.idx" says ` +
          `its payloads run to byte ${p}\\): the payloads of "b/c\\.txt" and 1 more entry lie ` +
          `past the cut; --salvage extracts the entries before it\\n$`,
      ),
    );
    assert.equal(await exists(`${dir}/out`), false, "nothing extracted without --salvage");
  });
});

Deno.test("a payload holding CTNRv1__ is not taken for a trailer cut short", async () => {
  await withTempDir(async (dir) => {
    // A container never finalized, its index moved away; its last file holds the magic and a
    // small length, but no index follows: not a container that can be told.
    const tail = new Uint8Array([
      ...encoder.encode("CTNRv1__"),
      ...encodeTrailerHeader(1000).subarray(8),
      0,
      1,
      2,
    ]);
    await writeTree(`${dir}/src`, { "a.bin": tail });
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`)).code, 0);
    await Deno.rename(`${dir}/c.ctnr.idx`, `${dir}/elsewhere.idx`);
    assert.equal(await openCode(`${dir}/c.ctnr`), "NOT_A_CONTAINER");
    const run = await runCli("verify", `${dir}/c.ctnr`, "--index", `${dir}/elsewhere.idx`);
    assert.equal(run.code, 0, run.stderr);
  });
});

// ---------------------------------------------------------------------------
// Salvage

/** A pseudo-random number generator (mulberry32), so that a failing seed can be replayed. */
function random32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Folders above each relpath, and the relpaths: what an extraction of them leaves. */
function pathsOf(relpaths: string[]): string[] {
  const out = new Set<string>();
  for (const relpath of relpaths) {
    const parts = relpath.split("/");
    for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join("/"));
  }
  return [...out].sort();
}

Deno.test("extract --salvage restores exactly the entries before a cut, verified, and lists the rest (50 random cuts)", async () => {
  const seed = Number(Deno.env.get("CTNR_CUT_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`  cut seed ${seed} (replay with CTNR_CUT_SEED=${seed})`);
  const random = random32(seed);
  await withTempDir(async (dir) => {
    // Many small files: the index is about as long as the payloads, so cuts land in both.
    const tree: TreeSpec = { "empty": { dir: true }, "link": { symlink: "f07.txt" } };
    for (let i = 0; i < 24; i++) {
      const name = `${i % 3 === 0 ? "sub/" : ""}f${String(i).padStart(2, "0")}.txt`;
      tree[name] = pseudoRandomBytes(Math.floor(random() * 300), seed + i);
    }
    const containers = [
      await make(`${dir}/plain`, "made.ctnr", tree),
      await make(`${dir}/gzip`, "made.ctnr", tree, true),
    ];
    const outcomes = new Map<string, number>();
    for (let n = 0; n < 50; n++) {
      const made = containers[n % 2]!;
      const source = `${dir}/${n % 2 === 0 ? "plain" : "gzip"}/src`;
      const cut = Math.floor(random() * made.bytes.length);
      for (const withIndex of [true, false]) {
        const kind = await checkSalvage(
          made,
          source,
          cut,
          withIndex,
          `${dir}/case`,
          `seed ${seed}`,
        );
        outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
      }
    }
    console.log(`  outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  });
});

Deno.test("extract --salvage at every byte of the trailer header and footer and around each index line end", async () => {
  await withTempDir(async (dir) => {
    const made = await make(dir, "made.ctnr", SMALL);
    const p = made.area;
    const cuts = new Set<number>();
    for (let cut = p - 2; cut <= p + 17; cut++) cuts.add(cut);
    for (let cut = made.bytes.length - 17; cut < made.bytes.length; cut++) cuts.add(cut);
    for (let at = 0; at < made.index.length; at++) {
      if (made.index[at] !== 0x0a) continue;
      for (let d = -1; d <= 1; d++) cuts.add(p + 16 + at + d);
    }
    const kinds = new Set<string>();
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      for (const withIndex of [true, false]) {
        kinds.add(await checkSalvage(made, `${dir}/src`, cut, withIndex, `${dir}/case`, "edges"));
      }
    }
    assert.deepEqual([...kinds].sort(), [
      "footer cut",
      "index cut",
      "index cut: all lines",
      "index missing",
      "index: all",
      "index: some left out",
      "whole trailer",
    ]);
  });
});

/**
 * Cut `made` at `cut`, with or without its .idx, in a fresh folder `work`; run
 * `extract --salvage` and check it restored exactly what {@link expectedSalvage} says, each file
 * the source's bytes, nothing else (no temp file), listed the rest on stdout and said why.
 *
 * @returns the kind of case
 */
async function checkSalvage(
  made: Made,
  source: string,
  cut: number,
  withIndex: boolean,
  work: string,
  context: string,
): Promise<string> {
  await Deno.mkdir(work);
  try {
    const c = `${work}/c.ctnr`;
    await Deno.writeFile(c, made.bytes.subarray(0, cut));
    if (withIndex) await Deno.writeFile(`${c}.idx`, made.index);
    const label = `cut at ${cut} of ${made.bytes.length} (area ends at ${made.area}, index ` +
      `${made.index.length} bytes), ${withIndex ? "with" : "without"} the .idx, ${context}`;
    const expected = expectedSalvage(made, cut, withIndex);
    const run = await runCli("extract", c, `${work}/out`, "--salvage");
    assert.equal(run.code, expected.code, `${label}: ${run.stderr}`);
    if (expected.kind === "index missing") {
      assert.match(run.stderr, /index missing/, label);
      assert.equal(await exists(`${work}/out`), false, label);
      return expected.kind;
    }
    const restored = expected.restored.map((e) => e.relpath);
    assert.deepEqual(await listPaths(`${work}/out`), pathsOf(restored), label);
    for (const entry of expected.restored) {
      if (entry.entry_type !== undefined) continue;
      assert.deepEqual(
        await Deno.readFile(`${work}/out/${entry.relpath}`),
        await Deno.readFile(`${source}/${entry.relpath}`),
        `${label}: ${entry.relpath}`,
      );
    }
    // The rest listed by name, one a line, on stdout (only the .idx knows their names).
    const leftOut = made.entries.filter((e) => !restored.includes(e.relpath));
    const listed = run.stdout.split("\n").filter((l) => l !== "" && !/^\[\d{4}-/.test(l));
    assert.deepEqual(listed, withIndex ? leftOut.map((e) => e.relpath) : [], label);
    if (expected.code === 1) {
      assert.match(run.stderr, /^ctnr: Cannot salvage all of ".*c\.ctnr": cut short at byte /);
      const known = restored.length + (withIndex ? leftOut.length : 0);
      assert.match(
        run.stderr,
        new RegExp(
          `${restored.length} of ${known} ${
            known === 1 ? "entry" : "entries"
          } extracted and verified`,
        ),
        label,
      );
      assert.match(
        run.stderr,
        withIndex
          ? new RegExp(`${leftOut.length} left out.*listed on stdout`)
          : new RegExp(`entries after the first ${restored.length} are unknown`),
        label,
      );
    } else if (!withIndex && expected.kind !== "whole trailer") {
      assert.match(run.stderr, /warning: .* is cut short .* every entry its index names/, label);
    }
    return expected.kind;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** What a salvage of `made` cut at `cut` must do, told from the format, not from lib/. */
function expectedSalvage(made: Made, cut: number, withIndex: boolean): {
  kind: string;
  code: number;
  restored: Made["entries"];
} {
  // Folders and links carry no payload (and no offset on the wire).
  const inside = (e: Made["entries"][number]) => (e.offset ?? 0) + (e.payload_size ?? 0) <= cut;
  if (withIndex) {
    const restored = made.entries.filter(inside);
    return {
      kind: restored.length === made.entries.length ? "index: all" : "index: some left out",
      code: restored.length === made.entries.length ? 0 : 1,
      restored,
    };
  }
  const p = made.area;
  const L = made.index.length;
  // A cut in the payloads, or in the first 4 bytes of the trailer header, leaves no trace of
  // a trailer; a cut further in the header leaves its magic: both mean no index to read.
  if (cut < p + 16) return { kind: "index missing", code: 1, restored: [] };
  if (cut >= p + 16 + L) {
    return {
      kind: cut === p + 16 + L ? "whole trailer" : "footer cut",
      code: 0,
      restored: made.entries,
    };
  }
  const left = made.index.subarray(0, cut - p - 16);
  if (left.length === L - 1) {
    return { kind: "index cut: all lines", code: 0, restored: made.entries };
  }
  // Whole lines, and a last one cut just before its newline (a whole JSON object).
  let lines = left.filter((b) => b === 0x0a).length;
  const tail = new TextDecoder().decode(left.subarray(left.lastIndexOf(0x0a) + 1));
  try {
    JSON.parse(tail);
    lines++;
  } catch { /* torn: not read */ }
  if (lines === 0) return { kind: "index missing", code: 1, restored: [] };
  return { kind: "index cut", code: 1, restored: made.entries.slice(0, lines) };
}

Deno.test("extract --salvage verifies each entry it restores: a corrupt payload before the cut is named and not written", async () => {
  await withTempDir(async (dir) => {
    const made = await make(dir, "made.ctnr", SMALL);
    const c = `${dir}/c.ctnr`;
    const bytes = made.bytes.slice(0, made.area - 10); // b/d.txt is cut off
    const at = made.entries.find((e) => e.relpath === "a.txt")!.offset! + 3;
    bytes[at] = bytes[at]! ^ 0x20;
    await Deno.writeFile(c, bytes);
    await Deno.writeFile(`${c}.idx`, made.index);
    const run = await runCliProcess("extract", c, `${dir}/out`, "--salvage");
    assert.equal(run.code, 1, run.stderr);
    // The entry past the cut is known from the plan, the corrupt one once it is read.
    assert.equal(run.stdout, "b/d.txt\na.txt\n");
    assert.match(run.stderr, /^ctnr: error: Cannot verify "a\.txt": payload SHA-256 mismatch/);
    assert.match(
      run.stderr,
      /Cannot salvage all of ".*c\.ctnr": cut short at byte \d+ \(index ".*c\.ctnr\.idx" says its payloads run to byte \d+\); 1 of 3 entries extracted and verified, 1 left out, 1 failed; the 2 entries not restored are listed on stdout\n$/,
    );
    assert.deepEqual(await listPaths(`${dir}/out`), ["b", "b/c.txt"]);
    assert.equal(await Deno.readTextFile(`${dir}/out/b/c.txt`), SMALL["b/c.txt"]);
  });
});

Deno.test("extract --keep-going on a cut container extracts what lies before the cut and names each entry after it", async () => {
  await withTempDir(async (dir) => {
    const made = await make(dir, "made.ctnr", SMALL);
    const c = `${dir}/c.ctnr`;
    await Deno.writeFile(c, made.bytes.subarray(0, 300));
    await Deno.writeFile(`${c}.idx`, made.index);
    const run = await runCli("extract", c, `${dir}/out`, "--keep-going");
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /^ctnr: error: Cannot extract "b\/c\.txt": its payload \(offset \d+, \d+ bytes\) runs past the end of ".*c\.ctnr", which is cut short at byte 300\n/,
    );
    assert.match(run.stderr, /Cannot extract "b\/d\.txt": its payload/);
    assert.match(run.stderr, /extraction incomplete: 2 entries failed \(named above\)/);
    assert.deepEqual(await listPaths(`${dir}/out`), ["a.txt"]);
  });
});
