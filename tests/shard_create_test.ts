/**
 * The create side of shard sets (issue 16): `createShards` and `create --shard-size`,
 * `--shard-entries`, `--part K/N --split`, and `ctnr manifest merge`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ContainerReader, createContainer, createShards, type ShardOptions } from "../mod.ts";
import {
  compareRelpaths,
  type Manifest,
  parseManifest,
  partOf,
  partOfRelpath,
} from "../lib/shard/manifest.ts";
import {
  DENO_CHILD_TIMEOUT_MS,
  exists,
  pseudoRandomBytes,
  runCli,
  runCommand,
  type TreeSpec,
  withEnv,
  withTempDir,
  writeTree,
} from "./_helpers.ts";
import { runMerge } from "./_shards.ts";
import { originalExtract } from "./_original_reader.ts";

/** 60 files of 0 to ~5 KiB in a few folders, one file of 20 KiB, an empty folder, a link. */
function tree(): TreeSpec {
  const spec: TreeSpec = {};
  for (let i = 0; i < 60; i++) {
    spec[`d${i % 4}/sub${i % 3}/f${i}.bin`] = pseudoRandomBytes((i * 97) % 5000, i);
  }
  spec["big.bin"] = pseudoRandomBytes(20_000, 99);
  spec["top.txt"] = "top\n";
  spec["empty"] = { dir: true };
  spec["link"] = { symlink: "top.txt" };
  return spec;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function readManifest(path: string): Promise<Manifest> {
  return parseManifest(await Deno.readTextFile(path), path);
}

/** The relpaths of a container, in index order. */
async function relpathsOf(path: string): Promise<string[]> {
  const reader = await ContainerReader.open(path);
  try {
    const out: string[] = [];
    for await (const entry of reader.entries()) out.push(entry.relpath);
    return out;
  } finally {
    reader.close();
  }
}

/** The relpaths one container of `src` holds: what a shard set must hold in all. */
async function wholeRelpaths(src: string, dir: string): Promise<string[]> {
  await createContainer(src, `${dir}/whole.ctnr`, { finalize: true, removeIndexOnFinalize: true });
  return await relpathsOf(`${dir}/whole.ctnr`);
}

/** Every file of a folder by name, with its bytes. */
async function filesOf(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const item of Deno.readDir(dir)) {
    if (item.isFile) out.set(item.name, await Deno.readFile(`${dir}/${item.name}`));
  }
  return out;
}

/** Check every shard of a manifest against the file: sizes, SHA-256s, entries, first/last. */
async function checkShards(manifestPath: string, manifest: Manifest): Promise<string[][]> {
  const folder = manifestPath.slice(0, manifestPath.lastIndexOf("/"));
  const all: string[][] = [];
  for (const shard of manifest.shards) {
    const path = `${folder}/${shard.path}`;
    const bytes = await Deno.readFile(path);
    assert.equal(shard.size, bytes.length, shard.path);
    assert.equal(shard.sha256, sha256(bytes), shard.path);
    const index = bytes.subarray(shard.indexOffset, shard.indexOffset + shard.indexLength);
    assert.equal(shard.indexSha256, sha256(index), shard.path);
    assert.equal(await exists(`${path}.idx`), false, "no index file is left beside a shard");
    const relpaths = await relpathsOf(path); // readable alone, from its trailer
    assert.equal(relpaths.length, shard.entries, shard.path);
    assert.ok(shard.entries >= 1, "a shard holds at least one entry");
    assert.equal(shard.first, relpaths[0]);
    assert.equal(shard.last, relpaths.at(-1));
    all.push(relpaths);
  }
  return all;
}

