/**
 * Nothing the user types destroys data: outputs that would be another file of the run
 * (a status file that is the container or its index, an index that is its container, a status
 * file inside the source), status files that are devices, FIFOs or links, the container met
 * again inside the source under another name, and `--new` / `--append` / a resume of another
 * tree (lib/safety/output_paths.ts, lib/io/status_file.ts, lib/create/).
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConflictError, createContainer, type CtnrWarning, UsageError } from "../mod.ts";
import {
  diffTrees,
  exists,
  runCli,
  runCommand,
  TOOL_TIMEOUT_MS,
  withTempDir,
  writeTree,
} from "./_helpers.ts";
import { CLI } from "./_crash.ts";

const TREE = { "a.txt": "alpha\n", "docs/b.md": "# b\n", "docs/deep/c.txt": "c" } as const;
const OTHER = { "x.txt": "x", "y/z.txt": "z" } as const;

/** Bytes of each of `paths` that exists (`null` when missing): to assert nothing changed. */
async function snapshot(paths: string[]): Promise<(Uint8Array | null)[]> {
  return await Promise.all(paths.map((path) => Deno.readFile(path).catch(() => null)));
}

/** Relpaths of an NDJSON index. */
async function relpaths(index: string): Promise<string[]> {
  return (await Deno.readTextFile(index)).split("\n").filter((line) => line !== "")
    .map((line) => JSON.parse(line).relpath);
}

/** A container of TREE at `${dir}/c.ctnr` (its index beside it), from `${dir}/src`. */
async function packed(dir: string, ...flags: string[]): Promise<string> {
  await writeTree(`${dir}/src`, TREE);
  const run = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, ...flags);
  assert.equal(run.code, 0, run.stderr);
  return `${dir}/c.ctnr`;
}

/** One line naming both paths and the flag, exit 2, and the usage hint. */
function assertRefusedUsage(
  run: { code: number; stderr: string },
  ...named: string[]
): void {
  assert.equal(run.code, 2, run.stderr);
  const first = run.stderr.split("\n")[0]!;
  for (const text of named) assert.ok(first.includes(text), `"${text}" in: ${first}`);
  assert.match(run.stderr, /Run "ctnr \w+ --help" for usage/);
}

// --- Outputs that alias another file of the run -----------------------------------------------

Deno.test("create refuses a status file that is the container", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    const before = await snapshot([container, `${container}.idx`]);
    const run = await runCli("create", `${dir}/src`, container, "--status-file", container);
    assertRefusedUsage(run, `"${container}"`, "--status-file", "the container");
    // The library names the option as it spells it.
    await assert.rejects(
      createContainer(`${dir}/src`, container, { statusFile: container }),
      (error) => error instanceof UsageError && error.message.includes("`statusFile`"),
    );
    assert.deepEqual(await snapshot([container, `${container}.idx`]), before);
  });
});

Deno.test("create refuses a status file that is the index during a resume", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    const before = await snapshot([container, `${container}.idx`]);
    const run = await runCli(
      "create",
      `${dir}/src`,
      container,
      "--status-file",
      `${container}.idx`,
    );
    assertRefusedUsage(run, `"${container}.idx"`, "--status-file", "the index");
    assert.deepEqual(await snapshot([container, `${container}.idx`]), before);
  });
});

Deno.test("create refuses a status file that is a hard link to the container", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir, "--finalize", "--remove-index-on-finalize");
    await Deno.link(container, `${dir}/status.txt`);
    const before = await snapshot([container]);
    const run = await runCli(
      "create",
      `${dir}/src`,
      container,
      "--status-file",
      `${dir}/status.txt`,
    );
    assertRefusedUsage(run, `"${dir}/status.txt"`, `"${container}"`, "the same file");
    assert.deepEqual(await snapshot([container]), before);
    assert.equal(await exists(`${container}.idx`), false, "no index recovered from the trailer");
  });
});

