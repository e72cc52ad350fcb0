/**
 * extract's plan over a long index: the write workers start before it, and
 * nothing is written when it refuses the index.
 */

import assert from "node:assert/strict";
import { EMPTY_SHA256 } from "../lib/format/entry.ts";
import { extractContainer } from "../lib/extract/extract_container.ts";
import { exists, listPaths, withTempDir } from "./_helpers.ts";

/** Index lines of `count` empty files spread over 50 folders. */
function indexLines(count: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(JSON.stringify({
      relpath: `d${i % 50}/f${i}.bin`,
      offset: 0,
      payload_size: 0,
      orig_size: 0,
      sha256: EMPTY_SHA256,
      compressed: false,
    }));
  }
  return lines;
}

Deno.test("extract refuses a duplicate late in a long index before writing anything", async () => {
  await withTempDir(async (dir) => {
    const lines = indexLines(3000); // ~500 KB: the write workers start before the plan runs
    lines.push(lines[1]!);
    await Deno.writeFile(`${dir}/c.ctnr`, new Uint8Array(0));
    await Deno.writeTextFile(`${dir}/c.ctnr.idx`, lines.join("\n") + "\n");
    await assert.rejects(
      () => extractContainer(`${dir}/c.ctnr`, `${dir}/out`),
      /Cannot extract "d1\/f1\.bin": another entry has the same path/,
    );
    assert.ok(!(await exists(`${dir}/out`)) || (await listPaths(`${dir}/out`)).length === 0);
    lines.pop();
    await Deno.writeTextFile(`${dir}/c.ctnr.idx`, lines.join("\n") + "\n");
    const result = await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.equal(result.extracted, 3000);
    assert.equal((await listPaths(`${dir}/out`)).length, 3050); // 3,000 files in 50 folders
  });
});
