/**
 * ctnr against GNU tar, pigz/gzip and cat, side by side on this machine.
 * Builds its trees on tmpfs when present, runs ctnr and the reference
 * alternately (`--runs`, default 3), and prints one line per case with both
 * medians and the ratio ctnr/reference. Every ctnr run hashes every payload.
 *
 *   deno task bench                 # every case
 *   deno task bench --case small    # one case: small | big | gzip | verify-existing
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchRoot, ctnrCommand, fillRandom, measure, median } from "./_measure.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "3" }, case: { type: "string" } },
});
const runs = Number(values.runs);
const ctnr = ctnrCommand().map((a) => `'${a}'`).join(" ");
const root = await benchRoot();
console.log(`bench root ${root}, ${runs} runs each, medians in seconds`);

try {
  if (!values.case || values.case === "small") await smallFiles();
  if (!values.case || values.case === "big") await bigFiles();
  if (!values.case || values.case === "gzip") await gzipFiles();
  if (!values.case || values.case === "verify-existing") await verifyExisting();
} finally {
  await Deno.remove(root, { recursive: true });
}

async function smallFiles() {
  const src = `${root}/small`;
  const buf = new Uint8Array(4096);
  for (let d = 0; d < 100; d++) {
    await Deno.mkdir(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < 1000; f++) {
      fillRandom(buf, d * 1000 + f + 1);
      Deno.writeFileSync(`${src}/d${d}/f${f}.bin`, buf);
    }
  }
  await compare(
    "small files: create (100,000 x 4 KiB)",
    `rm -f ${root}/s.ctnr ${root}/s.ctnr.idx && ${ctnr} create --src ${src} --container ${root}/s.ctnr`,
    `rm -f ${root}/s.tar && tar -cf ${root}/s.tar -C ${src} .`,
  );
  await compare(
    "small files: extract (100,000 x 4 KiB)",
    `rm -rf ${root}/sx && ${ctnr} extract --container ${root}/s.ctnr --outdir ${root}/sx`,
    `rm -rf ${root}/tx && mkdir ${root}/tx && tar -xf ${root}/s.tar -C ${root}/tx`,
  );
  await Deno.remove(src, { recursive: true });
  for (const p of ["s.ctnr", "s.ctnr.idx", "s.tar", "sx", "tx"]) {
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
  await compare(
    "big files: create (2 x 256 MiB) vs tar",
    `rm -f ${root}/b.ctnr ${root}/b.ctnr.idx && ${ctnr} create --src ${src} --container ${root}/b.ctnr`,
    `rm -f ${root}/b.tar && tar -cf ${root}/b.tar -C ${src} .`,
  );
  await compare(
    "big files: create (2 x 256 MiB) vs cat",
    `rm -f ${root}/b.ctnr ${root}/b.ctnr.idx && ${ctnr} create --src ${src} --container ${root}/b.ctnr`,
    `rm -f ${root}/b.cat && cat ${src}/big1.bin ${src}/big2.bin > ${root}/b.cat`,
  );
  await compare(
    "big files: extract (2 x 256 MiB) vs tar",
    `rm -rf ${root}/bx && ${ctnr} extract --container ${root}/b.ctnr --outdir ${root}/bx`,
    `rm -rf ${root}/btx && mkdir ${root}/btx && tar -xf ${root}/b.tar -C ${root}/btx`,
  );
  await compare(
    "big files: extract (2 x 256 MiB) vs cat",
    `rm -rf ${root}/bx && ${ctnr} extract --container ${root}/b.ctnr --outdir ${root}/bx`,
    `rm -rf ${root}/bcx && mkdir ${root}/bcx && cat ${root}/b.cat > ${root}/bcx/all`,
  );
  for (const p of ["big", "b.ctnr", "b.ctnr.idx", "b.tar", "b.cat", "bx", "btx", "bcx"]) {
    await Deno.remove(`${root}/${p}`, { recursive: true }).catch(() => {});
  }
}

async function gzipFiles() {
  const src = `${root}/text`;
  const words = [
    "container",
    "payload",
    "index",
    "entry",
    "offset",
    "trailer",
    "gzip",
    "sha256",
    "folder",
    "relpath",
    "extract",
    "create",
    "resume",
    "fsync",
    "batch",
    "tree",
  ];
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  let bytes = 0;
  for (let d = 0; d < 20; d++) {
    await Deno.mkdir(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < 1000; f++) {
      const size = 1024 + Math.floor(rand() * 15 * 1024);
      let text = "";
      while (text.length < size) {
        text += words[Math.floor(rand() * words.length)] + (rand() < 0.1 ? "\n" : " ");
      }
      Deno.writeTextFileSync(`${src}/d${d}/f${f}.txt`, text.slice(0, size));
      bytes += size;
    }
  }
  console.log(`  (20,000 text files, ${(bytes / 2 ** 20).toFixed(0)} MiB)`);
  const pigz = new Deno.Command("bash", { args: ["-c", "command -v pigz"] }).outputSync().success;
  if (pigz) {
    await compare(
      "gzip: create --compress vs tar | pigz -6",
      `rm -f ${root}/g.ctnr ${root}/g.ctnr.idx && ${ctnr} create --compress --src ${src} --container ${root}/g.ctnr`,
      `rm -f ${root}/g.tgz && tar -cf - -C ${src} . | pigz -6 > ${root}/g.tgz`,
    );
  } else {console.log(
      "gzip: create --compress vs tar | pigz -6: pigz not installed (apt-get install pigz)",
    );}
  await compare(
    "gzip: create --compress vs tar | gzip -6",
    `rm -f ${root}/g.ctnr ${root}/g.ctnr.idx && ${ctnr} create --compress --src ${src} --container ${root}/g.ctnr`,
    `rm -f ${root}/g.tgz && tar -cf - -C ${src} . | gzip -6 > ${root}/g.tgz`,
  );
  await compare(
    "gzip: extract vs tar -xzf",
    `rm -rf ${root}/gx && ${ctnr} extract --container ${root}/g.ctnr --outdir ${root}/gx`,
    `rm -rf ${root}/gtx && mkdir ${root}/gtx && tar -xzf ${root}/g.tgz -C ${root}/gtx`,
  );
  for (const p of ["text", "g.ctnr", "g.ctnr.idx", "g.tgz", "gx", "gtx"]) {
    await Deno.remove(`${root}/${p}`, { recursive: true }).catch(() => {});
  }
}

/**
 * `extract --verify-existing` over a complete output folder (every file hashed and kept)
 * against `extract` into an empty one, alternated: checking what is there must not cost more
 * than writing it again. Prints min/median/max seconds and peak RSS of each side.
 */
