/**
 * Crash safety of `create`: SIGKILL at random moments, power loss at random
 * file operations (every byte written after a file's last fsync is lost),
 * containers and indexes cut at random offsets, SIGINT and SIGTERM, and the
 * resume edge cases. Every run must end, after resuming, in a container
 * whose every entry verifies, with no duplicate relpaths, that extracts to
 * the source.
 *
 * Random choices come from one seed, printed by each test; rerun a failure
 * with `CTNR_CRASH_SEED=<seed> deno test -A tests/crash_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import {
  ContainerReader,
  createContainer,
  type CreateOptions,
  DENO_FILE_LAYER,
  extractContainer,
  type FileLayer,
  findTrailer,
  FOOTER_MAGIC,
  type IndexEntry,
  IndexReader,
  type LayerFile,
  TRAILER_MAGIC,
  type TrailerLocation,
} from "../mod.ts";
import { FOOTER_SIZE, TRAILER_HEADER_SIZE } from "../lib/format.ts";
import { diffTrees, exists, memorySource, runCli, withTempDir, writeTree } from "./_helpers.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const PROJECT = dirname(CLI);
const SEED = seedFromEnv();

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
        // Nothing to add: the run cuts the old trailer away, walks, and writes a new one.
        // Kill it once the new trailer starts to grow.
        const end = payloadEnd(parseIndex(await Deno.readFile(`${container}.idx`)).list);
        let cutSeen = false;
        stop = {
          signal: "SIGKILL",
          afterMs: random.int(3),
          when: async () => {
            const size = await sizeOf(container);
            if (size === end) cutSeen = true;
            return cutSeen && size > end;
          },
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
// 2. Power loss

Deno.test("createContainer survives power loss at 50 random moments", async () => {
  const seed = SEED + 1;
  console.log(`seed ${seed} (rerun with CTNR_CRASH_SEED=${SEED})`);
  const random = new Random(seed);
  await withScratchDir(async (dir) => {
    const problems: string[] = [];
    const kinds: Record<string, number> = {};
    let cuts = 0;
    let scenario = 0;
    for (; cuts < 50 && scenario < 80; scenario++) {
      const work = `${dir}/s${scenario}`;
      const src = `${work}/src`;
      const container = `${work}/c.ctnr`;
      buildTree(src, random, { smallFiles: 300, bigSizes: [random.range(300_000, 1_500_000)] });
      const compress = random.chance(0.25);
      const history: string[] = [`compress ${compress}`];
      const report = (what: string) =>
        problems.push(`seed ${seed}, scenario ${scenario} (${history.join("; ")}): ${what}`);
      if (random.chance(0.35)) {
        // Start from a finalized container and add files: cuts land while its trailer goes.
        const removeIndex = random.chance(0.5);
        await createContainer(src, container, {
          compress,
          finalize: true,
          removeIndexOnFinalize: removeIndex,
        });
        buildTree(src, random, { smallFiles: 40, bigSizes: [], folder: "later" });
        history.push(`finalized${removeIndex ? ", index removed" : ""}, then files added`);
      }
      let failed = false;
      const chain = random.range(1, 3);
      for (let link = 0; link < chain && !failed; link++) {
        const options = randomOptions(random, compress);
        let total: number;
        try {
          total = await countOperations(src, container, `${work}/count`, options);
        } catch (error) {
          report(`resume (on a copy) failed: ${describeError(error)}`);
          failed = true;
          break;
        }
        if (total === 0) break;
        const cutAt = random.range(1, total);
        const layer = new PowerCutLayer(cutAt, random);
        let outcome: unknown = "it resolved";
        try {
          await createContainer(src, container, { ...options, fileLayer: layer });
        } catch (error) {
          outcome = error;
        }
        const mode = random.pick(["drop", "drop", "prefix", "keep"] as const);
        history.push(
          `${describeOptions(options)}: cut at operation ${cutAt} of ${total} (${layer.cut}), ` +
            `${mode}`,
        );
        if (!(outcome instanceof PowerCut)) {
          report(`createContainer should fail with the power cut, but ${describeError(outcome)}`);
          failed = true;
          break;
        }
        cuts++;
        const kind = `${layer.cut?.split(" ")[0]} ${mode}`;
        kinds[kind] = (kinds[kind] ?? 0) + 1;
        await layer.losePower(mode);
        const left = await checkCommitted(container);
        if (left.length > 0) report(`right after the power loss: ${left.join("; ")}`);
      }
      if (failed) continue;
      const final = randomOptions(random, compress);
      history.push(`resumed with ${describeOptions(final)}`);
      try {
        await createContainer(src, container, final);
      } catch (error) {
        report(`the resume failed: ${describeError(error)}`);
        continue;
      }
      const found = [
        ...await checkLayout(container, final.finalize ?? false),
        ...await checkEntries(container, src, `${work}/out`),
      ];
      if (found.length > 0) report(found.join("; "));
      else await Deno.remove(work, { recursive: true });
    }
    console.log(
      `power loss: ${cuts} cuts in ${scenario} scenarios; cut operation and loss mode: ` +
        JSON.stringify(kinds),
    );
    assert.deepEqual(problems, [], `seed ${seed}`);
    assert.ok(cuts >= 50, `only ${cuts} cuts`);
  });
});

Deno.test("createContainer resumes after its container and index are cut at random offsets", async () => {
  const seed = SEED + 2;
  console.log(`seed ${seed} (rerun with CTNR_CRASH_SEED=${SEED})`);
  const random = new Random(seed);
  await withScratchDir(async (dir) => {
    const src = `${dir}/src`;
    const container = `${dir}/c.ctnr`;
    buildTree(src, random, { smallFiles: 300, bigSizes: [700_000] });
    const fresh = async () => {
      await Deno.remove(container).catch(() => {});
      await Deno.remove(`${container}.idx`).catch(() => {});
      const options = randomOptions(random, false);
      await createContainer(src, container, {
        ...options,
        finalize: true,
        removeIndexOnFinalize: false,
      });
    };
    await fresh();
    const problems: string[] = [];
    for (let round = 0; round < 30; round++) {
      const cut = await cutAtRandom(container, random);
      // The index file stays: without it, a cut container may rightly be refused.
      const options = {
        ...randomOptions(random, random.chance(0.25)),
        removeIndexOnFinalize: false,
      };
      const label = `seed ${seed}, round ${round}: ${cut}, then ${describeOptions(options)}`;
      try {
        await createContainer(src, container, options);
      } catch (error) {
        problems.push(`${label}: the resume failed: ${describeError(error)}`);
        await fresh();
        continue;
      }
      const found = [
        ...await checkLayout(container, options.finalize ?? false),
        ...await checkEntries(container, src, `${dir}/out`),
      ];
      if (found.length > 0) {
        problems.push(`${label}: ${found.join("; ")}`);
        await fresh();
      }
    }
    assert.deepEqual(problems, []);
  });
});

// ---------------------------------------------------------------------------
// 3. Signals

for (const [signal, exitCode] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
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

Deno.test("createContainer resumes after a crash before its first index commit", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    await writeTree(src, smallSpec());
    // fsyncEvery 1, indexBatch 20: every payload is synced, then the power fails at the
    // first index append (its operation number taken from a run on another container).
    const layer = new PowerCutLayer(Infinity, new Random(1));
    await createContainer(src, `${dir}/count.ctnr`, {
      fsyncEvery: 1,
      indexBatch: 20,
      fileLayer: layer,
    });
    const indexAppend = layer.log.indexOf(`append count.ctnr.idx`) + 1;
    assert.ok(indexAppend > 1);
    const cut = new PowerCutLayer(indexAppend, new Random(1), { tear: false });
    await assert.rejects(
      createContainer(src, c, { fsyncEvery: 1, indexBatch: 20, fileLayer: cut }),
      PowerCut,
    );
    await cut.losePower("drop");
    assert.ok((await sizeOf(c)) > 0, "payloads were synced");
    assert.equal(await sizeOf(`${c}.idx`), 0, "nothing was indexed");
    await createContainer(src, c);
    assert.deepEqual(await checkLayout(c, false), []);
    assert.deepEqual(await checkEntries(c, src, `${dir}/out`), []);
  });
});

Deno.test("createContainer resumes after a crash tore the index just before a newline", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    await writeTree(src, smallSpec());
    await createContainer(src, c, { fsyncEvery: 2, indexBatch: 4 });
    // The last line that survives is whole JSON but has lost its newline.
    const index = await Deno.readFile(`${c}.idx`);
    const newlines = [...index.keys()].filter((i) => index[i] === 0x0a);
    await Deno.truncate(`${c}.idx`, newlines[2]!);
    await createContainer(src, c, { fsyncEvery: 2, indexBatch: 4 });
    assert.deepEqual(await checkLayout(c, false), []);
    assert.deepEqual(await checkEntries(c, src, `${dir}/out`), []);
    await createContainer(src, c, { finalize: true });
    assert.deepEqual(await checkLayout(c, true), []);
  });
});

// ---------------------------------------------------------------------------
// The power-loss file layer

/** Thrown by {@link PowerCutLayer} at its cut and at every operation after it. */
class PowerCut extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PowerCut";
  }
}

