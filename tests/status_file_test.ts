import * as assert from "node:assert/strict";
import { StatusFile } from "../mod.ts";
import { kvValue } from "../lib/io/status_file.ts";
import { withTempDir } from "./_helpers.ts";

Deno.test("kvValue keeps a value on one line and free of control codes: a name cannot add a line or colour a terminal", () => {
  assert.equal(kvValue("a/b c.txt"), "a/b c.txt");
  assert.equal(kvValue(42), "42");
  assert.equal(kvValue("x\nstatus=finished"), "x\\nstatus=finished");
  assert.equal(kvValue("\x1b[31mred\x07\ttab\rCR"), "\\x1b[31mred\\x07\\ttab\\rCR");
  assert.equal(kvValue("back\\slash"), "back\\\\slash");
  assert.equal(kvValue("sep\u2028x\u009b"), "sep\\u2028x\\x9b");
  assert.equal(kvValue("名前 😀"), "名前 😀");
});

Deno.test("StatusFile in kv writes a file name with a newline and an escape on its own line, escaped", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/status.kv`;
    const status = new StatusFile(path, "kv");
    await status.update({ current_file: "evil\nstatus=finished\x1b[2J", status: "running" }, true);
    const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
    assert.deepEqual(lines, ["current_file=evil\\nstatus=finished\\x1b[2J", "status=running"]);
  });
});
