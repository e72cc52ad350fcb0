/**
 * `ctnr list -l` against `tar -tvf`, and `ctnr list` against `tar -tf`, on
 * the same tree of 1,000,000 files (issue 13: `list -l` at least as fast as
 * `tar -tvf`). The tree, the tar and the container are built once on tmpfs
 * (1,000 folders of 1,000 files of 16 bytes; `create --finalize`, which keeps
 * the `.idx` beside the container, so each list also compares the two
 * indexes). Each pair runs alternately, output to /dev/null, and prints
 * min / median / max in seconds and the ratio of the medians (ctnr / tar).
 *
 *   deno run -A bench/list_1m.ts [--entries N] [--runs N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchRoot, ctnrCommand, measure, median, writeSmallTree } from "./_measure.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    entries: { type: "string", default: "1000000" },
    runs: { type: "string", default: "5" },
  },
});
const entries = Number(values.entries);
const runs = Number(values.runs);
const ctnr = ctnrCommand();
const root = await benchRoot();
console.log(`bench root ${root}, ${entries} entries, ${runs} runs each`);
try {
  const src = `${root}/src`;
  const t0 = performance.now();
  writeSmallTree(src, entries);
  const tar = `${root}/t.tar`;
  const container = `${root}/c.ctnr`;
  const built = await Promise.all([
    measure(["tar", "-cf", tar, "-C", root, "src"], undefined, false),
    measure([...ctnr, "create", "-q", "--finalize", src, container], undefined, false),
  ]);
  if (built.some((m) => m.code !== 0)) throw new Error("could not build the tar or container");
  console.log(
    `  tree, tar and container built in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  await Deno.remove(src, { recursive: true }); // frees tmpfs: the listings read only the archives
  await pair("list -l vs tar -tvf", [...ctnr, "list", "-l", container], ["tar", "-tvf", tar]);
  await pair("list    vs tar -tf ", [...ctnr, "list", container], ["tar", "-tf", tar]);
} finally {
  await Deno.remove(root, { recursive: true });
}

/** Run the two commands alternately and print both ranges and the ratio of the medians. */
async function pair(name: string, ours: string[], theirs: string[]): Promise<void> {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (
      const [argv, into] of i % 2 === 0
        ? [[ours, a], [theirs, b]] as const
        : [[theirs, b], [ours, a]] as const
    ) {
      const m = await measure(argv as string[], undefined, false);
      if (m.code !== 0) throw new Error(`${argv.join(" ")} exited ${m.code}`);
      into.push(m.seconds);
    }
  }
  const range = (xs: number[]) =>
    `${Math.min(...xs).toFixed(2)} / ${median(xs).toFixed(2)} / ${Math.max(...xs).toFixed(2)}`;
  console.log(
    `${name}: ctnr ${range(a)} s, tar ${range(b)} s, ratio ${(median(a) / median(b)).toFixed(2)}`,
  );
}
