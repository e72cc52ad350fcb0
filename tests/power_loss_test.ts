/**
 * Power loss during `create`, through a swappable file layer
 * (tests/_power_cut.ts): cuts at random operations and at every operation of
 * small runs, each followed by a loss of what no fsync covered; containers
 * and indexes cut at random offsets; a committed payload that reads as
 * zeros. After each cut, every entry `create` reported committed must still
 * be indexed with a verifying payload; after the resume, the container must
 * verify, hold each relpath once, and extract to the source.
 *
 * Random choices come from one seed, printed by each test; rerun a failure
 * with `CTNR_CRASH_SEED=<seed> deno test -A tests/power_loss_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ContainerFormatError,
  ContainerReader,
  createContainer,
  type CreateOptions,
} from "../mod.ts";
import { withTempDir, writeTree } from "./_helpers.ts";
import {
  buildTree,
  checkCommitted,
  checkEntries,
  checkLayout,
  type Committed,
  cutAtRandom,
  describeError,
  describeOptions,
  lostCommitted,
  Random,
  randomOptions,
  readEntries,
  recordCommitted,
  SEED,
  sizeOf,
  smallSpec,
  withScratchDir,
} from "./_crash.ts";
import {
  countOperations,
  type LossMode,
  type NamesKept,
  PowerCut,
  PowerCutLayer,
} from "./_power_cut.ts";

Deno.test("createContainer survives power loss at 60 random moments", async () => {
  const seed = SEED + 1;
  console.log(`seed ${seed} (rerun with CTNR_CRASH_SEED=${SEED})`);
  const random = new Random(seed);
  await withScratchDir(async (dir) => {
    const problems: string[] = [];
    const kinds: Record<string, number> = {};
    const modes: Record<LossMode, number> = { power: 0, torn: 0, zeroed: 0, crash: 0 };
    // The kind of each cut, in random order but in fixed numbers, so every seed gives the
    // promised 30 power losses (half), 12 torn writes, 9 zeroed tails and 9 process crashes.
    const losses = random.shuffled<LossMode>([
      ...Array<LossMode>(30).fill("power"),
      ...Array<LossMode>(12).fill("torn"),
      ...Array<LossMode>(9).fill("zeroed"),
      ...Array<LossMode>(9).fill("crash"),
    ]);
    let cuts = 0;
    let scenario = 0;
    for (; cuts < 60 && scenario < 100; scenario++) {
      const work = `${dir}/s${scenario}`;
      const src = `${work}/src`;
      const container = `${work}/c.ctnr`;
      buildTree(src, random, { smallFiles: 300, bigSizes: [random.range(300_000, 1_500_000)] });
      const compress = random.chance(0.25);
      const history: string[] = [`compress ${compress}`];
      const report = (what: string) =>
        problems.push(`seed ${seed}, scenario ${scenario} (${history.join("; ")}): ${what}`);
      const committed: Committed = new Map();
      if (random.chance(0.35)) {
        // Start from a finalized container and add files: cuts land while its trailer goes.
        const removeIndex = random.chance(0.5);
        await createContainer(src, container, {
          compress,
          finalize: true,
          removeIndexOnFinalize: removeIndex,
          onEntry: recordCommitted(committed),
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
          await createContainer(src, container, {
            ...options,
            fileLayer: layer,
            onEntry: recordCommitted(committed),
          });
        } catch (error) {
          outcome = error;
        }
        const mode = losses[cuts % losses.length]!;
        if (!(outcome instanceof PowerCut)) {
          history.push(`${describeOptions(options)}: cut at operation ${cutAt} of ${total}`);
          report(`createContainer should fail with the power cut, but ${describeError(outcome)}`);
          failed = true;
          break;
        }
        const lost = await layer.losePower(mode);
        history.push(
          `${describeOptions(options)}: cut at operation ${cutAt} of ${total} (${layer.cut}), ` +
            lost,
        );
        cuts++;
        modes[mode]++;
        const kind = `${layer.cut?.split(" ")[0]} ${mode}`;
        kinds[kind] = (kinds[kind] ?? 0) + 1;
        const left = [
          ...await checkCommitted(container),
          ...await lostCommitted(container, committed),
        ];
        if (left.length > 0) report(`right after the loss: ${left.join("; ")}`);
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
        ...await lostCommitted(container, committed),
      ];
      if (found.length > 0) report(found.join("; "));
      else await Deno.remove(work, { recursive: true });
    }
    console.log(
      `losses: ${cuts} cuts in ${scenario} scenarios: ${JSON.stringify(modes)}; by cut operation ` +
        `and loss: ${JSON.stringify(kinds)}`,
    );
    assert.deepEqual(problems, [], `seed ${seed}`);
    assert.ok(cuts >= 60, `only ${cuts} cuts`);
    assert.ok(modes.power >= 20, `only ${modes.power} of the cuts were power losses`);
    assert.ok(modes.torn + modes.zeroed >= 10, `only ${modes.torn + modes.zeroed} torn or zeroed`);
  });
});

/** Starting states of the every-operation test: a tree, what is there before, the options. */
const EVERY_OPERATION: {
  name: string;
  before?: CreateOptions;
  options: CreateOptions;
}[] = [
  {
    name: "a new container, finalized",
    options: { fsyncEvery: 1, indexBatch: 2, finalize: true },
  },
  {
    name: "a new container, finalized and its index removed",
    options: { fsyncEvery: 2, indexBatch: 2, finalize: true, removeIndexOnFinalize: true },
  },
  {
    name: "files added to a finalized container whose index was removed",
    before: { finalize: true, removeIndexOnFinalize: true },
    options: { fsyncEvery: 1, indexBatch: 3, finalize: true, removeIndexOnFinalize: true },
  },
  {
    name: "gzip files added to a finalized container",
    before: { compress: true, finalize: true },
    options: { compress: true, fsyncEvery: 1, indexBatch: 1 },
  },
];

