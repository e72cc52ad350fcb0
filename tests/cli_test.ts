import assert from "node:assert/strict";
import { REMOTE_FLAGS } from "../cli/_reader.ts";
import { compileArgs, type Target, TARGETS } from "../scripts/compile.ts";
import {
  type CliRun,
  DENO_CHILD_TIMEOUT_MS,
  diffTrees,
  exists,
  listPaths,
  runCli,
  runCommand,
  TOOL_TIMEOUT_MS,
  withTempDir,
  writeTree,
} from "./_helpers.ts";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("..", import.meta.url).pathname;

const TREE = {
  "a.txt": "alpha\n",
  "docs/readme.md": "# readme\n",
  "docs/deep/note.txt": "note",
  "data/noise.bin": "0123456789".repeat(5000),
  "empty": { dir: true },
  "link": { symlink: "a.txt" },
} as const;
const FILES = ["a.txt", "data/noise.bin", "docs/deep/note.txt", "docs/readme.md"];

Deno.test("main create accepts every flag its help lists", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const help = await runCli("create", "--help");
    assert.equal(help.code, 0);
    const flags = helpFlags(help.stdout);
    for (const expected of ["--src", "--finalize-only", "--compat", "--concurrency", "-v"]) {
      assert.ok(flags.some((f) => f.flag === expected), `help lists ${expected}`);
    }
    let n = 0;
    for (const { flag, placeholder } of flags) {
      const container = `${dir}/c${++n}.ctnr`;
      let args = [
        ...(flag === "--src" ? [] : ["--src", `${dir}/src`]),
        ...(flag === "--container" ? [] : ["--container", container]),
      ];
      if (flag === "--finalize-only") {
        assert.equal((await runCli("create", ...args)).code, 0);
        args = ["--container", container];
      }
      args.push(flag);
      if (placeholder !== undefined) {
        args.push(
          flag === "--src"
            ? `${dir}/src`
            : flag === "--container"
            ? container
            : valueFor(flag, placeholder, `${dir}/v${n}`),
        );
      }
      if (flag === "--index-batch") args.push("--fsync-every", "2");
      if (flag === "--status-format") args.push("--status-file", `${dir}/status${n}`);
      if (flag === "--remove-index-on-finalize") args.push("--finalize");
      if (flag === "--split") args.push("--part", "1/2");
      if (flag === "--exclude-from") await Deno.writeTextFile(args.at(-1)!, "*.tmp\n");
      const run = await runCli("create", ...args);
      assert.equal(run.code, 0, `create ${flag}: ${run.stderr}`);
    }
  });
});

Deno.test("main extract accepts every flag its help lists", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize")).code, 0);
    const help = await runCli("extract", "--help");
    assert.equal(help.code, 0);
    const flags = helpFlags(help.stdout);
    for (const expected of ["--lookback", "--keep-going", "--allow-unsafe-links", "--fsync"]) {
      assert.ok(flags.some((f) => f.flag === expected), `help lists ${expected}`);
    }
    let n = 0;
    for (const { flag, placeholder } of flags) {
      // For a container on a server only: refused on a local file (remote_review_test.ts).
      if (REMOTE_FLAGS.some((remote) => `--${remote.name}` === flag)) continue;
      const out = `${dir}/out${++n}`;
      const args = [
        ...(flag === "--container" ? [] : ["--container", `${dir}/c.ctnr`]),
        ...(flag === "--outdir" ? [] : ["--outdir", out]),
        flag,
      ];
      if (placeholder !== undefined) {
        const value = flag === "--index"
          ? `${dir}/c.ctnr.idx`
          : flag === "--container"
          ? `${dir}/c.ctnr`
          : flag === "--part"
          ? "0/1" // one container is part 0 of 1
          : valueFor(flag, placeholder, out);
        args.push(value);
      }
      if (flag === "--status-format") args.push("--status-file", `${dir}/status${n}`);
      const run = await runCli("extract", ...args);
      assert.equal(run.code, 0, `extract ${flag}: ${run.stderr}`);
      if (flag !== "--dry-run" && flag !== "--outdir") {
        assert.deepEqual(await diffTrees(`${dir}/src`, out), [], flag);
      }
    }
  });
});

