/**
 * The adversarial review of issue 16's shard sets: each finding fixed, its failing input as a
 * test (numbered as the review's findings).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createShards } from "../mod.ts";
import { parseManifest } from "../lib/shard/manifest.ts";
import {
  type CliRun,
  exists,
  runCli,
  type TreeSpec,
  withEnv,
  withTempDir,
  writeTree,
} from "./_helpers.ts";
import { runMerge } from "./_shards.ts";

/** A manifest's JSON, parsed, to edit: its fields as the format spells them. */
// deno-lint-ignore no-explicit-any
type Manifestish = Record<string, any>;

/** 40 small files in 4 folders, an empty folder. */
function tree(): TreeSpec {
  const spec: TreeSpec = {};
  for (let i = 0; i < 40; i++) spec[`d${i % 4}/f${i}.txt`] = `file ${i}\n`.repeat(i + 1);
  spec["empty"] = { dir: true };
  return spec;
}

/**
 * {@link tree} written to `dir/src` and packed by the CLI into shards of 10 entries:
 * `dir/out/NAME.ctnr` names the set (`dir/out/NAME.manifest.json`).
 *
 * @returns the set's `--container` path
 */
async function packedSet(dir: string, name: string): Promise<string> {
  await writeTree(`${dir}/src`, tree());
  const set = `${dir}/out/${name}.ctnr`;
  const run = await runCli("create", "-q", `${dir}/src`, set, "--shard-entries", "10");
  assert.equal(run.code, 0, run.stderr);
  return set;
}

/** The relpaths `ctnr list` prints of a container or manifest, sorted. */
async function listed(path: string): Promise<string[]> {
  const run = await runCli("list", path);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.split("\n").filter((line) => line !== "").sort();
}

Deno.test("review 1: parts of another N in the same folder are not taken as this run's shards; the merged set holds every entry", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, tree());
    const out = `${dir}/out/f.ctnr`;
    const one = await runCli("create", "-q", `${dir}/src`, `${dir}/one.ctnr`);
    assert.equal(one.code, 0, one.stderr);
    // An earlier attempt with 6 parts, then the 3 parts.
    assert.equal((await runCli("create", "-q", `${dir}/src`, out, "--part", "0/6")).code, 0);
    const parts: string[] = [];
    for (let k = 0; k < 3; k++) {
      const run = await runCli("create", "-q", `${dir}/src`, out, "--part", `${k}/3`);
      assert.equal(run.code, 0, run.stderr);
      parts.push(`${dir}/out/f.part-${k}-of-3.manifest.json`);
    }
    const merged = await runMerge(`${dir}/out/f.manifest.json`, ...parts);
    assert.equal(merged.code, 0, merged.stderr);
    assert.deepEqual(await listed(`${dir}/out/f.manifest.json`), await listed(`${dir}/one.ctnr`));
    const manifest = parseManifest(
      await Deno.readTextFile(`${dir}/out/f.part-0-of-3.manifest.json`),
      "part 0",
    );
    assert.equal(manifest.shards[0]!.path, "f-p0-of-3-00000.ctnr");
  });
});

Deno.test("review 1 and 3: a run over shards made with another --split, --shard-size or --shard-entries exits 1 naming the state file and the flag; --new starts anew", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, tree());
    const out = `${dir}/out/f.ctnr`;
    const state = `${dir}/out/f.part-0-of-2.shards.json`;
    let run = await runCli("create", "-q", `${dir}/src`, out, "--part", "0/2");
    assert.equal(run.code, 0, run.stderr);
    run = await runCli("create", "-q", `${dir}/src`, out, "--part", "0/2", "--split", "subtree");
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /--split hash, this run gives subtree/);
    assert.ok(run.stderr.includes(state), run.stderr);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);

    const set = `${dir}/set/b.ctnr`;
    run = await runCli("create", "-q", `${dir}/src`, set, "--shard-entries", "10");
    assert.equal(run.code, 0, run.stderr);
    const before = await Deno.readTextFile(`${dir}/set/b.manifest.json`);
    assert.equal(parseManifest(before, "b").shardEntries, 10);
    assert.equal(parseManifest(before, "b").shardSize, null);
    for (
      const [flags, pattern] of [
        [["--shard-entries", "5"], /--shard-entries 10, this run gives 5/],
        [["--shard-entries", "10", "--shard-size", "2K"], /--shard-size none, this run gives 2048/],
      ] as const
    ) {
      run = await runCli("create", "-q", `${dir}/src`, set, ...flags);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, pattern);
      assert.ok(run.stderr.includes(`${dir}/set/b.shards.json`), run.stderr);
    }
    assert.equal(await Deno.readTextFile(`${dir}/set/b.manifest.json`), before, "left as it was");
    // Shards without their state (made by an older ctnr, or the state removed): refused too.
    await Deno.remove(`${dir}/set/b.shards.json`);
    run = await runCli("create", "-q", `${dir}/src`, set, "--shard-entries", "10");
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /b-00000\.ctnr" is there but ".*b\.shards\.json", the record of the options .* is not/,
    );
    run = await runCli("create", "-q", "--new", `${dir}/src`, set, "--shard-entries", "5");
    assert.equal(run.code, 0, run.stderr);
    const manifest = parseManifest(await Deno.readTextFile(`${dir}/set/b.manifest.json`), "b");
    assert.equal(manifest.shardEntries, 5);
    assert.equal(manifest.shards.length, 9);
  });
});