Deno.test("create refuses a status file that is a symlink to the container it will create", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    await Deno.symlink("c.ctnr", `${dir}/status.txt`);
    const run = await runCli(
      "create",
      `${dir}/src`,
      `${dir}/c.ctnr`,
      "--status-file",
      `${dir}/status.txt`,
    );
    assertRefusedUsage(run, `"${dir}/status.txt"`, "links lead to it");
    assert.equal(await exists(`${dir}/c.ctnr`), false);
    assert.equal(await exists(`${dir}/c.ctnr.idx`), false);
  });
});

Deno.test("create refuses a status file inside the source folder", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    await Deno.symlink("src", `${dir}/alias`);
    for (const status of [`${dir}/src/docs/b.md`, `${dir}/src/new.txt`, `${dir}/alias/b.txt`]) {
      const run = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--status-file", status);
      assertRefusedUsage(run, `"${status}"`, `"${dir}/src"`, "inside the source folder");
    }
    assert.equal(await Deno.readTextFile(`${dir}/src/docs/b.md`), "# b\n");
    assert.equal(await exists(`${dir}/src/new.txt`), false);
    assert.equal(await exists(`${dir}/c.ctnr`), false);
  });
});

Deno.test("extract refuses a status file that is the container", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir, "--finalize");
    const before = await snapshot([container, `${container}.idx`]);
    const run = await runCli("extract", container, `${dir}/out`, "--status-file", container);
    assertRefusedUsage(run, `"${container}"`, "--status-file", "the container");
    assert.deepEqual(await snapshot([container, `${container}.idx`]), before);
    assert.equal(await exists(`${dir}/out`), false);
  });
});

Deno.test("verify refuses a status file that is the container's index", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    const before = await snapshot([container, `${container}.idx`]);
    for (const args of [[], ["--index", `${container}.idx`]]) {
      const run = await runCli("verify", container, ...args, "--status-file", `${container}.idx`);
      assertRefusedUsage(run, `"${container}.idx"`, "--status-file");
    }
    // Even where there is no index yet: one written there would hide the trailer.
    const finalized = `${dir}/f.ctnr`;
    assert.equal(
      (await runCli("create", `${dir}/src`, finalized, "--finalize", "--remove-index-on-finalize"))
        .code,
      0,
    );
    const run = await runCli("verify", finalized, "--status-file", `${finalized}.idx`);
    assertRefusedUsage(run, `"${finalized}.idx"`);
    assert.equal(await exists(`${finalized}.idx`), false);
    assert.deepEqual(await snapshot([container, `${container}.idx`]), before);
  });
});

Deno.test("create refuses an index that is the container", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const fresh = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`, "--index", `${dir}/c.ctnr`);
    assertRefusedUsage(fresh, `"${dir}/c.ctnr"`, "--index", "the container");
    assert.equal(await exists(`${dir}/c.ctnr`), false, "nothing written");
    // An existing container, through a hard link.
    const container = await packed(dir);
    await Deno.link(container, `${dir}/alias.idx`);
    const before = await snapshot([container]);
    const linked = await runCli("create", `${dir}/src`, container, "--index", `${dir}/alias.idx`);
    assertRefusedUsage(linked, `"${dir}/alias.idx"`, "the same file");
    assert.deepEqual(await snapshot([container]), before);
  });
});

Deno.test("create --finalize-only refuses an index that is the container", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    const before = await snapshot([container, `${container}.idx`]);
    const run = await runCli(
      "create",
      "--container",
      container,
      "--finalize-only",
      "--remove-index-on-finalize",
      "--index",
      container,
    );
    assertRefusedUsage(run, `"${container}"`, "--index");
    assert.deepEqual(await snapshot([container, `${container}.idx`]), before);
  });
});

Deno.test("create keeps a symlink at the index path when it recovers the index from the trailer", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir, "--finalize", "--remove-index-on-finalize");
    await Deno.writeFile(`${dir}/real.idx`, new Uint8Array());
    await Deno.symlink("real.idx", `${container}.idx`);
    await Deno.writeTextFile(`${dir}/src/new.txt`, "new");
    const run = await runCli("create", `${dir}/src`, container);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await Deno.lstat(`${container}.idx`)).isSymlink, true, "the link is kept");
    assert.deepEqual(await relpaths(`${dir}/real.idx`), [
      "a.txt",
      "docs/b.md",
      "docs/deep/c.txt",
      "new.txt",
    ]);
  });
});

// --- Status files that are not regular files ---------------------------------------------------

Deno.test("a status file that is a folder is refused by create and extract", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/status`);
    const container = await packed(dir, "--finalize");
    const before = await snapshot([container]);
    const created = await runCli(
      "create",
      `${dir}/src`,
      container,
      "--status-file",
      `${dir}/status`,
    );
    assertRefusedUsage(created, `"${dir}/status"`, "--status-file", "is a folder");
    const extracted = await runCli(
      "extract",
      container,
      `${dir}/out`,
      "--status-file",
      `${dir}/status`,
    );
    assertRefusedUsage(extracted, `"${dir}/status"`, "is a folder");
    assert.deepEqual(await snapshot([container]), before);
    assert.equal((await Deno.stat(`${dir}/status`)).isDirectory, true);
  });
});