Deno.test("main create prints Appending lines at -v, Completed lines at -vv and with --print-each", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const run = (name: string, ...flags: string[]) =>
      runCli("create", `${dir}/src`, `${dir}/${name}.ctnr`, ...flags);
    const appending = /^\[[^\]]+\] \[(\d+)\] Appending: (.*)$/gm;
    const completed = /^\[[^\]]+\] Completed: (.*)$/gm;
    const plain = await run("plain");
    assert.equal(plain.code, 0);
    assert.doesNotMatch(plain.stdout, /Appending|Completed/);
    assert.match(plain.stdout, /Added 6 entries \(48\.8 KiB read, 48\.8 KiB stored\)/);

    for (const flag of ["-v", "--verbose"]) {
      const v = await run(`v${flag}`, flag);
      assert.equal(v.code, 0);
      const lines = [...v.stdout.matchAll(appending)].map((m) => `${m[1]} ${m[2]}`);
      assert.deepEqual(lines, [
        "1 a.txt",
        "2 data/noise.bin",
        "3 docs/deep/note.txt",
        "4 docs/readme.md",
        "5 empty",
        "6 link",
      ]);
      assert.doesNotMatch(v.stdout, /Completed/);
    }
    const lines = (stdout: string) => [...stdout.matchAll(completed)].map((m) => m[1]);
    const expected = [
      "a.txt (6 B) sha=b6a98d9ce9a2 offset=0",
      "data/noise.bin (48.8 KiB) sha=ab8f07056f06 offset=6",
      "docs/deep/note.txt (4 B) sha=edb465624291 offset=50006",
      "docs/readme.md (9 B) sha=4b2b418bbeeb offset=50010",
      "empty/ (folder)",
      "link -> a.txt (link)",
    ];
    const each = await run("each", "--print-each");
    assert.equal(each.code, 0);
    assert.deepEqual(lines(each.stdout), expected);
    assert.doesNotMatch(each.stdout, /Appending/);
    const vv = await run("vv", "-vv");
    assert.deepEqual(lines(vv.stdout), expected);
    assert.equal([...vv.stdout.matchAll(appending)].length, 6);
    // --quiet: the summary lines go, the lines asked for with --print-each stay.
    const quiet = await run("quiet", "--print-each", "-q");
    assert.equal(quiet.code, 0);
    assert.deepEqual(lines(quiet.stdout), expected);
    assert.doesNotMatch(quiet.stdout, /Added|Done/);
  });
});

Deno.test("main create writes a status file with --status-file and --status-format", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    for (const prescan of ["--count", "--scan-sizes"]) {
      const json = await runCli(
        "create",
        `${dir}/src`,
        `${dir}/j${prescan}.ctnr`,
        prescan,
        "--status-file",
        `${dir}/status${prescan}.json`,
        "--status-format",
        "json",
      );
      assert.equal(json.code, 0, json.stderr);
      const status = JSON.parse(await Deno.readTextFile(`${dir}/status${prescan}.json`));
      assert.equal(status.status, "finished");
      assert.equal(status.processed_files, 6);
      assert.equal(status.total_files, 6, `${prescan} fills total_files`);
    }
    const kv = await runCli(
      "create",
      `${dir}/src`,
      `${dir}/k.ctnr`,
      "--status-file",
      `${dir}/status.kv`,
    );
    assert.equal(kv.code, 0);
    const text = await Deno.readTextFile(`${dir}/status.kv`);
    assert.match(text, /^status=finished$/m);
    assert.match(text, /^processed_files=6$/m);
  });
});

Deno.test("main create honours --fsync-every, --index-batch and --chunk-size", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    await Deno.writeFile(`${dir}/src/data/big.bin`, new Uint8Array((1 << 20) + 4096).fill(7));
    const run = await runCli(
      "create",
      `${dir}/src`,
      `${dir}/c.ctnr`,
      "--fsync-every",
      "1",
      "--index-batch",
      "3",
      "--chunk-size",
      "1024",
    );
    assert.equal(run.code, 0, run.stderr);
    const out = await runCli("extract", `${dir}/c.ctnr`, `${dir}/out`, "--chunk-size", "1024");
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});

Deno.test("main create --compress stores gzip payloads", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--compress")).code, 0);
    const entries = await listJson(`${dir}/c.ctnr`);
    const noise = entries.find((e) => e.relpath === "data/noise.bin");
    assert.equal(noise?.compressed, true);
    assert.ok(((await Deno.stat(`${dir}/c.ctnr`)).size) < 50_000 / 4);
    assert.equal(
      (await runCli("cat", `${dir}/c.ctnr`, "data/noise.bin")).stdout,
      TREE["data/noise.bin"],
    );
  });
});