/** How the unsynced bytes of each file fare when the power goes. */
type LossMode = "drop" | "prefix" | "keep";

/**
 * A file layer over the real files that counts append, sync and truncate
 * across files and loses power at operation `cutAt`: that operation may
 * happen in part (a torn append, a sync that did complete), and every
 * operation after it throws {@link PowerCut}. Each file remembers its size
 * at its last sync, so {@link PowerCutLayer.losePower} can drop what an
 * fsync never covered.
 */
class PowerCutLayer implements FileLayer {
  /** Operations done so far (counting the cut). */
  operations = 0;
  /** The operation the power went out in, once it has. */
  cut: string | undefined;
  /** Every operation, as `append|sync|truncate <file name>`. */
  readonly log: string[] = [];
  readonly files = new Map<string, PowerCutFile>();
  readonly random: Random;
  readonly tear: boolean;
  #cutAt: number;

  constructor(cutAt: number, random: Random, options: { tear?: boolean } = {}) {
    this.#cutAt = cutAt;
    this.random = random;
    this.tear = options.tear ?? true;
  }

  async open(path: string): Promise<LayerFile> {
    if (this.cut !== undefined) throw new PowerCut(`Power is off: cannot open "${path}"`);
    const file = new PowerCutFile(this, await DENO_FILE_LAYER.open(path), path);
    this.files.set(path, file);
    return file;
  }

