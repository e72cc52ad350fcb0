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
 * - create (one folder): packs one folder holding all the files (a tree of its own).
 *
 * `--cases` picks some of them (`create,resume,index,extract,extract-one-worker,extract-flag,
 * one-folder`; resume, index and the extracts need create's container, made unmeasured when create
 * is not picked), `--runs` repeats each and prints min/median/max.
 *
 *   deno run -A bench/rss_1m.ts [--entries N] [--cases LIST] [--runs N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  benchRoot,
  ctnrCommand,
  loadAverage,
  measure,
  type Measured,
  spread,
  writeSmallTree,
} from "./_measure.ts";

const CASES = [
  "create",
  "resume",
  "index",
  "extract",
  "extract-one-worker",
  "extract-flag",
  "one-folder",
];
const { values } = parseArgs({
  args: Deno.args,
  options: {
    entries: { type: "string", default: "1000000" },
    cases: { type: "string", default: CASES.join(",") },
    runs: { type: "string", default: "1" },
  },
});
const entries = Number(values.entries);
const runs = Number(values.runs);
const cases = new Set(values.cases.split(","));
for (const name of cases) {
  if (!CASES.includes(name)) throw new Error(`bench: unknown case ${name} (${CASES.join(", ")})`);
}
/** The V8 flag `deno task compile` embeds (deno.json). */
const SEMI_SPACE_FLAG = "--v8-flags=--max-semi-space-size=4";
const root = await benchRoot();
const ctnr = ctnrCommand();
console.log(`bench root ${root}, ${entries} entries`);
try {
  const src = `${root}/src`;
  const c = `${root}/c.ctnr`;
  const treeCases = [...cases].filter((name) => name !== "one-folder");
  if (treeCases.length > 0) {
    const t0 = performance.now();
    writeSmallTree(src, entries);
    console.log(`  tree built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await Deno.mkdir(`${root}/empty`);
    const create = [...ctnr, "create", "--src", src, "--container", c];
    if (cases.has("create")) {
      await repeat("create", create, () => Deno.remove(c).then(() => Deno.remove(`${c}.idx`)));
    }
    await measure(create, undefined, false);
    if (cases.has("resume")) await repeat("resume (tree walked, all skipped)", create);
    if (cases.has("index")) {
      await repeat("resume (index only)", [
        ...ctnr,
        "create",
        "--src",
        `${root}/empty`,
        "--container",
        c,
      ]);
    }
    const out = () => Deno.remove(`${root}/out`, { recursive: true });
    const extract = ["extract", "--container", c, "--outdir", `${root}/out`];
    if (cases.has("extract")) await repeat("extract", [...ctnr, ...extract], out);
    // One write worker instead of two: a V8 heap less (issue 17's extract memory target).
    if (cases.has("extract-one-worker")) {
      await repeat("extract --concurrency 1", [...ctnr, ...extract, "--concurrency", "1"], out);
    }
    // The compiled binary's V8 flag (deno.json's compile task): a young generation of at most
    // 4 MiB a semi-space in each isolate, the two write workers' included.
    const [deno, ...rest] = ctnr;
    if (cases.has("extract-flag")) {
      await repeat(
        "extract (semi-space 4 MiB, as compiled)",
        [deno!, rest[0]!, SEMI_SPACE_FLAG, ...rest.slice(1), ...extract],
        out,
      );
    }
    await Deno.remove(src, { recursive: true });
  }
  if (cases.has("one-folder")) {
    const flat = `${root}/flat`;
    const t0 = performance.now();
    writeSmallTree(flat, entries, entries);
    console.log(`  one folder built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const f = `${root}/flat.ctnr`;
    await repeat(
      `create (one folder of ${entries} files)`,
      [...ctnr, "create", "--src", flat, "--container", f],
      () => Deno.remove(f).then(() => Deno.remove(`${f}.idx`)),
    );
  }
} finally {
  await Deno.remove(root, { recursive: true });
}

/** Run a case `runs` times, cleaning up after each run (untimed), and report each and the range. */
async function repeat(name: string, argv: string[], clean?: () => Promise<void>) {
  const all: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    const load = loadAverage().split(" ")[0];
    const m = await measure(argv);
    all.push(m);
    report(runs > 1 ? `${name} #${i + 1}` : name, m, load);
    await clean?.();
  }
  if (runs > 1) {
    const peak = spread(all.map((m) => m.peakMiB));
    const time = spread(all.map((m) => m.seconds));
    console.log(
      `${name}: peak RSS ${peak.min.toFixed(0)}/${peak.median.toFixed(0)}/${
        peak.max.toFixed(0)
      } MiB, time ${time.min.toFixed(1)}/${time.median.toFixed(1)}/${
        time.max.toFixed(1)
      } s (min/median/max of ${runs})`,
    );
  }
}

function report(name: string, m: Measured, load = "") {
  const ok = m.peakMiB <= 256 ? "ok" : "OVER 256 MB";
  console.log(
    `${name.padEnd(42)} ${m.seconds.toFixed(1).padStart(6)} s  peak RSS ${
      m.peakMiB.toFixed(0).padStart(4)
    } MiB  ${ok}` +
      (load ? `  load ${load}` : "") +
      (m.code !== 0 ? `  (exit ${m.code})` : ""),
  );
}