Deno.test("main create --finalize, --finalize-only and --remove-index-on-finalize embed the index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const finalized = await runCli("create", `${dir}/src`, `${dir}/f.ctnr`, "--finalize");
    assert.equal(finalized.code, 0);
    assert.match(finalized.stdout, /Index embedded in/);
    assert.equal(await tail8(`${dir}/f.ctnr`), "CTNRv1ix");

    assert.equal((await runCli("create", `${dir}/src`, `${dir}/p.ctnr`)).code, 0);
    assert.notEqual(await tail8(`${dir}/p.ctnr`), "CTNRv1ix");
    const before = await Deno.readFile(`${dir}/p.ctnr`);
    const dry = await runCli(
      "create",
      "--container",
      `${dir}/p.ctnr`,
      "--finalize-only",
      "--dry-run",
    );
    assert.equal(dry.code, 0);
    assert.deepEqual(await Deno.readFile(`${dir}/p.ctnr`), before);
    const first = await runCli("create", "--container", `${dir}/p.ctnr`, "--finalize-only");
    assert.equal(first.code, 0);
    assert.match(first.stdout, /Finalized container/);
    assert.equal(await tail8(`${dir}/p.ctnr`), "CTNRv1ix");
    const once = await Deno.readFile(`${dir}/p.ctnr`);
    const second = await runCli(
      "create",
      "--container",
      `${dir}/p.ctnr`,
      "--finalize-only",
      "--remove-index-on-finalize",
    );
    assert.equal(second.code, 0);
    assert.match(second.stdout, /already has a trailer/);
    assert.deepEqual(await Deno.readFile(`${dir}/p.ctnr`), once);
    assert.equal(await exists(`${dir}/p.ctnr.idx`), false);

    const removed = await runCli(
      "create",
      `${dir}/src`,
      `${dir}/r.ctnr`,
      "--finalize",
      "--remove-index-on-finalize",
    );
    assert.equal(removed.code, 0);
    assert.equal(await exists(`${dir}/r.ctnr.idx`), false);
    for (const container of ["f.ctnr", "p.ctnr", "r.ctnr"]) {
      const out = await runCli("extract", `${dir}/${container}`, `${dir}/out-${container}`);
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out-${container}`), [], container);
    }
  });
});

Deno.test("main create --dry-run writes no container", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const run = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--dry-run", "--finalize");
    assert.equal(run.code, 0);
    assert.match(run.stdout, /dry-run=true/);
    assert.equal(await exists(`${dir}/c.ctnr`), false);
    assert.equal(await exists(`${dir}/c.ctnr.idx`), false);
  });
});

Deno.test("main create --symlinks, --no-empty-dirs and --compat choose the entry kinds", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const kinds = async (...flags: string[]) => {
      const container = `${dir}/c${flags.join("")}.ctnr`;
      const run = await runCli("create", `${dir}/src`, container, ...flags);
      assert.equal(run.code, 0, run.stderr);
      const entries = await listJson(container);
      return {
        run,
        types: entries.map((e) => `${e.entry_type ?? "file"}:${e.relpath}`).sort(),
      };
    };
    const all = await kinds("--symlinks", "store", "--concurrency", "1");
    assert.ok(all.types.includes("symlink:link"));
    assert.ok(all.types.includes("dir:empty"));

    const skip = await kinds("--symlinks", "skip");
    assert.ok(!skip.types.includes("symlink:link"));
    assert.ok(skip.types.includes("dir:empty"));
    assert.match(skip.run.stderr, /warning: .*"link"/);

    const noDirs = await kinds("--no-empty-dirs");
    assert.ok(noDirs.types.includes("symlink:link"));
    assert.ok(!noDirs.types.includes("dir:empty"));

    const compat = await kinds("--compat");
    assert.deepEqual(compat.types, FILES.map((f) => `file:${f}`));
    const index = await Deno.readTextFile(`${dir}/c--compat.ctnr.idx`);
    assert.ok(!index.includes("entry_type"), index);

    const bad = await runCli("create", `${dir}/src`, `${dir}/bad.ctnr`, "--symlinks", "follow");
    assert.equal(bad.code, 2);
  });
});

Deno.test("main accepts the positional forms of create and extract", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const created = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`);
    assert.equal(created.code, 0, created.stderr);
    const extracted = await runCli("extract", `${dir}/c.ctnr`, `${dir}/out`);
    assert.equal(extracted.code, 0, extracted.stderr);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
    // What follows the container and the output folder are patterns.
    const extra = await runCli("extract", `${dir}/c.ctnr`, `${dir}/out2`, "surplus");
    assert.equal(extra.code, 1);
    assert.equal(extra.stderr, 'ctnr: pattern "surplus" matched no entry\n');
  });
});

Deno.test("main extract --skip-existing and --verify-existing keep or replace existing files", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "AAAA", "b.txt": "BBBB" });
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize")).code, 0);
    await writeTree(`${dir}/out`, { "a.txt": "xxxx", "b.txt": "BBBB" });
    const skip = await runCli("extract", `${dir}/c.ctnr`, `${dir}/out`, "--skip-existing", "-v");
    assert.equal(skip.code, 0);
    assert.match(skip.stdout, /Skipping existing file \(size match\): a\.txt$/m);
    assert.match(skip.stdout, /Extracted 0 of 2 entries .*; skipped 2 already there$/m);
    assert.equal(await Deno.readTextFile(`${dir}/out/a.txt`), "xxxx");

    const verify = await runCli(
      "extract",
      `${dir}/c.ctnr`,
      `${dir}/out`,
      "--verify-existing",
      "-v",
    );
    assert.equal(verify.code, 0);
    assert.match(verify.stdout, /Skipping existing verified file: b\.txt$/m);
    assert.doesNotMatch(verify.stdout, /Skipping .*a\.txt/);
    assert.match(verify.stdout, /Extracted 1 of 2 entries .*; skipped 1 already there$/m);
    assert.equal(await Deno.readTextFile(`${dir}/out/a.txt`), "AAAA");
  });
});

