/**
 * Every option does what its help says: a value given twice, an option a
 * command does not use and contradicting options are usage errors (exit 2);
 * `--quiet`, `--count`, `--scan-sizes` and the status file's keys.
 */

import { REMOTE_FLAGS } from "../cli/_reader.ts";
import assert from "node:assert/strict";
import { exists, runCli, withTempDir, writeTree } from "./_helpers.ts";

const TREE = {
  "a.txt": "alpha\n",
  "docs/readme.md": "# readme\n",
  "data/noise.bin": "0123456789".repeat(5000),
  "empty": { dir: true },
  "link": { symlink: "a.txt" },
} as const;

async function finalized(dir: string): Promise<string> {
  await writeTree(`${dir}/src`, TREE);
  const c = `${dir}/c.ctnr`;
  const run = await runCli("create", `${dir}/src`, c, "--finalize");
  assert.equal(run.code, 0, run.stderr);
  return c;
}

Deno.test("main refuses an option that takes one value given twice, naming it", async () => {
  await withTempDir(async (dir) => {
    const c = await finalized(dir);
    const cases: [string[], string][] = [
      [
        ["create", "--src", `${dir}/src`, "--src", `${dir}/b`, "--container", `${dir}/n.ctnr`],
        "src",
      ],
      [
        ["create", `${dir}/src`, "--container", `${dir}/n.ctnr`, "--container", `${dir}/m.ctnr`],
        "container",
      ],
      [
        ["create", `${dir}/src`, `${dir}/n.ctnr`, "--fsync-every", "1", "--fsync-every", "2"],
        "fsync-every",
      ],
      [["extract", c, "--outdir", `${dir}/o1`, "--outdir", `${dir}/o2`], "outdir"],
      [["verify", c, "--index", `${c}.idx`, "--index", `${c}.idx`], "index"],
      [["list", "--container", c, "--container", c], "container"],
      [["info", "--container", c, "--container", c], "container"],
      [["cat", "--container", c, "--container", c, "a.txt"], "container"],
    ];
    for (const [args, flag] of cases) {
      const run = await runCli(...args);
      assert.equal(run.code, 2, args.join(" "));
      assert.match(run.stderr, new RegExp(`^ctnr: Option --${flag} given twice \\("`, "m"));
      assert.match(run.stderr, /give it once/);
      assert.match(run.stderr, new RegExp(`Run "ctnr ${args[0]} --help" for usage\\.`));
    }
    for (const path of ["n.ctnr", "m.ctnr", "o1", "o2"]) {
      assert.equal(await exists(`${dir}/${path}`), false, `${path} was written`);
    }
  });
});

Deno.test("main create refuses --remove-index-on-finalize without --finalize or --finalize-only", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    const c = `${dir}/c.ctnr`;
    const run = await runCli("create", `${dir}/src`, c, "--remove-index-on-finalize");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--remove-index-on-finalize needs --finalize or --finalize-only/);
    assert.equal(await exists(c), false);
    // With either, the index goes once embedded.
    assert.equal((await runCli("create", `${dir}/src`, c)).code, 0);
    const only = await runCli(
      "create",
      "--container",
      c,
      "--finalize-only",
      "--remove-index-on-finalize",
    );
    assert.equal(only.code, 0, only.stderr);
    assert.equal(await exists(`${c}.idx`), false);
  });
});

Deno.test("main refuses the options a command does not use", async () => {
  await withTempDir(async (dir) => {
    const c = await finalized(dir);
    const refused: Record<string, string[][]> = {
      verify: [
        ["--outdir", `${dir}/out`],
        ["--skip-existing"],
        ["--verify-existing"],
        ["--dry-run"],
        ["--keep-going"],
        ["--lookback", "100"],
        ["--fsync"],
        ["-p"],
        ["--same-permissions"],
        ["--concurrency", "1"],
        ["-l"],
      ],
      list: [["-q"], ["--quiet"], ["--tqdm"], ["--status-file", `${dir}/s`], [
        "--salvage",
      ]],
      info: [["-l"], ["-q"], ["--tqdm"], ["--salvage"]],
      cat: [["--json"], ["--lenient"], ["-l"], ["-q"]],
    };
    for (const [command, options] of Object.entries(refused)) {
      for (const option of options) {
        const args = command === "cat" ? [command, c, "a.txt", ...option] : [command, c, ...option];
        const run = await runCli(...args);
        assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, new RegExp(`Unknown option "${option[0]}"`), args.join(" "));
        assert.equal(run.stdout, "", args.join(" "));
      }
    }
    assert.equal(await exists(`${dir}/out`), false);
    assert.equal(await exists(`${dir}/s`), false);
  });
});

