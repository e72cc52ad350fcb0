/**
 * `--json` on every command: one JSON summary on stdout at the end, also when
 * the run fails; the lines for people on stderr (README "Output for scripts").
 */

import assert from "node:assert/strict";
import { ContainerWriter } from "../mod.ts";
import { stopAtOnce } from "../cli/signals.ts";
import { FAULTS_LISTED, RunSummary } from "../cli/summary.ts";
import {
  pseudoRandomBytes,
  runCli,
  runCommand,
  TOOL_TIMEOUT_MS,
  withTempDir,
  writeTree,
} from "./_helpers.ts";
import { CLI, PROJECT } from "./_crash.ts";

const TREE = {
  "a.txt": "alpha\n",
  "docs/readme.md": "# readme\n",
  "data/noise.bin": "0123456789".repeat(5000),
  "empty": { dir: true },
  "link": { symlink: "a.txt" },
} as const;

/** Keys every summary has, in order, around the command's own. */
const HEAD = ["command", "ok", "exit_code", "error"];
const TAIL = ["duration_s", "faults", "fault_list", "warnings", "warning_codes"];

/** stdout must be exactly one JSON object and a newline. */
function summaryOf(run: { stdout: string; stderr: string }): Record<string, unknown> {
  assert.ok(run.stdout.endsWith("}\n"), `stdout is not one JSON line:\n${run.stdout}`);
  assert.equal(
    run.stdout.indexOf("\n"),
    run.stdout.length - 1,
    `more than one line:\n${run.stdout}`,
  );
  const summary = JSON.parse(run.stdout);
  const keys = Object.keys(summary);
  assert.deepEqual(keys.slice(0, HEAD.length), HEAD);
  assert.deepEqual(keys.slice(-TAIL.length), TAIL);
  assert.equal(typeof summary.duration_s, "number");
  assert.ok(summary.duration_s >= 0 && summary.duration_s < 60);
  return summary;
}

Deno.test("main create --json prints one summary on stdout and the log on stderr", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const c = `${dir}/c.ctnr`;
    const run = await runCli("create", `${dir}/src`, c, "--json", "--finalize", "-v");
    assert.equal(run.code, 0, run.stderr);
    const s = summaryOf(run);
    assert.deepEqual({ ...s, duration_s: 0 }, {
      command: "create",
      ok: true,
      exit_code: 0,
      error: null,
      container: c,
      src: `${dir}/src`,
      index: `${c}.idx`,
      dry_run: false,
      resumed: false,
      finalized: true,
      added: 5,
      already_present: 0,
      entries: 5,
      left_out: 0,
      missing: 0,
      excluded: 0,
      source_errors: 0,
      changed_since_commit: 0,
      orig_bytes: 50015,
      stored_bytes: 50015,
      container_bytes: (await Deno.stat(c)).size,
      duration_s: 0,
      faults: 0,
      fault_list: [],
      warnings: 0,
      warning_codes: {},
    });
    // The lines for people, -v's included, went to stderr.
    assert.match(run.stderr, /\] \[1\] Appending: a\.txt$/m);
    assert.match(run.stderr, /\] Added 5 entries/);
  });
});

Deno.test("main create --json counts warnings by code", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const run = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--json", "--compat");
    assert.equal(run.code, 0, run.stderr);
    const s = summaryOf(run);
    assert.equal(s.warnings, 2);
    assert.deepEqual(s.warning_codes, { LEFT_OUT: 2 });
    assert.equal(s.left_out, 2);
    assert.match(run.stderr, /^ctnr: warning: Left out/m);
  });
});

