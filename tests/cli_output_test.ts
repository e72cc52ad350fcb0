/**
 * What the CLI prints, line by line: a closed standard output ends a run
 * quietly with 141 (never counted as a fault of an entry), and every error or
 * warning is one line on stderr starting with `ctnr:`, whatever the names in
 * it hold (README "Output for scripts").
 */

import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { StdoutClosed } from "../cli/output.ts";
import { ContainerWriter } from "../mod.ts";
import { listPaths, withTempDir } from "./_helpers.ts";

/** Run the CLI in-process with a standard output that closes after `lines` lines (`| head`). */
async function runClosing(lines: number, ...args: string[]) {
  let stdout = "";
  let stderr = "";
  let printed = 0;
  const code = await main(args, {
    stdout: (text) => {
      if (printed++ >= lines) throw new StdoutClosed();
      stdout += text + "\n";
    },
    stderr: (text) => stderr += text + "\n",
    writeBytes: () => Promise.reject(new StdoutClosed()),
    isTerminal: false,
  });
  return { code, stdout, stderr };
}

/** A container of 1,200 small files in three folders (enough for the write workers). */
async function manyFiles(path: string): Promise<void> {
  const writer = await ContainerWriter.open(path);
  for (let i = 0; i < 1200; i++) {
    await writer.addFile({ relpath: `d${i % 3}/f${i}.txt` }, new TextEncoder().encode(`${i}`));
  }
  await writer.finalize();
}

Deno.test("main extract and verify -vv into a closed stdout stop quietly with 141, no entry counted failed", async () => {
  await withTempDir(async (dir) => {
    const c = `${dir}/c.ctnr`;
    await manyFiles(c);
    const runs: [string, string[]][] = [
      ["o1", ["extract", c, `${dir}/o1`, "-vv"]],
      ["o2", ["extract", c, `${dir}/o2`, "-vv", "--keep-going"]],
      ["o3", ["extract", c, `${dir}/o3`, "-vv", "--keep-going", "--concurrency", "0"]],
      ["o4", ["extract", c, `${dir}/o4`, "-vv", "--salvage"]],
      ["", ["verify", c, "-vv"]],
      ["", ["verify", c, "-vv", "--salvage"]],
    ];
    for (const [out, args] of runs) {
      const run = await runClosing(1, ...args);
      assert.equal(run.code, 141, `${args.join(" ")}: ${run.stderr}`);
      assert.equal(run.stderr, "", args.join(" "));
      assert.equal(run.stdout.split("\n").length, 2, args.join(" "));
      if (out === "") continue;
      const paths = await listPaths(`${dir}/${out}`);
      // Stopped early, the lock released, no temp file left.
      assert.ok(paths.length < 1200 + 3, `${args.join(" ")}: ${paths.length} paths`);
      assert.deepEqual(paths.filter((p) => p.includes(".ctnr-")), [], args.join(" "));
    }
  });
});