Deno.test("createShards --shard-size: shards within the size, each readable alone and by the original extractor's rules, manifest fields and SHA-256s right, all entries once in walk order", async () => {
  await withTempDir(async (dir) => {
    const spec = tree();
    delete spec["link"]; // the original extractor reads regular files only
    delete spec["empty"];
    await writeTree(`${dir}/src`, spec);
    const result = await createShards(`${dir}/src`, `${dir}/out/data.ctnr`, { shardSize: 8192 });
    assert.equal(result.manifestPath, `${dir}/out/data.manifest.json`);
    assert.equal(await exists(`${dir}/out/data.ctnr`), false, "data.ctnr itself is not written");
    const manifest = await readManifest(result.manifestPath);
    assert.deepEqual(manifest, result.manifest);
    assert.deepEqual(manifest.split, { method: "none", parts: 1 });
    assert.ok(manifest.shards.length >= 5, `${manifest.shards.length} shards`);
    manifest.shards.forEach((shard, n) =>
      assert.equal(shard.path, `data-${String(n).padStart(5, "0")}.ctnr`)
    );
    const relpaths = await checkShards(result.manifestPath, manifest);
    for (const shard of manifest.shards) {
      // The payloads end where the trailer starts: at most --shard-size, unless one entry.
      const trailer = await ContainerReader.open(`${dir}/out/${shard.path}`);
      const end = trailer.payloadAreaEnd;
      trailer.close();
      if (shard.entries > 1) assert.ok(end <= 8192, `${shard.path}: payloads end at ${end}`);
      else if (shard.first === "big.bin") assert.ok(end > 8192);
    }
    assert.equal(
      manifest.shards.find((shard) => shard.first === "big.bin")?.entries,
      1,
      "a file larger than --shard-size is a shard of its own",
    );
    const flat = relpaths.flat();
    assert.deepEqual(flat, await wholeRelpaths(`${dir}/src`, dir));
    for (let i = 1; i < flat.length; i++) assert.ok(compareRelpaths(flat[i - 1]!, flat[i]!) < 0);
    assert.equal(manifest.entries, flat.length);
    let orig = 0;
    for (const [relpath, content] of Object.entries(spec)) {
      if (content instanceof Uint8Array) orig += content.length;
      else if (typeof content === "string") orig += content.length;
      else continue;
      void relpath;
    }
    assert.equal(manifest.origBytes, orig);
    const extracted = new Map<string, Uint8Array>();
    for (const shard of manifest.shards) {
      for (
        const [relpath, bytes] of originalExtract(await Deno.readFile(`${dir}/out/${shard.path}`))
      ) {
        extracted.set(relpath, bytes);
      }
    }
    assert.equal(extracted.size, Object.keys(spec).length);
    assert.deepEqual(extracted.get("big.bin"), spec["big.bin"]);
  });
});

Deno.test("createShards --shard-entries: every shard but the last holds N entries; with --shard-size too, the first limit met closes it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, tree());
    const result = await createShards(`${dir}/src`, `${dir}/a/data.ctnr`, { shardEntries: 7 });
    const counts = result.manifest.shards.map((shard) => shard.entries);
    const total = (await wholeRelpaths(`${dir}/src`, dir)).length;
    assert.equal(counts.reduce((a, b) => a + b, 0), total);
    assert.deepEqual(counts.slice(0, -1), counts.slice(0, -1).map(() => 7));
    assert.ok(counts.at(-1)! >= 1 && counts.at(-1)! <= 7);
    await checkShards(result.manifestPath, result.manifest);
    const both = await createShards(`${dir}/src`, `${dir}/b/data.ctnr`, {
      shardEntries: 7,
      shardSize: 8192,
    });
    assert.ok(both.manifest.shards.length > result.manifest.shards.length);
    assert.ok(both.manifest.shards.every((shard) => shard.entries <= 7));
  });
});

Deno.test("createShards is deterministic: two runs of one source give the same bytes, manifest included", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, tree());
    const options: ShardOptions = { shardSize: 6000, compress: true };
    await createShards(`${dir}/src`, `${dir}/a/data.ctnr`, options);
    await createShards(`${dir}/src`, `${dir}/b/data.ctnr`, options);
    const a = await filesOf(`${dir}/a`);
    assert.ok(a.size > 3);
    assert.deepEqual(await filesOf(`${dir}/b`), a);
  });
});

