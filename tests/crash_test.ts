/**
 * Crash safety of `create` against real process deaths: SIGKILL at random
 * moments, SIGINT and SIGTERM, and the resume edge cases. Every run must
 * end, after resuming, in a container whose every entry verifies, with no
 * duplicate relpaths, that extracts to the source. Power loss is tested in
 * tests/power_loss_test.ts, kills aimed at each phase in
 * tests/crash_phase_test.ts.
 *
 * Random choices come from one seed, printed by each test; rerun a failure
 * with `CTNR_CRASH_SEED=<seed> deno test -A tests/crash_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FOOTER_MAGIC, TRAILER_MAGIC } from "../mod.ts";
import { diffTrees, exists, runCli, withTempDir, writeTree } from "./_helpers.ts";
import {
  buildTree,
  checkCommitted,
  checkLayout,
  killPhase,
  occurrences,
  parseIndex,
  parseKv,
  payloadEnd,
  Random,
  readEntries,
  readOrEmpty,
  runProcess,
  SEED,
  sizeOf,
  smallSpec,
  type Stop,
  withScratchDir,
} from "./_crash.ts";

// ---------------------------------------------------------------------------
// 1. SIGKILL

Deno.test("createContainer survives SIGKILL at 20 random moments", async () => {
  const seed = SEED;
  console.log(`seed ${seed} (rerun with CTNR_CRASH_SEED=${SEED})`);
  const random = new Random(seed);
  await withScratchDir(async (dir) => {
    const src = `${dir}/src`;
    // The first entry in walk order is an 8 MiB file: kills land while the first batch is written.
    buildTree(src, random, { smallFiles: 8000, bigSizes: [8 << 20, 3 << 20, 5 << 20, 2 << 20] });
    const container = `${dir}/c.ctnr`;
    const create = (path: string) => [
      "create",
      "--src",
      src,
      "--container",
      path,
      "--fsync-every",
      "50",
      "--index-batch",
      "50",
      "--finalize",
    ];
    const calibration = await runProcess(create(`${dir}/calibration.ctnr`));
    assert.equal(calibration.code, 0, calibration.stderr);
    const fullMs = calibration.ms;
    await Deno.remove(`${dir}/calibration.ctnr`);
    await Deno.remove(`${dir}/calibration.ctnr.idx`);

    const problems: string[] = [];
    const phases: Record<string, number> = {};
    let kills = 0;
    let additions = 0;
    let sourceEntries = 8000 + 4 + 2; // small and big files, the empty folder, the link
    let complete = false; // the last run finished and nothing was added since
    let runs = 0;
    for (; runs < 70 && (kills < 22 || additions < 2); runs++) {
      if (complete && (additions < 2 || (additions < 4 && random.chance(0.5)))) {
        sourceEntries += 400 + 3;
        buildTree(src, random, {
          smallFiles: 400,
          bigSizes: [random.range(2 << 20, 4 << 20)],
          folder: `more${additions}`,
        });
        additions++;
        complete = false;
      }
      let stop: Stop;
      if (runs === 0) {
        stop = { signal: "SIGKILL", afterMs: 0, when: async () => (await sizeOf(container)) > 0 };
      } else if (complete) {
        // Nothing to add: the run cuts the old trailer away and writes a new one, the two
        // close together (the walk comes first). Kill it once the container's size moves.
        const before = await sizeOf(container);
        stop = {
          signal: "SIGKILL",
          afterMs: random.int(3),
          when: async () => (await sizeOf(container)) !== before,
        };
      } else if (random.chance(0.25)) {
        stop = { signal: "SIGKILL", afterMs: random.next() * fullMs * 1.1 };
      } else {
        // A resumed run spends a while skipping what is done: wait until the container grows,
        // then for a part of the time the entries left should take.
        const indexed = parseIndex(await readOrEmpty(`${container}.idx`)).list.length;
        const left = Math.max(0.05, (sourceEntries - indexed) / sourceEntries);
        let low = Infinity;
        stop = {
          signal: "SIGKILL",
          afterMs: random.next() * fullMs * left,
          when: async () => {
            const size = await sizeOf(container);
            low = Math.min(low, size);
            return size > low;
          },
        };
      }
      const before = {
        container: await sizeOf(container),
        index: await sizeOf(`${container}.idx`),
      };
      const run = await runProcess(create(container), stop);
      if (run.signal === "SIGKILL") {
        kills++;
        const phase = await killPhase(container, before);
        phases[phase] = (phases[phase] ?? 0) + 1;
        const left = await checkCommitted(container);
        if (left.length > 0) {
          problems.push(`run ${runs} (seed ${seed}), killed in ${phase}: ${left.join("; ")}`);
        }
        complete = false;
        continue;
      }
      if (run.code === 0) {
        complete = true;
        continue;
      }
      problems.push(
        `run ${runs} (seed ${seed}): resuming after the kill exited ${run.code}, ` +
          `expected 0: ${run.stderr.trim()}`,
      );
      // Start over, so the rest of the schedule still runs.
      await Deno.remove(container).catch(() => {});
      await Deno.remove(`${container}.idx`).catch(() => {});
      complete = false;
    }
    console.log(
      `SIGKILL: ${kills} kills in ${runs} runs (a full run takes ${Math.round(fullMs)} ms), ` +
        `${additions} times files were added; where the kills landed: ${JSON.stringify(phases)}`,
    );
    assert.ok(kills >= 20, `only ${kills} of ${runs} runs were killed`);

    const last = await runProcess(create(container));
    assert.equal(last.code, 0, `seed ${seed}: the last create failed: ${last.stderr}`);
    const verify = await runCli("verify", "--container", container);
    if (verify.code !== 0) problems.push(`verify exited ${verify.code}: ${verify.stderr.trim()}`);
    const out = `${dir}/out`;
    const extract = await runCli("extract", "--container", container, "--outdir", out);
    if (extract.code !== 0) {
      problems.push(`extract exited ${extract.code}: ${extract.stderr.trim()}`);
    } else problems.push(...(await diffTrees(src, out)).map((d) => `extracted tree: ${d}`));
    problems.push(...await checkLayout(container, true));
    // The embedded index alone describes the container too.
    await Deno.link(container, `${dir}/alone.ctnr`);
    const alone = await runCli("verify", "--container", `${dir}/alone.ctnr`);
    if (alone.code !== 0) {
      problems.push(`verify through the trailer exited ${alone.code}: ${alone.stderr.trim()}`);
    }
    assert.deepEqual(problems, [], `seed ${seed}`);
  });
});

// ---------------------------------------------------------------------------
// 3. Signals

for (const [signal, exitCode] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
  Deno.test(`main create stops on ${signal} with exit ${exitCode} after committing its work`, async () => {
    const seed = SEED + 3;
    console.log(`seed ${seed} (rerun with CTNR_CRASH_SEED=${SEED})`);
    const random = new Random(seed);
    await withScratchDir(async (dir) => {
      const src = `${dir}/src`;
      const container = `${dir}/c.ctnr`;
      const status = `${dir}/status.txt`;
      // Long enough a run that the signal lands in it: 8,000 files and a signal up to 120 ms
      // after the first commit once let create finish first (exit 0) as it got faster.
      buildTree(src, random, { smallFiles: 20_000, bigSizes: [3 << 20, 2 << 20] });
      const args = [
        "create",
        "--src",
        src,
        "--container",
        container,
        "--fsync-every",
        "50",
        "--index-batch",
        "50",
        "--status-file",
        status,
      ];
      const run = await runProcess(args, {
        signal,
        afterMs: random.range(10, 60),
        when: async () => (await sizeOf(`${container}.idx`)) > 0,
      });
      assert.equal(run.signal, null, `the signal killed the process: ${run.stderr}`);
      assert.equal(run.code, exitCode, run.stderr);
      assert.match(run.stderr, new RegExp(`Interrupted by ${signal}`));
      const fields = parseKv(await Deno.readTextFile(status));
      assert.equal(fields.get("status"), "interrupted");

      const entries = parseIndex(await Deno.readFile(`${container}.idx`));
      assert.equal(entries.torn, false, "the index ends with a torn line");
      const total = 20_000 + 2 + 2; // small and big files, the empty folder, the link
      assert.ok(
        entries.list.length > 0 && entries.list.length < total,
        `${entries.list.length} of ${total} entries: the signal did not land mid-run`,
      );
      assert.equal(
        await sizeOf(container),
        payloadEnd(entries.list),
        "every payload written is committed to the index",
      );
      const verify = await runCli("verify", "--container", container);
      assert.equal(verify.code, 0, verify.stderr);
      const partial = await runCli("extract", "--container", container, "--outdir", `${dir}/part`);
      assert.equal(partial.code, 0, partial.stderr);
      const missing = await diffTrees(src, `${dir}/part`);
      assert.deepEqual(missing.filter((d) => !d.endsWith(": only in first")), []);

      const again = await runCli("create", ...args.slice(1));
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /\(resumed\)/);
      assert.equal(parseKv(await Deno.readTextFile(status)).get("status"), "finished");
      assert.deepEqual(await checkLayout(container, false), []);
      const extract = await runCli("extract", "--container", container, "--outdir", `${dir}/out`);
      assert.equal(extract.code, 0, extract.stderr);
      assert.deepEqual(await diffTrees(src, `${dir}/out`), []);
    });
  });
}

// ---------------------------------------------------------------------------
// 4. Resume edge cases

Deno.test("main create appends to a finalized container whose index was removed", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    await writeTree(src, smallSpec());
    const first = await runCli(
      "create",
      "--src",
      src,
      "--container",
      c,
      "--finalize",
      "--remove-index-on-finalize",
    );
    assert.equal(first.code, 0, first.stderr);
    assert.equal(await exists(`${c}.idx`), false);
    const before = await Deno.readFile(c);
    const old = await readEntries(c);
    const oldEnd = payloadEnd(old);

    await writeTree(src, { "later/one.txt": "one", "later/two.bin": new Uint8Array(5000).fill(7) });
    const second = await runCli("create", "--src", src, "--container", c);
    assert.equal(second.code, 0, second.stderr);
    const after = await Deno.readFile(c);
    assert.ok(after.length > oldEnd, `the container shrank to ${after.length} bytes`);
    assert.deepEqual(after.subarray(0, oldEnd), before.subarray(0, oldEnd), "old payloads kept");
    const entries = await readEntries(c);
    assert.deepEqual(entries.slice(0, old.length), old, "old entries kept");
    assert.deepEqual(entries.slice(old.length).map((e) => e.relpath), [
      "later/one.txt",
      "later/two.bin",
    ]);
    assert.deepEqual(await checkLayout(c, false), []);
    const verify = await runCli("verify", "--container", c);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal((await runCli("extract", c, `${dir}/out`)).code, 0);
    assert.deepEqual(await diffTrees(src, `${dir}/out`), []);
  });
});

Deno.test("main create --finalize-only twice leaves the container byte-identical", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    await writeTree(src, smallSpec());
    assert.equal((await runCli("create", "--src", src, "--container", c)).code, 0);
    const first = await runCli("create", "--container", c, "--finalize-only");
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Finalized container/);
    const once = await Deno.readFile(c);
    const second = await runCli("create", "--container", c, "--finalize-only");
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /nothing to do/);
    assert.deepEqual(await Deno.readFile(c), once);
    assert.deepEqual(await checkLayout(c, true), []);
  });
});

Deno.test("main create keeps one trailer when appending to a finalized container", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    await writeTree(src, smallSpec());
    const create = (...more: string[]) => runCli("create", "--src", src, "--container", c, ...more);
    assert.equal((await create("--finalize")).code, 0);
    await writeTree(src, { "later/one.txt": "one", "later/empty": { dir: true } });
    const again = await create("--finalize");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Removing the trailer/);
    const bytes = await Deno.readFile(c);
    assert.equal(occurrences(bytes, TRAILER_MAGIC), 1, "trailer headers");
    assert.equal(occurrences(bytes, FOOTER_MAGIC), 1, "footers");
    assert.deepEqual(await checkLayout(c, true), []);
    await Deno.link(c, `${dir}/alone.ctnr`);
    assert.equal((await runCli("extract", `${dir}/alone.ctnr`, `${dir}/out`)).code, 0);
    assert.deepEqual(await diffTrees(src, `${dir}/out`), []);

    // Appending without --finalize leaves no trailer at all.
    await writeTree(src, { "later/two.txt": "two" });
    assert.equal((await create()).code, 0);
    assert.equal(occurrences(await Deno.readFile(c), TRAILER_MAGIC), 0);
    assert.deepEqual(await checkLayout(c, false), []);
  });
});

Deno.test("main create reports a committed file that changed before a resume with exit 3", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    await writeTree(src, {
      "keep.txt": "kept",
      "grown.txt": "short",
      "docs/changed.txt": { content: "original text", mtime: 1_600_000_000 },
    });
    assert.equal((await runCli("create", "--src", src, "--container", c)).code, 0);
    await writeTree(src, {
      // Same size, other content and mtime.
      "docs/changed.txt": { content: "ORIGINAL TEXT", mtime: 1_600_003_600 },
      "grown.txt": "not so short",
      "new.txt": "new",
    });
    const run = await runCli("create", "--src", src, "--container", c);
    const entries = await readEntries(c);
    assert.deepEqual(
      entries.map((e) => e.relpath),
      ["docs/changed.txt", "grown.txt", "keep.txt", "new.txt"],
      "the changed files must not be added again",
    );
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /warning: "docs\/changed\.txt" changed/);
    assert.match(run.stderr, /warning: "grown\.txt" changed/);
    const verify = await runCli("verify", "--container", c);
    assert.equal(verify.code, 0, verify.stderr);
    const cat = await runCli("cat", "--container", c, "docs/changed.txt");
    assert.equal(cat.stdout, "original text");
  });
});

Deno.test("main create refuses a non-empty container with no index and no trailer with exit 1", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    await writeTree(src, smallSpec());
    const precious = new Random(SEED + 4).bytes(70_000);
    await Deno.writeFile(c, precious);
    for (const more of [[], ["--finalize"]]) {
      const run = await runCli("create", "--src", src, "--container", c, ...more);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /c\.ctnr/);
      assert.deepEqual(await Deno.readFile(c), precious);
      assert.equal(await exists(`${c}.idx`), false);
    }
  });
});
