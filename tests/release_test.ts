// The release build (scripts/compile.ts) and the release workflow. No binary is built here:
// `deno compile` downloads its base runtime, which this machine cannot reach (README "Release
// binaries"); these tests check what can be checked without it.
import assert from "node:assert/strict";
import { binaryName, compileArgs, ENVIRONMENT, PERMISSIONS, TARGETS } from "../scripts/compile.ts";
import {
  DENO_CHILD_TIMEOUT_MS,
  diffTrees,
  runCommand,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("compileArgs builds every release target with the narrow permissions, the V8 flag and its own output name", () => {
  assert.deepEqual([...TARGETS].sort(), [
    "aarch64-apple-darwin",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "x86_64-unknown-linux-gnu",
  ]);
  const outputs = new Set<string>();
  for (const target of TARGETS) {
    const args = compileArgs(target);
    assert.equal(args[0], "compile");
    assert.equal(args.at(-1), "cli.ts");
    assert.equal(args[args.indexOf("--target") + 1], target);
    outputs.add(args[args.indexOf("--output") + 1]!);
    for (const permission of PERMISSIONS) assert.ok(args.includes(permission), permission);
    assert.deepEqual(args.filter((arg) => /^(-A|--allow-all)$/.test(arg)), []);
    assert.ok(args.includes("--v8-flags=--max-semi-space-size=4"));
  }
  assert.equal(outputs.size, TARGETS.length);
  assert.equal(binaryName("x86_64-pc-windows-msvc"), "ctnr-x86_64-pc-windows-msvc.exe");
  assert.equal(binaryName("aarch64-apple-darwin"), "ctnr-aarch64-apple-darwin");
});

Deno.test("deno task compile refuses an unknown target with exit 2 before building anything", async () => {
  const run = await runCommand(Deno.execPath(), ["task", "-q", "compile", "x86_64-linux"], {
    cwd: ROOT,
    timeoutMs: DENO_CHILD_TIMEOUT_MS,
  });
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /^compile: Unknown target "x86_64-linux": one of x86_64-unknown/m);
  assert.doesNotMatch(run.stderr, /compile: ctnr-/);
});

Deno.test("the permissions baked into the binary suffice for create, verify, extract (with workers) and list", async () => {
  await withTempDir(async (dir) => {
    const big = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
    await writeTree(`${dir}/src`, {
      "a/b/f.txt": "alpha\n",
      "a/big.bin": big,
      "empty": { dir: true },
      "link": { symlink: "a/b/f.txt" },
    });
    const ctnr = (...args: string[]) =>
      runCommand(
        Deno.execPath(),
        ["run", "--no-prompt", ...PERMISSIONS, `${ROOT}cli.ts`, ...args],
        { timeoutMs: DENO_CHILD_TIMEOUT_MS },
      );
    const c = `${dir}/c.ctnr`;
    for (
      const args of [
        ["create", `${dir}/src`, c, "--compress", "--concurrency", "2", "--finalize"],
        ["verify", c],
        ["extract", c, `${dir}/out`, "--concurrency", "2", "--fsync"],
        ["list", c, "-l"],
      ]
    ) {
      const run = await ctnr(...args);
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
      assert.doesNotMatch(run.stderr, /did not grant/);
    }
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
    // The umask, which extract takes off recorded modes when not root, is readable with them
    // (with --allow-sys=uid alone it was not: extract fell back to 022, or prompted).
    await Deno.writeTextFile(`${dir}/umask.ts`, "Deno.umask(); Deno.uid();\n");
    const sys = await runCommand(
      Deno.execPath(),
      ["run", "--no-prompt", ...PERMISSIONS, `${dir}/umask.ts`],
      { timeoutMs: DENO_CHILD_TIMEOUT_MS },
    );
    assert.equal(sys.code, 0, sys.stderr);
    // Without --allow-sys extract stops: the set is no wider than needed, and no narrower.
    const narrower = await runCommand(
      Deno.execPath(),
      [
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-write",
        `${ROOT}cli.ts`,
        "extract",
        c,
        `${dir}/o2`,
      ],
      { timeoutMs: DENO_CHILD_TIMEOUT_MS },
    );
    assert.equal(narrower.code, 2);
    assert.match(narrower.stderr, /Requires sys access to "uid"/);
  });
});

Deno.test("the binary's --allow-env list holds every variable lib/ and cli/ read", async () => {
  const read = new Set<string>();
  for (const folder of ["lib", "cli"]) {
    for await (const path of walkFiles(new URL(`../${folder}/`, import.meta.url).pathname)) {
      const text = await Deno.readTextFile(path);
      for (const match of text.matchAll(/(?:Deno\.env\.get|get|env)\("([A-Z][A-Z0-9_]+)"\)/g)) {
        read.add(match[1]!);
      }
    }
  }
  assert.ok(read.has("CTNR_CACHE_DIR") && read.has("AWS_SECRET_ACCESS_KEY"), [...read].join());
  assert.ok(read.has("JOB_COMPLETION_INDEX") && read.has("SLURM_ARRAY_TASK_ID"), [...read].join());
  for (const name of read) {
    assert.ok((ENVIRONMENT as readonly string[]).includes(name), `${name} is read but not allowed`);
  }
});

async function* walkFiles(dir: string): AsyncGenerator<string> {
  for await (const item of Deno.readDir(dir)) {
    if (item.isDirectory) yield* walkFiles(`${dir}${item.name}/`);
    else if (item.name.endsWith(".ts")) yield `${dir}${item.name}`;
  }
}