  /** Count an operation; `true` when the power goes out in it; throws when it is out already. */
  step(what: string): boolean {
    if (this.cut !== undefined) throw new PowerCut(`Power is off: cannot ${what}`);
    this.operations++;
    this.log.push(what);
    if (this.operations !== this.#cutAt) return false;
    this.cut = what;
    return true;
  }

  /**
   * Cut each file the way a power loss would: `drop` every byte written
   * after its last sync, keep a random `prefix` of them, or `keep` them all
   * (a process crash).
   */
  async losePower(mode: LossMode): Promise<void> {
    for (const [path, file] of this.files) {
      const size = await sizeOf(path);
      const keep = mode === "drop"
        ? file.synced
        : mode === "prefix"
        ? file.synced + this.random.int(Math.max(0, size - file.synced) + 1)
        : size;
      if (keep < size) await Deno.truncate(path, keep);
    }
  }
}

class PowerCutFile implements LayerFile {
  /** Size in bytes that the last sync (or truncate) made durable. */
  synced: number;
  #layer: PowerCutLayer;
  #inner: LayerFile;
  #name: string;

  constructor(layer: PowerCutLayer, inner: LayerFile, path: string) {
    this.#layer = layer;
    this.#inner = inner;
    this.#name = path.slice(path.lastIndexOf("/") + 1);
    this.synced = inner.size;
  }

  get size(): number {
    return this.#inner.size;
  }

  readAt(position: number, length: number): Promise<Uint8Array> {
    return this.#inner.readAt(position, length);
  }

  async append(bytes: Uint8Array): Promise<void> {
    if (this.#layer.step(`append ${this.#name}`)) {
      const written = this.#layer.tear ? tornLength(bytes, this.#layer.random) : 0;
      if (written > 0) await this.#inner.append(bytes.subarray(0, written));
      this.#layer.cut += ` (${written} of ${bytes.length} bytes written)`;
      throw new PowerCut(`Power cut in ${this.#layer.cut}`);
    }
    await this.#inner.append(bytes);
  }

  async sync(): Promise<void> {
    if (this.#layer.step(`sync ${this.#name}`)) {
      // The fsync may have reached the disk before the power went.
      if (this.#layer.random.chance(0.5)) {
        await this.#inner.sync();
        this.synced = this.#inner.size;
        this.#layer.cut += " (done)";
      }
      throw new PowerCut(`Power cut in ${this.#layer.cut}`);
    }
    await this.#inner.sync();
    this.synced = this.#inner.size;
  }