Deno.test("main refuses the options a mode does not use and contradicting ones, naming them", async () => {
  await withTempDir(async (dir) => {
    const c = await finalized(dir);
    const cases: [string[], RegExp][] = [
      [
        [
          "create",
          "--finalize-only",
          "--container",
          c,
          "--new",
          "--append",
          "--status-file",
          `${dir}/s.kv`,
          "--fsync-every",
          "abc",
          "--concurrency",
          "99",
          "--symlinks",
          "foo",
          "--status-format",
          "xml",
          "--chunk-size",
          "1",
        ],
        /^ctnr: Options --status-file, --status-format, --fsync-every, --chunk-size, --symlinks, --concurrency, --new, --append are not used with --finalize-only /,
      ],
      [
        ["create", "--finalize-only", `${dir}/src`, c],
        /^ctnr: Option --src is not used with --finalize-only /,
      ],
      [
        ["create", "--finalize-only", c, "--compress", "--tqdm"],
        /Options --compress, --tqdm are not used/,
      ],
      [
        ["create", `${dir}/src`, `${dir}/n.ctnr`, "--new", "--append"],
        /^ctnr: Options --new and --append contradict/,
      ],
      [
        ["create", `${dir}/src`, `${dir}/n.ctnr`, "--status-format", "json"],
        /^ctnr: Option --status-format is not used without --status-file$/m,
      ],
      [
        ["extract", c, `${dir}/out`, "--status-format", "kv"],
        /--status-format is not used without --status-file/,
      ],
      [
        ["verify", c, "--status-format", "json"],
        /--status-format is not used without --status-file/,
      ],
      [
        [
          "extract",
          c,
          `${dir}/nodir`,
          "--dry-run",
          "-p",
          "--concurrency",
          "1",
          "--skip-existing",
          "--fsync",
        ],
        /^ctnr: Options --skip-existing, --same-permissions, --fsync, --concurrency are not used with --dry-run /,
      ],
      [
        ["extract", c, `${dir}/nodir`, "--dry-run", "--verify-existing"],
        /Option --verify-existing is not used with --dry-run/,
      ],
    ];
    for (const [args, message] of cases) {
      for (const json of [false, true]) {
        const run = await runCli(...args, ...(json ? ["--json"] : []));
        assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, message, args.join(" "));
        if (json) assert.equal(JSON.parse(run.stdout).error.code, "USAGE");
        else assert.equal(run.stdout, "", args.join(" "));
      }
    }
    for (const path of [`${dir}/s.kv`, `${dir}/n.ctnr`, `${dir}/out`, `${dir}/nodir`]) {
      assert.equal(await exists(path), false, path);
    }
    // --finalize-only's one positional is the container.
    const only = await runCli("create", "--finalize-only", c, "-v");
    assert.equal(only.code, 0, only.stderr);
    assert.match(only.stdout, /already has a trailer/);
  });
});

const REMOTE_ONLY = new Set(REMOTE_FLAGS.map((flag) => `--${flag.name}`));

Deno.test("main verify, list, info and cat accept every flag their help lists", async () => {
  await withTempDir(async (dir) => {
    const c = await finalized(dir);
    for (const command of ["verify", "list", "info", "cat"]) {
      const help = await runCli(command, "--help");
      assert.equal(help.code, 0);
      const flags = [...help.stdout.matchAll(/^ {2}(?:(-\w), )?(--[a-z-]+)(?: (\S+))?/gm)];
      assert.ok(flags.length >= 2, `${command}: ${help.stdout}`);
      for (const [, short, flag, placeholder] of flags) {
        for (const name of [short, flag]) {
          if (name === undefined) continue;
          // For a container on a server only: refused on this local file
          // (tests/remote_review_test.ts); accepted with a URL (tests/remote_test.ts).
          if (REMOTE_ONLY.has(name)) continue;
          const args: string[] = [command];
          if (name !== "--container") args.push(c);
          args.push(name);
          if (placeholder !== undefined) {
            args.push(
              name === "--container"
                ? c
                : name === "--index"
                ? `${c}.idx`
                : name === "--status-file"
                ? `${dir}/status-${command}`
                : placeholder.includes("|")
                ? placeholder.split("|").at(-1)!
                : name === "--connections" || name === "--shard-jobs"
                ? "4"
                : name === "--part"
                ? "0/1"
                : "4096",
            );
          }
          if (command === "cat") args.push("a.txt");
          if (name === "--status-format") args.push("--status-file", `${dir}/status-${command}`);
          const run = await runCli(...args);
          assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
        }
      }
    }
  });
});

