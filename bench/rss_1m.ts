/**
 * Peak RSS and time of `create`, resume and `extract` at one million
 * entries (issue targets: peak RSS at most 256 MB each).
 *
 * - create: packs a real tree of 1,000,000 files of 16 bytes (1,000 folders).
 * - resume: `create` again on the finished container and index: loads the
 *   1M-entry index, re-hashes the last batch, walks the tree and skips
 *   every file (each one stat'ed to detect changes).
 * - resume (index only): `create` from an empty folder against the same
 *   container: the index load alone.
 * - extract: the whole container into a new folder; again with the V8 flag the
 *   compiled binary embeds (`--max-semi-space-size=4`, deno.json's compile task).
 *
 *   deno run -A bench/rss_1m.ts [--entries N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchRoot, ctnrCommand, measure, writeSmallTree } from "./_measure.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { entries: { type: "string", default: "1000000" } },
});
const entries = Number(values.entries);
/** The V8 flag `deno task compile` embeds (deno.json). */
const SEMI_SPACE_FLAG = "--v8-flags=--max-semi-space-size=4";
const root = await benchRoot();
const ctnr = ctnrCommand();
console.log(`bench root ${root}, ${entries} entries`);
try {
  const src = `${root}/src`;
  const t0 = performance.now();
  writeSmallTree(src, entries);
  console.log(`  tree built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await Deno.mkdir(`${root}/empty`);
  const c = `${root}/c.ctnr`;
  report("create", await measure([...ctnr, "create", "--src", src, "--container", c]));
  report(
    "resume (tree walked, all skipped)",
    await measure([...ctnr, "create", "--src", src, "--container", c]),
  );
  report(
    "resume (index only)",
    await measure([...ctnr, "create", "--src", `${root}/empty`, "--container", c]),
  );
  report(
    "extract",
    await measure([...ctnr, "extract", "--container", c, "--outdir", `${root}/out`]),
  );
  await Deno.remove(`${root}/out`, { recursive: true });
  // The compiled binary's V8 flag (deno.json's compile task): a young generation of at most
  // 4 MiB a semi-space in each isolate, the two write workers' included.
  const [deno, ...rest] = ctnr;
  report(
    "extract (semi-space 4 MiB, as compiled)",
    await measure([
      deno!,
      rest[0]!,
      SEMI_SPACE_FLAG,
      ...rest.slice(1),
      "extract",
      "--container",
      c,
      "--outdir",
      `${root}/out`,
    ]),
  );
} finally {
  await Deno.remove(root, { recursive: true });
}

function report(name: string, m: { seconds: number; peakMiB: number; code: number }) {
  const ok = m.peakMiB <= 256 ? "ok" : "OVER 256 MB";
  console.log(
    `${name.padEnd(42)} ${m.seconds.toFixed(1).padStart(6)} s  peak RSS ${
      m.peakMiB.toFixed(0).padStart(4)
    } MiB  ${ok}` +
      (m.code !== 0 ? `  (exit ${m.code})` : ""),
  );
}