async function verifyExisting() {
  const src = `${root}/v`;
  const buf = new Uint8Array(4096);
  for (let d = 0; d < 20; d++) {
    await Deno.mkdir(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < 1000; f++) {
      fillRandom(buf, d * 1000 + f + 1);
      Deno.writeFileSync(`${src}/d${d}/f${f}.bin`, buf);
    }
  }
  const container = `${root}/v.ctnr`;
  await measure(
    `${ctnr} create --finalize --src ${src} --container ${container}`,
    undefined,
    false,
  );
  await measure(
    `${ctnr} extract --container ${container} --outdir ${root}/vfull`,
    undefined,
    false,
  );
  const sides = {
    "extract --verify-existing (full folder)": {
      command: `${ctnr} extract --verify-existing --container ${container} --outdir ${root}/vfull`,
      seconds: [] as number[],
      peaks: [] as number[],
    },
    "extract (empty folder)": {
      command: `${ctnr} extract --container ${container} --outdir ${root}/vx`,
      seconds: [] as number[],
      peaks: [] as number[],
    },
  };
  for (let i = 0; i < Math.max(runs, 5); i++) {
    for (const side of Object.values(sides)) {
      await Deno.remove(`${root}/vx`, { recursive: true }).catch(() => {});
      await new Deno.Command("sync").output();
      const run = await measure(side.command);
      side.seconds.push(run.seconds);
      side.peaks.push(run.peakMiB);
    }
  }
  console.log("verify-existing (20,000 x 4 KiB), min/median/max:");
  for (const [name, { seconds, peaks }] of Object.entries(sides)) {
    const s = [...seconds].sort((a, b) => a - b);
    const p = [...peaks].sort((a, b) => a - b);
    console.log(
      `  ${name.padEnd(42)} ${s[0]!.toFixed(2)}/${median(s).toFixed(2)}/${s.at(-1)!.toFixed(2)} s` +
        `  peak RSS ${p[0]!.toFixed(0)}/${median(p).toFixed(0)}/${p.at(-1)!.toFixed(0)} MiB`,
    );
  }
  for (const p of ["v", "v.ctnr", "v.ctnr.idx", "vfull", "vx"]) {
    await Deno.remove(`${root}/${p}`, { recursive: true }).catch(() => {});
  }
}

/**
 * Time `ours` and `reference` alternately. A command of the form
 * `rm ... && rest` has its removal run first, untimed: deleting 100,000
 * files takes about 0.6 s here and would weigh equally on both sides.
 */
async function compare(name: string, ours: string, reference: string) {
  const a: number[] = [];
  const b: number[] = [];
  const timed = async (command: string) => {
    const cleanup = /^(rm [^&]*)&& (.*)$/s.exec(command);
    if (cleanup) await measure(cleanup[1]!, undefined, false);
    await new Deno.Command("sync").output();
    return (await measure(cleanup ? cleanup[2]! : command, undefined, false)).seconds;
  };
  for (let i = 0; i < runs; i++) {
    a.push(await timed(ours));
    b.push(await timed(reference));
  }
  const x = median(a);
  const y = median(b);
  console.log(
    `${name.padEnd(44)} ctnr ${x.toFixed(2)}  ref ${y.toFixed(2)}  ratio ${(x / y).toFixed(2)}`,
  );
}