Deno.test("createShards after a SIGKILL mid-run, run again: the same bytes as a run never stopped", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, tree());
    const options: ShardOptions = { shardSize: 8192, fsyncEvery: 2, indexBatch: 2 };
    await createShards(`${dir}/src`, `${dir}/whole/data.ctnr`, options);
    const expected = await filesOf(`${dir}/whole`);
    const child = new URL("./_shard_child.ts", import.meta.url).pathname;
    const shardsLeft = new Set<number>(); // shard files a kill left, over the kill points
    // Kill points: inside the first shard, at a shard's end, deep into the run.
    for (const killAfter of [3, 9, 24, 50]) {
      const out = `${dir}/k${killAfter}`;
      const run = await runCommand(Deno.execPath(), [
        "run",
        "--allow-all",
        child,
        JSON.stringify({ src: `${dir}/src`, container: `${out}/data.ctnr`, options, killAfter }),
      ], { timeoutMs: DENO_CHILD_TIMEOUT_MS });
      assert.equal(run.signal, "SIGKILL", run.stderr);
      assert.equal(await exists(`${out}/data.manifest.json`), false, "no manifest before the end");
      shardsLeft.add([...(await filesOf(out)).keys()].filter((n) => n.endsWith(".ctnr")).length);
      const result = await createShards(`${dir}/src`, `${out}/data.ctnr`, options);
      assert.equal(result.resumed, true);
      const got = await filesOf(out);
      assert.deepEqual(
        [...got.keys()].sort(),
        [...expected.keys()].sort(),
        `kill after ${killAfter}`,
      );
      for (const [name, bytes] of expected) {
        assert.deepEqual(got.get(name), bytes, `${name}, kill after ${killAfter}`);
      }
    }
    assert.ok(shardsLeft.size >= 3, `kills left ${[...shardsLeft]} shard files`);
    // A finished set run again: nothing changes, no shard is added.
    await createShards(`${dir}/src`, `${dir}/whole/data.ctnr`, options);
    assert.deepEqual(await filesOf(`${dir}/whole`), expected);
  });
});

Deno.test("createShards resume refuses finalized shards whose last entry the source no longer holds; fresh starts the set anew", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, tree());
    const first = await createShards(`${dir}/src`, `${dir}/out/data.ctnr`, { shardEntries: 10 });
    await Deno.remove(`${dir}/out/data.manifest.json`);
    await Deno.remove(`${dir}/src/${first.manifest.shards[0]!.last}`);
    await assert.rejects(
      () => createShards(`${dir}/src`, `${dir}/out/data.ctnr`, { shardEntries: 10 }),
      (error: Error) =>
        error.name === "ConflictError" && error.message.includes(first.manifest.shards[0]!.last),
    );
    // `fresh` (--new) removes the set and packs the source anew: as a first run would.
    await createShards(`${dir}/src`, `${dir}/out/data.ctnr`, { shardEntries: 10, fresh: true });
    await createShards(`${dir}/src`, `${dir}/clean/data.ctnr`, { shardEntries: 10 });
    assert.deepEqual(await filesOf(`${dir}/out`), await filesOf(`${dir}/clean`));
  });
});

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function hasParallel(): Promise<boolean> {
  try {
    const run = await runCommand("parallel", ["--version"], { timeoutMs: 10_000 });
    return run.code === 0;
  } catch {
    return false;
  }
}

for (const split of ["hash", "subtree"] as const) {
  Deno.test({
    name:
      `create --part K/3 --split ${split} as 3 processes under GNU parallel, then manifest merge: the parts' entries are the tree's, each once`,
    ignore: !await hasParallel(),
    fn: async () => {
      await withTempDir(async (dir) => {
        await writeTree(`${dir}/src`, tree());
        const run = await runCommand("parallel", [
          "--halt",
          "now,fail=1",
          "-j3",
          Deno.execPath(),
          "run",
          "--allow-all",
          CLI,
          "create",
          "-q",
          "--src",
          `${dir}/src`,
          "--container",
          `${dir}/out/data.ctnr`,
          "--shard-entries",
          "6",
          "--split",
          split,
          "--part",
          "{}/3",
          ":::",
          "0",
          "1",
          "2",
        ], { timeoutMs: 3 * DENO_CHILD_TIMEOUT_MS });
        assert.equal(run.code, 0, run.stderr);
        const parts = [0, 1, 2].map((k) => `${dir}/out/data.part-${k}-of-3.manifest.json`);
        const seen = new Map<string, number>();
        for (const [k, path] of parts.entries()) {
          const manifest = await readManifest(path);
          assert.deepEqual(manifest.split, { method: split, parts: 3 });
          assert.deepEqual(manifest.parts, [k]);
          const relpaths = (await checkShards(path, manifest)).flat();
          for (const relpath of relpaths) {
            assert.equal(partOfRelpath(relpath, manifest.split), k, relpath);
            assert.equal(seen.has(relpath), false, `${relpath} in two parts`);
            seen.set(relpath, k);
          }
          for (const shard of manifest.shards) {
            assert.match(shard.path, new RegExp(`^data-p${k}-of-3-\\d{5}\\.ctnr$`));
          }
        }
        const whole = await wholeRelpaths(`${dir}/src`, dir);
        assert.deepEqual([...seen.keys()].sort(compareRelpaths), whole);
        const merged = await runMerge(`${dir}/out/data.manifest.json`, ...parts);
        assert.equal(merged.code, 0, merged.stderr);
        const manifest = await readManifest(`${dir}/out/data.manifest.json`);
        assert.deepEqual(manifest.parts, [0, 1, 2]);
        assert.equal(manifest.entries, whole.length);
        const all = (await checkShards(`${dir}/out/data.manifest.json`, manifest)).flat();
        assert.deepEqual(all.sort(compareRelpaths), whole);
      });
    },
  });
}