Deno.test("a status file that is a symlink keeps the link and its target is written", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/logs`);
    await Deno.writeTextFile(`${dir}/logs/status.kv`, "old\n");
    await Deno.symlink("logs/status.kv", `${dir}/status`);
    await packed(dir, "--status-file", `${dir}/status`);
    assert.equal((await Deno.lstat(`${dir}/status`)).isSymlink, true, "the link is kept");
    assert.equal(await Deno.readLink(`${dir}/status`), "logs/status.kv");
    assert.match(await Deno.readTextFile(`${dir}/logs/status.kv`), /^status=finished$/m);
    assert.equal(await exists(`${dir}/logs/status.kv.ctnr-tmp`), false);
    assert.equal(await exists(`${dir}/status.ctnr-tmp`), false);
  });
});

Deno.test("a status file that is a FIFO stays a FIFO and its reader gets each status", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    const fifo = `${dir}/status.fifo`;
    assert.equal((await runCommand("mkfifo", [fifo], { timeoutMs: TOOL_TIMEOUT_MS })).code, 0);
    // The reader is another process: the writer's open waits for it, as a shell's would.
    const reader = runCommand("cat", [fifo], { timeoutMs: 20_000, onTimeout: "return" });
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { statusFile: fifo });
    // Awaited first: a reader left waiting on a FIFO renamed away is killed at its timeout.
    const read = await reader;
    assert.equal(result.added, 3);
    assert.equal((await Deno.lstat(fifo)).isFifo, true, "still a FIFO");
    assert.equal(read.timedOut, false, "the reader saw the end");
    assert.match(read.stdout, /^status=running$/m);
    assert.match(read.stdout, /^status=finished$/m);
    assert.equal(await exists(`${fifo}.ctnr-tmp`), false);
  });
});

Deno.test("a status file /dev/stdout or /dev/fd/3 is written to the open file, never renamed over", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    // Standard output redirected to a file: /dev/stdout leads to it through /proc.
    await Deno.writeTextFile(`${dir}/out.txt`, "before\n");
    const inode = (await Deno.stat(`${dir}/out.txt`)).ino;
    const redirected = await runCommand("bash", [
      "-c",
      `'${Deno.execPath()}' run -A '${CLI}' create '${dir}/src' '${dir}/c.ctnr' ` +
      `--status-file /dev/stdout >> '${dir}/out.txt'`,
    ], { timeoutMs: 60_000 });
    assert.equal(redirected.code, 0, redirected.stderr);
    assert.equal((await Deno.stat(`${dir}/out.txt`)).ino, inode, "the same file");
    const text = await Deno.readTextFile(`${dir}/out.txt`);
    assert.ok(text.startsWith("before\n"), text);
    assert.match(text, /^status=finished$/m);
    assert.match(text, /Done\./);
    // Another file the process has open (the shell's fd 3): written to, not renamed over.
    const fd3 = await runCommand("bash", [
      "-c",
      `'${Deno.execPath()}' run -A '${CLI}' verify '${dir}/c.ctnr' ` +
      `--status-file /dev/fd/3 3>> '${dir}/out.txt'`,
    ], { timeoutMs: 60_000 });
    assert.equal(fd3.code, 0, fd3.stderr);
    assert.equal((await Deno.stat(`${dir}/out.txt`)).ino, inode, "still the same file");
    assert.match(await Deno.readTextFile(`${dir}/out.txt`), /^bytes_extracted=/m);
    // Standard output a pipe.
    const piped = await runCommand(Deno.execPath(), [
      "run",
      "-A",
      CLI,
      "extract",
      `${dir}/c.ctnr`,
      `${dir}/out`,
      "--status-file",
      "/dev/stdout",
      "--status-format",
      "json",
    ], { timeoutMs: 60_000 });
    assert.equal(piped.code, 0, piped.stderr);
    const statuses = piped.stdout.split("\n").filter((line) => line.startsWith("{"));
    assert.equal(JSON.parse(statuses.at(-1)!).status, "finished");
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});

// --- The container under another name inside the source ---------------------------------------

Deno.test("create skips a hard link to its container inside the source, with a warning", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    await Deno.link(container, `${dir}/src/copy.ctnr`);
    await Deno.link(`${container}.idx`, `${dir}/src/docs/copy.idx`);
    await Deno.writeTextFile(`${dir}/src/new.txt`, "new");
    // A real process: the one whose reading of its own output grew it without end.
    const run = await runCommand(Deno.execPath(), [
      "run",
      "-A",
      CLI,
      "create",
      `${dir}/src`,
      container,
    ], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /warning: Left out "copy\.ctnr": it is the container or its index/);
    assert.match(run.stderr, /warning: Left out "docs\/copy\.idx"/);
    assert.deepEqual(await relpaths(`${container}.idx`), [
      "a.txt",
      "docs/b.md",
      "docs/deep/c.txt",
      "new.txt",
    ]);
    assert.ok((await Deno.stat(container)).size < 100, "the container did not take itself in");
  });
});

Deno.test("createContainer warns with OWN_FILE_LEFT_OUT for a hard link to a new container", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    await Deno.mkdir(`${dir}/out`);
    // The container exists (empty) before the walk reaches its link: created by the run itself.
    await Deno.writeFile(`${dir}/out/c.ctnr`, new Uint8Array());
    await Deno.link(`${dir}/out/c.ctnr`, `${dir}/src/zz.ctnr`);
    const warnings: CtnrWarning[] = [];
    const result = await createContainer(`${dir}/src`, `${dir}/out/c.ctnr`, {
      onWarning: (w) => warnings.push(w),
    });
    assert.equal(result.added, 3);
    assert.equal(result.leftOut, 1);
    assert.deepEqual(warnings.map((w) => [w.code, w.relpath]), [["OWN_FILE_LEFT_OUT", "zz.ctnr"]]);
  });
});

/** Whether this process may bind-mount (root on Linux, where mount is allowed). */
const BIND_PROBE = Deno.build.os === "linux" && Deno.uid() === 0 &&
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    const run = await runCommand("mount", ["--bind", `${dir}/a`, `${dir}/b`], {
      timeoutMs: TOOL_TIMEOUT_MS,
    });
    if (run.code !== 0) return false;
    await runCommand("umount", [`${dir}/b`], { timeoutMs: TOOL_TIMEOUT_MS });
    return true;
  });

Deno.test({
  name: "create skips a bind mount of its container's folder inside the source",
  ignore: !BIND_PROBE,
  fn: async () => {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, { ...TREE, "mnt": { dir: true } });
      await Deno.mkdir(`${dir}/out`);
      await createContainer(`${dir}/src`, `${dir}/out/c.ctnr`);
      const mounted = await runCommand("mount", ["--bind", `${dir}/out`, `${dir}/src/mnt`], {
        timeoutMs: TOOL_TIMEOUT_MS,
      });
      assert.equal(mounted.code, 0, mounted.stderr);
      try {
        await Deno.writeTextFile(`${dir}/src/new.txt`, "new");
        const warnings: CtnrWarning[] = [];
        const result = await createContainer(`${dir}/src`, `${dir}/out/c.ctnr`, {
          onWarning: (w) => warnings.push(w),
        });
        assert.equal(result.added, 1);
        assert.deepEqual(
          warnings.map((w) => [w.code, w.relpath]).sort(),
          [["OWN_FILE_LEFT_OUT", "mnt/c.ctnr"], ["OWN_FILE_LEFT_OUT", "mnt/c.ctnr.idx"]],
        );
      } finally {
        await runCommand("umount", [`${dir}/src/mnt`], { timeoutMs: TOOL_TIMEOUT_MS });
      }
    });
  },
});

// --- Intent: --new, --append, and a resume of another tree -------------------------------------

Deno.test("create --new refuses a file that is not a container", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    await Deno.writeTextFile(`${dir}/notes.txt`, "my notes, no trailer, no index\n");
    const before = await snapshot([`${dir}/notes.txt`]);
    const run = await runCli("create", `${dir}/src`, `${dir}/notes.txt`, "--new");
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /Cannot start ".*notes\.txt" anew: .* not a ctnr container/);
    assert.deepEqual(await snapshot([`${dir}/notes.txt`]), before);
    assert.equal(await exists(`${dir}/notes.txt.idx`), false, "no index created");
  });
});

Deno.test("create --new refuses an index that is not an index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    for (const text of ["a line of notes\nand another\n", "one line without newline"]) {
      await Deno.writeTextFile(`${dir}/notes.txt`, text);
      const run = await runCli(
        "create",
        `${dir}/src`,
        `${dir}/c.ctnr`,
        "--new",
        "--index",
        `${dir}/notes.txt`,
      );
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /Cannot start over index ".*notes\.txt": it is not a ctnr index/);
      assert.equal(await Deno.readTextFile(`${dir}/notes.txt`), text);
      assert.equal(await exists(`${dir}/c.ctnr`), false, "nothing created");
    }
  });
});

Deno.test("create --new starts a finalized container anew", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir, "--finalize", "--remove-index-on-finalize");
    await writeTree(`${dir}/other`, OTHER);
    const run = await runCli("create", `${dir}/other`, container, "--new", "--finalize");
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout, /resumed/);
    assert.deepEqual(await relpaths(`${container}.idx`), ["x.txt", "y/z.txt"]);
    assert.equal((await runCli("extract", container, `${dir}/out`)).code, 0);
    assert.deepEqual(await diffTrees(`${dir}/other`, `${dir}/out`), []);
  });
});

Deno.test("create --new starts anew a container with its index beside it, and an empty one", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    await writeTree(`${dir}/other`, OTHER);
    assert.equal((await runCli("create", `${dir}/other`, container, "--new")).code, 0);
    assert.deepEqual(await relpaths(`${container}.idx`), ["x.txt", "y/z.txt"]);
    await Deno.writeFile(`${dir}/empty.ctnr`, new Uint8Array());
    assert.equal((await runCli("create", `${dir}/other`, `${dir}/empty.ctnr`, "--new")).code, 0);
    assert.equal((await runCli("verify", container)).code, 0);
    assert.equal((await runCli("verify", `${dir}/empty.ctnr`)).code, 0);
  });
});

Deno.test("create refuses to pack another tree into an existing container", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir, "--finalize");
    await writeTree(`${dir}/other`, OTHER);
    const before = await snapshot([container, `${container}.idx`]);
    const run = await runCli("create", `${dir}/other`, container);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /none of the 3 entries committed in it is in this source/);
    assert.match(run.stderr, /--append/);
    assert.match(run.stderr, /--new/);
    assert.deepEqual(await snapshot([container, `${container}.idx`]), before, "nothing written");
    // The library says the same.
    await assert.rejects(createContainer(`${dir}/other`, container), ConflictError);
  });
});

Deno.test("create --append adds another tree to an existing container", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    await writeTree(`${dir}/other`, OTHER);
    const run = await runCli("create", `${dir}/other`, container, "--append");
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await relpaths(`${container}.idx`), [
      "a.txt",
      "docs/b.md",
      "docs/deep/c.txt",
      "x.txt",
      "y/z.txt",
    ]);
  });
});

Deno.test("create does not refuse a resume whose committed files sort after many new ones", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "zz/last.txt": "z" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    // More new names before it than the look-ahead holds: found by the fuller look.
    for (let i = 0; i < 1100; i++) await Deno.writeFile(`${dir}/src/a${i}`, new Uint8Array());
    const result = await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { fsyncEvery: 5000 });
    assert.equal(result.added, 1100);
    assert.equal(result.alreadyPresent, 1);
  });
});

Deno.test("create warns about committed entries missing from the source", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    await writeTree(`${dir}/src`, { "e/empty": { dir: true } });
    assert.equal((await runCli("create", `${dir}/src`, container)).code, 0);
    await Deno.remove(`${dir}/src/a.txt`);
    await Deno.remove(`${dir}/src/docs/deep`, { recursive: true });
    // A committed empty folder that holds a file now is still there.
    await Deno.writeTextFile(`${dir}/src/e/empty/f.txt`, "f");
    const warnings: CtnrWarning[] = [];
    const result = await createContainer(`${dir}/src`, container, {
      onWarning: (w) => warnings.push(w),
    });
    assert.equal(result.missing, 2);
    assert.equal(result.added, 1);
    const missing = warnings.filter((w) => w.code === "MISSING_FROM_SOURCE");
    assert.equal(missing.length, 1, JSON.stringify(warnings));
    assert.match(missing[0]!.message, /^2 committed entries are no longer in the source/);
    assert.match(missing[0]!.message, /"a\.txt", "docs\/deep\/c\.txt"$/);
    // The CLI prints it; the container keeps them, and the exit code is 0.
    await Deno.remove(`${dir}/src/docs/b.md`);
    const run = await runCli("create", `${dir}/src`, container);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /warning: 3 committed entries are no longer in the source/);
  });
});

Deno.test("create names the first five missing entries and counts the rest", async () => {
  await withTempDir(async (dir) => {
    const spec: Record<string, string> = { "keep.txt": "k" };
    for (let i = 0; i < 8; i++) spec[`gone${i}.txt`] = `${i}`;
    await writeTree(`${dir}/src`, spec);
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    for (let i = 0; i < 8; i++) await Deno.remove(`${dir}/src/gone${i}.txt`);
    const warnings: CtnrWarning[] = [];
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { onWarning: (w) => warnings.push(w) });
    assert.deepEqual(warnings.map((w) => w.message), [
      `8 committed entries are no longer in the source; the container keeps them: "gone0.txt", ` +
      `"gone1.txt", "gone2.txt", "gone3.txt", "gone4.txt", and 3 more`,
    ]);
  });
});

Deno.test("create refuses an index whose container does not exist", async () => {
  await withTempDir(async (dir) => {
    const container = await packed(dir);
    await Deno.rename(container, `${dir}/moved.ctnr`);
    const before = await snapshot([`${container}.idx`]);
    const run = await runCli("create", `${dir}/src`, container);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /its container ".*c\.ctnr" does not exist; refusing to change it/);
    assert.match(run.stderr, /--new/);
    assert.deepEqual(await snapshot([`${container}.idx`]), before);
    assert.equal(await exists(container), false);
  });
});

Deno.test("create refuses to cut the only line of an index that is not an index", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, TREE);
    await Deno.writeTextFile(`${dir}/token.txt`, "s3cr3t-token-without-newline");
    await Deno.writeFile(`${dir}/c.ctnr`, new Uint8Array());
    const run = await runCli(
      "create",
      `${dir}/src`,
      `${dir}/c.ctnr`,
      "--index",
      `${dir}/token.txt`,
    );
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /it is not a ctnr index \(its only line is not an entry\)/);
    assert.equal(await Deno.readTextFile(`${dir}/token.txt`), "s3cr3t-token-without-newline");
  });
});
