/**
 * ctnr against GNU tar, bsdtar, pigz/gzip, sha256sum and cat, side by side on this machine.
 * Builds its trees on tmpfs when present and runs every side of a case in turn, `--runs` times
 * (default 3), the order rotated each run so that no side always goes first. Only the command is
 * timed: each side's preparation (removing the last run's output, making the output folder) and a
 * `sync` run before the clock starts, and commands are spawned directly (through `bash -c` only
 * where a pipeline or a redirection needs a shell, which costs about 2 ms). Prints the machine,
 * then per case the load average, each side's min/median/max in seconds and the ratio of ctnr's
 * median to each reference's. Every ctnr run hashes every payload; the fair anchors do the same
 * work as ctnr: `tar -c` followed by `sha256sum` of every file, and `bsdtar -x --safe-writes`
 * over an extracted tree (each file written to a temp name and renamed over the old one;
 * into an empty folder bsdtar writes in place and renames nothing, shown beside it).
 *
 *   deno task bench                 # every case
 *   deno task bench --case small    # one case: small | big | gzip | verify-existing
 *   deno task bench --runs 5
 *
 * Needs GNU tar, bsdtar (Debian: libarchive-tools), pigz, gzip, sha256sum; a missing tool's
 * side is skipped with a note.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  benchRoot,
  compareSides,
  ctnrCommand,
  fillRandom,
  hasTool,
  loadAverage,
  machine,
  measure,
  type Side,
  writeTextTree,
} from "./_measure.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "3" }, case: { type: "string" } },
});
const runs = Number(values.runs);
const ctnr = ctnrCommand();
const root = await benchRoot();
console.log(machine());
console.log(
  `bench root ${root}, ${runs} runs a side, alternated; min/median/max seconds; ` +
    `cpu = median user+system seconds; ratio = ctnr median / reference median, wall (and cpu)`,
);

try {
  if (!values.case || values.case === "small") await smallFiles();
  if (!values.case || values.case === "big") await bigFiles();
  if (!values.case || values.case === "gzip") await gzipFiles();
  if (!values.case || values.case === "verify-existing") await verifyExisting();
} finally {
  await Deno.remove(root, { recursive: true });
}
console.log(`load average at the end ${loadAverage()}`);

/** {@link compareSides} with this run's count. */
function compare(title: string, sides: Side[], sampleRss = false): Promise<unknown> {
  return compareSides(title, sides, { runs, sampleRss });
}

/** A tree of `folders` x 1,000 files of 4 KiB of pseudo-random bytes. */
async function writeRandomTree(src: string, folders: number): Promise<void> {
  const buf = new Uint8Array(4096);
  for (let d = 0; d < folders; d++) {
    await Deno.mkdir(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < 1000; f++) {
      fillRandom(buf, d * 1000 + f + 1);
      Deno.writeFileSync(`${src}/d${d}/f${f}.bin`, buf);
    }
  }
}

/** `tar -cf` then `sha256sum` of every file: the work ctnr create does (pack and hash). */
function tarThenHash(src: string, tar: string): string {
  return `tar -cf ${tar} -C ${src} . && cd ${src} && find . -type f -print0 | ` +
    `xargs -0 sha256sum > /dev/null`;
}

/**
 * The sides of a create comparison: ctnr create into `${root}/${prefix}.ctnr`, `tar -cf` into
 * `…${prefix}.tar` (what the extract sides read) and `tar -cf` then `sha256sum` into
 * `…${prefix}2.tar`.
 */
function createSides(src: string, prefix: string): Side[] {
  const container = `${root}/${prefix}.ctnr`;
  return [
    {
      label: "ctnr create",
      argv: [...ctnr, "create", "--src", src, "--container", container],
      remove: [container, `${container}.idx`],
    },
    {
      label: "tar -cf",
      argv: ["tar", "-cf", `${root}/${prefix}.tar`, "-C", src, "."],
      remove: [`${root}/${prefix}.tar`],
    },
    {
      label: "tar -cf, then sha256sum of every file",
      argv: tarThenHash(src, `${root}/${prefix}2.tar`),
      remove: [`${root}/${prefix}2.tar`],
    },
  ];
}

/**
 * The sides of an extract comparison: ctnr extract, `tar -xf`, and bsdtar `--safe-writes` into an
 * empty folder and over the tree (filled here once, untimed), into `${root}/${prefix}x`, `…tx`,
 * `…bx` and `…bfull`.
 */
async function extractSides(container: string, tar: string, prefix: string): Promise<Side[]> {
  const ctnrOut = `${root}/${prefix}x`;
  const tarOut = `${root}/${prefix}tx`;
  const bsdOut = `${root}/${prefix}bx`;
  const bsdFull = `${root}/${prefix}bfull`;
  if (hasTool("bsdtar")) {
    // --safe-writes writes to a temp name and renames only where the target exists (into an
    // empty folder it writes in place, like tar): this folder is filled once, untimed, so that
    // each timed run renames every file, as ctnr does.
    await Deno.mkdir(bsdFull);
    await measure(["bsdtar", "-x", "-f", tar, "-C", bsdFull], undefined, false);
  }
  return [
    {
      label: "ctnr extract",
      argv: [...ctnr, "extract", "--container", container, "--outdir", ctnrOut],
      remove: [ctnrOut],
    },
    {
      label: "tar -xf",
      argv: ["tar", "-xf", tar, "-C", tarOut],
      remove: [tarOut],
      mkdir: tarOut,
    },
    {
      label: "bsdtar -x --safe-writes, empty folder",
      argv: ["bsdtar", "-x", "--safe-writes", "-f", tar, "-C", bsdOut],
      remove: [bsdOut],
      mkdir: bsdOut,
      needs: ["bsdtar"],
    },
    {
      label: "bsdtar -x --safe-writes, over the tree",
      argv: ["bsdtar", "-x", "--safe-writes", "-f", tar, "-C", bsdFull],
      mkdir: bsdFull,
      needs: ["bsdtar"],
    },
  ];
}

