/**
 * Failures of the machine, not of the data: a full disk (a real small tmpfs
 * when this runs as root, the swappable file layer otherwise), a full or
 * closed standard output, a FIFO or device given as a container. Each must
 * end in one line naming the file and what to do, a documented exit code,
 * no stack trace, and a container that is complete or resumable.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ContainerReader,
  ContainerWriter,
  createContainer,
  DENO_FILE_LAYER,
  EnvironmentError,
  type FileLayer,
  type LayerFile,
} from "../mod.ts";
import {
  diffTrees,
  exists,
  listPaths,
  pseudoRandomBytes,
  runCli,
  runCommand,
  withTempDir,
  writeTree,
} from "./_helpers.ts";
import { CLI, PROJECT } from "./_crash.ts";

/** A tree of 40 files of 64 KiB (2.5 MiB in all, incompressible). */
async function tree(src: string): Promise<void> {
  const spec: Record<string, Uint8Array> = {};
  for (let i = 0; i < 40; i++) spec[`d${i % 4}/f${i}.bin`] = pseudoRandomBytes(64 << 10, i + 1);
  await writeTree(src, spec);
}

/** A real tmpfs of `megabytes`, as root on Linux; `undefined` where it cannot be mounted. */
async function smallTmpfs(dir: string, megabytes: number): Promise<string | undefined> {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return undefined;
  const mount = `${dir}/small`;
  await Deno.mkdir(mount);
  const run = await runCommand(
    "mount",
    ["-t", "tmpfs", "-o", `size=${megabytes}m`, "tmpfs", mount],
    {
      timeoutMs: 10_000,
    },
  );
  return run.code === 0 ? mount : undefined;
}

async function unmount(mount: string): Promise<void> {
  await runCommand("umount", [mount], { timeoutMs: 10_000 });
}

const MOUNT_PROBE = await withTempDir(async (dir) => {
  const mount = await smallTmpfs(dir, 1);
  if (mount) await unmount(mount);
  return mount !== undefined;
});
if (!MOUNT_PROBE) {
  console.log("full-disk tests on a real tmpfs ignored: not root, or mount refused");
}

/**
 * A test on a real tmpfs of `megabytes` (ignored where none can be mounted): `fn` gets the temp
 * folder, {@link tree} written to `dir/src`, and the mount, unmounted after it.
 */
function fullDiskTest(
  name: string,
  megabytes: number,
  fn: (dir: string, mount: string) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: !MOUNT_PROBE,
    fn: () =>
      withTempDir(async (dir) => {
        await tree(`${dir}/src`);
        const mount = (await smallTmpfs(dir, megabytes))!;
        try {
          await fn(dir, mount);
        } finally {
          await unmount(mount);
        }
      }),
  });
}

fullDiskTest(
  "main create on a full disk stops in one line with exit 5, and resumes once there is room",
  1,
  async (dir, mount) => {
    const container = `${mount}/c.ctnr`;
    const create = () =>
      runCli("create", "--src", `${dir}/src`, "--container", container, "--fsync-every", "4");
    const full = await create();
    assert.equal(full.code, 5, full.stderr);
    const lines = full.stderr.trim().split("\n");
    assert.equal(lines.length, 1, full.stderr);
    assert.match(
      lines[0]!,
      /^ctnr: Cannot write ".*c\.ctnr(\.idx)?": no space left on the device \(ENOSPC\); .*resumes/,
    );
    // Room again: the same command resumes and ends with the whole tree.
    const grown = await runCommand("mount", ["-o", "remount,size=16m", mount], {
      timeoutMs: 10_000,
    });
    assert.equal(grown.code, 0, grown.stderr);
    const again = await create();
    assert.equal(again.code, 0, again.stderr);
    const verify = await runCli("verify", "--container", container);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal((await runCli("extract", container, `${dir}/out`)).code, 0);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  },
);

