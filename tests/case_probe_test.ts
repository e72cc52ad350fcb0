import assert from "node:assert/strict";
import {
  type CaseProbeFs,
  isCaseInsensitive,
  parseMountInfo,
  probeCaseFolding,
} from "../lib/safety/case_probe.ts";
import { createHash } from "node:crypto";
import { type FileJob, writeFileJob } from "../lib/extract/file_writer.ts";
import { OutputTree } from "../lib/safety/output_tree.ts";
import { ConflictError, createContainer, extractContainer, UnsafeEntryError } from "../mod.ts";
import {
  DENO_CHILD_TIMEOUT_MS,
  listPaths,
  runCommand,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/**
 * A file system in memory that compares names with or without case, as told (for the whole of
 * it, or for the paths a function says), with links (`realPath`) and mount points.
 */
function fakeFs(
  folders: string[],
  options: {
    caseInsensitive: boolean | ((path: string) => boolean);
    readOnly?: boolean;
    links?: Record<string, string>;
    mounts?: string[];
  },
): CaseProbeFs & { files: Set<string>; made: string[] } {
  const folds = typeof options.caseInsensitive === "function"
    ? options.caseInsensitive
    : () => options.caseInsensitive as boolean;
  const key = (path: string) => folds(path) ? path.toLowerCase() : path;
  const files = new Set<string>();
  const made: string[] = [];
  return {
    files,
    made,
    realPath: (path) => Promise.resolve(options.links?.[path] ?? path),
    mountPoints: () => Promise.resolve(options.mounts ?? []),
    isFolder: (path) => Promise.resolve(folders.includes(path) || path in (options.links ?? {})),
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

Deno.test("parseMountInfo reads each mount point, the kernel's escapes undone", () => {
  const text = [
    "22 27 0:21 / /proc rw,relatime - proc proc rw",
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
    "42 27 7:0 / /data/out/my\\040usb\\134x rw,nosuid - fuseblk /dev/loop0 rw",
    "",
  ].join("\n");
  assert.deepEqual(parseMountInfo(text), ["/proc", "/", "/data/out/my usb\\x"]);
});

Deno.test("probeCaseFolding probes every mount point below the output folder, found through links", async () => {
  const fs = fakeFs(["/", "/real", "/real/out", "/real/out/usb", "/real/out/usb/deep", "/other"], {
    caseInsensitive: (path) => path.startsWith("/real/out/usb/") && !path.includes("/deep/"),
    links: { "/data/out": "/real/out" },
    mounts: ["/", "/other", "/real/out/usb", "/real/out/usb/deep", "/real/outside", "/real/out"],
  });
  assert.deepEqual(await probeCaseFolding("/data/out", fs), {
    top: false,
    mounts: [{ relpath: "usb", foldCase: true }, { relpath: "usb/deep", foldCase: false }],
  });
  assert.equal(fs.files.size, 0, "every probe file removed");
  // An output folder still to be made has nothing mounted below it.
  assert.deepEqual(await probeCaseFolding("/real/new", fs), { top: false, mounts: [] });
});

/**
 * A real exFAT file system (case-insensitive) mounted through FUSE on a loop device, as root:
 * at `at` when given (created when missing), else in a temp folder of its own.
 */
async function withExfat(fn: (mount: string) => Promise<void>, at?: string): Promise<void> {
  await withTempDir(async (dir) => {
    const image = `${dir}/exfat.img`;
    const mount = at ?? `${dir}/mnt`;
    await Deno.mkdir(mount, { recursive: true });
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

/** Run the CLI in a child process (a real `ctnr` run: its exit code and stderr). */
async function ctnr(...args: string[]): Promise<{ code: number; stderr: string }> {
  const run = await runCommand(Deno.execPath(), ["run", "--allow-all", `${ROOT}cli.ts`, ...args], {
    timeoutMs: DENO_CHILD_TIMEOUT_MS,
    cwd: ROOT,
  });
  return { code: run.code, stderr: run.stderr };
}

Deno.test({
  name:
    "ctnr extract refuses sigma and final sigma on a real exFAT folder: the second would replace the first",
  ignore: EXFAT_MISSING !== undefined,
  fn: async () => {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, { "\u03c3.txt": "sigma", "\u03c2.txt": "final sigma" });
      await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
      await withExfat(async (mount) => {
        const run = await ctnr(
          "extract",
          "--container",
          `${dir}/c.ctnr`,
          "--outdir",
          `${mount}/out`,
        );
        assert.equal(run.code, 1, run.stderr);
        assert.match(run.stderr, /\u03c3\.txt.*case folding/);
        assert.deepEqual(await listPaths(mount), [], "nothing written");
      });
    });
  },
});

Deno.test({
  name: "ctnr extract refuses case twins inside an exFAT disk mounted below the output folder",
  ignore: EXFAT_MISSING !== undefined,
  fn: async () => {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, { "usb/Readme.txt": "first", "usb/README.TXT": "second" });
      await createContainer(`${dir}/src`, `${dir}/twins.ctnr`, { finalize: true });
      await writeTree(`${dir}/top`, {
        "Readme.txt": "first",
        "README.TXT": "second",
        "usb/other.txt": "other",
      });
      await createContainer(`${dir}/top`, `${dir}/top.ctnr`, { finalize: true });
      const out = `${dir}/out`;
      await withExfat(async () => {
        const refused = await ctnr("extract", "--container", `${dir}/twins.ctnr`, "--outdir", out);
        assert.equal(refused.code, 1, refused.stderr);
        assert.match(refused.stderr, /usb\/(Readme\.txt|README\.TXT).*case folding/);
        assert.deepEqual(await listPaths(`${out}/usb`), [], "nothing written on the disk");
        // Above the mount point the file system is case-sensitive: both names are kept there.
        const kept = await ctnr("extract", "--container", `${dir}/top.ctnr`, "--outdir", out);
        assert.equal(kept.code, 0, kept.stderr);
        assert.equal(await Deno.readTextFile(`${out}/Readme.txt`), "first");
        assert.equal(await Deno.readTextFile(`${out}/README.TXT`), "second");
        assert.equal(await Deno.readTextFile(`${out}/usb/other.txt`), "other");
      }, `${out}/usb`);
    });
  },
});