Deno.test("main extract --dry-run, --status-file and --status-format report without writing", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize")).code, 0);
    const dry = await runCli(
      "extract",
      "--container",
      `${dir}/c.ctnr`,
      "--outdir",
      `${dir}/out`,
      "--dry-run",
      "--status-file",
      `${dir}/status.json`,
      "--status-format",
      "json",
    );
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /Verified 6 entries/);
    assert.equal(await exists(`${dir}/out`), false);
    const status = JSON.parse(await Deno.readTextFile(`${dir}/status.json`));
    assert.equal(status.status, "finished");
    assert.equal(status.total_files, 6);

    const real = await runCli(
      "extract",
      `${dir}/c.ctnr`,
      `${dir}/out`,
      "--status-file",
      `${dir}/status.kv`,
      "--tqdm",
      "--fsync",
      "--lookback",
      "4096",
      "--concurrency",
      "1",
    );
    assert.equal(real.code, 0, real.stderr);
    assert.match(await Deno.readTextFile(`${dir}/status.kv`), /^status=finished$/m);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});

Deno.test("main extract --index reads an external index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const created = await runCli(
      "create",
      `${dir}/src`,
      `${dir}/c.ctnr`,
      "--index",
      `${dir}/i.ndjson`,
    );
    assert.equal(created.code, 0);
    const without = await runCli("extract", `${dir}/c.ctnr`, `${dir}/nope`);
    assert.equal(without.code, 1, "no trailer and no sibling .idx: no index to find");
    const run = await runCli(
      "extract",
      `${dir}/c.ctnr`,
      `${dir}/out`,
      "--index",
      `${dir}/i.ndjson`,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});

