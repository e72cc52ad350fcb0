/**
 * Kills aimed at each phase of `create` and `--finalize-only` (a real
 * SIGKILL of a child process, sent by its own file layer at the aimed
 * operation: tests/_crash_child.ts), and kills of `extract` followed by a
 * re-run. Each kill's phase is asserted; after it, every entry reported
 * committed must be indexed with a verifying payload, and a resume with the
 * CLI must end in a container that verifies and extracts to the source.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ContainerWriter,
  createContainer,
  type CreateOptions,
  extractContainer,
  UnsafeEntryError,
} from "../mod.ts";
import { diffTrees, exists, listPaths, runCli, withTempDir, writeTree } from "./_helpers.ts";
import {
  checkCommitted,
  checkLayout,
  type Committed,
  lostCommitted,
  Random,
  recordCommitted,
  runDeno,
  runProcess,
  SEED,
  withScratchDir,
} from "./_crash.ts";
import type { Aim, ChildRequest } from "./_crash_child.ts";

const CHILD = new URL("./_crash_child.ts", import.meta.url).pathname;

/** How the container stands before the aimed run. */
type Start = "new" | "indexed" | "leftovers" | "finalized, index removed";

interface PhaseCase {
  aim: Aim;
  start: Start;
  options: CreateOptions;
  finalizeOnly?: boolean;
}

const BATCHES: CreateOptions = { fsyncEvery: 5, indexBatch: 5 };

const PHASES: PhaseCase[] = [
  {
    aim: { phase: "payload write", op: "append", file: "container", nth: 3, written: 0.5 },
    start: "new",
    options: BATCHES,
  },
  {
    aim: {
      phase: "between the container fsync and the index append",
      op: "append",
      file: "index",
      nth: 2,
    },
    start: "new",
    options: BATCHES,
  },
  {
    aim: { phase: "index append", op: "append", file: "index", nth: 2, written: 0.6 },
    start: "new",
    options: BATCHES,
  },
  {
    aim: { phase: "index fsync", op: "sync", file: "index", nth: 2 },
    start: "new",
    options: BATCHES,
  },
  {
    aim: {
      phase: "finalize: trailer header",
      op: "append",
      file: "container",
      trailer: "header",
      nth: 1,
      written: 0.5,
    },
    start: "new",
    options: { ...BATCHES, finalize: true },
  },
  {
    aim: {
      phase: "finalize: embedded index",
      op: "append",
      file: "container",
      trailer: "index",
      nth: 1,
      written: 0.4,
    },
    start: "new",
    options: { ...BATCHES, finalize: true },
  },
  {
    aim: {
      phase: "finalize: footer",
      op: "append",
      file: "container",
      trailer: "footer",
      nth: 1,
      written: 0.5,
    },
    start: "indexed",
    options: { ...BATCHES, finalize: true },
  },
  {
    aim: { phase: "finalize: removing the index", op: "remove", file: "index", nth: 1 },
    start: "new",
    options: { ...BATCHES, finalize: true, removeIndexOnFinalize: true },
  },
  {
    aim: {
      phase: "--finalize-only: embedded index",
      op: "append",
      file: "container",
      trailer: "index",
      nth: 1,
      written: 0.5,
    },
    start: "indexed",
    options: {},
    finalizeOnly: true,
  },
  {
    aim: { phase: "resume: cutting leftovers", op: "truncate", file: "container", nth: 1 },
    start: "leftovers",
    options: BATCHES,
  },
  {
    aim: {
      phase: "resume: copying the index out of the trailer",
      op: "append",
      file: "tmp",
      nth: 1,
      written: 0.5,
    },
    start: "finalized, index removed",
    options: BATCHES,
  },
  {
    aim: { phase: "resume: renaming the copied index", op: "rename", file: "tmp", nth: 1 },
    start: "finalized, index removed",
    options: BATCHES,
  },
  {
    aim: { phase: "resume: folder fsync after the rename", op: "syncFolder", file: "any", nth: 1 },
    start: "finalized, index removed",
    options: BATCHES,
  },
];