Deno.test("review 1: parseManifest accepts a manifest without shard_size and shard_entries", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, tree());
    const result = await createShards(`${dir}/src`, `${dir}/out/f.ctnr`, { shardEntries: 20 });
    const text = await Deno.readTextFile(result.manifestPath);
    const raw = JSON.parse(text);
    delete raw.shard_size;
    delete raw.shard_entries;
    const manifest = parseManifest(JSON.stringify(raw), "old");
    assert.equal(manifest.shardSize, undefined);
    assert.equal(manifest.shards.length, result.manifest.shards.length);
    raw.shard_size = 0;
    assert.throws(() => parseManifest(JSON.stringify(raw), "old"), /"shard_size"/);
  });
});

Deno.test("review 2: a file new or changed in the source that sorts into a kept shard is reported on resume (CHANGED_SINCE_COMMIT), exit 3, never a silent 0", async () => {
  await withTempDir(async (dir) => {
    const set = await packedSet(dir, "b");
    // Run again, unchanged: nothing to report, every entry already present.
    let run = await runCli("create", `${dir}/src`, set, "--shard-entries", "10");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /41 already present, 41 entries/);
    await Deno.writeTextFile(`${dir}/src/d0/f0a.txt`, "new\n"); // sorts into the first shard
    await Deno.writeTextFile(`${dir}/src/d1/f1.txt`, "changed, longer\n");
    run = await runCli("create", `${dir}/src`, set, "--shard-entries", "10");
    assert.equal(run.code, 3, run.stderr);
    assert.match(
      run.stderr,
      /"d0\/f0a\.txt" is in the source but not in the finalized shard it sorts into/,
    );
    assert.match(
      run.stderr,
      /"d1\/f1\.txt" changed \(size or mtime differ\) since it was committed/,
    );
    assert.match(run.stderr, /2 files changed after they were committed/);
  });
});

/** Three parts of `tree()` in `dir/out` (one shard each, unless `flags` say); their manifests. */
async function threeParts(dir: string, flags: string[] = []): Promise<string[]> {
  await writeTree(`${dir}/src`, tree());
  const parts: string[] = [];
  for (let k = 0; k < 3; k++) {
    const run = await runCli(
      "create",
      "-q",
      `${dir}/src`,
      `${dir}/out/data.ctnr`,
      "--part",
      `${k}/3`,
      ...flags,
    );
    assert.equal(run.code, 0, run.stderr);
    parts.push(`${dir}/out/data.part-${k}-of-3.manifest.json`);
  }
  return parts;
}