Deno.test("main create --json names the source names it cannot store, to rename, in a run that exits 3", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "ok.txt": "fine", "back\\slash": "x" });
    const made = await runCommand("bash", ["-c", "touch \"$1\"/$'\\xff.txt'", "_", `${dir}/src`], {
      timeoutMs: TOOL_TIMEOUT_MS,
    });
    assert.equal(made.code, 0, made.stderr);
    const run = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--json");
    assert.equal(run.code, 3);
    const s = summaryOf(run);
    assert.equal(s.ok, false);
    assert.equal(s.exit_code, 3);
    assert.equal(s.source_errors, 2);
    assert.equal(s.added, 1);
    assert.equal(s.faults, 2);
    const faults = s.fault_list as { code: string; message: string; relpath?: string }[];
    assert.deepEqual(faults.map((f) => [f.code, f.relpath]), [
      ["SOURCE", "back\\slash"],
      ["SOURCE", "\ufffd.txt"],
    ]);
    assert.match(faults[0]!.message, /^Cannot store "back\\slash": .*backslash.*; rename it$/);
    assert.match(faults[1]!.message, /^Cannot store ".*": the name is not valid UTF-8; rename it$/);
    assert.deepEqual(s.error, {
      code: "SOURCE",
      message: "2 source names cannot be stored (named above); the container is incomplete " +
        "(rename them and run create again)",
    });
    assert.doesNotMatch(run.stderr, /could not be read|once readable/);
  });
});

Deno.test("main extract --json reports the fault that stopped it, with the same exit code", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "alpha\n", "b.txt": "bravo\n" });
    const c = `${dir}/c.ctnr`;
    assert.equal((await runCli("create", `${dir}/src`, c)).code, 0);
    const bytes = await Deno.readFile(c);
    bytes[0] = bytes[0]! ^ 0xff; // a.txt's payload
    await Deno.writeFile(c, bytes);
    const run = await runCli("extract", c, `${dir}/out`, "--json");
    assert.equal(run.code, 1);
    const s = summaryOf(run);
    assert.equal(s.ok, false);
    assert.equal(s.exit_code, 1);
    const error = s.error as { code: string; message: string };
    assert.equal(error.code, "INTEGRITY");
    assert.match(error.message, /^Cannot verify "a\.txt": payload SHA-256 mismatch/);
    assert.match(run.stderr, /^ctnr: Cannot verify "a\.txt"/m, "the line on stderr as always");
    assert.equal(s.entries, 2);
    assert.equal(s.outdir, `${dir}/out`);

    // verify goes on and lists every fault with its entry.
    const verify = await runCli("verify", c, "--json");
    assert.equal(verify.code, 1);
    const v = summaryOf(verify);
    assert.equal(v.command, "verify");
    assert.equal(v.faults, 1);
    assert.equal(v.verified, 1);
    assert.equal(v.failed, 1);
    const [fault] = v.fault_list as { code: string; message: string; relpath: string }[];
    assert.equal(fault!.code, "INTEGRITY");
    assert.equal(fault!.relpath, "a.txt");
    assert.deepEqual(v.error, {
      code: "INTEGRITY",
      message: "verify: 1 of 2 entries failed (named above); 1 verified",
    });
  });
});

Deno.test("main verify --json lists the first faults and counts them all", async () => {
  await withTempDir(async (dir) => {
    const c = `${dir}/c.ctnr`;
    const writer = await ContainerWriter.open(c);
    const n = FAULTS_LISTED + 5;
    for (let i = 0; i < n; i++) {
      await writer.addFile({ relpath: `f${i}` }, new Uint8Array([i & 0xff]));
    }
    await writer.finalize();
    const bytes = await Deno.readFile(c);
    for (let i = 0; i < n; i++) bytes[i] = bytes[i]! ^ 0xff; // every one-byte payload
    await Deno.writeFile(c, bytes);
    const run = await runCli("verify", c, "--json");
    assert.equal(run.code, 1);
    const s = summaryOf(run);
    assert.equal(s.faults, n);
    assert.equal((s.fault_list as unknown[]).length, FAULTS_LISTED);
    assert.equal(s.failed, n);
  });
});

Deno.test("main --json: an unparsable command line gets no summary; a bad value found later does", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    const c = `${dir}/c.ctnr`;
    for (
      const args of [
        ["create", `${dir}/src`, c, "--json", "--bogus"],
        ["create", "--src", `${dir}/src`, "--src", `${dir}/other`, "--container", c, "--json"],
        ["verify", c, "--json", "--outdir", dir],
        ["info", "--json", "--index"],
      ]
    ) {
      const run = await runCli(...args);
      assert.equal(run.code, 2, args.join(" "));
      assert.equal(run.stdout, "", args.join(" "));
      assert.match(run.stderr, /^ctnr: /);
    }
    const late = await runCli("create", `${dir}/src`, c, "--json", "--fsync-every", "often");
    assert.equal(late.code, 2);
    const s = summaryOf(late);
    assert.deepEqual(s.error, {
      code: "USAGE",
      message: 'Option --fsync-every takes a whole number, got "often"',
    });
    // A status file that is the container: refused by the library, after the flags were read.
    assert.equal((await runCli("create", `${dir}/src`, c)).code, 0);
    const status = await runCli("extract", c, `${dir}/out`, "--json", "--status-file", c);
    assert.equal(status.code, 2);
    assert.equal((summaryOf(status).error as { code: string }).code, "USAGE");
  });
});