  async truncate(size: number): Promise<void> {
    if (this.#layer.step(`truncate ${this.#name}`)) {
      if (this.#layer.random.chance(0.5)) {
        await this.#inner.truncate(size);
        this.synced = size;
        this.#layer.cut += " (done)";
      }
      throw new PowerCut(`Power cut in ${this.#layer.cut}`);
    }
    await this.#inner.truncate(size);
    this.synced = size;
  }

  close(): void {
    this.#inner.close();
  }
}

/** How much of an append reaches the file before the power goes. */
function tornLength(bytes: Uint8Array, random: Random): number {
  if (bytes.length === 0 || random.chance(0.4)) return 0;
  if (random.chance(0.3)) {
    // Just before a newline: the last line is whole JSON without its end.
    const newlines: number[] = [];
    for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) newlines.push(i);
    if (newlines.length > 0) return random.pick(newlines);
  }
  return random.int(bytes.length);
}

/** Operations a create with `options` does from the current state (run on a copy). */
async function countOperations(
  src: string,
  container: string,
  folder: string,
  options: CreateOptions,
): Promise<number> {
  await Deno.mkdir(folder, { recursive: true });
  const copy = `${folder}/c.ctnr`;
  for (const suffix of ["", ".idx"]) {
    if (await exists(container + suffix)) await Deno.copyFile(container + suffix, copy + suffix);
  }
  const layer = new PowerCutLayer(Infinity, new Random(1));
  try {
    await createContainer(src, copy, { ...options, fileLayer: layer });
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
  return layer.operations;
}

/** Cut the container and its index at random offsets, often at the nastiest ones. */
async function cutAtRandom(container: string, random: Random): Promise<string> {
  const index = await Deno.readFile(`${container}.idx`);
  const newlines: number[] = [];
  for (let i = index.indexOf(0x0a); i >= 0; i = index.indexOf(0x0a, i + 1)) newlines.push(i);
  const [indexHow, indexAt] = random.weighted<[string, () => number]>([
    [4, ["anywhere", () => random.int(index.length + 1)]],
    [2, ["just before a newline", () => newlines.length ? random.pick(newlines) : 0]],
    [2, ["just after a newline", () => newlines.length ? random.pick(newlines) + 1 : 0]],
    [1, ["not at all", () => index.length]],
    [1, ["to nothing", () => 0]],
  ]);
  const indexCut = [indexHow, indexAt()] as const;
  const bytes = await Deno.readFile(container);
  let trailer: TrailerLocation | null = null;
  try {
    trailer = await findTrailer(memorySource(bytes));
  } catch { /* a torn trailer */ }
  const ends = parseIndex(index).list.map((e) => e.offset + e.payloadSize);
  const [containerHow, containerAt] = random.weighted<[string, () => number]>([
    [4, ["anywhere", () => random.int(bytes.length + 1)]],
    [2, ["at a payload end", () => ends.length ? random.pick(ends) : 0]],
    [1, ["not at all", () => bytes.length]],
    [2, [
      "inside the trailer",
      () =>
        trailer
          ? trailer.trailerOffset + random.int(bytes.length - trailer.trailerOffset)
          : random.int(bytes.length + 1),
    ]],
  ]);
  const containerCut = [containerHow, containerAt()] as const;
  await Deno.truncate(`${container}.idx`, indexCut[1]);
  await Deno.truncate(container, containerCut[1]);
  return `index cut ${indexCut[0]} (byte ${indexCut[1]} of ${index.length}), ` +
    `container cut ${containerCut[0]} (byte ${containerCut[1]} of ${bytes.length})`;
}

function randomOptions(random: Random, compress: boolean): CreateOptions {
  const fsyncEvery = random.range(1, 20);
  const finalize = random.chance(0.4);
  return {
    compress,
    fsyncEvery,
    indexBatch: random.range(fsyncEvery, 20),
    chunkSize: random.pick([64 << 10, 1 << 20]),
    finalize,
    removeIndexOnFinalize: finalize && random.chance(0.2),
  };
}

function describeOptions(options: CreateOptions): string {
  return `fsyncEvery ${options.fsyncEvery}, indexBatch ${options.indexBatch}, ` +
    `chunkSize ${options.chunkSize}, compress ${options.compress}` +
    (options.finalize ? ", finalize" : "") +
    (options.removeIndexOnFinalize ? ", removeIndexOnFinalize" : "");
}

// ---------------------------------------------------------------------------
// Checks

/**
 * Problems with the container's layout: its index (the `.idx`, else the
 * trailer) must parse strictly, name each relpath once, and end where the
 * payloads end; with a trailer, exactly one trailer stands right after the
 * payloads and embeds the same index; without, nothing follows them.
 */
async function checkLayout(container: string, expectTrailer: boolean): Promise<string[]> {
  const problems: string[] = [];
  const bytes = await Deno.readFile(container);
  const indexFile = await exists(`${container}.idx`)
    ? await Deno.readFile(`${container}.idx`)
    : undefined;
  let trailer: TrailerLocation | null = null;
  try {
    trailer = await findTrailer(memorySource(bytes));
  } catch (error) {
    problems.push(`bad trailer: ${describeError(error)}`);
  }
  const embedded = trailer
    ? bytes.subarray(trailer.indexOffset, trailer.indexOffset + trailer.indexLength)
    : undefined;
  const index = indexFile ?? embedded;
  if (index === undefined) return [...problems, "neither an index file nor a trailer"];
  const relpaths = new Set<string>();
  let end = 0;
  try {
    for await (const { entry } of new IndexReader(memorySource(index)).records()) {
      if (relpaths.has(entry.relpath)) problems.push(`duplicate relpath "${entry.relpath}"`);
      relpaths.add(entry.relpath);
      end = Math.max(end, entry.offset + entry.payloadSize);
    }
  } catch (error) {
    return [...problems, `bad index: ${describeError(error)}`];
  }
  const magics = occurrences(bytes, TRAILER_MAGIC);
  if (expectTrailer) {
    if (trailer === null) problems.push("no trailer");
    else if (trailer.trailerOffset !== end) {
      problems.push(`the trailer starts at byte ${trailer.trailerOffset}, payloads end at ${end}`);
    }
    if (indexFile && embedded && !equalBytes(indexFile, embedded)) {
      problems.push("the embedded index differs from the index file");
    }
    if (magics !== 1) problems.push(`${magics} trailer headers in the container, expected 1`);
  } else if (bytes.length !== end) {
    problems.push(`the container has ${bytes.length} bytes, its payloads end at byte ${end}`);
  }
  return problems;
}

/** Problems found reading every entry (each stream verifies its SHA-256) and extracting. */
async function checkEntries(container: string, src: string, out: string): Promise<string[]> {
  const problems: string[] = [];
  let reader: ContainerReader;
  try {
    reader = await ContainerReader.open(container);
  } catch (error) {
    return [`cannot open: ${describeError(error)}`];
  }
  try {
    for await (const entry of reader.entries()) {
      if (entry.entryType !== "file") continue;
      try {
        for await (const _ of reader.open(entry)) { /* the stream checks the SHA-256 at its end */ }
      } catch (error) {
        problems.push(`entry "${entry.relpath}": ${describeError(error)}`);
      }
    }
  } catch (error) {
    problems.push(`bad index: ${describeError(error)}`);
  } finally {
    reader.close();
  }
  try {
    await extractContainer(container, out);
    problems.push(...(await diffTrees(src, out)).map((d) => `extracted tree: ${d}`));
  } catch (error) {
    problems.push(`extract: ${describeError(error)}`);
  }
  await Deno.remove(out, { recursive: true }).catch(() => {});
  return problems;
}

/** Where a SIGKILL landed, judged from what it left. */
async function killPhase(
  container: string,
  before: { container: number; index: number },
): Promise<string> {
  const size = await sizeOf(container);
  const indexBytes = await readOrEmpty(`${container}.idx`);
  if (size === before.container && indexBytes.length === before.index) {
    return "start, scan or walk (nothing changed)";
  }
  if (indexBytes.length === 0) return size > 0 ? "first batch (nothing indexed)" : "start";
  const index = parseIndex(indexBytes);
  const end = payloadEnd(index.list);
  if (index.torn) return "index append (torn line)";
  if (size < end) return "resume cut (container shorter than its index)";
  if (size === end) {
    return before.container > end ? "after the old trailer was cut away" : "between batches";
  }
  const head = await readRange(container, end, TRAILER_HEADER_SIZE);
  if (!equalBytes(head.subarray(0, 8), TRAILER_MAGIC)) return "payload writes (unindexed bytes)";
  const length = Number(new DataView(head.buffer, head.byteOffset).getBigUint64(8, true));
  return size === end + TRAILER_HEADER_SIZE + length + FOOTER_SIZE
    ? "finalize (whole trailer written)"
    : "finalize (trailer written in part)";
}

// ---------------------------------------------------------------------------
// Helpers

interface ProcessRun {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
}

interface Stop {
  signal: Deno.Signal;
  /** Milliseconds to wait after the start, or after `when` holds. */
  afterMs: number;
  /** Wait until this holds (polled) before counting `afterMs`. */
  when?: () => Promise<boolean>;
}

/** Run the CLI as a subprocess, optionally sending it a signal. */
async function runProcess(args: string[], stop?: Stop): Promise<ProcessRun> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: PROJECT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const output = child.output().finally(() => {
    exited = true;
  });
  if (stop) {
    if (stop.when) { while (!exited && !(await stop.when())) await sleep(1, output); }
    await sleep(stop.afterMs, output);
    if (!exited) {
      try {
        child.kill(stop.signal);
      } catch { /* it has just ended */ }
    }
  }
  const result = await output;
  const decoder = new TextDecoder();
  return {
    code: result.code,
    signal: result.signal,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
    ms: performance.now() - started,
  };
}