Deno.test("main extract --lenient skips a malformed index line", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`)).code, 0);
    const lines = (await Deno.readTextFile(`${dir}/c.ctnr.idx`)).split("\n");
    lines.splice(1, 0, "{not json");
    await Deno.writeTextFile(`${dir}/c.ctnr.idx`, lines.join("\n"));
    const strict = await runCli("extract", `${dir}/c.ctnr`, `${dir}/strict`);
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /line 2/);
    assert.equal(await exists(`${dir}/strict`), false);
    const lenient = await runCli("extract", `${dir}/c.ctnr`, `${dir}/out`, "--lenient");
    assert.equal(lenient.code, 0, lenient.stderr);
    assert.match(lenient.stderr, /warning: .*line 2/);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});

Deno.test("main extract --allow-unsafe-links keeps a link that points outside", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a", "up": { symlink: "../../etc" } });
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize")).code, 0);
    const refused = await runCli("extract", `${dir}/c.ctnr`, `${dir}/out`);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /"up"/);
    assert.match(refused.stderr, /--allow-unsafe-links/);
    const allowed = await runCli("extract", `${dir}/c.ctnr`, `${dir}/out`, "--allow-unsafe-links");
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(await Deno.readLink(`${dir}/out/up`), "../../etc");
  });
});

Deno.test("main extract exits 1 on a corrupt payload, also with --keep-going", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize")).code, 0);
    await flipPayloadByte(`${dir}/c.ctnr`, "docs/readme.md");
    const run = await runCli("extract", `${dir}/c.ctnr`, `${dir}/out`);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /"docs\/readme\.md".*SHA-256 mismatch/);
    assert.equal(await exists(`${dir}/out/docs/readme.md`), false);

    const going = await runCli("extract", `${dir}/c.ctnr`, `${dir}/going`, "--keep-going");
    assert.equal(going.code, 1);
    assert.match(going.stderr, /extraction incomplete/);
    const paths = await listPaths(`${dir}/going`);
    for (const relpath of ["a.txt", "data/noise.bin", "docs/deep/note.txt", "empty", "link"]) {
      assert.ok(paths.includes(relpath), `${relpath} in ${paths}`);
    }
    assert.ok(!paths.includes("docs/readme.md"));

    const verify = await runCli("verify", `${dir}/c.ctnr`);
    assert.equal(verify.code, 1);
    assert.match(verify.stderr, /docs\/readme\.md/);
  });
});

Deno.test("main rejects bad usage with exit code 2 and a hint", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    const src = `${dir}/src`;
    const c = `${dir}/c.ctnr`;
    const cases: { args: string[]; message: RegExp; hint: string }[] = [
      {
        args: ["create", "--src", src, "--container", c, "--bogus"],
        message: /--bogus/,
        hint: "create",
      },
      { args: ["extract", c, `${dir}/out`, "--nope"], message: /--nope/, hint: "extract" },
      { args: ["create", "--src", src], message: /Missing --container/, hint: "create" },
      {
        args: ["extract", "--outdir", `${dir}/out`],
        message: /Missing --container/,
        hint: "extract",
      },
      { args: ["extract", "--container", c], message: /Missing --outdir/, hint: "extract" },
      { args: ["create", "--container", c], message: /Missing --src/, hint: "create" },
      {
        args: ["create", src, c, "--fsync-every", "10", "--index-batch", "5"],
        message: /--index-batch/,
        hint: "create",
      },
      { args: ["create", src, c, "--chunk-size", "10"], message: /--chunk-size/, hint: "create" },
      {
        args: ["extract", c, `${dir}/out`, "--chunk-size", "10"],
        message: /--chunk-size/,
        hint: "extract",
      },
      {
        args: ["create", src, c, "--status-format", "xml", "--status-file", `${dir}/s`],
        message: /xml/,
        hint: "create",
      },
      {
        args: ["extract", c, `${dir}/out`, "--status-format", "xml", "--status-file", `${dir}/s`],
        message: /xml/,
        hint: "extract",
      },
      { args: ["create", src, c, "--fsync-every", "often"], message: /often/, hint: "create" },
      { args: ["create", src, c, "--fsync-every", "-1"], message: /fsync-every/, hint: "create" },
      { args: ["create", src, c, "--fsync-every", "0"], message: /fsync-every/, hint: "create" },
      { args: ["create", src, c, "--concurrency", "x"], message: /concurrency/, hint: "create" },
      {
        args: ["extract", c, `${dir}/out`, "--lookback", "far"],
        message: /lookback/,
        hint: "extract",
      },
      { args: ["create", src, c, "--fsync-every"], message: /fsync-every/, hint: "create" },
    ];
    for (const { args, message, hint } of cases) {
      const run = await runCli(...args);
      const label = args.join(" ");
      assert.equal(run.code, 2, `${label}: ${run.stderr}`);
      assert.match(run.stderr, message, label);
      assert.ok(
        run.stderr.includes(`Run "ctnr ${hint ? hint + " " : ""}--help" for usage.`),
        `${label}: hint missing or wrong:\n${run.stderr}`,
      );
      assert.equal(await exists(c), false, label);
      assert.equal(await exists(`${dir}/out`), false, label);
    }
    const bare = await runCli();
    assert.equal(bare.code, 2);
    assert.match(bare.stdout, /Usage:/);
  });
});

Deno.test("main rejects an unknown command with exit code 2 and a hint to ctnr --help", async () => {
  const run = await runCli("frobnicate", "--container", "x");
  assert.equal(run.code, 2);
  assert.match(run.stderr, /Unknown command "frobnicate"/);
  // "ctnr frobnicate --help" would fail the same way: the hint must name the general help.
  assert.ok(run.stderr.includes('Run "ctnr --help" for usage.'), run.stderr);
});

Deno.test("main list, list --json, cat and verify print the container's contents", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    for (const compress of [false, true]) {
      const c = `${dir}/c-${compress}.ctnr`;
      const flags = compress ? ["--compress", "--finalize"] : ["--finalize"];
      assert.equal((await runCli("create", `${dir}/src`, c, ...flags)).code, 0);

      // As tar -t: relpaths alone, folders with a slash.
      const list = await runCli("list", c);
      assert.equal(list.code, 0);
      assert.deepEqual(list.stdout.trimEnd().split("\n"), [...FILES, "empty/", "link"]);

      const json = await runCli("list", "--json", "--container", c);
      assert.equal(json.code, 0);
      const entries = json.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(
        entries.map((e) => e.relpath).sort(),
        [...FILES, "empty", "link"].sort(),
      );
      // list --json prints the index's wire form: files carry the spec's fields, others entry_type.
      for (const e of entries) {
        if (e.entry_type === undefined) {
          assert.equal(typeof e.sha256, "string");
          assert.equal(e.sha256.length, 64);
          assert.equal(typeof e.payload_size, "number");
        } else assert.ok(["dir", "symlink"].includes(e.entry_type));
      }

      const cat = await runCli("cat", "--container", c, "docs/readme.md");
      assert.equal(cat.code, 0);
      assert.equal(cat.stdout, "# readme\n");
      const catBig = await runCli("cat", c, "data/noise.bin");
      assert.equal(catBig.stdout, TREE["data/noise.bin"]);
      const missing = await runCli("cat", c, "no/such.txt");
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /no\/such\.txt/);

      const verify = await runCli("verify", "--container", c);
      assert.equal(verify.code, 0);
      assert.match(verify.stdout, /Verified 6 entries/);
    }
    const none = await runCli("list", `${dir}/missing.ctnr`);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /missing\.ctnr/);
  });
});

Deno.test("main --help and --version exit 0; the version is deno.json's", async () => {
  const version = denoJson.version.replaceAll(".", "\\.");
  assert.match(denoJson.version, /^\d+\.\d+\.\d+$/);
  const cases: [string[], RegExp][] = [
    [["--help"], new RegExp(`^ctnr ${version}: [^]*\nUsage:`)],
    [["-h"], /Usage:/],
    [["help"], /Usage:/],
    [["--version"], new RegExp(`^ctnr ${version}$`, "m")],
    [["version"], new RegExp(`^ctnr ${version}$`, "m")],
    [["create", "--help"], /--finalize-only/],
    [["extract", "--help"], /--verify-existing/],
    [["list", "--help"], /--json/],
    [["verify", "--help"], /verify/],
    [["cat", "--help"], /RELPATH/],
  ];
  for (const [args, pattern] of cases) {
    const run = await runCli(...args);
    assert.equal(run.code, 0, args.join(" "));
    assert.match(run.stdout, pattern, args.join(" "));
    assert.equal(run.stderr, "", args.join(" "));
  }
});

Deno.test("main create exits 3 when a source file cannot be read", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "ok.txt": "fine", "sub/also.txt": "fine too" });
    const made = await runCommand(
      "bash",
      ["-c", "touch \"$1\"/$'\\xff.txt' \"$1\"/sub/$'bad\\xfe'", "_", `${dir}/src`],
      { timeoutMs: TOOL_TIMEOUT_MS },
    );
    assert.equal(made.code, 0, made.stderr);
    const run = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`);
    assert.equal(run.code, 3, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /not valid UTF-8/);
    assert.match(run.stderr, /2 source names cannot be stored \(named above\)/);
    const entries = await listJson(`${dir}/c.ctnr`);
    assert.deepEqual(entries.map((e) => e.relpath).sort(), ["ok.txt", "sub/also.txt"]);
  });
});