Deno.test("main info --json on a missing container is a summary with the error", async () => {
  await withTempDir(async (dir) => {
    const run = await runCli("info", `${dir}/missing.ctnr`, "--json");
    assert.equal(run.code, 1);
    const s = summaryOf(run);
    assert.equal(s.command, "info");
    assert.equal(s.container, `${dir}/missing.ctnr`);
    assert.match((s.error as { message: string }).message, /missing\.ctnr/);
  });
});

Deno.test("main list --json prints index lines only, no summary line", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    assert.equal((await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize")).code, 0);
    const run = await runCli("list", `${dir}/c.ctnr`, "--json");
    assert.equal(run.code, 0);
    const lines = run.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((e) => e.relpath), [
      "a.txt",
      "data/noise.bin",
      "docs/readme.md",
      "empty",
      "link",
    ]);
    assert.equal(lines[0].sha256.length, 64, "the full SHA-256");
  });
});

Deno.test("main create --json stopped by SIGTERM prints its summary with what it committed and exits 143", async () => {
  await withTempDir(async (dir) => {
    // 64 MiB gzipped at about 40 MB/s: over a second of work in one file, after a small one.
    await writeTree(`${dir}/src`, { "a.txt": "alpha", "big.bin": pseudoRandomBytes(64 << 20, 5) });
    const container = `${dir}/c.ctnr`;
    const status = `${dir}/status.kv`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLI,
        "create",
        `${dir}/src`,
        container,
        "--compress",
        "--json",
        "--status-file",
        status,
      ],
      cwd: PROJECT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const watchdog = setTimeout(() => child.kill("SIGKILL"), 60_000);
    try {
      // Once the file's payload has started.
      for (let i = 0; i < 6000; i++) {
        const size = await Deno.stat(container).then((info) => info.size, () => 0);
        if (size > 1 << 20) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      child.kill("SIGTERM");
      const { code, stdout, stderr } = await child.output();
      const text = new TextDecoder().decode(stdout);
      assert.equal(code, 143, new TextDecoder().decode(stderr));
      const s = summaryOf({ stdout: text, stderr: "" });
      assert.equal(s.exit_code, 143);
      assert.equal((s.error as { code: string }).code, "INTERRUPTED");
      assert.equal(s.command, "create");
      // What it committed: a.txt, not big.bin (its bytes taken back).
      assert.equal(s.added, 1);
      assert.equal(s.entries, 1);
      assert.equal(s.orig_bytes, 5);
      assert.equal(s.container_bytes, (await Deno.stat(container)).size);
      const kv = await Deno.readTextFile(status);
      assert.match(kv, /^status=interrupted$/m);
      assert.match(kv, /^current_file=$/m);
      assert.match(kv, /^current_file_bytes=0$/m);
      assert.match(kv, /^eta_seconds=0$/m);
    } finally {
      clearTimeout(watchdog);
    }
  });
});

Deno.test("main verify and extract --json of a container cut short count the index's entries, each past the cut once", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const c = `${dir}/c.ctnr`;
    assert.equal((await runCli("create", `${dir}/src`, c, "--finalize")).code, 0);
    const cut = `${dir}/cut.ctnr`;
    await Deno.writeFile(cut, (await Deno.readFile(c)).subarray(0, 3000));
    const whole = summaryOf(await runCli("verify", c, "--json"));
    const cases: [string[], { failed: number; left_out: number }][] = [
      [["verify", cut], { failed: 2, left_out: 0 }],
      [["verify", cut, "--salvage"], { failed: 0, left_out: 2 }],
      [["extract", cut, `${dir}/o1`, "--keep-going"], { failed: 2, left_out: 0 }],
      [["extract", cut, `${dir}/o2`, "--salvage"], { failed: 0, left_out: 2 }],
    ];
    for (const [args, expected] of cases) {
      const run = await runCli(...args, "--index", `${c}.idx`, "--json");
      assert.equal(run.code, 1, args.join(" "));
      const s = summaryOf(run);
      // The index's entries by kind and its totals, as for the whole container.
      for (
        const key of ["entries", "files", "folders", "links", "total_orig_bytes", "stored_bytes"]
      ) {
        assert.equal(s[key], whole[key], `${args.join(" ")}: ${key}`);
      }
      assert.equal(s.entries, 5);
      assert.equal(s.files, 3);
      assert.equal(s.failed, expected.failed, args.join(" "));
      assert.equal(s.left_out, expected.left_out, args.join(" "));
      assert.equal(s.faults, 2, args.join(" "));
    }
  });
});