fullDiskTest(
  "main extract onto a full disk stops in one line with exit 5, leaving no temp file",
  1,
  async (dir, mount) => {
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    for (const concurrency of ["0", "2"]) {
      const run = await runCli(
        "extract",
        `${dir}/c.ctnr`,
        `${mount}/out${concurrency}`,
        "--concurrency",
        concurrency,
      );
      assert.equal(run.code, 5, run.stderr);
      assert.match(
        run.stderr,
        /^ctnr: Cannot extract ".*": no space left on the device \(ENOSPC\)/m,
      );
      assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
      const temps = (await listPaths(mount)).filter((p) => p.includes(".ctnr-tmp"));
      assert.deepEqual(temps, [], `concurrency ${concurrency}`);
      await Deno.remove(`${mount}/out${concurrency}`, { recursive: true });
    }
  },
);

/** The real file layer, but appends fail with ENOSPC once `room` bytes are written. */
function fullDiskLayer(room: number): FileLayer {
  let written = 0;
  return {
    ...DENO_FILE_LAYER,
    async open(path) {
      const file = await DENO_FILE_LAYER.open(path);
      const full: LayerFile = {
        get size() {
          return file.size;
        },
        readAt: (position, length) => file.readAt(position, length),
        append: async (bytes) => {
          written += bytes.length;
          if (written > room) {
            throw Object.assign(new Error("No space left on device (os error 28)"), {
              code: "ENOSPC",
            });
          }
          await file.append(bytes);
        },
        sync: () => file.sync(),
        truncate: (size) => file.truncate(size),
        tryLock: () => file.tryLock(),
        close: () => file.close(),
      };
      return full;
    },
  };
}

Deno.test("createContainer on a full disk throws an EnvironmentError and leaves a resumable container", async () => {
  await withTempDir(async (dir) => {
    await tree(`${dir}/src`);
    const committed: string[] = [];
    await assert.rejects(
      createContainer(`${dir}/src`, `${dir}/c.ctnr`, {
        fsyncEvery: 4,
        fileLayer: fullDiskLayer(1 << 20),
        onEntry: (entry) => committed.push(entry.relpath),
      }),
      (error: unknown) => {
        assert.ok(error instanceof EnvironmentError, String(error));
        assert.equal(error.exitCode, 5);
        return true;
      },
    );
    assert.ok(committed.length > 0, "some batches were committed before the disk filled");
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { fsyncEvery: 4 });
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      let entries = 0;
      for await (const entry of reader.entries()) {
        for await (const _ of reader.open(entry)) { /* verified */ }
        entries++;
      }
      assert.equal(entries, 40);
    } finally {
      reader.close();
    }
  });
});

Deno.test("main create with a full standard output reports it in one line, its container complete", async () => {
  await withTempDir(async (dir) => {
    await tree(`${dir}/src`);
    const run = await runCommand("bash", [
      "-c",
      `'${Deno.execPath()}' run -A '${CLI}' create --src '${dir}/src' --container '${dir}/c.ctnr' --finalize > /dev/full`,
    ], { timeoutMs: 60_000, cwd: PROJECT });
    assert.equal(run.code, 5, run.stderr);
    assert.match(
      run.stderr.trim(),
      /^ctnr: Cannot write to standard output: no space left on the device \(ENOSPC\)/,
    );
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.equal(
      (await runCli("verify", "--container", `${dir}/c.ctnr`)).code,
      0,
      "the container is complete",
    );
  });
});

Deno.test("main list into a closed pipe stops quietly with 141, as cat does", async () => {
  await withTempDir(async (dir) => {
    // 20,000 entries: a listing far larger than a pipe's buffer, so list is still writing
    // when head exits.
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    for (let i = 0; i < 20_000; i++) {
      await writer.addFile({ relpath: `folder/file-${i}.txt` }, new Uint8Array());
    }
    await writer.finalize({ removeIndex: true });
    for (const flag of ["--container", "-l", "--json"]) {
      const run = await runCommand("bash", [
        "-c",
        `set -o pipefail; '${Deno.execPath()}' run -A '${CLI}' list ${flag} '${dir}/c.ctnr' | head -1`,
      ], { timeoutMs: 60_000, cwd: PROJECT });
      assert.equal(run.code, 141, `${flag}: ${run.stderr}`);
      assert.equal(run.stderr, "");
      assert.equal(run.stdout.trim().split("\n").length, 1);
    }
  });
});