Deno.test("main -q and --quiet leave stdout empty but for what was asked; warnings stay", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const c = `${dir}/c.ctnr`;
    for (const flag of ["-q", "--quiet"]) {
      // --compat leaves out the folder and the link, with a warning each.
      const create = await runCli(
        "create",
        `${dir}/src`,
        `${c}${flag}`,
        flag,
        "--compat",
        "--count",
      );
      assert.equal(create.code, 0, create.stderr);
      assert.equal(create.stdout, "");
      assert.equal(create.stderr.match(/^ctnr: warning: Left out/gm)?.length, 2, create.stderr);
      const extract = await runCli("extract", `${c}${flag}`, `${dir}/out${flag}`, flag);
      assert.equal(extract.code, 0, extract.stderr);
      assert.equal(extract.stdout, "");
      const verify = await runCli("verify", `${c}${flag}`, flag);
      assert.equal(verify.code, 0, verify.stderr);
      assert.equal(verify.stdout, "");
      assert.equal(verify.stderr, "");
      const json = await runCli("verify", `${c}${flag}`, flag, "--json");
      assert.equal(JSON.parse(json.stdout).ok, true, "--json is asked for: printed");
    }
    const both = await runCli("create", `${dir}/src`, `${dir}/d.ctnr`, "-q", "-v");
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--quiet and --verbose contradict/);
  });
});

Deno.test("main create --count and --scan-sizes print what they found", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    await writeTree(`${dir}/files`, { "a.txt": "alpha\n", "b.txt": "bravo\n" });
    const count = await runCli("create", `${dir}/src`, `${dir}/c1.ctnr`, "--count");
    assert.equal(count.code, 0);
    assert.match(count.stdout, /^\[[^\]]+\] Count: 5 entries \(3 files, 1 folder, 1 link\)$/m);
    const scan = await runCli("create", `${dir}/src`, `${dir}/c2.ctnr`, "--scan-sizes");
    assert.match(
      scan.stdout,
      /^\[[^\]]+\] Scan: 5 entries \(3 files, 1 folder, 1 link\), 48\.8 KiB total$/m,
    );
    // Files only: the original tool's words.
    const files = await runCli("create", `${dir}/files`, `${dir}/c3.ctnr`, "--count");
    assert.match(files.stdout, /^\[[^\]]+\] Count: 2 files$/m);
    const json = await runCli("create", `${dir}/files`, `${dir}/c4.ctnr`, "--scan-sizes", "--json");
    assert.deepEqual(JSON.parse(json.stdout).prescan, {
      entries: 2,
      files: 2,
      folders: 0,
      links: 0,
      bytes: 12,
    });
    assert.match(json.stderr, /Scan: 2 files, 12 B total/);
  });
});

/** The keys the original create_container.py writes in its status file. */
const CREATE_KEYS = [
  "start_time",
  "total_files",
  "total_bytes",
  "processed_files",
  "bytes_written",
  "current_file",
  "current_file_bytes",
  "speed_bps",
  "eta_seconds",
  "status",
  "finished_time",
];
/** The keys the original extract_container.py writes in its status file. */
const EXTRACT_KEYS = [
  "start_time",
  "start_ts",
  "total_files",
  "total_bytes",
  "processed_files",
  "bytes_extracted",
  "current_file",
  "current_file_bytes",
  "speed_bps",
  "eta_seconds",
  "status",
  "finished_time",
];