Deno.test({
  name:
    "writeFileJob never renames over a file of this run that the file system folds together with its name (exFAT)",
  ignore: EXFAT_MISSING !== undefined,
  fn: async () => {
    await withExfat(async (mount) => {
      await Deno.mkdir(`${mount}/out`);
      const settings = { skipExisting: false, verifyExisting: false, fsync: false, umask: 0o022 };
      const job = (name: string, text: string): [FileJob, Uint8Array] => {
        const bytes = new TextEncoder().encode(text);
        return [{
          relpath: `out/${name}`,
          target: `${mount}/out/${name}`,
          tmp: `${mount}/out/.ctnr-tmp-test-${text}`,
          sha256: createHash("sha256").update(bytes).digest("hex"),
          compressed: false,
          origSize: bytes.length,
          mode: 0o644,
          mtime: null,
          origSha256: null,
          fresh: true, // the run made the folder: nothing in it was there before
        }, bytes];
      };
      assert.equal(writeFileJob(...job("Readme.txt", "first"), settings), "extracted");
      assert.throws(() => writeFileJob(...job("README.TXT", "second"), settings), (error) => {
        assert.ok(error instanceof ConflictError, String(error));
        assert.match(error.message, /"out\/README\.TXT".*same file as "out\/Readme\.txt"/);
        return true;
      });
      assert.equal(await Deno.readTextFile(`${mount}/out/Readme.txt`), "first", "kept");
      assert.deepEqual(await listPaths(`${mount}/out`), ["Readme.txt"], "no temp file left");
      // The same name again (another run into the same folder) is replaced as before.
      assert.equal(writeFileJob(...job("Readme.txt", "again"), settings), "extracted");
      assert.equal(await Deno.readTextFile(`${mount}/out/Readme.txt`), "again");
    });
  },
});

Deno.test({
  name:
    "OutputTree checks renames in the folders it makes where names fold: an exFAT mounted below is probed when met",
  ignore: EXFAT_MISSING !== undefined,
  fn: async () => {
    await withTempDir(async (dir) => {
      const out = `${dir}/out`;
      await Deno.mkdir(`${out}/plain`, { recursive: true });
      await withExfat(async () => {
        const tree = new OutputTree(out, Date.now(), { foldsAtTop: false });
        await tree.open();
        try {
          tree.ensureDir("usb/new/deeper");
          tree.ensureDir("plain/new");
          tree.ensureDir("other");
          assert.equal(tree.checksRenames("usb/new"), true, "made on the exFAT");
          assert.equal(tree.checksRenames("usb/new/deeper"), true, "as its parent");
          assert.equal(tree.checksRenames("usb"), false, "there before: its files may be");
          assert.equal(tree.checksRenames("plain/new"), false, "case-sensitive");
          assert.equal(tree.checksRenames("other"), false);
          assert.deepEqual(await listPaths(`${out}/usb`), ["new", "new/deeper"], "no probe left");
        } finally {
          await tree.close();
        }
      }, `${out}/usb`);
    });
  },
});