Deno.test("main create --finalize-only refuses a FIFO, a device or a folder as its container (2) or index (1), as create and the readers do", async () => {
  await withTempDir(async (dir) => {
    const made = await runCommand("mkfifo", [`${dir}/fifo`], { timeoutMs: 10_000 });
    assert.equal(made.code, 0);
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
    for (const path of [`${dir}/fifo`, "/dev/null", `${dir}/src`]) {
      const index = await runCli(
        "create",
        "--finalize-only",
        "--container",
        `${dir}/c.ctnr`,
        "--index",
        path,
      );
      assert.equal(index.code, 1, `${path}: ${index.stderr}`);
      assert.equal(index.stderr, `ctnr: Cannot open index "${path}": not a regular file\n`);
      const reader = await runCli("verify", `${dir}/c.ctnr`, "--index", path);
      assert.equal(reader.code, index.code, "the same code as the readers");
      const container = await runCli("create", "--finalize-only", "--container", path, "--json");
      assert.equal(container.code, 2, `${path}: ${container.stderr}`);
      assert.match(
        container.stderr,
        /^ctnr: Cannot write container ".*": it exists and is not a regular file$/m,
      );
      assert.equal(JSON.parse(container.stdout).error.code, "USAGE");
      assert.equal((await runCli("create", `${dir}/src`, path)).code, container.code, "as create");
    }
    assert.notEqual(await tail(`${dir}/c.ctnr`), "CTNRv1ix", "nothing was finalized");
  });
});

Deno.test("main refuses a FIFO or a device as a container or an index before opening it", async () => {
  await withTempDir(async (dir) => {
    const made = await runCommand("mkfifo", [`${dir}/fifo`], { timeoutMs: 10_000 });
    assert.equal(made.code, 0);
    await writeTree(`${dir}/src`, { "a.txt": "a" });
    for (const path of [`${dir}/fifo`, "/dev/null"]) {
      for (
        const args of [["list", path], ["verify", path], ["cat", path, "a.txt"], [
          "extract",
          path,
          `${dir}/out`,
        ]]
      ) {
        const run = await runCli(...args);
        assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, /not a regular file/);
      }
      const create = await runCli("create", `${dir}/src`, path);
      assert.equal(create.code, 2, create.stderr);
      assert.match(create.stderr, /exists and is not a regular file/);
      // The same as an index.
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
      const list = await runCli("list", `${dir}/c.ctnr`, "--index", path);
      assert.equal(list.code, 1, list.stderr);
      assert.match(list.stderr, /^ctnr: Cannot open index ".*": .*not a regular file$/m);
      const index = await runCli("create", `${dir}/src`, `${dir}/d.ctnr`, "--index", path);
      assert.equal(index.code, 2, index.stderr);
      assert.match(index.stderr, /Cannot write index ".*": it exists and is not a regular file/);
    }
    assert.equal(await exists(`${dir}/out`), false);
  });
});

async function tail(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  return new TextDecoder().decode(bytes.subarray(bytes.length - 8));
}

fullDiskTest(
  "main manifest merge onto a full disk names the manifest, exit 5, nothing left behind",
  16,
  async (dir, mount) => { // room for the parts, then filled
    const parts: string[] = [];
    for (const k of [0, 1]) {
      const set = `${mount}/s.ctnr`;
      const run = await runCli("create", "-q", `${dir}/src`, set, "--part", `${k}/2`);
      assert.equal(run.code, 0, run.stderr);
      parts.push(`${mount}/s.part-${k}-of-2.manifest.json`);
    }
    const before = [...Deno.readDirSync(mount)].map((e) => e.name);
    // Fill the disk: the merged manifest has no room.
    const filler = await Deno.open(`${mount}/filler`, { write: true, create: true });
    try {
      for (;;) await filler.write(new Uint8Array(64 << 10));
    } catch {
      /* full */
    } finally {
      filler.close();
    }
    const out = `${mount}/s.manifest.json`;
    const run = await runCli("manifest", "merge", "--out", out, ...parts);
    assert.equal(run.code, 5, run.stderr);
    // Was "ctnr: ctnr: no space left on the device (ENOSPC); what was committed is kept".
    assert.match(
      run.stderr,
      /^ctnr: Cannot write ".*s\.manifest\.json": no space left on the device \(ENOSPC\)/,
    );
    assert.deepEqual(
      [...Deno.readDirSync(mount)].map((e) => e.name).sort(),
      [...before, "filler"].sort(),
    );
  },
);
