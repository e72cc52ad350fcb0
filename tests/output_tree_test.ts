import assert from "node:assert/strict";
import {
  ContainerWriter,
  DENO_FILE_LAYER,
  extractContainer,
  type IndexEntry,
  UnsafeEntryError,
} from "../mod.ts";
import { OutputTree, parentOf } from "../lib/safety/output_tree.ts";
import { TEMP_NAME } from "../lib/io/temp_file.ts";
import { exists, listPaths, withTempDir, writeTree } from "./_helpers.ts";

const MARKER = "ctnr extract in progress\n";

Deno.test("OutputTree.open creates the output folder with its parents and holds its marker", async () => {
  await withTempDir(async (dir) => {
    const tree = new OutputTree(`${dir}/a/b/out`, Date.now());
    await tree.open();
    assert.equal(await exists(`${dir}/a/b/out/.ctnr-extract.lock`), true);
    await tree.close();
    assert.deepEqual(await listPaths(`${dir}/a/b/out`), [], "the last run out removes the marker");
  });
});

Deno.test("OutputTree.ensureDir makes each folder and refuses a link or a file on the way", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/outside`, { "keep.txt": "keep" });
    await writeTree(`${dir}/out`, { "file": "a file", "ok/x.txt": "x" });
    await Deno.symlink(`${dir}/outside`, `${dir}/out/link`);
    const tree = new OutputTree(`${dir}/out`, Date.now());
    await tree.open();
    try {
      tree.ensureDir("new/deeper/still");
      assert.equal((await Deno.lstat(`${dir}/out/new/deeper/still`)).isDirectory, true);
      tree.ensureDir("ok/sub");
      assert.throws(() => tree.ensureDir("link/x"), (error: unknown) => {
        assert.ok(error instanceof UnsafeEntryError);
        assert.match(error.message, /"link": it is a symlink in the output folder/);
        return true;
      });
      assert.throws(() => tree.ensureDir("file/x"), /"file": a file stands at that path/);
      assert.deepEqual(await listPaths(`${dir}/outside`), ["keep.txt"], "nothing through the link");
      assert.equal(tree.isLink("link"), true);
      assert.equal(tree.isLink("ok"), false);
    } finally {
      await tree.close();
    }
  });
});

Deno.test("OutputTree gives each temp file a name of its own in the target's folder", () => {
  {
    const dir = "/somewhere";
    const tree = new OutputTree(`${dir}/out`, Date.now());
    const a = tree.tempIn("");
    const b = tree.tempIn("sub");
    const c = tree.tempIn("sub");
    assert.equal(parentOf(a.slice(dir.length + 1)), "out");
    assert.equal(parentOf(b.slice(dir.length + 1)), "out/sub");
    assert.notEqual(b, c);
    for (const path of [a, b, c]) assert.match(path.slice(path.lastIndexOf("/") + 1), TEMP_NAME);
    assert.equal(tree.pathOf("x/y"), `${dir}/out/x/y`);
    assert.equal(tree.pathOf(""), `${dir}/out`);
  }
});

Deno.test("OutputTree sweeps a killed run's temp files only when its marker is stale", async () => {
  await withTempDir(async (dir) => {
    const leftovers = {
      ".ctnr-extract.lock": MARKER,
      ".ctnr-tmp-abc123-1": "partial",
      "sub/.ctnr-tmp-abc123-2": "partial",
      "sub/.ctnr-tmp-abc123-x": "not a temp name of ours",
      "sub/kept.txt": "kept",
    };
    await writeTree(`${dir}/out`, leftovers);
    const start = Date.now() + 1000; // the leftovers are older than this run
    const tree = new OutputTree(`${dir}/out`, start);
    await tree.open();
    tree.ensureDir("sub");
    await tree.close();
    assert.equal(tree.swept, 2);
    assert.deepEqual(await listPaths(`${dir}/out`), [
      "sub",
      "sub/.ctnr-tmp-abc123-x",
      "sub/kept.txt",
    ]);

    // Without a stale marker, nothing is swept.
    await writeTree(`${dir}/clean`, { "sub/.ctnr-tmp-abc123-2": "another run's" });
    const clean = new OutputTree(`${dir}/clean`, start);
    await clean.open();
    clean.ensureDir("sub");
    await clean.close();
    assert.equal(clean.swept, 0);
    assert.equal(await exists(`${dir}/clean/sub/.ctnr-tmp-abc123-2`), true);
  });
});

Deno.test("OutputTree never sweeps a temp file made after its run started (a concurrent run's)", async () => {
  await withTempDir(async (dir) => {
    const pause = () => new Promise((resolve) => setTimeout(resolve, 50));
    await writeTree(`${dir}/out`, {
      ".ctnr-extract.lock": MARKER,
      "sub/.ctnr-tmp-killed-1": "left by a killed run",
    });
    // File times come from a coarse clock: leave a margin on each side of the start.
    await pause();
    const sweeper = new OutputTree(`${dir}/out`, Date.now());
    await sweeper.open(); // finds the killed run's marker
    await pause();
    // A second run starts while the first holds the marker: it sweeps nothing, and writes a
    // temp file in a folder the first run has not reached yet.
    const other = new OutputTree(`${dir}/out`, Date.now());
    await other.open();
    other.ensureDir("sub");
    const working = other.tempIn("sub");
    await Deno.writeTextFile(working, "being written");
    sweeper.ensureDir("sub");
    await sweeper.close();
    await other.close();
    assert.equal(sweeper.swept, 1);
    assert.equal(other.swept, 0);
    assert.equal(await exists(`${dir}/out/sub/.ctnr-tmp-killed-1`), false);
    assert.equal(await Deno.readTextFile(working), "being written", "the other run's file stays");
  });
});

Deno.test("OutputTree.finishFolders applies folder modes and mtimes, deepest first", async () => {
  await withTempDir(async (dir) => {
    const tree = new OutputTree(`${dir}/out`, Date.now());
    await tree.open();
    tree.ensureDir("a/b");
    const folder = (relpath: string, mode: number, mtime: number): IndexEntry => ({
      relpath,
      entryType: "dir",
      offset: 0,
      payloadSize: 0,
      origSize: 0,
      sha256: "0".repeat(64),
      compressed: false,
      mode,
      mtime,
    });
    tree.finishFolders(
      [folder("a", 0o750, 1_000_000), folder("a/b", 0o700, 2_000_000)],
      (s) => s,
    );
    await tree.close();
    const a = await Deno.stat(`${dir}/out/a`);
    const b = await Deno.stat(`${dir}/out/a/b`);
    assert.equal((a.mode ?? 0) & 0o777, 0o750);
    assert.equal((b.mode ?? 0) & 0o777, 0o700);
    // a's mtime was set after b was touched: it is a's own, not bumped by the child.
    assert.equal(a.mtime?.getTime(), 1_000_000_000);
    assert.equal(b.mtime?.getTime(), 2_000_000_000);
    await Deno.chmod(`${dir}/out/a/b`, 0o755);
  });
});

Deno.test("OutputTree.syncFolders fsyncs every folder made or met, and the new output folder's parent", async () => {
  await withTempDir(async (dir) => {
    const synced: string[] = [];
    const real = DENO_FILE_LAYER.syncFolder;
    DENO_FILE_LAYER.syncFolder = async (folder) => {
      synced.push(folder);
      await real(folder);
    };
    try {
      const tree = new OutputTree(`${dir}/out`, Date.now());
      await tree.open();
      tree.ensureDir("a/b");
      await tree.syncFolders();
      await tree.close();
    } finally {
      DENO_FILE_LAYER.syncFolder = real;
    }
    assert.deepEqual(synced.sort(), [dir, `${dir}/out`, `${dir}/out/a`, `${dir}/out/a/b`].sort());
  });
});

Deno.test("extractContainer stops when a folder is swapped for a link while it extracts (a racing local process)", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    const text = new TextEncoder();
    await writer.addFile({ relpath: "a/1.txt" }, text.encode("1"));
    await writer.addFile({ relpath: "b/2.txt" }, text.encode("2"));
    await writer.addFile({ relpath: "a/3.txt" }, text.encode("3"));
    await writer.finalize();
    await Deno.mkdir(`${dir}/outside`);
    let swapped = false;
    await assert.rejects(
      extractContainer(`${dir}/c.ctnr`, `${dir}/out`, {
        concurrency: 0,
        onEntry: (entry) => {
          if (entry.relpath !== "a/1.txt") return;
          // Another process moves the folder away and leaves a link in its place.
          Deno.renameSync(`${dir}/out/a`, `${dir}/moved`);
          Deno.symlinkSync(`${dir}/outside`, `${dir}/out/a`);
          swapped = true;
        },
      }),
      (error: unknown) => {
        assert.ok(error instanceof UnsafeEntryError, String(error));
        assert.match(error.message, /into "a": it is no longer the folder this run made/);
        return true;
      },
    );
    assert.ok(swapped);
    assert.deepEqual(await listPaths(`${dir}/outside`), [], "nothing written through the link");
    assert.equal(await Deno.readTextFile(`${dir}/out/b/2.txt`), "2", "other folders are fine");
  });
});

Deno.test("OutputTree.finishFolders never sets a mode through a folder swapped for a link or another folder", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/outside`, { mode: 0o755 });
    const folder = (relpath: string): IndexEntry => ({
      relpath,
      entryType: "dir",
      offset: 0,
      payloadSize: 0,
      origSize: 0,
      sha256: "0".repeat(64),
      compressed: false,
      mode: 0o777,
    });
    for (const swap of ["link", "folder"]) {
      const out = `${dir}/out-${swap}`;
      const tree = new OutputTree(out, Date.now(), { hasEntry: () => true });
      await tree.open();
      try {
        tree.ensureDir("priv");
        assert.equal((await Deno.lstat(`${out}/priv`)).mode! & 0o777, 0o700, "made 0700");
        await Deno.rename(`${out}/priv`, `${out}/moved`);
        if (swap === "link") await Deno.symlink(`${dir}/outside`, `${out}/priv`);
        else await Deno.mkdir(`${out}/priv`, { mode: 0o755 });
        assert.throws(() => tree.checkDir("priv"), /"priv": it is no longer the folder/);
        assert.throws(
          () => tree.finishFolders([folder("priv")], (s) => s),
          /"priv": it is no longer the folder this run made/,
        );
      } finally {
        await tree.close();
      }
      assert.equal((await Deno.stat(`${out}/priv`)).mode! & 0o777, 0o755, `${swap}: untouched`);
    }
    assert.equal((await Deno.stat(`${dir}/outside`)).mode! & 0o777, 0o755, "outside untouched");
  });
});