/** Wait `ms` milliseconds, or less when `until` settles first. */
function sleep(ms: number, until: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    until.finally(() => {
      clearTimeout(timer);
      resolve();
    }).catch(() => {});
  });
}

interface TreeShape {
  /** Small files (0 to 1500 bytes, every 17th empty) in nested folders. */
  smallFiles: number;
  /** Sizes in bytes of big random files; the first is the first entry in walk order. */
  bigSizes: number[];
  /** Folder under the root to build in. */
  folder?: string;
}

/** Build a tree with small and empty files, big files, an empty folder and a symlink. */
function buildTree(root: string, random: Random, shape: TreeShape): void {
  const base = shape.folder ? `${root}/${shape.folder}` : root;
  for (let i = 0; i < shape.smallFiles; i++) {
    const path = `${base}/${smallPath(i)}`;
    Deno.mkdirSync(dirname(path), { recursive: true });
    Deno.writeFileSync(path, random.text(i % 17 === 0 ? 0 : random.int(1500)));
  }
  shape.bigSizes.forEach((size, k) => {
    const folder = k === 0 ? `${base}/a-first` : `${base}/d${(k * 4) % 9}`;
    Deno.mkdirSync(folder, { recursive: true });
    Deno.writeFileSync(`${folder}/blob${k}.bin`, random.bytes(size));
  });
  Deno.mkdirSync(`${base}/d4/empty-folder`, { recursive: true });
  Deno.mkdirSync(`${base}/links`, { recursive: true });
  Deno.symlinkSync(`../${smallPath(0)}`, `${base}/links/to-first`);
}

