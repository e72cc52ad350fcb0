/**
 * Deno's floor for the gzip cases (issue 17: create at most 0.8x `tar | pigz -6`, extract at
 * most 1.0x `tar -xzf`), with no ctnr code, beside those commands and ctnr on the same tree:
 * bench/compare.ts's 20,000 text files of 1-16 KiB in 20 folders, on tmpfs.
 *
 * - create floor: a Deno program that does the least a per-file gzip container must: two
 *   workers, a folder each in turn; per file `lstat`, open, read, close, one gzip member
 *   (`node:zlib` `gzipSync`, level 6, as ctnr), SHA-256 of the original and of the member; the
 *   members sent back (transferred) and appended to one output file by the main thread. No
 *   index, no checks, no resume, no fsync.
 * - extract floor: the floor's own output read back whole; per file, on two workers: SHA-256 of
 *   the member, `gunzipSync`, open a temp name (`O_CREAT | O_EXCL`), write, `futimens`, close,
 *   rename.
 * - each floor runs as its own `deno run` process, start-up included, as ctnr and the
 *   reference commands do.
 *
 * Sides alternate, the order rotated each run; prints min/median/max seconds, the median CPU
 * (user + system) and the ratio of each to the reference.
 *
 *   deno run -A bench/floor_gzip.ts [--runs 5]
 *
 * @module
 */

import { closeSync, constants, openSync, readSync } from "node:fs";
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { parseArgs } from "node:util";
import { benchRoot, compareSides, ctnrCommand, machine, writeTextTree } from "./_measure.ts";

const FOLDERS = 20;
const PER_FOLDER = 1000;

/** What a worker is asked: pack a folder, or write back the files of one. */
type Job =
  | { job: "create"; src: string; folder: number }
  | {
    job: "extract";
    out: string;
    folder: number;
    payloads: Uint8Array<ArrayBuffer>;
    sizes: number[];
    sha256: string[];
  };

/** Read, gzip and hash every file of one folder; the members end to end. */
function packFolder(src: string, folder: number) {
  const buffer = new Uint8Array(64 << 10);
  const members: Uint8Array[] = [];
  const sha256: string[] = [];
  for (let f = 0; f < PER_FOLDER; f++) {
    const path = `${src}/d${folder}/f${f}.txt`;
    Deno.lstatSync(path);
    const fd = openSync(path, constants.O_RDONLY);
    const got = readSync(fd, buffer, 0, buffer.length, null);
    closeSync(fd);
    const bytes = buffer.subarray(0, got);
    createHash("sha256").update(bytes).digest("hex");
    const member = gzipSync(bytes, { level: 6, chunkSize: Math.min(4096, got + 64) });
    sha256.push(createHash("sha256").update(member).digest("hex"));
    members.push(member);
  }
  const payloads = new Uint8Array(members.reduce((n, m) => n + m.length, 0));
  let at = 0;
  for (const m of members) {
    payloads.set(m, at);
    at += m.length;
  }
  return { payloads, sizes: members.map((m) => m.length), sha256 };
}

/** Check, gunzip and write every file of one folder through a temp name. */
function writeFolder(job: Extract<Job, { job: "extract" }>): number {
  const dir = `${job.out}/d${job.folder}`;
  Deno.mkdirSync(dir, { recursive: true });
  let at = 0;
  job.sizes.forEach((size, f) => {
    const member = job.payloads.subarray(at, at + size);
    at += size;
    if (createHash("sha256").update(member).digest("hex") !== job.sha256[f]) {
      throw new Error(`d${job.folder}/f${f}: SHA-256 differs`);
    }
    const bytes = gunzipSync(member);
    const tmp = `${dir}/.f${f}.txt.tmp`;
    const file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o644 });
    file.writeSync(bytes);
    file.utimeSync(1_700_000_000, 1_700_000_000);
    file.close();
    Deno.renameSync(tmp, `${dir}/f${f}.txt`);
  });
  return job.sizes.length;
}

const inWorker = "WorkerGlobalScope" in globalThis;
if (inWorker) {
  const scope = self as unknown as Worker;
  scope.onmessage = (event: MessageEvent<Job>) => {
    const job = event.data;
    if (job.job === "create") {
      const packed = packFolder(job.src, job.folder);
      scope.postMessage(packed, [packed.payloads.buffer]);
    } else {
      scope.postMessage(writeFolder(job));
    }
  };
}