Deno.test("create --part --split subtree never enters the other parts' top-level folders", async () => {
  await withTempDir(async (dir) => {
    const spec = tree();
    // An excluded name in each top-level folder: the walk counts those it meets.
    for (let i = 0; i < 4; i++) spec[`d${i}/x.skip`] = "x";
    await writeTree(`${dir}/src`, spec);
    for (let k = 0; k < 2; k++) {
      // A trailing slash: the folders left out are still found.
      const result = await createShards(`${dir}/src/`, `${dir}/out/data.ctnr`, {
        part: { index: k, count: 2 },
        split: "subtree",
        exclude: ["*.skip"],
      });
      const mine = [0, 1, 2, 3].filter((i) => partOf(`d${i}`, 2) === k).length;
      assert.equal(result.excluded, mine, "only this part's folders are entered");
      const manifest = result.manifest;
      assert.equal(manifest.shards.length, 1, "without a limit a part is one shard");
      for (const relpath of await relpathsOf(`${dir}/out/${manifest.shards[0]!.path}`)) {
        assert.equal(partOf(relpath.split("/")[0]!, 2), k, relpath);
      }
    }
  });
});

Deno.test("create --part N takes K from JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX; none set: exit 2 naming them", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a", "b.txt": "b", "c/d.txt": "d" });
    for (
      const [name, k] of [
        ["JOB_COMPLETION_INDEX", "1"],
        ["SLURM_ARRAY_TASK_ID", "2"],
        ["AWS_BATCH_JOB_ARRAY_INDEX", "0"],
      ] as const
    ) {
      const run = await runCommand(Deno.execPath(), [
        "run",
        "--allow-all",
        CLI,
        "create",
        "-q",
        `${dir}/src`,
        `${dir}/${name}/data.ctnr`,
        "--part",
        "3",
      ], { timeoutMs: DENO_CHILD_TIMEOUT_MS, env: { [name]: k } });
      assert.equal(run.code, 0, run.stderr);
      assert.ok(await exists(`${dir}/${name}/data.part-${k}-of-3.manifest.json`), name);
      assert.ok(await exists(`${dir}/${name}/data-p${k}-of-3-00000.ctnr`), name);
    }
    const unset = {
      JOB_COMPLETION_INDEX: undefined,
      SLURM_ARRAY_TASK_ID: undefined,
      AWS_BATCH_JOB_ARRAY_INDEX: undefined,
    };
    await withEnv(unset, async () => {
      const run = await runCli("create", `${dir}/src`, `${dir}/none/data.ctnr`, "--part", "3");
      assert.equal(run.code, 2);
      assert.match(
        run.stderr,
        /JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX/,
      );
      assert.equal(await exists(`${dir}/none`), false);
    });
    for (const bad of ["3/3", "x", "1/0"]) {
      const run = await runCli("create", `${dir}/src`, `${dir}/bad/data.ctnr`, "--part", bad);
      assert.equal(run.code, 2, bad);
    }
    const index = await runCli(
      "create",
      `${dir}/src`,
      `${dir}/bad/data.ctnr`,
      "--shard-entries",
      "2",
      "--index",
      `${dir}/i.idx`,
    );
    assert.equal(index.code, 2);
    assert.match(index.stderr, /--index does not work with --shard-size/);
  });
});