Deno.test("createContainer killed in each phase resumes to a container that verifies", async (t) => {
  for (const phase of PHASES) {
    await t.step(phase.aim.phase, async () => {
      await withScratchDir(async (dir) => {
        const src = `${dir}/src`;
        const container = `${dir}/c.ctnr`;
        await writeTree(src, phaseTree(40));
        const committed: Committed = new Map();
        await prepare(phase.start, src, container, committed);
        const request: ChildRequest = {
          src,
          container,
          options: phase.options,
          aim: phase.aim,
        };
        if (phase.finalizeOnly) request.finalizeOnly = true;
        const run = await runDeno(["run", "-A", CHILD, JSON.stringify(request)]);
        assert.equal(run.signal, "SIGKILL", `not killed (exit ${run.code}): ${run.stderr}`);
        assert.match(run.stderr, new RegExp(`^phase: ${escape(phase.aim.phase)}$`, "m"));
        for (const line of run.stdout.split("\n").filter(Boolean)) {
          const entry = JSON.parse(line);
          committed.set(entry.relpath, entry);
        }
        assert.deepEqual(await checkCommitted(container), [], "right after the kill");
        assert.deepEqual(await lostCommitted(container, committed), [], "right after the kill");

        const resume = phase.finalizeOnly
          ? await runProcess(["create", "--container", container, "--finalize-only"])
          : await runProcess(["create", "--src", src, "--container", container, "--finalize"]);
        assert.equal(resume.code, 0, resume.stderr);
        assert.deepEqual(await checkLayout(container, true), []);
        assert.deepEqual(await lostCommitted(container, committed), [], "after the resume");
        const verify = await runCli("verify", "--container", container);
        assert.equal(verify.code, 0, verify.stderr);
        await extractContainer(container, `${dir}/out`);
        assert.deepEqual(await diffTrees(src, `${dir}/out`), []);
      });
    });
  }
});

/** A tree of `files` small files in a few folders, an empty folder and a link. */
function phaseTree(files: number) {
  const spec: Record<string, string | { dir: true } | { symlink: string }> = {};
  for (let i = 0; i < files; i++) spec[`d${i % 3}/f${String(i).padStart(3, "0")}.txt`] = `${i} `;
  spec["hollow"] = { dir: true };
  spec["link"] = { symlink: "d0/f000.txt" };
  return spec;
}

async function prepare(
  start: Start,
  src: string,
  container: string,
  committed: Committed,
): Promise<void> {
  const onEntry = recordCommitted(committed);
  if (start === "new") return;
  if (start === "finalized, index removed") {
    await createContainer(src, container, {
      finalize: true,
      removeIndexOnFinalize: true,
      onEntry,
    });
    await writeTree(src, { "later/one.txt": "one", "later/two.txt": "two" });
    return;
  }
  await createContainer(src, container, { ...BATCHES, onEntry });
  if (start === "leftovers") {
    // What a crash during payload writes leaves: bytes past the last indexed payload.
    const file = await Deno.open(container, { append: true });
    await file.write(new Random(SEED).bytes(3000));
    file.close();
    await writeTree(src, { "later/one.txt": "one" });
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

// ---------------------------------------------------------------------------
// extract

Deno.test("extractContainer re-run after a SIGKILL removes the killed run's temp files", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a/one.txt": "one", "a/two.txt": "two", "top.txt": "top" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    // What a killed run leaves: its marker (its lock gone with the process) and temp files.
    await writeTree(`${dir}/out`, {
      ".ctnr-extract.lock": MARKER,
      ".ctnr-tmp-k1ll3d-1": "partial",
      "a/.ctnr-tmp-k1ll3d-2": "partial",
      "a/one.txt": "one",
      "keep/.ctnr-tmp-not-ours": "a file of the user's, not a temp file name of ctnr",
    });
    const warnings: string[] = [];
    await extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
      skipExisting: true,
      onWarning: (m) => warnings.push(m.message),
    });
    assert.deepEqual(await listPaths(`${dir}/out`), [
      "a",
      "a/one.txt",
      "a/two.txt",
      "keep",
      "keep/.ctnr-tmp-not-ours",
      "top.txt",
    ]);
    assert.ok(warnings.some((w) => /Removed 2 temp files/.test(w)), warnings.join("; "));
  });
});

/** What a run's marker holds (lib/safety/run_marker.ts). */
const MARKER = "ctnr extract in progress\n";