Deno.test("review 4: manifest merge checks each part manifest's facts against its shards and refuses a lie, exit 1 naming the manifest, the shard and the field", async () => {
  await withTempDir(async (dir) => {
    const parts = await threeParts(dir);
    const original = await Deno.readTextFile(parts[1]!);
    const lies: [string, (raw: Manifestish) => void, RegExp][] = [
      ["index_sha256", (raw) => raw.shards[0].index_sha256 = "1".repeat(64), /index_sha256/],
      ["entries", (raw) => {
        raw.shards[0].entries = 5;
        raw.entries = 5;
      }, /has entries \d+, the manifest says 5/],
      ["size", (raw) => raw.shards[0].size *= 2, /has size \d+, the manifest says \d+/],
      ["sha256", (raw) => raw.shards[0].sha256 = "1".repeat(64), /has sha256 "[0-9a-f]{64}"/],
      ["orig_bytes", (raw) => raw.orig_bytes = 1, /"orig_bytes" is 1, its shards hold/],
      ["part", (raw) => {
        raw.parts = [2];
        raw.shards[0].part = 2;
      }, /belongs to part [12], not [12]/],
    ];
    for (const [what, lie, pattern] of lies) {
      const raw = JSON.parse(original);
      lie(raw);
      const edited = `${dir}/out/edited.part-1-of-3.manifest.json`;
      await Deno.writeTextFile(edited, JSON.stringify(raw));
      const others = [parts[0]!, parts[2]!];
      if (what === "part") {
        // Part 2's manifest labelled part 1: the two labels swapped.
        const swapped = JSON.parse(await Deno.readTextFile(parts[2]!));
        swapped.parts = [1];
        swapped.shards[0].part = 1;
        others[1] = `${dir}/out/swapped.part-2-of-3.manifest.json`;
        await Deno.writeTextFile(others[1], JSON.stringify(swapped));
      }
      const run = await runMerge(`${dir}/out/data.manifest.json`, ...others, edited);
      assert.equal(run.code, 1, `${what}: ${run.stderr}`);
      assert.match(run.stderr, pattern, what);
      if (what !== "part") assert.ok(run.stderr.includes(edited), run.stderr);
      if (what !== "orig_bytes" && what !== "part") {
        assert.ok(run.stderr.includes(`shard "data-p1-of-3-00000.ctnr"`), run.stderr);
      }
      assert.equal(await exists(`${dir}/out/data.manifest.json`), false, what);
    }
    const run = await runMerge(`${dir}/out/data.manifest.json`, ...parts);
    assert.equal(run.code, 0, run.stderr);
  });
});

Deno.test("review 5: verify checks each shard's size and entries against the manifest: a disagreement is a fault naming the shard and the field (exit 1)", async () => {
  await withTempDir(async (dir) => {
    const parts = await threeParts(dir, ["--shard-entries", "5"]);
    const out = `${dir}/out/data.manifest.json`;
    assert.equal((await runMerge(out, ...parts)).code, 0);
    const original = await Deno.readTextFile(out);
    const raw0 = JSON.parse(original);
    const path0 = raw0.shards[0].path;
    const lies: [string, (raw: Manifestish) => void, RegExp][] = [
      [
        "size",
        (raw) => raw.shards[0].size += 1000,
        /is \d+ bytes, the manifest says \d+ \("size"\)/,
      ],
      [
        "entries",
        (raw) => {
          raw.shards[0].entries += 1; // the total stays right: shard 1 gives one
          raw.shards[1].entries -= 1;
        },
        /data-p0-of-3-0000[01]\.ctnr": its index holds 5 entries, the manifest says [46] \("entries"\)/,
      ],
    ];
    for (const [what, lie, pattern] of lies) {
      const raw = JSON.parse(original);
      lie(raw);
      await Deno.writeTextFile(out, JSON.stringify(raw));
      for (const command of ["verify", "extract"]) {
        const args = command === "verify" ? [out] : [out, `${dir}/x-${what}`];
        const run = await runCli(command, ...args);
        assert.equal(run.code, 1, `${command} ${what}: ${run.stderr}`);
        assert.match(run.stderr, pattern, `${what}: ${run.stderr}`);
        if (what === "size") assert.ok(run.stderr.includes(path0), run.stderr);
      }
    }
  });
});

Deno.test("review 6: verify/extract --part K/N of a part the manifest does not hold exits 1 naming the part", async () => {
  await withTempDir(async (dir) => {
    const parts = await threeParts(dir);
    for (const command of ["verify", "extract"]) {
      const args = command === "verify" ? [parts[2]!] : [parts[2]!, `${dir}/x`];
      const run = await runCli(command, "--part", "1/3", ...args);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /Cannot read part 1 of 3 from .*: it holds part 2 only/);
      assert.doesNotMatch(run.stdout, /Verified/);
    }
    assert.equal((await runCli("verify", "--part", "2/3", parts[2]!)).code, 0);
  });
});