const LOSSES: [LossMode, NamesKept][] = [
  ["power", "none"],
  ["power", "all"],
  ["zeroed", "random"],
  ["torn", "random"],
];

Deno.test("createContainer keeps every committed entry through a power cut at every operation", async (t) => {
  const seed = SEED + 6;
  console.log(`seed ${seed} (rerun with CTNR_CRASH_SEED=${SEED})`);
  const random = new Random(seed);
  for (const start of EVERY_OPERATION) {
    await t.step(start.name, async () => {
      await withScratchDir(async (dir) => {
        const src = `${dir}/src`;
        const template = `${dir}/template/c.ctnr`;
        await writeTree(src, smallSpec());
        const before: Committed = new Map();
        await Deno.mkdir(`${dir}/template`);
        if (start.before) {
          await createContainer(src, template, {
            ...start.before,
            onEntry: recordCommitted(before),
          });
        }
        await writeTree(src, { "later/one.txt": "one", "later/two.bin": new Uint8Array(3000) });
        const total = await countOperations(src, template, `${dir}/count`, start.options);
        assert.ok(total > 10, `only ${total} operations`);
        console.log(`  ${total} operations, each cut ${LOSSES.length} ways`);
        const problems: string[] = [];
        let cuts = 0;
        for (let cutAt = 1; cutAt <= total; cutAt++) {
          for (const [mode, names] of LOSSES) {
            const work = `${dir}/w`;
            await Deno.mkdir(work);
            const container = `${work}/c.ctnr`;
            for (const suffix of ["", ".idx"]) {
              await Deno.copyFile(template + suffix, container + suffix).catch(() => {});
            }
            const committed: Committed = new Map(before);
            const layer = new PowerCutLayer(cutAt, random);
            const outcome = await createContainer(src, container, {
              ...start.options,
              fileLayer: layer,
              onEntry: recordCommitted(committed),
            }).then(() => "it resolved", (error) => error);
            const label = `seed ${seed}, cut at operation ${cutAt} of ${total}`;
            if (!(outcome instanceof PowerCut)) {
              problems.push(`${label}: expected the power cut, got ${describeError(outcome)}`);
              break;
            }
            cuts++;
            const lost = await layer.losePower(mode, names);
            const where = `${label} (${layer.cut}), ${lost}`;
            const left = [
              ...await checkCommitted(container),
              ...await lostCommitted(container, committed),
            ];
            if (left.length > 0) {
              problems.push(`${where}: right after the loss: ${left.join("; ")}`);
            }
            try {
              await createContainer(src, container, start.options);
              const found = [
                ...await checkLayout(container, start.options.finalize ?? false),
                ...await lostCommitted(container, committed),
                ...await unreadable(container),
              ];
              const entries = (await readEntries(container)).length;
              if (entries !== 8) found.push(`${entries} entries after the resume, expected 8`);
              if (found.length > 0) {
                problems.push(`${where}: after the resume: ${found.join("; ")}`);
              }
            } catch (error) {
              problems.push(`${where}: the resume failed: ${describeError(error)}`);
            }
            await Deno.remove(work, { recursive: true });
            if (problems.length >= 5) break;
          }
          if (problems.length >= 5) break;
        }
        assert.deepEqual(problems, []);
        assert.equal(cuts, total * LOSSES.length);
      });
    });
  }
});