Deno.test("extractContainer refuses entries named like its run marker or temp files, so no later run removes them", async () => {
  await withTempDir(async (dir) => {
    // What a hostile (or unlucky) container holds: a marker with the marker's own content and
    // user files named like temp files. Extracted, a later extraction into the same folder would
    // take them for a killed run's and delete them.
    for (
      const relpath of [
        ".ctnr-extract.lock",
        ".CTNR-Extract.LOCK",
        ".ctnr-tmp-abc-1",
        "sub/.ctnr-tmp-zz-7",
        ".ctnr-tmp-q1-2/inside.txt",
      ]
    ) {
      const container = `${dir}/${crypto.randomUUID()}.ctnr`;
      const writer = await ContainerWriter.open(container);
      await writer.addFile({ relpath: "user.txt" }, new TextEncoder().encode("mine"));
      await writer.addFile({ relpath }, new TextEncoder().encode(MARKER));
      await writer.finalize();
      await assert.rejects(
        extractContainer(container, `${dir}/out`),
        (error: unknown) => {
          assert.ok(error instanceof UnsafeEntryError, `${relpath}: ${error}`);
          assert.ok(error.message.startsWith(`Cannot extract "${relpath}": `), error.message);
          return true;
        },
      );
      assert.equal(await exists(`${dir}/out`), false, "nothing written");
    }
    // Names that only look alike are kept.
    await writeTree(`${dir}/src`, { ".ctnr-extract.lock.txt": "a", "a/.ctnr-tmp-notes": "b" });
    await createContainer(`${dir}/src`, `${dir}/ok.ctnr`);
    await extractContainer(`${dir}/ok.ctnr`, `${dir}/out`);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});

Deno.test("createContainer leaves out files named like ctnr's run marker or temp files, with a warning", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      ".ctnr-extract.lock": MARKER,
      "a/.ctnr-tmp-abc-1": "half-written",
      "a/kept.txt": "kept",
    });
    const warnings: string[] = [];
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
      onWarning: (warning) => warnings.push(`${warning.code} ${warning.relpath}`),
    });
    assert.deepEqual(warnings.sort(), [
      "LEFT_OUT .ctnr-extract.lock",
      "LEFT_OUT a/.ctnr-tmp-abc-1",
    ]);
    await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.deepEqual(await listPaths(`${dir}/out`), ["a", "a/kept.txt"]);
  });
});

Deno.test("extractContainer leaves the temp files of a run that is still going", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a/one.txt": "one" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    await writeTree(`${dir}/out`, { ".ctnr-extract.lock": MARKER, "a/.ctnr-tmp-alive1-1": "mine" });
    // Another run holds the marker: its temp files are not this run's to remove.
    const other = await Deno.open(`${dir}/out/.ctnr-extract.lock`, { read: true, write: true });
    try {
      await other.lock(false);
      await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
      assert.equal(await exists(`${dir}/out/a/.ctnr-tmp-alive1-1`), true);
      assert.equal(await exists(`${dir}/out/.ctnr-extract.lock`), true, "the other run's marker");
    } finally {
      other.close();
    }
  });
});

Deno.test("main extract killed at random moments and run again ends in the source tree", async () => {
  const random = new Random(SEED + 9);
  await withScratchDir(async (dir) => {
    const src = `${dir}/src`;
    const spec: Record<string, Uint8Array | string> = {};
    for (let i = 0; i < 3000; i++) spec[`d${i % 7}/f${i}.txt`] = `file ${i} `.repeat(20);
    for (let i = 0; i < 3; i++) spec[`big/b${i}.bin`] = random.bytes(6 << 20);
    await writeTree(src, spec);
    const container = `${dir}/c.ctnr`;
    await createContainer(src, container, { finalize: true });
    const out = `${dir}/out`;
    let kills = 0;
    let leftTemps = 0;
    for (let round = 0; round < 8 && kills < 5; round++) {
      const flags = random.pick([[], ["--skip-existing"], ["--verify-existing"]]);
      const run = await runProcess(["extract", container, out, ...flags], {
        signal: "SIGKILL",
        afterMs: random.int(5),
        // Once a big file's temp file stands in the output folder.
        when: () => hasTempFile(`${out}/big`),
      });
      if (run.signal !== "SIGKILL") continue;
      kills++;
      leftTemps += (await tempsUnder(out)).length;
    }
    assert.ok(kills >= 3, `only ${kills} kills landed`);
    const last = await runProcess(["extract", container, out, "--verify-existing"]);
    assert.equal(last.code, 0, last.stderr);
    assert.deepEqual(await diffTrees(src, out), []);
    assert.deepEqual(await tempsUnder(out), []);
    assert.equal(await exists(`${out}/.ctnr-extract.lock`), false);
    console.log(`extract: ${kills} kills, ${leftTemps} temp files left by them, all removed`);
  });
});

async function hasTempFile(folder: string): Promise<boolean> {
  try {
    for await (const item of Deno.readDir(folder)) {
      if (item.name.startsWith(".ctnr-tmp-")) return true;
    }
  } catch { /* not made yet */ }
  return false;
}

async function tempsUnder(root: string): Promise<string[]> {
  if (!(await exists(root))) return [];
  return (await listPaths(root)).filter((p) => /(^|\/)\.ctnr-tmp-/.test(p));
}