function smallPath(i: number): string {
  return `d${i % 9}/e${(i * 7) % 5}${i % 3 === 0 ? `/f${i % 4}` : ""}/n${i}.txt`;
}

function smallSpec() {
  return {
    "a.txt": "alpha",
    "empty.bin": "",
    "data/noise.bin": new Random(SEED + 5).bytes(300_000),
    "deep/x/y/leaf.txt": "leaf",
    "hollow": { dir: true },
    "link": { symlink: "a.txt" },
  } as const;
}

/** Run `fn` with a fresh temp folder on /dev/shm when there is one, removed afterwards. */
async function withScratchDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  let base: string | undefined;
  try {
    if ((await Deno.stat("/dev/shm")).isDirectory) base = "/dev/shm";
  } catch { /* no /dev/shm: the default temp folder */ }
  const dir = await Deno.makeTempDir(
    base ? { dir: base, prefix: "ctnr-crash-" } : {
      prefix: "ctnr-crash-",
    },
  );
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

interface IndexedRange {
  relpath: string;
  entryType: string;
  offset: number;
  payloadSize: number;
  sha256: string;
}

interface ParsedIndex {
  /** Entries of the whole lines, and of a last line without newline that is whole JSON. */
  list: IndexedRange[];
  /** Whether bytes follow the last newline. */
  torn: boolean;
  /** Line numbers (1-based) of whole lines that are not JSON. */
  bad: number[];
}