Deno.test("review 9: verify of a set with a shard missing counts that shard's entries as failed: the counts add up", async () => {
  await withTempDir(async (dir) => {
    const parts = await threeParts(dir, ["--shard-entries", "5"]);
    const out = `${dir}/out/data.manifest.json`;
    assert.equal((await runMerge(out, ...parts)).code, 0);
    const manifest = parseManifest(await Deno.readTextFile(out), out);
    const victim = manifest.shards[1]!;
    await Deno.remove(`${dir}/out/${victim.path}`);
    const run = await runCli("verify", out);
    assert.equal(run.code, 1, run.stderr);
    const verified = manifest.entries - victim.entries;
    assert.match(
      run.stderr,
      new RegExp(
        `verify: ${victim.entries} of ${manifest.entries} entries failed .*; ${verified} verified`,
      ),
    );
  });
});

Deno.test("review 7: a create on a set another run is writing exits 4 (its lock, the state file's), never a raw NotFound; the set is left as it was", async () => {
  await withTempDir(async (dir) => {
    const set = await packedSet(dir, "b");
    let run: CliRun;
    const before = await Deno.readTextFile(`${dir}/out/b.manifest.json`);
    // Another run holds the set's lock (an exclusive flock of its state file).
    const other = await Deno.open(`${dir}/out/b.shards.json`, { read: true });
    try {
      assert.equal(await other.tryLock(true), true);
      for (const flags of [[], ["--new"]]) {
        run = await runCli("create", "-q", ...flags, `${dir}/src`, set, "--shard-entries", "10");
        assert.equal(run.code, 4, run.stderr);
        assert.match(run.stderr, /another ctnr run is writing them \(it holds the lock of/);
      }
    } finally {
      other.close();
    }
    assert.equal(await Deno.readTextFile(`${dir}/out/b.manifest.json`), before);
    run = await runCli("create", "-q", `${dir}/src`, set, "--shard-entries", "10");
    assert.equal(run.code, 0, run.stderr);
  });
});

Deno.test("review 10: manifest merge --out equal to one of its inputs, by path or by a hard link, exits 2 naming both; the part is left as it was", async () => {
  await withTempDir(async (dir) => {
    const parts = await threeParts(dir);
    const before = await Deno.readTextFile(parts[0]!);
    await Deno.link(parts[1]!, `${dir}/out/link.manifest.json`);
    for (const out of [parts[0]!, `${dir}/out/link.manifest.json`]) {
      const run = await runMerge(out, ...parts);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /it is the part manifest ".*data\.part-[01]-of-3\.manifest\.json"/);
      assert.ok(run.stderr.includes(out), run.stderr);
    }
    assert.equal(await Deno.readTextFile(parts[0]!), before);
  });
});

Deno.test("review 11: verify/extract --part N take K from the scheduler's variable as create does", async () => {
  await withTempDir(async (dir) => {
    const parts = await threeParts(dir);
    const out = `${dir}/out/data.manifest.json`;
    assert.equal((await runMerge(out, ...parts)).code, 0);
    await withEnv({ JOB_COMPLETION_INDEX: "1" }, async () => {
      const part1 = parseManifest(await Deno.readTextFile(parts[1]!), parts[1]!);
      const run = await runCli("verify", "--json", "--part", "3", out);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(JSON.parse(run.stdout).verified, part1.entries);
    });
    await withEnv({ JOB_COMPLETION_INDEX: "3" }, async () => {
      const bad = await runCli("verify", "--part", "3", out);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /K must be 0 to N-1, got 3\/3 \(K from JOB_COMPLETION_INDEX\)/);
    });
  });
});