/** Run `jobs` on two workers, a job each in turn as they come free; results in job order. */
async function onTwoWorkers<T>(jobs: Job[], transfer: (job: Job) => Transferable[]) {
  const workers = [0, 1].map(() => new Worker(import.meta.url, { type: "module" }));
  const results: T[] = [];
  let next = 0;
  await Promise.all(workers.map(async (worker) => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await new Promise<T>((resolve, reject) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) => reject(event.error ?? new Error(event.message));
        worker.postMessage(jobs[i], transfer(jobs[i]!));
      });
    }
  }));
  workers.forEach((w) => w.terminate());
  return results;
}

const folders = Array.from({ length: FOLDERS }, (_, d) => d);

/** The create floor: `src` packed into `container` (payloads) and `container.json` (sizes, hashes). */
async function createFloor(src: string, container: string): Promise<void> {
  const packed = await onTwoWorkers<ReturnType<typeof packFolder>>(
    folders.map((folder) => ({ job: "create", src, folder })),
    () => [],
  );
  const file = Deno.openSync(container, { write: true, createNew: true });
  for (const { payloads } of packed) {
    for (let w = 0; w < payloads.length;) w += file.writeSync(payloads.subarray(w));
  }
  file.close();
  const index = packed.map(({ sizes, sha256 }) => ({ sizes, sha256 }));
  Deno.writeTextFileSync(`${container}.json`, JSON.stringify(index));
}

/** The extract floor: what {@link createFloor} made, written out under `out`. */
async function extractFloor(container: string, out: string): Promise<void> {
  const all = Deno.readFileSync(container);
  const index: { sizes: number[]; sha256: string[] }[] = JSON.parse(
    Deno.readTextFileSync(`${container}.json`),
  );
  let at = 0;
  const jobs: Job[] = index.map(({ sizes, sha256 }, folder) => {
    const length = sizes.reduce((n, s) => n + s, 0);
    const payloads = all.slice(at, at + length);
    at += length;
    return { job: "extract", out, folder, payloads, sizes, sha256 };
  });
  await onTwoWorkers<number>(jobs, (job) => job.job === "extract" ? [job.payloads.buffer] : []);
}

async function main(runs: number): Promise<void> {
  console.log(machine());
  const root = await benchRoot();
  try {
    const src = `${root}/text`;
    const bytes = await writeTextTree(src);
    const self = new URL(import.meta.url).pathname;
    const deno = ["deno", "run", "-A", self];
    const ctnr = ctnrCommand();
    const floor = `${root}/floor.bin`;
    const container = `${root}/g.ctnr`;
    const tgz = `${root}/g.tgz`;
    console.log(
      `floor_gzip.ts: 20,000 text files of 1-16 KiB (${(bytes / 2 ** 20).toFixed(0)} MiB), ` +
        `${runs} runs a side alternated; min/median/max s, median cpu s; ratio to the last side`,
    );
    const options = { runs, ratioTo: "last" } as const;
    const create = await compareSides("create", [
      {
        label: "create floor (Deno, 2 workers)",
        argv: [...deno, "create", src, floor],
        remove: [floor, `${floor}.json`],
      },
      {
        label: "ctnr create --compress",
        argv: [...ctnr, "create", "--compress", "--src", src, "--container", container],
        remove: [container, `${container}.idx`],
      },
      {
        label: "tar -cf - | pigz -6",
        argv: `tar -cf - -C ${src} . | pigz -6 > ${tgz}`,
        remove: [tgz],
      },
    ], options);
    // The extract sides read what the last create runs left.
    const out = `${root}/out`;
    const extract = await compareSides("extract", [
      {
        label: "extract floor (Deno, 2 workers)",
        argv: [...deno, "extract", floor, out],
        remove: [out],
        mkdir: out,
      },
      {
        label: "ctnr extract",
        argv: [...ctnr, "extract", "--container", container, "--outdir", out],
        remove: [out],
      },
      { label: "tar -xzf", argv: ["tar", "-xzf", tgz, "-C", out], remove: [out], mkdir: out },
    ], options);
    for (const side of [...create, ...extract]) {
      if (side.some((m) => m.code !== 0)) throw new Error("floor_gzip.ts: a side failed");
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

if (!inWorker) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { runs: { type: "string", default: "5" } },
  });
  const [side, from, to] = positionals;
  if (side === "create") await createFloor(from!, to!);
  else if (side === "extract") await extractFloor(from!, to!);
  else await main(Number(values.runs));
}