async function smallFiles() {
  const src = `${root}/small`;
  await writeRandomTree(src, 100);
  const container = `${root}/s.ctnr`;
  await compare("small files: create (100,000 x 4 KiB in 100 folders)", createSides(src, "s"));
  await compare(
    "small files: extract (100,000 x 4 KiB)",
    await extractSides(container, `${root}/s.tar`, "s"),
  );
  for (
    const p of ["small", "s.ctnr", "s.ctnr.idx", "s.tar", "s2.tar", "sx", "stx", "sbx", "sbfull"]
  ) {
    await Deno.remove(`${root}/${p}`, { recursive: true }).catch(() => {});
  }
}

async function bigFiles() {
  const src = `${root}/big`;
  await Deno.mkdir(src, { recursive: true });
  const buf = new Uint8Array(256 << 20);
  for (const i of [1, 2]) {
    fillRandom(buf, i);
    await Deno.writeFile(`${src}/big${i}.bin`, buf);
  }
  const container = `${root}/b.ctnr`;
  await compare("big files: create (2 x 256 MiB)", [
    ...createSides(src, "b"),
    {
      label: "cat > file",
      argv: `cat ${src}/big1.bin ${src}/big2.bin > ${root}/b.cat`,
      remove: [`${root}/b.cat`],
    },
  ]);
  await compare("big files: extract (2 x 256 MiB)", [
    ...await extractSides(container, `${root}/b.tar`, "b"),
    {
      label: "cat > file",
      argv: `cat ${root}/b.cat > ${root}/bcx/all`,
      remove: [`${root}/bcx`],
      mkdir: `${root}/bcx`,
    },
  ]);
  for (
    const p of [
      "big",
      "b.ctnr",
      "b.ctnr.idx",
      "b.tar",
      "b2.tar",
      "b.cat",
      "bx",
      "btx",
      "bbx",
      "bbfull",
      "bcx",
    ]
  ) {
    await Deno.remove(`${root}/${p}`, { recursive: true }).catch(() => {});
  }
}

async function gzipFiles() {
  const src = `${root}/text`;
  const bytes = await writeTextTree(src);
  const container = `${root}/g.ctnr`;
  const tgz = `${root}/g.tgz`;
  await compare(
    `gzip: create (20,000 text files of 1-16 KiB, ${(bytes / 2 ** 20).toFixed(0)} MiB)`,
    [
      {
        label: "ctnr create --compress",
        argv: [...ctnr, "create", "--compress", "--src", src, "--container", container],
        remove: [container, `${container}.idx`],
      },
      {
        label: "tar -cf - | pigz -6",
        argv: `tar -cf - -C ${src} . | pigz -6 > ${root}/gp.tgz`,
        remove: [`${root}/gp.tgz`],
        needs: ["pigz"],
      },
      {
        label: "tar -cf - | gzip -6",
        argv: `tar -cf - -C ${src} . | gzip -6 > ${tgz}`,
        remove: [tgz],
      },
    ],
  );
  await compare("gzip: extract (the same 20,000 files)", [
    {
      label: "ctnr extract",
      argv: [...ctnr, "extract", "--container", container, "--outdir", `${root}/gx`],
      remove: [`${root}/gx`],
    },
    {
      label: "tar -xzf",
      argv: ["tar", "-xzf", tgz, "-C", `${root}/gtx`],
      remove: [`${root}/gtx`],
      mkdir: `${root}/gtx`,
    },
    {
      label: "pigz -dc | tar -xf -",
      argv: `pigz -dc ${tgz} | tar -xf - -C ${root}/gpx`,
      remove: [`${root}/gpx`],
      mkdir: `${root}/gpx`,
      needs: ["pigz"],
    },
  ]);
  for (const p of ["text", "g.ctnr", "g.ctnr.idx", "g.tgz", "gp.tgz", "gx", "gtx", "gpx"]) {
    await Deno.remove(`${root}/${p}`, { recursive: true }).catch(() => {});
  }
}

/**
 * `extract --verify-existing` over a complete output folder (every file hashed and kept)
 * against `extract` into an empty one: checking what is there must not cost more than writing
 * it again. Prints peak RSS beside the times (sampled every 5 ms: some CPU beside the command).
 */
async function verifyExisting() {
  const src = `${root}/v`;
  await writeRandomTree(src, 20);
  const container = `${root}/v.ctnr`;
  await measure(
    [...ctnr, "create", "--finalize", "--src", src, "--container", container],
    undefined,
    false,
  );
  await measure(
    [...ctnr, "extract", "--container", container, "--outdir", `${root}/vfull`],
    undefined,
    false,
  );
  await compare("verify-existing (20,000 x 4 KiB)", [
    {
      label: "extract --verify-existing (full folder)",
      argv: [
        ...ctnr,
        "extract",
        "--verify-existing",
        "--container",
        container,
        "--outdir",
        `${root}/vfull`,
      ],
    },
    {
      label: "extract (empty folder)",
      argv: [...ctnr, "extract", "--container", container, "--outdir", `${root}/vx`],
      remove: [`${root}/vx`],
    },
  ], true);
  for (const p of ["v", "v.ctnr", "v.ctnr.idx", "vfull", "vx"]) {
    await Deno.remove(`${root}/${p}`, { recursive: true }).catch(() => {});
  }
}
