import assert from "node:assert/strict";
import { type CaseProbeFs, isCaseInsensitive } from "../lib/safety/case_probe.ts";
import { createContainer, extractContainer, UnsafeEntryError } from "../mod.ts";
import { listPaths, runCommand, withTempDir, writeTree } from "./_helpers.ts";

/** A file system in memory that compares names with or without case, as told. */
function fakeFs(
  folders: string[],
  options: { caseInsensitive: boolean; readOnly?: boolean },
): CaseProbeFs & { files: Set<string>; made: string[] } {
  const key = (path: string) => options.caseInsensitive ? path.toLowerCase() : path;
  const files = new Set<string>();
  const made: string[] = [];
  return {
    files,
    made,
    isFolder: (path) => Promise.resolve(folders.includes(path)),
    createNew(path) {
      if (options.readOnly) return Promise.reject(new Deno.errors.PermissionDenied(path));
      if (files.has(key(path))) return Promise.reject(new Deno.errors.AlreadyExists(path));
      files.add(key(path));
      made.push(path);
      return Promise.resolve();
    },
    exists: (path) => Promise.resolve(files.has(key(path))),
    remove(path) {
      files.delete(key(path));
      return Promise.resolve();
    },
  };
}

Deno.test("isCaseInsensitive finds the probe under its upper-case name", async () => {
  const fs = fakeFs(["/", "/data"], { caseInsensitive: true });
  assert.equal(await isCaseInsensitive("/data/out/deeper", fs), true);
  // Probed in the nearest folder that exists, and removed again.
  assert.equal(fs.made.length, 1);
  assert.match(fs.made[0]!, /^\/data\/\.ctnr-case-probe-[0-9a-z]+$/);
  assert.equal(fs.files.size, 0);
});

Deno.test("isCaseInsensitive says false on a case-sensitive or unwritable folder", async () => {
  const sensitive = fakeFs(["/", "/data"], { caseInsensitive: false });
  assert.equal(await isCaseInsensitive("/data", sensitive), false);
  assert.equal(sensitive.files.size, 0);
  const readOnly = fakeFs(["/", "/data"], { caseInsensitive: true, readOnly: true });
  assert.equal(await isCaseInsensitive("/data", readOnly), false);
});

Deno.test("isCaseInsensitive says false for this machine's temp folder", async () => {
  await withTempDir(async (dir) => {
    if (Deno.build.os !== "linux") return; // macOS and Windows folders fold case by default
    assert.equal(await isCaseInsensitive(`${dir}/not/yet`), false);
    assert.deepEqual(await listPaths(dir), []);
  });
});

/** A real exFAT file system (case-insensitive) mounted through FUSE on a loop device, as root. */
async function withExfat(fn: (mount: string) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const image = `${dir}/exfat.img`;
    const mount = `${dir}/mnt`;
    await Deno.mkdir(mount);
    const run = (cmd: string, ...args: string[]) =>
      runCommand(cmd, args, { timeoutMs: 30_000 }).then((r) => {
        if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr.trim()}`);
        return r.stdout.trim();
      });
    await run("truncate", "-s", "32M", image);
    await run("mkfs.exfat", image);
    const loop = await run("losetup", "-f", "--show", image);
    try {
      await run("mount.exfat-fuse", loop, mount);
      try {
        await fn(mount);
      } finally {
        await run("fusermount", "-u", mount).catch(() => run("umount", mount));
      }
    } finally {
      await run("losetup", "-d", loop);
    }
  });
}

/** Why a real exFAT folder cannot be had here, or `undefined` when it can. */
async function exfatUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root (mounting needs it)";
  for (const tool of ["mkfs.exfat", "mount.exfat-fuse", "losetup", "fusermount"]) {
    const found = await runCommand("sh", ["-c", `command -v ${tool}`], { timeoutMs: 10_000 });
    if (found.code !== 0) return `${tool} is not installed (Debian: exfat-fuse, exfatprogs)`;
  }
  try {
    await withExfat(() => Promise.resolve()); // loop devices and FUSE may be missing here
  } catch (error) {
    return `cannot mount one: ${(error as Error).message}`;
  }
  return undefined;
}

const EXFAT_MISSING = await exfatUnavailable();
if (EXFAT_MISSING) console.log(`exFAT tests ignored: ${EXFAT_MISSING}`);

Deno.test({
  name: "extractContainer refuses names equal after case folding on a real exFAT folder",
  ignore: EXFAT_MISSING !== undefined,
  fn: async () => {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, {
        "docs/Readme.txt": "first",
        "docs/README.TXT": "second",
        "docs/other.txt": "other",
      });
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`);
      await withExfat(async (mount) => {
        assert.equal(await isCaseInsensitive(`${mount}/out`), true);
        await assert.rejects(
          extractContainer(`${dir}/c.ctnr`, `${mount}/out`),
          (error: unknown) => {
            assert.ok(error instanceof UnsafeEntryError, String(error));
            assert.match(error.message, /case folding/);
            assert.match(error.message, /docs\/Readme\.txt|docs\/README\.TXT/);
            return true;
          },
        );
        assert.deepEqual(await listPaths(mount), [], "nothing written");
        // The same container without the twin extracts there as it should.
        await Deno.remove(`${dir}/src/docs/README.TXT`);
        await createContainer(`${dir}/src`, `${dir}/ok.ctnr`);
        await extractContainer(`${dir}/ok.ctnr`, `${mount}/out`);
        assert.deepEqual(await listPaths(`${mount}/out`), [
          "docs",
          "docs/Readme.txt",
          "docs/other.txt",
        ]);
      });
    });
  },
});
