import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import {
  existingMatches,
  type FileJob,
  fromFault,
  packJobs,
  toFault,
} from "../lib/extract/file_writer.ts";
import { writeBatch } from "../lib/extract/_extract_worker.ts";
import { ConflictError, CtnrError, IntegrityError, UnsafeEntryError } from "../mod.ts";
import { listPaths, pseudoRandomBytes, withTempDir } from "./_helpers.ts";

/** What a write worker's error becomes on the main thread (structured clone between). */
function acrossWorkers(error: unknown, relpath = "a/b.txt"): CtnrError {
  return fromFault(structuredClone(toFault(error)), relpath);
}

Deno.test("fromFault keeps a TypeError of a write worker as the cause of its CtnrError IO", () => {
  const error = acrossWorkers(new TypeError("job.mode is not a number"));
  assert.equal(error.constructor, CtnrError);
  assert.equal(error.code, "IO");
  assert.equal(error.message, 'Cannot extract "a/b.txt": job.mode is not a number');
  assert.ok(error.cause instanceof Error);
  assert.equal(error.cause.name, "TypeError");
  assert.equal(error.cause.message, "job.mode is not a number");
  assert.match(error.cause.stack ?? "", /file_writer_test\.ts/);
});

Deno.test("fromFault keeps an OS error's name and code as the cause", () => {
  let os: unknown;
  try {
    Deno.lstatSync("/nonexistent-ctnr-path");
  } catch (error) {
    os = error;
  }
  const error = acrossWorkers(os);
  assert.equal(error.code, "IO");
  assert.equal((error.cause as Error).name, "NotFound");
  assert.equal((error.cause as { code?: string }).code, "ENOENT");
});

Deno.test("fromFault rebuilds an IntegrityError with its cause chain", () => {
  let zlib: unknown;
  try {
    gunzipSync(new Uint8Array([1, 2, 3, 4]));
  } catch (error) {
    zlib = error;
  }
  const original = new IntegrityError('Cannot extract "a/b.txt": corrupt gzip payload', {
    cause: zlib,
  });
  const error = acrossWorkers(original);
  assert.ok(error instanceof IntegrityError);
  assert.equal(error.message, original.message);
  assert.equal((error.cause as Error).name, "Error");
  assert.equal((error.cause as { code?: string }).code, "Z_DATA_ERROR");
  assert.equal((error.cause as Error).cause, undefined);
});

Deno.test("fromFault rebuilds an UnsafeEntryError with no cause", () => {
  const error = acrossWorkers(new UnsafeEntryError('Cannot extract "a": a folder stands there'));
  assert.ok(error instanceof UnsafeEntryError);
  assert.equal(error.message, 'Cannot extract "a": a folder stands there');
  assert.equal(error.cause, undefined);
  assert.equal(Object.hasOwn(error, "cause"), false);
});

Deno.test("toFault cuts a cause chain that loops", () => {
  const error = new Error("a");
  error.cause = error;
  assert.equal(toFault(error).causes.length, 8);
});

Deno.test("fromFault gives back a ConflictError as its class", () => {
  const error = acrossWorkers(new ConflictError('Cannot extract "b": same file as "a"'));
  assert.ok(error instanceof ConflictError);
  assert.equal(error.message, 'Cannot extract "b": same file as "a"');
});

/** A write job for `bytes` at `folder/name`. */
function jobFor(folder: string, name: string, bytes: Uint8Array, fresh: boolean): FileJob {
  return {
    relpath: name,
    target: `${folder}/${name}`,
    tmp: `${folder}/.ctnr-tmp-test-${name.length}-${bytes.length}`,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    compressed: false,
    origSize: bytes.length,
    mode: 0o644,
    mtime: null,
    origSha256: null,
    fresh,
  };
}

Deno.test("writeBatch writes nothing into a folder swapped for a link since the run made it (a racing process)", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/out/a`, { recursive: true });
    await Deno.mkdir(`${dir}/outside`);
    const info = await Deno.lstat(`${dir}/out/a`);
    const folder = {
      relpath: "a",
      path: `${dir}/out/a`,
      dev: info.dev,
      ino: info.ino!,
      made: true,
      folds: false,
    };
    const bytes = new TextEncoder().encode("payload");
    const batch = () => {
      const jobs = [jobFor(folder.path, "x.txt", bytes, true)];
      return {
        jobs: packJobs(jobs),
        at: new Float64Array([0, bytes.length]),
        payloads: bytes,
        settings: { skipExisting: false, verifyExisting: false, fsync: false, umask: 0o022 },
        folder,
      };
    };
    assert.deepEqual([...writeBatch(batch()).codes], [0], "the folder as it was made");
    await Deno.rename(`${dir}/out/a`, `${dir}/out/a-moved`);
    await Deno.symlink(`${dir}/outside`, `${dir}/out/a`);
    const result = writeBatch(batch());
    assert.deepEqual([...result.codes], [2]);
    assert.equal(result.faults[0]?.code, "UNSAFE_ENTRY");
    assert.match(result.faults[0]!.message, /"a": it is no longer the folder this run made/);
    assert.deepEqual(await listPaths(`${dir}/outside`), [], "nothing through the link");
  });
});

const VERIFY_EXISTING = { skipExisting: false, verifyExisting: true, fsync: false, umask: 0o022 };

Deno.test("existingMatches reads an existing file through one reused buffer: 5,000 checks of a 4 KiB file grow RSS by less than 40 MiB", async () => {
  await withTempDir(async (dir) => {
    // A fresh 1 MiB buffer a check grew RSS by 75-205 MiB over these 5,000 (and a full
    // extract --verify-existing of 20,000 x 4 KiB to 660-900 MB); one reused buffer by 7-12 MiB.
    const bytes = pseudoRandomBytes(4096, 9);
    await Deno.writeFile(`${dir}/f.bin`, bytes);
    const job = jobFor(dir, "f.bin", bytes, false);
    const start = Deno.memoryUsage().rss;
    let growth = 0;
    for (let i = 0; i < 5000; i++) {
      assert.equal(existingMatches(job, VERIFY_EXISTING), true);
      if (i % 50 === 0) growth = Math.max(growth, Deno.memoryUsage().rss - start);
    }
    assert.ok(growth < 40 << 20, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`);
  });
});

Deno.test("existingMatches compares every byte of a file read in pieces, and only a small file's own bytes after it", async () => {
  await withTempDir(async (dir) => {
    const bytes = pseudoRandomBytes(3 * (1 << 20) + 5, 11); // three 1 MiB pieces and a bit
    await Deno.writeFile(`${dir}/big.bin`, bytes);
    const job = jobFor(dir, "big.bin", bytes, false);
    assert.equal(existingMatches(job, VERIFY_EXISTING), true, "the same bytes");
    const last = bytes.slice();
    last[last.length - 1] = last[last.length - 1]! ^ 1;
    await Deno.writeFile(`${dir}/big.bin`, last);
    assert.equal(existingMatches(job, VERIFY_EXISTING), false, "its last byte changed");
    // Checked before its first small file: the buffer grew to 1 MiB, and a small file after it
    // must be hashed over its own bytes only.
    const small = new TextEncoder().encode("small");
    await Deno.writeFile(`${dir}/s.txt`, small);
    assert.equal(existingMatches(jobFor(dir, "s.txt", small, false), VERIFY_EXISTING), true);
    const empty = new Uint8Array(0);
    await Deno.writeFile(`${dir}/e.txt`, empty);
    assert.equal(existingMatches(jobFor(dir, "e.txt", empty, false), VERIFY_EXISTING), true);
  });
});