// ---------------------------------------------------------------------------

/** Flags of a help text, with the placeholder of their value when they take one. */
function helpFlags(help: string): { flag: string; placeholder?: string }[] {
  const flags: { flag: string; placeholder?: string }[] = [];
  for (const line of help.split("\n")) {
    const m =
      /^ {2}(?:(-\w), )?(--[a-z][a-z-]*)(?: ([A-Z]+(?:\/[A-Z]+)?|[a-z]+(?:\|[a-z]+)+))?(?:\s|$)/
        .exec(
          line,
        );
    if (!m) continue;
    for (const flag of [m[1], m[2]]) {
      if (flag === undefined) continue;
      flags.push(m[3] === undefined ? { flag } : { flag, placeholder: m[3] });
    }
  }
  return flags;
}

function valueFor(flag: string, placeholder: string, path: string): string {
  if (placeholder.includes("|")) return placeholder.split("|").at(-1)!;
  if (placeholder === "N") return "2";
  if (placeholder === "K/N") return "0/2";
  if (placeholder === "BYTES") return "4096";
  if (placeholder === "PATTERN") return "*";
  if (placeholder === "FILE") return `${path}.${flag.slice(2)}`;
  return path;
}

async function listJson(container: string): Promise<Record<string, unknown>[]> {
  const run: CliRun = await runCli("list", "--json", container);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trimEnd().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

async function tail8(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  return new TextDecoder().decode(bytes.subarray(bytes.length - 8));
}

/** Flip one byte in the middle of the payload of `relpath` (the container keeps its `.idx`). */
async function flipPayloadByte(container: string, relpath: string): Promise<void> {
  const bytes = await Deno.readFile(container);
  const line = (await Deno.readTextFile(`${container}.idx`)).split("\n").filter(Boolean)
    .map((l) => JSON.parse(l)).find((e) => e.relpath === relpath);
  assert.ok(line, `no entry ${relpath}`);
  const at = line.offset + Math.floor(line.payload_size / 2);
  bytes[at] = bytes[at]! ^ 0x01;
  await Deno.writeFile(container, bytes);
}

Deno.test("main shows the flag where the library names an option", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/c.ctnr`, new Uint8Array(100));
    const list = await runCli("list", "--container", `${dir}/c.ctnr`);
    assert.equal(list.code, 1);
    assert.match(list.stderr, /no index ".*c\.ctnr\.idx" \(.*: pass --index\)\n/);
    await writeTree(`${dir}/src`, TREE);
    const create = await runCli("create", `${dir}/src`, `${dir}/d.ctnr`, "--fsync-every", "0");
    assert.equal(create.code, 2);
    assert.match(create.stderr, /^ctnr: Option --fsync-every must be a positive integer, got 0$/m);
    assert.doesNotMatch(list.stderr + create.stderr, /`/);
  });
});