/** Problems reading back each file entry (every stream checks its SHA-256 at its end). */
async function unreadable(container: string): Promise<string[]> {
  const reader = await ContainerReader.open(container);
  const problems: string[] = [];
  try {
    for await (const entry of reader.entries()) {
      if (entry.entryType !== "file") continue;
      try {
        for await (const _ of reader.open(entry)) { /* verified at its end */ }
      } catch (error) {
        problems.push(`"${entry.relpath}": ${describeError(error)}`);
      }
    }
  } finally {
    reader.close();
  }
  return problems;
}

Deno.test("createContainer re-hashes the last committed batch on resume and rewrites a payload that reads as zeros", async () => {
  // A disk that acknowledged an fsync it did not do, or a file system that exposes unwritten
  // blocks after a crash, can leave a committed payload as zeros of the right length.
  for (const [what, pick] of [["the last", -1], ["a middle", -3]] as const) {
    await withTempDir(async (dir) => {
      const src = `${dir}/src`;
      const c = `${dir}/c.ctnr`;
      const random = new Random(SEED + 7);
      const spec: Record<string, Uint8Array> = {};
      for (let i = 0; i < 12; i++) spec[`f${String(i).padStart(2, "0")}.bin`] = random.bytes(1000);
      await writeTree(src, spec);
      await createContainer(src, c, { fsyncEvery: 5, indexBatch: 5 });
      const entries = await readEntries(c);
      const zeroed = entries.at(pick)!;
      const file = await Deno.open(c, { write: true });
      try {
        await file.seek(zeroed.offset, Deno.SeekMode.Start);
        await file.write(new Uint8Array(zeroed.payloadSize));
      } finally {
        file.close();
      }
      const warnings: string[] = [];
      await createContainer(src, c, {
        fsyncEvery: 5,
        indexBatch: 5,
        onWarning: (m) => warnings.push(m.message),
      });
      assert.ok(
        warnings.some((w) => /Dropping index entries .* do not verify/.test(w)),
        `${what} payload: ${warnings.join("; ")}`,
      );
      assert.deepEqual(await checkLayout(c, false), [], what);
      assert.deepEqual(await checkEntries(c, src, `${dir}/out`), [], what);
      assert.equal((await readEntries(c)).length, 12, what);
    });
  }
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
    let refused = 0;
    for (let round = 0; round < 30; round++) {
      const cut = await cutAtRandom(container, random);
      // The index file stays: without it, a cut container may rightly be refused.
      const options = {
        ...randomOptions(random, random.chance(0.25)),
        removeIndexOnFinalize: false,
      };
      const label = `seed ${seed}, round ${round}: ${cut}, then ${describeOptions(options)}`;
      const sizes = async () => `${await sizeOf(container)} ${await sizeOf(`${container}.idx`)}`;
      const before = await sizes();
      try {
        try {
          await createContainer(src, container, options);
        } catch (error) {
          // An index cut beside a trailer still whole is a stale, shorter copy of the trailer's
          // index: resuming with it would cut off the trailer, so it is refused, changing
          // nothing. Moved away, the index is taken from the trailer.
          if (!(error instanceof ContainerFormatError && error.code === "INDEX_CONFLICT")) {
            throw error;
          }
          refused++;
          if (await sizes() !== before) problems.push(`${label}: the refused resume changed files`);
          await Deno.remove(`${container}.idx`);
          await createContainer(src, container, options);
        }
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
    console.log(`  ${refused} resumes refused an index cut beside a whole trailer, then resumed`);
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
    await cut.losePower("power", "all");
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

Deno.test("createContainer resumes when the container was cut inside an indexed payload", async () => {
  // A copy cut short, or a file system that lost a tail: the index names payloads that are not
  // all there. The resume drops the first entry whose payload is cut, and every entry after it.
  await withTempDir(async (dir) => {
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    const random = new Random(SEED + 8);
    const spec: Record<string, Uint8Array> = {};
    for (let i = 0; i < 6; i++) spec[`f${i}.bin`] = random.bytes(2000);
    await writeTree(src, spec);
    await createContainer(src, c, { fsyncEvery: 2, indexBatch: 2 });
    const entries = await readEntries(c);
    const cutInside = entries[3]!;
    await Deno.truncate(c, cutInside.offset + 100);
    const warnings: string[] = [];
    await createContainer(src, c, { onWarning: (m) => warnings.push(m.message) });
    assert.ok(warnings.some((w) => /Dropping index entries/.test(w)), warnings.join("; "));
    const after = await readEntries(c);
    assert.deepEqual(
      after.slice(0, 3),
      entries.slice(0, 3),
      "entries before the cut kept as they were",
    );
    assert.equal(after.length, 6);
    assert.deepEqual(await checkLayout(c, false), []);
    assert.deepEqual(await checkEntries(c, src, `${dir}/out`), []);
  });
});