/**
 * Part `k` of `n` (hash split) made from `src`, named `name`; with `claim`, a set made whole
 * from `src` whose manifest is rewritten to say it is part `claim` of `n` (a part made from a
 * source that changed, or another source).
 */
async function part(
  dir: string,
  src: string,
  name: string,
  k: number,
  n: number,
  options: { claim?: boolean; split?: "hash" | "subtree" } = {},
): Promise<string> {
  if (!options.claim) {
    const result = await createShards(src, `${dir}/out/${name}.ctnr`, {
      part: { index: k, count: n },
      split: options.split ?? "hash",
    });
    return result.manifestPath;
  }
  const result = await createShards(src, `${dir}/out/${name}.ctnr`, {});
  const raw = JSON.parse(await Deno.readTextFile(result.manifestPath));
  raw.split = { method: "hash", parts: n };
  raw.parts = [k];
  for (const shard of raw.shards) shard.part = k;
  const path = `${dir}/out/${name}.part-${k}-of-${n}.manifest.json`;
  await Deno.writeTextFile(path, JSON.stringify(raw));
  return path;
}

Deno.test("manifest merge refuses, exit 1 in one line naming both manifests: a missing part, a repeated part, other N, other split", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, tree());
    const p0 = await part(dir, `${dir}/src`, "data", 0, 2);
    const p1 = await part(dir, `${dir}/src`, "data", 1, 2);
    const p1of3 = await part(dir, `${dir}/src`, "three", 1, 3);
    const sub1 = await part(dir, `${dir}/src`, "sub", 1, 2, { split: "subtree" });
    const out = `${dir}/out/merged.manifest.json`;
    const cases: [string[], RegExp, string[]][] = [
      [[p0], /part 1 of 2 is missing/, [p0]],
      [[p0, p1, p1], /both hold part 1/, [p1]],
      [[p0, p1of3], /not parts of one set/, [p0, p1of3]],
      [[p0, sub1], /split hash, 2 parts.*split subtree, 2 parts/, [p0, sub1]],
    ];
    for (const [parts, message, named] of cases) {
      const run = await runMerge(out, ...parts);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      for (const name of named) assert.ok(run.stderr.includes(name), run.stderr);
      assert.equal(await exists(out), false, "nothing written");
    }
    const ok = await runMerge(out, p1, p0);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual((await readManifest(out)).parts, [0, 1]);
    const names = [...(await filesOf(`${dir}/out`)).keys()];
    assert.equal(names.filter((name) => name.includes("ctnr-tmp")).length, 0, "no temp file left");
  });
});

Deno.test("manifest merge refuses parts that are not one tree: the same relpath, names equal after NFC, a file where a folder is (both ways)", async () => {
  await withTempDir(async (dir) => {
    // Names placed so that the real part holds them: each case's other part claims the other.
    const composed = "caf\u00e9.txt";
    const decomposed = "cafe\u0301.txt";
    await writeTree(`${dir}/src`, {
      "same.txt": "a",
      [composed]: "b",
      "folder/x.txt": "c",
      "file": "d",
    });
    const cases: [TreeSpec, string, RegExp][] = [
      [{ "same.txt": "other" }, "same.txt", /the same relpath in two parts/],
      [{ [decomposed]: "other" }, composed, /names equal after NFC in two parts/],
      [{ "folder": "a file" }, "folder/x.txt", /a file where a folder is/],
      [{ "file/y.txt": "under" }, "file", /a file where a folder is/],
    ];
    for (const [i, [spec, real, message]] of cases.entries()) {
      const k = partOfRelpath(real, { method: "hash", parts: 2 });
      const mine = await part(dir, `${dir}/src`, `real${i}`, k, 2);
      await writeTree(`${dir}/other${i}`, spec);
      const theirs = await part(dir, `${dir}/other${i}`, `other${i}`, 1 - k, 2, { claim: true });
      const run = await runMerge(`${dir}/out/m${i}.manifest.json`, mine, theirs);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
      assert.ok(run.stderr.includes(mine) && run.stderr.includes(theirs), run.stderr);
      assert.ok(run.stderr.includes(real.normalize("NFC")) || run.stderr.includes(real));
    }
  });
});