Deno.test("review 12: cat of a relpath (with a /) that no shard's range can hold answers 'matched no file' from the manifest, opening no shard", async () => {
  await withTempDir(async (dir) => {
    const parts = await threeParts(dir, ["--shard-entries", "5"]);
    const out = `${dir}/out/data.manifest.json`;
    assert.equal((await runMerge(out, ...parts)).code, 0);
    const manifest = parseManifest(await Deno.readTextFile(out), out);
    // With the shards gone, any shard opened would be a fault naming it.
    for (const shard of manifest.shards) await Deno.remove(`${dir}/out/${shard.path}`);
    for (const absent of [["zz/none"], ["0/none", "zz/none"]]) {
      const run = await runCli("cat", out, ...absent);
      assert.equal(run.code, 1, run.stderr);
      for (const pattern of absent) {
        assert.ok(run.stderr.includes(`pattern "${pattern}" matched no file`), run.stderr);
      }
      assert.equal(run.stderr.trim().split("\n").length, absent.length, run.stderr);
    }
    // A relpath inside a shard's range opens that shard: here a fault, the shard named.
    const run = await runCli("cat", out, "d0/f0.txt");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /data-p\d-of-3-\d{5}\.ctnr/);
  });
});

Deno.test("a set with a shard missing in the middle is refused, and --new removes every shard", async () => {
  await withTempDir(async (dir) => {
    const set = await packedSet(dir, "s");
    const shards = [...Deno.readDirSync(`${dir}/out`)].map((e) => e.name)
      .filter((name) => /^s-\d{5}\.ctnr$/.test(name)).sort();
    assert.ok(shards.length >= 4, shards.join());
    const before = new Map(shards.map((name) => [name, Deno.readFileSync(`${dir}/out/${name}`)]));
    await Deno.remove(`${dir}/out/s-00001.ctnr`); // by hand, or a --new run killed midway
    const again = await runCli("create", "-q", `${dir}/src`, set, "--shard-entries", "10");
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /s-00001\.ctnr" is missing or unfinished, but ".*s-00002\.ctnr"/);
    for (const name of shards.slice(2)) {
      // The finalized shards after the gap are left as they were (they were cut and appended to).
      assert.deepEqual(Deno.readFileSync(`${dir}/out/${name}`), before.get(name), name);
    }
    await Deno.remove(`${dir}/out/s-00000.ctnr`); // shard 0 missing too: --new still cleans all
    const fresh = await runCli("create", "-q", `${dir}/src`, set, "--shard-entries", "10", "--new");
    assert.equal(fresh.code, 0, fresh.stderr);
    for (const name of shards) {
      assert.deepEqual(Deno.readFileSync(`${dir}/out/${name}`), before.get(name), name);
    }
    assert.equal((await runCli("create", "-q", `${dir}/src`, `${dir}/one.ctnr`)).code, 0);
    assert.deepEqual(await listed(`${dir}/out/s.manifest.json`), await listed(`${dir}/one.ctnr`));
  });
});

Deno.test("verify refuses a shard whose first or last relpath is not the manifest's (cat trusts them)", async () => {
  await withTempDir(async (dir) => {
    await packedSet(dir, "s");
    const manifest = `${dir}/out/s.manifest.json`;
    assert.equal((await runCli("verify", manifest)).code, 0);
    const raw = JSON.parse(await Deno.readTextFile(manifest));
    const last = raw.shards[0].last as string;
    // Still in order and before shard 1's first: the manifest parses; only its index disagrees.
    raw.shards[0].last = last.slice(0, -1);
    await Deno.writeTextFile(manifest, JSON.stringify(raw));
    const run = await runCli("verify", manifest);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /its index's last entry is ".*", the manifest says ".*" \("last"\)/);
  });
});

Deno.test("verify --progress of a set shows one run: its entries summed over the shards", async () => {
  await withTempDir(async (dir) => {
    const spec: TreeSpec = {};
    for (const d of ["a", "b", "c"]) for (let i = 1; i <= 5; i++) spec[`${d}/f${i}`] = `${d}${i}\n`;
    await writeTree(`${dir}/src`, spec);
    const made = await runCli(
      "create",
      "-q",
      `${dir}/src`,
      `${dir}/s.ctnr`,
      "--shard-entries",
      "4",
    );
    assert.equal(made.code, 0, made.stderr);
    const run = await runCli("verify", "--progress", `${dir}/s.manifest.json`);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stderr.split("\n").filter((line) => line.startsWith("ctnr: progress:"));
    // Was a planning and a verifying line per shard ("4/4", "0/3", ...), shards at once mixed.
    assert.ok(lines.length > 0, run.stderr);
    assert.ok(lines.every((line) => !line.includes("planning")), lines.join("\n"));
    assert.match(lines.at(-1)!, /verifying 100% \| 15\/15 entries \| 45B\/45B/);
  });
});