function parseKv(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.trimEnd().split("\n")) {
    const at = line.indexOf("=");
    assert.ok(at > 0, `not key=value: ${line}`);
    fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

Deno.test("main create and extract end with a status file holding every key the original tools write", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const c = `${dir}/c.ctnr`;
    for (const format of ["kv", "json"]) {
      const status = `${dir}/create.${format}`;
      const before = Date.now();
      const run = await runCli(
        "create",
        `${dir}/src`,
        `${c}.${format}`,
        "--scan-sizes",
        "--status-file",
        status,
        "--status-format",
        format,
      );
      assert.equal(run.code, 0, run.stderr);
      const text = await Deno.readTextFile(status);
      const fields: Record<string, unknown> = format === "json" ? JSON.parse(text) : parseKv(text);
      for (const key of CREATE_KEYS) assert.ok(key in fields, `create ${format}: no ${key}`);
      const value = (key: string) => format === "json" ? fields[key] : Number(fields[key]);
      assert.equal(fields.status, "finished");
      assert.equal(value("processed_files"), 5);
      assert.equal(value("total_files"), 5);
      assert.equal(value("total_bytes"), 50015);
      assert.equal(value("bytes_written"), 50015);
      assert.equal(fields.current_file, "");
      assert.equal(value("current_file_bytes"), 0);
      assert.equal(value("eta_seconds"), 0);
      assert.ok((value("speed_bps") as number) >= 0);
      const start = Date.parse(fields.start_time as string);
      assert.ok(start >= before - 1000 && start <= Date.now(), String(fields.start_time));
      assert.ok(Date.parse(fields.finished_time as string) >= start);

      const extractStatus = `${dir}/extract.${format}`;
      const extract = await runCli(
        "extract",
        `${c}.${format}`,
        `${dir}/out.${format}`,
        "--status-file",
        extractStatus,
        "--status-format",
        format,
      );
      assert.equal(extract.code, 0, extract.stderr);
      const etext = await Deno.readTextFile(extractStatus);
      const e: Record<string, unknown> = format === "json" ? JSON.parse(etext) : parseKv(etext);
      for (const key of EXTRACT_KEYS) assert.ok(key in e, `extract ${format}: no ${key}`);
      const ev = (key: string) => format === "json" ? e[key] : Number(e[key]);
      assert.equal(e.status, "finished");
      assert.equal(ev("total_files"), 5);
      assert.equal(ev("processed_files"), 5);
      assert.equal(ev("total_bytes"), 50015);
      assert.equal(ev("bytes_extracted"), 50015);
      assert.equal(e.current_file, "");
      assert.equal(ev("current_file_bytes"), 0);
      assert.equal(ev("eta_seconds"), 0);
      // start_ts: the same moment as start_time, in seconds since the epoch.
      assert.ok(
        Math.abs((ev("start_ts") as number) * 1000 - Date.parse(e.start_time as string)) < 1,
      );
    }
  });
});

Deno.test("main verify and extract that fail end their status file with nothing left: eta 0, no current file", async () => {
  await withTempDir(async (dir) => {
    const c = await finalized(dir);
    const bytes = await Deno.readFile(c);
    bytes[10] = bytes[10]! ^ 0xff; // in the first payloads
    await Deno.writeFile(c, bytes);
    const runs = [["verify", c], ["extract", c, `${dir}/o1`], [
      "extract",
      c,
      `${dir}/o2`,
      "--keep-going",
    ]];
    for (const args of runs) {
      const status = `${dir}/status-${args[0]}-${args.length}`;
      const run = await runCli(...args, "--status-file", status);
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
      const fields = parseKv(await Deno.readTextFile(status));
      assert.equal(fields.status, "failed", args.join(" "));
      assert.equal(fields.eta_seconds, "0", args.join(" "));
      assert.equal(fields.current_file, "", args.join(" "));
      assert.equal(fields.current_file_bytes, "0", args.join(" "));
    }
  });
});

