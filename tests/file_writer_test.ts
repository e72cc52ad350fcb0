import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { fromFault, toFault } from "../lib/extract/file_writer.ts";
import { CtnrError, IntegrityError, UnsafeEntryError } from "../mod.ts";

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