Deno.test("stopAtOnce prints the summary as it stands, with the signal as its error", () => {
  const summary = new RunSummary("extract");
  summary.json = true;
  let extracted = 3;
  summary.setLive(() => ({ extracted }));
  extracted = 7;
  let stdout = "";
  let stderr = "";
  const code = stopAtOnce("SIGINT", {
    stdout: (text) => stdout += text + "\n",
    stderr: (text) => stderr += text + "\n",
    writeBytes: () => Promise.resolve(),
    isTerminal: false,
  }, summary);
  assert.equal(code, 130);
  assert.equal(stderr, "ctnr: Interrupted by SIGINT again: stopped at once\n");
  const s = summaryOf({ stdout, stderr });
  assert.equal(s.exit_code, 130);
  assert.deepEqual(s.error, {
    code: "INTERRUPTED",
    message: "Interrupted by SIGINT again: stopped at once",
  });
  assert.equal(s.extracted, 7);
});

Deno.test("main --json names the container in every summary, also of a run refused for its options", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const c = `${dir}/r.ctnr`;
    const cases: [string[], unknown][] = [
      [["create", `${dir}/src`, c, "--remove-index-on-finalize"], c],
      [["create", `${dir}/src`, c, "-q", "-v"], c],
      [["create", `${dir}/src`, c, "--new", "--append"], c],
      [["extract", c, `${dir}/out`, "-q", "-v"], c],
      [["verify", c, "--status-format", "json"], c],
      [["create", "--src", `${dir}/src`], null],
      [["extract"], null],
    ];
    for (const [args, container] of cases) {
      const run = await runCli(...args, "--json");
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      const s = summaryOf(run);
      assert.ok("container" in s, args.join(" "));
      assert.equal(s.container, container, args.join(" "));
    }
  });
});

Deno.test("main refuses a --status-file that is stdout with --json, and writes one after the other into it without", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const c = `${dir}/c.ctnr`;
    assert.equal((await runCli("create", `${dir}/src`, c, "--finalize")).code, 0);
    for (
      const command of [["verify", c], ["extract", c, `${dir}/o`], ["create", `${dir}/src`, c]]
    ) {
      const run = await runCli(...command, "--json", "--status-file", "/dev/stdout");
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        /^ctnr: Option --status-file "\/dev\/stdout" is where standard output goes, which --json keeps for its summary$/m,
      );
      assert.equal(summaryOf(run).exit_code, 2);
    }
    // Without --json: the status and the log lines follow one another in the file stdout goes
    // to, whether it is named /dev/stdout or by its own path; none overwrites another.
    for (const status of ["/dev/stdout", `${dir}/out.txt`]) {
      const run = await runCommand("bash", [
        "-c",
        `'${Deno.execPath()}' run -A '${CLI}' verify '${c}' --status-file '${status}' > '${dir}/out.txt'`,
      ], { timeoutMs: 60_000, cwd: PROJECT });
      assert.equal(run.code, 0, run.stderr);
      const lines = (await Deno.readTextFile(`${dir}/out.txt`)).split("\n").filter((l) => l !== "");
      const bad = lines.filter((line) =>
        !/^\[[^\]]+\] Verified 5 entries/.test(line) && !/^[a-z_]+=/.test(line)
      );
      assert.deepEqual(bad, [], status);
      assert.equal(lines.filter((line) => line.includes("Verified 5 entries")).length, 1, status);
      assert.equal(lines.filter((line) => line === "status=finished").length, 1, status);
      assert.equal(lines.filter((line) => line === "status=running").length, 1, status);
    }
  });
});