/** Parse an NDJSON index as a crash may leave it (a torn last line, or worse). */
function parseIndex(bytes: Uint8Array): ParsedIndex {
  const lines = new TextDecoder().decode(bytes).split("\n");
  const tail = lines.pop() ?? "";
  const list: IndexedRange[] = [];
  const take = (line: string): boolean => {
    let wire: Record<string, unknown>;
    try {
      wire = JSON.parse(line);
    } catch {
      return false;
    }
    // Folders and links may leave out offset and payload_size.
    list.push({
      relpath: String(wire.relpath),
      entryType: String(wire.entry_type ?? "file"),
      offset: Number(wire.offset ?? 0),
      payloadSize: Number(wire.payload_size ?? 0),
      sha256: String(wire.sha256 ?? ""),
    });
    return true;
  };
  const bad: number[] = [];
  lines.forEach((line, i) => {
    if (line.trim() !== "" && !take(line)) bad.push(i + 1);
  });
  const torn = tail.trim() !== "";
  if (torn) take(tail);
  return { list, torn, bad };
}

/**
 * Problems with what a crash left behind, before any resume repairs it:
 * every entry of the index (a whole last line without its newline counts)
 * must find its payload, whole and verifying, in the container.
 */
async function checkCommitted(container: string): Promise<string[]> {
  if (!(await exists(`${container}.idx`))) return [];
  const index = parseIndex(await Deno.readFile(`${container}.idx`));
  const bytes = await readOrEmpty(container);
  const problems = index.bad.map((line) => `index line ${line} is not JSON`);
  for (const entry of index.list) {
    if (problems.length >= 3) break;
    if (entry.entryType !== "file") continue;
    const end = entry.offset + entry.payloadSize;
    if (end > bytes.length) {
      problems.push(
        `"${entry.relpath}" is indexed, but its payload (bytes ${entry.offset} to ${end}) ` +
          `is not in the ${bytes.length}-byte container`,
      );
    } else if (sha256Hex(bytes.subarray(entry.offset, end)) !== entry.sha256) {
      problems.push(`"${entry.relpath}" is indexed, but its payload does not verify`);
    }
  }
  return problems;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function payloadEnd(entries: { offset: number; payloadSize: number }[]): number {
  return entries.reduce((end, e) => Math.max(end, e.offset + e.payloadSize), 0);
}

async function readEntries(container: string): Promise<IndexEntry[]> {
  const reader = await ContainerReader.open(container);
  try {
    const entries: IndexEntry[] = [];
    for await (const entry of reader.entries()) entries.push(entry);
    return entries;
  } finally {
    reader.close();
  }
}

function parseKv(text: string): Map<string, string> {
  return new Map(
    text.split("\n").filter((line) => line.includes("=")).map((line) => {
      const at = line.indexOf("=");
      return [line.slice(0, at), line.slice(at + 1)] as const;
    }),
  );
}

async function readRange(path: string, position: number, length: number): Promise<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  try {
    await file.seek(position, Deno.SeekMode.Start);
    const bytes = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const n = await file.read(bytes.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return bytes.subarray(0, filled);
  } finally {
    file.close();
  }
}

function occurrences(bytes: Uint8Array, pattern: Uint8Array): number {
  let count = 0;
  for (let i = bytes.indexOf(pattern[0]!); i >= 0; i = bytes.indexOf(pattern[0]!, i + 1)) {
    if (equalBytes(bytes.subarray(i, i + pattern.length), pattern)) count++;
  }
  return count;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function readOrEmpty(path: string): Promise<Uint8Array> {
  return await exists(path) ? await Deno.readFile(path) : new Uint8Array();
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function seedFromEnv(): number {
  const text = Deno.env.get("CTNR_CRASH_SEED");
  if (text !== undefined && /^\d+$/.test(text)) return Number(text) >>> 0;
  return Math.floor(Math.random() * 0x1_0000_0000);
}

/** A seeded pseudo-random generator (mulberry32), so a failing run can be replayed. */
class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [low, high]. */
  range(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** One of `choices`, each as likely as its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let left = this.next() * choices.reduce((sum, [weight]) => sum + weight, 0);
    for (const [weight, choice] of choices) {
      left -= weight;
      if (left < 0) return choice;
    }
    return choices[choices.length - 1]![1];
  }

  /** Printable ASCII text of `length` bytes. */
  text(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = 32 + this.int(95);
    return bytes;
  }

  /** Random bytes (incompressible). */
  bytes(length: number): Uint8Array {
    const words = new Uint32Array(Math.ceil(length / 4));
    for (let i = 0; i < words.length; i++) words[i] = this.next() * 0x1_0000_0000;
    return new Uint8Array(words.buffer, 0, length);
  }
}