Deno.test("deno task compile includes every worker module that lib/ starts (a compiled binary has no others)", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.match(config.tasks.compile, / scripts\/compile\.ts$/);
  const includes = (target: Target) =>
    [...compileArgs(target).join(" ").matchAll(/--include (\S+)/g)].map((match) => match[1]!);
  const included = includes(TARGETS[0]);
  for (const target of TARGETS) assert.deepEqual(includes(target), included, target);
  for (const path of included) {
    assert.ok(
      (await Deno.stat(new URL(`../${path}`, import.meta.url))).isFile,
      `${path} is not a file`,
    );
  }
  // Every `new URL("./x.ts", import.meta.url)` in lib/ is a module a worker loads.
  const started: string[] = [];
  for await (const entry of walkTs(new URL("../lib/", import.meta.url))) {
    const text = await Deno.readTextFile(entry);
    for (const match of text.matchAll(/new URL\("\.\/([^"]+\.ts)", import\.meta\.url\)/g)) {
      const folder = entry.pathname.slice(new URL("../", import.meta.url).pathname.length);
      started.push(folder.slice(0, folder.lastIndexOf("/") + 1) + match[1]);
    }
  }
  assert.ok(started.length >= 2, `worker modules found: ${started}`);
  assert.deepEqual(started.filter((path) => !included.includes(path)), []);
});

async function* walkTs(folder: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(folder)) {
    if (entry.isDirectory) yield* walkTs(new URL(`${entry.name}/`, folder));
    else if (entry.name.endsWith(".ts")) yield new URL(entry.name, folder);
  }
}

Deno.test("the same mistake gives the same exit code in every command", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha\n", "b.txt": "bravo\n" });
    const good = `${dir}/good.ctnr`;
    assert.equal((await runCli("create", `${dir}/src`, good, "--finalize")).code, 0);
    await Deno.writeTextFile(`${dir}/text.txt`, "this is not a container\n".repeat(100));
    // A container whose payload of a.txt was changed after it was made.
    const bad = `${dir}/bad.ctnr`;
    const bytes = await Deno.readFile(good);
    bytes[0] = bytes[0]! ^ 0xff;
    await Deno.writeFile(bad, bytes);
    const readers = (container: string): string[][] => [
      ["extract", container, `${dir}/out-${crypto.randomUUID()}`],
      ["verify", container],
      ["list", container],
      ["cat", container, "a.txt"],
    ];
    const cases: [string, string[][], number][] = [
      ["an unknown flag", [
        ["create", `${dir}/src`, `${dir}/x.ctnr`, "--no-such-flag"],
        ...readers(good).map((args) => [...args, "--no-such-flag"]),
      ], 2],
      ["a missing container", readers(`${dir}/missing.ctnr`), 1],
      ["a file that is not a container", [
        ...readers(`${dir}/text.txt`),
        ["create", `${dir}/src`, `${dir}/text.txt`],
        ["create", `${dir}/src`, `${dir}/text.txt`, "--new"],
      ], 1],
      ["a status file that is the container", [
        ["create", `${dir}/src`, good, "--status-file", good],
        ["extract", good, `${dir}/out-s`, "--status-file", good],
        ["verify", good, "--status-file", `${good}.idx`],
      ], 2],
      ["a missing --index", readers(good).map((args) => [...args, "--index", `${dir}/no.idx`]), 1],
      ["a payload that does not match its SHA-256", [
        ["extract", bad, `${dir}/out-bad`],
        ["verify", bad],
        ["cat", bad, "a.txt"],
      ], 1],
      ["a pattern that selects nothing", [
        ...readers(good).map((args) => [...args, "no-such-name"]),
        ["create", `${dir}/src`, `${dir}/p.ctnr`, "--include", "no-such-name"],
      ], 1],
      ["a bad number", [
        ["create", `${dir}/src`, `${dir}/y.ctnr`, "--chunk-size", "0"],
        ["extract", good, `${dir}/out-n`, "--chunk-size", "0"],
        ["verify", good, "--chunk-size", "-1"],
      ], 2],
    ];
    for (const [mistake, runs, code] of cases) {
      for (const args of runs) {
        const run = await runCli(...args);
        assert.equal(run.code, code, `${mistake}: ctnr ${args.join(" ")}: ${run.stderr}`);
        assert.equal(run.stderr.trim().split("\n")[0]!.startsWith("ctnr: "), true, run.stderr);
        assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
      }
    }
  });
});