Deno.test("main -q help names what each command prints when asked, and that -q silences --count", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const helps: [string, RegExp][] = [
      [
        "create",
        /--quiet .*\n.*\(--print-each, --json; not the lines of --count and\n.*--scan-sizes, which still set the progress total\)/,
      ],
      ["extract", /--quiet .*\n.*\(--salvage's list, --json\)/],
      ["verify", /--quiet .*\n.*\(--salvage's list, --json\)/],
    ];
    for (const [command, quiet] of helps) {
      const help = await runCli(command, "--help");
      assert.match(help.stdout, quiet, command);
      assert.doesNotMatch(help.stdout, command === "create" ? /salvage/ : /print-each/, command);
    }
    const help = await runCli("create", "--help");
    assert.match(help.stdout, /--count .*print the count\n.*\(not with -q\)/);
  });
});

Deno.test("main create --dry-run says what it would add, not that it added", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const run = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--dry-run");
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /\] Dry run, nothing written: would add 5 entries \(.* read, .* stored\), 0 already present; the index would hold 5 entries$/m,
    );
    assert.doesNotMatch(run.stdout, /Added/);
    assert.equal(await exists(`${dir}/c.ctnr`), false);
  });
});

Deno.test("main prints counts and sizes with singular and plural, and sizes as 1.5 KiB", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/one`, { "a.txt": "hello" });
    const c = `${dir}/c.ctnr`;
    const create = await runCli("create", `${dir}/one`, c, "--finalize");
    assert.match(
      create.stdout,
      /\] Added 1 entry \(5 B read, 5 B stored\), 0 already present, 1 entry in the index$/m,
    );
    const extract = await runCli("extract", c, `${dir}/out`);
    assert.match(extract.stdout, /\] Extracted 1 of 1 entry \(1 file, 0 folders, 0 links\), 5 B$/m);
    const verify = await runCli("verify", c);
    assert.match(verify.stdout, /\] Verified 1 entry, 5 B: all payloads match their SHA-256$/m);
    const list = await runCli("list", "-l", c);
    assert.match(list.stdout, /^total: 1 entry \(1 file, 0 folders, 0 links\), 5 B, 5 B stored$/m);
    const info = await runCli("info", c);
    assert.match(info.stdout, /^Entries: +1 \(1 file, 0 folders, 0 links\)$/m);

    await writeTree(`${dir}/empty`, { "e": { dir: true } });
    const empty = await runCli("create", `${dir}/empty`, `${dir}/e.ctnr`);
    assert.match(empty.stdout, /Added 1 entry \(0 B read, 0 B stored\)/);
    for (const run of [create, extract, verify, list, info, empty]) {
      assert.doesNotMatch(run.stdout, /\d\.\d\d[KMG]?i?B|\dB\b/, "the original's 0.00B style");
    }
    await writeTree(`${dir}/big`, { "a.txt": "x".repeat(1536), "b.txt": "b" });
    const big = await runCli("create", `${dir}/big`, `${dir}/b.ctnr`);
    assert.match(big.stdout, /Added 2 entries \(1\.5 KiB read, 1\.5 KiB stored\)/);
    // The warnings and errors that count: one entry.
    await Deno.remove(`${dir}/big/b.txt`);
    const gone = await runCli("create", `${dir}/big`, `${dir}/b.ctnr`);
    assert.match(
      gone.stderr,
      /warning: 1 committed entry is no longer in the source; the container keeps it: "b\.txt"$/m,
    );
    await writeTree(`${dir}/other`, { "z.txt": "z" });
    const other = await runCli("create", `${dir}/other`, c);
    assert.match(other.stderr, /: the entry committed in it is not in this source, /);
    await Deno.writeTextFile(`${dir}/big/a.txt`, "changed");
    const changed = await runCli("create", `${dir}/big`, `${dir}/b.ctnr`);
    assert.equal(changed.code, 3);
    assert.match(
      changed.stderr,
      /^ctnr: 1 file changed after it was committed; the container holds its older version/m,
    );
  });
});

Deno.test("main create --finalize-only --json reports whether it wrote a trailer", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    const c = `${dir}/c.ctnr`;
    assert.equal((await runCli("create", `${dir}/src`, c)).code, 0);
    const first = await runCli("create", "--container", c, "--finalize-only", "--json");
    assert.equal(first.code, 0, first.stderr);
    const s = JSON.parse(first.stdout);
    assert.equal(s.finalize_only, true);
    assert.equal(s.finalized, true);
    assert.equal(s.container_bytes, (await Deno.stat(c)).size);
    assert.match(first.stderr, /Finalized container/);
    const again = await runCli("create", "--container", c, "--finalize-only", "--json");
    assert.equal(JSON.parse(again.stdout).finalized, false);
  });
});

Deno.test("main verify --allow-unsafe-links does not count a link pointing outside as a fault", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a", "abs": { symlink: "/etc/hostname" } });
    const c = `${dir}/c.ctnr`;
    assert.equal((await runCli("create", `${dir}/src`, c)).code, 0);
    const strict = await runCli("verify", c, "--json");
    assert.equal(strict.code, 1);
    assert.equal(JSON.parse(strict.stdout).faults, 1);
    const allowed = await runCli("verify", c, "--allow-unsafe-links", "--json");
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(JSON.parse(allowed.stdout).faults, 0);
  });
});

Deno.test("main verify and extract -v name the index they loaded, -vv each entry done", async () => {
  await withTempDir(async (dir) => {
    const c = await finalized(dir);
    const v = await runCli("verify", c, "-v");
    assert.match(v.stdout, /\] Loaded index from .*c\.ctnr\.idx \(5 entries\)$/m);
    assert.doesNotMatch(v.stdout, /Verified entry/);
    await Deno.rename(`${c}.idx`, `${dir}/moved.idx`);
    const vv = await runCli("verify", c, "-vv");
    assert.match(vv.stdout, /\] Loaded embedded index \(5 entries\)$/m);
    assert.match(vv.stdout, /\] Verified entry: a\.txt \(offset=0 size=6\)$/m);
    assert.equal(vv.stdout.match(/Verified entry: /g)?.length, 5);
    const extract = await runCli("extract", c, `${dir}/out`, "-vv");
    assert.match(extract.stdout, /\] Loaded embedded index \(5 entries\)$/m);
    assert.match(extract.stdout, /\] Extracted entry: a\.txt \(offset=0 size=6\)$/m);
    assert.match(extract.stdout, /\] Extracted entry: empty\/ \(folder\)$/m);
    assert.match(extract.stdout, /\] Extracted entry: link -> a\.txt \(link\)$/m);
    assert.equal(extract.stdout.match(/Extracted entry: /g)?.length, 5);
  });
});

Deno.test("main extract --salvage -q prints only the relpaths it left out", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha\n", "b.txt": "bravo\n", "c.txt": "charlie\n" });
    const c = `${dir}/c.ctnr`;
    assert.equal((await runCli("create", `${dir}/src`, c)).code, 0);
    await Deno.truncate(c, 8); // a.txt (6 bytes) whole, b.txt cut, c.txt gone
    const run = await runCli("extract", c, `${dir}/out`, "--salvage", "-q");
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "b.txt\nc.txt\n");
    assert.match(run.stderr, /the 2 entries not restored are listed on stdout$/m);
    const json = await runCli("extract", c, `${dir}/out2`, "--salvage", "--json");
    assert.equal(json.code, 1);
    const s = JSON.parse(json.stdout);
    assert.deepEqual(
      (s.fault_list as { relpath: string; code: string }[]).map((f) => [f.relpath, f.code]),
      [["b.txt", "CONTAINER_CUT"], ["c.txt", "CONTAINER_CUT"]],
    );
    assert.equal(s.left_out, 2);
    assert.match(json.stderr, /^b\.txt$/m, "the list goes to stderr with --json");
    assert.match(json.stderr, /listed on stderr$/m);
  });
});

Deno.test("main refuses a --status-file in a missing folder before writing anything (exit 2)", async () => {
  await withTempDir(async (dir) => {
    const c = await finalized(dir);
    const status = `${dir}/nodir/s.kv`;
    const runs = [
      ["create", `${dir}/src`, `${dir}/x.ctnr`],
      ["create", `${dir}/src`, `${dir}/x.ctnr`, "--dry-run"],
      ["verify", c],
      ["extract", c, `${dir}/out`],
    ];
    for (const args of runs) {
      const run = await runCli(...args, "--status-file", status);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(
        run.stderr,
        /^ctnr: Cannot write the status file ".*\/nodir\/s\.kv" \(--status-file\): its folder ".*\/nodir" does not exist$/m,
      );
    }
    for (const path of [`${dir}/x.ctnr`, `${dir}/x.ctnr.idx`, `${dir}/out`, `${dir}/nodir`]) {
      assert.equal(await exists(path), false, path);
    }
  });
});
