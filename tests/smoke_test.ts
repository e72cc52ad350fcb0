import assert from "node:assert/strict";
import { createContainer, extractContainer } from "../mod.ts";
import { diffTrees, withTempDir, writeTree } from "./_helpers.ts";

Deno.test("createContainer and extractContainer round-trip a small tree", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "a.txt": "hello",
      "empty.bin": "",
      "d/é/ファイル.txt": "unicode",
      "empty-dir": { dir: true },
      "link": { symlink: "a.txt" },
    });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});