Deno.test("main extract --keep-going names flags, not library options, in each entry's error", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a", "abs": { symlink: "/etc/hostname" } });
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`)).code, 0);
    for (
      const args of [["extract", `${dir}/c.ctnr`, `${dir}/out`, "--keep-going"], [
        "verify",
        `${dir}/c.ctnr`,
      ]]
    ) {
      const run = await runCli(...args);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^ctnr: error: .*"abs".*--allow-unsafe-links/m);
      assert.doesNotMatch(run.stderr, /allowUnsafeLinks/);
    }
  });
});

/**
 * Run the CLI as a real process, through `sh -c` with a umask, optionally as another user
 * (`setpriv`, as root): its exit code and stderr.
 */
async function ctnrProcess(
  args: string[],
  options: { umask: string; user?: number; denoDir?: string },
): Promise<{ code: number; stderr: string }> {
  const quoted = [Deno.execPath(), "run", "--allow-all", `${ROOT}cli.ts`, ...args]
    .map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const script = `umask ${options.umask} && exec ${quoted}`;
  const [cmd, ...rest] = options.user === undefined ? ["sh", "-c", script] : [
    "setpriv",
    `--reuid=${options.user}`,
    `--regid=${options.user}`,
    "--clear-groups",
    "sh",
    "-c",
    script,
  ];
  const run = await runCommand(cmd!, rest, {
    timeoutMs: DENO_CHILD_TIMEOUT_MS,
    cwd: ROOT,
    ...(options.denoDir === undefined
      ? {}
      : { env: { DENO_DIR: options.denoDir, HOME: options.denoDir } }),
  });
  return { code: run.code, stderr: run.stderr };
}

/** The permission bits of each path under `root`, in octal. */
async function modesUnder(root: string, paths: string[]): Promise<string[]> {
  return await Promise.all(
    paths.map(async (p) => ((await Deno.lstat(`${root}/${p}`)).mode! & 0o777).toString(8)),
  );
}

Deno.test("ctnr create and extract keep a 0700 folder 0700, so the file in it stays private", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "private/notes.txt": { content: "secret", mode: 0o644 } });
    await Deno.chmod(`${dir}/src/private`, 0o700);
    const made = await ctnrProcess(["create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize"], {
      umask: "022",
    });
    assert.equal(made.code, 0, made.stderr);
    const run = await ctnrProcess(["extract", `${dir}/c.ctnr`, `${dir}/out`], { umask: "022" });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await modesUnder(`${dir}/out`, ["private", "private/notes.txt"]), [
      "700",
      "644",
    ]);
    assert.equal(await Deno.readTextFile(`${dir}/out/private/notes.txt`), "secret");
  });
});

const NOBODY = 65534;
const NOT_ROOT_MISSING = Deno.uid() !== 0
  ? "not root (setpriv needs it)"
  : (await runCommand("sh", ["-c", "command -v setpriv"], { timeoutMs: TOOL_TIMEOUT_MS }))
      .code !== 0
  ? "setpriv is not installed"
  : undefined;

Deno.test({
  name:
    "ctnr extract takes the umask off modes as a user other than root, keeps them with -p and as root",
  ignore: NOT_ROOT_MISSING !== undefined,
  fn: async () => {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, {
        "group/file.txt": { content: "f", mode: 0o666 },
        "private/secret.txt": { content: "s", mode: 0o600 },
        "implied/x.txt": { content: "x", mode: 0o644 },
      });
      await Deno.chmod(`${dir}/src/group`, 0o775);
      await Deno.chmod(`${dir}/src/private`, 0o700);
      await ctnrProcess(["create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize"], { umask: "022" });
      // The other user reads the container and writes beside it, with a Deno cache of its own.
      await Deno.chmod(dir, 0o777);
      await Deno.chmod(`${dir}/c.ctnr`, 0o644);
      await Deno.mkdir(`${dir}/home`, { mode: 0o777 });
      await Deno.chmod(`${dir}/home`, 0o777);
      const paths = [
        "group",
        "group/file.txt",
        "private",
        "private/secret.txt",
        "implied",
        "implied/x.txt",
      ];
      const extract = async (out: string, options: { user?: number }, ...flags: string[]) => {
        const run = await ctnrProcess(["extract", `${dir}/c.ctnr`, `${dir}/${out}`, ...flags], {
          umask: "027",
          denoDir: `${dir}/home`,
          ...options,
        });
        assert.equal(run.code, 0, run.stderr);
        return await modesUnder(`${dir}/${out}`, paths);
      };
      assert.deepEqual(
        await extract("user", { user: NOBODY }),
        ["750", "640", "700", "600", "750", "640"],
        "a user: the umask 027 taken off",
      );
      assert.deepEqual(
        await extract("user-p", { user: NOBODY }, "-p"),
        ["775", "666", "700", "600", "755", "644"],
        "a user with -p: as recorded",
      );
      assert.deepEqual(
        await extract("root", {}),
        ["775", "666", "700", "600", "755", "644"],
        "root: as recorded",
      );
    });
  },
});
